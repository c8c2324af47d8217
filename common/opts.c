#include "opts.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h> /* HIREDIS_MAJOR...: the headers only, for --version */
#include <openssl/crypto.h>
#include <openssl/opensslv.h>
#include <uv.h>

#include "addr.h"

/*
 * Parsing runs in two passes. The first collects raw strings: every value given on the
 * command line, then the variables. The second applies them option by option in table
 * order, taking the command-line values of an option when there are any and its env values
 * otherwise, so a flag always wins over its variable.
 */

/* The raw values of one option, before they are checked. */
typedef struct {
    const char *argv_vals[TLSC_OPTS_MAX_REP]; /* point into argv */
    size_t n_argv;
    int argv_seen;                           /* a switch or an optional-value flag given without a value */
    const char *env_vals[TLSC_OPTS_MAX_REP]; /* point into env_buf */
    size_t n_env;
    char *env_buf; /* a copy of the variable, split at commas for repeatable options */
} slot_t;

/* ---------------------------------------------------------------- errors */

const char *tlsc_opts_quote(char out[TLSC_OPTS_QUOTE_MAX], const char *v)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;

    /* Worst case: 60 bytes as \xNN (240) + 2 quotes + "..." + NUL = 246 < 256. */
    out[o++] = '"';
    for (i = 0; v[i] != '\0' && i < 60; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o++] = '"';
    if (v[i] != '\0') {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

int tlsc_opts_fail(char *err, size_t errlen, const char *label, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (err == NULL || errlen == 0)
        return -EINVAL;
    n = snprintf(err, errlen, "%s: ", label);
    if (n >= 0 && (size_t)n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return -EINVAL;
}

int tlsc_opts_uint(const char *label, const char *value, unsigned min, unsigned max, unsigned *out, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX];

    if (tlsc_parse_uint32(value, min, max, out) != 0)
        return tlsc_opts_fail(err, errlen, label, "%s is not a number in %u..%u", tlsc_opts_quote(q, value), min, max);
    return 0;
}

/* ---------------------------------------------------------------- help */

static const char exit_status_text[] = "0 success, --help or --version; 1 a failure at run time; 2 bad usage\n"
                                       "(an unknown flag, a bad value, a missing or conflicting flag).";

void tlsc_opts_env_name(const tlsc_opts_spec_t *spec, const char *name, char *out, size_t outlen)
{
    size_t o = (size_t)snprintf(out, outlen, "%s", spec->env_prefix ? spec->env_prefix : "");

    if (o >= outlen)
        return;
    for (; *name != '\0' && o + 1 < outlen; name++)
        out[o++] = *name == '-' ? '_' : (char)(*name >= 'a' && *name <= 'z' ? *name - 'a' + 'A' : *name);
    out[o] = '\0';
}

/* The one-letter alias of flag `name`, or 0. */
static char alias_of(const tlsc_opts_spec_t *spec, const char *name)
{
    for (const tlsc_opt_alias_t *a = spec->aliases; a != NULL && a->name != NULL; a++)
        if (strcmp(a->name, name) == 0)
            return a->letter;
    return 0;
}

void tlsc_opts_help(const tlsc_opts_spec_t *spec, FILE *f)
{
    char env[96], left[64], alias[8];

    fputs(spec->usage, f);
    for (size_t i = 0; i < spec->n_opts; i++) {
        const tlsc_opt_t *o = &spec->opts[i];
        int has_env = spec->env_prefix != NULL && !(o->flags & TLSC_OPT_NOENV);
        char letter = alias_of(spec, o->name);

        alias[0] = '\0';
        if (letter != 0)
            snprintf(alias, sizeof(alias), "-%c, ", letter);
        snprintf(left, sizeof(left), "%s--%s%s%s%s%s", alias, o->name,
                 o->metavar ? ((o->flags & TLSC_OPT_OPTARG) ? " [" : " ") : "", o->metavar ? o->metavar : "",
                 o->metavar && (o->flags & TLSC_OPT_OPTARG) ? "]" : "", (o->flags & TLSC_OPT_REPEAT) ? " ..." : "");
        fprintf(f, "  %-28s %s\n", left, o->help);
        if (has_env) {
            tlsc_opts_env_name(spec, o->name, env, sizeof(env));
            fprintf(f, "  %-28s   default: %s; env %s\n", "", o->defval ? o->defval : "none", env);
        } else if (o->defval != NULL) {
            fprintf(f, "  %-28s   default: %s\n", "", o->defval);
        }
    }
    fprintf(f, "\nExit status: %s\n", exit_status_text);
    if (spec->footer != NULL)
        fputs(spec->footer, f);
}

/* ---------------------------------------------------------------- version */

void tlsc_opts_version(const tlsc_opts_spec_t *spec, FILE *f)
{
    const char *ssl = OpenSSL_version(OPENSSL_VERSION);

    fprintf(f, "%s %s\n", spec->prog, spec->version);
    /* The run-time library can be newer than the headers (a security update without a rebuild). */
    if (strcmp(ssl, OPENSSL_VERSION_TEXT) == 0)
        fprintf(f, "%s\n", ssl);
    else
        fprintf(f, "%s (built with %s)\n", ssl, OPENSSL_VERSION_TEXT);
    if (uv_version() == UV_VERSION_HEX)
        fprintf(f, "libuv %s\n", uv_version_string());
    else
        fprintf(f, "libuv %s (built with %d.%d.%d)\n", uv_version_string(), UV_VERSION_MAJOR, UV_VERSION_MINOR, UV_VERSION_PATCH);
    fprintf(f, "hiredis %d.%d.%d (built with; hiredis has no run-time version)\n", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
}

/* ---------------------------------------------------------------- example environment file */

/* Writes `s` as "# "-prefixed comment lines, a hand-wrapped help text as one line. */
static void env_comment(FILE *f, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\n') {
            while (s[1] == ' ')
                s++;
            fputc(' ', f);
        } else {
            fputc(*s, f);
        }
    }
}

