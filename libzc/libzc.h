/* SPDX-License-Identifier: MIT */
/*
 * libzc: zero-copy networking over io_uring with one completion per request.
 *
 * Every request (socket op, send, ...) is tagged by the caller with a 64-bit
 * user_data and produces exactly ONE struct zc_completion, reaped in batches
 * with zc_reap().  For zero-copy sends that record is emitted only once the
 * kernel has released the buffer: on stock kernels libzc merges the result
 * CQE and the notification CQE itself; on kernels with the uring-zc series
 * (IORING_SEND_ZC_SINGLE_CQE) the kernel posts a single CQE.
 *
 * Functions return 0 / a count / an id on success and -errno on failure.
 * A ring is single-threaded: call everything for one ring from one thread.
 */
#ifndef LIBZC_H
#define LIBZC_H

#include <stdint.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ZC_API __attribute__((visibility("default")))

/* ---------------------------------------------------------------- ring */

enum zc_ring_flags {
	ZC_RING_SINGLE_ISSUER	= 1u << 0,
	ZC_RING_DEFER_TASKRUN	= 1u << 1,	/* implies SINGLE_ISSUER */
	ZC_RING_COOP_TASKRUN	= 1u << 2,
	ZC_RING_REGISTERED_FD	= 1u << 3,	/* register the ring fd if the
						 * kernel lets us (see
						 * zc_ring_registered_fd()) */
	ZC_RING_CQE32		= 1u << 4,	/* 32-byte CQEs (zcrx) */
};

enum zc_unified {
	ZC_UNIFIED_AUTO		= 0,	/* native when the kernel has it */
	ZC_UNIFIED_NATIVE	= 1,	/* -EOPNOTSUPP if the kernel lacks it */
	ZC_UNIFIED_USERSPACE	= 2,	/* always merge the two CQEs here */
};

struct zc_ring_config {
	uint32_t sq_entries;		/* power of two, 1..32768 */
	uint32_t cq_entries;		/* 0: 4 * sq_entries */
	uint32_t flags;			/* enum zc_ring_flags */
	uint32_t unified;		/* enum zc_unified */
	uint32_t max_requests;		/* tracked at once; 0: cq_entries */
	uint32_t max_fixed_buffers;	/* registered-buffer slots; 0: 1024 */
	uint32_t reserved[2];		/* must be zero */
};

struct zc_ring;

ZC_API int zc_ring_create(const struct zc_ring_config *cfg,
			  struct zc_ring **out);
/* Cancels what is still in flight, waits (bounded) for the kernel to
 * release every buffer, then frees all.  Records not reaped are dropped. */
ZC_API void zc_ring_destroy(struct zc_ring *r);
/* zc_ring_destroy() waiting at most timeout_ms (0: not at all) for the
 * kernel.  For callers that wait themselves without blocking (an event
 * loop): cancel with zc_cancel_all(), reap until zc_ring_pending() is 0,
 * then destroy with 0.  Whatever is still pending then, its memory is
 * retired (never reused), not freed under the kernel. */
ZC_API void zc_ring_destroy_timeout(struct zc_ring *r, int timeout_ms);

/* Pollable fd (an eventfd registered with the ring): readable when
 * zc_reap() may have work.  Works with and without DEFER_TASKRUN. */
ZC_API int zc_ring_event_fd(const struct zc_ring *r);
ZC_API int zc_ring_fd(const struct zc_ring *r);
/* Have the caller poll the ring fd instead: it is readable while CQEs, or
 * CQEs the CQ had no room for, wait to be reaped (level-triggered: one
 * posted before the fd was polled counts as well).  The eventfd is then
 * unregistered (no signal per CQE, no read(2) in zc_reap()) and stays open
 * but quiet.  Returns the fd to poll; -EINVAL on a DEFER_TASKRUN ring,
 * whose task work wakes eventfd waiters only (Linux <= 7.2). */
ZC_API int zc_ring_poll_ring_fd(struct zc_ring *r);
/* Sleep in the ring for an event loop: submit what is queued and wait in
 * io_uring_enter() until a CQE is posted, the loop's epoll fd epfd is
 * readable (the ring keeps a POLL_ADD on it armed across calls), or
 * timeout_ms passed (-1: no bound).  Returns ZC_SLEEP_NONE at once when
 * records or CQEs already wait, ZC_SLEEP_OWN when a CQE of the ring's own
 * requests ended the sleep, ZC_SLEEP_LOOP when only the loop's epoll fd,
 * the timeout or a signal did (what woke the loop was not the ring's: the
 * caller's measure of whether sleeping here pays), or -errno.  The records
 * are for zc_reap(). */
