// SPDX-License-Identifier: MIT
/* blanketd entry point (placeholder until the core lands). */
#include <stdio.h>

int main(void)
{
	fprintf(stderr, "blanketd: not yet functional\n");
	return 1;
}
