/* SPDX-License-Identifier: MIT */
/*
 * c_rr: the C reference of `uring-zc bench --rr`, both ends written
 * straight on liburing (not libzc), for what request/response costs with
 * no JavaScript at all.
 *
 *   c_rr server [--no-defer] [--epoll]
 *	Echo server on 127.0.0.1:0 (prints "port N"): multishot accept,
 *	one multishot receive per connection into a provided-buffer ring,
 *	each received buffer sent back as is and returned to the ring once
 *	sent.  Exits when its stdin reaches EOF (a read on fd 0 in the ring).
 *
 *   c_rr client --port P --size S [--conns C] [--seconds T] [--warmup W]
 *	       [--no-defer] [--epoll]
 *	C connections, each a closed loop: send S bytes, wait for the S
 *	echoed bytes, repeat.  Prints "mark" when the measured span starts
 *	and when it ends, then one JSON line:
 *	{"msgs":N,"seconds":S,"p50us":X,"p99us":X,"p999us":X}
 *
 * --epoll (diagnostic, with --no-defer): wait as uring-zc's Ring does on
 * Node's loop, an eventfd reported by epoll, instead of in io_uring_enter.
 *
 * Both set TCP_NODELAY, as the TypeScript ends do.  One request per
 * connection is outstanding, so a connection never has two sends in the
 * kernel that could be reordered.
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE	(16 * 1024)
#define BUF_COUNT	4096		/* power of two: buffer ring entries */
#define BGID		0

enum kind { K_ACCEPT = 1, K_RECV, K_SEND, K_STDIN };

static uint64_t tag(enum kind k, int fd, uint32_t bid)
{
	return (uint64_t)k << 56 | (uint64_t)(uint32_t)fd << 24 | (bid & 0xffffff);
}

static enum kind tag_kind(uint64_t t) { return (enum kind)(t >> 56); }
static int tag_fd(uint64_t t) { return (int)((t >> 24) & 0xffffffff); }
static uint32_t tag_bid(uint64_t t) { return (uint32_t)(t & 0xffffff); }

static void die(const char *what, int err)
{
	fprintf(stderr, "c_rr: %s: %s\n", what, strerror(err));
	exit(1);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

struct ctx {
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	char *bufs;
};

static struct io_uring_sqe *sqe_get(struct ctx *c)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&c->ring);

	if (!sqe) {
		io_uring_submit(&c->ring);
		sqe = io_uring_get_sqe(&c->ring);
		if (!sqe)
			die("io_uring_get_sqe", EBUSY);
	}
	return sqe;
}

static void setup(struct ctx *c, bool defer, unsigned conns)
{
	struct io_uring_params p = { 0 };
	unsigned entries = 256;
	int ret;

	while (entries < conns * 2 && entries < 16384)
		entries *= 2;
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_CQSIZE;
	if (defer)
		p.flags |= IORING_SETUP_DEFER_TASKRUN;
	p.cq_entries = entries * 4;
	ret = io_uring_queue_init_params(entries, &c->ring, &p);
	if (ret)
		die("io_uring_queue_init", -ret);
	c->bufs = aligned_alloc(4096, (size_t)BUF_SIZE * BUF_COUNT);
	if (!c->bufs)
		die("aligned_alloc", ENOMEM);
	c->br = io_uring_setup_buf_ring(&c->ring, BUF_COUNT, BGID, 0, &ret);
	if (!c->br)
		die("io_uring_setup_buf_ring", -ret);
	for (unsigned i = 0; i < BUF_COUNT; i++)
		io_uring_buf_ring_add(c->br, c->bufs + (size_t)i * BUF_SIZE, BUF_SIZE, i,
				      io_uring_buf_ring_mask(BUF_COUNT), i);
	io_uring_buf_ring_advance(c->br, BUF_COUNT);
}

/*
 * --epoll: wait the way Node's loop waits for a ring (uring-zc's Ring): the
 * ring signals an eventfd, epoll_wait() reports it (retried after EINTR, as
 * libuv does), the eventfd is read, then the CQ is looked at.  Diagnostic:
 * the cost of that wakeup path without any JavaScript.
 */
static bool epoll_mode;
static int epoll_fd = -1, event_fd = -1;

static void use_epoll(struct ctx *c)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ret;

	event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (event_fd < 0 || epoll_fd < 0)
		die("eventfd/epoll_create1", errno);
	ret = io_uring_register_eventfd(&c->ring, event_fd);
	if (ret)
		die("io_uring_register_eventfd", -ret);
	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, event_fd, &ev))
		die("epoll_ctl", errno);
}

