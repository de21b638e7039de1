// SPDX-License-Identifier: MIT
/*
 * Receive path: a receive area (memory registered once) shared by any
 * number of multishot receives, in one of three modes.
 *
 *  bufring     multishot IORING_OP_RECV selecting buffers from a
 *              provided-buffer ring whose buffers are the area's slots.
 *              Out of buffers: the kernel ends the request with -ENOBUFS.
 *  zcrx        IORING_REGISTER_ZCRX_IFQ on a hardware RX queue, multishot
 *              IORING_OP_RECV_ZC; chunks are handed back through the
 *              refill ring, which the NIC's page pool consumes.
 *  zcrx-nodev  the same without a device (ZCRX_REG_NODEV, 7.1+): the
 *              kernel copies into the area and only consumes the refill
 *              ring when told to with ZCRX_CTRL_FLUSH_RQ.
 *              Out of buffers: -ENOMEM ends the request.
 *
 * A request ended for lack of buffers (or a full CQ, -ENOSPC) is parked
 * and re-armed as soon as buffers are back: the data stays in the socket,
 * and with one receive per socket in flight nothing is lost, repeated or
 * reordered.
 *
 * Fairness: the receives of an area share its buffers.  A receive whose
 * caller holds its quota of chunks (zc_rx_config.recv_quota, by default a
 * fair share: buffers / receives, at least 2) is paused: its multishot
 * request is canceled and parked like one out of buffers, and re-armed
 * once the caller released chunks below the quota.  So a reader that
 * holds chunks stalls its own socket only (its data waits in the socket,
 * TCP pushes back on its peer) and never starves the others.  The kernel
 * fills buffers faster than completions are seen, so each arming also
 * carries a byte limit, the room left under the quota (multishot recv:
 * sqe->optlen, on kernels that have the limit, see no_mshot_lim; RECV_ZC:
 * sqe->len): a burst stops there by itself.  Without the limit, a few
 * chunks may arrive before the cancel lands.
 *
 * Every chunk is tracked per slot (held[] counts the chunks of a slot the
 * caller still holds), so a double or bogus release is refused instead of
 * handing the kernel a buffer twice.
 *
 * What differs between the modes sits in one operations table per backend
 * (struct rx_ops: rx_bufring, rx_zcrx, rx_zcrx_nodev); the code above them
 * (quota, parking, accounting, records) is the same for all.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "internal.h"

#define RX_DEFAULT_BUF		(64u << 10)
#define RX_DEFAULT_AREA		(16ull << 20)
#define RX_MAX_ENTRIES		32768u
#define RX_MAX_AREA		(1ull << 40)

/* req->arg of a receive request */
#define RECV_STOPPING		1	/* zc_recv_cancel() asked for the end */
#define RECV_PAUSING		2	/* canceled for its quota: park, not end */

struct zc_rx;

/*
 * A receive backend: what one mode does differently.  Every hook is set
 * (no NULL checks on the receive path); the common code validates the
 * caller's arguments before a hook sees them.
 */
struct rx_ops {
	uint32_t default_buf;		/* slot size if not configured, 0: page */
	bool tcp_only;			/* RECV_ZC takes TCP sockets only */
	bool kernel_keeps;		/* registration lives until ring exit */
	/* mode's own limits on the config, before the common checks */
	int (*check)(const struct zc_rx *rx, const struct zc_rx_config *cfg);
	/* register with the kernel; on failure leave nothing registered */
	int (*setup)(struct zc_ring *r, struct zc_rx *rx,
		     const struct zc_rx_config *cfg);
	void (*free)(struct zc_ring *r, struct zc_rx *rx);
	/* the multishot SQE for one arming (req->rx_budget already set) */
	void (*prep)(struct zc_rx *rx, struct zc_req *req,
		     struct io_uring_sqe *sqe);
	/* a chunk's CQE (res > 0): its offset and slot, -EIO if none */
	int (*chunk)(struct zc_rx *rx, const struct io_uring_cqe *cqe,
		     uint64_t *off, uint32_t *slot);
	/* end of a multishot: the kernel refused its byte limit? */
	bool (*limit_refused)(struct zc_rx *rx, const struct zc_req *req,
			      int32_t res);
	/* hand one chunk back (off < area_len), i-th of this batch */
	int (*release)(struct zc_rx *rx, uint64_t off, uint32_t i);
	/* after a batch of releases, done of them good */
	void (*publish)(struct zc_rx *rx, uint32_t done);
	/* could a re-armed receive get a buffer now? */
	bool (*buffers_back)(struct zc_rx *rx);
	/* make the kernel take the released chunks now (zc_rx_flush) */
	int (*flush)(struct zc_rx *rx);
};

struct zc_rx {
	struct zc_ring *r;
	struct zc_rx *next;
	const struct rx_ops *ops;
	uint32_t mode;
	uint32_t buf_size;		/* slot size: chunks never cross slots */
	uint32_t buf_shift;
	uint32_t nbufs;
	uint32_t entries;		/* buffer ring / refill ring entries */
	uint8_t *area;
	size_t area_len;
	uint16_t *held;			/* chunks of each slot the caller holds */
	struct zc_req **owner;		/* the receive each held slot came to */
	uint32_t held_total;
	uint32_t quota;			/* zc_rx_config.recv_quota (0: fair share) */
	bool no_mshot_lim;		/* kernel without a multishot byte limit */
	uint32_t active;		/* receive requests using the area */
	uint32_t kfree;			/* bufring: buffers in the ring */
	bool retired;			/* zc_rx_destroy()ed, kernel side lives on */
	struct zc_req *parked;		/* receives waiting for buffers */
	int32_t zcrx_errno;

