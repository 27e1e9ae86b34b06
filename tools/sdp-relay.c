/* sdp-relay: a userspace UDP impairment relay, since this kernel has no netem.
 *
 * Clients send to --listen; each client gets its own upstream socket towards
 * --to, so the server's answers find their way back.  Both directions suffer
 * seeded drop, duplication, corruption, reordering and delay.  The same seed
 * gives the same decisions for the same packet sequence, so a failure can be
 * replayed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 256
#define MAX_PENDING 8192
#define MAX_DGRAM 65536

struct opts {
    double drop, dup, corrupt, reorder;
    uint64_t delay_ns, jitter_ns;
    uint64_t seed;
    double duration_s;
    int verbose;
    long alter_hs; /* flip one payload byte of the Nth HANDSHAKE datagram with payload (0: never) */
};

struct client {
    struct sockaddr_storage addr; /* the client's address, as seen on the listen socket */
    socklen_t addr_len;
    int up_fd;                    /* socket towards the server */
};

struct pending {
    uint64_t due_ns;
    uint64_t order; /* tie-break: keeps FIFO among equal due times */
    int fd;         /* socket to send from */
    struct sockaddr_storage to;
    socklen_t to_len;
    uint32_t len;
    uint8_t *data;
};

static struct {
    uint64_t in, out, dropped, duplicated, corrupted, reordered, overflow;
    uint64_t hs_seen, hs_altered;
} st;

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static uint64_t rng_state;

/* splitmix64: small, seedable, good enough for impairment decisions. */
static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / (double)(1ull << 53);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    char *h = host;
    if (h[0] == '[') { /* [v6]:port */
        size_t n = strlen(h);
        if (n < 2 || h[n - 1] != ']')
            return -1;
        h[n - 1] = 0;
        h++;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(h, colon + 1, &hints, &res) != 0)
        return -1;
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* Min-heap of pending datagrams ordered by (due, order). */
static struct pending heap[MAX_PENDING];
static size_t heap_n;
static uint64_t heap_order;

static int pending_less(const struct pending *a, const struct pending *b)
{
    return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->order < b->order);
}

static void heap_push(struct pending p)
{
    size_t i = heap_n++;
    heap[i] = p;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!pending_less(&heap[i], &heap[parent]))
            break;
        struct pending t = heap[i];
        heap[i] = heap[parent];
        heap[parent] = t;
        i = parent;
    }
}

static struct pending heap_pop(void)
{
    struct pending top = heap[0];
    heap[0] = heap[--heap_n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_n && pending_less(&heap[l], &heap[m]))
            m = l;
        if (r < heap_n && pending_less(&heap[r], &heap[m]))
            m = r;
        if (m == i)
            break;
        struct pending t = heap[i];
        heap[i] = heap[m];
        heap[m] = t;
        i = m;
    }
    return top;
}

static void enqueue(const struct opts *o, int fd, const struct sockaddr_storage *to, socklen_t to_len,
                    const uint8_t *buf, size_t len, uint64_t now, uint64_t extra_ns)
{
    if (heap_n == MAX_PENDING) {
        st.overflow++;
        return;
    }
    struct pending p = {.fd = fd, .to_len = to_len, .len = (uint32_t)len, .order = heap_order++};
    memcpy(&p.to, to, to_len);
    p.data = malloc(len ? len : 1);
    if (!p.data) {
        st.overflow++;
        return;
    }
    memcpy(p.data, buf, len);
    uint64_t jitter = o->jitter_ns ? rng_next() % (o->jitter_ns + 1) : 0;
    p.due_ns = now + o->delay_ns + jitter + extra_ns;
    heap_push(p);
}

