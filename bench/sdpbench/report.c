/* sdp-bench: the report: tables with each row's ratio to sdp, the targets
 * with PASS/MISS, JSON, and gnuplot charts. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"

static int sdp_row(const struct results *r)
{
    for (int i = 0; i < r->nt; i++)
        if (strcmp(r->t[i]->name, "sdp") == 0)
            return i;
    return -1;
}

static int row_of(const struct results *r, const char *name)
{
    for (int i = 0; i < r->nt; i++)
        if (strcmp(r->t[i]->name, name) == 0)
            return i;
    return -1;
}

static void fmt_size(char *b, size_t n, size_t s)
{
    if (s >= (1u << 20) && s % (1u << 20) == 0)
        snprintf(b, n, "%zu MB", s >> 20);
    else if (s >= 1024 && s % 1024 == 0)
        snprintf(b, n, "%zu KB", s >> 10);
    else
        snprintf(b, n, "%zu B", s);
}

static void fmt_num(char *b, size_t n, double v)
{
    if (isnan(v))
        snprintf(b, n, "-");
    else if (fabs(v) >= 1000)
        snprintf(b, n, "%.0f", v);
    else if (fabs(v) >= 100)
        snprintf(b, n, "%.1f", v);
    else
        snprintf(b, n, "%.2f", v);
}

/* "value (ratio)" for a cell, ratio against the sdp row's same value. */
static void fmt_cell(char *b, size_t n, const struct cell *c, const struct cell *ref, int k, int *note,
                     char notes[][320], const char *rowname, const char *colname)
{
    if (c->state == CELL_OK && isnan(c->v[k])) {
        snprintf(b, n, "-");
    } else if (c->state == CELL_OK) {
        char v[32];
        fmt_num(v, sizeof(v), c->v[k]);
        if (ref && ref->state == CELL_OK && ref->v[k] > 0 && !isnan(c->v[k]))
            snprintf(b, n, "%s (%.2fx)", v, c->v[k] / ref->v[k]);
        else
            snprintf(b, n, "%s", v);
    } else if (c->state == CELL_NONE) {
        snprintf(b, n, "-");
    } else {
        snprintf(b, n, "%s[%d]", c->state == CELL_FAIL ? "FAILED" : "n/a", *note + 1);
        snprintf(notes[*note], 320, "[%d] %s %s: %s", *note + 1, rowname, colname, c->note);
        (*note)++;
    }
}

static void print_notes(FILE *f, char notes[][320], int n)
{
    for (int i = 0; i < n; i++)
        fprintf(f, "  %s\n", notes[i]);
}

#define MAXNOTES 64
#define CW 17

/* A table of one value k across columns (cells[t][col]). */
static void table(FILE *f, const struct results *r, const char *title, int ncols, char colnames[][24],
                  const struct cell *cells, int stride, int k)
{
    static char notes[MAXNOTES][320];
    int nn = 0, s = sdp_row(r);
    fprintf(f, "\n%s\n%-10s", title, "transport");
    for (int c = 0; c < ncols; c++)
        fprintf(f, " %*s", CW, colnames[c]);
    fprintf(f, "\n");
    for (int t = 0; t < r->nt; t++) {
        fprintf(f, "%-10s", r->t[t]->name);
        if (r->status[t][0]) {
            fprintf(f, " %s\n", r->status[t]);
            continue;
        }
        for (int c = 0; c < ncols; c++) {
            char b[64];
            const struct cell *ref = s >= 0 ? &cells[s * stride + c] : NULL;
            fmt_cell(b, sizeof(b), &cells[t * stride + c], ref, k, nn < MAXNOTES ? &nn : &(int){0}, notes,
                     r->t[t]->name, colnames[c]);
            fprintf(f, " %*s", CW, b);
        }
        fprintf(f, "\n");
    }
    print_notes(f, notes, nn);
}

