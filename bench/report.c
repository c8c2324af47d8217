#include "report.h"

#include <errno.h>
#include <string.h>
#include <sys/wait.h>

#include <openssl/ssl.h>

/* ------------------------------------------------------------------------------------------
 * Shared helpers
 * ------------------------------------------------------------------------------------------ */

static const double quantiles[] = {0.5, 0.9, 0.99, 0.999};
static const char *const quantile_keys[] = {"p50", "p90", "p99", "p99_9"};

static double ms(uint64_t us)
{
    return (double)us / 1000.0;
}

static double per_sec(uint64_t n, double secs)
{
    return secs > 0 ? (double)n / secs : 0.0;
}

static const char *tls_name(int v)
{
    return v == TLS1_2_VERSION ? "1.2" : v == TLS1_3_VERSION ? "1.3" : "1.2-1.3";
}

static double resumption_rate(const tlsc_bench_result_t *r)
{
    return r->offered ? (double)r->resumed / (double)r->offered : 0.0;
}

static double cpu_percent(const tlsc_bench_result_t *r)
{
    return r->elapsed_sec > 0 ? 100.0 * (r->cpu_user_sec + r->cpu_sys_sec) / r->elapsed_sec : 0.0;
}

static const char *balance_name(tlsc_bench_balance_t b)
{
    return b == TLSC_BENCH_BALANCE_RANDOM ? "random" : "rr";
}

/* ------------------------------------------------------------------------------------------
 * Text
 * ------------------------------------------------------------------------------------------ */

static void text_latency_row(FILE *out, const char *name, const tlsc_hist_t *h, double secs)
{
    fprintf(out, "  %-12s %10llu %10.1f", name, (unsigned long long)h->count, per_sec(h->count, secs));
    if (h->count == 0) {
        fprintf(out, "          -\n");
        return;
    }
    for (size_t i = 0; i < sizeof(quantiles) / sizeof(quantiles[0]); i++)
        fprintf(out, " %9.3f", ms(tlsc_hist_percentile(h, quantiles[i])));
    fprintf(out, " %9.3f\n", ms(h->max));
}

static size_t label_width(const tlsc_bench_options_t *o)
{
    size_t w = 6;

    for (size_t i = 0; i < o->ntargets; i++)
        if (strlen(o->targets[i].label) > w)
            w = strlen(o->targets[i].label);
    return w;
}

/* The server view's columns, in two tables: sessions through Redis, then stateless tickets. */
typedef struct {
    int field;
    const char *head;
} sv_column_t;

static const sv_column_t sv_sessions[] = {
    {TLSC_BENCH_RS_HANDSHAKES_FULL, "hs_full"}, {TLSC_BENCH_RS_HANDSHAKES_RESUMED, "hs_resumed"},
    {TLSC_BENCH_RS_LOOKUPS_L1_HIT, "l1_hit"},   {TLSC_BENCH_RS_LOOKUPS_HIT, "redis_hit"},
    {TLSC_BENCH_RS_LOOKUPS_MISS, "miss"},       {TLSC_BENCH_RS_LOOKUPS_TIMEOUT, "timeout"},
    {TLSC_BENCH_RS_LOOKUPS_ERROR, "lk_error"},  {TLSC_BENCH_RS_STORES_OK, "store_ok"},
    {TLSC_BENCH_RS_STORES_ERROR, "store_err"},  {TLSC_BENCH_RS_RECORDS_BAD, "rec_bad"},
};
static const sv_column_t sv_tickets[] = {
    {TLSC_BENCH_RS_TICKETS_ISSUED, "issued"},
    {TLSC_BENCH_RS_TICKETS_DECRYPTED, "decrypted"},
    {TLSC_BENCH_RS_TICKETS_RENEWED, "renewed"},
    {TLSC_BENCH_RS_TICKETS_UNKNOWN_KEY, "unknown_key"},
};

static void text_sv_table(FILE *out, const char *title, const sv_column_t *cols, size_t ncols, const tlsc_bench_rs_snapshot_t *d,
                          const int64_t *tot)
{
    fprintf(out, "  %-16s %7s", title, "workers");
    for (size_t c = 0; c < ncols; c++)
        fprintf(out, " %*s", strlen(cols[c].head) > 9 ? (int)strlen(cols[c].head) : 9, cols[c].head);
    fputc('\n', out);
    for (size_t i = 0; i <= d->nnodes; i++) {
        const int64_t *v = i < d->nnodes ? d->nodes[i].v : tot;

        if (i < d->nnodes)
            fprintf(out, "  %-16s %7u", d->nodes[i].node, d->nodes[i].workers);
        else
            fprintf(out, "  %-16s %7s", "total", "");
        for (size_t c = 0; c < ncols; c++)
            fprintf(out, " %*lld", strlen(cols[c].head) > 9 ? (int)strlen(cols[c].head) : 9, (long long)v[cols[c].field]);
        fputc('\n', out);
    }
}

