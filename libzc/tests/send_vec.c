// SPDX-License-Identifier: MIT
/*
 * zc_sendv_fixed(): one SENDMSG_ZC from several registered pool buffers.
 * Bad spans are refused with -EINVAL before anything is queued; valid
 * vectors, mixed with single fixed sends and copies on one TCP socket,
 * arrive in order byte for byte, each request yields one record with its
 * total, and every listed buffer is held until that record.
 */
#include "helpers.h"

#define WINDOW 24		/* requests in flight */
#define NBUF (WINDOW * ZC_MAX_IOV)	/* never short of a free buffer */
#define BUF_SIZE 16384

struct inflight {
	int busy;
	uint32_t total;
	uint32_t nspans;
	struct zc_span spans[ZC_MAX_IOV];
};

static struct inflight reqs[WINDOW];
static uint8_t buf_busy[NBUF];
static uint64_t stream_off;
static unsigned long sent, records, vectors;
static uint32_t rnd = 12345;

static uint32_t next_rand(void)
{
	rnd = rnd * 1103515245u + 12345u;
	return rnd >> 8;
}

static uint8_t *buf_at(struct zc_pool *p, uint32_t b)
{
	return (uint8_t *)zc_pool_base(p) + (size_t)b * BUF_SIZE;
}

static int free_buf(void)
{
	uint32_t start = next_rand() % NBUF, i;

	for (i = 0; i < NBUF; i++) {
		uint32_t b = (start + i) % NBUF;

		if (!buf_busy[b])
			return (int)b;
	}
	return -1;
}

static void bad_input(struct zc_ring *r, struct zc_pool *pool, int fd)
{
	struct zc_span v[ZC_MAX_IOV + 1] = { { .buf = 0, .len = 10 } };
	struct zc_ring *other = ring_new(0);
	struct zc_pool_config pc = { .count = 1, .size = 4096 };
	struct zc_pool *foreign;

	CHECK_EQ(zc_sendv_fixed(r, fd, pool, v, 1, 0, 1), -EINVAL);	/* copy */
	CHECK_EQ(zc_sendv_fixed(r, fd, pool, v, 1, ZC_SEND_ZEROCOPY | 64, 1), -EINVAL);
	CHECK_EQ(zc_sendv_fixed(r, fd, pool, v, 0, ZC_SEND_ZEROCOPY, 1), -EINVAL);
	CHECK_EQ(zc_sendv_fixed(r, fd, pool, v, ZC_MAX_IOV + 1, ZC_SEND_ZEROCOPY, 1), -EINVAL);
	CHECK_EQ(zc_sendv_fixed(r, fd, NULL, v, 1, ZC_SEND_ZEROCOPY, 1), -EINVAL);
	CHECK_EQ(zc_sendv_fixed(r, fd, pool, NULL, 1, ZC_SEND_ZEROCOPY, 1), -EINVAL);
	v[0].buf = NBUF;
	CHECK_EQ(zc_sendv_fixed(r, fd, pool, v, 1, ZC_SEND_ZEROCOPY, 1), -EINVAL);
	v[0].buf = 0; v[0].off = BUF_SIZE - 5;
	CHECK_EQ(zc_sendv_fixed(r, fd, pool, v, 1, ZC_SEND_ZEROCOPY, 1), -EINVAL);
	v[0].off = BUF_SIZE + 1; v[0].len = 0;
	CHECK_EQ(zc_sendv_fixed(r, fd, pool, v, 1, ZC_SEND_ZEROCOPY, 1), -EINVAL);
	v[0].off = 0; v[0].len = 10; v[0].reserved = 1;
	CHECK_EQ(zc_sendv_fixed(r, fd, pool, v, 1, ZC_SEND_ZEROCOPY, 1), -EINVAL);
	v[0].reserved = 0;
	CHECK_EQ(zc_pool_create(other, &pc, &foreign), 0);
	CHECK_EQ(zc_sendv_fixed(r, fd, foreign, v, 1, ZC_SEND_ZEROCOPY, 1), -EXDEV);
	zc_ring_destroy(other);
	/* Nothing was queued or held. */
	CHECK_EQ(zc_ring_pending(r), 0);
	CHECK_EQ(zc_pool_inflight(pool), 0);
}

