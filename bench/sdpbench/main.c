/* sdp-bench: sdp against the transports people run today, on one machine.
 *
 * With no arguments: about a minute on loopback, every transport measured in
 * the same run and interleaved repetition by repetition so that machine noise
 * hits all alike; a table per workload with each row's ratio to sdp, and the
 * project's targets checked with PASS/MISS.  `sdp-bench --help` lists the
 * options; docs/BENCHMARKS.md describes the method. */
#define _GNU_SOURCE
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "bench.h"

static const struct transport *const all_transports[] = {&tr_sdp, &tr_sdp_null, &tr_udp, &tr_tcp, &tr_tls, &tr_ktls};
#define NALL (int)(sizeof(all_transports) / sizeof(all_transports[0]))

const char *const bucket_names[NBUCKETS] = {"<=100B", "<=1KB", "<=10KB", "<=100KB", "<=1MB", ">1MB"};

int bucket_of(size_t size)
{
    size_t lim = 100;
    for (int b = 0; b < NBUCKETS - 1; b++, lim *= 10)
        if (size <= lim)
            return b;
    return NBUCKETS - 1;
}

/* ------------------------------------------------------------------ */
/* Progress: one line on stderr, only for a terminal, after a few seconds. */

static double t_start;
static int progress_on;

__attribute__((format(printf, 1, 2))) static void progress(const char *fmt, ...);
static void progress(const char *fmt, ...)
{
    if (!progress_on || now_s() - t_start < 2.0)
        return;
    char line[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "\r\033[K[%5.1fs] %s", now_s() - t_start, line);
}

static void progress_end(void)
{
    if (progress_on && now_s() - t_start >= 2.0)
        fprintf(stderr, "\r\033[K");
}

/* ------------------------------------------------------------------ */

static void set_fail(struct cell *c, const char *why)
{
    if (c->state != CELL_FAIL)
        snprintf(c->note, sizeof(c->note), "FAILED: %s", why);
    c->state = CELL_FAIL;
}

static void set_na(struct cell *c, const char *why)
{
    c->state = CELL_NA;
    snprintf(c->note, sizeof(c->note), "%s", why);
}

/* Single-core AES-128-GCM sealing rate at 16 KB records with one reused
 * context, the way `openssl speed -evp aes-128-gcm` measures it. */
static double evp_rate_gbps(double secs)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    EVP_CIPHER *ciph = EVP_CIPHER_fetch(NULL, "AES-128-GCM", NULL);
    static uint8_t in[16384], out[16384 + 16];
    uint8_t key[16] = {1}, iv[12] = {2}, tag[16];
    double best[3];
    int ok = ctx && ciph && EVP_EncryptInit_ex(ctx, ciph, NULL, key, NULL) == 1;
    for (int r = 0; r < 3 && ok; r++) {
        long bytes = 0;
        double t0 = now_s(), t;
        do {
            for (int i = 0; i < 64 && ok; i++) {
                int l;
                iv[0]++;
                ok = EVP_EncryptInit_ex(ctx, NULL, NULL, NULL, iv) == 1 &&
                     EVP_EncryptUpdate(ctx, out, &l, in, sizeof(in)) == 1 && EVP_EncryptFinal_ex(ctx, out + l, &l) == 1 &&
                     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, 16, tag) == 1;
                bytes += sizeof(in);
            }
            t = now_s() - t0;
        } while (t < secs / 3);
        best[r] = (double)bytes * 8 / t / 1e9;
    }
    EVP_CIPHER_free(ciph);
    EVP_CIPHER_CTX_free(ctx);
    return ok ? median(best, 3) : NAN;
}

static struct load base_load(const struct opts *o, uint64_t seed)
{
    struct load l = {.window = 1, .warm_s = 0.02 * o->scale, .warm_n = 20, .seed = seed};
    return l;
}

