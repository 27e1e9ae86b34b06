/* sdpcat: netcat for SDP.
 *
 *   sdpcat --listen ADDR:PORT [--echo]   serve: print each request, or echo it back
 *   sdpcat ADDR:PORT                     send stdin as one request, print the response
 *
 * Keys come from the in-band TLS 1.3 handshake (--cert/--key/--ca, --psk,
 * --pin, or --insecure; a server without credentials makes an ephemeral
 * certificate and prints its fingerprint), or from --secret-file (64 hex
 * digits shared by both ends; both directions' secrets derived from it, then
 * per peer from both addresses) for applications that key SDP themselves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/aead_kshim.h"
#include "crypto/keymem.h"
#include "crypto/keysched.h"
#include "sdp/sdp.h"

#define EXIT_USAGE 2
#define EXIT_FAIL 1

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

struct opts {
    int listen;
    int echo;
    int verbose;
    int stats;
    int insecure_null;
    unsigned engines;
    unsigned mtu;
    long timeout_ms;
    long count;
    int kernel_crypto;
    const char *secret_file;
    const char *addr;
    const char *cert, *key, *ca, *psk_file, *psk_identity, *pin, *name;
    int insecure, verify_clients, early_data;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sdpcat [options] HOST:PORT            send stdin as one request, print the response\n"
            "       sdpcat [options] --listen HOST:PORT   serve requests\n"
            "options:\n"
            "  --cert FILE --key FILE  (server; client for mutual TLS) PEM certificate chain and key\n"
            "  --ca FILE           PEM CAs that sign the peer's certificate\n"
            "  --name NAME         (client) name the server's certificate must carry (default: its IP)\n"
            "  --verify-clients    (server) require client certificates signed by --ca (mutual TLS)\n"
            "  --psk FILE          TLS 1.3 pre-shared key, 32-64 hex digits ... \n"
            "  --psk-identity ID   ... and its identity (default \"sdp\")\n"
            "  --pin SHA256        (client) accept exactly the server certificate with this fingerprint\n"
            "  --insecure          (client) do not authenticate the server at all (never in production)\n"
            "  --early-data        allow 0-RTT requests on resumed sessions\n"
            "  --secret-file FILE  skip the handshake: 32-byte shared secret as 64 hex digits\n"
            "  With no credentials, --listen makes an ephemeral self-signed certificate and prints the\n"
            "  fingerprint clients pass to --pin.\n"
            "  --echo              (server) answer each request with its own bytes; default: print\n"
            "                      the request to stdout and answer with an empty response\n"
            "  --count N           (server) exit after N requests\n"
            "  --timeout MS        (client) give up after MS milliseconds (default 10000)\n"
            "  --engines N         engine threads (default 0: inline mode)\n"
            "  --mtu BYTES         path MTU towards peers (default: the route's, at most 9000)\n"
            "  -v                  one line per message on stderr\n"
            "  --stats             print counters as JSON on stderr at exit\n"
            "  --kernel-crypto M   record crypto in the sdp_kshim kernel module: 'require' (fail when\n"
            "                      it is not loaded) or 'prefer' (else OpenSSL); docs/KSHIM.md\n"
            "exit status: 0 when the whole response arrived (client) or on a clean stop (server),\n"
            "1 on failure, 2 on a usage error.\n");
}

static int parse_hostport(const char *s, struct sockaddr_storage *out, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = 0;
    char *h = host;
    size_t hl = strlen(h);
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h[hl - 1] = 0;
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

/* Up to cap bytes from hex digits in a file; returns the count or -1. */
static int read_hex_file(const char *path, uint8_t *out, size_t cap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sdpcat: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t n = 0;
    int hi = -1, ch;
    while ((ch = fgetc(f)) != EOF) {
        int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (v < 0) {
            if (ch == '\n' || ch == ' ' || ch == '\r' || ch == '\t')
                continue;
            n = cap + 1;
            break;
        }
        if (hi < 0) {
            hi = v;
            continue;
        }
        if (n >= cap) {
            n = cap + 1;
            break;
        }
        out[n++] = (uint8_t)(hi << 4 | v);
        hi = -1;
    }
    fclose(f);
    if (n > cap || hi >= 0) {
        fprintf(stderr, "sdpcat: %s: expected at most %zu bytes as hex digits\n", path, cap);
        return -1;
    }
    return (int)n;
}