#define ZC_SLEEP_NONE 0
#define ZC_SLEEP_OWN 1
#define ZC_SLEEP_LOOP 2
ZC_API int zc_ring_sleep(struct zc_ring *r, int epfd, int timeout_ms);
/* io_uring_params.features of this ring */
ZC_API uint32_t zc_ring_features(const struct zc_ring *r);
/* 1 when sends use the kernel's single-CQE mode, 0 when merged here */
ZC_API int zc_ring_unified_native(const struct zc_ring *r);
/* 1 when zc_sendv_fixed() works on this ring's kernel (>= 6.15) */
ZC_API int zc_ring_sendv_fixed(const struct zc_ring *r);
/* 1: the ring fd is registered (ZC_RING_REGISTERED_FD); 0: not asked;
 * -errno: the kernel refused (-EBUSY: this thread holds 16 registered ring
 * fds already, the kernel's limit), so the ring runs on its plain fd. */
ZC_API int zc_ring_registered_fd(const struct zc_ring *r);
/* requests submitted or queued whose record was not yet reaped */
ZC_API uint32_t zc_ring_pending(const struct zc_ring *r);
/* requests this ring tracks at once (max_requests, or its default):
 * zc_ring_pending() never exceeds it; past it requests get -EAGAIN */
ZC_API uint32_t zc_ring_max_requests(const struct zc_ring *r);

/* ------------------------------------------------------------ records */

enum zc_op {
	ZC_OP_NOP = 0,
	ZC_OP_SOCKET,
	ZC_OP_BIND,
	ZC_OP_LISTEN,
	ZC_OP_ACCEPT,
	ZC_OP_CONNECT,
	ZC_OP_SHUTDOWN,
	ZC_OP_CLOSE,
	ZC_OP_SEND,		/* plain copying send / sendmsg */
	ZC_OP_SEND_ZC,		/* SEND_ZC, optionally from a fixed buffer */
	ZC_OP_SENDMSG_ZC,
	ZC_OP_RECV,		/* receive path (recv.c) */
	ZC_OP_SENDFILE,		/* file range to a stream socket (sendfile.c) */
	ZC_OP_RECV_BUF,		/* one recv into caller memory (sockops.c) */
	ZC_OP__COUNT,
};

enum zc_completion_flags {
	/*
	 * Usage (IORING_SEND_ZC_REPORT_USAGE): only where libzc merges the
	 * two CQEs; the kernel's single CQE cannot carry it (neither is set).
	 */
	ZC_COMP_ZC_USED		= 1u << 0,	/* sent without a copy */
	ZC_COMP_ZC_COPIED	= 1u << 1,	/* kernel fell back to copying */
	ZC_COMP_NATIVE		= 1u << 2,	/* kernel posted one CQE */
	ZC_COMP_MORE		= 1u << 3,	/* more records follow (multishot) */
};

/*
 * One per request.  32 bytes; layout checked against ts/ffi by a test.
 *
 * Sends (ZC_OP_SEND, ZC_OP_SEND_ZC, ZC_OP_SENDMSG_ZC): res >= 0 means the
 * whole length left (res is that length, or INT32_MAX when it does not fit:
 * read aux); res < 0 is the -errno of a send that did NOT leave whole (cut
 * by an error, a peer reset, zc_sock_abort(), zc_cancel_all() or a ring
 * teardown).  Either way aux is the exact number of bytes the kernel took.
 */
struct zc_completion {
	uint64_t user_data;
	int32_t	 res;		/* bytes, fd or 0; -errno on failure */
	uint32_t flags;		/* enum zc_completion_flags */
	uint64_t aux;		/* op specific (send: bytes sent; receive: area offset) */
	uint16_t op;		/* enum zc_op */
	uint16_t cqes;		/* kernel CQEs merged into this record */
	uint32_t aux2;		/* op specific (receive: buffer id) */
};

/* Submit what is queued: one io_uring_enter for any number of requests.
 * Returns the number of SQEs handed to the kernel. */
ZC_API int zc_submit(struct zc_ring *r);
/* Never blocks: submits, runs deferred task work, merges CQEs and copies
 * up to max finished records to out.  Returns how many it copied. */
ZC_API int zc_reap(struct zc_ring *r, struct zc_completion *out, uint32_t max);
/* zc_reap() without clearing the eventfd: for the submit-and-reap a caller
 * does on its own (end of a tick), saving a read(2) per call.  The eventfd
 * may then wake its watcher once more for nothing; zc_reap() clears it. */
ZC_API int zc_flush(struct zc_ring *r, struct zc_completion *out, uint32_t max);
/* Like zc_reap() but first waits until at least min records are ready or
 * timeout_ms passed (-1: no limit).  For C programs and tests. */
ZC_API int zc_wait(struct zc_ring *r, struct zc_completion *out, uint32_t max,
		   uint32_t min, int timeout_ms);
