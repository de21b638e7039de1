// SPDX-License-Identifier: MIT
/*
 * sendfile: a file range to a stream socket, one record per transfer
 * (contract in libzc.h).
 *
 * A transfer waits in its socket's send queue like a send (send.c); when
 * it reaches the head, zc_sendfile_start() runs it and it owns the queue
 * until its record.  It issues SQEs of its own, whose user_data is the
 * address of one of its steps (struct zc_sf_op) with ZC_UD_SENDFILE set;
 * the CQE loop hands those to zc_sendfile_cqe().  The transfer is over
 * when nothing of it is left in the kernel (results and zero-copy
 * notifications), so a step is never reused or freed under the kernel.
 *
 * splice: rounds of up to splice_depth linked pairs file -> pipe (one
 * chunk that fits the pipe) -> socket.  The pipe is empty between pairs;
 * a short step fails the rest of the round (-ECANCELED, nothing done), so
 * the next round starts from the counts: bytes left in the pipe are sent
 * first, a file -> pipe step returning 0 means the file ended.  A
 * non-blocking socket that is full (-EAGAIN) gets a POLL_ADD linked before
 * the retry.
 *
 * read: up to read_depth staging buffers (one registered pool per ring,
 * shared by all transfers) cycle through read -> filled -> sending ->
 * released.  Reads run ahead in file order while one send at a time goes
 * out in that order; a buffer is read again only after the kernel let go
 * of it (SEND_ZC notification).  With O_DIRECT the file is reopened and
 * every read is aligned to its STATX_DIOALIGN; the send skips the head.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define SF_ALL_FLAGS (ZC_SENDFILE_SPLICE | ZC_SENDFILE_READ | \
		      ZC_SENDFILE_DIRECT | ZC_SENDFILE_MORE | ZC_SENDFILE_COPY)
#define SF_MAX_PIPE (256u << 20)
#define SF_MAX_IDLE_PIPES 1024
#define SF_MAX_BUFS 4096
/* splice: two steps per pair and a poll; read: a read and a send per buffer */
#define SF_MAX_OPS (2 * ZC_SENDFILE_MAX_DEPTH + 1)

enum sf_kind {
	SF_FILE_TO_PIPE = 1,
	SF_PIPE_TO_SOCK,
	SF_POLL,
	SF_READ,
	SF_SEND,
	SF_RETRY,	/* timeout: cancel again what is still in the kernel */
};

/* How often a cancelled transfer retries cancelling its steps. */
#define SF_CANCEL_RETRY_NS 20000000

/*
 * One SQE of a transfer; reused once its result and notifications are in
 * (a SEND_ZC notification carries the same user_data as its result).  Its
 * user_data is its address | gen << 1 | ZC_UD_SENDFILE: a CQE of an earlier
 * use (none is expected) cannot be taken for the current one.
 */
struct zc_sf_op {
	struct zc_sf *sf;
	uint8_t kind;		/* enum sf_kind */
	uint8_t busy;		/* SQE issued, result CQE not yet in */
	uint8_t slot;		/* read path: buffer slot */
	uint8_t notifs;		/* SEND_ZC notifications still to come */
	uint8_t gen;		/* bumped on every reuse, 3 bits in user_data */
	uint32_t len;		/* bytes asked */
} __attribute__((aligned(16)));

#define SF_UD_LOW 0xfull	/* tag bit + gen bits */

/* The kernel's "interrupted, restart": a step to issue again. */
#define SF_ERESTARTSYS 512

struct zc_pipe {
	int fd[2];		/* read end, write end */
	struct zc_pipe *next;
};

enum slot_state {
	SLOT_IDLE = 0,
	SLOT_READING,
	SLOT_FILLED,
	SLOT_SENDING,
};

struct sf_slot {
	uint32_t buf;		/* staging pool buffer index */
	uint8_t state;		/* enum slot_state */
	uint16_t notifs;	/* SEND_ZC notifications still to come */
	uint64_t pos;		/* file offset of the first payload byte */
	uint32_t skip;		/* bytes before the payload (O_DIRECT alignment) */
	uint32_t want;		/* payload bytes asked */
	uint32_t len;		/* payload bytes read */
	uint32_t sent;		/* payload bytes the socket took */
};

struct zc_sf {
	struct zc_req *req;
	struct zc_sf *next;	/* ring's list of running transfers */
	struct zc_sf *next_wait;	/* waiting for staging buffers */
	int sock, file;
	int dfd;		/* O_DIRECT reopen, -1 */
	uint32_t flags;
	uint8_t path;		/* enum zc_sendfile_path */
	uint8_t waiting;	/* on the buffer wait list */
	uint8_t stop;		/* error or cancel: issue nothing more */
	uint8_t eof;		/* the file ended before the range did */
	uint8_t fallback;	/* splice refused: switch to read when idle */
	uint8_t need_poll;	/* socket full (-EAGAIN): poll before retry */
	uint32_t fell_back;	/* ZC_SENDFILE_FELL_BACK_* */
	int32_t err;
	uint64_t pos;		/* next file byte to fetch */
	uint64_t end;		/* end of the range */
	uint64_t sent;		/* bytes the socket took */
	uint32_t inflight;	/* result CQEs still due */
	uint32_t notifs;	/* SEND_ZC notifications still due */
	uint32_t comp_flags;
	/*
	 * Cancelling: a cancel finds the running step and the ones queued in
	 * io-wq, not a link still waiting for its predecessor, which may then
	 * start and block (a paused peer).  So until nothing is left, a timeout
	 * step re-sends the cancels.
	 */
	struct zc_sf_op *retry;
	struct __kernel_timespec retry_ts;

