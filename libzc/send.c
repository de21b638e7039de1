// SPDX-License-Identifier: MIT
/*
 * Sends, and the one-record-per-send merge.
 *
 * Ordering: io_uring gives no order between independent SQEs on one
 * socket (one may be punted to poll while the next goes inline), so on a
 * stream socket libzc keeps a queue and issues it as IOSQE_IO_LINK chains:
 * at most one chain per socket is in the kernel, and the next one goes out
 * when the last result CQE of the current one is in.  MSG_WAITALL makes the
 * kernel finish a stream send itself; a send that still comes back short
 * (signal, error) fails the link, so the rest of the chain comes back
 * -ECANCELED and is reissued after the remainder, in order.
 *
 * Merge: a zero-copy send is finished when its result is in and every
 * notification it announced (IORING_CQE_F_MORE) has arrived; with the
 * kernel's IORING_SEND_ZC_SINGLE_CQE one CQE carries both.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

struct zc_sock *zc_sock_slot(struct zc_ring *r, int fd)
{
	if (fd < 0) {
		errno = EBADF;
		return NULL;
	}
	if ((uint32_t)fd >= r->nsocks) {
		uint32_t n = r->nsocks ? r->nsocks : 64;
		struct zc_sock *ns;

		while (n <= (uint32_t)fd)
			n *= 2;
		ns = realloc(r->socks, n * sizeof(*ns));
		if (!ns) {
			errno = ENOMEM;
			return NULL;
		}
		memset(ns + r->nsocks, 0, (n - r->nsocks) * sizeof(*ns));
		/* The ready list holds pointers into the array: rebuild it. */
		if (ns != r->socks && r->ready) {
			uint32_t i;
			struct zc_sock **link = &r->ready;

			r->ready = NULL;
			for (i = 0; i < r->nsocks; i++) {
				if (ns[i].on_ready) {
					*link = &ns[i];
					link = &ns[i].next_ready;
				}
			}
			*link = NULL;
		}
		r->socks = ns;
		r->nsocks = n;
	}
	return &r->socks[fd];
}

struct zc_sock *zc_sock_get(struct zc_ring *r, int fd)
{
	struct zc_sock *s = zc_sock_slot(r, fd);
	socklen_t len;
	int type;

	if (s && !s->known) {
		len = sizeof(type);
		if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
			return NULL;
		s->known = 1;
		s->aborted = 0;
		s->stream = type == SOCK_STREAM;
		s->ordered = type == SOCK_STREAM || type == SOCK_SEQPACKET;
	}
	return s;
}

/* Finish every request queued on s (never issued) with -ECANCELED. */
static void cancel_queued(struct zc_ring *r, struct zc_sock *s)
{
	struct zc_req *req;

	while ((req = s->redo_head) || (req = s->head)) {
		if (req == s->redo_head) {
			s->redo_head = req->next;
			if (!s->redo_head)
				s->redo_tail = NULL;
		} else {
			s->head = req->next;
			if (!s->head)
				s->tail = NULL;
		}
		zc_req_finish(r, req, -ECANCELED);
	}
}

/*
 * The number now names another file.  Requests of the old one still in the
 * kernel carry the old gen: their CQEs no longer touch this state.
 */
static void sock_reset(struct zc_ring *r, struct zc_sock *s)
{
	cancel_queued(r, s);
	zc_file_drop(r, s);	/* the old file's slot */
	s->known = 0;
	s->aborted = 0;
	s->closing = 0;
	s->broken = 0;
	s->chain = 0;
	s->gen++;
}

void zc_sock_renew(struct zc_ring *r, int fd)
{
	if (fd >= 0 && (uint32_t)fd < r->nsocks)
		sock_reset(r, &r->socks[fd]);
}

void zc_sock_closed(struct zc_ring *r, struct zc_req *req)
{
	struct zc_sock *s;

	if (req->fd < 0 || (uint32_t)req->fd >= r->nsocks)
		return;
	s = &r->socks[req->fd];
	if (s->gen == req->gen)
		sock_reset(r, s);
}

