/* SPDX-License-Identifier: MIT */
/*
 * What makes blanketd a well-behaved service, kept out of main.c: the control socket, and the
 * systemd notifications (READY=1, STATUS= with device counts refreshed from a timer,
 * WATCHDOG=1 from the loop, STOPPING=1).
 */
#ifndef BK_SERVICE_H
#define BK_SERVICE_H

#include <stddef.h>

struct bk_core;
struct bk_device;
struct bk_loop;
struct bk_service;
struct list_head;

struct bk_service_params {
	struct bk_loop *loop;
	/* Control socket path (the control-socket key or --control-socket); NULL: none. */
	const char *control_socket;
	/* "xen" or "sim", reported by `blanketctl version`. */
	const char *platform;
	/*
	 * Where the devices come from. With @core set, its device list and each device's
	 * be_path/error node; otherwise @devices (tests), and @device_error if not NULL.
	 */
	struct bk_core *core;
	struct list_head *(*devices)(void *data);
	int (*device_error)(void *data, struct bk_device *dev, char *buf, size_t len);
	void *data;
};

/* Open the control socket and start feeding the watchdog (if systemd asked for one). */
int bk_service_start(const struct bk_service_params *p, struct bk_service **ret);
/* Startup finished (xenstore watches armed): READY=1 and a first STATUS=. */
void bk_service_ready(struct bk_service *s);
/* Shutdown begins: STOPPING=1; the control socket keeps answering while devices drain. */
void bk_service_stopping(struct bk_service *s);
/* NULL-safe: close the control socket (unlinking it) and stop the timers. */
void bk_service_free(struct bk_service *s);

#endif
