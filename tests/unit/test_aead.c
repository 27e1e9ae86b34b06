/* AEAD providers: every converted known-answer vector through every
 * provider of its suite, plus the registry's refusal rules. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crypto/aead.h"
#include "crypto/gcm_small.h"
#include "sdp/sdp.h"

#define NIST_DIR "/usr/lib/python3/dist-packages/cryptography_vectors/ciphers/AES/GCM"

struct vec {
    char suite[24], source[16], id[64], result[8];
    uint8_t *key, *iv, *aad, *msg, *ct, *tag;
    size_t key_len, iv_len, aad_len, msg_len, ct_len, tag_len;
};

static uint8_t *unhex(const char *s, size_t *len)
{
    if (strcmp(s, "-") == 0) {
        *len = 0;
        return calloc(1, 1);
    }
    size_t n = strlen(s) / 2;
    uint8_t *b = malloc(n ? n : 1);
    cr_assert_not_null(b);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1, "bad hex %s", s);
        b[i] = (uint8_t)v;
    }
    *len = n;
    return b;
}

static void vec_free(struct vec *v)
{
    free(v->key), free(v->iv), free(v->aad), free(v->msg), free(v->ct), free(v->tag);
}

/* Reads the next case; 0 at end of file. */
static int vec_next(FILE *f, struct vec *v)
{
    static char line[1 << 17];
    static char f6[1 << 16], f7[1 << 16], f8[1 << 16], f9[1 << 16];
    char k[200], iv[200];

    while (fgets(line, sizeof(line), f) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        cr_assert(strlen(line) < sizeof(line) - 1, "vector line too long");
        int n = sscanf(line, "%23s %15s %63s %7s %199s %199s %65535s %65535s %65535s %65535s",
                       v->suite, v->source, v->id, v->result, k, iv, f6, f7, f8, f9);
        cr_assert_eq(n, 10, "malformed vector line: %s", line);
        v->key = unhex(k, &v->key_len);
        v->iv = unhex(iv, &v->iv_len);
        v->aad = unhex(f6, &v->aad_len);
        v->msg = unhex(f7, &v->msg_len);
        v->ct = unhex(f8, &v->ct_len);
        v->tag = unhex(f9, &v->tag_len);
        return 1;
    }
    return 0;
}

static enum sdp_suite suite_of(const char *s)
{
    if (strcmp(s, "aes128gcm") == 0)
        return SDP_SUITE_AES128GCM;
    if (strcmp(s, "aes256gcm") == 0)
        return SDP_SUITE_AES256GCM;
    if (strcmp(s, "chacha20poly1305") == 0)
        return SDP_SUITE_CHACHA20POLY1305;
    cr_assert_fail("unknown suite %s", s);
    return 0;
}

struct tally {
    unsigned accepted, rejected;
};

/* Runs one case through one provider: a valid case must seal to exactly
 * ct||tag and open (separately and in place); an invalid case must fail to
 * open and leave no plaintext behind. */
static void run_case(const struct sdp_aead_provider *p, const struct vec *v, struct tally *t)
{
    struct sdp_aead_key *k = NULL;
    int valid = strcmp(v->result, "valid") == 0;

    cr_assert(valid || strcmp(v->result, "invalid") == 0);
    cr_assert_eq(v->iv_len, SDP_AEAD_IV_LEN);
    cr_assert_eq(v->tag_len, SDP_AEAD_TAG_LEN);
    /* seq 0: the nonce is the IV itself. */
    cr_assert_eq(p->key_new(v->key, v->key_len, v->iv, &k), 0, "%s %s", p->name, v->id);
    uint8_t *buf = malloc(v->ct_len + 1);
    uint8_t tag[SDP_AEAD_TAG_LEN];
    if (valid) {
        cr_assert_eq(v->msg_len, v->ct_len);
        cr_assert_eq(p->seal(k, 0, v->aad, v->aad_len, v->msg, v->msg_len, buf, tag), 0);
        cr_assert(memcmp(buf, v->ct, v->ct_len) == 0, "%s %s: ciphertext differs", p->name, v->id);
        cr_assert(memcmp(tag, v->tag, 16) == 0, "%s %s: tag differs", p->name, v->id);
        memset(buf, 0xaa, v->ct_len);
        cr_assert_eq(p->open(k, 0, v->aad, v->aad_len, v->ct, v->ct_len, v->tag, buf), 0,
                     "%s %s: valid case refused", p->name, v->id);
        cr_assert(memcmp(buf, v->msg, v->msg_len) == 0);
        memcpy(buf, v->ct, v->ct_len);
        cr_assert_eq(p->open(k, 0, v->aad, v->aad_len, buf, v->ct_len, v->tag, buf), 0);
        cr_assert(memcmp(buf, v->msg, v->msg_len) == 0, "%s %s: in-place open", p->name, v->id);
        t->accepted++;
    } else {
        memset(buf, 0xaa, v->ct_len);
        int rc = p->open(k, 0, v->aad, v->aad_len, v->ct, v->ct_len, v->tag, buf);
        cr_assert_eq(rc, SDP_EBADMSG, "%s %s: invalid case opened (rc %d)", p->name, v->id, rc);
        for (size_t i = 0; i < v->ct_len; i++)
            cr_assert_eq(buf[i], 0, "%s %s: output not zeroed", p->name, v->id);
        t->rejected++;
    }
    free(buf);
    p->key_free(k);
}

