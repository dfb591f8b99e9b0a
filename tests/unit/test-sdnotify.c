// SPDX-License-Identifier: MIT
/* sd_notify without libsystemd: messages, abstract sockets, fd store, LISTEN_FDS, watchdog. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop.h"
#include "sdnotify.h"
#include "util/log.h"
#include "check.h"

/* Receive one datagram (non-blocking) with up to 4 fds; returns its length or -1. */
static ssize_t recv_msg(int s, char *buf, size_t len, int *fds, unsigned int *nfds)
{
	char ctrl[CMSG_SPACE(sizeof(int) * 4)];
	struct iovec iov = { .iov_base = buf, .iov_len = len - 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctrl,
			     .msg_controllen = sizeof(ctrl) };
	ssize_t n = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n < 0)
		return -1;
	buf[n] = '\0';
	if (nfds)
		*nfds = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && fds && nfds) {
			*nfds = (unsigned int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			memcpy(fds, CMSG_DATA(c), *nfds * sizeof(int));
		}
	}
	return n;
}

static int bind_dgram(const char *name, bool abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len;
	int s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", name);
	len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + !abstract);
	if (abstract)
		sa.sun_path[0] = '\0';
	CHECK(bind(s, (struct sockaddr *)&sa, len) == 0);
	return s;
}

static void test_no_socket(void)
{
	uint64_t usec = 1;
	struct bk_loop *loop;
	struct bk_sd_watchdog *w = (void *)1;

	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	CHECK(bk_sd_notify("READY=1") == 0);
	CHECK(bk_sd_watchdog_usec(&usec) == 0 && usec == 0);
	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_sd_watchdog_start(loop, &w) == 0 && w == NULL);
	bk_loop_free(loop);
	setenv("NOTIFY_SOCKET", "relative/path", 1);
	CHECK(bk_sd_notify("READY=1") == -EINVAL);
}

static void test_messages(const char *dir)
{
	char path[200], buf[512];
	int s, p[2], fds[4];
	unsigned int nfds;

	snprintf(path, sizeof(path), "%s/notify", dir);
	s = bind_dgram(path, false);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK(bk_sd_notify("READY=1") == 1);
	CHECK(recv_msg(s, buf, sizeof(buf), NULL, NULL) == 7 && strcmp(buf, "READY=1") == 0);
	CHECK(bk_sd_notifyf("STATUS=%u devices, %u connected", 3U, 2U) == 1);
	CHECK(recv_msg(s, buf, sizeof(buf), NULL, NULL) > 0);
	CHECK(strcmp(buf, "STATUS=3 devices, 2 connected") == 0);

	/* fd store: the receiver gets a working copy of the descriptor. */
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	CHECK(bk_sd_notify_fds("vbd-5-51712", &p[1], 1) == 1);
	CHECK(recv_msg(s, buf, sizeof(buf), fds, &nfds) > 0);
	CHECK(strcmp(buf, "FDSTORE=1\nFDNAME=vbd-5-51712") == 0);
	CHECK(nfds == 1);
	if (nfds == 1) {
		char c = 0;

		CHECK(write(fds[0], "x", 1) == 1);
		CHECK(read(p[0], &c, 1) == 1 && c == 'x');
		close(fds[0]);
	}
	CHECK(bk_sd_notify_fds("bad:name", &p[1], 1) == -EINVAL);
	CHECK(bk_sd_notify_fds("", &p[1], 1) == -EINVAL);
	CHECK(bk_sd_notify_fds("ok", &p[1], 0) == -EINVAL);
	CHECK(bk_sd_fdstore_remove("vbd-5-51712") == 1);
	CHECK(recv_msg(s, buf, sizeof(buf), NULL, NULL) > 0);
	CHECK(strcmp(buf, "FDSTOREREMOVE=1\nFDNAME=vbd-5-51712") == 0);
	close(p[0]);
	close(p[1]);
	close(s);
	unlink(path);

	/* Nobody listening: an error, not a hang. */
	CHECK(bk_sd_notify("READY=1") < 0);
}

