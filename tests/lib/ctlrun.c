// SPDX-License-Identifier: MIT
/* Run blanketctl against an in-process daemon: see ctlrun.h. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ctlrun.h"
#include "loop.h"
#include "service.h"

int bk_ctlrun_service(struct bk_loop *loop, struct bk_core *core, const char *dir, char *sock,
		      size_t len, struct bk_service **ret)
{
	struct bk_service_params sp = { .platform = "sim", .loop = loop, .core = core };

	snprintf(sock, len, "%s/control", dir);
	sp.control_socket = sock;
	*ret = NULL;
	return bk_service_start(&sp, ret);
}

int bk_ctlrun(struct bk_loop *loop, const char *blanketctl, const char *sock,
	      const char *const *args, unsigned int flags, char *out, size_t size)
{
	const char *argv[16] = { blanketctl, "-s", sock };
	size_t have = 0;
	int p[2], status = -1;
	pid_t pid;

	for (unsigned int i = 0; args[i] && i < 12; i++)
		argv[3 + i] = args[i];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return -1;
	}
	if (pid == 0) {
		dup2(p[1], 1);
		if (flags & BK_CTLRUN_STDERR)
			dup2(p[1], 2);
		execv(blanketctl, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	for (int turn = 0; turn < 6000; turn++) {
		ssize_t n = read(p[0], out + have, size - 1 - have);

		if (n > 0) {
			have += (size_t)n;
			continue;
		}
		if (n == 0 && waitpid(pid, &status, WNOHANG) == pid)
			break;
		bk_loop_run_once(loop, 10);
	}
	if (status == -1) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	close(p[0]);
	out[have] = '\0';
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

uint64_t bk_ctlrun_json_u64(const char *from, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = from ? strstr(from, pat) : NULL;
	return p ? strtoull(p + strlen(pat), NULL, 10) : UINT64_MAX;
}