static void text_server_view(FILE *out, const tlsc_bench_result_t *r, const tlsc_bench_server_view_t *sv)
{
    int64_t tot[TLSC_BENCH_RS_FIELDS] = {0};

    if (sv == NULL || (sv->diff == NULL && sv->error == NULL))
        return;
    fprintf(out, "\nserver view (Redis stats, after - before):\n");
    if (sv->diff == NULL) {
        fprintf(out, "  unavailable: %s\n", sv->error);
        return;
    }
    for (size_t i = 0; i < sv->diff->nnodes; i++)
        for (int f = 0; f < TLSC_BENCH_RS_FIELDS; f++)
            tot[f] += sv->diff->nodes[i].v[f];
    text_sv_table(out, "node", sv_sessions, sizeof(sv_sessions) / sizeof(sv_sessions[0]), sv->diff, tot);
    text_sv_table(out, "tickets by node", sv_tickets, sizeof(sv_tickets) / sizeof(sv_tickets[0]), sv->diff, tot);
    fprintf(
        out, "  client counted full %llu, resumed %llu; servers counted full %lld, resumed %lld%s\n", (unsigned long long)r->full,
        (unsigned long long)r->resumed, (long long)tot[TLSC_BENCH_RS_HANDSHAKES_FULL],
        (long long)tot[TLSC_BENCH_RS_HANDSHAKES_RESUMED],
        ((uint64_t)tot[TLSC_BENCH_RS_HANDSHAKES_FULL] == r->full && (uint64_t)tot[TLSC_BENCH_RS_HANDSHAKES_RESUMED] == r->resumed)
            ? " (agree)"
            : " (DIFFER: other clients, or stats not yet published)");
    if (tot[TLSC_BENCH_RS_RECORDS_BAD] > 0)
        fprintf(out,
                "  %lld session records in Redis could not be unsealed or decoded (rec_bad): nodes that seal differently?"
                " check --keyd and its secret on every node\n",
                (long long)tot[TLSC_BENCH_RS_RECORDS_BAD]);
}

/*
 * With --cafile a completed handshake is a verified one, and a rejected certificate is a
 * `verify` error: say which happened, and never "verified" when nothing was.
 */
static void text_certificate(FILE *out, const tlsc_bench_result_t *r)
{
    uint64_t hs = r->full + r->resumed, rejected = r->errors[TLSC_BENCH_ERR_VERIFY];

    if (!r->verified)
        fprintf(out, "  certificate NOT verified (no --cafile)\n");
    else if (hs == 0 && rejected > 0)
        fprintf(out, "  certificate REJECTED (--cafile): every verification failed (%llu), see the verify errors\n",
                (unsigned long long)rejected);
    else if (hs == 0)
        fprintf(out, "  certificate not checked: no handshake completed (--cafile given)\n");
    else if (rejected > 0)
        fprintf(out, "  certificate verified (--cafile) on %llu handshakes, REJECTED on %llu\n", (unsigned long long)hs,
                (unsigned long long)rejected);
    else
        fprintf(out, "  certificate verified (--cafile) on %llu handshakes\n", (unsigned long long)hs);
}

/* Off-diagonal cells that were offered sessions and resumed none. */
static size_t unshared_pairs(const tlsc_bench_result_t *r)
{
    size_t n = r->ntargets, count = 0;

    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (i != j && r->matrix_offered[i * n + j] > 0 && r->matrix_resumed[i * n + j] == 0)
                count++;
    return count;
}

/*
 * A cell off the diagonal that never resumes is almost always a configuration difference
 * between the two servers, not a load problem: name the pairs and the flags to compare.
 */
