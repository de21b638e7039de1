// SPDX-License-Identifier: MIT
/*
 * Kernel ABI test of the single-CQE zero-copy send of patches/
 * (IORING_SEND_ZC_UNIFIED), with raw liburing over loopback sockets.
 *
 *   unified_test --expect-unified   on the patched kernel
 *   unified_test --expect-stock     on a kernel without the series
 *   unified_test                    expectation taken from the feature bit
 *
 * Prints one TAP-style line per case and ends with "N passed, N failed";
 * exits non-zero if anything failed.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/uio.h>
#include <sys/utsname.h>

#include "common.h"

#define UD_SEND		0x5e4d0001ull
#define UD_OTHER	0x07e40002ull
#define UD_CANCEL	0xca4c0003ull
#define REAP_TIMEOUT_MS	10000	/* generous: TCG VMs are slow */
#define LINGER_MS	60	/* how long we wait for a CQE that must not come */

static int expect_unified = -1;
static int n_pass, n_fail, n_skip, n_case;
static char fail_msg[512];

/*
 * Payload memory; its first REG_SIZE bytes are registered as buffer 0 for
 * the fixed-buffer cases (pinning all of it for every ring is slow under
 * KASAN in an emulated VM).
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

static char skip_msg[256];
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
};

struct reaped {
	struct cqe_rec c[256];
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

static const struct cqe_rec *nth_ud(const struct reaped *r, __u64 ud, int nth)
{
	int i;

	for (i = 0; i < r->n; i++)
		if (r->c[i].ud == ud && nth-- == 0)
			return &r->c[i];
	return NULL;
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
 * got, keeps the first cap bytes in g_rxbuf.
 */
struct pump {
	int fd;
	size_t got;
	size_t cap;
	bool eof;
};

static void pump_run(struct pump *p)
{
	static unsigned char scratch[65536];
	ssize_t n;

	if (!p || p->fd < 0)
		return;
	for (;;) {
		n = recv(p->fd, scratch, sizeof(scratch), MSG_DONTWAIT);
		if (n <= 0) {
			if (n == 0)
				p->eof = true;
			return;
		}
		if (p->got < p->cap) {
			size_t keep = p->cap - p->got;

			if (keep > (size_t)n)
				keep = (size_t)n;
			memcpy(g_rxbuf + p->got, scratch, keep);
		}
		p->got += (size_t)n;
	}
}

/*
 * Reap CQEs until each of the nud user_data values has seen a final CQE,
 * then keep reaping LINGER_MS longer to catch CQEs that must not exist.
 */
static int reap(struct io_uring *ring, struct reaped *r, const __u64 *uds,
		int nud, struct pump *p)
{
	uint64_t deadline = now_ns() + REAP_TIMEOUT_MS * 1000000ull;
	uint64_t linger_end = 0;

	for (;;) {
		struct __kernel_timespec ts = { .tv_nsec = 5 * 1000000 };
		struct io_uring_cqe *cqe;
		int i, done = 1, ret;

		pump_run(p);
		ret = io_uring_wait_cqe_timeout(ring, &cqe, &ts);
		if (ret == 0) {
			if (r->n < (int)(sizeof(r->c) / sizeof(r->c[0]))) {
				r->c[r->n].ud = cqe->user_data;
				r->c[r->n].res = cqe->res;
				r->c[r->n].flags = cqe->flags;
				r->n++;
			}
			io_uring_cqe_seen(ring, cqe);
			continue;
		}
		if (ret != -ETIME && ret != -EINTR)
			return fail("io_uring_wait_cqe_timeout: %s", strerror(-ret));
		for (i = 0; i < nud; i++)
			if (!finals_ud(r, uds[i]))
				done = 0;
		if (done && !linger_end)
			linger_end = now_ns() + LINGER_MS * 1000000ull;
		if (linger_end && now_ns() > linger_end)
			return 0;
		if (!linger_end && now_ns() > deadline) {
			for (i = 0; i < nud; i++)
				if (!finals_ud(r, uds[i]))
					return fail("timed out waiting for the final CQE of user_data %#llx (%d CQEs so far)",
						    (unsigned long long)uds[i], count_ud(r, uds[i]));
		}
	}
}

