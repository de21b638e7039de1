// SPDX-License-Identifier: MIT
/*
 * Where the loop sleeps: sleepIn() has it sleep in the ring instead of
 * libuv's epoll (RingOptions.loopWait 'ring'; adaptive for 'auto': in the
 * ring while the wakeups are the ring's, in epoll otherwise), sleepOut()
 * hands the sleep back, sleepState()/sleepIdle() report it; and due() says
 * whether a turn of the loop has work now (ts/ring.ts, Ring#submit).
 * The sleep counts as libuv's idle time through loop_idle.c.
 */
#include "zc_poll.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>

#include "../libzc.h" /* ZC_SLEEP_LOOP: zc_ring_sleep()'s wakeup by the loop's fd */

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

static void tally(struct watcher *w, bool foreign)
{
	w->foreign += foreign;
	if (++w->turns < AUTO_WINDOW)
		return;
	if (w->in_ring && w->foreign > AUTO_WINDOW / 2) {
		if (uv_poll_start(w->poll, UV_READABLE, zc_poll_on_readable) == 0) {
			uv_idle_stop(w->idle);
			w->in_ring = w->blocked = false;
			w->switches++;
			zc_poll_doorbell_run(w);
		}
	} else if (!w->in_ring && w->foreign <= AUTO_WINDOW / 4) {
		uv_poll_stop(w->poll);
		w->in_ring = true;
		w->switches++;
		zc_poll_doorbell_run(w);
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
		zc_poll_deliver(w, n); /* w may be gone after this */
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
napi_value zc_poll_js_sleep_in(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3], res;
	int64_t fn;
	struct watcher *w = zc_poll_arg_watcher(env, info);
	bool ok = false;
	int32_t adaptive = 0;

	if (!w)
		return NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
	    !zc_poll_arg_number(env, argv[1]) || napi_get_value_int64(env, argv[1], &fn) != napi_ok || fn == 0 ||
	    !zc_poll_arg_number(env, argv[2]) || napi_get_value_int32(env, argv[2], &adaptive) != napi_ok) {
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
		uv_close(w->prep, zc_poll_closed);
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
	zc_poll_doorbell_run(w); /* stopped: the ring's sleep wakes for the sockets itself */
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
napi_value zc_poll_js_sleep_idle(napi_env env, napi_callback_info info)
{
	napi_value res;
	struct watcher *w = zc_poll_arg_watcher(env, info);

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

/* Stop and close the sleep's handles (w->prep set): sleepOut(), close(). */
void zc_poll_sleep_close(struct watcher *w)
{
	uv_prepare_stop(w->prep);
	uv_idle_stop(w->idle);
	uv_close(w->prep, zc_poll_closed);
	uv_close(w->idle, zc_poll_closed);
	w->prep = w->idle = NULL;
}

/* Close the sleep's handles and poll the ring fd again (w open). */
static void sleep_out(struct watcher *w)
{
	zc_poll_sleep_close(w);
	if (w->in_ring) /* the poll is stopped while the loop sleeps in the ring */
		uv_poll_start(w->poll, UV_READABLE, zc_poll_on_readable);
	w->adaptive = w->in_ring = false;
	zc_poll_doorbell_run(w);
}

/*
 * sleepOut(handle): the loop no longer sleeps in this ring (another ring
 * takes the sleep over); its fd is polled in epoll again.  false when it did
 * not sleep there.
 */
napi_value zc_poll_js_sleep_out(napi_env env, napi_callback_info info)
{
	napi_value res;
	struct watcher *w = zc_poll_arg_watcher(env, info);
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
napi_value zc_poll_js_sleep_state(napi_env env, napi_callback_info info)
{
	napi_value res;
	struct watcher *w = zc_poll_arg_watcher(env, info);
	int32_t v;

	if (!w)
		return NULL;
	v = w->closed || !w->prep ? 0 : w->in_ring ? 2 : 1;
	napi_create_int32(env, v + 4 * (int32_t)(w->switches & 0x1fffffff), &res);
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
napi_value zc_poll_js_due(napi_env env, napi_callback_info info)
{
	napi_value res;
	struct watcher *w = zc_poll_arg_watcher(env, info);
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
