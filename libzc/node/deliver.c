// SPDX-License-Identifier: MIT
/*
 * Records into JavaScript: the ring fd's wakeup reaps in C, and
 * zc_poll_deliver() calls the watcher's cb(n) once, inside a callback scope
 * (napi_make_callback: Node runs the nextTicks and microtasks after it, as
 * for its own I/O).  The doorbell's wakeups (bell.c, direct.c) and the
 * sleep in the ring (sleep.c) deliver through it too.
 */
#include "zc_poll.h"

/* The ring fd's (or eventfd's) poll handle: readable, or an error. */
void zc_poll_on_readable(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct watcher *w = h->data;
	int32_t n = status < 0 ? status : w->reap(w->ring, w->out, w->max);
	w->ring_woke = true;
	if (n > 0)
		w->ring_deliveries++;
	zc_poll_deliver(w, n);
}

void zc_poll_deliver(struct watcher *w, int32_t n)
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