static const char *fmt_cqes(const struct reaped *r, __u64 ud)
{
	static char s[512];
	size_t off = 0;
	int i;

	s[0] = 0;
	for (i = 0; i < r->n && off < sizeof(s) - 64; i++) {
		if (r->c[i].ud != ud)
			continue;
		off += (size_t)snprintf(s + off, sizeof(s) - off, "[res=%d flags=%#x] ",
					r->c[i].res, r->c[i].flags);
	}
	return s;
}

/*
 * The unified contract: exactly one CQE, F_NOTIF, never F_MORE, and res as
 * expected.  want_res == INT32_MIN accepts any res (returned in *res).
 */
static int check_unified(const struct reaped *r, __u64 ud, int want_res,
			 int *res_out, __u32 *flags_out)
{
	const struct cqe_rec *c = nth_ud(r, ud, 0);

	if (count_ud(r, ud) != 1)
		return fail("want exactly 1 CQE, got %d: %s", count_ud(r, ud), fmt_cqes(r, ud));
	if (!(c->flags & IORING_CQE_F_NOTIF))
		return fail("CQE lacks IORING_CQE_F_NOTIF: %s", fmt_cqes(r, ud));
	if (c->flags & IORING_CQE_F_MORE)
		return fail("CQE has IORING_CQE_F_MORE: %s", fmt_cqes(r, ud));
	if (want_res != INT32_MIN && c->res != want_res)
		return fail("res %d (%s), want %d (%s)", c->res,
			    c->res < 0 ? strerror(-c->res) : "bytes", want_res,
			    want_res < 0 ? strerror(-want_res) : "bytes");
	if (res_out)
		*res_out = c->res;
	if (flags_out)
		*flags_out = c->flags;
	return 0;
}

static int kernel_major(void)
{
	struct utsname u;

	return uname(&u) ? 0 : atoi(u.release);
}

/* ---- rings ------------------------------------------------------------ */

static int ring_open(struct io_uring *ring, unsigned setup_flags, struct io_uring_params *out)
{
	struct io_uring_params p;
	struct iovec iov = { .iov_base = g_buf, .iov_len = REG_SIZE };
	int ret;

	memset(&p, 0, sizeof(p));
	p.flags = setup_flags;
	ret = io_uring_queue_init_params(64, ring, &p);
	if (ret)
		return ret;
	ret = io_uring_register_buffers(ring, &iov, 1);
	if (ret) {
		io_uring_queue_exit(ring);
		return ret;
	}
	if (out)
		*out = p;
	return 0;
}

/* ---- the send matrix -------------------------------------------------- */

enum send_op { OP_SEND_ZC, OP_SENDMSG_ZC };

struct send_case {
	int family, type;
	enum send_op op;
	bool fixed, report, vectorized, unified, async;
	bool allow_short;	/* stream send without MSG_WAITALL may be short */
	unsigned ring_flags;
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
			    (sc->unified ? IORING_SEND_ZC_UNIFIED : 0);
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
	__u64 ud = UD_SEND;
	unsigned char *buf = g_buf + 4096 + 123;	/* unaligned on purpose */
	int ret, rc = 0, res = (int)sc->len;
	size_t want_len = sc->len;
	uint64_t deadline;

	ret = sock_pair_open(&sp, sc->family, sc->type, 0, 0);
	if (ret == -EAFNOSUPPORT || ret == -EADDRNOTAVAIL)
		return skip("no IPv6 loopback in this kernel");
	if (ret)
		return fail("socket pair: %s", strerror(-ret));
	ret = ring_open(&ring, sc->ring_flags, NULL);
	if (ret) {
		sock_pair_close(&sp);
		return fail("ring setup: %s", strerror(-ret));
	}
	fill_pattern(buf, sc->len, ++seed);
	memset(g_rxbuf, 0, sc->len);
	p = (struct pump){ .fd = sp.rx, .cap = sc->len };

	sqe = io_uring_get_sqe(&ring);
	prep_zc(sqe, sp.tx, sc, buf, sc->len, &mh, iov);
	ret = io_uring_submit(&ring);
	if (ret != 1) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	rc = reap(&ring, &r, &ud, 1, &p);
	if (rc)
		goto out;
	if (sc->vectorized && sc->fixed && nth_ud(&r, ud, 0)->res == -EINVAL &&
	    kernel_major() < 7) {
		rc = skip("SEND_ZC with vectorized fixed buffers is newer than this kernel");
		goto out;
	}