	/* splice */
	struct zc_pipe *pipe;
	uint32_t in_pipe;
	/*
	 * The round in flight, in link order.  Every step but the last has
	 * IOSQE_CQE_SKIP_SUCCESS: a step that did all it was asked posts no
	 * CQE, one that failed or came back short does, and the kernel then
	 * posts none for the steps it cut off after it (REQ_F_SKIP_LINK_CQES).
	 * So one CQE ends a round: the steps before it went whole, the ones
	 * after it never ran.
	 */
	struct zc_sf_op *round[SF_MAX_OPS];
	uint32_t round_n;
	struct io_uring_sqe *round_sqe;	/* the last one, while issuing */

	/* read */
	uint32_t nslots;
	uint32_t dio_align;	/* offset/length alignment with O_DIRECT */
	uint64_t rpos;		/* next file byte to read */
	uint64_t trunc;		/* eof: where the file ended */
	uint32_t q[ZC_SENDFILE_MAX_DEPTH];	/* slots in file order */
	uint32_t q_head, q_len;
	uint8_t send_busy;
	struct sf_slot slots[ZC_SENDFILE_MAX_DEPTH];

	struct zc_sf_op ops[SF_MAX_OPS];
};

struct zc_sf_ring {
	struct zc_sendfile_config cfg;
	uint32_t page;
	uint32_t pipe_size;	/* what the kernel gave the last pipe */
	struct zc_pipe *idle;
	uint32_t npipes, nidle;
	struct zc_pool *pool;	/* staging buffers, created on first use */
	uint32_t *free_bufs;
	uint32_t nfree;
	struct zc_sf *active;
	struct zc_sf *releasing;	/* record out, buffers still in the kernel */
	struct zc_sf *wait_head, *wait_tail;
	struct zc_sendfile_stats st;
};

static void pump(struct zc_ring *r, struct zc_sf *sf);
static void cancel_and_retry(struct zc_ring *r, struct zc_sf *sf);

/* ------------------------------------------------------------- config */

static void config_defaults(struct zc_sendfile_config *c)
{
	if (!c->pipe_size)
		c->pipe_size = ZC_SENDFILE_DEFAULT_PIPE;
	if (!c->splice_depth)
		c->splice_depth = ZC_SENDFILE_DEFAULT_SPLICE_DEPTH;
	if (!c->buf_size)
		c->buf_size = ZC_SENDFILE_DEFAULT_BUF;
	if (!c->buf_count)
		c->buf_count = ZC_SENDFILE_DEFAULT_BUFS;
	if (!c->read_depth)
		c->read_depth = ZC_SENDFILE_DEFAULT_READ_DEPTH;
	if (!c->idle_pipes)
		c->idle_pipes = ZC_SENDFILE_DEFAULT_IDLE_PIPES;
}

static struct zc_sf_ring *sf_ring(struct zc_ring *r)
{
	struct zc_sf_ring *sr = r->sendfile;

	if (sr)
		return sr;
	sr = calloc(1, sizeof(*sr));
	if (!sr)
		return NULL;
	sr->page = (uint32_t)sysconf(_SC_PAGESIZE);
	config_defaults(&sr->cfg);
	r->sendfile = sr;
	return sr;
}

static void pipe_close(struct zc_sf_ring *sr, struct zc_pipe *p)
{
	close(p->fd[0]);
	close(p->fd[1]);
	free(p);
	sr->npipes--;
}

static void drop_idle(struct zc_sf_ring *sr)
{
	while (sr->idle) {
		struct zc_pipe *p = sr->idle;

		sr->idle = p->next;
		sr->nidle--;
		pipe_close(sr, p);
	}
}

/* Staging buffers: dropped only when no transfer holds one. */
static void drop_pool(struct zc_sf_ring *sr)
{
	if (!sr->pool || sr->nfree != sr->pool->count)
		return;
	zc_pool_destroy(sr->pool);
	sr->pool = NULL;
	free(sr->free_bufs);
	sr->free_bufs = NULL;
	sr->nfree = 0;
}

int zc_sendfile_configure(struct zc_ring *r,
			  const struct zc_sendfile_config *cfg)
{
	struct zc_sendfile_config c = *cfg;
	struct zc_sf_ring *sr;
	uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE);

	config_defaults(&c);
	if (c.reserved[0] || c.reserved[1] ||
	    c.pipe_size < page || c.pipe_size > SF_MAX_PIPE ||
	    c.splice_depth > ZC_SENDFILE_MAX_DEPTH ||
	    c.read_depth > ZC_SENDFILE_MAX_DEPTH ||
	    c.buf_size % page || c.buf_size > ZC_REGION_MAX ||
	    c.buf_count > SF_MAX_BUFS || c.read_depth > c.buf_count ||
	    c.idle_pipes > SF_MAX_IDLE_PIPES)
		return -EINVAL;
	sr = sf_ring(r);
	if (!sr)
		return -ENOMEM;
	if (sr->active || sr->releasing)
		return -EBUSY;
	drop_idle(sr);
	drop_pool(sr);
	sr->cfg = c;
	return 0;
}

int zc_sendfile_stats(const struct zc_ring *r, struct zc_sendfile_stats *out)
{
	const struct zc_sf_ring *sr = r->sendfile;

	memset(out, 0, sizeof(*out));
	if (!sr)
		return 0;
	*out = sr->st;
	out->pipes = sr->npipes;
	out->pipes_idle = sr->nidle;
	out->pipe_size = sr->pipe_size;
	out->bufs = sr->pool ? sr->pool->count : 0;
	out->bufs_free = sr->nfree;
	return 0;
}

/* -------------------------------------------------------------- pipes */

static struct zc_pipe *pipe_get(struct zc_sf_ring *sr, int *err)
{
	struct zc_pipe *p = sr->idle;
	int sz;

