// SPDX-License-Identifier: MIT
/*
 * A send that did not leave whole is a failure: cut short by a peer reset,
 * by zc_sock_abort() + close, or by zc_cancel_all(), its record has
 * res = -errno and aux = the bytes the kernel did take (never a positive
 * res smaller than the length).  Single and vectored, copy and zero-copy,
 * with and without DEFER_TASKRUN.
 */
#include <linux/sockios.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>

#include "helpers.h"

#define BIG (8u << 20)
#define PEER_READS (1u << 20)

enum mode { M_COPY, M_ZC, M_VEC_COPY, M_VEC_ZC, M__COUNT };
enum cut { C_RESET, C_ABORT, C_CANCEL, C__COUNT };

static const char *mode_name[] = { "copy", "zc", "vec-copy", "vec-zc" };
static const char *cut_name[] = { "peer reset", "abort", "cancel_all" };

static uint8_t *mem;

/* Peer: read exactly PEER_READS bytes, then reset the connection. */
static void *reset_after(void *arg)
{
	int fd = *(int *)arg;
	static __thread uint8_t buf[65536];
	uint32_t got = 0;
	struct linger l = { 1, 0 };

	while (got < PEER_READS) {
		uint32_t want = PEER_READS - got;
		ssize_t n = read(fd, buf, want < sizeof(buf) ? want : sizeof(buf));

		if (n <= 0)
			break;
		got += (uint32_t)n;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
	return NULL;
}

static void queue(struct zc_ring *r, int fd, enum mode m, uint64_t ud)
{
	struct iovec iov[4];
	uint32_t i;

	for (i = 0; i < 4; i++) {
		iov[i].iov_base = mem + i * (BIG / 4);
		iov[i].iov_len = BIG / 4;
	}
	switch (m) {
	case M_COPY:
		CHECK_EQ(zc_send(r, fd, mem, BIG, 0, ud), 0);
		break;
	case M_ZC:
		CHECK_EQ(zc_send(r, fd, mem, BIG, ZC_SEND_ZEROCOPY, ud), 0);
		break;
	case M_VEC_COPY:
		CHECK_EQ(zc_sendmsg(r, fd, iov, 4, NULL, 0, 0, ud), 0);
		break;
	default:
		CHECK_EQ(zc_sendmsg(r, fd, iov, 4, NULL, 0, ZC_SEND_ZEROCOPY,
				    ud), 0);
		break;
	}
}

/* Bytes sitting unsent in fd's send queue. */
static int outq(int fd)
{
	int n = 0;

	CHECK(ioctl(fd, SIOCOUTQ, &n) == 0);
	return n;
}

static void one(uint32_t ring_flags, enum mode m, enum cut cut)
{
	struct zc_ring *r = ring_new(ring_flags);
	struct zc_completion cs[4], big = { 0 }, small = { 0 };
	pthread_t peer;
	int tx, rx, sndbuf = 65536, got = 0, i, n, closed = 0;
	struct linger l = { 1, 0 };

	tcp_pair(&tx, &rx);
	setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	if (cut == C_RESET)
		CHECK(pthread_create(&peer, NULL, reset_after, &rx) == 0);
	/* one big send, and a small one queued behind it */
	queue(r, tx, m, 1);
	CHECK_EQ(zc_send(r, tx, mem, 100, 0, 2), 0);
	CHECK(zc_submit(r) >= 0);

	if (cut != C_RESET) {
		/* Let the kernel take some bytes: the send is under way. */
		for (i = 0; i < 500 && outq(tx) == 0; i++)
			usleep(1000);
		CHECK(outq(tx) > 0);
		n = zc_reap(r, cs, 4);
		CHECK_EQ(n, 0);		/* nobody reads: nothing can finish */
		if (cut == C_ABORT) {
			/* what ZcSocket.close() does */
			setsockopt(tx, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			shutdown(tx, SHUT_RDWR);
			CHECK_EQ(zc_sock_abort(r, tx), 0);
			CHECK_EQ(zc_close(r, tx, 3), 0);
			closed = 1;
		} else {
			CHECK_EQ(zc_cancel_all(r), 0);
			/* The peer goes: unsent zero-copy data is dropped,
			 * so the kernel lets go of the buffer. */
			setsockopt(rx, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
			close(rx);
		}
		CHECK(zc_submit(r) >= 0);
	}
	while (got < 2 + closed) {
		n = zc_wait(r, cs, 4, 1, 10000);
		CHECK(n > 0);
		for (i = 0; i < n; i++) {
			if (cs[i].user_data == 1)
				big = cs[i];
			else if (cs[i].user_data == 2)
				small = cs[i];
			else
				CHECK_EQ(cs[i].res, 0);	/* the close */
		}
		got += n;
	}
	if (big.res >= 0 || big.aux >= BIG || small.res >= 0 ||
	    (cut == C_RESET && big.aux < PEER_READS)) {
		fprintf(stderr, "%s, %s, flags %#x: big res %d aux %llu, "
			"small res %d aux %llu\n", mode_name[m], cut_name[cut],
			ring_flags, big.res, (unsigned long long)big.aux,
			small.res, (unsigned long long)small.aux);
		exit(1);
	}
	/* what the peer read left, at least */
	CHECK(big.res == -ECONNRESET || big.res == -EPIPE ||
	      big.res == -ECANCELED);
	CHECK(small.res == -ECONNRESET || small.res == -EPIPE ||
	      small.res == -ECANCELED);
	CHECK_EQ(small.aux, 0);
	CHECK_EQ(zc_ring_pending(r), 0);
	if (cut == C_RESET)
		pthread_join(peer, NULL);
	if (!closed)
		close(tx);
	if (cut == C_ABORT)
		close(rx);
	zc_ring_destroy(r);
}

int main(void)
{
	static const uint32_t flags[] = { 0, ZC_RING_DEFER_TASKRUN };
	unsigned f, m, c;

	signal(SIGPIPE, SIG_IGN);
	mem = malloc(BIG);
	CHECK(mem);
	fill_pattern(mem, 0, BIG);
	for (f = 0; f < 2; f++)
		for (m = 0; m < M__COUNT; m++)
			for (c = 0; c < C__COUNT; c++)
				one(flags[f], m, c);
	free(mem);
	return 0;
}
