/* SPDX-License-Identifier: MIT */
/* libzc internals shared by its .c files; not installed. */
#ifndef LIBZC_INTERNAL_H
#define LIBZC_INTERNAL_H

#include <stdbool.h>
#include <sys/socket.h>
#include <liburing.h>

#include "libzc.h"
#include "zc_uapi.h"

/*
 * SENDMSG_ZC from a vector of registered buffers (IORING_RECVSEND_FIXED_BUF,
 * 6.15) has no probe bit of its own: READV_FIXED came in the same series.
 */
static inline bool zc_probe_sendv_fixed(const struct io_uring_probe *p)
{
	return io_uring_opcode_supported(p, IORING_OP_SENDMSG_ZC) &&
	       io_uring_opcode_supported(p, IORING_OP_READV_FIXED);
}

/*
 * The sqe->ioprio flags SEND[MSG]_ZC accept, from IO_URING_QUERY_SEND_ZC
 * (uring-zc series); 0 where the kernel lacks the query or that op.
 */
uint64_t zc_probe_send_zc_flags(void);

/*
 * The opcodes (and the single-CQE send flag) of the running kernel, as
 * enum zc_caps bits (the opcode ones zc_probe() reports, read the same
 * way): they are the kernel's, the same for every ring, so they are probed
 * once per process, through `ring` on the first call, and every later call
 * returns that answer without a system call.  Safe from any thread:
 * threads racing through the first call each probe and store the same
 * answer.  ZC_CAP_IO_URING is set when the opcode probe answered; without
 * it nothing is kept and the next call probes again.
 */
uint32_t zc_kernel_ops(struct io_uring *ring);

/* Longest run of sends linked into one chain on a stream socket. */
#define ZC_MAX_CHAIN 64

/* Buffers first..last of a pool that a send reads: held until its record. */
struct zc_hold {
	struct zc_pool *pool;
	uint32_t first, last;
};

enum zc_req_state {
	ZC_REQ_FREE = 0,
	ZC_REQ_QUEUED,		/* waiting in its socket's queue */
	ZC_REQ_INFLIGHT,	/* SQE handed to the ring */
	ZC_REQ_WAIT_NOTIF,	/* result seen, notifications outstanding */
};

/*
 * One caller request.  Its address is the SQE user_data of every SQE it
 * issues (resubmissions included); notifications are told apart by
 * IORING_CQE_F_NOTIF.  SQEs that libzc issues for itself carry user_data 0.
 */
struct zc_req {
	uint64_t user_data;	/* the caller's tag */
	uint16_t op;		/* enum zc_op */
	uint8_t state;		/* enum zc_req_state */
	uint8_t native;		/* kernel posts one unified CQE */
	uint32_t send_flags;	/* enum zc_send_flags */
	uint32_t comp_flags;	/* enum zc_completion_flags, accumulated */
	uint16_t cqes;		/* kernel CQEs seen */
	uint16_t notifs;	/* notifications still to come */
	int32_t err;		/* first error, 0 if none */
	int fd;
	uint8_t in_chain;	/* issued as part of its socket's chain */
	uint64_t seq;		/* position in its socket's queue order */
	uint8_t canceled;	/* zc_cancel_all() asked for it */

	uint32_t gen;		/* its socket's zc_sock.gen when queued */

	/* send state: what is left to issue */
	const char *buf;
	uint64_t len;		/* bytes requested */
	uint64_t done;		/* bytes the kernel took so far */
	struct zc_pool *pool;	/* fixed sends: the registered pool */
	uint32_t buf0;		/* fixed sends: its first buffer (the slot) */
	uint8_t vec_fixed;	/* SENDMSG_ZC from registered buffers */
	uint8_t nholds;		/* entries of holds[] */
	socklen_t addrlen;
	int arg;		/* backlog, shutdown how, socket type... */
	int arg2, arg3;

	/* sendfile: the range, and the record's aux/aux2 */
	int file_fd;
	uint64_t file_off, file_len;
	uint64_t rec_aux;
	uint32_t rec_aux2;

	struct zc_req *next;	/* free list or socket queue */
	void *priv;		/* owner-specific (receive path) */
	uint32_t rx_held;	/* receive: its chunks the caller holds */
	uint32_t rx_budget;	/* receive: byte limit of this arming, 0 none */
	uint64_t rx_got;	/* receive: bytes since it was armed */
	uint32_t iovcnt;
	struct msghdr msg;

