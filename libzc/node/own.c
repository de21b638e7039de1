// SPDX-License-Identifier: MIT
/*
 * own(handle, fd) / disown(handle, fd): the ring's sockets, a bit per fd
 * number.  An fd still owned when the environment exits with the handle
 * open is closed then, after the ring (watcher.c has why).  JS disowns an
 * fd before it starts to close it (ts/socket/close.ts), so an owned fd is
 * open and ours; disown() also closes the fd's own doorbell handle
 * (direct.c), as the fd is about to close.
 */
#include "zc_poll.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* own(handle, fd) / disown(handle, fd) */
static napi_value own_fd(napi_env env, napi_callback_info info, bool own)
{
	size_t argc = 2;
	napi_value argv[2];
	napi_valuetype t;
	struct watcher *w = NULL;
	int32_t fd;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 ||
	    !(w = zc_poll_unwrap(env, argv[0])) || napi_typeof(env, argv[1], &t) != napi_ok || t != napi_number ||
	    napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0) {
		napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "zc_poll: expected a watcher handle and an fd");
		return NULL;
	}
	size_t byte = (size_t)fd / 8;
	uint8_t bit = (uint8_t)(1u << (fd % 8));
	if (!own) {
		if (byte < w->owned_len)
			w->owned[byte] &= (uint8_t)~bit;
		if (!w->closed)
			zc_poll_direct_close(w, fd); /* the fd is about to close */
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

napi_value zc_poll_js_own(napi_env env, napi_callback_info info)
{
	return own_fd(env, info, true);
}

napi_value zc_poll_js_disown(napi_env env, napi_callback_info info)
{
	return own_fd(env, info, false);
}

/* The environment's exit: close the fds still owned (close_fds: the
 * handle was open), and forget them. */
void zc_poll_owned_release(struct watcher *w, bool close_fds)
{
	if (close_fds)
		for (size_t i = 0; i < w->owned_len; i++)
			for (int b = 0; b < 8; b++)
				if (w->owned[i] & (1u << b))
					close((int)(i * 8 + (size_t)b));
	free(w->owned);
	w->owned = NULL;
	w->owned_len = 0;
}
