// SPDX-License-Identifier: MIT
/*
 * Receive path errors and endings: bad configs, every zcrx refusal this
 * kernel/machine can produce, bogus and double releases, destroy while in
 * use, cancel, peer reset mid-stream, empty stream, and ring teardown with
 * chunks held and a receive parked for lack of buffers (ASan run: no leak).
 */
#include "recv_common.h"

static int create(struct zc_ring *r, struct zc_rx_config cfg, struct zc_rx **rx)
{
	return zc_rx_create(r, &cfg, rx);
}

static void bad_configs(void)
{
	struct zc_ring *r = ring_new(0);
	struct zc_rx *rx;
	struct zc_rx_config c;

	CHECK_EQ(create(r, (struct zc_rx_config){ .mode = 9 }, &rx), -EINVAL);
	CHECK(rx == NULL);
	CHECK_EQ(create(r, (struct zc_rx_config){ .mode = ZC_RX_BUFRING,
		 .buf_size = 1000 }, &rx), -EINVAL);
	CHECK_EQ(create(r, (struct zc_rx_config){ .mode = ZC_RX_BUFRING,
		 .buf_size = 8192, .area_size = 3 * 4096 }, &rx), -EINVAL);
	CHECK_EQ(create(r, (struct zc_rx_config){ .mode = ZC_RX_BUFRING,
		 .ring_entries = 3 }, &rx), -EINVAL);
	CHECK_EQ(create(r, (struct zc_rx_config){ .mode = ZC_RX_BUFRING,
		 .buf_size = 4096, .area_size = 65536u * 4096 }, &rx), -EINVAL);
	CHECK_EQ(create(r, (struct zc_rx_config){ .mode = ZC_RX_BUFRING,
		 .reserved = { 0, 1 } }, &rx), -EINVAL);
	memset(&c, 'x', sizeof(c));
	c.mode = ZC_RX_BUFRING;
	c.buf_size = 0;
	c.area_size = 0;
	c.ring_entries = 0;
	memset(c.reserved, 0, sizeof(c.reserved));
	CHECK_EQ(create(r, c, &rx), -EINVAL);	/* ifname not terminated */
	/* zcrx modes need DEFER_TASKRUN + CQE32 rings */
	CHECK_EQ(create(r, (struct zc_rx_config){ .mode = ZC_RX_ZCRX_NODEV },
		 &rx), -EINVAL);
	CHECK_EQ(create(r, (struct zc_rx_config){ .mode = ZC_RX_ZCRX,
		 .ifname = "lo" }, &rx), -EINVAL);
	zc_ring_destroy(r);
	printf("bad configs refused\n");
}

static void zcrx_refusals(void)
{
	struct zc_ring *r = ring_new(ZC_RING_DEFER_TASKRUN | ZC_RING_CQE32);
	struct zc_rx_info info;
	struct zc_probe p;
	struct zc_rx *rx;
	int ret;

	zc_probe(&p);
	ret = create(r, (struct zc_rx_config){ .mode = ZC_RX_ZCRX,
		     .ifname = "no-such-if0" }, &rx);
	CHECK_EQ(ret, -ENODEV);
	/* loopback has no RX queue a memory provider can bind */
	ret = create(r, (struct zc_rx_config){ .mode = ZC_RX_ZCRX,
		     .ifname = "lo" }, &rx);
	printf("zcrx on lo: %d (%s)\n", ret, strerror(-ret));
	if (!(p.caps & ZC_CAP_RECV_ZC))
		CHECK_EQ(ret, -EOPNOTSUPP);
	else if (geteuid() != 0)
		CHECK(ret == -EPERM || ret == -EOPNOTSUPP);
	else
		CHECK(ret == -EOPNOTSUPP || ret == -EINVAL || ret == -ENODEV);
	/* auto with a named queue falls back to bufring and says why */
	ret = create(r, (struct zc_rx_config){ .ifname = "lo" }, &rx);
	CHECK_EQ(ret, 0);
	zc_rx_info(rx, &info);
	CHECK_EQ(info.mode, ZC_RX_BUFRING);
	CHECK(info.zcrx_errno > 0);
	CHECK_EQ(zc_rx_destroy(rx), 0);

	ret = create(r, (struct zc_rx_config){ .mode = ZC_RX_ZCRX_NODEV }, &rx);
	printf("zcrx-nodev: %d (%s)\n", ret, ret ? strerror(-ret) : "ok");
	if (p.caps & ZC_CAP_ZCRX_NODEV) {
		CHECK_EQ(ret, 0);
		zc_rx_info(rx, &info);
		CHECK_EQ(info.mode, ZC_RX_ZCRX_NODEV);
		CHECK_EQ(info.buf_size, 4096);
		/* RECV_ZC is TCP only */
		{
			struct sockaddr_in a;
			int u = udp_bound(&a);

			CHECK_EQ(zc_recv(r, rx, u, 1), -EPROTONOSUPPORT);
			close(u);
		}
		/* NODEV takes page-sized buffers only */
		CHECK_EQ(create(r, (struct zc_rx_config){
			 .mode = ZC_RX_ZCRX_NODEV, .buf_size = 16384 }, &rx),
			 -EOPNOTSUPP);
	} else if (geteuid() == 0) {
		CHECK_EQ(ret, -EOPNOTSUPP);
	}
	zc_ring_destroy(r);
}

