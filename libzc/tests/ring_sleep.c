// SPDX-License-Identifier: MIT
/*
 * zc_ring_sleep(): an event loop sleeps in the ring.  It returns at once
 * when a record or CQE waits (ZC_SLEEP_NONE), on a CQE posted while it
 * sleeps (ZC_SLEEP_OWN), when the loop's epoll fd becomes readable (the
 * ring polls it) and after its timeout (ZC_SLEEP_LOOP); the poll it
 * keeps armed is no request (zc_ring_pending() does not count it) and
 * teardown cancels it.
 */
#include "helpers.h"

#include <sys/epoll.h>
#include <sys/wait.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(void)
{
	struct zc_ring *r = ring_new(0);
	struct epoll_event ev = { .events = EPOLLIN };
	struct zc_completion c;
	static char buf[256];
	int ep = epoll_create1(EPOLL_CLOEXEC), pp[2], tx, rx;
	double t0;

	CHECK(ep >= 0);
	CHECK_EQ(pipe(pp), 0);
	ev.data.fd = pp[0];
	CHECK_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, pp[0], &ev), 0);
	tcp_pair(&tx, &rx);

	/* Nothing: sleeps its timeout. */
	t0 = now_ms();
	CHECK_EQ(zc_ring_sleep(r, ep, 40), ZC_SLEEP_LOOP);
	CHECK(now_ms() - t0 >= 35);
	CHECK_EQ(zc_ring_pending(r), 0);

	/* An fd of the loop becomes readable: the epoll fd wakes the ring. */
	CHECK_EQ(write(pp[1], "x", 1), 1);
	t0 = now_ms();
	CHECK(zc_ring_sleep(r, ep, 5000) >= 0); /* its CQE may be there already */
	CHECK(now_ms() - t0 < 2500);
	/* ...and keeps waking it while the loop has not read it (level). */
	CHECK_EQ(zc_ring_sleep(r, ep, 5000), ZC_SLEEP_NONE);
	CHECK(now_ms() - t0 < 2500);
	CHECK_EQ(zc_reap(r, &c, 1), 0); /* the poll's CQEs are libzc's own */
	CHECK_EQ(read(pp[0], buf, 1), 1);
	CHECK_EQ(zc_ring_sleep(r, ep, 20), ZC_SLEEP_LOOP);
	CHECK_EQ(zc_reap(r, &c, 1), 0);

	/* Written while it sleeps: the loop's wakeup, not the ring's. */
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		usleep(50 * 1000);
		_exit(write(pp[1], "y", 1) == 1 ? 0 : 1);
	}
	t0 = now_ms();
	CHECK_EQ(zc_ring_sleep(r, ep, 5000), ZC_SLEEP_LOOP);
	CHECK(now_ms() - t0 >= 40 && now_ms() - t0 < 2500);
	CHECK_EQ(waitpid(pid, NULL, 0), pid);
	CHECK_EQ(zc_reap(r, &c, 1), 0);
	CHECK_EQ(read(pp[0], buf, 1), 1);

	/* A receive completes while the ring sleeps: it wakes with the CQE. */
	CHECK_EQ(zc_recv_buf(r, rx, buf, sizeof(buf), 7), 0);
	CHECK(zc_submit(r) >= 0);
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		usleep(50 * 1000);
		_exit(write(tx, "hello", 5) == 5 ? 0 : 1);
	}
	t0 = now_ms();
	CHECK_EQ(zc_ring_sleep(r, ep, 5000), ZC_SLEEP_OWN);
	CHECK(now_ms() - t0 < 2500);
	CHECK_EQ(zc_reap(r, &c, 1), 1);
	CHECK_EQ(c.user_data, 7);
	CHECK_EQ(c.res, 5);
	CHECK(now_ms() - t0 >= 40); /* it slept until the write */
	CHECK_EQ(waitpid(pid, NULL, 0), pid);

	/* A record already waiting: returns at once. */
	CHECK_EQ(zc_send(r, tx, buf, 5, 0, 8), 0);
	CHECK(zc_submit(r) >= 0);
	t0 = now_ms();
	while (zc_ring_sleep(r, ep, 5000) >= 0 && zc_reap(r, &c, 1) == 0)
		CHECK(now_ms() - t0 < 2500);
	CHECK_EQ(c.user_data, 8);

	/* Teardown with the poll armed: nothing pending, nothing left. */
	CHECK_EQ(zc_ring_pending(r), 0);
	CHECK_EQ(zc_cancel_all(r), 0);
	zc_ring_destroy(r);
	close(ep);
	close(pp[0]);
	close(pp[1]);
	close(tx);
	close(rx);
	return 0;
}