/* RTT ping-pong: request and response of the same size, one outstanding. */
static void do_rtt(const struct opts *o, struct results *r, struct endpoint *ep, double p50s[MAXT][MAXSIZES][MAXREPS],
                   struct samples pooled[MAXT][MAXSIZES], int rep)
{
    for (int si = 0; si < o->nsizes; si++) {
        for (int ti = 0; ti < r->nt; ti++) {
            struct cell *c = &r->rtt[ti][si];
            if (r->status[ti][0] || c->state == CELL_FAIL)
                continue;
            progress("rtt %-8s %8zu B   rep %d/%d", r->t[ti]->name, o->sizes[si], rep + 1, o->reps);
            struct samples s = {0};
            struct load l = base_load(o, (uint64_t)rep + 1);
            l.req_size = l.resp_size = o->sizes[si];
            l.warm_n = o->sizes[si] >= (1u << 20) ? 3 : 20;
            l.dur_s = 0.08 * o->scale;
            l.max_count = 5000;
            l.rtt = &s;
            struct load_result lr;
            char why[160];
            if (run_load(&ep[ti], &l, &lr, why, sizeof(why)) != 0 || s.n == 0) {
                set_fail(c, why[0] ? why : "no RPC completed in the measured time");
            } else {
                p50s[ti][si][c->reps++] = samples_pct(&s, 50);
                samples_append(&pooled[ti][si], &s);
                c->state = CELL_OK;
            }
            samples_free(&s);
        }
    }
}

/* Goodput with a fixed window of outstanding requests; 16-byte responses. */
static void do_bulk(const struct opts *o, struct results *r, struct endpoint *ep, double vals[MAXT][NBULK][MAXREPS],
                    int rep)
{
    for (int bi = 0; bi < NBULK; bi++) {
        for (int ti = 0; ti < r->nt; ti++) {
            struct cell *c = &r->bulk[ti][bi];
            if (r->status[ti][0] || c->state == CELL_FAIL || c->state == CELL_NA)
                continue;
            size_t wmax = r->t[ti]->window_bytes_max;
            if (wmax && (size_t)o->window * o->bulk_sizes[bi] > wmax) {
                char why[160];
                snprintf(why, sizeof(why),
                         "no flow control: %d x %zu B outstanding overrun the receiver's %zu B socket buffer, "
                         "and nothing recovers the lost datagrams",
                         o->window, o->bulk_sizes[bi], wmax);
                set_na(c, why);
                continue;
            }
            progress("bulk %-8s %8zu B x %d   rep %d/%d", r->t[ti]->name, o->bulk_sizes[bi], o->window, rep + 1,
                     o->reps);
            struct load l = base_load(o, (uint64_t)rep + 1);
            l.window = o->window;
            l.req_size = o->bulk_sizes[bi];
            l.resp_size = MSG_HDR;
            l.warm_s = 0.03 * o->scale;
            l.warm_n = o->window;
            l.dur_s = 0.15 * o->scale;
            struct load_result lr;
            char why[160];
            if (run_load(&ep[ti], &l, &lr, why, sizeof(why)) != 0 || lr.secs <= 0) {
                set_fail(c, why);
                continue;
            }
            vals[ti][bi][c->reps++] = lr.req_bytes * 8 / lr.secs / 1e9;
            c->state = CELL_OK;
        }
    }
}

static void do_rate(const struct opts *o, struct results *r, struct endpoint *ep, double vals[MAXT][MAXREPS], int rep)
{
    for (int ti = 0; ti < r->nt; ti++) {
        struct cell *c = &r->rate[ti];
        if (r->status[ti][0] || c->state == CELL_FAIL)
            continue;
        progress("rate %-8s %zu B x %d outstanding   rep %d/%d", r->t[ti]->name, o->rate_size, o->rate_window,
                 rep + 1, o->reps);
        struct load l = base_load(o, (uint64_t)rep + 1);
        l.window = o->rate_window;
        l.req_size = l.resp_size = o->rate_size;
        l.warm_s = 0.03 * o->scale;
        l.warm_n = 2 * o->rate_window;
        l.dur_s = 0.15 * o->scale;
        struct load_result lr;
        char why[160];
        if (run_load(&ep[ti], &l, &lr, why, sizeof(why)) != 0 || lr.secs <= 0) {
            set_fail(c, why);
            continue;
        }
        vals[ti][c->reps++] = (double)lr.done / lr.secs / 1e3;
        c->state = CELL_OK;
    }
}

