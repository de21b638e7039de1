// SPDX-License-Identifier: MIT
/*
 * The ring's registered-file table: a busy datagram socket's lite sends
 * name it by a slot (IOSQE_FIXED_FILE), so the kernel takes the file from
 * the ring's table instead of fget()/fput() per send (~20 ns of ~860 per
 * 65000 B send: docs/PERFORMANCE.md, Session 23 ff23).
 *
 * Lifetimes (kernel 6.13+: io_uring/rsrc.c, io_uring.c; older kernels
 * defer the put to the end of the requests the same way):
 * - A slot holds one reference to the file.  A request that names the
 *   slot takes a reference to the slot's node when it is issued
 *   (io_file_get_fixed(): node->refs++) and drops it when it is freed
 *   (io_req_put_rsrc_nodes()); clearing the slot (files update with -1:
 *   io_reset_rsrc_node()) drops the table's, and the node's last put
 *   fput()s the file.  So a slot can be cleared while sends on it are in
 *   flight: they keep the socket until they end, as fget() did.
 * - A send's file is looked up when it is issued (io_assign_file()), for a
 *   lite send at submission (no link, no drain, no IOSQE_ASYNC).  SQEs
 *   still in the SQ are submitted before a slot is cleared, so they reach
 *   the socket they were queued for; a slot cleared under one (its submit
 *   failed) fails it with -EBADF, never reaches another file.
 * - Every close of the number goes through zc_close(), zc_sock_forget() or
 *   a new file under it (zc_sock_opened(), zc_socket(), zc_accept()): each
 *   clears the slot first (zc_file_drop()), so the socket is released when
 *   it is closed and a reused number never reaches the old socket.  A
 *   caller that close(2)s a socket without zc_sock_forget() leaves it open
 *   in the table until the ring is destroyed (libzc.h says so).
 */
#define _GNU_SOURCE
#include <errno.h>

#include "internal.h"

/*
 * The table is created on the first socket that earns a slot (a ring that
 * never makes lite sends registers nothing).  It is small and fixed: a
 * slot pays only for a socket that sends a lot, a ring has few of those,
 * and the rest keep the plain fd path; 64 slots are one bitmap word and
 * ~1 KiB of kernel memory, and a sparse table of that size fails only
 * under an RLIMIT_NOFILE below 64 (-EMFILE), or with -ENOMEM, or -EINVAL
 * before 5.19: then no socket gets a slot, nothing else changes.
 */
_Static_assert(ZC_FILE_SLOTS > 0 && ZC_FILE_SLOTS <= 64, "zc_ring.files_used is one word");

static bool table(struct zc_ring *r)
{
	struct io_uring_rsrc_register reg = {
		.nr = ZC_FILE_SLOTS,
		.flags = IORING_RSRC_REGISTER_SPARSE,
	};

	/*
	 * Not liburing's io_uring_register_files_sparse(): on -EMFILE it
	 * raises the process's RLIMIT_NOFILE and retries.
	 */
	if (!r->files)
		r->files = io_uring_register(r->ring.ring_fd,
					     IORING_REGISTER_FILES2, &reg,
					     sizeof(reg)) < 0 ? -1 : 1;
	return r->files > 0;
}

bool zc_file_register(struct zc_ring *r, struct zc_sock *s, int fd)
{
	uint64_t free_slots;
	unsigned slot;

	if (!table(r))
		return false;
	free_slots = ~r->files_used & (~0ull >> (64 - ZC_FILE_SLOTS));
	if (!free_slots)
		return false;
	slot = (unsigned)__builtin_ctzll(free_slots);
	if (io_uring_register_files_update(&r->ring, slot, &fd, 1) != 1)
		return false;	/* s->lite_sends stays: not tried again */
	r->files_used |= 1ull << slot;
	s->file_slot = (uint16_t)(slot + 1);
	return true;
}

void zc_file_drop(struct zc_ring *r, struct zc_sock *s)
{
	int none = -1;
	unsigned slot;

	s->lite_sends = 0;
	if (!s->file_slot)
		return;
	slot = s->file_slot - 1u;
	s->file_slot = 0;
	/* Sends queued for the socket go first (see above). */
	if (r->sqes_queued && io_uring_submit(&r->ring) >= 0)
		r->sqes_queued = 0;
	/*
	 * A clear (-1) fails only without a table or with a bad address:
	 * then the slot is never handed out again, so still nothing reaches
	 * the old file through it.
	 */
	if (io_uring_register_files_update(&r->ring, slot, &none, 1) == 1)
		r->files_used &= ~(1ull << slot);
}

/*
 * io_uring_queue_exit() frees the table too, but later (the kernel's
 * io_ring_exit_work): a socket in it would stay bound after the caller's
 * close(2) of it.  Unregistering puts every slot now.  Not while requests
 * are still in the kernel (teardown timed out): before 6.13 the unregister
 * waits for them.
 */
void zc_files_destroy(struct zc_ring *r)
{
	if (r->files > 0 && !r->reqs_used)
		io_uring_unregister_files(&r->ring);
	r->files = -1;
	r->files_used = 0;
}
