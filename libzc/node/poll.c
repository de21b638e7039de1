// SPDX-License-Identifier: MIT
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
 * JS API (ts/ffi/poll.ts):
 *   watch(fd, reapFn, ring, out, max, cb, destroyFn) -> handle   cb(n) after
 *       n = reapFn(ring, out, max) (zc_reap's address, the ring, the records
 *       buffer; n < 0 is -errno); the handle starts referenced
 *   ref(handle), unref(handle), stop(handle), close(handle)
 *   own(handle, fd), disown(handle, fd)   the ring's sockets (below)
 *   flusher(handle, flushBatchFn, ops, rcs) -> flushBatch(n, max)
 *       a function bound to this watcher's ring and records buffer and to
 *       the batch's arrays (ops: a Uint8Array of struct zc_batch_op, rcs:
 *       an Int32Array; both kept alive, their capacity taken from their
 *       length): flushBatch(n, max) = flushBatchFn(ring, ops, n, rcs, out,
 *       max) (zc_flush_batch's address; n 0 is zc_flush()).  n above the
 *       arrays' capacity or max above the watch()'s is a RangeError, a
 *       closed handle an Error: nothing is called then.  A direct Node-API
 *       call of two numbers instead of koffi's generic one of six
 *       (docs/PERFORMANCE.md, Session 18 napi18).  The arrays must not be
 *       transferred (Ring's are private).
 *   sleepIn(handle, sleepFn, adaptive), sleepOut(handle), sleepState(handle),
 *   sleepIdle(handle) -> true | why not
 *       the loop sleeps in the ring (RingOptions.loopWait): below
 *   doorbell(handle, fd, direct) -> bool   fd (a socket of the ring with a
 *       receive in flight) wakes the loop while it sleeps in epoll, with an
 *       event: direct, by a poll handle of its own in libuv's epoll set
 *       (on_direct), else as a member of the watcher's epoll set (on_bell);
 *       bellOff(handle, fd) closes fd's own handle (its receive is over or
 *       its fd about to close); bells(handle) -> [wakeups by either, those
 *       that found no record, wakeups of the ring fd that delivered
 *       records]; directs(handle) -> [own handles open, polled, libuv's
 *       epoll fd]
 *   due(handle) -> whether a turn of the loop has work now (js_due)
 *   view(addr, len) -> ArrayBuffer over len bytes of native memory at addr
 *       (a bigint or number; libzc's pools and receive areas; len an
 *       integer number, 4 GiB and more too), no copy;
 *       the memory must outlive every view (libzc retires, never unmaps,
 *       what JS may still see)
 * close() is final and may be called from inside cb; a handle dropped
 * without close() is closed by its finalizer or at the environment's exit.
 * A handle is an object type-tagged by this addon: anything else given to
 * ref/unref/stop/close is a TypeError, never dereferenced.
 *
 * The environment's exit with the handle still open (a worker stopped by
 * terminate(), which runs no JavaScript at exit) also destroys the ring:
 * destroyFn(ring, 0) (zc_ring_destroy_timeout's address, 0: none).  The JS
 * side closes the handle before it destroys the ring itself, so an open
 * handle means a live ring and the ring is destroyed once.  The fds given
 * with own() and not taken back with disown() (the ring's sockets: JS
 * disowns an fd before it starts to close it, so an owned fd is open and
 * ours) are closed then too, after the ring.  disown() also closes the fd's
 * own doorbell handle (above).
 *
 * Not linked against libzc: the caller hands in zc_reap's address (koffi has
 * it), so the addon needs nothing from libc's dynamic loader either.
 */
#include "napi.h"
#include "loop_idle.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "../libzc.h" /* struct zc_batch_op: the ops array's element */

typedef int (*reap_fn)(void *ring, void *out, uint32_t max);
typedef void (*destroy_fn)(void *ring, int timeout_ms);
typedef int (*sleep_fn)(void *ring, int epfd, int timeout_ms);
typedef int (*flush_batch_fn)(void *ring, const struct zc_batch_op *ops, uint32_t n, int32_t *rcs, void *out,
			      uint32_t max);

/* Marks the handles watch() returns (random; any change is a new ABI). */
static const napi_type_tag watcher_tag = { 0x7a635f706f6c6c31ULL, 0x9e3779b97f4a7c15ULL };

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
	 * sleepIn).  Per window of AUTO_WINDOW wakeups, the foreign ones.
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
	 * sleeps in epoll (!in_ring: bell_run()); bell_broken after an error */
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

/* A receiving socket's own poll handle (doorbell(.., direct)). */
struct direct {
	uv_poll_t *h; /* h->data is this; both freed by its close callback */
	struct watcher *w;
	int fd;
	bool on; /* started: the fd is in libuv's epoll set (or will be at its next poll) */
	bool et; /* libuv's registration made edge-triggered (on_direct) */
};

/* Drop one of w's owners (the handle's finalizer, flushBatch's). */
static void put_watcher(struct watcher *w)
{
	if (--w->refs > 0)
		return;
	free(w->owned);
	free(w);
}

/*
 * The handle's close callback.  The addon is linked with -z nodelete: a
 * worker thread's environment dlclose()s it (when no other thread loaded
 * it) before its loop runs the last close callbacks, and without nodelete
 * this function would be unmapped by then.
 */
static void poll_closed(uv_handle_t *h)
{
	free(h);
}

static void on_env_exit(void *arg);
static void direct_close_all(struct watcher *w);

