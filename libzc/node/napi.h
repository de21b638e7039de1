/* SPDX-License-Identifier: MIT */
/*
 * The few Node-API and libuv declarations the addon (zc_poll.h) uses,
 * written out so the addon builds without Node's headers (Debian ships
 * them in libnode-dev, not with node) and cross-compiles like libzc.  Both
 * ABIs are stable: Node-API by its contract (version 8 here: Node >=
 * 12.22), libuv 1.x's by its own (uv_handle_t starts with `void *data`;
 * handle types and event bits never change within 1.x).  Every symbol is
 * resolved against the node binary when the addon is loaded.
 */
#ifndef ZC_NODE_NAPI_H
#define ZC_NODE_NAPI_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <pthread.h>

typedef struct napi_env__ *napi_env;
typedef struct napi_value__ *napi_value;
typedef struct napi_ref__ *napi_ref;
typedef struct napi_handle_scope__ *napi_handle_scope;
typedef struct napi_callback_info__ *napi_callback_info;
typedef struct napi_async_context__ *napi_async_context;
typedef enum { napi_ok = 0, napi_pending_exception = 10 } napi_status;
typedef enum {
	napi_undefined, napi_null, napi_boolean, napi_number, napi_string,
	napi_symbol, napi_object, napi_function, napi_external, napi_bigint,
} napi_valuetype;
typedef struct {
	uint64_t lower;
	uint64_t upper;
} napi_type_tag;
typedef napi_value (*napi_callback)(napi_env env, napi_callback_info info);
typedef void (*napi_finalize)(napi_env env, void *data, void *hint);

napi_status napi_create_function(napi_env env, const char *name, size_t length, napi_callback cb,
				 void *data, napi_value *result);
napi_status napi_set_named_property(napi_env env, napi_value object, const char *name, napi_value value);
napi_status napi_get_cb_info(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv,
			     napi_value *this_arg, void **data);
napi_status napi_get_value_int32(napi_env env, napi_value value, int32_t *result);
napi_status napi_get_value_uint32(napi_env env, napi_value value, uint32_t *result);
napi_status napi_get_value_int64(napi_env env, napi_value value, int64_t *result);
napi_status napi_get_value_double(napi_env env, napi_value value, double *result);
napi_status napi_get_boolean(napi_env env, bool value, napi_value *result);
napi_status napi_create_int32(napi_env env, int32_t value, napi_value *result);
napi_status napi_create_double(napi_env env, double value, napi_value *result);
napi_status napi_create_array_with_length(napi_env env, size_t length, napi_value *result);
napi_status napi_set_element(napi_env env, napi_value object, uint32_t index, napi_value value);
napi_status napi_create_object(napi_env env, napi_value *result);
napi_status napi_create_string_utf8(napi_env env, const char *str, size_t length, napi_value *result);
napi_status napi_get_undefined(napi_env env, napi_value *result);
napi_status napi_create_external(napi_env env, void *data, napi_finalize finalize_cb, void *finalize_hint,
				 napi_value *result);
napi_status napi_get_value_external(napi_env env, napi_value value, void **result);
napi_status napi_create_reference(napi_env env, napi_value value, uint32_t initial_refcount, napi_ref *result);
napi_status napi_delete_reference(napi_env env, napi_ref ref);
napi_status napi_get_reference_value(napi_env env, napi_ref ref, napi_value *result);
napi_status napi_open_handle_scope(napi_env env, napi_handle_scope *result);
napi_status napi_close_handle_scope(napi_env env, napi_handle_scope scope);
napi_status napi_throw_error(napi_env env, const char *code, const char *msg);
napi_status napi_throw_type_error(napi_env env, const char *code, const char *msg);
napi_status napi_throw_range_error(napi_env env, const char *code, const char *msg);
napi_status napi_typeof(napi_env env, napi_value value, napi_valuetype *result);
napi_status napi_wrap(napi_env env, napi_value js_object, void *native_object, napi_finalize finalize_cb,
		      void *finalize_hint, napi_ref *result);
napi_status napi_unwrap(napi_env env, napi_value js_object, void **result);
napi_status napi_get_value_bigint_uint64(napi_env env, napi_value value, uint64_t *result, bool *lossless);
napi_status napi_create_external_arraybuffer(napi_env env, void *external_data, size_t byte_length,
					    napi_finalize finalize_cb, void *finalize_hint, napi_value *result);