static void do_incast(const struct opts *o, struct results *r, struct endpoint *ep, double vals[MAXT][MAXREPS],
                      struct samples pooled[MAXT], int rep, int reps)
{
    for (int ti = 0; ti < r->nt; ti++) {
        struct cell *c = &r->incast[ti];
        if (r->status[ti][0] || c->state == CELL_FAIL)
            continue;
        progress("incast %-8s %d clients x %zu B   rep %d/%d", r->t[ti]->name, o->incast_clients, o->incast_size,
                 rep + 1, reps);
        struct samples s = {0};
        struct load l = base_load(o, (uint64_t)rep + 1);
        l.req_size = o->incast_size;
        l.resp_size = MSG_HDR;
        l.warm_s = 0.03 * o->scale;
        l.warm_n = 5;
        l.dur_s = 0.25 * o->scale;
        l.rtt = &s;
        struct load_result lr;
        char why[160];
        if (run_incast(&ep[ti], o->incast_clients, o->pin ? 0 : -1, &l, &lr, why, sizeof(why)) != 0 || lr.secs <= 0) {
            set_fail(c, why);
        } else {
            vals[ti][c->reps++] = lr.req_bytes * 8 / lr.secs / 1e9;
            samples_append(&pooled[ti], &s);
            c->state = CELL_OK;
        }
        samples_free(&s);
    }
}

/* Unloaded RTT at a grid of sizes, for slowdown's denominator. */
#define NGRID 12
static const size_t grid_sizes[NGRID] = {16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1 << 20, 4 << 20, 16 << 20, 32 << 20};

static double interp(const double *g, size_t size)
{
    int lo = -1, hi = -1;
    for (int i = 0; i < NGRID; i++) {
        if (isnan(g[i]))
            continue;
        if (grid_sizes[i] <= size)
            lo = i;
        if (grid_sizes[i] >= size && hi < 0)
            hi = i;
    }
    if (lo < 0)
        return hi < 0 ? NAN : g[hi];
    if (hi < 0 || hi == lo)
        return g[lo] * (hi < 0 ? (double)size / (double)grid_sizes[lo] : 1); /* beyond the grid: scale linearly */
    double f = (double)(size - grid_sizes[lo]) / (double)(grid_sizes[hi] - grid_sizes[lo]);
    return g[lo] + f * (g[hi] - g[lo]);
}

