/* SPDX-License-Identifier: MIT */
/*
 * zc_sink: the receiving end of `uring-zc bench`.
 *
 * Listens on 127.0.0.1 (port 0 = any), prints "port N" on stdout, then
 * serves connections one after the other: reads everything into one
 * buffer (--trunc: recv(MSG_TRUNC), which discards inside the kernel
 * without copying) and, at EOF, prints
 *   done BYTES CPU_SECONDS WALL_SECONDS
 * for that connection.  Exits when stdin reaches EOF (its parent died or
 * closed the pipe), so it never outlives the benchmark.
 *
 * --spin: read with MSG_DONTWAIT and retry at once on EAGAIN, so the sink
 * never sleeps on a connection.  A sleeping sink is woken from the
 * sender's softirq (loopback delivers there), and on a 2-vCPU guest each
 * wakeup is an IPI to a halted vCPU that the sender pays for; how often
 * the sink sleeps depends on whether it is ahead of the sender, so runs of
 * any mode fell into a fast or a slow regime (docs/PERFORMANCE.md,
 * Session 26, tcp26).  Between connections it still sleeps in poll().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (1u << 20)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	       ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t salen = sizeof(sa);
	bool trunc = false, spin = false;
	int port = 0, lfd, one = 1;
	char *buf;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--trunc"))
			trunc = true;
		else if (!strcmp(argv[i], "--spin"))
			spin = true;
		else if (!strcmp(argv[i], "--port") && i + 1 < argc)
			port = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: zc_sink [--port P] [--trunc] [--spin]\n");
			return 2;
		}
	}
	buf = malloc(BUF_SIZE);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (!buf || lfd < 0) {
		perror("zc_sink: setup");
		return 1;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(lfd, 16) ||
	    getsockname(lfd, (struct sockaddr *)&sa, &salen)) {
		perror("zc_sink: listen");
		return 1;
	}
	printf("port %d\n", ntohs(sa.sin_port));
	fflush(stdout);

	for (;;) {
		struct pollfd pf[2] = {
			{ .fd = lfd, .events = POLLIN },
			{ .fd = 0, .events = POLLIN },
		};
		uint64_t total = 0;
		double c0, t0;
		int fd, flags;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			perror("zc_sink: poll");
			return 1;
		}
		if (pf[1].revents) {
			ssize_t n = read(0, buf, BUF_SIZE);

			if (n <= 0)
				return 0;
			continue;
		}
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		flags = (trunc ? MSG_TRUNC : 0) | (spin ? MSG_DONTWAIT : 0);
		c0 = cpu_now();
		t0 = now();
		for (;;) {
			ssize_t n = recv(fd, buf, BUF_SIZE, flags);

			if (n > 0) {
				total += n;
				continue;
			}
			if (n < 0 && (errno == EINTR || (spin && errno == EAGAIN)))
				continue;
			break;
		}
		close(fd);
		printf("done %llu %.6f %.6f\n", (unsigned long long)total,
		       cpu_now() - c0, now() - t0);
		fflush(stdout);
	}
}
