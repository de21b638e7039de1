// SPDX-License-Identifier: MIT
/*
 * Nothing is issued against an fd number once its close was asked for:
 * sends, shutdowns and closes after zc_close() fail at once with
 * -ECANCELED, and a new socket that gets the same number (from the ring,
 * or from outside with zc_sock_opened()) receives only its own bytes, even
 * while requests of the old file are still queued or in the kernel.  An
 * accept in flight on a closed listener ends with -ECANCELED.  With and
 * without DEFER_TASKRUN; every receiver checks its bytes.
 */
#include <signal.h>

#include "helpers.h"

#define N_SENDS 32
#define SEND_LEN 65536

static uint8_t *mem;

/* A listening socket on loopback and its address. */
static int listener(struct sockaddr_in *a)
{
	socklen_t len = sizeof(*a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(l >= 0);
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(l, (struct sockaddr *)a, sizeof(*a)) == 0);
	CHECK(listen(l, 8) == 0);
	CHECK(getsockname(l, (struct sockaddr *)a, &len) == 0);
	return l;
}

/* Connect a new socket (the lowest free fd number) to l. */
static int connect_to(int l, const struct sockaddr_in *a, int *peer)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	CHECK(connect(fd, (const struct sockaddr *)a, sizeof(*a)) == 0);
	*peer = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(*peer >= 0);
	return fd;
}

/* Queue sends first..first+n-1 of the pattern stream (SEND_LEN each),
 * user_data base + i; odd ones with flags. */
static void queue_sends_from(struct zc_ring *r, int fd, unsigned first,
			     unsigned n, uint64_t base, uint32_t flags)
{
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(zc_send(r, fd, mem + (size_t)(first + i) * SEND_LEN,
				 SEND_LEN, i % 2 ? flags : 0, base + i), 0);
}

static void queue_sends(struct zc_ring *r, int fd, unsigned n,
			uint64_t base, uint32_t flags)
{
	queue_sends_from(r, fd, 0, n, base, flags);
}

/*
 * Reap until the n send records with user_data in [base, base + n) came,
 * and the close record (user_data close_ud, res 0) if close_ud is not 0:
 * a close can complete before the records of zero-copy sends ahead of it,
 * which wait for their notifications.
 */
static void reap_range_close(struct zc_ring *r, uint64_t base, unsigned n,
			     uint64_t close_ud, int *whole, int *failed)
{
	struct zc_completion cs[64];
	unsigned got = 0, total = n + !!close_ud;

	*whole = *failed = 0;
	while (got < total) {
		int k = zc_wait(r, cs, 64, 1, 10000);

		CHECK(k > 0);
		for (int i = 0; i < k; i++) {
			if (close_ud && cs[i].user_data == close_ud) {
				CHECK_EQ(cs[i].op, ZC_OP_CLOSE);
				CHECK_EQ(cs[i].res, 0);
				continue;
			}
			CHECK(cs[i].user_data >= base &&
			      cs[i].user_data < base + n);
			if (cs[i].res >= 0) {
				CHECK_EQ(cs[i].aux, SEND_LEN);
				(*whole)++;
			} else {
				CHECK(cs[i].aux < SEND_LEN);
				(*failed)++;
			}
		}
		got += (unsigned)k;
	}
}


/* Graceful: sends queued before the close all arrive; after it, none. */
static void graceful(uint32_t rf)
{
	struct zc_ring *r = ring_new(rf);
	struct verifier v;
	int tx, rx, whole, failed;

	tcp_pair(&tx, &rx);
	verifier_start(&v, rx);
	queue_sends(r, tx, N_SENDS, 100, ZC_SEND_ZEROCOPY);
	CHECK_EQ(zc_close(r, tx, 1), 0);
	/* behind the close: refused, never issued */
	CHECK_EQ(zc_send(r, tx, mem, 10, 0, 2), -ECANCELED);
	CHECK_EQ(zc_send(r, tx, mem, 10, ZC_SEND_ZEROCOPY, 2), -ECANCELED);
	CHECK_EQ(zc_shutdown(r, tx, SHUT_WR, 2), -ECANCELED);
	CHECK_EQ(zc_close(r, tx, 2), -EALREADY);
	CHECK(zc_submit(r) >= 0);
	reap_range_close(r, 100, N_SENDS, 1, &whole, &failed);
	CHECK_EQ(whole, N_SENDS);
	verifier_join(&v);	/* EOF: the close ran */
	CHECK_EQ(v.bad_at, 0);
	CHECK_EQ(v.bytes, (uint64_t)N_SENDS * SEND_LEN);
	close(rx);
	CHECK_EQ(zc_ring_pending(r), 0);
	zc_ring_destroy(r);
}