	if (sc->unified) {
		__u32 flags = 0;

		rc = check_unified(&r, ud, sc->allow_short ? INT32_MIN : (int)sc->len, &res,
				   &flags);
		if (rc)
			goto out;
		if (res <= 0 || (size_t)res > sc->len) {
			rc = fail("res %d, want 0 < res <= %zu", res, sc->len);
			goto out;
		}
		want_len = (size_t)res;
		/* loopback always copies at local delivery (DEVELOPERS.md) */
		if (sc->report && !(flags & IORING_CQE_F_ZC_COPIED)) {
			rc = fail("REPORT_USAGE over loopback: IORING_CQE_F_ZC_COPIED missing: %s",
				  fmt_cqes(&r, ud));
			goto out;
		}
		if (!sc->report && (flags & IORING_CQE_F_ZC_COPIED)) {
			rc = fail("IORING_CQE_F_ZC_COPIED without REPORT_USAGE: %s", fmt_cqes(&r, ud));
			goto out;
		}
	} else {
		/* the stock contract, which the series must leave unchanged */
		const struct cqe_rec *c0 = nth_ud(&r, ud, 0), *c1 = nth_ud(&r, ud, 1);

		if (count_ud(&r, ud) != 2 || !(c0->flags & IORING_CQE_F_MORE) ||
		    (c0->flags & IORING_CQE_F_NOTIF) || c0->res != (int)sc->len ||
		    !(c1->flags & IORING_CQE_F_NOTIF) || (c1->flags & IORING_CQE_F_MORE)) {
			rc = fail("want [res=%zu F_MORE] then [F_NOTIF], got %s", sc->len,
				  fmt_cqes(&r, ud));
			goto out;
		}
		if ((c0->flags | c1->flags) & IORING_CQE_F_ZC_COPIED) {
			rc = fail("IORING_CQE_F_ZC_COPIED on a stock-mode CQE: %s", fmt_cqes(&r, ud));
			goto out;
		}
		if (sc->report && !((unsigned)c1->res & IORING_NOTIF_USAGE_ZC_COPIED)) {
			rc = fail("REPORT_USAGE over loopback: notif res %#x lacks ZC_COPIED", c1->res);
			goto out;
		}
		if (!sc->report && c1->res != 0) {
			rc = fail("notif res %d, want 0", c1->res);
			goto out;
		}
	}

	/* the data arrived intact */
	deadline = now_ns() + 5000000000ull;
	while (p.got < want_len && now_ns() < deadline) {
		pump_run(&p);
		if (p.got < want_len)
			poll(&(struct pollfd){ .fd = sp.rx, .events = POLLIN }, 1, 10);
	}
	usleep(20 * 1000);
	pump_run(&p);
	if (p.got != want_len)
		rc = fail("peer received %zu bytes, want %zu", p.got, want_len);
	else if (memcmp(g_rxbuf, buf, want_len))
		rc = fail("peer received corrupted data");
out:
	io_uring_queue_exit(&ring);
	sock_pair_close(&sp);
	return rc;
}

static void send_matrix(bool unified)
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
			.unified = unified,
			.len = types[t] == SOCK_STREAM ? 65536 + 17 : 8192 + 5,
		};

		/* SENDMSG_ZC is always vectored */
		if (op && vec)
			continue;
		snprintf(name, sizeof(name), "%s %s %s%s%s%s: %s",
			 unified ? "unified" : "stock-mode",
			 op ? "SENDMSG_ZC" : "SEND_ZC", fam_name(sc.family, sc.type),
			 vec ? " vectorized" : "", fixed ? " fixed-buf" : "",
			 rep ? " report-usage" : "",
			 unified ? "one CQE, F_NOTIF, res=len" : "res CQE w/ F_MORE + notif");
		report(name, run_send_case(&sc));
	}
}

/* ---- single-request helpers for the error-path cases ------------------ */

/* Submit one prepared SQE (callers fill it via prep callback) and reap it. */
static int one_request(struct io_uring *ring, struct reaped *r, struct pump *p)
{
	__u64 ud = UD_SEND;
	int ret = io_uring_submit(ring);

	if (ret < 1)
		return fail("submit: %d", ret);
	return reap(ring, r, &ud, 1, p);
}

