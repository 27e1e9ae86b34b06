/* TLS over memory buffers (src/handshake/tls.c): a client and a server
 * sdp_tls pumped against each other in one process.  Every certificate is
 * made here with the OpenSSL API, in a fresh temporary directory per test. */
#include <criterion/criterion.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handshake/tls.h"

/* ------------------------------------------------------------------ */
/* Certificates                                                         */
/* ------------------------------------------------------------------ */

static char dir[64];

static const char *path(const char *name)
{
    static char bufs[32][192];
    static int next;
    char *b = bufs[next++ % 32];
    snprintf(b, sizeof bufs[0], "%s/%s", dir, name);
    return b;
}

static void add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
    X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    cr_assert_not_null(e, "extension %s", value);
    cr_assert(X509_add_ext(x, e, -1));
    X509_EXTENSION_free(e);
}

/* A certificate for key, signed by ikey (self-signed when issuer is
 * NULL), valid from now + from_s to now + to_s. */
static X509 *mkcert(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *ikey, long from_s, long to_s,
                    int ca, const char *san)
{
    static long serial = 1;
    X509 *x = X509_new();
    cr_assert(X509_set_version(x, X509_VERSION_3));
    cr_assert(ASN1_INTEGER_set(X509_get_serialNumber(x), serial++));
    cr_assert(X509_gmtime_adj(X509_getm_notBefore(x), from_s));
    cr_assert(X509_gmtime_adj(X509_getm_notAfter(x), to_s));
    X509_NAME *n = X509_get_subject_name(x);
    cr_assert(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0));
    cr_assert(X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n));
    cr_assert(X509_set_pubkey(x, key));
    add_ext(x, issuer ? issuer : x, NID_basic_constraints, ca ? "critical,CA:TRUE" : "CA:FALSE");
    if (ca)
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    if (san)
        add_ext(x, issuer ? issuer : x, NID_subject_alt_name, san);
    cr_assert(X509_sign(x, issuer ? ikey : key, EVP_sha256()) > 0);
    return x;
}

static void save(const char *name, X509 *x, EVP_PKEY *k)
{
    char f[64];
    snprintf(f, sizeof f, "%s.pem", name);
    FILE *fp = fopen(path(f), "w");
    cr_assert_not_null(fp);
    cr_assert(PEM_write_X509(fp, x));
    fclose(fp);
    if (k == NULL)
        return;
    snprintf(f, sizeof f, "%s.key", name);
    fp = fopen(path(f), "w");
    cr_assert_not_null(fp);
    cr_assert(PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL));
    fclose(fp);
}

#define SAN "DNS:sdp.test,DNS:*.pool.sdp.test,IP:127.0.0.1,IP:::1"

static void make_pki(void)
{
    snprintf(dir, sizeof dir, "/tmp/sdp-tls-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    EVP_PKEY *cak = EVP_EC_gen("P-256"), *ca2k = EVP_EC_gen("P-256");
    X509 *ca = mkcert(cak, "sdp test CA", NULL, NULL, -3600, 86400 * 30, 1, NULL);
    X509 *ca2 = mkcert(ca2k, "another CA", NULL, NULL, -3600, 86400 * 30, 1, NULL);
    save("ca", ca, NULL);
    save("ca2", ca2, NULL);
    struct {
        const char *name, *cn, *san;
        int other_ca;
        long from, to;
    } leaves[] = {
        {"server", "sdp-server", SAN, 0, -3600, 86400},
        {"expired", "sdp-server", SAN, 0, -86400 * 10, -86400},
        {"future", "sdp-server", SAN, 0, 86400, 86400 * 10},
        {"other", "sdp-server", SAN, 1, -3600, 86400},
        {"client", "sdp-client", "DNS:client.sdp.test", 0, -3600, 86400},
        {"client2", "sdp-client", "DNS:client.sdp.test", 1, -3600, 86400},
        {"nocn", "", "DNS:nocn.sdp.test", 0, -3600, 86400},
    };
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        EVP_PKEY *k = EVP_EC_gen("P-256");
        X509 *x;
        if (leaves[i].cn[0] == '\0') {
            /* No subject CN: the identity falls back to the first SAN. */
            x = mkcert(k, "x", ca, cak, leaves[i].from, leaves[i].to, 0, leaves[i].san);
            X509_NAME *n = X509_NAME_new();
            cr_assert(X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"sdp", -1,
                                                 -1, 0));
            cr_assert(X509_set_subject_name(x, n));
            X509_NAME_free(n);
            cr_assert(X509_sign(x, cak, EVP_sha256()) > 0);
        } else {
            x = mkcert(k, leaves[i].cn, leaves[i].other_ca ? ca2 : ca, leaves[i].other_ca ? ca2k : cak,
                       leaves[i].from, leaves[i].to, 0, leaves[i].san);
        }
        save(leaves[i].name, x, k);
        X509_free(x);
        EVP_PKEY_free(k);
    }
    X509_free(ca);
    X509_free(ca2);
    EVP_PKEY_free(cak);
    EVP_PKEY_free(ca2k);
}