static void text_matrix_hint(FILE *out, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r)
{
    size_t n = r->ntargets, shown = 0, count = unshared_pairs(r);
    uint64_t own_offered = 0, own_resumed = 0;

    if (count == 0)
        return;
    for (size_t i = 0; i < n; i++) {
        own_offered += r->matrix_offered[i * n + i];
        own_resumed += r->matrix_resumed[i * n + i];
    }
    /* When no server resumes even its own sessions, sharing is not the first thing to look at. */
    if (own_offered > 0 && own_resumed == 0 && r->resumed == 0) {
        fprintf(out, "  hint: no target resumed any session, not even its own: do the servers keep sessions at all?\n");
        return;
    }
    fprintf(out, "  hint: targets do not share sessions: check --cluster, --redis-prefix, --keyd (and its secret) on the servers;\n"
                 "        never resumed:");
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (i != j && r->matrix_offered[i * n + j] > 0 && r->matrix_resumed[i * n + j] == 0 && shown++ < 4)
                fprintf(out, "%s %s -> %s (0/%llu)", shown > 1 ? "," : "", o->targets[i].label, o->targets[j].label,
                        (unsigned long long)r->matrix_offered[i * n + j]);
    if (count > 4)
        fprintf(out, " and %zu more", count - 4);
    fputc('\n', out);
}

void tlsc_bench_report_text(FILE *out, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r,
                            const tlsc_bench_server_view_t *sv)
{
    size_t n = r->ntargets, w = label_width(o);
    uint64_t nerr = tlsc_bench_result_errors(r);
    uint64_t hs = r->full + r->resumed, failed = tlsc_bench_result_failed(r);
    double secs = r->elapsed_sec;

    fprintf(out, "tlscache-bench: %zu target%s (%s), TLS %s, mode %s", n, n == 1 ? "" : "s", balance_name(o->balance),
            tls_name(o->tls_version), tlsc_bench_mode_name(o->mode));
    if (o->new_session_every)
        fprintf(out, ", new session every %llu", (unsigned long long)o->new_session_every);
    fprintf(out, ", concurrency %u%s\n", o->concurrency, o->request ? ", with HTTP request" : "");
    /*
     * As h2load does, rates count only what succeeded: a refused connection costs the client a
     * syscall, not a handshake, and counting it would show a dead target as the fastest server.
     */
    fprintf(out,
            "  %llu connections in %.3f s: %llu succeeded (%.1f handshakes/s), %llu failed, %llu errored after the handshake%s%s\n",
            (unsigned long long)r->connections, secs, (unsigned long long)hs, per_sec(hs, secs), (unsigned long long)failed,
            (unsigned long long)r->errors_after_handshake, r->interrupted ? ", INTERRUPTED" : "",
            r->deadline_hit ? ", hard deadline hit" : "");
    fprintf(out, "  client CPU %.2f s user + %.2f s sys = %.0f %% of one core%s\n", r->cpu_user_sec, r->cpu_sys_sec, cpu_percent(r),
            cpu_percent(r) <= 90.0       ? ""
            : failed > 0 && failed >= hs ? "  (spent mostly on failed connections: says nothing about the server)"
                                         : "  (client-bound: the server may be faster than shown)");

    fprintf(out, "\nhandshakes        count     rate/s   p50 ms    p90 ms    p99 ms  p99.9 ms    max ms\n");
    text_latency_row(out, "full", r->lat_full, secs);
    text_latency_row(out, "resumed", r->lat_resumed, secs);
    fprintf(out, "  %-12s %10llu %10.1f\n", "total", (unsigned long long)(r->full + r->resumed),
            per_sec(r->full + r->resumed, secs));
    text_latency_row(out, "tcp connect", r->lat_connect, secs);
    fprintf(out, "  (handshake latency: first ClientHello byte to handshake done; TCP connect apart)\n");

    fprintf(out, "\nresumption: %llu resumed / %llu offered = ", (unsigned long long)r->resumed, (unsigned long long)r->offered);
    if (r->offered)
        fprintf(out, "%.2f %%\n", 100.0 * resumption_rate(r));
    else
        fprintf(out, "n/a (no session offered)\n");
    if (o->mode != TLSC_BENCH_MODE_FULL)
        fprintf(out, "  sessions received %llu, connections that got none %llu%s\n", (unsigned long long)r->sessions_received,
                (unsigned long long)r->no_session,
                r->ticket_wait_skipped
                    ? " (a TLS 1.3 target sent no tickets after full or after resumed handshakes: stopped waiting for them there)"
                    : "");

    if (n > 1 && o->mode != TLSC_BENCH_MODE_FULL) {
        fprintf(out, "\nmatrix, issuing target (row) -> offered target (column): resumed/offered\n  %-*s", (int)w, "");
        for (size_t j = 0; j < n; j++)
            fprintf(out, "  %*s", (int)w, o->targets[j].label);
        fputc('\n', out);
        for (size_t i = 0; i < n; i++) {
            fprintf(out, "  %-*s", (int)w, o->targets[i].label);
            for (size_t j = 0; j < n; j++) {
                char cell[48];

                snprintf(cell, sizeof(cell), "%llu/%llu", (unsigned long long)r->matrix_resumed[i * n + j],
                         (unsigned long long)r->matrix_offered[i * n + j]);
                fprintf(out, "  %*s", (int)w, cell);
            }
            fputc('\n', out);
        }
        text_matrix_hint(out, o, r);
    }

    fprintf(out, "\nper target%*s connections       full    resumed    offered     errors\n", (int)(w > 8 ? w - 8 : 0), "");
    for (size_t i = 0; i < n; i++) {
        const tlsc_bench_target_stats_t *t = &r->per_target[i];
        uint64_t e = 0;

        for (int k = 0; k < TLSC_BENCH_ERR_KINDS; k++)
            e += t->errors[k];
        fprintf(out, "  %-*s %11llu %10llu %10llu %10llu %10llu\n", (int)w, o->targets[i].label, (unsigned long long)t->connections,
                (unsigned long long)t->full, (unsigned long long)t->resumed, (unsigned long long)t->offered, (unsigned long long)e);
    }

    fprintf(out, "\nerrors: %llu", (unsigned long long)nerr);
    for (int k = 0; k < TLSC_BENCH_ERR_KINDS; k++)
        fprintf(out, "%s%s %llu", k ? ", " : " (", tlsc_bench_err_name((tlsc_bench_err_t)k), (unsigned long long)r->errors[k]);
    fprintf(out, ")");
    if (r->errors_after_handshake)
        fprintf(out, ", %llu of them after the handshake", (unsigned long long)r->errors_after_handshake);
    fputc('\n', out);
    for (int k = 0; k < TLSC_BENCH_ERR_KINDS; k++)
        if (r->errors[k])
            fprintf(out, "  first %s error: %s\n", tlsc_bench_err_name((tlsc_bench_err_t)k), r->first_error[k]);

    fprintf(out, "\nnegotiated:\n");
    for (size_t i = 0; i < r->nnegotiated; i++)
        fprintf(out, "  %-8s %-32s %-12s %llu\n", r->negotiated[i].version, r->negotiated[i].cipher, r->negotiated[i].group,
                (unsigned long long)r->negotiated[i].count);
    if (r->negotiated_other)
        fprintf(out, "  (other combinations) %llu\n", (unsigned long long)r->negotiated_other);
    text_certificate(out, r);
    if (o->request)
        fprintf(out, "  HTTP replies read to the end: %llu\n", (unsigned long long)r->requests_ok);

    text_server_view(out, r, sv);
}