/* Stop and close the uv handle and drop the JS references; idempotent. */
static void release(struct watcher *w)
{
	if (w->closed)
		return;
	w->closed = true;
	uv_poll_stop(w->poll);
	uv_close(w->poll, poll_closed);
	if (w->prep) {
		uv_prepare_stop(w->prep);
		uv_idle_stop(w->idle);
		uv_close(w->prep, poll_closed);
		uv_close(w->idle, poll_closed);
		w->prep = w->idle = NULL;
	}
	w->poll = NULL;
	if (w->bell) {
		/* uv_close() takes the fd out of libuv's epoll set before it is closed */
		uv_poll_stop(w->bell);
		uv_close(w->bell, poll_closed);
		close(w->bell_fd);
		w->bell = NULL;
		w->bell_fd = -1;
	}
	direct_close_all(w); /* out of libuv's epoll set before the ring's sockets close */
	napi_remove_env_cleanup_hook(w->env, on_env_exit, w);
	napi_delete_reference(w->env, w->cb);
	napi_delete_reference(w->env, w->resource);
	napi_async_destroy(w->env, w->actx);
	if (w->ops_ref)
		napi_delete_reference(w->env, w->ops_ref);
	if (w->rcs_ref)
		napi_delete_reference(w->env, w->rcs_ref);
	w->ops_ref = w->rcs_ref = NULL;
}

/*
 * The environment is going away (worker exit or termination, or the main
 * thread's) with the handle open.  Its cleanup hooks run before Node-API's
 * own teardown (they run last-added first), so the references and the async
 * context are still there to release; the finalizer then only frees w.
 */
static void on_env_exit(void *arg)
{
	struct watcher *w = arg;
	bool open = !w->closed;
	release(w);
	/*
	 * The handle was open: no JavaScript closed this ring (it closes the
	 * handle first), and none will run again here.  Destroy it now, or
	 * its fds and pinned memory (pools, receive areas) would stay for the
	 * life of the process.  The poll handle is stopped: nothing polls the
	 * fd the ring closes.
	 */
	if (open && w->destroy)
		w->destroy(w->ring, 0);
	if (open)
		for (size_t i = 0; i < w->owned_len; i++)
			for (int b = 0; b < 8; b++)
				if (w->owned[i] & (1u << b))
					close((int)(i * 8 + (size_t)b));
	free(w->owned);
	w->owned = NULL;
	w->owned_len = 0;
}

static void finalize(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	struct watcher *w = data;
	release(w);
	put_watcher(w);
}

static void deliver(struct watcher *w, int32_t n);

static void on_readable(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct watcher *w = h->data;
	int32_t n = status < 0 ? status : w->reap(w->ring, w->out, w->max);
	w->ring_woke = true;
	if (n > 0)
		w->ring_deliveries++;
	deliver(w, n);
}

static void deliver(struct watcher *w, int32_t n)
{
	napi_env env = w->env;
	napi_handle_scope scope;
	napi_value cb, recv, arg;
	if (napi_open_handle_scope(env, &scope) != napi_ok)
		return;
	if (napi_get_reference_value(env, w->cb, &cb) == napi_ok &&
	    napi_get_reference_value(env, w->resource, &recv) == napi_ok && napi_create_int32(env, n, &arg) == napi_ok) {
		/* w may be closed, even freed, once JS has run: not used after this. */
		if (napi_make_callback(env, w->actx, recv, cb, 1, &arg, NULL) == napi_pending_exception) {
			napi_value err;
			if (napi_get_and_clear_last_exception(env, &err) == napi_ok)
				napi_fatal_exception(env, err);
		}
	}
	napi_close_handle_scope(env, scope);
}

static struct watcher *arg_watcher(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	napi_valuetype t;
	bool tagged = false;
	void *w = NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object ||
	    napi_check_object_type_tag(env, argv[0], &watcher_tag, &tagged) != napi_ok || !tagged ||
	    napi_unwrap(env, argv[0], &w) != napi_ok || w == NULL) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll: expected a watcher handle from watch()");
		return NULL;
	}
	return w;
}

/* A number argument, else a TypeError (a pending exception) and false. */
static bool arg_number(napi_env env, napi_value v)
{
	napi_valuetype t;
	if (napi_typeof(env, v, &t) == napi_ok && t == napi_number)
		return true;
	napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
			      "zc_poll.watch(fd, reapFn, ring, out, max, cb, destroyFn): expected numbers and a function");
	return false;
}

static napi_value js_watch(napi_env env, napi_callback_info info)
{
	size_t argc = 7;
	napi_value argv[7], handle = NULL, res, name;
	napi_valuetype t;
	int32_t fd;
	int64_t fn, ring, out, destroy;
	uint32_t max;
	struct uv_loop_s *loop;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok)
		return NULL;
	if (argc < 7) {
		napi_throw_type_error(env, "ERR_MISSING_ARGS",
				      "zc_poll.watch(fd, reapFn, ring, out, max, cb, destroyFn): 7 arguments");
		return NULL;
	}
	for (int i = 0; i < 7; i++)
		if (i != 5 && !arg_number(env, argv[i]))
			return NULL;
	if (napi_typeof(env, argv[5], &t) != napi_ok || t != napi_function) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll.watch: cb must be a function");
		return NULL;
	}
	if (napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &fn) != napi_ok ||
	    napi_get_value_int64(env, argv[2], &ring) != napi_ok || napi_get_value_int64(env, argv[3], &out) != napi_ok ||
	    napi_get_value_uint32(env, argv[4], &max) != napi_ok || napi_get_value_int64(env, argv[6], &destroy) != napi_ok ||
	    fn == 0 || ring == 0 || out == 0 || fd < 0) {
		napi_throw_error(env, NULL, "zc_poll.watch(fd, reapFn, ring, out, max, cb, destroyFn): bad arguments");
		return NULL;
	}
	if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
		napi_throw_error(env, NULL, "zc_poll: no event loop");
		return NULL;
	}
	struct watcher *w = calloc(1, sizeof(*w));
	uv_poll_t *p = calloc(1, uv_handle_size(UV_POLL));
	if (!w || !p) {
		free(w);
		free(p);
		napi_throw_error(env, NULL, "zc_poll: out of memory");
		return NULL;
	}
	int rc = uv_poll_init(loop, p, fd);
	if (rc < 0) {
		free(w);
		free(p);
		napi_throw_error(env, NULL, "zc_poll: uv_poll_init failed");
		return NULL;
	}
	p->data = w;
	w->env = env;
	w->poll = p;
	w->reap = (reap_fn)(uintptr_t)fn;
	w->destroy = (destroy_fn)(uintptr_t)destroy;
	w->ring = (void *)(uintptr_t)ring;
	w->out = (void *)(uintptr_t)out;
	w->max = max;
	w->loop = loop;
	w->refed = true;
	w->refs = 1;
	w->bell_fd = -1;
	if (napi_create_object(env, &res) != napi_ok ||
	    napi_create_string_utf8(env, "uring-zc:ring", (size_t)-1, &name) != napi_ok ||
	    napi_create_reference(env, argv[5], 1, &w->cb) != napi_ok ||
	    napi_create_reference(env, res, 1, &w->resource) != napi_ok ||
	    napi_async_init(env, res, name, &w->actx) != napi_ok || napi_create_object(env, &handle) != napi_ok ||
	    napi_type_tag_object(env, handle, &watcher_tag) != napi_ok ||
	    napi_wrap(env, handle, w, finalize, NULL, NULL) != napi_ok) {
		/* the handle is initialized: it must be closed, not freed */
		uv_close(p, poll_closed);
		if (w->cb)
			napi_delete_reference(env, w->cb);
		if (w->resource)
			napi_delete_reference(env, w->resource);
		if (w->actx)
			napi_async_destroy(env, w->actx);
		free(w);
		napi_throw_error(env, NULL, "zc_poll: cannot create the watcher");
		return NULL;
	}
	napi_add_env_cleanup_hook(env, on_env_exit, w);
	rc = uv_poll_start(p, UV_READABLE, on_readable);
	if (rc < 0) {
		release(w);
		napi_throw_error(env, NULL, "zc_poll: uv_poll_start failed");
		return NULL;
	}
	return handle;
}