	if (p) {
		sr->idle = p->next;
		sr->nidle--;
		return p;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		*err = -ENOMEM;
		return NULL;
	}
	if (pipe2(p->fd, O_CLOEXEC) < 0) {
		*err = -errno;
		free(p);
		return NULL;
	}
	sr->npipes++;
	/* Larger pipes mean fewer steps; keep what the kernel allows. */
	fcntl(p->fd[1], F_SETPIPE_SZ, (int)sr->cfg.pipe_size);
	sz = fcntl(p->fd[1], F_GETPIPE_SZ);
	sr->pipe_size = sz > 0 ? (uint32_t)sz : sr->page;
	return p;
}

/* A pipe with bytes left in it (a failed transfer) is closed, which
 * drops its page references; an empty one is kept for reuse. */
static void pipe_put(struct zc_sf_ring *sr, struct zc_pipe *p, bool dirty)
{
	if (dirty || sr->nidle >= sr->cfg.idle_pipes) {
		pipe_close(sr, p);
		return;
	}
	p->next = sr->idle;
	sr->idle = p;
	sr->nidle++;
}

/* ------------------------------------------------------ staging buffers */

static int pool_ready(struct zc_ring *r, struct zc_sf_ring *sr)
{
	struct zc_pool_config pc = { .count = sr->cfg.buf_count,
				     .size = sr->cfg.buf_size };
	uint32_t i;
	int ret;

	if (sr->pool)
		return 0;
	sr->free_bufs = calloc(pc.count, sizeof(*sr->free_bufs));
	if (!sr->free_bufs)
		return -ENOMEM;
	ret = zc_pool_create(r, &pc, &sr->pool);
	if (ret) {
		free(sr->free_bufs);
		sr->free_bufs = NULL;
		return ret;
	}
	for (i = 0; i < pc.count; i++)
		sr->free_bufs[i] = pc.count - 1 - i;
	sr->nfree = pc.count;
	return 0;
}

static void *buf_addr(const struct zc_sf_ring *sr, uint32_t buf)
{
	return (char *)zc_pool_base(sr->pool) + (size_t)buf * sr->pool->size;
}

/* Take staging buffers for a transfer: as many as it can use, up to
 * read_depth; none free means it waits for another transfer's. */
static bool slots_take(struct zc_sf_ring *sr, struct zc_sf *sf)
{
	uint64_t need = (sf->end - sf->pos + sf->dio_align) /
			sr->cfg.buf_size + 1;
	uint32_t n = sr->cfg.read_depth;

	if (n > need)
		n = (uint32_t)need;
	if (n > sr->nfree)
		n = sr->nfree;
	if (!n)
		return false;
	for (sf->nslots = 0; sf->nslots < n; sf->nslots++) {
		memset(&sf->slots[sf->nslots], 0, sizeof(sf->slots[0]));
		sf->slots[sf->nslots].buf = sr->free_bufs[--sr->nfree];
	}
	return true;
}

static void slots_give_back(struct zc_ring *r, struct zc_sf_ring *sr,
			    struct zc_sf *sf)
{
	struct zc_sf *w;

	while (sf->nslots)
		sr->free_bufs[sr->nfree++] = sf->slots[--sf->nslots].buf;
	/* Wake the transfers waiting for buffers, oldest first. */
	while ((w = sr->wait_head) && sr->nfree) {
		sr->wait_head = w->next_wait;
		if (!sr->wait_head)
			sr->wait_tail = NULL;
		w->waiting = 0;
		pump(r, w);
	}
}

static void wait_for_bufs(struct zc_sf_ring *sr, struct zc_sf *sf)
{
	sf->waiting = 1;
	sf->next_wait = NULL;
	if (sr->wait_tail)
		sr->wait_tail->next_wait = sf;
	else
		sr->wait_head = sf;
	sr->wait_tail = sf;
}

static void wait_remove(struct zc_sf_ring *sr, struct zc_sf *sf)
{
	struct zc_sf **pp;

	if (!sf->waiting)
		return;
	for (pp = &sr->wait_head; *pp; pp = &(*pp)->next_wait) {
		if (*pp == sf) {
			*pp = sf->next_wait;
			break;
		}
	}
	sr->wait_tail = NULL;
	for (struct zc_sf *w = sr->wait_head; w; w = w->next_wait)
		sr->wait_tail = w;
	sf->waiting = 0;
}

/*
 * Every buffer waits for its SEND_ZC notification and nothing else is in
 * flight.  The kernel stacks the notifications of back-to-back sends, so
 * they come only once the whole run was acked; observed on 6.18 loopback:
 * Nagle (Minshall) holds the sub-MSS tail while a short segment is
 * unacked, the peer does not ack that segment, and the transfer would
 * wait forever.  Push the tail out (TCP_NODELAY on and back off, which
 * pushes pending frames) when Nagle is on.
 */