/* Cancel everything in flight or queued; each still gets its record. */
ZC_API int zc_cancel_all(struct zc_ring *r);

/* --------------------------------------------------------- socket ops */

/* Each queues one SQE; the result is the record's res (fd for socket and
 * accept).  addr is copied, the caller need not keep it. */
ZC_API int zc_socket(struct zc_ring *r, int domain, int type, int protocol,
		     uint64_t user_data);
ZC_API int zc_bind(struct zc_ring *r, int fd, const void *addr,
		   uint32_t addrlen, uint64_t user_data);
ZC_API int zc_listen(struct zc_ring *r, int fd, int backlog,
		     uint64_t user_data);
ZC_API int zc_accept(struct zc_ring *r, int fd, uint64_t user_data);
/*
 * Multishot accept (Linux >= 5.19): one request for many connections.
 * Each connection is one record with ZC_COMP_MORE set (res = the new fd);
 * the request ends with one record without ZC_COMP_MORE: -errno when the
 * kernel ended it (an error such as -EMFILE, -ECANCELED after zc_close() of
 * the listener or a cancel), or a last fd.  Re-issue it after such an end
 * to keep accepting.
 */
ZC_API int zc_accept_multishot(struct zc_ring *r, int fd, uint64_t user_data);
/*
 * One recv(2) of up to len bytes into buf (caller memory, valid until the
 * record): res = bytes received, 0 at end of stream, -errno.  The plain
 * alternative to the receive areas below: the kernel copies straight into
 * the caller's buffer, and nothing is received while none is in flight.
 */
ZC_API int zc_recv_buf(struct zc_ring *r, int fd, void *buf, uint32_t len,
		       uint64_t user_data);
ZC_API int zc_connect(struct zc_ring *r, int fd, const void *addr,
		      uint32_t addrlen, uint64_t user_data);
ZC_API int zc_shutdown(struct zc_ring *r, int fd, int how,
		       uint64_t user_data);
/*
 * Closes fd through the ring after the sends queued on it were issued.
 * From this call on, sends and shutdowns of fd fail at once with
 * -ECANCELED (another close: -EALREADY): they are never issued against the
 * number, which the kernel hands to the next socket once the close ran.  The number is usable again
 * after the close's record was reaped, after zc_socket()/zc_accept() gave it
 * out, or after zc_sock_opened().  An accept in flight on fd ends with
 * -ECANCELED.
 */
ZC_API int zc_close(struct zc_ring *r, int fd, uint64_t user_data);
/* The caller gives up on fd (an abortive close): its queued sends finish
 * with -ECANCELED now, later sends fail at once with -ECANCELED, and a
 * following zc_close()/zc_shutdown() is issued at once instead of after
 * the sends in flight.  Needed with the kernel's unified sends: their CQE
 * waits for the buffers, which a reset frees. */
ZC_API int zc_sock_abort(struct zc_ring *r, int fd);
/* Forget what libzc knows about fd (caller closes it another way);
 * -EBUSY while sends of fd are queued or in flight.  A busy datagram
 * socket's zero-copy sends name it through the ring's registered-file
 * table, which holds the socket open: call this before close(2) (or close
 * with zc_close()) so the socket is released when it is closed; one
 * closed without either stays open until this call or the ring's end. */
ZC_API int zc_sock_forget(struct zc_ring *r, int fd);
/* fd was just opened outside libzc (socketpair(), accept4(), ...): drop
 * what libzc remembers of an earlier file with that number.  Its requests
 * still queued end with -ECANCELED; those in flight finish on their own
 * without touching the new file's state. */
ZC_API int zc_sock_opened(struct zc_ring *r, int fd);

/* --------------------------------------------------------------- sends */

enum zc_send_flags {
	ZC_SEND_ZEROCOPY	= 1u << 0,	/* SEND_ZC / SENDMSG_ZC */
	ZC_SEND_MORE		= 1u << 1,	/* MSG_MORE */
	ZC_SEND_NO_REPORT	= 1u << 2,	/* skip REPORT_USAGE (native: never) */
};

/*
 * Sends on a stream socket are issued in the order they were queued,
 * whatever the batch size or number in flight, and a record reports the
 * whole length: a short send is resubmitted for the rest first, and one
 * larger than the kernel takes per call (ZC_SQE_MAX_BYTES) goes out in
 * pieces, in order.  A send that could not go whole fails (see struct
 * zc_completion).  Returns -EAGAIN when max_requests are in flight: reap,
 * then retry; -ECANCELED after zc_close() of fd.
 */
ZC_API int zc_send(struct zc_ring *r, int fd, const void *buf, uint64_t len,
		   uint32_t flags, uint64_t user_data);

/* Most bytes one send SQE carries (the kernel's MAX_RW_COUNT). */
#define ZC_SQE_MAX_BYTES 0x7ffff000u

