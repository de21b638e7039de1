/* SPDX-License-Identifier: MIT */
/* Shared plumbing for libzc's C tests: checks, loopback sockets, reaping. */
#ifndef ZC_TEST_HELPERS_H
#define ZC_TEST_HELPERS_H

/* _GNU_SOURCE comes from the Makefile: headers may precede this one. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "libzc.h"

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: check failed: %s\n",		\
			__FILE__, __LINE__, #cond);			\
		exit(1);						\
	}								\
} while (0)

#define CHECK_EQ(a, b) do {						\
	long long _a = (long long)(a), _b = (long long)(b);		\
	if (_a != _b) {							\
		fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", \
			__FILE__, __LINE__, #a, _a, #b, _b);		\
		exit(1);						\
	}								\
} while (0)

static inline void skip(const char *why)
{
	printf("skip: %s\n", why);
	exit(77);
}

/* A connected TCP pair over loopback: *tx sends, *rx receives. */
static inline void tcp_pair(int *tx, int *rx)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(l >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(l, 1) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&a, &len) == 0);
	*tx = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(*tx >= 0);
	CHECK(connect(*tx, (struct sockaddr *)&a, len) == 0);
	*rx = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	CHECK(*rx >= 0);
	close(l);
}

/* A UDP socket bound to loopback, and its address. */
static inline int udp_bound(struct sockaddr_in *a)
{
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(fd, (struct sockaddr *)a, sizeof(*a)) == 0);
	CHECK(getsockname(fd, (struct sockaddr *)a, &len) == 0);
	return fd;
}

static inline struct zc_ring *ring_new(uint32_t flags)
{
	struct zc_ring_config cfg = { .sq_entries = 64, .flags = flags };
	struct zc_ring *r;
	int ret = zc_ring_create(&cfg, &r);

	if (ret == -EPERM || ret == -ENOSYS)
		skip("io_uring is not available to this process");
	CHECK_EQ(ret, 0);
	return r;
}

/* The pattern byte at stream offset off: any reordering shows. */
static inline uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off * 7 + (off >> 9) * 13 + (off >> 17));
}

/* Scale heavy loops down inside slow VMs (URING_ZC_SCALE=0.1). */
static inline unsigned scaled(unsigned n)
{
	const char *s = getenv("URING_ZC_SCALE");
	double f = s ? atof(s) : 1.0;
	unsigned v = (unsigned)(n * (f > 0 ? f : 1.0));

	return v ? v : 1;
}

/* An environment flag set to "1". */
static inline bool env_is_1(const char *name)
{
	const char *v = getenv(name);

	return v && !strcmp(v, "1");
}

/* Inside the VM suites (vm-guest.sh sets URING_ZC_VM=1). */
static inline bool in_vm(void)
{
	return env_is_1("URING_ZC_VM");
}

/* `make test-full` (URING_ZC_FULL=1): the slow forms of the suites. */
static inline bool full_run(void)
{
	return env_is_1("URING_ZC_FULL");
}

/*
 * Long loops that are long to be thorough, not to reach a size: a quarter
 * of scaled() in the VMs, where KASAN under TCG makes each send some 30
 * times dearer than in a plain TCG guest.
 */
static inline unsigned scaled_vm(unsigned n)
{
	unsigned v = scaled(n);

	if (in_vm())
		v /= 4;
	return v ? v : 1;
}

/*
 * Byte counts that are large to be thorough, not to cross a limit: a
 * quarter in the VMs' CI form (moving and checking data under TCG with
 * KASAN runs at a few tens of MB/s).
 */
static inline uint64_t vm_bytes(uint64_t n)
{
	return in_vm() && !full_run() ? n / 4 : n;
}

#endif

#include <pthread.h>

/* Reader thread: drains fd until EOF, checking the stream pattern. */
struct verifier {
	int fd;
	uint64_t bytes;
	uint64_t bad_at;	/* first mismatching offset + 1, 0 if none */
	pthread_t thread;
};

static inline void *verifier_main(void *arg)
{
	struct verifier *v = arg;
	static __thread uint8_t buf[1 << 16];
	ssize_t n, i;

	while ((n = read(v->fd, buf, sizeof(buf))) > 0) {
		for (i = 0; i < n; i++) {
			if (!v->bad_at && buf[i] != pattern(v->bytes + i))
				v->bad_at = v->bytes + i + 1;
		}
		v->bytes += n;
	}
	return NULL;
}

static inline void verifier_start(struct verifier *v, int fd)
{
	memset(v, 0, sizeof(*v));
	v->fd = fd;
	CHECK(pthread_create(&v->thread, NULL, verifier_main, v) == 0);
}

static inline void verifier_join(struct verifier *v)
{
	pthread_join(v->thread, NULL);
}

/* Send FIN on tx, wait for the reader, and check it got exactly the
 * first `bytes` bytes of the pattern. */
static inline void verifier_finish(struct verifier *v, int tx, uint64_t bytes)
{
	shutdown(tx, SHUT_WR);
	verifier_join(v);
	CHECK_EQ(v->bad_at, 0);
	CHECK_EQ(v->bytes, bytes);
}

static inline void fill_pattern(uint8_t *p, uint64_t off, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = pattern(off + i);
}

/* Wait for exactly one record and return it. */
static inline struct zc_completion wait_one(struct zc_ring *r)
{
	struct zc_completion c;
	int n = zc_wait(r, &c, 1, 1, 5000);

	CHECK_EQ(n, 1);
	return c;
}