/* Every record seen, by user_data (< MAX_UD), counted. */
#define MAX_UD 512
static struct zc_completion rec[MAX_UD];
static int seen[MAX_UD];

/* Reap until the records [base, base + n) all came. */
static void await_range(struct zc_ring *r, uint64_t base, unsigned n)
{
	struct zc_completion cs[64];

	for (;;) {
		unsigned have = 0;
		int k;

		for (unsigned i = 0; i < n; i++)
			have += seen[base + i] > 0;
		if (have == n)
			return;
		k = zc_wait(r, cs, 64, 1, 10000);
		CHECK(k > 0);
		for (int i = 0; i < k; i++) {
			CHECK(cs[i].user_data < MAX_UD);
			rec[cs[i].user_data] = cs[i];
			seen[cs[i].user_data]++;
		}
	}
}

/* Records [base, base + n): each exactly once; sends whole or failed
 * with fewer bytes; returns how many went whole. */
static unsigned check_sends(uint64_t base, unsigned n)
{
	unsigned whole = 0;

	for (unsigned i = 0; i < n; i++) {
		const struct zc_completion *c = &rec[base + i];

		CHECK_EQ(seen[base + i], 1);
		if (c->res >= 0) {
			CHECK_EQ(c->aux, SEND_LEN);
			whole++;
		} else {
			CHECK(c->aux < SEND_LEN);
		}
	}
	return whole;
}

/* The pattern stream from offset 0 on fd's peer until it blocks 300 ms or
 * ends: returns its length (a prefix of the pattern, checked). */