	/* bufring */
	struct io_uring_buf_ring *br;
	int bgid;

	/* zcrx */
	uint32_t zcrx_id;
	void *rq_mem;
	size_t rq_len;
	uint32_t *khead, *ktail;
	struct io_uring_zcrx_rqe *rqes;
	uint32_t rq_tail;
	uint64_t token;
	uint32_t unflushed;		/* rqes written since the last flush */

	uint64_t bytes, chunks, rearms, flushes, pauses;
};

struct zc_recv_state {
	struct zc_rx *areas;
	uint8_t bgid_used[8192];	/* bitmap of buffer group ids */
};

static size_t page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

static bool pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static uint32_t ilog2_32(uint32_t v)
{
	uint32_t s = 0;

	while ((1u << (s + 1)) <= v && s < 31)
		s++;
	return s;
}

static uint32_t roundup_pow2(uint32_t v)
{
	uint32_t p = 1;

	while (p < v && p < (1u << 31))
		p <<= 1;
	return p;
}

static struct zc_recv_state *state(struct zc_ring *r)
{
	if (!r->recv)
		r->recv = calloc(1, sizeof(struct zc_recv_state));
	return r->recv;
}

static int bgid_alloc(struct zc_recv_state *st)
{
	int i;

	for (i = 0; i < 65536; i++) {
		if (!(st->bgid_used[i >> 3] & (1u << (i & 7)))) {
			st->bgid_used[i >> 3] |= 1u << (i & 7);
			return i;
		}
	}
	return -ENOSPC;
}

static void bgid_free(struct zc_recv_state *st, int id)
{
	st->bgid_used[id >> 3] &= ~(1u << (id & 7));
}

static bool ring_has(struct zc_ring *r, uint32_t flags)
{
	return (r->cfg.flags & flags) == flags;
}

/* The caller gives one chunk of slot back: -EINVAL if it holds none. */
static inline int unhold(struct zc_rx *rx, uint32_t slot)
{
	if (slot >= rx->nbufs || !rx->held[slot])
		return -EINVAL;
	rx->held[slot]--;
	rx->held_total--;
	if (rx->owner[slot]) {
		rx->owner[slot]->rx_held--;
		if (!rx->held[slot])
			rx->owner[slot] = NULL;
	}
	return 0;
}

/* ------------------------------------------------- bufring backend */

static int bufring_check(const struct zc_rx *rx,
			 const struct zc_rx_config *cfg)
{
	uint64_t nbufs = rx->area_len / rx->buf_size;

	if (rx->buf_size > (1u << 30) || nbufs > RX_MAX_ENTRIES ||
	    (cfg->ring_entries && cfg->ring_entries < nbufs))
		return -EINVAL;
	return 0;
}

static int bufring_setup(struct zc_ring *r, struct zc_rx *rx,
			 const struct zc_rx_config *cfg)
{
	struct zc_recv_state *st = r->recv;
	uint32_t i;
	int ret;

	(void)cfg;
	rx->entries = roundup_pow2(rx->nbufs);
	if (rx->entries > RX_MAX_ENTRIES)
		return -EINVAL;
	ret = bgid_alloc(st);
	if (ret < 0)
		return ret;
	rx->bgid = ret;
	rx->br = io_uring_setup_buf_ring(&r->ring, rx->entries, rx->bgid, 0,
					 &ret);
	if (!rx->br) {
		bgid_free(st, rx->bgid);
		rx->bgid = -1;
		return ret ? ret : -ENOMEM;
	}
	for (i = 0; i < rx->nbufs; i++)
		io_uring_buf_ring_add(rx->br, rx->area + (size_t)i * rx->buf_size,
				      rx->buf_size, (uint16_t)i,
				      io_uring_buf_ring_mask(rx->entries), i);
	io_uring_buf_ring_advance(rx->br, rx->nbufs);
	rx->kfree = rx->nbufs;
	return 0;
}

static void bufring_free(struct zc_ring *r, struct zc_rx *rx)
{
	if (rx->br) {
		io_uring_free_buf_ring(&r->ring, rx->br, rx->entries, rx->bgid);
		bgid_free(r->recv, rx->bgid);
	}
}

