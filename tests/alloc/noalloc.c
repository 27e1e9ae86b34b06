/* "After warm-up, no heap allocation on the hot path": this program defines
 * malloc, calloc, realloc, free and the aligned variants itself (forwarding
 * to glibc's __libc_* entry points), so every allocation in the process,
 * libsdp's, OpenSSL's and libsodium's included, passes through a counter.
 * It runs echo round trips of 64 B, 100 KB and 1 MiB on loopback through the
 * public API, warms up, then counts every call during N more round trips
 * and fails unless there were none; in inline mode (client and server each
 * driven by their own thread) and in threaded mode (two engines each side).
 * It also checks that received records were decrypted straight from the
 * packets (rx_bytes_direct) rather than copied first.
 *
 * Not built under the sanitizers: they own malloc.  Exit status 0 on
 * success, 1 on failure with the first offending call stacks on stderr. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <execinfo.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sdp/sdp.h"

/* ---- the interposed allocator ---- */

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);

static atomic_int counting;
static atomic_long calls;
static atomic_int traces_taken;
#define MAX_TRACES 4
static void *traces[MAX_TRACES][24];
static int trace_len[MAX_TRACES];
static const char *trace_what[MAX_TRACES];
static __thread int in_hook;

static void note(const char *what)
{
    if (!atomic_load_explicit(&counting, memory_order_relaxed) || in_hook)
        return;
    atomic_fetch_add(&calls, 1);
    int t = atomic_fetch_add(&traces_taken, 1);
    if (t < MAX_TRACES) {
        in_hook = 1;
        trace_len[t] = backtrace(traces[t], 24);
        trace_what[t] = what;
        in_hook = 0;
    }
}

void *malloc(size_t n)
{
    note("malloc");
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    note("calloc");
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    note("realloc");
    return __libc_realloc(p, n);
}

void free(void *p)
{
    if (p)
        note("free");
    __libc_free(p);
}

void *aligned_alloc(size_t al, size_t n)
{
    note("aligned_alloc");
    return __libc_memalign(al, n);
}

void *memalign(size_t al, size_t n)
{
    note("memalign");
    return __libc_memalign(al, n);
}

