// SPDX-License-Identifier: MIT
/*
 * Socket operations through the ring: one SQE, one record each.  Where the
 * running kernel lacks IORING_OP_SOCKET/BIND/LISTEN the call is made inline
 * and its record is queued at once, so callers see the same behaviour.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

static struct zc_req *get(struct zc_ring *r, uint16_t op, int fd,
			  uint64_t user_data)
{
	struct zc_req *req = zc_req_get(r, op, user_data);

	if (req) {
		req->fd = fd;
		req->native = 0;
	}
	return req;
}

static int issue(struct zc_ring *r, struct zc_req *req,
		 void (*prep)(struct io_uring_sqe *, struct zc_req *))
{
	struct io_uring_sqe *sqe = zc_sqe(r);

	if (!sqe) {
		zc_req_put(r, req);
		return -EBUSY;
	}
	prep(sqe, req);
	io_uring_sqe_set_data(sqe, req);
	req->state = ZC_REQ_INFLIGHT;
	return 0;
}

/* The kernel has no opcode for it: do it now, report through the queue. */
static int inline_done(struct zc_ring *r, struct zc_req *req, int ret)
{
	zc_req_finish(r, req, ret < 0 ? -errno : ret);
	return 0;
}

static int copy_addr(struct zc_req *req, const void *addr, uint32_t addrlen)
{
	if (!addr || !addrlen || addrlen > sizeof(req->addr))
		return -EINVAL;
	memcpy(&req->addr, addr, addrlen);
	req->addrlen = addrlen;
	return 0;
}

static void prep_socket(struct io_uring_sqe *sqe, struct zc_req *req)
{
	io_uring_prep_socket(sqe, req->arg, req->arg2 | SOCK_CLOEXEC,
			     req->arg3, 0);
}

int zc_socket(struct zc_ring *r, int domain, int type, int protocol,
	      uint64_t user_data)
{
	struct zc_req *req = get(r, ZC_OP_SOCKET, -1, user_data);

	if (!req)
		return -EAGAIN;
	if (!r->has_socket_op)
		return inline_done(r, req, socket(domain, type | SOCK_CLOEXEC,
						  protocol));
	req->arg = domain;
	req->arg2 = type;
	req->arg3 = protocol;
	return issue(r, req, prep_socket);
}

static void prep_bind(struct io_uring_sqe *sqe, struct zc_req *req)
{
	io_uring_prep_bind(sqe, req->fd, (struct sockaddr *)&req->addr,
			   req->addrlen);
}

static void prep_connect(struct io_uring_sqe *sqe, struct zc_req *req)
{
	io_uring_prep_connect(sqe, req->fd, (struct sockaddr *)&req->addr,
			      req->addrlen);
}

/* bind and connect: an address the request keeps until its CQE. */
static int addr_op(struct zc_ring *r, uint16_t op, int fd, const void *addr,
		   uint32_t addrlen, uint64_t user_data,
		   void (*prep)(struct io_uring_sqe *, struct zc_req *))
{
	struct zc_req *req = get(r, op, fd, user_data);
	int ret;

	if (!req)
		return -EAGAIN;
	ret = copy_addr(req, addr, addrlen);
	if (ret) {
		zc_req_put(r, req);
		return ret;
	}
	if (op == ZC_OP_BIND && !r->has_bind_listen)
		return inline_done(r, req, bind(fd, (struct sockaddr *)&req->addr,
						req->addrlen));
	return issue(r, req, prep);
}

int zc_bind(struct zc_ring *r, int fd, const void *addr, uint32_t addrlen,
	    uint64_t user_data)
{
	return addr_op(r, ZC_OP_BIND, fd, addr, addrlen, user_data, prep_bind);
}

static void prep_listen(struct io_uring_sqe *sqe, struct zc_req *req)
{
	io_uring_prep_listen(sqe, req->fd, req->arg);
}

int zc_listen(struct zc_ring *r, int fd, int backlog, uint64_t user_data)
{
	struct zc_req *req = get(r, ZC_OP_LISTEN, fd, user_data);

	if (!req)
		return -EAGAIN;
	if (!r->has_bind_listen)
		return inline_done(r, req, listen(fd, backlog));
	req->arg = backlog;
	return issue(r, req, prep_listen);
}