/* Apply the impairments to one datagram and queue what survives. */
static void impair(const struct opts *o, int fd, const struct sockaddr_storage *to, socklen_t to_len,
                   uint8_t *buf, size_t len, uint64_t now)
{
    st.in++;
    /* HANDSHAKE (type 9): 28-byte header, token_len at 9, payload_len at 10;
     * a client's packets may carry zero padding after the payload. */
    if (o->alter_hs && len >= 28 && (buf[0] & 0x0f) == 9) {
        size_t tok = buf[9], pl = (size_t)buf[10] << 8 | buf[11];
        if (pl && 28 + tok + pl <= len && (long)++st.hs_seen == o->alter_hs) {
            buf[28 + tok + rng_next() % pl] ^= 0x01;
            st.hs_altered++;
        }
    }
    if (rng_unit() < o->drop) {
        st.dropped++;
        return;
    }
    if (len > 0 && rng_unit() < o->corrupt) {
        buf[rng_next() % len] ^= (uint8_t)(1u << (rng_next() % 8));
        st.corrupted++;
    }
    /* Reordering holds a datagram back long enough for later ones to pass. */
    uint64_t extra = 0;
    if (rng_unit() < o->reorder) {
        extra = o->delay_ns + 200000 + rng_next() % 800000;
        st.reordered++;
    }
    enqueue(o, fd, to, to_len, buf, len, now, extra);
    if (rng_unit() < o->dup) {
        enqueue(o, fd, to, to_len, buf, len, now, rng_next() % 100000);
        st.duplicated++;
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sdp-relay --listen ADDR:PORT --to ADDR:PORT [options]\n"
            "  --drop P --dup P --corrupt P --reorder P   probabilities 0..1 (both directions)\n"
            "  --delay-us N --jitter-us N                  one-way delay added to every datagram\n"
            "  --alter-handshake N                         flip one TLS byte of the Nth handshake datagram\n"
            "  --seed S                                    PRNG seed (default 1)\n"
            "  --upstream ADDR:PORT                        bind the first client's upstream socket here, so\n"
            "                                              the server knows the address it will see\n"
            "  --duration SECONDS                          exit after this long (default: until signal)\n"
            "  -v                                          print statistics every second\n"
            "Prints a JSON line of statistics on exit.\n");
}

