// SPDX-License-Identifier: MIT
/*
 * Zero-copy send benchmark for the cover letter of patches/: the cost of a
 * send in each completion model, with raw liburing.
 *
 *   unified_bench [udp] [--dest IP:PORT] [--sizes 1024,4096,...] [--depth N]
 *                 [--ms N] [--rounds N] [--modes copy,two-cqe,single]
 *	Message-style sender: UDP datagrams from registered buffers, --depth
 *	sends in flight; a send is complete when its buffer may be reused:
 *	  copy     IORING_OP_SEND (the buffer is free at its CQE)
 *	  two-cqe  SEND_ZC: the result CQE (F_MORE), then the F_NOTIF CQE
 *	  single   SEND_ZC | IORING_SEND_ZC_SINGLE_CQE: its one CQE
 *	--dest sends to IP:PORT (e.g. an address routed to a dummy netdev,
 *	where the stack frees the pages at transmit without copying them);
 *	without it, to a loopback receiver thread (which copies at delivery).
 *
 *   unified_bench tcp --dest IP:PORT [--size N] [--bufs K] [--chain C]
 *                 [--ms N] [--rounds N] [--modes copy,two-cqe,single,single-nop]
 *	Stream sender: K registered buffers of N bytes; sends go out as
 *	IOSQE_IO_LINK chains of up to C sends with MSG_WAITALL (the only way
 *	to keep a stream in order with more than one send in flight), and the
 *	next chain goes out when the kernel says the current one is queued:
 *	  copy        IORING_OP_SEND: at the last send's CQE; buffers free there
 *	  two-cqe     at the last send's result CQE; buffers free at notifs
 *	  single      at the last send's only CQE, i.e. when its buffer is
 *	              released (acknowledged, for TCP)
 *	  single-nop  at the CQE of a NOP linked after the chain; buffers free
 *	              at the sends' CQEs (1 + 1/C CQEs per send)
 *
 *   unified_bench sink --port P [--bind IP]
 *	TCP receiver for the stream mode: reads and discards, until killed.
 *
 * Modes run interleaved round by round in one process, so ratios between
 * them are meaningful on a noisy or emulated machine.  CPU per send is the
 * sending thread's user and system time (getrusage(RUSAGE_THREAD)); for UDP
 * to a dummy netdev all the send-side work, completion task work included,
 * runs in that thread.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/utsname.h>

#include "common.h"

enum mode { M_COPY, M_TWO, M_SINGLE, M_SINGLE_NOP, M_NR };
static const char *const mode_name[M_NR] = { "copy", "two-cqe", "single", "single-nop" };

#define UD_NOP		(~0ull)
#define MAX_DEPTH	256

struct result {
	uint64_t sends;		/* completed: buffer released */
	uint64_t bytes;
	uint64_t cqes;
	uint64_t ns;		/* wall time of the runs */
	uint64_t user_ns, sys_ns;
	uint64_t *lat;		/* submit -> buffer free, ns */
	size_t nlat, caplat;
	uint64_t *qlat;		/* tcp: submit -> chain known queued, ns */
	size_t nqlat, capqlat;
	uint64_t errors;
};

static volatile int rx_stop;

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static double pct(uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	return (double)v[(size_t)(p * (double)(n - 1))] / 1000.0;
}

static void add(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 65536;
		uint64_t *nv = realloc(*v, c * sizeof(**v));

		if (!nv)
			return;
		*v = nv;
		*cap = c;
	}
	(*v)[(*n)++] = x;
}

static uint64_t tv_ns(struct timeval tv)
{
	return (uint64_t)tv.tv_sec * 1000000000ull + (uint64_t)tv.tv_usec * 1000ull;
}

static void cpu_now(uint64_t *user, uint64_t *sys)
{
	struct rusage ru;

	getrusage(RUSAGE_THREAD, &ru);
	*user = tv_ns(ru.ru_utime);
	*sys = tv_ns(ru.ru_stime);
}

static int parse_addr(const char *s, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	int port;

	if (!colon || (size_t)(colon - s) >= sizeof(host))
		return -1;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	port = atoi(colon + 1);
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		*len = sizeof(*s4);
		return 0;
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		memmove(host, host + 1, strlen(host));
		host[strlen(host) - 1] = 0;
	}
	if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*s6);
		return 0;
	}
	return -1;
}