static void releases_and_cancel(void)
{
	struct zc_ring *r = ring_new(0);
	struct zc_rx *rx = rx_new(r, ZC_RX_BUFRING, 4096, 8 * 4096);
	struct zc_completion c;
	struct rstream st = { 0 };
	struct zc_rx_info info;
	struct sender s;
	int tx, rxfd;

	tcp_pair(&tx, &rxfd);
	CHECK_EQ(zc_recv(r, rx, rxfd, 7), 0);
	CHECK_EQ(zc_recv(r, rx, rxfd, 9), -EBUSY);	/* one per socket */
	CHECK_EQ(zc_rx_destroy(rx), -EBUSY);
	sender_start(&s, tx, 1u << 20, 65536);
	c = wait_one(r);
	CHECK_EQ(c.user_data, 7);
	CHECK(c.flags & ZC_COMP_MORE);
	check_chunk(rx, &st, &c);
	CHECK_EQ(zc_rx_release(rx, c.aux + 1), -EINVAL);	/* not a chunk */
	CHECK_EQ(zc_rx_release(rx, 1ull << 40), -EINVAL);
	CHECK_EQ(zc_rx_release(rx, c.aux), 0);
	CHECK_EQ(zc_rx_release(rx, c.aux), -EINVAL);		/* twice */
	CHECK_EQ(zc_recv_cancel(r, rxfd + 1000), -ENOENT);
	CHECK_EQ(zc_recv_cancel(r, rxfd), 0);
	/* chunks already in flight still come, then one -ECANCELED */
	for (;;) {
		c = wait_one(r);
		if (!(c.flags & ZC_COMP_MORE))
			break;
		check_chunk(rx, &st, &c);
		CHECK_EQ(zc_rx_release(rx, c.aux), 0);
	}
	CHECK_EQ(c.res, -ECANCELED);
	zc_rx_info(rx, &info);
	CHECK_EQ(info.active, 0);
	CHECK_EQ(info.held, 0);
	/* the socket is still good: receive the rest with a new request */
	CHECK_EQ(zc_recv(r, rx, rxfd, 0), 0);
	receive_all(r, rx, &st, 1, 0);
	sender_join(&s);
	CHECK_EQ(st.end, 0);
	CHECK_EQ(st.bytes, 1u << 20);
	CHECK_EQ(zc_rx_destroy(rx), 0);
	close(rxfd);
	zc_ring_destroy(r);
	printf("release checks, cancel and resume ok\n");
}