int zc_sock_forget(struct zc_ring *r, int fd)
{
	struct zc_sock *s;

	if (fd < 0 || (uint32_t)fd >= r->nsocks)
		return 0;
	s = &r->socks[fd];
	/* the caller may close fd whatever this returns: its slot goes */
	zc_file_drop(r, s);
	if (s->head || s->redo_head || s->chain)
		return -EBUSY;
	sock_reset(r, s);
	return 0;
}

int zc_sock_opened(struct zc_ring *r, int fd)
{
	if (fd < 0)
		return -EBADF;
	/* libzc holds that number itself (an abortive close in progress):
	 * it cannot have been opened anew */
	if ((uint32_t)fd < r->nsocks && r->socks[fd].close_req)
		return -EBUSY;
	zc_sock_renew(r, fd);
	return 0;
}

int zc_sock_abort(struct zc_ring *r, int fd)
{
	struct zc_sock *s;

	if (fd < 0 || (uint32_t)fd >= r->nsocks || !r->socks[fd].known)
		return 0;
	s = &r->socks[fd];
	s->aborted = 1;
	cancel_queued(r, s);
	zc_sendfile_abort_fd(r, fd);
	return 0;
}

static void mark_ready(struct zc_ring *r, struct zc_sock *s)
{
	if (s->on_ready)
		return;
	s->on_ready = 1;
	s->next_ready = r->ready;
	r->ready = s;
}

void zc_sock_enqueue(struct zc_ring *r, struct zc_sock *s, struct zc_req *req)
{
	req->seq = s->next_seq++;
	req->gen = s->gen;
	req->state = ZC_REQ_QUEUED;
	req->next = NULL;
	if (s->tail)
		s->tail->next = req;
	else
		s->head = req;
	s->tail = req;
	if (!s->chain)
		mark_ready(r, s);
}

/*
 * Put req back to be reissued before the queue.  Kept in queue order: the
 * CQEs of a cut chain come in that order on stock kernels, but unified
 * CQEs are posted when buffers are released, in any order.
 */
static void redo(struct zc_sock *s, struct zc_req *req)
{
	struct zc_req **pp = &s->redo_head;

	while (*pp && (*pp)->seq < req->seq)
		pp = &(*pp)->next;
	req->state = ZC_REQ_QUEUED;
	req->next = *pp;
	*pp = req;
	if (!req->next)
		s->redo_tail = req;
}

static uint32_t msg_flags(const struct zc_req *req, const struct zc_sock *s)
{
	uint32_t f = MSG_NOSIGNAL;

	if (s && s->stream)
		f |= MSG_WAITALL;
	if (req->send_flags & ZC_SEND_MORE)
		f |= MSG_MORE;
	return f;
}

static uint32_t zc_flags(const struct zc_req *req)
{
	/* The kernel cannot report usage in its single CQE (-EINVAL). */
	if (req->native)
		return IORING_SEND_ZC_SINGLE_CQE;
	if (!(req->send_flags & ZC_SEND_NO_REPORT))
		return IORING_SEND_ZC_REPORT_USAGE;
	return 0;
}

/* Drop the first n bytes of a sendmsg's iovecs (after a short send). */
static void msg_advance(struct zc_req *req, uint64_t n)
{
	struct msghdr *m = &req->msg;

	while (n && m->msg_iovlen) {
		struct iovec *v = m->msg_iov;

		if (n < v->iov_len) {
			v->iov_base = (char *)v->iov_base + n;
			v->iov_len -= n;
			return;
		}
		n -= v->iov_len;
		m->msg_iov++;
		m->msg_iovlen--;
	}
}

static void prep(struct zc_ring *r, struct zc_req *req,
		 struct io_uring_sqe *sqe, const struct zc_sock *s)
{
	const char *p = req->buf + req->done;
	uint64_t rest = req->len - req->done;
	/* sqe->len is 32 bits and the kernel takes at most this per call */
	uint32_t left = rest > ZC_SQE_MAX_BYTES ? ZC_SQE_MAX_BYTES :
			(uint32_t)rest;
	uint32_t mf = msg_flags(req, s);