static void idle_noop(uv_handle_t *h)
{
	(void)h;
}

/*
 * sleepIn(.., adaptive): whose the loop's wakeups were, AUTO_WINDOW at a
 * time.  In the ring it moves to epoll when more than half of a window were
 * not the ring's (its sleep costs such a wakeup an io_uring_enter() on top
 * of libuv's epoll_pwait(): docs/PERFORMANCE.md, Session 18 wait18), and
 * back when at most a quarter of one were not (each of the ring's wakeups in
 * epoll costs an interrupted epoll_pwait() and a second one: Session 16):
 * one switch (an epoll_ctl()) per window at most, none while the share sits
 * between the two.
 */
#define AUTO_WINDOW 16

static void bell_run(struct watcher *w);

static void tally(struct watcher *w, bool foreign)
{
	w->foreign += foreign;
	if (++w->turns < AUTO_WINDOW)
		return;
	if (w->in_ring && w->foreign > AUTO_WINDOW / 2) {
		if (uv_poll_start(w->poll, UV_READABLE, on_readable) == 0) {
			uv_idle_stop(w->idle);
			w->in_ring = w->blocked = false;
			w->switches++;
			bell_run(w);
		}
	} else if (!w->in_ring && w->foreign <= AUTO_WINDOW / 4) {
		uv_poll_stop(w->poll);
		w->in_ring = true;
		w->switches++;
		bell_run(w);
	}
	w->turns = w->foreign = 0;
}

/*
 * Adaptive, sleeping in epoll: the last turn counts when its poll could
 * block (the ring fd or the doorbell woke it, or something else did); true
 * when the loop sleeps in the ring from this turn on.
 */
static bool epoll_turn(struct watcher *w)
{
	if (w->blocked)
		tally(w, !w->ring_woke);
	w->ring_woke = false;
	if (w->in_ring)
		return true;
	w->blocked = uv_backend_timeout(w->loop) != 0;
	return false;
}

/*
 * sleepIn() mode: runs right before libuv's poll, every turn of the loop.
 * When libuv would block (uv_backend_timeout() is not 0: no immediates,
 * pending callbacks or closing handles, and no fd whose epoll registration
 * libuv's next poll has yet to apply: libuv returns 0 while its watcher
 * queue is not empty, for embedders that poll uv_backend_fd() as we do),
 * the thread sleeps in the ring instead, for at most that timeout, woken by
 * a CQE or by any fd of the loop (zc_ring_sleep polls the epoll fd).  The
 * idle handle then makes libuv's own poll a look that does not block (it
 * still runs its callbacks), and the records are delivered as by
 * on_readable().  The ring fd is not in libuv's epoll set in this mode: every
 * turn of the loop comes through here, and a loop that never sleeps in the
 * ring never blocks in epoll either (the idle handle).  The sleep counts as
 * the loop's idle time, as libuv's epoll wait does (loop_idle.c), when
 * sleepIn() verified libuv's fields; it ends before any record is delivered.
 */
static void on_prepare(uv_handle_t *h)
{
	struct watcher *w = h->data;
	int t;

	if (w->closed)
		return;
	if (w->adaptive && !w->in_ring && !epoll_turn(w))
		return;
	uv_idle_stop(w->idle);
	t = uv_backend_timeout(w->loop);
	uv_idle_start(w->idle, idle_noop);
	if (t != 0) {
		zc_loop_idle_enter(&w->idle_time);
		int rc = w->sleep(w->ring, uv_backend_fd(w->loop), t);
		zc_loop_idle_leave(&w->idle_time);
		if (w->adaptive && rc > 0)
			tally(w, rc == ZC_SLEEP_LOOP);
	}
	int32_t n = w->reap(w->ring, w->out, w->max);
	if (n != 0)
		deliver(w, n); /* w may be gone after this */
}

/*
 * sleepIn(handle, sleepFn, adaptive): the loop sleeps in this watcher's ring
 * from now on (sleepFn: zc_ring_sleep's address); its fd leaves libuv's
 * epoll set.  adaptive (a number, 1: yes): only while its wakeups are
 * mostly the ring's (tally()).  false (and nothing changed) when the loop
 * has no backend fd or the watcher sleeps in its ring already.
 * The sleep counts as libuv's idle time when zc_loop_idle_init() verifies
 * the loop's fields now; sleepIdle(handle) says whether it does.
 */
