/* SPDX-License-Identifier: MIT */
/* blanketctl's side of the control protocol: blocking requests with a timeout. */
#ifndef BLANKETCTL_CLIENT_H
#define BLANKETCTL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "blanket/ctl.h"

/* Seconds to wait for the daemon before giving up. */
#define CLIENT_TIMEOUT_S 10

/*
 * Connect to @path. Returns the fd, or -ENOENT / -ECONNREFUSED when no daemon listens there
 * (the caller reports "not running"), or another -errno.
 */
int client_connect(const char *path);

/*
 * Send one request and read its reply. On success the payload (host order untouched: callers
 * swap) is returned as malloc'd *ret_payload of *ret_len bytes. An error reply returns its
 * status (-errno) and copies the daemon's message into @err; transport failures return -errno
 * with a message in @err too.
 */
int client_request(int fd, uint16_t type, const void *payload, uint32_t len, uint8_t **ret_payload,
		   uint32_t *ret_len, char *err, size_t err_len);

#endif