static void do_poisson(const struct opts *o, struct results *r, struct endpoint *ep, const struct dist *d)
{
    double best[NGRID];
    for (int g = 0; g < NGRID; g++) {
        best[g] = NAN;
        if (grid_sizes[g] > d->max && (g == 0 || grid_sizes[g - 1] >= d->max))
            continue;
        for (int ti = 0; ti < r->nt; ti++) {
            if (r->status[ti][0])
                continue;
            progress("poisson %s: unloaded RTT %-8s %zu B", d->name, r->t[ti]->name, grid_sizes[g]);
            struct samples s = {0};
            struct load l = base_load(o, 1);
            l.req_size = grid_sizes[g];
            l.resp_size = o->pois_resp;
            l.warm_n = 2;
            l.warm_s = 0;
            l.dur_s = 10;
            l.max_count = grid_sizes[g] >= (4u << 20) ? 3 : 8;
            l.rtt = &s;
            struct load_result lr;
            char why[160];
            if (run_load(&ep[ti], &l, &lr, why, sizeof(why)) == 0 && s.n) {
                double m = samples_pct(&s, 0);
                if (isnan(best[g]) || m < best[g])
                    best[g] = m;
            }
            samples_free(&s);
        }
    }
    /* The byte load alone would ask a workload of tiny messages (W1) for
     * hundreds of thousands of RPCs per second: cap the arrival rate too. */
    r->pois_rate = o->load_gbps * 1e9 / 8 / d->mean;
    if (r->pois_rate > o->max_rate)
        r->pois_rate = o->max_rate;
    r->pois_mean = d->mean;
    for (int ti = 0; ti < r->nt; ti++) {
        if (r->status[ti][0])
            continue;
        progress("poisson %s %-8s %.0f RPC/s offered", d->name, r->t[ti]->name, r->pois_rate);
        struct samples s = {0};
        struct load l = base_load(o, 42);
        l.d = d;
        l.rate = r->pois_rate;
        l.window = 1024;
        l.resp_size = o->pois_resp;
        l.warm_s = 0.1 * o->scale;
        l.warm_n = 0;
        l.dur_s = 1.5 * o->scale;
        l.rtt = &s;
        struct load_result lr;
        char why[160];
        struct cell *lc = &r->pois_load[ti];
        if (run_load(&ep[ti], &l, &lr, why, sizeof(why)) != 0 || lr.secs <= 0) {
            set_fail(lc, why);
            for (int b = 0; b < NBUCKETS; b++)
                set_fail(&r->pois[ti][b], why);
            samples_free(&s);
            continue;
        }
        lc->state = CELL_OK;
        lc->reps = 1;
        lc->v[0] = (double)lr.offered / lr.secs;
        lc->v[1] = (double)lr.done / lr.secs;
        lc->v[2] = (double)lr.overflow;
        lc->v[3] = lr.req_bytes * 8 / lr.secs / 1e9;
        struct samples rb[NBUCKETS] = {{0}}, sb[NBUCKETS] = {{0}};
        for (size_t i = 0; i < s.n; i++) {
            int b = bucket_of(s.size[i]);
            samples_add(&rb[b], s.v[i], s.size[i]);
            samples_add(&sb[b], s.v[i] / interp(best, s.size[i]), s.size[i]);
        }
        for (int b = 0; b < NBUCKETS; b++) {
            struct cell *c = &r->pois[ti][b];
            c->reps = 1;
            if (rb[b].n == 0) {
                set_na(c, "no messages");
            } else {
                c->state = CELL_OK;
                c->v[PB_N] = (double)rb[b].n;
                c->v[PB_P50] = samples_pct(&rb[b], 50);
                c->v[PB_P99] = samples_pct(&rb[b], 99);
                c->v[PB_P999] = samples_pct(&rb[b], 99.9);
                c->v[PB_S50] = samples_pct(&sb[b], 50);
                c->v[PB_S99] = samples_pct(&sb[b], 99);
                c->v[PB_S999] = samples_pct(&sb[b], 99.9);
            }
            samples_free(&rb[b]);
            samples_free(&sb[b]);
        }
        samples_free(&s);
    }
}

