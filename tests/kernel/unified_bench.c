// SPDX-License-Identifier: MIT
/*
 * Message-style zero-copy send benchmark for the cover letter of patches/:
 * UDP over loopback, registered buffers, a fixed number of sends in flight.
 * A send counts as complete when its buffer may be reused:
 *
 *   two-CQE   stock SEND_ZC: result CQE (F_MORE), then the F_NOTIF CQE
 *   unified   SEND_ZC | IORING_SEND_ZC_UNIFIED: the single CQE
 *   copy      plain IORING_OP_SEND, for reference (buffer free at its CQE)
 *
 * Both zero-copy modes run in the same process, interleaved round by round,
 * so the ratio is meaningful even on a noisy (or emulated) machine.
 *
 *   unified_bench [--sizes 1024,4096,16384,65000] [--ms 500] [--rounds 3]
 *                 [--depth 32]
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <sys/utsname.h>

#include "common.h"

enum mode { M_TWO_CQE, M_UNIFIED, M_COPY, M_NR };
static const char *const mode_name[M_NR] = { "two-CQE", "unified", "copy" };

struct result {
	uint64_t sends;		/* completed (buffer released) */
	uint64_t cqes;
	uint64_t ns;		/* wall time of the runs */
	uint64_t *lat;		/* submit -> final CQE, ns */
	size_t nlat, caplat;
	int errors;
};

static volatile int rx_stop;

static void *rx_thread(void *arg)
{
	int fd = *(int *)arg;
	static char buf[65536];

	while (!rx_stop)
		(void)recv(fd, buf, sizeof(buf), 0);	/* SO_RCVTIMEO bounds it */
	return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(struct result *r, double p)
{
	size_t i;

	if (!r->nlat)
		return 0;
	i = (size_t)(p * (double)(r->nlat - 1));
	return (double)r->lat[i] / 1000.0;
}

static void lat_add(struct result *r, uint64_t v)
{
	if (r->nlat == r->caplat) {
		size_t cap = r->caplat ? r->caplat * 2 : 65536;
		uint64_t *n = realloc(r->lat, cap * sizeof(*n));

		if (!n)
			return;
		r->lat = n;
		r->caplat = cap;
	}
	r->lat[r->nlat++] = v;
}

/* One timed run of `mode` with `size`-byte datagrams. */
static int run(struct io_uring *ring, int fd, unsigned char *buf, enum mode mode,
	       size_t size, unsigned depth, unsigned ms, struct result *res)
{
	uint64_t *t_sub = calloc(depth, sizeof(*t_sub));
	uint64_t start = now_ns(), end = start + (uint64_t)ms * 1000000ull;
	unsigned inflight = 0, i;
	bool stop = false;

	if (!t_sub)
		return -ENOMEM;

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret;

		/* (re)fill the pipeline */
		for (i = 0; !stop && i < depth; i++) {
			struct io_uring_sqe *sqe;

			if (t_sub[i])
				continue;
			sqe = io_uring_get_sqe(ring);
			if (!sqe)
				break;
			if (mode == M_COPY) {
				io_uring_prep_send(sqe, fd, buf + i * size, size, 0);
			} else {
				io_uring_prep_send_zc_fixed(sqe, fd, buf + i * size, size, 0,
							    mode == M_UNIFIED ?
							    IORING_SEND_ZC_UNIFIED : 0, 0);
			}
			sqe->user_data = i;
			t_sub[i] = now_ns();
			inflight++;
		}
		if (!inflight)
			break;
		ret = io_uring_submit_and_wait(ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
			free(t_sub);
			return ret;
		}
		io_uring_for_each_cqe(ring, head, cqe) {
			unsigned slot = (unsigned)cqe->user_data;
			bool final;

			seen++;
			res->cqes++;
			if (mode == M_TWO_CQE)
				final = cqe->flags & IORING_CQE_F_NOTIF;
			else
				final = true;
			if (!(cqe->flags & IORING_CQE_F_NOTIF) && cqe->res < 0)
				res->errors++;
			if (mode == M_UNIFIED && cqe->res < 0)
				res->errors++;
			if (!final || slot >= depth || !t_sub[slot])
				continue;
			lat_add(res, now_ns() - t_sub[slot]);
			t_sub[slot] = 0;
			inflight--;
			res->sends++;
		}
		io_uring_cq_advance(ring, seen);
		if (!stop && now_ns() >= end)
			stop = true;
	}
	res->ns += now_ns() - start;
	free(t_sub);
	return 0;
}