struct zc_pool;

/* Send len bytes at off inside buffer buf of a registered pool.  With
 * ZC_SEND_ZEROCOPY this is SEND_ZC from the fixed buffer (no pinning per
 * send); the buffer is held until the record is reaped.  -EXDEV: the pool
 * belongs to another ring. */
ZC_API int zc_send_fixed(struct zc_ring *r, int fd, struct zc_pool *pool,
			 uint32_t buf, uint32_t off, uint32_t len,
			 uint32_t flags, uint64_t user_data);

#define ZC_MAX_IOV 16

/* A byte range of one buffer of a pool. */
struct zc_span {
	uint32_t buf;		/* buffer index in the pool */
	uint32_t off;		/* offset in that buffer */
	uint32_t len;		/* bytes, off + len <= pool buffer size */
	uint32_t reserved;	/* must be zero */
};

/*
 * One zero-copy SENDMSG_ZC from several pool buffers (IORING_RECVSEND_FIXED_BUF,
 * no pinning per send): one request, one kernel send, one record for all of
 * them, and every listed buffer held until that record.  The spans must lie
 * in one registered region of the pool (zc_pool_region_buffers()); at most
 * ZC_MAX_IOV of them.  flags must include ZC_SEND_ZEROCOPY.  -EOPNOTSUPP
 * when the kernel cannot send vectors of registered buffers (< 6.15,
 * ZC_CAP_SENDMSG_ZC_FIXED).
 */
ZC_API int zc_sendv_fixed(struct zc_ring *r, int fd, struct zc_pool *pool,
			  const struct zc_span *spans, uint32_t n,
			  uint32_t flags, uint64_t user_data);

/* sendmsg with iovecs (copied, at most ZC_MAX_IOV) and an optional
 * destination address (UDP).  iov memory must stay valid until the record.
 * Memory of this ring's pools an iovec points into is held (their
 * zc_pool_destroy() fails with -EBUSY) until the record.  Pool memory must
 * only be sent on the pool's own ring: another ring cannot hold it. */
ZC_API int zc_sendmsg(struct zc_ring *r, int fd, const struct iovec *iov,
		      uint32_t iovcnt, const void *addr, uint32_t addrlen,
		      uint32_t flags, uint64_t user_data);

/* ------------------------------------------------------------ sendfile */

/*
 * zc_sendfile(): len bytes of regular file filefd from offset off to stream
 * socket sockfd, without the bytes passing through user memory.  One record
 * per transfer (op ZC_OP_SENDFILE), shaped like a send's: res = the bytes
 * (at most INT32_MAX) when all len bytes were sent, else -errno; aux = the
 * bytes sent either way (64-bit: ranges and files over 4 GiB); aux2 = enum zc_sendfile_path of the path used, or'ed with the
 * ZC_SENDFILE_FELL_BACK_* bits.  The record comes when the last byte was
 * handed to the socket: it does not wait for the peer's acks, so on the
 * read path the ZC_COMP_ZC_* flags tell of the notifications in by then,
 * and staging buffers the kernel still holds return to the ring later
 * (zc_sendfile_stats().releasing).
 *
 * Order: the transfer is queued with the socket's sends.  Sends queued
 * before it reach the peer before its first byte; sends queued after it,
 * after its last.  While it runs it owns the socket's queue.
 *
 * Two ways through the kernel (figures in docs/PERFORMANCE.md):
 *  splice  IORING_OP_SPLICE file -> pipe linked to pipe -> socket: the
 *          pipe holds references to the page-cache pages and the socket
 *          sends those pages (no copy on the sending side, like
 *          sendfile(2)).  Pipes are pooled per ring.  The default.
 *  read    IORING_OP_READ_FIXED into registered staging buffers of the
 *          ring, each sent with SEND_ZC from that buffer while the next
 *          ones are read (one copy: page cache -> buffer), optionally with
 *          O_DIRECT (ZC_SENDFILE_DIRECT: no page cache; reads are aligned
 *          to the file's STATX_DIOALIGN).  Used where a file refuses
 *          splice (-EINVAL from the kernel) unless ZC_SENDFILE_SPLICE.
 *          A file refusing O_DIRECT is read buffered.  Both fallbacks
 *          show in the record (aux2) and in zc_sendfile_stats().
 *
 * The range must lie inside the file when called: off + len > size is
 * -ERANGE from the call and nothing is queued.  A file that shrinks
 * while being sent ends the transfer with -ENODATA and the bytes sent so
 * far (it never waits for data).  len 0 gives a record with 0 bytes.
 * filefd and sockfd must stay open until the record.  Errors from the
 * call: -EINVAL (flags, not a regular file, not a stream socket),
 * -EBADF, -ERANGE, -EAGAIN (max_requests in flight: reap, retry).
 * Errors in the record: the socket's (-EPIPE, -ECONNRESET...), the
 * file's (-EIO, -ENODATA), -ECANCELED (zc_sendfile_cancel(),
 * zc_sock_abort(), zc_cancel_all()), -ENOMEM / -EMFILE (pipes, staging
 * buffers).  After a failed transfer the peer has received exactly aux
 * bytes of the range; the stream is then usually best closed.
 * Cancelling or aborting releases every pipe and page reference.
 */
