// SPDX-License-Identifier: MIT
/*
 * The pollable fd: with and without DEFER_TASKRUN it becomes readable once
 * a completion is due, zc_reap() then finds it without blocking, and when
 * nothing is in flight it stays quiet (an idle loop costs nothing).  A send
 * that completes inside zc_flush() is reaped there and wakes nobody.
 */
#include "helpers.h"

static void check_ring(uint32_t flags)
{
	struct zc_ring *r = ring_new(flags);
	struct pollfd p = { .fd = zc_ring_event_fd(r), .events = POLLIN };
	struct zc_completion c;
	static char buf[8192];
	int tx, rx, i, got;

	tcp_pair(&tx, &rx);
	CHECK_EQ(poll(&p, 1, 0), 0);	/* idle: not readable */
	for (i = 0; i < 50; i++) {
		CHECK_EQ(zc_send(r, tx, buf, sizeof(buf), ZC_SEND_ZEROCOPY, i), 0);
		CHECK(zc_submit(r) >= 0);
		/* Only the eventfd tells us; no zc_wait. */
		got = 0;
		while (!got) {
			CHECK_EQ(poll(&p, 1, 5000), 1);
			got = zc_reap(r, &c, 1);
			CHECK(got >= 0);
		}
		CHECK_EQ(c.user_data, i);
		CHECK_EQ(c.res, (int)sizeof(buf));
		CHECK(read(rx, buf, sizeof(buf)) > 0);
	}
	/* Drain stragglers, then the fd goes quiet again. */
	while (zc_reap(r, &c, 1) > 0)
		;
	CHECK_EQ(zc_ring_pending(r), 0);
	CHECK_EQ(poll(&p, 1, 50), 0);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
}

/* Plain sends on loopback TCP complete inline, inside the io_uring_enter()
 * of zc_flush(): their record comes back from that call, and the eventfd
 * must not announce it once more (a wakeup of the caller's loop for
 * nothing).  Without DEFER_TASKRUN only: there the fd announces task work. */
static void check_inline_quiet(uint32_t flags)
{
	struct zc_ring *r = ring_new(flags);
	struct pollfd p = { .fd = zc_ring_event_fd(r), .events = POLLIN };
	struct zc_completion c;
	static char buf[256];
	int tx, rx, i;

	tcp_pair(&tx, &rx);
	for (i = 0; i < 50; i++) {
		CHECK_EQ(zc_send(r, tx, buf, sizeof(buf), 0, i), 0);
		CHECK_EQ(zc_flush(r, &c, 1), 1);
		CHECK_EQ(c.user_data, i);
		CHECK_EQ(c.res, (int)sizeof(buf));
		CHECK_EQ(poll(&p, 1, 0), 0);
		CHECK_EQ(read(rx, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	}
	/* Completions that come later still wake the loop (check_ring). */
	zc_ring_destroy(r);
	close(tx);
	close(rx);
}

int main(void)
{
	check_inline_quiet(0);
	check_inline_quiet(ZC_RING_COOP_TASKRUN);
	check_ring(0);
	check_ring(ZC_RING_DEFER_TASKRUN);
	check_ring(ZC_RING_COOP_TASKRUN);
	printf("eventfd: ok\n");
	return 0;
}