static void remove_pki(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(tls, .init = make_pki, .fini = remove_pki, .timeout = 60);

/* ------------------------------------------------------------------ */
/* Driving two sides                                                    */
/* ------------------------------------------------------------------ */

static const uint8_t psk_a[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t psk_b[32] = "0123456789abcdef0123456789abcdeX";

static struct sdp_tls_config server_cfg(const char *leaf)
{
    char cert[64], key[64];
    struct sdp_tls_config c = {0};
    snprintf(cert, sizeof cert, "%s.pem", leaf);
    snprintf(key, sizeof key, "%s.key", leaf);
    c.cert_file = path(cert);
    c.key_file = path(key);
    return c;
}

static struct sdp_tls_config client_cfg(void)
{
    struct sdp_tls_config c = {0};
    c.ca_file = path("ca.pem");
    return c;
}

static struct sdp_tls_ctx *mkctx(const struct sdp_tls_config *cfg)
{
    struct sdp_tls_ctx *c = NULL;
    int rc = sdp_tls_ctx_new(cfg, &c);
    cr_assert_eq(rc, 0, "ctx: %d %s", rc, sdp_tls_ctx_last_error());
    return c;
}

static struct sdp_tls *mk(struct sdp_tls_ctx *c, enum sdp_tls_role role, const char *name,
                          const char *tkey)
{
    struct sdp_tls *t = NULL;
    int rc = sdp_tls_new(c, role, name, tkey, tkey ? strlen(tkey) : 0, &t);
    cr_assert_eq(rc, 0, "sdp_tls_new: %d", rc);
    return t;
}

/* Move everything one side has for the other; returns the byte count.
 * A hook may corrupt a flight on its way (dir 0: client to server). */
typedef void (*hook_fn)(int dir, int flight, uint8_t *buf, size_t *len, void *arg);

static size_t move(struct sdp_tls *from, struct sdp_tls *to, int d, int flight, hook_fn hook, void *arg)
{
    uint8_t buf[65536];
    size_t n = 0, k;
    while (n < sizeof buf && (k = sdp_tls_output(from, buf + n, sizeof buf - n)) > 0)
        n += k;
    if (n > 0 && hook)
        hook(d, flight, buf, &n, arg);
    if (n > 0)
        sdp_tls_input(to, buf, n);
    return n;
}

/* Pump until neither side has anything to say (bounded): alerts and
 * tickets after done are delivered too. */
static void pump_hook(struct sdp_tls *c, struct sdp_tls *s, hook_fn hook, void *arg)
{
    for (int round = 0; round < 32; round++) {
        size_t a = move(c, s, 0, round, hook, arg);
        size_t b = move(s, c, 1, round, hook, arg);
        if (a == 0 && b == 0)
            return;
    }
    cr_assert_fail("handshake did not settle in 32 rounds");
}

static void pump(struct sdp_tls *c, struct sdp_tls *s)
{
    pump_hook(c, s, NULL, NULL);
}

static void expect_ok(struct sdp_tls *c, struct sdp_tls *s)
{
    cr_assert(sdp_tls_done(c), "client: %d %s", sdp_tls_error(c), sdp_tls_last_error(c));
    cr_assert(sdp_tls_done(s), "server: %d %s", sdp_tls_error(s), sdp_tls_last_error(s));
    cr_assert_eq(sdp_tls_error(c), 0);
    cr_assert_eq(sdp_tls_error(s), 0);
}

/* Both sides export; the secrets must mirror each other.  Returns the suite. */
static enum sdp_cipher expect_keys(struct sdp_tls *c, struct sdp_tls *s, uint8_t ctx_out[32])
{
    uint8_t ctx[32], crx[32], stx[32], srx[32];
    enum sdp_cipher cs = 0, ss = 0;
    cr_assert_eq(sdp_tls_export(c, &cs, ctx, crx), 0);
    cr_assert_eq(sdp_tls_export(s, &ss, stx, srx), 0);
    cr_assert_eq(cs, ss);
    cr_assert(memcmp(ctx, srx, 32) == 0, "client tx != server rx");
    cr_assert(memcmp(crx, stx, 32) == 0, "client rx != server tx");
    cr_assert(memcmp(ctx, crx, 32) != 0, "directions share a secret");
    if (ctx_out)
        memcpy(ctx_out, ctx, 32);
    return cs;
}

static void expect_fail(struct sdp_tls *c, int cerr, struct sdp_tls *s, int serr)
{
    cr_assert_eq(sdp_tls_error(c), cerr, "client error %d (%s), want %d", sdp_tls_error(c),
                 sdp_tls_last_error(c), cerr);
    cr_assert_eq(sdp_tls_error(s), serr, "server error %d (%s), want %d", sdp_tls_error(s),
                 sdp_tls_last_error(s), serr);
    cr_assert(!sdp_tls_done(c) && !sdp_tls_done(s));
    cr_assert_neq(sdp_tls_last_error(c)[0], '\0');
    cr_assert_neq(sdp_tls_last_error(s)[0], '\0');
    uint8_t a[32], b[32];
    enum sdp_cipher su;
    cr_assert_eq(sdp_tls_export(c, &su, a, b), cerr);
    cr_assert_eq(sdp_tls_export(s, &su, a, b), serr);
}

/* One whole handshake between fresh sessions of two contexts. */
static void run(struct sdp_tls_ctx *cc, struct sdp_tls_ctx *sc, const char *name, struct sdp_tls **c,
                struct sdp_tls **s)
{
    *c = mk(cc, SDP_TLS_CLIENT, name, NULL);
    *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
    pump(*c, *s);
}

/* A failing pairing: exact codes on both sides. */
static void fails(const struct sdp_tls_config *ccfg, const struct sdp_tls_config *scfg, const char *name,
                  int cerr, int serr)
{
    struct sdp_tls_ctx *cc = mkctx(ccfg), *sc = mkctx(scfg);
    struct sdp_tls *c, *s;
    run(cc, sc, name, &c, &s);
    expect_fail(c, cerr, s, serr);
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

/* ------------------------------------------------------------------ */
/* Success                                                              */
/* ------------------------------------------------------------------ */

Test(tls, ca_and_dns_name)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = server_cfg("server");
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    const char *names[] = {"sdp.test", "a.pool.sdp.test"};
    for (int i = 0; i < 2; i++) {
        struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, names[i], NULL);
        struct sdp_tls *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
        uint8_t a[32], b[32];
        enum sdp_cipher su;
        cr_assert_eq(sdp_tls_export(c, &su, a, b), SDP_EAGAIN);
        cr_assert_eq(sdp_tls_done(c), 0);
        cr_assert_eq(sdp_tls_confirmed(c), 0);
        pump(c, s);
        expect_ok(c, s);
        cr_assert(sdp_tls_confirmed(c) && sdp_tls_confirmed(s));
        cr_assert_eq(expect_keys(c, s, NULL), SDP_CIPHER_AES128GCM);
        cr_assert_str_eq(sdp_tls_peer_identity(c), "sdp-server");
        cr_assert_str_eq(sdp_tls_peer_identity(s), ""); /* clients not verified */
        cr_assert_eq(sdp_tls_early_accepted(c), 0);
        cr_assert_eq(sdp_tls_early_export(c, &su, a), SDP_EUNAVAIL);
        sdp_tls_free(c);
        sdp_tls_free(s);
    }
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, ip_san)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = server_cfg("server");
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    const char *ips[] = {"127.0.0.1", "::1"};
    for (int i = 0; i < 2; i++) {
        struct sdp_tls *c, *s;
        run(cc, sc, ips[i], &c, &s);
        expect_ok(c, s);
        expect_keys(c, s, NULL);
        sdp_tls_free(c);
        sdp_tls_free(s);
    }
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, no_name_check_when_peer_name_null)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = server_cfg("server");
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    struct sdp_tls *c, *s;
    run(cc, sc, NULL, &c, &s);
    expect_ok(c, s);
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, mutual_tls)
{
    struct sdp_tls_config ccfg = server_cfg("client"), scfg = server_cfg("server");
    ccfg.ca_file = path("ca.pem");
    scfg.ca_file = path("ca.pem");
    scfg.verify_clients = 1;
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", NULL), *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
    move(c, s, 0, 0, NULL, NULL);
    move(s, c, 1, 0, NULL, NULL);
    cr_assert(sdp_tls_done(c) && !sdp_tls_confirmed(c), "done, but the server has yet to judge us");
    pump(c, s);
    expect_ok(c, s);
    cr_assert(sdp_tls_confirmed(c));
    expect_keys(c, s, NULL);
    cr_assert_str_eq(sdp_tls_peer_identity(s), "sdp-client");
    cr_assert_str_eq(sdp_tls_peer_identity(c), "sdp-server");
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, identity_falls_back_to_san)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = server_cfg("nocn");
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    struct sdp_tls *c, *s;
    run(cc, sc, "nocn.sdp.test", &c, &s);
    expect_ok(c, s);
    cr_assert_str_eq(sdp_tls_peer_identity(c), "nocn.sdp.test");
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

