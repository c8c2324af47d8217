/*
 * tlscache-server: parse and validate everything (flags, certificates, addresses) before
 * anything starts, so a bad configuration is one line on stderr and a non-zero exit.
 */

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config.h"
#include "keyproto.h"
#include "log.h"
#include "master.h"
#include "tls.h"

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
        return rc < 0 ? 1 : 0;
    }
    tlsc_log_set_level((tlsc_log_level_t)cfg.log_level);
    snprintf(tag, sizeof(tag), "tlscache-server[%s]", cfg.node);
    tlsc_log_set_tag(tag);
    if ((cfg.resumption & TLSC_RESUME_TICKETS) && cfg.keyd == NULL) {
        /* Tickets need keys every node shares; without the daemon they would resume on one node only. */
        fprintf(stderr, "tlscache-server: --resumption %s needs --keyd (ticket keys shared by every node)\n",
                cfg.resumption == TLSC_RESUME_BOTH ? "both" : "tickets");
        tlsc_config_free(&cfg);
        return 1;
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
            tlsc_config_free(&cfg);
            return 1;
        }
    }
    if (tlsc_tls_new(&cfg, &tls, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-server: %s\n", err);
        tlsc_config_free(&cfg);
        return 1;
    }
    rc = tlsc_master_run(&cfg, tls);
    tlsc_tls_free(tls);
    tlsc_config_free(&cfg);
    return rc;
}
