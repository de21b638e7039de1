/* SPDX-License-Identifier: MIT */
/*
 * Kernel ABI that uring-zc adds on top of the system <linux/io_uring.h>:
 * the single-CQE zero-copy send of patches/ (IORING_SEND_ZC_SINGLE_CQE) and
 * the query that reports it (IO_URING_QUERY_SEND_ZC).
 *
 * These values are the ones the patch series writes into
 * include/uapi/linux/io_uring.h and include/uapi/linux/io_uring/query.h;
 * scripts/kernel-build.sh checks that the patched tree agrees with this
 * file (IORING_* defines by name, ZC_IO_URING_QUERY_* against the kernel's
 * IO_URING_QUERY_* enum), so this is the one place userspace spells them.
 * On kernels without the series the query does not know the op and libzc
 * merges the two stock CQEs in userspace instead.
 */
#ifndef ZC_UAPI_H
#define ZC_UAPI_H

#include <linux/io_uring.h>
#include <linux/types.h>

/*
 * sqe->ioprio flag for IORING_OP_SEND_ZC / IORING_OP_SENDMSG_ZC: post exactly
 * one CQE, once the kernel dropped its last reference to the data, with the
 * request's user_data and result (bytes sent, or -errno if nothing was
 * sent); neither IORING_CQE_F_MORE nor IORING_CQE_F_NOTIF is set.  -EINVAL
 * with IORING_SEND_ZC_REPORT_USAGE or a notification user_data in addr3.
 */
#ifndef IORING_SEND_ZC_SINGLE_CQE
#define IORING_SEND_ZC_SINGLE_CQE	(1U << 6)
#endif

/*
 * io_uring_register(-1, IORING_REGISTER_QUERY, hdr, 0) op (enum
 * IO_URING_QUERY_SEND_ZC in the kernel's <linux/io_uring/query.h>): fills
 * struct zc_io_uring_query_send_zc with the flags SEND[MSG]_ZC accept.  An
 * enum constant cannot be tested with #ifdef, hence the ZC_ prefix.
 */
#define ZC_IO_URING_QUERY_SEND_ZC	4

/* struct io_uring_query_send_zc of the series, field for field. */
struct zc_io_uring_query_send_zc {
	__u64 flags;		/* IORING_RECVSEND_* / IORING_SEND_* accepted */
	__u64 resv[3];
};

#endif /* ZC_UAPI_H */
