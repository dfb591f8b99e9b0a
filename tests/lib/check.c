// SPDX-License-Identifier: MIT
#include "check.h"

int bk_test_failures;

int bk_test_exit(void)
{
	if (bk_test_failures)
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
	return bk_test_failures ? 1 : 0;
}