	/*
	 * The arrays last: zc_req_get() clears everything before holds (a
	 * send touches a few cache lines, not the whole request); holds[],
	 * iov[] and addr are only read up to nholds / iovcnt / addrlen.
	 */
	struct zc_hold holds[ZC_MAX_IOV];	/* pool memory the send reads */
	struct iovec iov[ZC_MAX_IOV];
	struct sockaddr_storage addr;
};

/*
 * A zero-copy send from one pool buffer on an unordered socket (a datagram
 * socket: no queue, no chain), the path of a busy UDP sender: no struct
 * zc_req, its SQE's user_data is ZC_UD_LITE | index << 2 into r->lite.  It
 * counts in reqs_used like a request (the same limit, the same pending
 * count and teardown wait).  ZC_UD_SENDFILE (bit 0) is checked first.
 */
#define ZC_UD_LITE 2ull

struct zc_lite {
	uint64_t user_data;	/* the caller's tag */
	struct zc_pool *pool;	/* its buffer is held until the record */
	uint32_t buf;
	uint32_t len;
	int32_t res;		/* the result CQE's */
	uint32_t comp_flags;	/* enum zc_completion_flags */
	uint32_t next;		/* free list: index + 1, 0 = end */
	uint16_t cqes;		/* kernel CQEs seen */
	uint8_t state;		/* 0 free, 1 issued, 2 result in */
	uint8_t notifs;		/* notifications still to come */
	uint8_t report;		/* REPORT_USAGE asked */
	uint8_t canceled;	/* zc_cancel_all() asked for it */
};


/*
 * files.c: the registered-file table of busy datagram sockets.  A socket
 * gets a slot at its ZC_FILE_AFTER-th lite send, while one of the
 * ZC_FILE_SLOTS is free.  A slot costs two system calls in the socket's
 * life (install and clear: ~280 ns together here, the table ~9 us once per
 * ring) and saves ~18 ns per send, so it pays after ~16 sends; a socket
 * that sends fewer (a query and its close) pays nothing
 * (docs/PERFORMANCE.md, Session 23 ff23).
 */
#define ZC_FILE_SLOTS 64
#define ZC_FILE_AFTER 16
struct zc_sock;
/* Give s (fd) a slot; false: none free, no table, or the kernel refused. */
bool zc_file_register(struct zc_ring *r, struct zc_sock *s, int fd);
/* Clear s's slot, if any (before its fd is closed or renewed), and its
 * count of lite sends. */
void zc_file_drop(struct zc_ring *r, struct zc_sock *s);
/* Ring teardown: release the sockets in the table now. */
void zc_files_destroy(struct zc_ring *r);

/* What libzc knows about one fd it sends on. */
struct zc_sock {
	uint8_t known;		/* type looked up */
	uint8_t stream;		/* SOCK_STREAM: short sends are completed */
	uint8_t ordered;	/* STREAM/SEQPACKET: issue in queue order */
	uint8_t broken;		/* current chain was cut short */
	uint16_t chain;		/* requests of the current chain in flight */
	uint16_t file_slot;	/* registered-file slot + 1, 0 none (files.c) */
	struct zc_req *head, *tail;	/* queued, not yet issued */
	struct zc_req *redo_head, *redo_tail;	/* to reissue first, by seq */
	uint64_t next_seq;
	struct zc_sock *next_ready;	/* on ring->ready list */
	uint8_t on_ready;
	uint8_t aborted;	/* zc_sock_abort(): close/shutdown go at once */
	uint8_t closing;	/* zc_close() called: refuse new requests */
	uint8_t lite_sends;	/* lite sends up to ZC_FILE_AFTER (files.c) */
	uint32_t gen;		/* bumped whenever the number names a new file */
	/* an abortive close waiting for the chain in flight (see
	 * zc_queue_after_sends()): the number holds a placeholder */
	struct zc_req *close_req;
};

struct zc_ring {
	struct io_uring ring;
	struct zc_ring_config cfg;
	uint32_t features;
	bool native;		/* unified sends done by the kernel */
	bool defer_taskrun;
	bool sleep_poll_armed;	/* zc_ring_sleep(): the loop's epoll fd is polled */
	bool ring_fd_polled;	/* zc_ring_poll_ring_fd(): the eventfd is off */
	/* from zc_kernel_ops() */
	bool has_bind_listen;	/* IORING_OP_BIND/LISTEN, else done inline */
	bool has_socket_op;	/* IORING_OP_SOCKET, else done inline */
	bool has_vec_fixed;	/* SENDMSG_ZC with IORING_RECVSEND_FIXED_BUF */
	bool has_recv_zc;	/* IORING_OP_RECV_ZC (zcrx) */
	int reg_fd;		/* zc_ring_registered_fd() */
	int event_fd;
	int placeholder_fd;	/* /dev/null, dup'ed over aborted sockets; -1 */
	uint32_t sqes_queued;	/* prepared, not yet submitted */