static void do_handshakes(const struct opts *o, struct results *r, struct endpoint *ep)
{
    for (int ti = 0; ti < r->nt; ti++) {
        struct cell *c = &r->hs[ti];
        if (r->status[ti][0])
            continue;
        if (!r->t[ti]->handshake) {
            set_na(c, r->t[ti]->no_handshake ? r->t[ti]->no_handshake : "n/a");
            set_na(&r->first[ti], c->note);
            continue;
        }
        progress("handshake %-8s", r->t[ti]->name);
        struct samples s = {0};
        char why[160];
        if (run_handshakes(&ep[ti], 203, 0.5 * o->scale + 0.1, &s, why, sizeof(why)) != 0 || s.n == 0) {
            set_fail(c, s.n ? why : "no handshake completed");
        } else {
            c->state = CELL_OK;
            c->reps = 1;
            c->v[2] = (double)s.n;
            c->v[0] = samples_pct(&s, 50);
            c->v[1] = samples_pct(&s, 99);
        }
        samples_free(&s);
        /* First response on a new connection, full and resumed. */
        struct cell *fc = &r->first[ti];
        for (int resumed = 0; resumed < 2; resumed++) {
            struct samples f = {0};
            progress("first RPC %-8s%s", r->t[ti]->name, resumed ? " (resumed)" : "");
            int rc = run_first_rpcs(&ep[ti], resumed, 203, 0.25 * o->scale + 0.1, &f, why, sizeof(why));
            if (rc < 0 || (resumed == 0 && rc > 0)) {
                if (rc > 0)
                    set_na(fc, why);
                else
                    set_fail(fc, resumed ? "resumed: see the error below" : f.n ? why : "no first response");
                if (resumed)
                    snprintf(fc->note, sizeof(fc->note), "resumed: %s", why);
                samples_free(&f);
                break;
            }
            fc->state = CELL_OK;
            fc->reps = 1;
            fc->v[resumed] = rc == 0 && f.n ? samples_pct(&f, 50) : NAN;
            if (resumed == 0)
                fc->v[2] = (double)f.n;
            samples_free(&f);
        }
    }
}

static int wants(const struct opts *o, const char *test)
{
    if (!o->tests)
        return 1;
    char buf[256];
    snprintf(buf, sizeof(buf), ",%s,", o->tests);
    char key[32];
    snprintf(key, sizeof(key), ",%s,", test);
    return strstr(buf, key) != NULL;
}

static void finish_median(struct cell *c, double *vals)
{
    if (c->state != CELL_OK)
        return;
    double tmp[MAXREPS];
    memcpy(tmp, vals, (size_t)c->reps * sizeof(double));
    c->v[0] = median(tmp, c->reps);
    c->v[1] = tmp[0];
    c->v[2] = tmp[c->reps - 1];
}

static void run_all(const struct opts *o, struct results *r, struct endpoint *ep)
{
    static double rtt_p50s[MAXT][MAXSIZES][MAXREPS], bulk_v[MAXT][NBULK][MAXREPS], rate_v[MAXT][MAXREPS],
        inc_v[MAXT][MAXREPS];
    static struct samples rtt_pool[MAXT][MAXSIZES], inc_pool[MAXT];
    int inc_reps = o->reps < 3 ? o->reps : 3;
    r->ran_rtt = wants(o, "rtt");
    r->ran_bulk = wants(o, "bulk");
    r->ran_rate = wants(o, "rate");
    r->ran_incast = wants(o, "incast");
    r->ran_pois = wants(o, "poisson");
    r->ran_hs = wants(o, "handshake");
    r->evp_gbps = evp_rate_gbps(0.3 * (o->scale < 1 ? o->scale : 1));
    /* Repetition outermost: each transport's cells of one repetition run
     * close together in time. */
    for (int rep = 0; rep < o->reps; rep++) {
        if (r->ran_rtt)
            do_rtt(o, r, ep, rtt_p50s, rtt_pool, rep);
        if (r->ran_bulk)
            do_bulk(o, r, ep, bulk_v, rep);
        if (r->ran_rate)
            do_rate(o, r, ep, rate_v, rep);
        if (r->ran_incast && rep < inc_reps)
            do_incast(o, r, ep, inc_v, inc_pool, rep, inc_reps);
    }
    r->reps_used[0] = r->reps_used[1] = r->reps_used[2] = o->reps;
    r->reps_used[3] = inc_reps;
    r->reps_used[4] = r->reps_used[5] = 1;
    if (r->ran_pois) {
        struct dist d;
        char err[200];
        if (dist_load(&d, o->workload, err, sizeof(err)) != 0) {
            for (int ti = 0; ti < r->nt; ti++) {
                set_fail(&r->pois_load[ti], err);
                for (int b = 0; b < NBUCKETS; b++)
                    set_fail(&r->pois[ti][b], "workload not loaded");
            }
        } else {
            do_poisson(o, r, ep, &d);
            dist_free(&d);
        }
    }
    if (r->ran_hs)
        do_handshakes(o, r, ep);
    for (int ti = 0; ti < r->nt; ti++) {
        for (int si = 0; si < o->nsizes; si++) {
            struct cell *c = &r->rtt[ti][si];
            if (c->state == CELL_OK) {
                c->v[0] = median(rtt_p50s[ti][si], c->reps);
                c->v[1] = samples_pct(&rtt_pool[ti][si], 99);
                c->v[2] = samples_pct(&rtt_pool[ti][si], 99.9);
                c->v[3] = (double)rtt_pool[ti][si].n;
            }
            samples_free(&rtt_pool[ti][si]);
        }
        for (int bi = 0; bi < NBULK; bi++)
            finish_median(&r->bulk[ti][bi], bulk_v[ti][bi]);
        finish_median(&r->rate[ti], rate_v[ti]);
        struct cell *c = &r->incast[ti];
        if (c->state == CELL_OK) {
            double tmp[MAXREPS];
            memcpy(tmp, inc_v[ti], (size_t)c->reps * sizeof(double));
            c->v[IC_GBPS] = median(tmp, c->reps);
            c->v[IC_P50] = samples_pct(&inc_pool[ti], 50);
            c->v[IC_P99] = samples_pct(&inc_pool[ti], 99);
            c->v[IC_P999] = samples_pct(&inc_pool[ti], 99.9);
        }
        samples_free(&inc_pool[ti]);
    }
}

