// SPDX-License-Identifier: MIT
/* blanketctl's control protocol client (see client.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client.h"

int client_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}

/* Wait for @events on @fd; -ETIMEDOUT after CLIENT_TIMEOUT_S. */
static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int r;

	do {
		r = poll(&p, 1, CLIENT_TIMEOUT_S * 1000);
	} while (r < 0 && errno == EINTR);
	if (r < 0)
		return -errno;
	return r == 0 ? -ETIMEDOUT : 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t n;
		int r = wait_fd(fd, POLLOUT);

		if (r < 0)
			return r;
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int read_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n;
		int r = wait_fd(fd, POLLIN);

		if (r < 0)
			return r;
		n = recv(fd, p, len, MSG_DONTWAIT);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int transport_error(int r, char *err, size_t err_len)
{
	if (r == -ETIMEDOUT)
		snprintf(err, err_len, "blanketd did not answer within %d s", CLIENT_TIMEOUT_S);
	else if (r == -ECONNRESET || r == -EPIPE)
		snprintf(err, err_len, "blanketd closed the connection");
	else
		snprintf(err, err_len, "control socket: %s", strerror(-r));
	return r;
}

int client_request(int fd, uint16_t type, const void *payload, uint32_t len, uint8_t **ret_payload,
		   uint32_t *ret_len, char *err, size_t err_len)
{
	struct bk_ctl_hdr h;
	uint8_t *buf;
	int r;

	bk_ctl_hdr_encode(&h, type, len, 0);
	r = write_all(fd, &h, sizeof(h));
	if (r == 0 && len)
		r = write_all(fd, payload, len);
	if (r == 0)
		r = read_all(fd, &h, sizeof(h));
	if (r < 0)
		return transport_error(r, err, err_len);
	r = bk_ctl_hdr_decode(&h, BK_CTL_MAX_REPLY, &h);
	if (r == -EPROTONOSUPPORT) {
		snprintf(err, err_len, "blanketd speaks control protocol version %u, blanketctl %u",
			 h.version, BK_CTL_VERSION);
		return r;
	}
	if (r < 0) {
		snprintf(err, err_len, "malformed reply from blanketd (%s)", strerror(-r));
		return r;
	}
	buf = malloc(h.length ? h.length : 1);
	if (!buf)
		return -ENOMEM;
	r = read_all(fd, buf, h.length);
	if (r < 0) {
		free(buf);
		return transport_error(r, err, err_len);
	}
	if (h.type == BK_CTL_ERROR) {
		struct bk_ctl_error e = { 0 };

		memcpy(&e, buf, h.length < sizeof(e) ? h.length : sizeof(e));
		e.msg[sizeof(e.msg) - 1] = '\0';
		free(buf);
		snprintf(err, err_len, "%s", e.msg[0] ? e.msg : strerror(-h.status));
		return h.status < 0 ? h.status : -EIO;
	}
	if (h.type != (type | BK_CTL_REPLY)) {
		free(buf);
		snprintf(err, err_len, "unexpected reply type 0x%x from blanketd", h.type);
		return -EBADMSG;
	}
	*ret_payload = buf;
	*ret_len = h.length;
	return 0;
}