/* One row per transport with several values of one cell, ratios on each. */
static void row_table(FILE *f, const struct results *r, const char *title, int nv, const char *const *vnames,
                      const int *vidx, const struct cell *cells, unsigned no_ratio)
{
    int s = sdp_row(r);
    fprintf(f, "\n%s\n%-10s", title, "transport");
    for (int v = 0; v < nv; v++)
        fprintf(f, " %*s", CW, vnames[v]);
    fprintf(f, "\n");
    for (int t = 0; t < r->nt; t++) {
        const struct cell *c = &cells[t];
        fprintf(f, "%-10s", r->t[t]->name);
        if (r->status[t][0])
            fprintf(f, " %s", r->status[t]);
        else if (c->state == CELL_FAIL || c->state == CELL_NA)
            fprintf(f, " %s", c->note);
        else
            for (int v = 0; v < nv; v++) {
                char b[64];
                int dummy = 0;
                const struct cell *ref = s >= 0 && !(no_ratio >> v & 1) ? &cells[s] : NULL;
                fmt_cell(b, sizeof(b), c, ref, vidx[v], &dummy, NULL, "", "");
                fprintf(f, " %*s", CW, b);
            }
        fprintf(f, "\n");
    }
}

/* ------------------------------------------------------------------ */

struct target {
    const char *id, *what;
    double measured, limit;
    int le; /* 1: measured must be <= limit; 0: >= */
    char result[300];
};

static double val(const struct cell *c, int k) { return c && c->state == CELL_OK ? c->v[k] : NAN; }

static int targets(const struct opts *o, const struct results *r, struct target *t)
{
    int s = sdp_row(r), n = 0, i64 = -1;
    for (int i = 0; i < o->nsizes; i++)
        if (o->sizes[i] == 64)
            i64 = i;
    const struct cell *srtt = s >= 0 && i64 >= 0 ? &r->rtt[s][i64] : NULL;
    struct {
        const char *id, *what, *other;
        int kind; /* 0 rtt64, 1 bulk 1M, 2 bulk 8K, 3 rate, 4 evp, 5 handshake */
        double limit;
        int le;
    } spec[] = {
        {"rtt64_vs_tls", "64 B RTT P50, sdp / tls", "tls", 0, 0.70, 1},
        {"rtt64_vs_udp", "64 B RTT P50, sdp / udp", "udp", 0, 1.25, 1},
        {"rtt64_vs_null", "64 B RTT P50, sdp / sdp-null", "sdp-null", 0, 1.10, 1},
        {"goodput1m_vs_tls", "1 MB goodput, sdp / tls", "tls", 1, 1.3, 0},
        {"goodput1m_vs_evp", "1 MB goodput, sdp / 1-core AES-128-GCM 16 KB", NULL, 4, 0.7, 0},
        {"goodput8k_vs_tls", "8 KB goodput, sdp / tls", "tls", 2, 1.1, 0},
        {"rate64_vs_tls", "64 B x 64 RPC rate, sdp / tls", "tls", 3, 1.5, 0},
        {"handshake_vs_tls", "1-RTT handshake time, sdp / tls", "tls", 5, 1.0, 1},
    };
    for (size_t i = 0; i < sizeof(spec) / sizeof(spec[0]); i++) {
        struct target *x = &t[n++];
        *x = (struct target){spec[i].id, spec[i].what, NAN, spec[i].limit, spec[i].le, ""};
        int oth = spec[i].other ? row_of(r, spec[i].other) : -1;
        const struct cell *a = NULL, *b = NULL;
        int k = 0;
        switch (spec[i].kind) {
        case 0: a = srtt; b = oth >= 0 && i64 >= 0 ? &r->rtt[oth][i64] : NULL; break;
        case 1: a = s >= 0 ? &r->bulk[s][1] : NULL; b = oth >= 0 ? &r->bulk[oth][1] : NULL; break;
        case 2: a = s >= 0 ? &r->bulk[s][0] : NULL; b = oth >= 0 ? &r->bulk[oth][0] : NULL; break;
        case 3: a = s >= 0 ? &r->rate[s] : NULL; b = oth >= 0 ? &r->rate[oth] : NULL; break;
        case 4: a = s >= 0 ? &r->bulk[s][1] : NULL; break;
        case 5: a = s >= 0 ? &r->hs[s] : NULL; b = oth >= 0 ? &r->hs[oth] : NULL; break;
        }
        double num = val(a, k), den = spec[i].kind == 4 ? r->evp_gbps : val(b, k);
        if (spec[i].kind == 5 && a && a->state == CELL_NA) {
            snprintf(x->result, sizeof(x->result), "%s", a->note);
            continue;
        }
        if (isnan(num) || isnan(den) || den <= 0) {
            const char *why = !a || a->state == CELL_NONE   ? "sdp not measured"
                              : a->state != CELL_OK         ? a->note
                              : spec[i].kind == 4           ? "AES-GCM rate not measured"
                              : !b || b->state == CELL_NONE ? "not measured"
                                                            : b->note;
            snprintf(x->result, sizeof(x->result), "n/a: %s", why);
            continue;
        }
        x->measured = num / den;
        int pass = x->le ? x->measured <= x->limit : x->measured >= x->limit;
        snprintf(x->result, sizeof(x->result), "%s", pass ? "PASS" : "MISS");
    }
    return n;
}