static void bufring_prep(struct zc_rx *rx, struct zc_req *req,
			 struct io_uring_sqe *sqe)
{
	io_uring_prep_recv_multishot(sqe, req->fd, NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = (uint16_t)rx->bgid;
	if (rx->no_mshot_lim)
		req->rx_budget = 0;
	else
		sqe->optlen = req->rx_budget;
}

static int bufring_chunk(struct zc_rx *rx, const struct io_uring_cqe *cqe,
			 uint64_t *off, uint32_t *slot)
{
	if (!(cqe->flags & IORING_CQE_F_BUFFER))
		return -EIO;	/* cannot happen */
	*slot = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
	*off = (uint64_t)*slot * rx->buf_size;
	rx->kfree--;
	return 0;
}

/* A kernel without the multishot byte limit ends the first arming with
 * -EINVAL before any data: arm without the limit from then on. */
static bool bufring_limit_refused(struct zc_rx *rx, const struct zc_req *req,
				  int32_t res)
{
	if (res != -EINVAL || !req->rx_budget || req->rx_got ||
	    rx->no_mshot_lim)
		return false;
	rx->no_mshot_lim = true;
	return true;
}

static int bufring_release(struct zc_rx *rx, uint64_t off, uint32_t i)
{
	uint32_t slot = (uint32_t)(off >> rx->buf_shift);

	/* a whole buffer, by its start: the ring takes buffers, not chunks */
	if (rx->buf_size & (rx->buf_size - 1))
		slot = (uint32_t)(off / rx->buf_size);
	if (off != (uint64_t)slot * rx->buf_size || unhold(rx, slot))
		return -EINVAL;
	io_uring_buf_ring_add(rx->br, rx->area + off, rx->buf_size,
			      (uint16_t)slot,
			      io_uring_buf_ring_mask(rx->entries), i);
	return 0;
}

static void bufring_publish(struct zc_rx *rx, uint32_t done)
{
	if (!done)
		return;
	io_uring_buf_ring_advance(rx->br, done);
	rx->kfree += done;
}

static bool bufring_buffers_back(struct zc_rx *rx)
{
	return rx->kfree > 0;
}

static int bufring_flush(struct zc_rx *rx)
{
	(void)rx;
	return 0;	/* the ring's tail is the kernel's to read */
}

static const struct rx_ops rx_bufring = {
	.default_buf	= RX_DEFAULT_BUF,
	.check		= bufring_check,
	.setup		= bufring_setup,
	.free		= bufring_free,
	.prep		= bufring_prep,
	.chunk		= bufring_chunk,
	.limit_refused	= bufring_limit_refused,
	.release	= bufring_release,
	.publish	= bufring_publish,
	.buffers_back	= bufring_buffers_back,
	.flush		= bufring_flush,
};

/* ---------------------------------------------------- zcrx backend */

static int zcrx_check(const struct zc_rx *rx, const struct zc_rx_config *cfg)
{
	(void)cfg;
	return pow2(rx->buf_size) ? 0 : -EINVAL;
}

static int nodev_check(const struct zc_rx *rx, const struct zc_rx_config *cfg)
{
	/* as the kernel: NODEV takes page-sized buffers only */
	if (rx->buf_size != page_size())
		return -EOPNOTSUPP;
	return zcrx_check(rx, cfg);
}

/*
 * Register a zcrx instance on ring: area_len bytes at area as its receive
 * area, rq_len bytes at rq (user memory) as the region of its refill queue
 * of `entries` entries.  reg comes in with the interface (if_idx and if_rxq,
 * or ZCRX_REG_NODEV) and rx_buf_len, and holds the kernel's answer after
 * (zcrx_id, rq_entries, the queue's offsets); *token is the area's refill
 * token.  The one registration setup_zcrx() and probe_nodev() share.
 */
static int zcrx_register(struct io_uring *ring,
			 struct io_uring_zcrx_ifq_reg *reg, void *area,
			 size_t area_len, void *rq, size_t rq_len,
			 uint32_t entries, uint64_t *token)
{
	struct io_uring_zcrx_area_reg ar = { 0 };
	struct io_uring_region_desc rd = { 0 };
	int ret;

	ar.addr = (uint64_t)(uintptr_t)area;
	ar.len = area_len;
	rd.user_addr = (uint64_t)(uintptr_t)rq;
	rd.size = rq_len;
	rd.flags = IORING_MEM_REGION_TYPE_USER;
	reg->rq_entries = entries;
	reg->area_ptr = (uint64_t)(uintptr_t)&ar;
	reg->region_ptr = (uint64_t)(uintptr_t)&rd;
	ret = io_uring_register_ifq(ring, reg);
	if (ret == 0)
		*token = ar.rq_area_token;
	return ret;
}

static int setup_zcrx(struct zc_ring *r, struct zc_rx *rx,
		      const struct zc_rx_config *cfg, bool nodev)
{
	struct io_uring_zcrx_ifq_reg reg = { 0 };
	size_t ps = page_size();
	int ret;

	/* zcrx needs these ring flags; say so rather than let the kernel
	 * answer a bare -EINVAL. */
	if (!ring_has(r, ZC_RING_DEFER_TASKRUN | ZC_RING_CQE32))
		return -EINVAL;
	if (!r->has_recv_zc)
		return -EOPNOTSUPP;	/* kernel < 6.15 */
	if (!nodev) {
		if (!cfg->ifname[0])
			return -ENODEV;
		reg.if_idx = if_nametoindex(cfg->ifname);
		if (!reg.if_idx)
			return -ENODEV;
		reg.if_rxq = cfg->rxq;
	} else {
		reg.flags = ZCRX_REG_NODEV;
	}

	rx->entries = cfg->ring_entries ? cfg->ring_entries :
		      roundup_pow2(rx->nbufs);
	if (rx->entries > RX_MAX_ENTRIES)
		rx->entries = RX_MAX_ENTRIES;
	/* header, then the rqes; the kernel tells us the exact offsets */
	rx->rq_len = (ps + (size_t)rx->entries *
		      sizeof(struct io_uring_zcrx_rqe) + ps - 1) & ~(ps - 1);
	rx->rq_mem = mmap(NULL, rx->rq_len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	if (rx->rq_mem == MAP_FAILED) {
		rx->rq_mem = NULL;
		return -errno;
	}

	/* NODEV only takes page-sized buffers */
	reg.rx_buf_len = nodev ? 0 : (rx->buf_size == ps ? 0 : rx->buf_size);
	ret = zcrx_register(&r->ring, &reg, rx->area, rx->area_len,
			    rx->rq_mem, rx->rq_len, rx->entries, &rx->token);
	if (ret < 0) {
		munmap(rx->rq_mem, rx->rq_len);
		rx->rq_mem = NULL;
		/* Our own checks ruled the other EINVAL causes out: the
		 * kernel does not know ZCRX_REG_NODEV (needs >= 7.1). */
		if (nodev && ret == -EINVAL)
			ret = -EOPNOTSUPP;
		return ret;
	}
	rx->zcrx_id = reg.zcrx_id;
	rx->entries = reg.rq_entries;
	rx->khead = (uint32_t *)((char *)rx->rq_mem + reg.offsets.head);
	rx->ktail = (uint32_t *)((char *)rx->rq_mem + reg.offsets.tail);
	rx->rqes = (struct io_uring_zcrx_rqe *)((char *)rx->rq_mem +
						 reg.offsets.rqes);
	rx->rq_tail = 0;
	if (reg.rx_buf_len && reg.rx_buf_len != rx->buf_size) {
		rx->buf_size = reg.rx_buf_len;
		rx->nbufs = (uint32_t)(rx->area_len / rx->buf_size);
	}
	rx->buf_shift = ilog2_32(rx->buf_size);
	return 0;
}

static int zcrx_setup(struct zc_ring *r, struct zc_rx *rx,
		      const struct zc_rx_config *cfg)
{
	return setup_zcrx(r, rx, cfg, false);
}

static int nodev_setup(struct zc_ring *r, struct zc_rx *rx,
		       const struct zc_rx_config *cfg)
{
	return setup_zcrx(r, rx, cfg, true);
}

static void zcrx_free(struct zc_ring *r, struct zc_rx *rx)
{
	(void)r;
	if (rx->rq_mem)
		munmap(rx->rq_mem, rx->rq_len);
}

static void zcrx_prep(struct zc_rx *rx, struct zc_req *req,
		      struct io_uring_sqe *sqe)
{
	io_uring_prep_rw(IORING_OP_RECV_ZC, sqe, req->fd, NULL,
			 req->rx_budget, 0);
	sqe->ioprio |= IORING_RECV_MULTISHOT;
	sqe->zcrx_ifq_idx = rx->zcrx_id;
}

static int zcrx_chunk(struct zc_rx *rx, const struct io_uring_cqe *cqe,
		      uint64_t *off, uint32_t *slot)
{
	const struct io_uring_zcrx_cqe *z = (const void *)(cqe + 1);

	*off = z->off & ~IORING_ZCRX_AREA_MASK;
	*slot = (uint32_t)(*off >> rx->buf_shift);
	return 0;
}

static bool zcrx_limit_refused(struct zc_rx *rx, const struct zc_req *req,
			       int32_t res)
{
	(void)rx;
	(void)req;
	(void)res;
	return false;	/* the fallback is multishot recv's (sqe->optlen) */
}

static int zcrx_flush(struct zc_rx *rx)
{
	struct zcrx_ctrl ctrl;
	int ret;

	if (!rx->unflushed)
		return 0;
	memset(&ctrl, 0, sizeof(ctrl));
	ctrl.zcrx_id = rx->zcrx_id;
	ctrl.op = ZCRX_CTRL_FLUSH_RQ;
	ret = io_uring_register_zcrx_ctrl(&rx->r->ring, &ctrl);
	if (ret < 0)
		return ret;
	rx->unflushed = 0;
	rx->flushes++;
	return 0;
}

static int zcrx_release(struct zc_rx *rx, uint64_t off, uint32_t i)
{
	uint32_t mask = rx->entries - 1;
	struct io_uring_zcrx_rqe *rqe;

	(void)i;
	if (unhold(rx, (uint32_t)(off >> rx->buf_shift)))
		return -EINVAL;
	/* Refill ring full: make the kernel consume it. */
	if (rx->rq_tail - __atomic_load_n(rx->khead, __ATOMIC_ACQUIRE) >=
	    rx->entries) {
		rx->unflushed = 1;
		zcrx_flush(rx);
	}
	rqe = &rx->rqes[rx->rq_tail & mask];
	rqe->off = off | rx->token;
	rqe->len = rx->buf_size;
	rqe->__pad = 0;
	rx->rq_tail++;
	__atomic_store_n(rx->ktail, rx->rq_tail, __ATOMIC_RELEASE);
	rx->unflushed++;
	return 0;
}

static void zcrx_publish(struct zc_rx *rx, uint32_t done)
{
	(void)rx;
	(void)done;	/* the NIC's page pool reads the refill ring itself */
}

/* NODEV reads the refill ring only when told: tell it every quarter. */
static void nodev_publish(struct zc_rx *rx, uint32_t done)
{
	(void)done;
	if (rx->unflushed >= rx->entries / 4)
		zcrx_flush(rx);
}

static bool zcrx_buffers_back(struct zc_rx *rx)
{
	(void)rx;
	return true;	/* the NIC's page pool refills on its own */
}

static bool nodev_buffers_back(struct zc_rx *rx)
{
	if (rx->unflushed && zcrx_flush(rx) < 0)
		return false;
	return rx->held_total < rx->nbufs;
}

static const struct rx_ops rx_zcrx = {
	.tcp_only	= true,
	.kernel_keeps	= true,
	.check		= zcrx_check,
	.setup		= zcrx_setup,
	.free		= zcrx_free,
	.prep		= zcrx_prep,
	.chunk		= zcrx_chunk,
	.limit_refused	= zcrx_limit_refused,
	.release	= zcrx_release,
	.publish	= zcrx_publish,
	.buffers_back	= zcrx_buffers_back,
	.flush		= zcrx_flush,
};

/* zcrx without a device: registered with ZCRX_REG_NODEV, the kernel
 * copies into the area and consumes the refill ring on ZCRX_CTRL_FLUSH_RQ */
static const struct rx_ops rx_zcrx_nodev = {
	.tcp_only	= true,
	.kernel_keeps	= true,
	.check		= nodev_check,
	.setup		= nodev_setup,
	.free		= zcrx_free,
	.prep		= zcrx_prep,
	.chunk		= zcrx_chunk,
	.limit_refused	= zcrx_limit_refused,
	.release	= zcrx_release,
	.publish	= nodev_publish,
	.buffers_back	= nodev_buffers_back,
	.flush		= zcrx_flush,
};

static const struct rx_ops *const rx_backends[] = {
	[ZC_RX_BUFRING]		= &rx_bufring,
	[ZC_RX_ZCRX_NODEV]	= &rx_zcrx_nodev,
	[ZC_RX_ZCRX]		= &rx_zcrx,
};

/* ---------------------------------------------------------- creation */

static int map_area(struct zc_rx *rx)
{
	void *p = mmap(NULL, rx->area_len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return -errno;
	rx->area = p;
	return 0;
}

static void rx_free(struct zc_ring *r, struct zc_rx *rx)
{
	rx->ops->free(r, rx);
	if (rx->area)
		munmap(rx->area, rx->area_len);
	free(rx->held);
	free(rx->owner);
	free(rx);
}

static int rx_create_mode(struct zc_ring *r, const struct zc_rx_config *cfg,
			  uint32_t mode, struct zc_rx **out)
{
	const struct rx_ops *ops = rx_backends[mode];
	size_t ps = page_size();
	struct zc_rx *rx;
	int ret;

	rx = calloc(1, sizeof(*rx));
	if (!rx)
		return -ENOMEM;
	rx->r = r;
	rx->ops = ops;
	rx->mode = mode;
	rx->bgid = -1;
	rx->area_len = cfg->area_size ? cfg->area_size : RX_DEFAULT_AREA;
	rx->buf_size = cfg->buf_size ? cfg->buf_size :
		       ops->default_buf ? ops->default_buf : (uint32_t)ps;
	ret = ops->check(rx, cfg);
	if (ret)
		goto fail;
	ret = -EINVAL;
	if (rx->buf_size % ps || rx->area_len % ps ||
	    rx->area_len % rx->buf_size || rx->area_len < rx->buf_size ||
	    rx->area_len > RX_MAX_AREA)
		goto fail;
	rx->nbufs = (uint32_t)(rx->area_len / rx->buf_size);
	rx->buf_shift = ilog2_32(rx->buf_size);
	ret = map_area(rx);
	if (ret)
		goto fail;
	ret = ops->setup(r, rx, cfg);
	if (ret)
		goto fail;
	rx->held = calloc(rx->nbufs, sizeof(*rx->held));
	rx->owner = calloc(rx->nbufs, sizeof(*rx->owner));
	rx->quota = cfg->recv_quota;
	if (!rx->held || !rx->owner) {
		ret = -ENOMEM;
		goto fail_registered;
	}
	*out = rx;
	return 0;
fail_registered:
	if (ops->kernel_keeps) {
		/* The kernel keeps an ifq until the ring goes: keep the
		 * memory with it and free both at ring teardown. */
		rx->retired = true;
		rx->next = ((struct zc_recv_state *)r->recv)->areas;
		((struct zc_recv_state *)r->recv)->areas = rx;
		return ret;
	}
fail:
	rx_free(r, rx);
	return ret;
}

int zc_rx_create(struct zc_ring *r, const struct zc_rx_config *cfg,
		 struct zc_rx **out)
{
	struct zc_recv_state *st;
	struct zc_rx *rx = NULL;
	int32_t zcrx_err = 0;
	int ret;

	*out = NULL;
	if (!r || !cfg)
		return -EINVAL;
	if (cfg->mode > ZC_RX_ZCRX || cfg->reserved[0] || cfg->reserved[1] ||
	    cfg->reserved[2])
		return -EINVAL;
	if (cfg->ring_entries && (!pow2(cfg->ring_entries) ||
				  cfg->ring_entries > RX_MAX_ENTRIES))
		return -EINVAL;
	if (memchr(cfg->ifname, 0, sizeof(cfg->ifname)) == NULL)
		return -EINVAL;
	st = state(r);
	if (!st)
		return -ENOMEM;

	switch (cfg->mode) {
	case ZC_RX_AUTO:
		/* zcrx when the caller named a queue and it works; NODEV is
		 * never picked by itself: it copies like bufring, in
		 * page-sized chunks, and is there for testing. */
		if (cfg->ifname[0]) {
			ret = rx_create_mode(r, cfg, ZC_RX_ZCRX, &rx);
			if (!ret)
				break;
			zcrx_err = -ret;
		}
		ret = rx_create_mode(r, cfg, ZC_RX_BUFRING, &rx);
		break;
	default:
		ret = rx_create_mode(r, cfg, cfg->mode, &rx);
		break;
	}
	if (ret)
		return ret;
	rx->zcrx_errno = zcrx_err;
	rx->next = st->areas;
	st->areas = rx;
	*out = rx;
	return 0;
}

static void rx_unlink(struct zc_ring *r, struct zc_rx *rx)
{
	struct zc_recv_state *st = r->recv;
	struct zc_rx **p;

	for (p = &st->areas; *p; p = &(*p)->next) {
		if (*p == rx) {
			*p = rx->next;
			return;
		}
	}
}

/*
 * Views of chunks still held may outlive the area in the caller's hands
 * (a JavaScript Uint8Array cannot be revoked): put zero pages in place of
 * the area instead of leaving a hole that would crash them (writable: a
 * write through a stale view lands in a private page).  The pinned pages
 * are released all the same.
 */
static void area_retire(struct zc_rx *rx)
{
	void *p;

	if (!rx->held_total || !rx->area)
		return;
	p = mmap(rx->area, rx->area_len, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
	if (p != MAP_FAILED)
		rx->area = NULL;	/* left in place on purpose */
}

int zc_rx_destroy(struct zc_rx *rx)
{
	struct zc_ring *r;

	if (!rx)
		return 0;
	if (rx->retired)
		return -EINVAL;
	if (rx->active)
		return -EBUSY;
	r = rx->r;
	area_retire(rx);
	if (!rx->ops->kernel_keeps) {
		rx_unlink(r, rx);
		rx_free(r, rx);
		return 0;
	}
	/* No way to unregister one ifq: the kernel frees it, and unpins the
	 * area, when the ring is closed; zc_recv_destroy() unmaps then. */
	rx->retired = true;
	return 0;
}

void *zc_rx_base(const struct zc_rx *rx)
{
	return rx->area;
}

/*
 * Chunks one receive of the area may hold before it is paused: the
 * configured quota, else a fair share that keeps one share free for a
 * receive yet to come (buffers / (receives + 1), at least 2), so a
 * newcomer finds buffers even when every other reader sits on its share.
 */
static uint32_t quota_of(const struct zc_rx *rx)
{
	uint32_t share;

	if (rx->quota)
		return rx->quota;
	share = rx->nbufs / (rx->active + 1);
	return share < 2 ? 2 : share;
}

int zc_rx_info(const struct zc_rx *rx, struct zc_rx_info *out)
{
	const struct zc_req *q;

	memset(out, 0, sizeof(*out));
	out->mode = rx->mode;
	out->buf_size = rx->buf_size;
	out->buf_count = rx->nbufs;
	out->ring_entries = rx->entries;
	out->area_size = rx->area_len;
	out->zcrx_errno = rx->zcrx_errno;
	out->zcrx_id = rx->zcrx_id;	/* 0 but for zcrx */
	out->bgid = rx->bgid;
	out->held = rx->held_total;
	out->active = rx->active;
	out->bytes = rx->bytes;
	out->chunks = rx->chunks;
	out->rearms = rx->rearms;
	out->flushes = rx->flushes;
	out->quota = quota_of(rx);
	out->pauses = rx->pauses;
	for (q = rx->parked; q; q = q->next)
		out->paused += q->rx_held >= out->quota;
	return 0;
}

/* ---------------------------------------------------------- receiving */

static int arm(struct zc_ring *r, struct zc_req *req)
{
	struct zc_rx *rx = req->priv;
	struct io_uring_sqe *sqe = zc_sqe(r);

	uint32_t quota = quota_of(rx);
	uint64_t room;

	if (!sqe)
		return -EBUSY;
	/* bytes of the chunks it may still take (one at least) */
	room = (uint64_t)(req->rx_held < quota ? quota - req->rx_held : 1) *
	       rx->buf_size;
	req->rx_budget = room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
	req->rx_got = 0;
	rx->ops->prep(rx, req, sqe);
	io_uring_sqe_set_data(sqe, req);
	req->state = ZC_REQ_INFLIGHT;
	return 0;
}

int zc_recv(struct zc_ring *r, struct zc_rx *rx, int fd, uint64_t user_data)
{
	struct zc_req *req;
	socklen_t len;
	int v, ret;

	if (!r || !rx || rx->r != r || rx->retired)
		return -EINVAL;
	if (fd < 0)
		return -EBADF;
	len = sizeof(v);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &len) < 0)
		return -errno;
	if (rx->ops->tcp_only) {
		len = sizeof(v);
		if (v != SOCK_STREAM ||
		    getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) < 0 ||
		    v != IPPROTO_TCP)
			return -EPROTONOSUPPORT;
	}
	/* Two receives on one stream would split it between them. */
	for (uint32_t i = 0; i < r->cfg.max_requests; i++) {
		const struct zc_req *q = &r->reqs[i];

		if (q->state != ZC_REQ_FREE && q->op == ZC_OP_RECV &&
		    q->fd == fd && !(q->arg & RECV_STOPPING))
			return -EBUSY;
	}
	req = zc_req_get(r, ZC_OP_RECV, user_data);
	if (!req)
		return -EAGAIN;
	req->fd = fd;
	req->priv = rx;
	rx->active++;		/* its own share counts from its first arming */
	ret = arm(r, req);
	if (ret) {
		rx->active--;
		zc_req_put(r, req);
		return ret;
	}
	return 0;
}

static void finish(struct zc_ring *r, struct zc_req *req, int32_t res)
{
	struct zc_rx *rx = req->priv;
	uint32_t i;

	/* Chunks still held outlive the request: released later, they no
	 * longer count for it (the slot of the request may be reused). */
	if (req->rx_held)
		for (i = 0; i < rx->nbufs; i++)
			if (rx->owner[i] == req)
				rx->owner[i] = NULL;
	rx->active--;
	req->comp_flags = 0;
	zc_req_finish(r, req, res);
}

static void park(struct zc_rx *rx, struct zc_req *req)
{
	req->state = ZC_REQ_QUEUED;
	req->next = rx->parked;
	rx->parked = req;
}

/* Re-arm parked receives (or end them if they were stopped meanwhile). */
static int rearm_parked(struct zc_rx *rx)
{
	struct zc_ring *r = rx->r;
	struct zc_req *req, *next;
	int n = 0;

	if (!rx->parked || !rx->ops->buffers_back(rx))
		return 0;
	req = rx->parked;
	rx->parked = NULL;
	for (; req; req = next) {
		next = req->next;
		req->next = NULL;
		if (req->canceled || (req->arg & RECV_STOPPING)) {
			finish(r, req, -ECANCELED);
			continue;
		}
		/* still holding its quota: stays paused */
		if (req->rx_held >= quota_of(rx) || arm(r, req)) {
			park(rx, req);
			continue;
		}
		req->arg &= ~RECV_PAUSING;
		rx->rearms++;
		n++;
	}
	return n;
}

/* The caller holds req's quota of chunks: end its multishot receive (the
 * -ECANCELED that follows parks it, see zc_recv_cqe). */
static void pause_recv(struct zc_ring *r, struct zc_req *req)
{
	struct io_uring_sqe *sqe = zc_sqe(r);

	if (!sqe)
		return;		/* tried again at the next chunk */
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)req, 0);
	sqe->user_data = 0;
	req->arg |= RECV_PAUSING;
}

