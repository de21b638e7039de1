/* SPDX-License-Identifier: MIT */
/* Shared by the recv_*.c tests: a pattern sender thread and a receive loop
 * that checks every chunk byte for byte and releases it. */
#ifndef ZC_RECV_COMMON_H
#define ZC_RECV_COMMON_H

#include <pthread.h>
#include <sys/mman.h>

#include "helpers.h"

/* Writes total bytes of the stream pattern in pieces of wsize with plain
 * write(), then shuts the socket down for writing (or resets it). */
struct sender {
	int fd;
	uint64_t total;
	uint32_t wsize;
	int reset_at_end;	/* SO_LINGER 0 + close: RST instead of FIN */
	int close_fd;
	pthread_t thread;
	uint64_t sent;
};

static inline void *sender_main(void *arg)
{
	struct sender *s = arg;
	uint8_t *buf = malloc(s->wsize);

	CHECK(buf);
	while (s->sent < s->total) {
		uint32_t n = s->wsize;
		ssize_t w;

		if (s->total - s->sent < n)
			n = (uint32_t)(s->total - s->sent);
		fill_pattern(buf, s->sent, n);
		w = write(s->fd, buf, n);
		if (w < 0)
			break;
		s->sent += (uint64_t)w;
	}
	free(buf);
	if (s->reset_at_end) {
		struct linger l = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
		close(s->fd);
	} else if (s->close_fd) {
		close(s->fd);
	} else {
		shutdown(s->fd, SHUT_WR);
	}
	return NULL;
}

static inline void sender_start(struct sender *s, int fd, uint64_t total,
				uint32_t wsize)
{
	memset(s, 0, sizeof(*s));
	s->fd = fd;
	s->total = total;
	s->wsize = wsize;
	s->close_fd = 1;
	CHECK(pthread_create(&s->thread, NULL, sender_main, s) == 0);
}

static inline void sender_join(struct sender *s)
{
	pthread_join(s->thread, NULL);
}

/* Per-socket receive state in the tests. */
struct rstream {
	uint64_t bytes;		/* verified so far */
	int32_t end;		/* final res, 1 while running */
	uint64_t chunks;
	uint32_t max_chunk;
};

static inline void check_chunk(struct zc_rx *rx, struct rstream *st,
			       const struct zc_completion *c)
{
	const uint8_t *p = (const uint8_t *)zc_rx_base(rx) + c->aux;
	struct zc_rx_info info;
	int32_t i;

	zc_rx_info(rx, &info);
	CHECK(c->res > 0);
	CHECK((uint32_t)c->res <= info.buf_size);
	CHECK(c->aux + (uint64_t)c->res <= info.area_size);
	for (i = 0; i < c->res; i++) {
		if (p[i] != pattern(st->bytes + (uint64_t)i)) {
			fprintf(stderr, "mismatch at stream offset %llu\n",
				(unsigned long long)(st->bytes + (uint64_t)i));
			exit(1);
		}
	}
	st->bytes += (uint64_t)c->res;
	st->chunks++;
	if ((uint32_t)c->res > st->max_chunk)
		st->max_chunk = (uint32_t)c->res;
}

/*
 * Receive on n streams (user_data = index) until every one ended, checking
 * (from st[i].bytes on: zero st first for a new stream)
 * and releasing each chunk.  hold > 0: keep up to hold chunks unreleased
 * and release them only when that many are held (a slow consumer).
 */
static inline void receive_all(struct zc_ring *r, struct zc_rx *rx,
			       struct rstream *st, unsigned n, unsigned hold)
{
	struct zc_completion c[64];
	uint64_t *held = calloc(hold + 64, sizeof(*held));
	unsigned nheld = 0, running = n, i;
	int k;

	CHECK(held);
	for (i = 0; i < n; i++)
		st[i].end = 1;
	while (running) {
		k = zc_wait(r, c, 64, 1, 10000);
		CHECK(k > 0);
		for (int j = 0; j < k; j++) {
			struct rstream *s;

			CHECK_EQ(c[j].op, ZC_OP_RECV);
			CHECK(c[j].user_data < n);
			s = &st[c[j].user_data];
			CHECK_EQ(s->end, 1);
			if (!(c[j].flags & ZC_COMP_MORE)) {
				s->end = c[j].res;
				running--;
				continue;
			}
			check_chunk(rx, s, &c[j]);
			if (hold) {
				held[nheld++] = c[j].aux;
				if (nheld >= hold) {
					CHECK_EQ(zc_rx_release_many(rx, held, nheld),
						 (int)nheld);
					nheld = 0;
				}
			} else {
				CHECK_EQ(zc_rx_release(rx, c[j].aux), 0);
			}
		}
	}
	if (nheld)
		CHECK_EQ(zc_rx_release_many(rx, held, nheld), (int)nheld);
	free(held);
}

/* quota: recv_quota (0: the default fair share; the area's buffer count:
 * one stream may hold them all, so the area runs dry) */
static inline struct zc_rx *rx_new_quota(struct zc_ring *r, uint32_t mode,
					 uint32_t buf_size, uint64_t area,
					 uint32_t quota)
{
	struct zc_rx_config cfg = {
		.mode = mode, .buf_size = buf_size, .area_size = area,
		.recv_quota = quota,
	};
	struct zc_rx *rx;

	CHECK_EQ(zc_rx_create(r, &cfg, &rx), 0);
	return rx;
}

static inline struct zc_rx *rx_new(struct zc_ring *r, uint32_t mode,
				   uint32_t buf_size, uint64_t area)
{
	return rx_new_quota(r, mode, buf_size, area, 0);
}

#endif
