// SPDX-License-Identifier: MIT
/* The libaio engine on real files (O_DIRECT and buffered) and, if possible, a loop device. */
#include "test-engine-common.h"

int main(void)
{
	return run_engine_suite("aio");
}
