#include "clienthello.h"

#include <string.h>

static size_t get16(const unsigned char *p)
{
    return (size_t)p[0] << 8 | p[1];
}

int tlsc_clienthello_sni(const unsigned char *ext, size_t len, char out[TLSC_SNI_MAX + 1])
{
    size_t list_len, pos;

    /* Lengths first (decode_error), then the values (illegal_parameter). */
    if (len < 2)
        return TLSC_CH_DECODE_ERROR;
    list_len = get16(ext);
    if (list_len != len - 2 || list_len == 0)
        return TLSC_CH_DECODE_ERROR;
    /* ServerNameList: ServerName server_name_list<1..2^16-1>, each { uint8 name_type;
     * opaque HostName<1..2^16-1>; }. Every entry is framed before any is used. */
    for (pos = 2; pos < len;) {
        size_t name_len;

        if (len - pos < 3)
            return TLSC_CH_DECODE_ERROR;
        name_len = get16(ext + pos + 1);
        pos += 3;
        if (name_len == 0 || name_len > len - pos)
            return TLSC_CH_DECODE_ERROR;
        pos += name_len;
    }
    for (pos = 2; pos < len;) {
        unsigned type = ext[pos];
        size_t name_len = get16(ext + pos + 1);

        pos += 3;
        if (type == 0) {
            if (name_len > TLSC_SNI_MAX)
                return TLSC_CH_ILLEGAL_PARAMETER;
            for (size_t i = 0; i < name_len; i++) {
                unsigned char c = ext[pos + i];
                /* Letters, digits, '-', '.', '_' and '*' only: a NUL or a control byte ends it. */
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                      c == '_' || c == '*'))
                    return TLSC_CH_ILLEGAL_PARAMETER;
                out[i] = (char)(c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c);
            }
            out[name_len] = '\0';
            return 0;
        }
        pos += name_len;
    }
    return TLSC_CH_ILLEGAL_PARAMETER; /* well formed, but no host_name in it */
}

int tlsc_clienthello_offers_tls13(const unsigned char *ext, size_t len)
{
    size_t n;

    if (len < 1)
        return TLSC_CH_DECODE_ERROR;
    n = ext[0];
    if (n != len - 1 || n < 2 || n % 2 != 0)
        return TLSC_CH_DECODE_ERROR;
    for (size_t i = 1; i < len; i += 2) {
        if (ext[i] == 0x03 && ext[i + 1] == 0x04)
            return 1;
    }
    return 0;
}

int tlsc_clienthello_psk_identity(const unsigned char *ext, size_t len, const unsigned char **id, size_t *id_len)
{
    size_t ids_len, n;

    /* OfferedPsks: PskIdentity identities<7..2^16-1>; PskBinderEntry binders<33..2^16-1>; */
    if (len < 2)
        return -1;
    ids_len = get16(ext);
    if (ids_len < 7 || ids_len > len - 2)
        return -1;
    /* PskIdentity: opaque identity<1..2^16-1>; uint32 obfuscated_ticket_age; */
    n = get16(ext + 2);
    if (n == 0 || n + 2 + 4 > ids_len)
        return -1;
    /* The binders must follow the identities, at least their length field. */
    if (len - 2 - ids_len < 2)
        return -1;
    *id = ext + 4;
    *id_len = n;
    return 0;
}