static uint64_t read_prefix(int rx)
{
	struct timeval tv = { 0, 300000 };
	static uint8_t buf[65536];
	uint64_t got = 0;
	ssize_t n;

	setsockopt(rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while ((n = read(rx, buf, sizeof(buf))) > 0) {
		for (ssize_t k = 0; k < n; k++)
			CHECK_EQ(buf[k], pattern(got + (uint64_t)k));
		got += (uint64_t)n;
	}
	return got;
}

/* Send n pattern sends on fd, close it through the ring, check its peer
 * got exactly them.  User data base.. and close_ud. */
static void send_verified(struct zc_ring *r, int tx, int rx, unsigned n,
			  uint64_t base, uint64_t close_ud)
{
	struct verifier v;

	verifier_start(&v, rx);
	queue_sends(r, tx, n, base, ZC_SEND_ZEROCOPY);
	CHECK_EQ(zc_close(r, tx, close_ud), 0);
	CHECK(zc_submit(r) >= 0);
	await_range(r, base, n);
	await_range(r, close_ud, 1);
	CHECK_EQ(check_sends(base, n), n);
	CHECK_EQ(rec[close_ud].res, 0);
	verifier_join(&v);
	CHECK_EQ(v.bad_at, 0);
	CHECK_EQ(v.bytes, (uint64_t)n * SEND_LEN);
	close(rx);
}

/*
 * Abortive close with sends queued and in the kernel (a linked chain whose
 * later links the kernel has not looked up yet), then at once new sockets.
 * The number stays taken until the close's record, so the next socket gets
 * another one; once the record is in, the number is reused and works
 * without telling libzc.  in_kernel: no reset before the abort (the peer
 * holds A's data; only canceling ends A's requests).
 */
static void reuse(uint32_t rf, int in_kernel)
{
	struct zc_ring *r = ring_new(rf);
	struct sockaddr_in a;
	struct zc_completion c;
	int l = listener(&a), rx_a, rx_b, tx_a, tx_b, sndbuf = 65536;
	struct linger lg = { 1, 0 };
	uint64_t got_a;

	memset(seen, 0, sizeof(seen));
	tx_a = connect_to(l, &a, &rx_a);
	setsockopt(tx_a, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	/* A's peer does not read: the chain blocks in the kernel */
	queue_sends(r, tx_a, N_SENDS, 100, ZC_SEND_ZEROCOPY);
	CHECK(zc_submit(r) >= 0);
	if (!in_kernel) {
		/* what ZcSocket.close() does: reset, queued sends end now */
		setsockopt(tx_a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		shutdown(tx_a, SHUT_RDWR);
	}
	CHECK_EQ(zc_sock_abort(r, tx_a), 0);
	/* given up on: sends between the abort and the close are refused
	 * too (they would go after the close, which does not wait) */
	CHECK_EQ(zc_send(r, tx_a, mem, 10, 0, 2), -ECANCELED);
	CHECK_EQ(zc_close(r, tx_a, 1), 0);
	CHECK(zc_submit(r) >= 0);
	/* a stale sender of A */
	CHECK_EQ(zc_send(r, tx_a, mem, 10, 0, 2), -ECANCELED);
	CHECK_EQ(zc_sock_opened(r, tx_a), -EBUSY);

	/* B, opened at once: not on A's number, which is still held */
	tx_b = connect_to(l, &a, &rx_b);
	CHECK(tx_b != tx_a);
	send_verified(r, tx_b, rx_b, N_SENDS, 200, 3);

	/* A's peer got a prefix of A's stream, nothing else */
	got_a = read_prefix(rx_a);
	CHECK(got_a <= (uint64_t)N_SENDS * SEND_LEN);
	/* zero-copy buffers still in A's send queue come back when the
	 * peer goes */
	setsockopt(rx_a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(rx_a);
	await_range(r, 100, N_SENDS);
	await_range(r, 1, 1);
	check_sends(100, N_SENDS);
	CHECK_EQ(rec[1].op, ZC_OP_CLOSE);
	CHECK_EQ(rec[1].res, 0);

	/* the number is free now, and usable as it is */
	tx_b = connect_to(l, &a, &rx_b);
	CHECK_EQ(tx_b, tx_a);
	send_verified(r, tx_b, rx_b, N_SENDS, 200 + N_SENDS, 4);

	/* from the ring, the same number is known as new by itself */
	CHECK_EQ(zc_socket(r, AF_INET, SOCK_STREAM, 0, 5), 0);
	CHECK(zc_submit(r) >= 0);
	c = wait_one(r);
	CHECK_EQ(c.res, tx_a);
	CHECK_EQ(zc_connect(r, c.res, &a, sizeof(a), 6), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(wait_one(r).res, 0);
	rx_b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(rx_b >= 0);
	{
		struct verifier v;

		verifier_start(&v, rx_b);
		queue_sends(r, tx_a, 4, 300, ZC_SEND_ZEROCOPY);
		CHECK(zc_submit(r) >= 0);
		await_range(r, 300, 4);
		CHECK_EQ(check_sends(300, 4), 4);
		/*
		 * Nothing in flight: the abortive close goes at once and the
		 * kernel frees the number before libzc reaps the record.  A
		 * socket opened outside libzc then is refused until
		 * zc_sock_opened(), and the late record leaves it alone.
		 */
		CHECK_EQ(zc_sock_abort(r, tx_a), 0);
		CHECK_EQ(zc_close(r, tx_a, 7), 0);
		CHECK(zc_submit(r) >= 0);
		verifier_join(&v);
		CHECK_EQ(v.bad_at, 0);
		CHECK_EQ(v.bytes, 4ull * SEND_LEN);
		close(rx_b);
	}
	tx_b = connect_to(l, &a, &rx_b);
	CHECK_EQ(tx_b, tx_a);
	CHECK_EQ(zc_send(r, tx_b, mem, 10, 0, 8), -ECANCELED);
	CHECK_EQ(zc_sock_opened(r, tx_b), 0);
	{
		struct verifier v;

		verifier_start(&v, rx_b);
		queue_sends(r, tx_b, 4, 310, ZC_SEND_ZEROCOPY);
		CHECK(zc_submit(r) >= 0);
		await_range(r, 7, 1);		/* A's late close record */
		CHECK_EQ(rec[7].res, 0);
		queue_sends_from(r, tx_b, 4, 4, 320, ZC_SEND_ZEROCOPY);
		CHECK(zc_submit(r) >= 0);
		await_range(r, 310, 4);
		await_range(r, 320, 4);
		CHECK_EQ(check_sends(310, 4), 4);
		CHECK_EQ(check_sends(320, 4), 4);
		CHECK_EQ(zc_close(r, tx_b, 9), 0);
		CHECK(zc_submit(r) >= 0);
		await_range(r, 9, 1);
		CHECK_EQ(rec[9].res, 0);
		verifier_join(&v);
		CHECK_EQ(v.bad_at, 0);
		CHECK_EQ(v.bytes, 8ull * SEND_LEN);
		close(rx_b);
	}
	close(l);
	CHECK_EQ(zc_ring_pending(r), 0);
	zc_ring_destroy(r);
}

/*
 * An abortive close parks a placeholder (/dev/null) on the number while a
 * chain of the socket is in the kernel.  A link whose predecessor then
 * finishes whole is looked up only now, runs against the placeholder and
 * fails -ENOTSOCK: a send the caller gave up on, nothing of it left, so
 * its record says -ECANCELED (errors.test.ts saw ENOTSOCK reach JS about
 * 1 run in 20 under load).  Here A waits for room (its peer does not read
 * yet), B and C are linked behind it; after the abort and the close the
 * peer reads all of A, so A finishes whole before the cancels go out (a
 * ring without DEFER_TASKRUN runs A's retries as read() returns) and B
 * meets the placeholder (C is cut off by B's failure).  With
 * DEFER_TASKRUN the cancel comes first: A is cut short.  Either way B and
 * C end -ECANCELED with 0 bytes.
 */
static void placeholder_link(uint32_t rf)
{
	struct zc_ring *r = ring_new(rf);
	static uint8_t buf[65536];
	int tx, rx, sndbuf = 16384, n_recs = 0;
	uint64_t filled = 0, drained = 0;
	struct zc_completion cs[8];
	ssize_t k;

	memset(seen, 0, sizeof(seen));
	tcp_pair(&tx, &rx);
	setsockopt(tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	/* fill the pipe: A cannot go at once */
	while ((k = send(tx, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		filled += (uint64_t)k;
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
	CHECK_EQ(zc_send(r, tx, mem, SEND_LEN, 0, 10), 0);
	CHECK_EQ(zc_send(r, tx, mem + SEND_LEN, SEND_LEN, ZC_SEND_ZEROCOPY,
			 11), 0);
	CHECK_EQ(zc_send(r, tx, mem + 2 * SEND_LEN, 100, 0, 12), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(zc_reap(r, cs, 8), 0);	/* A waits for room */
	CHECK_EQ(zc_sock_abort(r, tx), 0);
	CHECK_EQ(zc_close(r, tx, 13), 0);
	/* the peer reads the filler and all of A: A is over in the kernel
	 * (with DEFER_TASKRUN A's retry waits for the next enter: only the
	 * filler) */
	if (!(rf & ZC_RING_DEFER_TASKRUN))
		filled += SEND_LEN;
	while (drained < filled) {
		uint64_t want = filled - drained;

		k = read(rx, buf, want < sizeof(buf) ? want : sizeof(buf));
		CHECK(k > 0);
		drained += (uint64_t)k;
	}
	CHECK(zc_submit(r) >= 0);
	await_range(r, 10, 4);
	for (int i = 10; i < 14; i++)
		n_recs += seen[i];
	CHECK_EQ(n_recs, 4);
	/* A: whole, or cut short by the cancel */
	if (rec[10].res >= 0)
		CHECK_EQ(rec[10].aux, SEND_LEN);
	else
		CHECK_EQ(rec[10].res, -ECANCELED);
	CHECK_EQ(rec[11].res, -ECANCELED);
	CHECK_EQ(rec[11].aux, 0);
	CHECK_EQ(rec[12].res, -ECANCELED);
	CHECK_EQ(rec[12].aux, 0);
	CHECK_EQ(rec[13].op, ZC_OP_CLOSE);
	CHECK_EQ(rec[13].res, 0);
	close(rx);
	CHECK_EQ(zc_ring_pending(r), 0);
	zc_ring_destroy(r);
}

/* Closing a listener ends its accept in flight with -ECANCELED. */
static void accept_cancel(uint32_t rf)
{
	struct zc_ring *r = ring_new(rf);
	struct zc_completion cs[2];
	struct sockaddr_in a;
	int l = listener(&a), n, got = 0, i;

	CHECK_EQ(zc_accept(r, l, 1), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(zc_reap(r, cs, 2), 0);
	CHECK_EQ(zc_close(r, l, 2), 0);
	CHECK(zc_submit(r) >= 0);
	while (got < 2) {
		n = zc_wait(r, cs, 2, 1, 5000);
		CHECK(n > 0);
		for (i = 0; i < n; i++) {
			if (cs[i].user_data == 1)
				CHECK_EQ(cs[i].res, -ECANCELED);
			else
				CHECK_EQ(cs[i].res, 0);
		}
		got += n;
	}
	CHECK_EQ(zc_ring_pending(r), 0);
	zc_ring_destroy(r);
}

int main(void)
{
	static const uint32_t flags[] = { 0, ZC_RING_DEFER_TASKRUN };

	signal(SIGPIPE, SIG_IGN);
	mem = malloc((size_t)N_SENDS * SEND_LEN);
	CHECK(mem);
	fill_pattern(mem, 0, N_SENDS * SEND_LEN);
	for (int f = 0; f < 2; f++) {
		graceful(flags[f]);
		reuse(flags[f], 0);
		reuse(flags[f], 1);
		accept_cancel(flags[f]);
		placeholder_link(flags[f]);
	}
	free(mem);
	return 0;
}
