// SPDX-License-Identifier: MIT
/*
 * sendfile_paths: the ways zc_sendfile() can move a file, side by side,
 * over loopback TCP into a reader process that discards: splice (the
 * default), read + SEND_ZC, read + send, O_DIRECT read + SEND_ZC, and
 * plain sendfile(2) as the kernel's own reference.  Two cases: one file
 * over one connection (sent again and again), and a small file over many
 * connections, a transfer in flight on each.  Methods alternate within
 * each round; the sender's CPU (all threads, io-wq workers included) comes
 * from getrusage().  Prints one line per run and a JSON summary.
 *
 *   sendfile_paths FILE SMALLFILE [seconds] [rounds] [conns]
 *   SF_PIPE=bytes SF_DEPTH=n  zc_sendfile_configure() of the splice runs
 *   SF_METHODS=splice,read    only these methods
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../libzc.h"

#define MAX_CONNS 64

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage u;

	getrusage(RUSAGE_SELF, &u);
	return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 +
	       u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "sendfile_paths: %s: %s\n", what, strerror(err));
	exit(1);
}

/* The reader: accepts n connections and discards everything, until EOF on all. */
static void reader(int l, int n)
{
	static char buf[1 << 20];
	struct epoll_event ev, evs[MAX_CONNS];
	int ep = epoll_create1(0), open = n, i;

	for (i = 0; i < n; i++) {
		int c = accept(l, NULL, NULL);

		if (c < 0)
			die("accept", errno);
		ev.events = EPOLLIN;
		ev.data.fd = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
	}
	while (open > 0) {
		int k = epoll_wait(ep, evs, MAX_CONNS, -1);

		for (i = 0; i < k; i++) {
			ssize_t r = read(evs[i].data.fd, buf, sizeof(buf));

			if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
				close(evs[i].data.fd);
				open--;
			}
		}
	}
	_exit(0);
}

/* n connected sockets to a forked reader; returns its pid. */
static pid_t connect_reader(int *fds, int n)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), i;
	pid_t pid;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(l, (void *)&a, sizeof(a)) || listen(l, MAX_CONNS) ||
	    getsockname(l, (void *)&a, &len))
		die("listen", errno);
	pid = fork();
	if (pid == 0)
		reader(l, n);
	close(l);
	for (i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fds[i], (void *)&a, len))
			die("connect", errno);
	}
	return pid;
}

struct method {
	const char *name;
	int zc;			/* through zc_sendfile */
	uint32_t flags;
};

static const struct method METHODS[] = {
	{ "sendfile2", 0, 0 },
	{ "splice", 1, ZC_SENDFILE_SPLICE },
	{ "read", 1, ZC_SENDFILE_READ },
	{ "read-copy", 1, ZC_SENDFILE_READ | ZC_SENDFILE_COPY },
	{ "direct", 1, ZC_SENDFILE_DIRECT },
};
#define NMETHODS (sizeof(METHODS) / sizeof(METHODS[0]))

