// SPDX-License-Identifier: MIT
#include <dirent.h>

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