static void push_tail(struct zc_sf *sf)
{
	int v = 0, on = 1, off = 0;
	socklen_t l = sizeof(v);

	if (getsockopt(sf->sock, IPPROTO_TCP, TCP_NODELAY, &v, &l) < 0 || v)
		return;
	setsockopt(sf->sock, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
	setsockopt(sf->sock, IPPROTO_TCP, TCP_NODELAY, &off, sizeof(off));
}

/* ------------------------------------------------------------ records */

/* The kernel has nothing of the transfer left: its buffers go back. */
static void release(struct zc_ring *r, struct zc_sf *sf)
{
	struct zc_sf_ring *sr = r->sendfile;
	struct zc_sf **pp;

	for (pp = &sr->releasing; *pp; pp = &(*pp)->next) {
		if (*pp == sf) {
			*pp = sf->next;
			sr->st.releasing--;
			break;
		}
	}
	if (sf->nslots)
		slots_give_back(r, sr, sf);
	free(sf);
}

static void finish(struct zc_ring *r, struct zc_sf *sf)
{
	struct zc_sf_ring *sr = r->sendfile;
	struct zc_req *req = sf->req;
	struct zc_sf **pp;
	int32_t res = sf->err;
	int fd = sf->sock;
	uint32_t gen = req->gen;

	/* Every byte went: done whole, whatever stopped it afterwards.
	 * As for sends: res the bytes (capped) when whole, aux the bytes. */
	if (sf->sent == req->file_len)
		res = sf->sent > INT32_MAX ? INT32_MAX : (int32_t)sf->sent;
	else if (!res)
		res = sf->eof ? -ENODATA : -EIO;
	if (sf->pipe)
		pipe_put(sr, sf->pipe, sf->in_pipe != 0);
	wait_remove(sr, sf);
	if (sf->dfd >= 0)
		close(sf->dfd);
	for (pp = &sr->active; *pp; pp = &(*pp)->next) {
		if (*pp == sf) {
			*pp = sf->next;
			break;
		}
	}
	sr->st.active--;
	sr->st.transfers++;
	if (sf->path == ZC_SENDFILE_PATH_SPLICE)
		sr->st.bytes_splice += sf->sent;
	else if (sf->path == ZC_SENDFILE_PATH_DIRECT)
		sr->st.bytes_direct += sf->sent;
	else
		sr->st.bytes_read += sf->sent;
	req->rec_aux = sf->sent;
	req->rec_aux2 = sf->path | sf->fell_back;
	req->comp_flags |= sf->comp_flags;
	req->in_chain = 0;
	req->state = ZC_REQ_WAIT_NOTIF;
	zc_req_finish(r, req, res);
	sf->req = NULL;
	if (sf->notifs) {
		/*
		 * Staging buffers the kernel still holds (SEND_ZC data not yet
		 * acked, a stalled peer): the record does not wait for them,
		 * they are libzc's own; they go back when it lets go.
		 */
		sf->next = sr->releasing;
		sr->releasing = sf;
		sr->st.releasing++;
		if (!(sf->flags & ZC_SENDFILE_MORE))
			push_tail(sf);
	} else {
		release(r, sf);
	}
	zc_sock_chain_done(r, fd, gen);
}

/* Stop issuing; the record comes once the kernel gave every step back. */
static void stop(struct zc_sf *sf, int32_t err)
{
	if (!sf->err)
		sf->err = err;
	sf->stop = 1;
}

/* ---------------------------------------------------------------- SQEs */

static struct zc_sf_op *op_new(struct zc_sf *sf, uint8_t kind, uint32_t len)
{
	for (uint32_t i = 0; i < SF_MAX_OPS; i++) {
		struct zc_sf_op *op = &sf->ops[i];

		if (!op->busy && !op->notifs) {
			op->sf = sf;
			op->kind = kind;
			op->busy = 1;
			op->slot = 0;
			op->gen = (uint8_t)((op->gen + 1) & 7);
			op->len = len;
			sf->inflight++;
			return op;
		}
	}
	return NULL;	/* not reached: the paths bound their steps */
}

/* An SQE, or NULL with the transfer stopped (the ring cannot take more). */
static struct io_uring_sqe *sqe_get(struct zc_ring *r, struct zc_sf *sf)
{
	struct io_uring_sqe *sqe = zc_sqe(r);

	if (!sqe)
		stop(sf, -EBUSY);
	return sqe;
}

static uint64_t op_ud(const struct zc_sf_op *op)
{
	return (uint64_t)(uintptr_t)op | (uint64_t)op->gen << 1 | ZC_UD_SENDFILE;
}

static void op_sqe(struct io_uring_sqe *sqe, struct zc_sf_op *op)
{
	sqe->user_data = op_ud(op);
}

/* A step of the splice round, in link order; all but the last skip their
 * CQE on success (see zc_sf.round). */
static void round_add(struct zc_sf *sf, struct zc_sf_op *op,
		      struct io_uring_sqe *sqe)
{
	if (sf->round_n)
		sf->round_sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
	sf->round[sf->round_n++] = op;
	sf->round_sqe = sqe;
}

/* Make room for n SQEs that must go in one submission (a linked run). */
static uint32_t sq_room(struct zc_ring *r, uint32_t n)
{
	uint32_t space = io_uring_sq_space_left(&r->ring);

	if (space < n) {
		io_uring_submit(&r->ring);
		r->sqes_queued = 0;
		space = io_uring_sq_space_left(&r->ring);
	}
	return space;
}

/* ---------------------------------------------------------------- splice */

static void issue_pipe_to_sock(struct zc_ring *r, struct zc_sf *sf,
			       uint32_t len, bool last, bool link)
{
	struct io_uring_sqe *sqe = sqe_get(r, sf);
	unsigned int fl = SPLICE_F_MOVE;
	struct zc_sf_op *op;

	if (!sqe)
		return;
	op = op_new(sf, SF_PIPE_TO_SOCK, len);
	if (!last || (sf->flags & ZC_SENDFILE_MORE))
		fl |= SPLICE_F_MORE;
	io_uring_prep_splice(sqe, sf->pipe->fd[0], -1, sf->sock, -1, len, fl);
	if (link)
		sqe->flags |= IOSQE_IO_LINK;
	op_sqe(sqe, op);
	round_add(sf, op, sqe);
}

static void issue_poll(struct zc_ring *r, struct zc_sf *sf)
{
	struct io_uring_sqe *sqe = sqe_get(r, sf);
	struct zc_sf_op *op;

	if (!sqe)
		return;
	op = op_new(sf, SF_POLL, 0);
	io_uring_prep_poll_add(sqe, sf->sock, POLLOUT);
	sqe->flags |= IOSQE_IO_LINK;
	op_sqe(sqe, op);
	round_add(sf, op, sqe);
}

static void pump_splice(struct zc_ring *r, struct zc_sf *sf)
{
	struct zc_sf_ring *sr = r->sendfile;
	uint32_t space, pairs, i, psize = sr->pipe_size, mask = sr->page - 1;
	uint64_t p = sf->pos;

	sf->round_n = 0;
	if (sf->in_pipe) {
		/* Bytes from a short round go out first, alone. */
		sq_room(r, 2);
		if (sf->need_poll)
			issue_poll(r, sf);
		sf->need_poll = 0;
		issue_pipe_to_sock(r, sf, sf->in_pipe,
				   sf->pos == sf->end, false);
		return;
	}
	space = sq_room(r, 2 * sr->cfg.splice_depth);
	pairs = sr->cfg.splice_depth;
	if (pairs > space / 2)
		pairs = space / 2 ? space / 2 : 1;
	for (i = 0; i < pairs && p < sf->end; i++) {
		/* A chunk fits the pipe's page slots exactly. */
		uint64_t chunk = psize - (p & mask);
		struct io_uring_sqe *sqe;
		struct zc_sf_op *op;

		if (chunk > sf->end - p)
			chunk = sf->end - p;
		sqe = sqe_get(r, sf);
		if (!sqe)
			return;
		op = op_new(sf, SF_FILE_TO_PIPE, (uint32_t)chunk);
		io_uring_prep_splice(sqe, sf->file, (int64_t)p,
				     sf->pipe->fd[1], -1, (uint32_t)chunk,
				     SPLICE_F_MOVE);
		sqe->flags |= IOSQE_IO_LINK;
		op_sqe(sqe, op);
		round_add(sf, op, sqe);
		p += chunk;
		issue_pipe_to_sock(r, sf, (uint32_t)chunk, p == sf->end,
				   i + 1 < pairs && p < sf->end);
	}
}

static void splice_result(struct zc_sf *sf, struct zc_sf_op *op, int32_t res)
{
	if (op->kind == SF_POLL) {
		if (res < 0 && res != -ECANCELED)
			stop(sf, res);
		return;
	}
	if (res == -ECANCELED)
		return;		/* cut off by an earlier step: nothing done */
	if (op->kind == SF_FILE_TO_PIPE) {
		if (res == -EINVAL && !sf->sent && !sf->in_pipe &&
		    sf->pos == sf->req->file_off &&
		    !(sf->flags & ZC_SENDFILE_SPLICE)) {
			sf->fallback = 1;	/* the file has no splice */
			return;
		}
		if (res < 0) {
			if (res != -EINTR && res != -EAGAIN &&
			    res != -SF_ERESTARTSYS)
				stop(sf, res);
			return;
		}
		if (res == 0)
			sf->eof = 1;
		sf->in_pipe += (uint32_t)res;
		sf->pos += (uint32_t)res;
		return;
	}
	/* pipe -> socket */
	if (res == -EAGAIN) {
		sf->need_poll = 1;	/* non-blocking socket, full */
		return;
	}
	if (res < 0) {
		if (res != -EINTR && res != -SF_ERESTARTSYS)
			stop(sf, res);
		return;
	}
	if (res == 0 && op->len) {
		stop(sf, -EIO);		/* cannot happen: the pipe had bytes */
		return;
	}
	sf->in_pipe -= (uint32_t)res;
	sf->sent += (uint32_t)res;
}

/* The one CQE of a splice round (see zc_sf.round): settle every step. */
static void splice_cqe(struct zc_sf *sf, struct zc_sf_op *op, int32_t res)
{
	uint32_t i, k = sf->round_n;

	for (i = 0; i < sf->round_n; i++) {
		if (sf->round[i] == op) {
			k = i;
			break;
		}
	}
	for (i = 0; i < sf->round_n; i++) {
		struct zc_sf_op *o = sf->round[i];

		if (i < k)	/* went whole: its CQE was skipped */
			splice_result(sf, o, o->kind == SF_POLL ? POLLOUT :
				      (int32_t)o->len);
		else if (i == k)
			splice_result(sf, o, res);
		/* after k: cut off, no CQE comes */
		if (o->busy) {
			o->busy = 0;
			sf->inflight--;
		}
	}
	sf->round_n = 0;
}

/* ------------------------------------------------------------------ read */

static int direct_open(struct zc_sf *sf)
{
	struct statx stx;
	char path[64];
	int fd;

	uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE), align = page;

	/* Filesystems that report no alignment (tmpfs) get page alignment;
	 * one that reports zeros has no direct I/O. */
	if (statx(sf->file, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN)) {
		if (!stx.stx_dio_offset_align || !stx.stx_dio_mem_align ||
		    stx.stx_dio_mem_align > page ||
		    stx.stx_dio_offset_align > page)
			return -EINVAL;
		align = stx.stx_dio_offset_align;
	}
	/* A new open file description: the caller's keeps its flags. */
	snprintf(path, sizeof(path), "/proc/self/fd/%d", sf->file);
	fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	sf->dfd = fd;
	sf->dio_align = align;
	return 0;
}