/* ------------------------------------------------------------------ */

static size_t parse_size(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end == 'k' || *end == 'K')
        v *= 1024;
    else if (*end == 'm' || *end == 'M')
        v *= 1024 * 1024;
    return v < MSG_HDR ? MSG_HDR : v > MSG_MAX ? MSG_MAX : (size_t)v;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: sdp-bench [options]\n"
            "  (no options)        the comparison: about a minute on loopback, tables and targets\n"
            "  --quick             a ~10 s run with one repetition (smoke test)\n"
            "  --json              JSON on stdout instead of the tables\n"
            "  --reps N            repetitions of the key figures (default 5; medians reported)\n"
            "  --duration SECONDS  approximate run time to aim for (default 45)\n"
            "  --only LIST         transports, e.g. sdp,tls (sdp,sdp-null,udp,tcp,tls,ktls)\n"
            "  --tests LIST        rtt,bulk,rate,poisson,incast,handshake (default all)\n"
            "  --sizes LIST        RTT message sizes, e.g. 64,1K,8K,64K,1M\n"
            "  --workload wN       Poisson workload w1..w5 (default w3)\n"
            "  --load-gbps G       Poisson offered load in request Gbit/s (default 0.5)\n"
            "  --max-rate R        ... but at most R requests per second (default 25000)\n"
            "  --window N          bulk window, messages outstanding (default 16)\n"
            "  --clients N         incast clients (default 8)\n"
            "  --pin               client threads on CPU 0, servers on CPU 1\n"
            "  --plot DIR          PNG charts in DIR with gnuplot (installed on demand)\n"
            "  --server ADDR       only serve every transport on ADDR, ports from --port\n"
            "  --client HOST       only run clients against a --server on HOST\n"
            "  --port BASE         first port for --server/--client (default 47100)\n"
            "  --seed N            seed of the random sizes and arrivals (default 1)\n"
            "  --soak SECONDS      instead: steady mixed sdp traffic, heap and RSS at intervals;\n"
            "                      exit 1 if either grew after the warm-up (not part of CI)\n"
            "  --idle-peers N      instead: memory per idle peer with N peers installed\n");
}