	struct zc_req *reqs;
	struct zc_req *free_reqs;
	uint32_t reqs_used;	/* requests and lite sends in flight */
	struct zc_lite *lite;	/* max_requests of them */
	uint32_t lite_free;	/* index + 1 of the first free one, 0 none */

	/* finished records not yet reaped (FIFO ring, grows) */
	struct zc_completion *done;
	uint32_t done_head, done_count, done_cap;	/* cap: a power of two */
	/*
	 * While zc_flush() runs: its caller's array.  A record emitted while
	 * done[] is empty goes straight to out[out_n++] (up to out_max), not
	 * through done[]: every record before it has been handed over, so
	 * the order is the same (ring.c emit_slot()).  out_max is 0 otherwise.
	 */
	struct zc_completion *out;
	uint32_t out_n, out_max;

	/* per-fd state, indexed by fd, grows */
	struct zc_sock *socks;
	uint32_t nsocks;
	struct zc_sock *ready;	/* sockets with queued requests to issue */

	/* registered-buffer table: slot i used by pool[i] or NULL */
	struct zc_pool **slots;
	bool fixed_table;	/* sparse table registered */
	/* registered-file table (files.c): 0 not tried, 1 there, -1 none */
	int8_t files;
	uint64_t files_used;	/* bit i: slot i holds a socket */
	struct zc_pool *pools;	/* all live pools of this ring */

	/* receive path state (recv.c), NULL until used */
	void *recv;
	/* sendfile state (sendfile.c), NULL until used */
	struct zc_sf_ring *sendfile;
};

struct zc_pool {
	struct zc_ring *r;
	void *base;
	size_t map_len;
	uint32_t count, size;
	uint32_t first_slot;	/* fixed-table slot of the first region */
	uint32_t per_region;	/* buffers per registered region */
	uint32_t nregions;
	uint32_t inflight;	/* holds by requests (zc_req_hold_bufs) */
	uint32_t *buf_inflight;
	bool retire;		/* ZC_POOL_RETIRE */
	struct zc_pool *next;
};

/* ring.c */
struct zc_req *zc_req_get(struct zc_ring *r, uint16_t op, uint64_t user_data);
void zc_req_put(struct zc_ring *r, struct zc_req *req);
/* zc_sqe() when the SQ is full: submit what is queued and retry */
struct io_uring_sqe *zc_sqe_full(struct zc_ring *r);

/* An SQE to prepare, counted in sqes_queued; NULL if none can be had. */
static inline struct io_uring_sqe *zc_sqe(struct zc_ring *r)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	if (__builtin_expect(!sqe, 0))
		return zc_sqe_full(r);
	r->sqes_queued++;
	return sqe;
}

int zc_emit(struct zc_ring *r, const struct zc_completion *c);
/* Emit req's record with result res and free it. */
void zc_req_finish(struct zc_ring *r, struct zc_req *req, int32_t res);
/* Queue an SQE for a single-CQE request (socket ops). */
int zc_simple_issue(struct zc_ring *r, struct zc_req *req);

/*
 * A lite send's SQE for fd names the socket's registered-file slot, once
 * it has one (see files.c for why that is safe across closes).
 */
static inline void zc_lite_file(struct zc_ring *r, struct io_uring_sqe *sqe,
				int fd)
{
	struct zc_sock *s = &r->socks[fd];

	if (!s->file_slot &&
	    (s->lite_sends >= ZC_FILE_AFTER || ++s->lite_sends < ZC_FILE_AFTER ||
	     !zc_file_register(r, s, fd)))
		return;
	sqe->fd = s->file_slot - 1;
	sqe->flags |= IOSQE_FIXED_FILE;
}

/* pool.c */
/* Record in req->holds the pool memory [addr, addr + len) lies in (this
 * ring's pools).  Returns the pool when the range is inside one buffer
 * (*buf set: a fixed send can use it), NULL otherwise; -EINVAL through
 * *err when req->holds is full. */