/*
 * A chunk's CQE (res > 0): take its buffer and emit its record (cqes 1).
 * -EIO for a chunk that cannot be (no buffer, outside the area): no record.
 */
static int recv_chunk(struct zc_ring *r, struct zc_req *req, struct zc_rx *rx,
		      const struct io_uring_cqe *cqe)
{
	struct zc_completion c = {
		.user_data = req->user_data,
		.res = cqe->res,
		.flags = ZC_COMP_MORE,
		.op = ZC_OP_RECV,
		.cqes = 1,
	};
	uint32_t len = (uint32_t)cqe->res;
	uint64_t off;
	uint32_t slot;

	if (rx->ops->chunk(rx, cqe, &off, &slot))
		return -EIO;
	if (slot >= rx->nbufs || off + len > rx->area_len)
		return -EIO;
	rx->held[slot]++;
	rx->held_total++;
	rx->owner[slot] = req;
	req->rx_held++;
	req->rx_got += len;
	rx->bytes += len;
	rx->chunks++;
	c.aux = off;
	c.aux2 = slot;
	zc_emit(r, &c);
	return 0;
}

/*
 * One CQE of a multishot receive.  A chunk's CQE is reported by the
 * chunk's own record; the request's final record counts every other CQE
 * (the end, those that ended a multishot before a re-arm): the records of
 * a stream add up to the kernel's CQEs.
 */