static int parse_args(int argc, char **argv, struct opts *o)
{
    *o = (struct opts){.scale = 1, .reps = 5, .window = 16, .rate_window = 64, .incast_clients = 8,
                       .sizes = {64, 1024, 8192, 65536, 1 << 20}, .nsizes = 5, .bulk_sizes = {8192, 1 << 20},
                       .rate_size = 64, .incast_size = 65536, .pois_resp = 64, .load_gbps = 0.5, .max_rate = 25000,
                       .workload = "w3", .port_base = 47100, .seed = 1};
    double duration = 45;
    int reps_set = 0;
    static const struct option lo[] = {
        {"quick", no_argument, 0, 'q'},       {"json", no_argument, 0, 'j'},      {"reps", required_argument, 0, 'r'},
        {"duration", required_argument, 0, 'd'}, {"only", required_argument, 0, 'o'}, {"tests", required_argument, 0, 't'},
        {"sizes", required_argument, 0, 's'}, {"workload", required_argument, 0, 'w'},
        {"load-gbps", required_argument, 0, 'L'}, {"max-rate", required_argument, 0, 'R'}, {"window", required_argument, 0, 'W'},
        {"clients", required_argument, 0, 'c'}, {"pin", no_argument, 0, 'p'}, {"plot", required_argument, 0, 'P'},
        {"server", required_argument, 0, 'S'}, {"client", required_argument, 0, 'C'},
        {"port", required_argument, 0, 'B'},   {"seed", required_argument, 0, 'x'}, {"help", no_argument, 0, 'h'},
        {"soak", required_argument, 0, 'K'}, {"idle-peers", required_argument, 0, 'I'},
        {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (ch) {
        case 'q': o->quick = 1; break;
        case 'j': o->json = 1; break;
        case 'r': o->reps = atoi(optarg); reps_set = 1; break;
        case 'd': duration = atof(optarg); break;
        case 'o': o->only = optarg; break;
        case 't': o->tests = optarg; break;
        case 's': {
            o->nsizes = 0;
            char *dup = strdup(optarg), *save = NULL;
            for (char *tok = strtok_r(dup, ",", &save); tok && o->nsizes < MAXSIZES; tok = strtok_r(NULL, ",", &save))
                o->sizes[o->nsizes++] = parse_size(tok);
            free(dup);
            break;
        }
        case 'w': snprintf(o->workload, sizeof(o->workload), "%s", optarg); break;
        case 'L': o->load_gbps = atof(optarg); break;
        case 'R': o->max_rate = atof(optarg); break;
        case 'W': o->window = atoi(optarg); break;
        case 'c': o->incast_clients = atoi(optarg); break;
        case 'p': o->pin = 1; break;
        case 'P': o->plot_dir = optarg; break;
        case 'S': o->server_host = optarg; break;
        case 'C': o->client_host = optarg; break;
        case 'B': o->port_base = (unsigned)atoi(optarg); break;
        case 'x': o->seed = strtoull(optarg, NULL, 0); break;
        case 'K': o->soak_s = atof(optarg); break;
        case 'I': o->idle_peers = (unsigned)atoi(optarg); break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc || o->nsizes == 0 || o->window < 1 || o->window > 1024 || o->incast_clients < 1 ||
        o->incast_clients > 64 || o->load_gbps <= 0 || o->max_rate <= 0 || duration <= 0 ||
        !(o->workload[0] == 'w' && o->workload[1] >= '1' && o->workload[1] <= '5' && !o->workload[2]) || o->port_base > 65000) {
        usage(stderr);
        return -1;
    }
    if (o->quick) {
        duration = duration < 45 ? duration : 10;
        if (!reps_set)
            o->reps = 1;
    }
    o->reps = o->reps < 1 ? 1 : o->reps > MAXREPS ? MAXREPS : o->reps;
    /* The default plan takes about 45 s of measurement: cells scale with
     * --duration, and more repetitions take proportionally longer. */
    o->scale = duration / 45.0;
    return 0;
}

static int selected(const struct opts *o, const char *name)
{
    if (!o->only)
        return 1;
    char buf[256], key[32];
    snprintf(buf, sizeof(buf), ",%s,", o->only);
    snprintf(key, sizeof(key), ",%s,", name);
    return strstr(buf, key) != NULL;
}

static volatile sig_atomic_t stop_serving;
static void on_signal(int sig) { stop_serving = sig; }

static void machine_line(char *out, size_t n)
{
    struct utsname u;
    char model[128] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[256];
    while (f && fgets(line, sizeof(line), f)) {
        char *p = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && p) {
            snprintf(model, sizeof(model), "%s", p + 2);
            model[strcspn(model, "\n")] = 0;
            break;
        }
    }
    if (f)
        fclose(f);
    uname(&u);
    /* The load average says how much else was competing for the CPUs. */
    double load[3] = {0};
    if (getloadavg(load, 3) < 0)
        load[0] = NAN;
    snprintf(out, n, "%s, %ld CPUs, Linux %s, load average %.2f at start", model, sysconf(_SC_NPROCESSORS_ONLN),
             u.release, load[0]);
}

int main(int argc, char **argv)
{
    struct opts o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    pattern_init();
    if (o.idle_peers)
        return run_idle_peers(o.idle_peers);
    if (o.soak_s > 0)
        return run_soak(o.soak_s, o.seed);
    t_start = now_s();
    progress_on = isatty(2);
    static struct results r;
    machine_line(r.machine, sizeof(r.machine));
    const char *host = o.client_host ? o.client_host : o.server_host ? o.server_host : "127.0.0.1";
    struct endpoint ep[MAXT];
    struct tr_server *srv[MAXT] = {0};
    for (int i = 0; i < NALL; i++) {
        if (!selected(&o, all_transports[i]->name))
            continue;
        int ti = r.nt++;
        r.t[ti] = all_transports[i];
        ep[ti] = (struct endpoint){r.t[ti], host, (o.server_host || o.client_host) ? (uint16_t)(o.port_base + i) : 0};
        char why[160];
        if (r.t[ti]->unavailable && r.t[ti]->unavailable(why, sizeof(why))) {
            snprintf(r.status[ti], sizeof(r.status[ti]), "%s", why);
            continue;
        }
        if (o.client_host)
            continue;
        srv[ti] = r.t[ti]->server_start(host, ep[ti].port, o.pin ? 1 : -1, why, sizeof(why));
        if (!srv[ti])
            snprintf(r.status[ti], sizeof(r.status[ti]), "FAILED: server: %s", why);
        else
            ep[ti].port = r.t[ti]->server_port(srv[ti]);
    }
    if (r.nt == 0) {
        fprintf(stderr, "sdp-bench: --only selects no transport\n");
        return 2;
    }
    if (o.server_host) {
        for (int ti = 0; ti < r.nt; ti++)
            printf("%-9s %s\n", r.t[ti]->name, r.status[ti][0] ? r.status[ti] : "listening");
        printf("serving on %s, ports %u-%u; run sdp-bench --client %s --port %u elsewhere; Ctrl-C stops\n", host,
               o.port_base, o.port_base + NALL - 1, host, o.port_base);
        fflush(stdout);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        while (!stop_serving)
            pause();
    } else {
        if (o.pin)
            pin_self(0);
        run_all(&o, &r, ep);
        progress_end();
        r.elapsed_s = now_s() - t_start;
        if (o.json)
            report_json(stdout, &o, &r);
        else
            report_text(stdout, &o, &r);
        if (o.plot_dir)
            report_plots(&o, &r);
    }
    for (int ti = 0; ti < r.nt; ti++)
        if (srv[ti])
            r.t[ti]->server_stop(srv[ti]);
    return 0;
}
