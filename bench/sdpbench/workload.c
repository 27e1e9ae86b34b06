/* sdp-bench: the load generator and the message-size distributions. */
#define _GNU_SOURCE
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

#ifndef SDPBENCH_SOURCE_DIR
#define SDPBENCH_SOURCE_DIR "."
#endif

#define SLOTS 4096 /* outstanding RPCs tracked by tag % SLOTS */
#define MAX_WINDOW 2048

double rng_uniform(uint64_t *rng)
{
    uint64_t x = *rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *rng = x;
    return (double)((x * 0x2545f4914f6cdd1dull) >> 11) * 0x1.0p-53 + 0x1.0p-54;
}

int dist_load(struct dist *d, const char *name, char *err, size_t n)
{
    memset(d, 0, sizeof(*d));
    const char *env = getenv("SDPBENCH_WORKLOADS");
    const char *dirs[] = {env, SDPBENCH_SOURCE_DIR "/../shared/workloads", SDPBENCH_SOURCE_DIR "/bench/sdpbench/workloads"};
    FILE *f = NULL;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !f; i++) {
        char path[1024];
        if (!dirs[i])
            continue;
        snprintf(path, sizeof(path), "%s/%s.csv", dirs[i], name);
        f = fopen(path, "r");
    }
    if (!f) {
        snprintf(err, n, "workload %s: no %s.csv in $SDPBENCH_WORKLOADS, ../shared/workloads or bench/sdpbench/workloads",
                 name, name);
        return -1;
    }
    snprintf(d->name, sizeof(d->name), "%s", name);
    char line[256];
    int cap = 0;
    double total = 0, wsum = 0;
    while (fgets(line, sizeof(line), f)) {
        double len, freq;
        if (line[0] == '#' || sscanf(line, "%lf,%lf", &len, &freq) != 2 || freq <= 0 || len < 1)
            continue;
        if (d->n == cap) {
            cap = cap ? cap * 2 : 256;
            uint32_t *nl = realloc(d->len, (size_t)cap * sizeof(*nl));
            double *nc = nl ? realloc(d->cdf, (size_t)cap * sizeof(*nc)) : NULL;
            if (nl)
                d->len = nl;
            if (!nc) {
                fclose(f);
                snprintf(err, n, "out of memory");
                return -1;
            }
            d->cdf = nc;
        }
        uint32_t l = len < MSG_HDR ? MSG_HDR : len > MSG_MAX ? MSG_MAX : (uint32_t)len;
        d->len[d->n] = l;
        total += freq;
        d->cdf[d->n++] = total;
        wsum += freq * l;
        if (l > d->max)
            d->max = l;
    }
    fclose(f);
    if (d->n == 0) {
        snprintf(err, n, "workload %s: no data rows", name);
        return -1;
    }
    for (int i = 0; i < d->n; i++)
        d->cdf[i] /= total;
    d->mean = wsum / total;
    return 0;
}

