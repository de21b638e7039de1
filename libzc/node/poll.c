// SPDX-License-Identifier: MIT
/*
 * zc_poll.node: a ring's eventfd watcher on Node's own event loop that reaps
 * in C and enters JavaScript once per wakeup, inside a callback scope.
 *
 * The JS path it replaces (ts/ffi/libzc.ts watchReadable) is a koffi poll
 * handle: koffi calls a JS function with no callback scope, that function
 * makes a koffi call to zc_reap(), and a setImmediate() then has Node drain
 * the microtasks the records' handlers queued.  Here the uv_poll_t calls
 * zc_reap() itself, then napi_make_callback(cb, n): Node runs the nextTicks
 * and microtasks when the callback returns, as for its own I/O.
 *
 * JS API (ts/ffi/poll.ts):
 *   watch(fd, reapFn, ring, out, max, cb) -> handle   cb(n) after
 *       n = reapFn(ring, out, max) (zc_reap's address, the ring, the records
 *       buffer; n < 0 is -errno); the handle starts referenced
 *   ref(handle), unref(handle), stop(handle), close(handle)
 * close() is final and may be called from inside cb; a handle dropped
 * without close() is closed by its finalizer or at the environment's exit.
 *
 * Not linked against libzc: the caller hands in zc_reap's address (koffi has
 * it), so the addon needs nothing from libc's dynamic loader either.
 */
#include "napi.h"

#include <stdlib.h>

typedef int (*reap_fn)(void *ring, void *out, uint32_t max);

struct watcher {
	napi_env env;
	uv_poll_t *poll; /* freed by its close callback */
	napi_ref cb;
	napi_ref resource; /* the async resource, also the callback's receiver */
	napi_async_context actx;
	reap_fn reap;
	void *ring;
	void *out;
	uint32_t max;
	bool closed;
};

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

/* Stop and close the uv handle and drop the JS references; idempotent. */
static void release(struct watcher *w)
{
	if (w->closed)
		return;
	w->closed = true;
	uv_poll_stop(w->poll);
	uv_close(w->poll, poll_closed);
	w->poll = NULL;
	napi_remove_env_cleanup_hook(w->env, on_env_exit, w);
	napi_delete_reference(w->env, w->cb);
	napi_delete_reference(w->env, w->resource);
	napi_async_destroy(w->env, w->actx);
}

/*
 * The environment is going away (worker exit or termination, or the main
 * thread's) with the handle open.  Its cleanup hooks run before Node-API's
 * own teardown (they run last-added first), so the references and the async
 * context are still there to release; the finalizer then only frees w.
 */
static void on_env_exit(void *arg)
{
	release(arg);
}

static void finalize(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	struct watcher *w = data;
	release(w);
	free(w);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct watcher *w = h->data;
	napi_env env = w->env;
	int32_t n = status < 0 ? status : w->reap(w->ring, w->out, w->max);
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
	void *w = NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
	    napi_get_value_external(env, argv[0], &w) != napi_ok || w == NULL) {
		napi_throw_error(env, NULL, "zc_poll: expected a watcher handle");
		return NULL;
	}
	return w;
}

static napi_value js_watch(napi_env env, napi_callback_info info)
{
	size_t argc = 6;
	napi_value argv[6], ext = NULL, res, name;
	int32_t fd;
	int64_t fn, ring, out;
	uint32_t max;
	struct uv_loop_s *loop;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 ||
	    napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &fn) != napi_ok ||
	    napi_get_value_int64(env, argv[2], &ring) != napi_ok || napi_get_value_int64(env, argv[3], &out) != napi_ok ||
	    napi_get_value_uint32(env, argv[4], &max) != napi_ok || fn == 0 || ring == 0 || out == 0) {
		napi_throw_error(env, NULL, "zc_poll.watch(fd, reapFn, ring, out, max, cb): bad arguments");
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
	w->ring = (void *)(uintptr_t)ring;
	w->out = (void *)(uintptr_t)out;
	w->max = max;
	if (napi_create_object(env, &res) != napi_ok ||
	    napi_create_string_utf8(env, "uring-zc:ring", (size_t)-1, &name) != napi_ok ||
	    napi_create_reference(env, argv[5], 1, &w->cb) != napi_ok ||
	    napi_create_reference(env, res, 1, &w->resource) != napi_ok ||
	    napi_async_init(env, res, name, &w->actx) != napi_ok ||
	    napi_create_external(env, w, finalize, NULL, &ext) != napi_ok) {
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
	return ext;
}

static napi_value js_ref(napi_env env, napi_callback_info info)
{
	struct watcher *w = arg_watcher(env, info);
	if (w && !w->closed)
		uv_ref(w->poll);
	return NULL;
}

static napi_value js_unref(napi_env env, napi_callback_info info)
{
	struct watcher *w = arg_watcher(env, info);
	if (w && !w->closed)
		uv_unref(w->poll);
	return NULL;
}

static napi_value js_stop(napi_env env, napi_callback_info info)
{
	struct watcher *w = arg_watcher(env, info);
	if (w && !w->closed)
		uv_poll_stop(w->poll);
	return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
	struct watcher *w = arg_watcher(env, info);
	if (w)
		release(w);
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
	};
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		napi_value f;
		if (napi_create_function(env, fns[i].name, (size_t)-1, fns[i].fn, NULL, &f) != napi_ok ||
		    napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
			return NULL;
	}
	return exports;
}
