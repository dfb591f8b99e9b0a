// SPDX-License-Identifier: MIT
/* The daemon's runtime: platform, loop, core, signals (see daemon.h). */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon.h"
#include "device.h"
#include "loop.h"
#include "util/log.h"
#include "util/macros.h"
#include "xen/sim.h"
#include "xen/xen.h"

#define BK_DAEMON_STOP_TIMEOUT_MS 15000U

/* Backend kinds one daemon can serve (the core's own limit is BK_CORE_MAX_KINDS). */
#define BK_DAEMON_MAX_KINDS 4U

struct bk_daemon {
	struct bk_daemon_params p;
	const char *platform;
	struct bk_sim *sim; /* --platform=sim only */
	struct bk_xen *xen;
	struct bk_loop *loop;
	struct bk_core *core;
	int sigfd;
	sigset_t oldmask;
	bool mask_set;
	struct bk_watch *sigwatch;
	struct bk_timer *stop_timer;
	bool stopping;
	bool stopped;
	bool timed_out;
	const struct bk_backend_ops *served[BK_DAEMON_MAX_KINDS];
	unsigned int nr_served;
};

/* The kernel's backend drivers, one directory per kind they serve (xenbus backend bus). */
#define BK_KERNEL_BACKENDS_DIR "/sys/bus/xen-backend/drivers"

static bool kernel_serves(const char *dir, const char *kind)
{
	char path[PATH_MAX];
	struct stat st;

	if (snprintf(path, sizeof(path), "%s/%s", dir, kind) >= (int)sizeof(path))
		return false;
	return stat(path, &st) == 0;
}

static void on_stopped(void *data)
{
	struct bk_daemon *d = data;

	d->stopped = true;
	log_info("all devices shut down");
	bk_loop_quit(d->loop);
}

static void on_stop_timeout(void *data)
{
	struct bk_daemon *d = data;

	log_err("%u device(s) still shutting down after %u ms; exiting anyway",
		bk_core_nr_devices(d->core), d->p.stop_timeout_ms);
	d->timed_out = true;
	bk_loop_quit(d->loop);
}

static void daemon_stop(struct bk_daemon *d, int sig)
{
	int r;

	if (d->stopping) {
		log_notice("%s again: exiting without waiting for devices", strsignal(sig));
		d->timed_out = true;
		bk_loop_quit(d->loop);
		return;
	}
	d->stopping = true;
	log_notice("%s: shutting down %u device(s)", strsignal(sig), bk_core_nr_devices(d->core));
	if (d->p.on_stopping)
		d->p.on_stopping(d->p.data);
	r = bk_loop_add_timer(d->loop, d->p.stop_timeout_ms, 0, on_stop_timeout, d, &d->stop_timer);
	if (r < 0)
		log_warn_errno(r, "cannot arm the stop timeout: %m");
	bk_core_stop(d->core, on_stopped, d);
}

static void on_signal(void *data, int fd, unsigned int events _unused_)
{
	struct bk_daemon *d = data;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			daemon_stop(d, (int)si.ssi_signo);
			break;
		case SIGHUP:
			if (d->p.on_reload)
				d->p.on_reload(d->p.data);
			else
				log_info("SIGHUP: nothing to reload");
			break;
		default:
			break;
		}
	}
}

static int open_platform(struct bk_daemon *d)
{
	int r;

	if (strcmp(d->platform, "sim") == 0) {
		r = bk_sim_new(&d->sim);
		if (r < 0)
			return log_err_errno(r, "cannot create the simulated machine: %m");
		r = bk_sim_platform(d->sim, 0, &d->xen);
		if (r < 0)
			return log_err_errno(r, "cannot open the simulated platform: %m");
		log_notice("running on the simulated platform: no real guest will be served");
		return 0;
	}
	r = bk_xen_real_new(&d->xen);
	if (r == -ENOSYS)
		return log_err_errno(r,
				     "built without the Xen libraries: only --platform=sim works");
	if (r == -ENODEV && access("/dev/xen/privcmd", F_OK) < 0)
		return log_err_errno(r, "cannot open the Xen platform: no /dev/xen/privcmd (not a "
					"Xen domain, or xen-privcmd not loaded)");
	if (r < 0)
		return log_err_errno(r, "cannot open the Xen platform (is this a Xen domain with "
					"xenstore running?): %m");
	return 0;
}

