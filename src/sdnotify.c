// SPDX-License-Identifier: MIT
/* sd_notify over a plain datagram socket (see sdnotify.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop.h"
#include "sdnotify.h"
#include "util/log.h"

#define SD_LISTEN_FDS_START 3
#define SD_FDS_MAX 253 /* SCM_MAX_FD */

/* Build the address from $NOTIFY_SOCKET; 0 if unset. */
static int notify_addr(struct sockaddr_un *sa, socklen_t *ret_len)
{
	const char *e = getenv("NOTIFY_SOCKET");
	size_t n;

	if (!e || !*e)
		return 0;
	n = strlen(e);
	if ((e[0] != '/' && e[0] != '@') || n >= sizeof(sa->sun_path))
		return -EINVAL;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, e, n);
	if (e[0] == '@')
		sa->sun_path[0] = '\0'; /* abstract namespace */
	*ret_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (e[0] == '/'));
	return 1;
}

static int send_msg(const char *msg, const int *fds, unsigned int n)
{
	struct sockaddr_un sa;
	socklen_t salen = 0;
	struct iovec iov = { .iov_base = (void *)msg, .iov_len = strlen(msg) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	_cleanup_free_ void *ctrl = NULL;
	_cleanup_close_ int fd = -1;
	int r;

	r = notify_addr(&sa, &salen);
	if (r <= 0)
		return r;
	if (n > SD_FDS_MAX)
		return -E2BIG;
	mh.msg_name = &sa;
	mh.msg_namelen = salen;
	if (n) {
		struct cmsghdr *c;

		ctrl = calloc(1, CMSG_SPACE(sizeof(int) * n));
		if (!ctrl)
			return -ENOMEM;
		mh.msg_control = ctrl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return neg_errno();
	/* Datagram to a local socket: never blocks for long; systemd reads them promptly. */
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		return neg_errno();
	return 1;
}

int bk_sd_notify(const char *msg)
{
	return send_msg(msg, NULL, 0);
}

int bk_sd_notifyf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EMSGSIZE;
	return bk_sd_notify(buf);
}

/* FDNAME may hold printable ASCII except ':' and must be 1..255 bytes. */
static bool fdname_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > 255)
		return false;
	for (const char *p = name; *p; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == ':')
			return false;
	return true;
}

int bk_sd_notify_fds(const char *name, const int *fds, unsigned int n)
{
	char msg[300];

	if (!fdname_ok(name) || !n)
		return -EINVAL;
	snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
	return send_msg(msg, fds, n);
}

int bk_sd_fdstore_remove(const char *name)
{
	char msg[300];

	if (!fdname_ok(name))
		return -EINVAL;
	snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
	return bk_sd_notify(msg);
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

void bk_sd_names_free(char **names)
{
	if (!names)
		return;
	for (char **p = names; *p; p++)
		free(*p);
	free(names);
}

static char **split_names(const char *s, unsigned int n)
{
	char **names = calloc(n + 1, sizeof(*names));

	if (!names)
		return NULL;
	for (unsigned int i = 0; i < n; i++) {
		size_t len = s ? strcspn(s, ":") : 0;

		names[i] = strndup(s ? s : "", len);
		if (!names[i]) {
			bk_sd_names_free(names);
			return NULL;
		}
		if (s)
			s = s[len] == ':' ? s + len + 1 : NULL;
	}
	return names;
}

int bk_sd_listen_fds(char ***ret_names)
{
	uint64_t pid, n;
	char **names = NULL;

	if (parse_u64(getenv("LISTEN_PID"), &pid) < 0 || pid != (uint64_t)getpid() ||
	    parse_u64(getenv("LISTEN_FDS"), &n) < 0 || n == 0)
		n = 0;
	else if (n > SD_FDS_MAX)
		return -EINVAL;
	for (uint64_t i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + (int)i;
		int fl = fcntl(fd, F_GETFD);

		if (fl < 0 || fcntl(fd, F_SETFD, fl | FD_CLOEXEC) < 0)
			return neg_errno();
	}
	if (ret_names && n) {
		names = split_names(getenv("LISTEN_FDNAMES"), (unsigned int)n);
		if (!names)
			return -ENOMEM;
	}
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	if (ret_names)
		*ret_names = names;
	return (int)n;
}

int bk_sd_watchdog_usec(uint64_t *ret_usec)
{
	const char *e = getenv("WATCHDOG_USEC"), *p = getenv("WATCHDOG_PID");
	uint64_t usec, pid;

	if (!e) {
		*ret_usec = 0;
		return 0;
	}
	if (parse_u64(e, &usec) < 0 || usec == 0)
		return -EINVAL;
	if (p) {
		if (parse_u64(p, &pid) < 0)
			return -EINVAL;
		if (pid != (uint64_t)getpid()) {
			*ret_usec = 0;
			return 0;
		}
	}
	*ret_usec = usec;
	return 0;
}

struct bk_sd_watchdog {
	struct bk_timer *timer;
};

static void watchdog_cb(void *data)
{
	int r = bk_sd_notify("WATCHDOG=1");

	if (r < 0)
		log_warn_errno(r, "sd_notify WATCHDOG=1 failed: %m");
}

int bk_sd_watchdog_start(struct bk_loop *loop, struct bk_sd_watchdog **ret)
{
	struct bk_sd_watchdog *w;
	uint64_t usec, ms;
	int r;

	r = bk_sd_watchdog_usec(&usec);
	if (r < 0)
		return log_err_errno(r, "bad WATCHDOG_USEC '%s'", getenv("WATCHDOG_USEC"));
	if (!usec) {
		*ret = NULL;
		return 0;
	}
	ms = usec / 2000; /* half the interval, in ms */
	if (ms == 0)
		ms = 1;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	r = bk_loop_add_timer(loop, ms, ms, watchdog_cb, w, &w->timer);
	if (r < 0) {
		free(w);
		return r;
	}
	/* Tell systemd at once that we are alive, then every half interval. */
	watchdog_cb(w);
	*ret = w;
	return 0;
}

void bk_sd_watchdog_free(struct bk_sd_watchdog *w)
{
	if (!w)
		return;
	bk_timer_free(w->timer);
	free(w);
}
