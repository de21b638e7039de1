// SPDX-License-Identifier: MIT
/* Ring creation: config validation, flag combinations, native detection. */
#include "helpers.h"

static int create(struct zc_ring_config cfg)
{
	struct zc_ring *r;
	int ret = zc_ring_create(&cfg, &r);

	if (!ret) {
		CHECK(zc_ring_event_fd(r) >= 0);
		CHECK(zc_ring_fd(r) >= 0);
		CHECK_EQ(zc_ring_pending(r), 0);
		/* default: half the CQ (a zero-copy send may hold two CQEs) */
		CHECK_EQ(zc_ring_max_requests(r), cfg.max_requests ? cfg.max_requests
				: (cfg.cq_entries ? cfg.cq_entries : 4 * cfg.sq_entries) / 2);
		zc_ring_destroy(r);
	} else {
		CHECK(r == NULL);
	}
	return ret;
}

int main(void)
{
	const char *expect = getenv("URING_ZC_EXPECT_UNIFIED");
	struct zc_ring_config ok = { .sq_entries = 32 };
	struct zc_ring_config c;
	struct zc_ring *r;
	uint32_t flags[] = {
		0, ZC_RING_SINGLE_ISSUER, ZC_RING_DEFER_TASKRUN,
		ZC_RING_COOP_TASKRUN, ZC_RING_REGISTERED_FD, ZC_RING_CQE32,
		ZC_RING_DEFER_TASKRUN | ZC_RING_CQE32 | ZC_RING_REGISTERED_FD,
	};
	int ret;

	ret = create(ok);
	if (ret == -EPERM || ret == -ENOSYS)
		skip("io_uring is not available to this process");
	CHECK_EQ(ret, 0);

	c = ok; c.sq_entries = 0;	CHECK_EQ(create(c), -EINVAL);
	c = ok; c.sq_entries = 33;	CHECK_EQ(create(c), -EINVAL);
	c = ok; c.sq_entries = 65536;	CHECK_EQ(create(c), -EINVAL);
	c = ok; c.cq_entries = 16;	CHECK_EQ(create(c), -EINVAL);
	c = ok; c.flags = 1u << 20;	CHECK_EQ(create(c), -EINVAL);
	c = ok; c.unified = 3;		CHECK_EQ(create(c), -EINVAL);
	c = ok; c.reserved[1] = 1;	CHECK_EQ(create(c), -EINVAL);
	c = ok; c.max_fixed_buffers = 1 << 20; CHECK_EQ(create(c), -EINVAL);

	for (unsigned i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		c = ok;
		c.flags = flags[i];
		CHECK_EQ(create(c), 0);
	}

	/* Native unified mode exists only on the patched kernel. */
	c = ok;
	c.unified = ZC_UNIFIED_NATIVE;
	ret = create(c);
	CHECK(ret == 0 || ret == -EOPNOTSUPP);
	c.unified = ZC_UNIFIED_AUTO;
	CHECK_EQ(zc_ring_create(&c, &r), 0);
	CHECK_EQ(zc_ring_unified_native(r), ret == 0);
	/* native exactly where the query reports IORING_SEND_ZC_SINGLE_CQE */
	{
		struct zc_probe p;

		CHECK_EQ(zc_probe(&p), 0);
		CHECK_EQ(!!(p.caps & ZC_CAP_SEND_ZC_SINGLE_CQE), ret == 0);
	}
	zc_ring_destroy(r);
	c.unified = ZC_UNIFIED_USERSPACE;
	CHECK_EQ(zc_ring_create(&c, &r), 0);
	CHECK_EQ(zc_ring_unified_native(r), 0);
	zc_ring_destroy(r);
	if (expect && *expect)
		CHECK_EQ(ret == 0, atoi(expect));
	printf("ring: native unified %s\n", ret == 0 ? "yes" : "no");
	return 0;
}
