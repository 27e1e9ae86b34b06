/* A peer's key lifecycle: generations, their derivation and their wiping
 * (docs/PROTOCOL.md section 7). */
#include "core/keys.h"

#include <string.h>

#include "crypto/keymem.h"
#include "crypto/keysched.h"
#include "sdp/sdp.h"
#include "wire/wire.h"

#define RX_SLOT(gen) ((gen) % SDP_RX_GENS)
#define RX_IDLE_TICKS 2

static int rx_held(const struct sdp_peer_keys *k, uint32_t gen)
{
    const struct sdp_rec_key *rk = &k->rx[RX_SLOT(gen)];
    return rk->prov != NULL && rk->generation == gen;
}

/* Derive the keys of one generation from its secret into rk. */
static int key_from_secret(const struct sdp_aead_provider *prov, enum sdp_suite suite,
                           const uint8_t secret[SDP_SECRET_LEN], uint32_t gen, uint64_t update_after,
                           struct sdp_rec_key *rk)
{
    struct sdp_traffic_keys *tk = sdp_traffic_keys_new();
    if (!tk)
        return SDP_ENOMEM;
    int rc = sdp_keysched_derive(suite, secret, tk);
    if (rc == 0)
        rc = sdp_rec_key_init(rk, prov, tk, gen, update_after);
    sdp_traffic_keys_free(tk);
    return rc;
}

/* The rare block, made on first need; NULL without memory. */
static struct sdp_peer_keys_rare *rare_get(struct sdp_peer_keys *k)
{
    if (!k->rare)
        k->rare = sdp_keymem_alloc(sizeof(*k->rare));
    return k->rare;
}

/* Freed once nothing is installed in it. */
static void rare_trim(struct sdp_peer_keys *k)
{
    struct sdp_peer_keys_rare *r = k->rare;
    if (r && !r->tx_prev.prov && !r->early_tx.prov && !r->early_rx.prov) {
        sdp_keymem_free(r);
        k->rare = NULL;
    }
}

static void rx_wipe(struct sdp_peer_keys *k, unsigned slot)
{
    sdp_rec_key_clear(&k->rx[slot]);
    sdp_keymem_wipe(k->sec->rx[slot], SDP_SECRET_LEN);
    k->rx_live[slot] = 0;
    k->rx_idle[slot] = 0;
}

int sdp_keys_init(struct sdp_peer_keys *k, const struct sdp_core_peer_cfg *pc, const struct sdp_aead_provider *prov,
                  uint64_t update_after)
{
    memset(k, 0, sizeof(*k));
    int rc = prov ? 0 : sdp_aead_find(pc->suite, NULL, pc->aead_flags, &prov);
    if (rc != 0)
        return rc;
    k->prov = prov;
    k->suite = pc->suite;
    k->update_after = update_after;
    k->sec = sdp_keymem_alloc(sizeof(*k->sec));
    if (!k->sec)
        return SDP_ENOMEM;
    memcpy(k->sec->tx, pc->tx_secret, SDP_SECRET_LEN);
    memcpy(k->sec->rx[0], pc->rx_secret, SDP_SECRET_LEN);
    if ((rc = key_from_secret(k->prov, k->suite, k->sec->tx, 0, update_after, &k->tx)) != 0 ||
        (rc = key_from_secret(k->prov, k->suite, k->sec->rx[0], 0, 0, &k->rx[0])) != 0) {
        sdp_keys_fini(k);
        return rc;
    }
    return 0;
}

void sdp_keys_fini(struct sdp_peer_keys *k)
{
    sdp_rec_key_clear(&k->tx);
    for (unsigned i = 0; i < SDP_RX_GENS; i++)
        sdp_rec_key_clear(&k->rx[i]);
    if (k->rare) {
        sdp_rec_key_clear(&k->rare->tx_prev);
        sdp_rec_key_clear(&k->rare->early_tx);
        sdp_rec_key_clear(&k->rare->early_rx);
        sdp_keymem_free(k->rare); /* wipes */
    }
    sdp_keymem_free(k->sec); /* wipes */
    memset(k, 0, sizeof(*k));
}

