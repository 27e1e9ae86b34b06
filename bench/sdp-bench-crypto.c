/* Crypto micro-benchmark: ns per record and GB/s for sealing and opening
 * records through the record layer with every provider, next to raw
 * OpenSSL EVP AES-GCM used the best-practice way (one context reused, only
 * the IV set per record), measured in the same run and interleaved with
 * ours so that machine noise hits both alike.  Prints ours/raw.
 *
 * Usage: sdp-bench-crypto [--quick] [--reps N] [--ms MS]
 *   --quick  under 1 s in all; default about 4 s
 *   --reps   repetitions per cell (median reported; 5 to 101)
 *   --ms     target milliseconds per repetition */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "crypto/keymem.h"
#include "crypto/record.h"
#include "sdp/sdp.h"

#define MAX_IMPL 8
static const uint32_t sizes[] = {64, 128, 1400, 16384};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static volatile uint8_t sink;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Raw EVP, as a careful application would use it. */
struct raw {
    EVP_CIPHER_CTX *enc, *dec;
    uint8_t iv[12];
};

static void raw_nonce(uint8_t n[12], const uint8_t iv[12], uint64_t seq)
{
    memcpy(n, iv, 12);
    for (int i = 0; i < 8; i++)
        n[11 - i] ^= (uint8_t)(seq >> (8 * i));
}

static int raw_init(struct raw *r, const char *alg, const uint8_t *key)
{
    EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, alg, NULL);
    r->enc = EVP_CIPHER_CTX_new();
    r->dec = EVP_CIPHER_CTX_new();
    if (c == NULL || r->enc == NULL || r->dec == NULL ||
        EVP_EncryptInit_ex(r->enc, c, NULL, key, NULL) != 1 ||
        EVP_DecryptInit_ex(r->dec, c, NULL, key, NULL) != 1)
        return -1;
    EVP_CIPHER_free(c); /* the contexts keep their own reference */
    sdp_random_bytes(r->iv, 12);
    return 0;
}

static void raw_free(struct raw *r)
{
    EVP_CIPHER_CTX_free(r->enc);
    EVP_CIPHER_CTX_free(r->dec);
}

static int raw_seal(struct raw *r, uint64_t seq, const uint8_t *aad, const uint8_t *pt, int len,
                    uint8_t *ct, uint8_t *tag)
{
    uint8_t n[12];
    int l;
    raw_nonce(n, r->iv, seq);
    if (EVP_EncryptInit_ex(r->enc, NULL, NULL, NULL, n) != 1 ||
        EVP_EncryptUpdate(r->enc, NULL, &l, aad, 16) != 1 ||
        EVP_EncryptUpdate(r->enc, ct, &l, pt, len) != 1 ||
        EVP_EncryptFinal_ex(r->enc, ct + len, &l) != 1 ||
        EVP_CIPHER_CTX_ctrl(r->enc, EVP_CTRL_AEAD_GET_TAG, 16, tag) != 1)
        return -1;
    return 0;
}

static int raw_open(struct raw *r, uint64_t seq, const uint8_t *aad, const uint8_t *ct, int len,
                    uint8_t *tag, uint8_t *pt)
{
    uint8_t n[12];
    int l;
    raw_nonce(n, r->iv, seq);
    if (EVP_DecryptInit_ex(r->dec, NULL, NULL, NULL, n) != 1 ||
        EVP_CIPHER_CTX_ctrl(r->dec, EVP_CTRL_AEAD_SET_TAG, 16, tag) != 1 ||
        EVP_DecryptUpdate(r->dec, NULL, &l, aad, 16) != 1 ||
        EVP_DecryptUpdate(r->dec, pt, &l, ct, len) != 1 ||
        EVP_DecryptFinal_ex(r->dec, pt + len, &l) != 1)
        return -1;
    return 0;
}

struct impl {
    const char *name;
    const struct sdp_aead_provider *prov; /* NULL for raw EVP */
    struct sdp_rec_key rk;
    struct raw raw;
    int raw_of;    /* for ours: index of the raw impl to compare with, or -1 */
    uint64_t next_id;
    double med[NSIZES][2];
};

static uint8_t *pt, *ct, *out, tag[16];
static uint8_t aad[16]; /* raw EVP: a fixed 16-byte AAD, as long as ours */

/* One timed batch of iters records; returns ns per record. */
static double run(struct impl *im, uint32_t size, int open, long iters)
{
    double t0 = now_ns();
    if (im->prov != NULL) {
        struct sdp_rec_key *rk = &im->rk;
        if (open) {
            uint64_t id = im->next_id;
            for (long i = 0; i < iters; i++)
                if (sdp_rec_open(rk, id, size, (uint16_t)size, 0, 0, ct, tag, out) != 0)
                    abort();
        } else {
            for (long i = 0; i < iters; i++)
                if (sdp_rec_seal(rk, ++im->next_id, size, (uint16_t)size, 0, 0, pt, ct, tag) != 0)
                    abort();
        }
    } else {
        if (open) {
            uint64_t seq = im->next_id << 16;
            for (long i = 0; i < iters; i++)
                if (raw_open(&im->raw, seq, aad, ct, (int)size, tag, out) != 0)
                    abort();
        } else {
            for (long i = 0; i < iters; i++)
                if (raw_seal(&im->raw, ++im->next_id << 16, aad, pt, (int)size, ct, tag) != 0)
                    abort();
        }
    }
    double dt = now_ns() - t0;
    sink ^= tag[0] ^ out[0];
    return dt / (double)iters;
}

