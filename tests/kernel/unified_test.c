// SPDX-License-Identifier: MIT
/*
 * Kernel ABI test of the single-CQE zero-copy send of patches/
 * (IORING_SEND_ZC_SINGLE_CQE, found through IO_URING_QUERY_SEND_ZC), with
 * raw liburing over loopback sockets.
 *
 *   unified_test --expect-unified   on the patched kernel
 *   unified_test --expect-stock     on a kernel without the series
 *   unified_test                    expectation taken from the query
 *
 * "Exactly one CQE" is checked against a barrier, never by waiting for a
 * while: a NOP with IOSQE_IO_DRAIN completes only once every request
 * allocated before it has been freed, notifications included, so when its
 * CQE is in, every CQE of the earlier requests is in too.  Only a drained
 * request waits for notifications (a plain or task-work NOP does not: the
 * stack frees a notification whenever it drops the last skb), which makes
 * the drained NOP the one barrier that also catches a stray late
 * notification.  It must be the LAST request of its ring: io_queue_deferred()
 * counts notifications as outstanding requests, so on a ring whose drain
 * state is still active (the kernel clears it only when a later request
 * finds the defer list empty) a zero-copy send is deferred behind its own
 * notification and never runs, and nothing after it runs either (upstream
 * since 6.16, stock 7.2 included; patch 6 of the series fixes it, see
 * case_drain_hang()).  Every case here opens its own ring and submits
 * nothing after barrier(), so the barrier is sound on both kernels.  A ring that has
 * seen IOSQE_CQE_SKIP_SUCCESS cannot drain; there the barrier is the tag CQE
 * of a registered buffer the send used (the kernel posts it once the last
 * reference, the notification's, is gone), then a NOP completed through
 * task work behind the notification's.
 *
 * Prints one TAP-style line per case and ends with "N passed, N failed";
 * exits non-zero if anything failed.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <linux/sockios.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/utsname.h>

#include "common.h"

#ifndef IORING_NOP_TW
#define IORING_NOP_TW		(1U << 4)	/* complete the NOP from task work */
#endif

#define UD_SEND		0x5e4d0001ull
#define UD_OTHER	0x07e40002ull
#define UD_CANCEL	0xca4c0003ull
#define UD_BARRIER	0xba770004ull
#define UD_TAG		0x7a960005ull
#define REAP_TIMEOUT_MS	20000	/* generous: TCG VMs with KASAN are slow */

static int expect_single = -1;
static int n_pass, n_fail, n_skip, n_case;
static char fail_msg[1024];
static char skip_msg[256];

/*
 * Payload memory; its first REG_SIZE bytes are registered as buffer 0 (with
 * tag UD_TAG) for the fixed-buffer cases (pinning all of it for every ring
 * is slow under KASAN in an emulated VM).
 */
#define BUF_SIZE	(8u << 20)
#define REG_SIZE	(256u << 10)
static unsigned char *g_buf;
static unsigned char *g_rxbuf;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(fail_msg, sizeof(fail_msg), fmt, ap);
	va_end(ap);
	return -1;
}

static int skip(const char *why)
{
	snprintf(skip_msg, sizeof(skip_msg), "%s", why);
	return 1;
}

static void report(const char *name, int rc)
{
	n_case++;
	if (rc == 0) {
		n_pass++;
		printf("ok %d - %s\n", n_case, name);
	} else if (rc > 0) {
		n_skip++;
		printf("ok %d - %s # SKIP %s\n", n_case, name, skip_msg);
	} else {
		n_fail++;
		printf("not ok %d - %s\n#   %s\n", n_case, name, fail_msg);
	}
	fflush(stdout);
}

/* ---- CQE collection --------------------------------------------------- */

struct cqe_rec {
	__u64 ud;
	__s32 res;
	__u32 flags;
	__u64 big[2];	/* CQE32 / IORING_CQE_F_32 only */
};

struct reaped {
	struct cqe_rec c[512];
	int n;
};

/* A CQE after which no more CQEs belong to the same request. */
static bool is_final(const struct cqe_rec *c)
{
	return (c->flags & IORING_CQE_F_NOTIF) || !(c->flags & IORING_CQE_F_MORE);
}

static int count_ud(const struct reaped *r, __u64 ud)
{
	int i, n = 0;

	for (i = 0; i < r->n; i++)
		n += r->c[i].ud == ud;
	return n;
}

/* Index of the nth CQE of ud in arrival order, or -1. */
static int idx_ud(const struct reaped *r, __u64 ud, int nth)
{
	int i;

	for (i = 0; i < r->n; i++)
		if (r->c[i].ud == ud && nth-- == 0)
			return i;
	return -1;
}

static const struct cqe_rec *nth_ud(const struct reaped *r, __u64 ud, int nth)
{
	int i = idx_ud(r, ud, nth);

	return i < 0 ? NULL : &r->c[i];
}

static int finals_ud(const struct reaped *r, __u64 ud)
{
	int i, n = 0;

	for (i = 0; i < r->n; i++)
		n += r->c[i].ud == ud && is_final(&r->c[i]);
	return n;
}

/*
 * Reader that drains the peer socket while we wait: counts every byte in
 * got, keeps bytes [skip, skip + cap) of the stream in g_rxbuf.
 */
struct pump {
	int fd;
	size_t got;
	size_t skip;
	size_t cap;
	bool eof;
	bool paused;	/* leave the peer's data alone for now */
};

static void pump_run(struct pump *p)
{
	static unsigned char scratch[65536];
	ssize_t n;

	if (!p || p->fd < 0 || p->paused)
		return;
	for (;;) {
		n = recv(p->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n <= 0) {
			if (n == 0)
				p->eof = true;
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			size_t at = p->got + (size_t)i;

			if (at >= p->skip && at - p->skip < p->cap)
				g_rxbuf[at - p->skip] = scratch[i];
		}
		p->got += (size_t)n;
	}
}

static void record(struct io_uring *ring, struct reaped *r, const struct io_uring_cqe *cqe)
{
	struct cqe_rec *c;

	if (r->n >= (int)(sizeof(r->c) / sizeof(r->c[0])))
		return;
	c = &r->c[r->n++];
	c->ud = cqe->user_data;
	c->res = cqe->res;
	c->flags = cqe->flags;
	c->big[0] = c->big[1] = 0;
	if ((ring->flags & IORING_SETUP_CQE32) || (cqe->flags & IORING_CQE_F_32)) {
		c->big[0] = cqe->big_cqe[0];
		c->big[1] = cqe->big_cqe[1];
	}
}

/* One round: wait up to 5 ms for a CQE, take everything that is there. */
static int reap_some(struct io_uring *ring, struct reaped *r, struct pump *p)
{
	struct __kernel_timespec ts = { .tv_nsec = 5 * 1000000 };
	struct io_uring_cqe *cqe;
	int ret;

	pump_run(p);
	ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
	if (ret == -ETIME || ret == -EINTR)
		return 0;
	if (ret)
		return fail("io_uring_wait_cqe_timeout: %s", strerror(-ret));
	while (io_uring_peek_cqe(ring, &cqe) == 0) {
		record(ring, r, cqe);
		io_uring_cqe_seen(ring, cqe);
	}
	return 0;
}

/* Reap until each of the nud user_data values has had a final CQE. */
static int reap(struct io_uring *ring, struct reaped *r, const __u64 *uds,
		int nud, struct pump *p)
{
	uint64_t deadline = now_ns() + REAP_TIMEOUT_MS * 1000000ull;
	int i, rc;

	for (;;) {
		bool done = true;

		for (i = 0; i < nud; i++)
			if (!finals_ud(r, uds[i]))
				done = false;
		if (done)
			return 0;
		if (now_ns() > deadline) {
			for (i = 0; i < nud; i++)
				if (!finals_ud(r, uds[i]))
					return fail("timed out waiting for the final CQE of user_data %#llx (%d CQEs so far)",
						    (unsigned long long)uds[i], count_ud(r, uds[i]));
		}
		rc = reap_some(ring, r, p);
		if (rc)
			return rc;
	}
}

static int reap_ud(struct io_uring *ring, struct reaped *r, __u64 ud, struct pump *p)
{
	return reap(ring, r, &ud, 1, p);
}

/*
 * The barrier: a drained NOP.  Its CQE comes after every CQE of requests
 * submitted before it (IOSQE_IO_DRAIN waits until all of them, the
 * notifications of zero-copy sends included, are freed).
 */
static int barrier(struct io_uring *ring, struct reaped *r, struct pump *p)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	const struct cqe_rec *c;
	int rc, ret;

	if (!sqe)
		return fail("barrier: SQ ring full");
	io_uring_prep_nop(sqe);
	sqe->flags |= IOSQE_IO_DRAIN;
	sqe->user_data = UD_BARRIER;
	ret = io_uring_submit(ring);
	if (ret != 1)
		return fail("barrier: submit %d", ret);
	rc = reap_ud(ring, r, UD_BARRIER, p);
	if (rc)
		return rc;
	c = nth_ud(r, UD_BARRIER, count_ud(r, UD_BARRIER) - 1);
	if (c->res != 0)
		return fail("barrier: drained NOP res %d (%s)", c->res, strerror(-c->res));
	return 0;
}