static struct sdp_tls_config psk_cfg(const uint8_t *key, const char *id)
{
    struct sdp_tls_config c = {0};
    c.psk = key;
    c.psk_len = 32;
    c.psk_identity = id;
    return c;
}

Test(tls, psk_only_both_sides)
{
    /* The server has no certificate at all. */
    struct sdp_tls_config ccfg = psk_cfg(psk_a, "node-1"), scfg = psk_cfg(psk_a, "node-1");
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    uint8_t fp[32];
    cr_assert_eq(sdp_tls_ctx_fingerprint(sc, fp), SDP_EINVAL);
    struct sdp_tls *c, *s;
    run(cc, sc, NULL, &c, &s);
    expect_ok(c, s);
    expect_keys(c, s, NULL);
    cr_assert_str_eq(sdp_tls_peer_identity(c), "node-1");
    cr_assert_str_eq(sdp_tls_peer_identity(s), "node-1");
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, psk_with_certificate_server)
{
    /* A server with both serves PSK clients by PSK and others by certificate. */
    struct sdp_tls_config pcfg = psk_cfg(psk_a, "node-1"), ccfg = client_cfg(), scfg = server_cfg("server");
    scfg.psk = psk_a;
    scfg.psk_len = 32;
    scfg.psk_identity = "node-1";
    struct sdp_tls_ctx *pc = mkctx(&pcfg), *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    struct sdp_tls *c, *s;
    run(pc, sc, NULL, &c, &s);
    expect_ok(c, s);
    cr_assert_str_eq(sdp_tls_peer_identity(s), "node-1");
    sdp_tls_free(c);
    sdp_tls_free(s);
    run(cc, sc, "sdp.test", &c, &s);
    expect_ok(c, s);
    cr_assert_str_eq(sdp_tls_peer_identity(c), "sdp-server");
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(pc);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, pin_ephemeral)
{
    struct sdp_tls_config scfg = {0}, ccfg = {0};
    scfg.ephemeral_cert = 1;
    struct sdp_tls_ctx *sc = mkctx(&scfg);
    cr_assert_eq(sdp_tls_ctx_fingerprint(sc, ccfg.pin), 0);
    ccfg.have_pin = 1;
    struct sdp_tls_ctx *cc = mkctx(&ccfg);
    struct sdp_tls *c, *s;
    run(cc, sc, NULL, &c, &s);
    expect_ok(c, s);
    expect_keys(c, s, NULL);
    cr_assert_str_eq(sdp_tls_peer_identity(c), "sdp-ephemeral");
    sdp_tls_free(c);
    sdp_tls_free(s);
    /* A second ephemeral ctx has another key and certificate. */
    struct sdp_tls_ctx *sc2 = mkctx(&scfg);
    uint8_t fp2[32];
    cr_assert_eq(sdp_tls_ctx_fingerprint(sc2, fp2), 0);
    cr_assert(memcmp(fp2, ccfg.pin, 32) != 0);
    sdp_tls_ctx_free(sc2);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, pin_of_ca_signed_cert)
{
    struct sdp_tls_config scfg = server_cfg("expired"), ccfg = {0};
    struct sdp_tls_ctx *sc = mkctx(&scfg);
    cr_assert_eq(sdp_tls_ctx_fingerprint(sc, ccfg.pin), 0);
    ccfg.have_pin = 1;
    struct sdp_tls_ctx *cc = mkctx(&ccfg);
    struct sdp_tls *c, *s;
    /* A pin names exactly one certificate: validity and names do not matter. */
    run(cc, sc, "wrong.name", &c, &s);
    expect_ok(c, s);
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, insecure_accepts_anything)
{
    struct sdp_tls_config scfg = server_cfg("expired"), ccfg = {0};
    ccfg.insecure = 1;
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    struct sdp_tls *c, *s;
    run(cc, sc, "wrong.name", &c, &s);
    expect_ok(c, s);
    cr_assert_str_eq(sdp_tls_peer_identity(c), "");
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, each_suite_and_fresh_secrets)
{
    const enum sdp_cipher all[] = {SDP_CIPHER_AES128GCM, SDP_CIPHER_AES256GCM, SDP_CIPHER_CHACHA20POLY1305};
    uint8_t seen[6][32];
    int nseen = 0;
    for (int i = 0; i < 3; i++) {
        for (int psk = 0; psk < 2; psk++) {
            struct sdp_tls_config ccfg = psk ? psk_cfg(psk_a, "node-1") : client_cfg();
            struct sdp_tls_config scfg = psk ? psk_cfg(psk_a, "node-1") : server_cfg("server");
            ccfg.cipher = all[i];
            /* The server's own preference does not override the client's. */
            scfg.cipher = all[(i + 1) % 3];
            struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
            struct sdp_tls *c, *s;
            run(cc, sc, psk ? NULL : "sdp.test", &c, &s);
            expect_ok(c, s);
            cr_assert_eq(expect_keys(c, s, seen[nseen]), all[i], "suite %d psk %d", i, psk);
            for (int j = 0; j < nseen; j++)
                cr_assert(memcmp(seen[j], seen[nseen], 32) != 0, "secrets repeat across sessions");
            nseen++;
            sdp_tls_free(c);
            sdp_tls_free(s);
            sdp_tls_ctx_free(cc);
            sdp_tls_ctx_free(sc);
        }
    }
}

