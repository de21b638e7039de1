/* SPDX-License-Identifier: MIT */
/*
 * Kernel ABI that uring-zc adds on top of the system <linux/io_uring.h>:
 * the single-CQE ("unified") zero-copy send mode of patches/.
 *
 * These values are the ones the patch series writes into
 * include/uapi/linux/io_uring.h; scripts/kernel-build.sh checks that the
 * patched tree agrees with this file, so this is the one place userspace
 * spells them.  On kernels without the patch the feature bit is absent
 * and libzc merges the two stock CQEs in userspace instead.
 */
#ifndef ZC_UAPI_H
#define ZC_UAPI_H

#include <linux/io_uring.h>

/*
 * sqe->ioprio flag for IORING_OP_SEND_ZC / IORING_OP_SENDMSG_ZC: post exactly
 * one CQE, after the kernel dropped its last reference to the buffer.
 * res is the byte count (or -errno), IORING_CQE_F_NOTIF is set and
 * IORING_CQE_F_MORE never is.
 */
#ifndef IORING_SEND_ZC_UNIFIED
#define IORING_SEND_ZC_UNIFIED		(1U << 6)
#endif

/* io_uring_params.features: the kernel understands IORING_SEND_ZC_UNIFIED. */
#ifndef IORING_FEAT_SEND_ZC_UNIFIED
#define IORING_FEAT_SEND_ZC_UNIFIED	(1U << 18)
#endif

/*
 * cqe->flags of a unified completion sent with IORING_SEND_ZC_REPORT_USAGE:
 * the kernel copied (some of) the data instead of sending it zero-copy.
 */
#ifndef IORING_CQE_F_ZC_COPIED
#define IORING_CQE_F_ZC_COPIED		(1U << 6)
#endif

#endif /* ZC_UAPI_H */