/* Counts per suite, fixed so that a converter that drops cases fails here.
 * Wycheproof: 96-bit IV and 128-bit tag groups; NIST: IVlen 96, Taglen 128. */
struct expect {
    enum sdp_suite suite;
    unsigned valid, invalid;                  /* with the NIST files */
    unsigned wp_valid, wp_invalid;            /* Wycheproof alone */
};
static const struct expect expected[] = {
    {SDP_SUITE_AES128GCM, 40 + 554, 27 + 196, 40, 27},
    {SDP_SUITE_AES256GCM, 39 + 559, 27 + 191, 39, 27},
    {SDP_SUITE_CHACHA20POLY1305, 256, 60, 256, 60},
};

static void run_provider(const struct sdp_aead_provider *p)
{
    char path[4096];
    struct vec v;
    struct tally t = {0, 0};

    snprintf(path, sizeof(path), "%s/vectors/aead.txt", SDP_BINARY_DIR);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s (run the sdp_vectors target)", path);
    while (vec_next(f, &v)) {
        if (suite_of(v.suite) == p->suite)
            run_case(p, &v, &t);
        vec_free(&v);
    }
    fclose(f);
    int nist = access(NIST_DIR, R_OK) == 0;
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        if (expected[i].suite != p->suite)
            continue;
        cr_expect_eq(t.accepted, nist ? expected[i].valid : expected[i].wp_valid,
                     "%s: %u valid cases accepted", p->name, t.accepted);
        cr_expect_eq(t.rejected, nist ? expected[i].invalid : expected[i].wp_invalid,
                     "%s: %u invalid cases rejected", p->name, t.rejected);
    }
    cr_log_info("%s: %u valid vectors accepted, %u invalid rejected", p->name, t.accepted,
                t.rejected);
    fprintf(stderr, "vectors %s: %u accepted, %u rejected\n", p->name, t.accepted, t.rejected);
}

static const struct sdp_aead_provider *by_name(const char *name)
{
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++)
        if (strcmp((*pp)->name, name) == 0)
            return *pp;
    cr_assert_fail("no provider %s", name);
    return NULL;
}

Test(aead_vectors, openssl_aes128gcm)
{
    run_provider(by_name("openssl-aes128gcm"));
}

Test(aead_vectors, openssl_aes256gcm)
{
    run_provider(by_name("openssl-aes256gcm"));
}

Test(aead_vectors, sodium_chacha20poly1305)
{
    run_provider(by_name("sodium-chacha20poly1305"));
}

Test(aead_vectors, sodium_aes256gcm)
{
    const struct sdp_aead_provider *p = by_name("sodium-aes256gcm");
    if (!p->available()) {
        cr_log_warn("sodium-aes256gcm unavailable on this CPU: skipped");
        return;
    }
    run_provider(p);
}

Test(aead_registry, finds_each_suite)
{
    const struct sdp_aead_provider *p;
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, &p), 0);
    cr_assert_str_eq(p->name, "openssl-aes128gcm");
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES256GCM, NULL, 0, &p), 0);
    cr_assert_str_eq(p->name, "openssl-aes256gcm");
    cr_assert_eq(sdp_aead_find(SDP_SUITE_CHACHA20POLY1305, NULL, 0, &p), 0);
    cr_assert_str_eq(p->name, "sodium-chacha20poly1305");
    cr_assert_eq(sdp_aead_find(0, "sodium-chacha20poly1305", 0, &p), 0);
    cr_assert_eq(p->suite, SDP_SUITE_CHACHA20POLY1305);
}