static void issue_read(struct zc_ring *r, struct zc_sf_ring *sr,
		       struct zc_sf *sf, uint32_t si)
{
	struct sf_slot *sl = &sf->slots[si];
	uint32_t size = sr->cfg.buf_size, skip = 0, want, len;
	uint64_t at = sf->rpos;
	struct io_uring_sqe *sqe;
	struct zc_sf_op *op;
	int fd = sf->file;

	if (sf->dfd >= 0) {
		skip = (uint32_t)(at % sf->dio_align);
		at -= skip;
		fd = sf->dfd;
	}
	want = size - skip;
	if (want > sf->end - sf->rpos)
		want = (uint32_t)(sf->end - sf->rpos);
	len = skip + want;
	if (sf->dfd >= 0 && len % sf->dio_align)
		len += sf->dio_align - len % sf->dio_align;
	sl->state = SLOT_READING;
	sl->pos = sf->rpos;
	sl->skip = skip;
	sl->want = want;
	sl->len = sl->sent = 0;
	sf->rpos += want;
	sf->q[(sf->q_head + sf->q_len++) % ZC_SENDFILE_MAX_DEPTH] = si;
	sqe = sqe_get(r, sf);
	if (!sqe)
		return;
	op = op_new(sf, SF_READ, len);
	op->slot = (uint8_t)si;
	io_uring_prep_read_fixed(sqe, fd, buf_addr(sr, sl->buf), len, at,
				 (int)zc_pool_slot_of(sr->pool, sl->buf));
	op_sqe(sqe, op);
}

