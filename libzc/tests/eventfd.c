// SPDX-License-Identifier: MIT
/*
 * The pollable fd: with and without DEFER_TASKRUN it becomes readable once
 * a completion is due, zc_reap() then finds it without blocking, and when
 * nothing is in flight it stays quiet (an idle loop costs nothing).  A send
 * that completes inside zc_flush() is reaped there and wakes nobody.  The
 * same for the ring fd a caller polls instead (zc_ring_poll_ring_fd()).
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

/*
 * zc_ring_poll_ring_fd(): the ring fd is what to poll.  A CQE posted before
 * anyone polls is reported (the fd is level-triggered: nothing is lost to a
 * watcher armed late), so are CQEs on the kernel's overflow list (more than
 * the CQ holds), inline completions reaped by zc_flush() leave it quiet, and
 * the unregistered eventfd stays quiet.
 */
static void check_ring_fd(uint32_t flags)
{
	struct zc_ring_config cfg = { .sq_entries = 8, .cq_entries = 8,
				      .max_requests = 64, .flags = flags };
	struct zc_completion c[64];
	struct zc_ring *r;
	static char buf[8192];
	uint64_t seen = 0;
	int tx, rx, i, n, got, fd, ret = zc_ring_create(&cfg, &r);
	struct pollfd p, e;

	if (ret == -EPERM || ret == -ENOSYS)
		skip("io_uring is not available to this process");
	CHECK_EQ(ret, 0);
	fd = zc_ring_poll_ring_fd(r);
	CHECK_EQ(fd, zc_ring_fd(r));
	CHECK_EQ(zc_ring_poll_ring_fd(r), fd);	/* again: the same */
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	e = (struct pollfd){ .fd = zc_ring_event_fd(r), .events = POLLIN };
	tcp_pair(&tx, &rx);
	CHECK_EQ(poll(&p, 1, 0), 0);	/* idle: not readable */

	/* One completion, posted inside zc_submit() and not reaped: the fd
	 * is readable before anyone waited on it. */
	CHECK_EQ(zc_send(r, tx, buf, 256, 0, 100), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(poll(&p, 1, 0), 1);
	CHECK_EQ(zc_reap(r, c, 64), 1);
	CHECK_EQ(c[0].user_data, 100);
	CHECK_EQ(poll(&p, 1, 0), 0);

	/* 32 completions into a CQ of 8: 24 wait on the overflow list. */
	for (i = 0; i < 32; i++) {
		CHECK_EQ(zc_send(r, tx, buf, 256, 0, i), 0);
		CHECK(zc_submit(r) >= 0);
	}
	for (n = 0; n < 32;) {
		CHECK_EQ(poll(&p, 1, 5000), 1);
		got = zc_reap(r, c, 64);
		CHECK(got > 0);
		for (i = 0; i < got; i++) {
			CHECK(c[i].user_data < 32);
			CHECK_EQ(c[i].res, 256);
			seen |= 1ull << c[i].user_data;
		}
		n += got;
	}
	CHECK_EQ(n, 32);
	CHECK_EQ(seen, 0xffffffffull);
	CHECK_EQ(poll(&p, 1, 0), 0);
	for (n = 0; n < 33 * 256; n += got) {
		got = (int)read(rx, buf, sizeof(buf));
		CHECK(got > 0);
	}
	CHECK_EQ(n, 33 * 256);

	/* Inline completions reaped by zc_flush() leave it quiet. */
	for (i = 0; i < 20; i++) {
		CHECK_EQ(zc_send(r, tx, buf, 256, 0, i), 0);
		CHECK_EQ(zc_flush(r, c, 1), 1);
		CHECK_EQ(poll(&p, 1, 0), 0);
		CHECK_EQ(read(rx, buf, 256), 256);
	}

	/* Later completions (zero-copy notifications) wake it. */
	for (i = 0; i < 8; i++) {
		CHECK_EQ(zc_send(r, tx, buf, sizeof(buf), ZC_SEND_ZEROCOPY, i), 0);
		CHECK(zc_submit(r) >= 0);
		got = 0;
		while (!got) {
			CHECK_EQ(poll(&p, 1, 5000), 1);
			got = zc_reap(r, c, 1);
			CHECK(got >= 0);
		}
		CHECK_EQ(c[0].user_data, i);
		CHECK_EQ(c[0].res, (int)sizeof(buf));
		CHECK(read(rx, buf, sizeof(buf)) > 0);
	}
	while (zc_reap(r, c, 64) > 0)
		;
	CHECK_EQ(zc_ring_pending(r), 0);
	CHECK_EQ(poll(&p, 1, 50), 0);
	CHECK_EQ(poll(&e, 1, 0), 0);	/* the eventfd was never signalled */
	zc_ring_destroy(r);
	close(tx);
	close(rx);

	/* DEFER_TASKRUN keeps its eventfd. */
	r = ring_new(ZC_RING_DEFER_TASKRUN);
	CHECK_EQ(zc_ring_poll_ring_fd(r), -EINVAL);
	zc_ring_destroy(r);
}

int main(void)
{
	check_ring_fd(0);
	check_ring_fd(ZC_RING_COOP_TASKRUN);
	check_inline_quiet(0);
	check_inline_quiet(ZC_RING_COOP_TASKRUN);
	check_ring(0);
	check_ring(ZC_RING_DEFER_TASKRUN);
	check_ring(ZC_RING_COOP_TASKRUN);
	printf("eventfd: ok\n");
	return 0;
}
