// SPDX-License-Identifier: MIT
/*
 * Pool memory is never unmapped or reused while a request may read it:
 * every send reading a pool's memory holds it (copying sendmsg with
 * several iovecs, a send spanning buffers, fixed and vectored sends), so
 * zc_pool_destroy() says -EBUSY; another ring's pool is refused (-EXDEV);
 * with ZC_POOL_RETIRE a destroyed pool reads zeros where it was; and a
 * ring destroyed while the kernel still holds a send leaves the memory as
 * zero pages instead of handing the range to the next mmap.
 */
#include <signal.h>
#include <sys/mman.h>

#include "helpers.h"

#define BUF 65536
#define NBUF 8

static void *drain(void *arg)
{
	static char buf[65536];

	while (read(*(int *)arg, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

/* Queue a send that cannot finish (the peer does not read and its
 * buffers are full), check the pool is held, then let it finish. */
static void held_until_done(struct zc_ring *r, struct zc_pool *p, int kind)
{
	uint8_t *base = zc_pool_base(p);
	struct iovec iov[2] = {
		{ base, BUF },			/* buffer 0 */
		{ base + 3 * BUF + 100, 1000 },	/* inside buffer 3 */
	};
	static uint8_t filler[4 << 20];
	struct zc_completion c;
	pthread_t th;
	int tx, rx, sndbuf = 65536;

	tcp_pair(&tx, &rx);
	setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	/* fill the pipe first, so the pool send waits behind it */
	CHECK_EQ(zc_send(r, tx, filler, sizeof(filler), 0, 1), 0);
	switch (kind) {
	case 0:		/* copying sendmsg of two pool buffers (coalesced) */
		CHECK_EQ(zc_sendmsg(r, tx, iov, 2, NULL, 0, 0, 2), 0);
		break;
	case 1:		/* a plain send spanning buffers 1..2 */
		CHECK_EQ(zc_send(r, tx, base + BUF + 10, BUF, 0, 2), 0);
		break;
	case 2:		/* zero-copy from inside buffer 5 */
		CHECK_EQ(zc_send(r, tx, base + 5 * BUF, 10, ZC_SEND_ZEROCOPY,
				 2), 0);
		break;
	default:	/* fixed */
		CHECK_EQ(zc_send_fixed(r, tx, p, 6, 0, BUF, ZC_SEND_ZEROCOPY,
				       2), 0);
		break;
	}
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(zc_pool_inflight(p), 1);
	switch (kind) {
	case 0:
		CHECK_EQ(zc_pool_buf_inflight(p, 0), 1);
		CHECK_EQ(zc_pool_buf_inflight(p, 3), 1);
		break;
	case 1:
		CHECK_EQ(zc_pool_buf_inflight(p, 1), 1);
		CHECK_EQ(zc_pool_buf_inflight(p, 2), 1);
		break;
	case 2:
		CHECK_EQ(zc_pool_buf_inflight(p, 5), 1);
		break;
	default:
		CHECK_EQ(zc_pool_buf_inflight(p, 6), 1);
		break;
	}
	CHECK_EQ(zc_pool_destroy(p), -EBUSY);
	CHECK(pthread_create(&th, NULL, drain, &rx) == 0);
	c = wait_one(r);
	CHECK_EQ(c.user_data, 1);
	c = wait_one(r);
	CHECK_EQ(c.user_data, 2);
	CHECK(c.res > 0);
	CHECK_EQ(zc_pool_inflight(p), 0);
	for (int b = 0; b < NBUF; b++)
		CHECK_EQ(zc_pool_buf_inflight(p, b), 0);
	close(tx);
	pthread_join(th, NULL);
	close(rx);
}

static int mapped_at(void *addr, size_t len)
{
	void *q = mmap(addr, len, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int same = q == addr;

	CHECK(q != MAP_FAILED);
	munmap(q, len);
	return same;
}

int main(void)
{
	struct zc_pool_config pc = { .count = NBUF, .size = BUF };
	struct zc_ring *r, *other;
	struct zc_pool *p, *foreign;
	uint8_t *base;
	int tx, rx, kind;

	signal(SIGPIPE, SIG_IGN);
	r = ring_new(0);
	other = ring_new(ZC_RING_DEFER_TASKRUN);
	CHECK_EQ(zc_pool_create(r, &pc, &p), 0);
	for (kind = 0; kind < 4; kind++)
		held_until_done(r, p, kind);

	/* another ring's pool: refused at once, nothing held */
	CHECK_EQ(zc_pool_create(other, &pc, &foreign), 0);
	tcp_pair(&tx, &rx);
	CHECK_EQ(zc_send_fixed(r, tx, foreign, 0, 0, 10, 0, 1), -EXDEV);
	CHECK_EQ(zc_send_fixed(r, tx, foreign, 0, 0, 10, ZC_SEND_ZEROCOPY, 1),
		 -EXDEV);
	CHECK_EQ(zc_pool_inflight(foreign), 0);
	CHECK_EQ(zc_ring_pending(r), 0);
	CHECK_EQ(zc_pool_destroy(foreign), 0);
	CHECK_EQ(zc_pool_destroy(p), 0);

	/* ZC_POOL_RETIRE: zeros stay readable where the pool was */
	pc.flags = ZC_POOL_RETIRE;
	CHECK_EQ(zc_pool_create(r, &pc, &p), 0);
	base = zc_pool_base(p);
	memset(base, 0xab, (size_t)NBUF * BUF);
	CHECK_EQ(zc_pool_destroy(p), 0);
	CHECK_EQ(base[0], 0);
	CHECK_EQ(base[(size_t)NBUF * BUF - 1], 0);
	base[5] = 1;	/* a stale writer does not crash either */
	CHECK(!mapped_at(base, (size_t)NBUF * BUF));	/* range still taken */
	CHECK_EQ(munmap(base, (size_t)NBUF * BUF), 0);	/* the caller's */

	/*
	 * Destroyed while the kernel holds a zero-copy send whose bytes sit
	 * in a socket nobody reads (libzc waits, bounded, then gives up):
	 * the pool's range becomes zero pages, not a hole a new mapping
	 * could take while the kernel may still read it.
	 */
	pc.flags = 0;
	CHECK_EQ(zc_pool_create(other, &pc, &p), 0);
	base = zc_pool_base(p);
	memset(base, 0xcd, (size_t)NBUF * BUF);
	{
		/* Close the peer's window (it never reads), then make room
		 * in our send queue: the send below stays queued there. */
		static uint8_t filler[65536];
		int sndbuf = 65536;

		setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		while (send(tx, filler, sizeof(filler), MSG_DONTWAIT) > 0)
			;
		CHECK(errno == EAGAIN);
		sndbuf = 4 << 20;
		setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	}
	CHECK_EQ(zc_send_fixed(other, tx, p, 0, 0, BUF, ZC_SEND_ZEROCOPY, 1), 0);
	CHECK(zc_submit(other) >= 0);
	{
		struct zc_completion c;

		/* the send part is done, the buffer is still the kernel's */
		CHECK_EQ(zc_wait(other, &c, 1, 1, 300), 0);
	}
	CHECK_EQ(zc_pool_inflight(p), 1);
	zc_ring_destroy(other);
	CHECK_EQ(base[0], 0);
	CHECK(!mapped_at(base, (size_t)NBUF * BUF));
	close(tx);
	close(rx);
	zc_ring_destroy(r);
	return 0;
}
