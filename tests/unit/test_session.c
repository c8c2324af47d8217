/*
 * The resumption hooks (server/session.c) on a fake store, with real OpenSSL handshakes over
 * memory BIOs: two "workers" (two context sets, two session objects) share one store. The
 * fake store answers only when the test says so, which lets each test look at the handshake
 * while a lookup or a store is in flight: parked, held back, released.
 */
#include <stdarg.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config.h"
#include "records.h"
#include "session.h"
#include "store.h"
#include "test.h"
#include "tls.h"
#include <uv.h>

/* ================================ the fake store ================================ */

#define FAKE_KEYS 64
#define FAKE_REQS 64

typedef struct {
    char key[160];
    unsigned char der[8192];
    size_t der_len;
    unsigned ttl;
    char proto[16];
    int used;
} entry_t;

struct tlsc_store_req_s {
    int live, is_get, take; /* take: 1 = only a TLS 1.3 record (take_if), 2 = unconditional */
    char key[160];
    tlsc_store_get_cb get_cb;
    tlsc_store_done_cb done_cb;
    void *data;
};

typedef struct {
    tlsc_store_t base;
    int ready;
    int fail_status; /* non-zero: every completion fails with it */
    entry_t entries[FAKE_KEYS];
    struct tlsc_store_req_s reqs[FAKE_REQS];
    unsigned gets, takes, plain_takes, puts, cancels; /* gets counts every read, takes both kinds */
    char last_put_key[160];
    size_t last_put_key_len;
} fake_t;

static entry_t *find(fake_t *f, const char *key)
{
    for (size_t i = 0; i < FAKE_KEYS; i++)
        if (f->entries[i].used && strcmp(f->entries[i].key, key) == 0)
            return &f->entries[i];
    return NULL;
}

static tlsc_store_req_t *new_req(fake_t *f, const char *key, size_t key_len)
{
    for (size_t i = 0; i < FAKE_REQS; i++) {
        if (!f->reqs[i].live) {
            memset(&f->reqs[i], 0, sizeof(f->reqs[i]));
            f->reqs[i].live = 1;
            ASSERT(key_len < sizeof(f->reqs[i].key));
            memcpy(f->reqs[i].key, key, key_len);
            return &f->reqs[i];
        }
    }
    ASSERT(!"too many requests");
    return NULL;
}

static int fake_ready(const tlsc_store_t *st)
{
    return ((const fake_t *)st)->ready;
}

static tlsc_store_req_t *fake_get(tlsc_store_t *st, const char *key, size_t key_len, const char *field,
                                  const tlsc_store_match_t *take_if, unsigned timeout_ms, tlsc_store_get_cb cb, void *data,
                                  int *status)
{
    fake_t *f = (fake_t *)st;
    tlsc_store_req_t *r = new_req(f, key, key_len);
    int take = take_if != NULL;

    ASSERT_STREQ(field, "der");
    if (take) { /* the only condition the hooks use: a TLS 1.3 record */
        ASSERT_STREQ(take_if->field, "proto");
        ASSERT_STREQ(take_if->value, "TLSv1.3");
    }
    r->is_get = 1;
    r->take = take;
    r->get_cb = cb;
    r->data = data;
    f->gets++;
    f->takes += take != 0;
    return r;
}

static tlsc_store_req_t *fake_take(tlsc_store_t *st, const char *key, size_t key_len, const char *field, unsigned timeout_ms,
                                   tlsc_store_get_cb cb, void *data, int *status)
{
    fake_t *f = (fake_t *)st;
    tlsc_store_req_t *r = new_req(f, key, key_len);

    ASSERT_STREQ(field, "der");
    r->is_get = 1;
    r->take = 2;
    r->get_cb = cb;
    r->data = data;
    f->gets++;
    f->takes++;
    f->plain_takes++;
    return r;
}

