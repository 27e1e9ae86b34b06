/* sdp-selftest: a readable end-to-end check of the crypto layer, run by
 * `make demo`.  For every provider: derive keys from fresh random secrets,
 * seal a 40,000-byte message record by record, open the records in reverse
 * order, and show that tampering, replay under another index and the wrong
 * direction's keys are refused; finally show the null provider is refused
 * unless explicitly allowed.  Exit status 0 only if every step passed. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/keymem.h"
#include "crypto/record.h"
#include "sdp/sdp.h"

#define MSG_LEN 40000u
#define REC_SIZE 16384u
#define NREC ((MSG_LEN + REC_SIZE - 1) / REC_SIZE)

static int passed, failed;

__attribute__((format(printf, 2, 3))) static void step(int ok, const char *fmt, ...)
{
    va_list ap;
    printf("  [%s] ", ok ? " ok " : "FAIL");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    if (ok)
        passed++;
    else
        failed++;
}

static uint32_t rec_len(uint32_t idx)
{
    uint32_t off = idx * REC_SIZE;
    return MSG_LEN - off < REC_SIZE ? MSG_LEN - off : REC_SIZE;
}

static uint8_t *rec_at(uint8_t *wire, uint32_t idx)
{
    return wire + (size_t)idx * (REC_SIZE + SDP_AEAD_TAG_LEN);
}

static int make_keys(const struct sdp_aead_provider *p, const uint8_t secret[32],
                     struct sdp_rec_key *rk)
{
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    if (tk == NULL)
        return SDP_ENOMEM;
    int rc = sdp_keysched_derive(p->suite, secret, tk);
    if (rc == 0)
        rc = sdp_rec_key_init(rk, p, tk, 0, 0);
    sdp_traffic_keys_free(tk); /* the record keys hold their own copies */
    return rc;
}

static void check_provider(const struct sdp_aead_provider *p, const uint8_t tx[32],
                           const uint8_t rx[32], const uint8_t *msg)
{
    int insecure = (p->flags & SDP_AEAD_F_INSECURE) != 0;
    struct sdp_rec_key send, recv, other;
    uint64_t id = 0x2a; /* an even (client) message id */

    printf("%s (%s, %zu-byte key)%s\n", p->name, sdp_suite_name(p->suite), p->key_len,
           insecure ? "  -- explicitly allowed, NO PROTECTION" : "");
    int rc = make_keys(p, tx, &send);
    int rc2 = make_keys(p, tx, &recv);
    int rc3 = make_keys(p, rx, &other);
    step(rc == 0 && rc2 == 0 && rc3 == 0, "derived data and control keys from the tx and rx secrets");
    if (rc || rc2 || rc3)
        return;

    uint8_t *wire = malloc((size_t)MSG_LEN + NREC * SDP_AEAD_TAG_LEN);
    uint8_t *got = calloc(1, MSG_LEN);
    int ok = 1;
    for (uint32_t i = 0; i < NREC; i++) {
        uint8_t *w = rec_at(wire, i);
        ok &= sdp_rec_seal(&send, id, MSG_LEN, REC_SIZE, i, 0, msg + i * REC_SIZE, w,
                           w + rec_len(i)) == 0;
    }
    step(ok, "sealed a %u-byte message as %u records (%u, %u, %u bytes + 16-byte tags)", MSG_LEN,
         NREC, rec_len(0), rec_len(1), rec_len(2));
    if (!insecure)
        step(memcmp(wire, msg, 64) != 0, "ciphertext differs from the plaintext");

    ok = 1;
    for (uint32_t i = NREC; i-- > 0;) {
        uint8_t *w = rec_at(wire, i);
        ok &= sdp_rec_open(&recv, id, MSG_LEN, REC_SIZE, i, 0, w, w + rec_len(i),
                           got + i * REC_SIZE) == 0;
    }
    step(ok && memcmp(got, msg, MSG_LEN) == 0,
         "opened the records in reverse order (2, 1, 0); content matches");

    uint8_t *w1 = rec_at(wire, 1), scratch[REC_SIZE];
    uint8_t *tag1 = w1 + rec_len(1);
    if (!insecure) {
        w1[100] ^= 0x08;
        rc = sdp_rec_open(&recv, id, MSG_LEN, REC_SIZE, 1, 0, w1, tag1, scratch);
        step(rc == SDP_EBADMSG, "one flipped ciphertext bit in record 1: refused (%s)",
             sdp_strerror(rc));
        w1[100] ^= 0x08;
    }
    tag1[3] ^= 0x01;
    rc = sdp_rec_open(&recv, id, MSG_LEN, REC_SIZE, 1, 0, w1, tag1, scratch);
    step(rc == SDP_EBADMSG, "one flipped tag bit in record 1: refused (%s)", sdp_strerror(rc));
    tag1[3] ^= 0x01;

    if (!insecure) {
        /* Replays: record 0 (a full 16 KB record) presented as record 1,
         * and as record 0 of another message. */
        uint8_t *w0 = rec_at(wire, 0);
        rc = sdp_rec_open(&recv, id, MSG_LEN, REC_SIZE, 1, 0, w0, w0 + REC_SIZE, scratch);
        step(rc == SDP_EBADMSG, "record 0 replayed as record 1 of the same message: refused");
        rc = sdp_rec_open(&recv, id + 2, MSG_LEN, REC_SIZE, 0, 0, w0, w0 + REC_SIZE, scratch);
        step(rc == SDP_EBADMSG, "record 0 replayed into message %#llx: refused",
             (unsigned long long)(id + 2));
        rc = sdp_rec_open(&other, id, MSG_LEN, REC_SIZE, 0, 0, w0, w0 + REC_SIZE, scratch);
        step(rc == SDP_EBADMSG, "record 0 opened with the other direction's keys: refused");
        step(recv.open_failed == 4, "failed opens counted toward the integrity limit (%llu)",
             (unsigned long long)recv.open_failed);

        /* A control packet (BUSY: header + ctl_seq + tag). */
        uint8_t pkt[32] = {0x15, 0, 0, 0, 0, 0, 0, 0x2b, 0, 0, 0, 0, 0, 0, 0, 1};
        rc = sdp_ctl_seal(&send, pkt, sizeof(pkt), 1);
        rc2 = sdp_ctl_open(&recv, pkt, sizeof(pkt), 1);
        pkt[7] ^= 1;
        rc3 = sdp_ctl_open(&recv, pkt, sizeof(pkt), 1);
        step(rc == 0 && rc2 == 0 && rc3 == SDP_EBADMSG,
             "control packet tag verifies; a changed RPC id is refused");
    }
    sdp_rec_key_clear(&send);
    sdp_rec_key_clear(&recv);
    sdp_rec_key_clear(&other);
    free(wire);
    free(got);
}

