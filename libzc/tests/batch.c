// SPDX-License-Identifier: MIT
/*
 * zc_flush_batch(): requests described in memory behave exactly like the
 * calls they name.  Bad descriptors are refused one by one with nothing
 * queued; a batch mixing every kind on one TCP socket arrives in order,
 * byte for byte, one record per op; when max_requests are in flight the
 * batch stops at the first -EAGAIN and its rest, queued again after a reap,
 * still keeps stream order; records left in libzc (max 0) are reaped later;
 * a UDP sendmsg with a destination reaches it; zero-copy fixed sends on a
 * UDP socket (libzc's request-less path) give the same records and share
 * max_requests, and their records come back once each, in order, however
 * the caller's max splits them; RX_RELEASE gives received
 * chunks back (count in rcs), refuses another ring's area (-EXDEV) and
 * unknown offsets (-EINVAL).
 */
#include <arpa/inet.h>
#include <stdbool.h>

#include "helpers.h"

#define BUF_SIZE 4096
#define NBUF 64

static struct zc_pool *pool_new(struct zc_ring *r)
{
	struct zc_pool_config pc = { .count = NBUF, .size = BUF_SIZE };
	struct zc_pool *p;

	CHECK_EQ(zc_pool_create(r, &pc, &p), 0);
	return p;
}

static uint8_t *buf_at(struct zc_pool *p, uint32_t b)
{
	return (uint8_t *)zc_pool_base(p) + (size_t)b * BUF_SIZE;
}

static void bad_ops(void)
{
	struct zc_ring *r = ring_new(0);
	struct zc_batch_op ops[3] = {
		{ .kind = 99, .fd = 0, .user_data = 1 },
		{ .kind = ZC_BATCH_SEND, .fd = 0, .user_data = 2, .reserved = 1 },
		{ .kind = ZC_BATCH_SEND_FIXED, .fd = 0, .user_data = 3, .len = 1ull << 33 },
	};
	int32_t rcs[3] = { 1, 1, 1 };
	struct zc_completion c;

	CHECK_EQ(zc_flush_batch(r, ops, 3, rcs, &c, 1), 0);
	CHECK_EQ(rcs[0], -EINVAL);
	CHECK_EQ(rcs[1], -EINVAL);
	CHECK_EQ(rcs[2], -EINVAL);
	CHECK_EQ(zc_ring_pending(r), 0);
	/* n == 0 is a plain zc_flush() */
	CHECK_EQ(zc_flush_batch(r, NULL, 0, NULL, &c, 1), 0);
	zc_ring_destroy(r);
}

struct stream {
	struct zc_ring *r;
	struct zc_pool *pool;
	int tx;
	uint64_t off;		/* stream bytes described so far */
	uint32_t next_buf;
	uint8_t plain[1 << 16];
	uint32_t plain_used;
	struct iovec iov[4];
	struct zc_span spans[4];
};

static uint32_t take_buf(struct stream *s)
{
	uint32_t b = s->next_buf++ % NBUF;

	return b;
}

/* Describe `len` pattern bytes as one op of `kind` at ops[i]. */
static void describe(struct stream *s, struct zc_batch_op *op, uint32_t kind,
		     uint32_t len, uint32_t flags, uint64_t ud)
{
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->fd = s->tx;
	op->user_data = ud;
	op->flags = flags;
	switch (kind) {
	case ZC_BATCH_SEND: {
		uint8_t *p = s->plain + s->plain_used;

		CHECK(s->plain_used + len <= sizeof(s->plain));
		fill_pattern(p, s->off, len);
		s->plain_used += len;
		op->addr = (uintptr_t)p;
		op->len = len;
		break;
	}
	case ZC_BATCH_SEND_FIXED: {
		uint32_t b = take_buf(s);

		fill_pattern(buf_at(s->pool, b) + 100, s->off, len);
		op->pool = (uintptr_t)s->pool;
		op->buf = b;
		op->off = 100;
		op->len = len;
		break;
	}
	case ZC_BATCH_SENDMSG: {
		/* two iovecs over plain memory */
		uint8_t *p = s->plain + s->plain_used;
		uint32_t half = len / 2;

		CHECK(s->plain_used + len <= sizeof(s->plain));
		fill_pattern(p, s->off, len);
		s->plain_used += len;
		s->iov[0] = (struct iovec){ p, half };
		s->iov[1] = (struct iovec){ p + half, len - half };
		op->addr = (uintptr_t)s->iov;
		op->n = 2;
		break;
	}
	case ZC_BATCH_SENDV_FIXED: {
		uint32_t half = len / 2;
		uint32_t b0 = take_buf(s), b1 = take_buf(s);

		fill_pattern(buf_at(s->pool, b0), s->off, half);
		fill_pattern(buf_at(s->pool, b1), s->off + half, len - half);
		s->spans[0] = (struct zc_span){ .buf = b0, .len = half };
		s->spans[1] = (struct zc_span){ .buf = b1, .len = len - half };
		op->pool = (uintptr_t)s->pool;
		op->addr = (uintptr_t)s->spans;
		op->n = 2;
		break;
	}
	}
	s->off += len;
}

