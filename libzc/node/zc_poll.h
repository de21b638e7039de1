/* SPDX-License-Identifier: MIT */
/*
 * zc_poll.node: a ring's watcher on Node's own event loop (it polls the
 * ring fd, or the ring's eventfd under DEFER_TASKRUN: Ring#watchedFd) that
 * reaps in C and enters JavaScript once per wakeup, inside a callback scope.
 *
 * The JS path it replaces (ts/ffi/libzc.ts watchReadable) is a koffi poll
 * handle: koffi calls a JS function with no callback scope, that function
 * makes a koffi call to zc_reap(), and a setImmediate() then has Node drain
 * the microtasks the records' handlers queued.  Here the uv_poll_t calls
 * zc_reap() itself, then napi_make_callback(cb, n): Node runs the nextTicks
 * and microtasks when the callback returns, as for its own I/O.
 *
 * JS API (ts/ffi/poll.ts), with the file each call is in:
 *   watch(fd, reapFn, ring, out, max, cb, destroyFn) -> handle   cb(n) after
 *       n = reapFn(ring, out, max) (zc_reap's address, the ring, the records
 *       buffer; n < 0 is -errno); the handle starts referenced  (watcher.c;
 *       the wakeup and cb: deliver.c)
 *   ref(handle), unref(handle), stop(handle), close(handle)  (watcher.c)
 *   own(handle, fd), disown(handle, fd)   the ring's sockets  (own.c)
 *   flusher(handle, flushBatchFn, ops, rcs) -> flushBatch(n, max)  a
 *       direct Node-API call of zc_flush_batch for the ring's tick  (flush.c)
 *   sleepIn(handle, sleepFn, adaptive), sleepOut(handle), sleepState(handle),
 *   sleepIdle(handle) -> true | why not
 *       the loop sleeps in the ring (RingOptions.loopWait)  (sleep.c)
 *   doorbell(handle, fd, direct) -> bool   fd (a socket of the ring with a
 *       receive in flight) wakes the loop while it sleeps in epoll, with an
 *       event: direct, by a poll handle of its own in libuv's epoll set
 *       (direct.c), else as a member of the watcher's epoll set (bell.c);
 *       bellOff(handle, fd) closes fd's own handle (its receive is over or
 *       its fd about to close); bells(handle) -> [wakeups by either, those
 *       that found no record, wakeups of the ring fd that delivered
 *       records]  (doorbell.c); directs(handle) -> [own handles open,
 *       polled, libuv's epoll fd]  (direct.c)
 *   due(handle) -> whether a turn of the loop has work now  (sleep.c)
 *   view(addr, len) -> ArrayBuffer over len bytes of native memory at addr
 *       (a bigint or number; libzc's pools and receive areas; len an
 *       integer number, 4 GiB and more too), no copy;
 *       the memory must outlive every view (libzc retires, never unmaps,
 *       what JS may still see)  (view.c)
 * close() is final and may be called from inside cb; a handle dropped
 * without close() is closed by its finalizer or at the environment's exit,
 * which also destroys the ring and closes the fds given with own()
 * (watcher.c).  A handle is an object type-tagged by this addon: anything
 * else given to ref/unref/stop/close is a TypeError, never dereferenced
 * (handle.c).  loop_idle.c counts the sleep in the ring as libuv's idle
 * time.
 *
 * Not linked against libzc: the caller hands in zc_reap's address (koffi has
 * it), so the addon needs nothing from libc's dynamic loader either.
 *
 * This header is what the addon's files share: struct watcher and the few
 * calls between them (hidden: the addon exports only its Node-API entry
 * points).
 */
#ifndef ZC_NODE_ZC_POLL_H
#define ZC_NODE_ZC_POLL_H

#include "napi.h"
#include "loop_idle.h"

struct zc_batch_op; /* libzc.h */
struct direct;	    /* direct.c */

typedef int (*reap_fn)(void *ring, void *out, uint32_t max);
typedef void (*destroy_fn)(void *ring, int timeout_ms);
typedef int (*sleep_fn)(void *ring, int epfd, int timeout_ms);
typedef int (*flush_batch_fn)(void *ring, const struct zc_batch_op *ops, uint32_t n, int32_t *rcs, void *out,
			      uint32_t max);