static int case_feature_bit(void)
{
	struct io_uring ring;
	struct io_uring_params p;
	int ret = ring_open(&ring, 0, &p);

	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	io_uring_queue_exit(&ring);
	if (expect_unified && !kernel_has_unified(&p))
		return fail("features %#x lack IORING_FEAT_SEND_ZC_UNIFIED (%#x)",
			    p.features, IORING_FEAT_SEND_ZC_UNIFIED);
	if (!expect_unified && kernel_has_unified(&p))
		return fail("stock kernel reports IORING_FEAT_SEND_ZC_UNIFIED");
	return 0;
}

/* Unified send with a twist applied to the SQE; expect one CQE with want_res. */
enum twist {
	TW_BAD_FD, TW_NOT_SOCK, TW_ADDR3, TW_CQE_SKIP, TW_BAD_FLAG, TW_BAD_BUF_INDEX,
	TW_UDP_TOO_BIG, TW_TCP_UNCONNECTED, TW_ZERO_LEN, TW_ZERO_LEN_REPORT, TW_PAD2,
	TW_ASYNC_TCP, TW_ASYNC_UDP, TW_DEFER_TASKRUN, TW_SQPOLL,
};

static int case_twist(enum twist tw)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp = { .tx = -1, .rx = -1 };
	struct pump p = { .fd = -1 };
	int fd, pipefd[2] = { -1, -1 }, ret, rc, want;
	size_t len = 1000;
	unsigned ring_flags = 0, zc_flags = IORING_SEND_ZC_UNIFIED;
	__u32 flags = 0;

	if (tw == TW_DEFER_TASKRUN)
		ring_flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if (tw == TW_SQPOLL)
		ring_flags = IORING_SETUP_SQPOLL;
	ret = ring_open(&ring, ring_flags, NULL);
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
	case TW_CQE_SKIP:
	case TW_PAD2:
		want = -EINVAL;
		break;
	case TW_BAD_FLAG:
		zc_flags |= 1u << 7;
		want = -EINVAL;
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
	case TW_ZERO_LEN_REPORT:
		zc_flags |= IORING_SEND_ZC_REPORT_USAGE;
		/* fall through */
	case TW_ZERO_LEN:
		len = 0;
		want = 0;
		break;
	default:
		break;
	}

	sqe = io_uring_get_sqe(&ring);
	if (tw == TW_BAD_BUF_INDEX)
		io_uring_prep_send_zc_fixed(sqe, fd, g_buf, len, 0, zc_flags, 7);
	else
		io_uring_prep_send_zc(sqe, fd, g_buf, len, 0, zc_flags);
	sqe->user_data = UD_SEND;
	if (tw == TW_ADDR3)
		sqe->addr3 = 0x1234;
	if (tw == TW_PAD2)
		sqe->__pad2[0] = 1;
	if (tw == TW_CQE_SKIP)
		sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	if (tw == TW_ASYNC_TCP || tw == TW_ASYNC_UDP)
		sqe->flags |= IOSQE_ASYNC;

	rc = one_request(&ring, &r, &p);
	if (rc)
		goto out;
	rc = check_unified(&r, UD_SEND, want, NULL, &flags);
	if (!rc && (flags & IORING_CQE_F_ZC_COPIED))
		rc = fail("IORING_CQE_F_ZC_COPIED set although res=%d: %s", want,
			  fmt_cqes(&r, UD_SEND));
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
	__u64 uds[2] = { UD_SEND, UD_CANCEL };
	struct __kernel_timespec lts = { .tv_nsec = 50 * 1000000 };

	ret = ring_open(&ring, 0, NULL);
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
			      IORING_SEND_ZC_UNIFIED |
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
	if (rc)
		goto out;
	if (mode != 2) {
		const struct cqe_rec *c = nth_ud(&r, UD_CANCEL, 0);

		if (count_ud(&r, UD_CANCEL) != 1)
			rc = fail("want one CQE of the cancel/timeout request, got %s",
				  fmt_cqes(&r, UD_CANCEL));
		else if (mode != 3 && c->res != 0)
			rc = fail("cancel request res %d", c->res);
		else if (mode == 3 && c->res != -ETIME && c->res != -EALREADY)
			rc = fail("link timeout res %d", c->res);
		if (rc)
			goto out;
	}
	rc = check_unified(&r, UD_SEND, INT32_MIN, &res, NULL);
	if (rc)
		goto out;
	if (res < 0 && res != -ECANCELED && res != -EINTR) {
		rc = fail("res %d (%s), want -ECANCELED or the bytes sent", res, strerror(-res));
		goto out;
	}
	if (res >= (int)len || (res <= 0 && (mode == 1 || mode == 2))) {
		rc = fail("res %d, want 0 < res < %zu (a partial send)", res, len);
		goto out;
	}
	if (mode == 0 || mode == 3)
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

