// SPDX-License-Identifier: MIT
/*
 * The doorbell.  A receive's data reaches the ring as task work, which the
 * kernel signals to a thread asleep in epoll_pwait(): the wait returns
 * EINTR, the task work posts the CQE on the way out, and libuv polls again
 * to find the ring fd readable (two waits per wakeup, and the signal
 * return between them).  A doorbell wakes the loop's epoll_pwait() with an
 * event instead, from the same socket wakeup that queues the task work:
 * the wait returns the doorbell's fd, the task work still runs on the way
 * out, so the records are there when its callback reaps.
 *
 * Two kinds, both polled exactly while the loop sleeps in epoll (!in_ring:
 * zc_poll_doorbell_run()): a poll handle per receiving socket in libuv's
 * own epoll set (direct.c, doorbell(.., direct): ts/ring.ts's default), or
 * the sockets as members of an epoll set of the watcher's own (bell.c; a
 * socket whose direct handle cannot be had; URING_ZC_DOORBELL=nested).
 * Here: the JS calls, and the two kinds started, stopped and closed together.
 */
#include "zc_poll.h"

/* Poll the bell and the direct handles while the loop sleeps in epoll, not in the ring. */
void zc_poll_doorbell_run(struct watcher *w)
{
	zc_poll_direct_run(w);
	zc_poll_bell_run(w);
}

/*
 * stop(): no doorbell polled until a switch of the sleep runs them again; a
 * doorbell() after it starts its own socket's handle (and the bell's set it
 * makes), as it would without the stop
 */
void zc_poll_doorbell_stop(struct watcher *w)
{
	zc_poll_bell_stop(w);
	zc_poll_direct_stop_all(w);
}

/* close(): every doorbell out of libuv's epoll set, before the ring's sockets close */
void zc_poll_doorbell_close(struct watcher *w)
{
	zc_poll_bell_close(w);
	zc_poll_direct_close_all(w);
}

/*
 * doorbell(handle, fd, direct) -> bool: fd (a socket of the ring with a
 * receive in flight) wakes the loop while it sleeps in epoll: direct (1)
 * with a poll handle of its own in libuv's epoll set (direct.c; the bell's
 * set when that cannot be had), else (0) in the bell's set (bell.c); false
 * when it cannot (the handle is closed, no epoll fd to be had): the ring fd still
 * reports the receive's records, one EINTR'd wait later.  An fd leaves the
 * bell's set when its file is closed, its direct handle by bellOff().
 */
napi_value zc_poll_js_doorbell(napi_env env, napi_callback_info info)
{
	size_t argc = 3;
	napi_value argv[3], res;
	int32_t fd, direct = 0;
	struct watcher *w = zc_poll_arg_watcher(env, info);
	bool ok = false;

	if (!w)
		return NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    !zc_poll_arg_number(env, argv[1]) || napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0 ||
	    (argc > 2 && (!zc_poll_arg_number(env, argv[2]) || napi_get_value_int32(env, argv[2], &direct) != napi_ok))) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll.doorbell(handle, fd, direct): expected an fd");
		return NULL;
	}
	/* a loop that sleeps in this ring for good (loopWait 'ring') never polls it */
	if (w->prep && !w->adaptive)
		direct = 0;
	if (!w->closed)
		ok = (direct && zc_poll_direct_add(w, fd)) || zc_poll_bell_add(w, fd);
	napi_get_boolean(env, ok, &res);
	return res;
}

/*
 * bellOff(handle, fd): fd's receive ended, was canceled, or its fd is about to
 * close: its direct handle (if any) leaves libuv's epoll set now and closes.
 */
napi_value zc_poll_js_bell_off(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	int32_t fd;
	struct watcher *w = zc_poll_arg_watcher(env, info);

	if (!w)
		return NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    !zc_poll_arg_number(env, argv[1]) || napi_get_value_int32(env, argv[1], &fd) != napi_ok) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll.bellOff(handle, fd): expected an fd");
		return NULL;
	}
	if (!w->closed)
		zc_poll_direct_close(w, fd);
	return NULL;
}

/*
 * bells(handle) -> [wakeups by the bell, drains of it, wakeups of the ring
 * fd's handle that delivered records] (tests, the bench): a receive's
 * records the ring fd delivered came one EINTR'd wait late, when the bell
 * was not polled or lost the race.
 */
napi_value zc_poll_js_bells(napi_env env, napi_callback_info info)
{
	napi_value res, v;
	struct watcher *w = zc_poll_arg_watcher(env, info);
	const double c[3] = { w ? w->bell_wakeups : 0, w ? w->bell_drains : 0, w ? w->ring_deliveries : 0 };

	if (!w || napi_create_array_with_length(env, 3, &res) != napi_ok)
		return NULL;
	for (uint32_t i = 0; i < 3; i++)
		if (napi_create_double(env, c[i], &v) != napi_ok || napi_set_element(env, res, i, v) != napi_ok)
			return NULL;
	return res;
}