/* ------------------------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------------------------ */

static void json_latency(tlsc_json_t *j, const char *key, const tlsc_hist_t *h)
{
    tlsc_json_object_begin(j, key);
    tlsc_json_uint(j, "count", h->count);
    if (h->count) {
        tlsc_json_double(j, "min", ms(h->min), 3);
        tlsc_json_double(j, "mean", tlsc_hist_mean(h) / 1000.0, 3);
        for (size_t i = 0; i < sizeof(quantiles) / sizeof(quantiles[0]); i++)
            tlsc_json_double(j, quantile_keys[i], ms(tlsc_hist_percentile(h, quantiles[i])), 3);
        tlsc_json_double(j, "max", ms(h->max), 3);
    }
    tlsc_json_object_end(j);
}

static void json_errors(tlsc_json_t *j, const char *key, const uint64_t *errors)
{
    tlsc_json_object_begin(j, key);
    for (int k = 0; k < TLSC_BENCH_ERR_KINDS; k++)
        tlsc_json_uint(j, tlsc_bench_err_name((tlsc_bench_err_t)k), errors[k]);
    tlsc_json_object_end(j);
}

static void json_server(tlsc_json_t *j, const tlsc_bench_server_view_t *sv)
{
    int64_t tot[TLSC_BENCH_RS_FIELDS] = {0};

    if (sv == NULL || (sv->diff == NULL && sv->error == NULL))
        return;
    tlsc_json_object_begin(j, "server");
    if (sv->diff == NULL) {
        tlsc_json_string(j, "error", sv->error);
        tlsc_json_object_end(j);
        return;
    }
    tlsc_json_array_begin(j, "nodes");
    for (size_t i = 0; i < sv->diff->nnodes; i++) {
        const tlsc_bench_rs_node_t *n = &sv->diff->nodes[i];

        tlsc_json_object_begin(j, NULL);
        tlsc_json_string(j, "node", n->node);
        tlsc_json_uint(j, "workers", n->workers);
        for (int f = 0; f < TLSC_BENCH_RS_FIELDS; f++) {
            tlsc_json_int(j, tlsc_bench_rs_field(f), n->v[f]);
            tot[f] += n->v[f];
        }
        tlsc_json_object_end(j);
    }
    tlsc_json_array_end(j);
    tlsc_json_object_begin(j, "total");
    for (int f = 0; f < TLSC_BENCH_RS_FIELDS; f++)
        tlsc_json_int(j, tlsc_bench_rs_field(f), tot[f]);
    tlsc_json_object_end(j);
    tlsc_json_object_end(j);
}

