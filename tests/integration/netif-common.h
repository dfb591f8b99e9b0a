/* SPDX-License-Identifier: MIT */
/*
 * What the netif integration tests (and netbench) share beyond tests/lib/netpkt.h: the guest's
 * MAC address.
 */
#ifndef BK_TEST_NETIF_COMMON_H
#define BK_TEST_NETIF_COMMON_H

#include <stdint.h>

#include "netpkt.h"
#include "util/macros.h"

static _unused_ const uint8_t guest_mac[6] = { 0x00, 0x16, 0x3e, 0x00, 0x00, 0x01 };

#endif