static void issue_send(struct zc_ring *r, struct zc_sf_ring *sr,
		       struct zc_sf *sf, uint32_t si)
{
	struct sf_slot *sl = &sf->slots[si];
	const char *p = (const char *)buf_addr(sr, sl->buf) + sl->skip +
			sl->sent;
	uint32_t left = sl->len - sl->sent;
	bool last = sl->pos + sl->len == sf->end;
	struct io_uring_sqe *sqe = sqe_get(r, sf);
	int mf = MSG_NOSIGNAL | MSG_WAITALL;
	struct zc_sf_op *op;

	if (!sqe)
		return;
	op = op_new(sf, SF_SEND, left);
	/*
	 * MSG_MORE only where nothing waits on it: a zero-copy buffer is
	 * read again only after its notification, and the kernel stacks the
	 * notifications of consecutive sends into the skb that holds a
	 * corked tail; with every buffer waiting that tail never leaves.
	 */
	if ((last && (sf->flags & ZC_SENDFILE_MORE)) ||
	    (!last && (sf->flags & ZC_SENDFILE_COPY)))
		mf |= MSG_MORE;
	op->slot = (uint8_t)si;
	if (sf->flags & ZC_SENDFILE_COPY)
		io_uring_prep_send(sqe, sf->sock, p, left, mf);
	else
		io_uring_prep_send_zc_fixed(sqe, sf->sock, p, left, mf,
			IORING_SEND_ZC_REPORT_USAGE,
			zc_pool_slot_of(sr->pool, sl->buf));
	op_sqe(sqe, op);
	sl->state = SLOT_SENDING;
	sf->send_busy = 1;
}

static void pump_read(struct zc_ring *r, struct zc_sf *sf)
{
	struct zc_sf_ring *sr = r->sendfile;
	uint32_t i;

	if (!sf->nslots) {
		int ret = pool_ready(r, sr);

		if (ret) {
			stop(sf, ret);
			return;
		}
		if (!slots_take(sr, sf)) {
			wait_for_bufs(sr, sf);
			return;
		}
	}
	/* Read ahead into every idle buffer, in file order. */
	for (i = 0; i < sf->nslots && sf->rpos < sf->end && !sf->eof; i++) {
		if (sf->slots[i].state == SLOT_IDLE && !sf->slots[i].notifs)
			issue_read(r, sr, sf, i);
	}
	/*
	 * One send at a time, in file order.  Slots the end of the file left
	 * empty are done with here, every one of them: they have no request
	 * in flight, so no completion would bring the transfer back here for
	 * the next (with two of them and nothing else in flight, the
	 * transfer never ended).
	 */
	while (!sf->send_busy && sf->q_len) {
		uint32_t si = sf->q[sf->q_head];
		struct sf_slot *sl = &sf->slots[si];

		/* Read before a shorter read showed where the file ends. */
		if (sf->eof && sl->state == SLOT_FILLED && sl->pos >= sf->trunc)
			sl->len = 0;
		else if (sf->eof && sl->state == SLOT_FILLED &&
			 sl->pos + sl->len > sf->trunc)
			sl->len = (uint32_t)(sf->trunc - sl->pos);
		if (sl->state != SLOT_FILLED)
			break;
		if (sl->len > sl->sent) {
			issue_send(r, sr, sf, si);
			break;
		}
		/* empty (the file ended): done with it */
		sl->state = SLOT_IDLE;
		sf->q_head = (sf->q_head + 1) % ZC_SENDFILE_MAX_DEPTH;
		sf->q_len--;
	}
}

static void read_cqe(struct zc_ring *r, struct zc_sf *sf, struct zc_sf_op *op,
		     const struct io_uring_cqe *cqe)
{
	struct sf_slot *sl = &sf->slots[op->slot];
	int32_t res = cqe->res;

	(void)r;
	if (op->kind == SF_READ) {
		uint32_t got;

		if (res < 0) {
			stop(sf, res);
			sl->state = SLOT_IDLE;
			return;
		}
		got = (uint32_t)res > sl->skip ? (uint32_t)res - sl->skip : 0;
		if (got > sl->want)
			got = sl->want;
		sl->len = got;
		sl->state = SLOT_FILLED;
		if (got < sl->want && (!sf->eof || sl->pos + got < sf->trunc)) {
			/* The file ended early: nothing after this. */
			sf->eof = 1;
			sf->trunc = sl->pos + got;
		}
		return;
	}
	/* send result (the notification, if any, comes separately) */
	if (cqe->flags & IORING_CQE_F_MORE) {
		op->notifs++;
		sl->notifs++;
		sf->notifs++;
	}
	sf->send_busy = 0;
	if (res > 0) {
		sl->sent += (uint32_t)res;
		sf->sent += (uint32_t)res;
	}
	if (res < 0 || (res == 0 && op->len)) {
		stop(sf, res < 0 ? res : -EIO);
		sl->state = SLOT_IDLE;
		return;
	}
	if (sl->sent < sl->len) {
		sl->state = SLOT_FILLED;	/* short: the rest goes next */
		return;
	}
	sl->state = SLOT_IDLE;
	sf->q_head = (sf->q_head + 1) % ZC_SENDFILE_MAX_DEPTH;
	sf->q_len--;
}

