// SPDX-License-Identifier: MIT
/*
 * Ring lifetime, request slots, the record queue and the CQE loop.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <poll.h>
#include <unistd.h>

#include "internal.h"

#define ZC_RING_ALL_FLAGS (ZC_RING_SINGLE_ISSUER | ZC_RING_DEFER_TASKRUN | \
			   ZC_RING_COOP_TASKRUN | ZC_RING_REGISTERED_FD | \
			   ZC_RING_CQE32)

/* How long zc_ring_destroy() waits for the kernel to release buffers. */
#define ZC_DESTROY_WAIT_MS 5000

static bool pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

static int config_check(const struct zc_ring_config *c)
{
	if (!pow2(c->sq_entries) || c->sq_entries > 32768)
		return -EINVAL;
	if (c->cq_entries && (c->cq_entries < c->sq_entries ||
			      c->cq_entries > 65536))
		return -EINVAL;
	if (c->flags & ~ZC_RING_ALL_FLAGS)
		return -EINVAL;
	if (c->unified > ZC_UNIFIED_USERSPACE)
		return -EINVAL;
	if (c->max_fixed_buffers > 16384)
		return -EINVAL;
	if (c->reserved[0] || c->reserved[1])
		return -EINVAL;
	return 0;
}

/* What the kernel has, probed once per process (zc_kernel_ops()). */
static void probe_ops(struct zc_ring *r)
{
	uint32_t ops = zc_kernel_ops(&r->ring);

	r->has_bind_listen = ops & ZC_CAP_OP_BIND_LISTEN;
	r->has_socket_op = ops & ZC_CAP_OP_SOCKET;
	r->has_vec_fixed = ops & ZC_CAP_SENDMSG_ZC_FIXED;
	r->has_recv_zc = ops & ZC_CAP_RECV_ZC;
	r->native = r->cfg.unified != ZC_UNIFIED_USERSPACE &&
		    (ops & ZC_CAP_SEND_ZC_SINGLE_CQE);
}

