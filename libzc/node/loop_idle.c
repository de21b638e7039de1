// SPDX-License-Identifier: MIT
/*
 * The ring's sleep as libuv's idle time.
 *
 * Node configures its loops with UV_METRICS_IDLE_TIME and computes
 * performance.eventLoopUtilization() from uv_metrics_idle_time(): the time
 * libuv spent blocked in its own poll, which it counts around epoll_wait
 * with two hidden functions (src/uv-common.c):
 * uv__metrics_set_provider_entry_time() stores uv_hrtime() in
 * provider_entry_time before the wait, uv__metrics_update_idle_time() adds
 * now - entry to provider_idle_time and clears the entry after it, both
 * under the metrics' mutex (another thread reads a worker's idle time) and
 * only when the loop has UV_METRICS_IDLE_TIME.  A loop asleep in the ring
 * (sleep.c's prepare handle) never blocks in libuv's poll, so without this
 * an idle thread reads fully busy.  libuv has no public call for an
 * embedder's wait; zc_loop_idle_enter()/leave() do what those two do, on
 * the same fields, found through uv_loop_t's public internal_fields.
 *
 * The layout read here is libuv's struct uv__loop_internal_fields_s from
 * 1.45 (when uv_metrics_t moved in front of the two times) to 1.52.1 at
 * least: { unsigned flags; { uv_metrics_t metrics; uint64_t
 * provider_entry_time, provider_idle_time; uv_mutex_t lock; } loop_metrics;
 * ... } (Node 20.3+ ships 1.45+, 22 1.51, 24 and 26 1.52.1).  It is
 * private, so zc_loop_idle_init() checks it at run time before it ever
 * writes: the metrics where uv_metrics_info() reads them, the idle-time bit
 * set, no entry time outside libuv's poll, the idle time where
 * uv_metrics_idle_time() reads it and then moving by what a probe adds.
 * Any check failing leaves the loop untouched (the sleep then reads busy).
 *
 * enter/leave call libc, not libuv's wrappers: the clock is uv_hrtime()'s
 * (libuv's unix uv__hrtime(UV_CLOCK_PRECISE): clock_gettime(CLOCK_MONOTONIC)
 * in ns), the lock uv_mutex_lock()'s (pthread_mutex_lock(), abort() on
 * failure; uv_mutex_t is a pthread_mutex_t on unix).  leave runs on every
 * wakeup before the records reach JavaScript, with the caches cold after the
 * sleep, and libuv's wrappers are code in Node's binary that nothing else on
 * that path runs: libc's are warm (docs/PERFORMANCE.md, Session 26 wake26:
 * ~75 ns less per wakeup).
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime() under -std=c11 */
#include "loop_idle.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

/* libuv 1.x's struct uv_loop_s up to internal_fields (public, uv.h) */
struct loop_head {
	void *data;
	unsigned int active_handles;
	void *handle_queue[2]; /* struct uv__queue { next, prev } from 1.46 */
	union {
		void *unused;
		unsigned int count;
	} active_reqs;
	void *internal_fields;
};

/* libuv 1.45-1.52's struct uv__loop_internal_fields_s up to the metrics' lock */
struct uv__loop_fields {
	unsigned int flags;
	struct {
		uv_metrics_t metrics;
		uint64_t provider_entry_time;
		uint64_t provider_idle_time;
		uv_mutex_t lock;
	} loop_metrics;
};

#if UINTPTR_MAX == UINT64_MAX
/* x86-64 and arm64 (LP64): the offsets libuv's own build has */
_Static_assert(offsetof(struct loop_head, internal_fields) == 40, "uv_loop_t.internal_fields");
_Static_assert(offsetof(struct uv__loop_fields, loop_metrics.metrics) == 8, "loop_metrics.metrics");
_Static_assert(offsetof(struct uv__loop_fields, loop_metrics.provider_entry_time) == 136, "provider_entry_time");
_Static_assert(offsetof(struct uv__loop_fields, loop_metrics.provider_idle_time) == 144, "provider_idle_time");
_Static_assert(offsetof(struct uv__loop_fields, loop_metrics.lock) == 152, "loop_metrics.lock");
#endif