static int parse_sizes(const char *s, size_t *out, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *endp;
		unsigned long v = strtoul(s, &endp, 0);

		if (endp == s || v == 0 || v > 65507)
			return -1;
		out[n++] = v;
		s = *endp == ',' ? endp + 1 : endp;
		if (*endp && *endp != ',')
			return -1;
	}
	return n;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "sizes", required_argument, NULL, 's' },
		{ "ms", required_argument, NULL, 'm' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "depth", required_argument, NULL, 'd' },
		{ 0 }
	};
	size_t sizes[16] = { 1024, 4096, 16384, 65000 };
	int nsizes = 4, rounds = 3, c, si, rd, ret;
	unsigned ms = 500, depth = 32;
	struct result res[16][M_NR];
	struct io_uring ring;
	struct io_uring_params p;
	struct sock_pair sp;
	struct utsname un;
	struct timeval tv = { .tv_usec = 100000 };
	pthread_t thr;
	unsigned char *buf;
	size_t bufsz;
	struct iovec iov;
	bool unified;
	int rcvbuf = 4 << 20;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			nsizes = parse_sizes(optarg, sizes, 16);
			if (nsizes <= 0) {
				fprintf(stderr, "--sizes: comma-separated datagram sizes 1..65507\n");
				return 2;
			}
			break;
		case 'm':
			ms = (unsigned)atoi(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'd':
			depth = (unsigned)atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: %s [--sizes a,b,..] [--ms N] [--rounds N] [--depth N]\n",
				argv[0]);
			return 2;
		}
	}
	if (!ms || rounds < 1 || depth < 1 || depth > 256) {
		fprintf(stderr, "bad --ms/--rounds/--depth\n");
		return 2;
	}

	memset(&p, 0, sizeof(p));
	ret = io_uring_queue_init_params(512, &ring, &p);
	if (ret) {
		fprintf(stderr, "io_uring_queue_init_params: %s\n", strerror(-ret));
		return 1;
	}
	unified = kernel_has_unified(&p);
	bufsz = 65536ul * depth;
	buf = aligned_alloc(4096, bufsz);
	if (!buf)
		return 1;
	memset(buf, 0xab, bufsz);
	iov = (struct iovec){ buf, bufsz };
	ret = io_uring_register_buffers(&ring, &iov, 1);
	if (ret) {
		fprintf(stderr, "io_uring_register_buffers: %s\n", strerror(-ret));
		return 1;
	}
	ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 4 << 20, rcvbuf);
	if (ret) {
		fprintf(stderr, "udp pair: %s\n", strerror(-ret));
		return 1;
	}
	/* the receiver blocks with a timeout so it can be stopped */
	fcntl(sp.rx, F_SETFL, fcntl(sp.rx, F_GETFL) & ~O_NONBLOCK);
	setsockopt(sp.rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	pthread_create(&thr, NULL, rx_thread, &sp.rx);

	uname(&un);
	printf("# unified_bench: kernel %s, UDP loopback, registered buffers, depth %u, %d x %u ms per cell\n",
	       un.release, depth, rounds, ms);
	printf("# IORING_FEAT_SEND_ZC_UNIFIED %s%s\n", unified ? "present" : "absent",
	       unified ? "" : ": unified rows skipped");

	memset(res, 0, sizeof(res));
	for (rd = 0; rd < rounds; rd++) {
		for (si = 0; si < nsizes; si++) {
			int k;

			for (k = 0; k < M_NR; k++) {
				/* alternate the order of the two zero-copy modes */
				enum mode m = (enum mode)(rd & 1 && k < 2 ? 1 - k : k);

				if (m == M_UNIFIED && !unified)
					continue;
				ret = run(&ring, sp.tx, buf, m, sizes[si], depth, ms, &res[si][m]);
				if (ret) {
					fprintf(stderr, "run %s %zu: %s\n", mode_name[m], sizes[si],
						strerror(-ret));
					return 1;
				}
			}
		}
	}
	rx_stop = 1;
	pthread_join(thr, NULL);

	printf("%-8s %6s %11s %10s %9s %9s %9s %7s\n", "mode", "bytes", "sends/s",
	       "CQEs/send", "p50 us", "p99 us", "max us", "errors");
	for (si = 0; si < nsizes; si++) {
		double rate[M_NR] = { 0 };
		int m;

		for (m = 0; m < M_NR; m++) {
			struct result *r = &res[si][m];

			if (!r->sends)
				continue;
			qsort(r->lat, r->nlat, sizeof(*r->lat), cmp_u64);
			rate[m] = (double)r->sends * 1e9 / (double)r->ns;
			printf("%-8s %6zu %11.0f %10.2f %9.1f %9.1f %9.1f %7d\n", mode_name[m],
			       sizes[si], rate[m], (double)r->cqes / (double)r->sends,
			       pct(r, 0.5), pct(r, 0.99), pct(r, 1.0), r->errors);
			free(r->lat);
		}
		if (rate[M_UNIFIED] && rate[M_TWO_CQE])
			printf("# %zu bytes: unified/two-CQE sends/s = %.2fx\n", sizes[si],
			       rate[M_UNIFIED] / rate[M_TWO_CQE]);
	}
	sock_pair_close(&sp);
	io_uring_queue_exit(&ring);
	free(buf);
	return 0;
}