static void reset_and_empty(void)
{
	struct zc_ring *r = ring_new(0);
	struct zc_rx *rx = rx_new(r, ZC_RX_BUFRING, 65536, 1u << 20);
	struct rstream st[2] = { 0 };
	struct sender s;
	int tx, rxfd, tx2, rxfd2;

	/* reset mid-stream */
	tcp_pair(&tx, &rxfd);
	memset(&s, 0, sizeof(s));
	s.fd = tx;
	s.total = 4u << 20;
	s.wsize = 65536;
	s.reset_at_end = 1;
	CHECK(pthread_create(&s.thread, NULL, sender_main, &s) == 0);
	/* empty stream: FIN at once */
	tcp_pair(&tx2, &rxfd2);
	shutdown(tx2, SHUT_WR);
	CHECK_EQ(zc_recv(r, rx, rxfd, 0), 0);
	CHECK_EQ(zc_recv(r, rx, rxfd2, 1), 0);
	receive_all(r, rx, st, 2, 0);
	sender_join(&s);
	printf("reset: %llu bytes verified, then %d\n",
	       (unsigned long long)st[0].bytes, st[0].end);
	CHECK(st[0].end == -ECONNRESET || (st[0].end == 0 &&
	      st[0].bytes == s.total));
	CHECK_EQ(st[1].end, 0);
	CHECK_EQ(st[1].bytes, 0);
	close(tx2);
	close(rxfd);
	close(rxfd2);
	zc_ring_destroy(r);
}

/* Teardown with chunks held and a receive parked: everything freed. */
static void teardown_parked(void)
{
	struct zc_ring *r = ring_new(0);
	/* one stream may take all 4 buffers: the area runs dry */
	struct zc_rx *rx = rx_new_quota(r, ZC_RX_BUFRING, 4096, 4 * 4096, 4);
	struct zc_completion c[16];
	struct zc_rx_info info;
	struct sender s;
	int tx, rxfd, got = 0, k;

	tcp_pair(&tx, &rxfd);
	sender_start(&s, tx, 1u << 20, 65536);
	CHECK_EQ(zc_recv(r, rx, rxfd, 3), 0);
	while (got < 4) {
		k = zc_wait(r, c, 16, 1, 5000);
		CHECK(k > 0);
		got += k;
	}
	CHECK_EQ(got, 4);
	zc_rx_info(rx, &info);
	CHECK_EQ(info.held, 4);
	CHECK_EQ(info.active, 1);
	CHECK_EQ(zc_ring_pending(r), 1);	/* the parked receive */
	/* cancel_all ends the parked receive at once */
	CHECK_EQ(zc_cancel_all(r), 0);
	k = zc_wait(r, c, 16, 1, 5000);
	CHECK_EQ(k, 1);
	CHECK_EQ(c[0].res, -ECANCELED);
	CHECK(!(c[0].flags & ZC_COMP_MORE));
	/* a second one, parked, left to zc_ring_destroy */
	CHECK_EQ(zc_recv(r, rx, rxfd, 4), 0);
	zc_wait(r, c, 16, 0, 50);
	close(rxfd);
	zc_ring_destroy(r);	/* chunks still held: area freed anyway */
	sender_join(&s);
	printf("teardown with held chunks and a parked receive ok\n");
}

/* zc_close() on a receiving socket ends the receive, then closes. */
static void close_while_receiving(void)
{
	struct zc_ring *r = ring_new(0);
	struct zc_rx *rx = rx_new(r, ZC_RX_BUFRING, 4096, 8 * 4096);
	struct zc_completion c[8];
	int tx, rxfd, k, seen = 0;
	int32_t recv_res = 1, close_res = 1;

	tcp_pair(&tx, &rxfd);
	CHECK_EQ(zc_recv(r, rx, rxfd, 1), 0);
	zc_wait(r, c, 8, 0, 20);
	CHECK_EQ(zc_close(r, rxfd, 2), 0);
	while (seen < 2) {
		k = zc_wait(r, c, 8, 1, 5000);
		CHECK(k > 0);
		for (int i = 0; i < k; i++) {
			CHECK(!(c[i].flags & ZC_COMP_MORE));
			if (c[i].user_data == 1)
				recv_res = c[i].res;
			else
				close_res = c[i].res;
			seen++;
		}
	}
	CHECK_EQ(recv_res, -ECANCELED);
	CHECK_EQ(close_res, 0);
	/* the peer sees the close: the socket really is closed */
	{
		char b;

		CHECK_EQ(read(tx, &b, 1), 0);
	}
	close(tx);
	zc_ring_destroy(r);
	printf("zc_close ends the receive and closes the socket\n");
}

int main(void)
{
	struct zc_probe p;

	zc_probe(&p);
	if (!(p.caps & ZC_CAP_IO_URING))
		skip("io_uring is not available");
	bad_configs();
	zcrx_refusals();
	releases_and_cancel();
	reset_and_empty();
	teardown_parked();
	close_while_receiving();
	return 0;
}