static tlsc_store_req_t *fake_put(tlsc_store_t *st, const char *key, size_t key_len, const tlsc_store_field_t *fields, size_t n,
                                  unsigned ttl, unsigned timeout_ms, tlsc_store_done_cb cb, void *data, int *status)
{
    fake_t *f = (fake_t *)st;
    tlsc_store_req_t *r = new_req(f, key, key_len);
    entry_t *e = find(f, r->key);

    for (size_t i = 0; e == NULL && i < FAKE_KEYS; i++)
        if (!f->entries[i].used)
            e = &f->entries[i];
    ASSERT(e != NULL);
    /* The write lands at once; only its acknowledgement waits for fake_answer(). */
    memset(e, 0, sizeof(*e));
    e->used = 1;
    memcpy(e->key, r->key, sizeof(e->key));
    e->ttl = ttl;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(fields[i].name, "proto") == 0 && fields[i].len < sizeof(e->proto))
            memcpy(e->proto, fields[i].value, fields[i].len);
        if (strcmp(fields[i].name, "der") == 0) {
            ASSERT(fields[i].len <= sizeof(e->der));
            memcpy(e->der, fields[i].value, fields[i].len);
            e->der_len = fields[i].len;
        }
    }
    r->done_cb = cb;
    r->data = data;
    f->puts++;
    f->last_put_key_len = key_len;
    memcpy(f->last_put_key, r->key, sizeof(f->last_put_key));
    return r;
}

static tlsc_store_req_t *fake_del(tlsc_store_t *st, const char *key, size_t key_len, unsigned timeout_ms, tlsc_store_del_cb cb,
                                  void *data, int *status)
{
    *status = UV_EINVAL; /* only an L1 hit deletes, and these tests run without an L1 */
    return NULL;
}

static void fake_cancel(tlsc_store_t *st, tlsc_store_req_t *req)
{
    ASSERT(req->live);
    req->live = 0;
    ((fake_t *)st)->cancels++;
}

static void fake_close(tlsc_store_t *st)
{
}

static const tlsc_store_ops_t fake_ops = {fake_ready, fake_get, fake_take, fake_put, fake_del, fake_cancel, fake_close};

/* Answers every request in flight (in order); returns how many. */
static unsigned fake_answer(fake_t *f)
{
    unsigned n = 0;

    for (size_t i = 0; i < FAKE_REQS; i++) {
        tlsc_store_req_t *r = &f->reqs[i];
        if (!r->live)
            continue;
        r->live = 0;
        n++;
        if (!r->is_get) {
            r->done_cb(f->fail_status, r->data);
            continue;
        }
        entry_t *e = find(f, r->key);
        if (f->fail_status != 0) {
            r->get_cb(f->fail_status, NULL, 0, r->data);
        } else if (e == NULL || (r->take == 1 && strcmp(e->proto, "TLSv1.3") != 0)) {
            r->get_cb(0, NULL, 0, r->data); /* a take of another version's record: a miss, nothing deleted */
        } else {
            unsigned char copy[8192];
            size_t len = e->der_len;
            memcpy(copy, e->der, len);
            if (r->take)
                e->used = 0;
            r->get_cb(0, copy, len, r->data);
        }
    }
    return n;
}

static unsigned fake_inflight(const fake_t *f)
{
    unsigned n = 0;

    for (size_t i = 0; i < FAKE_REQS; i++)
        n += f->reqs[i].live != 0;
    return n;
}

/* ================================ workers and handshakes ================================ */

static char pki[256];
static fake_t store;

typedef struct {
    tlsc_config_t cfg;
    tlsc_tls_t *tls;
    tlsc_records_t *records;
    tlsc_session_t *session;
    tlsc_stats_t stats;
} worker_t;

/* One server-side handshake as conn.c would run it, with what the hooks asked of it. */
typedef struct {
    SSL *ssl;
    tlsc_session_hs_t hs;
    int parked, hello, resumes, held, holds, releases;
} server_t;

static void io_hello(void *conn, int parked)
{
    server_t *s = conn;
    s->hello++;
    s->parked = parked;
}
static void io_resume(void *conn)
{
    server_t *s = conn;
    s->parked = 0;
    s->resumes++;
}
static void io_hold(void *conn)
{
    server_t *s = conn;
    s->held = 1;
    s->holds++;
}
static void io_release(void *conn)
{
    server_t *s = conn;
    s->held = 0;
    s->releases++;
}
static const tlsc_session_io_t io = {io_hello, io_resume, io_hold, io_release};

static const char *f(const char *name)
{
    static char paths[16][512];
    static int next;
    char *p = paths[next++ % 16];
    snprintf(p, 512, "%s/%s", pki, name);
    return p;
}