/* ---------------------------------------------------------------- driver */

static void switch_to_read(struct zc_ring *r, struct zc_sf *sf)
{
	struct zc_sf_ring *sr = r->sendfile;

	sf->fallback = 0;
	sf->fell_back |= ZC_SENDFILE_FELL_BACK_SPLICE;
	sr->st.splice_refused++;
	pipe_put(sr, sf->pipe, false);
	sf->pipe = NULL;
	sf->path = ZC_SENDFILE_PATH_READ;
	sf->rpos = sf->pos;
}

static void pump(struct zc_ring *r, struct zc_sf *sf)
{
	if (sf->stop || sf->req->canceled) {
		stop(sf, -ECANCELED);
		if (!sf->inflight)
			finish(r, sf);
		return;
	}
	if (sf->path == ZC_SENDFILE_PATH_SPLICE) {
		if (sf->inflight)
			return;		/* rounds are whole */
		if (sf->fallback)
			switch_to_read(r, sf);
		else if (!sf->in_pipe && (sf->pos == sf->end || sf->eof)) {
			finish(r, sf);
			return;
		} else {
			pump_splice(r, sf);
			return;
		}
	}
	if (sf->waiting)
		return;
	pump_read(r, sf);
	if (!sf->inflight && sf->notifs && !sf->waiting && !sf->stop)
		push_tail(sf);
	if (!sf->inflight && !sf->waiting) {
		if (sf->stop || sf->sent == sf->end - sf->req->file_off ||
		    (sf->eof && !sf->q_len))
			finish(r, sf);
	}
}

void zc_sendfile_cqe(struct zc_ring *r, const struct io_uring_cqe *cqe)
{
	struct zc_sf_op *op = (struct zc_sf_op *)(uintptr_t)
			      (cqe->user_data & ~SF_UD_LOW);
	struct zc_sf *sf = op->sf;

	if (cqe->user_data != op_ud(op) || (!op->busy && !op->notifs))
		return;		/* not a CQE of this use of the step */
	if (cqe->flags & IORING_CQE_F_NOTIF) {
		struct sf_slot *sl = &sf->slots[op->slot];

		sf->comp_flags |= (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED) ?
				  ZC_COMP_ZC_COPIED : ZC_COMP_ZC_USED;
		if (op->notifs)
			op->notifs--;
		if (sl->notifs)
			sl->notifs--;
		if (sf->notifs)
			sf->notifs--;
		if (!sf->req) {
			/* record out already: free once the kernel let go */
			if (!sf->notifs)
				release(r, sf);
			return;
		}
		sf->req->cqes++;
	} else if (op->kind == SF_RETRY) {
		sf->req->cqes++;
		op->busy = 0;
		sf->inflight--;
		sf->retry = NULL;
		if (sf->inflight)
			cancel_and_retry(r, sf);
	} else if (op->kind == SF_READ || op->kind == SF_SEND) {
		sf->req->cqes++;
		sf->inflight--;
		op->busy = 0;
		read_cqe(r, sf, op, cqe);
	} else {
		sf->req->cqes++;
		splice_cqe(sf, op, cqe->res);
	}
	pump(r, sf);
}

void zc_sendfile_start(struct zc_ring *r, struct zc_req *req)
{
	struct zc_sf_ring *sr = r->sendfile;
	struct zc_sf *sf = calloc(1, sizeof(*sf));

	req->state = ZC_REQ_INFLIGHT;
	if (!sf) {
		int fd = req->fd;
		uint32_t gen = req->gen;

		req->in_chain = 0;
		zc_req_finish(r, req, -ENOMEM);
		zc_sock_chain_done(r, fd, gen);
		return;
	}
	sf->req = req;
	sf->sock = req->fd;
	sf->file = req->file_fd;
	sf->dfd = -1;
	sf->flags = req->send_flags;
	sf->pos = sf->rpos = req->file_off;
	sf->end = req->file_off + req->file_len;
	req->priv = sf;
	sf->next = sr->active;
	sr->active = sf;
	sr->st.active++;
	if (!req->file_len) {
		sf->path = sf->flags & ZC_SENDFILE_DIRECT ? ZC_SENDFILE_PATH_DIRECT :
			   sf->flags & ZC_SENDFILE_READ ? ZC_SENDFILE_PATH_READ :
			   ZC_SENDFILE_PATH_SPLICE;
		finish(r, sf);
		return;
	}
	if (sf->flags & (ZC_SENDFILE_READ | ZC_SENDFILE_DIRECT)) {
		sf->path = ZC_SENDFILE_PATH_READ;
		if (sf->flags & ZC_SENDFILE_DIRECT) {
			if (direct_open(sf) == 0) {
				sf->path = ZC_SENDFILE_PATH_DIRECT;
			} else {
				sf->fell_back |= ZC_SENDFILE_FELL_BACK_DIRECT;
				sr->st.direct_refused++;
			}
		}
	} else {
		int err = 0;

		sf->path = ZC_SENDFILE_PATH_SPLICE;
		sf->pipe = pipe_get(sr, &err);
		if (!sf->pipe)
			stop(sf, err);
	}
	pump(r, sf);
}

/* --------------------------------------------------------------- public */