static napi_value js_sleep_in(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3], res;
	int64_t fn;
	struct watcher *w = arg_watcher(env, info);
	bool ok = false;
	int32_t adaptive = 0;

	if (!w)
		return NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
	    !arg_number(env, argv[1]) || napi_get_value_int64(env, argv[1], &fn) != napi_ok || fn == 0 ||
	    !arg_number(env, argv[2]) || napi_get_value_int32(env, argv[2], &adaptive) != napi_ok) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll.sleepIn(handle, sleepFn, adaptive)");
		return NULL;
	}
	if (w->closed || w->prep)
		goto out;
	if (napi_get_uv_event_loop(env, &w->loop) != napi_ok || uv_backend_fd(w->loop) < 0)
		goto out;
	w->prep = calloc(1, uv_handle_size(UV_PREPARE));
	w->idle = calloc(1, uv_handle_size(UV_IDLE));
	if (!w->prep || !w->idle || uv_prepare_init(w->loop, w->prep) < 0) {
		free(w->prep);
		free(w->idle);
		w->prep = w->idle = NULL;
		goto out;
	}
	if (uv_idle_init(w->loop, w->idle) < 0) {
		uv_close(w->prep, poll_closed);
		free(w->idle);
		w->prep = w->idle = NULL;
		goto out;
	}
	w->prep->data = w;
	w->idle->data = w;
	w->sleep = (sleep_fn)(uintptr_t)fn;
	w->idle_why_not = zc_loop_idle_init(&w->idle_time, w->loop);
	w->adaptive = adaptive != 0;
	w->in_ring = true;
	w->turns = w->foreign = 0;
	uv_unref(w->idle);
	uv_prepare_start(w->prep, on_prepare);
	if (!w->refed)
		uv_unref(w->prep);
	uv_poll_stop(w->poll);
	bell_run(w); /* stopped: the ring's sleep wakes for the sockets itself */
	ok = true;
out:
	napi_get_boolean(env, ok, &res);
	return res;
}

/*
 * sleepIdle(handle) -> true when the loop sleeps in this ring and the sleep
 * counts as libuv's idle time (eventLoopUtilization() sees it), else why
 * not (a string).
 */
static napi_value js_sleep_idle(napi_env env, napi_callback_info info)
{
	napi_value res;
	struct watcher *w = arg_watcher(env, info);

	if (!w)
		return NULL;
	if (!w->prep)
		napi_create_string_utf8(env, "the loop does not sleep in this ring", (size_t)-1, &res);
	else if (w->idle_why_not)
		napi_create_string_utf8(env, w->idle_why_not, (size_t)-1, &res);
	else
		napi_get_boolean(env, true, &res);
	return res;
}

/* Close the sleep's handles and poll the ring fd again (w open). */
static void sleep_out(struct watcher *w)
{
	uv_prepare_stop(w->prep);
	uv_idle_stop(w->idle);
	uv_close(w->prep, poll_closed);
	uv_close(w->idle, poll_closed);
	w->prep = w->idle = NULL;
	if (w->in_ring) /* the poll is stopped while the loop sleeps in the ring */
		uv_poll_start(w->poll, UV_READABLE, on_readable);
	w->adaptive = w->in_ring = false;
	bell_run(w);
}

/*
 * sleepOut(handle): the loop no longer sleeps in this ring (another ring
 * takes the sleep over); its fd is polled in epoll again.  false when it did
 * not sleep there.
 */
static napi_value js_sleep_out(napi_env env, napi_callback_info info)
{
	napi_value res;
	struct watcher *w = arg_watcher(env, info);
	bool ok;

	if (!w)
		return NULL;
	ok = !w->closed && w->prep != NULL;
	if (ok)
		sleep_out(w);
	napi_get_boolean(env, ok, &res);
	return res;
}

/*
 * sleepState(handle) -> where the loop sleeps now: 2 in the ring, 1 in
 * epoll with sleepIn(.., true) (for now), 0 without sleepIn; plus 4 per
 * switch between the two so far.
 */
static napi_value js_sleep_state(napi_env env, napi_callback_info info)
{
	napi_value res;
	struct watcher *w = arg_watcher(env, info);
	int32_t v;

	if (!w)
		return NULL;
	v = w->closed || !w->prep ? 0 : w->in_ring ? 2 : 1;
	napi_create_int32(env, v + 4 * (int32_t)(w->switches & 0x1fffffff), &res);
	return res;
}

static napi_value js_ref(napi_env env, napi_callback_info info)
{
	struct watcher *w = arg_watcher(env, info);
	if (w && !w->closed) {
		w->refed = true;
		uv_ref(w->poll);
		if (w->prep)
			uv_ref(w->prep);
	}
	return NULL;
}

static napi_value js_unref(napi_env env, napi_callback_info info)
{
	struct watcher *w = arg_watcher(env, info);
	if (w && !w->closed) {
		w->refed = false;
		uv_unref(w->poll);
		if (w->prep)
			uv_unref(w->prep);
	}
	return NULL;
}

static void direct_stop_all(struct watcher *w);

static napi_value js_stop(napi_env env, napi_callback_info info)
{
	struct watcher *w = arg_watcher(env, info);
	if (w && !w->closed) {
		uv_poll_stop(w->poll);
		if (w->bell)
			uv_poll_stop(w->bell);
		direct_stop_all(w);
		if (w->prep) {
			uv_prepare_stop(w->prep);
			uv_idle_stop(w->idle);
		}
	}
	return NULL;
}