static void worker_start(worker_t *w, const char *node, const char *const *extra, const char *secret)
{
    char err[512];
    const char *argv[32];
    int argc = 0;
    char *env[] = {NULL};

    memset(w, 0, sizeof(*w));
    argv[argc++] = "tlscache-server";
    argv[argc++] = "--node";
    argv[argc++] = node;
    argv[argc++] = "--cert";
    argv[argc++] = f("default.pem");
    argv[argc++] = "--key";
    argv[argc++] = f("default.key");
    argv[argc++] = "--cert";
    argv[argc++] = f("a.pem");
    argv[argc++] = "--key";
    argv[argc++] = f("a.key");
    argv[argc++] = "--cert";
    argv[argc++] = f("b.pem");
    argv[argc++] = "--key";
    argv[argc++] = f("b.key");
    for (size_t i = 0; extra != NULL && extra[i] != NULL; i++)
        argv[argc++] = extra[i];
    if (secret != NULL) {
        argv[argc++] = "--seal-secret-file";
        argv[argc++] = secret;
    } else {
        argv[argc++] = "--insecure-plain-records";
    }
    argv[argc] = NULL;
    if (tlsc_config_parse(&w->cfg, argc, (char **)argv, env, err, sizeof(err)) != 0) {
        fprintf(stderr, "config: %s\n", err);
        ASSERT(0);
    }
    ASSERT_EQ(tlsc_tls_new(&w->cfg, &w->tls, err, sizeof(err)), 0);
    ASSERT_EQ(tlsc_records_new(NULL, secret, &w->records, err, sizeof(err)), 0);
    tlsc_session_options_t o = {
        .cfg = &w->cfg, .worker_id = 1, .store = &store.base, .records = w->records, .tickets = NULL, .stats = &w->stats};
    ASSERT((w->session = tlsc_session_new(&o)) != NULL);
    tlsc_session_install(w->session, w->tls);
}

static void worker_stop(worker_t *w)
{
    tlsc_session_free(w->session);
    tlsc_records_free(w->records);
    tlsc_tls_free(w->tls);
    tlsc_config_free(&w->cfg);
}

static void xfer(SSL *from, SSL *to)
{
    char buf[16384];
    int n;

    while ((n = BIO_read(SSL_get_wbio(from), buf, sizeof(buf))) > 0)
        ASSERT_EQ(BIO_write(SSL_get_rbio(to), buf, n), n);
}

typedef struct {
    int answer_store; /* answer the store as soon as something waits on it */
    int done;         /* both sides finished */
    int reused;
    SSL_SESSION *session; /* what the client keeps */
} run_t;

/*
 * One handshake from a fresh client offering `offer` (may be NULL) to worker `w`, for `sni`
 * (NULL: none) and `version`. Stops when both sides finished, or when nothing moves (a lookup
 * or store the test left unanswered). `s` is left attached: call server_end().
 */
static const char *client_groups; /* NULL: OpenSSL's default key shares */

