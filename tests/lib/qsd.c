// SPDX-License-Identifier: MIT
/* qemu-storage-daemon as a test back-end: see qsd.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "qsd.h"

const char *bk_qsd_binary(void)
{
	static const char *const bins[] = { "/usr/bin/qemu-storage-daemon",
					    "/usr/local/bin/qemu-storage-daemon" };

	for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++)
		if (access(bins[i], X_OK) == 0)
			return bins[i];
	return NULL;
}

static int spawn(struct bk_qsd *q)
{
	const char *bin = bk_qsd_binary();
	struct stat st;
	bool blkdev = stat(q->path, &st) == 0 && S_ISBLK(st.st_mode);
	char blockdev[700], exp[700];
	int status;
	pid_t pid;
	FILE *f;

	if (!bin)
		return -ENOENT;
	snprintf(blockdev, sizeof(blockdev),
		 "driver=%s,node-name=file0,filename=%s,discard=unmap%s",
		 blkdev ? "host_device" : "file", q->path,
		 q->direct ? ",cache.direct=on,aio=io_uring" : "");
	snprintf(exp, sizeof(exp),
		 "type=vhost-user-blk,id=exp0,node-name=disk0,addr.type=unix,addr.path=%s,"
		 "writable=%s,num-queues=%u,logical-block-size=512",
		 q->sock, q->writable ? "on" : "off", q->queues);
	unlink(q->pidfile);
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		if (null >= 0)
			dup2(null, STDOUT_FILENO);
		execl(bin, bin, "--blockdev", blockdev, "--blockdev",
		      "driver=raw,node-name=disk0,file=file0,discard=unmap", "--export", exp,
		      "--daemonize", "--pidfile", q->pidfile, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return -EIO;
	f = fopen(q->pidfile, "r");
	if (!f)
		return -EIO;
	if (fscanf(f, "%d", &q->pid) != 1)
		q->pid = -1;
	fclose(f);
	/* The intermediate process of --daemonize was reparented to us: reap it. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return q->pid > 0 ? 0 : -EIO;
}

int bk_qsd_start(struct bk_qsd *q, const char *path, const char *sock, unsigned int queues,
		 bool writable)
{
	int r;

	/* Daemonized back-ends are reparented to us, so we can reap them. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	q->pid = -1;
	snprintf(q->path, sizeof(q->path), "%s", path);
	snprintf(q->sock, sizeof(q->sock), "%s", sock);
	snprintf(q->pidfile, sizeof(q->pidfile), "%s.pid", sock);
	q->queues = queues;
	q->writable = writable;
	q->direct = true;
	r = spawn(q);
	if (r == -EIO) {
		/* Filesystems without O_DIRECT (tmpfs) make the file driver refuse cache.direct. */
		q->direct = false;
		r = spawn(q);
	}
	return r;
}

int bk_qsd_restart(struct bk_qsd *q)
{
	return spawn(q);
}

void bk_qsd_kill(struct bk_qsd *q)
{
	if (q->pid <= 0)
		return;
	kill(q->pid, SIGKILL);
	waitpid(q->pid, NULL, 0);
	q->pid = -1;
	unlink(q->pidfile);
}