/* ------------------------------------------------------------------ */
/* Failures, each seen on both sides                                    */
/* ------------------------------------------------------------------ */

Test(tls, wrong_ca)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = server_cfg("other");
    fails(&ccfg, &scfg, "sdp.test", SDP_ECERTUNTRUSTED, SDP_ECERTUNTRUSTED);
    ccfg.ca_file = path("ca2.pem");
    scfg = server_cfg("server");
    fails(&ccfg, &scfg, "sdp.test", SDP_ECERTUNTRUSTED, SDP_ECERTUNTRUSTED);
}

Test(tls, self_signed_not_pinned)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = {0};
    scfg.ephemeral_cert = 1;
    fails(&ccfg, &scfg, NULL, SDP_ECERTUNTRUSTED, SDP_ECERTUNTRUSTED);
}

Test(tls, expired_and_not_yet_valid)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = server_cfg("expired");
    fails(&ccfg, &scfg, "sdp.test", SDP_ECERTEXPIRED, SDP_ECERTEXPIRED);
    scfg = server_cfg("future");
    fails(&ccfg, &scfg, "sdp.test", SDP_ECERTEXPIRED, SDP_ECERTEXPIRED);
}

Test(tls, wrong_name)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = server_cfg("server");
    fails(&ccfg, &scfg, "other.test", SDP_ECERTNAME, SDP_ECERTNAME);
    fails(&ccfg, &scfg, "a.b.pool.sdp.test", SDP_ECERTNAME, SDP_ECERTNAME);
    fails(&ccfg, &scfg, "10.0.0.1", SDP_ECERTNAME, SDP_ECERTNAME);
    fails(&ccfg, &scfg, "::2", SDP_ECERTNAME, SDP_ECERTNAME);
}

Test(tls, wrong_pin)
{
    struct sdp_tls_config ccfg = {0}, scfg = {0};
    scfg.ephemeral_cert = 1;
    ccfg.have_pin = 1;
    memset(ccfg.pin, 0xa5, 32);
    fails(&ccfg, &scfg, NULL, SDP_EPIN, SDP_EPIN);
    /* A pin wins over a CA that would accept the certificate. */
    ccfg.ca_file = path("ca.pem");
    scfg = server_cfg("server");
    fails(&ccfg, &scfg, "sdp.test", SDP_EPIN, SDP_EPIN);
}

Test(tls, psk_wrong_key)
{
    struct sdp_tls_config ccfg = psk_cfg(psk_b, "node-1"), scfg = psk_cfg(psk_a, "node-1");
    fails(&ccfg, &scfg, NULL, SDP_EPSK, SDP_EPSK);
    /* The server's certificate is no way around a PSK mismatch. */
    scfg = server_cfg("server");
    scfg.psk = psk_a;
    scfg.psk_len = 32;
    scfg.psk_identity = "node-1";
    fails(&ccfg, &scfg, NULL, SDP_EPSK, SDP_EPSK);
}

Test(tls, psk_unknown_identity)
{
    struct sdp_tls_config ccfg = psk_cfg(psk_a, "node-2"), scfg = psk_cfg(psk_a, "node-1");
    fails(&ccfg, &scfg, NULL, SDP_EPSK, SDP_EPSK);
    scfg = server_cfg("server");
    scfg.psk = psk_a;
    scfg.psk_len = 32;
    scfg.psk_identity = "node-1";
    fails(&ccfg, &scfg, NULL, SDP_EPSK, SDP_EPSK);
}

Test(tls, psk_missing_on_one_side)
{
    /* PSK-only client, certificate-only server: the client sees a
     * certificate instead of its PSK accepted. */
    struct sdp_tls_config ccfg = psk_cfg(psk_a, "node-1"), scfg = server_cfg("server");
    fails(&ccfg, &scfg, NULL, SDP_EPSK, SDP_EHANDSHAKE);
    /* PSK-only server, certificate client. */
    ccfg = client_cfg();
    scfg = psk_cfg(psk_a, "node-1");
    fails(&ccfg, &scfg, "sdp.test", SDP_EPSK, SDP_EPSK);
}

/* The client finishes before the server has judged its certificate, so it
 * learns of the refusal after done. */