/* ---- UDP: message-style sends ------------------------------------------ */

static void *udp_rx_thread(void *arg)
{
	int fd = *(int *)arg;
	static char buf[65536];

	while (!rx_stop)
		(void)recv(fd, buf, sizeof(buf), 0);	/* SO_RCVTIMEO bounds it */
	return NULL;
}

/*
 * One timed run.  A slot's buffer is free again at: its CQE (copy,
 * single), its notification or a result CQE without F_MORE (two-cqe).
 * Every CQE with res < 0 that is not a notification is one error.
 */
static int udp_run(struct io_uring *ring, int fd, unsigned char *buf, enum mode mode,
		   size_t size, unsigned depth, unsigned ms, struct result *res)
{
	uint64_t t_sub[MAX_DEPTH] = { 0 };
	uint64_t start = now_ns(), end = start + (uint64_t)ms * 1000000ull;
	uint64_t u0, s0, u1, s1;
	unsigned inflight = 0, i;
	bool stop = false;

	cpu_now(&u0, &s0);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret;

		for (i = 0; !stop && i < depth; i++) {
			struct io_uring_sqe *sqe;

			if (t_sub[i])
				continue;
			sqe = io_uring_get_sqe(ring);
			if (!sqe)
				break;
			if (mode == M_COPY)
				io_uring_prep_send(sqe, fd, buf + i * size, size, 0);
			else
				io_uring_prep_send_zc_fixed(sqe, fd, buf + i * size, size, 0,
							    mode == M_SINGLE ?
							    IORING_SEND_ZC_SINGLE_CQE : 0, 0);
			sqe->user_data = i;
			t_sub[i] = now_ns();
			inflight++;
		}
		if (!inflight)
			break;
		ret = io_uring_submit_and_wait(ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			return ret;
		io_uring_for_each_cqe(ring, head, cqe) {
			unsigned slot = (unsigned)cqe->user_data;
			bool notif = cqe->flags & IORING_CQE_F_NOTIF;
			bool more = cqe->flags & IORING_CQE_F_MORE;

			seen++;
			res->cqes++;
			if (!notif && cqe->res < 0)
				res->errors++;
			if (!notif && more)
				continue;	/* two-cqe: the notification follows */
			if (slot >= depth || !t_sub[slot])
				continue;
			add(&res->lat, &res->nlat, &res->caplat, now_ns() - t_sub[slot]);
			t_sub[slot] = 0;
			inflight--;
			res->sends++;
			res->bytes += size;
		}
		io_uring_cq_advance(ring, seen);
		if (!stop && now_ns() >= end)
			stop = true;
	}
	cpu_now(&u1, &s1);
	res->ns += now_ns() - start;
	res->user_ns += u1 - u0;
	res->sys_ns += s1 - s0;
	return 0;
}

struct opts {
	const char *dest;
	size_t sizes[16];
	int nsizes;
	unsigned ms, depth, bufs, chain;
	int rounds;
	bool modes[M_NR];
	int port;
	const char *bind;
};

static void print_udp(struct opts *o, struct result (*res)[M_NR])
{
	int si, m;

	printf("%-8s %6s %10s %9s %12s %11s %9s %9s %7s\n", "mode", "bytes", "sends/s",
	       "CQEs/send", "user us/send", "sys us/send", "p50 us", "p99 us", "errors");
	for (si = 0; si < o->nsizes; si++) {
		double rate[M_NR] = { 0 }, cpu[M_NR] = { 0 };

		for (m = 0; m < M_NR; m++) {
			struct result *r = &res[si][m];

			if (!r->sends)
				continue;
			qsort(r->lat, r->nlat, sizeof(*r->lat), cmp_u64);
			rate[m] = (double)r->sends * 1e9 / (double)r->ns;
			cpu[m] = (double)(r->user_ns + r->sys_ns) / 1000.0 / (double)r->sends;
			printf("%-8s %6zu %10.0f %9.2f %12.2f %11.2f %9.1f %9.1f %7llu\n",
			       mode_name[m], o->sizes[si], rate[m],
			       (double)r->cqes / (double)r->sends,
			       (double)r->user_ns / 1000.0 / (double)r->sends,
			       (double)r->sys_ns / 1000.0 / (double)r->sends,
			       pct(r->lat, r->nlat, 0.5), pct(r->lat, r->nlat, 0.99),
			       (unsigned long long)r->errors);
			free(r->lat);
		}
		if (rate[M_SINGLE] && rate[M_TWO])
			printf("# %zu bytes: single/two-cqe sends/s %.2fx, CPU/send %.2fx\n",
			       o->sizes[si], rate[M_SINGLE] / rate[M_TWO], cpu[M_SINGLE] / cpu[M_TWO]);
		if (rate[M_SINGLE] && rate[M_COPY])
			printf("# %zu bytes: single/copy sends/s %.2fx, CPU/send %.2fx\n",
			       o->sizes[si], rate[M_SINGLE] / rate[M_COPY], cpu[M_SINGLE] / cpu[M_COPY]);
	}
}