static void handshake(worker_t *w, server_t *s, SSL_SESSION *offer, const char *sni, int version, run_t *run)
{
    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    SSL *c = SSL_new(cctx);
    char buf[64];

    SSL_set_min_proto_version(c, version);
    SSL_set_max_proto_version(c, version);
    SSL_set_bio(c, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_connect_state(c);
    if (sni != NULL)
        SSL_set_tlsext_host_name(c, sni);
    if (client_groups != NULL)
        ASSERT_EQ(SSL_set1_groups_list(c, client_groups), 1);
    if (offer != NULL)
        ASSERT_EQ(SSL_set_session(c, offer), 1);
    memset(s, 0, sizeof(*s));
    s->ssl = SSL_new(tlsc_tls_default_ctx(w->tls));
    SSL_set_bio(s->ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    SSL_set_accept_state(s->ssl);
    ASSERT_EQ(tlsc_session_attach(w->session, &s->hs, s->ssl, &io, s), 0);

    run->done = 0;
    for (int round = 0; round < 50 && !run->done; round++) {
        SSL_do_handshake(c);
        SSL_read(c, buf, sizeof(buf)); /* takes a TLS 1.3 NewSessionTicket */
        xfer(c, s->ssl);
        SSL_do_handshake(s->ssl);
        if (run->answer_store && (s->parked || s->held))
            fake_answer(&store);
        if (!s->held)
            xfer(s->ssl, c);
        run->done = SSL_is_init_finished(c) && SSL_is_init_finished(s->ssl) && !s->held;
    }
    ERR_clear_error();
    if (run->done) {
        SSL_read(c, buf, sizeof(buf));
        ERR_clear_error();
    }
    run->reused = SSL_session_reused(c);
    run->session = SSL_get1_session(c);
    SSL_set_shutdown(c, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN); /* else SSL_free marks the session not resumable */
    SSL_free(c);
    SSL_CTX_free(cctx);
}

static void server_end(server_t *s)
{
    tlsc_session_detach(&s->hs);
    SSL_free(s->ssl);
}

static void reset_store(void)
{
    memset(&store, 0, sizeof(store));
    store.base.ops = &fake_ops;
    store.ready = 1;
}

static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};

/* ================================ tests ================================ */

TEST(session_from_worker_a_resumes_on_worker_b_through_the_store)
{
    for (size_t v = 0; v < 2; v++) {
        worker_t a, b;
        server_t s;
        run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 1};

        reset_store();
        worker_start(&a, "A", NULL, NULL);
        worker_start(&b, "B", NULL, NULL);
        handshake(&a, &s, NULL, "a.example", versions[v], &r1);
        server_end(&s);
        ASSERT(r1.done && !r1.reused);
        ASSERT_EQ(store.puts, 1);
        ASSERT_EQ(a.stats.stores_ok, 1);
        handshake(&b, &s, r1.session, "a.example", versions[v], &r2);
        ASSERT_EQ(s.hello, 1);
        ASSERT_EQ(s.resumes, 1); /* it parked for the lookup, and was resumed */
        server_end(&s);
        ASSERT(r2.done && r2.reused);
        ASSERT_EQ(b.stats.lookups_hit, 1);
        ASSERT_EQ(store.takes, versions[v] == TLS1_3_VERSION ? 1 : 0); /* TLS 1.3 tickets are taken */
        SSL_SESSION_free(r1.session);
        SSL_SESSION_free(r2.session);
        worker_stop(&a);
        worker_stop(&b);
    }
}

TEST(new_session_last_flight_is_held_until_the_store_answers)
{
    for (size_t v = 0; v < 2; v++) {
        worker_t a;
        server_t s;
        run_t r = {.answer_store = 0};

        reset_store();
        worker_start(&a, "A", NULL, NULL);
        handshake(&a, &s, NULL, "a.example", versions[v], &r);
        ASSERT(!r.done); /* the server's last flight waits ... */
        ASSERT_EQ(s.held, 1);
        ASSERT_EQ(s.holds, 1);
        ASSERT_EQ(s.releases, 0);
        ASSERT_EQ(fake_inflight(&store), 1);
        ASSERT_EQ(fake_answer(&store), 1); /* ... until the store acknowledges */
        ASSERT_EQ(s.held, 0);
        ASSERT_EQ(s.releases, 1);
        server_end(&s);
        SSL_SESSION_free(r.session);
        worker_stop(&a);
    }
}

TEST(tls13_stateful_ticket_resumes_once_across_the_cluster)
{
    worker_t a, b;
    server_t s;
    run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 1}, r3 = {.answer_store = 1};

    reset_store();
    worker_start(&a, "A", NULL, NULL);
    worker_start(&b, "B", NULL, NULL);
    handshake(&a, &s, NULL, "a.example", TLS1_3_VERSION, &r1);
    server_end(&s);
    handshake(&b, &s, r1.session, "a.example", TLS1_3_VERSION, &r2);
    server_end(&s);
    ASSERT(r2.reused);
    handshake(&a, &s, r1.session, "a.example", TLS1_3_VERSION, &r3); /* the same ticket again */
    server_end(&s);
    ASSERT(r3.done && !r3.reused);
    ASSERT_EQ(a.stats.lookups_miss, 1);
    SSL_SESSION_free(r1.session);
    SSL_SESSION_free(r2.session);
    SSL_SESSION_free(r3.session);
    worker_stop(&a);
    worker_stop(&b);
}