static void client_cert_refused(const char *client_leaf)
{
    struct sdp_tls_config ccfg = client_leaf ? server_cfg(client_leaf) : (struct sdp_tls_config){0};
    ccfg.ca_file = path("ca.pem");
    struct sdp_tls_config scfg = server_cfg("server");
    scfg.ca_file = path("ca.pem");
    scfg.verify_clients = 1;
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", NULL), *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
    move(c, s, 0, 0, NULL, NULL);
    move(s, c, 1, 0, NULL, NULL);
    cr_assert(sdp_tls_done(c), "client done before the server's verdict");
    cr_assert_eq(sdp_tls_confirmed(c), 0);
    pump(c, s);
    cr_assert_eq(sdp_tls_confirmed(c), 0);
    expect_fail(c, SDP_ECERTUNTRUSTED, s, SDP_ECERTUNTRUSTED);
    cr_assert_str_eq(sdp_tls_peer_identity(c), "");
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, client_without_cert_when_required)
{
    client_cert_refused(NULL);
}

Test(tls, client_cert_from_other_ca)
{
    client_cert_refused("client2");
}

Test(tls, client_cert_expired)
{
    struct sdp_tls_config ccfg = server_cfg("expired"), scfg = server_cfg("server");
    ccfg.ca_file = path("ca.pem");
    scfg.ca_file = path("ca.pem");
    scfg.verify_clients = 1;
    fails(&ccfg, &scfg, "sdp.test", SDP_ECERTEXPIRED, SDP_ECERTEXPIRED);
}

/* ------------------------------------------------------------------ */
/* Corruption and garbage                                               */
/* ------------------------------------------------------------------ */

struct flip {
    int dir, flight;
    size_t at;
    int hit;
};

static void flip_hook(int d, int flight, uint8_t *buf, size_t *len, void *arg)
{
    struct flip *f = arg;
    if (d == f->dir && flight == f->flight && !f->hit) {
        buf[f->at % *len] ^= 0x01;
        f->hit = 1;
    }
}

