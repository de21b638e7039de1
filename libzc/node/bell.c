// SPDX-License-Identifier: MIT
/*
 * The bell: the ring's receiving sockets as members of an epoll set of the
 * watcher's own (bell_fd), one poll handle on it in libuv's epoll set
 * (doorbell.c has why a doorbell; direct.c the default kind, which falls
 * back to this set).
 *
 * The set is polled on the loop exactly while the loop sleeps in epoll
 * (!in_ring: a ring without sleepIn, or sleepIn(.., adaptive) in its epoll
 * phase); sleeping in the ring, zc_ring_sleep() wakes for the ring's
 * sockets itself and the bell's handle is stopped (its fd out of libuv's
 * epoll set).  Its members stay in every mode (doorbell() adds a socket
 * when its receive starts), so tally()'s switch is one start or stop of
 * the handle; a bell wakeup is the ring's own there (on_bell sets
 * ring_woke), as the ring fd's is.
 *
 * The sockets are edge-triggered here, but libuv polls the bell
 * level-triggered, and an epoll fd reads ready while any socket on its
 * ready list has data: one whose receive is paused (or over) with data
 * unread would keep the bell ready.  A bell that found no record drains
 * the set (epoll_wait: the edges are consumed), so it stays quiet until
 * the next segment arrives; one started after a phase in the ring finds
 * the edges of that phase, at most one drain.  The ring fd stays watched
 * for everything else (sends, accepts, a wakeup the bell missed).
 */
#include "zc_poll.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

static void drain_bell(struct watcher *w)
{
	struct epoll_event ev[64];
	int k;

	w->bell_drains++;
	do
		k = epoll_wait(w->bell_fd, ev, 64, 0);
	while (k == 64);
}

static void on_bell(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct watcher *w = h->data;
	int32_t n;

	if (status < 0) {
		/* the ring fd's handle carries on alone */
		w->bell_broken = true;
		uv_poll_stop(h);
		return;
	}
	w->bell_wakeups++;
	w->ring_woke = true; /* the ring's traffic: tally() counts it as its own */
	n = w->reap(w->ring, w->out, w->max);
	if (n == 0)
		drain_bell(w);
	else
		zc_poll_deliver(w, n); /* w may be gone after this */
}

/* Poll the bell while the loop sleeps in epoll, not in the ring. */
void zc_poll_bell_run(struct watcher *w)
{
	if (!w->bell)
		return;
	if (w->in_ring || w->closed || w->bell_broken)
		uv_poll_stop(w->bell);
	else
		uv_poll_start(w->bell, UV_READABLE, on_bell);
}

void zc_poll_bell_stop(struct watcher *w)
{
	if (w->bell)
		uv_poll_stop(w->bell);
}

void zc_poll_bell_close(struct watcher *w)
{
	if (w->bell) {
		/* uv_close() takes the fd out of libuv's epoll set before it is closed */
		uv_poll_stop(w->bell);
		uv_close(w->bell, zc_poll_closed);
		close(w->bell_fd);
		w->bell = NULL;
		w->bell_fd = -1;
	}
}

/* fd joins the bell's set (made now if there is none); false if it cannot. */
bool zc_poll_bell_add(struct watcher *w, int fd)
{
	if (!w->bell) {
		int e = epoll_create1(EPOLL_CLOEXEC);
		uv_poll_t *b;

		if (e < 0)
			return false;
		b = calloc(1, uv_handle_size(UV_POLL));
		if (!b || uv_poll_init(w->loop, b, e) < 0) {
			free(b);
			close(e);
			return false;
		}
		b->data = w;
		/* the ring fd's handle keeps the loop alive while it must */
		uv_unref(b);
		w->bell = b;
		w->bell_fd = e;
		if (!w->in_ring)
			zc_poll_bell_run(w);
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = fd };
	return epoll_ctl(w->bell_fd, EPOLL_CTL_ADD, fd, &ev) == 0 || errno == EEXIST;
}