void zc_recv_cqe(struct zc_ring *r, struct zc_req *req,
		 const struct io_uring_cqe *cqe)
{
	struct zc_rx *rx = req->priv;
	bool more = cqe->flags & IORING_CQE_F_MORE;
	int32_t res = cqe->res;

	if (res > 0) {
		res = recv_chunk(r, req, rx, cqe);
		if (res == 0 && more) {
			if (req->rx_held >= quota_of(rx) &&
			    !(req->arg & (RECV_PAUSING | RECV_STOPPING)) &&
			    !req->canceled)
				pause_recv(r, req);
			return;
		}
		if (res == 0) {
			/* Multishot ended after a last chunk (e.g. CQ
			 * overflow): the stream goes on. */
			res = -ENOSPC;
		} else {
			req->cqes++;	/* no record of its own */
		}
	} else {
		req->cqes++;	/* no record of its own */
		if (more)
			return;		/* nothing to report */
	}
	if (rx->ops->limit_refused(rx, req, res)) {
		res = -ENOSPC;	/* re-armed without the limit */
	} else if (res == 0 && req->rx_budget && req->rx_got >= req->rx_budget) {
		/* RECV_ZC reached its byte limit (EOF would come again) */
		res = -ENOSPC;
	}
	if (req->canceled || (req->arg & RECV_STOPPING)) {
		finish(r, req, res == 0 ? 0 : -ECANCELED);
		return;
	}
	if (res == -ENOBUFS || res == -ENOMEM || res == -ENOSPC ||
	    (res == -ECANCELED && (req->arg & RECV_PAUSING))) {
		if (req->rx_held >= quota_of(rx))
			rx->pauses++;	/* it holds its quota: paused */
		park(rx, req);
		rearm_parked(rx);
		return;
	}
	finish(r, req, res);
}