void tlsc_bench_report_json(tlsc_json_t *j, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r,
                            const tlsc_bench_server_view_t *sv)
{
    size_t n = r->ntargets;
    double secs = r->elapsed_sec;

    tlsc_json_object_begin(j, NULL);
    tlsc_json_string(j, "tool", "tlscache-bench");
    tlsc_json_string(j, "version", TLSC_VERSION);
    tlsc_json_string(j, "label", o->label);
    tlsc_json_double(j, "start_time", r->start_wall, 3);

    tlsc_json_object_begin(j, "config");
    tlsc_json_array_begin(j, "targets");
    for (size_t i = 0; i < n; i++)
        tlsc_json_string(j, NULL, o->targets[i].label);
    tlsc_json_array_end(j);
    tlsc_json_string(j, "balance", balance_name(o->balance));
    tlsc_json_uint(j, "seed", r->seed);
    if (o->connections)
        tlsc_json_uint(j, "connections", o->connections);
    else
        tlsc_json_double(j, "duration_sec", o->duration_sec, 3);
    tlsc_json_uint(j, "concurrency", o->concurrency);
    tlsc_json_string(j, "tls", tls_name(o->tls_version));
    tlsc_json_string(j, "mode", tlsc_bench_mode_name(o->mode));
    tlsc_json_uint(j, "new_session_every", o->new_session_every);
    tlsc_json_string(j, "sni", o->no_sni ? NULL : o->sni);
    tlsc_json_string(j, "alpn", o->alpn);
    tlsc_json_bool(j, "request", o->request);
    tlsc_json_uint(j, "timeout_ms", o->timeout_ms);
    tlsc_json_bool(j, "verify", r->verified);
    tlsc_json_object_end(j);

    tlsc_json_double(j, "elapsed_sec", secs, 6);
    tlsc_json_uint(j, "connections", r->connections);
    tlsc_json_uint(j, "connections_succeeded", r->full + r->resumed);
    tlsc_json_uint(j, "connections_failed", tlsc_bench_result_failed(r));
    tlsc_json_bool(j, "interrupted", r->interrupted);
    tlsc_json_bool(j, "deadline_hit", r->deadline_hit);

    tlsc_json_object_begin(j, "handshakes");
    tlsc_json_uint(j, "full", r->full);
    tlsc_json_uint(j, "resumed", r->resumed);
    tlsc_json_uint(j, "total", r->full + r->resumed);
    tlsc_json_double(j, "full_per_sec", per_sec(r->full, secs), 1);
    tlsc_json_double(j, "resumed_per_sec", per_sec(r->resumed, secs), 1);
    tlsc_json_double(j, "total_per_sec", per_sec(r->full + r->resumed, secs), 1);
    tlsc_json_object_end(j);

    tlsc_json_object_begin(j, "resumption");
    tlsc_json_uint(j, "offered", r->offered);
    tlsc_json_uint(j, "resumed", r->resumed);
    tlsc_json_uint(j, "offered_but_full", r->offered_full);
    if (r->offered)
        tlsc_json_double(j, "rate", resumption_rate(r), 6);
    else
        tlsc_json_null(j, "rate");
    tlsc_json_uint(j, "sessions_received", r->sessions_received);
    tlsc_json_uint(j, "connections_without_session", r->no_session);
    tlsc_json_bool(j, "ticket_wait_skipped", r->ticket_wait_skipped);
    tlsc_json_uint(j, "unshared_pairs", unshared_pairs(r));
    tlsc_json_object_end(j);

    tlsc_json_object_begin(j, "latency_ms");
    json_latency(j, "full", r->lat_full);
    json_latency(j, "resumed", r->lat_resumed);
    json_latency(j, "connect", r->lat_connect);
    tlsc_json_object_end(j);

    tlsc_json_array_begin(j, "matrix");
    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++) {
            tlsc_json_object_begin(j, NULL);
            tlsc_json_string(j, "issuer", o->targets[a].label);
            tlsc_json_string(j, "target", o->targets[b].label);
            tlsc_json_uint(j, "offered", r->matrix_offered[a * n + b]);
            tlsc_json_uint(j, "resumed", r->matrix_resumed[a * n + b]);
            tlsc_json_object_end(j);
        }
    tlsc_json_array_end(j);

    tlsc_json_array_begin(j, "targets");
    for (size_t i = 0; i < n; i++) {
        const tlsc_bench_target_stats_t *t = &r->per_target[i];

        tlsc_json_object_begin(j, NULL);
        tlsc_json_string(j, "target", o->targets[i].label);
        tlsc_json_uint(j, "connections", t->connections);
        tlsc_json_uint(j, "full", t->full);
        tlsc_json_uint(j, "resumed", t->resumed);
        tlsc_json_uint(j, "offered", t->offered);
        json_errors(j, "errors", t->errors);
        tlsc_json_object_end(j);
    }
    tlsc_json_array_end(j);

    tlsc_json_object_begin(j, "errors");
    for (int k = 0; k < TLSC_BENCH_ERR_KINDS; k++)
        tlsc_json_uint(j, tlsc_bench_err_name((tlsc_bench_err_t)k), r->errors[k]);
    tlsc_json_uint(j, "total", tlsc_bench_result_errors(r));
    tlsc_json_uint(j, "after_handshake", r->errors_after_handshake);
    tlsc_json_object_begin(j, "first");
    for (int k = 0; k < TLSC_BENCH_ERR_KINDS; k++)
        if (r->errors[k])
            tlsc_json_string(j, tlsc_bench_err_name((tlsc_bench_err_t)k), r->first_error[k]);
    tlsc_json_object_end(j);
    tlsc_json_object_end(j);

    tlsc_json_array_begin(j, "negotiated");
    for (size_t i = 0; i < r->nnegotiated; i++) {
        tlsc_json_object_begin(j, NULL);
        tlsc_json_string(j, "version", r->negotiated[i].version);
        tlsc_json_string(j, "cipher", r->negotiated[i].cipher);
        tlsc_json_string(j, "group", r->negotiated[i].group);
        tlsc_json_uint(j, "count", r->negotiated[i].count);
        tlsc_json_object_end(j);
    }
    tlsc_json_array_end(j);
    if (o->request)
        tlsc_json_uint(j, "http_replies", r->requests_ok);

    tlsc_json_object_begin(j, "certificate");
    tlsc_json_bool(j, "checked", r->verified);
    tlsc_json_uint(j, "verified", r->verified ? r->full + r->resumed : 0);
    tlsc_json_uint(j, "rejected", r->errors[TLSC_BENCH_ERR_VERIFY]);
    tlsc_json_object_end(j);

    tlsc_json_object_begin(j, "client_cpu");
    tlsc_json_double(j, "user_sec", r->cpu_user_sec, 3);
    tlsc_json_double(j, "sys_sec", r->cpu_sys_sec, 3);
    tlsc_json_double(j, "percent_of_one_core", cpu_percent(r), 1);
    tlsc_json_object_end(j);

    tlsc_json_array_begin(j, "timeline");
    for (size_t s = 0; s < r->nseconds; s++) {
        tlsc_json_object_begin(j, NULL);
        tlsc_json_uint(j, "second", s);
        tlsc_json_uint(j, "full", r->timeline[s].full);
        tlsc_json_uint(j, "resumed", r->timeline[s].resumed);
        tlsc_json_uint(j, "errors", r->timeline[s].errors);
        tlsc_json_object_end(j);
    }
    tlsc_json_array_end(j);

    json_server(j, sv);
    tlsc_json_object_end(j);
}