Test(aead_registry, null_refused_unless_allowed)
{
    const struct sdp_aead_provider *p = (const void *)1;
    cr_assert_eq(sdp_aead_find(SDP_SUITE_NULL_INSECURE, NULL, 0, &p), SDP_EINSECURE);
    cr_assert_null(p);
    cr_assert_eq(sdp_aead_find(0, "null-INSECURE-no-encryption", 0, &p), SDP_EINSECURE);
    cr_assert_eq(sdp_aead_find(SDP_SUITE_NULL_INSECURE, NULL, SDP_AEAD_ALLOW_INSECURE, &p), 0);
    cr_assert_str_eq(p->name, "null-INSECURE-no-encryption");
    cr_assert(p->flags & SDP_AEAD_F_INSECURE);
    /* Allowing it never makes a real suite pick it. */
    for (int s = 1; s <= 3; s++) {
        cr_assert_eq(sdp_aead_find((enum sdp_suite)s, NULL, SDP_AEAD_ALLOW_INSECURE, &p), 0);
        cr_assert_not(p->flags & SDP_AEAD_F_INSECURE);
    }
}

Test(aead_registry, unknown_is_unavailable)
{
    const struct sdp_aead_provider *p;
    cr_assert_eq(sdp_aead_find((enum sdp_suite)7, NULL, 0, &p), SDP_EUNAVAIL);
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, "no-such-provider", 0, &p), SDP_EUNAVAIL);
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, NULL), SDP_EINVAL);
}

Test(aead_registry, table_and_suites)
{
    size_t n = 0, insecure = 0;
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++, n++) {
        const struct sdp_aead_provider *p = *pp;
        cr_assert_eq(p->key_len, sdp_suite_key_len(p->suite), "%s", p->name);
        cr_assert_not_null(p->seal_batch);
        cr_assert_null(p->poll); /* all synchronous for now */
        if (p->flags & SDP_AEAD_F_INSECURE) {
            insecure++;
            cr_assert(strstr(p->name, "INSECURE") != NULL);
        }
    }
    cr_assert_eq(n, 7); /* 5 + the two kshim providers */
    cr_assert_eq(insecure, 1);
    cr_assert_eq(sdp_suite_key_len(SDP_SUITE_AES128GCM), 16);
    cr_assert_eq(sdp_suite_key_len(SDP_SUITE_AES256GCM), 32);
    cr_assert_eq(sdp_suite_key_len(SDP_SUITE_CHACHA20POLY1305), 32);
    cr_assert_eq(sdp_suite_key_len((enum sdp_suite)9), 0);
    cr_assert_str_eq(sdp_suite_name(SDP_SUITE_AES256GCM), "AES-256-GCM");
}

Test(aead, nonce_is_iv_xor_seq)
{
    uint8_t iv[12], nonce[12];
    for (int i = 0; i < 12; i++)
        iv[i] = (uint8_t)(0xf0 + i);
    sdp_aead_nonce(nonce, iv, UINT64_C(0x0102030405060708));
    static const uint8_t want[12] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4 ^ 1, 0xf5 ^ 2, 0xf6 ^ 3,
                                     0xf7 ^ 4, 0xf8 ^ 5, 0xf9 ^ 6, 0xfa ^ 7, 0xfb ^ 8};
    cr_assert(memcmp(nonce, want, 12) == 0);
}

/* seq moves the nonce exactly as sdp_aead_nonce says: sealing under
 * (iv, seq) equals sealing under (iv ^ seq, 0). */
Test(aead, seq_enters_nonce)
{
    uint8_t key[32] = {1, 2, 3}, iv[12] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2}, nonce[12];
    uint8_t pt[100] = {42}, a[100], b[100], ta[16], tb[16];
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++) {
        const struct sdp_aead_provider *p = *pp;
        struct sdp_aead_key *k1, *k2;
        if (!p->available() || (p->flags & SDP_AEAD_F_INSECURE))
            continue;
        uint64_t seq = UINT64_C(0x123456789abc) << 16 | 77;
        sdp_aead_nonce(nonce, iv, seq);
        cr_assert_eq(p->key_new(key, p->key_len, iv, &k1), 0);
        cr_assert_eq(p->key_new(key, p->key_len, nonce, &k2), 0);
        cr_assert_eq(p->seal(k1, seq, pt, 5, pt, sizeof(pt), a, ta), 0);
        cr_assert_eq(p->seal(k2, 0, pt, 5, pt, sizeof(pt), b, tb), 0);
        cr_assert(memcmp(a, b, sizeof(a)) == 0 && memcmp(ta, tb, 16) == 0, "%s", p->name);
        cr_assert_eq(p->open(k1, seq + 1, pt, 5, a, sizeof(a), ta, b), SDP_EBADMSG, "%s", p->name);
        p->key_free(k1);
        p->key_free(k2);
    }
}

