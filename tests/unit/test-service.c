// SPDX-License-Identifier: MIT
/*
 * The service glue: READY=1, STATUS= with device counts (and refreshed when they change),
 * WATCHDOG=1 from the loop, STOPPING=1, and the control socket, over a test-only device list.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "blanket/ctl.h"
#include "device.h"
#include "loop.h"
#include "service.h"
#include "util/list.h"
#include "util/log.h"
#include "check.h"

static struct list_head devices = LIST_HEAD_INIT(devices);
static struct bk_device devs[2];
static const struct bk_backend_ops ops = { .kind = "vbd", .log_name = "vbd" };
static struct bk_loop *loop;
static int notify_fd;
static unsigned int watchdogs;

static struct list_head *get_devices(void *data)
{
	return &devices;
}

static int get_error(void *data, struct bk_device *dev, char *buf, size_t len)
{
	if (dev != &devs[1])
		return 0;
	snprintf(buf, len, "22 bad ring-page-order");
	return 1;
}

/*
 * Wait (bounded by loop turns) for a notification starting with @prefix; WATCHDOG=1 pings
 * in between are counted. Returns the message or NULL.
 */
static const char *wait_msg(const char *prefix, int turns)
{
	static char buf[512];

	for (int t = 0; t < turns; t++) {
		ssize_t n;

		while ((n = recv(notify_fd, buf, sizeof(buf) - 1, MSG_DONTWAIT)) > 0) {
			buf[n] = '\0';
			if (strcmp(buf, "WATCHDOG=1") == 0)
				watchdogs++;
			if (strncmp(buf, prefix, strlen(prefix)) == 0)
				return buf;
		}
		bk_loop_run_once(loop, 20);
	}
	return NULL;
}

static void add_dev(struct bk_device *d, uint32_t domid, enum bk_xenbus_state st)
{
	d->ops = &ops;
	d->domid = domid;
	d->devid = 51712;
	d->state = st;
	snprintf(d->name, sizeof(d->name), "vbd %u/51712", domid);
	list_add_tail(&d->link, &devices);
}

int main(void)
{
	char dir[] = "/tmp/test-service.XXXXXX", npath[100], cpath[100], pid[32];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct bk_service_params p = { .devices = get_devices,
				       .device_error = get_error,
				       .platform = "sim" };
	struct bk_service *svc = NULL;
	const char *m;

	bk_log_set_prefix(0);
	if (!mkdtemp(dir) || bk_loop_new(&loop) < 0)
		return 1;
	snprintf(npath, sizeof(npath), "%s/notify", dir);
	snprintf(cpath, sizeof(cpath), "%s/run/control", dir);
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memcpy(sa.sun_path, npath, strlen(npath) + 1);
	CHECK(bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	setenv("NOTIFY_SOCKET", npath, 1);
	setenv("WATCHDOG_USEC", "40000", 1); /* ping every 20 ms */
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);

	add_dev(&devs[0], 5, BK_XB_CONNECTED);
	add_dev(&devs[1], 6, BK_XB_CLOSING);

	p.loop = loop;
	p.control_socket = cpath;
	CHECK(bk_service_start(&p, &svc) == 0);
	if (!svc)
		return 1;
	CHECK(access(cpath, F_OK) == 0);

	bk_service_ready(svc);
	CHECK(wait_msg("READY=1", 1) != NULL);
	m = wait_msg("STATUS=", 1);
	CHECK(m &&
	      strcmp(m, "STATUS=2 devices: 1 connected, 0 connecting, 0 closing, 1 failed") == 0);

	/* Counts change: the periodic refresh reports it. */
	devs[0].state = BK_XB_INITWAIT;
	m = wait_msg("STATUS=", 500);
	CHECK(m &&
	      strcmp(m, "STATUS=2 devices: 0 connected, 1 connecting, 0 closing, 1 failed") == 0);

	/* The loop feeds the watchdog. */
	for (int i = 0; i < 200 && watchdogs < 3; i++)
		wait_msg("WATCHDOG=1", 1);
	CHECK(watchdogs >= 3);

	/* The control socket answers STATUS with the same counts. */
	{
		struct sockaddr_un ca = { .sun_family = AF_UNIX };
		struct bk_ctl_hdr h;
		struct bk_ctl_status st;
		uint8_t buf[sizeof(h) + sizeof(st)];
		size_t have = 0;
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		memcpy(ca.sun_path, cpath, strlen(cpath) + 1);
		CHECK(connect(fd, (struct sockaddr *)&ca, sizeof(ca)) == 0);
		bk_ctl_hdr_encode(&h, BK_CTL_REQ_STATUS, 0, 0);
		CHECK(send(fd, &h, sizeof(h), MSG_NOSIGNAL) == sizeof(h));
		for (int t = 0; t < 1000 && have < sizeof(buf); t++) {
			ssize_t n = recv(fd, buf + have, sizeof(buf) - have, MSG_DONTWAIT);

			if (n > 0)
				have += (size_t)n;
			else
				bk_loop_run_once(loop, 5);
		}
		CHECK(have == sizeof(buf));
		CHECK(bk_ctl_hdr_decode(buf, sizeof(st), &h) == 0 &&
		      h.type == (BK_CTL_REQ_STATUS | BK_CTL_REPLY));
		memcpy(&st, buf + sizeof(h), sizeof(st));
		bk_ctl_status_swap(&st);
		CHECK(st.nr_devices == 2 && st.nr_failed == 1 && st.nr_connecting == 1);
		close(fd);
	}

	bk_service_stopping(svc);
	CHECK(wait_msg("STOPPING=1", 1) != NULL);
	m = wait_msg("STATUS=", 1);
	CHECK(m && strncmp(m, "STATUS=stopping, 2 devices", 26) == 0);

	bk_service_free(svc);
	bk_service_free(NULL);
	CHECK(access(cpath, F_OK) < 0);
	CHECK(bk_loop_nr_objects(loop) == 0);

	/* Outside systemd: no watchdog, notifications are no-ops, the socket still works. */
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	CHECK(bk_service_start(&p, &svc) == 0);
	bk_service_ready(svc);
	bk_service_stopping(svc);
	bk_service_free(svc);
	CHECK(bk_loop_nr_objects(loop) == 0);

	close(notify_fd);
	unlink(npath);
	snprintf(cpath, sizeof(cpath), "%s/run", dir);
	rmdir(cpath);
	rmdir(dir);
	bk_loop_free(loop);
	if (bk_test_failures) {
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
		return 1;
	}
	return 0;
}