enum zc_sendfile_flags {
	ZC_SENDFILE_SPLICE	= 1u << 0,	/* splice only: fail where refused */
	ZC_SENDFILE_READ	= 1u << 1,	/* read path, page cache */
	ZC_SENDFILE_DIRECT	= 1u << 2,	/* read path, O_DIRECT where it works */
	ZC_SENDFILE_MORE	= 1u << 3,	/* more follows: MSG_MORE on the end */
	ZC_SENDFILE_COPY	= 1u << 4,	/* read path: plain send, not SEND_ZC */
};

enum zc_sendfile_path {
	ZC_SENDFILE_PATH_SPLICE	= 1,
	ZC_SENDFILE_PATH_READ	= 2,
	ZC_SENDFILE_PATH_DIRECT	= 3,
	ZC_SENDFILE_PATH_MASK	= 0xff,
	/* record aux2 bits: what was refused on the way */
	ZC_SENDFILE_FELL_BACK_SPLICE	= 1u << 8,	/* splice -> read */
	ZC_SENDFILE_FELL_BACK_DIRECT	= 1u << 9,	/* O_DIRECT -> page cache */
};

ZC_API int zc_sendfile(struct zc_ring *r, int sockfd, int filefd,
		       uint64_t off, uint64_t len, uint32_t flags,
		       uint64_t user_data);
/* End the transfers tagged user_data: queued ones at once, running ones
 * after their requests in the kernel were cancelled; each record has
 * -ECANCELED and the bytes sent.  Returns how many, -ENOENT if none. */
ZC_API int zc_sendfile_cancel(struct zc_ring *r, uint64_t user_data);

struct zc_sendfile_config {
	uint32_t pipe_size;	/* bytes per pipe (F_SETPIPE_SZ), 0: default */
	uint32_t splice_depth;	/* file->pipe->socket rounds linked in one
				 * submission, 1..ZC_SENDFILE_MAX_DEPTH */
	uint32_t buf_size;	/* read path: staging buffer bytes (page multiple) */
	uint32_t buf_count;	/* read path: staging buffers of the ring */
	uint32_t read_depth;	/* read path: buffers one transfer keeps busy,
				 * 1..ZC_SENDFILE_MAX_DEPTH */
	uint32_t idle_pipes;	/* pipes kept open for reuse */
	uint32_t reserved[2];	/* must be zero */
};

#define ZC_SENDFILE_MAX_DEPTH 16
#define ZC_SENDFILE_DEFAULT_PIPE (1u << 20)
#define ZC_SENDFILE_DEFAULT_SPLICE_DEPTH 4
#define ZC_SENDFILE_DEFAULT_BUF (256u << 10)
#define ZC_SENDFILE_DEFAULT_BUFS 32
#define ZC_SENDFILE_DEFAULT_READ_DEPTH 4
#define ZC_SENDFILE_DEFAULT_IDLE_PIPES 32

/* Set the ring's sendfile parameters (0 fields: defaults).  -EBUSY while
 * transfers run; idle pipes and staging buffers are dropped. */
ZC_API int zc_sendfile_configure(struct zc_ring *r,
				 const struct zc_sendfile_config *cfg);

struct zc_sendfile_stats {
	uint64_t transfers;		/* records emitted */
	uint64_t bytes_splice;		/* bytes sent per path */
	uint64_t bytes_read;
	uint64_t bytes_direct;
	uint64_t splice_refused;	/* transfers that fell back to read */
	uint64_t direct_refused;	/* transfers that fell back to buffered */
	uint32_t active;		/* transfers running now */
	uint32_t pipes;			/* pipes open now (in use + idle) */
	uint32_t pipes_idle;
	uint32_t pipe_size;		/* bytes per pipe the kernel gave */
	uint32_t bufs;			/* staging buffers (0 until the read path ran) */
	uint32_t bufs_free;
	uint32_t releasing;		/* transfers whose record is out but whose
					 * staging buffers the kernel still holds */
	uint32_t reserved;
};

ZC_API int zc_sendfile_stats(const struct zc_ring *r,
			     struct zc_sendfile_stats *out);

/* ------------------------------------------------------ batched requests */