static int submit_wait(struct ctx *c)
{
	struct epoll_event ev;
	uint64_t v;
	int ret;

	if (epoll_fd < 0)
		return io_uring_submit_and_wait(&c->ring, 1);
	ret = io_uring_submit(&c->ring);
	if (ret < 0 || io_uring_cq_ready(&c->ring))
		return ret;
	for (;;) {
		ret = epoll_wait(epoll_fd, &ev, 1, -1);
		if (ret > 0)
			break;
		if (ret < 0 && errno != EINTR)
			return -errno;
	}
	if (read(event_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return -errno;
	return 0;
}

static void give_back(struct ctx *c, uint32_t bid)
{
	io_uring_buf_ring_add(c->br, c->bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, bid,
			      io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(c->br, 1);
}

static void arm_recv(struct ctx *c, int fd)
{
	struct io_uring_sqe *sqe = sqe_get(c);

	io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	sqe->user_data = tag(K_RECV, fd, 0);
}

static void nodelay(int fd)
{
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int)))
		die("setsockopt TCP_NODELAY", errno);
}

/* ---------------------------------------------------------------- server */

static int server(bool defer)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct io_uring_sqe *sqe;
	struct ctx c;
	char stdin_byte;
	int lfd;

	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket", errno);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &(int){ 1 }, sizeof(int));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 4096))
		die("bind/listen", errno);
	if (getsockname(lfd, (struct sockaddr *)&sa, &len))
		die("getsockname", errno);
	setup(&c, defer, 1024);
	if (epoll_mode)
		use_epoll(&c);
	printf("port %d\n", ntohs(sa.sin_port));
	fflush(stdout);

	sqe = sqe_get(&c);
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
	sqe->user_data = tag(K_ACCEPT, lfd, 0);
	sqe = sqe_get(&c);
	io_uring_prep_read(sqe, 0, &stdin_byte, 1, 0);
	sqe->user_data = tag(K_STDIN, 0, 0);

	for (;;) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret = submit_wait(&c);

		if (ret < 0 && ret != -EINTR)
			die("submit_wait", -ret);
		io_uring_for_each_cqe(&c.ring, head, cqe) {
			uint64_t t = cqe->user_data;
			int fd = tag_fd(t);

			seen++;
			switch (tag_kind(t)) {
			case K_STDIN:
				if (cqe->res <= 0)
					return 0;
				sqe = sqe_get(&c);
				io_uring_prep_read(sqe, 0, &stdin_byte, 1, 0);
				sqe->user_data = tag(K_STDIN, 0, 0);
				break;
			case K_ACCEPT:
				if (cqe->res >= 0) {
					nodelay(cqe->res);
					arm_recv(&c, cqe->res);
				}
				if (!(cqe->flags & IORING_CQE_F_MORE)) {
					sqe = sqe_get(&c);
					io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, 0);
					sqe->user_data = tag(K_ACCEPT, lfd, 0);
				}
				break;
			case K_RECV:
				if (cqe->res > 0) {
					uint32_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

					sqe = sqe_get(&c);
					io_uring_prep_send(sqe, fd, c.bufs + (size_t)bid * BUF_SIZE,
							   cqe->res, MSG_WAITALL | MSG_NOSIGNAL);
					sqe->user_data = tag(K_SEND, fd, bid);
				}
				if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ENOBUFS)) {
					close(fd);	/* EOF or reset */
				} else if (!(cqe->flags & IORING_CQE_F_MORE)) {
					arm_recv(&c, fd);
				}
				break;
			case K_SEND:
				give_back(&c, tag_bid(t));
				break;
			}
		}
		io_uring_cq_advance(&c.ring, seen);
	}
}

/* ---------------------------------------------------------------- client */