/*
 * Links.  mode 0: unified send → NOP, both complete, one CQE for the send.
 * mode 1: failing SEND (bad fd) → unified send: the send is cancelled with
 * one -ECANCELED CQE carrying F_NOTIF.  mode 2: the same with a stock-mode
 * send: the kernel must announce the notification with F_MORE (fixed by
 * patch 1; stock kernels post -ECANCELED without F_MORE and then a notif).
 */
static int case_link(int mode)
{
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct io_uring_sqe *sqe;
	struct sock_pair sp;
	struct pump p;
	__u64 uds[2] = { UD_SEND, UD_OTHER };
	int ret, rc;
	const struct cqe_rec *c;

	ret = ring_open(&ring, 0, NULL);
	if (ret)
		return fail("ring setup: %s", strerror(-ret));
	ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 0, 0);
	if (ret) {
		io_uring_queue_exit(&ring);
		return fail("socket pair: %s", strerror(-ret));
	}
	p = (struct pump){ .fd = sp.rx, .cap = 1 << 20 };

	if (mode == 0) {
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_send_zc(sqe, sp.tx, g_buf, 512, 0, IORING_SEND_ZC_UNIFIED);
		sqe->user_data = UD_SEND;
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_nop(sqe);
		sqe->user_data = UD_OTHER;
	} else {
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_send(sqe, 1000000, g_buf, 512, 0);
		sqe->user_data = UD_OTHER;
		sqe->flags |= IOSQE_IO_LINK;
		sqe = io_uring_get_sqe(&ring);
		io_uring_prep_send_zc(sqe, sp.tx, g_buf, 512, 0,
				      mode == 1 ? IORING_SEND_ZC_UNIFIED : 0);
		sqe->user_data = UD_SEND;
	}
	ret = io_uring_submit(&ring);
	if (ret != 2) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	rc = reap(&ring, &r, uds, 2, &p);
	if (rc)
		goto out;
	c = nth_ud(&r, UD_OTHER, 0);
	if (count_ud(&r, UD_OTHER) != 1 || c->res != (mode == 0 ? 0 : -EBADF)) {
		rc = fail("linked partner: %s", fmt_cqes(&r, UD_OTHER));
		goto out;
	}
	if (mode == 0) {
		rc = check_unified(&r, UD_SEND, 512, NULL, NULL);
	} else if (mode == 1) {
		rc = check_unified(&r, UD_SEND, -ECANCELED, NULL, NULL);
	} else {
		const struct cqe_rec *c0 = nth_ud(&r, UD_SEND, 0), *c1 = nth_ud(&r, UD_SEND, 1);
		bool more = c0 && (c0->flags & IORING_CQE_F_MORE);

		if (count_ud(&r, UD_SEND) != 2 || c0->res != -ECANCELED ||
		    !(c1->flags & IORING_CQE_F_NOTIF))
			rc = fail("want [-ECANCELED] + [F_NOTIF], got %s", fmt_cqes(&r, UD_SEND));
		else if (expect_unified && !more)
			rc = fail("cancelled link: -ECANCELED CQE lacks F_MORE but a notif follows: %s",
				  fmt_cqes(&r, UD_SEND));
		else if (!expect_unified && more)
			rc = fail("stock kernel unexpectedly sets F_MORE (is patch 1 upstream now?): %s",
				  fmt_cqes(&r, UD_SEND));
	}
out:
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	return rc;
}