/* ------------------------------------------------------------------ */

void report_text(FILE *f, const struct opts *o, struct results *r)
{
    char cols[MAXSIZES][24];
    fprintf(f, "sdp-bench: %s\n", r->machine);
    fprintf(f, "loopback; servers %s; %s; %d repetition%s of the key figures (medians), interleaved; %.1f s\n",
            o->client_host ? "in another process" : "on threads of this process",
            !o->pin ? "not pinned" : o->client_host ? "client on CPU 0" : "client on CPU 0, servers on CPU 1", o->reps, o->reps == 1 ? "" : "s",
            r->elapsed_s);
    fprintf(f, "single-core AES-128-GCM, 16 KB records (OpenSSL EVP, this run): %.2f Gbit/s\n", r->evp_gbps);
    fprintf(f, "transports:\n");
    for (int t = 0; t < r->nt; t++)
        fprintf(f, "  %-9s %s%s%s\n", r->t[t]->name, r->t[t]->label, r->status[t][0] ? " -- " : "", r->status[t]);
    fprintf(f, "(x) = this row / the sdp row.  Latencies in microseconds.\n");

    if (r->ran_rtt) {
        for (int i = 0; i < o->nsizes; i++)
            fmt_size(cols[i], sizeof(cols[i]), o->sizes[i]);
        char title[160];
        snprintf(title, sizeof(title),
                 "== RTT ping-pong, P50 us (median of %d reps); request and response of the same size ==", o->reps);
        table(f, r, title, o->nsizes, cols, &r->rtt[0][0], MAXSIZES, 0);
        table(f, r, "== RTT ping-pong, P99 us (all reps' samples) ==", o->nsizes, cols, &r->rtt[0][0], MAXSIZES, 1);
        table(f, r, "== RTT ping-pong, P99.9 us (all reps' samples) ==", o->nsizes, cols, &r->rtt[0][0], MAXSIZES, 2);
    }
    if (r->ran_bulk) {
        for (int i = 0; i < NBULK; i++)
            fmt_size(cols[i], sizeof(cols[i]), o->bulk_sizes[i]);
        char title[200];
        snprintf(title, sizeof(title),
                 "== Bulk goodput, Gbit/s (median of %d reps); %d requests outstanding, 16 B responses ==", o->reps,
                 o->window);
        table(f, r, title, NBULK, cols, &r->bulk[0][0], NBULK, 0);
    }
    if (r->ran_rate) {
        static const char *const vn[] = {"kRPC/s", "min", "max"};
        static const int vi[] = {0, 1, 2};
        char title[200];
        snprintf(title, sizeof(title), "== RPC rate, %zu B requests and responses, %d outstanding (median of %d reps) ==",
                 o->rate_size, o->rate_window, o->reps);
        row_table(f, r, title, 3, vn, vi, r->rate, 0);
    }
    if (r->ran_pois) {
        fprintf(f, "\n== Open-loop Poisson, workload %s, %.0f RPC/s offered (%.2f Gbit/s of requests), 64 B responses ==\n",
                o->workload, r->pois_rate, r->pois_rate * 8 * r->pois_mean / 1e9);
        fprintf(f, "slowdown = RTT / best unloaded RTT for the size (fastest transport, this run); 1 rep\n");
        static const char *const ln[] = {"offered/s", "completed/s", "dropped", "Gbit/s"};
        static const int li[] = {0, 1, 2, 3};
        row_table(f, r, "achieved load (dropped: arrivals that found 1024 RPCs outstanding)", 4, ln, li, r->pois_load,
                  0xf);
        static const char *const vn[] = {"n", "P50 us", "P99 us", "P99.9 us", "slow P50", "slow P99", "slow P99.9"};
        static const int vi[] = {PB_N, PB_P50, PB_P99, PB_P999, PB_S50, PB_S99, PB_S999};
        for (int b = 0; b < NBUCKETS; b++) {
            char title[64];
            snprintf(title, sizeof(title), "-- messages %s --", bucket_names[b]);
            struct cell col[MAXT];
            for (int t = 0; t < r->nt; t++)
                col[t] = r->pois[t][b];
            row_table(f, r, title, 7, vn, vi, col, 1);
        }
    }
    if (r->ran_incast) {
        static const char *const vn[] = {"Gbit/s", "P50 us", "P99 us", "P99.9 us"};
        static const int vi[] = {IC_GBPS, IC_P50, IC_P99, IC_P999};
        char title[200];
        char sz[24];
        fmt_size(sz, sizeof(sz), o->incast_size);
        snprintf(title, sizeof(title), "== Incast: %d clients each sending %s requests to one server (median of %d reps) ==",
                 o->incast_clients, sz, r->reps_used[3]);
        row_table(f, r, title, 4, vn, vi, r->incast, 0);
    }
    if (r->ran_hs) {
        static const char *const vn[] = {"P50 us", "P99 us", "count"};
        static const int vi[] = {0, 1, 2};
        row_table(f, r, "== Connection setup: TCP connect; TLS: connect + full TLS 1.3 handshake ==", 3, vn, vi, r->hs, 4);
        static const char *const fn[] = {"full P50 us", "resumed P50 us", "count"};
        static const int fi[] = {0, 1, 2};
        row_table(f, r,
                  "== First response on a new connection (64 B RPC): full = first contact; resumed = sdp 0-RTT ==",
                  3, fn, fi, r->first, 4);
    }
    struct target t[16];
    int nt = targets(o, r, t);
    fprintf(f, "\n== targets ==\n");
    for (int i = 0; i < nt; i++) {
        char m[32];
        if (isnan(t[i].measured))
            snprintf(m, sizeof(m), "-");
        else
            snprintf(m, sizeof(m), "%.2fx", t[i].measured);
        fprintf(f, "  %-48s %8s  (target %s %.2fx)  %s\n", t[i].what, m, t[i].le ? "<=" : ">=", t[i].limit, t[i].result);
    }
}

