/* SPDX-License-Identifier: MIT */
/*
 * qemu-storage-daemon as a test back-end: a file or block device exported as vhost-user-blk
 * on a unix socket, started with --daemonize (it returns once the export listens) and killed
 * with SIGKILL. The caller becomes a child subreaper so the daemon can be reaped.
 */
#ifndef BK_TEST_QSD_H
#define BK_TEST_QSD_H

#include <stdbool.h>
#include <sys/types.h>

struct bk_qsd {
	pid_t pid;	/* -1 when not running */
	char path[256]; /* what it exports */
	char sock[256]; /* its vhost-user socket */
	char pidfile[300];
	unsigned int queues;
	bool writable;
	bool direct; /* cache.direct=on (O_DIRECT), dropped where the filesystem refuses */
};

/* The installed qemu-storage-daemon, or NULL (tests exit 77). */
const char *bk_qsd_binary(void);

/*
 * Export @path on @sock with @queues queues. Tries O_DIRECT first, then buffered. Returns 0,
 * -ENOENT when the daemon is not installed, -EIO when it would not start.
 */
int bk_qsd_start(struct bk_qsd *q, const char *path, const char *sock, unsigned int queues,
		 bool writable);
/* Start it again with the same settings (after bk_qsd_kill). */
int bk_qsd_restart(struct bk_qsd *q);
/* SIGKILL and reap; no-op when not running. */
void bk_qsd_kill(struct bk_qsd *q);

#endif