	switch (req->op) {
	case ZC_OP_SEND:
		if (req->iovcnt)
			io_uring_prep_sendmsg(sqe, req->fd, &req->msg, mf);
		else
			io_uring_prep_send(sqe, req->fd, p, left, mf);
		break;
	case ZC_OP_SEND_ZC:
		if (req->pool)
			io_uring_prep_send_zc_fixed(sqe, req->fd, p, left, mf,
				zc_flags(req),
				zc_pool_slot_of(req->pool, req->buf0));
		else
			io_uring_prep_send_zc(sqe, req->fd, p, left, mf,
					      zc_flags(req));
		break;
	case ZC_OP_SENDMSG_ZC:
		if (req->vec_fixed)
			io_uring_prep_sendmsg_zc_fixed(sqe, req->fd, &req->msg,
				mf, zc_pool_slot_of(req->pool, req->buf0));
		else
			io_uring_prep_sendmsg_zc(sqe, req->fd, &req->msg, mf);
		sqe->ioprio |= zc_flags(req);
		break;
	case ZC_OP_SHUTDOWN:
		io_uring_prep_shutdown(sqe, req->fd, req->arg);
		break;
	case ZC_OP_CLOSE:
		io_uring_prep_close(sqe, req->fd);
		break;
	}
	io_uring_sqe_set_data(sqe, req);
	(void)r;
}

static int issue_one(struct zc_ring *r, struct zc_req *req,
		     const struct zc_sock *s, bool link)
{
	struct io_uring_sqe *sqe = zc_sqe(r);

	if (!sqe)
		return -EBUSY;
	prep(r, req, sqe, s);
	if (link)
		sqe->flags |= IOSQE_IO_LINK;
	req->state = ZC_REQ_INFLIGHT;
	return 0;
}

static struct zc_req *pop(struct zc_sock *s)
{
	struct zc_req *req = s->redo_head;

	if (req) {
		s->redo_head = req->next;
		if (!s->redo_head)
			s->redo_tail = NULL;
		return req;
	}
	req = s->head;
	if (req) {
		s->head = req->next;
		if (!s->head)
			s->tail = NULL;
	}
	return req;
}

/*
 * Issue the socket's queue as one linked chain.  A sendfile transfer is
 * never linked: the chain stops before it, and when it reaches the head it
 * owns the queue (chain = 1) until zc_sock_chain_done().
 */
static void issue_chain(struct zc_ring *r, struct zc_sock *s)
{
	uint32_t space, n, i;

	if (s->chain)
		return;
	if (!s->redo_head && s->head && s->head->op == ZC_OP_SENDFILE) {
		struct zc_req *req = pop(s);

		req->in_chain = 1;
		s->chain = 1;
		zc_sendfile_start(r, req);
		return;
	}
	space = io_uring_sq_space_left(&r->ring);
	if (space < 2) {
		/* A chain must not be split across two submissions. */
		io_uring_submit(&r->ring);
		r->sqes_queued = 0;
		space = io_uring_sq_space_left(&r->ring);
	}
	n = 0;
	for (struct zc_req *q = s->redo_head; q; q = q->next)
		n++;
	for (struct zc_req *q = s->head; q && n < ZC_MAX_CHAIN &&
	     q->op != ZC_OP_SENDFILE; q = q->next)
		n++;
	if (n > ZC_MAX_CHAIN)
		n = ZC_MAX_CHAIN;
	if (n > space)
		n = space;
	for (i = 0; i < n; i++) {
		struct zc_req *req = pop(s);

		/*
		 * A send longer than one SQE carries comes back "whole" for
		 * the kernel after its first piece: nothing may be linked
		 * behind it, or that would overtake its remainder.
		 */
		if (req->len - req->done > ZC_SQE_MAX_BYTES)
			n = i + 1;
		req->in_chain = 1;
		issue_one(r, req, s, i + 1 < n);
	}
	s->chain = n;
}


void zc_issue_ready(struct zc_ring *r)
{
	while (r->ready) {
		struct zc_sock *s = r->ready;

		r->ready = s->next_ready;
		s->on_ready = 0;
		s->next_ready = NULL;
		issue_chain(r, s);
	}
}

static void maybe_finish(struct zc_ring *r, struct zc_req *req)
{
	int32_t res;

	if (req->state != ZC_REQ_WAIT_NOTIF || req->notifs)
		return;
	if (!zc_is_send(req->op))
		res = req->err;
	else
		/* whole, or not: zc_req_finish() adds the bytes */
		res = req->done == req->len ? 0 : req->err;
	zc_req_finish(r, req, res);
}

