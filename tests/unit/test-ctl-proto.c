// SPDX-License-Identifier: MIT
/* Control protocol encoding: header checks, byte order, bounded buffers, padded strings. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "blanket/ctl.h"
#include "check.h"

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

int main(void)
{
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