static int recv_cancel(struct zc_ring *r, int fd, bool submit)
{
	struct zc_recv_state *st = r->recv;
	struct io_uring_sqe *sqe;
	struct zc_req *req = NULL;
	struct zc_rx *rx;
	uint32_t i;

	if (!st)
		return -ENOENT;
	for (i = 0; i < r->cfg.max_requests; i++) {
		struct zc_req *q = &r->reqs[i];

		if (q->state != ZC_REQ_FREE && q->op == ZC_OP_RECV &&
		    q->fd == fd && !(q->arg & RECV_STOPPING)) {
			req = q;
			break;
		}
	}
	if (!req)
		return -ENOENT;
	req->arg |= RECV_STOPPING;
	rx = req->priv;
	if (req->state == ZC_REQ_QUEUED) {
		struct zc_req **p;

		for (p = &rx->parked; *p; p = &(*p)->next) {
			if (*p == req) {
				*p = req->next;
				break;
			}
		}
		finish(r, req, -ECANCELED);
		return 0;
	}
	sqe = zc_sqe(r);
	if (!sqe)
		return -EBUSY;
	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)req, 0);
	sqe->user_data = 0;
	if (submit)
		zc_submit(r);
	return 0;
}

int zc_recv_cancel(struct zc_ring *r, int fd)
{
	return recv_cancel(r, fd, true);
}