/* Queue request slot i: a vector (most), a single fixed send or a copy. */
static void queue_one(struct zc_ring *r, struct zc_pool *pool, int fd,
		      unsigned i)
{
	struct inflight *q = &reqs[i];
	uint32_t kind = next_rand() % 8, n, k;
	int ret;

	n = kind < 6 ? 1 + next_rand() % ZC_MAX_IOV : 1;
	q->total = 0;
	q->nspans = 0;
	for (k = 0; k < n; k++) {
		int b = free_buf();
		struct zc_span *v = &q->spans[k];

		if (b < 0)
			break;
		v->buf = (uint32_t)b;
		v->off = next_rand() % 64 ? 0 : next_rand() % BUF_SIZE;
		v->len = 1 + next_rand() % (BUF_SIZE - v->off);
		v->reserved = 0;
		fill_pattern(buf_at(pool, v->buf) + v->off, stream_off, v->len);
		stream_off += v->len;
		q->total += v->len;
		buf_busy[b] = 1;
		q->nspans++;
	}
	CHECK(q->nspans > 0);
	if (kind < 6) {
		ret = zc_sendv_fixed(r, fd, pool, q->spans, q->nspans,
				     ZC_SEND_ZEROCOPY, i);
		vectors++;
	} else {
		ret = zc_send_fixed(r, fd, pool, q->spans[0].buf,
				    q->spans[0].off, q->spans[0].len,
				    kind == 6 ? ZC_SEND_ZEROCOPY : 0, i);
	}
	CHECK_EQ(ret, 0);
	for (k = 0; k < q->nspans; k++)
		CHECK(zc_pool_buf_inflight(pool, q->spans[k].buf) >= 1);
	q->busy = 1;
	sent++;
}

static void account(struct zc_pool *pool, const struct zc_completion *c)
{
	struct inflight *q;
	uint32_t k;

	CHECK(c->user_data < WINDOW);
	q = &reqs[c->user_data];
	CHECK(q->busy);
	CHECK_EQ(c->res, (int32_t)q->total);
	if (c->flags & ZC_COMP_NATIVE)
		CHECK_EQ(c->cqes, 1);
	/* Released with the record, not before. */
	for (k = 0; k < q->nspans; k++) {
		CHECK_EQ(zc_pool_buf_inflight(pool, q->spans[k].buf), 0);
		buf_busy[q->spans[k].buf] = 0;
	}
	q->busy = 0;
	records++;
}

static void run(uint32_t ring_flags, unsigned unified)
{
	struct zc_ring_config cfg = { .sq_entries = 64, .flags = ring_flags,
				      .unified = unified };
	struct zc_pool_config pc = { .count = NBUF, .size = BUF_SIZE };
	struct zc_completion cs[WINDOW];
	struct verifier v;
	struct zc_pool *pool;
	struct zc_ring *r;
	unsigned i, total = scaled_vm(20000);
	int tx, rx, n;

	CHECK_EQ(zc_ring_create(&cfg, &r), 0);
	CHECK_EQ(zc_pool_create(r, &pc, &pool), 0);
	CHECK_EQ(zc_pool_region_buffers(pool), NBUF);
	tcp_pair(&tx, &rx);
	bad_input(r, pool, tx);
	verifier_start(&v, rx);
	memset(buf_busy, 0, sizeof(buf_busy));
	memset(reqs, 0, sizeof(reqs));
	stream_off = sent = records = vectors = 0;

	for (i = 0; i < WINDOW; i++)
		queue_one(r, pool, tx, i);
	while (records < sent) {
		CHECK(zc_submit(r) >= 0);
		n = zc_wait(r, cs, WINDOW, 1, 5000);
		CHECK(n > 0);
		for (i = 0; i < (unsigned)n; i++)
			account(pool, &cs[i]);
		for (i = 0; i < (unsigned)n && sent < total; i++)
			queue_one(r, pool, tx, (unsigned)cs[i].user_data);
	}
	CHECK_EQ(zc_pool_inflight(pool), 0);
	CHECK_EQ(zc_ring_pending(r), 0);
	verifier_finish(&v, tx, stream_off);
	printf("flags %#x unified %u: %lu requests (%lu vectors), %llu bytes in order%s\n",
	       ring_flags, unified, sent, vectors, (unsigned long long)v.bytes,
	       zc_ring_unified_native(r) ? " (native)" : "");
	CHECK_EQ(zc_pool_destroy(pool), 0);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
}

int main(void)
{
	struct zc_probe p;

	zc_probe(&p);
	if (!(p.caps & ZC_CAP_SENDMSG_ZC_FIXED)) {
		struct zc_ring *r = ring_new(0);
		struct zc_pool_config pc = { .count = 1, .size = 4096 };
		struct zc_span v = { .buf = 0, .len = 1 };
		struct zc_pool *pool;

		CHECK_EQ(zc_pool_create(r, &pc, &pool), 0);
		CHECK_EQ(zc_sendv_fixed(r, 0, pool, &v, 1, ZC_SEND_ZEROCOPY, 1),
			 -EOPNOTSUPP);
		zc_ring_destroy(r);
		skip("kernel without SENDMSG_ZC from registered vectors (< 6.15): -EOPNOTSUPP checked");
	}
	run(0, ZC_UNIFIED_AUTO);
	run(ZC_RING_DEFER_TASKRUN, ZC_UNIFIED_AUTO);
	run(ZC_RING_COOP_TASKRUN, ZC_UNIFIED_USERSPACE);
	return 0;
}
