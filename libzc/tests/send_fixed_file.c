// SPDX-License-Identifier: MIT
/*
 * A busy UDP socket's lite sends go through a registered-file slot
 * (files.c).  The slot holds the socket only while the number names it:
 * zc_close() with sends queued and a corked datagram releases it (the
 * corked send's buffer comes back, the port binds again), a new socket
 * under the number is reached, the old one not, and zc_sock_forget() +
 * close(2) or a dup over the number with zc_sock_opened() release it too.
 * The slots are read from the kernel (/proc/self/fdinfo of the ring).
 */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "helpers.h"

#define LEN	1000u
#define BURST	8u
#define BUSY	80u	/* lite sends that earn a slot (ZC_FILE_AFTER 16) */

static struct zc_pool *pool;

static unsigned long ino_of(int fd)
{
	struct stat st;

	CHECK(fstat(fd, &st) == 0);
	return (unsigned long)st.st_ino;
}

/*
 * Slots of the ring's file table holding socket ino (ino 0: any file);
 * -1 when this kernel's fdinfo has no file table listing.
 */
static int slots(struct zc_ring *r, unsigned long ino)
{
	char path[64], line[256], want[64];
	bool in = false, seen = false;
	int n = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", zc_ring_fd(r));
	snprintf(want, sizeof(want), "socket:[%lu]", ino);
	f = fopen(path, "r");
	CHECK(f);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "UserFiles:", 10)) {
			in = seen = true;
			continue;
		}
		if (in && strchr(line, ':') && line[0] != ' ')
			in = false;	/* the next section */
		if (in && (!ino || strstr(line, want)))
			n++;
	}
	fclose(f);
	return seen ? n : -1;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	CHECK(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Queue n zero-copy sends of LEN bytes on fd (not submitted). */
static void queue(struct zc_ring *r, int fd, unsigned n, uint32_t flags,
		  uint64_t tag)
{
	for (unsigned i = 0; i < n; i++)
		CHECK_EQ(zc_send_fixed(r, fd, pool, i % BURST, 0, LEN,
				       ZC_SEND_ZEROCOPY | flags, tag), 0);
}

/* Wait for n records; each a whole send (or the close, res 0). */
static void reap(struct zc_ring *r, unsigned n)
{
	while (n--) {
		struct zc_completion c = wait_one(r);

		CHECK_EQ(c.res, c.op == ZC_OP_CLOSE ? 0 : (int32_t)LEN);
	}
}

/* Receive what waits on rx: the datagrams' count, each checked. */
static unsigned drain(int rx)
{
	uint8_t in[2048];
	unsigned n = 0;
	ssize_t got;

	while ((got = recv(rx, in, sizeof(in), MSG_DONTWAIT)) >= 0) {
		CHECK_EQ(got, LEN);
		for (uint32_t k = 0; k < LEN; k++)
			CHECK_EQ(in[k], pattern(k));
		n++;
	}
	CHECK(errno == EAGAIN);
	return n;
}

/* BUSY sends on fd in bursts, every one received by rx. */
static void busy(struct zc_ring *r, int fd, int rx)
{
	for (unsigned i = 0; i < BUSY; i += BURST) {
		queue(r, fd, BURST, 0, i);
		CHECK(zc_submit(r) >= 0);
		reap(r, BURST);
		CHECK_EQ(drain(rx), BURST);
	}
}

static bool port_free(const struct sockaddr_in *a)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bool ok;

	CHECK(fd >= 0);
	ok = bind(fd, (const struct sockaddr *)a, sizeof(*a)) == 0;
	CHECK(ok || errno == EADDRINUSE);
	close(fd);
	return ok;
}

/* A UDP socket bound to loopback (*a) and connected to dst. */
static int udp_to(struct sockaddr_in *a, const struct sockaddr_in *dst)
{
	int fd = udp_bound(a);

	CHECK(connect(fd, (const struct sockaddr *)dst, sizeof(*dst)) == 0);
	return fd;
}