/* Every kind, copy and zero-copy, on one stream; then a batch cut by -EAGAIN. */
static void stream_order(void)
{
	struct zc_ring_config cfg = { .sq_entries = 64, .max_requests = 4 };
	static struct stream s;
	struct zc_batch_op ops[8];
	int32_t rcs[8];
	struct zc_completion recs[16];
	struct verifier v;
	int rx, n, i, got = 0, ret;
	uint64_t total;
	bool vec = false;

	memset(&s, 0, sizeof(s));
	ret = zc_ring_create(&cfg, &s.r);
	if (ret == -EPERM || ret == -ENOSYS)
		skip("io_uring is not available to this process");
	CHECK_EQ(ret, 0);
	vec = zc_ring_sendv_fixed(s.r) == 1;
	s.pool = pool_new(s.r);
	tcp_pair(&s.tx, &rx);
	verifier_start(&v, rx);

	/* One of each kind (vectored fixed only where the kernel has it). */
	describe(&s, &ops[0], ZC_BATCH_SEND, 1000, 0, 10);
	describe(&s, &ops[1], ZC_BATCH_SEND_FIXED, 2000, ZC_SEND_ZEROCOPY, 11);
	describe(&s, &ops[2], ZC_BATCH_SENDMSG, 3000, 0, 12);
	describe(&s, &ops[3], vec ? ZC_BATCH_SENDV_FIXED : ZC_BATCH_SEND_FIXED, 4000,
		 vec ? ZC_SEND_ZEROCOPY : 0, 13);
	n = zc_flush_batch(s.r, ops, 4, rcs, recs, 16);
	CHECK(n >= 0);
	for (i = 0; i < 4; i++)
		CHECK_EQ(rcs[i], 0);
	got += n;
	while (got < 4)
		recs[got++] = wait_one(s.r);
	for (i = 0; i < 4; i++) {
		/* records of one stream come back in order for copies; match by tag */
		uint64_t ud = recs[i].user_data;

		CHECK(ud >= 10 && ud <= 13);
		CHECK_EQ(recs[i].res, (int)(1000 * (ud - 9)));
	}

	/* max_requests is 4: a batch of 8 stops at the 5th with -EAGAIN. */
	s.plain_used = 0;
	for (i = 0; i < 8; i++)
		describe(&s, &ops[i], i % 2 ? ZC_BATCH_SEND_FIXED : ZC_BATCH_SEND,
			 500 + i, 0, 20 + i);
	/* the records stay in libzc (max 0) */
	CHECK_EQ(zc_flush_batch(s.r, ops, 8, rcs, recs, 0), 0);
	for (i = 0; i < 4; i++)
		CHECK_EQ(rcs[i], 0);
	for (i = 4; i < 8; i++)
		CHECK_EQ(rcs[i], -EAGAIN);
	for (got = 0; got < 4;)
		recs[got++] = wait_one(s.r);
	/* the rest, queued again: stream order holds */
	n = zc_flush_batch(s.r, ops + 4, 4, rcs, recs, 16);
	CHECK(n >= 0);
	for (i = 0; i < 4; i++)
		CHECK_EQ(rcs[i], 0);
	for (got = n; got < 4;)
		recs[got++] = wait_one(s.r);

	total = s.off;
	verifier_finish(&v, s.tx, total);
	CHECK_EQ(zc_ring_pending(s.r), 0);
	close(s.tx);
	close(rx);
	zc_pool_destroy(s.pool);
	zc_ring_destroy(s.r);
}