int zc_ring_create(const struct zc_ring_config *cfg, struct zc_ring **out)
{
	struct io_uring_params p = { 0 };
	struct zc_ring *r;
	uint32_t i;
	int ret;

	*out = NULL;
	ret = config_check(cfg);
	if (ret)
		return ret;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->event_fd = -1;
	r->placeholder_fd = -1;
	r->cfg = *cfg;
	if (!r->cfg.cq_entries)
		r->cfg.cq_entries = 4 * r->cfg.sq_entries;
	/* A zero-copy send can hold two CQEs: keep room for both. */
	if (!r->cfg.max_requests)
		r->cfg.max_requests = r->cfg.cq_entries / 2;
	if (!r->cfg.max_fixed_buffers)
		r->cfg.max_fixed_buffers = 1024;

	p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
	p.cq_entries = r->cfg.cq_entries;
	if (cfg->flags & (ZC_RING_SINGLE_ISSUER | ZC_RING_DEFER_TASKRUN))
		p.flags |= IORING_SETUP_SINGLE_ISSUER;
	/* TASKRUN_FLAG: the kernel says in the SQ ring's flags when an enter
	 * left deferred task work behind (drive(), taskrun_left()). */
	if (cfg->flags & ZC_RING_DEFER_TASKRUN)
		p.flags |= IORING_SETUP_DEFER_TASKRUN |
			   IORING_SETUP_TASKRUN_FLAG;
	if (cfg->flags & ZC_RING_COOP_TASKRUN)
		p.flags |= IORING_SETUP_COOP_TASKRUN;
	if (cfg->flags & ZC_RING_CQE32)
		p.flags |= IORING_SETUP_CQE32;
	r->defer_taskrun = cfg->flags & ZC_RING_DEFER_TASKRUN;

	ret = io_uring_queue_init_params(r->cfg.sq_entries, &r->ring, &p);
	if (ret < 0) {
		free(r);
		return ret;
	}
	r->features = p.features;
	probe_ops(r);
	if (cfg->unified == ZC_UNIFIED_NATIVE && !r->native) {
		ret = -EOPNOTSUPP;
		goto fail;
	}

	/*
	 * A registered ring fd only saves a file lookup per io_uring_enter:
	 * when the kernel refuses it (each thread has 16 slots, -EBUSY when
	 * taken; -EINVAL before 5.18) the ring works without, and says why.
	 */
	if (cfg->flags & ZC_RING_REGISTERED_FD) {
		ret = io_uring_register_ring_fd(&r->ring);
		r->reg_fd = ret < 0 ? ret : 1;
	}

	r->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->event_fd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = io_uring_register_eventfd(&r->ring, r->event_fd);
	if (ret < 0)
		goto fail;

	r->reqs = calloc(r->cfg.max_requests, sizeof(*r->reqs));
	r->lite = calloc(r->cfg.max_requests, sizeof(*r->lite));
	r->slots = calloc(r->cfg.max_fixed_buffers, sizeof(*r->slots));
	r->done_cap = 64;
	r->done = calloc(r->done_cap, sizeof(*r->done));
	if (!r->reqs || !r->lite || !r->slots || !r->done) {
		ret = -ENOMEM;
		goto fail;
	}
	for (i = r->cfg.max_requests; i-- > 0;) {
		r->reqs[i].next = r->free_reqs;
		r->free_reqs = &r->reqs[i];
		r->lite[i].next = r->lite_free;
		r->lite_free = i + 1;
	}
	/* Sparse slots pin nothing; pools fill them in. */
	r->fixed_table = io_uring_register_buffers_sparse(&r->ring,
					r->cfg.max_fixed_buffers) == 0;
	*out = r;
	return 0;
fail:
	if (r->event_fd >= 0)
		close(r->event_fd);
	io_uring_queue_exit(&r->ring);
	free(r->reqs);
	free(r->lite);
	free(r->slots);
	free(r->done);
	free(r);
	return ret;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void zc_ring_destroy(struct zc_ring *r)
{
	zc_ring_destroy_timeout(r, ZC_DESTROY_WAIT_MS);
}

void zc_ring_destroy_timeout(struct zc_ring *r, int timeout_ms)
{
	int64_t deadline;

	if (!r)
		return;
	zc_cancel_all(r);
	/* Notifications still to come mean the kernel holds our buffers. */
	deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	while (r->reqs_used && now_ms() < deadline) {
		struct zc_completion sink[32];

		zc_wait(r, sink, 32, 1, 100);
		r->done_count = 0;
	}
	zc_recv_destroy(r);
	zc_sendfile_destroy(r);
	zc_pools_destroy_all(r, r->reqs_used > 0);
	zc_files_destroy(r);
	io_uring_queue_exit(&r->ring);
	zc_socks_release_held(r);
	close(r->event_fd);
	free(r->reqs);
	free(r->lite);
	free(r->slots);
	free(r->done);
	free(r->socks);
	free(r);
}

int zc_ring_event_fd(const struct zc_ring *r)
{
	return r->event_fd;
}

int zc_ring_fd(const struct zc_ring *r)
{
	return r->ring.ring_fd;
}

/*
 * The ring fd's poll (io_uring_poll) reports EPOLLIN while the CQ has
 * entries or the overflow list does, and every CQE posted wakes its
 * pollers (__io_commit_cqring_flush), muted eventfd or not.  A DEFER_TASKRUN
 * ring's task work, queued for the next io_uring_enter(), signals the
 * eventfd only (io_req_local_work_add): there the eventfd stays.
 */
int zc_ring_poll_ring_fd(struct zc_ring *r)
{
	int ret;

	if (r->defer_taskrun)
		return -EINVAL;
	if (!r->ring_fd_polled) {
		ret = io_uring_unregister_eventfd(&r->ring);
		if (ret < 0)
			return ret;
		r->ring_fd_polled = true;
	}
	return r->ring.ring_fd;
}

uint32_t zc_ring_features(const struct zc_ring *r)
{
	return r->features;
}

int zc_ring_unified_native(const struct zc_ring *r)
{
	return r->native;
}

int zc_ring_sendv_fixed(const struct zc_ring *r)
{
	return r->has_vec_fixed;
}

int zc_ring_registered_fd(const struct zc_ring *r)
{
	return r->reg_fd;
}

uint32_t zc_ring_pending(const struct zc_ring *r)
{
	return r->reqs_used + r->done_count;
}

uint32_t zc_ring_max_requests(const struct zc_ring *r)
{
	return r->cfg.max_requests;
}

/* ------------------------------------------------------------ requests */

/* zc_req_get() clears all but the arrays, which must come last. */
_Static_assert(offsetof(struct zc_req, holds) < offsetof(struct zc_req, iov) &&
	       offsetof(struct zc_req, iov) < offsetof(struct zc_req, addr) &&
	       offsetof(struct zc_req, addr) + sizeof(struct sockaddr_storage) ==
	       sizeof(struct zc_req),
	       "struct zc_req: holds, iov, addr must be its last members");

/*
 * Zero what comes before the arrays (not them: 640 of the request's ~900
 * bytes; see struct zc_req) with plain 16-byte stores.  A memset() of this
 * constant size is inlined as `rep stosq`, whose start-up costs more than
 * the stores themselves on AMD Zen: it was 85% of this function's samples
 * in the UDP sender's profile (docs/PERFORMANCE.md, Session 12).  The
 * loop is unrolled by hand so that no pass turns it back into a memset.
 */
#define ZC_REQ_HEAD offsetof(struct zc_req, holds)
_Static_assert(ZC_REQ_HEAD % 8 == 0 && _Alignof(struct zc_req) >= 8,
	       "struct zc_req: its head is cleared in 8-byte words");

typedef uint64_t zc_u64x2 __attribute__((vector_size(16), aligned(8),
					  may_alias));

static inline void clear_head(struct zc_req *req)
{
	zc_u64x2 *v = (zc_u64x2 *)(void *)req;
	const zc_u64x2 z = { 0, 0 };
	size_t i;

	for (i = 0; i + 4 <= ZC_REQ_HEAD / 16; i += 4) {
		v[i] = z;
		v[i + 1] = z;
		v[i + 2] = z;
		v[i + 3] = z;
	}
	for (; i < ZC_REQ_HEAD / 16; i++)
		v[i] = z;
	if (ZC_REQ_HEAD % 16)
		*(zc_u64x2 *)(void *)((char *)req + ZC_REQ_HEAD - 16) = z;
}

struct zc_req *zc_req_get(struct zc_ring *r, uint16_t op, uint64_t user_data)
{
	struct zc_req *req = r->free_reqs;

	/* lite sends count too: at most max_requests in flight in all */
	if (!req || r->reqs_used >= r->cfg.max_requests)
		return NULL;
	r->free_reqs = req->next;
	r->reqs_used++;
	clear_head(req);
	req->op = op;
	req->user_data = user_data;
	req->fd = -1;
	req->native = r->native;
	return req;
}

void zc_req_put(struct zc_ring *r, struct zc_req *req)
{
	req->state = ZC_REQ_FREE;
	req->next = r->free_reqs;
	r->free_reqs = req;
	r->reqs_used--;
}

struct io_uring_sqe *zc_sqe_full(struct zc_ring *r)
{
	struct io_uring_sqe *sqe;

	/* SQ full: hand what we have to the kernel and retry. */
	io_uring_submit(&r->ring);
	r->sqes_queued = 0;
	sqe = io_uring_get_sqe(&r->ring);
	if (sqe)
		r->sqes_queued++;
	return sqe;
}

static struct zc_completion *done_grow(struct zc_ring *r)
{
	uint32_t cap = r->done_cap * 2, i;
	struct zc_completion *n = malloc(cap * sizeof(*n));

	if (!n)
		return NULL;
	for (i = 0; i < r->done_count; i++)
		n[i] = r->done[(r->done_head + i) & (r->done_cap - 1)];
	free(r->done);
	r->done = n;
	r->done_cap = cap;
	r->done_head = 0;
	return &n[r->done_count++];
}

static struct zc_completion *done_slot(struct zc_ring *r)
{
	uint32_t i;

	if (r->done_count == r->done_cap)
		return done_grow(r);
	i = (r->done_head + r->done_count++) & (r->done_cap - 1);
	return &r->done[i];
}

/*
 * Where the next record goes, NULL: no memory, the record is lost.  Straight
 * into zc_flush()'s out while nothing waits in done[] (see struct zc_ring:
 * the records of a busy sender are copied once, not twice), else queued.
 */
static inline struct zc_completion *emit_slot(struct zc_ring *r)
{
	if (!r->done_count && r->out_n < r->out_max)
		return &r->out[r->out_n++];
	return done_slot(r);
}

int zc_emit(struct zc_ring *r, const struct zc_completion *c)
{
	struct zc_completion *slot = emit_slot(r);

	if (!slot)
		return -ENOMEM;
	*slot = *c;
	return 0;
}

void zc_req_finish(struct zc_ring *r, struct zc_req *req, int32_t res)
{
	struct zc_completion c = {
		.user_data = req->user_data,
		.res = res,
		.flags = req->comp_flags,
		.op = req->op,
		.cqes = req->cqes,
		.aux = req->rec_aux,
		.aux2 = req->rec_aux2,
	};

	if (zc_is_send(req->op)) {
		/* bytes taken, whole or not; res >= 0 only when whole */
		c.aux = req->done;
		if (res >= 0)
			c.res = req->done > INT32_MAX ? INT32_MAX :
				(int32_t)req->done;
	} else if ((req->op == ZC_OP_SOCKET || req->op == ZC_OP_ACCEPT) &&
		   res >= 0) {
		zc_sock_renew(r, res);	/* a new file under that number */
	}
	zc_req_hold_bufs(req, -1);
	zc_emit(r, &c);
	zc_req_put(r, req);
}

/* Socket ops: one SQE, one CQE, record = CQE. */
static void simple_cqe(struct zc_ring *r, struct zc_req *req,
		       const struct io_uring_cqe *cqe)
{
	req->cqes++;
	zc_req_finish(r, req, cqe->res);
}

/* ------------------------------------------------------------ lite sends */

/* zc_send_cqe(), send_result() and zc_req_finish() for a lite send */
static void lite_cqe(struct zc_ring *r, const struct io_uring_cqe *cqe)
{
	uint64_t i = cqe->user_data >> 2;
	struct zc_completion *c;
	struct zc_lite *l;
	uint8_t state, notifs;
	uint32_t done;
	int32_t res;

	if (i >= r->cfg.max_requests)
		return;
	l = &r->lite[i];
	/*
	 * state and notifs are worked on in locals and stored once: stored
	 * byte by byte and then read back as one (the compiler tests both
	 * with a 16-bit load), the load waited for the stores to retire
	 * (no store forwarding), a third of this function's samples
	 * (docs/PERFORMANCE.md, Session 22 udp22).
	 */
	state = l->state;
	notifs = l->notifs;
	if (!state)
		return;
	l->cqes++;
	if (!(cqe->flags & IORING_CQE_F_NOTIF)) {
		/* as zc_send_cqe(): a -ECANCELED without F_MORE still has its
		 * notification to come on stock kernels */
		if ((cqe->flags & IORING_CQE_F_MORE) || cqe->res == -ECANCELED)
			notifs++;
		l->res = cqe->res;
		state = 2;
	} else {
		if (l->report)
			l->comp_flags |= (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) ?
					 ZC_COMP_ZC_COPIED : ZC_COMP_ZC_USED;
		if (notifs)
			notifs--;
	}
	l->notifs = notifs;
	if (state != 2 || notifs) {
		l->state = state;
		return;
	}
	res = l->res;
	done = res > 0 ? (uint32_t)res : 0;
	if (res >= 0 && done != l->len)
		/* a datagram is never short: the kernel took nothing */
		res = l->canceled ? -ECANCELED : -EIO;
	/* The record is written where it goes, field by field: built on the
	 * stack and copied, its 16-byte loads waited for the narrower stores
	 * (no store forwarding), most of zc_emit()'s samples. */
	c = emit_slot(r);
	if (c) {
		c->user_data = l->user_data;
		c->res = res;
		c->flags = l->comp_flags;
		c->aux = done;
		c->op = ZC_OP_SEND_ZC;
		c->cqes = l->cqes;
		c->aux2 = 0;
	}
	l->pool->inflight--;
	l->pool->buf_inflight[l->buf]--;
	l->state = 0;
	l->pool = NULL;
	l->next = r->lite_free;
	r->lite_free = (uint32_t)i + 1;
	r->reqs_used--;
}

static void handle_cqe(struct zc_ring *r, const struct io_uring_cqe *cqe)
{
	struct zc_req *req = (struct zc_req *)(uintptr_t)cqe->user_data;

	if (cqe->user_data == ZC_UD_SLEEP) {
		r->sleep_poll_armed = false;
		return;
	}
	if (cqe->user_data & ZC_UD_SENDFILE) {
		zc_sendfile_cqe(r, cqe);
		return;
	}
	if (cqe->user_data & ZC_UD_LITE) {
		lite_cqe(r, cqe);
		return;
	}
	if (!req || req->state == ZC_REQ_FREE)
		return;		/* libzc's own (cancel), or nothing left to tell */
	switch (req->op) {
	case ZC_OP_SEND:
	case ZC_OP_SEND_ZC:
	case ZC_OP_SENDMSG_ZC:
	case ZC_OP_SHUTDOWN:
	case ZC_OP_CLOSE:
		zc_send_cqe(r, req, cqe);
		break;
	case ZC_OP_RECV:
		zc_recv_cqe(r, req, cqe);
		break;
	case ZC_OP_ACCEPT:
		zc_accept_cqe(r, req, cqe);
		break;
	default:
		simple_cqe(r, req, cqe);
		break;
	}
}

static unsigned process_cqes(struct zc_ring *r)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;

	io_uring_for_each_cqe(&r->ring, head, cqe) {
		handle_cqe(r, cqe);
		n++;
	}
	io_uring_cq_advance(&r->ring, n);
	return n;
}

