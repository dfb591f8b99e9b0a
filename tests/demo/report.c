// SPDX-License-Identifier: MIT
/*
 * What blanketd-simdemo prints and writes: progress lines, each guest's verdict, the results
 * file (JSON), and the daemon's own view through the real blanketctl, run against the demo's
 * control socket while the loop keeps serving it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "loop.h"
#include "report.h"
#include "util/macros.h"

#define MIB (1024.0 * 1024.0)
/* blanketctl gets this many loop turns of at most 10 ms before it is killed. */
#define CTL_TURNS 3000

void sd_report_progress(const struct sd_guest *gs, unsigned int n, double elapsed)
{
	for (unsigned int i = 0; i < n; i++) {
		const struct sd_guest *g = &gs[i];

		if (!g->bf)
			continue;
		printf("[%6.1fs] guest %u %-12s %8" PRIu64 " ops  %8.1f MiB written  %8.1f MiB read"
		       "  %s\n",
		       elapsed, g->domid, g->name, g->completed, (double)g->bytes_written / MIB,
		       (double)g->bytes_read / MIB,
		       g->io_done	  ? "done"
		       : g->hostile_fired ? "hostile: waiting for the backend"
					  : "running");
	}
}

bool sd_report_verdicts(const struct sd_guest *gs, unsigned int n, double elapsed)
{
	bool all_ok = true;

	printf("\nGuests (%.1f s of I/O):\n", elapsed);
	for (unsigned int i = 0; i < n; i++) {
		const struct sd_guest *g = &gs[i];
		bool ok = sd_guest_ok(g);

		all_ok &= ok;
		printf("  %s guest %u %s: %" PRIu64 " ops (%" PRIu64 " reads, %" PRIu64
		       " writes, %" PRIu64 " flushes, %" PRIu64 " discards), %.1f MiB written, "
		       "%.1f MiB read, %.1f MiB verified, %" PRIu64 " errors, %" PRIu64
		       " mismatches; %u queue(s), ring order %u, indirect %u%s\n",
		       ok ? "PASS" : "FAIL", g->domid, g->name, g->completed, g->reads, g->writes,
		       g->flushes, g->discards, (double)g->bytes_written / MIB,
		       (double)g->bytes_read / MIB, (double)g->verified_bytes / MIB, g->errors,
		       g->mismatches, g->nr_queues, g->ring_order, g->max_indirect,
		       g->hostile ? " (hostile)" : "");
		if (g->verdict_why[0])
			printf("       %s\n", g->verdict_why);
	}
	return all_ok;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", (unsigned char)*s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

int sd_report_results(const char *path, const struct sd_guest *gs, unsigned int n,
		      const char *socket, bool serving)
{
	char tmp[PATH_MAX];
	FILE *f;
	int r = 0;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	f = fopen(tmp, "we");
	if (!f)
		return neg_errno();
	fprintf(f, "{\"pid\":%ld,\"serving\":%s,\"control_socket\":", (long)getpid(),
		serving ? "true" : "false");
	json_str(f, socket);
	fprintf(f, ",\"devices\":[");
	for (unsigned int i = 0; i < n; i++) {
		const struct sd_guest *g = &gs[i];

		fprintf(f, "%s\n{\"device\":", i ? "," : "");
		json_str(f, g->name);
		fprintf(f,
			",\"domid\":%u,\"devid\":%u,\"hostile\":%s,\"verdict\":\"%s\","
			"\"ops\":%" PRIu64 ",\"reads\":%" PRIu64 ",\"writes\":%" PRIu64
			",\"flushes\":%" PRIu64 ",\"discards\":%" PRIu64
			",\"bytes_written\":%" PRIu64 ",\"bytes_read\":%" PRIu64
			",\"bytes_verified\":%" PRIu64 ",\"errors\":%" PRIu64
			",\"mismatches\":%" PRIu64 ",\"queues\":%u,\"why\":",
			g->domid, g->devid, g->hostile ? "true" : "false",
			sd_guest_ok(g) ? "PASS" : "FAIL", g->completed, g->reads, g->writes,
			g->flushes, g->discards, g->bytes_written, g->bytes_read, g->verified_bytes,
			g->errors, g->mismatches, g->nr_queues);
		json_str(f, g->verdict_why);
		fputc('}', f);
	}
	fprintf(f, "\n]}\n");
	if (fflush(f) != 0 || ferror(f))
		r = -EIO;
	if (fclose(f) != 0 && !r)
		r = -EIO;
	if (!r && rename(tmp, path) < 0)
		r = neg_errno();
	if (r < 0)
		unlink(tmp);
	return r;
}

int sd_run_blanketctl(struct bk_loop *loop, const char *ctl, const char *socket,
		      const char *const *args)
{
	const char *argv[16] = { ctl, "--socket", socket };
	int status = 0;
	pid_t pid;

	for (unsigned int i = 0; args[i] && i < 12; i++)
		argv[3 + i] = args[i];
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return neg_errno();
	if (pid == 0) {
		sigset_t all;

		/* The daemon blocks its signals; the tool gets the default mask back. */
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execv(ctl, (char *const *)argv);
		fprintf(stderr, "simdemo: cannot run %s: %s\n", ctl, strerror(errno));
		_exit(127);
	}
	/* The daemon's loop keeps turning, or blanketctl would wait on us forever. */
	for (unsigned int turn = 0; turn < CTL_TURNS; turn++) {
		pid_t w = waitpid(pid, &status, WNOHANG);

		if (w == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -EINTR;
		if (w < 0)
			return neg_errno();
		bk_loop_run_once(loop, 10);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -ETIMEDOUT;
}