static int udp_main(struct opts *o)
{
	static struct result res[16][M_NR];
	struct io_uring ring;
	struct sockaddr_storage ss;
	socklen_t slen;
	struct sock_pair sp = { .tx = -1, .rx = -1 };
	struct timeval tv = { .tv_usec = 100000 };
	struct utsname un;
	struct iovec iov;
	pthread_t thr;
	unsigned char *buf;
	size_t bufsz;
	int si, rd, k, ret, fd;
	bool single = kernel_has_single_cqe();

	for (si = 0; si < o->nsizes; si++) {
		if (o->sizes[si] > 65507) {
			fprintf(stderr, "udp: datagrams are at most 65507 bytes\n");
			return 2;
		}
	}
	ret = io_uring_queue_init(512, &ring, 0);
	if (ret) {
		fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	bufsz = 65536ul * o->depth;
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
	if (o->dest) {
		int sndbuf = 4 << 20;

		if (parse_addr(o->dest, &ss, &slen)) {
			fprintf(stderr, "--dest: IP:PORT, got '%s'\n", o->dest);
			return 2;
		}
		fd = socket(ss.ss_family, SOCK_DGRAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&ss, slen)) {
			fprintf(stderr, "udp socket to %s: %s\n", o->dest, strerror(errno));
			return 1;
		}
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	} else {
		ret = sock_pair_open(&sp, AF_INET, SOCK_DGRAM, 4 << 20, 4 << 20);
		if (ret) {
			fprintf(stderr, "udp pair: %s\n", strerror(-ret));
			return 1;
		}
		fd = sp.tx;
		/* the receiver blocks with a timeout so it can be stopped */
		fcntl(sp.rx, F_SETFL, fcntl(sp.rx, F_GETFL) & ~O_NONBLOCK);
		setsockopt(sp.rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		pthread_create(&thr, NULL, udp_rx_thread, &sp.rx);
	}

	uname(&un);
	printf("# unified_bench udp: kernel %s, to %s, registered buffers, depth %u, %d x %u ms per cell\n",
	       un.release, o->dest ? o->dest : "a loopback receiver thread", o->depth, o->rounds, o->ms);
	printf("# IORING_SEND_ZC_SINGLE_CQE %s%s\n", single ? "present" : "absent",
	       single ? "" : ": single rows skipped");

	for (rd = 0; rd < o->rounds; rd++) {
		for (si = 0; si < o->nsizes; si++) {
			for (k = 0; k < 3; k++) {
				/* alternate the order of the modes round by round */
				enum mode m = (enum mode)((k + rd) % 3);

				if (!o->modes[m] || (m == M_SINGLE && !single))
					continue;
				ret = udp_run(&ring, fd, buf, m, o->sizes[si], o->depth, o->ms,
					      &res[si][m]);
				if (ret) {
					fprintf(stderr, "run %s %zu: %s\n", mode_name[m], o->sizes[si],
						strerror(-ret));
					return 1;
				}
			}
		}
	}
	if (!o->dest) {
		rx_stop = 1;
		pthread_join(thr, NULL);
		sock_pair_close(&sp);
	} else {
		close(fd);
	}
	print_udp(o, res);
	io_uring_queue_exit(&ring);
	free(buf);
	return 0;
}

/* ---- TCP: a stream sender ---------------------------------------------- */

/*
 * One timed run of a stream sender.  Buffer b is busy from its submission
 * until it may be reused; a chain of sends goes out only when the previous
 * one is known to be queued (see the top of the file).
 */
static int tcp_run(struct io_uring *ring, int fd, unsigned char *buf, enum mode mode,
		   size_t size, unsigned bufs, unsigned chain, unsigned ms, struct result *res)
{
	uint64_t t_sub[MAX_DEPTH] = { 0 };
	bool busy[MAX_DEPTH] = { false };
	uint64_t start = now_ns(), end = start + (uint64_t)ms * 1000000ull, chain_t0 = 0;
	uint64_t u0, s0, u1, s1;
	unsigned busy_n = 0, chain_left = 0, next = 0, i;
	bool stop = false;

	cpu_now(&u0, &s0);
	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret;

		/* a new chain when the previous is queued and buffers are free */
		if (!stop && !chain_left && busy_n < bufs) {
			unsigned n = 0;
			struct io_uring_sqe *sqe = NULL;

			for (i = 0; i < bufs && n < chain; i++) {
				unsigned b = (next + i) % bufs;

				if (busy[b])
					continue;
				sqe = io_uring_get_sqe(ring);
				if (mode == M_COPY)
					io_uring_prep_send(sqe, fd, buf + (size_t)b * size, size,
							   MSG_WAITALL);
				else
					io_uring_prep_send_zc_fixed(sqe, fd, buf + (size_t)b * size,
								    size, MSG_WAITALL,
								    mode == M_TWO ? 0 :
								    IORING_SEND_ZC_SINGLE_CQE, 0);
				sqe->user_data = b;
				sqe->flags |= IOSQE_IO_LINK;
				busy[b] = true;
				busy_n++;
				t_sub[b] = now_ns();
				n++;
			}
			next = (next + i) % bufs;
			if (mode == M_SINGLE_NOP) {
				sqe = io_uring_get_sqe(ring);
				io_uring_prep_nop(sqe);
				sqe->user_data = UD_NOP;
				chain_left = 1;
			} else {
				sqe->flags &= ~IOSQE_IO_LINK;
				chain_left = n;
			}
			chain_t0 = now_ns();
		}
		if (!busy_n && !chain_left)
			break;
		ret = io_uring_submit_and_wait(ring, 1);
		if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY)
			return ret;
		io_uring_for_each_cqe(ring, head, cqe) {
			bool notif = cqe->flags & IORING_CQE_F_NOTIF;
			bool more = cqe->flags & IORING_CQE_F_MORE;
			unsigned b = (unsigned)cqe->user_data;

			seen++;
			res->cqes++;
			if (cqe->user_data == UD_NOP) {
				chain_left = 0;
				add(&res->qlat, &res->nqlat, &res->capqlat, now_ns() - chain_t0);
				continue;
			}
			if (!notif && cqe->res < 0)
				res->errors++;
			/* the send part: result CQE (two-cqe) or the only CQE */
			if (!notif && mode != M_SINGLE_NOP && chain_left && !--chain_left)
				add(&res->qlat, &res->nqlat, &res->capqlat, now_ns() - chain_t0);
			if (!notif && more)
				continue;
			if (b >= bufs || !busy[b])
				continue;
			add(&res->lat, &res->nlat, &res->caplat, now_ns() - t_sub[b]);
			busy[b] = false;
			busy_n--;
			res->sends++;
			res->bytes += cqe->res > 0 || notif ? size : 0;
		}
		io_uring_cq_advance(ring, seen);
		if (!stop && now_ns() >= end)
			stop = true;
	}
	cpu_now(&u1, &s1);
	res->ns += now_ns() - start;
	res->user_ns += u1 - u0;
	res->sys_ns += s1 - s0;
	return 0;
}