struct conn {
	uint32_t got;
	double t0;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int client(int port, uint32_t size, unsigned conns, double seconds,
		  double warmup, bool defer)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	struct conn *cs;
	double *lat, tstart, tspan = 0, tend = 0;
	size_t nlat = 0, cap = 1 << 16;
	uint64_t msgs = 0;
	bool measuring = false, over = false;
	struct ctx c;
	char *req;
	int maxfd = 0;
	int *fds;

	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fds = calloc(conns, sizeof(*fds));
	req = malloc(size);
	lat = malloc(cap * sizeof(*lat));
	if (!fds || !req || !lat)
		die("malloc", ENOMEM);
	for (uint32_t i = 0; i < size; i++)
		req[i] = (char)(i * 31 + 7);
	for (unsigned i = 0; i < conns; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (fds[i] < 0)
			die("socket", errno);
		nodelay(fds[i]);
		if (connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)))
			die("connect", errno);
		if (fds[i] > maxfd)
			maxfd = fds[i];
	}
	cs = calloc(maxfd + 1, sizeof(*cs));
	if (!cs)
		die("calloc", ENOMEM);
	setup(&c, defer, conns);
	if (epoll_mode)
		use_epoll(&c);

	tstart = now_us();
	for (unsigned i = 0; i < conns; i++) {
		struct io_uring_sqe *sqe;

		arm_recv(&c, fds[i]);
		cs[fds[i]].t0 = tstart;
		sqe = sqe_get(&c);
		io_uring_prep_send(sqe, fds[i], req, size, MSG_WAITALL | MSG_NOSIGNAL);
		sqe->user_data = tag(K_SEND, fds[i], 0);
	}

	while (!over) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret = submit_wait(&c);

		if (ret < 0 && ret != -EINTR)
			die("submit_wait", -ret);
		io_uring_for_each_cqe(&c.ring, head, cqe) {
			uint64_t t = cqe->user_data;
			int fd = tag_fd(t);
			struct conn *k = &cs[fd];

			seen++;
			if (tag_kind(t) == K_SEND) {
				if (cqe->res < 0)
					die("send", -cqe->res);
				continue;
			}
			if (cqe->res < 0 && cqe->res != -ENOBUFS)
				die("recv", -cqe->res);
			if (cqe->res == 0)
				die("recv: server closed the connection", EPIPE);
			if (!(cqe->flags & IORING_CQE_F_MORE))
				arm_recv(&c, fd);
			if (cqe->res < 0)
				continue;
			give_back(&c, cqe->flags >> IORING_CQE_BUFFER_SHIFT);
			k->got += cqe->res;
			if (k->got < size || over)
				continue;
			k->got -= size;
			{
				double t1 = now_us();

				if (!measuring && t1 - tstart >= warmup * 1e6) {
					measuring = true;
					tspan = t1;
					printf("mark\n");
					fflush(stdout);
				} else if (measuring) {
					if (nlat == cap) {
						cap *= 2;
						lat = realloc(lat, cap * sizeof(*lat));
						if (!lat)
							die("realloc", ENOMEM);
					}
					lat[nlat++] = t1 - k->t0;
					msgs++;
					if (t1 - tspan >= seconds * 1e6) {
						over = true;
						tend = t1;
						printf("mark\n");
						fflush(stdout);
						continue;
					}
				}
				k->t0 = t1;
				struct io_uring_sqe *sqe = sqe_get(&c);

				io_uring_prep_send(sqe, fd, req, size, MSG_WAITALL | MSG_NOSIGNAL);
				sqe->user_data = tag(K_SEND, fd, 0);
			}
		}
		io_uring_cq_advance(&c.ring, seen);
	}
	qsort(lat, nlat, sizeof(*lat), cmp_double);
#define PCT(q) (nlat ? lat[(size_t)((q) * nlat) < nlat ? (size_t)((q) * nlat) : nlat - 1] : 0.0)
	printf("{\"msgs\":%llu,\"seconds\":%.6f,\"p50us\":%.2f,\"p99us\":%.2f,\"p999us\":%.2f}\n",
	       (unsigned long long)msgs, (tend - tspan) / 1e6, PCT(0.5), PCT(0.99), PCT(0.999));
	fflush(stdout);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: c_rr server [--no-defer] [--epoll]\n"
		"       c_rr client --port P --size S [--conns C] [--seconds T] [--warmup W] [--no-defer] [--epoll]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int port = 0;
	uint32_t size = 64;
	unsigned conns = 1;
	double seconds = 2, warmup = 0.5;
	bool defer = true;
	struct rlimit rl;

	if (argc < 2)
		usage();
	/* 1000 connections: as many fds as the hard limit allows */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--no-defer")) {
			defer = false;
			continue;
		}
		if (!strcmp(a, "--epoll")) {
			epoll_mode = true;
			continue;
		}
		if (!v)
			usage();
		i++;
		if (!strcmp(a, "--port"))
			port = atoi(v);
		else if (!strcmp(a, "--size"))
			size = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--conns"))
			conns = strtoul(v, NULL, 0);
		else if (!strcmp(a, "--seconds"))
			seconds = atof(v);
		else if (!strcmp(a, "--warmup"))
			warmup = atof(v);
		else
			usage();
	}
	if (!strcmp(argv[1], "server"))
		return server(defer);
	if (strcmp(argv[1], "client") || port <= 0 || port > 65535 || !size ||
	    size > (1u << 24) || !conns || conns > 16384 || seconds <= 0)
		usage();
	return client(port, size, conns, seconds, warmup, defer);
}