TEST(tls13_ticket_survives_a_hello_retry_request)
{
    static const char *const p256[] = {"--groups", "P-256", NULL};
    worker_t a, b;
    server_t s;
    run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 1};

    reset_store();
    worker_start(&a, "A", p256, NULL);
    worker_start(&b, "B", p256, NULL);
    client_groups = "X25519:P-256"; /* the first key share is one the server does not take: HRR */
    handshake(&a, &s, NULL, "a.example", TLS1_3_VERSION, &r1);
    server_end(&s);
    handshake(&b, &s, r1.session, "a.example", TLS1_3_VERSION, &r2);
    server_end(&s);
    client_groups = NULL;
    ASSERT(r2.done && r2.reused);
    ASSERT_EQ(b.stats.lookups_hit, 1);
    ASSERT_EQ(store.gets, 1); /* one lookup for both ClientHellos */
    SSL_SESSION_free(r1.session);
    SSL_SESSION_free(r2.session);
    worker_stop(&a);
    worker_stop(&b);
}

#define TLS13_KEY_PREFIX "tlscache:sess:13131313" /* a TLS 1.3 identity starts with the tag 13 13 13 13 */

static int tagged(const char *key)
{
    return strncmp(key, TLS13_KEY_PREFIX, strlen(TLS13_KEY_PREFIX)) == 0;
}

/*
 * A TLS 1.3 stateful ticket identity starts with a tag no TLS 1.2 session ID has, so a TLS 1.2
 * session can never be named by one: the take of a tagged identity is the unconditional one.
 * Both stay 32 bytes (OpenSSL resumes no other length of TLS 1.3 identity).
 */
TEST(tls13_identities_are_tagged_and_taken_unconditionally)
{
    worker_t a, b;
    server_t s;
    run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 1}, r3 = {.answer_store = 1}, r4 = {.answer_store = 1};
    run_t r5 = {.answer_store = 1};

    reset_store();
    worker_start(&a, "A", NULL, NULL);
    worker_start(&b, "B", NULL, NULL);
    handshake(&a, &s, NULL, "a.example", TLS1_2_VERSION, &r1);
    server_end(&s);
    ASSERT_EQ(store.last_put_key_len, strlen("tlscache:sess:") + 64);
    ASSERT(!tagged(store.last_put_key));
    handshake(&b, &s, r1.session, "a.example", TLS1_2_VERSION, &r5); /* a TLS 1.2 lookup is a plain read */
    server_end(&s);
    ASSERT(r5.reused);
    ASSERT_EQ(store.gets, 1);
    ASSERT_EQ(store.takes, 0);
    handshake(&a, &s, NULL, "a.example", TLS1_3_VERSION, &r2);
    server_end(&s);
    ASSERT_EQ(store.last_put_key_len, strlen("tlscache:sess:") + 64);
    ASSERT(tagged(store.last_put_key));
    handshake(&b, &s, r2.session, "a.example", TLS1_3_VERSION, &r3);
    server_end(&s);
    ASSERT(r3.done && r3.reused);
    ASSERT_EQ(store.plain_takes, 1);
    ASSERT_EQ(store.takes, 1);                                       /* and no conditional take */
    handshake(&a, &s, r2.session, "a.example", TLS1_3_VERSION, &r4); /* the same ticket again: gone */
    server_end(&s);
    ASSERT(r4.done && !r4.reused);
    ASSERT_EQ(a.stats.lookups_miss, 1);
    SSL_SESSION_free(r1.session);
    SSL_SESSION_free(r2.session);
    SSL_SESSION_free(r3.session);
    SSL_SESSION_free(r4.session);
    SSL_SESSION_free(r5.session);
    worker_stop(&a);
    worker_stop(&b);
}

/* A rolling upgrade: an untagged TLS 1.3 identity from an older version keeps the conditional take. */
TEST(tls13_identity_without_the_tag_keeps_the_conditional_take)
{
    worker_t old, b;
    server_t s;
    run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 1};

    reset_store();
    worker_start(&old, "A", NULL, NULL);
    worker_start(&b, "B", NULL, NULL);
    for (size_t i = 0; i < tlsc_tls_count(old.tls); i++) /* OpenSSL's own IDs, as before the tag */
        SSL_CTX_set_generate_session_id(tlsc_tls_ctx_at(old.tls, i), NULL);
    handshake(&old, &s, NULL, "a.example", TLS1_3_VERSION, &r1);
    server_end(&s);
    ASSERT(!tagged(store.last_put_key)); /* 2^-32: OpenSSL's random ID starting with the tag */
    handshake(&b, &s, r1.session, "a.example", TLS1_3_VERSION, &r2);
    server_end(&s);
    ASSERT(r2.done && r2.reused);
    ASSERT_EQ(store.takes, 1);
    ASSERT_EQ(store.plain_takes, 0); /* the take checked the record's proto */
    SSL_SESSION_free(r1.session);
    SSL_SESSION_free(r2.session);
    worker_stop(&old);
    worker_stop(&b);
}

