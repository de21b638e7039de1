// SPDX-License-Identifier: MIT
/* socket, bind, listen, accept, connect, send, close: all through the ring. */
#include <arpa/inet.h>

#include "helpers.h"

static int32_t op(struct zc_ring *r, uint16_t expect_op)
{
	struct zc_completion c;

	CHECK(zc_submit(r) >= 0);
	c = wait_one(r);
	CHECK_EQ(c.op, expect_op);
	return c.res;
}

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct zc_completion cs[2];
	socklen_t alen = sizeof(a);
	struct zc_ring *r = ring_new(ZC_RING_DEFER_TASKRUN);
	char buf[64] = "through the ring";
	int l, c, s, n, got = 0;

	CHECK_EQ(zc_socket(r, AF_INET, SOCK_STREAM, 0, 1), 0);
	l = op(r, ZC_OP_SOCKET);
	CHECK(l >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	CHECK_EQ(zc_bind(r, l, &a, sizeof(a), 2), 0);
	CHECK_EQ(op(r, ZC_OP_BIND), 0);
	CHECK_EQ(zc_listen(r, l, 8, 3), 0);
	CHECK_EQ(op(r, ZC_OP_LISTEN), 0);
	CHECK(getsockname(l, (struct sockaddr *)&a, &alen) == 0);

	CHECK_EQ(zc_socket(r, AF_INET, SOCK_STREAM, 0, 4), 0);
	c = op(r, ZC_OP_SOCKET);
	CHECK(c >= 0);
	/* accept and connect in flight together */
	CHECK_EQ(zc_accept(r, l, 5), 0);
	CHECK_EQ(zc_connect(r, c, &a, alen, 6), 0);
	CHECK(zc_submit(r) >= 0);
	s = -1;
	while (got < 2) {
		n = zc_wait(r, cs + got, 2 - got, 1, 5000);
		CHECK(n > 0);
		got += n;
	}
	for (n = 0; n < 2; n++) {
		if (cs[n].op == ZC_OP_ACCEPT)
			s = cs[n].res;
		else
			CHECK_EQ(cs[n].res, 0);
	}
	CHECK(s >= 0);

	/* Close right after a send: the close waits for the send. */
	CHECK_EQ(zc_send(r, c, buf, 16, ZC_SEND_ZEROCOPY, 7), 0);
	CHECK_EQ(zc_close(r, c, 8), 0);
	CHECK(zc_submit(r) >= 0);
	got = 0;
	while (got < 2) {
		n = zc_wait(r, cs + got, 2 - got, 1, 5000);
		CHECK(n > 0);
		got += n;
	}
	CHECK_EQ(cs[0].user_data + cs[1].user_data, 15);
	CHECK_EQ(cs[0].res, cs[0].user_data == 7 ? 16 : 0);
	CHECK_EQ(cs[1].res, cs[1].user_data == 7 ? 16 : 0);
	memset(buf, 0, sizeof(buf));
	CHECK_EQ(read(s, buf, sizeof(buf)), 16);
	CHECK(strcmp(buf, "through the ring") == 0);
	CHECK_EQ(read(s, buf, sizeof(buf)), 0);	/* EOF: closed */

	/* Errors come back as records. */
	CHECK_EQ(zc_connect(r, s, &a, alen, 9), 0);
	CHECK(op(r, ZC_OP_CONNECT) == -EISCONN);
	CHECK_EQ(zc_bind(r, s, NULL, 0, 10), -EINVAL);
	CHECK_EQ(zc_close(r, s, 11), 0);
	CHECK_EQ(op(r, ZC_OP_CLOSE), 0);
	CHECK_EQ(zc_close(r, l, 12), 0);
	CHECK_EQ(op(r, ZC_OP_CLOSE), 0);
	CHECK_EQ(zc_close(r, l, 13), 0);
	CHECK_EQ(op(r, ZC_OP_CLOSE), -EBADF);
	zc_ring_destroy(r);
	printf("sockops: ok\n");
	return 0;
}