Test(tls, flipped_byte_fails)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = server_cfg("server");
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    /* Client hello, server flight (plaintext ServerHello and the encrypted
     * rest), client Finished: a spread of positions in each. */
    const struct {
        int dir, flight;
    } where[] = {{0, 0}, {1, 0}, {0, 1}};
    for (int w = 0; w < 3; w++) {
        for (size_t at = 0; at < 1200; at += 37) {
            struct flip f = {where[w].dir, where[w].flight, at, 0};
            struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", NULL);
            struct sdp_tls *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
            pump_hook(c, s, flip_hook, &f);
            cr_assert(f.hit);
            cr_assert(!(sdp_tls_done(c) && sdp_tls_done(s)), "flip dir %d flight %d at %zu went unnoticed",
                      f.dir, f.flight, at);
            cr_assert(sdp_tls_error(c) != 0 || sdp_tls_error(s) != 0);
            sdp_tls_free(c);
            sdp_tls_free(s);
        }
    }
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(tls, random_bytes_fail_cleanly)
{
    struct sdp_tls_config ccfg = client_cfg(), scfg = server_cfg("server");
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    uint64_t seed = 0x5eed;
    for (int i = 0; i < 50; i++) {
        uint8_t junk[512], out[4096];
        size_t n = 1 + rng(&seed) % sizeof junk;
        for (size_t j = 0; j < n; j++)
            junk[j] = (uint8_t)rng(&seed);
        if (i % 2)
            junk[0] = 22; /* looks like a handshake record */
        struct sdp_tls *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
        int rc = sdp_tls_input(s, junk, n);
        /* Too short to decide is fine; a decided failure is EHANDSHAKE. */
        cr_assert(rc == 0 || rc == SDP_EHANDSHAKE, "server rc %d", rc);
        cr_assert(!sdp_tls_done(s));
        sdp_tls_output(s, out, sizeof out);
        sdp_tls_free(s);
        struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", NULL);
        sdp_tls_output(c, out, sizeof out);
        rc = sdp_tls_input(c, junk, n);
        cr_assert(rc == 0 || rc == SDP_EHANDSHAKE, "client rc %d", rc);
        cr_assert(!sdp_tls_done(c));
        sdp_tls_free(c);
    }
    /* Plain garbage with a bad record type fails at once. */
    struct sdp_tls *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
    const uint8_t bad[] = {22, 3, 1, 0, 6, 1, 0, 0, 2, 3, 3}; /* a 2-byte ClientHello */
    cr_assert_eq(sdp_tls_input(s, bad, sizeof bad), SDP_EHANDSHAKE);
    cr_assert_eq(sdp_tls_input(s, bad, sizeof bad), SDP_EHANDSHAKE);
    uint8_t out[64];
    cr_assert_gt(sdp_tls_output(s, out, sizeof out), 0, "an alert for the peer");
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

struct mutate {
    uint64_t seed;
    int armed;
};

static void mutate_hook(int d, int flight, uint8_t *buf, size_t *len, void *arg)
{
    struct mutate *m = arg;
    if (!m->armed || rng(&m->seed) % 3 != 0)
        return;
    m->armed = 0;
    switch (rng(&m->seed) % 4) {
    case 0: buf[rng(&m->seed) % *len] ^= (uint8_t)(1 + rng(&m->seed) % 255); break;
    case 1: *len = rng(&m->seed) % *len; break; /* truncated: the rest never comes */
    case 2: buf[rng(&m->seed) % *len] = 0xff; break;
    default:
        for (int i = 0; i < 4; i++)
            buf[rng(&m->seed) % *len] = (uint8_t)rng(&m->seed);
    }
}

/* Random damage to one flight of mutual-TLS, PSK and 0-RTT handshakes:
 * never a crash, never two sides that both finish with different keys,
 * and every failure one of the documented codes. */
Test(tls, fuzzish_handshakes)
{
    struct sdp_tls_config ccfg = server_cfg("client"), scfg = server_cfg("server");
    ccfg.ca_file = scfg.ca_file = path("ca.pem");
    ccfg.psk = scfg.psk = psk_a;
    ccfg.psk_len = scfg.psk_len = 32;
    ccfg.psk_identity = scfg.psk_identity = "node-1";
    ccfg.early_data = scfg.early_data = 1;
    scfg.verify_clients = 1;
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    uint64_t seed0 = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 300; i++) {
        struct mutate m = {seed0 + (uint64_t)i * 7919, 1};
        struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", i % 2 ? "srv" : NULL);
        struct sdp_tls *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
        pump_hook(c, s, mutate_hook, &m);
        if (sdp_tls_done(c) && sdp_tls_done(s)) {
            expect_keys(c, s, NULL);
        } else {
            int e[2] = {sdp_tls_error(c), sdp_tls_error(s)};
            for (int k = 0; k < 2; k++)
                cr_assert(e[k] == 0 || (e[k] <= SDP_EHANDSHAKE && e[k] >= SDP_EPSK),
                          "iteration %d (seed %llu): code %d", i, (unsigned long long)m.seed, e[k]);
        }
        sdp_tls_free(c);
        sdp_tls_free(s);
    }
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

/* ------------------------------------------------------------------ */
/* Tickets and 0-RTT                                                    */
/* ------------------------------------------------------------------ */

static void early_cfgs(struct sdp_tls_config *ccfg, struct sdp_tls_config *scfg)
{
    *ccfg = client_cfg();
    *scfg = server_cfg("server");
    ccfg->early_data = scfg->early_data = 1;
}

/* A full handshake that leaves tickets in the client's cache. */
static void prime(struct sdp_tls_ctx *cc, struct sdp_tls_ctx *sc, const char *tkey)
{
    struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", tkey), *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
    uint8_t a[32];
    enum sdp_cipher su;
    cr_assert_eq(sdp_tls_early_export(c, &su, a), SDP_EUNAVAIL);
    pump(c, s);
    expect_ok(c, s);
    cr_assert_eq(sdp_tls_early_accepted(s), 0);
    sdp_tls_free(c);
    sdp_tls_free(s);
}

Test(tls, zero_rtt_same_early_secret)
{
    struct sdp_tls_config ccfg, scfg;
    early_cfgs(&ccfg, &scfg);
    ccfg.cipher = SDP_CIPHER_CHACHA20POLY1305;
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    prime(cc, sc, "10.0.0.1:4000");
    struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", "10.0.0.1:4000");
    struct sdp_tls *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
    uint8_t ce[32], se[32], ce2[32];
    enum sdp_cipher csu = 0, ssu = 0;
    /* At once, before the server said anything. */
    cr_assert_eq(sdp_tls_early_export(c, &csu, ce), 0);
    cr_assert_eq(csu, SDP_CIPHER_CHACHA20POLY1305);
    cr_assert_eq(sdp_tls_early_accepted(c), 0);
    cr_assert_eq(sdp_tls_early_export(s, &ssu, se), SDP_EAGAIN);
    move(c, s, 0, 0, NULL, NULL);
    cr_assert_eq(sdp_tls_early_export(s, &ssu, se), 0);
    cr_assert_eq(ssu, csu);
    cr_assert(memcmp(ce, se, 32) == 0, "early secrets differ");
    cr_assert_eq(sdp_tls_early_accepted(s), 1);
    /* 0.5-RTT: the server has its 1-RTT secrets before the client's
     * Finished, the same ones the client exports at done; the client has
     * none yet. */
    uint8_t htx[32], hrx[32], ctx2[32], crx2[32];
    enum sdp_cipher hsu;
    cr_assert_eq(sdp_tls_done(s), 0);
    cr_assert_eq(sdp_tls_export(s, &hsu, htx, hrx), 0);
    cr_assert_eq(sdp_tls_export(c, &csu, ctx2, crx2), SDP_EAGAIN);
    pump(c, s);
    expect_ok(c, s);
    cr_assert_eq(sdp_tls_early_accepted(c), 1);
    cr_assert_eq(sdp_tls_early_export(c, &csu, ce2), 0);
    cr_assert(memcmp(ce, ce2, 32) == 0);
    cr_assert_eq(sdp_tls_export(c, &csu, ctx2, crx2), 0);
    cr_assert_eq(hsu, csu);
    cr_assert(memcmp(htx, crx2, 32) == 0 && memcmp(hrx, ctx2, 32) == 0, "0.5-RTT secrets differ from 1-RTT ones");
    uint8_t tx[32];
    expect_keys(c, s, tx);
    cr_assert(memcmp(tx, ce, 32) != 0, "1-RTT and 0-RTT secrets must differ");
    cr_assert_str_eq(sdp_tls_peer_identity(c), "sdp-server");
    sdp_tls_free(c);
    sdp_tls_free(s);
    /* The tickets of that handshake serve the next one. */
    c = mk(cc, SDP_TLS_CLIENT, "sdp.test", "10.0.0.1:4000");
    cr_assert_eq(sdp_tls_early_export(c, &csu, ce2), 0);
    cr_assert(memcmp(ce, ce2, 32) != 0, "each ticket gives a new early secret");
    sdp_tls_free(c);
    /* Another server, or the same one under another name, has no ticket. */
    c = mk(cc, SDP_TLS_CLIENT, "sdp.test", "10.0.0.2:4000");
    cr_assert_eq(sdp_tls_early_export(c, &csu, ce2), SDP_EUNAVAIL);
    sdp_tls_free(c);
    c = mk(cc, SDP_TLS_CLIENT, "a.pool.sdp.test", "10.0.0.1:4000");
    cr_assert_eq(sdp_tls_early_export(c, &csu, ce2), SDP_EUNAVAIL);
    sdp_tls_free(c);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, zero_rtt_replay_refused)
{
    struct sdp_tls_config ccfg, scfg;
    early_cfgs(&ccfg, &scfg);
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    prime(cc, sc, "srv");
    struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", "srv");
    uint8_t hello[8192], e1[32], e2[32];
    size_t n = sdp_tls_output(c, hello, sizeof hello);
    cr_assert_gt(n, 0);
    enum sdp_cipher su;
    struct sdp_tls *s1 = mk(sc, SDP_TLS_SERVER, NULL, NULL), *s2 = mk(sc, SDP_TLS_SERVER, NULL, NULL);
    cr_assert_eq(sdp_tls_input(s1, hello, n), 0);
    cr_assert_eq(sdp_tls_early_export(s1, &su, e1), 0);
    cr_assert_eq(sdp_tls_early_accepted(s1), 1);
    /* The same bytes again, to a fresh server session of the same ctx. */
    cr_assert_eq(sdp_tls_input(s2, hello, n), 0);
    cr_assert_eq(sdp_tls_early_export(s2, &su, e2), SDP_EUNAVAIL);
    cr_assert_eq(sdp_tls_early_accepted(s2), -1);
    uint8_t x[32], y[32];
    cr_assert_eq(sdp_tls_export(s2, &su, x, y), SDP_EAGAIN, "no 0.5-RTT keys for a replay");
    /* The genuine client still completes with the first server. */
    pump(c, s1);
    expect_ok(c, s1);
    cr_assert_eq(sdp_tls_early_accepted(c), 1);
    sdp_tls_free(c);
    sdp_tls_free(s1);
    sdp_tls_free(s2);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, zero_rtt_rejected_by_another_server)
{
    /* A restarted server (new ctx, new ticket keys) rejects the ticket: a
     * full handshake, and the client learns its early data was refused. */
    struct sdp_tls_config ccfg, scfg;
    early_cfgs(&ccfg, &scfg);
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg), *sc2 = mkctx(&scfg);
    prime(cc, sc, "srv");
    struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", "srv"), *s = mk(sc2, SDP_TLS_SERVER, NULL, NULL);
    uint8_t e[32];
    enum sdp_cipher su;
    cr_assert_eq(sdp_tls_early_export(c, &su, e), 0);
    pump(c, s);
    expect_ok(c, s);
    expect_keys(c, s, NULL);
    cr_assert_eq(sdp_tls_early_accepted(c), -1);
    cr_assert_eq(sdp_tls_early_accepted(s), -1);
    cr_assert_eq(sdp_tls_early_export(s, &su, e), SDP_EUNAVAIL);
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
    sdp_tls_ctx_free(sc2);
}

