// SPDX-License-Identifier: MIT
/*
 * The watcher as every part of zc_poll.node (zc_poll.h) holds it: the handle
 * JS is given, type-tagged and checked at each call; its owners (the
 * handle's wrap, the flushBatch function), the last of which frees it; and
 * the close callback of its uv handles.
 */
#include "zc_poll.h"

#include <stdlib.h>

/* Marks the handles watch() returns (random; any change is a new ABI). */
const napi_type_tag zc_poll_tag = { 0x7a635f706f6c6c31ULL, 0x9e3779b97f4a7c15ULL };

/* The watcher of v, a handle from watch(); NULL for anything else. */
struct watcher *zc_poll_unwrap(napi_env env, napi_value v)
{
	napi_valuetype t;
	bool tagged = false;
	void *w = NULL;
	if (napi_typeof(env, v, &t) != napi_ok || t != napi_object ||
	    napi_check_object_type_tag(env, v, &zc_poll_tag, &tagged) != napi_ok || !tagged ||
	    napi_unwrap(env, v, &w) != napi_ok)
		return NULL;
	return w;
}

/* The call's first argument's watcher, else a TypeError (pending) and NULL. */
struct watcher *zc_poll_arg_watcher(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value argv[1];
	struct watcher *w = NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    !(w = zc_poll_unwrap(env, argv[0]))) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll: expected a watcher handle from watch()");
		return NULL;
	}
	return w;
}

/* A number argument, else a TypeError (a pending exception) and false. */
bool zc_poll_arg_number(napi_env env, napi_value v)
{
	napi_valuetype t;
	if (napi_typeof(env, v, &t) == napi_ok && t == napi_number)
		return true;
	napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
			      "zc_poll.watch(fd, reapFn, ring, out, max, cb, destroyFn): expected numbers and a function");
	return false;
}

/* Drop one of w's owners (the handle's finalizer, flushBatch's). */
void zc_poll_put(struct watcher *w)
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
void zc_poll_closed(uv_handle_t *h)
{
	free(h);
}