/* A NOP completed from task work: behind task work already queued. */
static int barrier_tw(struct io_uring *ring, struct reaped *r, struct pump *p)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	const struct cqe_rec *c;
	int rc;

	if (!sqe)
		return fail("tw barrier: SQ ring full");
	io_uring_prep_nop(sqe);
	sqe->nop_flags = IORING_NOP_TW;
	sqe->user_data = UD_BARRIER;
	if (io_uring_submit(ring) != 1)
		return fail("tw barrier: submit failed");
	rc = reap_ud(ring, r, UD_BARRIER, p);
	if (rc)
		return rc;
	c = nth_ud(r, UD_BARRIER, count_ud(r, UD_BARRIER) - 1);
	if (c->res != 0)
		return fail("tw barrier: NOP res %d (%s)", c->res, strerror(-c->res));
	return 0;
}

/*
 * The barrier of rings that used IOSQE_CQE_SKIP_SUCCESS: replace registered
 * buffer 0; the kernel posts its tag CQE (UD_TAG) once the last reference
 * to it, a notification's, is dropped.  Then a task-work NOP.
 */
static int barrier_tag(struct io_uring *ring, struct reaped *r, struct pump *p)
{
	struct iovec iov = { .iov_base = g_buf, .iov_len = REG_SIZE };
	__u64 tag = 0;
	int ret, rc;

	ret = io_uring_register_buffers_update_tag(ring, 0, &iov, &tag, 1);
	if (ret != 1)
		return fail("tag barrier: buffer update: %d", ret);
	rc = reap_ud(ring, r, UD_TAG, p);
	if (rc)
		return rc;
	return barrier_tw(ring, r, p);
}

static const char *fmt_cqes(const struct reaped *r, __u64 ud)
{
	static char s[768];
	size_t off = 0;
	int i;

	s[0] = 0;
	for (i = 0; i < r->n && off < sizeof(s) - 64; i++) {
		if (r->c[i].ud != ud)
			continue;
		off += (size_t)snprintf(s + off, sizeof(s) - off, "[#%d res=%d flags=%#x] ",
					i, r->c[i].res, r->c[i].flags);
	}
	if (!s[0])
		snprintf(s, sizeof(s), "(none)");
	return s;
}

static const char *errname(int res)
{
	return res < 0 ? strerror(-res) : "bytes";
}

/*
 * The single-CQE contract: exactly one CQE, cqe.flags zero (neither F_MORE
 * nor F_NOTIF nor anything else), res as expected.  want_res == INT32_MIN
 * accepts any res (returned in *res_out).  Call after a barrier.
 */
static int check_single(const struct reaped *r, __u64 ud, int want_res, int *res_out)
{
	const struct cqe_rec *c = nth_ud(r, ud, 0);

	if (count_ud(r, ud) != 1)
		return fail("want exactly 1 CQE, got %d: %s", count_ud(r, ud), fmt_cqes(r, ud));
	if (c->flags)
		return fail("cqe.flags %#x, want 0 (no F_MORE, no F_NOTIF): %s", c->flags,
			    fmt_cqes(r, ud));
	if (c->big[0] || c->big[1])
		return fail("big CQE extra fields %#llx %#llx, want 0",
			    (unsigned long long)c->big[0], (unsigned long long)c->big[1]);
	if (want_res != INT32_MIN && c->res != want_res)
		return fail("res %d (%s), want %d (%s)", c->res, errname(c->res), want_res,
			    errname(want_res));
	if (res_out)
		*res_out = c->res;
	return 0;
}

static int kernel_major(void)
{
	struct utsname u;

	return uname(&u) ? 0 : atoi(u.release);
}

/* ---- rings ------------------------------------------------------------ */

static int ring_open_n(struct io_uring *ring, unsigned setup_flags, unsigned entries,
		       unsigned cq_entries)
{
	struct io_uring_params p;
	struct iovec iov = { .iov_base = g_buf, .iov_len = REG_SIZE };
	__u64 tag = UD_TAG;
	int ret;

	memset(&p, 0, sizeof(p));
	p.flags = setup_flags;
	if (cq_entries) {
		p.flags |= IORING_SETUP_CQSIZE;
		p.cq_entries = cq_entries;
	}
	ret = io_uring_queue_init_params(entries, ring, &p);
	if (ret)
		return ret;
	if (setup_flags & IORING_SETUP_R_DISABLED)
		return 0;
	ret = io_uring_register_buffers_tags(ring, &iov, &tag, 1);
	if (ret) {
		io_uring_queue_exit(ring);
		return ret;
	}
	return 0;
}

static int ring_open(struct io_uring *ring, unsigned setup_flags)
{
	return ring_open_n(ring, setup_flags, 64, 0);
}

/* ---- the send matrix -------------------------------------------------- */

enum send_op { OP_SEND_ZC, OP_SENDMSG_ZC };

struct send_case {
	int family, type;
	enum send_op op;
	bool fixed, report, vectorized, single, async;
	bool allow_short;	/* stream send without MSG_WAITALL may be short */
	unsigned msg_flags;
	size_t len;
};

static void fill_pattern(unsigned char *p, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		p[i] = (unsigned char)(i * 7 + seed + (i >> 9));
}

/* Split [buf, buf+len) into up to 3 iovecs so the vector paths see >1 entry. */
static int split_iov(struct iovec *iov, unsigned char *buf, size_t len)
{
	size_t a = len / 3, b = len / 3;

	if (len < 3) {
		iov[0].iov_base = buf;
		iov[0].iov_len = len;
		return 1;
	}
	iov[0] = (struct iovec){ buf, a };
	iov[1] = (struct iovec){ buf + a, b };
	iov[2] = (struct iovec){ buf + a + b, len - a - b };
	return 3;
}

static void prep_zc(struct io_uring_sqe *sqe, int fd, const struct send_case *sc,
		    unsigned char *buf, size_t len, struct msghdr *mh, struct iovec *iov)
{
	unsigned zc_flags = (sc->report ? IORING_SEND_ZC_REPORT_USAGE : 0) |
			    (sc->single ? IORING_SEND_ZC_SINGLE_CQE : 0);
	int niov;

	if (sc->op == OP_SENDMSG_ZC) {
		niov = split_iov(iov, buf, len);
		memset(mh, 0, sizeof(*mh));
		mh->msg_iov = iov;
		mh->msg_iovlen = (size_t)niov;
		if (sc->fixed)
			io_uring_prep_sendmsg_zc_fixed(sqe, fd, mh, sc->msg_flags, 0);
		else
			io_uring_prep_sendmsg_zc(sqe, fd, mh, sc->msg_flags);
		sqe->ioprio |= (__u16)zc_flags;
	} else if (sc->vectorized) {
		niov = split_iov(iov, buf, len);
		io_uring_prep_send_zc(sqe, fd, iov, (size_t)niov, sc->msg_flags, zc_flags);
		sqe->ioprio |= IORING_SEND_VECTORIZED;
		if (sc->fixed) {
			sqe->ioprio |= IORING_RECVSEND_FIXED_BUF;
			sqe->buf_index = 0;
		}
	} else if (sc->fixed) {
		io_uring_prep_send_zc_fixed(sqe, fd, buf, len, sc->msg_flags, zc_flags, 0);
	} else {
		io_uring_prep_send_zc(sqe, fd, buf, len, sc->msg_flags, zc_flags);
	}
	sqe->user_data = UD_SEND;
	if (sc->async)
		sqe->flags |= IOSQE_ASYNC;
}

static const char *fam_name(int family, int type)
{
	if (family == AF_INET6)
		return type == SOCK_STREAM ? "tcp6" : "udp6";
	return type == SOCK_STREAM ? "tcp4" : "udp4";
}

/* Wait until the peer has want bytes; they must match src. */
static int check_peer(struct pump *p, int fd, const unsigned char *src, size_t want)
{
	uint64_t deadline = now_ns() + 10000000000ull;

	while (p->got < p->skip + want && now_ns() < deadline) {
		pump_run(p);
		if (p->got < p->skip + want)
			poll(&(struct pollfd){ .fd = fd, .events = POLLIN }, 1, 10);
	}
	pump_run(p);
	if (p->got != p->skip + want)
		return fail("peer received %zu bytes, want %zu", p->got - p->skip, want);
	if (memcmp(g_rxbuf, src, want))
		return fail("peer received corrupted data");
	return 0;
}