/* ------------------------------------------------------------------------------------------
 * CSV: one summary row per run, so several runs (compare.sh) append to one file
 * ------------------------------------------------------------------------------------------ */

const char *tlsc_bench_csv_header(void)
{
    return "label,start_time,targets,tls,mode,concurrency,connections,elapsed_sec,full,resumed,offered,resumption_rate,"
           "handshakes_per_sec,full_per_sec,resumed_per_sec,full_p50_ms,full_p90_ms,full_p99_ms,full_p999_ms,full_max_ms,"
           "resumed_p50_ms,resumed_p90_ms,resumed_p99_ms,resumed_p999_ms,resumed_max_ms,errors_connect,errors_timeout,"
           "errors_handshake,errors_verify,errors_read,client_cpu_sec\n";
}

/* A CSV field: quoted, with quotes doubled, when it holds a comma, a quote or a line break. */
static void csv_field(FILE *out, const char *s)
{
    if (s == NULL)
        return;
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

static void csv_latency(FILE *out, const tlsc_hist_t *h)
{
    for (size_t i = 0; i < sizeof(quantiles) / sizeof(quantiles[0]); i++)
        if (h->count)
            fprintf(out, ",%.3f", ms(tlsc_hist_percentile(h, quantiles[i])));
        else
            fputs(",", out);
    if (h->count)
        fprintf(out, ",%.3f", ms(h->max));
    else
        fputs(",", out);
}

void tlsc_bench_report_csv(FILE *out, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r)
{
    char targets[1024] = "";
    size_t len = 0;
    double secs = r->elapsed_sec;

    for (size_t i = 0; i < o->ntargets && len < sizeof(targets); i++)
        len += (size_t)snprintf(targets + len, sizeof(targets) - len, "%s%s", i ? " " : "", o->targets[i].label);
    csv_field(out, o->label);
    fprintf(out, ",%.3f,", r->start_wall);
    csv_field(out, targets);
    fprintf(out, ",%s,%s,%u,%llu,%.6f,%llu,%llu,%llu,", tls_name(o->tls_version), tlsc_bench_mode_name(o->mode), o->concurrency,
            (unsigned long long)r->connections, secs, (unsigned long long)r->full, (unsigned long long)r->resumed,
            (unsigned long long)r->offered);
    if (r->offered)
        fprintf(out, "%.6f", resumption_rate(r));
    fprintf(out, ",%.1f,%.1f,%.1f", per_sec(r->full + r->resumed, secs), per_sec(r->full, secs), per_sec(r->resumed, secs));
    csv_latency(out, r->lat_full);
    csv_latency(out, r->lat_resumed);
    for (int k = 0; k < TLSC_BENCH_ERR_KINDS; k++)
        fprintf(out, ",%llu", (unsigned long long)r->errors[k]);
    fprintf(out, ",%.3f\n", r->cpu_user_sec + r->cpu_sys_sec);
}

/* ------------------------------------------------------------------------------------------
 * Plot: latency CDFs of full and resumed handshakes above, throughput per second below
 * ------------------------------------------------------------------------------------------ */

static void plot_cdf_block(FILE *out, const char *name, const tlsc_hist_t *h)
{
    uint64_t seen = 0, lo, hi;

    fprintf(out, "$%s << EOD\n", name);
    if (h->count == 0)
        fprintf(out, "NaN NaN\n");
    for (size_t i = 0; i < TLSC_HIST_BUCKETS && h->count; i++) {
        if (h->counts[i] == 0)
            continue;
        seen += h->counts[i];
        tlsc_hist_bounds(i, &lo, &hi);
        if (hi > h->max)
            hi = h->max;
        fprintf(out, "%.4f %.6f\n", ms(hi > 0 ? hi : 1), 100.0 * (double)seen / (double)h->count);
    }
    fprintf(out, "EOD\n");
}

/* What the throughput plot did with the partial last second, for its title. */
static const char *partial_note(const tlsc_bench_result_t *r, char *buf, size_t len)
{
    double frac;

    buf[0] = '\0';
    if (r->nseconds == 0)
        return buf;
    frac = r->elapsed_sec - (double)(r->nseconds - 1);
    if (frac <= 0.0 || frac >= 1.0)
        return buf;
    if (frac < 0.5 && r->nseconds > 1)
        snprintf(buf, len, "; the last %.3g s not drawn", frac);
    else
        snprintf(buf, len, "; the last point scaled from %.3g s", frac);
    return buf;
}

void tlsc_bench_plot_script(FILE *out, const char *png, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r)
{
    char title[512], note[64];
    size_t len;

    len = (size_t)snprintf(title, sizeof(title), "tlscache-bench%s%s: TLS %s, mode %s, concurrency %u, %zu target%s",
                           o->label ? " " : "", o->label ? o->label : "", tls_name(o->tls_version), tlsc_bench_mode_name(o->mode),
                           o->concurrency, o->ntargets, o->ntargets == 1 ? "" : "s");
    /* gnuplot strings are single-quoted below; a quote in a label would end them. */
    for (size_t i = 0; i < len && i < sizeof(title); i++)
        if (title[i] == '\'' || title[i] == '\\')
            title[i] = ' ';

    plot_cdf_block(out, "full", r->lat_full);
    plot_cdf_block(out, "resumed", r->lat_resumed);
    /*
     * The last bucket covers only the end of the run (elapsed - its start): drawn as a count it
     * would look like a collapse of the server. Scale it to a rate when it covers at least half
     * a second; shorter, its rate means little, so leave it out (unless it is the only point).
     */
    fprintf(out, "$tl << EOD\n");
    for (size_t s = 0; s < r->nseconds; s++) {
        const tlsc_bench_second_t *t = &r->timeline[s];
        double scale = 1.0;

        if (s + 1 == r->nseconds) {
            double frac = r->elapsed_sec - (double)s;

            if (frac > 0.0 && frac < 1.0) {
                if (frac < 0.5 && s > 0)
                    break;
                scale = 1.0 / frac;
            }
        }
        fprintf(out, "%zu %.0f %.0f %.0f\n", s, (double)t->full * scale, (double)t->resumed * scale, (double)t->errors * scale);
    }
    if (r->nseconds == 0)
        fprintf(out, "0 0 0 0\n");
    fprintf(out, "EOD\n");

    fprintf(out, "set terminal pngcairo size 1000,900 noenhanced font 'sans,10'\n");
    fprintf(out, "set output '");
    for (const char *p = png; *p; p++) {
        if (*p == '\'')
            fputc('\'', out); /* doubled quote inside a single-quoted gnuplot string */
        fputc(*p, out);
    }
    fprintf(out, "'\n");
    fprintf(out, "set multiplot layout 2,1 title '%s'\n", title);
    fprintf(out, "set title 'handshake latency: full %llu, resumed %llu (resumption %.1f %% of %llu offered)'\n",
            (unsigned long long)r->full, (unsigned long long)r->resumed, 100.0 * resumption_rate(r),
            (unsigned long long)r->offered);
    fprintf(out, "set logscale x\nset xlabel 'latency (ms, log scale)'\nset ylabel 'share of handshakes at or below (%%)'\n"
                 "set yrange [0:100]\nset grid\nset key bottom right\n");
    if (r->lat_full->count + r->lat_resumed->count == 0) {
        /* No point to draw: gnuplot cannot derive a log axis from nothing and would fail the run. */
        fprintf(out, "set xrange [0.1:100]\nset label 1 'no handshake completed' at graph 0.5,0.5 center\n");
    }
    fprintf(out, "plot $full using 1:2 with steps lw 2 title 'full', $resumed using 1:2 with steps lw 2 title 'resumed'\n");
    fprintf(out, "unset label 1\nset xrange [*:*]\n");
    fprintf(out, "unset logscale x\nset autoscale y\nset yrange [0:*]\n");
    fprintf(out,
            "set title 'throughput (%.0f handshakes/s over %.1f s%s)'\nset xlabel 'second of the run'\n"
            "set ylabel 'handshakes per second'\nset key top right\n",
            per_sec(r->full + r->resumed, r->elapsed_sec), r->elapsed_sec, partial_note(r, note, sizeof(note)));
    fprintf(out, "plot $tl using 1:2 with linespoints lw 2 title 'full', $tl using 1:3 with linespoints lw 2 title 'resumed', "
                 "$tl using 1:4 with linespoints title 'errors'\n");
    fprintf(out, "unset multiplot\n");
}

int tlsc_bench_plot(const char *png, const tlsc_bench_options_t *o, const tlsc_bench_result_t *r, char *err, size_t errlen)
{
    FILE *gp;
    int status;

    /* The command is a constant: nothing from the user reaches the shell. */
    if ((gp = popen("gnuplot", "w")) == NULL) {
        snprintf(err, errlen, "--plot %s: cannot run gnuplot: %s", png, strerror(errno));
        return -1;
    }
    tlsc_bench_plot_script(gp, png, o, r);
    status = pclose(gp);
    if (status == -1 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        snprintf(err, errlen, "--plot %s: gnuplot failed (status %d; is gnuplot installed?)", png, status);
        return -1;
    }
    return 0;
}