/*
 * Requests described in memory, for bindings where each call into C costs
 * more than the work it starts (a JavaScript FFI call per send): fill an
 * array of struct zc_batch_op, then one zc_flush_batch() queues them all,
 * submits and reaps.  Each kind is exactly the call it names: same
 * arguments, same results, same records.
 */
enum zc_batch_kind {
	ZC_BATCH_SEND		= 1,	/* zc_send(fd, addr, len, flags) */
	ZC_BATCH_SEND_FIXED	= 2,	/* zc_send_fixed(fd, pool, buf, off, len, flags) */
	ZC_BATCH_SENDMSG	= 3,	/* zc_sendmsg(fd, iov = addr, n, dest, dest_len, flags) */
	ZC_BATCH_SENDV_FIXED	= 4,	/* zc_sendv_fixed(fd, pool, spans = addr, n, flags) */
	ZC_BATCH_RX_RELEASE	= 5,	/* zc_rx_release_many(rx, offs = addr, n): no record,
					 * rcs = its result; -EXDEV: rx of another ring */
};

/* One request; addresses as 64-bit integers.  72 bytes. */
struct zc_batch_op {
	uint32_t kind;		/* enum zc_batch_kind */
	int32_t	 fd;
	uint64_t user_data;
	uint64_t addr;		/* SEND: the data; SENDMSG: iovecs; SENDV_FIXED: spans;
				 * RX_RELEASE: uint64_t chunk offsets (records' aux) */
	uint64_t len;		/* SEND, SEND_FIXED: bytes */
	union {
		uint64_t pool;	/* SEND_FIXED, SENDV_FIXED: struct zc_pool * */
		uint64_t rx;	/* RX_RELEASE: struct zc_rx * */
	};
	uint64_t dest;		/* SENDMSG: destination sockaddr, 0: none */
	uint32_t flags;		/* enum zc_send_flags */
	uint32_t n;		/* SENDMSG: iovecs; SENDV_FIXED: spans; RX_RELEASE: offsets */
	uint32_t buf;		/* SEND_FIXED: buffer index */
	uint32_t off;		/* SEND_FIXED: offset in that buffer */
	uint32_t dest_len;	/* SENDMSG: destination length */
	uint32_t reserved;	/* must be zero */
};

/*
 * Queue ops[0..n) in order, then do what zc_flush() does (submit, reap up
 * to max records into out; max 0 leaves them for a later reap).  rcs[i]
 * gets what the call named by ops[i].kind returned: 0 (RX_RELEASE: the
 * count released), or -errno with nothing queued for it (-EINVAL for an
 * unknown kind).  At the first
 * -EAGAIN or -EBUSY (max_requests in flight) the requests after it are not
 * tried and get that code too: queue them again after reaping; stream
 * order holds.  RX_RELEASE descriptors take no request and always run.
 * Iovecs, spans and destinations are read during the call only.  Returns
 * the records copied, or -errno from the ring (rcs filled either way).
 */
ZC_API int zc_flush_batch(struct zc_ring *r, const struct zc_batch_op *ops,
			  uint32_t n, int32_t *rcs, struct zc_completion *out,
			  uint32_t max);

/* ---------------------------------------------------------- buffer pools */

enum zc_pool_flags {
	ZC_POOL_HUGE		= 1u << 0,	/* MAP_HUGETLB; fails if none */
	/* zc_pool_destroy() leaves fresh zero pages at the pool's addresses
	 * instead of unmapping them: views of the memory kept elsewhere (a
	 * JavaScript Uint8Array) read zeros (writes land in private pages)
	 * instead of faulting, and no later mapping reuses the range.  The
	 * caller munmap()s base, count * size once no view is left. */
	ZC_POOL_RETIRE		= 1u << 1,
};

struct zc_pool_config {
	uint32_t count;		/* buffers, 1..ZC_POOL_MAX_BUFFERS */
	uint32_t size;		/* bytes each, page multiple, at most 1 GiB */
	uint32_t flags;		/* enum zc_pool_flags */
	uint32_t reserved;	/* must be zero */
};

#define ZC_POOL_MAX_BUFFERS 65536
/* The kernel's limit for one registered buffer: a pool buffer's largest size,
 * and the most one registered region of a pool spans. */
#define ZC_REGION_MAX (1u << 30)

/* mmap count * size bytes and register them as fixed buffers: pinned once
 * here, never per send.  The pool takes one fixed-buffer slot per region
 * of up to 1 GiB of whole buffers (-ENOSPC: no free run of slots).
 * -ENOMEM usually means RLIMIT_MEMLOCK. */
ZC_API int zc_pool_create(struct zc_ring *r, const struct zc_pool_config *cfg,
			  struct zc_pool **out);
/* -EBUSY while the kernel holds any of its buffers.  zc_ring_destroy()
 * destroys the pools left; if the kernel still held buffers when its wait
 * ran out, their memory is left mapped as zero pages (never unmapped). */
