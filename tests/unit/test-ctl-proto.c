// SPDX-License-Identifier: MIT
/* Control protocol encoding: header checks, byte order, bounded buffers, padded strings. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blanket/ctl.h"
#include "check.h"
#include "util/macros.h"

static void test_header(void)
{
	struct bk_ctl_hdr h, d;
	uint8_t *b = (uint8_t *)&h;

	bk_ctl_hdr_encode(&h, BK_CTL_REQ_STATS, 24, -19);
	/* Wire bytes are little-endian whatever the host. */
	CHECK(memcmp(b, "BLNK", 4) == 0);
	CHECK(b[4] == BK_CTL_VERSION && b[5] == 0);
	CHECK(b[6] == BK_CTL_REQ_STATS && b[7] == 0);
	CHECK(b[8] == 24 && b[9] == 0 && b[10] == 0 && b[11] == 0);
	CHECK(b[12] == 0xed && b[13] == 0xff && b[14] == 0xff && b[15] == 0xff);
	CHECK(bk_ctl_hdr_decode(&h, BK_CTL_MAX_REQUEST, &d) == 0);
	CHECK(d.magic == BK_CTL_MAGIC && d.version == BK_CTL_VERSION);
	CHECK(d.type == BK_CTL_REQ_STATS && d.length == 24 && d.status == -19);

	/* Length bound. */
	CHECK(bk_ctl_hdr_decode(&h, 23, &d) == -EMSGSIZE);
	CHECK(bk_ctl_hdr_decode(&h, 24, &d) == 0);

	/* Unknown version: the decoded header still says which one. */
	b[4] = 9;
	CHECK(bk_ctl_hdr_decode(&h, BK_CTL_MAX_REQUEST, &d) == -EPROTONOSUPPORT);
	CHECK(d.version == 9);
	b[4] = BK_CTL_VERSION;

	b[0] = 'X';
	CHECK(bk_ctl_hdr_decode(&h, BK_CTL_MAX_REQUEST, &d) == -EBADMSG);
}

static void test_swaps(void)
{
	struct bk_queue_stats q, orig;
	struct bk_ctl_device dev = { .domid = 5, .devid = 51712, .flags = BK_CTL_DEV_FAILED };
	struct bk_ctl_stats_req req = { .domid = 0x01020304, .flags = BK_CTL_STATS_ALL };
	uint8_t *p;

	for (size_t i = 0; i < sizeof(q) / 8; i++)
		((uint64_t *)&q)[i] = 0x0102030405060708ULL * (i + 1);
	orig = q;
	bk_ctl_queue_stats_swap(&q);
	p = (uint8_t *)&q.reqs[0];
	CHECK(p[0] == 0x08 && p[7] == 0x01);
	CHECK(le64toh(q.lat_hist[BK_LAT_BUCKETS - 1]) == orig.lat_hist[BK_LAT_BUCKETS - 1]);
	bk_ctl_queue_stats_swap(&q);
	CHECK(memcmp(&q, &orig, sizeof(q)) == 0);

	bk_ctl_device_swap(&dev);
	CHECK(le32toh(dev.devid) == 51712 && le32toh(dev.flags) == BK_CTL_DEV_FAILED);
	bk_ctl_device_swap(&dev);
	CHECK(dev.domid == 5);

	bk_ctl_stats_req_swap(&req);
	p = (uint8_t *)&req.domid;
	CHECK(p[0] == 0x04 && p[3] == 0x01);
	bk_ctl_stats_req_swap(&req);
	CHECK(req.flags == BK_CTL_STATS_ALL);
}

static void test_buf(void)
{
	struct bk_ctl_buf b = { .max = 10000 };
	uint32_t *x;
	int err = 0;

	x = bk_ctl_buf_append(&b, NULL, 8, &err);
	CHECK(x && x[0] == 0 && x[1] == 0 && b.len == 8);
	for (int i = 0; i < 9; i++)
		CHECK(bk_ctl_buf_append(&b, NULL, 1000, &err) != NULL);
	CHECK(b.len == 9008);
	CHECK(bk_ctl_buf_append(&b, "abc", 993, &err) == NULL && err == -E2BIG);
	CHECK(b.len == 9008);
	CHECK(bk_ctl_buf_append(&b, NULL, 992, &err) != NULL && b.len == 10000);
	CHECK(bk_ctl_buf_append(&b, NULL, (size_t)-1, &err) == NULL && err == -E2BIG);
	bk_ctl_buf_release(&b);
	CHECK(b.data == NULL && b.len == 0);
	bk_ctl_buf_release(&b);
}

