// SPDX-License-Identifier: MIT
/*
 * The kernel registers at most 16 ring fds per thread: rings past that
 * still open (on the plain ring fd) and say why, and every one of them
 * works.  Destroying them gives the slots back.
 */
#include "helpers.h"

#define RINGS 24

int main(void)
{
	struct zc_ring *r[RINGS];
	struct zc_ring_config cfg = {
		.sq_entries = 8,
		.flags = ZC_RING_REGISTERED_FD,
	};
	int sp[2], i, reg = 0, busy = 0, ret;
	char buf[64] = "ring", got[64];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) == 0);
	for (i = 0; i < RINGS; i++) {
		ret = zc_ring_create(&cfg, &r[i]);
		if (ret == -EPERM || ret == -ENOSYS)
			skip("io_uring is not available to this process");
		CHECK_EQ(ret, 0);
		ret = zc_ring_registered_fd(r[i]);
		if (ret == 1) {
			CHECK_EQ(busy, 0);	/* the first ones get the slots */
			reg++;
		} else {
			CHECK_EQ(ret, -EBUSY);
			busy++;
		}
	}
	CHECK_EQ(reg, 16);
	CHECK_EQ(busy, RINGS - 16);
	/* each one sends through io_uring_enter, registered or not */
	for (i = 0; i < RINGS; i++) {
		struct zc_completion c;

		buf[4] = (char)('A' + i);
		CHECK_EQ(zc_send(r[i], sp[0], buf, 5, 0, (uint64_t)i), 0);
		CHECK(zc_submit(r[i]) >= 0);
		c = wait_one(r[i]);
		CHECK_EQ(c.res, 5);
		CHECK_EQ(read(sp[1], got, 5), 5);
		CHECK(memcmp(got, buf, 5) == 0);
	}
	for (i = 0; i < RINGS; i++)
		zc_ring_destroy(r[i]);
	/* the slots are free again; a ring without the flag says 0 */
	CHECK_EQ(zc_ring_create(&cfg, &r[0]), 0);
	CHECK_EQ(zc_ring_registered_fd(r[0]), 1);
	cfg.flags = 0;
	CHECK_EQ(zc_ring_create(&cfg, &r[1]), 0);
	CHECK_EQ(zc_ring_registered_fd(r[1]), 0);
	zc_ring_destroy(r[0]);
	zc_ring_destroy(r[1]);
	close(sp[0]);
	close(sp[1]);
	return 0;
}
