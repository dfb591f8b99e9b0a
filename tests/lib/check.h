/* SPDX-License-Identifier: MIT */
/*
 * Checks for C tests: CHECK() counts a failure and goes on, so one run reports every broken
 * expectation; the test's main returns bk_test_exit(). Tests exit 0 pass, 1 fail, 77 skip.
 */
#ifndef BK_TEST_CHECK_H
#define BK_TEST_CHECK_H

#include <stdio.h>

extern int bk_test_failures;

#define CHECK(cond)                                                                              \
	do {                                                                                     \
		if (!(cond)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			bk_test_failures++;                                                      \
		}                                                                                \
	} while (0)

/* Open file descriptors of this process (leak checks). */
unsigned int bk_test_count_fds(void);

/* Entries of directory @dir whose name starts with @prefix (NULL: any; never "." names). */
unsigned int bk_test_dir_count(const char *dir, const char *prefix);

/* Unlink every entry of @dir but "." names (journal directories between scenarios). */
void bk_test_dir_empty(const char *dir);

/*
 * Run @fn(@arg) with stderr going to a file; returns what was written there (malloc'd, NULL on
 * failure), after copying it to the real stderr so it still shows in the test log.
 */
char *bk_test_capture_stderr(void (*fn)(void *), void *arg);

/* Lines of @text that contain every one of the NULL-terminated words after it. */
unsigned int bk_test_count_lines(const char *text, ...);

/* 0 if every check held, else 1 (after printing how many failed). */
int bk_test_exit(void);

#endif