/* ------------------------------------------------------------------ */

static void jstr(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(f, "\\%c", *s);
        else if ((unsigned char)*s < 0x20)
            fprintf(f, "\\u%04x", *s);
        else
            fputc(*s, f);
    }
    fputc('"', f);
}

static void jnum(FILE *f, double v)
{
    if (isnan(v) || isinf(v))
        fprintf(f, "null");
    else
        fprintf(f, "%.6g", v);
}

/* {"status": "ok"|"failed"|"n/a"|"unavailable", "error": ..., names[i]: v[idx[i]]...} */
static void jcell(FILE *f, const struct results *r, int t, const struct cell *c, int nv, const char *const *names,
                  const int *idx)
{
    const char *st = r->status[t][0] ? "unavailable"
                     : c->state == CELL_OK ? "ok"
                     : c->state == CELL_FAIL ? "failed"
                     : c->state == CELL_NA ? "n/a"
                                           : "not run";
    fprintf(f, "{\"transport\": ");
    jstr(f, r->t[t]->name);
    fprintf(f, ", \"status\": \"%s\"", st);
    if (r->status[t][0] || c->state == CELL_FAIL || c->state == CELL_NA) {
        fprintf(f, ", \"error\": ");
        jstr(f, r->status[t][0] ? r->status[t] : c->note);
    }
    fprintf(f, ", \"reps\": %d", c->reps);
    for (int i = 0; i < nv; i++) {
        fprintf(f, ", \"%s\": ", names[i]);
        jnum(f, c->state == CELL_OK && !r->status[t][0] ? c->v[idx[i]] : NAN);
    }
    fprintf(f, "}");
}