/* Issue queued socket chains and hand all prepared SQEs to the kernel. */
static int flush(struct zc_ring *r, bool get_events)
{
	int ret = 0;

	zc_issue_ready(r);
	if (r->sqes_queued || (get_events && (r->defer_taskrun ||
			      io_uring_cq_has_overflow(&r->ring)))) {
		if (get_events)
			ret = io_uring_submit_and_get_events(&r->ring);
		else
			ret = io_uring_submit(&r->ring);
		if (ret >= 0)
			r->sqes_queued = 0;
	}
	return ret;
}

int zc_submit(struct zc_ring *r)
{
	return flush(r, false);
}

static uint32_t copy_out(struct zc_ring *r, struct zc_completion *out,
			 uint32_t max)
{
	uint32_t n = 0;

	while (n < max && r->done_count) {
		out[n++] = r->done[r->done_head];
		r->done_head = (r->done_head + 1) & (r->done_cap - 1);
		r->done_count--;
	}
	return n;
}

/*
 * CQEs this call will reap itself need no wakeup: while the loop below runs,
 * the eventfd is muted (IORING_CQ_EVENTFD_DISABLED, a flag in the CQ ring:
 * no syscall), so a send completed inline does not wake the caller's event
 * loop once more for nothing.  Unmuting is followed by a full barrier and a
 * last look at the CQ: a CQE posted while muted was signalled to nobody and
 * is reaped here.  The kernel (<= 7.2) reads the flag after posting: from
 * the submitter task in program order, from other threads after the
 * smp_mb() of io_cqring_wake(), so with our barrier one side always sees
 * the other.  Not with DEFER_TASKRUN: there the eventfd announces task work
 * that only io_uring_enter() turns into CQEs, which this look cannot see.
 * And the kernel runs at most 20 items of that work per enter (7.2:
 * IO_LOCAL_TW_DEFAULT_MAX) and signals the eventfd for new work only when
 * its list was empty: what is left over is announced by nothing but the
 * eventfd signal of the CQEs this very enter posts.  Muted, those signals
 * are lost and the leftover work waits for an unrelated flush
 * (tests/ts/defer-burst.test.ts: 180 of 200 receives stalled).  Nor on
 * a ring whose fd is polled (zc_ring_poll_ring_fd): it has no eventfd to
 * mute, and its fd is readable only while CQEs wait, so CQEs reaped here
 * leave nothing for the caller's poll to report.
 */
