/*
 * tlscache-daemon: makes ticket keys, rotates them, and pushes the window to every worker.
 * Keys live only in this process's memory (locked, not dumpable, wiped when dropped).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <uv.h>

#include "daemon.h"
#include "keyproto.h"
#include "log.h"

static const char usage[] = "usage: tlscache-daemon --secret-file FILE (--listen HOST:PORT | --unix PATH)... [options]\n"
                            "\n"
                            "  --listen HOST:PORT      TCP address for workers (TLS 1.3, cluster PSK)\n"
                            "  --unix PATH             Unix socket for workers on this host (same TLS)\n"
                            "  --secret-file FILE      cluster secret: >= 32 random bytes, raw or hex\n"
                            "  --rotate SEC            a key encrypts new tickets for SEC seconds (default 3600)\n"
                            "  --ticket-lifetime SEC   a retired key still opens tickets for SEC seconds (default: --rotate)\n"
                            "  --lead SEC              a next key is pushed at least SEC before it encrypts (default: --rotate/2)\n"
                            "  --grace-ms MS           after a start, wait MS for workers to report their keys (default 2000)\n"
                            "  --node NAME             name in logs and HELLO (default: hostname)\n"
                            "  --log-level LEVEL       error|warn|info|debug (default info)\n"
                            "  --help, --version\n";

static int parse_uint(const char *flag, const char *v, unsigned min, unsigned max, unsigned *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);

    if (*v == '\0' || *end != '\0' || v[0] == '-' || n < min || n > max) {
        fprintf(stderr, "tlscache-daemon: %s %s: expected an integer in %u..%u\n", flag, v, min, max);
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

/* Keeps keys out of core dumps and away from ptrace by other users. */
static void harden_process(void)
{
    struct rlimit no_core = {0, 0};

    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        tlsc_log_warn("prctl(PR_SET_DUMPABLE, 0) failed");
    if (setrlimit(RLIMIT_CORE, &no_core) != 0)
        tlsc_log_warn("setrlimit(RLIMIT_CORE, 0) failed");
}

static tlsc_daemon_t *daemon_;
static uv_signal_t sig_term, sig_int;

static void on_signal(uv_signal_t *s, int signum)
{
    tlsc_log_info("signal %d: shutting down", signum);
    tlsc_daemon_close(daemon_);
    uv_close((uv_handle_t *)&sig_term, NULL);
    uv_close((uv_handle_t *)&sig_int, NULL);
}

int main(int argc, char **argv)
{
    enum { O_LISTEN = 256, O_UNIX, O_SECRET, O_ROTATE, O_LIFETIME, O_LEAD, O_GRACE, O_NODE, O_LOG, O_HELP, O_VERSION };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"unix", required_argument, NULL, O_UNIX},
        {"secret-file", required_argument, NULL, O_SECRET},
        {"rotate", required_argument, NULL, O_ROTATE},
        {"ticket-lifetime", required_argument, NULL, O_LIFETIME},
        {"lead", required_argument, NULL, O_LEAD},
        {"grace-ms", required_argument, NULL, O_GRACE},
        {"node", required_argument, NULL, O_NODE},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, O_HELP},
        {"version", no_argument, NULL, O_VERSION},
        {NULL, 0, NULL, 0},
    };
    tlsc_daemon_options_t o;
    const char *secret_file = NULL;
    unsigned char psk[TLSC_KEYPROTO_PSK_LEN];
    char err[512], host[65] = "daemon", tag[128];
    tlsc_log_level_t level = TLSC_LOG_INFO;
    unsigned grace = 2000;
    int c, rc;

    memset(&o, 0, sizeof(o));
    harden_process();
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN:
            o.listen = optarg;
            break;
        case O_UNIX:
            o.unix_path = optarg;
            break;
        case O_SECRET:
            secret_file = optarg;
            break;
        case O_ROTATE:
            if (parse_uint("--rotate", optarg, 1, 7 * 86400, &o.rotate_sec) != 0)
                return 2;
            break;
        case O_LIFETIME:
            if (parse_uint("--ticket-lifetime", optarg, 1, 7 * 86400, &o.ticket_lifetime_sec) != 0)
                return 2;
            break;
        case O_LEAD:
            if (parse_uint("--lead", optarg, 1, 7 * 86400, &o.lead_sec) != 0)
                return 2;
            break;
        case O_GRACE:
            if (parse_uint("--grace-ms", optarg, 0, 600000, &grace) != 0)
                return 2;
            break;
        case O_NODE:
            o.node = optarg;
            break;
        case O_LOG:
            if (tlsc_log_parse_level(optarg, &level) != 0) {
                fprintf(stderr, "tlscache-daemon: --log-level %s: expected error|warn|info|debug\n", optarg);
                return 2;
            }
            break;
        case O_HELP:
            fputs(usage, stdout);
            return 0;
        case O_VERSION:
            printf("tlscache-daemon %s\n", TLSC_VERSION);
            return 0;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "tlscache-daemon: unexpected argument %s\n%s", argv[optind], usage);
        return 2;
    }
    if (secret_file == NULL) {
        fprintf(stderr, "tlscache-daemon: --secret-file is required\n%s", usage);
        return 2;
    }
    if (o.node == NULL) {
        if (gethostname(host, sizeof(host) - 1) != 0 || host[0] == '\0')
            snprintf(host, sizeof(host), "daemon");
        /* HELLO names allow [A-Za-z0-9._:-]: map anything else to '-'. */
        for (char *p = host; *p; p++)
            if (!(*p == '.' || *p == '_' || *p == ':' || *p == '-' || (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z') ||
                  (*p >= 'A' && *p <= 'Z')))
                *p = '-';
        o.node = host;
    }
    o.grace_ms = grace;
    snprintf(tag, sizeof(tag), "tlscache-daemon[%s]", o.node);
    tlsc_log_set_tag(tag);
    tlsc_log_set_level(level);
    if (tlsc_keyproto_psk_load(secret_file, psk, err, sizeof(err)) != 0) {
        fprintf(stderr, "tlscache-daemon: --secret-file: %s\n", err);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t *loop = uv_default_loop();
    rc = tlsc_daemon_new(loop, &o, psk, &daemon_, err, sizeof(err));
    OPENSSL_cleanse(psk, sizeof(psk));
    if (rc != 0) {
        fprintf(stderr, "tlscache-daemon: %s\n", err);
        return 2;
    }
    uv_signal_init(loop, &sig_term);
    uv_signal_init(loop, &sig_int);
    uv_signal_start(&sig_term, on_signal, SIGTERM);
    uv_signal_start(&sig_int, on_signal, SIGINT);
    tlsc_log_info("listening%s%s%s%s; rotate %us, ticket lifetime %us, grace %ums", o.listen ? " on " : "",
                  o.listen ? o.listen : "", o.unix_path ? " and unix:" : "", o.unix_path ? o.unix_path : "",
                  o.rotate_sec ? o.rotate_sec : 3600,
                  o.ticket_lifetime_sec ? o.ticket_lifetime_sec : (o.rotate_sec ? o.rotate_sec : 3600), grace);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    return 0;
}