struct zc_pool *zc_hold_range(struct zc_ring *r, struct zc_req *req,
			      const void *addr, uint64_t len, uint32_t *buf,
			      int *err);
int zc_hold_add(struct zc_req *req, struct zc_pool *p, uint32_t first,
		uint32_t last);
/* Unregister and unmap every pool; with requests still in the kernel
 * (teardown timed out) the memory is left as read-only zero pages. */
void zc_pools_destroy_all(struct zc_ring *r, bool busy);
/* The fixed-table slot of a pool buffer (its region's) */
static inline uint32_t zc_pool_slot_of(const struct zc_pool *p, uint32_t buf)
{
	/* per send: no division for the first region (all of a small pool) */
	if (buf < p->per_region)
		return p->first_slot;
	return p->first_slot + buf / p->per_region;
}
/* Take (+1) or give back (-1) the pool buffers req holds. */
void zc_req_hold_bufs(struct zc_req *req, int delta);

/* send.c */
void zc_send_cqe(struct zc_ring *r, struct zc_req *req,
		 const struct io_uring_cqe *cqe);
struct zc_sock *zc_sock_get(struct zc_ring *r, int fd);
/* The slot of fd without looking the socket up (NULL: bad fd / no memory) */
struct zc_sock *zc_sock_slot(struct zc_ring *r, int fd);
/* fd now names a new file: cancel what was queued for the old one. */
void zc_sock_renew(struct zc_ring *r, int fd);
/* Ring teardown: close the numbers held for abortive closes. */
void zc_socks_release_held(struct zc_ring *r);
/* A close of fd finished: its number may be reused. */
void zc_sock_closed(struct zc_ring *r, struct zc_req *req);
static inline bool zc_is_send(uint16_t op)
{
	return op == ZC_OP_SEND || op == ZC_OP_SEND_ZC || op == ZC_OP_SENDMSG_ZC;
}
void zc_sock_enqueue(struct zc_ring *r, struct zc_sock *s, struct zc_req *req);
void zc_issue_ready(struct zc_ring *r);
/* shutdown/close: after the sends queued on the same socket */
int zc_queue_after_sends(struct zc_ring *r, struct zc_req *req);
/* A request that owned socket fd's queue (sendfile, queued at gen) is
 * done with it. */
void zc_sock_chain_done(struct zc_ring *r, int fd, uint32_t gen);

/*
 * sendfile.c.  Its SQEs carry the address of a per-step struct with bit 0
 * set (ZC_UD_SENDFILE), told apart from request addresses in the CQE loop.
 */
#define ZC_UD_SENDFILE 1ull
/* zc_ring_sleep()'s poll of the caller's epoll fd */
#define ZC_UD_SLEEP 4ull
void zc_sendfile_cqe(struct zc_ring *r, const struct io_uring_cqe *cqe);
/* send.c: a queued transfer reached the head of its socket's queue */
void zc_sendfile_start(struct zc_ring *r, struct zc_req *req);
/* zc_sock_abort(): end the transfer running on fd */
void zc_sendfile_abort_fd(struct zc_ring *r, int fd);
/* zc_cancel_all() marked everything: stop the running transfers */
void zc_sendfile_cancel_all(struct zc_ring *r);
void zc_sendfile_destroy(struct zc_ring *r);

/* sockops.c: CQEs of accepts (multishot ones post several) */
void zc_accept_cqe(struct zc_ring *r, struct zc_req *req,
		   const struct io_uring_cqe *cqe);

/* recv.c: CQEs of ZC_OP_RECV requests, and teardown */
void zc_recv_cqe(struct zc_ring *r, struct zc_req *req,
		 const struct io_uring_cqe *cqe);
void zc_recv_destroy(struct zc_ring *r);
/* recv.c (hook added by the receive path): end receives parked for lack
 * of buffers, called by zc_cancel_all() */
void zc_recv_cancel_parked(struct zc_ring *r);
/* recv.c (hook added by the receive path): zc_close() ends fd's receive */
void zc_recv_cancel_fd(struct zc_ring *r, int fd);
void zc_recv_probe(struct zc_probe *p);	/* fills receive caps */
/* recv.c: zc_rx_release_many() for zc_flush_batch(), -EXDEV if rx is not r's */
int zc_rx_release_batch(struct zc_ring *r, struct zc_rx *rx,
			const uint64_t *offs, uint32_t n);

#endif /* LIBZC_INTERNAL_H */
