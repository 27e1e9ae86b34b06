/* libFuzzer target for the handshake protocol: arbitrary datagrams go into
 * a server and into a client that has an attempt under way, interleaved
 * with the genuine client's and server's own datagrams, which the input may
 * drop, repeat or alter.  Checked: no crash (sanitizers), state within the
 * configured bounds, no stateless reply larger than three times what caused
 * it, and every attempt gone once the timers have run out. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keymem.h"
#include "handshake/hs.h"
#include "handshake/tls.h"
#include "sdp/sdp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x)                                                                                                   \
    do {                                                                                                           \
        if (!(x))                                                                                                  \
            __builtin_trap();                                                                                      \
    } while (0)

static struct sdp_tls_ctx *srv_tls, *cli_tls;

static void mkaddr(struct sdp_core_addr *a, uint16_t port)
{
    struct sockaddr_in in = {.sin_family = AF_INET, .sin_port = htons(port)};
    in.sin_addr.s_addr = htonl(0x7f000001);
    memset(a, 0, sizeof(*a));
    memcpy(a->bytes, &in, sizeof(in));
    a->len = sizeof(in);
}

static void init_once(void)
{
    if (srv_tls)
        return;
    CHECK(sdp_keymem_init() == 0);
    struct sdp_tls_config s = {.ephemeral_cert = 1, .cipher = SDP_CIPHER_AES128GCM};
    CHECK(sdp_tls_ctx_new(&s, &srv_tls) == 0);
    struct sdp_tls_config c = {.have_pin = 1, .cipher = SDP_CIPHER_AES128GCM};
    CHECK(sdp_tls_ctx_fingerprint(srv_tls, c.pin) == 0);
    CHECK(sdp_tls_ctx_new(&c, &cli_tls) == 0);
}

static struct sdp_hs *mk(struct sdp_tls_ctx *t, int client, int server)
{
    struct sdp_hs_config hc;
    sdp_hs_config_default(&hc);
    hc.tls = t;
    hc.client = client;
    hc.server = server;
    hc.max_attempts = 8;
    struct sdp_hs *hs;
    CHECK(sdp_hs_new(&hc, &hs) == 0);
    return hs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    struct sdp_hs *sv = mk(srv_tls, 0, 1), *cl = mk(cli_tls, 1, 0);
    struct sdp_hs_event *ev = sdp_keymem_alloc(sizeof(*ev));
    CHECK(ev != NULL);
    struct sdp_core_addr a_cl, a_sv, a_x;
    mkaddr(&a_cl, 1000);
    mkaddr(&a_sv, 2000);
    mkaddr(&a_x, 3000);
    uint64_t now = 1000000000ull;
    CHECK(sdp_hs_connect(cl, &a_sv, NULL, now) == 0);
    uint8_t buf[SDP_HS_DGRAM_MAX];
    size_t pos = 0;
    while (pos + 3 <= size) {
        uint8_t op = data[pos];
        size_t len = (size_t)data[pos + 1] << 8 | data[pos + 2];
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        const uint8_t *p = data + pos;
        pos += len;
        struct sdp_core_addr to;
        size_t n;
        switch (op & 7) {
        case 0: sdp_hs_input(sv, op & 8 ? &a_x : &a_cl, p, len, now); break;
        case 1: sdp_hs_input(cl, &a_sv, p, len, now); break;
        case 2: /* genuine client datagram, maybe altered at a chosen byte */
            n = sdp_hs_output(cl, now, buf, sizeof(buf), &to);
            if (n && len >= 2 && (op & 8))
                buf[((size_t)p[0] << 8 | p[1]) % n] ^= len > 2 ? p[2] : 1;
            if (n)
                sdp_hs_input(sv, &a_cl, buf, n, now);
            break;
        case 3: /* genuine server datagram, maybe altered */
            n = sdp_hs_output(sv, now, buf, sizeof(buf), &to);
            if (n && len >= 2 && (op & 8))
                buf[((size_t)p[0] << 8 | p[1]) % n] ^= len > 2 ? p[2] : 1;
            if (n && (op & 16))
                CHECK(n <= SDP_HS_DGRAM_MAX);
            if (n)
                sdp_hs_input(cl, &a_sv, buf, n, now);
            break;
        case 4: sdp_hs_no_session(sv, &a_x, len, now); break;
        case 5: now += (uint64_t)len * 1000000; break;
        default: /* drop one datagram of either side */
            sdp_hs_output(op & 8 ? sv : cl, now, buf, sizeof(buf), &to);
            break;
        }
        if (sdp_hs_next_expiry(sv) <= now)
            sdp_hs_handle_expiry(sv, now);
        if (sdp_hs_next_expiry(cl) <= now)
            sdp_hs_handle_expiry(cl, now);
        while (sdp_hs_next_event(sv, ev))
            sdp_hs_release(sv, &ev->addr);
        while (sdp_hs_next_event(cl, ev))
            ;
        struct sdp_hs_stats st;
        sdp_hs_get_stats(sv, &st);
        CHECK(st.attempts <= 8);
    }
    /* Let every timer run out: nothing may stay. */
    for (int i = 0; i < 64; i++) {
        struct sdp_core_addr to;
        while (sdp_hs_output(sv, now, buf, sizeof(buf), &to) || sdp_hs_output(cl, now, buf, sizeof(buf), &to))
            ;
        now += 500000000ull;
        sdp_hs_handle_expiry(sv, now);
        sdp_hs_handle_expiry(cl, now);
        while (sdp_hs_next_event(sv, ev) || sdp_hs_next_event(cl, ev))
            ;
    }
    struct sdp_hs_stats s1, s2;
    sdp_hs_get_stats(sv, &s1);
    sdp_hs_get_stats(cl, &s2);
    CHECK(s1.attempts == 0 && s2.attempts == 0);
    sdp_keymem_free(ev);
    sdp_hs_free(sv);
    sdp_hs_free(cl);
    return 0;
}