typedef enum {
	napi_int8_array, napi_uint8_array, napi_uint8_clamped_array, napi_int16_array,
	napi_uint16_array, napi_int32_array, napi_uint32_array, napi_float32_array,
	napi_float64_array, napi_bigint64_array, napi_biguint64_array,
} napi_typedarray_type;
napi_status napi_is_typedarray(napi_env env, napi_value value, bool *result);
napi_status napi_get_typedarray_info(napi_env env, napi_value typedarray, napi_typedarray_type *type,
				     size_t *length, void **data, napi_value *arraybuffer, size_t *byte_offset);
/* Node-API 5 */
napi_status napi_add_finalizer(napi_env env, napi_value js_object, void *finalize_data, napi_finalize finalize_cb,
			       void *finalize_hint, napi_ref *result);
/* Node-API 8 */
napi_status napi_type_tag_object(napi_env env, napi_value value, const napi_type_tag *type_tag);
napi_status napi_check_object_type_tag(napi_env env, napi_value value, const napi_type_tag *type_tag, bool *result);
napi_status napi_get_and_clear_last_exception(napi_env env, napi_value *result);
napi_status napi_fatal_exception(napi_env env, napi_value err);
napi_status napi_async_init(napi_env env, napi_value async_resource, napi_value async_resource_name,
			    napi_async_context *result);
napi_status napi_async_destroy(napi_env env, napi_async_context async_context);
napi_status napi_make_callback(napi_env env, napi_async_context async_context, napi_value recv, napi_value func,
			       size_t argc, const napi_value *argv, napi_value *result);
napi_status napi_add_env_cleanup_hook(napi_env env, void (*fun)(void *arg), void *arg);
napi_status napi_remove_env_cleanup_hook(napi_env env, void (*fun)(void *arg), void *arg);
struct uv_loop_s;
napi_status napi_get_uv_event_loop(napi_env env, struct uv_loop_s **loop);

/* libuv 1.x */
typedef struct uv_handle_s {
	void *data;
} uv_handle_t;
typedef uv_handle_t uv_poll_t;
typedef void (*uv_poll_cb)(uv_poll_t *handle, int status, int events);
typedef void (*uv_close_cb)(uv_handle_t *handle);
enum { UV_POLL = 8 };
enum { UV_READABLE = 1 };
size_t uv_handle_size(int type);
int uv_poll_init(struct uv_loop_s *loop, uv_poll_t *handle, int fd);
int uv_poll_start(uv_poll_t *handle, int events, uv_poll_cb cb);
int uv_poll_stop(uv_poll_t *handle);
void uv_close(uv_handle_t *handle, uv_close_cb close_cb);
void uv_ref(uv_handle_t *handle);
void uv_unref(uv_handle_t *handle);
enum { UV_IDLE = 6, UV_PREPARE = 9 };
typedef void (*uv_any_cb)(uv_handle_t *handle);
int uv_prepare_init(struct uv_loop_s *loop, uv_handle_t *h);
int uv_prepare_start(uv_handle_t *h, uv_any_cb cb);
int uv_prepare_stop(uv_handle_t *h);
int uv_idle_init(struct uv_loop_s *loop, uv_handle_t *h);
int uv_idle_start(uv_handle_t *h, uv_any_cb cb);
int uv_idle_stop(uv_handle_t *h);
int uv_backend_fd(const struct uv_loop_s *loop);
int uv_backend_timeout(const struct uv_loop_s *loop);
void uv_update_time(struct uv_loop_s *loop);
int uv_is_active(const uv_handle_t *handle);

/* libuv's loop metrics (loop_idle.c) */
typedef pthread_mutex_t uv_mutex_t; /* libuv's unix uv_mutex_t */
typedef struct {
	uint64_t loop_count;
	uint64_t events;
	uint64_t events_waiting;
	uint64_t *reserved[13];
} uv_metrics_t;
enum { UV_METRICS_IDLE_TIME = 1 }; /* uv_loop_option; libuv keeps it as a flag bit */
unsigned int uv_version(void);
uint64_t uv_hrtime(void);
void uv_mutex_lock(uv_mutex_t *mutex);
void uv_mutex_unlock(uv_mutex_t *mutex);
uint64_t uv_metrics_idle_time(struct uv_loop_s *loop); /* libuv 1.39 */
/* libuv 1.45 (Node 20.3): weak, so the addon still loads on an older one (NULL there) */
__attribute__((weak)) int uv_metrics_info(struct uv_loop_s *loop, uv_metrics_t *metrics);

#endif