void report_json(FILE *f, const struct opts *o, struct results *r)
{
    fprintf(f, "{\"tool\": \"sdp-bench\", \"machine\": ");
    jstr(f, r->machine);
    fprintf(f, ", \"reps\": %d, \"quick\": %s, \"pinned\": %s, \"elapsed_s\": %.2f, \"evp_aes128gcm_16k_gbps\": ",
            o->reps, o->quick ? "true" : "false", o->pin ? "true" : "false", r->elapsed_s);
    jnum(f, r->evp_gbps);
    fprintf(f, ",\n \"transports\": [");
    for (int t = 0; t < r->nt; t++) {
        fprintf(f, "%s{\"name\": ", t ? ", " : "");
        jstr(f, r->t[t]->name);
        fprintf(f, ", \"label\": ");
        jstr(f, r->t[t]->label);
        fprintf(f, ", \"available\": %s", r->status[t][0] ? "false" : "true");
        if (r->status[t][0]) {
            fprintf(f, ", \"status\": ");
            jstr(f, r->status[t]);
        }
        fprintf(f, "}");
    }
    static const char *const rn[] = {"p50_us", "p99_us", "p999_us", "samples"};
    static const int ri[] = {0, 1, 2, 3};
    fprintf(f, "],\n \"rtt\": [");
    int first = 1;
    for (int s = 0; r->ran_rtt && s < o->nsizes; s++)
        for (int t = 0; t < r->nt; t++) {
            fprintf(f, "%s\n  {\"size\": %zu, \"result\": ", first ? "" : ",", o->sizes[s]);
            jcell(f, r, t, &r->rtt[t][s], 4, rn, ri);
            fprintf(f, "}");
            first = 0;
        }
    static const char *const bn[] = {"gbps", "gbps_min", "gbps_max"};
    static const int bi[] = {0, 1, 2};
    fprintf(f, "],\n \"bulk\": [");
    first = 1;
    for (int s = 0; r->ran_bulk && s < NBULK; s++)
        for (int t = 0; t < r->nt; t++) {
            fprintf(f, "%s\n  {\"size\": %zu, \"window\": %d, \"result\": ", first ? "" : ",", o->bulk_sizes[s], o->window);
            jcell(f, r, t, &r->bulk[t][s], 3, bn, bi);
            fprintf(f, "}");
            first = 0;
        }
    static const char *const qn[] = {"krps", "krps_min", "krps_max"};
    fprintf(f, "],\n \"rate\": {\"size\": %zu, \"outstanding\": %d, \"results\": [", o->rate_size, o->rate_window);
    for (int t = 0; r->ran_rate && t < r->nt; t++) {
        fprintf(f, "%s\n  ", t ? "," : "");
        jcell(f, r, t, &r->rate[t], 3, qn, bi);
    }
    fprintf(f, "]},\n \"poisson\": {\"workload\": ");
    jstr(f, o->workload);
    fprintf(f, ", \"offered_gbps\": %.3f, \"offered_rps\": %.1f, \"load\": [", r->pois_rate * 8 * r->pois_mean / 1e9,
            r->pois_rate);
    static const char *const ln[] = {"offered_rps", "completed_rps", "dropped", "gbps"};
    static const int li[] = {0, 1, 2, 3};
    for (int t = 0; r->ran_pois && t < r->nt; t++) {
        fprintf(f, "%s\n  ", t ? "," : "");
        jcell(f, r, t, &r->pois_load[t], 4, ln, li);
    }
    fprintf(f, "], \"buckets\": [");
    static const char *const pn[] = {"n", "p50_us", "p99_us", "p999_us", "slowdown_p50", "slowdown_p99", "slowdown_p999"};
    static const int pi[] = {PB_N, PB_P50, PB_P99, PB_P999, PB_S50, PB_S99, PB_S999};
    first = 1;
    for (int b = 0; r->ran_pois && b < NBUCKETS; b++)
        for (int t = 0; t < r->nt; t++) {
            fprintf(f, "%s\n  {\"bucket\": \"%s\", \"result\": ", first ? "" : ",", bucket_names[b]);
            jcell(f, r, t, &r->pois[t][b], 7, pn, pi);
            fprintf(f, "}");
            first = 0;
        }
    static const char *const in[] = {"gbps", "p50_us", "p99_us", "p999_us"};
    static const int ii[] = {IC_GBPS, IC_P50, IC_P99, IC_P999};
    fprintf(f, "]},\n \"incast\": {\"clients\": %d, \"size\": %zu, \"results\": [", o->incast_clients, o->incast_size);
    for (int t = 0; r->ran_incast && t < r->nt; t++) {
        fprintf(f, "%s\n  ", t ? "," : "");
        jcell(f, r, t, &r->incast[t], 4, in, ii);
    }
    static const char *const hn[] = {"p50_us", "p99_us", "count"};
    fprintf(f, "]},\n \"handshake\": [");
    for (int t = 0; r->ran_hs && t < r->nt; t++) {
        fprintf(f, "%s\n  ", t ? "," : "");
        jcell(f, r, t, &r->hs[t], 3, hn, bi);
    }
    static const char *const fjn[] = {"full_p50_us", "resumed_p50_us", "count"};
    fprintf(f, "],\n \"first_response\": [");
    for (int t = 0; r->ran_hs && t < r->nt; t++) {
        fprintf(f, "%s\n  ", t ? "," : "");
        jcell(f, r, t, &r->first[t], 3, fjn, bi);
    }
    fprintf(f, "],\n \"targets\": [");
    struct target tg[16];
    int nt = targets(o, r, tg);
    for (int i = 0; i < nt; i++) {
        fprintf(f, "%s\n  {\"id\": \"%s\", \"what\": ", i ? "," : "", tg[i].id);
        jstr(f, tg[i].what);
        fprintf(f, ", \"measured\": ");
        jnum(f, tg[i].measured);
        fprintf(f, ", \"op\": \"%s\", \"limit\": %.2f, \"result\": ", tg[i].le ? "<=" : ">=", tg[i].limit);
        jstr(f, tg[i].result);
        fprintf(f, "}");
    }
    fprintf(f, "]}\n");
}