/* SENDMSG with a destination on an unconnected UDP socket. */
static void udp_dest(void)
{
	struct zc_ring *r = ring_new(0);
	struct sockaddr_in to;
	int rx = udp_bound(&to), tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char msg[] = "batched datagram", got[64];
	struct iovec iov = { msg, sizeof(msg) };
	struct zc_batch_op op = {
		.kind = ZC_BATCH_SENDMSG, .fd = tx, .user_data = 7, .addr = (uintptr_t)&iov, .n = 1,
		.dest = (uintptr_t)&to, .dest_len = sizeof(to),
	};
	int32_t rc;
	struct zc_completion c;
	int n;

	CHECK(tx >= 0);
	n = zc_flush_batch(r, &op, 1, &rc, &c, 1);
	CHECK_EQ(rc, 0);
	if (n == 0)
		c = wait_one(r);
	CHECK_EQ(c.user_data, 7);
	CHECK_EQ(c.res, (int)sizeof(msg));
	CHECK_EQ(recv(rx, got, sizeof(got), 0), (ssize_t)sizeof(msg));
	CHECK(!memcmp(got, msg, sizeof(msg)));
	close(tx);
	close(rx);
	zc_ring_destroy(r);
}

/*
 * Zero-copy sends from pool buffers on a connected UDP socket: after the
 * first (which looks the socket up) they take libzc's request-less path.
 * Same records as a request's: bytes, SEND_ZC, both CQEs counted, usage
 * reported (or not, NO_REPORT), buffers held until then; they count
 * against max_requests with the requests (-EAGAIN for both kinds); an
 * error is the send's; a teardown with sends in flight ends them.
 */
static void udp_fixed_zc(void)
{
	/* The request-less path is the userspace merge's (two CQEs per send):
	 * asked for, so the patched kernel's native sends do not bypass it. */
	struct zc_ring_config rcfg = { .sq_entries = 64, .max_requests = 4,
				       .unified = ZC_UNIFIED_USERSPACE };
	struct zc_ring *r;
	struct zc_pool *p;
	struct sockaddr_in to;
	int rx = udp_bound(&to), tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct zc_batch_op ops[6];
	struct zc_completion c[8];
	int32_t rcs[6];
	uint8_t got[BUF_SIZE];
	int n, i;

	CHECK_EQ(zc_ring_create(&rcfg, &r), 0);
	p = pool_new(r);
	CHECK(tx >= 0);
	CHECK_EQ(connect(tx, (struct sockaddr *)&to, sizeof(to)), 0);
	for (i = 0; i < 6; i++)
		memset(buf_at(p, (uint32_t)i), 'a' + i, BUF_SIZE);
	/* one send first, then four at once and a fifth and sixth refused */
	for (int round = 0; round < 2; round++) {
		int k = round ? 6 : 1;

		for (i = 0; i < k; i++)
			ops[i] = (struct zc_batch_op){
				.kind = i == 5 ? ZC_BATCH_SEND : ZC_BATCH_SEND_FIXED, .fd = tx,
				.user_data = 100 + (uint64_t)i, .pool = (uintptr_t)p,
				.buf = (uint32_t)i, .off = 8, .len = 1000,
				.addr = (uintptr_t)got, .flags = ZC_SEND_ZEROCOPY |
				(i == 3 ? ZC_SEND_NO_REPORT : 0),
			};
		n = zc_flush_batch(r, ops, (uint32_t)k, rcs, c, 0);
		CHECK_EQ(n, 0);
		for (i = 0; i < k; i++)
			CHECK_EQ(rcs[i], i < 4 ? 0 : -EAGAIN);
		n = 0;
		while (n < (k < 4 ? k : 4)) {
			int m = zc_wait(r, c + n, 8 - (uint32_t)n, 1, 5000);

			CHECK(m > 0);
			n += m;
		}
		CHECK_EQ(n, k < 4 ? k : 4);
		for (i = 0; i < n; i++) {
			CHECK_EQ(c[i].user_data, 100 + (uint64_t)i);
			CHECK_EQ(c[i].res, 1000);
			CHECK_EQ(c[i].aux, 1000);
			CHECK_EQ(c[i].op, ZC_OP_SEND_ZC);
			CHECK_EQ(c[i].cqes, 2);
			if (i == 3)
				CHECK_EQ(c[i].flags & (ZC_COMP_ZC_USED | ZC_COMP_ZC_COPIED), 0);
			else
				CHECK(c[i].flags & (ZC_COMP_ZC_USED | ZC_COMP_ZC_COPIED));
			CHECK_EQ(zc_pool_buf_inflight(p, (uint32_t)i), 0);
			CHECK_EQ(recv(rx, got, sizeof(got), 0), 1000);
			CHECK_EQ(got[0], 'a' + i);
			CHECK_EQ(got[999], 'a' + i);
		}
		CHECK_EQ(zc_ring_pending(r), 0);
	}
	/* an error is the send's, and the buffer comes back */
	CHECK_EQ(shutdown(tx, SHUT_WR), 0);
	ops[0].flags = ZC_SEND_ZEROCOPY;
	CHECK_EQ(zc_flush_batch(r, ops, 1, rcs, c, 0), 0);
	CHECK_EQ(rcs[0], 0);
	c[0] = wait_one(r);
	CHECK_EQ(c[0].user_data, 100);
	CHECK_EQ(c[0].res, -EPIPE);
	CHECK_EQ(zc_pool_buf_inflight(p, 0), 0);
	CHECK_EQ(zc_ring_pending(r), 0);
	/* torn down with sends in flight (never reaped) */
	close(tx);
	tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	CHECK_EQ(connect(tx, (struct sockaddr *)&to, sizeof(to)), 0);
	CHECK_EQ(zc_sock_opened(r, tx), 0);
	for (i = 0; i < 4; i++) {
		ops[i].fd = tx;
		ops[i].flags = ZC_SEND_ZEROCOPY;
	}
	CHECK_EQ(zc_flush_batch(r, ops, 4, rcs, c, 0), 0);
	for (i = 0; i < 4; i++)
		CHECK_EQ(rcs[i], 0);
	CHECK_EQ(zc_ring_pending(r), 4);	/* their records, not reaped */
	/* four more queued, not submitted: the limit holds for requests too */
	for (i = 0; i < 4; i++)
		CHECK_EQ(zc_send_fixed(r, tx, p, (uint32_t)i + 4, 0, 100,
				       ZC_SEND_ZEROCOPY, 200 + (uint64_t)i), 0);
	CHECK_EQ(zc_send_fixed(r, tx, p, 8, 0, 100, ZC_SEND_ZEROCOPY, 204), -EAGAIN);
	CHECK_EQ(zc_send(r, tx, got, 1, 0, 300), -EAGAIN);
	CHECK_EQ(zc_pool_buf_inflight(p, 4), 1);
	CHECK_EQ(zc_ring_pending(r), 8);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
}

