// SPDX-License-Identifier: MIT
/*
 * The virtio-blk engine through the same I/O suite as io_uring and aio
 * (tests/unit/test-engine-common.c): each file or loop device the suite uses is exported by a
 * qemu-storage-daemon (2 queues: the suite opens a second instance beside the first) and the
 * engine reaches it through vhost-user. Once with the default ring (INDIRECT, EVENT_IDX), once
 * with plain descriptor chains. Exits 77 only when qemu-storage-daemon is not installed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qsd.h"
#include "test-engine-common.h"
#include "util/macros.h"

static char dir[64], sock[128];
static struct bk_qsd qsd = { .pid = -1 };

static int server_start(const char *path, const char *options, char *opts, size_t len)
{
	int r = bk_qsd_start(&qsd, path, sock, 2, true);

	if (r < 0) {
		fprintf(stderr, "qemu-storage-daemon would not export %s: %s\n", path,
			strerror(-r));
		return r;
	}
	snprintf(opts, len, "socket=%s%s%s", sock, options ? "," : "", options ? options : "");
	return 0;
}

static void server_stop(void)
{
	bk_qsd_kill(&qsd);
	unlink(sock);
}

static const struct engine_suite_server server = {
	.start = server_start,
	.stop = server_stop,
};

int main(void)
{
	static const char *const modes[] = { NULL, "indirect=off,event-idx=off" };
	int r = 0;

	if (!bk_qsd_binary()) {
		fprintf(stderr,
			"qemu-storage-daemon not installed (qemu-system-common): skipped\n");
		return 77;
	}
	snprintf(dir, sizeof(dir), "/tmp/bk-eng-vblk.XXXXXX");
	if (!mkdtemp(dir)) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(sock, sizeof(sock), "%s/vhost.sock", dir);
	engine_suite_server = &server;
	for (size_t i = 0; i < ARRAY_SIZE(modes) && r != 77; i++)
		r = run_engine_suite("virtio-blk", modes[i]);
	rmdir(dir);
	if (r == 77)
		return r;
	return bk_test_failures ? 1 : 0;
}