static void test_strings(void)
{
	char s[8];

	memset(s, 'x', sizeof(s));
	bk_ctl_strpad(s, sizeof(s), "vbd");
	CHECK(strcmp(s, "vbd") == 0 && s[7] == 0 && s[4] == 0);
	bk_ctl_strpad(s, sizeof(s), "0123456789");
	CHECK(strcmp(s, "0123456") == 0);
	bk_ctl_strpad(s, sizeof(s), NULL);
	CHECK(s[0] == 0);
	CHECK(strcmp(bk_ctl_state_name(4), "Connected") == 0);
	CHECK(strcmp(bk_ctl_state_name(99), "Unknown") == 0);
}

/* The rate-limit text form shared by blanketctl, the configuration and the target settings. */
static void test_limits(void)
{
	static const struct {
		const char *in;
		int ret;
		const char *out_or_why; /* formatted back, or a word of the reason */
	} cases[] = {
		{ "iops=500,bps=20M,burst=200", 0, "iops=500,bps=20M,burst=200" },
		{ "bps=1536K", 0, "bps=1536K,burst=100" },
		{ "bps=1000", 0, "bps=1000,burst=100" },
		{ "iops=7", 0, "iops=7,burst=100" },
		{ "burst=250", 0, "off" },
		{ "off", 0, "off" },
		{ "iops=0,bps=0", 0, "off" },
		{ "iops=10000000", 0, "iops=10000000,burst=100" },
		{ "iops=10000001", -EINVAL, "iops=10000001" },
		{ "bps=1025G", -EINVAL, "bps=1025G" },
		{ "bps=99999999999999999999", -EINVAL, "bps=99999999999999999999" },
		{ "burst=0", -EINVAL, "burst=0" },
		{ "burst=60001", -EINVAL, "burst=60001" },
		{ "iops=-1", -EINVAL, "iops=-1" },
		{ "iops=", -EINVAL, "iops=" },
		{ "iops", -EINVAL, "'iops'" },
		{ "speed=3", -EINVAL, "'speed=3'" },
		{ "", -EINVAL, "expected" },
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++) {
		struct bk_ctl_limit l = { .burst_ms = BK_CTL_LIMIT_BURST_DEFAULT };
		char why[160] = "", text[96] = "";
		int r = bk_ctl_parse_limit(cases[i].in, &l, why, sizeof(why));

		if (r == 0)
			bk_ctl_format_limit(&l, text, sizeof(text));
		if (r != cases[i].ret || !strstr(r ? why : text, cases[i].out_or_why))
			fprintf(stderr, "limit '%s': %d '%s' '%s'\n", cases[i].in, r, why, text);
		CHECK(r == cases[i].ret);
		CHECK(strstr(r ? why : text, cases[i].out_or_why) != NULL);
	}
	/* A partial change names only what it changes; a failed one changes nothing. */
	{
		struct bk_ctl_limit l = { .iops = 5, .bps = 7, .burst_ms = 9 }, w;
		char why[160];

		CHECK(bk_ctl_parse_limit("bps=1K", &l, why, sizeof(why)) == 0);
		CHECK(l.iops == 5 && l.bps == 1024 && l.burst_ms == 9 &&
		      l.flags == BK_CTL_LIMIT_BPS);
		w = l;
		CHECK(bk_ctl_parse_limit("iops=3,burst=x", &l, why, sizeof(why)) == -EINVAL);
		CHECK(memcmp(&w, &l, sizeof(l)) == 0);
	}
	{
		struct bk_ctl_limit_req r = { .domid = 1, .limit = { .iops = 2, .flags = 3 } };

		bk_ctl_limit_req_swap(&r);
		bk_ctl_limit_req_swap(&r);
		CHECK(r.domid == 1 && r.limit.iops == 2 && r.limit.flags == 3);
	}
}

int main(void)
{
	test_limits();
	test_header();
	test_swaps();
	test_buf();
	test_strings();
	if (bk_test_failures) {
		fprintf(stderr, "%d check(s) failed\n", bk_test_failures);
		return 1;
	}
	return 0;
}
