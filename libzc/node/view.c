// SPDX-License-Identifier: MIT
/*
 * view(addr, len) -> ArrayBuffer over len bytes of native memory at addr (a
 * bigint or number; libzc's pools and receive areas; len an integer number,
 * 4 GiB and more too), no copy; the memory must outlive every view (libzc
 * retires, never unmaps, what JS may still see).
 */
#include "zc_poll.h"

/*
 * koffi.view() does the same, but it type-checks koffi's pointer object
 * through Node-API, which fails once a worker's terminate() started, and
 * koffi's failing throw then aborts the process.  Here a failure leaves an
 * exception pending (or, when the thread is being terminated, nothing):
 * the caller gets undefined and the thread stops.
 */
napi_value zc_poll_js_view(napi_env env, napi_callback_info info)
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