static int run_send_case(const struct send_case *sc)
{
	static unsigned seed;
	struct io_uring ring;
	struct sock_pair sp;
	struct reaped r = { .n = 0 };
	struct msghdr mh;
	struct iovec iov[3];
	struct pump p;
	struct io_uring_sqe *sqe;
	unsigned char *buf = g_buf + 4096 + 123;	/* unaligned on purpose */
	int ret, rc = 0, res = (int)sc->len;
	size_t want_len = sc->len;

	ret = sock_pair_open(&sp, sc->family, sc->type, 0, 0);
	if (ret == -EAFNOSUPPORT || ret == -EADDRNOTAVAIL)
		return skip("no IPv6 loopback in this kernel");
	if (ret)
		return fail("socket pair: %s", strerror(-ret));
	ret = ring_open(&ring, 0);
	if (ret) {
		sock_pair_close(&sp);
		return fail("ring setup: %s", strerror(-ret));
	}
	fill_pattern(buf, sc->len, ++seed);
	p = (struct pump){ .fd = sp.rx, .cap = sc->len };

	sqe = io_uring_get_sqe(&ring);
	prep_zc(sqe, sp.tx, sc, buf, sc->len, &mh, iov);
	ret = io_uring_submit(&ring);
	if (ret != 1) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	rc = reap_ud(&ring, &r, UD_SEND, &p);
	if (!rc)
		rc = barrier(&ring, &r, &p);
	if (rc)
		goto out;
	if (sc->vectorized && sc->fixed && nth_ud(&r, UD_SEND, 0)->res == -EINVAL &&
	    kernel_major() < 7) {
		rc = skip("SEND_ZC with vectorized fixed buffers is newer than this kernel");
		goto out;
	}

	if (sc->single) {
		rc = check_single(&r, UD_SEND, sc->allow_short ? INT32_MIN : (int)sc->len, &res);
		if (rc)
			goto out;
		if (res <= 0 || (size_t)res > sc->len) {
			rc = fail("res %d, want 0 < res <= %zu", res, sc->len);
			goto out;
		}
		want_len = (size_t)res;
	} else {
		/* the stock contract, which the series must leave unchanged */
		const struct cqe_rec *c0 = nth_ud(&r, UD_SEND, 0), *c1 = nth_ud(&r, UD_SEND, 1);

		if (count_ud(&r, UD_SEND) != 2 || c0->flags != IORING_CQE_F_MORE ||
		    c0->res != (int)sc->len || c1->flags != IORING_CQE_F_NOTIF) {
			rc = fail("want [res=%zu F_MORE] then [F_NOTIF], got %s", sc->len,
				  fmt_cqes(&r, UD_SEND));
			goto out;
		}
		/* loopback copies at local delivery (DEVELOPERS.md) */
		if (sc->report && !((unsigned)c1->res & IORING_NOTIF_USAGE_ZC_COPIED)) {
			rc = fail("REPORT_USAGE over loopback: notif res %#x lacks ZC_COPIED", c1->res);
			goto out;
		}
		if (!sc->report && c1->res != 0) {
			rc = fail("notif res %d, want 0", c1->res);
			goto out;
		}
	}
	rc = check_peer(&p, sp.rx, buf, want_len);
out:
	io_uring_queue_exit(&ring);
	sock_pair_close(&sp);
	return rc;
}

static void send_matrix(bool single)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	static const int types[] = { SOCK_STREAM, SOCK_DGRAM };
	unsigned f, t, op, fixed, rep, vec;
	char name[200];

	for (f = 0; f < 2; f++)
	for (t = 0; t < 2; t++)
	for (op = 0; op < 2; op++)
	for (vec = 0; vec < 2; vec++)
	for (fixed = 0; fixed < 2; fixed++)
	for (rep = 0; rep < 2; rep++) {
		struct send_case sc = {
			.family = fams[f], .type = types[t],
			.op = op ? OP_SENDMSG_ZC : OP_SEND_ZC,
			.fixed = fixed, .report = rep, .vectorized = vec,
			.single = single,
			.len = types[t] == SOCK_STREAM ? 65536 + 17 : 8192 + 5,
			/*
			 * whole sends on TCP: without MSG_WAITALL a send may
			 * stop short where the send buffer is full, which a
			 * loaded guest sees (the short case has its own test)
			 */
			.msg_flags = types[t] == SOCK_STREAM ? MSG_WAITALL : 0,
		};

		/* SENDMSG_ZC is always vectored; usage has no place in one CQE */
		if ((op && vec) || (single && rep))
			continue;
		snprintf(name, sizeof(name), "%s %s %s%s%s%s: %s",
			 single ? "single-CQE" : "two-CQE",
			 op ? "SENDMSG_ZC" : "SEND_ZC", fam_name(sc.family, sc.type),
			 vec ? " vectorized" : "", fixed ? " fixed-buf" : "",
			 rep ? " report-usage" : "",
			 single ? "one CQE, flags 0, res=len" : "res CQE w/ F_MORE + notif");
		report(name, run_send_case(&sc));
	}
}

/* ---- single requests with a twist ------------------------------------- */

static int case_query(void)
{
	uint64_t flags;
	int ret = zc_query_send_zc(&flags);

	if (expect_single) {
		if (ret)
			return fail("IO_URING_QUERY_SEND_ZC: %s", strerror(-ret));
		if (!(flags & IORING_SEND_ZC_SINGLE_CQE))
			return fail("flags %#llx lack IORING_SEND_ZC_SINGLE_CQE",
				    (unsigned long long)flags);
		/* the mask lists exactly what prep accepts */
		if (flags != (IORING_RECVSEND_POLL_FIRST | IORING_RECVSEND_FIXED_BUF |
			      IORING_SEND_ZC_REPORT_USAGE | IORING_SEND_VECTORIZED |
			      IORING_SEND_ZC_SINGLE_CQE))
			return fail("flags %#llx, want the five SEND_ZC flags",
				    (unsigned long long)flags);
		printf("# IO_URING_QUERY_SEND_ZC: flags %#llx\n", (unsigned long long)flags);
		return 0;
	}
	if (ret == 0)
		return fail("stock kernel answers IO_URING_QUERY_SEND_ZC (flags %#llx)",
			    (unsigned long long)flags);
	printf("# IO_URING_QUERY_SEND_ZC on this kernel: %s\n", strerror(-ret));
	return 0;
}

enum twist {
	TW_BAD_FD, TW_NOT_SOCK, TW_ADDR3, TW_REPORT, TW_BAD_FLAG, TW_ALL_FLAGS,
	TW_PAD2, TW_BAD_BUF_INDEX, TW_UDP_TOO_BIG, TW_TCP_UNCONNECTED, TW_ZERO_LEN,
	TW_ASYNC_TCP, TW_ASYNC_UDP, TW_DEFER_TASKRUN, TW_SQPOLL, TW_CQE32, TW_CQE_MIXED,
	TW_SENDMSG_BAD_FD,
	/* failures before the opcode's prep runs */
	TW_BAD_SQE_FLAG, TW_BUFFER_SELECT, TW_PERSONALITY, TW_IOPOLL, TW_RESTRICTED,
};

/* Ring with IORING_OP_SEND_ZC forbidden by registered restrictions. */
static int ring_restricted(struct io_uring *ring)
{
	struct io_uring_restriction res[1];
	int ret = ring_open(ring, IORING_SETUP_R_DISABLED);

	if (ret)
		return ret;
	memset(res, 0, sizeof(res));
	res[0].opcode = IORING_RESTRICTION_SQE_OP;
	res[0].sqe_op = IORING_OP_NOP;
	ret = io_uring_register_restrictions(ring, res, 1);
	if (!ret)
		ret = io_uring_enable_rings(ring);
	if (ret)
		io_uring_queue_exit(ring);
	return ret;
}

static int case_twist(enum twist tw)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp = { .tx = -1, .rx = -1 };
	struct pump p = { .fd = -1 };
	struct msghdr mh = { 0 };
	struct iovec iov = { g_buf, 1000 };
	int fd, pipefd[2] = { -1, -1 }, ret, rc, want;
	size_t len = 1000;
	unsigned ring_flags = 0, zc_flags = IORING_SEND_ZC_SINGLE_CQE;

	switch (tw) {
	case TW_DEFER_TASKRUN:
		ring_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
		break;
	case TW_SQPOLL:
		ring_flags = IORING_SETUP_SQPOLL;
		break;
	case TW_CQE32:
		ring_flags = IORING_SETUP_CQE32;
		break;
	case TW_CQE_MIXED:
		ring_flags = IORING_SETUP_CQE_MIXED;
		break;
	case TW_IOPOLL:
		ring_flags = IORING_SETUP_IOPOLL;
		break;
	default:
		break;
	}
	ret = tw == TW_RESTRICTED ? ring_restricted(&ring) : ring_open(&ring, ring_flags);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));

	ret = sock_pair_open(&sp, AF_INET, tw == TW_UDP_TOO_BIG || tw == TW_ASYNC_UDP ?
			     SOCK_DGRAM : SOCK_STREAM, 0, 0);
	if (ret) {
		rc = fail("socket pair: %s", strerror(-ret));
		goto out;
	}
	fd = sp.tx;
	want = (int)len;
	p = (struct pump){ .fd = sp.rx, .cap = 1 << 20 };

	switch (tw) {
	case TW_BAD_FD:
	case TW_SENDMSG_BAD_FD:
		fd = 1000000;
		want = -EBADF;
		break;
	case TW_NOT_SOCK:
		if (pipe(pipefd)) {
			rc = fail("pipe: %s", strerror(errno));
			goto out;
		}
		fd = pipefd[1];
		want = -ENOTSOCK;
		break;
	case TW_ADDR3:
	case TW_PAD2:
	case TW_BAD_SQE_FLAG:
	case TW_PERSONALITY:
	case TW_IOPOLL:
		want = -EINVAL;
		break;
	case TW_REPORT:
		zc_flags |= IORING_SEND_ZC_REPORT_USAGE;
		want = -EINVAL;
		break;
	case TW_BAD_FLAG:
		zc_flags |= 1u << 7;
		want = -EINVAL;
		break;
	case TW_ALL_FLAGS:
		zc_flags = ~0u;		/* liburing's test_send_faults() */
		want = -EINVAL;
		break;
	case TW_BUFFER_SELECT:
		want = -EOPNOTSUPP;
		break;
	case TW_RESTRICTED:
		want = -EACCES;
		break;
	case TW_BAD_BUF_INDEX:
		want = -EFAULT;
		break;
	case TW_UDP_TOO_BIG:
		len = 70000;
		want = -EMSGSIZE;
		break;
	case TW_TCP_UNCONNECTED:
		close(sp.tx);
		sp.tx = fd = socket(AF_INET, SOCK_STREAM, 0);
		want = -EPIPE;
		break;
	case TW_ZERO_LEN:
		len = 0;
		want = 0;
		break;
	default:
		break;
	}

	sqe = io_uring_get_sqe(&ring);
	if (tw == TW_BAD_BUF_INDEX) {
		io_uring_prep_send_zc_fixed(sqe, fd, g_buf, len, 0, zc_flags, 7);
	} else if (tw == TW_SENDMSG_BAD_FD) {
		mh.msg_iov = &iov;
		mh.msg_iovlen = 1;
		io_uring_prep_sendmsg_zc(sqe, fd, &mh, 0);
		sqe->ioprio |= (__u16)zc_flags;
	} else {
		io_uring_prep_send_zc(sqe, fd, g_buf, len, 0, zc_flags);
	}
	sqe->user_data = UD_SEND;
	switch (tw) {
	case TW_ADDR3:
		sqe->addr3 = 0x1234;
		break;
	case TW_PAD2:
		sqe->__pad2[0] = 1;
		break;
	case TW_ASYNC_TCP:
	case TW_ASYNC_UDP:
		sqe->flags |= IOSQE_ASYNC;
		break;
	case TW_BAD_SQE_FLAG:
		sqe->flags |= 1u << 7;
		break;
	case TW_BUFFER_SELECT:
		sqe->flags |= IOSQE_BUFFER_SELECT;
		break;
	case TW_PERSONALITY:
		sqe->personality = 0x7ff0;
		break;
	default:
		break;
	}
	ret = io_uring_submit(&ring);
	if (ret != 1) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	rc = reap_ud(&ring, &r, UD_SEND, &p);
	if (rc)
		goto out;
	if (tw == TW_IOPOLL || tw == TW_RESTRICTED) {
		/* no drain there (IOPOLL) or no NOP either way: the request
		 * never reached the opcode, so nothing else can follow */
		rc = check_single(&r, UD_SEND, want, NULL);
		goto out;
	}
	rc = barrier(&ring, &r, &p);
	if (!rc)
		rc = check_single(&r, UD_SEND, want, NULL);
	if (!rc && want > 0)
		rc = check_peer(&p, sp.rx, g_buf, (size_t)want);