ZC_API int zc_pool_destroy(struct zc_pool *p);
ZC_API void *zc_pool_base(const struct zc_pool *p);	/* buffer i at base + i * size */
ZC_API uint32_t zc_pool_inflight(const struct zc_pool *p);	/* sends holding buffers */
ZC_API uint32_t zc_pool_buf_inflight(const struct zc_pool *p, uint32_t buf);
/* Buffers per registered region: buffers i and j share one if
 * i / n == j / n (what zc_sendv_fixed() needs). */
ZC_API uint32_t zc_pool_region_buffers(const struct zc_pool *p);

/* --------------------------------------------------------------- probe */

enum zc_caps {
	ZC_CAP_IO_URING		= 1u << 0,	/* io_uring_setup works */
	ZC_CAP_SEND_ZC		= 1u << 1,
	ZC_CAP_SENDMSG_ZC	= 1u << 2,
	ZC_CAP_SEND_ZC_FIXED	= 1u << 3,	/* registered buffers */
	ZC_CAP_REPORT_USAGE	= 1u << 4,
	ZC_CAP_SEND_VECTORIZED	= 1u << 5,
	ZC_CAP_DEFER_TASKRUN	= 1u << 6,
	ZC_CAP_OP_BIND_LISTEN	= 1u << 7,
	ZC_CAP_OP_SOCKET	= 1u << 8,
	ZC_CAP_RECV_ZC		= 1u << 9,	/* IORING_OP_RECV_ZC known */
	ZC_CAP_ZCRX_NODEV	= 1u << 10,	/* ZCRX_REG_NODEV accepted */
	ZC_CAP_SEND_ZC_SINGLE_CQE = 1u << 11,	/* IORING_SEND_ZC_SINGLE_CQE */
	ZC_CAP_BUFRING		= 1u << 12,	/* provided-buffer rings */
	ZC_CAP_RECV_MULTISHOT	= 1u << 13,
	ZC_CAP_SENDMSG_ZC_FIXED	= 1u << 14,	/* vectors of registered buffers (6.15) */
};

struct zc_probe {
	uint32_t caps;			/* enum zc_caps */
	int32_t	 setup_errno;		/* io_uring_setup failure, 0 if ok */
	uint32_t features;		/* io_uring_params.features */
	int32_t	 io_uring_disabled;	/* kernel.io_uring_disabled, -1 unknown */
	uint64_t memlock_cur;		/* RLIMIT_MEMLOCK, UINT64_MAX = unlimited */
	uint64_t memlock_max;
	uint32_t liburing_major;	/* liburing we run against */
	uint32_t liburing_minor;
	uint32_t page_size;
	uint32_t last_op;		/* IORING_OP_LAST of the kernel */
	char	 kernel_release[65];
	char	 reserved[63];
};

ZC_API int zc_probe(struct zc_probe *out);
ZC_API const char *zc_version(void);

/* ------------------------------------------------------------- receive */

/*
 * Receive into memory registered once: a receive area ("rx") is created on
 * a ring and any number of stream sockets receive into it with zc_recv(),
 * one multishot request per socket.  Every chunk the kernel fills becomes
 * one record of that request: op ZC_OP_RECV, flags ZC_COMP_MORE, res = its
 * length, aux = its byte offset in the area (zc_rx_base() + aux), aux2 =
 * its buffer index.  The chunk is the caller's until zc_rx_release() gives
 * it back to the kernel (buffer ring / zcrx refill ring).  The request
 * ends with one record without ZC_COMP_MORE: res 0 at end of stream,
 * -errno on error (-ECONNRESET ...), -ECANCELED after zc_recv_cancel() or
 * zc_cancel_all().  When the area runs dry the kernel ends the multishot
 * receive (-ENOBUFS / -ENOMEM); libzc re-arms it once chunks are released,
 * so holding chunks is backpressure: nothing is lost, repeated or
 * reordered.  A chunk never spans two buffers (<= zc_rx_info.buf_size).
 *
 * Backpressure is per receive: a receive whose chunks the caller holds up
 * to its quota (recv_quota; by default buffers / (receives + 1), at least
 * 2, which keeps a share free for the next receive) is paused until chunks
 * come back, so one slow reader stalls its own socket, never the others
 * sharing the area.  Each arming carries a byte limit (the room left under
 * the quota) where the kernel has one; elsewhere a few chunks more may
 * arrive while the pause takes effect.  More receives than half the
 * buffers overcommit the area: size area_size for the connections.
 */
enum zc_rx_mode {
	ZC_RX_AUTO		= 0,	/* zcrx if ifname names a usable queue, else bufring */
	ZC_RX_BUFRING		= 1,	/* multishot recv + provided-buffer ring (one copy) */
	ZC_RX_ZCRX_NODEV	= 2,	/* zcrx without a NIC, kernel copies (>= 7.1) */
	ZC_RX_ZCRX		= 3,	/* zcrx on a hardware RX queue (header split) */
};