static bool mute(struct zc_ring *r)
{
	if (r->defer_taskrun || r->ring_fd_polled || !r->ring.cq.kflags)
		return false;
	io_uring_cq_eventfd_toggle(&r->ring, false);
	return true;
}

static void unmute(struct zc_ring *r)
{
	io_uring_cq_eventfd_toggle(&r->ring, true);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
}

/*
 * A DEFER_TASKRUN ring's io_uring_enter() runs at most 20 items of its
 * deferred task work (Linux >= 6.13: IO_LOCAL_TW_DEFAULT_MAX), the rest
 * waits for the next enter, and the eventfd is signalled for new work only
 * when the work list was empty: what an enter leaves behind is announced by
 * nothing but the CQEs that enter posts.  Items that post no CQE (a poll
 * retry that sends part of a stream and re-arms; with the kernel's single-CQE
 * zero-copy sends, a send whose CQE waits for its notification) can fill a
 * whole enter: counting CQEs cannot tell that work was left, and a reap that
 * stopped there stalled the ring for good (tests/defer_leftover.c).
 * The ring is set up with IORING_SETUP_TASKRUN_FLAG, so the kernel sets
 * IORING_SQ_TASKRUN in the SQ ring's flags while work is left (and when new
 * work arrives): drive() enters again while it is set, up to ZC_DEFER_ROUNDS
 * times, so one flush takes what has arrived (at 1000 connections it took
 * 20 of hundreds of receives per flush: docs/PERFORMANCE.md, Session 15).
 */
