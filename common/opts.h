#ifndef TLSC_OPTS_H
#define TLSC_OPTS_H

/*
 * The one command-line parser of every binary. Each binary describes its flags in a static
 * table of {name, metavar, flags, apply, default, help}; the same table drives parsing, the
 * environment variables and the --help text, so a default is written once.
 *
 * Rules, the same for tlscache-server, tlscache-daemon and tlscache-bench:
 *   --flag VALUE or --flag=VALUE; -h is --help; a flag may have a one-letter alias (-t);
 *   nothing positional.
 *   With an env prefix, flag "session-timeout" is also read from PREFIX + "SESSION_TIMEOUT";
 *   a flag on the command line wins over its variable; an empty variable counts as unset;
 *   a repeatable flag's variable is a comma list.
 *   Values are applied in table order once everything is collected, so checks that involve
 *   two flags can run in the apply functions of the later one or after the parse. A flag
 *   given nowhere gets its table default (TLSC_OPT_DEFAULT), through the same apply function.
 *   Every error is one line that starts with the flag (and the variable, when the value came
 *   from one) and quotes the value with control bytes escaped.
 *
 * --man and --env-example (not in the table, not in --help) print the man page and an example
 * environment file; the build makes the installed ones with them.
 *
 * Exit codes (tlsc_opts_exit_t): 0 success, --help, --version, --man; 1 a failure at run time
 * (a file that cannot be read, a port in use, no handshake succeeded); 2 bad usage (an
 * unknown flag, a bad value, a missing or conflicting flag), as getopt tools do.
 */

#include <stddef.h>
#include <stdio.h>

typedef enum {
    TLSC_EXIT_OK = 0,
    TLSC_EXIT_FAILURE = 1,
    TLSC_EXIT_USAGE = 2,
} tlsc_opts_exit_t;

enum {
    TLSC_OPT_REPEAT = 1,   /* may be given several times; its variable is a comma list */
    TLSC_OPT_NOARG = 2,    /* a switch: takes no value (apply gets NULL) */
    TLSC_OPT_NOENV = 4,    /* has no environment variable */
    TLSC_OPT_OPTARG = 8,   /* the value is optional: --flag=V, or the next argument unless it starts with "-" */
    TLSC_OPT_DEFAULT = 16, /* `defval` is a value: applied when the flag is not given, so it is written once */
};

/** Applies one value (NULL for a switch) to `ctx`; 0, or a negative code with `err` set via tlsc_opts_fail.
 * A value from the environment lives only until tlsc_opts_parse returns: keep a copy, not the pointer. */
typedef int (*tlsc_opt_apply_fn)(void *ctx, const char *label, const char *value, char *err, size_t errlen);

typedef struct {
    const char *name; /* without the leading "--" */
    const char *metavar;
    unsigned flags;
    tlsc_opt_apply_fn apply; /* NULL for --help and --version */
    const char *defval;      /* shown by --help; NULL when there is none */
    const char *help;
    int group; /* options of one non-zero group take their values from one source (argv or env) */
} tlsc_opt_t;

/* A one-letter alias: -t for --check. */
typedef struct {
    char letter;
    const char *name;
} tlsc_opt_alias_t;

/* A flag that is refused by name, with a message, and whose value is never echoed. */
typedef struct {
    const char *name;
    const char *why;
} tlsc_opt_refused_t;

typedef struct {
    const char *prog;       /* "tlscache-server" */
    const char *version;    /* printed by --version after the program name */
    const char *summary;    /* one line for the man page's NAME: "clustered TLS session cache server" */
    int man_section;        /* 1 (user command) or 8 (system administration); the file is PROG.SECTION */
    const char *see_also;   /* the man page's SEE ALSO: "tlscache-daemon(8), tlscache-bench(1)", or NULL */
    const char *env_prefix; /* "TLSCACHE_"; NULL: no environment variables */
    const char *usage;      /* the first lines of --help, up to the flag list */
    const char *footer;     /* printed after the flag list, or NULL */
    const tlsc_opt_t *opts;
    size_t n_opts;
    const tlsc_opt_refused_t *refused; /* terminated by {NULL, NULL}, or NULL */
    const tlsc_opt_alias_t *aliases;   /* terminated by {0, NULL}, or NULL */
} tlsc_opts_spec_t;

#define TLSC_OPTS_HELP    1 /* tlsc_opts_parse printed --help, --version or --man */
#define TLSC_OPTS_MAX_REP 64

/**
 * Parses argv (and envp when the spec has an env prefix) and calls each option's apply in
 * table order. Returns 0; TLSC_OPTS_HELP after printing --help or --version to stdout (the
 * caller exits 0); or a negative code with one line in `err` (the caller exits
 * TLSC_EXIT_USAGE).
 */
int tlsc_opts_parse(const tlsc_opts_spec_t *spec, void *ctx, int argc, char **argv, char **envp, char *err, size_t errlen);

/**
 * Applies the `defval` of every TLSC_OPT_DEFAULT option to `ctx` (tlsc_opts_parse does this
 * itself for the options not given; this is for a caller that wants the defaults without a
 * command line). Returns 0 or the first apply error.
 */
int tlsc_opts_defaults(const tlsc_opts_spec_t *spec, void *ctx, char *err, size_t errlen);

/** Writes the --help text: usage, one entry per flag with its default and variable, footer. */
void tlsc_opts_help(const tlsc_opts_spec_t *spec, FILE *f);

/**
 * Writes the --version text: the program and its version, then the OpenSSL and libuv versions
 * the process runs with (and the ones it was built against when they differ), and the hiredis
 * version it was built with (hiredis has no run-time version call).
 */
void tlsc_opts_version(const tlsc_opts_spec_t *spec, FILE *f);

/**
 * Writes the man page (roff, man macros) from the same table as --help: NAME from `summary`,
 * SYNOPSIS and DESCRIPTION from `usage`, one OPTIONS entry per flag with its default, an
 * ENVIRONMENT list, EXIT STATUS, NOTES from `footer`, SEE ALSO. The hidden flag --man prints
 * it; the build runs it after linking (cmake/TlscacheInstall.cmake), so the page cannot drift.
 */
void tlsc_opts_man(const tlsc_opts_spec_t *spec, FILE *f);

/**
 * Writes an example environment file (systemd's EnvironmentFile= syntax): every variable of
 * the table commented out, above it the flag, its help and its default. The hidden flag
 * --env-example prints it; the build installs it as /etc/tlscache/<name>.env.
 */
void tlsc_opts_env_example(const tlsc_opts_spec_t *spec, FILE *f);

/** Writes PREFIX + NAME upper-cased with '-' as '_' ("TLSCACHE_SESSION_TIMEOUT"). */
void tlsc_opts_env_name(const tlsc_opts_spec_t *spec, const char *name, char *out, size_t outlen);

/** Sets `err` to "LABEL: message" and returns -EINVAL. */
int tlsc_opts_fail(char *err, size_t errlen, const char *label, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define TLSC_OPTS_QUOTE_MAX 256
/** Writes `v` in double quotes, non-printable bytes as \xNN, cut after 60 bytes with "...". */
const char *tlsc_opts_quote(char out[TLSC_OPTS_QUOTE_MAX], const char *v);

/** A plain decimal in min..max, or an error naming `label` and quoting the value. */
int tlsc_opts_uint(const char *label, const char *value, unsigned min, unsigned max, unsigned *out, char *err, size_t errlen);

#endif
