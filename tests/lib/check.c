// SPDX-License-Identifier: MIT
#include <dirent.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

int bk_test_failures;

int bk_test_exit(void)
{
	if (bk_test_failures)
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
	return bk_test_failures ? 1 : 0;
}

unsigned int bk_test_count_fds(void)
{
	unsigned int n = 0;
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	/* Not counting the descriptor opendir itself held. */
	return n ? n - 1 : 0;
}

unsigned int bk_test_dir_count(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned int n = 0;

	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && (!prefix || !strncmp(e->d_name, prefix, strlen(prefix))))
			n++;
	closedir(d);
	return n;
}

void bk_test_dir_empty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	closedir(d);
}

char *bk_test_capture_stderr(void (*fn)(void *), void *arg)
{
	char tmpl[] = "/tmp/bk-test-stderr.XXXXXX";
	int fd = mkstemp(tmpl), saved;
	char *out = NULL;
	off_t n;

	if (fd < 0)
		return NULL;
	unlink(tmpl);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn(arg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = lseek(fd, 0, SEEK_END);
	out = n >= 0 ? calloc(1, (size_t)n + 1) : NULL;
	if (out && pread(fd, out, (size_t)n, 0) != n)
		out[0] = '\0';
	close(fd);
	if (out)
		fputs(out, stderr);
	return out;
}

unsigned int bk_test_count_lines(const char *text, ...)
{
	unsigned int n = 0;

	for (const char *line = text; line && *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *copy = strndup(line, len);
		bool all = copy != NULL;
		va_list ap;

		va_start(ap, text);
		for (const char *w = va_arg(ap, const char *); w && all;
		     w = va_arg(ap, const char *))
			all = strstr(copy, w) != NULL;
		va_end(ap);
		free(copy);
		n += all;
		line = end ? end + 1 : line + len;
	}
	return n;
}
