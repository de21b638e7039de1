// SPDX-License-Identifier: MIT
/*
 * A DEFER_TASKRUN ring whose deferred task work posts no CQEs.  The kernel
 * runs at most 20 items of that work per io_uring_enter() (Linux >= 6.13,
 * IO_LOCAL_TW_DEFAULT_MAX) and signals the eventfd for new work only when
 * its list was empty, so work an enter leaves behind is announced by nothing
 * but the CQEs that enter posts.  Items that post none (here: reads with
 * IOSQE_CQE_SKIP_SUCCESS; in the stream paths, poll retries and, with the
 * kernel's single-CQE zero-copy sends, sends whose CQE waits for the
 * notification) fill whole enters: libzc used to stop when an enter posted
 * fewer than 20 CQEs, and what was left stalled for good (a TCP send test
 * hung in the patched VM).  Here N pipe reads wait in the kernel; one write
 * to each queues N task-work items behind one eventfd signal; a single
 * zc_reap() must run them all (every pipe read empty), and leave the
 * eventfd quiet.
 */
#include "helpers.h"
#include "internal.h"

#include <sys/eventfd.h>
#include <sys/ioctl.h>

#define N 60

int main(void)
{
	struct zc_ring_config rc = { .sq_entries = 128, .flags = ZC_RING_DEFER_TASKRUN };
	struct zc_completion c[64];
	struct zc_probe p;
	struct zc_ring *r;
	struct pollfd pfd;
	int pipes[N][2], i, k, left = 0;
	char buf[N];

	CHECK_EQ(zc_probe(&p), 0);
	if (!(p.caps & ZC_CAP_DEFER_TASKRUN))
		skip("no DEFER_TASKRUN");
	k = zc_ring_create(&rc, &r);
	if (k == -EPERM || k == -ENOSYS)
		skip("io_uring is not available to this process");
	CHECK_EQ(k, 0);
	for (i = 0; i < N; i++) {
		struct io_uring_sqe *sqe;

		CHECK_EQ(pipe2(pipes[i], O_NONBLOCK | O_CLOEXEC), 0);
		sqe = io_uring_get_sqe(&r->ring);
		CHECK(sqe != NULL);
		io_uring_prep_read(sqe, pipes[i][0], &buf[i], 1, 0);
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		io_uring_sqe_set_data64(sqe, 0);	/* nobody's: libzc skips it */
	}
	/* Submit: the pipes are empty, every read waits on its pipe's poll. */
	CHECK_EQ(zc_flush(r, c, 64), 0);
	for (i = 0; i < N; i++)
		CHECK_EQ(write(pipes[i][1], "x", 1), 1);
	/* N task-work items queued, one eventfd signal. */
	pfd = (struct pollfd){ .fd = zc_ring_event_fd(r), .events = POLLIN };
	/* 1000 ms: from a poll wakeup the kernel (7.2) signals it from an RCU
	 * callback (io_uring/eventfd.c: __io_eventfd_signal, defer). */
	CHECK_EQ(poll(&pfd, 1, 1000), 1);
	CHECK_EQ(zc_reap(r, c, 64), 0);
	for (i = 0; i < N; i++) {
		int inq = -1;

		CHECK_EQ(ioctl(pipes[i][0], FIONREAD, &inq), 0);
		left += inq;
	}
	if (left)
		fprintf(stderr, "defer_leftover: %d of %d reads not run after one reap\n", left, N);
	CHECK_EQ(left, 0);
	for (i = 0; i < N; i++)
		CHECK_EQ(buf[i], 'x');
	/* Nothing left over, so nothing announced. */
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	/* A flag the kernel left set on an empty list (a producer sets it
	 * after its push, the running enter took the item): one reap clears
	 * it and announces nothing, or every reap re-enters 64 times and
	 * wakes the loop again (a busy loop on an idle ring). */
	__atomic_fetch_or(r->ring.sq.kflags, IORING_SQ_TASKRUN, __ATOMIC_SEQ_CST);
	CHECK_EQ(zc_reap(r, c, 64), 0);
	CHECK(!(IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_TASKRUN));
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	for (i = 0; i < N; i++) {
		close(pipes[i][0]);
		close(pipes[i][1]);
	}
	zc_ring_destroy(r);
	printf("defer_leftover: %d reads that post no CQE, all run by one reap\n", N);
	return 0;
}
