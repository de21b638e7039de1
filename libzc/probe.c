// SPDX-License-Identifier: MIT
/*
 * What the running kernel and process allow: opcodes, send flags, ring
 * setup flags, limits.  Flags the opcode probe cannot show are tried on a
 * throwaway UDP socket connected to itself over loopback.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "internal.h"
#include "zc_query.h"

/* -DZC_VERSION_STRING from libzc/Makefile: the version in package.json. */
#ifndef ZC_VERSION_STRING
#error "ZC_VERSION_STRING is not defined: build libzc with its Makefile"
#endif

const char *zc_version(void)
{
	return ZC_VERSION_STRING;
}

uint64_t zc_probe_send_zc_flags(void)
{
	uint64_t flags;

	return zc_query_send_zc(&flags) == 0 ? flags : 0;
}

/* The opcode facts of a ring's probe, as enum zc_caps bits. */
static uint32_t caps_of_probe(const struct io_uring_probe *pr)
{
	uint32_t caps = 0;

	if (io_uring_opcode_supported(pr, IORING_OP_SEND_ZC))
		/* Multishot recv and buffer rings arrived together (6.0). */
		caps |= ZC_CAP_SEND_ZC | ZC_CAP_SEND_ZC_FIXED |
			ZC_CAP_BUFRING | ZC_CAP_RECV_MULTISHOT;
	if (io_uring_opcode_supported(pr, IORING_OP_SENDMSG_ZC))
		caps |= ZC_CAP_SENDMSG_ZC;
	if (zc_probe_sendv_fixed(pr))
		caps |= ZC_CAP_SENDMSG_ZC_FIXED;
	if (io_uring_opcode_supported(pr, IORING_OP_BIND) &&
	    io_uring_opcode_supported(pr, IORING_OP_LISTEN))
		caps |= ZC_CAP_OP_BIND_LISTEN;
	if (io_uring_opcode_supported(pr, IORING_OP_SOCKET))
		caps |= ZC_CAP_OP_SOCKET;
	if (io_uring_opcode_supported(pr, IORING_OP_RECV_ZC))
		caps |= ZC_CAP_RECV_ZC;
	return caps;
}

/* zc_kernel_ops()'s answer, 0 until a probe answered */
static uint32_t kernel_ops;

uint32_t zc_kernel_ops(struct io_uring *ring)
{
	uint32_t ops = __atomic_load_n(&kernel_ops, __ATOMIC_ACQUIRE);
	struct io_uring_probe *p;

	if (ops)
		return ops;
	if (zc_probe_send_zc_flags() & IORING_SEND_ZC_SINGLE_CQE)
		ops |= ZC_CAP_SEND_ZC_SINGLE_CQE;
	p = io_uring_get_probe_ring(ring);
	if (!p)
		return ops;	/* no opcodes known: not kept */
	ops |= ZC_CAP_IO_URING | caps_of_probe(p);
	io_uring_free_probe(p);
	__atomic_store_n(&kernel_ops, ops, __ATOMIC_RELEASE);
	return ops;
}

static int read_int_file(const char *path, int fallback)
{
	FILE *f = fopen(path, "r");
	int v;

	if (!f)
		return fallback;
	if (fscanf(f, "%d", &v) != 1)
		v = fallback;
	fclose(f);
	return v;
}

static int udp_self_socket(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len) ||
	    connect(fd, (struct sockaddr *)&a, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One SEND_ZC with the given ioprio flags; its result CQE's res. */
static int try_send_zc(struct io_uring *ring, int fd, unsigned zc_flags,
		       bool vectored)
{
	static char byte = 'z';
	struct iovec iov = { &byte, 1 };
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	int res = -EIO, more = 0, got = 0;

	if (vectored)
		io_uring_prep_send_zc(sqe, fd, &iov, 1, 0, zc_flags);
	else
		io_uring_prep_send_zc(sqe, fd, &byte, 1, 0, zc_flags);
	io_uring_submit(ring);
	/* Reap the result and, if announced, its notification. */
	while (got < 1 + more) {
		if (io_uring_wait_cqe(ring, &cqe))
			break;
		if (!(cqe->flags & IORING_CQE_F_NOTIF)) {
			res = cqe->res;
			more = !!(cqe->flags & IORING_CQE_F_MORE);
		}
		got++;
		io_uring_cqe_seen(ring, cqe);
	}
	return res;
}

static void probe_ring(struct zc_probe *out)
{
	struct io_uring_params p = { 0 };
	struct io_uring_probe *pr;
	struct io_uring ring;
	int ret, fd;

	ret = io_uring_queue_init_params(8, &ring, &p);
	if (ret < 0) {
		out->setup_errno = -ret;
		return;
	}
	out->caps |= ZC_CAP_IO_URING;
	out->features = p.features;
	if (zc_probe_send_zc_flags() & IORING_SEND_ZC_SINGLE_CQE)
		out->caps |= ZC_CAP_SEND_ZC_SINGLE_CQE;

	pr = io_uring_get_probe_ring(&ring);
	if (pr) {
		out->last_op = pr->last_op;
		out->caps |= caps_of_probe(pr);
		io_uring_free_probe(pr);
	}

	fd = udp_self_socket();
	if (fd >= 0 && (out->caps & ZC_CAP_SEND_ZC)) {
		if (try_send_zc(&ring, fd, IORING_SEND_ZC_REPORT_USAGE,
				false) == 1)
			out->caps |= ZC_CAP_REPORT_USAGE;
		if (try_send_zc(&ring, fd, IORING_SEND_VECTORIZED, true) == 1)
			out->caps |= ZC_CAP_SEND_VECTORIZED;
	}
	if (fd >= 0)
		close(fd);
	io_uring_queue_exit(&ring);

	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if (io_uring_queue_init_params(8, &ring, &p) == 0) {
		out->caps |= ZC_CAP_DEFER_TASKRUN;
		io_uring_queue_exit(&ring);
	}
}

int zc_probe(struct zc_probe *out)
{
	struct utsname u;
	struct rlimit rl;

	memset(out, 0, sizeof(*out));
	if (uname(&u) == 0)
		snprintf(out->kernel_release, sizeof(out->kernel_release),
			 "%s", u.release);
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0) {
		out->memlock_cur = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX :
				   rl.rlim_cur;
		out->memlock_max = rl.rlim_max == RLIM_INFINITY ? UINT64_MAX :
				   rl.rlim_max;
	}
	out->io_uring_disabled =
		read_int_file("/proc/sys/kernel/io_uring_disabled", -1);
	out->liburing_major = io_uring_major_version();
	out->liburing_minor = io_uring_minor_version();
	out->page_size = (uint32_t)sysconf(_SC_PAGESIZE);
	probe_ring(out);
	if (out->caps & ZC_CAP_IO_URING)
		zc_recv_probe(out);
	return 0;
}

/* recv.c fills in the receive capabilities when it is linked in. */
__attribute__((weak)) void zc_recv_probe(struct zc_probe *p)
{
	(void)p;
}
