/* SPDX-License-Identifier: MIT */
/*
 * The systemd notification protocol without libsystemd: datagrams of "KEY=VALUE\n" lines to
 * the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or '@' for the abstract namespace),
 * optionally carrying file descriptors (FDSTORE=1). Outside systemd every call is a no-op
 * returning 0.
 *
 * Messages blanketd sends: READY=1 once the xenstore watches are armed, STATUS=<device counts>,
 * WATCHDOG=1 from a loop timer at half of $WATCHDOG_USEC, STOPPING=1 on shutdown.
 */
#ifndef BK_SDNOTIFY_H
#define BK_SDNOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/macros.h"

struct bk_loop;

/* Send @msg (one or more "KEY=VALUE" lines). 1 sent, 0 not under systemd, -errno on failure. */
int bk_sd_notify(const char *msg);
int bk_sd_notifyf(const char *fmt, ...) _printf_(1, 2);

/*
 * Hand @n descriptors to systemd's fd store under @name (FDSTORE=1, FDNAME=@name); they come
 * back through $LISTEN_FDS / $LISTEN_FDNAMES after a restart (see bk_sd_listen_fds). Needs
 * FileDescriptorStoreMax= in the unit. 1 sent, 0 not under systemd, -errno on failure.
 */
int bk_sd_notify_fds(const char *name, const int *fds, unsigned int n);
/* Ask systemd to drop the stored descriptors named @name (FDSTOREREMOVE=1). */
int bk_sd_fdstore_remove(const char *name);

/*
 * Descriptors passed by systemd ($LISTEN_PID must be us): returns how many (0 if none), they
 * start at fd 3. With @ret_names, a malloc'd NULL-terminated array of names from
 * $LISTEN_FDNAMES (free with bk_sd_names_free). Marks them close-on-exec and unsets the
 * variables so children do not inherit them.
 */
int bk_sd_listen_fds(char ***ret_names);
void bk_sd_names_free(char **names);

/*
 * The watchdog interval in microseconds from $WATCHDOG_USEC (and $WATCHDOG_PID if set, which
 * must be us). 0 when no watchdog is requested, -EINVAL if malformed.
 */
int bk_sd_watchdog_usec(uint64_t *ret_usec);

/*
 * Feed the watchdog from @loop: a timer sending WATCHDOG=1 at half the interval. NULL-safe
 * free; *ret stays NULL (and 0 is returned) when there is no watchdog.
 */
struct bk_sd_watchdog;
int bk_sd_watchdog_start(struct bk_loop *loop, struct bk_sd_watchdog **ret);
void bk_sd_watchdog_free(struct bk_sd_watchdog *w);

#endif