/* ------------------------------------------------------------------ */

static int have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

/* gnuplot is needed only here, so it is installed only when asked for. */
static int ensure_gnuplot(void)
{
    if (have_gnuplot())
        return 1;
    if (geteuid() != 0 || system("command -v apt-get >/dev/null 2>&1") != 0)
        return 0;
    fprintf(stderr, "sdp-bench: --plot: installing gnuplot-nox with apt-get\n");
    if (system("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gnuplot-nox "
               ">/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive "
               "apt-get install -y -qq --no-install-recommends gnuplot-nox >/dev/null 2>&1)") != 0)
        return 0;
    return have_gnuplot();
}

void report_plots(const struct opts *o, struct results *r)
{
    mkdir(o->plot_dir, 0755);
    char path[1024];
    snprintf(path, sizeof(path), "%s/rtt.dat", o->plot_dir);
    FILE *d = fopen(path, "w");
    if (!d) {
        fprintf(stderr, "sdp-bench: --plot: cannot write %s\n", path);
        return;
    }
    fprintf(d, "# size");
    for (int t = 0; t < r->nt; t++)
        fprintf(d, " %s_p50 %s_p99", r->t[t]->name, r->t[t]->name);
    fprintf(d, "\n");
    for (int s = 0; s < o->nsizes; s++) {
        fprintf(d, "%zu", o->sizes[s]);
        for (int t = 0; t < r->nt; t++) {
            const struct cell *c = &r->rtt[t][s];
            int ok = c->state == CELL_OK && !r->status[t][0];
            fprintf(d, ok ? " %.3f %.3f" : " NaN NaN", c->v[0], c->v[1]);
        }
        fprintf(d, "\n");
    }
    fclose(d);
    snprintf(path, sizeof(path), "%s/slowdown.dat", o->plot_dir);
    d = fopen(path, "w");
    if (!d)
        return;
    fprintf(d, "# bucket");
    for (int t = 0; t < r->nt; t++)
        fprintf(d, " %s_p50 %s_p99", r->t[t]->name, r->t[t]->name);
    fprintf(d, "\n");
    for (int b = 0; b < NBUCKETS; b++) {
        fprintf(d, "\"%s\"", bucket_names[b]);
        for (int t = 0; t < r->nt; t++) {
            const struct cell *c = &r->pois[t][b];
            int ok = c->state == CELL_OK && !r->status[t][0];
            fprintf(d, ok ? " %.3f %.3f" : " NaN NaN", c->v[PB_S50], c->v[PB_S99]);
        }
        fprintf(d, "\n");
    }
    fclose(d);
    snprintf(path, sizeof(path), "%s/plots.gp", o->plot_dir);
    FILE *g = fopen(path, "w");
    if (!g)
        return;
    fprintf(g, "set terminal png size 1000,650\nset grid\nset key top left\nset datafile missing 'NaN'\n");
    if (r->ran_rtt)
        fprintf(g, "set output '%s/rtt.png'\nset logscale xy\nset xlabel 'message size (bytes)'\n"
               "set ylabel 'RTT (us)'\nset title 'sdp-bench: ping-pong RTT on loopback (P50 solid, P99 dashed)'\nplot ",
            o->plot_dir);
    for (int t = 0, k = 0; r->ran_rtt && t < r->nt; t++) {
        if (r->status[t][0])
            continue;
        fprintf(g, "%s'%s/rtt.dat' u 1:%d w lp lc %d dt 1 t '%s P50', '' u 1:%d w lp lc %d dt 2 t '%s P99'",
                k++ ? ", " : "", o->plot_dir, 2 + 2 * t, t + 1, r->t[t]->name, 3 + 2 * t, t + 1, r->t[t]->name);
    }
    if (r->ran_pois)
        fprintf(g, "\nunset logscale x\nset logscale y\nset output '%s/slowdown.png'\nset xlabel 'message size bucket'\n"
               "set ylabel 'slowdown'\nset title 'sdp-bench: Poisson %s, slowdown (P50 solid, P99 dashed)'\nplot ",
            o->plot_dir, o->workload);
    for (int t = 0, k = 0; r->ran_pois && t < r->nt; t++) {
        if (r->status[t][0])
            continue;
        fprintf(g, "%s'%s/slowdown.dat' u %d:xtic(1) w lp lc %d dt 1 t '%s P50', '' u %d w lp lc %d dt 2 t '%s P99'",
                k++ ? ", " : "", o->plot_dir, 2 + 2 * t, t + 1, r->t[t]->name, 3 + 2 * t, t + 1, r->t[t]->name);
    }
    fprintf(g, "\n");
    fclose(g);
    if (!ensure_gnuplot()) {
        fprintf(stderr, "sdp-bench: --plot: gnuplot is not installed and could not be installed; charts skipped "
                        "(data and script are in %s: run gnuplot %s later)\n", o->plot_dir, path);
        return;
    }
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "gnuplot '%s' 2>&1", path);
    if (system(cmd) != 0)
        fprintf(stderr, "sdp-bench: --plot: gnuplot failed on %s\n", path);
    else
        fprintf(stderr, "sdp-bench: charts written in %s:%s%s\n", o->plot_dir, r->ran_rtt ? " rtt.png" : "",
                r->ran_pois ? " slowdown.png" : "");
}