/* The last request of s's chain is over: the queue may go on. */
static void chain_over(struct zc_ring *r, struct zc_sock *s)
{
	s->broken = 0;
	if (s->close_req) {
		/* No link of the aborted socket can run any more:
		 * free the number now (closes the placeholder). */
		struct zc_req *c = s->close_req;

		s->close_req = NULL;
		if (issue_one(r, c, NULL, false))
			zc_req_finish(r, c, -EBUSY);
	} else if (s->redo_head || s->head) {
		mark_ready(r, s);
	}
}

/* The send part of req is over (result CQE, or the unified CQE). */
static void send_result(struct zc_ring *r, struct zc_req *req, int32_t res)
{
	struct zc_sock *s = NULL;
	bool chain_end = false, orphan = false;

	if (req->in_chain) {
		req->in_chain = 0;
		s = &r->socks[req->fd];
		if (s->gen != req->gen) {
			/* Its file was closed and the number reused meanwhile:
			 * this state is the new file's. */
			s = NULL;
			orphan = true;
		} else {
			s->chain--;
			chain_end = !s->chain;
			if (res == -ECANCELED && !req->canceled &&
			    !s->aborted) {
				/* Cut off by an earlier link of its chain:
				 * reissue.  Neither the caller nor an abort
				 * canceled it, so a link failed, whose own
				 * record may still be to come: a single-CQE
				 * send posts it with its notification, after
				 * the links it cut. */
				s->broken = 1;
				redo(s, req);
				goto out;
			}
		}
	}
	if (res >= 0 && zc_is_send(req->op)) {
		req->done += (uint32_t)res;
		if (req->done < req->len && res > 0 && s && s->stream &&
		    !s->aborted && !req->canceled) {
			/* Short stream send: the rest goes first. */
			if (req->iovcnt)
				msg_advance(req, (uint32_t)res);
			if (s->chain)
				s->broken = 1;
			redo(s, req);
			goto out;
		}
		if (req->done < req->len && !req->err)
			/* Cut short and not to be completed: the caller gave
			 * up on it (cancel, abort, closed file), or the
			 * kernel took nothing (a datagram is never short). */
			req->err = req->canceled || orphan ||
				   (s && s->aborted) ? -ECANCELED : -EIO;
	} else if (res < 0) {
		if (res == -ENOTSOCK && s && s->close_req)
			/* A link looked up after park_close(): it ran against
			 * the placeholder, nothing of it left.  The caller
			 * gave up on the socket: canceled, as if the cancel
			 * had reached it first. */
			res = -ECANCELED;
		req->err = res;
		if (s && s->chain)
			s->broken = 1;
	}
	req->state = ZC_REQ_WAIT_NOTIF;
	if (req->op == ZC_OP_CLOSE)
		zc_sock_closed(r, req);	/* the number may be reused */
	maybe_finish(r, req);
out:
	if (chain_end)
		chain_over(r, s);
}

void zc_sock_chain_done(struct zc_ring *r, int fd, uint32_t gen)
{
	struct zc_sock *s = &r->socks[fd];

	/* closed and the number reused meanwhile: that state is not ours */
	if (s->gen != gen || !s->chain)
		return;
	if (!--s->chain)
		chain_over(r, s);
}

/* A zero-copy request in userspace-merge mode: it has a notification. */
static bool report_capable(const struct zc_req *req)
{
	return !req->native &&
	       (req->op == ZC_OP_SEND_ZC || req->op == ZC_OP_SENDMSG_ZC);
}

void zc_send_cqe(struct zc_ring *r, struct zc_req *req,
		 const struct io_uring_cqe *cqe)
{
	bool report = !(req->send_flags & ZC_SEND_NO_REPORT) &&
		      (req->op == ZC_OP_SEND_ZC || req->op == ZC_OP_SENDMSG_ZC);

	req->cqes++;
	if (!(cqe->flags & IORING_CQE_F_NOTIF)) {
		if (req->native)
			/* IORING_SEND_ZC_SINGLE_CQE: result and release. */
			req->comp_flags |= ZC_COMP_NATIVE;
		else if (cqe->flags & IORING_CQE_F_MORE)
			req->notifs++;
		else if (cqe->res == -ECANCELED && report_capable(req))
			/*
			 * Stock kernels (<= 7.2) fail a link member cut off by
			 * its head without the opcode's fail handler: the CQE
			 * lacks F_MORE, yet the notification is still posted.
			 * Wait for it, or it would land on a recycled request.
			 */
			req->notifs++;
		send_result(r, req, cqe->res);
		return;
	}
	if (report)
		req->comp_flags |= (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) ?
				   ZC_COMP_ZC_COPIED : ZC_COMP_ZC_USED;
	if (req->notifs)
		req->notifs--;
	maybe_finish(r, req);
}