/* zc_close(): a multishot receive holds a reference to the file, so the
 * socket would stay open under it: end it first (its SQE goes before the
 * close's). */
void zc_recv_cancel_fd(struct zc_ring *r, int fd)
{
	recv_cancel(r, fd, false);
}

void zc_recv_cancel_parked(struct zc_ring *r)
{
	struct zc_recv_state *st = r->recv;
	struct zc_rx *rx;

	if (!st)
		return;
	for (rx = st->areas; rx; rx = rx->next) {
		struct zc_req *req = rx->parked, *next;

		rx->parked = NULL;
		for (; req; req = next) {
			next = req->next;
			finish(r, req, -ECANCELED);
		}
	}
}

/* ----------------------------------------------------------- release */

int zc_rx_release_many(struct zc_rx *rx, const uint64_t *offs, uint32_t n)
{
	const struct rx_ops *ops;
	uint32_t i, done = 0;
	int bad = 0;

	if (!rx || rx->retired)
		return -EINVAL;
	ops = rx->ops;
	for (i = 0; i < n; i++) {
		if (offs[i] >= rx->area_len || ops->release(rx, offs[i], done))
			bad = -EINVAL;
		else
			done++;
	}
	ops->publish(rx, done);
	if (done && rearm_parked(rx))
		zc_submit(rx->r);
	return bad ? bad : (int)done;
}

