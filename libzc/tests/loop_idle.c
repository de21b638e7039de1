// SPDX-License-Identifier: MIT
/*
 * zc_poll.node's loop_idle.c (the ring's sleep as libuv's idle time)
 * against a stand-in for libuv: the five public calls it makes, written
 * here as libuv 1.52 has them, over a loop whose private fields this test
 * lays out.  Real Node runs (tests/ts/loop-idle.test.ts) cover the layout
 * of the libuv each Node ships; this covers what no shipped libuv can: a
 * layout that differs must be refused with no byte of the loop changed,
 * and the probe's write taken back when it is what catches the difference.
 */
#include <errno.h>
#include <pthread.h>

#include "helpers.h"
/* enter/leave call libc's clock and lock in the addon; here the stand-in's */
#define LOOP_IDLE_NOW() uv_hrtime()
#define LOOP_IDLE_LOCK(m) uv_mutex_lock(m)
#define LOOP_IDLE_UNLOCK(m) uv_mutex_unlock(m)
#include "node/loop_idle.c"

/* libuv's uv_loop_t head (public) and two layouts of its internal fields. */
struct fake_loop {
	void *data;
	unsigned int active_handles;
	struct {
		void *next, *prev;
	} handle_queue;
	union {
		void *unused;
		unsigned int count;
	} active_reqs;
	void *internal_fields;
	unsigned int stop_flag;
};

/* libuv's uv__loop_metrics_t from 1.45 */
struct loop_metrics {
	uv_metrics_t metrics;
	uint64_t provider_entry_time;
	uint64_t provider_idle_time;
	uv_mutex_t lock;
};

/* libuv 1.45-1.52 */
struct fields_152 {
	unsigned int flags;
	struct loop_metrics loop_metrics;
	int current_timeout;
	char iou[256];
};

/* A libuv that would add a word in front of the metrics. */
struct fields_shifted {
	unsigned int flags;
	uint64_t added;
	struct loop_metrics loop_metrics;
	int current_timeout;
	char iou[256];
};

static union {
	struct fields_152 now;
	struct fields_shifted shifted;
} fields;
static struct fake_loop loop_s;
static struct uv_loop_s *const loop = (struct uv_loop_s *)&loop_s;
static bool shifted;		/* which layout the stand-in libuv reads */
static unsigned int version = 0x013401; /* 1.52.1 */
static uint64_t clock_ns = 1000;
static uv_mutex_t *held;	/* the fake mutex: who holds it */
static unsigned int locks;

unsigned int uv_version(void)
{
	return version;
}

uint64_t uv_hrtime(void)
{
	return clock_ns;
}

void uv_mutex_lock(uv_mutex_t *m)
{
	CHECK(held == NULL);
	held = m;
	locks++;
}

void uv_mutex_unlock(uv_mutex_t *m)
{
	CHECK(held == m);
	held = NULL;
}

#define METRICS(f) (shifted ? &(f).shifted.loop_metrics : &(f).now.loop_metrics)

/* as libuv's uv-common.c */
int uv_metrics_info(struct uv_loop_s *l, uv_metrics_t *m)
{
	CHECK(l == loop);
	memcpy(m, &METRICS(fields)->metrics, sizeof(*m));
	return 0;
}

uint64_t uv_metrics_idle_time(struct uv_loop_s *l)
{
	uint64_t idle, entry;
	CHECK(l == loop);
	uv_mutex_lock(&METRICS(fields)->lock);
	idle = METRICS(fields)->provider_idle_time;
	entry = METRICS(fields)->provider_entry_time;
	uv_mutex_unlock(&METRICS(fields)->lock);
	if (entry > 0)
		idle += uv_hrtime() - entry;
	return idle;
}

/* A loop that has run: flags, metrics and idle time as Node's would have them. */
static void reset(bool shift)
{
	memset(&fields, 0, sizeof(fields));
	memset(&loop_s, 0, sizeof(loop_s));
	loop_s.internal_fields = &fields;
	shifted = shift;
	version = 0x013401;
	locks = 0;
	held = NULL;
	fields.now.flags = UV_METRICS_IDLE_TIME;
	METRICS(fields)->metrics.loop_count = 41;
	METRICS(fields)->metrics.events = 17;
	METRICS(fields)->metrics.events_waiting = 2;
	METRICS(fields)->provider_idle_time = 123456;
}

