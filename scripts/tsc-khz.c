// SPDX-License-Identifier: MIT
/*
 * tsc-khz: print this x86-64 host's TSC rate in kHz, measured against
 * CLOCK_MONOTONIC_RAW.  scripts/vm-clock.sh passes it to TCG guests as
 * tsc_early_khz=: a TCG guest's TSC is the host's TSC (QEMU reads the host
 * counter for RDTSC), so the guest needs no calibration of its own, and a
 * calibration disturbed by a starved vCPU thread cannot make its clock run
 * fast (seen once: a stock guest's uptime ran 13x the wall time).
 *
 * Five windows of 50 ms; each edge is bracketed by two TSC reads and
 * retried when they are more than 20 us apart (the thread was preempted).
 * Prints the median.  Exit 1 if no window could be measured.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

#define WINDOWS 5
#define WINDOW_NS 50000000LL
#define EDGE_TRIES 100

static int64_t ns_now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_RAW, &t);
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* One edge: a clock reading and the TSC at the same instant (the midpoint
 * of two TSC reads around it, no more than max_gap ticks apart). */
static int edge(int64_t *ns, uint64_t *tsc, uint64_t max_gap)
{
	for (int i = 0; i < EDGE_TRIES; i++) {
		uint64_t a = __rdtsc();
		int64_t t = ns_now();
		uint64_t b = __rdtsc();

		if (b - a <= max_gap) {
			*ns = t;
			*tsc = a + (b - a) / 2;
			return 0;
		}
	}
	return -1;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(void)
{
	double khz[WINDOWS];
	int n = 0;
	/* 20 us at up to 10 GHz: generous, and still 0.04% of a window. */
	const uint64_t max_gap = 200000;

	for (int w = 0; w < WINDOWS; w++) {
		int64_t t0, t1;
		uint64_t c0, c1;

		if (edge(&t0, &c0, max_gap))
			continue;
		while (ns_now() - t0 < WINDOW_NS)
			;
		if (edge(&t1, &c1, max_gap))
			continue;
		khz[n++] = (double)(c1 - c0) * 1e6 / (double)(t1 - t0);
	}
	if (n == 0) {
		fprintf(stderr, "tsc-khz: no clean measurement window (preempted every time)\n");
		return 1;
	}
	qsort(khz, (size_t)n, sizeof(khz[0]), cmp);
	printf("%.0f\n", khz[n / 2]);
	return 0;
}
