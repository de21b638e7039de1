// SPDX-License-Identifier: MIT
/* Pools: validation, slot accounting (one slot per region), EBUSY while
 * the kernel holds one. */
#include "helpers.h"

int main(void)
{
	struct zc_ring_config rc = { .sq_entries = 64, .max_fixed_buffers = 2 };
	struct zc_pool_config pc = { .count = 4, .size = 4096 };
	struct zc_pool *a, *b, *c;
	struct zc_ring *r;
	struct zc_completion done;
	int tx, rx, i, n;
	uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE);
	uint8_t *base;
	static uint8_t sink[1 << 20];

	CHECK_EQ(zc_ring_create(&rc, &r), 0);
	pc.size = page + 1;	CHECK_EQ(zc_pool_create(r, &pc, &a), -EINVAL);
	CHECK(a == NULL);
	pc.size = 0;		CHECK_EQ(zc_pool_create(r, &pc, &a), -EINVAL);
	pc.size = page; pc.count = 0; CHECK_EQ(zc_pool_create(r, &pc, &a), -EINVAL);
	pc.count = ZC_POOL_MAX_BUFFERS + 1; CHECK_EQ(zc_pool_create(r, &pc, &a), -EINVAL);
	pc.count = 1; pc.size = (1u << 30) + page; CHECK_EQ(zc_pool_create(r, &pc, &a), -EINVAL);
	pc.size = page;
	pc.count = 4; pc.flags = 8; CHECK_EQ(zc_pool_create(r, &pc, &a), -EINVAL);
	pc.flags = ZC_POOL_HUGE; CHECK_EQ(zc_pool_create(r, &pc, &a), -EINVAL);
	pc.flags = 0; pc.reserved = 1; CHECK_EQ(zc_pool_create(r, &pc, &a), -EINVAL);
	pc.reserved = 0;

	/* A pool under 1 GiB is one region, one slot: two fill the table,
	 * a third has no room until one goes. */
	CHECK_EQ(zc_pool_create(r, &pc, &a), 0);
	CHECK_EQ(zc_pool_create(r, &pc, &b), 0);
	CHECK_EQ(zc_pool_region_buffers(b), 4);
	CHECK_EQ(zc_pool_create(r, &pc, &c), -ENOSPC);
	CHECK_EQ(zc_pool_destroy(a), 0);
	CHECK_EQ(zc_pool_create(r, &pc, &a), 0);

	/* A send in flight holds its buffer: destroy says EBUSY. */
	tcp_pair(&tx, &rx);
	base = zc_pool_base(b);
	memset(base, 'x', 4096);
	CHECK_EQ(zc_send_fixed(r, tx, b, 2, 0, 4096, ZC_SEND_ZEROCOPY, 1), 0);
	CHECK_EQ(zc_pool_inflight(b), 1);
	CHECK_EQ(zc_pool_buf_inflight(b, 2), 1);
	CHECK_EQ(zc_pool_buf_inflight(b, 1), 0);
	CHECK_EQ(zc_pool_destroy(b), -EBUSY);
	CHECK(zc_submit(r) >= 0);
	done = wait_one(r);
	CHECK_EQ(done.res, 4096);
	CHECK_EQ(zc_pool_inflight(b), 0);
	CHECK_EQ(zc_pool_destroy(b), 0);

	/* A plain pointer into the pool counts too. */
	base = zc_pool_base(a);
	CHECK_EQ(zc_send(r, tx, base + 4096 + 10, 100, ZC_SEND_ZEROCOPY, 2), 0);
	CHECK_EQ(zc_pool_buf_inflight(a, 1), 1);
	CHECK_EQ(zc_pool_destroy(a), -EBUSY);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(wait_one(r).res, 100);
	CHECK_EQ(zc_pool_destroy(a), 0);
	for (i = 0; i < 4196; i += n) {
		n = (int)read(rx, sink, sizeof(sink));
		CHECK(n > 0);
	}
	CHECK_EQ(i, 4196);

	/* Pools left behind are freed with the ring (ASan checks). */
	CHECK_EQ(zc_pool_create(r, &pc, &a), 0);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	printf("pool: ok\n");
	return 0;
}