/* Many unified sends in flight at once: one CQE each. */
static int case_batch(void)
{
	enum { N = 48 };
	struct io_uring ring;
	struct reaped r = { .n = 0 };
	struct sock_pair sp;
	struct pump p;
	__u64 uds[N];
	int i, ret, rc = 0;

	ret = ring_open(&ring, 0, NULL);
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
					    IORING_SEND_ZC_UNIFIED |
					    (i & 1 ? IORING_SEND_ZC_REPORT_USAGE : 0), 0);
		uds[i] = sqe->user_data = 1000 + i;
	}
	ret = io_uring_submit(&ring);
	if (ret != N) {
		rc = fail("submit: %d", ret);
		goto out;
	}
	rc = reap(&ring, &r, uds, N, &p);
	for (i = 0; !rc && i < N; i++)
		rc = check_unified(&r, uds[i], 1400 + i, NULL, NULL);
	if (!rc && r.n != N)
		rc = fail("%d CQEs for %d sends", r.n, N);
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
				.unified = true, .report = true, .len = 6u << 20,
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

	ret = ring_open(&ring, 0, NULL);
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
	sqe->ioprio |= IORING_SEND_ZC_UNIFIED;
	sqe->user_data = UD_SEND;
	rc = one_request(&ring, &r, NULL);
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
	const struct cqe_rec *c0, *c1;
	int ret, rc;

	ret = ring_open(&ring, 0, NULL);
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
		io_uring_prep_send_zc(sqe, sp.tx, g_buf, 100, 0, IORING_SEND_ZC_UNIFIED);
	else
		io_uring_prep_sendmsg_zc(sqe, sp.tx, &mh, 0);
	sqe->ioprio |= IORING_SEND_ZC_UNIFIED;
	sqe->user_data = UD_SEND;
	rc = one_request(&ring, &r, NULL);
	if (rc)
		goto out;
	c0 = nth_ud(&r, UD_SEND, 0);
	c1 = nth_ud(&r, UD_SEND, 1);
	if (!c0 || c0->res != -EINVAL)
		rc = fail("want -EINVAL, got %s", fmt_cqes(&r, UD_SEND));
	/* stock posts the error with F_MORE and then a notification */
	else if ((c0->flags & IORING_CQE_F_MORE) &&
		 (count_ud(&r, UD_SEND) != 2 || !(c1->flags & IORING_CQE_F_NOTIF)))
		rc = fail("F_MORE on the error but no notification: %s", fmt_cqes(&r, UD_SEND));
	else if (!(c0->flags & IORING_CQE_F_MORE) && count_ud(&r, UD_SEND) != 1)
		rc = fail("extra CQEs after a final error: %s", fmt_cqes(&r, UD_SEND));
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
	static const char msg[] = "not ok - unified_test: global timeout (300 s), aborting\n";

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
	struct io_uring ring;
	struct io_uring_params p;
	int c, ret;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			expect_unified = 1;
			break;
		case 's':
			expect_unified = 0;
			break;
		default:
			fprintf(stderr, "usage: %s [--expect-unified | --expect-stock]\n", argv[0]);
			return c == 'h' ? 0 : 2;
		}
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGALRM, on_alarm);
	alarm(300);

	g_buf = aligned_alloc(4096, BUF_SIZE);
	g_rxbuf = aligned_alloc(4096, BUF_SIZE);
	if (!g_buf || !g_rxbuf)
		return 2;
	memset(g_rxbuf, 0x5a, BUF_SIZE);

	ret = ring_open(&ring, 0, &p);
	if (ret) {
		printf("not ok 1 - io_uring setup: %s\n0 passed, 1 failed\n", strerror(-ret));
		return 1;
	}
	io_uring_queue_exit(&ring);
	printf("# kernel features %#x: IORING_FEAT_SEND_ZC_UNIFIED %s\n", p.features,
	       kernel_has_unified(&p) ? "present" : "absent");
	if (expect_unified < 0) {
		expect_unified = kernel_has_unified(&p);
		printf("# no --expect-* given: testing as a %s kernel\n",
		       expect_unified ? "patched" : "stock");
	}

	report(expect_unified ? "feature bit IORING_FEAT_SEND_ZC_UNIFIED reported" :
				"feature bit IORING_FEAT_SEND_ZC_UNIFIED absent", case_feature_bit());

	/* the stock two-CQE contract holds on both kernels */
	send_matrix(false);

	report("SEND with the flag: -EINVAL", case_other_opcode(0));
	report("SENDMSG with the flag: -EINVAL", case_other_opcode(1));
	report("RECV with the flag: -EINVAL", case_other_opcode(2));
	report("RECVMSG with the flag: -EINVAL", case_other_opcode(3));
	report(expect_unified ? "stock-mode SEND_ZC cancelled by a failed link: -ECANCELED w/ F_MORE, then notif" :
				"stock-mode SEND_ZC cancelled by a failed link: -ECANCELED w/o F_MORE, then notif (known stock quirk)",
	       case_link(2));

	if (!expect_unified) {
		report("SEND_ZC with IORING_SEND_ZC_UNIFIED rejected: -EINVAL", case_stock_rejects(0));
		report("SENDMSG_ZC with IORING_SEND_ZC_UNIFIED rejected: -EINVAL", case_stock_rejects(1));
		printf("# unified-mode cases not run: the kernel has no IORING_SEND_ZC_UNIFIED\n");
		goto done;
	}

	send_matrix(true);

	static const struct { enum twist tw; const char *name; } twists[] = {
		{ TW_BAD_FD, "unified SEND_ZC, bad fd: one CQE, -EBADF" },
		{ TW_NOT_SOCK, "unified SEND_ZC on a pipe: one CQE, -ENOTSOCK" },
		{ TW_ADDR3, "unified SEND_ZC with notif user_data in addr3: one CQE, -EINVAL" },
		{ TW_CQE_SKIP, "unified SEND_ZC with IOSQE_CQE_SKIP_SUCCESS: one CQE, -EINVAL" },
		{ TW_BAD_FLAG, "unified SEND_ZC with an unknown ioprio bit: one CQE, -EINVAL" },
		{ TW_PAD2, "unified SEND_ZC with __pad2 set (early prep error): one CQE, -EINVAL" },
		{ TW_BAD_BUF_INDEX, "unified SEND_ZC, bad fixed buffer index: one CQE, -EFAULT" },
		{ TW_UDP_TOO_BIG, "unified SEND_ZC, oversized UDP datagram: one CQE, -EMSGSIZE" },
		{ TW_TCP_UNCONNECTED, "unified SEND_ZC on an unconnected TCP socket: one CQE, -EPIPE" },
		{ TW_ZERO_LEN, "unified SEND_ZC of 0 bytes: one CQE, res 0" },
		{ TW_ZERO_LEN_REPORT, "unified SEND_ZC of 0 bytes w/ report-usage: res 0, no F_ZC_COPIED" },
		{ TW_ASYNC_TCP, "unified SEND_ZC tcp4 via io-wq (IOSQE_ASYNC): one CQE" },
		{ TW_ASYNC_UDP, "unified SEND_ZC udp4 via io-wq (IOSQE_ASYNC): one CQE" },
		{ TW_DEFER_TASKRUN, "unified SEND_ZC on a DEFER_TASKRUN ring: one CQE" },
		{ TW_SQPOLL, "unified SEND_ZC on an SQPOLL ring: one CQE" },
	};
	for (size_t i = 0; i < sizeof(twists) / sizeof(twists[0]); i++)
		report(twists[i].name, case_twist(twists[i].tw));

	report("unified SEND_ZC cancelled before sending: one CQE, -ECANCELED", case_cancel(0));
	report("unified SEND_ZC cancelled after a partial send: one CQE, res = bytes sent", case_cancel(1));
	report("unified SEND_ZC, peer reset after a partial send: one CQE, res = bytes sent", case_cancel(2));
	report("unified SEND_ZC with a linked timeout that fires: one CQE, -ECANCELED", case_cancel(3));
	report("ring torn down with a unified SEND_ZC pending (dmesg checked by the runner)", case_cancel(4));
	report("unified SEND_ZC linked to a NOP: both complete, one send CQE", case_link(0));
	report("unified SEND_ZC cancelled by a failed link head: one CQE, -ECANCELED", case_link(1));
	report("48 unified sends in flight (fixed buffers): one CQE each", case_batch());
	report("unified SEND_ZC of 6 MiB over TCP, MSG_WAITALL, report-usage: one CQE, res=len",
	       case_big_tcp(true));
	report("unified SEND_ZC of 6 MiB over TCP, no MSG_WAITALL: one CQE, res = bytes the peer gets",
	       case_big_tcp(false));
done:
	printf("# skipped: %d\n", n_skip);
	printf("%d passed, %d failed\n", n_pass, n_fail);
	free(g_buf);
	free(g_rxbuf);
	return n_fail ? 1 : 0;
}