/*
 * The doorbell.  A receive's data reaches the ring as task work, which the
 * kernel signals to a thread asleep in epoll_pwait(): the wait returns
 * EINTR, the task work posts the CQE on the way out, and libuv polls again
 * to find the ring fd readable (two waits per wakeup, and the signal
 * return between them).  The sockets in this epoll set wake the loop's
 * epoll_pwait() with an event instead, from the same socket wakeup that
 * queues the task work: the wait returns the bell, the task work still runs
 * on the way out, so the records are there when on_bell() reaps.
 *
 * The set is polled on the loop exactly while the loop sleeps in epoll
 * (!in_ring: a ring without sleepIn, or sleepIn(.., adaptive) in its epoll
 * phase); sleeping in the ring, zc_ring_sleep() wakes for the ring's
 * sockets itself and the bell's handle is stopped (its fd out of libuv's
 * epoll set).  Its members stay in every mode (doorbell() adds a socket
 * when its receive starts), so tally()'s switch is one start or stop of
 * the handle; a bell wakeup is the ring's own there (on_bell sets
 * ring_woke), as the ring fd's is.
 *
 * The sockets are edge-triggered here, but libuv polls the bell
 * level-triggered, and an epoll fd reads ready while any socket on its
 * ready list has data: one whose receive is paused (or over) with data
 * unread would keep the bell ready.  A bell that found no record drains
 * the set (epoll_wait: the edges are consumed), so it stays quiet until
 * the next segment arrives; one started after a phase in the ring finds
 * the edges of that phase, at most one drain.  The ring fd stays watched
 * for everything else (sends, accepts, a wakeup the bell missed).
 */
static void drain_bell(struct watcher *w)
{
	struct epoll_event ev[64];
	int k;

	w->bell_drains++;
	do
		k = epoll_wait(w->bell_fd, ev, 64, 0);
	while (k == 64);
}

static void on_bell(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct watcher *w = h->data;
	int32_t n;

	if (status < 0) {
		/* the ring fd's handle carries on alone */
		w->bell_broken = true;
		uv_poll_stop(h);
		return;
	}
	w->bell_wakeups++;
	w->ring_woke = true; /* the ring's traffic: tally() counts it as its own */
	n = w->reap(w->ring, w->out, w->max);
	if (n == 0)
		drain_bell(w);
	else
		deliver(w, n); /* w may be gone after this */
}

/*
 * The direct doorbell (doorbell(.., direct), the default: ts/ring.ts).  The
 * bell's set wakes libuv's epoll_pwait() through the nested set's own wait
 * queue (ep_poll_safewake(): wake_up_poll()), which drops the socket's
 * WF_SYNC: the woken thread is placed as by io_uring's task-work wakeup,
 * which has no sync hint either, and with one vCPU busy a peer moved next
 * to the busy task stays there (docs/PERFORMANCE.md, Session 24 rr24).
 * Here each receiving socket has a uv_poll_t of its own in libuv's epoll
 * set, so the socket's wakeup of the thread asleep in epoll_pwait() is
 * ep_poll_callback()'s wake_up_sync(): the scheduler may keep the wakee
 * beside its waker, as for node:net's sockets (Session 24 sync24).
 *
 * Polled exactly while the bell would be (!in_ring): sleeping in the ring,
 * a socket in libuv's set would also wake the ring's sleep by its poll of
 * the epoll fd, a second wakeup for one segment.  A handle lives as long as
 * its socket's receive: made by doorbell(.., direct) when the receive
 * starts, closed by bellOff(handle, fd) when it ends, is canceled or its fd
 * is about to close (ts/recv.ts), by disown(handle, fd) (every close of a
 * ring socket disowns it first: ts/socket/close.ts) and by close() of the
 * watcher; uv_close() takes the fd out of libuv's set at once (EPOLL_CTL_DEL
 * while the fd is still open), so no handle of ours is left on a number
 * that may name another file next, where libuv would give its events, or
 * our DEL take its registration, wrongly.
 *
 * Edge-triggered, as the bell's members are.  libuv polls level-triggered
 * (its polls have no edge mode), and a socket whose receive is paused at its
 * quota or parked for buffers with data unread would keep libuv's wait
 * returning.  So the first wakeup of a started handle turns libuv's
 * registration of the fd edge-triggered (EPOLL_CTL_MOD on uv_backend_fd(),
 * the same data.fd libuv reads): by then libuv has made it (it registers
 * the fds of started handles at its next poll), and libuv only registers an
 * fd again when its handle's events change (uv_poll_start(), which only
 * direct_run() calls, after a stop, and the next wakeup edges it again).
 * A MOD that fails leaves the socket to the bell's set.  A wakeup that
 * finds no record is counted with the bell's drains (bells()).
 *
 * What the kernel does with the socket's wait queue: its entries run from
 * the head, and both add at the head, so the later of io_uring's poll entry
 * (armed when the receive is submitted) and this handle's (added at libuv's
 * next poll) runs first; a handle started after its receive (every start
 * here is, in the loop's next poll) wakes the thread first, with the hint.
 * A receive re-armed after a pause or an empty area puts io_uring's entry
 * in front again, which costs the hint for that socket, not a wakeup.
 */
static void direct_closed(uv_handle_t *h)
{
	free(h->data);
	free(h);
}

static bool bell_add(struct watcher *w, int fd);

/* Take fd's handle out of libuv's epoll set and close it (none: nothing). */
static void direct_close(struct watcher *w, int fd)
{
	struct direct *d;

	if (fd < 0 || (size_t)fd >= w->direct_len || !(d = w->direct[fd]))
		return;
	w->direct[fd] = NULL;
	w->direct_open--;
	if (d->on)
		w->direct_on--;
	/* uv_close() stops it: EPOLL_CTL_DEL now, pending events of the fd dropped */
	uv_close(d->h, direct_closed);
}

static void direct_close_all(struct watcher *w)
{
	for (size_t i = 0; i < w->direct_len && w->direct_open > 0; i++)
		direct_close(w, (int)i);
	free(w->direct);
	w->direct = NULL;
	w->direct_len = 0;
}

static void on_direct(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct direct *d = h->data;
	struct watcher *w = d->w;
	int32_t n;

	if (status < 0 || !d->et) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = d->fd };
		int fd = d->fd;

		if (status < 0 || epoll_ctl(uv_backend_fd(w->loop), EPOLL_CTL_MOD, fd, &ev) < 0) {
			/* level-triggered it could spin: the bell's set takes the socket */
			direct_close(w, fd);
			bell_add(w, fd);
		} else {
			d->et = true;
		}
	}
	w->bell_wakeups++;
	w->ring_woke = true; /* the ring's traffic, as the bell's (tally()) */
	n = w->reap(w->ring, w->out, w->max);
	if (n == 0)
		w->bell_drains++; /* edge-triggered: nothing to drain */
	else
		deliver(w, n); /* w may be gone after this */
}

