/* Key schedule: HKDF-Expand-Label against published traces (RFC 8448
 * section 3, RFC 9001 appendix A), then our own labels. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "crypto/keymem.h"
#include "crypto/keysched.h"
#include "sdp/sdp.h"

static void hex(const char *s, uint8_t *out, size_t n)
{
    size_t j = 0;
    for (; *s && j < n; s++) {
        if (*s == ' ')
            continue;
        unsigned v;
        cr_assert_eq(sscanf(s, "%2x", &v), 1);
        out[j++] = (uint8_t)v;
        s++;
    }
    cr_assert_eq(j, n, "hex length");
    cr_assert_eq(*s, '\0', "hex too long");
}

static void expect_label(const char *secret_hex, const char *label, const char *want_hex,
                         size_t n)
{
    uint8_t secret[32], want[64], got[64];
    hex(secret_hex, secret, 32);
    hex(want_hex, want, n);
    cr_assert_eq(sdp_hkdf_expand_label("SHA256", secret, 32, label, NULL, 0, got, n), 0);
    cr_assert(memcmp(got, want, n) == 0, "label \"%s\" mismatch", label);
}

/* RFC 8448 section 3, {server} and {client} "derive write traffic keys
 * for handshake data": TLS 1.3's own labels "key" and "iv". */
Test(keysched, rfc8448_handshake_traffic_keys)
{
    const char *s_hs = "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4"
                       " e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";
    expect_label(s_hs, "key", "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc", 16);
    expect_label(s_hs, "iv", "5d 31 3e b2 67 12 76 ee 13 00 0b 30", 12);
    const char *c_hs = "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f"
                       " 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21";
    expect_label(c_hs, "key", "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01", 16);
    expect_label(c_hs, "iv", "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f", 12);
}

/* RFC 9001 A.1: client and server Initial packet protection. */
Test(keysched, rfc9001_initial_keys)
{
    const char *client = "c00cf151ca5be075ed0ebfb5c80323c42d6b7db67881289af4008f1f6c357aea";
    expect_label(client, "quic key", "1f369613dd76d5467730efcbe3b1a22d", 16);
    expect_label(client, "quic iv", "fa044b2f42a3fd3b46fb255c", 12);
    expect_label(client, "quic hp", "9f50449e04a0e810283a1e9933adedd2", 16);
    const char *server = "3c199828fd139efd216c155ad844cc81fb82fa8d7446fa7d78be803acdda951b";
    expect_label(server, "quic key", "cf3a5331653c364c88f0f379b6067e37", 16);
    expect_label(server, "quic iv", "0ac1493ca1905853b0bba03e", 12);
    expect_label(server, "quic hp", "c206b8d9b9f0f37644430b490eeaa314", 16);
}

/* RFC 9001 A.5: ChaCha20-Poly1305 keys and the "quic ku" key update. */
Test(keysched, rfc9001_chacha_and_key_update)
{
    const char *s = "9ac312a7f877468ebe69422748ad00a15443f18203a07d6060f688f30f21632b";
    expect_label(s, "quic key", "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8",
                 32);
    expect_label(s, "quic iv", "e0459b3474bdd0e44a41c144", 12);
    expect_label(s, "quic hp", "25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4",
                 32);
    expect_label(s, "quic ku", "1223504755036d556342ee9361d253421a826c9ecdf3c7148684b36b714881f9",
                 32);
}

/* A non-empty context changes the output (the KDF really takes it). */
Test(keysched, context_is_bound)
{
    uint8_t secret[32] = {1}, a[32], b[32], ctx[3] = {1, 2, 3};
    cr_assert_eq(sdp_hkdf_expand_label("SHA256", secret, 32, "x", NULL, 0, a, 32), 0);
    cr_assert_eq(sdp_hkdf_expand_label("SHA256", secret, 32, "x", ctx, 3, b, 32), 0);
    cr_assert(memcmp(a, b, 32) != 0);
    cr_assert_eq(sdp_hkdf_expand_label("SHA384", secret, 32, "x", NULL, 0, b, 32), 0);
    cr_assert(memcmp(a, b, 32) != 0);
}

Test(keysched, rejects_bad_arguments)
{
    uint8_t secret[32] = {0}, out[32];
    char longlabel[300];
    memset(longlabel, 'a', sizeof(longlabel) - 1);
    longlabel[sizeof(longlabel) - 1] = '\0';
    cr_assert_eq(sdp_hkdf_expand_label("SHA256", secret, 32, longlabel, NULL, 0, out, 32), SDP_EINVAL);
    cr_assert_eq(sdp_hkdf_expand_label("SHA256", secret, 0, "x", NULL, 0, out, 32), SDP_EINVAL);
    cr_assert_eq(sdp_hkdf_expand_label("SHA256", secret, 32, "x", NULL, 5, out, 32), SDP_EINVAL);
    cr_assert_eq(sdp_hkdf_expand_label("NO-SUCH-DIGEST", secret, 32, "x", NULL, 0, out, 32),
                 SDP_ECRYPTO);
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    cr_assert_eq(sdp_keysched_derive((enum sdp_suite)9, secret, tk), SDP_EINVAL);
    sdp_traffic_keys_free(tk);
}