static int tcp_main(struct opts *o)
{
	static struct result res[M_NR];
	struct sockaddr_storage ss;
	socklen_t slen;
	struct io_uring ring;
	struct utsname un;
	struct iovec iov;
	unsigned char *buf;
	size_t size = o->sizes[0], bufsz;
	int ret, rd, k, fd, one = 1;
	bool single = kernel_has_single_cqe();

	if (!o->dest || parse_addr(o->dest, &ss, &slen)) {
		fprintf(stderr, "tcp: --dest IP:PORT of a sink is required\n");
		return 2;
	}
	if (o->bufs > MAX_DEPTH || o->chain < 1 || o->chain > o->bufs) {
		fprintf(stderr, "tcp: need 1 <= --chain <= --bufs <= %d\n", MAX_DEPTH);
		return 2;
	}
	ret = io_uring_queue_init(512, &ring, 0);
	if (ret) {
		fprintf(stderr, "io_uring_queue_init: %s\n", strerror(-ret));
		return 1;
	}
	bufsz = size * o->bufs;
	buf = aligned_alloc(4096, (bufsz + 4095) & ~4095ul);
	if (!buf)
		return 1;
	memset(buf, 0xcd, bufsz);
	iov = (struct iovec){ buf, bufsz };
	ret = io_uring_register_buffers(&ring, &iov, 1);
	if (ret) {
		fprintf(stderr, "io_uring_register_buffers: %s\n", strerror(-ret));
		return 1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, slen)) {
		fprintf(stderr, "connect %s: %s\n", o->dest, strerror(errno));
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

	uname(&un);
	printf("# unified_bench tcp: kernel %s, to %s, %zu-byte sends, %u registered buffers, chains of %u, %d x %u ms per cell\n",
	       un.release, o->dest, size, o->bufs, o->chain, o->rounds, o->ms);
	for (rd = 0; rd < o->rounds; rd++) {
		for (k = 0; k < M_NR; k++) {
			enum mode m = (enum mode)((k + rd) % M_NR);

			if (!o->modes[m] || ((m == M_SINGLE || m == M_SINGLE_NOP) && !single))
				continue;
			ret = tcp_run(&ring, fd, buf, m, size, o->bufs, o->chain, o->ms, &res[m]);
			if (ret) {
				fprintf(stderr, "run %s: %s\n", mode_name[m], strerror(-ret));
				return 1;
			}
		}
	}
	printf("%-10s %8s %9s %9s %11s %16s %16s %7s\n", "mode", "MB/s", "sends/s", "CQEs/send",
	       "CPU us/send", "queued p50/p99", "released p50/p99", "errors");
	for (k = 0; k < M_NR; k++) {
		struct result *r = &res[k];

		if (!r->sends)
			continue;
		qsort(r->lat, r->nlat, sizeof(*r->lat), cmp_u64);
		qsort(r->qlat, r->nqlat, sizeof(*r->qlat), cmp_u64);
		printf("%-10s %8.1f %9.0f %9.2f %11.2f %7.0f/%-8.0f %7.0f/%-8.0f %7llu\n", mode_name[k],
		       (double)r->bytes * 1e3 / (double)r->ns, (double)r->sends * 1e9 / (double)r->ns,
		       (double)r->cqes / (double)r->sends,
		       (double)(r->user_ns + r->sys_ns) / 1000.0 / (double)r->sends,
		       pct(r->qlat, r->nqlat, 0.5), pct(r->qlat, r->nqlat, 0.99),
		       pct(r->lat, r->nlat, 0.5), pct(r->lat, r->nlat, 0.99),
		       (unsigned long long)r->errors);
	}
	printf("# queued: chain submitted -> the kernel says it is queued (copy, two-cqe: last result CQE; single: last CQE = release; single-nop: linked NOP)\n");
	printf("# released: send submitted -> its buffer may be reused\n");
	close(fd);
	io_uring_queue_exit(&ring);
	free(buf);
	return 0;
}