#define ZC_DEFER_ROUNDS		64

static bool taskrun_left(const struct zc_ring *r)
{
	return r->defer_taskrun &&
	       (IO_URING_READ_ONCE(*r->ring.sq.kflags) & IORING_SQ_TASKRUN);
}

/*
 * The kernel clears IORING_SQ_TASKRUN only when an enter runs task work, and
 * a producer that queues onto an empty list sets it after its push: when the
 * running enter takes that item too, the flag stays set on an empty list and
 * no later enter clears it.  Clear it ourselves before each enter that runs
 * task work, as the kernel does at the start of a run (io_uring/tw.c
 * __io_run_local_work): work pending at the enter is run by it, and the run
 * sets the flag again if it leaves any; work queued after it sets it itself.
 * The kernel never reads the flag.
 */
static void taskrun_clear(struct zc_ring *r)
{
	if (r->defer_taskrun)
		__atomic_fetch_and(r->ring.sq.kflags, ~IORING_SQ_TASKRUN,
				   __ATOMIC_SEQ_CST);
}

/*
 * Work still left after the last round is announced to nobody by the
 * kernel: signal our own eventfd, so the caller's poll reaps again on the
 * loop's next turn.  One zc_reap() stays bounded and nothing waits forever.
 */
static void announce_left(struct zc_ring *r)
{
	uint64_t one = 1;

	if (taskrun_left(r) && write(r->event_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN only: the counter is full, a wakeup is pending */
	}
}

/*
 * Rounds drive() runs for SQEs it queued itself (a short send's remainder,
 * a socket's next chain), whose CQEs may already be in; a DEFER_TASKRUN
 * ring goes on past them while task work may be left (ZC_DEFER_ROUNDS).
 * SQEs still queued after the last round are submitted without waiting
 * and their CQEs wake the caller's poll: one zc_reap() stays bounded even
 * while a peer keeps cutting sends short.
 */
#define ZC_DRIVE_ROUNDS		8

/* Run the loop until no CQE is left: handling CQEs can issue new SQEs
 * (resubmitted remainders, the next chain) whose CQEs may already be in. */
static int drive(struct zc_ring *r)
{
	bool muted = mute(r);
	int i, ret;

	for (i = 0; i < ZC_DEFER_ROUNDS; i++) {
		taskrun_clear(r);
		ret = flush(r, true);
		if (ret < 0 && ret != -EBUSY && ret != -EAGAIN && ret != -EINTR)
			goto out;
		process_cqes(r);
		/* New CQEs will wake the caller's poll (of the ring fd or
		 * the eventfd); only our own new SQEs (remainders, next
		 * chains) need another round now, and on a DEFER_TASKRUN
		 * ring task work an enter may have left (see above). */
		if (r->sqes_queued || r->ready ||
		    io_uring_cq_has_overflow(&r->ring)) {
			if (i + 1 < ZC_DRIVE_ROUNDS)
				continue;
			if (!r->defer_taskrun)
				break;
		}
		if (!taskrun_left(r))
			break;
	}
	ret = flush(r, false) < 0 ? -EIO : 0;
out:
	announce_left(r);
	if (muted) {
		unmute(r);
		if (io_uring_cq_ready(&r->ring)) {
			process_cqes(r);
			if (flush(r, false) < 0 && !ret)
				ret = -EIO;
		}
	}
	return ret;
}

int zc_flush(struct zc_ring *r, struct zc_completion *out, uint32_t max)
{
	uint32_t n;
	int ret;

	/* Records emitted while it drives go straight to out when they can
	 * (emit_slot()); copy_out() appends those queued after them. */
	r->out = out;
	r->out_n = 0;
	r->out_max = max;
	ret = drive(r);
	n = r->out_n;
	r->out = NULL;
	r->out_n = 0;
	r->out_max = 0;
	if (ret < 0 && !r->done_count && !n)
		return ret;
	return (int)(n + copy_out(r, out + n, max - n));
}

int zc_reap(struct zc_ring *r, struct zc_completion *out, uint32_t max)
{
	uint64_t v;

	/* Clear the eventfd before looking, so no wakeup is lost (a polled
	 * ring fd needs no clearing: it is readable while CQEs wait). */
	if (!r->ring_fd_polled && read(r->event_fd, &v, sizeof(v)) < 0 &&
	    errno != EAGAIN)
		return -errno;
	return zc_flush(r, out, max);
}

int zc_wait(struct zc_ring *r, struct zc_completion *out, uint32_t max,
	    uint32_t min, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
	uint32_t n = 0;
	int ret;

	if (min > max)
		min = max;
	for (;;) {
		ret = zc_reap(r, out + n, max - n);
		if (ret < 0)
			return n ? (int)n : ret;
		n += ret;
		if (n >= min || n == max)
			return n;
		if (!r->reqs_used && !r->done_count)
			return n;	/* nothing could ever arrive */
		{
			struct __kernel_timespec ts, *tsp = NULL;
			struct io_uring_cqe *cqe;
			int64_t left;

			if (deadline >= 0) {
				left = deadline - now_ms();
				if (left <= 0)
					return n;
				ts.tv_sec = left / 1000;
				ts.tv_nsec = (left % 1000) * 1000000;
				tsp = &ts;
			}
			ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe,
							       1, tsp, NULL);
			r->sqes_queued = 0;
			if (ret < 0 && ret != -ETIME && ret != -EINTR)
				return n ? (int)n : ret;
		}
	}
}

