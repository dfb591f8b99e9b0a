// SPDX-License-Identifier: MIT
/* Control socket and systemd notifications for the daemon (see service.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blanket/ctl.h"
#include "ctl.h"
#include "device.h"
#include "loop.h"
#include "sdnotify.h"
#include "service.h"
#include "util/log.h"
#include "util/macros.h"

/* How often STATUS= is refreshed (only sent when it changed). */
#define STATUS_PERIOD_MS 2000

struct bk_service {
	struct bk_loop *loop;
	struct bk_core *core;
	struct list_head *(*devices)(void *data);
	int (*device_error)(void *data, struct bk_device *dev, char *buf, size_t len);
	void *data;
	struct bk_ctl *ctl;
	struct bk_sd_watchdog *watchdog;
	struct bk_timer *status_timer;
	char last_status[160];
	bool stopping;
};

static struct list_head *core_devices(void *data)
{
	struct bk_service *s = data;

	return s->core ? bk_core_devices(s->core) : s->devices(s->data);
}

/* A device that went Closing/Closed because of bk_device_fail has be_path/error set. */
static int core_device_error(void *data, struct bk_device *dev, char *buf, size_t len)
{
	struct bk_service *s = data;
	_cleanup_free_ char *v = NULL;

	if (!s->core)
		return s->device_error ? s->device_error(s->data, dev, buf, len) : 0;
	if (bk_device_read_be(dev, "error", &v) < 0 || !v || !*v)
		return 0;
	snprintf(buf, len, "%s", v);
	return 1;
}

/* With I/O threads, the devices' state is read with every thread held (bk_core_lock_all). */
static void core_lock(void *data, bool on)
{
	struct bk_service *s = data;

	if (!s->core)
		return;
	if (on)
		bk_core_lock_all(s->core);
	else
		bk_core_unlock_all(s->core);
}

static void send_status(struct bk_service *s)
{
	struct bk_ctl_status st;
	char msg[160];

	if (!s->ctl)
		return;
	core_lock(s, true);
	bk_ctl_get_status(s->ctl, &st);
	core_lock(s, false);
	snprintf(msg, sizeof(msg),
		 "STATUS=%s%u devices: %u connected, %u connecting, %u closing, %u failed",
		 s->stopping ? "stopping, " : "", st.nr_devices, st.nr_connected, st.nr_connecting,
		 st.nr_closing, st.nr_failed);
	if (strcmp(msg, s->last_status) == 0)
		return;
	if (bk_sd_notify(msg) >= 0)
		memcpy(s->last_status, msg, sizeof(msg));
}

static void status_cb(void *data)
{
	send_status(data);
}

int bk_service_start(const struct bk_service_params *p, struct bk_service **ret)
{
	struct bk_service *s;
	int r;

	if (!p->loop || (!p->core && !p->devices))
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = p->loop;
	s->core = p->core;
	s->devices = p->devices;
	s->device_error = p->device_error;
	s->data = p->data;
	if (p->control_socket) {
		struct bk_ctl_params cp = {
			.loop = p->loop,
			.path = p->control_socket,
			.platform = p->platform,
			.devices = core_devices,
			.device_error = core_device_error,
			.lock = core_lock,
			.data = s,
		};

		r = bk_ctl_new(&cp, &s->ctl);
		if (r < 0)
			goto fail;
	}
	r = bk_sd_watchdog_start(p->loop, &s->watchdog);
	if (r < 0)
		goto fail;
	r = bk_loop_add_timer(p->loop, STATUS_PERIOD_MS, STATUS_PERIOD_MS, status_cb, s,
			      &s->status_timer);
	if (r < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	bk_service_free(s);
	return r;
}

void bk_service_ready(struct bk_service *s)
{
	int r = bk_sd_notify("READY=1");

	if (r < 0)
		log_warn_errno(r, "sd_notify READY=1 failed: %m");
	send_status(s);
}

void bk_service_stopping(struct bk_service *s)
{
	s->stopping = true;
	bk_sd_notify("STOPPING=1");
	send_status(s);
}

void bk_service_free(struct bk_service *s)
{
	if (!s)
		return;
	bk_timer_free(s->status_timer);
	bk_sd_watchdog_free(s->watchdog);
	bk_ctl_free(s->ctl);
	free(s);
}