/* Our derivation is HKDF-Expand-Label with the documented labels. */
Test(keysched, derive_uses_documented_labels)
{
    uint8_t secret[32], want[32];
    sdp_random_bytes(secret, sizeof(secret));
    static const enum sdp_suite suites[] = {SDP_SUITE_AES128GCM, SDP_SUITE_AES256GCM,
                                            SDP_SUITE_CHACHA20POLY1305, SDP_SUITE_NULL_INSECURE};
    for (size_t i = 0; i < 4; i++) {
        struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
        cr_assert_not_null(tk);
        cr_assert_eq(sdp_keysched_derive(suites[i], secret, tk), 0);
        size_t kl = sdp_suite_key_len(suites[i]);
        cr_assert_eq(tk->key_len, kl);
        cr_assert_eq(tk->suite, suites[i]);
        sdp_hkdf_expand_label("SHA256", secret, 32, "sdp key", NULL, 0, want, kl);
        cr_assert(memcmp(tk->key, want, kl) == 0);
        sdp_hkdf_expand_label("SHA256", secret, 32, "sdp iv", NULL, 0, want, 12);
        cr_assert(memcmp(tk->iv, want, 12) == 0);
        sdp_hkdf_expand_label("SHA256", secret, 32, "sdp ctl key", NULL, 0, want, kl);
        cr_assert(memcmp(tk->ctl_key, want, kl) == 0);
        sdp_hkdf_expand_label("SHA256", secret, 32, "sdp ctl iv", NULL, 0, want, 12);
        cr_assert(memcmp(tk->ctl_iv, want, 12) == 0);
        sdp_traffic_keys_free(tk);
    }
}

/* The five labels give five different outputs, and the length is bound
 * into the label (a 16-byte key is not a prefix of a 32-byte one). */
Test(keysched, labels_are_distinct)
{
    uint8_t secret[32], out[5][32];
    static const char *labels[5] = {SDP_LABEL_KEY, SDP_LABEL_IV, SDP_LABEL_CTL_KEY,
                                    SDP_LABEL_CTL_IV, SDP_LABEL_KU};
    sdp_random_bytes(secret, sizeof(secret));
    for (int i = 0; i < 5; i++)
        cr_assert_eq(sdp_hkdf_expand_label("SHA256", secret, 32, labels[i], NULL, 0, out[i], 32), 0);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            cr_assert(memcmp(out[i], out[j], 12) != 0, "%s vs %s", labels[i], labels[j]);
    uint8_t k16[16];
    sdp_hkdf_expand_label("SHA256", secret, 32, SDP_LABEL_KEY, NULL, 0, k16, 16);
    cr_assert(memcmp(k16, out[0], 16) != 0);

    /* Directions: different secrets give unrelated keys. */
    struct sdp_traffic_keys *a = sdp_traffic_keys_new(), *b = sdp_traffic_keys_new();
    uint8_t other[32];
    memcpy(other, secret, 32);
    other[31] ^= 1;
    sdp_keysched_derive(SDP_SUITE_AES128GCM, secret, a);
    sdp_keysched_derive(SDP_SUITE_AES128GCM, other, b);
    cr_assert(memcmp(a->key, b->key, 16) != 0 && memcmp(a->iv, b->iv, 12) != 0);
    cr_assert(memcmp(a->key, a->ctl_key, 16) != 0 && memcmp(a->iv, a->ctl_iv, 12) != 0);
    sdp_traffic_keys_free(a);
    sdp_traffic_keys_free(b);
}

Test(keysched, next_generation)
{
    uint8_t s[32], n1[32], n2[32], want[32];
    sdp_random_bytes(s, sizeof(s));
    cr_assert_eq(sdp_keysched_next(s, n1), 0);
    sdp_hkdf_expand_label("SHA256", s, 32, "sdp ku", NULL, 0, want, 32);
    cr_assert(memcmp(n1, want, 32) == 0);
    cr_assert(memcmp(n1, s, 32) != 0);
    memcpy(n2, s, 32);
    cr_assert_eq(sdp_keysched_next(n2, n2), 0); /* aliasing allowed */
    cr_assert(memcmp(n1, n2, 32) == 0);
    cr_assert_eq(sdp_keysched_next(n1, n2), 0);
    cr_assert(memcmp(n1, n2, 32) != 0);
}