/* key_idle releases what a key made on first use and nothing else: the
 * key seals and opens the same afterwards, any number of times over. */
Test(aead, key_idle_keeps_the_key)
{
    uint8_t key[32] = {7}, iv[12] = {3}, pt[64] = {5}, ct[64], ct2[64], back[64], tag[16], tag2[16];
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++) {
        const struct sdp_aead_provider *p = *pp;
        struct sdp_aead_key *k;
        if (!p->available() || (p->flags & SDP_AEAD_F_INSECURE) || !p->key_idle)
            continue;
        cr_assert_eq(p->key_new(key, p->key_len, iv, &k), 0);
        p->key_idle(k); /* before any use */
        cr_assert_eq(p->seal(k, 9, pt, 4, pt, sizeof(pt), ct, tag), 0, "%s", p->name);
        for (int round = 0; round < 3; round++) {
            p->key_idle(k);
            cr_assert_eq(p->open(k, 9, pt, 4, ct, sizeof(ct), tag, back), 0, "%s", p->name);
            cr_assert(memcmp(back, pt, sizeof(pt)) == 0);
            p->key_idle(k);
            cr_assert_eq(p->seal(k, 9, pt, 4, pt, sizeof(pt), ct2, tag2), 0, "%s", p->name);
            cr_assert(memcmp(ct, ct2, sizeof(ct)) == 0 && memcmp(tag, tag2, 16) == 0, "%s", p->name);
            tag2[0] ^= 1;
            p->key_idle(k);
            cr_assert_eq(p->open(k, 9, pt, 4, ct2, sizeof(ct2), tag2, back), SDP_EBADMSG, "%s", p->name);
        }
        p->key_idle(k);
        p->key_free(k);
    }
}

Test(aead, batch_sync)
{
    const struct sdp_aead_provider *p;
    struct sdp_aead_key *k;
    uint8_t key[16] = {7}, iv[12] = {3};
    uint8_t pt[4][64], ct[4][64], out[4][64], tag[4][16];
    struct sdp_aead_op ops[4];

    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, &p), 0);
    cr_assert_eq(p->key_new(key, 16, iv, &k), 0);
    for (int i = 0; i < 4; i++) {
        memset(pt[i], i + 1, sizeof(pt[i]));
        ops[i] = (struct sdp_aead_op){.seq = (uint64_t)i, .aad = pt[i], .aad_len = 3, .in = pt[i],
                                      .out = ct[i], .len = sizeof(pt[i]), .tag = tag[i]};
    }
    cr_assert_eq(p->seal_batch(k, ops, 4), 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ops[i].status, 0);
        ops[i].in = ct[i];
        ops[i].out = out[i];
    }
    tag[2][5] ^= 1;
    cr_assert_eq(p->open_batch(k, ops, 4), 4);
    for (int i = 0; i < 4; i++) {
        cr_assert_eq(ops[i].status, i == 2 ? SDP_EBADMSG : 0);
        if (i != 2)
            cr_assert(memcmp(out[i], pt[i], sizeof(pt[i])) == 0);
    }
    p->key_free(k);
}

Test(aead, null_provider_behaviour)
{
    const struct sdp_aead_provider *p;
    struct sdp_aead_key *k;
    uint8_t key[16] = {0}, iv[12] = {0}, pt[32], ct[32], out[32], tag[16];

    cr_assert_eq(sdp_aead_find(SDP_SUITE_NULL_INSECURE, NULL, SDP_AEAD_ALLOW_INSECURE, &p), 0);
    cr_assert_eq(p->key_new(key, 16, iv, &k), 0);
    memset(pt, 0x5a, sizeof(pt));
    memset(tag, 0xff, sizeof(tag));
    cr_assert_eq(p->seal(k, 1, NULL, 0, pt, sizeof(pt), ct, tag), 0);
    cr_assert(memcmp(ct, pt, sizeof(pt)) == 0); /* really no encryption */
    for (int i = 0; i < 16; i++)
        cr_assert_eq(tag[i], 0);
    cr_assert_eq(p->open(k, 1, NULL, 0, ct, sizeof(ct), tag, out), 0);
    tag[15] = 1;
    cr_assert_eq(p->open(k, 1, NULL, 0, ct, sizeof(ct), tag, out), SDP_EBADMSG);
    p->key_free(k);
}

Test(aead, key_new_rejects_bad_lengths)
{
    uint8_t key[32] = {0}, iv[12] = {0};
    struct sdp_aead_key *k = (void *)1;
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++) {
        const struct sdp_aead_provider *p = *pp;
        if (!p->available() || (p->flags & SDP_AEAD_F_INSECURE))
            continue;
        cr_assert_eq(p->key_new(key, p->key_len == 16 ? 32 : 16, iv, &k), SDP_EINVAL, "%s", p->name);
        cr_assert_null(k);
        p->key_free(NULL);
    }
}