static int parse_prob(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || v < 0 || v > 1)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o = {.seed = 1};
    const char *listen_s = NULL, *to_s = NULL, *up_s = NULL;
    static const struct option lo[] = {
        {"listen", required_argument, 0, 'l'}, {"to", required_argument, 0, 't'},
        {"drop", required_argument, 0, 'd'},   {"dup", required_argument, 0, 'u'},
        {"corrupt", required_argument, 0, 'c'}, {"reorder", required_argument, 0, 'r'},
        {"delay-us", required_argument, 0, 'D'}, {"jitter-us", required_argument, 0, 'J'},
        {"seed", required_argument, 0, 's'},   {"duration", required_argument, 0, 'T'},
        {"upstream", required_argument, 0, 'U'}, {"alter-handshake", required_argument, 0, 'H'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "vh", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'l': listen_s = optarg; break;
        case 't': to_s = optarg; break;
        case 'd': bad = parse_prob(optarg, &o.drop); break;
        case 'u': bad = parse_prob(optarg, &o.dup); break;
        case 'c': bad = parse_prob(optarg, &o.corrupt); break;
        case 'r': bad = parse_prob(optarg, &o.reorder); break;
        case 'D': o.delay_ns = strtoull(optarg, NULL, 10) * 1000; break;
        case 'J': o.jitter_ns = strtoull(optarg, NULL, 10) * 1000; break;
        case 's': o.seed = strtoull(optarg, NULL, 0); break;
        case 'T': o.duration_s = strtod(optarg, NULL); break;
        case 'U': up_s = optarg; break;
        case 'H': o.alter_hs = strtol(optarg, NULL, 10); break;
        case 'v': o.verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (bad) {
            fprintf(stderr, "sdp-relay: a probability must lie between 0 and 1 (got '%s')\n", optarg);
            return 2;
        }
    }
    if (!listen_s || !to_s) {
        usage(stderr);
        return 2;
    }
    struct sockaddr_storage laddr, taddr, uaddr;
    socklen_t llen, tlen, ulen = 0;
    if (parse_addr(listen_s, &laddr, &llen) || parse_addr(to_s, &taddr, &tlen) ||
        (up_s && parse_addr(up_s, &uaddr, &ulen))) {
        fprintf(stderr, "sdp-relay: cannot parse address (want HOST:PORT or [V6]:PORT)\n");
        return 2;
    }
    rng_state = o.seed;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* Big buffers: the relay must not add losses of its own when it is
     * descheduled for a moment on a busy machine. */
    int bufsz = 8 << 20;
    int lfd = socket(laddr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (lfd >= 0) {
        if (setsockopt(lfd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
            setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
        if (setsockopt(lfd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
            setsockopt(lfd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
    }
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&laddr, llen) < 0) {
        fprintf(stderr, "sdp-relay: bind %s: %s\n", listen_s, strerror(errno));
        return 1;
    }
    static struct client clients[MAX_CLIENTS];
    size_t nclients = 0;
    static uint8_t buf[MAX_DGRAM];
    struct pollfd pfds[MAX_CLIENTS + 1];
    uint64_t start = now_ns(), last_report = start;
    uint64_t end = o.duration_s > 0 ? start + (uint64_t)(o.duration_s * 1e9) : UINT64_MAX;

    while (!stop_flag) {
        uint64_t now = now_ns();
        if (now >= end)
            break;
        while (heap_n && heap[0].due_ns <= now) {
            struct pending p = heap_pop();
            if (sendto(p.fd, p.data, p.len, 0, (struct sockaddr *)&p.to, p.to_len) == (ssize_t)p.len)
                st.out++;
            else
                st.overflow++;
            free(p.data);
        }
        int timeout_ms = 100;
        if (heap_n) {
            uint64_t wait = heap[0].due_ns > now ? heap[0].due_ns - now : 0;
            timeout_ms = (int)(wait / 1000000);
        }
        pfds[0] = (struct pollfd){.fd = lfd, .events = POLLIN};
        for (size_t i = 0; i < nclients; i++)
            pfds[i + 1] = (struct pollfd){.fd = clients[i].up_fd, .events = POLLIN};
        if (poll(pfds, nclients + 1, timeout_ms) < 0 && errno != EINTR)
            break;
        now = now_ns();
        /* Client to server. */
        for (int burst = 0; burst < 64; burst++) {
            struct sockaddr_storage from;
            socklen_t flen = sizeof(from);
            ssize_t n = recvfrom(lfd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
            if (n < 0)
                break;
            size_t ci = 0;
            while (ci < nclients && !(clients[ci].addr_len == flen && !memcmp(&clients[ci].addr, &from, flen)))
                ci++;
            if (ci == nclients) {
                if (nclients == MAX_CLIENTS) {
                    st.overflow++;
                    continue;
                }
                int fd = socket(taddr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
                if (fd >= 0) {
                    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
                        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
                    if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsz, sizeof(bufsz)) < 0)
                        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsz, sizeof(bufsz));
                }
                if (fd >= 0 && nclients == 0 && ulen && bind(fd, (struct sockaddr *)&uaddr, ulen) < 0) {
                    fprintf(stderr, "sdp-relay: bind upstream %s: %s\n", up_s, strerror(errno));
                    close(fd);
                    fd = -1;
                }
                if (fd < 0) {
                    st.overflow++;
                    continue;
                }
                clients[nclients] = (struct client){.addr = from, .addr_len = flen, .up_fd = fd};
                nclients++;
            }
            impair(&o, clients[ci].up_fd, &taddr, tlen, buf, (size_t)n, now);
        }
        /* Server to clients. */
        for (size_t i = 0; i < nclients; i++) {
            for (int burst = 0; burst < 64; burst++) {
                ssize_t n = recv(clients[i].up_fd, buf, sizeof(buf), 0);
                if (n < 0)
                    break;
                impair(&o, lfd, &clients[i].addr, clients[i].addr_len, buf, (size_t)n, now);
            }
        }
        if (o.verbose && now - last_report >= 1000000000ull) {
            last_report = now;
            fprintf(stderr, "sdp-relay: in %lu out %lu dropped %lu dup %lu corrupt %lu reorder %lu\n",
                    (unsigned long)st.in, (unsigned long)st.out, (unsigned long)st.dropped,
                    (unsigned long)st.duplicated, (unsigned long)st.corrupted, (unsigned long)st.reordered);
        }
    }
    while (heap_n) {
        struct pending p = heap_pop();
        free(p.data);
    }
    for (size_t i = 0; i < nclients; i++)
        close(clients[i].up_fd);
    close(lfd);
    printf("{\"in\":%lu,\"out\":%lu,\"dropped\":%lu,\"duplicated\":%lu,\"corrupted\":%lu,"
           "\"reordered\":%lu,\"overflow\":%lu,\"clients\":%zu,\"seed\":%lu,\"hs_altered\":%lu}\n",
           (unsigned long)st.in, (unsigned long)st.out, (unsigned long)st.dropped, (unsigned long)st.duplicated,
           (unsigned long)st.corrupted, (unsigned long)st.reordered, (unsigned long)st.overflow, nclients,
           (unsigned long)o.seed, (unsigned long)st.hs_altered);
    return 0;
}