static int queue_send(struct zc_ring *r, struct zc_req *req)
{
	struct zc_sock *s = zc_sock_get(r, req->fd);
	int ret;

	if (!s) {
		ret = -errno;
		zc_req_put(r, req);
		return ret;
	}
	if (s->closing || s->aborted) {
		/* Never issue a send against a number being closed, nor on
		 * a socket the caller gave up on (it is about to close). */
		zc_req_put(r, req);
		return -ECANCELED;
	}
	zc_req_hold_bufs(req, 1);
	if (s->ordered) {
		zc_sock_enqueue(r, s, req);
		return 0;
	}
	ret = issue_one(r, req, s, false);
	if (ret < 0) {
		zc_req_hold_bufs(req, -1);
		zc_req_put(r, req);
	}
	return ret;
}

#define ZC_SEND_ALL_FLAGS (ZC_SEND_ZEROCOPY | ZC_SEND_MORE | ZC_SEND_NO_REPORT)

int zc_send(struct zc_ring *r, int fd, const void *buf, uint64_t len,
	    uint32_t flags, uint64_t user_data)
{
	struct zc_req *req;
	int err;

	if (flags & ~ZC_SEND_ALL_FLAGS)
		return -EINVAL;
	if (!buf && len)
		return -EFAULT;
	req = zc_req_get(r, flags & ZC_SEND_ZEROCOPY ? ZC_OP_SEND_ZC :
			 ZC_OP_SEND, user_data);
	if (!req)
		return -EAGAIN;
	req->fd = fd;
	req->buf = buf;
	req->len = len;
	req->send_flags = flags;
	if (req->op != ZC_OP_SEND_ZC)
		req->native = 0;
	/* Pool memory is held by the send even when not sent as fixed; a
	 * zero-copy send inside one pool buffer goes from the fixed buffer. */
	req->pool = zc_hold_range(r, req, buf, len, &req->buf0, &err);
	if (err) {
		zc_req_put(r, req);
		return err;
	}
	return queue_send(r, req);
}

/*
 * zc_send_fixed() of a zero-copy send on an unordered socket that libzc
 * knows: what queue_send() and prep() do for it, without a struct zc_req
 * (0, or -EAGAIN/-EBUSY).  Its CQEs are ring.c's lite_cqe(), whose record
 * is zc_req_finish()'s for the same send.  Here, not in ring.c: inlined
 * in zc_send_fixed(), a busy UDP sender's every send.
 */
static int lite_send(struct zc_ring *r, int fd, struct zc_pool *pool,
		     uint32_t buf, uint32_t off, uint32_t len, uint32_t flags,
		     uint64_t user_data)
{
	bool report = !(flags & ZC_SEND_NO_REPORT);
	struct io_uring_sqe *sqe;
	struct zc_lite *l;
	uint32_t i;

	if (!r->lite_free || r->reqs_used >= r->cfg.max_requests)
		return -EAGAIN;
	sqe = zc_sqe(r);
	if (!sqe)
		return -EBUSY;
	i = r->lite_free - 1;
	l = &r->lite[i];
	r->lite_free = l->next;
	r->reqs_used++;
	l->user_data = user_data;
	l->pool = pool;
	l->buf = buf;
	l->len = len;
	l->res = 0;
	l->comp_flags = 0;
	l->cqes = 0;
	l->state = 1;
	l->notifs = 0;
	l->report = report;
	l->canceled = 0;
	pool->inflight++;
	pool->buf_inflight[buf]++;
	io_uring_prep_send_zc_fixed(sqe, fd,
		(const char *)pool->base + (size_t)buf * pool->size + off, len,
		MSG_NOSIGNAL | (flags & ZC_SEND_MORE ? MSG_MORE : 0),
		report ? IORING_SEND_ZC_REPORT_USAGE : 0,
		zc_pool_slot_of(pool, buf));
	zc_lite_file(r, sqe, fd);
	sqe->user_data = ZC_UD_LITE | (uint64_t)i << 2;
	return 0;
}

