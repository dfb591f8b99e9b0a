/* SPDX-License-Identifier: MIT */
/* What /proc/self/status says of this process's memory, for tests and benches that measure it. */
#ifndef BK_TEST_PROCSTATUS_H
#define BK_TEST_PROCSTATUS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A "Name:  N kB" line of /proc/self/status (VmRSS, RssAnon, RssShmem, VmPin...), in KiB; 0 if
 * absent. */
static inline unsigned long bk_proc_status_kib(const char *name)
{
	size_t len = strlen(name);
	unsigned long v = 0;
	char line[256];
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, name, len) && line[len] == ':') {
			v = strtoul(line + len + 1, NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

#endif
