// SPDX-License-Identifier: MIT
/*
 * The direct doorbell (doorbell(.., direct), the default: ts/ring.ts).  The
 * bell's set (bell.c) wakes libuv's epoll_pwait() through the nested set's
 * own wait queue (ep_poll_safewake(): wake_up_poll()), which drops the
 * socket's WF_SYNC: the woken thread is placed as by io_uring's task-work
 * wakeup, which has no sync hint either, and with one vCPU busy a peer
 * moved next to the busy task stays there (docs/PERFORMANCE.md, Session 24
 * rr24).
 * Here each receiving socket has a uv_poll_t of its own in libuv's epoll
 * set, so the socket's wakeup of the thread asleep in epoll_pwait() is
 * ep_poll_callback()'s wake_up_sync(): the scheduler may keep the wakee
 * beside its waker, as for node:net's sockets (Session 24 sync24).
 *
 * Polled exactly while the bell would be (!in_ring): sleeping in the ring,
 * a socket in libuv's set would also wake the ring's sleep by its poll of
 * the epoll fd, a second wakeup for one segment.  A handle lives as long as
 * its socket's receive: made by doorbell(.., direct) when the receive
 * starts, closed by bellOff(handle, fd) when it ends, is canceled or its fd
 * is about to close (ts/recv.ts), by disown(handle, fd) (every close of a
 * ring socket disowns it first: ts/socket/close.ts) and by close() of the
 * watcher; uv_close() takes the fd out of libuv's set at once (EPOLL_CTL_DEL
 * while the fd is still open), so no handle of ours is left on a number
 * that may name another file next, where libuv would give its events, or
 * our DEL take its registration, wrongly.
 *
 * Edge-triggered, as the bell's members are.  libuv polls level-triggered
 * (its polls have no edge mode), and a socket whose receive is paused at its
 * quota or parked for buffers with data unread would keep libuv's wait
 * returning.  So the first wakeup of a started handle turns libuv's
 * registration of the fd edge-triggered (EPOLL_CTL_MOD on uv_backend_fd(),
 * the same data.fd libuv reads): by then libuv has made it (it registers
 * the fds of started handles at its next poll), and libuv only registers an
 * fd again when its handle's events change (uv_poll_start(), which only
 * direct_run1() calls, after a stop, and the next wakeup edges it again).
 * A MOD that fails leaves the socket to the bell's set.  A wakeup that
 * finds no record is counted with the bell's drains (bells()).
 *
 * What the kernel does with the socket's wait queue: its entries run from
 * the head, and both add at the head, so the later of io_uring's poll entry
 * (armed when the receive is submitted) and this handle's (added at libuv's
 * next poll) runs first; a handle started after its receive (every start
 * here is, in the loop's next poll) wakes the thread first, with the hint.
 * A receive re-armed after a pause or an empty area puts io_uring's entry
 * in front again, which costs the hint for that socket, not a wakeup.
 */
#include "zc_poll.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

/* A receiving socket's own poll handle (doorbell(.., direct)). */
struct direct {
	uv_poll_t *h; /* h->data is this; both freed by its close callback */
	struct watcher *w;
	int fd;
	bool on; /* started: the fd is in libuv's epoll set (or will be at its next poll) */
	bool et; /* libuv's registration made edge-triggered (on_direct) */
};

static void direct_closed(uv_handle_t *h)
{
	free(h->data);
	free(h);
}

/* Take fd's handle out of libuv's epoll set and close it (none: nothing). */
void zc_poll_direct_close(struct watcher *w, int fd)
{
	struct direct *d;

	if (fd < 0 || (size_t)fd >= w->direct_len || !(d = w->direct[fd]))
		return;
	w->direct[fd] = NULL;
	w->direct_open--;
	if (d->on)
		w->direct_on--;
	/* uv_close() stops it: EPOLL_CTL_DEL now, pending events of the fd dropped */
	uv_close(d->h, direct_closed);
}

void zc_poll_direct_close_all(struct watcher *w)
{
	for (size_t i = 0; i < w->direct_len && w->direct_open > 0; i++)
		zc_poll_direct_close(w, (int)i);
	free(w->direct);
	w->direct = NULL;
	w->direct_len = 0;
}

