// SPDX-License-Identifier: MIT
/*
 * TCP sends through every path (copy, zero-copy, zero-copy from a fixed
 * buffer, sendmsg) keep stream order for any batch size and any number in
 * flight, and each yields exactly one record with the full length.  A
 * reader thread checks every byte against the position pattern.
 */
#include "helpers.h"

#define WINDOW 64
#define BUF_SIZE 65536

struct slot {
	uint8_t *mem;
	uint32_t len;
	int busy;
};

static struct slot slots[WINDOW];
static uint64_t stream_off;
static unsigned long sends, records, zc_flagged, native_records;

static uint32_t next_len(unsigned i)
{
	/* Mixed sizes: tiny, odd, page sized, and full buffers. */
	static const uint32_t sizes[] = { 1, 7, 100, 4096, 4097, 16384,
					  33333, 65536 };

	return sizes[(i * 2654435761u >> 7) % 8];
}

static void queue_one(struct zc_ring *r, struct zc_pool *pool, int fd,
		      unsigned i, unsigned mode, uint32_t max_len)
{
	struct slot *s = &slots[i];
	uint32_t len = next_len(sends);
	int ret;

	if (len > max_len)
		len = max_len;
	CHECK(!s->busy);
	fill_pattern(s->mem, stream_off, len);
	stream_off += len;
	s->len = len;
	s->busy = 1;
	switch (mode % 5) {
	case 0:
		ret = zc_send_fixed(r, fd, pool, i, 0, len, ZC_SEND_ZEROCOPY, i);
		break;
	case 1:
		ret = zc_send(r, fd, s->mem, len, ZC_SEND_ZEROCOPY, i);
		break;
	case 2:
		ret = zc_send(r, fd, s->mem, len, 0, i);
		break;
	case 3: {
		struct iovec iov[2] = {
			{ s->mem, len / 2 }, { s->mem + len / 2, len - len / 2 },
		};
		ret = zc_sendmsg(r, fd, iov, 2, NULL, 0, ZC_SEND_ZEROCOPY, i);
		break;
	}
	default:
		ret = zc_send_fixed(r, fd, pool, i, 0, len, 0, i);
		break;
	}
	CHECK_EQ(ret, 0);
	sends++;
}

static void account(const struct zc_completion *c, unsigned mode)
{
	struct slot *s;

	CHECK(c->user_data < WINDOW);
	s = &slots[c->user_data];
	CHECK(s->busy);
	CHECK_EQ(c->res, (int32_t)s->len);
	CHECK(c->cqes >= 1);
	if (c->flags & (ZC_COMP_ZC_USED | ZC_COMP_ZC_COPIED))
		zc_flagged++;
	if (c->flags & ZC_COMP_NATIVE) {
		native_records++;
		CHECK_EQ(c->cqes, 1);
	}
	if (mode % 5 == 2 || mode % 5 == 4)
		CHECK_EQ(c->op, ZC_OP_SEND);
	s->busy = 0;
	records++;
}

static void run(uint32_t ring_flags, unsigned unified)
{
	struct zc_ring_config cfg = { .sq_entries = 128, .flags = ring_flags,
				      .unified = unified };
	struct zc_pool_config pc = { .count = WINDOW, .size = BUF_SIZE };
	static const unsigned batches[] = { 1, 2, 3, 5, 8, 16, 31, 64 };
	struct zc_completion cs[WINDOW];
	struct verifier v;
	struct zc_pool *pool;
	struct zc_ring *r;
	int tx, rx, n;
	unsigned b, i, k, total, mode;

	CHECK_EQ(zc_ring_create(&cfg, &r), 0);
	CHECK_EQ(zc_pool_create(r, &pc, &pool), 0);
	for (i = 0; i < WINDOW; i++)
		slots[i].mem = (uint8_t *)zc_pool_base(pool) + (size_t)i * BUF_SIZE;
	tcp_pair(&tx, &rx);
	verifier_start(&v, rx);
	stream_off = sends = records = zc_flagged = native_records = 0;

	/* Batches: b sends queued, one submit, then all b records. */
	for (b = 0; b < sizeof(batches) / sizeof(batches[0]); b++) {
		for (k = 0; k < scaled(20); k++) {
			mode = b + k;
			for (i = 0; i < batches[b]; i++)
				queue_one(r, pool, tx, i, mode + i, BUF_SIZE);
			CHECK(zc_submit(r) >= 0);
			for (total = 0; total < batches[b]; total += n) {
				n = zc_wait(r, cs, WINDOW, 1, 5000);
				CHECK(n > 0);
				for (i = 0; i < (unsigned)n; i++)
					account(&cs[i], mode + cs[i].user_data);
			}
			CHECK_EQ(zc_ring_pending(r), 0);
		}
	}

	/* Pipelined: a full window in flight, refilled as records come. */
	for (i = 0; i < WINDOW; i++)
		queue_one(r, pool, tx, i, i, 2048);
	total = scaled_vm(100000);
	while (records < sends) {
		n = zc_wait(r, cs, WINDOW, 1, 5000);
		CHECK(n > 0);
		for (i = 0; i < (unsigned)n; i++) {
			unsigned s = (unsigned)cs[i].user_data;

			account(&cs[i], s);
			if (sends < total + 8 * 20 * 8 + WINDOW)
				queue_one(r, pool, tx, s, s, 2048);
		}
		CHECK(zc_submit(r) >= 0);
	}
	CHECK_EQ(records, sends);
	CHECK(sends >= total);
	CHECK_EQ(zc_ring_pending(r), 0);
	CHECK_EQ(zc_pool_inflight(pool), 0);

	verifier_finish(&v, tx, stream_off);
	/* usage is reported where libzc merges, never in one kernel CQE */
	if (zc_ring_unified_native(r)) {
		CHECK(native_records > 0);
		CHECK_EQ(zc_flagged, 0);
	} else {
		CHECK_EQ(native_records, 0);
		CHECK(zc_flagged > 0);
	}
	printf("flags %#x unified %u: %lu sends, %lu records, %llu bytes in order%s\n",
	       ring_flags, unified, sends, records,
	       (unsigned long long)v.bytes,
	       zc_ring_unified_native(r) ? " (native)" : "");
	CHECK_EQ(zc_pool_destroy(pool), 0);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
}

int main(void)
{
	run(0, ZC_UNIFIED_AUTO);
	run(ZC_RING_DEFER_TASKRUN, ZC_UNIFIED_AUTO);
	run(ZC_RING_COOP_TASKRUN | ZC_RING_REGISTERED_FD, ZC_UNIFIED_USERSPACE);
	return 0;
}