Test(tls, resumption_without_early_data)
{
    /* PSK-only: the identity survives resumption on both sides. */
    struct sdp_tls_config ccfg = psk_cfg(psk_a, "node-1"), scfg = psk_cfg(psk_a, "node-1");
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    for (int i = 0; i < 3; i++) {
        struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, NULL, "srv"), *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
        uint8_t e[32];
        enum sdp_cipher su;
        cr_assert_eq(sdp_tls_early_export(c, &su, e), SDP_EUNAVAIL);
        pump(c, s);
        expect_ok(c, s);
        expect_keys(c, s, NULL);
        cr_assert_str_eq(sdp_tls_peer_identity(c), "node-1");
        cr_assert_str_eq(sdp_tls_peer_identity(s), "node-1");
        sdp_tls_free(c);
        sdp_tls_free(s);
    }
    /* Mutual TLS: the client certificate's identity survives too. */
    struct sdp_tls_config mc = server_cfg("client"), ms = server_cfg("server");
    mc.ca_file = ms.ca_file = path("ca.pem");
    ms.verify_clients = 1;
    struct sdp_tls_ctx *mcc = mkctx(&mc), *msc = mkctx(&ms);
    for (int i = 0; i < 2; i++) {
        struct sdp_tls *c = mk(mcc, SDP_TLS_CLIENT, "sdp.test", "srv"), *s = mk(msc, SDP_TLS_SERVER, NULL, NULL);
        pump(c, s);
        expect_ok(c, s);
        cr_assert_str_eq(sdp_tls_peer_identity(s), "sdp-client");
        cr_assert_str_eq(sdp_tls_peer_identity(c), "sdp-server");
        sdp_tls_free(c);
        sdp_tls_free(s);
    }
    sdp_tls_ctx_free(mcc);
    sdp_tls_ctx_free(msc);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, early_data_needs_both_sides)
{
    struct sdp_tls_config ccfg, scfg;
    early_cfgs(&ccfg, &scfg);
    scfg.early_data = 0;
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    prime(cc, sc, "srv");
    struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", "srv"), *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
    uint8_t e[32];
    enum sdp_cipher su;
    cr_assert_eq(sdp_tls_early_export(c, &su, e), SDP_EUNAVAIL, "the ticket allows no 0-RTT");
    pump(c, s);
    expect_ok(c, s);
    cr_assert_eq(sdp_tls_early_export(s, &su, e), SDP_EUNAVAIL);
    sdp_tls_free(c);
    sdp_tls_free(s);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

/* ------------------------------------------------------------------ */
/* Configuration                                                        */
/* ------------------------------------------------------------------ */

Test(tls, config_errors)
{
    struct sdp_tls_ctx *c = NULL;
    struct sdp_tls_config cfg = {0};
    cr_assert_eq(sdp_tls_ctx_new(&cfg, &c), SDP_EINVAL, "neither role");
    cr_assert_neq(sdp_tls_ctx_last_error()[0], '\0');
    cfg = psk_cfg(psk_a, "node-1");
    cfg.psk_len = 8;
    cr_assert_eq(sdp_tls_ctx_new(&cfg, &c), SDP_EINVAL, "short PSK");
    cfg = psk_cfg(psk_a, "");
    cr_assert_eq(sdp_tls_ctx_new(&cfg, &c), SDP_EINVAL, "empty identity");
    cfg = server_cfg("server");
    cfg.key_file = NULL;
    cr_assert_eq(sdp_tls_ctx_new(&cfg, &c), SDP_EINVAL, "cert without key");
    cfg = server_cfg("server");
    cfg.verify_clients = 1;
    cr_assert_eq(sdp_tls_ctx_new(&cfg, &c), SDP_EINVAL, "verify_clients without CA");
    cfg = client_cfg();
    cfg.cipher = SDP_CIPHER_NULL_INSECURE;
    cr_assert_eq(sdp_tls_ctx_new(&cfg, &c), SDP_EINVAL, "null cipher");
    cfg = server_cfg("missing");
    cr_assert_eq(sdp_tls_ctx_new(&cfg, &c), SDP_ESYSTEM);
    cr_assert_not_null(strstr(sdp_tls_ctx_last_error(), "missing.pem"), "%s", sdp_tls_ctx_last_error());
    cfg = server_cfg("server");
    cfg.key_file = path("client.key");
    cr_assert_eq(sdp_tls_ctx_new(&cfg, &c), SDP_ESYSTEM, "key of another certificate");
    cfg = client_cfg();
    cfg.ca_file = path("nope.pem");
    cr_assert_eq(sdp_tls_ctx_new(&cfg, &c), SDP_ESYSTEM);
    cr_assert_null(c);

    /* A client-only ctx cannot serve and a server-only ctx cannot connect. */
    struct sdp_tls *t = NULL;
    cfg = client_cfg();
    c = mkctx(&cfg);
    cr_assert_eq(sdp_tls_new(c, SDP_TLS_SERVER, NULL, NULL, 0, &t), SDP_EINVAL);
    cr_assert_eq(sdp_tls_new(c, SDP_TLS_CLIENT, "", NULL, 0, &t), SDP_EINVAL);
    uint8_t big[65] = {0};
    cr_assert_eq(sdp_tls_new(c, SDP_TLS_CLIENT, NULL, big, sizeof big, &t), SDP_EINVAL);
    cr_assert_null(t);
    sdp_tls_ctx_free(c);
    cfg = server_cfg("server");
    c = mkctx(&cfg);
    cr_assert_eq(sdp_tls_new(c, SDP_TLS_CLIENT, NULL, NULL, 0, &t), SDP_EINVAL);
    uint8_t fp[32];
    cr_assert_eq(sdp_tls_ctx_fingerprint(c, fp), 0);
    sdp_tls_ctx_free(c);
    sdp_tls_free(NULL);
    sdp_tls_ctx_free(NULL);
}

/* Many sessions of one ctx from several threads: the ticket cache is shared. */
#include <pthread.h>

struct par {
    struct sdp_tls_ctx *cc, *sc;
    int ok;
};

static void *par_run(void *arg)
{
    struct par *p = arg;
    for (int i = 0; i < 20; i++) {
        struct sdp_tls *c = NULL, *s = NULL;
        if (sdp_tls_new(p->cc, SDP_TLS_CLIENT, "sdp.test", "srv", 3, &c) ||
            sdp_tls_new(p->sc, SDP_TLS_SERVER, NULL, NULL, 0, &s))
            return NULL;
        for (int r = 0; r < 16; r++) {
            uint8_t buf[16384];
            size_t n = sdp_tls_output(c, buf, sizeof buf);
            if (n)
                sdp_tls_input(s, buf, n);
            n = sdp_tls_output(s, buf, sizeof buf);
            if (n)
                sdp_tls_input(c, buf, n);
        }
        p->ok += sdp_tls_done(c) && sdp_tls_done(s);
        sdp_tls_free(c);
        sdp_tls_free(s);
    }
    return NULL;
}

Test(tls, threads_share_a_ctx)
{
    struct sdp_tls_config ccfg, scfg;
    early_cfgs(&ccfg, &scfg);
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    pthread_t th[4];
    struct par p[4];
    for (int i = 0; i < 4; i++) {
        p[i] = (struct par){cc, sc, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, par_run, &p[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(p[i].ok, 20, "thread %d: %d of 20", i, p[i].ok);
    }
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}

Test(tls, ticket_single_use_and_cache_bound)
{
    struct sdp_tls_config ccfg, scfg;
    early_cfgs(&ccfg, &scfg);
    struct sdp_tls_ctx *cc = mkctx(&ccfg), *sc = mkctx(&scfg);
    uint8_t e[32];
    enum sdp_cipher su;
    /* A full handshake leaves two tickets; each serves one attempt only. */
    prime(cc, sc, "one");
    struct sdp_tls *a = mk(cc, SDP_TLS_CLIENT, "sdp.test", "one"), *b = mk(cc, SDP_TLS_CLIENT, "sdp.test", "one");
    struct sdp_tls *c = mk(cc, SDP_TLS_CLIENT, "sdp.test", "one");
    cr_assert_eq(sdp_tls_early_export(a, &su, e), 0);
    cr_assert_eq(sdp_tls_early_export(b, &su, e), 0);
    cr_assert_eq(sdp_tls_early_export(c, &su, e), SDP_EUNAVAIL, "a third use of two tickets");
    sdp_tls_free(a);
    sdp_tls_free(b);
    sdp_tls_free(c);
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);

    /* PSK handshakes count as resumptions: one ticket each.  260 servers
     * overflow the 256-session cache, and the oldest four go. */
    ccfg = psk_cfg(psk_a, "node-1");
    scfg = psk_cfg(psk_a, "node-1");
    ccfg.early_data = scfg.early_data = 1;
    cc = mkctx(&ccfg);
    sc = mkctx(&scfg);
    char key[16];
    for (int i = 0; i < 260; i++) {
        snprintf(key, sizeof key, "srv-%d", i);
        c = mk(cc, SDP_TLS_CLIENT, NULL, key);
        struct sdp_tls *s = mk(sc, SDP_TLS_SERVER, NULL, NULL);
        pump(c, s);
        expect_ok(c, s);
        sdp_tls_free(c);
        sdp_tls_free(s);
    }
    for (int i = 0; i < 260; i++) {
        snprintf(key, sizeof key, "srv-%d", i);
        c = mk(cc, SDP_TLS_CLIENT, NULL, key);
        cr_assert_eq(sdp_tls_early_export(c, &su, e), i < 4 ? SDP_EUNAVAIL : 0, "server %d", i);
        sdp_tls_free(c);
    }
    sdp_tls_ctx_free(cc);
    sdp_tls_ctx_free(sc);
}