/* ---- sink -------------------------------------------------------------- */

static void *sink_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	static __thread char buf[1 << 18];

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	close(fd);
	return NULL;
}

static int sink_main(struct opts *o)
{
	struct sockaddr_storage ss;
	socklen_t slen;
	char spec[160];
	int lfd, one = 1;

	snprintf(spec, sizeof(spec), "%s:%d", o->bind ? o->bind : "0.0.0.0", o->port);
	if (parse_addr(spec, &ss, &slen)) {
		fprintf(stderr, "sink: bad --bind/--port\n");
		return 2;
	}
	lfd = socket(ss.ss_family, SOCK_STREAM, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, slen) || listen(lfd, 16)) {
		fprintf(stderr, "sink: listen on %s: %s\n", spec, strerror(errno));
		return 1;
	}
	printf("# sink listening on %s\n", spec);
	fflush(stdout);
	for (;;) {
		pthread_t t;
		int fd = accept(lfd, NULL, NULL);

		if (fd < 0)
			continue;
		pthread_create(&t, NULL, sink_conn, (void *)(intptr_t)fd);
		pthread_detach(t);
	}
}

/* ---- options ----------------------------------------------------------- */

static int parse_sizes(const char *s, size_t *out, int max)
{
	int n = 0;

	while (*s && n < max) {
		char *endp;
		unsigned long v = strtoul(s, &endp, 0);

		if (endp == s || v == 0 || v > (16ul << 20))
			return -1;
		out[n++] = v;
		if (*endp && *endp != ',')
			return -1;
		s = *endp == ',' ? endp + 1 : endp;
	}
	return n;
}

