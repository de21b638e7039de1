// SPDX-License-Identifier: MIT
/*
 * zc_kernel_ops(): the kernel's opcodes are probed once per process, from
 * any thread, and every ring gets the same answer as a fresh zc_probe().
 */
#include "helpers.h"
#include "internal.h"

#include <pthread.h>

#define THREADS 8

/* What zc_kernel_ops() reports of zc_probe()'s caps */
#define KERNEL_CAPS (ZC_CAP_IO_URING | ZC_CAP_SEND_ZC | ZC_CAP_SEND_ZC_FIXED | \
		     ZC_CAP_BUFRING | ZC_CAP_RECV_MULTISHOT | ZC_CAP_SENDMSG_ZC | \
		     ZC_CAP_SENDMSG_ZC_FIXED | ZC_CAP_OP_BIND_LISTEN | \
		     ZC_CAP_OP_SOCKET | ZC_CAP_RECV_ZC | ZC_CAP_SEND_ZC_SINGLE_CQE)

/* The same facts from zc_probe(), which probes afresh on a ring of its own. */
static uint32_t expected(void)
{
	struct zc_probe p;

	CHECK_EQ(zc_probe(&p), 0);
	return p.caps & KERNEL_CAPS;
}

static uint32_t want;
static pthread_barrier_t start;

/* One ring created at the same moment as the other threads' rings. */
static void *create_one(void *arg)
{
	struct zc_ring_config cfg = { .sq_entries = 8 };
	struct zc_ring *r;

	(void)arg;
	pthread_barrier_wait(&start);
	CHECK_EQ(zc_ring_create(&cfg, &r), 0);
	CHECK_EQ(r->has_bind_listen, !!(want & ZC_CAP_OP_BIND_LISTEN));
	CHECK_EQ(r->has_socket_op, !!(want & ZC_CAP_OP_SOCKET));
	CHECK_EQ(r->has_vec_fixed, !!(want & ZC_CAP_SENDMSG_ZC_FIXED));
	CHECK_EQ(r->has_recv_zc, !!(want & ZC_CAP_RECV_ZC));
	CHECK_EQ(r->native, !!(want & ZC_CAP_SEND_ZC_SINGLE_CQE));
	CHECK_EQ(zc_ring_sendv_fixed(r), !!(want & ZC_CAP_SENDMSG_ZC_FIXED));
	zc_ring_destroy(r);
	return NULL;
}

int main(void)
{
	/* a ring whose fd is no io_uring: a probe through it fails */
	struct io_uring_probe *probe = io_uring_get_probe();
	struct io_uring dead;
	pthread_t t[THREADS];
	int i;

	if (!probe)
		skip("io_uring unavailable");
	io_uring_free_probe(probe);

	memset(&dead, 0, sizeof(dead));
	dead.ring_fd = -1;
	dead.enter_ring_fd = -1;
	want = expected();
	printf("kernel ops %#x\n", want);

	/* nothing probed yet: the dead ring's probe fails, nothing kept */
	CHECK(!(zc_kernel_ops(&dead) & ZC_CAP_IO_URING));

	CHECK_EQ(pthread_barrier_init(&start, NULL, THREADS), 0);
	for (i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_create(&t[i], NULL, create_one, NULL), 0);
	for (i = 0; i < THREADS; i++)
		CHECK_EQ(pthread_join(t[i], NULL), 0);
	pthread_barrier_destroy(&start);

	/* kept: the dead ring is not asked again, the answer is the probe's */
	CHECK_EQ(zc_kernel_ops(&dead), want);
	return 0;
}
