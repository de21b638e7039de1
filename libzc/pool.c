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
	    (cfg->flags & ~(ZC_POOL_HUGE | ZC_POOL_RETIRE)))
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
	p->retire = !!(cfg->flags & ZC_POOL_RETIRE);
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

/*
 * Put fresh zero pages where the pool was, in one step (MAP_FIXED replaces
 * the old mapping atomically: no other thread can map into a hole
 * meanwhile).  The pinned pages are released as with munmap.  Writable, so
 * a stale view written to costs a private page, not a crash.
 */
static bool retire(struct zc_pool *p)
{
	void *q = mmap(p->base, p->map_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
		       -1, 0);

	return q != MAP_FAILED;
}

static void pool_free(struct zc_pool *p, bool busy)
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
	/* A request the kernel still runs may read the range: never let a
	 * new mapping take it. */
	if (!((p->retire || busy) && retire(p)))
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
	pool_free(p, false);
	return 0;
}

void zc_pools_destroy_all(struct zc_ring *r, bool busy)
{
	while (r->pools)
		pool_free(r->pools, busy || r->pools->inflight);
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
	uint32_t i, b;

	for (i = 0; i < req->nholds; i++) {
		struct zc_hold *h = &req->holds[i];
		uint32_t j;

		/* inflight counts requests: once per pool */
		for (j = 0; j < i && req->holds[j].pool != h->pool; j++)
			;
		if (j == i)
			h->pool->inflight += (uint32_t)delta;
		for (b = h->first; b <= h->last; b++)
			h->pool->buf_inflight[b] += (uint32_t)delta;
	}
}

int zc_hold_add(struct zc_req *req, struct zc_pool *p, uint32_t first,
		uint32_t last)
{
	struct zc_hold *same = NULL;
	uint32_t i;

	for (i = 0; i < req->nholds; i++) {
		struct zc_hold *h = &req->holds[i];

		if (h->pool != p)
			continue;
		same = h;
		if (first <= h->last + 1 && last + 1 >= h->first)
			break;	/* touching ranges: one entry */
	}
	if (i == req->nholds && req->nholds < ZC_MAX_IOV) {
		req->holds[req->nholds++] = (struct zc_hold){ p, first, last };
		return 0;
	}
	if (!same)
		return -EINVAL;
	/* Out of entries: widen this pool's (holding a few more buffers). */
	if (first < same->first)
		same->first = first;
	if (last > same->last)
		same->last = last;
	return 0;
}

uint32_t zc_pool_region_buffers(const struct zc_pool *p)
{
	return p->per_region;
}

uint32_t zc_pool_buf_inflight(const struct zc_pool *p, uint32_t buf)
{
	return buf < p->count ? p->buf_inflight[buf] : 0;
}

struct zc_pool *zc_hold_range(struct zc_ring *r, struct zc_req *req,
			      const void *addr, uint64_t len, uint32_t *buf,
			      int *err)
{
	const char *a = addr, *end = a + (len ? len : 1);
	struct zc_pool *p, *fixed = NULL;

	*buf = 0;
	*err = 0;
	for (p = r->pools; p; p = p->next) {
		const char *b = p->base, *e = b + p->map_len;
		size_t lo, hi;

		if (end <= b || a >= e)
			continue;
		lo = (size_t)((a > b ? a : b) - b) / p->size;
		hi = (size_t)((end < e ? end : e) - b - 1) / p->size;
		if (zc_hold_add(req, p, (uint32_t)lo, (uint32_t)hi)) {
			*err = -EINVAL;
			return NULL;
		}
		if (a >= b && end <= e && lo == hi) {
			fixed = p;
			*buf = (uint32_t)lo;
		}
	}
	return fixed;
}