/*
 * Records go straight to the caller's array while none waits in libzc, and
 * into libzc's queue past max or behind one that waits: either way each
 * comes back once, in the order its send finished (on a connected UDP
 * socket over loopback: the order sent).  Rounds of 16 lite sends, reaped
 * 3 at a time, the first half of each round left in libzc (max 0) before
 * the second half's batch reaps.
 */
static void udp_records_split(void)
{
	struct zc_ring_config rcfg = { .sq_entries = 64, .max_requests = 32,
				       .unified = ZC_UNIFIED_USERSPACE };
	struct zc_ring *r;
	struct zc_pool *p;
	struct sockaddr_in to;
	int rx = udp_bound(&to), tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct zc_batch_op ops[16];
	struct zc_completion c[16];
	int32_t rcs[16];
	uint8_t got[BUF_SIZE];
	int n, i, m;

	CHECK_EQ(zc_ring_create(&rcfg, &r), 0);
	p = pool_new(r);
	CHECK(tx >= 0);
	CHECK_EQ(connect(tx, (struct sockaddr *)&to, sizeof(to)), 0);
	for (int round = 0; round < 4; round++) {
		uint64_t base = 1000 * (uint64_t)(round + 1);

		for (i = 0; i < 16; i++)
			ops[i] = (struct zc_batch_op){
				.kind = ZC_BATCH_SEND_FIXED, .fd = tx,
				.user_data = base + (uint64_t)i, .pool = (uintptr_t)p,
				.buf = (uint32_t)i, .len = 100 + (uint64_t)i,
				.flags = ZC_SEND_ZEROCOPY,
			};
		CHECK_EQ(zc_flush_batch(r, ops, 8, rcs, c, 0), 0);
		if (round & 1) {
			/* the first half's records wait in libzc */
			n = zc_wait(r, c, 8, 8, 5000);
			CHECK_EQ(n, 8);
			for (i = 0; i < 8; i++)
				CHECK_EQ(c[i].user_data, base + (uint64_t)i);
			n = 8;
		} else {
			n = 0;
		}
		m = zc_flush_batch(r, ops + 8, 8, rcs + 8, c + n, 3);
		CHECK(m >= 0 && m <= 3);
		n += m;
		while (n < 16) {
			m = zc_wait(r, c + n, 16 - n < 3 ? 16 - (uint32_t)n : 3, 1,
				    5000);
			CHECK(m > 0 && m <= 3);
			n += m;
		}
		for (i = 0; i < 16; i++) {
			CHECK_EQ(rcs[i], 0);
			CHECK_EQ(c[i].user_data, base + (uint64_t)i);
			CHECK_EQ(c[i].res, 100 + i);
			CHECK_EQ(c[i].aux, (uint64_t)(100 + i));
			CHECK_EQ(c[i].op, ZC_OP_SEND_ZC);
			CHECK_EQ(c[i].cqes, 2);
			CHECK_EQ(c[i].aux2, 0);
			CHECK_EQ(recv(rx, got, sizeof(got), 0), 100 + i);
		}
		CHECK_EQ(zc_ring_pending(r), 0);
		CHECK_EQ(zc_reap(r, c, 16), 0);
	}
	zc_pool_destroy(p);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
}