static void on_direct(uv_poll_t *h, int status, int events)
{
	(void)events;
	struct direct *d = h->data;
	struct watcher *w = d->w;
	int32_t n;

	if (status < 0 || !d->et) {
		struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.fd = d->fd };
		int fd = d->fd;

		if (status < 0 || epoll_ctl(uv_backend_fd(w->loop), EPOLL_CTL_MOD, fd, &ev) < 0) {
			/* level-triggered it could spin: the bell's set takes the socket */
			zc_poll_direct_close(w, fd);
			zc_poll_bell_add(w, fd);
		} else {
			d->et = true;
		}
	}
	w->bell_wakeups++;
	w->ring_woke = true; /* the ring's traffic, as the bell's (tally()) */
	n = w->reap(w->ring, w->out, w->max);
	if (n == 0)
		w->bell_drains++; /* edge-triggered: nothing to drain */
	else
		zc_poll_deliver(w, n); /* w may be gone after this */
}

/* Start d while the loop sleeps in epoll, stop it otherwise. */
static void direct_run1(struct watcher *w, struct direct *d)
{
	bool on = !w->in_ring && !w->closed;

	if (on == d->on)
		return;
	if (on ? uv_poll_start(d->h, UV_READABLE, on_direct) < 0 : uv_poll_stop(d->h) < 0)
		return;
	d->on = on;
	d->et = false; /* a start registers the fd level-triggered again */
	if (on)
		w->direct_on++;
	else
		w->direct_on--;
}

void zc_poll_direct_stop_all(struct watcher *w)
{
	for (size_t i = 0; i < w->direct_len && w->direct_on > 0; i++)
		if (w->direct[i] && w->direct[i]->on) {
			uv_poll_stop(w->direct[i]->h);
			w->direct[i]->on = false;
			w->direct_on--;
		}
}

/*
 * fd's own handle (made now if it has none): false when it cannot be had
 * (libuv watches fd already, no memory): the bell's set takes it then.
 */
bool zc_poll_direct_add(struct watcher *w, int fd)
{
	struct direct *d;
	int fl;

	if ((size_t)fd < w->direct_len && w->direct[fd])
		return true;
	if ((size_t)fd >= w->direct_len) {
		size_t len = w->direct_len ? w->direct_len : 64;
		struct direct **t;

		while (len <= (size_t)fd)
			len *= 2;
		t = realloc(w->direct, len * sizeof(*t));
		if (!t)
			return false;
		memset(t + w->direct_len, 0, (len - w->direct_len) * sizeof(*t));
		w->direct = t;
		w->direct_len = len;
	}
	d = calloc(1, sizeof(*d));
	if (!d || !(d->h = calloc(1, uv_handle_size(UV_POLL)))) {
		free(d);
		return false;
	}
	/* uv_poll_init() makes the fd O_NONBLOCK; the ring's sockets keep their flags */
	fl = fcntl(fd, F_GETFL);
	if (uv_poll_init(w->loop, d->h, fd) < 0) {
		free(d->h);
		free(d);
		return false;
	}
	if (fl >= 0 && !(fl & O_NONBLOCK))
		fcntl(fd, F_SETFL, fl);
	d->h->data = d;
	d->w = w;
	d->fd = fd;
	/* the ring fd's handle keeps the loop alive while it must */
	uv_unref(d->h);
	w->direct[fd] = d;
	w->direct_open++;
	direct_run1(w, d);
	return true;
}

/* Run each handle: started while the loop sleeps in epoll, stopped otherwise. */
void zc_poll_direct_run(struct watcher *w)
{
	for (size_t i = 0; i < w->direct_len; i++)
		if (w->direct[i])
			direct_run1(w, w->direct[i]);
}

/*
 * directs(handle) -> [direct handles open, of them polled now, libuv's epoll
 * fd] (tests, the bench)
 */
napi_value zc_poll_js_directs(napi_env env, napi_callback_info info)
{
	napi_value res, v;
	struct watcher *w = zc_poll_arg_watcher(env, info);

	if (!w || napi_create_array_with_length(env, 3, &res) != napi_ok)
		return NULL;
	const double c[3] = { w->direct_open, w->direct_on, w->closed ? -1 : uv_backend_fd(w->loop) };
	for (uint32_t i = 0; i < 3; i++)
		if (napi_create_double(env, c[i], &v) != napi_ok || napi_set_element(env, res, i, v) != napi_ok)
			return NULL;
	return res;
}
