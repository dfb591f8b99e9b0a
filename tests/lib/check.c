// SPDX-License-Identifier: MIT
#include <dirent.h>
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