int zc_send_fixed(struct zc_ring *r, int fd, struct zc_pool *pool,
		  uint32_t buf, uint32_t off, uint32_t len, uint32_t flags,
		  uint64_t user_data)
{
	struct zc_req *req;

	if (flags & ~ZC_SEND_ALL_FLAGS)
		return -EINVAL;
	if (!pool || buf >= pool->count ||
	    off > pool->size || len > pool->size - off)
		return -EINVAL;
	if (pool->r != r)
		return -EXDEV;
	/* A zero-copy send on a datagram socket libzc knows: no request. */
	if ((flags & ZC_SEND_ZEROCOPY) && !r->native && fd >= 0 &&
	    (uint32_t)fd < r->nsocks) {
		const struct zc_sock *s = &r->socks[fd];

		if (s->known && !s->ordered && !s->closing && !s->aborted)
			return lite_send(r, fd, pool, buf, off, len, flags,
					 user_data);
	}
	req = zc_req_get(r, flags & ZC_SEND_ZEROCOPY ? ZC_OP_SEND_ZC :
			 ZC_OP_SEND, user_data);
	if (!req)
		return -EAGAIN;
	req->fd = fd;
	req->buf = (const char *)pool->base + (size_t)buf * pool->size + off;
	req->len = len;
	req->send_flags = flags;
	if (req->op != ZC_OP_SEND_ZC)
		req->native = 0;
	req->pool = pool;
	req->buf0 = buf;
	zc_hold_add(req, pool, buf, buf);
	return queue_send(r, req);
}

int zc_sendmsg(struct zc_ring *r, int fd, const struct iovec *iov,
	       uint32_t iovcnt, const void *addr, uint32_t addrlen,
	       uint32_t flags, uint64_t user_data)
{
	struct zc_req *req;
	uint64_t total = 0;
	uint32_t i, bi;
	int err = 0;

	if (flags & ~ZC_SEND_ALL_FLAGS)
		return -EINVAL;
	if (!iov || !iovcnt || iovcnt > ZC_MAX_IOV)
		return -EINVAL;
	if (addrlen > sizeof(struct sockaddr_storage) || (!addr && addrlen))
		return -EINVAL;
	for (i = 0; i < iovcnt; i++)
		total += iov[i].iov_len;
	req = zc_req_get(r, flags & ZC_SEND_ZEROCOPY ? ZC_OP_SENDMSG_ZC :
			 ZC_OP_SEND, user_data);
	if (!req)
		return -EAGAIN;
	req->fd = fd;
	req->len = total;
	req->send_flags = flags;
	if (req->op != ZC_OP_SENDMSG_ZC)
		req->native = 0;
	memcpy(req->iov, iov, iovcnt * sizeof(*iov));
	req->iovcnt = iovcnt;
	req->msg.msg_iov = req->iov;
	req->msg.msg_iovlen = iovcnt;
	if (addr) {
		memcpy(&req->addr, addr, addrlen);
		req->addrlen = addrlen;
		req->msg.msg_name = &req->addr;
		req->msg.msg_namelen = addrlen;
	}
	/* Every iovec inside a pool holds what it reads. */
	for (i = 0; i < iovcnt && !err; i++)
		zc_hold_range(r, req, iov[i].iov_base, iov[i].iov_len, &bi,
			      &err);
	if (err) {
		zc_req_put(r, req);
		return err;
	}
	return queue_send(r, req);
}

