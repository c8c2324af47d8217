/*
 * This file's one job: a worker's ticket keys — received from tlscache-daemon, applied to the
 * holder, relayed to the master, and watched so that losing the current key is said aloud.
 */

#include "keyring.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "keyd.h"
#include "log.h"

struct tlsc_keyring_s {
    tlsc_tickets_t *tickets;
    tlsc_keyd_t *keyd;
    int master_link;
    int had_current; /* -1 = not yet known */
};

/* Big, and holds secrets: static, wiped after use. */
static tlsc_keyproto_msg_t relay_msg;
static unsigned char relay_buf[TLSC_KEYPROTO_ENCODE_MAX];

/* Tells the master, so a worker respawned while the daemon is away starts with these keys. */
static void relay(tlsc_keyring_t *k, const tlsc_keyproto_keyset_t *set)
{
    size_t len;

    relay_msg.type = TLSC_KEYPROTO_KEYSET;
    relay_msg.u.keyset = *set;
    if (tlsc_keyproto_encode(&relay_msg, relay_buf, sizeof(relay_buf), &len) != 0 ||
        send(k->master_link, relay_buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
        tlsc_log_warn("could not hand key set epoch %llu to the master", (unsigned long long)set->epoch);
    tlsc_keyproto_msg_wipe(&relay_msg);
    OPENSSL_cleanse(relay_buf, sizeof(relay_buf));
}

static int on_keyset(tlsc_keyd_t *kd, const tlsc_keyproto_keyset_t *set, void *data)
{
    tlsc_keyring_t *k = data;
    int rc;

    if ((rc = tlsc_keyd_tickets_apply(kd, set, k->tickets)) != 0)
        return rc;
    if (k->master_link >= 0)
        relay(k, set);
    tlsc_keyring_tick(k);
    return 0;
}

/* The daemon's window: keys that would live longer than it allows are refused from now on. */
static void on_window(tlsc_keyd_t *kd, uint32_t rotate, uint32_t lifetime, uint32_t lead, void *data)
{
    tlsc_keyring_t *k = data;

    tlsc_keyd_tickets_window(kd, rotate, lifetime, lead, k->tickets);
}

static void on_held(tlsc_keyd_t *kd, tlsc_keyproto_keyset_t *out, void *data)
{
    tlsc_keyring_t *k = data;

    tlsc_tickets_export(k->tickets, out);
}

int tlsc_keyring_start(uv_loop_t *loop, const tlsc_config_t *cfg, unsigned id, tlsc_keyproto_keyset_t *held, int master_link,
                       tlsc_keyring_t **out)
{
    tlsc_keyring_t *k;
    char err[512];
    int rc = -1;

    if ((k = calloc(1, sizeof(*k))) == NULL || (k->tickets = tlsc_tickets_new(NULL, NULL)) == NULL) {
        tlsc_log_error("cannot allocate the ticket key holder");
        goto done;
    }
    k->master_link = master_link;
    k->had_current = -1;
    if (held != NULL && held->count > 0 && tlsc_tickets_apply(k->tickets, held, 0) != 0)
        tlsc_log_warn("the master's ticket keys were refused; waiting for the daemon");
    tlsc_keyd_options_t ko = {
        .address = cfg->keyd,
        .secret_file = cfg->keyd_secret_file,
        .node = cfg->node,
        .worker = id,
        .on_keyset = on_keyset,
        .get_held = on_held,
        .on_window = on_window,
        .data = k,
    };
    if (tlsc_keyd_new(loop, &ko, &k->keyd, err, sizeof(err)) != 0) {
        tlsc_log_error("--keyd %s: %s", cfg->keyd, err);
        goto done;
    }
    *out = k;
    k = NULL;
    rc = 0;
done:
    tlsc_keyring_free(k);
    if (held != NULL) {
        OPENSSL_cleanse(held, sizeof(*held));
        free(held);
    }
    return rc;
}

tlsc_tickets_t *tlsc_keyring_tickets(tlsc_keyring_t *k)
{
    return k->tickets;
}

void tlsc_keyring_tick(tlsc_keyring_t *k)
{
    unsigned char name[TLSC_KEYPROTO_NAME_LEN], key[32];
    int has = tlsc_tickets_current_seal_key(k->tickets, name, key) == 0;

    OPENSSL_cleanse(key, sizeof(key));
    if (has == k->had_current)
        return;
    if (has)
        tlsc_log_info("a current ticket key is held: new clients get tickets");
    else if (k->had_current == 1)
        tlsc_log_warn("no current ticket key: new clients get no tickets until the daemon pushes one");
    else
        tlsc_log_info("no ticket key yet: new clients get no tickets until the daemon is reached");
    k->had_current = has;
}

void tlsc_keyring_close(tlsc_keyring_t *k)
{
    if (k != NULL && k->keyd != NULL) {
        tlsc_keyd_close(k->keyd);
        k->keyd = NULL;
    }
}

void tlsc_keyring_free(tlsc_keyring_t *k)
{
    if (k == NULL)
        return;
    tlsc_tickets_free(k->tickets);
    free(k);
}
