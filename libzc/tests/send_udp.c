// SPDX-License-Identifier: MIT
/* UDP: SENDMSG_ZC with a destination address, and SEND_ZC on a connected
 * socket; every datagram arrives intact and each send has one record. */
#include "helpers.h"

int main(void)
{
	struct sockaddr_in dst, src;
	struct zc_pool_config pc = { .count = 4, .size = 4096 };
	struct zc_pool *pool;
	struct zc_ring *r = ring_new(0);
	uint8_t *base, in[4096];
	int rx = udp_bound(&dst), tx = udp_bound(&src);
	unsigned i, count = scaled(2000);

	CHECK_EQ(zc_pool_create(r, &pc, &pool), 0);
	base = zc_pool_base(pool);
	for (i = 0; i < count; i++) {
		uint32_t len = 1 + (i * 37) % 1400;
		struct iovec iov[3] = {
			{ base, len / 3 }, { base + 1000, len / 3 },
			{ base + 3000, len - 2 * (len / 3) },
		};
		struct zc_completion c;
		ssize_t n;
		uint32_t k, off = 0;

		for (k = 0; k < 3; k++) {
			fill_pattern(iov[k].iov_base, off + i, iov[k].iov_len);
			off += iov[k].iov_len;
		}
		CHECK_EQ(zc_sendmsg(r, tx, iov, 3, &dst, sizeof(dst),
				    i & 1 ? ZC_SEND_ZEROCOPY : 0, i), 0);
		CHECK(zc_submit(r) >= 0);
		c = wait_one(r);
		CHECK_EQ(c.user_data, i);
		CHECK_EQ(c.res, (int32_t)len);
		CHECK_EQ(c.op, i & 1 ? ZC_OP_SENDMSG_ZC : ZC_OP_SEND);
		/* usage is reported where libzc merges, never natively */
		if ((i & 1) && zc_ring_unified_native(r))
			CHECK_EQ(c.flags & (ZC_COMP_ZC_USED | ZC_COMP_ZC_COPIED |
					    ZC_COMP_NATIVE), ZC_COMP_NATIVE);
		else if (i & 1)
			CHECK(c.flags & (ZC_COMP_ZC_USED | ZC_COMP_ZC_COPIED));
		n = recv(rx, in, sizeof(in), 0);
		CHECK_EQ(n, len);
		for (k = 0; k < len; k++)
			CHECK_EQ(in[k], pattern(k + i));
	}

	/* Connected UDP, SEND_ZC from a fixed buffer. */
	CHECK(connect(tx, (struct sockaddr *)&dst, sizeof(dst)) == 0);
	fill_pattern(base, 0, 1200);
	CHECK_EQ(zc_send_fixed(r, tx, pool, 0, 0, 1200, ZC_SEND_ZEROCOPY, 99), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(wait_one(r).res, 1200);
	CHECK_EQ(recv(rx, in, sizeof(in), 0), 1200);
	CHECK(memcmp(in, base, 1200) == 0);

	/* Bad arguments are refused before anything is queued. */
	CHECK_EQ(zc_sendmsg(r, tx, NULL, 0, NULL, 0, 0, 1), -EINVAL);
	{
		struct iovec iov[ZC_MAX_IOV + 1] = { { base, 1 } };

		CHECK_EQ(zc_sendmsg(r, tx, iov, ZC_MAX_IOV + 1, NULL, 0, 0, 1),
			 -EINVAL);
		CHECK_EQ(zc_sendmsg(r, tx, iov, 1, &dst, 4096, 0, 1), -EINVAL);
	}
	CHECK_EQ(zc_send_fixed(r, tx, pool, 4, 0, 1, 0, 1), -EINVAL);
	CHECK_EQ(zc_send_fixed(r, tx, pool, 0, 4000, 200, 0, 1), -EINVAL);
	CHECK_EQ(zc_send(r, tx, base, 1, 1u << 9, 1), -EINVAL);
	CHECK_EQ(zc_ring_pending(r), 0);

	CHECK_EQ(zc_pool_destroy(pool), 0);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	printf("udp: %u datagrams verified\n", count);
	return 0;
}
