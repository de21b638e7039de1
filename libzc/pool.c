// SPDX-License-Identifier: MIT
/*
 * Buffer pools: one mmap, registered into a run of slots of the ring's
 * sparse fixed-buffer table.  The kernel pins the pages once, here; sends
 * from the pool then cost no pinning at all.
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
	uint32_t page = (uint32_t)sysconf(_SC_PAGESIZE), i;
	struct zc_pool *p;
	struct iovec *iov;
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	int first, ret;

	*out = NULL;
	if (!cfg->count || cfg->count > r->cfg.max_fixed_buffers ||
	    !cfg->size || cfg->size % page || cfg->reserved ||
	    (cfg->flags & ~ZC_POOL_HUGE))
		return -EINVAL;
	if ((cfg->flags & ZC_POOL_HUGE) &&
	    ((uint64_t)cfg->count * cfg->size) % HUGE_PAGE)
		return -EINVAL;
	if (!r->fixed_table)
		return -EOPNOTSUPP;
	first = find_slots(r, cfg->count);
	if (first < 0)
		return first;

	p = calloc(1, sizeof(*p));
	iov = calloc(cfg->count, sizeof(*iov));
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
	p->map_len = (size_t)cfg->count * cfg->size;
	if (cfg->flags & ZC_POOL_HUGE)
		flags |= MAP_HUGETLB;
	p->base = mmap(NULL, p->map_len, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p->base == MAP_FAILED) {
		ret = -errno;
		p->base = NULL;
		goto fail;
	}
	for (i = 0; i < cfg->count; i++) {
		iov[i].iov_base = (char *)p->base + (size_t)i * cfg->size;
		iov[i].iov_len = cfg->size;
	}
	ret = set_slots(r, p->first_slot, iov, cfg->count);
	if (ret)
		goto fail;
	for (i = 0; i < cfg->count; i++)
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
	struct iovec *iov = calloc(p->count, sizeof(*iov));
	uint32_t i;

	/* Empty iovecs unregister (and unpin) the slots. */
	if (iov)
		set_slots(r, p->first_slot, iov, p->count);
	free(iov);
	for (i = 0; i < p->count; i++)
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
