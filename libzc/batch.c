// SPDX-License-Identifier: MIT
/*
 * Batched requests: struct zc_batch_op descriptors queued by one call, so a
 * binding crosses into C once per batch instead of once per request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>

#include "internal.h"

static int op_queue(struct zc_ring *r, const struct zc_batch_op *op)
{
	struct zc_pool *pool = (struct zc_pool *)(uintptr_t)op->pool;

	if (op->reserved)
		return -EINVAL;
	switch (op->kind) {
	case ZC_BATCH_SEND:
		return zc_send(r, op->fd, (const void *)(uintptr_t)op->addr,
			       op->len, op->flags, op->user_data);
	case ZC_BATCH_SEND_FIXED:
		if (op->len > UINT32_MAX)
			return -EINVAL;
		return zc_send_fixed(r, op->fd, pool, op->buf, op->off,
				     (uint32_t)op->len, op->flags, op->user_data);
	case ZC_BATCH_SENDMSG:
		return zc_sendmsg(r, op->fd,
				  (const struct iovec *)(uintptr_t)op->addr, op->n,
				  (const void *)(uintptr_t)op->dest, op->dest_len,
				  op->flags, op->user_data);
	case ZC_BATCH_SENDV_FIXED:
		return zc_sendv_fixed(r, op->fd, pool,
				      (const struct zc_span *)(uintptr_t)op->addr,
				      op->n, op->flags, op->user_data);
	default:
		return -EINVAL;
	}
}

int zc_flush_batch(struct zc_ring *r, const struct zc_batch_op *ops, uint32_t n,
		 int32_t *rcs, struct zc_completion *out, uint32_t max)
{
	uint32_t i;

	for (i = 0; i < n; i++) {
		int rc = op_queue(r, &ops[i]);

		rcs[i] = rc;
		if (rc == -EAGAIN || rc == -EBUSY) {
			while (++i < n)
				rcs[i] = rc;
			break;
		}
	}
	return zc_flush(r, out, max);
}