int main(void)
{
	struct zc_pool_config pc = { .count = BURST, .size = 4096 };
	struct sockaddr_in a1, a2, src, src2;
	int fds0 = count_fds();
	/* merged here even where the kernel has unified sends: the lite path */
	struct zc_ring_config cfg = { .sq_entries = 64,
				      .unified = ZC_UNIFIED_USERSPACE };
	struct zc_ring *r;
	int rx1 = udp_bound(&a1), rx2 = udp_bound(&a2), tx, tx2, s3, s4;
	unsigned long ino;

	{
		int ret = zc_ring_create(&cfg, &r);

		if (ret == -EPERM || ret == -ENOSYS)
			skip("io_uring is not available to this process");
		CHECK_EQ(ret, 0);
	}
	CHECK_EQ(zc_pool_create(r, &pc, &pool), 0);
	for (unsigned i = 0; i < BURST; i++)
		fill_pattern((uint8_t *)zc_pool_base(pool) + i * pc.size, 0,
			     LEN);

	/* A busy socket gets a slot. */
	tx = udp_to(&src, &a1);
	ino = ino_of(tx);
	busy(r, tx, rx1);
	if (slots(r, 0) < 0)
		skip("no file table in this kernel's io_uring fdinfo");
	CHECK_EQ(slots(r, ino), 1);

	/*
	 * zc_close() with BURST sends queued (their SQEs name the slot) and a
	 * corked datagram whose buffer only the socket's release gives back:
	 * the queued ones go out, and the port is free as soon as the close
	 * ran (at the submit, before any record is reaped); then the corked
	 * one's record comes.
	 */
	queue(r, tx, BURST, 0, 1);
	queue(r, tx, 1, ZC_SEND_MORE, 2);
	CHECK_EQ(zc_close(r, tx, 3), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK(port_free(&src));
	reap(r, BURST + 2);
	CHECK_EQ(zc_ring_pending(r), 0);
	CHECK_EQ(slots(r, ino), 0);
	CHECK_EQ(slots(r, 0), 0);
	CHECK_EQ(drain(rx1), BURST);

	/* The number again, a new socket: reached, the old one not. */
	tx2 = udp_to(&src2, &a2);
	CHECK_EQ(tx2, tx);
	busy(r, tx2, rx2);
	CHECK_EQ(drain(rx1), 0);
	CHECK_EQ(slots(r, ino_of(tx2)), 1);

	/* zc_sock_forget() + close(2): released at the close. */
	CHECK_EQ(zc_sock_forget(r, tx2), 0);
	CHECK_EQ(slots(r, 0), 0);
	close(tx2);
	CHECK(port_free(&src2));

	/*
	 * A new file dup'ed over a number with a slot, announced with
	 * zc_sock_opened(): the old socket is released, sends reach the new.
	 */
	s3 = udp_to(&src, &a1);
	busy(r, s3, rx1);
	ino = ino_of(s3);
	CHECK_EQ(slots(r, ino), 1);
	s4 = udp_to(&src2, &a2);
	CHECK(dup3(s4, s3, O_CLOEXEC) == s3);
	close(s4);
	CHECK(!port_free(&src));	/* the slot holds it */
	CHECK_EQ(zc_sock_opened(r, s3), 0);
	CHECK(port_free(&src));
	CHECK_EQ(slots(r, ino), 0);
	busy(r, s3, rx2);
	CHECK_EQ(drain(rx1), 0);

	/* Teardown with a slot taken: nothing is left. */
	CHECK_EQ(slots(r, ino_of(s3)), 1);
	CHECK_EQ(zc_pool_destroy(pool), 0);
	zc_ring_destroy(r);
	close(s3);
	close(rx1);
	close(rx2);
	CHECK_EQ(count_fds(), fds0);
	CHECK(port_free(&src2));
	printf("fixed file: slot taken, released by close, forget, reopen\n");
	return 0;
}
