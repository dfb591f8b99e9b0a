// SPDX-License-Identifier: MIT
/* Text for the GNTST_* status codes of xen/grant_table.h, for log lines. */
#include <stdint.h>

#include <xen/grant_table.h>

#include "xen.h"

const char *bk_xen_gntst_str(int16_t st)
{
	switch (st) {
	case GNTST_okay:
		return "okay";
	case GNTST_general_error:
		return "general error";
	case GNTST_bad_domain:
		return "bad domain";
	case GNTST_bad_gntref:
		return "bad grant reference";
	case GNTST_bad_handle:
		return "bad handle";
	case GNTST_bad_virt_addr:
		return "bad virtual address";
	case GNTST_bad_dev_addr:
		return "bad device address";
	case GNTST_no_device_space:
		return "no space in I/O MMU";
	case GNTST_permission_denied:
		return "permission denied";
	case GNTST_bad_page:
		return "bad page";
	case GNTST_bad_copy_arg:
		return "copy crosses a page boundary";
	case GNTST_address_too_big:
		return "address too big";
	case GNTST_eagain:
		return "try again";
	case GNTST_no_space:
		return "out of space";
	default:
		return "unknown grant status";
	}
}
