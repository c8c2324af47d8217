/*
 * tlscache-server: parse and validate everything (flags, certificates, addresses) before
 * anything starts, so a bad configuration is one line on stderr and a non-zero exit:
 * 2 for bad usage (flags and values, see common/opts.h), 1 for anything found at run time
 * (files, keys, sockets), 0 after --help or --version.
 */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "keyproto.h"
#include "log.h"
#include "master.h"
#include "opts.h"
#include "tls.h"
#include "util.h"

extern char **environ;

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
    snprintf(tag, sizeof(tag), "tlscache-server[%s]", cfg.node);
    tlsc_log_set_tag(tag);
    /* A passphrase file others can read is refused before anything reads it (tls.c does). */
    if (cfg.pfx_pass_file != NULL && tlsc_secret_file_check(cfg.pfx_pass_file, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-server: --pfx-pass-file: %s\n", err);
        tlsc_config_free(&cfg);
        return TLSC_EXIT_FAILURE;
    }
    if (cfg.keyd != NULL) {
        /* Check the cluster secret now, so a bad file stops us before anything starts. */
        unsigned char psk[TLSC_KEYPROTO_PSK_LEN];
        char why[256];
        int prc = cfg.keyd_secret_file != NULL ? tlsc_keyproto_psk_load(cfg.keyd_secret_file, psk, why, sizeof(why)) : -1;
        OPENSSL_cleanse(psk, sizeof(psk));
        if (prc != 0) {
            fprintf(stderr, "tlscache-server: --keyd-secret-file: %s\n",
                    cfg.keyd_secret_file != NULL ? why : "required with --keyd");
            rc = cfg.keyd_secret_file != NULL ? TLSC_EXIT_FAILURE : TLSC_EXIT_USAGE; /* a missing flag is usage */
            tlsc_config_free(&cfg);
            return rc;
        }
    }
    if (tlsc_tls_new(&cfg, &tls, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-server: %s\n", err);
        tlsc_config_free(&cfg);
        return TLSC_EXIT_FAILURE;
    }
    rc = tlsc_master_run(&cfg, tls); /* frees tls */
    tlsc_config_free(&cfg);
    return rc;
}