/* Start d while the loop sleeps in epoll, stop it otherwise. */
static void direct_run1(struct watcher *w, struct direct *d)
{
	bool on = !w->in_ring && !w->closed;

	if (on == d->on)
		return;
	if (on ? uv_poll_start(d->h, UV_READABLE, on_direct) < 0 : uv_poll_stop(d->h) < 0)
		return;
	d->on = on;
	d->et = false; /* a start registers the fd level-triggered again */
	if (on)
		w->direct_on++;
	else
		w->direct_on--;
}

static void direct_stop_all(struct watcher *w)
{
	for (size_t i = 0; i < w->direct_len && w->direct_on > 0; i++)
		if (w->direct[i] && w->direct[i]->on) {
			uv_poll_stop(w->direct[i]->h);
			w->direct[i]->on = false;
			w->direct_on--;
		}
}

/*
 * fd's own handle (made now if it has none): false when it cannot be had
 * (libuv watches fd already, no memory): the bell's set takes it then.
 */
static bool direct_add(struct watcher *w, int fd)
{
	struct direct *d;
	int fl;

	if ((size_t)fd < w->direct_len && w->direct[fd])
		return true;
	if ((size_t)fd >= w->direct_len) {
		size_t len = w->direct_len ? w->direct_len : 64;
		struct direct **t;

		while (len <= (size_t)fd)
			len *= 2;
		t = realloc(w->direct, len * sizeof(*t));
		if (!t)
			return false;
		memset(t + w->direct_len, 0, (len - w->direct_len) * sizeof(*t));
		w->direct = t;
		w->direct_len = len;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->h = calloc(1, uv_handle_size(UV_POLL)))) {
		free(d);
		return false;
	}
	/* uv_poll_init() makes the fd O_NONBLOCK; the ring's sockets keep their flags */
	fl = fcntl(fd, F_GETFL);
	if (uv_poll_init(w->loop, d->h, fd) < 0) {
		free(d->h);
		free(d);
		return false;
	}
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl);
	d->h->data = d;
	d->w = w;
	d->fd = fd;
	/* the ring fd's handle keeps the loop alive while it must */
	uv_unref(d->h);
	w->direct[fd] = d;
	w->direct_open++;
	direct_run1(w, d);
	return true;
}

/* Poll the bell and the direct handles while the loop sleeps in epoll, not in the ring. */
static void bell_run(struct watcher *w)
{
	for (size_t i = 0; i < w->direct_len; i++)
		if (w->direct[i])
			direct_run1(w, w->direct[i]);
	if (!w->bell)
		return;
	if (w->in_ring || w->closed || w->bell_broken)
		uv_poll_stop(w->bell);
	else
		uv_poll_start(w->bell, UV_READABLE, on_bell);
}

/* fd joins the bell's set (made now if there is none); false if it cannot. */
static bool bell_add(struct watcher *w, int fd)
{
	if (!w->bell) {
		int e = epoll_create1(EPOLL_CLOEXEC);
		uv_poll_t *b;

		if (e < 0)
			return false;
		b = calloc(1, uv_handle_size(UV_POLL));
		if (!b || uv_poll_init(w->loop, b, e) < 0) {
			free(b);
			close(e);
			return false;
		}
		b->data = w;
		/* the ring fd's handle keeps the loop alive while it must */
		uv_unref(b);
		w->bell = b;
		w->bell_fd = e;
		if (!w->in_ring)
			bell_run(w);
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = fd };
	return epoll_ctl(w->bell_fd, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST;
}

/*
 * doorbell(handle, fd, direct) -> bool: fd (a socket of the ring with a
 * receive in flight) wakes the loop while it sleeps in epoll: direct (1)
 * with a poll handle of its own in libuv's epoll set (above; the bell's set
 * when that cannot be had), else (0) in the bell's set; false when it
 * cannot (the handle is closed, no epoll fd to be had): the ring fd still
 * reports the receive's records, one EINTR'd wait later.  An fd leaves the
 * bell's set when its file is closed, its direct handle by bellOff().
 */
static napi_value js_doorbell(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3], res;
	int32_t fd, direct = 0;
	struct watcher *w = arg_watcher(env, info);
	bool ok = false;

	if (!w)
		return NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    !arg_number(env, argv[1]) || napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0 ||
	    (argc > 2 && (!arg_number(env, argv[2]) || napi_get_value_int32(env, argv[2], &direct) != napi_ok))) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll.doorbell(handle, fd, direct): expected an fd");
		return NULL;
	}
	/* a loop that sleeps in this ring for good (loopWait 'ring') never polls it */
	if (w->prep && !w->adaptive)
		direct = 0;
	if (!w->closed)
		ok = (direct && direct_add(w, fd)) || bell_add(w, fd);
	napi_get_boolean(env, ok, &res);
	return res;
}

/*
 * bellOff(handle, fd): fd's receive ended, was canceled, or its fd is about to
 * close: its direct handle (if any) leaves libuv's epoll set now and closes.
 */
static napi_value js_bell_off(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	int32_t fd;
	struct watcher *w = arg_watcher(env, info);

	if (!w)
		return NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    !arg_number(env, argv[1]) || napi_get_value_int32(env, argv[1], &fd) != napi_ok) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll.bellOff(handle, fd): expected an fd");
		return NULL;
	}
	if (!w->closed)
		direct_close(w, fd);
	return NULL;
}

/*
 * directs(handle) -> [direct handles open, of them polled now, libuv's epoll
 * fd] (tests, the bench)
 */
static napi_value js_directs(napi_env env, napi_callback_info info)
{
	napi_value res, v;
	struct watcher *w = arg_watcher(env, info);

	if (!w || napi_create_array_with_length(env, 3, &res) != napi_ok)
		return NULL;
	const double c[3] = { w->direct_open, w->direct_on, w->closed ? -1 : uv_backend_fd(w->loop) };
	for (uint32_t i = 0; i < 3; i++)
		if (napi_create_double(env, c[i], &v) != napi_ok || napi_set_element(env, res, i, v) != napi_ok)
			return NULL;
	return res;
}