/*
 * The caller's event loop sleeps here instead of in its own epoll_wait():
 * the ring polls the loop's epoll fd (one POLL_ADD, kept armed across
 * calls and re-armed once it fired), so this returns when a CQE is posted,
 * when any fd of the loop is ready, or after timeout_ms.  A multishot
 * receive's task work then runs inside this wait, as in a C program that
 * sleeps in io_uring_enter(): no EINTR'd epoll_pwait() and no ring fd
 * wakeup per completion.  The records are left for zc_reap().  The CQEs it
 * woke with say whose wakeup it was (libzc.h: ZC_SLEEP_*); they stay for
 * zc_reap(), only looked at.
 */
int zc_ring_sleep(struct zc_ring *r, int epfd, int timeout_ms)
{
	struct __kernel_timespec ts, *tsp = NULL;
	struct io_uring_cqe *cqe;
	unsigned head;
	int ret;

	if (r->done_count || r->ready || io_uring_cq_ready(&r->ring) ||
	    io_uring_cq_has_overflow(&r->ring))
		return 0;
	if (!r->sleep_poll_armed) {
		struct io_uring_sqe *sqe = zc_sqe(r);

		if (!sqe)
			return -EBUSY;
		io_uring_prep_poll_add(sqe, epfd, POLLIN);
		sqe->user_data = ZC_UD_SLEEP;
		r->sleep_poll_armed = true;
	}
	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
		tsp = &ts;
	}
	ret = io_uring_submit_and_wait_timeout(&r->ring, &cqe, 1, tsp, NULL);
	if (ret >= 0 || ret == -ETIME || ret == -EINTR)
		r->sqes_queued = 0;
	else
		return ret;
	/* Who woke it: any CQE but the epoll fd's poll is the ring's own. */
	if (io_uring_cq_has_overflow(&r->ring))
		return ZC_SLEEP_OWN;
	io_uring_for_each_cqe(&r->ring, head, cqe) {
		if (cqe->user_data != ZC_UD_SLEEP)
			return ZC_SLEEP_OWN;
	}
	return ZC_SLEEP_LOOP;
}

