// SPDX-License-Identifier: MIT
/*
 * libFuzzer target over the whole blkif datapath: hostile ring slots and indirect pages from
 * the input, served by the real backend (core + blkif + null engine) through the simulation.
 * Invariants checked per input: while the device stays Connected every request gets exactly
 * one response; every response's padding is zero; a device that failed (the guest can wreck
 * its own ring, e.g. by reading disk data into the ring page) answered no request twice and
 * reconnects; ASan/UBSan stay silent.
 *
 * The machine is built once: guest 20 (x86_64 ABI) and guest 21 (x86_32 ABI), each with one
 * connected vbd on a 1 MiB tmpfs file. Each guest's grant refs are deterministic: 8 is the
 * ring, 9..24 data pages (odd refs writable, even read-only), 25 and 26 indirect pages.
 *
 * Input: byte 0 = guest (bit 0); byte 1 = number of requests (mod 33); then one slot's worth
 * of bytes per request (112 or 108, zero padded), then up to two indirect pages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blkfront.h"
#include "device.h"
#include "fuzz-blkif.h"
#include "loop.h"
#include "util/log.h"
#include "xen/sim.h"
#include "xenbus_front.h"

#define NR_DATA 16U
#define FIRST_REF 8U

struct harness {
	struct bk_bf_env env;
	struct bk_blkfront *f[2];
	uint32_t desc_pfn[2][2];
	char path[64];
	int fd;
};

static struct harness *H;

static void die(const char *what)
{
	fprintf(stderr, "fuzz-blkif-ring: %s\n", what);
	abort();
}

static void setup(void)
{
	static const char *const extra[] = { "blanket-engine", "null", NULL };

	if (!getenv("BK_FUZZ_VERBOSE"))
		bk_log_set_level(0); /* hostile input makes the backend log a lot */
	H = calloc(1, sizeof(*H));
	if (!H)
		die("no memory");
	H->fd = bk_bf_tmpfile("/dev/shm", 1 << 20, 0x11, H->path, sizeof(H->path));
	if (H->fd < 0 || bk_bf_env_new(&H->env) < 0)
		die("machine");
	for (unsigned int g = 0; g < 2; g++) {
		struct bk_bf_params p = {
			.abi = g ? BLKIF_ABI_X86_32 : BLKIF_ABI_X86_64,
			.protocol = g ? "x86_32-abi" : "x86_64-abi",
			.pfn_count = 256,
		};
		uint32_t pfn, ref;

		/* Both guests on one image read-write on purpose: "w!" (shared-image check). */
		if (bk_bf_env_guest(&H->env, 20 + g, 256) < 0 ||
		    bk_bf_env_add_vbd(&H->env, 20 + g, 51712, H->path, "w!", "disk", extra) < 0 ||
		    bk_bf_open(&H->env, 20 + g, 51712, &p, &H->f[g]) < 0 ||
		    bk_bf_connect(H->f[g]) < 0)
			die("connect");
		for (unsigned int i = 0; i < NR_DATA + 2; i++) {
			if (bk_bf_alloc_page(H->f[g], &pfn) < 0 ||
			    bk_bf_grant(H->f[g], pfn, i >= NR_DATA || (i & 1), &ref) < 0 ||
			    ref != FIRST_REF + 1 + i)
				die("grants are not where the seeds expect them");
			if (i >= NR_DATA)
				H->desc_pfn[g][i - NR_DATA] = pfn;
		}
	}
}

/* Frontend Closed, wait for the backend, fresh rings, connect again. */
static void reconnect(struct bk_blkfront *f)
{
	struct bk_xbfront *x = bk_bf_xbf(f);

	if (bk_xbf_set_state(x, BK_XB_CLOSED) < 0 || bk_xbf_wait_be_state(x, BK_XB_CLOSED, 0) < 0)
		die("failed device did not close");
	bk_bf_reset(f);
	if (bk_xbf_set_state(x, BK_XB_INITIALISING) < 0 || bk_bf_connect(f) < 0)
		die("failed device did not reconnect");
}

void bk_fuzz_cleanup(void)
{
	if (!H)
		return;
	for (unsigned int g = 0; g < 2; g++) {
		bk_bf_disconnect(H->f[g]);
		bk_bf_close(H->f[g]);
	}
	if (bk_sim_guest_nr_mapped(H->env.sim, 20) || bk_sim_guest_nr_mapped(H->env.sim, 21))
		die("grant mappings left behind");
	bk_bf_env_free(&H->env);
	close(H->fd);
	unlink(H->path);
	free(H);
	H = NULL;
}

int blkif_ring_fuzz_one(const uint8_t *data, size_t size)
{
	struct bk_blkfront *f;
	unsigned int g, n, before, bad, st = 0;
	size_t ss;

	if (size < 2)
		return 0;
	if (!H)
		setup();
	g = data[0] & 1;
	n = data[1] % 33U;
	data += 2;
	size -= 2;
	f = H->f[g];
	ss = blkif_abi_slot_size(g ? BLKIF_ABI_X86_32 : BLKIF_ABI_X86_64);

	for (unsigned int i = 0; i < n; i++) {
		uint8_t raw[BLKIF_MAX_SLOT_SIZE] = { 0 };
		size_t take = size < ss ? size : ss;

		memcpy(raw, data, take);
		data += take;
		size -= take;
		bk_bf_put_raw(f, 0, raw, ss);
	}
	for (unsigned int p = 0; p < 2; p++) {
		uint8_t *page = bk_bf_page(f, H->desc_pfn[g][p]);
		size_t take = size < 4096 ? size : 4096;

		memset(page, 0, 4096);
		memcpy(page, data, take);
		data += take;
		size -= take;
	}

	before = bk_bf_responses(f);
	bad = bk_bf_bad_padding(f);
	bk_bf_push(f, 0);
	for (unsigned int turn = 0; turn < 5000 && bk_bf_responses(f) - before < n; turn++) {
		bk_loop_run_once(H->env.loop, turn < 100 ? 0 : 1);
		bk_bf_reap(f, 0);
		/* Slow: is the device still there to answer, or did it fail? */
		if (turn >= 20 && (bk_xbf_be_state(bk_bf_xbf(f), &st) < 0 || st != BK_XB_CONNECTED))
			break;
	}
	if (bk_bf_bad_padding(f) != bad)
		die("response padding not zeroed");
	if (bk_xbf_be_state(bk_bf_xbf(f), &st) < 0)
		die("no backend state");
	if (st == BK_XB_CONNECTED) {
		if (bk_bf_responses(f) - before != n)
			die("a request was not answered exactly once");
		return 0;
	}
	/*
	 * The guest may legitimately break its own ring, e.g. by reading disk data into the
	 * ring page (ref 8): then the device must have failed, never answered twice, and a
	 * reconnect must work.
	 */
	if (bk_bf_responses(f) - before > n)
		die("more responses than requests");
	reconnect(f);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return blkif_ring_fuzz_one(data, size);
}