/*
 * due(handle) -> false when a turn of the thread's event loop would find
 * nothing to run now: no timer due, no referenced immediate (Node keeps an
 * idle handle started for those), no pending callback or closing handle, no
 * fd change for libuv's next poll to apply, and no fd of libuv's epoll set
 * ready (other sockets, a worker's message, the threadpool's results, a
 * signal: a look that does not block, level-triggered, so nothing is
 * consumed); true otherwise, and for a closed handle.  The loop's clock is
 * brought up to date first, as a turn of the loop would: timers made during
 * a long chain of flushes start from it.  A busy ring asks this before it
 * yields to the loop (ts/ring.ts, Ring#submit): when nothing is due, a
 * yield to Node's tick queue does instead of a turn of the loop.
 */
static napi_value js_due(napi_env env, napi_callback_info info)
{
	napi_value res;
	struct watcher *w = arg_watcher(env, info);
	bool due = true;

	if (!w)
		return NULL;
	if (!w->closed && w->loop) {
		/* ours (sleepIn): it keeps libuv's poll from blocking, nothing else */
		bool idle = w->idle && uv_is_active(w->idle);
		int t, n;

		uv_update_time(w->loop);
		if (idle)
			uv_idle_stop(w->idle);
		t = uv_backend_timeout(w->loop);
		if (idle)
			uv_idle_start(w->idle, idle_noop);
		if (t != 0) {
			struct epoll_event ev;
			do
				n = epoll_wait(uv_backend_fd(w->loop), &ev, 1, 0);
			while (n < 0 && errno == EINTR);
			due = n != 0; /* an error too: let the loop see to it */
		}
	}
	napi_get_boolean(env, due, &res);
	return res;
}

/*
 * bells(handle) -> [wakeups by the bell, drains of it, wakeups of the ring
 * fd's handle that delivered records] (tests, the bench): a receive's
 * records the ring fd delivered came one EINTR'd wait late, when the bell
 * was not polled or lost the race.
 */
static napi_value js_bells(napi_env env, napi_callback_info info)
{
	napi_value res, v;
	struct watcher *w = arg_watcher(env, info);
	const double c[3] = { w ? w->bell_wakeups : 0, w ? w->bell_drains : 0, w ? w->ring_deliveries : 0 };

	if (!w || napi_create_array_with_length(env, 3, &res) != napi_ok)
		return NULL;
	for (uint32_t i = 0; i < 3; i++)
		if (napi_create_double(env, c[i], &v) != napi_ok || napi_set_element(env, res, i, v) != napi_ok)
			return NULL;
	return res;
}

/* own(handle, fd) / disown(handle, fd) */
static napi_value own_fd(napi_env env, napi_callback_info info, bool own)
{
	size_t argc = 2;
	napi_value argv[2];
	napi_valuetype t;
	bool tagged = false;
	void *p = NULL;
	int32_t fd;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    napi_typeof(env, argv[0], &t) != napi_ok || t != napi_object ||
	    napi_check_object_type_tag(env, argv[0], &watcher_tag, &tagged) != napi_ok || !tagged ||
	    napi_unwrap(env, argv[0], &p) != napi_ok || p == NULL || napi_typeof(env, argv[1], &t) != napi_ok ||
	    t != napi_number || napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll: expected a watcher handle and an fd");
		return NULL;
	}
	struct watcher *w = p;
	size_t byte = (size_t)fd / 8;
	uint8_t bit = (uint8_t)(1u << (fd % 8));
	if (!own) {
		if (byte < w->owned_len)
			w->owned[byte] &= (uint8_t)~bit;
		if (!w->closed)
			direct_close(w, fd); /* the fd is about to close */
		return NULL;
	}
	if (w->closed)
		return NULL;
	if (byte >= w->owned_len) {
		size_t len = w->owned_len ? w->owned_len : 64;
		while (len <= byte)
			len *= 2;
		uint8_t *o = realloc(w->owned, len);
		if (!o) {
			napi_throw_error(env, NULL, "zc_poll: out of memory");
			return NULL;
		}
		memset(o + w->owned_len, 0, len - w->owned_len);
		w->owned = o;
		w->owned_len = len;
	}
	w->owned[byte] |= bit;
	return NULL;
}

static napi_value js_own(napi_env env, napi_callback_info info)
{
	return own_fd(env, info, true);
}

static napi_value js_disown(napi_env env, napi_callback_info info)
{
	return own_fd(env, info, false);
}

/* flushBatch(n, max): see the top of the file.  Called once per tick. */
static napi_value js_flush_batch(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2], res;
	void *data = NULL;
	double n, max;
	char msg[160];
	if (napi_get_cb_info(env, info, &argc, argv, NULL, &data) != napi_ok || data == NULL)
		return NULL;
	struct watcher *w = data;
	/* argv[i] is undefined for a missing argument: napi_number_expected */
	if (argc < 2 || napi_get_value_double(env, argv[0], &n) != napi_ok ||
	    napi_get_value_double(env, argv[1], &max) != napi_ok) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll flushBatch(n, max): expected two numbers");
		return NULL;
	}
	/* !(x >= 0) is true for NaN too */
	if (!(n >= 0) || n > w->ops_cap || n != (double)(uint32_t)n) {
		snprintf(msg, sizeof(msg),
			 "zc_poll flushBatch(n, max): n is %g, not an integer from 0 to %u (the descriptors ops and rcs hold)",
			 n, w->ops_cap);
		napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
		return NULL;
	}
	if (!(max >= 0) || max > w->max || max != (double)(uint32_t)max) {
		snprintf(msg, sizeof(msg),
			 "zc_poll flushBatch(n, max): max is %g, not an integer from 0 to %u (the records buffer's size)",
			 max, w->max);
		napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
		return NULL;
	}
	if (w->closed) {
		napi_throw_error(env, "ERR_INVALID_STATE", "zc_poll flushBatch(): the ring's watcher is closed");
		return NULL;
	}
	int rc = w->flush_batch(w->ring, w->ops, (uint32_t)n, w->rcs, w->out, (uint32_t)max);
	if (napi_create_int32(env, rc, &res) != napi_ok)
		return NULL;
	return res;
}