static int setup_signals(struct bk_daemon *d)
{
	sigset_t mask;
	int r;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, &d->oldmask) < 0)
		return log_err_errno(neg_errno(), "sigprocmask: %m");
	d->mask_set = true;
	/* A closed control-socket peer must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (d->sigfd < 0)
		return log_err_errno(neg_errno(), "signalfd: %m");
	r = bk_loop_add_fd(d->loop, d->sigfd, BK_EV_READ, on_signal, d, &d->sigwatch);
	if (r < 0)
		return log_err_errno(r, "cannot watch signals: %m");
	return 0;
}

int bk_daemon_new(const struct bk_daemon_params *p, struct bk_daemon **ret)
{
	struct bk_core_params cp = { 0 };
	const char *kdir;
	struct bk_daemon *d;
	int r;

	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->p = *p;
	d->sigfd = -1;
	d->platform = p->platform ? p->platform : "xen";
	if (!d->p.stop_timeout_ms)
		d->p.stop_timeout_ms = BK_DAEMON_STOP_TIMEOUT_MS;
	if (strcmp(d->platform, "xen") != 0 && strcmp(d->platform, "sim") != 0) {
		r = -EINVAL;
		goto fail;
	}
	r = bk_loop_new(&d->loop);
	if (r < 0)
		goto fail;
	r = setup_signals(d);
	if (r < 0)
		goto fail;
	r = open_platform(d);
	if (r < 0)
		goto fail;
	cp.loop = d->loop;
	cp.xen = d->xen;
	cp.watch_coalesce_ms = p->watch_coalesce_ms;
	cp.io_threads = p->io_threads;
	r = bk_core_new(&cp, &d->core);
	if (r < 0)
		goto fail;
	kdir = p->kernel_backends_dir;
	if (!kdir && strcmp(d->platform, "xen") == 0)
		kdir = BK_KERNEL_BACKENDS_DIR;
	for (const struct bk_backend_ops *const *k = p->kinds; k && *k; k++) {
		if (kdir && kernel_serves(kdir, (*k)->kind)) {
			log_warn("the kernel's %s backend is loaded in this domain (%s/%s exists): "
				 "leaving %s devices to it; unload it (e.g. modprobe -r xen-%s) for "
				 "blanketd to serve them",
				 (*k)->kind, kdir, (*k)->kind, (*k)->kind,
				 strcmp((*k)->kind, "vif") == 0 ? "netback" : "blkback");
			continue;
		}
		if (d->nr_served >= BK_DAEMON_MAX_KINDS) {
			r = -E2BIG;
			log_err("too many backend kinds (%s)", (*k)->kind);
			goto fail;
		}
		r = bk_core_register(d->core, *k);
		if (r < 0) {
			log_err_errno(r, "cannot register backend kind %s: %m", (*k)->kind);
			goto fail;
		}
		d->served[d->nr_served++] = *k;
	}
	*ret = d;
	return 0;
fail:
	bk_daemon_free(d);
	return r;
}

bool bk_daemon_serves(const struct bk_daemon *d, const char *kind)
{
	for (unsigned int i = 0; i < d->nr_served; i++)
		if (strcmp(d->served[i]->kind, kind) == 0)
			return true;
	return false;
}

int bk_daemon_start(struct bk_daemon *d)
{
	uint32_t domid = bk_core_domid(d->core);
	int r;

	/* Before any device is picked up: only journals of devices that no longer exist go. */
	if (d->p.journal_dir)
		bk_core_sweep_journals(d->core, d->p.journal_dir);
	r = bk_core_start(d->core);
	if (r < 0)
		return r;
	log_info("blanketd started in domain %u on the %s platform", domid, d->platform);
	return 0;
}

int bk_daemon_run(struct bk_daemon *d)
{
	int r = bk_loop_run(d->loop);

	if (r < 0)
		return r;
	return d->timed_out ? -ETIMEDOUT : 0;
}

void bk_daemon_free(struct bk_daemon *d)
{
	if (!d)
		return;
	bk_timer_free(d->stop_timer);
	bk_watch_free(d->sigwatch);
	if (d->sigfd >= 0)
		close(d->sigfd);
	if (d->core && bk_core_nr_devices(d->core) > 0) {
		/* Devices still hold guest resources: let process exit release them. */
		log_warn("leaving %u device(s) to process exit", bk_core_nr_devices(d->core));
		if (d->mask_set)
			sigprocmask(SIG_SETMASK, &d->oldmask, NULL);
		free(d);
		return;
	}
	bk_core_free(d->core);
	bk_xen_free(d->xen);
	bk_sim_free(d->sim);
	bk_loop_free(d->loop);
	if (d->mask_set)
		sigprocmask(SIG_SETMASK, &d->oldmask, NULL);
	free(d);
}

struct bk_loop *bk_daemon_loop(struct bk_daemon *d)
{
	return d->loop;
}

struct bk_core *bk_daemon_core(struct bk_daemon *d)
{
	return d->core;
}

struct bk_xen *bk_daemon_xen(struct bk_daemon *d)
{
	return d->xen;
}

struct bk_sim *bk_daemon_sim(struct bk_daemon *d)
{
	return d->sim;
}

const char *bk_daemon_platform(const struct bk_daemon *d)
{
	return d->platform;
}