/* init refuses, and the loop is as it was, byte for byte. */
static void refused(const char *what)
{
	struct zc_loop_idle li = { (struct uv__loop_fields *)&fields };
	unsigned char before[sizeof(fields)];
	memcpy(before, &fields, sizeof(fields));
	const char *why = zc_loop_idle_init(&li, loop);
	if (why == NULL) {
		fprintf(stderr, "%s: accepted\n", what);
		exit(1);
	}
	printf("refused (%s): %s\n", what, why);
	CHECK(li.f == NULL);
	CHECK(memcmp(before, &fields, sizeof(fields)) == 0);
	/* unarmed: enter and leave write nothing */
	zc_loop_idle_enter(&li);
	clock_ns += 500;
	zc_loop_idle_leave(&li);
	CHECK(memcmp(before, &fields, sizeof(fields)) == 0);
	CHECK(held == NULL);
}

int main(void)
{
	struct zc_loop_idle li;

	/* The layout of libuv 1.45-1.52: accepted; the probe's 1 ns is kept. */
	reset(false);
	CHECK(zc_loop_idle_init(&li, loop) == NULL);
	CHECK(li.f == (struct uv__loop_fields *)&fields);
	CHECK_EQ(fields.now.loop_metrics.provider_idle_time, 123457);
	CHECK_EQ(uv_metrics_idle_time(loop), 123457);
	CHECK(held == NULL);

	/* A sleep: idle while it lasts (another thread's reading), added after. */
	unsigned int l0 = locks;
	clock_ns = 5000;
	zc_loop_idle_enter(&li);
	CHECK_EQ(fields.now.loop_metrics.provider_entry_time, 5000);
	clock_ns = 6000;
	CHECK_EQ(uv_metrics_idle_time(loop), 123457 + 1000);
	clock_ns = 9000;
	zc_loop_idle_leave(&li);
	CHECK_EQ(fields.now.loop_metrics.provider_entry_time, 0);
	CHECK_EQ(fields.now.loop_metrics.provider_idle_time, 123457 + 4000);
	CHECK_EQ(uv_metrics_idle_time(loop), 123457 + 4000);
	CHECK_EQ(locks - l0, 4); /* enter, leave, the two readings */
	/* leave with no sleep entered (libuv's poll cleared it): nothing, no lock */
	l0 = locks;
	clock_ns = 20000;
	zc_loop_idle_leave(&li);
	CHECK_EQ(fields.now.loop_metrics.provider_idle_time, 123457 + 4000);
	CHECK_EQ(locks, l0);
	/* the metrics words and the lock are where libuv's LP64 build has them */
	CHECK_EQ((char *)&fields.now.loop_metrics.lock - (char *)&fields, 152);

	/* A fresh loop (nothing counted yet) is accepted too. */
	reset(false);
	memset(&fields.now.loop_metrics.metrics, 0, sizeof(uv_metrics_t));
	fields.now.loop_metrics.provider_idle_time = 0;
	CHECK(zc_loop_idle_init(&li, loop) == NULL);
	CHECK_EQ(uv_metrics_idle_time(loop), 1);

	/* Refused, untouched: */
	reset(false);
	version = 0x012c02; /* 1.44.2: idle times before the metrics */
	refused("libuv 1.44.2");
	reset(false);
	version = 0x020000;
	refused("libuv 2.0.0");
	reset(false);
	fields.now.flags = 0;
	refused("no UV_METRICS_IDLE_TIME");
	reset(false);
	loop_s.internal_fields = NULL;
	refused("no internal fields");
	reset(false);
	fields.now.loop_metrics.provider_entry_time = 777;
	refused("an entry time set");
	/* a word added in front of the metrics: the metrics differ */
	reset(true);
	refused("shifted layout, a loop that has run");
	/* the same on a loop with every count still 0: the metrics and the
	 * idle time read alike at both places; only the probe tells (it wrote
	 * the shifted layout's entry time), and it is taken back */
	reset(true);
	memset(&fields.shifted.loop_metrics.metrics, 0, sizeof(uv_metrics_t));
	fields.shifted.loop_metrics.provider_idle_time = 0;
	clock_ns = 50000;
	refused("shifted layout, a fresh loop");

	printf("loop_idle: ok\n");
	/* The addon's own clock and lock (libc's, as libuv's unix uv_hrtime()
	 * and uv_mutex_lock()/unlock() are): CLOCK_MONOTONIC in ns, a lock. */
	{
		struct timespec a, b;
		pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;

		CHECK(clock_gettime(CLOCK_MONOTONIC, &a) == 0);
		uint64_t t = now_ns();
		CHECK(clock_gettime(CLOCK_MONOTONIC, &b) == 0);
		CHECK((uint64_t)a.tv_sec * 1000000000u + (uint64_t)a.tv_nsec <= t);
		CHECK(t <= (uint64_t)b.tv_sec * 1000000000u + (uint64_t)b.tv_nsec);
		lock(&m);
		CHECK(pthread_mutex_trylock(&m) == EBUSY);
		unlock(&m);
		CHECK(pthread_mutex_trylock(&m) == 0);
		CHECK(pthread_mutex_unlock(&m) == 0);
	}
	return 0;
}