/* zc_flush_batch(): releases for an area of ring r only */
int zc_rx_release_batch(struct zc_ring *r, struct zc_rx *rx,
			const uint64_t *offs, uint32_t n)
{
	if (!rx || rx->r != r)
		return -EXDEV;
	return zc_rx_release_many(rx, offs, n);
}

int zc_rx_release(struct zc_rx *rx, uint64_t off)
{
	int ret = zc_rx_release_many(rx, &off, 1);

	return ret < 0 ? ret : 0;
}

int zc_rx_flush(struct zc_rx *rx)
{
	if (!rx || rx->retired)
		return -EINVAL;
	return rx->ops->flush(rx);
}

/* ---------------------------------------------------- teardown, probe */

void zc_recv_destroy(struct zc_ring *r)
{
	struct zc_recv_state *st = r->recv;
	struct zc_rx *rx, *next;

	if (!st)
		return;
	for (rx = st->areas; rx; rx = next) {
		next = rx->next;
		area_retire(rx);
		rx_free(r, rx);
	}
	free(st);
	r->recv = NULL;
}

/* Can this kernel register a zcrx instance without a device? */
static bool probe_nodev(void)
{
	struct io_uring_params p = { 0 };
	struct io_uring_zcrx_ifq_reg reg = { 0 };
	struct io_uring ring;
	size_t ps = page_size();
	uint64_t token;
	void *mem;
	int ret;

	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
		  IORING_SETUP_CQE32;
	if (io_uring_queue_init_params(4, &ring, &p) < 0)
		return false;
	mem = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		io_uring_queue_exit(&ring);
		return false;
	}
	/* one page of area, one page of refill queue */
	reg.flags = ZCRX_REG_NODEV;
	ret = zcrx_register(&ring, &reg, mem, ps, (char *)mem + ps, ps, 4,
			    &token);
	io_uring_queue_exit(&ring);
	munmap(mem, 2 * ps);
	return ret == 0;
}

void zc_recv_probe(struct zc_probe *p)
{
	if ((p->caps & ZC_CAP_RECV_ZC) && probe_nodev())
		p->caps |= ZC_CAP_ZCRX_NODEV;
}
