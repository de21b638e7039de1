// SPDX-License-Identifier: MIT
/*
 * zc_accept_multishot(): one request, one record per connection (MORE set),
 * the accepted fds work, and zc_close() of the listener ends the request
 * with a last record without MORE.  zc_recv_buf(): one recv into caller
 * memory, EOF as 0.
 */
#include <arpa/inet.h>

#include "helpers.h"

#define CONNS 16

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	struct zc_ring *r = ring_new(0);
	int l, i, clients[CONNS], accepted[CONNS], n = 0;
	char buf[64];
	struct zc_completion c;

	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(l >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0);
	CHECK(listen(l, CONNS) == 0);
	CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0);

	CHECK_EQ(zc_accept_multishot(r, l, 42), 0);
	CHECK(zc_submit(r) >= 0);
	for (i = 0; i < CONNS; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(clients[i] >= 0);
		CHECK(connect(clients[i], (struct sockaddr *)&a, alen) == 0);
	}
	while (n < CONNS) {
		c = wait_one(r);
		CHECK_EQ(c.user_data, 42);
		CHECK_EQ(c.op, ZC_OP_ACCEPT);
		CHECK(c.res >= 0);
		CHECK(c.flags & ZC_COMP_MORE);	/* the request goes on */
		CHECK_EQ(c.cqes, 1);
		accepted[n++] = c.res;
	}
	CHECK_EQ(zc_ring_pending(r), 1);	/* still one request */

	/* The fds are connected sockets: bytes go across, and recv_buf reads them. */
	for (i = 0; i < CONNS; i++) {
		CHECK_EQ(write(clients[i], "ping", 4), 4);
		memset(buf, 0, sizeof(buf));
		CHECK_EQ(zc_recv_buf(r, accepted[i], buf, sizeof(buf), 100 + i), 0);
		CHECK(zc_submit(r) >= 0);
		c = wait_one(r);
		CHECK_EQ(c.op, ZC_OP_RECV_BUF);
		CHECK_EQ(c.user_data, 100 + i);
		CHECK_EQ(c.res, 4);
		CHECK(!(c.flags & ZC_COMP_MORE));
		CHECK(memcmp(buf, "ping", 4) == 0);
	}
	/* EOF is 0; errors are -errno */
	close(clients[0]);
	CHECK_EQ(zc_recv_buf(r, accepted[0], buf, sizeof(buf), 200), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(wait_one(r).res, 0);
	CHECK_EQ(zc_recv_buf(r, accepted[1], NULL, 8, 201), -EFAULT);

	/* Closing the listener ends the multishot request. */
	CHECK_EQ(zc_close(r, l, 43), 0);
	CHECK(zc_submit(r) >= 0);
	for (i = 0; i < 2; i++) {
		c = wait_one(r);
		if (c.user_data == 42) {
			CHECK_EQ(c.op, ZC_OP_ACCEPT);
			CHECK(!(c.flags & ZC_COMP_MORE));
			CHECK_EQ(c.res, -ECANCELED);
		} else {
			CHECK_EQ(c.user_data, 43);
			CHECK_EQ(c.res, 0);
		}
	}
	CHECK_EQ(zc_ring_pending(r), 0);
	for (i = 0; i < CONNS; i++) {
		if (i)
			close(clients[i]);
		close(accepted[i]);
	}
	zc_ring_destroy(r);
	printf("accept_multishot: ok\n");
	return 0;
}
