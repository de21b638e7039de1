// SPDX-License-Identifier: MIT
/*
 * One flush of a DEFER_TASKRUN ring takes every receive that has arrived.
 * The kernel runs at most 20 items of a ring's deferred task work per
 * io_uring_enter() (Linux >= 6.13, IO_LOCAL_TW_DEFAULT_MAX) and leaves the
 * rest for the next enter: with N sockets' data in, one zc_flush() used
 * to return 20 of the N receives.  Here N sockets each get data; once the
 * data sits in every socket (SIOCINQ: its receive's task work is queued,
 * and on a DEFER_TASKRUN ring nothing but an enter runs it), a single
 * zc_flush() must return all N chunks, byte-exact.
 */
#include <linux/sockios.h>
#include <sys/ioctl.h>

#include "recv_common.h"

#define N 100
#define MSG 100
#define BUF 4096

int main(void)
{
	struct zc_probe p;
	struct zc_ring_config rc = { .sq_entries = 256, .flags = ZC_RING_DEFER_TASKRUN };
	struct zc_rx_config cfg = { .mode = ZC_RX_BUFRING, .buf_size = BUF, .area_size = 2 * N * BUF };
	struct zc_completion c[256];
	struct rstream st[N] = { 0 };
	struct zc_ring *r;
	struct zc_rx *rx;
	int tx[N], rxfd[N], i, k, seen[N] = { 0 };
	uint8_t msg[MSG];

	CHECK_EQ(zc_probe(&p), 0);
	if (!(p.caps & ZC_CAP_BUFRING) || !(p.caps & ZC_CAP_RECV_MULTISHOT) ||
	    !(p.caps & ZC_CAP_DEFER_TASKRUN))
		skip("no provided-buffer rings, multishot receive or DEFER_TASKRUN");
	k = zc_ring_create(&rc, &r);
	if (k == -EPERM || k == -ENOSYS)
		skip("io_uring is not available to this process");
	CHECK_EQ(k, 0);
	CHECK_EQ(zc_rx_create(r, &cfg, &rx), 0);
	for (i = 0; i < N; i++) {
		tcp_pair(&tx[i], &rxfd[i]);
		CHECK_EQ(zc_recv(r, rx, rxfd[i], (uint64_t)i), 0);
	}
	/* Arm every receive: nothing to read yet, so no records. */
	CHECK_EQ(zc_flush(r, c, 256), 0);
	fill_pattern(msg, 0, MSG);
	for (i = 0; i < N; i++)
		CHECK_EQ(write(tx[i], msg, MSG), MSG);
	/* Wait (no deadline asserted) until the data is in every socket. */
	for (i = 0; i < N; i++) {
		int inq = 0;

		for (;;) {
			CHECK_EQ(ioctl(rxfd[i], SIOCINQ, &inq), 0);
			if (inq == MSG)
				break;
			usleep(1000);
		}
	}
	k = zc_flush(r, c, 256);
	if (k != N)
		fprintf(stderr, "one flush returned %d of %d receives\n", k, N);
	CHECK_EQ(k, N);
	for (i = 0; i < k; i++) {
		CHECK(c[i].flags & ZC_COMP_MORE);
		CHECK(c[i].user_data < N);
		CHECK(!seen[c[i].user_data]);
		seen[c[i].user_data] = 1;
		check_chunk(rx, &st[c[i].user_data], &c[i]);
		CHECK_EQ(c[i].res, MSG);
		CHECK_EQ(zc_rx_release(rx, c[i].aux), 0);
	}
	/* The peers close: each receive ends at EOF. */
	for (i = 0; i < N; i++)
		close(tx[i]);
	while (zc_ring_pending(r) > 0) {
		k = zc_wait(r, c, 256, 1, 10000);
		CHECK(k > 0);
		for (i = 0; i < k; i++)
			CHECK(!(c[i].flags & ZC_COMP_MORE) && c[i].res == 0);
	}
	for (i = 0; i < N; i++)
		close(rxfd[i]);
	CHECK_EQ(zc_rx_destroy(rx), 0);
	zc_ring_destroy(r);
	return 0;
}