void tlsc_opts_env_example(const tlsc_opts_spec_t *spec, FILE *f)
{
    char env[96];

    fprintf(f,
            "# Environment of %s %s, read by its systemd unit through EnvironmentFile=.\n"
            "# Generated from the program's option table (%s --env-example); see %s(%d).\n"
            "# Each variable is the flag named above it; a flag on the command line wins. Uncomment to set.\n"
            "# One VAR=value a line, no spaces around \"=\", no shell expansion; a repeatable flag takes a\n"
            "# comma list. Secrets never go here: the unit passes them as credentials (LoadCredential=).\n",
            spec->prog, spec->version, spec->prog, spec->prog, spec->man_section);
    for (size_t i = 0; spec->env_prefix != NULL && i < spec->n_opts; i++) {
        const tlsc_opt_t *o = &spec->opts[i];

        if ((o->flags & TLSC_OPT_NOENV) || o->apply == NULL)
            continue;
        tlsc_opts_env_name(spec, o->name, env, sizeof(env));
        fprintf(f, "\n# --%s%s%s: ", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        env_comment(f, o->help);
        fprintf(f, "%s\n", (o->flags & TLSC_OPT_REPEAT) ? " (comma list)" : (o->flags & TLSC_OPT_NOARG) ? " (1 or 0)" : "");
        if (o->defval != NULL) {
            fputs("# default: ", f);
            env_comment(f, o->defval);
            fputc('\n', f);
        }
        fprintf(f, "#%s=\n", env);
    }
}

/* ---------------------------------------------------------------- man page */

/*
 * Writes `s` (up to `len` bytes) as roff text: a backslash as \e, every "-" as \- (so flags
 * and variable names copy as ASCII), a line that would start with "." or "'" guarded by \&, and
 * with `join`, every newline and the indent after it as one space (help texts wrap by hand).
 */
static void roff_n(FILE *f, const char *s, size_t len, int join)
{
    int bol = 1;

    for (size_t i = 0; i < len && s[i] != '\0'; i++) {
        char c = s[i];

        if (c == '\n' && join) {
            while (i + 1 < len && s[i + 1] == ' ')
                i++;
            fputc(' ', f);
            continue;
        }
        if (bol && (c == '.' || c == '\''))
            fputs("\\&", f);
        if (c == '\\')
            fputs("\\e", f);
        else if (c == '-')
            fputs("\\-", f);
        else
            fputc(c, f);
        bol = c == '\n';
    }
}

static void roff(FILE *f, const char *s, int join)
{
    roff_n(f, s, strlen(s), join);
}

/* The --help usage text is "usage: LINE\n       LINE\n\nPARAGRAPH...": synopsis lines, then prose. */
static void man_synopsis_and_description(const tlsc_opts_spec_t *spec, FILE *f)
{
    const char *p = spec->usage, *nl;

    fputs(".SH SYNOPSIS\n.nf\n", f);
    while (*p != '\0' && *p != '\n') {
        nl = strchr(p, '\n');
        if (strncmp(p, "usage:", 6) == 0)
            p += 6;
        while (*p == ' ')
            p++;
        fputs("\\fB", f);
        roff_n(f, p, strlen(spec->prog), 0);
        fputs("\\fR", f);
        roff_n(f, p + strlen(spec->prog), nl != NULL ? (size_t)(nl - p) - strlen(spec->prog) : strlen(p), 0);
        fputc('\n', f);
        p = nl != NULL ? nl + 1 : p + strlen(p);
    }
    fputs(".fi\n.SH DESCRIPTION\n", f);
    /* Paragraphs separated by blank lines; the lines of one paragraph run together, unless
     * one is indented (a table of commands): that paragraph keeps its lines. */
    while (*p == '\n')
        p++;
    while (*p != '\0') {
        const char *end = strstr(p, "\n\n");
        size_t n = end != NULL ? (size_t)(end - p) : strlen(p), shown = n;

        while (shown > 0 && p[shown - 1] == '\n') /* the text's last newline is not a space */
            shown--;
        const char *indent = strstr(p, "\n  ");
        int table = strncmp(p, "  ", 2) == 0 || (indent != NULL && indent < p + shown);

        fputs(table ? ".PP\n.nf\n" : ".PP\n", f);
        roff_n(f, p, shown, !table);
        fputs(table ? "\n.fi\n" : "\n", f);
        p += n;
        while (*p == '\n')
            p++;
    }
}

void tlsc_opts_man(const tlsc_opts_spec_t *spec, FILE *f)
{
    char env[96];
    int any_env = 0;

    fputs(".\\\" Generated by the program itself (--man) from its option table; do not edit.\n", f);
    fputs(".TH ", f);
    for (const char *c = spec->prog; *c != '\0'; c++)
        fputc(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c, f);
    fprintf(f, " %d \"\" \"tlscache %s\" \"%s\"\n", spec->man_section, spec->version,
            spec->man_section == 8 ? "System Administration" : "User Commands");
    fputs(".SH NAME\n", f);
    roff(f, spec->prog, 0);
    fputs(" \\- ", f);
    roff(f, spec->summary != NULL ? spec->summary : "", 0);
    fputc('\n', f);
    man_synopsis_and_description(spec, f);

    fputs(".SH OPTIONS\n", f);
    for (size_t i = 0; i < spec->n_opts; i++) {
        const tlsc_opt_t *o = &spec->opts[i];
        char letter = alias_of(spec, o->name);
        int has_env = spec->env_prefix != NULL && !(o->flags & TLSC_OPT_NOENV);

        fputs(".TP\n", f);
        if (letter != 0)
            fprintf(f, "\\fB\\-%c\\fR, ", letter);
        fputs("\\fB\\-\\-", f);
        roff(f, o->name, 0);
        fputs("\\fR", f);
        if (o->metavar != NULL) {
            fputs((o->flags & TLSC_OPT_OPTARG) ? " [\\fI" : " \\fI", f);
            roff(f, o->metavar, 0);
            fputs((o->flags & TLSC_OPT_OPTARG) ? "\\fR]" : "\\fR", f);
        }
        if (o->flags & TLSC_OPT_REPEAT)
            fputs(" ...", f);
        fputc('\n', f);
        roff(f, o->help, 1);
        fputs(".\n", f);
        if (o->defval != NULL || has_env) {
            fputs(".br\nDefault: ", f);
            roff(f, o->defval != NULL ? o->defval : "none", 0);
            fputs(".", f);
            if (has_env) {
                tlsc_opts_env_name(spec, o->name, env, sizeof(env));
                fputs(" Environment: \\fB", f);
                roff(f, env, 0);
                fputs("\\fR.", f);
                any_env = 1;
            }
            fputc('\n', f);
        }
    }

    if (any_env) {
        fputs(".SH ENVIRONMENT\nEach flag but \\fB\\-\\-help\\fR and \\fB\\-\\-version\\fR is also read from a variable; "
              "a flag on the command line wins, an empty variable counts as unset, and a repeatable flag's variable "
              "is a comma list.\n",
              f);
        for (size_t i = 0; i < spec->n_opts; i++) {
            const tlsc_opt_t *o = &spec->opts[i];

            if ((o->flags & TLSC_OPT_NOENV) || o->apply == NULL)
                continue;
            tlsc_opts_env_name(spec, o->name, env, sizeof(env));
            fputs(".TP\n.B ", f);
            roff(f, env, 0);
            fputs("\n\\fB\\-\\-", f);
            roff(f, o->name, 0);
            fputs("\\fR\n", f);
        }
    }
    fputs(".SH EXIT STATUS\n", f);
    roff(f, exit_status_text, 1);
    fputc('\n', f);
    if (spec->footer != NULL) {
        fputs(".SH NOTES\n.nf\n", f);
        roff(f, spec->footer[0] == '\n' ? spec->footer + 1 : spec->footer, 0);
        fputs(".fi\n", f);
    }
    if (spec->see_also != NULL) {
        fputs(".SH SEE ALSO\n", f);
        roff(f, spec->see_also, 0);
        fputc('\n', f);
    }
}

/* ---------------------------------------------------------------- collecting raw values */

static int find_option(const tlsc_opts_spec_t *spec, const char *name, size_t len)
{
    for (size_t i = 0; i < spec->n_opts; i++)
        if (strlen(spec->opts[i].name) == len && memcmp(spec->opts[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

static int find_short(const tlsc_opts_spec_t *spec, char c)
{
    for (const tlsc_opt_alias_t *a = spec->aliases; a != NULL && a->name != NULL; a++)
        if (a->letter == c)
            return find_option(spec, a->name, strlen(a->name));
    return -1;
}

static int add_value(slot_t *s, const char *label, const char *value, int from_env, char *err, size_t errlen)
{
    size_t *n = from_env ? &s->n_env : &s->n_argv;
    const char **vals = from_env ? s->env_vals : s->argv_vals;

    if (*n == TLSC_OPTS_MAX_REP)
        return tlsc_opts_fail(err, errlen, label, "given more than %d times", TLSC_OPTS_MAX_REP);
    vals[(*n)++] = value;
    return 0;
}

static int refuse_unknown(const tlsc_opts_spec_t *spec, const char *arg, const char *name, size_t len, const char *eq, char *err,
                          size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX], label[80];

    for (const tlsc_opt_refused_t *r = spec->refused; r != NULL && r->name != NULL; r++)
        if (strlen(r->name) == len && memcmp(r->name, name, len) == 0) {
            snprintf(label, sizeof(label), "--%s", r->name);
            return tlsc_opts_fail(err, errlen, label, "%s", r->why); /* never echo what follows */
        }
    if (eq != NULL) {
        char *cut = strndup(arg, (size_t)(eq - arg));
        if (cut == NULL)
            return tlsc_opts_fail(err, errlen, spec->prog, "out of memory");
        tlsc_opts_fail(err, errlen, tlsc_opts_quote(q, cut), "unknown flag (see --help)");
        free(cut);
        return -EINVAL;
    }
    return tlsc_opts_fail(err, errlen, tlsc_opts_quote(q, arg), "unknown flag (see --help)");
}

/* Walks argv. Returns 0, TLSC_OPTS_HELP after printing --help or --version, or an error. */
static int collect_argv(const tlsc_opts_spec_t *spec, slot_t *slots, int argc, char **argv, char *err, size_t errlen)
{
    char q[TLSC_OPTS_QUOTE_MAX], label[80];

    /* --help, --version and --man win over any error, wherever they are. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            tlsc_opts_help(spec, stdout);
            return TLSC_OPTS_HELP;
        }
        if (strcmp(argv[i], "--version") == 0) {
            tlsc_opts_version(spec, stdout);
            return TLSC_OPTS_HELP;
        }
        if (strcmp(argv[i], "--man") == 0) { /* hidden: the build writes the man page with it */
            tlsc_opts_man(spec, stdout);
            return TLSC_OPTS_HELP;
        }
        if (strcmp(argv[i], "--env-example") == 0) { /* hidden: and the example environment file */
            tlsc_opts_env_example(spec, stdout);
            return TLSC_OPTS_HELP;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *name, *eq, *value = NULL;
        const tlsc_opt_t *o;
        size_t len;
        int idx;

        if (arg[0] == '-' && arg[1] != '-' && arg[1] != '\0' && arg[2] == '\0' && (idx = find_short(spec, arg[1])) >= 0) {
            name = spec->opts[idx].name; /* "-t": the flag's one-letter alias */
            eq = NULL;
            len = strlen(name);
        } else if (strncmp(arg, "--", 2) != 0 || arg[2] == '\0') {
            return tlsc_opts_fail(err, errlen, tlsc_opts_quote(q, arg), "unexpected argument (flags start with --; see --help)");
        } else {
            name = arg + 2;
            eq = strchr(name, '=');
            len = eq ? (size_t)(eq - name) : strlen(name);
        }
        if ((idx = find_option(spec, name, len)) < 0)
            return refuse_unknown(spec, arg, name, len, eq, err, errlen);
        o = &spec->opts[idx];
        snprintf(label, sizeof(label), "--%s", o->name);
        if (o->apply == NULL) /* --help or --version with a value: the exact ones returned above */
            return tlsc_opts_fail(err, errlen, label, "takes no value");
        if (o->flags & TLSC_OPT_NOARG) {
            if (eq != NULL)
                return tlsc_opts_fail(err, errlen, label, "takes no value");
        } else if (eq != NULL) {
            value = eq + 1;
        } else if (o->flags & TLSC_OPT_OPTARG) {
            if (i + 1 < argc && argv[i + 1][0] != '-')
                value = argv[++i];
        } else {
            /* A following "--flag" is a forgotten value, not a file name that starts with "--". */
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0)
                return tlsc_opts_fail(err, errlen, label, "needs a value (%s)", o->metavar ? o->metavar : "VALUE");
            value = argv[++i];
        }
        if (!(o->flags & TLSC_OPT_REPEAT) && (slots[idx].n_argv > 0 || slots[idx].argv_seen))
            return tlsc_opts_fail(err, errlen, label, "given more than once");
        if (value == NULL)
            slots[idx].argv_seen = 1;
        else if (add_value(&slots[idx], label, value, 0, err, errlen) != 0)
            return -EINVAL;
    }
    return 0;
}

/* Picks up the spec's variables. Unknown ones are left alone: other programs share the prefix. */
static int collect_env(const tlsc_opts_spec_t *spec, slot_t *slots, char **envp, char *err, size_t errlen)
{
    char name[96], label[192];
    size_t plen = spec->env_prefix ? strlen(spec->env_prefix) : 0;

    if (spec->env_prefix == NULL)
        return 0;
    for (char **e = envp; e != NULL && *e != NULL; e++) {
        const char *eq;

        if (strncmp(*e, spec->env_prefix, plen) != 0 || (eq = strchr(*e, '=')) == NULL || eq[1] == '\0')
            continue;
        for (size_t i = 0; i < spec->n_opts; i++) {
            const tlsc_opt_t *o = &spec->opts[i];
            slot_t *s = &slots[i];
            char *p;

            if ((o->flags & TLSC_OPT_NOENV) || o->apply == NULL)
                continue;
            tlsc_opts_env_name(spec, o->name, name, sizeof(name));
            if ((size_t)(eq - *e) != strlen(name) || memcmp(*e, name, strlen(name)) != 0)
                continue;
            snprintf(label, sizeof(label), "--%s (from %s)", o->name, name);
            free(s->env_buf);
            s->n_env = 0;
            if ((s->env_buf = strdup(eq + 1)) == NULL)
                return tlsc_opts_fail(err, errlen, label, "out of memory");
            p = s->env_buf;
            if (o->flags & TLSC_OPT_NOARG) {
                /* A switch from the environment: 1/true/yes sets it, 0/false/no leaves it off. */
                if (strcmp(p, "1") == 0 || strcmp(p, "true") == 0 || strcmp(p, "yes") == 0)
                    s->n_env = 1, s->env_vals[0] = NULL;
                else if (strcmp(p, "0") != 0 && strcmp(p, "false") != 0 && strcmp(p, "no") != 0) {
                    char q[TLSC_OPTS_QUOTE_MAX];
                    return tlsc_opts_fail(err, errlen, label, "%s is not 1, true, yes, 0, false or no", tlsc_opts_quote(q, p));
                }
                break;
            }
            for (;;) {
                char *comma = (o->flags & TLSC_OPT_REPEAT) ? strchr(p, ',') : NULL;
                if (comma != NULL)
                    *comma = '\0';
                if (add_value(s, label, p, 1, err, errlen) != 0)
                    return -EINVAL;
                if (comma == NULL)
                    break;
                p = comma + 1;
            }
            break;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- the entry points */

int tlsc_opts_defaults(const tlsc_opts_spec_t *spec, void *ctx, char *err, size_t errlen)
{
    char label[96];
    int rc;

    for (size_t i = 0; i < spec->n_opts; i++) {
        const tlsc_opt_t *o = &spec->opts[i];

        if (!(o->flags & TLSC_OPT_DEFAULT) || o->defval == NULL || o->apply == NULL)
            continue;
        snprintf(label, sizeof(label), "--%s", o->name);
        if ((rc = o->apply(ctx, label, o->defval, err, errlen)) != 0)
            return rc;
    }
    return 0;
}

static int from_argv(const tlsc_opts_spec_t *spec, const slot_t *slots, size_t i)
{
    int group = spec->opts[i].group;

    if (group == 0)
        return slots[i].n_argv > 0 || slots[i].argv_seen;
    /* Options of one group (a certificate and its key) come from one place, so pairs never mix. */
    for (size_t j = 0; j < spec->n_opts; j++)
        if (spec->opts[j].group == group && (slots[j].n_argv > 0 || slots[j].argv_seen))
            return 1;
    return 0;
}

int tlsc_opts_parse(const tlsc_opts_spec_t *spec, void *ctx, int argc, char **argv, char **envp, char *err, size_t errlen)
{
    slot_t *slots;
    char label[192], name[96];
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if ((slots = calloc(spec->n_opts, sizeof(*slots))) == NULL)
        return tlsc_opts_fail(err, errlen, spec->prog, "out of memory");
    if ((rc = collect_argv(spec, slots, argc, argv, err, errlen)) != 0)
        goto done;
    if ((rc = collect_env(spec, slots, envp, err, errlen)) != 0)
        goto done;
    for (size_t i = 0; i < spec->n_opts; i++) {
        const tlsc_opt_t *o = &spec->opts[i];
        const slot_t *s = &slots[i];
        int use_argv = from_argv(spec, slots, i);

        if (o->apply == NULL)
            continue;
        if (use_argv) {
            snprintf(label, sizeof(label), "--%s", o->name);
        } else {
            tlsc_opts_env_name(spec, o->name, name, sizeof(name));
            snprintf(label, sizeof(label), "--%s (from %s)", o->name, name);
        }
        if (use_argv && s->argv_seen && (rc = o->apply(ctx, label, NULL, err, errlen)) != 0)
            goto done;
        for (size_t j = 0; j < (use_argv ? s->n_argv : s->n_env); j++)
            if ((rc = o->apply(ctx, label, use_argv ? s->argv_vals[j] : s->env_vals[j], err, errlen)) != 0)
                goto done;
        /* Given nowhere: the table's default, so it is written in one place only. */
        if (!use_argv && s->n_env == 0 && (o->flags & TLSC_OPT_DEFAULT) && o->defval != NULL) {
            snprintf(label, sizeof(label), "--%s", o->name);
            if ((rc = o->apply(ctx, label, o->defval, err, errlen)) != 0)
                goto done;
        }
    }
    rc = 0;

done:
    for (size_t i = 0; i < spec->n_opts; i++)
        free(slots[i].env_buf);
    free(slots);
    return rc;
}
