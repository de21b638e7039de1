/* SPDX-License-Identifier: MIT */
/*
 * c_zc_fixed: the C reference sender of `uring-zc bench`.
 *
 * Sends a TCP stream to 127.0.0.1:PORT straight through liburing (not
 * libzc), so the benchmark can tell how much the TypeScript layers cost.
 * Default mode is SEND_ZC from registered (fixed) buffers with
 * REPORT_USAGE; `send` (plain copying SEND) and `zc` (SEND_ZC from
 * ordinary memory) exist for comparison, and `zc-vec` (experiment): the
 * whole pool registered as ONE fixed buffer and up to --batch pool buffers
 * sent by one SENDMSG_ZC (IORING_RECVSEND_FIXED_BUF, Linux >= 6.15), so
 * one request and one notification cover several buffers; its zcUsed /
 * zcCopied count requests, not buffers.
 *
 * Loop: a window of W registered buffers.  Free buffers are sent as one
 * IOSQE_IO_LINK chain (MSG_WAITALL, so the kernel finishes short sends
 * itself and the link keeps the stream in order); the next chain is
 * submitted once every send of the previous one has its result CQE.  A
 * zero-copy buffer is free again when its notification CQE arrives.
 *
 * --udp HOST: datagrams instead, on a UDP socket connected to HOST:PORT
 * (`bench --udp` runs this inside its veth-drop namespace).  No links, no
 * MSG_WAITALL: every free buffer is sent at once.  zc-vec is TCP only.
 *
 * Prints one JSON object on stdout:
 *   {"bytes":N,"seconds":S,"sends":N,"zcUsed":N,"zcCopied":N,
 *    "utime":S,"stime":S,"cpuPct":P}
 * where CPU times are this process's getrusage() over the measured span
 * (warm-up excluded).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum mode { M_ZC_FIXED, M_ZC, M_SEND, M_ZC_VEC };

#define MAX_BATCH 16

/* zc-vec: one SENDMSG_ZC of up to MAX_BATCH pool buffers, all inside ONE
 * registered buffer (the whole pool), indexed by its first buffer. */
struct batch {
	struct msghdr msg;
	struct iovec iov[MAX_BATCH];
	uint32_t bufs[MAX_BATCH];
	uint32_t n;
};

struct opts {
	int port;
	uint32_t size;
	double seconds;
	double warmup;
	uint32_t window;
	uint32_t chain;
	uint32_t batch;
	enum mode mode;
	bool defer;
	bool nodelay;
	const char *udp_host;	/* NULL: TCP to 127.0.0.1 */
};

static void usage(void)
{
	fprintf(stderr,
		"usage: c_zc_fixed --port P [--size BYTES] [--seconds S] [--warmup S]\n"
		"                  [--window W] [--chain C] [--mode zc-fixed|zc|send|zc-vec]\n"
		"                  [--batch B (zc-vec: buffers per SENDMSG_ZC, <= 16)]\n"
		"                  [--no-defer] [--nodelay] [--udp HOST]\n");
	exit(2);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(double *user, double *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	*user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
	*sys = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
	return *user + *sys;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "c_zc_fixed: %s: %s\n", what, strerror(err));
	exit(1);
}