/* uv_hrtime(), uv_mutex_lock(), uv_mutex_unlock() as libuv does them on unix */
static inline uint64_t now_ns(void)
{
	struct timespec t;

	if (clock_gettime(CLOCK_MONOTONIC, &t))
		return 0; /* libuv's answer to the impossible */
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static inline void lock(uv_mutex_t *m)
{
	if (pthread_mutex_lock(m))
		abort();
}

static inline void unlock(uv_mutex_t *m)
{
	if (pthread_mutex_unlock(m))
		abort();
}

/* tests/loop_idle.c, which includes this file, puts its stand-in libuv's
 * clock and lock in their place */
#ifndef LOOP_IDLE_NOW
#define LOOP_IDLE_NOW() now_ns()
#define LOOP_IDLE_LOCK(m) lock(m)
#define LOOP_IDLE_UNLOCK(m) unlock(m)
#endif

const char *zc_loop_idle_init(struct zc_loop_idle *li, struct uv_loop_s *loop)
{
	unsigned int v = uv_version();
	struct uv__loop_fields *f;
	uv_metrics_t m;
	uint64_t idle;

	li->f = NULL;
	if (v >> 16 != 1 || ((v >> 8) & 0xff) < 45)
		return "libuv is not 1.45 or a later 1.x: another layout of its loop metrics";
	if (!uv_metrics_info)
		return "libuv has no uv_metrics_info()";
	f = ((struct loop_head *)loop)->internal_fields;
	if (!f || (uintptr_t)f % _Alignof(struct uv__loop_fields) != 0)
		return "the loop's internal_fields pointer is NULL or misaligned";
	if (!(f->flags & UV_METRICS_IDLE_TIME))
		return "the loop does not count idle time (no UV_METRICS_IDLE_TIME in its flags)";
	if (uv_metrics_info(loop, &m) != 0 || memcmp(&m, &f->loop_metrics.metrics, sizeof(m)) != 0)
		return "uv_metrics_info() does not read the metrics where expected";
	/* only libuv's poll sets it, and clears it before any callback */
	if (f->loop_metrics.provider_entry_time != 0)
		return "an entry time is set outside libuv's poll";
	/* only this thread writes it: no lock needed to read */
	idle = f->loop_metrics.provider_idle_time;
	if (uv_metrics_idle_time(loop) != idle)
		return "uv_metrics_idle_time() does not read the idle time where expected";
	/* The probe: 1 ns more idle time, kept (taking it back would let another
	 * thread's reading go backwards). */
	uv_mutex_lock(&f->loop_metrics.lock);
	f->loop_metrics.provider_idle_time = idle + 1;
	uv_mutex_unlock(&f->loop_metrics.lock);
	if (uv_metrics_idle_time(loop) != idle + 1) {
		uv_mutex_lock(&f->loop_metrics.lock);
		f->loop_metrics.provider_idle_time = idle;
		uv_mutex_unlock(&f->loop_metrics.lock);
		return "uv_metrics_idle_time() did not move by the probe's 1 ns";
	}
	li->f = f;
	return NULL;
}

void zc_loop_idle_enter(const struct zc_loop_idle *li)
{
	struct uv__loop_fields *f = li->f;
	uint64_t now;

	if (!f)
		return;
	now = LOOP_IDLE_NOW();
	LOOP_IDLE_LOCK(&f->loop_metrics.lock);
	f->loop_metrics.provider_entry_time = now;
	LOOP_IDLE_UNLOCK(&f->loop_metrics.lock);
}

void zc_loop_idle_leave(const struct zc_loop_idle *li)
{
	struct uv__loop_fields *f = li->f;
	uint64_t now, entry;

	/* only this thread sets it: read without the lock, as libuv does */
	if (!f || f->loop_metrics.provider_entry_time == 0)
		return;
	now = LOOP_IDLE_NOW();
	LOOP_IDLE_LOCK(&f->loop_metrics.lock);
	entry = f->loop_metrics.provider_entry_time;
	f->loop_metrics.provider_entry_time = 0;
	f->loop_metrics.provider_idle_time += now - entry;
	LOOP_IDLE_UNLOCK(&f->loop_metrics.lock);
}