static void test_abstract(void)
{
	char name[64], buf[128];
	int s;

	snprintf(name, sizeof(name), "@blanketd-test-sdnotify-%d", (int)getpid());
	s = bind_dgram(name, true);
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK(bk_sd_notify("STOPPING=1") == 1);
	CHECK(recv_msg(s, buf, sizeof(buf), NULL, NULL) > 0 && strcmp(buf, "STOPPING=1") == 0);
	close(s);
}

static void test_watchdog(const char *dir)
{
	char path[200], buf[128], pid[32];
	struct bk_sd_watchdog *w = NULL;
	struct bk_loop *loop;
	unsigned int got = 0;
	uint64_t usec;
	int s;

	snprintf(path, sizeof(path), "%s/wd", dir);
	s = bind_dgram(path, false);
	setenv("NOTIFY_SOCKET", path, 1);

	setenv("WATCHDOG_USEC", "abc", 1);
	CHECK(bk_sd_watchdog_usec(&usec) == -EINVAL);
	setenv("WATCHDOG_USEC", "4000", 1);
	setenv("WATCHDOG_PID", "1", 1); /* meant for another process */
	CHECK(bk_sd_watchdog_usec(&usec) == 0 && usec == 0);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	CHECK(bk_sd_watchdog_usec(&usec) == 0 && usec == 4000);

	CHECK(bk_loop_new(&loop) == 0);
	CHECK(bk_sd_watchdog_start(loop, &w) == 0 && w != NULL);
	/* Fed at once and then from the loop: wait for three pings, bounded by loop turns. */
	for (int turn = 0; turn < 10000 && got < 3; turn++) {
		while (recv_msg(s, buf, sizeof(buf), NULL, NULL) > 0) {
			CHECK(strcmp(buf, "WATCHDOG=1") == 0);
			got++;
		}
		if (got < 3)
			bk_loop_run_once(loop, 5);
	}
	CHECK(got >= 3);
	bk_sd_watchdog_free(w);
	bk_sd_watchdog_free(NULL);
	CHECK(bk_loop_nr_objects(loop) == 0);
	bk_loop_free(loop);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	close(s);
	unlink(path);
}

static void test_listen_fds(void)
{
	char pid[32], **names = NULL;
	int p[2];

	unsetenv("LISTEN_PID");
	CHECK(bk_sd_listen_fds(&names) == 0 && names == NULL);

	CHECK(pipe(p) == 0);
	/* Place them at 3 and 4 as systemd would (moving them out of the way first). */
	{
		int a = fcntl(p[0], F_DUPFD, 10), b = fcntl(p[1], F_DUPFD, 10);

		close(p[0]);
		close(p[1]);
		CHECK(dup2(a, 3) == 3 && dup2(b, 4) == 4);
		close(a);
		close(b);
	}
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "2", 1);
	setenv("LISTEN_FDNAMES", "control:vbd-5-51712", 1);
	CHECK(bk_sd_listen_fds(&names) == 2);
	CHECK(names && strcmp(names[0], "control") == 0 && strcmp(names[1], "vbd-5-51712") == 0 &&
	      names[2] == NULL);
	CHECK(fcntl(3, F_GETFD) & FD_CLOEXEC);
	CHECK(getenv("LISTEN_FDS") == NULL);
	bk_sd_names_free(names);
	close(3);
	close(4);

	/* For another process: ignored. */
	setenv("LISTEN_PID", "1", 1);
	setenv("LISTEN_FDS", "2", 1);
	CHECK(bk_sd_listen_fds(NULL) == 0);
	unsetenv("LISTEN_FDS");
}

int main(void)
{
	char dir[] = "/tmp/test-sdnotify.XXXXXX";

	bk_log_set_prefix(0);
	if (!mkdtemp(dir))
		return 1;
	test_no_socket();
	test_messages(dir);
	test_abstract();
	test_watchdog(dir);
	test_listen_fds();
	unsetenv("NOTIFY_SOCKET");
	rmdir(dir);
	if (bk_test_failures) {
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
		return 1;
	}
	return 0;
}