int main(void)
{
    uint8_t tx[SDP_SECRET_LEN], rx[SDP_SECRET_LEN];
    const struct sdp_aead_provider *p;

    printf("sdp-selftest: crypto layer self-check (libsdp %d.%d)\n", SDP_VERSION_MAJOR,
           SDP_VERSION_MINOR);
    if (sdp_keymem_init() != 0) {
        printf("  [FAIL] libsodium initialisation\n");
        return 1;
    }
    sdp_random_bytes(tx, sizeof(tx));
    sdp_random_bytes(rx, sizeof(rx));
    uint8_t *msg = malloc(MSG_LEN);
    sdp_random_bytes(msg, MSG_LEN);
    printf("random tx and rx traffic secrets generated (locked memory); message of %u bytes\n",
           MSG_LEN);

    int tested = 0;
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp; pp++) {
        if ((*pp)->flags & SDP_AEAD_F_INSECURE)
            continue;
        if (!(*pp)->available()) {
            printf("%s: not available on this machine, skipped\n", (*pp)->name);
            continue;
        }
        check_provider(*pp, tx, rx, msg);
        tested++;
    }
    step(tested >= 3, "%d real providers checked", tested);

    printf("null provider\n");
    int rc = sdp_aead_find(SDP_SUITE_NULL_INSECURE, NULL, 0, &p);
    step(rc == SDP_EINSECURE, "requested without the explicit flag: refused (%s)", sdp_strerror(rc));
    rc = sdp_aead_find(SDP_SUITE_NULL_INSECURE, NULL, SDP_AEAD_ALLOW_INSECURE, &p);
    step(rc == 0 && (p->flags & SDP_AEAD_F_INSECURE), "with SDP_AEAD_ALLOW_INSECURE: granted (\"%s\")",
         rc == 0 ? p->name : "-");
    if (rc == 0)
        check_provider(p, tx, rx, msg);

    sdp_keymem_wipe(tx, sizeof(tx));
    sdp_keymem_wipe(rx, sizeof(rx));
    free(msg);
    printf("summary: %d steps passed, %d failed -> %s\n", passed, failed,
           failed ? "FAILURE" : "all good");
    return failed ? 1 : 0;
}
