// SPDX-License-Identifier: MIT
/*
 * Receive path, on every mode this kernel offers (bufring always; zcrx-nodev
 * where ZCRX_REG_NODEV exists, e.g. the 7.2 VMs): long streams checked byte
 * for byte, several connections sharing one area, and a slow consumer
 * holding chunks so the area runs dry and receives must be re-armed.
 */
#include "recv_common.h"

static const char *mode_name(uint32_t m)
{
	return m == ZC_RX_BUFRING ? "bufring" :
	       m == ZC_RX_ZCRX_NODEV ? "zcrx-nodev" : "zcrx";
}

static uint32_t ring_flags(uint32_t mode)
{
	return mode == ZC_RX_BUFRING ? 0 :
	       ZC_RING_DEFER_TASKRUN | ZC_RING_CQE32;
}

/* One long stream. */
static void long_stream(uint32_t mode, uint32_t buf, uint64_t total)
{
	struct zc_ring *r = ring_new(ring_flags(mode));
	struct zc_rx *rx = rx_new(r, mode, buf, 4u << 20);
	struct zc_rx_info info;
	struct rstream st = { 0 };
	struct sender s;
	int tx, rxfd;

	tcp_pair(&tx, &rxfd);
	sender_start(&s, tx, total, 256u << 10);
	CHECK_EQ(zc_recv(r, rx, rxfd, 0), 0);
	receive_all(r, rx, &st, 1, 0);
	sender_join(&s);
	CHECK_EQ(st.end, 0);
	CHECK_EQ(st.bytes, total);
	zc_rx_info(rx, &info);
	CHECK_EQ(info.mode, mode);
	CHECK_EQ(info.held, 0);
	CHECK_EQ(info.active, 0);
	CHECK_EQ(info.bytes, total);
	printf("%s: long stream %llu MiB in %llu chunks (max %u), rearms %llu, flushes %llu\n",
	       mode_name(mode), (unsigned long long)(total >> 20),
	       (unsigned long long)st.chunks, st.max_chunk,
	       (unsigned long long)info.rearms, (unsigned long long)info.flushes);
	CHECK_EQ(zc_rx_destroy(rx), 0);
	CHECK_EQ(zc_ring_pending(r), 0);
	close(rxfd);
	zc_ring_destroy(r);
}

/* n connections into one area at once. */
static void concurrent(uint32_t mode, unsigned n, uint64_t each)
{
	struct zc_ring *r = ring_new(ring_flags(mode));
	struct zc_rx *rx = rx_new(r, mode, mode == ZC_RX_BUFRING ? 16384 : 0,
				  2u << 20);
	struct rstream st[8] = { 0 };
	struct sender s[8];
	int tx[8], rxfd[8];
	unsigned i;

	CHECK(n <= 8);
	for (i = 0; i < n; i++) {
		tcp_pair(&tx[i], &rxfd[i]);
		CHECK_EQ(zc_recv(r, rx, rxfd[i], i), 0);
		/* an odd write size so chunk and write edges differ */
		sender_start(&s[i], tx[i], each + i * 4099, 65536 + 4099 * i);
	}
	receive_all(r, rx, st, n, 0);
	for (i = 0; i < n; i++) {
		sender_join(&s[i]);
		CHECK_EQ(st[i].end, 0);
		CHECK_EQ(st[i].bytes, each + i * 4099);
		close(rxfd[i]);
	}
	printf("%s: %u concurrent streams of ~%llu MiB ok\n", mode_name(mode),
	       n, (unsigned long long)(each >> 20));
	zc_ring_destroy(r);	/* frees the area too */
}

/* A consumer that holds chunks: a tiny area runs dry over and over (each
 * stream may hold all 16 buffers: recv_quota 16). */
