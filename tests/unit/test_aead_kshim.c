/* The kshim provider on a host without the module: unavailable, never
 * chosen by suite, and explicit about the OpenSSL fallback; the socket
 * setting kernel_crypto likewise.  The module
 * itself is tested in a qemu guest (tests/kshim/run-guest-tests.sh). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/aead_kshim.h"
#include "sdp/sdp.h"

static const struct sdp_aead_provider *kshim(void)
{
    const struct sdp_aead_provider *p = NULL;
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++)
        if (strcmp((*pp)->name, "kshim-aes128gcm") == 0)
            p = *pp;
    cr_assert_not_null(p);
    return p;
}

Test(aead_kshim, never_chosen_by_suite)
{
    const struct sdp_aead_provider *p = NULL;
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, NULL, 0, &p), 0);
    cr_assert_str_eq(p->name, "openssl-aes128gcm");
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES256GCM, NULL, 0, &p), 0);
    cr_assert(strncmp(p->name, "kshim", 5) != 0);
}

Test(aead_kshim, unavailable_without_device)
{
    if (access("/dev/sdp_kshim", F_OK) == 0)
        cr_skip_test("the module is loaded here");
    unsetenv("SDP_KSHIM_FALLBACK");
    const struct sdp_aead_provider *p = kshim(), *q = NULL;
    uint8_t key[16] = {1}, iv[12] = {2};
    struct sdp_aead_key *k = (void *)1;
    cr_assert_eq(p->available(), 0);
    cr_assert_eq(sdp_aead_find(SDP_SUITE_AES128GCM, "kshim-aes128gcm", 0, &q), SDP_EUNAVAIL);
    cr_assert_eq(p->key_new(key, 16, iv, &k), SDP_EUNAVAIL);
    cr_assert_null(k);
    cr_assert_lt(sdp_aead_kshim_dev_fd(), 0);
    cr_assert_eq(sdp_aead_kshim_attach(0), SDP_EUNAVAIL);
}

Test(aead_kshim, fallback_to_openssl_when_asked)
{
    if (access("/dev/sdp_kshim", F_OK) == 0)
        cr_skip_test("the module is loaded here");
    setenv("SDP_KSHIM_FALLBACK", "openssl", 1);
    const struct sdp_aead_provider *p = kshim(), *o = NULL;
    cr_assert_eq(sdp_aead_find(0, "openssl-aes128gcm", 0, &o), 0);
    uint8_t key[16] = {1}, iv[12] = {2}, pt[40] = {3}, a[40], b[40], ta[16], tb[16], back[40];
    struct sdp_aead_key *k, *ko;
    cr_assert_eq(p->available(), 1);
    cr_assert_eq(p->key_new(key, 16, iv, &k), 0);
    cr_assert_eq(o->key_new(key, 16, iv, &ko), 0);
    cr_assert_eq(p->seal(k, 77, pt, 7, pt, sizeof(pt), a, ta), 0);
    cr_assert_eq(o->seal(ko, 77, pt, 7, pt, sizeof(pt), b, tb), 0);
    cr_assert(memcmp(a, b, sizeof(a)) == 0 && memcmp(ta, tb, 16) == 0);
    cr_assert_eq(p->open(k, 77, pt, 7, a, sizeof(a), ta, back), 0);
    cr_assert(memcmp(back, pt, sizeof(pt)) == 0);
    cr_assert_eq(sdp_aead_kshim_tx_id(k), 0); /* nothing the kernel could use */
    p->key_free(k);
    o->key_free(ko);
    unsetenv("SDP_KSHIM_FALLBACK");
}

/* sdp_config.kernel_crypto without the module: REQUIRE refuses the socket
 * (SDP_EUNAVAIL), PREFER opens one on OpenSSL that works, other values are
 * refused. */
Test(aead_kshim, kernel_crypto_config_without_module)
{
    if (access("/dev/sdp_kshim", F_OK) == 0)
        cr_skip_test("the module is loaded here");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct sdp_config c;
    sdp_socket *s = NULL, *t = NULL;
    sdp_config_default(&c);
    cr_assert_eq(c.kernel_crypto, SDP_KERNEL_CRYPTO_OFF, "off by default");
    c.kernel_crypto = SDP_KERNEL_CRYPTO_REQUIRE;
    cr_assert_eq(sdp_open((struct sockaddr *)&a, sizeof(a), &c, &s), SDP_EUNAVAIL);
    c.kernel_crypto = (enum sdp_kernel_crypto)7;
    cr_assert_eq(sdp_open((struct sockaddr *)&a, sizeof(a), &c, &s), SDP_EINVAL);
    c.kernel_crypto = SDP_KERNEL_CRYPTO_PREFER;
    cr_assert_eq(sdp_open((struct sockaddr *)&a, sizeof(a), &c, &s), 0);
    cr_assert_eq(sdp_open((struct sockaddr *)&a, sizeof(a), &c, &t), 0);
    struct sockaddr_storage sa, ta;
    socklen_t sl, tl;
    sdp_local_addr(s, &sa, &sl);
    sdp_local_addr(t, &ta, &tl);
    uint8_t k1[SDP_SECRET_LEN] = {1}, k2[SDP_SECRET_LEN] = {2};
    cr_assert_eq(sdp_set_peer_keys(s, (struct sockaddr *)&ta, tl, SDP_CIPHER_AES128GCM, k1, k2), 0);
    cr_assert_eq(sdp_set_peer_keys(t, (struct sockaddr *)&sa, sl, SDP_CIPHER_AES128GCM, k2, k1), 0);
    static uint8_t msg[40000];
    memset(msg, 0x3c, sizeof(msg));
    cr_assert_eq(sdp_send(s, (struct sockaddr *)&ta, tl, msg, sizeof(msg), 9, NULL), 0);
    struct sdp_msg m;
    int got = 0;
    for (int i = 0; i < 2000 && !got; i++) {
        sdp_process(s, 0);
        got = sdp_recv(t, &m, 1) == 0;
    }
    cr_assert(got, "the request arrived");
    cr_assert_eq(m.len, sizeof(msg));
    cr_assert_eq(memcmp(m.data, msg, sizeof(msg)), 0);
    sdp_release(t, &m);
    sdp_close(s);
    sdp_close(t);
}
