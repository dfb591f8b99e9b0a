// SPDX-License-Identifier: MIT
/*
 * Replays a fuzz corpus through the same entry point as the libFuzzer build, without libFuzzer,
 * so the seeds (and any crash reproducer added to the corpus) run in the ordinary test suite.
 * Usage: replay-TARGET DIR|FILE...  Exits 1 if nothing was replayed.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: a target with global state frees it here (so leak checks stay meaningful). */
void bk_fuzz_cleanup(void) __attribute__((weak));

static unsigned int replayed;

static int replay_file(const char *path)
{
	static uint8_t buf[1 << 20];
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	replayed++;
	return 0;
}

static int replay(const char *path)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	int r = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char p[4096];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (replay(p) < 0)
			r = -1;
	}
	closedir(d);
	return r;
}

int main(int argc, char **argv)
{
	int r = 0;

	for (int i = 1; i < argc; i++)
		if (replay(argv[i]) < 0)
			r = 1;
	if (bk_fuzz_cleanup)
		bk_fuzz_cleanup();
	printf("replayed %u inputs\n", replayed);
	return r || replayed == 0 ? 1 : 0;
}
