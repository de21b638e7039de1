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
	case ZC_BATCH_RX_RELEASE:
		return zc_rx_release_batch(r, (struct zc_rx *)(uintptr_t)op->rx,
					   (const uint64_t *)(uintptr_t)op->addr,
					   op->n);
	default:
		return -EINVAL;
	}
}

int zc_flush_batch(struct zc_ring *r, const struct zc_batch_op *ops, uint32_t n,
		 int32_t *rcs, struct zc_completion *out, uint32_t max)
{
	int full = 0;
	uint32_t i;

	for (i = 0; i < n; i++) {
		/* After the first -EAGAIN no request is tried (order); releases
		 * take no request slot and always run. */
		if (full && ops[i].kind != ZC_BATCH_RX_RELEASE) {
			rcs[i] = full;
			continue;
		}
		rcs[i] = op_queue(r, &ops[i]);
		if (rcs[i] == -EAGAIN || rcs[i] == -EBUSY)
			full = rcs[i];
	}
	return zc_flush(r, out, max);
}