TEST(session_made_for_one_name_never_resumes_for_another)
{
    worker_t a;
    server_t s;
    run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 1};

    reset_store();
    worker_start(&a, "A", NULL, NULL);
    handshake(&a, &s, NULL, "a.example", TLS1_2_VERSION, &r1);
    server_end(&s);
    handshake(&a, &s, r1.session, "b.example", TLS1_2_VERSION, &r2);
    server_end(&s);
    ASSERT(r2.done && !r2.reused);
    SSL_SESSION_free(r1.session);
    SSL_SESSION_free(r2.session);
    worker_stop(&a);
}

TEST(store_down_or_failing_means_full_handshakes_counted_by_cause)
{
    worker_t a;
    server_t s;
    run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 1}, r3 = {.answer_store = 1}, r4 = {.answer_store = 1};

    reset_store();
    worker_start(&a, "A", NULL, NULL);
    handshake(&a, &s, NULL, "a.example", TLS1_2_VERSION, &r1);
    server_end(&s);

    store.ready = 0; /* down: nothing is asked, nothing is parked */
    handshake(&a, &s, r1.session, "a.example", TLS1_2_VERSION, &r2);
    ASSERT_EQ(s.parked, 0);
    server_end(&s);
    ASSERT(r2.done && !r2.reused);
    ASSERT_EQ(a.stats.lookups_skipped, 1);
    ASSERT_EQ(a.stats.stores_skipped, 1);

    store.ready = 1;
    store.fail_status = UV_ETIMEDOUT; /* up but slow */
    handshake(&a, &s, r1.session, "a.example", TLS1_2_VERSION, &r3);
    server_end(&s);
    ASSERT(r3.done && !r3.reused);
    ASSERT_EQ(a.stats.lookups_timeout, 1);
    ASSERT_EQ(a.stats.stores_timeout, 1); /* a slow store is a timeout, not an error */

    store.fail_status = UV_EPROTO; /* answers garbage */
    handshake(&a, &s, r1.session, "a.example", TLS1_2_VERSION, &r4);
    server_end(&s);
    ASSERT(r4.done && !r4.reused);
    ASSERT_EQ(a.stats.lookups_error, 1);
    SSL_SESSION_free(r1.session);
    SSL_SESSION_free(r2.session);
    SSL_SESSION_free(r3.session);
    SSL_SESSION_free(r4.session);
    worker_stop(&a);
}

/* A TLS 1.3 ticket whose store is skipped would resume nowhere: none is sent. */
TEST(tls13_no_stateful_ticket_while_the_store_is_not_ready)
{
    worker_t a;
    server_t s;
    run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 1};

    reset_store();
    worker_start(&a, "A", NULL, NULL);
    store.ready = 0;
    handshake(&a, &s, NULL, "a.example", TLS1_3_VERSION, &r1);
    server_end(&s);
    ASSERT(r1.done);
    ASSERT_EQ(SSL_SESSION_is_resumable(r1.session), 0);
    ASSERT_EQ(a.stats.stores_skipped, 1);
    ASSERT_EQ(fake_inflight(&store), 0);

    store.ready = 1; /* back: the next handshake gets a ticket, stored */
    handshake(&a, &s, NULL, "a.example", TLS1_3_VERSION, &r2);
    server_end(&s);
    ASSERT(r2.done);
    ASSERT_EQ(SSL_SESSION_is_resumable(r2.session), 1);
    ASSERT_EQ(a.stats.stores_ok, 1);
    SSL_SESSION_free(r1.session);
    SSL_SESSION_free(r2.session);
    worker_stop(&a);
}