int zc_sendv_fixed(struct zc_ring *r, int fd, struct zc_pool *pool,
		   const struct zc_span *spans, uint32_t n, uint32_t flags,
		   uint64_t user_data)
{
	struct zc_req *req;
	uint64_t total = 0;
	uint32_t i, region;

	if (flags & ~ZC_SEND_ALL_FLAGS || !(flags & ZC_SEND_ZEROCOPY))
		return -EINVAL;
	if (!pool || !spans || !n || n > ZC_MAX_IOV)
		return -EINVAL;
	if (pool->r != r)
		return -EXDEV;
	region = spans[0].buf / pool->per_region;
	for (i = 0; i < n; i++) {
		const struct zc_span *v = &spans[i];

		if (v->reserved || v->buf >= pool->count ||
		    v->buf / pool->per_region != region ||
		    v->off > pool->size || v->len > pool->size - v->off)
			return -EINVAL;
		total += v->len;
	}
	if (!r->has_vec_fixed)
		return -EOPNOTSUPP;
	req = zc_req_get(r, ZC_OP_SENDMSG_ZC, user_data);
	if (!req)
		return -EAGAIN;
	req->fd = fd;
	req->len = total;
	req->send_flags = flags;
	req->vec_fixed = 1;
	req->pool = pool;
	req->buf0 = spans[0].buf;
	for (i = 0; i < n; i++) {
		zc_hold_add(req, pool, spans[i].buf, spans[i].buf);
		/* Addresses inside the registered region, as the kernel wants. */
		req->iov[i].iov_base = (char *)pool->base +
			(size_t)spans[i].buf * pool->size + spans[i].off;
		req->iov[i].iov_len = spans[i].len;
	}
	req->iovcnt = n;
	req->msg.msg_iov = req->iov;
	req->msg.msg_iovlen = n;
	return queue_send(r, req);
}

static int placeholder(struct zc_ring *r)
{
	if (r->placeholder_fd < 0)
		r->placeholder_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return r->placeholder_fd;
}

/*
 * An abortive close while a chain of the socket is in the kernel.  The
 * kernel looks up the fd of a linked request when the link before it
 * finished, not when it was submitted: closing the number now would let
 * the chain's later links run against whatever socket gets the number
 * next.  Instead the number keeps a placeholder (/dev/null: a send there
 * fails with -ENOTSOCK) until the chain is over; the socket itself is
 * released now (its unsent data goes, zero-copy buffers come back), the
 * request running in it is canceled, and the close of the placeholder is
 * issued when the chain's last record is in.
 */
static int park_close(struct zc_ring *r, struct zc_sock *s,
		      struct zc_req *req)
{
	uint32_t i;
	int ph = placeholder(r);

	if (ph < 0 || dup3(ph, req->fd, O_CLOEXEC) < 0)
		return -1;
	for (i = 0; i < r->cfg.max_requests; i++) {
		struct zc_req *q = &r->reqs[i];
		struct io_uring_sqe *sqe;

		if (q->state != ZC_REQ_INFLIGHT || !q->in_chain ||
		    q->fd != req->fd || q->gen != s->gen)
			continue;
		sqe = zc_sqe(r);
		if (!sqe)
			break;
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)q, 0);
		sqe->user_data = 0;
	}
	req->state = ZC_REQ_QUEUED;
	s->close_req = req;
	return 0;
}

void zc_socks_release_held(struct zc_ring *r)
{
	uint32_t i;

	for (i = 0; i < r->nsocks; i++) {
		struct zc_sock *s = &r->socks[i];

		if (s->close_req) {
			close((int)i);
			s->close_req = NULL;
		}
	}
	if (r->placeholder_fd >= 0)
		close(r->placeholder_fd);
	r->placeholder_fd = -1;
}

/*
 * Shutdown and close on an ordered socket wait for its queued sends.  Once
 * a close is queued, nothing more is issued against the number.
 */
int zc_queue_after_sends(struct zc_ring *r, struct zc_req *req)
{
	struct zc_sock *s = zc_sock_slot(r, req->fd);

	if (!s)
		return issue_one(r, req, NULL, false);	/* the kernel says why */
	if (s->closing)
		return -ECANCELED;
	req->gen = s->gen;
	if (req->op == ZC_OP_CLOSE && s->known && s->ordered && s->aborted &&
	    s->chain && park_close(r, s, req) == 0) {
		s->closing = 1;
		return 0;
	}
	if (s->known && s->ordered && !s->aborted &&
	    (s->head || s->redo_head || s->chain)) {
		zc_sock_enqueue(r, s, req);
	} else {
		int ret = issue_one(r, req, NULL, false);

		if (ret)
			return ret;
	}
	if (req->op == ZC_OP_CLOSE)
		s->closing = 1;
	return 0;
}