/* The short-record path (crypto/gcm_small.c) against OpenSSL's EVP on
 * random keys, nonces, AAD and lengths on both sides of its limit, in
 * place and apart; a flipped bit anywhere is refused and the output
 * zeroed.  Runs through the provider, so it covers the dispatch too. */
static void evp_seal(const uint8_t *key, const uint8_t *nonce, const uint8_t *aad, size_t aad_len,
                     const uint8_t *pt, size_t len, uint8_t *ct, uint8_t *tag)
{
    EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
    int n;
    cr_assert_eq(EVP_EncryptInit_ex(c, EVP_aes_128_gcm(), NULL, key, nonce), 1);
    if (aad_len)
        cr_assert_eq(EVP_EncryptUpdate(c, NULL, &n, aad, (int)aad_len), 1);
    if (len)
        cr_assert_eq(EVP_EncryptUpdate(c, ct, &n, pt, (int)len), 1);
    cr_assert_eq(EVP_EncryptFinal_ex(c, ct + len, &n), 1);
    cr_assert_eq(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, tag), 1);
    EVP_CIPHER_CTX_free(c);
}

Test(aead, short_records_match_evp)
{
    const struct sdp_aead_provider *p = by_name("openssl-aes128gcm");
    cr_log_info("short-record path %s", sdp_gcm_small_available() ? "in use" : "unavailable: EVP compared with itself");
    static uint8_t pt[700], ct[700], ref[700], back[700], aad[100];
    uint8_t key[16], iv[12], nonce[12], tag[16], rtag[16];
    srand(12345);
    for (int round = 0; round < 3000; round++) {
        for (size_t i = 0; i < sizeof(key); i++)
            key[i] = (uint8_t)rand();
        for (size_t i = 0; i < sizeof(iv); i++)
            iv[i] = (uint8_t)rand();
        size_t len = round < 700 ? (size_t)round : (size_t)rand() % 700;
        size_t aad_len = (size_t)rand() % (round % 5 == 0 ? 100 : 17);
        for (size_t i = 0; i < len; i++)
            pt[i] = (uint8_t)rand();
        for (size_t i = 0; i < aad_len; i++)
            aad[i] = (uint8_t)rand();
        uint64_t seq = ((uint64_t)rand() << 32) ^ (uint64_t)rand();
        struct sdp_aead_key *k;
        cr_assert_eq(p->key_new(key, 16, iv, &k), 0);
        sdp_aead_nonce(nonce, iv, seq);
        evp_seal(key, nonce, aad, aad_len, pt, len, ref, rtag);
        cr_assert_eq(p->seal(k, seq, aad, aad_len, pt, len, ct, tag), 0);
        cr_assert(memcmp(ct, ref, len) == 0 && memcmp(tag, rtag, 16) == 0, "len %zu aad %zu differs", len, aad_len);
        cr_assert_eq(p->open(k, seq, aad, aad_len, ct, len, tag, back), 0, "len %zu aad %zu", len, aad_len);
        cr_assert(memcmp(back, pt, len) == 0);
        if (round % 7 == 0)
            p->key_idle(k); /* the next record makes the schedule again */
        memcpy(back, pt, len); /* in place both ways */
        cr_assert_eq(p->seal(k, seq, aad, aad_len, back, len, back, tag), 0);
        cr_assert(memcmp(back, ref, len) == 0);
        cr_assert_eq(p->open(k, seq, aad, aad_len, back, len, tag, back), 0);
        cr_assert(memcmp(back, pt, len) == 0);
        /* one flipped bit: in the tag, the AAD or the ciphertext */
        size_t where = (size_t)rand() % (16 + aad_len + len);
        uint8_t bit = (uint8_t)(1u << (rand() % 8));
        uint8_t *at = where < 16 ? tag + where : where < 16 + aad_len ? aad + (where - 16) : ct + (where - 16 - aad_len);
        *at ^= bit;
        memset(back, 0x5a, sizeof(back));
        cr_assert_eq(p->open(k, seq, aad, aad_len, ct, len, tag, back), SDP_EBADMSG, "forgery at %zu opened", where);
        for (size_t i = 0; i < len; i++)
            cr_assert_eq(back[i], 0, "output not zeroed");
        *at ^= bit;
        cr_assert_eq(p->open(k, seq + 1, aad, aad_len, ct, len, tag, back), SDP_EBADMSG, "wrong nonce opened");
        p->key_free(k);
    }
}