int zc_sendfile(struct zc_ring *r, int sockfd, int filefd, uint64_t off,
		uint64_t len, uint32_t flags, uint64_t user_data)
{
	struct zc_sock *s;
	struct zc_req *req;
	struct statx st;

	if (flags & ~SF_ALL_FLAGS ||
	    ((flags & ZC_SENDFILE_SPLICE) &&
	     (flags & (ZC_SENDFILE_READ | ZC_SENDFILE_DIRECT))))
		return -EINVAL;
	/* statx, not fstat: fstat is a GLIBC_2.33 symbol, above the 2.28 floor
	 * of the prebuilt library (Node's own; scripts/package-test.sh). */
	if (statx(filefd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, &st) < 0)
		return -errno;
	if (!S_ISREG(st.stx_mode))
		return -EINVAL;
	if (off > st.stx_size || len > st.stx_size - off)
		return -ERANGE;
	s = zc_sock_get(r, sockfd);
	if (!s)
		return -errno;
	if (!s->stream)
		return -EINVAL;
	if (s->aborted || s->closing)
		return -ECANCELED;	/* never issue against a closing number */
	if (!sf_ring(r))
		return -ENOMEM;
	req = zc_req_get(r, ZC_OP_SENDFILE, user_data);
	if (!req)
		return -EAGAIN;
	req->native = 0;
	req->fd = sockfd;
	req->file_fd = filefd;
	req->file_off = off;
	req->file_len = len;
	req->send_flags = flags;
	zc_sock_enqueue(r, s, req);
	return 0;
}

/* Cancel the kernel's steps of a running transfer. */
static void cancel_steps(struct zc_ring *r, struct zc_sf *sf)
{
	for (uint32_t i = 0; i < SF_MAX_OPS; i++) {
		struct io_uring_sqe *sqe;

		if (!sf->ops[i].busy || sf->ops[i].kind == SF_RETRY)
			continue;
		sqe = zc_sqe(r);
		if (!sqe)
			return;
		io_uring_prep_cancel64(sqe, op_ud(&sf->ops[i]), 0);
		sqe->user_data = 0;
	}
}

/* Cancel what is in the kernel, and again after a while until it is all back. */
static void cancel_and_retry(struct zc_ring *r, struct zc_sf *sf)
{
	struct io_uring_sqe *sqe;

	if (sf->inflight == (sf->retry ? 1u : 0u))
		return;		/* only the retry timer left */
	cancel_steps(r, sf);
	if (sf->retry)
		return;
	sqe = zc_sqe(r);
	if (!sqe)
		return;
	sf->retry = op_new(sf, SF_RETRY, 0);
	sf->retry_ts.tv_sec = 0;
	sf->retry_ts.tv_nsec = SF_CANCEL_RETRY_NS;
	io_uring_prep_timeout(sqe, &sf->retry_ts, 0, 0);
	op_sqe(sqe, sf->retry);
}

static void cancel_running(struct zc_ring *r, struct zc_sf *sf)
{
	stop(sf, -ECANCELED);
	sf->req->canceled = 1;
	wait_remove(r->sendfile, sf);
	if (sf->inflight)
		cancel_and_retry(r, sf);
	else
		pump(r, sf);	/* nothing in the kernel: finish now */
}

int zc_sendfile_cancel(struct zc_ring *r, uint64_t user_data)
{
	struct zc_sf_ring *sr = r->sendfile;
	uint32_t i;
	int n = 0;

	if (!sr)
		return -ENOENT;
	/* Queued, not started: out of the socket's queue, record now. */
	for (i = 0; i < r->cfg.max_requests; i++) {
		struct zc_req *req = &r->reqs[i];
		struct zc_req **pp, *prev;
		struct zc_sock *s;

		if (req->state != ZC_REQ_QUEUED || req->op != ZC_OP_SENDFILE ||
		    req->user_data != user_data)
			continue;
		s = &r->socks[req->fd];
		prev = NULL;
		for (pp = &s->head; *pp && *pp != req; pp = &(*pp)->next)
			prev = *pp;
		if (*pp) {
			*pp = req->next;
			if (s->tail == req)
				s->tail = prev;
		}
		zc_req_finish(r, req, -ECANCELED);
		n++;
	}
	for (struct zc_sf *sf = sr->active, *next; sf; sf = next) {
		next = sf->next;
		if (sf->req->user_data == user_data && !sf->req->canceled) {
			cancel_running(r, sf);
			n++;
		}
	}
	return n ? n : -ENOENT;
}

void zc_sendfile_abort_fd(struct zc_ring *r, int fd)
{
	struct zc_sf_ring *sr = r->sendfile;

	if (!sr)
		return;
	for (struct zc_sf *sf = sr->active, *next; sf; sf = next) {
		next = sf->next;
		if (sf->sock == fd && !sf->req->canceled)
			cancel_running(r, sf);
	}
}

void zc_sendfile_cancel_all(struct zc_ring *r)
{
	struct zc_sf_ring *sr = r->sendfile;

	if (!sr)
		return;
	for (struct zc_sf *sf = sr->active, *next; sf; sf = next) {
		next = sf->next;
		stop(sf, -ECANCELED);
		wait_remove(sr, sf);
		if (!sf->inflight)
			pump(r, sf);
		else	/* the ring's cancel-any may miss a link that starts later */
			cancel_and_retry(r, sf);
	}
}

void zc_sendfile_destroy(struct zc_ring *r)
{
	struct zc_sf_ring *sr = r->sendfile;

	if (!sr)
		return;
	/* Transfers still running after the ring's bounded wait. */
	while (sr->active) {
		struct zc_sf *sf = sr->active;

		sr->active = sf->next;
		if (sf->pipe)
			pipe_close(sr, sf->pipe);
		if (sf->dfd >= 0)
			close(sf->dfd);
		free(sf);
	}
	while (sr->releasing) {
		struct zc_sf *sf = sr->releasing;

		sr->releasing = sf->next;
		free(sf);
	}
	drop_idle(sr);
	free(sr->free_bufs);	/* the pool goes with the ring's pools */
	free(sr);
	r->sendfile = NULL;
}
