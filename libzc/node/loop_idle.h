/* SPDX-License-Identifier: MIT */
/*
 * The ring's sleep counted as libuv's idle time (loop_idle.c), so that
 * Node's performance.eventLoopUtilization() reads an idle thread as idle
 * while its loop sleeps in the ring (RingOptions.loopWait 'ring').
 */
#ifndef ZC_NODE_LOOP_IDLE_H
#define ZC_NODE_LOOP_IDLE_H

#include "napi.h"

struct uv__loop_fields; /* libuv's struct uv__loop_internal_fields_s, as loop_idle.c reads it */

struct zc_loop_idle {
	struct uv__loop_fields *f; /* NULL: nothing is counted (not verified) */
};

/*
 * Verify that loop's idle-time fields are where libuv 1.45 to 1.52 keep
 * them, with reads and public calls only, then with one probe write (1 ns
 * of idle time, kept: uv_metrics_idle_time() never goes backwards).
 * NULL: verified, enter/leave count from now on.  Otherwise the reason (a
 * static string), and li stays unarmed: enter/leave never write.
 * Call on the loop's own thread, outside libuv's poll (from JavaScript).
 */
const char *zc_loop_idle_init(struct zc_loop_idle *li, struct uv_loop_s *loop);

/* Around a sleep outside libuv's poll, on the loop's thread: what libuv's
 * uv__metrics_set_provider_entry_time() and uv__metrics_update_idle_time()
 * do around its epoll wait.  Both do nothing when li is unarmed. */
void zc_loop_idle_enter(const struct zc_loop_idle *li);
void zc_loop_idle_leave(const struct zc_loop_idle *li);

#endif
