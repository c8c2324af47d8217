/* common/opts.c: the man page and the example env file made from a table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opts.h"
#include "test.h"

typedef struct {
    const char *name, *list;
} ctx_t;

static int apply_name(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    ((ctx_t *)ctx)->name = value; /* never applied: these tests only print the table */
    return 0;
}

static int apply_list(void *ctx, const char *label, const char *value, char *err, size_t errlen)
{
    ((ctx_t *)ctx)->list = value;
    return 0;
}

static const tlsc_opt_t options[] = {
    {"name", "NAME", 0, apply_name, "a-b", ".starts with a dot, has a back\\slash and -dashes", 0},
    {"list", "A,B", TLSC_OPT_REPEAT, apply_list, NULL, "'quoted at the start\n     and wrapped by hand", 0},
    {"help", NULL, TLSC_OPT_NOARG | TLSC_OPT_NOENV, NULL, NULL, "print this help and exit", 0},
};

static const tlsc_opts_spec_t spec = {
    .prog = "tlscache-test",
    .version = "9.9",
    .summary = "a test program",
    .man_section = 8,
    .see_also = "tlscache-server(8)",
    .env_prefix = "TLSCT_",
    .usage = "usage: tlscache-test --name NAME\n\nFirst paragraph\nwraps here.\n\nSecond one.\n\nCommands:\n  a   the first\n  b   "
             "the second\n",
    .footer = "\n.a footer line that starts with a dot\n",
    .opts = options,
    .n_opts = sizeof(options) / sizeof(options[0]),
};

/* Runs `fn` into a string the caller frees. */
static char *capture(void (*fn)(const tlsc_opts_spec_t *, FILE *))
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    ASSERT(f != NULL);
    fn(&spec, f);
    ASSERT(fclose(f) == 0);
    return buf;
}

TEST(man_page_escapes_roff_and_has_every_section)
{
    char *m = capture(tlsc_opts_man);

    ASSERT(strstr(m, "\n.TH TLSCACHE-TEST 8 \"\" \"tlscache 9.9\" \"System Administration\"\n") != NULL);
    ASSERT(strstr(m, "\n.SH NAME\ntlscache\\-test \\- a test program\n") != NULL);
    ASSERT(strstr(m, "\\fBtlscache\\-test\\fR \\-\\-name NAME\n") != NULL);
    ASSERT(strstr(m, "\n.PP\nFirst paragraph wraps here.\n.PP\nSecond one.\n") != NULL);
    ASSERT(strstr(m, "\n.PP\n.nf\nCommands:\n  a   the first\n  b   the second\n.fi\n") != NULL); /* a table keeps its lines */
    /* A help text that starts with "." or "'" would be a roff request: guarded by \&. */
    ASSERT(strstr(m, "\\fB\\-\\-name\\fR \\fINAME\\fR\n\\&.starts with a dot, has a back\\eslash and \\-dashes.\n") != NULL);
    ASSERT(strstr(m, "\\fB\\-\\-list\\fR \\fIA,B\\fR ...\n\\&'quoted at the start and wrapped by hand.\n") != NULL);
    ASSERT(strstr(m, "Default: a\\-b. Environment: \\fBTLSCT_NAME\\fR.\n") != NULL);
    ASSERT(strstr(m, "\n.SH ENVIRONMENT\n") != NULL && strstr(m, "\n.B TLSCT_LIST\n") != NULL);
    ASSERT(strstr(m, "\n.SH EXIT STATUS\n") != NULL);
    ASSERT(strstr(m, "\n.SH NOTES\n.nf\n\\&.a footer line") != NULL);
    ASSERT(strstr(m, "\n.SH SEE ALSO\ntlscache\\-server(8)\n") != NULL);
    /* No line of the page starts with a dot except the requests it means. */
    for (const char *p = m; (p = strstr(p, "\n.")) != NULL; p++)
        ASSERT(strncmp(p, "\n.TH ", 5) == 0 || strncmp(p, "\n.SH ", 5) == 0 || strncmp(p, "\n.TP\n", 5) == 0 ||
               strncmp(p, "\n.PP\n", 5) == 0 || strncmp(p, "\n.br\n", 5) == 0 || strncmp(p, "\n.B ", 4) == 0 ||
               strncmp(p, "\n.nf\n", 5) == 0 || strncmp(p, "\n.fi\n", 5) == 0);
    free(m);
}

TEST(env_example_lists_every_variable_commented_out)
{
    char *e = capture(tlsc_opts_env_example);

    ASSERT(strstr(e, "\n# --name NAME: .starts with a dot, has a back\\slash and -dashes\n# default: a-b\n#TLSCT_NAME=\n") != NULL);
    ASSERT(strstr(e, "\n# --list A,B: 'quoted at the start and wrapped by hand (comma list)\n#TLSCT_LIST=\n") != NULL);
    ASSERT(strstr(e, "TLSCT_HELP") == NULL); /* --help has no variable */
    free(e);
}

int main(void)
{
    RUN(man_page_escapes_roff_and_has_every_section);
    RUN(env_example_lists_every_variable_commented_out);
    TEST_DONE();
}
