/*
 * libFuzzer target for the PROXY protocol parser (proto/proxyhdr.c, --accept-proxy).
 * Properties:
 * - the result is -1, 0, or a length no larger than the input (and than the limits: 107 bytes
 *   for v1, TLSC_PROXYHDR_IN_MAX for v2);
 * - parsing is a function of the header's bytes only: more bytes after a header do not change
 *   its length or addresses, and a prefix of a header asks for more (0);
 * - a header with TCP addresses, written back as v1 and as v2, parses to the same addresses.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proxyhdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tlsc_proxyhdr_addrs_t a, b;
    unsigned char *copy, v2[TLSC_PROXYHDR_V2_MAX];
    char v1[TLSC_PROXYHDR_V1_MAX];
    tlsc_proxyhdr_tls_t t = {.version = "TLSv1.3", .cipher = "C"};
    int n, m;

    /* A copy of exactly `size` bytes, so ASan sees any read past the end. */
    if ((copy = malloc(size ? size : 1)) == NULL)
        return 0;
    memcpy(copy, data, size);
    n = tlsc_proxyhdr_parse(copy, size, &a);
    if (n < -1 || (size_t)(n > 0 ? n : 0) > size || n > TLSC_PROXYHDR_IN_MAX)
        abort();
    if (n > 0) {
        if (memcmp(copy, "PROXY ", 6) == 0 && n > 107)
            abort();
        if (tlsc_proxyhdr_parse(copy, (size_t)n - 1, &b) != 0)
            abort();
        if (tlsc_proxyhdr_parse(copy, (size_t)n, &b) != n || memcmp(&a, &b, sizeof(a)) != 0)
            abort();
        if (a.family == 4 || a.family == 6) {
            if ((m = tlsc_proxyhdr_v1(&a, v1, sizeof(v1))) <= 0 ||
                tlsc_proxyhdr_parse((const unsigned char *)v1, (size_t)m, &b) != m || memcmp(&a, &b, sizeof(a)) != 0)
                abort();
            if ((m = tlsc_proxyhdr_v2(&a, &t, v2, sizeof(v2))) <= 0 || tlsc_proxyhdr_parse(v2, (size_t)m, &b) != m ||
                memcmp(&a, &b, sizeof(a)) != 0)
                abort();
        }
    }
    free(copy);
    return 0;
}