static void slow_consumer(uint32_t mode, uint64_t total)
{
	struct zc_ring *r = ring_new(ring_flags(mode));
	struct zc_rx *rx = rx_new_quota(r, mode, 4096, 16 * 4096, 16);
	struct zc_rx_info info;
	struct rstream st[2] = { 0 };
	struct sender s[2];
	int tx[2], rxfd[2], i;

	for (i = 0; i < 2; i++) {
		tcp_pair(&tx[i], &rxfd[i]);
		CHECK_EQ(zc_recv(r, rx, rxfd[i], (uint64_t)i), 0);
		sender_start(&s[i], tx[i], total, 100000);
	}
	/* hold all but one buffer before giving any back */
	receive_all(r, rx, st, 2, 15);
	zc_rx_info(rx, &info);
	printf("%s: slow consumer, 2 x %llu MiB through 16 buffers, %llu rearms\n",
	       mode_name(mode), (unsigned long long)(total >> 20),
	       (unsigned long long)info.rearms);
	for (i = 0; i < 2; i++) {
		sender_join(&s[i]);
		CHECK_EQ(st[i].end, 0);
		CHECK_EQ(st[i].bytes, total);
		close(rxfd[i]);
	}
	CHECK(info.rearms > 0);
	CHECK_EQ(info.held, 0);
	zc_rx_destroy(rx);
	zc_ring_destroy(r);
}

/*
 * Each record counts the kernel CQEs merged into it: a chunk its own CQE,
 * the final record only the CQEs no earlier record reported (here the
 * EOF's), so the records of a stream add up to the kernel's CQEs.
 */
static void cqe_counts(uint32_t mode)
{
	struct zc_ring *r = ring_new(ring_flags(mode));
	struct zc_rx *rx = rx_new(r, mode, mode == ZC_RX_BUFRING ? 4096 : 0,
				  4u << 20);
	struct zc_completion c;
	struct zc_rx_info info;
	const char *msg[] = { "one", "two", "three" };
	int tx, rxfd;
	unsigned i;

	tcp_pair(&tx, &rxfd);
	CHECK_EQ(zc_recv(r, rx, rxfd, 7), 0);
	CHECK(zc_submit(r) >= 0);
	for (i = 0; i < 3; i++) {
		CHECK_EQ(write(tx, msg[i], strlen(msg[i])), (ssize_t)strlen(msg[i]));
		c = wait_one(r);
		CHECK_EQ(c.op, ZC_OP_RECV);
		CHECK(c.flags & ZC_COMP_MORE);
		CHECK_EQ(c.res, (int32_t)strlen(msg[i]));
		CHECK_EQ(c.cqes, 1);
		CHECK_EQ(zc_rx_release(rx, c.aux), 0);
	}
	close(tx);
	c = wait_one(r);
	CHECK(!(c.flags & ZC_COMP_MORE));
	CHECK_EQ(c.res, 0);
	zc_rx_info(rx, &info);
	CHECK_EQ(info.rearms, 0);
	CHECK_EQ(c.cqes, 1);	/* the EOF alone, not the three chunks again */
	close(rxfd);
	zc_rx_destroy(rx);
	zc_ring_destroy(r);
}

static void run_mode(uint32_t mode)
{
	cqe_counts(mode);
	long_stream(mode, mode == ZC_RX_BUFRING ? 65536 : 0,
		    (uint64_t)scaled(256) << 20);
	if (mode == ZC_RX_BUFRING)
		long_stream(mode, 4096, (uint64_t)scaled(32) << 20);
	concurrent(mode, 4, (uint64_t)scaled(32) << 20);
	slow_consumer(mode, (uint64_t)scaled(8) << 20);
}

int main(void)
{
	struct zc_probe p;

	zc_probe(&p);
	if (!(p.caps & ZC_CAP_IO_URING))
		skip("io_uring is not available");
	run_mode(ZC_RX_BUFRING);
	if (p.caps & ZC_CAP_ZCRX_NODEV)
		run_mode(ZC_RX_ZCRX_NODEV);
	else {
		int maj = 0, min = 0;

		printf("zcrx-nodev: not on this kernel (%s): bufring only\n",
		       p.kernel_release);
		/* In the VMs (7.2, root) it must be there: not a silent skip. */
		sscanf(p.kernel_release, "%d.%d", &maj, &min);
		if (in_vm() && geteuid() == 0 &&
		    (maj > 7 || (maj == 7 && min >= 1))) {
			fprintf(stderr, "zcrx-nodev missing on %s as root\n",
				p.kernel_release);
			return 1;
		}
	}
	return 0;
}