int zc_cancel_all(struct zc_ring *r)
{
	struct io_uring_sqe *sqe;
	uint32_t i;

	/* Queued, never issued: finish them here. */
	for (i = 0; i < r->nsocks; i++) {
		struct zc_sock *s = &r->socks[i];
		struct zc_req *req, *next;

		for (req = s->redo_head; req; req = next) {
			next = req->next;
			zc_req_finish(r, req, -ECANCELED);
		}
		for (req = s->head; req; req = next) {
			next = req->next;
			zc_req_finish(r, req, -ECANCELED);
		}
		s->redo_head = s->redo_tail = s->head = s->tail = NULL;
	}
	for (i = 0; i < r->cfg.max_requests; i++) {
		if (r->reqs[i].state != ZC_REQ_FREE)
			r->reqs[i].canceled = 1;
		if (r->lite[i].state)
			r->lite[i].canceled = 1;
	}
	/* receive hook: receives parked in userspace have no SQE to cancel */
	zc_recv_cancel_parked(r);
	/* running transfers issue nothing more; the cancel below ends theirs */
	zc_sendfile_cancel_all(r);

	sqe = zc_sqe(r);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
	sqe->user_data = 0;
	return flush(r, false) < 0 ? -EIO : 0;
}

/* Until recv.c is linked in, the receive hooks do nothing. */
__attribute__((weak)) void zc_recv_cqe(struct zc_ring *r, struct zc_req *req,
				       const struct io_uring_cqe *cqe)
{
	(void)cqe;
	zc_req_finish(r, req, -EOPNOTSUPP);
}

__attribute__((weak)) void zc_recv_cancel_parked(struct zc_ring *r)
{
	(void)r;
}

__attribute__((weak)) void zc_recv_destroy(struct zc_ring *r)
{
	(void)r;
}
