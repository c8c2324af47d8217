/*
 * tlscache-server: parse and validate everything (flags, certificates, secret files) before
 * anything starts, so a bad configuration is one line on stderr and a non-zero exit:
 * 2 for bad usage (flags and values, see common/opts.h), 1 for anything found at run time
 * (files, keys, sockets), 0 after --help or --version. With --check (-t) it stops there and
 * prints what would be served.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "keyproto.h"
#include "log.h"
#include "master.h"
#include "redis.h"
#include "opts.h"
#include "tls.h"
#include "util.h"

extern char **environ;

/* Reads a cluster secret file the way the workers will, so a bad one stops us now. */
static int check_secret(const char *flag, const char *path)
{
    unsigned char psk[TLSC_KEYPROTO_PSK_LEN];
    char why[512];
    int rc = tlsc_keyproto_psk_load(path, psk, why, sizeof(why));

    OPENSSL_cleanse(psk, sizeof(psk));
    if (rc != 0)
        fprintf(stderr, "tlscache-server: %s: %s\n", flag, why);
    return rc;
}

/* Everything a start checks before it binds. Returns an exit code, or -1 to go on. */
static int preflight(tlsc_config_t *cfg)
{
    char err[1024];

    if (tlsc_config_load_redis_pass(cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-server: %s\n", err);
        return TLSC_EXIT_FAILURE;
    }
    if (cfg->redis.tls) { /* the workers load these files again; a bad one stops us now */
        SSL_CTX *ctx;

        if (tlsc_redis_tls_ctx_new(cfg->redis_ca_file, cfg->redis_cert_file, cfg->redis_key_file, &ctx, err, sizeof(err)) != 0) {
            fprintf(stderr, "tlscache-server: %s\n", err);
            return TLSC_EXIT_FAILURE;
        }
        SSL_CTX_free(ctx);
    }
    /* A passphrase file others can read is refused before anything reads it (tls.c does). */
    if (cfg->pfx_pass_file != NULL && tlsc_secret_file_check(cfg->pfx_pass_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-server: --pfx-pass-file: %s\n", err);
        return TLSC_EXIT_FAILURE;
    }
    if (cfg->keyd != NULL && cfg->keyd_secret_file == NULL) {
        fprintf(stderr, "tlscache-server: --keyd-secret-file: required with --keyd\n");
        return TLSC_EXIT_USAGE;
    }
    if (cfg->keyd_secret_file != NULL && check_secret("--keyd-secret-file", cfg->keyd_secret_file) != 0)
        return TLSC_EXIT_FAILURE;
    if (cfg->seal_secret_file != NULL && check_secret("--seal-secret-file", cfg->seal_secret_file) != 0)
        return TLSC_EXIT_FAILURE;
    if (cfg->user != NULL && geteuid() != 0 && geteuid() != (uid_t)cfg->run_uid) {
        fprintf(stderr, "tlscache-server: --user %s: switching users needs root (running as uid %u)\n", cfg->user,
                (unsigned)geteuid());
        return TLSC_EXIT_FAILURE;
    }
    return -1;
}

/* The Redis URL with its password, if any, as "***". */
static void mask_url(const char *url, char *out, size_t outlen)
{
    const char *scheme = strstr(url, "://"), *start = scheme ? scheme + 3 : url;
    const char *at = strchr(start, '@'), *slash = strchr(start, '/'), *colon;

    snprintf(out, outlen, "%s", url);
    if (at == NULL || (slash != NULL && slash < at))
        return;
    colon = memchr(start, ':', (size_t)(at - start));
    if (colon != NULL)
        snprintf(out, outlen, "%.*s***%s", (int)(colon + 1 - url), url, at);
}

/* --check: what a start would serve, on stdout. Returns the exit code. */
static int print_check(const tlsc_config_t *cfg, const tlsc_tls_t *tls)
{
    static const char *const modes[] = {"", "cache", "tickets", "both"};
    char line[1024];
    int expiring;

    for (size_t i = 0; i < cfg->n_listen; i++)
        printf("listen       %s:%s (%u worker(s)%s)\n", cfg->listen[i].host, cfg->listen[i].port, cfg->workers,
               cfg->reuseport_share ? ", shared on purpose" : "");
    printf("node         %s, cluster \"%s\"\n", cfg->node, cfg->cluster);
    for (size_t i = 0; i < tlsc_tls_count(tls); i++) {
        tlsc_tls_describe(tls, line, sizeof(line), i, &expiring);
        printf("certificate  %zu: %s\n", i + 1, line);
    }
    printf("alpn         %s\n", cfg->alpn != NULL ? cfg->alpn : "none");
    printf("resumption   %s%s%s\n", modes[cfg->resumption], cfg->keyd ? ", ticket keys from --keyd " : "",
           cfg->keyd ? cfg->keyd : "");
    printf("records      %s\n", cfg->insecure_plain_records ? "PLAIN (--insecure-plain-records): Redis can read every session"
                                : cfg->seal_secret_file     ? "sealed (--seal-secret-file)"
                                : cfg->keyd_secret_file     ? "sealed (--keyd-secret-file)"
                                                            : "none stored");
    mask_url(cfg->redis_url_str, line, sizeof(line));
    printf("redis        %s, prefix \"%s\"\n", line, cfg->redis_prefix);
    printf("admin        %s\n", cfg->admin != NULL ? cfg->admin : "off");
    if (cfg->user != NULL)
        printf("user         workers run as %s (uid %u, gid %u)\n", cfg->user, cfg->run_uid, cfg->run_gid);
    printf("tlscache-server: configuration OK\n");
    return TLSC_EXIT_OK;
}

int main(int argc, char **argv)
{
    tlsc_config_t cfg;
    tlsc_tls_t *tls;
    char err[1024], tag[128];
    int rc;

    rc = tlsc_config_parse(&cfg, argc, argv, environ, err, sizeof(err));
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "tlscache-server: %s\n", err);
        tlsc_config_free(&cfg);
        return rc < 0 ? TLSC_EXIT_USAGE : TLSC_EXIT_OK;
    }
    tlsc_log_set_level((tlsc_log_level_t)cfg.log_level);
    tlsc_log_set_format((tlsc_log_format_t)cfg.log_format);
    snprintf(tag, sizeof(tag), "tlscache-server[%s]", cfg.node);
    tlsc_log_set_tag(tag);
    tlsc_log_set_worker("master");
    if ((rc = preflight(&cfg)) >= 0) {
        tlsc_config_free(&cfg);
        return rc;
    }
    if (tlsc_tls_new(&cfg, &tls, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-server: %s\n", err);
        tlsc_config_free(&cfg);
        return TLSC_EXIT_FAILURE;
    }
    if (cfg.check) {
        rc = print_check(&cfg, tls);
        tlsc_tls_free(tls);
        tlsc_config_free(&cfg);
        return rc;
    }
    if (cfg.insecure_plain_records)
        tlsc_log_warn("--insecure-plain-records: sessions are stored readable in Redis, master secrets included; anyone "
                      "who can read Redis can decrypt these connections");
    rc = tlsc_master_run(&cfg, tls); /* frees tls */
    tlsc_config_free(&cfg);
    return rc;
}