int sdp_keys_install0(struct sdp_peer_keys *k, const struct sdp_core_peer_cfg *pc, uint64_t update_after)
{
    struct sdp_peer_keys fresh;
    int rc = sdp_keys_init(&fresh, pc, k->prov, update_after);
    if (rc != 0)
        return rc;
    /* The early keys move over (their objects are owned, not copied): the
     * block that holds them does, without the old previous generation. */
    if (k->rare) {
        sdp_rec_key_clear(&k->rare->tx_prev);
        fresh.rare = k->rare;
        k->rare = NULL;
        rare_trim(&fresh);
    }
    fresh.early_live = k->early_live;
    fresh.early_open = k->early_open;
    fresh.keep_tx_prev = k->keep_tx_prev;
    sdp_keys_fini(k);
    *k = fresh;
    sdp_keymem_wipe(&fresh, sizeof(fresh));
    return 0;
}

int sdp_keys_tx_update(struct sdp_peer_keys *k, struct sdp_core_stats *st)
{
    if (k->keep_tx_prev && !rare_get(k))
        return SDP_ENOMEM;
    uint8_t *next = sdp_keymem_alloc(SDP_SECRET_LEN);
    if (!next)
        return SDP_ENOMEM;
    struct sdp_rec_key nk;
    uint32_t gen = k->tx.generation + 1;
    int rc = sdp_keysched_next(k->sec->tx, next);
    if (rc == 0)
        rc = key_from_secret(k->prov, k->suite, next, gen, k->update_after, &nk);
    if (rc == 0) {
        memcpy(k->sec->tx, next, SDP_SECRET_LEN);
        if (k->keep_tx_prev) {
            /* Pacing finished the generation before it (tx_live), unless the
             * hard limit forced this update: then its last messages fail. */
            sdp_rec_key_clear(&k->rare->tx_prev);
            k->rare->tx_prev = k->tx;
        } else {
            sdp_rec_key_clear(&k->tx);
        }
        k->tx = nk;
        sdp_keymem_wipe(&nk, sizeof(nk)); /* the struct only points at locked key objects */
        st->key_updates++;
    }
    sdp_keymem_free(next);
    if (rc != 0)
        rare_trim(k);
    return rc;
}

int sdp_keys_tx_maybe_update(struct sdp_peer_keys *k, uint64_t more, struct sdp_core_stats *st)
{
    const struct sdp_rec_key *t = &k->tx;
    uint32_t g = t->generation;
    if (t->data_sealed + more > t->seal_limit || t->ctl_sealed >= t->seal_limit) {
        if (t->data_sealed == 0 && t->ctl_sealed == 0)
            return 0; /* a fresh key: the message is too big for any key and fails */
        return sdp_keys_tx_update(k, st); /* the hard limit overrides the pacing below */
    }
    if (!sdp_rec_key_needs_update(t) && k->tx_want <= g)
        return 0;
    if (k->tx_confirmed <= g || (g >= 1 && k->tx_live[(g - 1) % SDP_RX_GENS] != 0))
        return 0; /* not yet: the peer could not tell the new generation from the old */
    return sdp_keys_tx_update(k, st);
}

void sdp_keys_tx_begin(struct sdp_peer_keys *k, uint32_t gen)
{
    k->tx_live[gen % SDP_RX_GENS]++;
}

void sdp_keys_tx_end(struct sdp_peer_keys *k, uint32_t gen)
{
    if (k->tx_live[gen % SDP_RX_GENS] > 0)
        k->tx_live[gen % SDP_RX_GENS]--;
    struct sdp_rec_key *prev = sdp_keys_tx_prev(k);
    if (prev && prev->generation == gen && k->tx_live[gen % SDP_RX_GENS] == 0) {
        sdp_rec_key_clear(prev);
        rare_trim(k);
    }
}

