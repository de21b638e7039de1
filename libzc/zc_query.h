/* SPDX-License-Identifier: MIT */
/*
 * IO_URING_QUERY_SEND_ZC (zc_uapi.h), asked once for libzc's probe and for
 * tests/kernel, which does not link libzc.  The includer defines
 * _GNU_SOURCE (syscall()).
 */
#ifndef ZC_QUERY_H
#define ZC_QUERY_H

#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "zc_uapi.h"

/*
 * The flags SEND[MSG]_ZC accept, from IO_URING_QUERY_SEND_ZC (needs no ring:
 * a blind register call, fd -1).  0 with *flags filled; else the query's
 * hdr.result (-EOPNOTSUPP: a kernel without the op), the register call's
 * -errno, or -EOPNOTSUPP if the kernel filled less than the flags field.
 */
static inline int zc_query_send_zc(uint64_t *flags)
{
	struct zc_io_uring_query_send_zc q;
	struct io_uring_query_hdr h;

	memset(&q, 0, sizeof(q));
	memset(&h, 0, sizeof(h));
	h.query_op = ZC_IO_URING_QUERY_SEND_ZC;
	h.query_data = (uint64_t)(uintptr_t)&q;
	h.size = sizeof(q);
	*flags = 0;
	if (syscall(__NR_io_uring_register, -1, IORING_REGISTER_QUERY, &h, 0) < 0)
		return -errno;
	if (h.result < 0)
		return h.result;
	if (h.size < sizeof(q.flags))
		return -EOPNOTSUPP;
	*flags = q.flags;
	return 0;
}

#endif /* ZC_QUERY_H */