out:
	if (pipefd[0] >= 0) {
		close(pipefd[0]);
		close(pipefd[1]);
	}
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/*
 * Patch 2 of the series: a two-CQE SEND_ZC with an invalid flag word fails
 * before its notification exists (one CQE, no F_MORE); stock kernels
 * allocate the notification first (F_MORE, then a notification).  Both keep
 * the documented F_MORE rule.
 */
static int case_two_cqe_bad_flags(void)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp;
	const struct cqe_rec *c0;
	int ret, rc;

	ret = ring_open(&ring, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 0, 0);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_send_zc(sqe, sp.tx, g_buf, 100, 0, 1u << 7);
	sqe->user_data = UD_SEND;
	io_uring_submit(&ring);
	rc = reap_ud(&ring, &r, UD_SEND, NULL);
	if (!rc)
		rc = barrier(&ring, &r, NULL);
	if (rc)
		goto out;
	c0 = nth_ud(&r, UD_SEND, 0);
	if (c0->res != -EINVAL)
		rc = fail("want -EINVAL, got %s", fmt_cqes(&r, UD_SEND));
	else if (expect_single && (count_ud(&r, UD_SEND) != 1 || c0->flags))
		rc = fail("want one -EINVAL CQE without flags, got %s", fmt_cqes(&r, UD_SEND));
	else if (!expect_single && (count_ud(&r, UD_SEND) != 2 || c0->flags != IORING_CQE_F_MORE ||
				    nth_ud(&r, UD_SEND, 1)->flags != IORING_CQE_F_NOTIF))
		rc = fail("stock: want [-EINVAL F_MORE] [F_NOTIF], got %s", fmt_cqes(&r, UD_SEND));
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/* ---- requests that wait ------------------------------------------------ */

/*
 * Fill a TCP connection until the sender stays blocked (peer not reading):
 * keep topping it up until it has not become writable again for 200 ms,
 * since ACKed data frees send buffer space for a while after the first
 * EAGAIN.
 */
static int fill_tcp(int fd)
{
	int n = 0, quiet = 0;

	while (quiet < 10) {
		ssize_t s = send(fd, g_rxbuf, 65536, MSG_DONTWAIT);

		if (s > 0) {
			n += (int)s;
			quiet = 0;
			continue;
		}
		if (poll(&(struct pollfd){ .fd = fd, .events = POLLOUT }, 1, 20) == 0)
			quiet++;
	}
	return n;
}

/*
 * A TCP pair whose sender queue holds data the peer's closed window keeps
 * from leaving: a large send buffer, a small receive buffer, and 256 KiB
 * written that the peer does not read.  A zero-copy send issued now is
 * queued at once (its send part completes) but its data cannot be
 * acknowledged, so its buffer stays referenced until the peer reads.
 */