void sdp_keys_tx_confirm(struct sdp_peer_keys *k, uint32_t gen)
{
    if (gen + 1 > k->tx_confirmed)
        k->tx_confirmed = gen + 1;
}

unsigned sdp_keys_rx_candidates(const struct sdp_peer_keys *k, unsigned phase, int new_msg, uint32_t gens[3])
{
    uint32_t cur = k->rx_cur;
    unsigned n = 0;
    unsigned s = RX_SLOT(cur + 1);
    const struct sdp_rec_key *ns = &k->rx[s];
    int next_ok = ns->prov == NULL || ns->generation == cur + 1 || (k->rx_live[s] == 0 && ns->generation + 1 < cur);
    if (new_msg) {
        /* The sender's pacing (PROTOCOL.md 7.1): a message we have not
         * seen yet is under cur - 1, cur or cur + 1.  Of the other phase,
         * the previous generation is the likelier: any number of messages
         * sealed under it may still come (a sender sends the shortest
         * first), while the first one under the next makes it current. */
        if ((cur & 1u) == phase) {
            gens[n++] = cur;
            return n;
        }
        if (cur >= 1 && rx_held(k, cur - 1))
            gens[n++] = cur - 1;
        if (next_ok)
            gens[n++] = cur + 1;
        return n;
    }
    if ((cur & 1u) == phase) {
        gens[n++] = cur;
        if (cur >= 2 && rx_held(k, cur - 2))
            gens[n++] = cur - 2;
        return n;
    }
    /* Older generations first: they are known genuine, the next one is a
     * guess until something authenticates under it. */
    if (cur >= 1 && rx_held(k, cur - 1))
        gens[n++] = cur - 1;
    if (cur >= 3 && rx_held(k, cur - 3))
        gens[n++] = cur - 3;
    if (next_ok)
        gens[n++] = cur + 1;
    return n;
}

struct sdp_rec_key *sdp_keys_rx_key(struct sdp_peer_keys *k, uint32_t gen, struct sdp_core_stats *st)
{
    if (rx_held(k, gen))
        return &k->rx[RX_SLOT(gen)];
    unsigned s = RX_SLOT(gen);
    if (gen != k->rx_cur + 1)
        return NULL;
    if (k->rx[s].prov != NULL) {
        /* An old generation in the slot: gone now if it has drained (its
         * grace for late control packets is cut short), else no room. */
        if (k->rx_live[s] != 0 || k->rx[s].generation + 1 >= k->rx_cur)
            return NULL;
        rx_wipe(k, s);
        st->rx_keys_wiped++;
    }
    /* Derived straight into locked memory; only authentication under it
     * (sdp_keys_rx_authed) makes it the current generation. */
    if (sdp_keysched_next(k->sec->rx[RX_SLOT(k->rx_cur)], k->sec->rx[s]) != 0 ||
        key_from_secret(k->prov, k->suite, k->sec->rx[s], gen, 0, &k->rx[s]) != 0) {
        rx_wipe(k, s);
        return NULL;
    }
    k->rx_live[s] = 0;
    k->rx_idle[s] = 0;
    return &k->rx[s];
}

int sdp_keys_rx_authed(struct sdp_peer_keys *k, uint32_t gen, struct sdp_core_stats *st)
{
    if (gen != k->rx_cur + 1 || !rx_held(k, gen))
        return 0;
    k->rx_cur = gen;
    st->rx_key_updates++;
    return 1;
}

void sdp_keys_rx_begin(struct sdp_peer_keys *k, uint32_t gen)
{
    k->rx_live[RX_SLOT(gen)]++;
}

void sdp_keys_rx_end(struct sdp_peer_keys *k, uint32_t gen)
{
    unsigned s = RX_SLOT(gen);
    if (rx_held(k, gen) && k->rx_live[s] > 0)
        k->rx_live[s]--;
}