static void flush_batch_finalize(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	put_watcher(data);
}

/* A typed array of the given type and its data, else false. */
static bool arg_typed(napi_env env, napi_value v, napi_typedarray_type want, size_t *len, void **data)
{
	bool is = false;
	napi_typedarray_type t;
	return napi_is_typedarray(env, v, &is) == napi_ok && is &&
	       napi_get_typedarray_info(env, v, &t, len, data, NULL, NULL) == napi_ok && t == want && *data != NULL;
}

/* flusher(handle, flushBatchFn, ops, rcs) -> flushBatch: see the top of the file. */
static napi_value js_flusher(napi_env env, napi_callback_info info)
{
	size_t argc = 4, ops_len, rcs_len;
	napi_value argv[4], f;
	int64_t fn;
	void *ops, *rcs;
	struct watcher *w = arg_watcher(env, info);
	if (!w)
		return NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
	    !arg_number(env, argv[1]) || napi_get_value_int64(env, argv[1], &fn) != napi_ok || fn == 0 ||
	    !arg_typed(env, argv[2], napi_uint8_array, &ops_len, &ops) ||
	    !arg_typed(env, argv[3], napi_int32_array, &rcs_len, &rcs) ||
	    (uintptr_t)ops % _Alignof(struct zc_batch_op) != 0) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
				      "zc_poll.flusher(handle, flushBatchFn, ops, rcs): a non-zero address, an 8-byte "
				      "aligned Uint8Array and an Int32Array");
		return NULL;
	}
	if (w->closed) {
		napi_throw_error(env, "ERR_INVALID_STATE", "zc_poll.flusher(): the watcher is closed");
		return NULL;
	}
	if (w->flush_batch) {
		napi_throw_error(env, "ERR_INVALID_STATE", "zc_poll.flusher(): this watcher has its flushBatch already");
		return NULL;
	}
	size_t cap = ops_len / sizeof(struct zc_batch_op);
	if (rcs_len < cap)
		cap = rcs_len;
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	if (napi_create_function(env, "flushBatch", (size_t)-1, js_flush_batch, w, &f) != napi_ok ||
	    napi_create_reference(env, argv[2], 1, &w->ops_ref) != napi_ok ||
	    napi_create_reference(env, argv[3], 1, &w->rcs_ref) != napi_ok ||
	    napi_add_finalizer(env, f, w, flush_batch_finalize, NULL, NULL) != napi_ok) {
		if (w->ops_ref)
			napi_delete_reference(env, w->ops_ref);
		if (w->rcs_ref)
			napi_delete_reference(env, w->rcs_ref);
		w->ops_ref = w->rcs_ref = NULL;
		napi_throw_error(env, NULL, "zc_poll.flusher(): cannot create the function");
		return NULL;
	}
	w->refs++;
	w->ops = ops;
	w->rcs = rcs;
	w->ops_cap = (uint32_t)cap;
	w->flush_batch = (flush_batch_fn)(uintptr_t)fn;
	return f;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
	struct watcher *w = arg_watcher(env, info);
	if (w)
		release(w);
	return NULL;
}

/*
 * koffi.view() does the same, but it type-checks koffi's pointer object
 * through Node-API, which fails once a worker's terminate() started, and
 * koffi's failing throw then aborts the process.  Here a failure leaves an
 * exception pending (or, when the thread is being terminated, nothing):
 * the caller gets undefined and the thread stops.
 */
static napi_value js_view(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2], ab = NULL;
	napi_valuetype t, tl;
	uint64_t addr = 0;
	int64_t a64 = 0;
	double dlen;
	bool lossless = true;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    napi_typeof(env, argv[0], &t) != napi_ok || (t != napi_bigint && t != napi_number) ||
	    napi_typeof(env, argv[1], &tl) != napi_ok || tl != napi_number)
		goto bad;
	if (t == napi_bigint ? napi_get_value_bigint_uint64(env, argv[0], &addr, &lossless) != napi_ok || !lossless
			     : napi_get_value_int64(env, argv[0], &a64) != napi_ok || a64 <= 0)
		goto bad;
	if (t == napi_number)
		addr = (uint64_t)a64;
	/* A double, not napi_get_value_uint32(): that one cuts a pool or a
	 * receive area of 4 GiB or more to its length modulo 2^32. */
	if (addr == 0 || napi_get_value_double(env, argv[1], &dlen) != napi_ok || !(dlen >= 0) ||
	    dlen > 9007199254740991.0 || dlen != (double)(uint64_t)dlen)
		goto bad;
	if (napi_create_external_arraybuffer(env, (void *)(uintptr_t)addr, (size_t)dlen, NULL, NULL, &ab) != napi_ok)
		return NULL;
	return ab;
bad:
	napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll.view(addr, len): a non-zero address and a length");
	return NULL;
}

__attribute__((visibility("default"))) int32_t node_api_module_get_api_version_v1(void)
{
	return 8;
}

__attribute__((visibility("default"))) napi_value napi_register_module_v1(napi_env env, napi_value exports)
{
	static const struct {
		const char *name;
		napi_callback fn;
	} fns[] = {
		{ "watch", js_watch }, { "ref", js_ref }, { "unref", js_unref }, { "stop", js_stop }, { "close", js_close },
		{ "view", js_view }, { "own", js_own }, { "disown", js_disown }, { "sleepIn", js_sleep_in },
		{ "sleepIdle", js_sleep_idle }, { "sleepOut", js_sleep_out }, { "sleepState", js_sleep_state },
		{ "flusher", js_flusher }, { "doorbell", js_doorbell }, { "bells", js_bells }, { "due", js_due },
		{ "bellOff", js_bell_off }, { "directs", js_directs },
	};
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		napi_value f;
		if (napi_create_function(env, fns[i].name, (size_t)-1, fns[i].fn, NULL, &f) != napi_ok ||
		    napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
			return NULL;
	}
	return exports;
}