/* Send file over n connections for `secs`; returns bytes, *cpu_s the CPU. */
static double run(const struct method *m, int file, uint64_t size, int n,
		  double secs, double *cpu_s, double *wall)
{
	int fds[MAX_CONNS], i, status;
	pid_t pid = connect_reader(fds, n);
	double t0, c0, bytes = 0;

	t0 = now();
	c0 = cpu();
	if (!m->zc) {
		/* one connection, blocking sendfile(2) loops */
		while (now() - t0 < secs) {
			off_t off = 0;

			while ((uint64_t)off < size) {
				ssize_t k = sendfile(fds[0], file, &off, size - off);

				if (k <= 0)
					die("sendfile", errno);
				bytes += k;
			}
		}
	} else {
		struct zc_ring_config cfg = { .sq_entries = 256 };
		struct zc_completion cs[64];
		struct zc_ring *r;
		int ret = zc_ring_create(&cfg, &r), inflight = 0;

		if (ret)
			die("zc_ring_create", -ret);
		if (getenv("SF_PIPE") || getenv("SF_DEPTH")) {
			/* tuning: the sendfile parameters of the ring */
			struct zc_sendfile_config sc = {
				.pipe_size = getenv("SF_PIPE") ? (uint32_t)atoi(getenv("SF_PIPE")) : 0,
				.splice_depth = getenv("SF_DEPTH") ? (uint32_t)atoi(getenv("SF_DEPTH")) : 0,
			};

			if ((ret = zc_sendfile_configure(r, &sc)))
				die("zc_sendfile_configure", -ret);
		}
		for (i = 0; i < n; i++) {
			if ((ret = zc_sendfile(r, fds[i], file, 0, size, m->flags, i)))
				die("zc_sendfile", -ret);
			inflight++;
		}
		zc_submit(r);
		while (inflight) {
			int k = zc_wait(r, cs, 64, 1, 1000);

			for (i = 0; i < k; i++) {
				if (cs[i].res < 0)
					die(m->name, -cs[i].res);
				bytes += (double)cs[i].aux;
				inflight--;
				if (now() - t0 < secs) {
					zc_sendfile(r, fds[cs[i].user_data], file, 0,
						    size, m->flags, cs[i].user_data);
					inflight++;
				}
			}
			zc_submit(r);
		}
		zc_ring_destroy(r);
	}
	*wall = now() - t0;
	*cpu_s = cpu() - c0;
	for (i = 0; i < n; i++)
		close(fds[i]);
	waitpid(pid, &status, 0);
	return bytes;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	double secs = argc > 3 ? atof(argv[3]) : 3;
	int rounds = argc > 4 ? atoi(argv[4]) : 3;
	int conns = argc > 5 ? atoi(argv[5]) : 16;
	const char *files[2];
	int nc[2] = { 1, conns }, c, rd, k;
	double mbps[2][NMETHODS][32], mbcpu[2][NMETHODS][32];

	if (argc < 3 || rounds < 1 || rounds > 32 || conns < 1 || conns > MAX_CONNS) {
		fprintf(stderr, "usage: sendfile_paths FILE SMALLFILE [seconds] [rounds 1..32] [conns 1..%d]\n", MAX_CONNS);
		return 2;
	}
	files[0] = argv[1];
	files[1] = argv[2];
	signal(SIGPIPE, SIG_IGN);
	for (rd = 0; rd < rounds; rd++) {
		for (c = 0; c < 2; c++) {
			int file = open(files[c], O_RDONLY);
			struct stat st;

			if (file < 0 || fstat(file, &st))
				die(files[c], errno);
			for (k = 0; k < (int)NMETHODS; k++) {
				int mi = (k + rd) % NMETHODS;
				const struct method *m = &METHODS[mi];
				double cs, wall, b;

				if ((!m->zc && nc[c] != 1) ||
				    (getenv("SF_METHODS") && !strstr(getenv("SF_METHODS"), m->name))) {
					mbps[c][mi][rd] = mbcpu[c][mi][rd] = 0;
					continue;
				}
				b = run(m, file, st.st_size, nc[c], secs, &cs, &wall);
				mbps[c][mi][rd] = b / wall / 1e6;
				mbcpu[c][mi][rd] = cs > 0 ? b / cs / 1e6 : 0;
				fprintf(stderr, "round %d %-10s %s x%d: %6.0f MB/s, cpu %3.0f%%, %6.0f MB per CPU-s\n",
					rd + 1, m->name, c ? "small" : "large", nc[c],
					mbps[c][mi][rd], 100 * cs / wall, mbcpu[c][mi][rd]);
			}
			close(file);
		}
	}
	printf("[");
	for (c = 0; c < 2; c++) {
		for (k = 0; k < (int)NMETHODS; k++) {
			if ((!METHODS[k].zc && nc[c] != 1) ||
			    (getenv("SF_METHODS") && !strstr(getenv("SF_METHODS"), METHODS[k].name)))
				continue;
			printf("%s{\"method\":\"%s\",\"case\":\"%s\",\"conns\":%d,\"mbps\":%.0f,\"mbPerCpuS\":%.0f}",
			       c || k ? "," : "", METHODS[k].name, c ? "small" : "large", nc[c],
			       median(mbps[c][k], rounds), median(mbcpu[c][k], rounds));
		}
	}
	printf("]\n");
	return 0;
}
