#ifndef TLSC_DAEMON_ADMIN_H
#define TLSC_DAEMON_ADMIN_H

/*
 * tlscache-daemon's admin endpoint (--admin, default 127.0.0.1:9721), on common/http.c watched
 * by a uv_poll_t: /metrics (epoch, the keys' roles and ages — never a key's name or bytes —,
 * connected workers and how many have not acknowledged the current epoch, the link counters),
 * /healthz (200 while the process runs) and /readyz (200 once the window is decided and holds
 * a current key; 503 with the reason during the restart grace period).
 */

#include <uv.h>

#include "daemon.h"

typedef struct tlsc_daemon_admin_s tlsc_daemon_admin_t;

/** Binds `addr` and serves on `loop`. NULL with one line in `err` naming --admin. */
tlsc_daemon_admin_t *tlsc_daemon_admin_start(uv_loop_t *loop, const char *addr, tlsc_daemon_t *d, char *err, size_t errlen);
/** Stops serving; memory is freed once the loop ran the handles' closes (NULL is fine). */
void tlsc_daemon_admin_close(tlsc_daemon_admin_t *a);

#endif
