// SPDX-License-Identifier: MIT
/*
 * zc_poll.node's entry (zc_poll.h has the addon's overview, its JS API):
 * watch() makes a ring's watcher, a uv_poll_t on the ring fd whose wakeups
 * deliver.c hands to JavaScript; ref/unref/stop/close act on every handle
 * of it (the ring fd's, the sleep's: sleep.c, the doorbell's: doorbell.c);
 * and the module's exports.
 *
 * close() is final and may be called from inside cb; a handle dropped
 * without close() is closed by its finalizer or at the environment's exit.
 *
 * The environment's exit with the handle still open (a worker stopped by
 * terminate(), which runs no JavaScript at exit) also destroys the ring:
 * destroyFn(ring, 0) (zc_ring_destroy_timeout's address, 0: none).  The JS
 * side closes the handle before it destroys the ring itself, so an open
 * handle means a live ring and the ring is destroyed once.  The fds given
 * with own() and not taken back with disown() (the ring's sockets: JS
 * disowns an fd before it starts to close it, so an owned fd is open and
 * ours) are closed then too, after the ring (own.c).  disown() also closes
 * the fd's own doorbell handle (direct.c).
 */
#include "zc_poll.h"

#include <stdlib.h>

static void on_env_exit(void *arg);

/* Stop and close the uv handles and drop the JS references; idempotent. */
static void release(struct watcher *w)
{
	if (w->closed)
		return;
	w->closed = true;
	uv_poll_stop(w->poll);
	uv_close(w->poll, zc_poll_closed);
	if (w->prep)
		zc_poll_sleep_close(w);
	w->poll = NULL;
	zc_poll_doorbell_close(w); /* out of libuv's epoll set before the ring's sockets close */
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
	zc_poll_owned_release(w, open);
}

static void finalize(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	struct watcher *w = data;
	release(w);
	zc_poll_put(w);
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
		if (i != 5 && !zc_poll_arg_number(env, argv[i]))
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
	    napi_type_tag_object(env, handle, &zc_poll_tag) != napi_ok ||
	    napi_wrap(env, handle, w, finalize, NULL, NULL) != napi_ok) {
		/* the handle is initialized: it must be closed, not freed */
		uv_close(p, zc_poll_closed);
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
	rc = uv_poll_start(p, UV_READABLE, zc_poll_on_readable);
	if (rc < 0) {
		release(w);
		napi_throw_error(env, NULL, "zc_poll: uv_poll_start failed");
		return NULL;
	}
	return handle;
}

static napi_value js_ref(napi_env env, napi_callback_info info)
{
	struct watcher *w = zc_poll_arg_watcher(env, info);
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
	struct watcher *w = zc_poll_arg_watcher(env, info);
	if (w && !w->closed) {
		w->refed = false;
		uv_unref(w->poll);
		if (w->prep)
			uv_unref(w->prep);
	}
	return NULL;
}

static napi_value js_stop(napi_env env, napi_callback_info info)
{
	struct watcher *w = zc_poll_arg_watcher(env, info);
	if (w && !w->closed) {
		uv_poll_stop(w->poll);
		zc_poll_doorbell_stop(w);
		if (w->prep) {
			uv_prepare_stop(w->prep);
			uv_idle_stop(w->idle);
		}
	}
	return NULL;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
	struct watcher *w = zc_poll_arg_watcher(env, info);
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
		{ "watch", js_watch },
		{ "ref", js_ref },
		{ "unref", js_unref },
		{ "stop", js_stop },
		{ "close", js_close },
		{ "view", zc_poll_js_view },
		{ "own", zc_poll_js_own },
		{ "disown", zc_poll_js_disown },
		{ "sleepIn", zc_poll_js_sleep_in },
		{ "sleepIdle", zc_poll_js_sleep_idle },
		{ "sleepOut", zc_poll_js_sleep_out },
		{ "sleepState", zc_poll_js_sleep_state },
		{ "flusher", zc_poll_js_flusher },
		{ "doorbell", zc_poll_js_doorbell },
		{ "bells", zc_poll_js_bells },
		{ "due", zc_poll_js_due },
		{ "bellOff", zc_poll_js_bell_off },
		{ "directs", zc_poll_js_directs },
	};
	for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		napi_value f;
		if (napi_create_function(env, fns[i].name, (size_t)-1, fns[i].fn, NULL, &f) != napi_ok ||
		    napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
			return NULL;
	}
	return exports;
}