static int parse_modes(const char *s, bool *modes)
{
	char tmp[128], *tok, *save;
	int m;

	memset(modes, 0, M_NR * sizeof(*modes));
	snprintf(tmp, sizeof(tmp), "%s", s);
	for (tok = strtok_r(tmp, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		for (m = 0; m < M_NR; m++)
			if (!strcmp(tok, mode_name[m]))
				break;
		if (m == M_NR)
			return -1;
		modes[m] = true;
	}
	return 0;
}

static void usage(const char *p)
{
	fprintf(stderr,
		"usage: %s [udp] [--dest IP:PORT] [--sizes a,b,..] [--depth N] [--ms N] [--rounds N] [--modes copy,two-cqe,single]\n"
		"       %s tcp --dest IP:PORT [--size N] [--bufs K] [--chain C] [--ms N] [--rounds N] [--modes copy,two-cqe,single,single-nop]\n"
		"       %s sink --port P [--bind IP]\n", p, p, p);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "dest", required_argument, NULL, 'D' },
		{ "sizes", required_argument, NULL, 's' },
		{ "size", required_argument, NULL, 's' },
		{ "ms", required_argument, NULL, 'm' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "depth", required_argument, NULL, 'd' },
		{ "bufs", required_argument, NULL, 'b' },
		{ "chain", required_argument, NULL, 'c' },
		{ "modes", required_argument, NULL, 'M' },
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'B' },
		{ 0 }
	};
	struct opts o = {
		.sizes = { 1024, 4096, 16384, 65000 }, .nsizes = 4, .ms = 500, .depth = 32,
		.bufs = 16, .chain = 4, .rounds = 3, .port = 0,
	};
	const char *cmd = "udp";
	bool modes_given = false;
	int c;

	if (argc > 1 && argv[1][0] != '-') {
		cmd = argv[1];
		argv++;
		argc--;
	}
	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'D':
			o.dest = optarg;
			break;
		case 's':
			o.nsizes = parse_sizes(optarg, o.sizes, 16);
			if (o.nsizes <= 0) {
				fprintf(stderr, "--sizes: comma-separated sizes 1..16 MiB\n");
				return 2;
			}
			break;
		case 'm':
			o.ms = (unsigned)atoi(optarg);
			break;
		case 'r':
			o.rounds = atoi(optarg);
			break;
		case 'd':
			o.depth = (unsigned)atoi(optarg);
			break;
		case 'b':
			o.bufs = (unsigned)atoi(optarg);
			break;
		case 'c':
			o.chain = (unsigned)atoi(optarg);
			break;
		case 'M':
			if (parse_modes(optarg, o.modes)) {
				fprintf(stderr, "--modes: copy, two-cqe, single, single-nop\n");
				return 2;
			}
			modes_given = true;
			break;
		case 'p':
			o.port = atoi(optarg);
			break;
		case 'B':
			o.bind = optarg;
			break;
		default:
			usage(argv[0]);
			return 2;
		}
	}
	if (!o.ms || o.rounds < 1 || o.depth < 1 || o.depth > MAX_DEPTH) {
		fprintf(stderr, "bad --ms/--rounds/--depth (depth 1..%d)\n", MAX_DEPTH);
		return 2;
	}
	if (!strcmp(cmd, "udp")) {
		if (!modes_given)
			o.modes[M_COPY] = o.modes[M_TWO] = o.modes[M_SINGLE] = true;
		return udp_main(&o);
	}
	if (!strcmp(cmd, "tcp")) {
		if (!modes_given)
			o.modes[M_COPY] = o.modes[M_TWO] = o.modes[M_SINGLE] =
				o.modes[M_SINGLE_NOP] = true;
		if (o.nsizes == 4 && o.sizes[0] == 1024)
			o.sizes[0] = 65536;	/* default: 64 KiB sends */
		return tcp_main(&o);
	}
	if (!strcmp(cmd, "sink"))
		return sink_main(&o);
	usage(argv[0]);
	return 2;
}