TEST(tampered_or_foreign_records_are_refused_counted_and_a_full_handshake)
{
    char secret[600];
    worker_t sealed, plain;
    server_t s;
    run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 1}, r3 = {.answer_store = 1};

    snprintf(secret, sizeof(secret), "%s/cluster.secret", pki);
    reset_store();
    worker_start(&sealed, "A", NULL, secret);
    worker_start(&plain, "B", NULL, NULL);
    handshake(&sealed, &s, NULL, "a.example", TLS1_2_VERSION, &r1);
    server_end(&s);
    entry_t *e = NULL;
    for (size_t i = 0; i < FAKE_KEYS && e == NULL; i++)
        e = store.entries[i].used ? &store.entries[i] : NULL;
    ASSERT(e != NULL && e->der[0] == 'S'); /* sealed with the cluster secret */

    handshake(&plain, &s, r1.session, "a.example", TLS1_2_VERSION, &r2); /* a node without the secret */
    server_end(&s);
    ASSERT(r2.done && !r2.reused);
    ASSERT_EQ(plain.stats.records_bad, 1);

    e->der[e->der_len - 1] ^= 1; /* one flipped bit in the tag */
    handshake(&sealed, &s, r1.session, "a.example", TLS1_2_VERSION, &r3);
    server_end(&s);
    ASSERT(r3.done && !r3.reused);
    ASSERT_EQ(sealed.stats.records_bad, 1);
    SSL_SESSION_free(r1.session);
    SSL_SESSION_free(r2.session);
    SSL_SESSION_free(r3.session);
    worker_stop(&sealed);
    worker_stop(&plain);
}

TEST(closing_mid_lookup_cancels_and_the_callback_never_runs)
{
    worker_t a, b;
    server_t s;
    run_t r1 = {.answer_store = 1}, r2 = {.answer_store = 0};

    reset_store();
    worker_start(&a, "A", NULL, NULL);
    worker_start(&b, "B", NULL, NULL);
    handshake(&a, &s, NULL, "a.example", TLS1_2_VERSION, &r1);
    server_end(&s);
    handshake(&b, &s, r1.session, "a.example", TLS1_2_VERSION, &r2);
    ASSERT_EQ(s.parked, 1);
    ASSERT_EQ(fake_inflight(&store), 1);
    server_end(&s); /* the client went away */
    ASSERT_EQ(store.cancels, 1);
    ASSERT_EQ(fake_answer(&store), 0);
    ASSERT_EQ(s.resumes, 0);
    SSL_SESSION_free(r1.session);
    SSL_SESSION_free(r2.session);
    worker_stop(&a);
    worker_stop(&b);
}

int main(void)
{
    const char *src = getenv("TLSC_SOURCE_DIR");
    char cmd[1024];

    if (src == NULL)
        src = ".";
    snprintf(pki, sizeof(pki), "/tmp/tlsc-unit-session-XXXXXX");
    ASSERT(mkdtemp(pki) != NULL);
    snprintf(
        cmd, sizeof(cmd),
        "bash -c '. \"%s/tests/lib/certs.sh\" && make_test_pki \"%s\" && head -c 32 /dev/urandom | od -An -tx1 | tr -d \" \\n\" "
        ">\"%s/cluster.secret\" && chmod 600 \"%s/cluster.secret\"'",
        src, pki, pki, pki);
    ASSERT(system(cmd) == 0);

    RUN(session_from_worker_a_resumes_on_worker_b_through_the_store);
    RUN(new_session_last_flight_is_held_until_the_store_answers);
    RUN(tls13_stateful_ticket_resumes_once_across_the_cluster);
    RUN(tls13_ticket_survives_a_hello_retry_request);
    RUN(tls13_identities_are_tagged_and_taken_unconditionally);
    RUN(tls13_identity_without_the_tag_keeps_the_conditional_take);
    RUN(session_made_for_one_name_never_resumes_for_another);
    RUN(store_down_or_failing_means_full_handshakes_counted_by_cause);
    RUN(tls13_no_stateful_ticket_while_the_store_is_not_ready);
    RUN(tampered_or_foreign_records_are_refused_counted_and_a_full_handshake);
    RUN(closing_mid_lookup_cancels_and_the_callback_never_runs);

    snprintf(cmd, sizeof(cmd), "rm -rf \"%s\"", pki);
    ASSERT(system(cmd) == 0);
    TEST_DONE();
}