/* Leaves a valid record (sealed last) in ct/tag for the opens. */
static void prime(struct impl *im, uint32_t size)
{
    run(im, size, 0, 1);
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int reps = 21;
    double ms = 4;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--quick") == 0) {
            reps = 9;
            ms = 1.5;
        } else if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc) {
            reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--ms") == 0 && i + 1 < argc) {
            ms = atof(argv[++i]);
        } else {
            fprintf(stderr, "usage: %s [--quick] [--reps N] [--ms MS]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 5)
        reps = 5;
    if (reps > 101)
        reps = 101;
    if (sdp_keymem_init() != 0)
        return 1;

    static struct impl impls[MAX_IMPL];
    int n = 0;
    uint8_t key[32], secret[32];
    sdp_random_bytes(key, sizeof(key));
    sdp_random_bytes(secret, sizeof(secret));
    impls[n] = (struct impl){.name = "raw-evp-aes128gcm", .raw_of = -1};
    if (raw_init(&impls[n].raw, "AES-128-GCM", key) != 0)
        return 1;
    int raw128 = n++;
    impls[n] = (struct impl){.name = "raw-evp-aes256gcm", .raw_of = -1};
    if (raw_init(&impls[n].raw, "AES-256-GCM", key) != 0)
        return 1;
    int raw256 = n++;
    for (const struct sdp_aead_provider *const *pp = sdp_aead_all(); *pp && n < MAX_IMPL; pp++) {
        const struct sdp_aead_provider *p = *pp;
        if (!p->available()) {
            printf("# %s: not available here, skipped\n", p->name);
            continue;
        }
        struct impl *im = &impls[n];
        *im = (struct impl){.name = p->name, .prov = p, .raw_of = -1};
        struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
        if (tk == NULL || sdp_keysched_derive(p->suite, secret, tk) != 0 ||
            sdp_rec_key_init(&im->rk, p, tk, 0, 0) != 0)
            return 1;
        sdp_traffic_keys_free(tk);
        im->rk.seal_limit = UINT64_MAX; /* a benchmark seals more than a key may */
        if (p->suite == SDP_SUITE_AES128GCM)
            im->raw_of = raw128;
        else if (p->suite == SDP_SUITE_AES256GCM)
            im->raw_of = raw256;
        n++;
    }

    /* Each raw EVP batch runs right before the batches compared with it, so
     * a change of machine load between them is as short as possible. */
    int order[MAX_IMPL], no = 0;
    for (int r = 0; r < n; r++) {
        if (impls[r].prov != NULL)
            continue;
        order[no++] = r;
        for (int i = 0; i < n; i++)
            if (impls[i].raw_of == r)
                order[no++] = i;
    }
    for (int i = 0; i < n; i++)
        if (impls[i].prov != NULL && impls[i].raw_of < 0)
            order[no++] = i;

    pt = malloc(16384);
    ct = malloc(16384 + 16);
    out = malloc(16384 + 16);
    sdp_random_bytes(pt, 16384);

    double *samples = malloc(sizeof(double) * (size_t)reps);
    double t_start = now_ns();
    for (size_t s = 0; s < NSIZES; s++) {
        for (int op = 0; op < 2; op++) {
            /* Calibrate each implementation's batch to about ms. */
            long iters[MAX_IMPL];
            for (int i = 0; i < n; i++) {
                prime(&impls[i], sizes[s]);
                double one = run(&impls[i], sizes[s], op, 200);
                iters[i] = (long)(ms * 1e6 / (one > 1 ? one : 1));
                if (iters[i] < 50)
                    iters[i] = 50;
            }
            double all[MAX_IMPL][101];
            for (int r = 0; r < reps; r++)
                for (int j = 0; j < n; j++) {
                    int i = order[j];
                    prime(&impls[i], sizes[s]);
                    all[i][r] = run(&impls[i], sizes[s], op, iters[i]);
                }
            for (int i = 0; i < n; i++) {
                memcpy(samples, all[i], sizeof(double) * (size_t)reps);
                qsort(samples, (size_t)reps, sizeof(double), cmpd);
                impls[i].med[s][op] = samples[reps / 2];
            }
        }
    }
    double elapsed = (now_ns() - t_start) / 1e9;

    printf("# sdp-bench-crypto: median of %d repetitions of ~%.0f ms each; record layer (AAD, "
           "layout checks) vs raw EVP\n", reps, ms);
    printf("%-28s %6s %10s %8s %10s %8s %9s %9s\n", "implementation", "bytes", "seal ns", "GB/s",
           "open ns", "GB/s", "seal/raw", "open/raw");
    for (int i = 0; i < n; i++) {
        struct impl *im = &impls[i];
        for (size_t s = 0; s < NSIZES; s++) {
            char rs[16] = "-", ro[16] = "-";
            if (im->raw_of >= 0) {
                snprintf(rs, sizeof(rs), "%.3f", im->med[s][0] / impls[im->raw_of].med[s][0]);
                snprintf(ro, sizeof(ro), "%.3f", im->med[s][1] / impls[im->raw_of].med[s][1]);
            }
            printf("%-28s %6u %10.1f %8.2f %10.1f %8.2f %9s %9s\n", im->name, sizes[s],
                   im->med[s][0], sizes[s] / im->med[s][0], im->med[s][1],
                   sizes[s] / im->med[s][1], rs, ro);
        }
    }
    printf("# total %.2f s; null-INSECURE measures the record layer without crypto\n", elapsed);

    for (int i = 0; i < n; i++) {
        if (impls[i].prov != NULL)
            sdp_rec_key_clear(&impls[i].rk);
        else
            raw_free(&impls[i].raw);
    }
    free(samples);
    free(pt);
    free(ct);
    free(out);
    return 0;
}