uint32_t dist_sample(const struct dist *d, uint64_t *rng)
{
    double u = rng_uniform(rng);
    int lo = 0, hi = d->n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (d->cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return d->len[lo];
}

void dist_free(struct dist *d)
{
    free(d->len);
    free(d->cdf);
    memset(d, 0, sizeof(*d));
}

/* How long one RPC may stay unanswered before the run fails: generous, so
 * that only a transport that really lost it trips it. */
static int64_t rpc_timeout_us(size_t bytes) { return 2000000 + (int64_t)(bytes / 20); }

struct slot {
    double sent; /* seconds, monotonic */
    uint32_t req;
    uint8_t pending, measured;
};

int run_load(const struct endpoint *e, const struct load *l, struct load_result *r, char *why, size_t n)
{
    memset(r, 0, sizeof(*r));
    if (n)
        why[0] = 0;
    char err[160] = "";
    struct tr_conn *c = e->t->connect(e->host, e->port, err, sizeof(err));
    if (!c) {
        snprintf(why, n, "%s", err);
        return -1;
    }
    struct slot *slots = calloc(SLOTS, sizeof(*slots));
    if (!slots) {
        e->t->close(c);
        snprintf(why, n, "out of memory");
        return -1;
    }
    int window = l->window < 1 ? 1 : l->window > MAX_WINDOW ? MAX_WINDOW : l->window;
    uint64_t rng = l->seed ? l->seed : 1, next_tag = 1, low_tag = 1;
    int outstanding = 0, rc = 0, warm_done = 0;
    long warm_count = 0;
    if (l->ready)
        __atomic_add_fetch(l->ready, 1, __ATOMIC_RELEASE);
    if (l->go)
        while (!__atomic_load_n(l->go, __ATOMIC_ACQUIRE))
            sched_yield(); /* the other clients are still connecting */
    int64_t start = now_us(), t0 = 0, t_end = 0, next_arrival = start, last_scan = start;
    struct tr_done done[64];
    for (;;) {
        int64_t now = now_us();
        if (!warm_done && now - start >= (int64_t)(l->warm_s * 1e6) && warm_count >= l->warm_n) {
            warm_done = 1;
            t0 = now;
            t_end = t0 + (int64_t)(l->dur_s * 1e6);
            next_arrival = now;
        }
        int measuring = warm_done && now < t_end && !(l->max_count && r->done >= l->max_count);
        if (warm_done && !measuring) {
            if (!r->secs)
                r->secs = (double)((now < t_end ? now : t_end) - t0) / 1e6;
            if (outstanding == 0)
                break;
        }
        /* Send what the load asks for now. */
        int sending = !warm_done || measuring;
        while (sending) {
            if (l->rate > 0 && now < next_arrival)
                break;
            if (outstanding >= window || slots[next_tag % SLOTS].pending) {
                if (l->rate > 0 && measuring) {
                    r->overflow++;
                    r->offered++;
                    next_arrival += (int64_t)(-log(rng_uniform(&rng)) / l->rate * 1e6);
                    continue;
                }
                break;
            }
            size_t req = l->d ? dist_sample(l->d, &rng) : l->req_size;
            /* The RTT includes the sender's own work; in open loop it starts
             * at the scheduled arrival, so a sender that falls behind pays
             * for its lag (no coordinated omission). */
            double t_send = now_s();
            if (l->rate > 0 && warm_done && (double)next_arrival / 1e6 < t_send)
                t_send = (double)next_arrival / 1e6;
            int s = e->t->send(c, req, l->resp_size, next_tag);
            if (s < 0) {
                snprintf(why, n, "%s", c->err[0] ? c->err : "send failed");
                rc = -1;
                goto out;
            }
            if (s > 0)
                break; /* flow-controlled: let poll make room */
            struct slot *sl = &slots[next_tag % SLOTS];
            *sl = (struct slot){t_send, (uint32_t)req, 1, (uint8_t)measuring};
            next_tag++;
            outstanding++;
            if (l->rate > 0) {
                if (measuring)
                    r->offered++;
                next_arrival += (int64_t)(-log(rng_uniform(&rng)) / l->rate * 1e6);
            }
        }
        int64_t wait = 1000;
        if (l->rate > 0 && sending) {
            wait = next_arrival - now_us();
            wait = wait < 0 ? 0 : wait > 1000 ? 1000 : wait;
        }
        int k = e->t->poll(c, done, 64, wait);
        if (k < 0) {
            snprintf(why, n, "%s", c->err[0] ? c->err : "connection failed");
            rc = -1;
            goto out;
        }
        double t_done = now_s();
        now = now_us();
        for (int i = 0; i < k; i++) {
            struct slot *sl = &slots[done[i].tag % SLOTS];
            if (!sl->pending || done[i].tag >= next_tag || done[i].tag + SLOTS < next_tag)
                continue;
            if (!done[i].ok) {
                snprintf(why, n, "%s", c->err[0] ? c->err : "response with wrong length or content");
                rc = -1;
                goto out;
            }
            sl->pending = 0;
            outstanding--;
            if (!warm_done)
                warm_count++;
            if (measuring) {
                r->done++;
                r->req_bytes += sl->req;
            }
            /* An RPC sent in the measured time counts for RTT even when it
             * ends after it: long RPCs would otherwise never be sampled. */
            if (sl->measured && l->rtt)
                samples_add(l->rtt, (t_done - sl->sent) * 1e6, sl->req);
        }
        /* Every few ms: is the oldest outstanding RPC overdue? */
        if (now - last_scan > 5000) {
            last_scan = now;
            while (low_tag < next_tag && !slots[low_tag % SLOTS].pending)
                low_tag++;
            if (low_tag < next_tag) {
                struct slot *sl = &slots[low_tag % SLOTS];
                double age = now_s() - sl->sent;
                if (age * 1e6 > (double)rpc_timeout_us(sl->req + l->resp_size)) {
                    snprintf(why, n, "timeout: a %u-byte RPC unanswered after %.1f s (%s)", sl->req, age,
                             c->err[0] ? c->err : "no error reported");
                    rc = -1;
                    goto out;
                }
            }
        }
    }
out:
    e->t->close(c);
    free(slots);
    return rc;
}

struct incast_arg {
    const struct endpoint *e;
    struct load l;
    struct load_result r;
    struct samples rtt;
    int cpu, rc;
    char why[160];
};

static void *incast_main(void *p)
{
    struct incast_arg *a = p;
    pin_self(a->cpu);
    a->l.rtt = &a->rtt;
    a->rc = run_load(a->e, &a->l, &a->r, a->why, sizeof(a->why));
    return NULL;
}

int run_incast(const struct endpoint *e, int clients, int cpu, const struct load *l, struct load_result *r,
               char *why, size_t n)
{
    memset(r, 0, sizeof(*r));
    struct incast_arg *a = calloc((size_t)clients, sizeof(*a));
    pthread_t *th = calloc((size_t)clients, sizeof(*th));
    int go = 0, ready = 0;
    int started = 0, rc = 0;
    if (!a || !th) {
        snprintf(why, n, "out of memory");
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < clients; i++) {
        a[i].e = e;
        a[i].l = *l;
        a[i].l.window = 1;
        a[i].l.seed = l->seed + (uint64_t)i * 7919;
        a[i].l.go = &go;
        a[i].l.ready = &ready;
        a[i].cpu = cpu;
        if (pthread_create(&th[i], NULL, incast_main, &a[i]) != 0) {
            snprintf(why, n, "thread failed");
            rc = -1;
            break;
        }
        started++;
    }
    /* Start together once every client is connected (a client that failed
     * to connect never counts: give up waiting after a few seconds). */
    for (double t0 = now_s(); __atomic_load_n(&ready, __ATOMIC_ACQUIRE) < started && now_s() - t0 < 5;)
        sched_yield();
    __atomic_store_n(&go, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        if (a[i].rc != 0 && rc == 0) {
            snprintf(why, n, "client %d: %s", i, a[i].why);
            rc = -1;
        }
        r->done += a[i].r.done;
        r->req_bytes += a[i].r.req_bytes;
        if (a[i].r.secs > r->secs)
            r->secs = a[i].r.secs;
        if (l->rtt)
            samples_append(l->rtt, &a[i].rtt);
        samples_free(&a[i].rtt);
    }
    free(a);
    free(th);
    return rc;
}

/* connect, one 64 B RPC, close: for transports without first_rpc. */
static int first_rpc_generic(const struct transport *t, const char *host, uint16_t port, double *us, char *why,
                             size_t n)
{
    double t0 = now_s();
    struct tr_conn *c = t->connect(host, port, why, n);
    if (!c)
        return -1;
    int rc = t->send(c, 64, 64, 7);
    struct tr_done d;
    int got = 0;
    while (rc == 0 && got == 0 && now_s() - t0 < 5)
        if ((got = t->poll(c, &d, 1, 1000)) < 0)
            rc = -1;
    *us = (now_s() - t0) * 1e6;
    if (rc != 0 || got != 1 || !d.ok)
        snprintf(why, n, "%s", rc ? c->err : got ? "wrong response" : "no response within 5 s");
    int ok = rc == 0 && got == 1 && d.ok;
    t->close(c);
    return ok ? 0 : -1;
}

int run_first_rpcs(const struct endpoint *e, int resumed, int count, double max_s, struct samples *us, char *why,
                   size_t n)
{
    if (!e->t->first_rpc && (!e->t->handshake || resumed)) {
        snprintf(why, n, "%s", !e->t->handshake ? (e->t->no_handshake ? e->t->no_handshake : "n/a")
                                                  : "n/a: this baseline makes full handshakes only");
        return 1;
    }
    double t0 = now_s();
    int rc = 0;
    for (int i = 0; rc == 0 && i < count && (i < 8 || now_s() - t0 < max_s); i++) {
        double t;
        rc = e->t->first_rpc ? e->t->first_rpc(e->host, e->port, resumed, &t, why, n)
                             : first_rpc_generic(e->t, e->host, e->port, &t, why, n);
        if (rc == 0 && i >= 3)
            samples_add(us, t, 0);
    }
    if (resumed && e->t->first_rpc) {
        char ignore[8];
        e->t->first_rpc(e->host, e->port, -1, NULL, ignore, sizeof(ignore));
    }
    return rc ? -1 : 0;
}

int run_handshakes(const struct endpoint *e, int count, double max_s, struct samples *us, char *why, size_t n)
{
    double t0 = now_s();
    /* At least 8 (5 measured) even when one setup outlasts the budget
     * (sanitizer builds, a busy machine): a row with no sample says nothing. */
    for (int i = 0; i < count && (i < 8 || now_s() - t0 < max_s); i++) {
        double t;
        if (e->t->handshake(e->host, e->port, &t, why, n) != 0)
            return -1;
        if (i >= 3) /* the first few warm up caches and the server's threads */
            samples_add(us, t, 0);
    }
    return 0;
}