static void parse(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .size = 65536, .seconds = 3, .warmup = 0.3,
			    .window = 16, .chain = 64, .batch = MAX_BATCH, .mode = M_ZC_FIXED,
			    .defer = true };
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-defer")) {
			o->defer = false;
			continue;
		}
		if (!strcmp(a, "--nodelay")) {
			o->nodelay = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--port"))
			o->port = atoi(v);
		else if (!strcmp(a, "--size"))
			o->size = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--seconds"))
			o->seconds = atof(v);
		else if (!strcmp(a, "--warmup"))
			o->warmup = atof(v);
		else if (!strcmp(a, "--window"))
			o->window = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--chain"))
			o->chain = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--batch"))
			o->batch = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--udp"))
			o->udp_host = v;
		else if (!strcmp(a, "--mode")) {
			if (!strcmp(v, "zc-fixed"))
				o->mode = M_ZC_FIXED;
			else if (!strcmp(v, "zc"))
				o->mode = M_ZC;
			else if (!strcmp(v, "send"))
				o->mode = M_SEND;
			else if (!strcmp(v, "zc-vec"))
				o->mode = M_ZC_VEC;
			else
				usage();
		} else {
			usage();
		}
	}
	if (o->port <= 0 || o->port > 65535 || !o->size || o->size > (1u << 30) ||
	    !o->window || o->window > 1024 || !o->chain || o->seconds <= 0 ||
	    !o->batch || o->batch > MAX_BATCH ||
	    (o->udp_host && o->mode == M_ZC_VEC))
		usage();
	if (o->chain > o->window)
		o->chain = o->window;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct io_uring ring;
	struct io_uring_params p = { 0 };
	struct sockaddr_in sa = { .sin_family = AF_INET };
	uint64_t bytes = 0, sends = 0, zc_used = 0, zc_copied = 0;
	uint32_t *free_bufs, nfree, chain_left = 0;
	uint32_t *held;		/* CQEs still to come per buffer */
	struct batch *batches = NULL;
	bool measuring = false, stopping = false;
	double t0 = 0, t1 = 0, c0 = 0, c1 = 0, u0 = 0, s0 = 0, u1 = 0, s1 = 0, tstart;
	size_t map_len;
	char *mem;
	int fd, ret, mflags;

	parse(argc, argv, &o);

	fd = socket(AF_INET, o.udp_host ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0)
		die("socket", errno);
	sa.sin_port = htons(o.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (o.udp_host && inet_pton(AF_INET, o.udp_host, &sa.sin_addr) != 1)
		die("--udp: not an IPv4 address", EINVAL);
	/* A stream send finishes whole; a datagram is never split. */
	mflags = o.udp_host ? MSG_NOSIGNAL : MSG_WAITALL | MSG_NOSIGNAL;
	if (o.nodelay && !o.udp_host &&
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int)))
		die("setsockopt TCP_NODELAY", errno);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect", errno);

	p.flags = IORING_SETUP_SINGLE_ISSUER;
	if (o.defer)
		p.flags |= IORING_SETUP_DEFER_TASKRUN;
	p.flags |= IORING_SETUP_CQSIZE;
	p.cq_entries = 4 * 256;
	ret = io_uring_queue_init_params(256, &ring, &p);
	if (ret)
		die("io_uring_queue_init", -ret);

	map_len = (size_t)o.window * o.size;
	map_len = (map_len + 4095) & ~(size_t)4095;
	mem = mmap(NULL, map_len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (mem == MAP_FAILED)
		die("mmap", errno);
	for (size_t i = 0; i < map_len; i++)
		mem[i] = (char)(i * 31 + 7);

	free_bufs = calloc(o.window, sizeof(*free_bufs));
	held = calloc(o.window, sizeof(*held));
	if (!free_bufs || !held)
		die("calloc", ENOMEM);
	for (uint32_t i = 0; i < o.window; i++)
		free_bufs[i] = o.window - 1 - i;
	nfree = o.window;

	if (o.mode == M_ZC_VEC) {
		struct iovec whole = { .iov_base = mem, .iov_len = map_len };

		batches = calloc(o.window, sizeof(*batches));
		if (!batches)
			die("calloc", ENOMEM);
		ret = io_uring_register_buffers(&ring, &whole, 1);
		if (ret)
			die("io_uring_register_buffers", -ret);
	}
	if (o.mode == M_ZC_FIXED) {
		struct iovec *iov = calloc(o.window, sizeof(*iov));

		if (!iov)
			die("calloc", ENOMEM);
		for (uint32_t i = 0; i < o.window; i++) {
			iov[i].iov_base = mem + (size_t)i * o.size;
			iov[i].iov_len = o.size;
		}
		ret = io_uring_register_buffers(&ring, iov, o.window);
		if (ret)
			die("io_uring_register_buffers", -ret);
		free(iov);
	}

	tstart = now();
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		double t = now();

		if (!measuring && t - tstart >= o.warmup) {
			measuring = true;
			t0 = t;
			c0 = cpu_seconds(&u0, &s0);
			bytes = sends = zc_used = zc_copied = 0;
		}
		if (measuring && !stopping && t - t0 >= o.seconds) {
			stopping = true;
			t1 = t;
			c1 = cpu_seconds(&u1, &s1);
		}

		/* a new chain once the previous one is fully issued */
		if (!stopping && chain_left == 0 && nfree > 0 && o.mode == M_ZC_VEC) {
			uint32_t k = 0;

			while (nfree > 0 && k < o.chain) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
				uint32_t first = free_bufs[nfree - 1];
				struct batch *bt = &batches[first];

				bt->n = 0;
				while (nfree > 0 && bt->n < o.batch) {
					uint32_t b = free_bufs[--nfree];

					bt->bufs[bt->n] = b;
					bt->iov[bt->n].iov_base = mem + (size_t)b * o.size;
					bt->iov[bt->n].iov_len = o.size;
					bt->n++;
				}
				memset(&bt->msg, 0, sizeof(bt->msg));
				bt->msg.msg_iov = bt->iov;
				bt->msg.msg_iovlen = bt->n;
				io_uring_prep_sendmsg_zc_fixed(sqe, fd, &bt->msg,
					MSG_WAITALL | MSG_NOSIGNAL, 0);
				sqe->ioprio |= IORING_SEND_ZC_REPORT_USAGE;
				sqe->user_data = first;
				held[first] = 2;
				if (nfree > 0 && k + 1 < o.chain)
					sqe->flags |= IOSQE_IO_LINK;
				k++;
			}
			chain_left = k;
		}
		if (!stopping && (chain_left == 0 || o.udp_host) && nfree > 0 &&
		    o.mode != M_ZC_VEC) {
			uint32_t n = nfree < o.chain ? nfree : o.chain;

			for (uint32_t k = 0; k < n; k++) {
				struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
				uint32_t b = free_bufs[--nfree];
				char *buf = mem + (size_t)b * o.size;

				if (o.mode == M_ZC_FIXED) {
					io_uring_prep_send_zc_fixed(sqe, fd, buf, o.size,
						mflags, IORING_SEND_ZC_REPORT_USAGE, b);
					held[b] = 2;
				} else if (o.mode == M_ZC) {
					io_uring_prep_send_zc(sqe, fd, buf, o.size,
						mflags, IORING_SEND_ZC_REPORT_USAGE);
					held[b] = 2;
				} else {
					io_uring_prep_send(sqe, fd, buf, o.size, mflags);
					held[b] = 1;
				}
				sqe->user_data = b;
				if (k + 1 < n && !o.udp_host)
					sqe->flags |= IOSQE_IO_LINK;
			}
			chain_left += n;
		}
		if (stopping && nfree == o.window)
			break;

		ret = io_uring_submit_and_wait(&ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			die("io_uring_submit_and_wait", -ret);

		io_uring_for_each_cqe(&ring, head, cqe) {
			uint32_t b = (uint32_t)cqe->user_data;

			seen++;
			if (cqe->flags & IORING_CQE_F_NOTIF) {
				if (stopping)
					;
				else if (cqe->res & IORING_NOTIF_USAGE_ZC_COPIED)
					zc_copied++;
				else
					zc_used++;
			} else {
				chain_left--;
				if (cqe->res < 0)
					die("send", -cqe->res);
				uint32_t want = o.mode == M_ZC_VEC ?
						batches[b].n * o.size : o.size;

				if ((uint32_t)cqe->res != want) {
					fprintf(stderr, "c_zc_fixed: short send %d of %u\n",
						cqe->res, want);
					exit(1);
				}
				if (!stopping) {
					bytes += cqe->res;
					sends += want / o.size;
				}
				if (!(cqe->flags & IORING_CQE_F_MORE))
					held[b] = 1;	/* no notification */
			}
			if (--held[b] == 0) {
				if (o.mode == M_ZC_VEC) {
					for (uint32_t i = 0; i < batches[b].n; i++)
						free_bufs[nfree++] = batches[b].bufs[i];
				} else {
					free_bufs[nfree++] = b;
				}
			}
		}
		io_uring_cq_advance(&ring, seen);
	}

	shutdown(fd, SHUT_WR);
	close(fd);
	io_uring_queue_exit(&ring);
	munmap(mem, map_len);

	{
		double wall = t1 - t0;

		printf("{\"bytes\":%llu,\"seconds\":%.6f,\"sends\":%llu,"
		       "\"zcUsed\":%llu,\"zcCopied\":%llu,\"utime\":%.6f,"
		       "\"stime\":%.6f,\"cpuPct\":%.2f}\n",
		       (unsigned long long)bytes, wall,
		       (unsigned long long)sends,
		       (unsigned long long)zc_used,
		       (unsigned long long)zc_copied,
		       u1 - u0, s1 - s0, 100.0 * (c1 - c0) / wall);
	}
	free(free_bufs);
	free(held);
	free(batches);
	return 0;
}