static int setup_tls(sdp_socket *s, const struct opts *o)
{
    struct sdp_tls_options t;
    memset(&t, 0, sizeof(t));
    uint8_t *psk = NULL;
    int psk_len = 0;
    if (o->psk_file) {
        psk = sdp_keymem_alloc(64);
        psk_len = psk ? read_hex_file(o->psk_file, psk, 64) : -1;
        if (psk_len < 16) {
            if (psk_len >= 0)
                fprintf(stderr, "sdpcat: %s: a PSK needs at least 16 bytes (32 hex digits)\n", o->psk_file);
            sdp_keymem_free(psk);
            return EXIT_USAGE;
        }
        t.psk = psk;
        t.psk_len = (size_t)psk_len;
        t.psk_identity = o->psk_identity ? o->psk_identity : "sdp";
    }
    t.cert_file = o->cert;
    t.key_file = o->key ? o->key : o->cert;
    t.ca_file = o->ca;
    t.verify_clients = o->verify_clients;
    t.pin_sha256_hex = o->pin;
    t.insecure = o->insecure;
    t.server_name = o->name;
    t.early_data = o->early_data;
    t.ephemeral_cert = o->listen && !o->cert && !o->psk_file;
    if (!o->listen && !o->ca && !o->pin && !o->psk_file && !o->insecure) {
        fprintf(stderr, "sdpcat: no way to authenticate the server: give --ca FILE, --pin SHA256 or --psk FILE\n"
                        "(or --insecure to skip authentication, which lets anyone impersonate it)\n");
        sdp_keymem_free(psk);
        return EXIT_USAGE;
    }
    if (o->insecure)
        fprintf(stderr, "sdpcat: WARNING: --insecure: the server is NOT authenticated; anyone on the path can\n"
                        "sdpcat: WARNING: impersonate it and read everything. Use --ca, --pin or --psk.\n");
    int rc = sdp_set_tls(s, &t);
    sdp_keymem_free(psk);
    if (rc != 0) {
        fprintf(stderr, "sdpcat: TLS setup failed: %s%s\n", sdp_strerror(rc),
                rc == SDP_ESYSTEM ? " (check the certificate, key and CA files)" : "");
        return EXIT_FAIL;
    }
    if (t.ephemeral_cert) {
        char fp[65];
        if (sdp_tls_fingerprint(s, fp) == 0)
            fprintf(stderr, "sdpcat: no certificate given: using an ephemeral self-signed one\n"
                            "sdpcat: clients connect with --pin %s\n", fp);
    }
    return 0;
}

static int read_secret(const char *path, uint8_t out[SDP_SECRET_LEN])
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "sdpcat: cannot open secret file %s: %s\n", path, strerror(errno));
        return -1;
    }
    char hex[2 * SDP_SECRET_LEN + 2];
    size_t n = fread(hex, 1, sizeof(hex), f);
    fclose(f);
    while (n > 0 && (hex[n - 1] == '\n' || hex[n - 1] == '\r' || hex[n - 1] == ' '))
        n--;
    int ok = n == 2 * SDP_SECRET_LEN;
    for (size_t i = 0; ok && i < SDP_SECRET_LEN; i++) {
        unsigned v;
        char pair[3] = {hex[2 * i], hex[2 * i + 1], 0};
        char *end;
        v = (unsigned)strtoul(pair, &end, 16);
        ok = *end == 0 && pair[0] && pair[1];
        out[i] = (uint8_t)v;
    }
    sdp_keymem_wipe(hex, sizeof(hex));
    if (!ok)
        fprintf(stderr, "sdpcat: %s must hold exactly 64 hex digits (32 bytes)\n", path);
    return ok ? 0 : -1;
}

/* Both directions' default secrets from the shared one: client-to-server
 * and server-to-client get different labels. */
static int install_keys(sdp_socket *s, const uint8_t *master, int is_server)
{
    uint8_t *k = sdp_keymem_alloc(2 * SDP_SECRET_LEN);
    if (!k)
        return SDP_ENOMEM;
    uint8_t *c2s = k, *s2c = k + SDP_SECRET_LEN;
    int rc = sdp_hkdf_expand_label("SHA256", master, SDP_SECRET_LEN, "sdpcat c2s", NULL, 0, c2s, SDP_SECRET_LEN);
    if (rc == 0)
        rc = sdp_hkdf_expand_label("SHA256", master, SDP_SECRET_LEN, "sdpcat s2c", NULL, 0, s2c, SDP_SECRET_LEN);
    if (rc == 0)
        rc = is_server ? sdp_set_default_keys(s, SDP_CIPHER_AES128GCM, s2c, c2s)
                       : sdp_set_default_keys(s, SDP_CIPHER_AES128GCM, c2s, s2c);
    sdp_keymem_free(k);
    return rc;
}