int posix_memalign(void **out, size_t al, size_t n)
{
    note("posix_memalign");
    void *p = __libc_memalign(al, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

/* ---- the round trips ---- */

static const uint8_t SECRET_C2S[SDP_SECRET_LEN] = {1, 2, 3, 4, 5, 6, 7, 8};
static const uint8_t SECRET_S2C[SDP_SECRET_LEN] = {9, 10, 11, 12, 13, 14, 15, 16};
static const size_t sizes[] = {64, 100000, 1 << 20};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static int failures;

#define CHECK(cond, ...)                                                                                          \
    do {                                                                                                       \
        if (!(cond)) {                                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                               \
            fprintf(stderr, __VA_ARGS__);                                                                      \
            fprintf(stderr, "\n");                                                                             \
            failures++;                                                                                        \
            return -1;                                                                                         \
        }                                                                                                      \
    } while (0)

struct server {
    sdp_socket *s;
    pthread_t thread;
    atomic_int stop;
    atomic_int errors;
};

/* Echo server loop: no allocation of its own, so anything counted is the
 * library's. */
static void *server_main(void *arg)
{
    struct server *sv = arg;
    while (!atomic_load(&sv->stop)) {
        struct sdp_msg m;
        if (sdp_recv(sv->s, &m, 20) != 0)
            continue;
        if (m.kind == SDP_MSG_REQUEST && sdp_reply(sv->s, &m, m.data, m.len) != 0)
            atomic_fetch_add(&sv->errors, 1);
        sdp_release(sv->s, &m);
    }
    return NULL;
}

static sdp_socket *open_sock(unsigned engines, struct sockaddr_in *bound, const uint8_t *tx, const uint8_t *rx)
{
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = engines;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    sdp_socket *s;
    if (sdp_open((struct sockaddr *)&a, sizeof(a), &cfg, &s) != 0)
        return NULL;
    struct sockaddr_storage ss;
    socklen_t l;
    sdp_local_addr(s, &ss, &l);
    memcpy(bound, &ss, sizeof(*bound));
    if (sdp_set_default_keys(s, SDP_CIPHER_AES128GCM, tx, rx) != 0) {
        sdp_close(s);
        return NULL;
    }
    return s;
}

static int roundtrip(sdp_socket *c, const struct sockaddr_in *to, const uint8_t *buf, size_t len, uint64_t seq)
{
    uint64_t id;
    int rc = sdp_send(c, (const struct sockaddr *)to, sizeof(*to), buf, len, seq, &id);
    CHECK(rc == 0, "send %zu: %s", len, sdp_strerror(rc));
    struct sdp_msg m;
    rc = sdp_recv(c, &m, 10000);
    CHECK(rc == 0, "no response to %zu bytes: %s", len, sdp_strerror(rc));
    CHECK(m.kind == SDP_MSG_RESPONSE && m.rpc_id == id && m.len == len, "bad response (kind %d error %s len %zu)",
          m.kind, sdp_strerror(m.error), m.len);
    int same = memcmp(m.data, buf, len) == 0;
    sdp_release(c, &m);
    CHECK(same, "content differs at %zu bytes", len);
    return 0;
}

static void print_traces(void)
{
    int n = atomic_load(&traces_taken);
    for (int t = 0; t < n && t < MAX_TRACES; t++) {
        fprintf(stderr, "  %s from:\n", trace_what[t]);
        backtrace_symbols_fd(traces[t], trace_len[t], STDERR_FILENO);
    }
}

static int run(unsigned engines, int rounds)
{
    struct server sv;
    memset(&sv, 0, sizeof(sv));
    struct sockaddr_in saddr, caddr;
    sv.s = open_sock(engines, &saddr, SECRET_S2C, SECRET_C2S);
    CHECK(sv.s, "server socket");
    CHECK(pthread_create(&sv.thread, NULL, server_main, &sv) == 0, "server thread");
    sdp_socket *c = open_sock(engines, &caddr, SECRET_C2S, SECRET_S2C);
    CHECK(c, "client socket");
    uint8_t *buf = malloc(sizes[NSIZES - 1]);
    for (size_t i = 0; i < sizes[NSIZES - 1]; i++)
        buf[i] = (uint8_t)(i * 131 + (i >> 11));
    int rc = 0;
    uint64_t seq = 1;
    /* Warm-up: every size class, ring, queue and stream state gets made. */
    for (int w = 0; w < 60 && rc == 0; w++)
        for (size_t k = 0; k < NSIZES && rc == 0; k++)
            rc = roundtrip(c, &saddr, buf, sizes[k], seq++);
    struct sdp_stats before;
    sdp_get_stats(c, &before);
    atomic_store(&calls, 0);
    atomic_store(&traces_taken, 0);
    atomic_store(&counting, 1);
    for (int r = 0; r < rounds && rc == 0; r++)
        for (size_t k = 0; k < NSIZES && rc == 0; k++)
            rc = roundtrip(c, &saddr, buf, sizes[k], seq++);
    atomic_store(&counting, 0);
    long n = atomic_load(&calls);
    struct sdp_stats after;
    sdp_get_stats(c, &after);
    atomic_store(&sv.stop, 1);
    pthread_join(sv.thread, NULL);
    sdp_close(c);
    sdp_close(sv.s);
    free(buf);
    if (rc != 0)
        return rc;
    uint64_t direct = after.rx_bytes_direct - before.rx_bytes_direct;
    uint64_t copied = after.rx_bytes_copied - before.rx_bytes_copied;
    uint64_t expect = 0;
    for (size_t k = 0; k < NSIZES; k++)
        expect += (uint64_t)rounds * sizes[k];
    printf("%s mode: %d x %zu round trips (64 B, 100 KB, 1 MiB): %ld allocator calls; responses decrypted "
           "%llu bytes direct, %llu copied first\n",
           engines ? "threaded" : "inline", rounds, NSIZES, n, (unsigned long long)direct,
           (unsigned long long)copied);
    if (n != 0)
        print_traces();
    CHECK(n == 0, "%ld allocator calls after warm-up (%s mode)", n, engines ? "threaded" : "inline");
    CHECK(atomic_load(&sv.errors) == 0, "server failed to reply");
    CHECK(direct + copied >= expect, "%llu response bytes decrypted, %llu received",
          (unsigned long long)(direct + copied), (unsigned long long)expect);
    /* Loopback barely reorders: nearly every byte must take the direct path. */
    CHECK(copied * 20 <= expect, "%llu of %llu bytes went the copy path", (unsigned long long)copied,
          (unsigned long long)expect);
    return 0;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 100;
    /* backtrace() loads its unwinder on first use (which allocates). */
    void *warm[2];
    backtrace(warm, 2);
    run(0, rounds);
    run(2, rounds);
    if (failures) {
        fprintf(stderr, "%d failure(s)\n", failures);
        return 1;
    }
    printf("ok\n");
    return 0;
}