unsigned sdp_keys_rx_tick(struct sdp_peer_keys *k, struct sdp_core_stats *st)
{
    unsigned held = 0;
    for (unsigned s = 0; s < SDP_RX_GENS; s++) {
        struct sdp_rec_key *rk = &k->rx[s];
        /* The previous generation stays while this one is current: the
         * sender may still start messages under it until it moves on
         * again, which its next phase will tell us (PROTOCOL.md 7.2). */
        if (rk->prov == NULL || rk->generation + 1 >= k->rx_cur)
            continue;
        if (k->rx_live[s] > 0) {
            k->rx_idle[s] = 0;
        } else if (++k->rx_idle[s] >= RX_IDLE_TICKS) {
            rx_wipe(k, s);
            st->rx_keys_wiped++;
            continue;
        }
        held++;
    }
    struct sdp_rec_key *erx = sdp_keys_early_rx(k);
    if (erx != NULL && !k->early_open && k->early_live == 0) {
        sdp_rec_key_clear(erx);
        rare_trim(k);
    }
    return held;
}

_Static_assert(SDP_RX_GENS == 4, "sdp_keys_idle_tick lists the receive slots");

int sdp_keys_idle_tick(struct sdp_peer_keys *k, uint64_t now, uint64_t idle_ns)
{
    struct sdp_rec_key *all[] = {&k->tx,
                                 &k->rx[0],
                                 &k->rx[1],
                                 &k->rx[2],
                                 &k->rx[3],
                                 k->rare ? &k->rare->tx_prev : NULL,
                                 k->rare ? &k->rare->early_tx : NULL,
                                 k->rare ? &k->rare->early_rx : NULL};
    unsigned n = k->rare ? 8 : 5;
    int used = 0, warm = 0;
    for (unsigned i = 0; i < n; i++) {
        used |= all[i]->used;
        warm |= all[i]->warm;
        all[i]->used = 0;
    }
    if (used)
        k->used_at = now;
    if (!warm)
        return 0;
    if (now - k->used_at < idle_ns)
        return 1;
    for (unsigned i = 0; i < n; i++)
        if (all[i]->warm)
            sdp_rec_key_idle(all[i]);
    return 0;
}

unsigned sdp_keys_rx_old(const struct sdp_peer_keys *k)
{
    unsigned held = 0;
    for (unsigned s = 0; s < SDP_RX_GENS; s++)
        if (k->rx[s].prov != NULL && k->rx[s].generation + 1 < k->rx_cur)
            held++;
    return held;
}

int sdp_keys_set_early(struct sdp_peer_keys *k, enum sdp_suite suite, const uint8_t secret[SDP_SECRET_LEN],
                       int dir)
{
    if (!secret || (dir != SDP_CORE_KEY_TX && dir != SDP_CORE_KEY_RX) || suite != k->suite)
        return SDP_EINVAL;
    if (dir == SDP_CORE_KEY_RX && k->early_live > 0)
        return SDP_EINVAL; /* the old early key still opens messages in progress */
    if (!rare_get(k))
        return SDP_ENOMEM;
    struct sdp_rec_key *rk = dir == SDP_CORE_KEY_TX ? &k->rare->early_tx : &k->rare->early_rx;
    sdp_rec_key_clear(rk);
    int rc = key_from_secret(k->prov, k->suite, secret, 0, k->update_after, rk);
    if (rc != 0) {
        rare_trim(k);
        return rc;
    }
    rk->aad_flags = SDP_F_EARLY;
    if (dir == SDP_CORE_KEY_RX)
        k->early_open = 1;
    return 0;
}

void sdp_keys_drop_early(struct sdp_peer_keys *k)
{
    k->early_open = 0;
    if (!k->rare)
        return;
    sdp_rec_key_clear(&k->rare->early_tx);
    if (k->early_live == 0)
        sdp_rec_key_clear(&k->rare->early_rx);
    rare_trim(k);
}

void sdp_keys_early_end(struct sdp_peer_keys *k)
{
    if (k->early_live > 0)
        k->early_live--;
    if (k->early_live == 0 && !k->early_open && k->rare) {
        sdp_rec_key_clear(&k->rare->early_rx);
        rare_trim(k);
    }
}