static void prep_accept(struct io_uring_sqe *sqe, struct zc_req *req)
{
	io_uring_prep_accept(sqe, req->fd, NULL, NULL, SOCK_CLOEXEC);
}

int zc_accept(struct zc_ring *r, int fd, uint64_t user_data)
{
	struct zc_req *req = get(r, ZC_OP_ACCEPT, fd, user_data);

	if (!req)
		return -EAGAIN;
	return issue(r, req, prep_accept);
}

static void prep_accept_multishot(struct io_uring_sqe *sqe, struct zc_req *req)
{
	io_uring_prep_multishot_accept(sqe, req->fd, NULL, NULL, SOCK_CLOEXEC);
}

int zc_accept_multishot(struct zc_ring *r, int fd, uint64_t user_data)
{
	struct zc_req *req = get(r, ZC_OP_ACCEPT, fd, user_data);

	if (!req)
		return -EAGAIN;
	return issue(r, req, prep_accept_multishot);
}

/* A connection of a multishot accept: its own record, the request goes on. */
void zc_accept_cqe(struct zc_ring *r, struct zc_req *req,
		   const struct io_uring_cqe *cqe)
{
	struct zc_completion c = {
		.user_data = req->user_data,
		.res = cqe->res,
		.flags = ZC_COMP_MORE,
		.op = ZC_OP_ACCEPT,
		.cqes = 1,
	};

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		req->cqes++;
		zc_req_finish(r, req, cqe->res);
		return;
	}
	if (cqe->res >= 0)
		zc_sock_renew(r, cqe->res);	/* a new file under that number */
	zc_emit(r, &c);
}

static void prep_recv_buf(struct io_uring_sqe *sqe, struct zc_req *req)
{
	io_uring_prep_recv(sqe, req->fd, (void *)req->buf, req->len, 0);
}

int zc_recv_buf(struct zc_ring *r, int fd, void *buf, uint32_t len,
		uint64_t user_data)
{
	struct zc_req *req;

	if (!buf && len)
		return -EFAULT;
	req = get(r, ZC_OP_RECV_BUF, fd, user_data);
	if (!req)
		return -EAGAIN;
	req->buf = buf;
	req->len = len;
	return issue(r, req, prep_recv_buf);
}

int zc_connect(struct zc_ring *r, int fd, const void *addr, uint32_t addrlen,
	       uint64_t user_data)
{
	return addr_op(r, ZC_OP_CONNECT, fd, addr, addrlen, user_data,
		       prep_connect);
}

int zc_shutdown(struct zc_ring *r, int fd, int how, uint64_t user_data)
{
	struct zc_req *req = get(r, ZC_OP_SHUTDOWN, fd, user_data);
	int ret;

	if (!req)
		return -EAGAIN;
	req->arg = how;
	ret = zc_queue_after_sends(r, req);
	if (ret)
		zc_req_put(r, req);
	return ret;
}

/* An accept in flight holds the listener open: end it (-ECANCELED). */
static void cancel_accepts(struct zc_ring *r, int fd)
{
	uint32_t i;

	for (i = 0; i < r->cfg.max_requests; i++) {
		struct zc_req *q = &r->reqs[i];
		struct io_uring_sqe *sqe;

		if (q->state != ZC_REQ_INFLIGHT || q->op != ZC_OP_ACCEPT ||
		    q->fd != fd)
			continue;
		sqe = zc_sqe(r);
		if (!sqe)
			return;
		io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)q, 0);
		sqe->user_data = 0;
	}
}

int zc_close(struct zc_ring *r, int fd, uint64_t user_data)
{
	struct zc_req *req;
	int ret;

	/* Its registered-file slot would keep the socket open (files.c);
	 * first, as a caller may close(2) fd when this fails. */
	if (fd >= 0 && (uint32_t)fd < r->nsocks)
		zc_file_drop(r, &r->socks[fd]);
	req = get(r, ZC_OP_CLOSE, fd, user_data);
	if (!req)
		return -EAGAIN;
	if (fd >= 0 && (uint32_t)fd < r->nsocks && r->socks[fd].closing) {
		zc_req_put(r, req);
		return -EALREADY;	/* a close of fd is under way */
	}
	/* receive hook: a receive in flight would keep the socket open */
	zc_recv_cancel_fd(r, fd);
	cancel_accepts(r, fd);
	ret = zc_queue_after_sends(r, req);
	if (ret)
		zc_req_put(r, req);
	return ret;
}