/* Receive a few chunks, hand them back with one RX_RELEASE descriptor. */
static void rx_release(void)
{
	struct zc_ring_config rc2 = { .sq_entries = 64, .max_requests = 2 };
	struct zc_ring *r, *other = ring_new(0);
	struct zc_rx_config cfg = { .mode = ZC_RX_BUFRING, .buf_size = 4096, .area_size = 64 * 4096 };
	struct zc_rx *rx, *rx2;
	struct zc_rx_info info;
	struct zc_completion c;
	uint64_t offs[8];
	uint32_t held = 0;
	struct zc_batch_op op = { .kind = ZC_BATCH_RX_RELEASE };
	int32_t rc;
	char data[3 * 4096];
	int tx, rxfd;

	CHECK_EQ(zc_ring_create(&rc2, &r), 0);
	CHECK_EQ(zc_rx_create(r, &cfg, &rx), 0);
	CHECK_EQ(zc_rx_create(other, &cfg, &rx2), 0);
	tcp_pair(&tx, &rxfd);
	CHECK_EQ(zc_recv(r, rx, rxfd, 1), 0);
	CHECK_EQ(zc_submit(r) >= 0, 1);
	memset(data, 7, sizeof(data));
	CHECK_EQ(write(tx, data, sizeof(data)), (ssize_t)sizeof(data));
	/* 12 KiB into 4 KiB buffers: at least 3 chunks */
	for (uint32_t got = 0; got < sizeof(data);) {
		c = wait_one(r);
		CHECK(c.flags & ZC_COMP_MORE);
		CHECK(c.res > 0);
		CHECK(held < 7);
		offs[held++] = c.aux;
		got += (uint32_t)c.res;
	}
	CHECK(held >= 3);
	CHECK_EQ(zc_rx_info(rx, &info), 0);
	CHECK_EQ(info.held, held);

	/* another ring's area: refused, nothing released */
	op.rx = (uintptr_t)rx2;
	op.addr = (uintptr_t)offs;
	op.n = held;
	CHECK_EQ(zc_flush_batch(r, &op, 1, &rc, &c, 0), 0);
	CHECK_EQ(rc, -EXDEV);
	/* the first chunk alone, behind sends cut by -EAGAIN (the ring takes
	 * 2 requests: the receive and one send): the release still runs */
	{
		struct zc_batch_op b[3] = {
			{ .kind = ZC_BATCH_SEND, .fd = tx, .user_data = 2, .addr = (uintptr_t)data, .len = 1 },
			{ .kind = ZC_BATCH_SEND, .fd = tx, .user_data = 3, .addr = (uintptr_t)data, .len = 1 },
			{ .kind = ZC_BATCH_RX_RELEASE, .rx = (uintptr_t)rx, .addr = (uintptr_t)offs, .n = 1 },
		};
		int32_t rcs[3];
		int sv[2];

		/* sends to an AF_UNIX pair: nothing lands in the receive */
		CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
		b[0].fd = b[1].fd = sv[0];
		CHECK_EQ(zc_flush_batch(r, b, 3, rcs, &c, 0), 0);
		CHECK_EQ(rcs[0], 0);
		CHECK_EQ(rcs[1], -EAGAIN);
		CHECK_EQ(rcs[2], 1);
		c = wait_one(r);
		CHECK_EQ(c.user_data, 2);
		close(sv[0]);
		close(sv[1]);
	}
	op.rx = (uintptr_t)rx;
	/* an offset that is not a held chunk: -EINVAL, the valid ones go back */
	offs[held] = 5;
	op.addr = (uintptr_t)(offs + 1);
	op.n = held;
	CHECK_EQ(zc_flush_batch(r, &op, 1, &rc, &c, 0), 0);
	CHECK_EQ(rc, -EINVAL);
	CHECK_EQ(zc_rx_info(rx, &info), 0);
	CHECK_EQ(info.held, 0);

	close(tx);
	close(rxfd);
	zc_ring_destroy(other);
	zc_ring_destroy(r);
}

int main(void)
{
	bad_ops();
	stream_order();
	udp_dest();
	udp_fixed_zc();
	udp_records_split();
	rx_release();
	printf("batch: ok\n");
	return 0;
}