static const char *addr_str(const struct sockaddr_storage *a, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN + 2], port[8];
    if (getnameinfo((const struct sockaddr *)a, sizeof(*a), host, sizeof(host), port, sizeof(port),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
        return "?";
    snprintf(buf, len, a->ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
    return buf;
}

static void print_stats(sdp_socket *s)
{
    struct sdp_stats st;
    if (sdp_get_stats(s, &st) != 0)
        return;
    fprintf(stderr,
            "{\"pkts_in\":%llu,\"pkts_out\":%llu,\"bytes_in\":%llu,\"bytes_out\":%llu,\"gso_sends\":%llu,"
            "\"requests_sent\":%llu,\"responses_sent\":%llu,\"requests_received\":%llu,"
            "\"responses_received\":%llu,\"rpcs_failed\":%llu,\"timeouts\":%llu,\"retransmitted_pkts\":%llu,"
            "\"grants_sent\":%llu,\"resends_sent\":%llu,\"drops_total\":%llu,\"drops_malformed\":%llu,"
            "\"drops_auth\":%llu,\"drops_replay\":%llu,\"drops_no_peer\":%llu,\"drops_limit\":%llu,"
            "\"records_sealed\":%llu,\"records_opened\":%llu}\n",
            (unsigned long long)st.pkts_in, (unsigned long long)st.pkts_out, (unsigned long long)st.bytes_in,
            (unsigned long long)st.bytes_out, (unsigned long long)st.gso_sends,
            (unsigned long long)st.requests_sent, (unsigned long long)st.responses_sent,
            (unsigned long long)st.requests_received, (unsigned long long)st.responses_received,
            (unsigned long long)st.rpcs_failed, (unsigned long long)st.timeouts,
            (unsigned long long)st.retransmitted_pkts, (unsigned long long)st.grants_sent,
            (unsigned long long)st.resends_sent, (unsigned long long)st.drops_total,
            (unsigned long long)st.drops_malformed, (unsigned long long)st.drops_auth,
            (unsigned long long)st.drops_replay, (unsigned long long)st.drops_no_peer,
            (unsigned long long)st.drops_limit, (unsigned long long)st.records_sealed,
            (unsigned long long)st.records_opened);
}

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int serve(sdp_socket *s, const struct opts *o)
{
    long served = 0;
    while (!stop_flag && (o->count <= 0 || served < o->count)) {
        struct sdp_msg m;
        int rc = sdp_recv(s, &m, 200);
        if (rc == SDP_EAGAIN)
            continue;
        if (rc != 0) {
            fprintf(stderr, "sdpcat: receive failed: %s\n", sdp_strerror(rc));
            return EXIT_FAIL;
        }
        if (m.kind != SDP_MSG_REQUEST) {
            sdp_release(s, &m);
            continue;
        }
        char ab[80];
        if (o->verbose)
            fprintf(stderr, "sdpcat: request id %llu size %zu from %s\n", (unsigned long long)m.rpc_id, m.len,
                    addr_str(&m.peer, ab, sizeof(ab)));
        if (!o->echo && write_all(STDOUT_FILENO, m.data, m.len) != 0) {
            fprintf(stderr, "sdpcat: writing stdout: %s\n", strerror(errno));
            sdp_release(s, &m);
            return EXIT_FAIL;
        }
        rc = sdp_reply(s, &m, o->echo ? m.data : NULL, o->echo ? m.len : 0);
        if (rc != 0)
            fprintf(stderr, "sdpcat: reply to id %llu failed: %s\n", (unsigned long long)m.rpc_id, sdp_strerror(rc));
        sdp_release(s, &m);
        served++;
    }
    /* Responses still in flight (ungranted bytes, unacknowledged RPCs) go
     * out before we leave; bounded, in case the client vanished. */
    for (int i = 0; i < 100 && !stop_flag; i++) {
        struct sdp_stats st;
        struct sdp_msg m;
        if (sdp_get_stats(s, &st) != 0 || st.rpcs_active == 0)
            break;
        if (sdp_recv(s, &m, 50) == 0)
            sdp_release(s, &m);
    }
    return 0;
}

static uint8_t *read_stdin(size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        if (n == cap) {
            uint8_t *nb = cap < (1u << 30) ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                free(buf);
                return NULL;
            }
            buf = nb;
            cap *= 2;
        }
        ssize_t r = read(STDIN_FILENO, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            free(buf);
            return NULL;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *len = n;
    return buf;
}

static int client(sdp_socket *s, const struct sockaddr_storage *peer, socklen_t peer_len, const struct opts *o)
{
    size_t len;
    uint8_t *buf = read_stdin(&len);
    if (!buf) {
        fprintf(stderr, "sdpcat: reading stdin: %s\n", strerror(errno ? errno : ENOMEM));
        return EXIT_FAIL;
    }
    uint64_t id;
    int rc = sdp_send(s, (const struct sockaddr *)peer, peer_len, buf, len, 1, &id);
    free(buf);
    if (rc != 0) {
        fprintf(stderr, "sdpcat: send failed: %s\n", sdp_strerror(rc));
        return EXIT_FAIL;
    }
    char ab[80];
    if (o->verbose)
        fprintf(stderr, "sdpcat: request id %llu size %zu to %s\n", (unsigned long long)id, len,
                addr_str(peer, ab, sizeof(ab)));
    long left = o->timeout_ms;
    while (!stop_flag && left > 0) {
        struct sdp_msg m;
        rc = sdp_recv(s, &m, left < 200 ? (int)left : 200);
        left -= 200;
        if (rc == SDP_EAGAIN)
            continue;
        if (rc != 0)
            break;
        if (m.rpc_id != id) {
            sdp_release(s, &m);
            continue;
        }
        if (m.kind == SDP_MSG_FAILED) {
            fprintf(stderr, "sdpcat: request failed: %s\n", sdp_strerror(m.error));
            return EXIT_FAIL;
        }
        if (o->verbose)
            fprintf(stderr, "sdpcat: response id %llu size %zu from %s\n", (unsigned long long)m.rpc_id, m.len,
                    addr_str(&m.peer, ab, sizeof(ab)));
        int w = write_all(STDOUT_FILENO, m.data, m.len);
        sdp_release(s, &m);
        if (w != 0) {
            fprintf(stderr, "sdpcat: writing stdout: %s\n", strerror(errno));
            return EXIT_FAIL;
        }
        return 0;
    }
    fprintf(stderr, "sdpcat: no response within %ld ms\n", o->timeout_ms);
    return EXIT_FAIL;
}

/* The local address the kernel would use towards peer: the key derivation
 * binds it, so the client binds to it explicitly (with port 0). */
static int local_for(const struct sockaddr_storage *peer, socklen_t peer_len, struct sockaddr_storage *out,
                     socklen_t *out_len)
{
    int fd = socket(peer->ss_family, SOCK_DGRAM, 0);
    if (fd < 0)
        return -1;
    *out_len = sizeof(*out);
    int rc = connect(fd, (const struct sockaddr *)peer, peer_len) == 0 &&
                     getsockname(fd, (struct sockaddr *)out, out_len) == 0
                 ? 0
                 : -1;
    close(fd);
    if (rc == 0) {
        if (out->ss_family == AF_INET)
            ((struct sockaddr_in *)out)->sin_port = 0;
        else
            ((struct sockaddr_in6 *)out)->sin6_port = 0;
    }
    return rc;
}

int main(int argc, char **argv)
{
    struct opts o = {.timeout_ms = 10000};
    static const struct option lo[] = {
        {"listen", no_argument, 0, 'l'},         {"echo", no_argument, 0, 'e'},
        {"secret-file", required_argument, 0, 's'}, {"count", required_argument, 0, 'c'},
        {"timeout", required_argument, 0, 't'},  {"engines", required_argument, 0, 'n'},
        {"stats", no_argument, 0, 'S'},          {"help", no_argument, 0, 'h'},
        {"mtu", required_argument, 0, 'm'},      {"cert", required_argument, 0, 'C'},
        {"key", required_argument, 0, 'K'},      {"ca", required_argument, 0, 'A'},
        {"psk", required_argument, 0, 'P'},      {"psk-identity", required_argument, 0, 'I'},
        {"pin", required_argument, 0, 'p'},      {"insecure", no_argument, 0, 'i'},
        {"name", required_argument, 0, 'N'},     {"verify-clients", no_argument, 0, 'V'},
        {"early-data", no_argument, 0, 'E'},     {"kernel-crypto", required_argument, 0, 'k'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "lvh", lo, NULL)) != -1) {
        switch (c) {
        case 'l': o.listen = 1; break;
        case 'e': o.echo = 1; break;
        case 's': o.secret_file = optarg; break;
        case 'c': o.count = strtol(optarg, NULL, 10); break;
        case 't': o.timeout_ms = strtol(optarg, NULL, 10); break;
        case 'n': o.engines = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'S': o.stats = 1; break;
        case 'm': o.mtu = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'k':
            if (strcmp(optarg, "require") == 0)
                o.kernel_crypto = SDP_KERNEL_CRYPTO_REQUIRE;
            else if (strcmp(optarg, "prefer") == 0)
                o.kernel_crypto = SDP_KERNEL_CRYPTO_PREFER;
            else {
                usage(stderr);
                return EXIT_USAGE;
            }
            break;
        case 'v': o.verbose = 1; break;
        case 'C': o.cert = optarg; break;
        case 'K': o.key = optarg; break;
        case 'A': o.ca = optarg; break;
        case 'P': o.psk_file = optarg; break;
        case 'I': o.psk_identity = optarg; break;
        case 'p': o.pin = optarg; break;
        case 'i': o.insecure = 1; break;
        case 'N': o.name = optarg; break;
        case 'V': o.verify_clients = 1; break;
        case 'E': o.early_data = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || o.timeout_ms <= 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    o.addr = argv[optind];
    if (o.secret_file && (o.cert || o.ca || o.psk_file || o.pin || o.insecure)) {
        fprintf(stderr, "sdpcat: --secret-file replaces the handshake: do not combine it with TLS options\n");
        return EXIT_USAGE;
    }
    struct sockaddr_storage addr, local;
    socklen_t addr_len, local_len;
    if (parse_hostport(o.addr, &addr, &addr_len) != 0) {
        fprintf(stderr, "sdpcat: cannot parse '%s' (want HOST:PORT or [V6]:PORT)\n", o.addr);
        return EXIT_USAGE;
    }
    if (sdp_keymem_init() != 0)
        return EXIT_FAIL;
    uint8_t *master = NULL;
    if (o.secret_file) {
        master = sdp_keymem_alloc(SDP_SECRET_LEN);
        if (!master || read_secret(o.secret_file, master) != 0) {
            sdp_keymem_free(master);
            return EXIT_USAGE;
        }
    }
    if (o.listen) {
        local = addr;
        local_len = addr_len;
    } else if (local_for(&addr, addr_len, &local, &local_len) != 0) {
        fprintf(stderr, "sdpcat: no route to %s: %s\n", o.addr, strerror(errno));
        sdp_keymem_free(master);
        return EXIT_FAIL;
    }
    struct sdp_config cfg;
    sdp_config_default(&cfg);
    cfg.engines = o.engines;
    if (o.mtu)
        cfg.mtu = o.mtu;
    cfg.kernel_crypto = (enum sdp_kernel_crypto)o.kernel_crypto;
    sdp_socket *s;
    int rc = sdp_open((struct sockaddr *)&local, local_len, &cfg, &s);
    if (rc != 0) {
        fprintf(stderr, "sdpcat: cannot open %s: %s%s%s\n", o.listen ? o.addr : "a local socket", sdp_strerror(rc),
                rc == SDP_ESYSTEM ? ": " : "", rc == SDP_ESYSTEM ? strerror(errno) : "");
        sdp_keymem_free(master);
        return EXIT_FAIL;
    }
    if (!master) {
        rc = setup_tls(s, &o);
        if (rc != 0) {
            sdp_close(s);
            return rc;
        }
    }
    rc = master ? install_keys(s, master, o.listen) : 0;
    sdp_keymem_free(master);
    if (rc != 0) {
        fprintf(stderr, "sdpcat: cannot install keys: %s%s\n", sdp_strerror(rc),
                rc == SDP_EINVAL && o.listen ? " (--listen needs a specific address, not a wildcard)" : "");
        sdp_close(s);
        return EXIT_FAIL;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    if (o.listen && o.verbose) {
        struct sockaddr_storage la;
        socklen_t ll;
        char ab[80];
        sdp_local_addr(s, &la, &ll);
        fprintf(stderr, "sdpcat: listening on %s\n", addr_str(&la, ab, sizeof(ab)));
    }
    int status = o.listen ? serve(s, &o) : client(s, &addr, addr_len, &o);
    if (o.stats)
        print_stats(s);
    if (o.stats && o.kernel_crypto) {
        struct sdp_aead_kshim_counters k;
        sdp_aead_kshim_counters(&k);
        fprintf(stderr, "{\"kshim_tx_sends\":%llu,\"kshim_rx_batches\":%llu,\"kshim_rx_records\":%llu,"
                        "\"kshim_rx_hits\":%llu,\"kshim_rx_misses\":%llu}\n",
                (unsigned long long)k.tx_sends, (unsigned long long)k.rx_batches,
                (unsigned long long)k.rx_records, (unsigned long long)k.rx_hits, (unsigned long long)k.rx_misses);
    }
    sdp_close(s);
    return status;
}