struct watcher {
	napi_env env;
	uv_poll_t *poll; /* freed by its close callback */
	napi_ref cb;
	napi_ref resource; /* the async resource, also the callback's receiver */
	napi_async_context actx;
	reap_fn reap;
	destroy_fn destroy;
	void *ring;
	void *out;
	uint32_t max;
	bool closed;
	/* sleepIn(): the loop sleeps in the ring (prep, idle; NULL otherwise) */
	uv_handle_t *prep, *idle;
	sleep_fn sleep;
	struct uv_loop_s *loop;
	/* the sleep counted as libuv's idle time; why not (NULL: it is) */
	struct zc_loop_idle idle_time;
	const char *idle_why_not;
	/*
	 * sleepIn(.., adaptive): only while the loop's recent wakeups were the
	 * ring's (in_ring; in epoll otherwise, the ring fd polled as without
	 * sleepIn).  Per window of AUTO_WINDOW wakeups (sleep.c), the foreign
	 * ones.
	 */
	bool adaptive, in_ring;
	bool blocked;	/* epoll: the turn's poll could block */
	bool ring_woke; /* epoll: on_readable ran in this turn */
	uint8_t turns, foreign;
	uint32_t switches;
	bool refed;
	/* own()ed fds, a bit per fd number; closed at the environment's exit */
	uint8_t *owned;
	size_t owned_len; /* bytes */
	/* flusher(): the batch's arrays, held by ops_ref and rcs_ref */
	flush_batch_fn flush_batch;
	const struct zc_batch_op *ops;
	int32_t *rcs;
	uint32_t ops_cap; /* descriptors ops and rcs both hold */
	napi_ref ops_ref, rcs_ref;
	/* the handle's wrap and the flushBatch function: freed at 0 */
	unsigned refs;
	/* doorbell(): an epoll set of the ring's receiving sockets (bell_fd,
	 * -1 until the first) and its poll handle, started while the loop
	 * sleeps in epoll (!in_ring: zc_poll_doorbell_run()); bell_broken
	 * after an error */
	int bell_fd;
	uv_poll_t *bell;
	bool bell_broken;
	double bell_wakeups, bell_drains, ring_deliveries;
	/* doorbell(.., direct): a poll handle per receiving socket in libuv's
	 * own epoll (struct direct), by fd number (direct_len entries);
	 * direct_open of them, direct_on of those started (polled) */
	struct direct **direct;
	size_t direct_len;
	uint32_t direct_open, direct_on;
};

#pragma GCC visibility push(hidden)

/* handle.c: the handle JS holds, its owners, the uv handles' end */
extern const napi_type_tag zc_poll_tag;
struct watcher *zc_poll_unwrap(napi_env env, napi_value v);
struct watcher *zc_poll_arg_watcher(napi_env env, napi_callback_info info);
bool zc_poll_arg_number(napi_env env, napi_value v);
void zc_poll_put(struct watcher *w);
void zc_poll_closed(uv_handle_t *h);

/* deliver.c: records into JavaScript */
void zc_poll_on_readable(uv_poll_t *h, int status, int events);
void zc_poll_deliver(struct watcher *w, int32_t n);

/* sleep.c: where the loop sleeps */
void zc_poll_sleep_close(struct watcher *w);
napi_value zc_poll_js_sleep_in(napi_env env, napi_callback_info info);
napi_value zc_poll_js_sleep_idle(napi_env env, napi_callback_info info);
napi_value zc_poll_js_sleep_out(napi_env env, napi_callback_info info);
napi_value zc_poll_js_sleep_state(napi_env env, napi_callback_info info);
napi_value zc_poll_js_due(napi_env env, napi_callback_info info);

/* doorbell.c: the receiving sockets wake the loop's epoll; bell.c, direct.c */
void zc_poll_doorbell_run(struct watcher *w);
void zc_poll_doorbell_stop(struct watcher *w);
void zc_poll_doorbell_close(struct watcher *w);
napi_value zc_poll_js_doorbell(napi_env env, napi_callback_info info);
napi_value zc_poll_js_bell_off(napi_env env, napi_callback_info info);
napi_value zc_poll_js_bells(napi_env env, napi_callback_info info);
bool zc_poll_bell_add(struct watcher *w, int fd);
void zc_poll_bell_run(struct watcher *w);
void zc_poll_bell_stop(struct watcher *w);
void zc_poll_bell_close(struct watcher *w);
bool zc_poll_direct_add(struct watcher *w, int fd);
void zc_poll_direct_run(struct watcher *w);
void zc_poll_direct_stop_all(struct watcher *w);
void zc_poll_direct_close(struct watcher *w, int fd);
void zc_poll_direct_close_all(struct watcher *w);
napi_value zc_poll_js_directs(napi_env env, napi_callback_info info);

/* own.c: the ring's sockets, closed at the environment's exit */
void zc_poll_owned_release(struct watcher *w, bool close_fds);
napi_value zc_poll_js_own(napi_env env, napi_callback_info info);
napi_value zc_poll_js_disown(napi_env env, napi_callback_info info);

/* flush.c: flusher() */
napi_value zc_poll_js_flusher(napi_env env, napi_callback_info info);

/* view.c: view() */
napi_value zc_poll_js_view(napi_env env, napi_callback_info info);

#pragma GCC visibility pop

#endif
