// SPDX-License-Identifier: MIT
/*
 * Cancel and destroy with work in flight: every request still gets exactly
 * one record, and destroying a busy ring leaks nothing (ASan, fd count).
 */
#include <dirent.h>

#include "helpers.h"

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	CHECK(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void *drain(void *arg)
{
	static char buf[65536];

	while (read(*(int *)arg, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

int main(void)
{
	pthread_t drainer;
	struct zc_pool_config pc = { .count = 32, .size = 65536 };
	struct zc_completion cs[64];
	struct zc_pool *pool;
	struct zc_ring *r;
	int tx, rx, i, n, got, fds0;
	int seen[200] = { 0 };
	int sndbuf = 65536;

	fds0 = count_fds();
	r = ring_new(ZC_RING_DEFER_TASKRUN);
	CHECK_EQ(zc_pool_create(r, &pc, &pool), 0);
	tcp_pair(&tx, &rx);
	/* A small send buffer and a peer that never reads: sends block. */
	setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (i = 0; i < 100; i++)
		CHECK_EQ(zc_send_fixed(r, tx, pool, i % 32, 0, 65536,
				       ZC_SEND_ZEROCOPY, i), 0);
	CHECK(zc_submit(r) >= 0);
	n = zc_reap(r, cs, 64);
	CHECK(n >= 0);
	got = n;
	for (i = 0; i < n; i++)
		seen[cs[i].user_data]++;

	CHECK_EQ(zc_cancel_all(r), 0);
	/*
	 * Cancelling cannot free a buffer whose bytes sit in the socket's
	 * send queue: that record waits until the peer reads.  Read now.
	 */
	CHECK(pthread_create(&drainer, NULL, drain, &rx) == 0);
	while (got < 100) {
		n = zc_wait(r, cs, 64, 1, 5000);
		CHECK(n > 0);
		for (i = 0; i < n; i++) {
			CHECK(cs[i].user_data < 100);
			seen[cs[i].user_data]++;
			/* whole, or canceled with the bytes that left */
			CHECK((cs[i].res == 65536 && cs[i].aux == 65536) ||
			      (cs[i].res == -ECANCELED && cs[i].aux < 65536));
		}
		got += n;
	}
	for (i = 0; i < 100; i++)
		CHECK_EQ(seen[i], 1);
	CHECK_EQ(zc_ring_pending(r), 0);
	CHECK_EQ(zc_pool_destroy(pool), 0);

	/* Destroy with sends in the kernel and pools still registered. */
	CHECK_EQ(zc_pool_create(r, &pc, &pool), 0);
	for (i = 0; i < 20; i++)
		CHECK_EQ(zc_send_fixed(r, tx, pool, i, 0, 65536,
				       ZC_SEND_ZEROCOPY, i), 0);
	CHECK(zc_submit(r) >= 0);
	shutdown(rx, SHUT_RDWR);	/* ends the drain thread */
	pthread_join(drainer, NULL);
	close(rx);
	zc_ring_destroy(r);
	close(tx);
	CHECK_EQ(count_fds(), fds0);

	/*
	 * Destroy without waiting (what an event loop does after draining on
	 * its own), sends still blocked in the kernel on a peer that does not
	 * read: the pool is retired, not freed under the kernel, nothing leaks.
	 */
	r = ring_new(0);
	CHECK_EQ(zc_pool_create(r, &pc, &pool), 0);
	tcp_pair(&tx, &rx);
	setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	for (i = 0; i < 32; i++)
		CHECK_EQ(zc_send_fixed(r, tx, pool, i, 0, 65536,
				       ZC_SEND_ZEROCOPY, i), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK(zc_ring_pending(r) > 0);
	zc_ring_destroy_timeout(r, 0);
	close(tx);
	close(rx);
	CHECK_EQ(count_fds(), fds0);
	printf("teardown: ok\n");
	return 0;
}