static int stalled_pair(struct sock_pair *sp, size_t *queued)
{
	int big = 8 << 20, small = 4096, ret;
	size_t sent = 0;
	int outq = 0;

	ret = sock_pair_open(sp, AF_INET, SOCK_STREAM, 0, small);
	if (ret)
		return ret;
	/* root in the VM: past wmem_max */
	if (setsockopt(sp->tx, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		setsockopt(sp->tx, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	while (sent < (256u << 10)) {
		ssize_t s = send(sp->tx, g_rxbuf, (256u << 10) - sent, MSG_DONTWAIT);

		if (s <= 0)
			break;
		sent += (size_t)s;
	}
	*queued = sent;
	/* the window must be closed with data left in the sender's queue */
	for (int i = 0; i < 200; i++) {
		if (ioctl(sp->tx, SIOCOUTQNSD, &outq) == 0 && outq > 0)
			return 0;
		usleep(10 * 1000);
	}
	return -EAGAIN;
}

enum held {
	HELD_DRAIN,	/* a drained NOP waits for the CQE */
	HELD_CANCEL,	/* cancel after the send part: -ENOENT, CQE later */
	HELD_UNREGISTER,	/* unregister the fixed buffer while referenced */
	HELD_UPDATE,	/* replace the fixed buffer's slot while referenced */
};

/*
 * A single-CQE send whose send part completes while its data stays in the
 * sender's queue (stalled_pair), linked to a NOP whose CQE says the send
 * part is over.  Then one of enum held, then the peer reads, then the CQE.
 */
static int case_held(enum held what)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp;
	struct pump p;
	const size_t len = 16384;
	size_t queued = 0;
	bool fixed = what == HELD_UNREGISTER || what == HELD_UPDATE;
	unsigned char *buf = g_buf + 8192;
	__u64 uds[2] = { UD_SEND, UD_OTHER };
	int ret, rc = 0, i_send, i_after;
	uint64_t t_end;

	ret = ring_open(&ring, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = stalled_pair(&sp, &queued);
	if (ret) {
		io_uring_queue_exit(&ring);
		return ret == -EAGAIN ? skip("could not stall the TCP sender") :
					fail("socket pair: %s", strerror(-ret));
	}
	fill_pattern(buf, len, 41 + what);
	p = (struct pump){ .fd = sp.rx, .skip = queued, .cap = len, .paused = true };

	sqe = io_uring_get_sqe(&ring);
	if (fixed)
		io_uring_prep_send_zc_fixed(sqe, sp.tx, buf, len, MSG_WAITALL,
					    IORING_SEND_ZC_SINGLE_CQE, 0);
	else
		io_uring_prep_send_zc(sqe, sp.tx, buf, len, MSG_WAITALL,
				      IORING_SEND_ZC_SINGLE_CQE);
	sqe->user_data = UD_SEND;
	sqe->flags |= IOSQE_IO_LINK;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	sqe->user_data = UD_OTHER;
	ret = io_uring_submit(&ring);
	if (ret != 2) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	/* the NOP runs when the send part is over: the data is queued */
	rc = reap_ud(&ring, &r, UD_OTHER, &p);
	if (rc)
		goto out;
	if (nth_ud(&r, UD_OTHER, 0)->res != 0) {
		rc = fail("linked NOP: %s", fmt_cqes(&r, UD_OTHER));
		goto out;
	}
	if (count_ud(&r, UD_SEND)) {
		rc = fail("CQE before the peer read anything: %s", fmt_cqes(&r, UD_SEND));
		goto out;
	}

	switch (what) {
	case HELD_DRAIN:
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_nop(sqe);
		sqe->flags |= IOSQE_IO_DRAIN;
		sqe->user_data = UD_BARRIER;
		io_uring_submit(&ring);
		break;
	case HELD_CANCEL:
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_cancel64(sqe, UD_SEND, 0);
		sqe->user_data = UD_CANCEL;
		io_uring_submit(&ring);
		rc = reap_ud(&ring, &r, UD_CANCEL, &p);
		if (rc)
			goto out;
		if (nth_ud(&r, UD_CANCEL, 0)->res != -ENOENT) {
			rc = fail("cancel after the send part: %s, want -ENOENT",
				  fmt_cqes(&r, UD_CANCEL));
			goto out;
		}
		break;
	case HELD_UNREGISTER:
		ret = io_uring_unregister_buffers(&ring);
		if (ret) {
			rc = fail("unregister buffers in flight: %s", strerror(-ret));
			goto out;
		}
		break;
	case HELD_UPDATE: {
		struct iovec iov = { .iov_base = g_rxbuf, .iov_len = 4096 };
		__u64 tag = 0;

		ret = io_uring_register_buffers_update_tag(&ring, 0, &iov, &tag, 1);
		if (ret != 1) {
			rc = fail("update buffer in flight: %d", ret);
			goto out;
		}
		break;
	}
	}
	/* a negative check, no timing assumption: nothing may come yet */
	t_end = now_ns() + 50000000ull;
	while (now_ns() < t_end)
		if ((rc = reap_some(&ring, &r, &p)))
			goto out;
	if (count_ud(&r, UD_SEND) || count_ud(&r, UD_TAG) ||
	    (what == HELD_DRAIN && count_ud(&r, UD_BARRIER))) {
		rc = fail("completion while the data is still referenced: send %s tag %s drain %s",
			  fmt_cqes(&r, UD_SEND), fmt_cqes(&r, UD_TAG), fmt_cqes(&r, UD_BARRIER));
		goto out;
	}

	/* the peer reads: the data is acknowledged, the buffer released */
	p.paused = false;
	rc = reap(&ring, &r, uds, 2, &p);
	if (!rc && what == HELD_DRAIN)
		rc = reap_ud(&ring, &r, UD_BARRIER, &p);
	if (!rc && fixed)
		rc = reap_ud(&ring, &r, UD_TAG, &p);
	if (!rc)
		rc = barrier(&ring, &r, &p);
	if (!rc)
		rc = check_single(&r, UD_SEND, (int)len, NULL);
	if (rc)
		goto out;
	i_send = idx_ud(&r, UD_SEND, 0);
	i_after = what == HELD_DRAIN ? idx_ud(&r, UD_BARRIER, 0) :
		  fixed ? idx_ud(&r, UD_TAG, 0) : r.n;
	if (i_after < i_send) {
		rc = fail("%s CQE #%d came before the send's #%d",
			  what == HELD_DRAIN ? "drained NOP" : "buffer tag", i_after, i_send);
		goto out;
	}
	rc = check_peer(&p, sp.rx, buf, len);
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/*
 * Cancellation: mode 0 = nothing sent yet (POLL_FIRST on a full socket),
 * cancel → -ECANCELED; mode 1 = part of a large send went out, then cancel
 * → res = bytes sent; mode 2 = part went out, then the peer resets → res =
 * bytes sent; mode 3 = linked timeout cancels a blocked send; mode 4 = the
 * ring is torn down with the send pending (no CQE can be observed: this is
 * for KASAN/lockdep, checked through dmesg by the VM runner).
 */
static int case_cancel(int mode)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp;
	struct pump p = { .fd = -1 };
	size_t len = mode == 0 ? 4096 : 4u << 20;
	int ret, rc = 0, res = 0, filled = 0;
	bool raced = false;
	__u64 uds[2] = { UD_SEND, UD_CANCEL };
	struct __kernel_timespec lts = { .tv_nsec = 50 * 1000000 };

	ret = ring_open(&ring, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_STREAM, 16384, 16384);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	if (mode == 0 || mode == 3 || mode == 4)
		filled = fill_tcp(sp.tx);
	fill_pattern(g_buf, len, 99);

	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_send_zc(sqe, sp.tx, g_buf, len, MSG_WAITALL,
			      IORING_SEND_ZC_SINGLE_CQE |
			      (mode == 0 || mode == 3 || mode == 4 ? IORING_RECVSEND_POLL_FIRST : 0));
	sqe->user_data = UD_SEND;
	if (mode == 3) {
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_link_timeout(sqe, &lts, 0);
		sqe->user_data = UD_CANCEL;
	}
	ret = io_uring_submit(&ring);
	if (ret < 1) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	/* let it go as far as it can */
	if (mode != 3)
		usleep(100 * 1000);
	if (mode == 4) {
		/* tear down with the request pending; must not hang or splat */
		io_uring_queue_exit(&ring);
		sock_pair_close(&sp);
		return 0;
	}

	/* nothing may have completed yet: the send is stuck */
	if (mode != 3) {
		struct io_uring_cqe *cqe;

		if (io_uring_peek_cqe(&ring, &cqe) == 0) {
			rc = fail("send completed although the peer is not reading (res=%d flags=%#x)",
				  cqe->res, cqe->flags);
			goto out;
		}
	}
	if (mode == 0 || mode == 1) {
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_cancel64(sqe, UD_SEND, 0);
		sqe->user_data = UD_CANCEL;
		io_uring_submit(&ring);
	} else if (mode == 2) {
		/* unread data on close → RST to the sender */
		close(sp.rx);
		sp.rx = -1;
	}
	if (mode != 2)
		p = (struct pump){ .fd = sp.rx, .cap = 0 };
	rc = reap(&ring, &r, uds, mode == 2 ? 1 : 2, &p);
	if (!rc)
		rc = barrier(&ring, &r, &p);
	if (rc)
		goto out;
	if (mode != 2) {
		const struct cqe_rec *c = nth_ud(&r, UD_CANCEL, 0);

		if (count_ud(&r, UD_CANCEL) != 1)
			rc = fail("want one CQE of the cancel/timeout request, got %s",
				  fmt_cqes(&r, UD_CANCEL));
		else if (mode != 3 && c->res != 0)
			rc = fail("cancel request res %d", c->res);
		else if (mode == 3 && c->res != -ETIME && c->res != -EALREADY && c->res != -ENOENT)
			rc = fail("link timeout res %d", c->res);
		if (rc)
			goto out;
		/*
		 * -ENOENT: the timeout fired while the send was between two
		 * attempts (an ACK freed send space and woke it: slow guests
		 * see it), so nothing was cancelled and the send went on; the
		 * pump drained the peer, so it may have finished whole.
		 */
		if (mode == 3 && c->res == -ENOENT) {
			printf("# linked timeout: raced a retry of the send (-ENOENT)\n");
			raced = true;
		}
	}
	rc = check_single(&r, UD_SEND, INT32_MIN, &res);
	if (rc)
		goto out;
	if (res < 0 && res != -ECANCELED && res != -EINTR) {
		rc = fail("res %d (%s), want -ECANCELED or the bytes sent", res, strerror(-res));
		goto out;
	}
	if ((res >= (int)len && !(raced && res == (int)len)) ||
	    (res <= 0 && (mode == 1 || mode == 2))) {
		rc = fail("res %d, want 0 < res < %zu (a partial send)", res, len);
		goto out;
	}
	if ((mode == 0 || mode == 3) && !raced)
		printf("# %s: %s (%d bytes had gone out)\n", mode ? "linked timeout" : "cancel",
		       res < 0 ? "cancelled before sending" : "cancelled after a partial send",
		       res < 0 ? 0 : res);
	if (mode != 2) {
		/* the peer gets exactly what the CQE claims, plus our filler */
		uint64_t deadline = now_ns() + 10000000000ull;

		shutdown(sp.tx, SHUT_WR);
		while (!p.eof && now_ns() < deadline) {
			pump_run(&p);
			poll(&(struct pollfd){ .fd = sp.rx, .events = POLLIN }, 1, 10);
		}
		if (p.got != (size_t)(res > 0 ? res : 0) + (size_t)filled)
			rc = fail("peer received %zu bytes, CQE says %d (+%d filler)", p.got,
				  res, filled);
	}
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/* ---- links ------------------------------------------------------------- */

enum link_case {
	LK_NOP,		/* single-CQE send → NOP: both complete */
	LK_CUT_SINGLE,	/* failing SEND → single-CQE send: one -ECANCELED */
	LK_CUT_TWO,	/* failing SEND → two-CQE send: F_MORE (patch 1) */
	LK_SKIP_HEAD,	/* failing SEND with CQE_SKIP_SUCCESS → single: silent */
	LK_SKIP_OK,	/* NOP with CQE_SKIP_SUCCESS → single: one CQE */
	LK_HARDLINK,	/* failing single-CQE send, hardlinked → NOP still runs */
};

static int case_link(enum link_case lk)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp;
	struct pump p;
	__u64 uds[2] = { UD_SEND, UD_OTHER };
	int ret, rc, want_other;
	bool skip_ring = lk == LK_SKIP_HEAD || lk == LK_SKIP_OK;
	const struct cqe_rec *c;

	ret = ring_open(&ring, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, lk == LK_HARDLINK ? SOCK_STREAM : SOCK_DGRAM, 0, 0);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	p = (struct pump){ .fd = sp.rx, .cap = 1 << 20 };
	fill_pattern(g_buf, 512, 7);

	switch (lk) {
	case LK_NOP:
	case LK_HARDLINK:
		if (lk == LK_HARDLINK) {
			/* not connected: the send fails with -EPIPE */
			close(sp.tx);
			sp.tx = socket(AF_INET, SOCK_STREAM, 0);
		}
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_send_zc(sqe, sp.tx, g_buf, 512, 0, IORING_SEND_ZC_SINGLE_CQE);
		sqe->user_data = UD_SEND;
		sqe->flags |= lk == LK_HARDLINK ? IOSQE_IO_HARDLINK : IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_nop(sqe);
		sqe->user_data = UD_OTHER;
		want_other = 0;
		break;
	case LK_SKIP_OK:
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_nop(sqe);
		sqe->user_data = UD_OTHER;
		sqe->flags |= IOSQE_IO_LINK | IOSQE_CQE_SKIP_SUCCESS;
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_send_zc_fixed(sqe, sp.tx, g_buf, 512, 0,
					    IORING_SEND_ZC_SINGLE_CQE, 0);
		sqe->user_data = UD_SEND;
		want_other = 0;
		break;
	default:
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_send(sqe, 1000000, g_buf, 512, 0);
		sqe->user_data = UD_OTHER;
		sqe->flags |= IOSQE_IO_LINK;
		if (lk == LK_SKIP_HEAD)
			sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_send_zc(sqe, sp.tx, g_buf, 512, 0,
				      lk == LK_CUT_TWO ? 0 : IORING_SEND_ZC_SINGLE_CQE);
		sqe->user_data = UD_SEND;
		want_other = -EBADF;
		break;
	}
	ret = io_uring_submit(&ring);
	if (ret != 2) {
		rc = fail("submit: %d", ret);
		goto out;
	}

	if (lk == LK_SKIP_HEAD) {
		/* the head fails: its CQE; the member's is skipped with it */
		rc = reap_ud(&ring, &r, UD_OTHER, &p);
		if (!rc)
			rc = barrier_tw(&ring, &r, &p);
		if (!rc)
			rc = barrier_tw(&ring, &r, &p);
		if (rc)
			goto out;
		c = nth_ud(&r, UD_OTHER, 0);
		if (count_ud(&r, UD_OTHER) != 1 || c->res != -EBADF)
			rc = fail("failed head: %s, want one -EBADF", fmt_cqes(&r, UD_OTHER));
		else if (count_ud(&r, UD_SEND))
			rc = fail("member of a link whose failed head skips CQEs posted %s",
				  fmt_cqes(&r, UD_SEND));
		goto out;
	}
	if (lk == LK_SKIP_OK) {
		rc = reap_ud(&ring, &r, UD_SEND, &p);
		if (!rc)
			rc = barrier_tag(&ring, &r, &p);
		if (!rc && count_ud(&r, UD_OTHER))
			rc = fail("skipped NOP posted %s", fmt_cqes(&r, UD_OTHER));
		if (!rc)
			rc = check_single(&r, UD_SEND, 512, NULL);
		goto out;
	}

	rc = reap(&ring, &r, uds, 2, &p);
	if (!rc && !skip_ring)
		rc = barrier(&ring, &r, &p);
	if (rc)
		goto out;
	c = nth_ud(&r, UD_OTHER, 0);
	if (count_ud(&r, UD_OTHER) != 1 || c->res != want_other) {
		rc = fail("linked partner: %s, want one res=%d", fmt_cqes(&r, UD_OTHER), want_other);
		goto out;
	}
	switch (lk) {
	case LK_NOP:
		rc = check_single(&r, UD_SEND, 512, NULL);
		break;
	case LK_HARDLINK:
		rc = check_single(&r, UD_SEND, -EPIPE, NULL);
		break;
	case LK_CUT_SINGLE:
		rc = check_single(&r, UD_SEND, -ECANCELED, NULL);
		break;
	default: {
		const struct cqe_rec *c0 = nth_ud(&r, UD_SEND, 0), *c1 = nth_ud(&r, UD_SEND, 1);
		bool more = c0 && (c0->flags & IORING_CQE_F_MORE);

		if (count_ud(&r, UD_SEND) != 2 || c0->res != -ECANCELED ||
		    !(c1->flags & IORING_CQE_F_NOTIF))
			rc = fail("want [-ECANCELED] + [F_NOTIF], got %s", fmt_cqes(&r, UD_SEND));
		else if (expect_single && !more)
			rc = fail("cancelled link: -ECANCELED CQE lacks F_MORE but a notif follows: %s",
				  fmt_cqes(&r, UD_SEND));
		else if (!expect_single && more)
			rc = fail("stock kernel unexpectedly sets F_MORE (is patch 1 upstream now?): %s",
				  fmt_cqes(&r, UD_SEND));
		break;
	}
	}
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/* ---- IOSQE_CQE_SKIP_SUCCESS -------------------------------------------- */

/* mode 0: succeeds → no CQE; mode 1: fails → one CQE; mode 2: two-CQE → -EINVAL */
static int case_skip(int mode)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp;
	struct pump p;
	int ret, rc;

	ret = ring_open(&ring, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 0, 0);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	p = (struct pump){ .fd = sp.rx, .cap = 1 << 20 };
	fill_pattern(g_buf, 700, 3);
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_send_zc_fixed(sqe, mode == 1 ? 1000000 : sp.tx, g_buf, 700, 0,
				    mode == 2 ? 0 : IORING_SEND_ZC_SINGLE_CQE, 0);
	sqe->user_data = UD_SEND;
	sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	ret = io_uring_submit(&ring);
	if (ret != 1) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	if (mode == 0) {
		/* the datagram arrives, then the buffer's tag says it is free */
		rc = check_peer(&p, sp.rx, g_buf, 700);
		if (!rc)
			rc = barrier_tag(&ring, &r, &p);
		if (!rc && count_ud(&r, UD_SEND))
			rc = fail("successful send with IOSQE_CQE_SKIP_SUCCESS posted %s",
				  fmt_cqes(&r, UD_SEND));
		goto out;
	}
	rc = reap_ud(&ring, &r, UD_SEND, &p);
	if (!rc)
		rc = barrier_tag(&ring, &r, &p);
	if (!rc)
		rc = check_single(&r, UD_SEND, mode == 1 ? -EBADF : -EINVAL, NULL);
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/* ---- the drain hang ------------------------------------------------------ */

/*
 * Upstream since 6.16 (stock 7.2 included), fixed by patch 6 of the series:
 * once a ring has seen IOSQE_IO_DRAIN, a later SEND_ZC is deferred
 * (the drain state stays active until a request finds the defer list
 * empty), and io_queue_deferred() releases the first deferred request only
 * when nr_req_allocated == nr_drained, which the send's own notification,
 * allocated at prep, keeps false: neither the send nor the NOP after it
 * ever completes, in either completion mode.  A SEND_ZC that carries
 * IOSQE_IO_DRAIN itself waits for itself the same way.
 *
 * Stock: checked as "no CQE within 300 ms" (a kernel that fixed it
 * completes both in well under a millisecond; a slow guest could only hide
 * a fix, never fail the case); the ring is then torn down, which cancels
 * the deferred requests.  Patched: the send and the NOP complete, with the
 * CQEs of their mode.
 * single: single-CQE send; self: the send has IOSQE_IO_DRAIN (no drained
 * NOP before it).
 */
static int case_drain_hang(bool single, bool self)
{
	struct __kernel_timespec ts = { .tv_nsec = 300 * 1000000 };
	const __u64 uds[2] = { UD_SEND, UD_OTHER };
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	struct sock_pair sp;
	struct pump p;
	int ret, rc = 0;

	ret = ring_open(&ring, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 0, 0);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	p = (struct pump){ .fd = sp.rx, .cap = 100 };
	/* the drained NOP completes at once: nothing is outstanding */
	if (!self) {
		rc = barrier(&ring, &r, &p);
		if (rc)
			goto out;
	}
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_send_zc(sqe, sp.tx, g_buf, 100, 0, single ? IORING_SEND_ZC_SINGLE_CQE : 0);
	sqe->user_data = UD_SEND;
	if (self)
		sqe->flags |= IOSQE_IO_DRAIN;
	sqe = io_uring_get_sqe(&ring);
	io_uring_prep_nop(sqe);
	sqe->user_data = UD_OTHER;
	ret = io_uring_submit(&ring);
	if (ret != 2) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	if (!expect_single) {
		ret = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
		if (ret == 0) {
			while (io_uring_peek_cqe(&ring, &cqe) == 0) {
				record(&ring, &r, cqe);
				io_uring_cqe_seen(&ring, cqe);
			}
			rc = fail("the deferred send completed (send %s, NOP %s): is the drain hang fixed upstream? update this case",
				  fmt_cqes(&r, UD_SEND), fmt_cqes(&r, UD_OTHER));
		} else if (ret != -ETIME) {
			rc = fail("io_uring_wait_cqe_timeout: %s", strerror(-ret));
		}
		pump_run(&p);
		if (!rc && p.got)
			rc = fail("the deferred send reached the peer (%zu bytes) without a CQE",
				  p.got);
		goto out;
	}
	rc = reap(&ring, &r, uds, 2, &p);
	if (!rc)
		rc = barrier(&ring, &r, &p);
	if (rc)
		goto out;
	if (count_ud(&r, UD_OTHER) != 1 || nth_ud(&r, UD_OTHER, 0)->res != 0) {
		rc = fail("NOP after the send: %s, want one res=0", fmt_cqes(&r, UD_OTHER));
		goto out;
	}
	if (single) {
		rc = check_single(&r, UD_SEND, 100, NULL);
	} else {
		const struct cqe_rec *c0 = nth_ud(&r, UD_SEND, 0), *c1 = nth_ud(&r, UD_SEND, 1);

		if (count_ud(&r, UD_SEND) != 2 || c0->flags != IORING_CQE_F_MORE ||
		    c0->res != 100 || c1->flags != IORING_CQE_F_NOTIF)
			rc = fail("want [res=100 F_MORE] then [F_NOTIF], got %s",
				  fmt_cqes(&r, UD_SEND));
	}
	if (!rc)
		rc = check_peer(&p, sp.rx, g_buf, 100);
out:
	/* stock: teardown cancels the deferred send and NOP */
	io_uring_queue_exit(&ring);
	sock_pair_close(&sp);
	return rc;
}

/* ---- many at once ------------------------------------------------------ */

/* Many single-CQE UDP sends in flight at once: one CQE each. */
static int case_batch(void)
{
	enum { N = 48 };
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct sock_pair sp;
	struct pump p;
	__u64 uds[N];
	int i, ret, rc = 0;

	ret = ring_open(&ring, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 0, 1 << 20);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	p = (struct pump){ .fd = sp.rx, .cap = 0 };
	for (i = 0; i < N; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		io_uring_prep_send_zc_fixed(sqe, sp.tx, g_buf + i * 1500, 1400 + i, 0,
					    IORING_SEND_ZC_SINGLE_CQE, 0);
		uds[i] = sqe->user_data = 1000 + i;
	}
	ret = io_uring_submit(&ring);
	if (ret != N) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	rc = reap(&ring, &r, uds, N, &p);
	if (!rc)
		rc = barrier(&ring, &r, &p);
	for (i = 0; !rc && i < N; i++)
		rc = check_single(&r, uds[i], 1400 + i, NULL);
	if (!rc && r.n != N + 1)
		rc = fail("%d CQEs for %d sends and a barrier", r.n, N);
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/*
 * A TCP stream of N linked single-CQE sends with MSG_WAITALL, the way a
 * stream sender keeps order without the early CQE: consecutive sends share
 * skbs, so their notifications stack (io_link_skb).  One CQE each, the
 * stream arrives in order.
 */
static int case_tcp_stacked(bool fixed)
{
	enum { N = 64, LEN = 1000 };
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct sock_pair sp;
	struct pump p;
	__u64 uds[N];
	int i, ret, rc = 0;

	ret = ring_open_n(&ring, 0, 128, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_STREAM, 0, 0);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	fill_pattern(g_buf, N * LEN, 11);
	p = (struct pump){ .fd = sp.rx, .cap = N * LEN };
	for (i = 0; i < N; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

		if (fixed)
			io_uring_prep_send_zc_fixed(sqe, sp.tx, g_buf + i * LEN, LEN, MSG_WAITALL,
						    IORING_SEND_ZC_SINGLE_CQE, 0);
		else
			io_uring_prep_send_zc(sqe, sp.tx, g_buf + i * LEN, LEN, MSG_WAITALL,
					      IORING_SEND_ZC_SINGLE_CQE);
		uds[i] = sqe->user_data = 2000 + i;
		if (i < N - 1)
			sqe->flags |= IOSQE_IO_LINK;
	}
	ret = io_uring_submit(&ring);
	if (ret != N) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	rc = reap(&ring, &r, uds, N, &p);
	if (!rc)
		rc = barrier(&ring, &r, &p);
	for (i = 0; !rc && i < N; i++)
		rc = check_single(&r, uds[i], LEN, NULL);
	if (!rc)
		rc = check_peer(&p, sp.rx, g_buf, N * LEN);
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/* CQ ring of 8 entries, 32 single-CQE sends: overflowed CQEs, one each. */
static int case_overflow(void)
{
	enum { N = 32 };
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct sock_pair sp;
	struct pump p;
	__u64 uds[N];
	int i, ret, rc = 0, sent = 0;
	bool overflowed = false;

	ret = ring_open_n(&ring, 0, 8, 8);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 0, 1 << 20);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	p = (struct pump){ .fd = sp.rx, .cap = 0 };
	while (sent < N) {
		for (i = 0; i < 8 && sent < N; i++, sent++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

			io_uring_prep_send_zc(sqe, sp.tx, g_buf + sent * 100, 100, 0,
					      IORING_SEND_ZC_SINGLE_CQE);
			uds[sent] = sqe->user_data = 3000 + sent;
		}
		ret = io_uring_submit(&ring);
		if (ret < 0) {
			rc = fail("submit: %s", strerror(-ret));
			goto out;
		}
		/* let the CQEs of this batch land before the next */
		for (i = 0; i < 50 && io_uring_cq_ready(&ring) < 8 &&
		     !io_uring_cq_has_overflow(&ring); i++) {
			io_uring_get_events(&ring);
			usleep(2000);
		}
		overflowed |= io_uring_cq_has_overflow(&ring);
	}
	rc = reap(&ring, &r, uds, N, &p);
	if (!rc)
		rc = barrier(&ring, &r, &p);
	for (i = 0; !rc && i < N; i++)
		rc = check_single(&r, uds[i], 100, NULL);
	if (!rc && !overflowed)
		rc = skip("the CQ ring never overflowed (the CQEs were not posted in time)");
	else if (!rc)
		printf("# CQ overflowed; %d CQEs reaped, one per send\n", r.n - 1);
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/*
 * A large TCP send that has to wait for the reader several times: with
 * MSG_WAITALL all of it, without it possibly short, and res says how much.
 */
static int case_big_tcp(bool waitall)
{
	struct send_case sc = { .family = AF_INET, .type = SOCK_STREAM, .op = OP_SEND_ZC,
				.single = true, .len = 6u << 20,
				.msg_flags = waitall ? MSG_WAITALL : 0, .allow_short = !waitall };

	return run_send_case(&sc);
}

/* The flag on opcodes whose sqe->ioprio is a send/recv flag word: -EINVAL. */
static int case_other_opcode(int which)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp;
	struct msghdr mh = { 0 };
	struct iovec iov = { g_buf, 100 };
	int ret, rc;
	const struct cqe_rec *c;

	ret = ring_open(&ring, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 0, 0);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	sqe = io_uring_get_sqe(&ring);
	switch (which) {
	case 0:
		io_uring_prep_send(sqe, sp.tx, g_buf, 100, 0);
		break;
	case 1:
		io_uring_prep_sendmsg(sqe, sp.tx, &mh, 0);
		break;
	case 2:
		io_uring_prep_recv(sqe, sp.rx, g_buf, 100, 0);
		break;
	default:
		io_uring_prep_recvmsg(sqe, sp.rx, &mh, 0);
		break;
	}
	sqe->ioprio |= IORING_SEND_ZC_SINGLE_CQE;
	sqe->user_data = UD_SEND;
	io_uring_submit(&ring);
	rc = reap_ud(&ring, &r, UD_SEND, NULL);
	if (!rc)
		rc = barrier(&ring, &r, NULL);
	if (rc)
		goto out;
	c = nth_ud(&r, UD_SEND, 0);
	if (count_ud(&r, UD_SEND) != 1 || c->res != -EINVAL)
		rc = fail("want one CQE with -EINVAL, got %s", fmt_cqes(&r, UD_SEND));
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/* Stock kernel: the flag is unknown, the request fails with -EINVAL. */
static int case_stock_rejects(int op)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp;
	struct msghdr mh = { 0 };
	struct iovec iov = { g_buf, 100 };
	const struct cqe_rec *c0;
	int ret, rc;

	ret = ring_open(&ring, 0);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 0, 0);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	sqe = io_uring_get_sqe(&ring);
	if (op == 0)
		io_uring_prep_send_zc(sqe, sp.tx, g_buf, 100, 0, IORING_SEND_ZC_SINGLE_CQE);
	else
		io_uring_prep_sendmsg_zc(sqe, sp.tx, &mh, 0);
	sqe->ioprio |= IORING_SEND_ZC_SINGLE_CQE;
	sqe->user_data = UD_SEND;
	io_uring_submit(&ring);
	rc = reap_ud(&ring, &r, UD_SEND, NULL);
	if (!rc)
		rc = barrier(&ring, &r, NULL);
	if (rc)
		goto out;
	c0 = nth_ud(&r, UD_SEND, 0);
	/* stock allocates the notification first: F_MORE, then the notification */
	if (c0->res != -EINVAL || !(c0->flags & IORING_CQE_F_MORE) || count_ud(&r, UD_SEND) != 2 ||
	    !(nth_ud(&r, UD_SEND, 1)->flags & IORING_CQE_F_NOTIF))
		rc = fail("want [-EINVAL F_MORE] [F_NOTIF], got %s", fmt_cqes(&r, UD_SEND));
	else
		printf("# stock kernel rejects the flag with: %s\n", fmt_cqes(&r, UD_SEND));
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

static void on_alarm(int sig)
{
	(void)sig;
	static const char msg[] = "not ok - unified_test: global timeout (600 s), aborting\n";

	if (write(1, msg, sizeof(msg) - 1) < 0)
		_exit(3);
	_exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "expect-unified", no_argument, NULL, 'u' },
		{ "expect-stock", no_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			expect_single = 1;
			break;
		case 's':
			expect_single = 0;
			break;
		default:
			fprintf(stderr, "usage: %s [--expect-unified | --expect-stock]\n", argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(600);

	g_buf = aligned_alloc(4096, BUF_SIZE);
	g_rxbuf = aligned_alloc(4096, BUF_SIZE);
	if (!g_buf || !g_rxbuf)
		return 2;
	memset(g_rxbuf, 0x5a, BUF_SIZE);

	printf("# IORING_SEND_ZC_SINGLE_CQE %s\n", kernel_has_single_cqe() ? "present" : "absent");
	if (expect_single < 0) {
		expect_single = kernel_has_single_cqe();
		printf("# no --expect-* given: testing as a %s kernel\n",
		       expect_single ? "patched" : "stock");
	}

	report(expect_single ? "IO_URING_QUERY_SEND_ZC lists IORING_SEND_ZC_SINGLE_CQE" :
			       "IO_URING_QUERY_SEND_ZC unknown to the stock kernel", case_query());

	/* the stock two-CQE contract holds on both kernels */
	send_matrix(false);

	report("SEND with the flag: -EINVAL", case_other_opcode(0));
	report("SENDMSG with the flag: -EINVAL", case_other_opcode(1));
	report("RECV with the flag: -EINVAL", case_other_opcode(2));
	report("RECVMSG with the flag: -EINVAL", case_other_opcode(3));
	report(expect_single ? "two-CQE SEND_ZC with an invalid flag: one -EINVAL CQE, no notif" :
			       "two-CQE SEND_ZC with an invalid flag: -EINVAL w/ F_MORE, then notif (stock)",
	       case_two_cqe_bad_flags());
	report(expect_single ? "two-CQE SEND_ZC cancelled by a failed link: -ECANCELED w/ F_MORE, then notif" :
			       "two-CQE SEND_ZC cancelled by a failed link: -ECANCELED w/o F_MORE, then notif (known stock bug)",
	       case_link(LK_CUT_TWO));
	report("two-CQE SEND_ZC with IOSQE_CQE_SKIP_SUCCESS: -EINVAL", case_skip(2));
	report(expect_single ? "two-CQE SEND_ZC after a drained NOP runs (patch 6)" :
			       "two-CQE SEND_ZC after a drained NOP never runs (stock drain hang)",
	       case_drain_hang(false, false));
	report(expect_single ? "two-CQE SEND_ZC with IOSQE_IO_DRAIN runs (patch 6)" :
			       "two-CQE SEND_ZC with IOSQE_IO_DRAIN never runs (stock drain hang)",
	       case_drain_hang(false, true));

	if (!expect_single) {
		report("SEND_ZC with IORING_SEND_ZC_SINGLE_CQE rejected: -EINVAL", case_stock_rejects(0));
		report("SENDMSG_ZC with IORING_SEND_ZC_SINGLE_CQE rejected: -EINVAL", case_stock_rejects(1));
		printf("# single-CQE cases not run: the kernel has no IORING_SEND_ZC_SINGLE_CQE\n");
		goto done;
	}

	send_matrix(true);

	static const struct { enum twist tw; const char *name; } twists[] = {
		{ TW_BAD_FD, "single-CQE SEND_ZC, bad fd: one CQE, -EBADF" },
		{ TW_SENDMSG_BAD_FD, "single-CQE SENDMSG_ZC, bad fd: one CQE, -EBADF" },
		{ TW_NOT_SOCK, "single-CQE SEND_ZC on a pipe: one CQE, -ENOTSOCK" },
		{ TW_ADDR3, "single-CQE SEND_ZC with notif user_data in addr3: one CQE, -EINVAL" },
		{ TW_REPORT, "single-CQE SEND_ZC with REPORT_USAGE: one CQE, -EINVAL" },
		{ TW_BAD_FLAG, "single-CQE SEND_ZC with an unknown ioprio bit: one CQE, -EINVAL" },
		{ TW_ALL_FLAGS, "SEND_ZC with ioprio ~0 (liburing test_send_faults): one CQE, -EINVAL" },
		{ TW_PAD2, "single-CQE SEND_ZC with __pad2 set: one CQE, -EINVAL" },
		{ TW_BAD_BUF_INDEX, "single-CQE SEND_ZC, bad fixed buffer index: one CQE, -EFAULT" },
		{ TW_UDP_TOO_BIG, "single-CQE SEND_ZC, oversized UDP datagram: one CQE, -EMSGSIZE" },
		{ TW_TCP_UNCONNECTED, "single-CQE SEND_ZC on an unconnected TCP socket: one CQE, -EPIPE" },
		{ TW_ZERO_LEN, "single-CQE SEND_ZC of 0 bytes: one CQE, res 0" },
		{ TW_ASYNC_TCP, "single-CQE SEND_ZC tcp4 via io-wq (IOSQE_ASYNC): one CQE" },
		{ TW_ASYNC_UDP, "single-CQE SEND_ZC udp4 via io-wq (IOSQE_ASYNC): one CQE" },
		{ TW_DEFER_TASKRUN, "single-CQE SEND_ZC on a DEFER_TASKRUN ring: one CQE" },
		{ TW_SQPOLL, "single-CQE SEND_ZC on an SQPOLL ring: one CQE" },
		{ TW_CQE32, "single-CQE SEND_ZC on a CQE32 ring: one CQE, extra fields 0" },
		{ TW_CQE_MIXED, "single-CQE SEND_ZC on a CQE_MIXED ring: one 16-byte CQE" },
		{ TW_BAD_SQE_FLAG, "single-CQE SEND_ZC, unknown IOSQE flag (before prep): one CQE, -EINVAL" },
		{ TW_BUFFER_SELECT, "single-CQE SEND_ZC, IOSQE_BUFFER_SELECT (before prep): one CQE, -EOPNOTSUPP" },
		{ TW_PERSONALITY, "single-CQE SEND_ZC, unknown personality (before prep): one CQE, -EINVAL" },
		{ TW_IOPOLL, "single-CQE SEND_ZC on an IOPOLL ring (before prep): one CQE, -EINVAL" },
		{ TW_RESTRICTED, "single-CQE SEND_ZC forbidden by ring restrictions: one CQE, -EACCES" },
	};
	for (size_t i = 0; i < sizeof(twists) / sizeof(twists[0]); i++)
		report(twists[i].name, case_twist(twists[i].tw));

	report("single-CQE SEND_ZC cancelled before sending: one CQE, -ECANCELED", case_cancel(0));
	report("single-CQE SEND_ZC cancelled after a partial send: one CQE, res = bytes sent", case_cancel(1));
	report("single-CQE SEND_ZC, peer reset after a partial send: one CQE, res = bytes sent", case_cancel(2));
	report("single-CQE SEND_ZC with a linked timeout that fires: one CQE, -ECANCELED", case_cancel(3));
	report("ring torn down with a single-CQE SEND_ZC pending (dmesg checked by the runner)", case_cancel(4));
	report("cancel after the send part: -ENOENT, the CQE comes when the data is released",
	       case_held(HELD_CANCEL));
	report("IOSQE_IO_DRAIN after a single-CQE send waits for its CQE", case_held(HELD_DRAIN));
	report("single-CQE SEND_ZC after a drained NOP runs (patch 6)", case_drain_hang(true, false));
	report("single-CQE SEND_ZC with IOSQE_IO_DRAIN runs (patch 6)", case_drain_hang(true, true));
	report("fixed buffer unregistered while a single-CQE send holds it: CQE, then its tag",
	       case_held(HELD_UNREGISTER));
	report("fixed buffer slot replaced while a single-CQE send holds it: CQE, then its tag",
	       case_held(HELD_UPDATE));
	report("single-CQE SEND_ZC linked to a NOP: both complete, one send CQE", case_link(LK_NOP));
	report("single-CQE SEND_ZC cancelled by a failed link head: one CQE, -ECANCELED",
	       case_link(LK_CUT_SINGLE));
	report("failed head with IOSQE_CQE_SKIP_SUCCESS: its single-CQE member posts nothing",
	       case_link(LK_SKIP_HEAD));
	report("NOP with IOSQE_CQE_SKIP_SUCCESS linked to a single-CQE send: only the send's CQE",
	       case_link(LK_SKIP_OK));
	report("failing single-CQE send hardlinked to a NOP: NOP runs, one -EPIPE CQE",
	       case_link(LK_HARDLINK));
	report("single-CQE SEND_ZC with IOSQE_CQE_SKIP_SUCCESS that succeeds: no CQE", case_skip(0));
	report("single-CQE SEND_ZC with IOSQE_CQE_SKIP_SUCCESS that fails: one CQE, -EBADF",
	       case_skip(1));
	report("48 single-CQE UDP sends in flight (fixed buffers): one CQE each", case_batch());
	report("64 linked single-CQE TCP sends (stacked notifications): one CQE each, in order",
	       case_tcp_stacked(false));
	report("64 linked single-CQE TCP sends from a fixed buffer: one CQE each, in order",
	       case_tcp_stacked(true));
	report("32 single-CQE sends into an 8-entry CQ (overflow): one CQE each", case_overflow());
	report("single-CQE SEND_ZC of 6 MiB over TCP, MSG_WAITALL: one CQE, res=len",
	       case_big_tcp(true));
	report("single-CQE SEND_ZC of 6 MiB over TCP, no MSG_WAITALL: one CQE, res = bytes the peer gets",
	       case_big_tcp(false));
done:
	printf("# skipped: %d\n", n_skip);
	printf("%d passed, %d failed\n", n_pass, n_fail);
	free(g_buf);
	free(g_rxbuf);
	return n_fail ? 1 : 0;
}
