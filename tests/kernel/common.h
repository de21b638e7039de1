/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers of the kernel ABI tests and the benchmark in tests/kernel:
 * raw liburing, no libzc.  The ABI constants come from libzc/zc_uapi.h, the
 * project's single spelling of them.
 */
#ifndef ZC_KTEST_COMMON_H
#define ZC_KTEST_COMMON_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "zc_query.h"

struct sock_pair {
	int tx;		/* io_uring sends on this one */
	int rx;		/* non-blocking peer */
	int family;	/* AF_INET / AF_INET6 */
	int type;	/* SOCK_STREAM / SOCK_DGRAM */
};

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline socklen_t loopback_addr(int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		return sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*s4);
	}
}

static inline void set_nonblock(int fd)
{
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/*
 * A connected loopback pair.  sndbuf/rcvbuf > 0 shrink the buffers (TCP:
 * to make sends block part-way).  Returns 0 or -errno; on -EAFNOSUPPORT /
 * -EADDRNOTAVAIL the family is not available.
 */
static inline int sock_pair_open(struct sock_pair *sp, int family, int type,
				 int sndbuf, int rcvbuf)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback_addr(family, &ss);
	int lfd = -1, err;

	sp->tx = sp->rx = -1;
	sp->family = family;
	sp->type = type;

	if (type == SOCK_STREAM) {
		lfd = socket(family, SOCK_STREAM, 0);
		if (lfd < 0)
			return -errno;
		if (rcvbuf > 0)
			setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		if (bind(lfd, (struct sockaddr *)&ss, len) || listen(lfd, 1) ||
		    getsockname(lfd, (struct sockaddr *)&ss, &len))
			goto fail;
		sp->tx = socket(family, SOCK_STREAM, 0);
		if (sp->tx < 0)
			goto fail;
		if (sndbuf > 0)
			setsockopt(sp->tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		if (connect(sp->tx, (struct sockaddr *)&ss, len))
			goto fail;
		sp->rx = accept(lfd, NULL, NULL);
		if (sp->rx < 0)
			goto fail;
		close(lfd);
	} else {
		sp->rx = socket(family, SOCK_DGRAM, 0);
		if (sp->rx < 0)
			return -errno;
		if (rcvbuf > 0)
			setsockopt(sp->rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		if (bind(sp->rx, (struct sockaddr *)&ss, len) ||
		    getsockname(sp->rx, (struct sockaddr *)&ss, &len))
			goto fail;
		sp->tx = socket(family, SOCK_DGRAM, 0);
		if (sp->tx < 0)
			goto fail;
		if (sndbuf > 0)
			setsockopt(sp->tx, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
		if (connect(sp->tx, (struct sockaddr *)&ss, len))
			goto fail;
	}
	set_nonblock(sp->rx);
	return 0;
fail:
	err = -errno;
	if (lfd >= 0)
		close(lfd);
	if (sp->tx >= 0)
		close(sp->tx);
	if (sp->rx >= 0)
		close(sp->rx);
	sp->tx = sp->rx = -1;
	return err ? err : -EIO;
}

static inline void sock_pair_close(struct sock_pair *sp)
{
	if (sp->tx >= 0)
		close(sp->tx);
	if (sp->rx >= 0)
		close(sp->rx);
	sp->tx = sp->rx = -1;
}

static inline bool kernel_has_single_cqe(void)
{
	uint64_t flags;

	return zc_query_send_zc(&flags) == 0 && (flags & IORING_SEND_ZC_SINGLE_CQE);
}

#endif /* ZC_KTEST_COMMON_H */
