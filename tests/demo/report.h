/* SPDX-License-Identifier: MIT */
/* blanketd-simdemo's output: progress, verdicts, the results file, blanketctl (report.c). */
#ifndef BK_SIMDEMO_REPORT_H
#define BK_SIMDEMO_REPORT_H

#include <stdbool.h>

#include "simdemo.h"

struct bk_loop;

/* One line per guest: ops and bytes so far. */
void sd_report_progress(const struct sd_guest *gs, unsigned int n, double elapsed);
/* PASS/FAIL per guest with its counters; true if every guest passed. */
bool sd_report_verdicts(const struct sd_guest *gs, unsigned int n, double elapsed);
/*
 * The results file, JSON, written to PATH.tmp then renamed (a reader polling for PATH sees it
 * whole): per device its name, verdict and the bytes the guest wrote and read.
 */
int sd_report_results(const char *path, const struct sd_guest *gs, unsigned int n,
		      const char *socket, bool serving);
/*
 * Run `CTL --socket SOCKET ARGS...` (stdout and stderr shared with ours) while pumping @loop.
 * Returns its exit status, or -errno (-ETIMEDOUT: killed after about 30 s).
 */
int sd_run_blanketctl(struct bk_loop *loop, const char *ctl, const char *socket,
		      const char *const *args);

#endif
