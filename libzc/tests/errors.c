// SPDX-License-Identifier: MIT
/* Failures come back as one record with -errno, on every path. */
#include <fcntl.h>
#include <signal.h>

#include "helpers.h"

static struct zc_completion send_and_wait(struct zc_ring *r, int fd,
					  const void *buf, uint32_t len,
					  uint32_t flags)
{
	CHECK_EQ(zc_send(r, fd, buf, len, flags, 7), 0);
	CHECK(zc_submit(r) >= 0);
	return wait_one(r);
}

int main(void)
{
	static char buf[65536];
	struct zc_completion c;
	struct zc_ring *r = ring_new(ZC_RING_DEFER_TASKRUN);
	int sp[2], tx, rx, i;

	signal(SIGPIPE, SIG_IGN);

	/* AF_UNIX has no zero-copy: the kernel says EOPNOTSUPP. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sp) == 0);
	c = send_and_wait(r, sp[0], buf, 100, ZC_SEND_ZEROCOPY);
	CHECK_EQ(c.res, -EOPNOTSUPP);
	CHECK_EQ(c.user_data, 7);
	/* ... while a copying send works. */
	c = send_and_wait(r, sp[0], buf, 100, 0);
	CHECK_EQ(c.res, 100);
	/* Closed behind libzc's back: it must be told, the number is reused. */
	close(sp[0]);
	close(sp[1]);
	CHECK_EQ(zc_sock_forget(r, sp[0]), 0);

	/* Not a socket, and a closed fd. */
	CHECK_EQ(zc_send(r, open("/dev/null", O_RDONLY), buf, 1, 0, 1),
		 -ENOTSOCK);
	CHECK_EQ(zc_send(r, 1000, buf, 1, 0, 1), -EBADF);
	CHECK_EQ(zc_send(r, -1, buf, 1, 0, 1), -EBADF);

	/* Peer gone: EPIPE or ECONNRESET, never a silent success. */
	tcp_pair(&tx, &rx);
	close(rx);
	for (i = 0; i < 20; i++) {
		c = send_and_wait(r, tx, buf, sizeof(buf),
				  i & 1 ? ZC_SEND_ZEROCOPY : 0);
		if (c.res < 0)
			break;
	}
	CHECK(c.res == -EPIPE || c.res == -ECONNRESET);
	CHECK_EQ(zc_ring_pending(r), 0);
	close(tx);

	/* Shutdown through the ring, then sends fail with EPIPE. */
	tcp_pair(&tx, &rx);
	CHECK_EQ(zc_shutdown(r, tx, SHUT_WR, 3), 0);
	CHECK(zc_submit(r) >= 0);
	c = wait_one(r);
	CHECK_EQ(c.op, ZC_OP_SHUTDOWN);
	CHECK_EQ(c.res, 0);
	c = send_and_wait(r, tx, buf, 10, ZC_SEND_ZEROCOPY);
	CHECK_EQ(c.res, -EPIPE);
	close(tx);
	close(rx);

	/*
	 * A send failing in the middle of a linked chain cuts the chain; the
	 * sends after it are reissued, so only the failed one is missing and
	 * the stream stays in order.
	 */
	{
		static uint8_t good[8][4096];
		struct zc_completion cs[16];
		struct verifier v;
		uint64_t off = 0;
		int got = 0, n, k;

		tcp_pair(&tx, &rx);
		verifier_start(&v, rx);
		for (k = 0; k < 9; k++) {
			if (k == 3) {
				CHECK_EQ(zc_send(r, tx, (void *)8, 100,
						 ZC_SEND_ZEROCOPY, 100), 0);
				continue;
			}
			fill_pattern(good[k - (k > 3)], off, 4096);
			off += 4096;
			CHECK_EQ(zc_send(r, tx, good[k - (k > 3)], 4096,
					 k & 1 ? ZC_SEND_ZEROCOPY : 0, k), 0);
		}
		CHECK(zc_submit(r) >= 0);
		while (got < 9) {
			n = zc_wait(r, cs + got, 16 - got, 1, 5000);
			CHECK(n > 0);
			got += n;
		}
		for (k = 0; k < 9; k++) {
			if (cs[k].user_data == 100)
				CHECK_EQ(cs[k].res, -EFAULT);
			else
				CHECK_EQ(cs[k].res, 4096);
		}
		verifier_finish(&v, tx, off);
		close(tx);
		close(rx);
	}

	zc_ring_destroy(r);
	printf("errors: ok\n");
	return 0;
}
