// SPDX-License-Identifier: MIT
/*
 * flusher(handle, flushBatchFn, ops, rcs) -> flushBatch(n, max): a function
 * bound to this watcher's ring and records buffer and to the batch's arrays
 * (ops: a Uint8Array of struct zc_batch_op, rcs: an Int32Array; both kept
 * alive, their capacity taken from their length): flushBatch(n, max) =
 * flushBatchFn(ring, ops, n, rcs, out, max) (zc_flush_batch's address; n 0
 * is zc_flush()).  n above the arrays' capacity or max above the watch()'s
 * is a RangeError, a closed handle an Error: nothing is called then.  A
 * direct Node-API call of two numbers instead of koffi's generic one of six
 * (docs/PERFORMANCE.md, Session 18 napi18).  The arrays must not be
 * transferred (Ring's are private).
 */
#include "zc_poll.h"

#include <stdio.h>

#include "../libzc.h" /* struct zc_batch_op: the ops array's element */

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
	zc_poll_put(data);
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
napi_value zc_poll_js_flusher(napi_env env, napi_callback_info info)
{
	size_t argc = 4, ops_len, rcs_len;
	napi_value argv[4], f;
	int64_t fn;
	void *ops, *rcs;
	struct watcher *w = zc_poll_arg_watcher(env, info);
	if (!w)
		return NULL;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
	    !zc_poll_arg_number(env, argv[1]) || napi_get_value_int64(env, argv[1], &fn) != napi_ok || fn == 0 ||
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
