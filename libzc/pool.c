// SPDX-License-Identifier: MIT
/*
 * Buffer pools: one mmap, registered into the ring's sparse fixed-buffer
 * table as few large regions (one slot per ZC_REGION_MAX bytes of whole
 * buffers, the most one registered buffer may span).  The kernel pins the
 * pages once, here; sends from the pool then cost no pinning at all, and
 * several buffers of one region can go out in one vectored SENDMSG_ZC.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define HUGE_PAGE (2u << 20)

static int find_slots(struct zc_ring *r, uint32_t count)
{
	uint32_t i, run = 0;

	for (i = 0; i < r->cfg.max_fixed_buffers; i++) {
		run = r->slots[i] ? 0 : run + 1;
		if (run == count)
			return (int)(i + 1 - count);
	}
	return -ENOSPC;
}

static int set_slots(struct zc_ring *r, uint32_t first, struct iovec *iov,
		     uint32_t count)
{
	int ret = io_uring_register_buffers_update_tag(&r->ring, first, iov,
						      NULL, count);

	return ret < 0 ? ret : 0;
}

int zc_pool_create(struct zc_ring *r, const struct zc_pool_config *cfg,
		   struct zc_pool **out)
{
	uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE), i, per, nregions;
	struct zc_pool *p;
	struct iovec *iov;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	int first, ret;

	*out = NULL;
	if (!cfg->count || cfg->count > ZC_POOL_MAX_BUFFERS ||
	    !cfg->size || cfg->size % page || cfg->size > ZC_REGION_MAX ||
	    cfg->reserved ||
	    (cfg->flags & ~ZC_POOL_HUGE))
		return -EINVAL;
	if ((cfg->flags & ZC_POOL_HUGE) &&
	    ((uint64_t)cfg->count * cfg->size) % HUGE_PAGE)
		return -EINVAL;
	if (!r->fixed_table)
		return -EOPNOTSUPP;
	per = (uint32_t)(ZC_REGION_MAX / cfg->size);
	if (per > cfg->count)
		per = cfg->count;
	nregions = (cfg->count + per - 1) / per;
	first = find_slots(r, nregions);
	if (first < 0)
		return first;

	p = calloc(1, sizeof(*p));
	iov = calloc(nregions, sizeof(*iov));
	if (p)
		p->buf_inflight = calloc(cfg->count, sizeof(*p->buf_inflight));
	if (!p || !iov || !p->buf_inflight) {
		ret = -ENOMEM;
		goto fail;
	}
	p->r = r;
	p->count = cfg->count;
	p->size = cfg->size;
	p->first_slot = (uint32_t)first;
	p->per_region = per;
	p->nregions = nregions;
	p->map_len = (size_t)cfg->count * cfg->size;
	if (cfg->flags & ZC_POOL_HUGE)
		flags |= MAP_HUGETLB;
	p->base = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p->base == MAP_FAILED) {
		ret = -errno;
		p->base = NULL;
		goto fail;
	}
	for (i = 0; i < nregions; i++) {
		uint32_t n = i + 1 < nregions ? per : cfg->count - i * per;

		iov[i].iov_base = (char *)p->base + (size_t)i * per * cfg->size;
		iov[i].iov_len = (size_t)n * cfg->size;
	}
	ret = set_slots(r, p->first_slot, iov, nregions);
	if (ret)
		goto fail;
	for (i = 0; i < nregions; i++)
		r->slots[p->first_slot + i] = p;
	p->next = r->pools;
	r->pools = p;
	free(iov);
	*out = p;
	return 0;
fail:
	if (p && p->base)
		munmap(p->base, p->map_len);
	if (p)
		free(p->buf_inflight);
	free(p);
	free(iov);
	return ret;
}

static void pool_free(struct zc_pool *p)
{
	struct zc_ring *r = p->r;
	struct zc_pool **pp;
	struct iovec *iov = calloc(p->nregions, sizeof(*iov));
	uint32_t i;

	/* Empty iovecs unregister (and unpin) the slots. */
	if (iov)
		set_slots(r, p->first_slot, iov, p->nregions);
	free(iov);
	for (i = 0; i < p->nregions; i++)
		r->slots[p->first_slot + i] = NULL;
	for (pp = &r->pools; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	munmap(p->base, p->map_len);
	free(p->buf_inflight);
	free(p);
}

int zc_pool_destroy(struct zc_pool *p)
{
	if (!p)
		return 0;
	if (p->inflight)
		return -EBUSY;
	pool_free(p);
	return 0;
}

void zc_pools_destroy_all(struct zc_ring *r)
{
	while (r->pools)
		pool_free(r->pools);
}

void *zc_pool_base(const struct zc_pool *p)
{
	return p->base;
}

uint32_t zc_pool_inflight(const struct zc_pool *p)
{
	return p->inflight;
}

void zc_req_hold_bufs(struct zc_req *req, int delta)
{
	uint32_t i;

	if (!req->pool)
		return;
	req->pool->inflight += (uint32_t)delta;
	for (i = 0; i < req->nbufs; i++)
		req->pool->buf_inflight[req->bufs[i]] += (uint32_t)delta;
}

uint32_t zc_pool_region_buffers(const struct zc_pool *p)
{
	return p->per_region;
}

uint32_t zc_pool_slot_of(const struct zc_pool *p, uint32_t buf)
{
	return p->first_slot + buf / p->per_region;
}

uint32_t zc_pool_buf_inflight(const struct zc_pool *p, uint32_t buf)
{
	return buf < p->count ? p->buf_inflight[buf] : 0;
}

/* Which pool buffer holds [addr, addr + len), if any. */
struct zc_pool *zc_pool_of(struct zc_ring *r, const void *addr, uint32_t len,
			   uint32_t *buf)
{
	const char *a = addr;
	struct zc_pool *p;

	for (p = r->pools; p; p = p->next) {
		const char *b = p->base;

		if (a >= b && a < b + p->map_len) {
			size_t off = (size_t)(a - b);

			*buf = (uint32_t)(off / p->size);
			if (off % p->size + len > p->size)
				return NULL;	/* spans buffers: not ours */
			return p;
		}
	}
	*buf = 0;
	return NULL;
}