struct zc_rx_config {
	uint32_t mode;		/* enum zc_rx_mode */
	uint32_t buf_size;	/* bufring: bytes per buffer, page multiple, 0: 64 KiB;
				 * zcrx: rx_buf_len (power of two), 0: page size;
				 * zcrx-nodev: page size only (else -EOPNOTSUPP) */
	uint64_t area_size;	/* bytes, multiple of buf_size; 0: 16 MiB */
	uint32_t ring_entries;	/* zcrx refill ring entries, power of two, 0: one per
				 * buffer; bufring: >= buffers, 0: derived */
	uint32_t rxq;		/* zcrx: RX queue index */
	char	 ifname[16];	/* zcrx: interface name, "" otherwise */
	uint32_t recv_quota;	/* chunks one receive may hold before it is
				 * paused; 0: buffers / (receives + 1) */
	uint32_t reserved[3];	/* must be zero */
};

struct zc_rx_info {
	uint32_t mode;		/* enum zc_rx_mode in use (never AUTO) */
	uint32_t buf_size;	/* bytes per buffer: the largest chunk */
	uint32_t buf_count;
	uint32_t ring_entries;
	uint64_t area_size;
	int32_t	 zcrx_errno;	/* AUTO: why zcrx was not used, 0 if not tried */
	uint32_t zcrx_id;	/* zcrx modes: ifq id */
	int32_t	 bgid;		/* bufring: buffer group id, else -1 */
	uint32_t held;		/* chunks handed out and not released */
	uint32_t active;	/* receive requests on this area */
	uint32_t paused;	/* of them, paused now: they hold their quota */
	uint64_t bytes;		/* received in total */
	uint64_t chunks;
	uint64_t rearms;	/* receives re-armed after buffers ran out */
	uint64_t flushes;	/* ZCRX_CTRL_FLUSH_RQ calls (zcrx modes) */
	uint32_t quota;		/* chunks one receive may hold now */
	uint32_t reserved;
	uint64_t pauses;	/* receives paused for their quota, in total */
};

struct zc_rx;

/* mmap + register the area.  Errors: -EINVAL bad config, or a zcrx mode
 * on a ring without ZC_RING_DEFER_TASKRUN | ZC_RING_CQE32; -EPERM zcrx
 * without CAP_NET_ADMIN; -EOPNOTSUPP kernel without RECV_ZC (< 6.15) or
 * ZCRX_REG_NODEV (< 7.1), or a queue/driver without zcrx support; -EINVAL
 * from the NIC: header split off / hds-thresh set; -EEXIST queue already
 * bound (or XDP attached); -ERANGE no such queue; -ENODEV no interface;
 * -ENOMEM pinning (RLIMIT_MEMLOCK). */
ZC_API int zc_rx_create(struct zc_ring *r, const struct zc_rx_config *cfg,
			struct zc_rx **out);
/* -EBUSY while receives use it.  A bufring area is unregistered at once;
 * a zcrx ifq lives until the ring is destroyed (the kernel has no
 * per-ifq unregister) and is freed then.  Chunks still held are
 * invalidated: their memory reads as zeros from then on. */
ZC_API int zc_rx_destroy(struct zc_rx *rx);
ZC_API void *zc_rx_base(const struct zc_rx *rx);
ZC_API int zc_rx_info(const struct zc_rx *rx, struct zc_rx_info *out);

/* Start receiving on connected stream socket fd (zcrx modes: TCP only,
 * else -EPROTONOSUPPORT).  Records carry user_data.  One per socket:
 * -EBUSY while fd has a receive that was not stopped. */
ZC_API int zc_recv(struct zc_ring *r, struct zc_rx *rx, int fd,
		   uint64_t user_data);
/* End the receive on fd: its last record comes with -ECANCELED (or 0 if
 * the stream ended first).  -ENOENT if none.  zc_close() does this too. */
ZC_API int zc_recv_cancel(struct zc_ring *r, int fd);
/* Give chunks back by their record's aux.  Re-arms receives waiting for
 * buffers.  Returns how many were released, -EINVAL if any offset was not
 * a held chunk (the valid ones are still released). */
ZC_API int zc_rx_release_many(struct zc_rx *rx, const uint64_t *offs,
			      uint32_t n);
ZC_API int zc_rx_release(struct zc_rx *rx, uint64_t off);
/* zcrx: make the kernel take the refill ring now (done by itself when
 * the ring fills or buffers run out). */
ZC_API int zc_rx_flush(struct zc_rx *rx);

#ifdef __cplusplus
}
#endif

#endif /* LIBZC_H */
