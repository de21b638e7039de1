// SPDX-License-Identifier: MIT
/*
 * zc_sendfile(): file ranges to TCP sockets through every path (splice,
 * read + SEND_ZC, read + send, O_DIRECT), in order with the socket's other
 * sends, byte-exact at a reader thread; 64-bit offsets and lengths on a
 * sparse file; a file truncated while sending; cancel, abort + close and a
 * peer reset mid-transfer; non-blocking sockets; transfers waiting for
 * staging buffers; fallbacks where a file refuses splice or O_DIRECT.
 * Every case checks that no fd, pipe or staging buffer is left behind.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "helpers.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)

static const uint32_t paths[] = {
	0, ZC_SENDFILE_SPLICE, ZC_SENDFILE_READ, ZC_SENDFILE_DIRECT,
	ZC_SENDFILE_READ | ZC_SENDFILE_COPY,
};
#define NPATHS (sizeof(paths) / sizeof(paths[0]))

static uint32_t path_of(uint32_t flags)
{
	if (flags & ZC_SENDFILE_DIRECT)
		return ZC_SENDFILE_PATH_DIRECT;
	if (flags & ZC_SENDFILE_READ)
		return ZC_SENDFILE_PATH_READ;
	return ZC_SENDFILE_PATH_SPLICE;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the DIR's own */
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* An unlinked temporary file holding the pattern over [0, size). */
static int pattern_file_new(uint64_t size)
{
	char path[] = "/tmp/zc-sendfile-XXXXXX";
	static uint8_t buf[1 << 20];
	uint64_t off;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	unlink(path);
	for (off = 0; off < size; off += sizeof(buf)) {
		uint32_t n = size - off < sizeof(buf) ? (uint32_t)(size - off) :
			     (uint32_t)sizeof(buf);

		fill_pattern(buf, off, n);
		CHECK_EQ(pwrite(fd, buf, n, (off_t)off), n);
	}
	return fd;
}

/*
 * The cases only read their files (t_truncate makes its own), so each size
 * is written once and every case gets a dup() to close: under TCG with
 * KASAN, writing the pattern took most of this test's time.  main() opens
 * them before it counts fds.
 */
static struct { uint64_t size; int fd; } files[8];

static void pattern_files_open(const uint64_t *sizes, unsigned n)
{
	unsigned i;

	CHECK(n <= sizeof(files) / sizeof(files[0]));
	for (i = 0; i < n; i++) {
		files[i].size = sizes[i];
		files[i].fd = pattern_file_new(sizes[i]);
	}
}

static void pattern_files_close(void)
{
	unsigned i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i].size)
			close(files[i].fd);
}

static int pattern_file(uint64_t size)
{
	unsigned i;
	int fd;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (files[i].size == size) {
			fd = dup(files[i].fd);
			CHECK(fd >= 0);
			return fd;
		}
	return pattern_file_new(size);
}

/*
 * Reader thread with a gate (it reads nothing until opened) and an
 * expected-content function: stalls the sender on demand.
 */
struct reader {
	int fd;
	atomic_int open;
	uint64_t base;		/* file offset of stream byte 0 */
	uint8_t (*expect)(uint64_t file_off);
	bool (*zeros)(uint64_t file_off, uint64_t len);	/* all zero there */
	uint64_t bytes, bad_at;
	pthread_t thread;
};

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	static __thread uint8_t buf[1 << 16];
	ssize_t n, i;

	while (!atomic_load(&rd->open))
		sleep_ms(1);
	while ((n = read(rd->fd, buf, sizeof(buf))) > 0) {
		if (rd->zeros && rd->zeros(rd->base + rd->bytes, (uint64_t)n)) {
			/* a hole: all zeros, checked fast */
			static const uint8_t z[1 << 16];

			if (!rd->bad_at && memcmp(buf, z, (size_t)n))
				rd->bad_at = rd->bytes + 1;
			rd->bytes += n;
			continue;
		}
		for (i = 0; i < n && !rd->bad_at; i++) {
			if (buf[i] != rd->expect(rd->base + rd->bytes + i))
				rd->bad_at = rd->bytes + i + 1;
		}
		rd->bytes += n;
	}
	return NULL;
}

static void reader_start(struct reader *rd, int fd, bool open,
			 uint8_t (*expect)(uint64_t))
{
	memset(rd, 0, sizeof(*rd));
	rd->fd = fd;
	rd->expect = expect;
	atomic_store(&rd->open, open);
	CHECK(pthread_create(&rd->thread, NULL, reader_main, rd) == 0);
}

static void reader_open(struct reader *rd)
{
	atomic_store(&rd->open, 1);
}

/* FIN, join, and the stream must be exactly bytes long and as expected. */
static void reader_finish(struct reader *rd, int tx, uint64_t bytes)
{
	shutdown(tx, SHUT_WR);
	reader_open(rd);
	pthread_join(rd->thread, NULL);
	CHECK_EQ(rd->bad_at, 0);
	CHECK_EQ(rd->bytes, bytes);
}

static struct zc_completion wait_rec(struct zc_ring *r, int timeout_ms)
{
	struct zc_completion c;
	int n = zc_wait(r, &c, 1, 1, timeout_ms);

	CHECK_EQ(n, 1);
	return c;
}

/* Nothing of the ring's sendfile state may be in use once it is idle
 * (staging buffers come back as the peer acks: reap until they do). */
static void check_idle(struct zc_ring *r)
{
	struct zc_sendfile_stats st;
	struct zc_completion c;
	int i;

	for (i = 0; i < 500; i++) {
		CHECK_EQ(zc_sendfile_stats(r, &st), 0);
		if (!st.releasing)
			break;
		CHECK_EQ(zc_wait(r, &c, 1, 0, 0), 0);
		sleep_ms(10);
	}
	CHECK_EQ(st.releasing, 0);
	CHECK_EQ(st.active, 0);
	CHECK_EQ(st.pipes, st.pipes_idle);
	CHECK_EQ(st.bufs_free, st.bufs);
	CHECK_EQ(zc_ring_pending(r), 0);
}

static void small_sndbuf(int fd)
{
	int v = 64 * 1024;

	CHECK(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v)) == 0);
}

static void small_rcvbuf(int fd)
{
	int v = 64 * 1024;

	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &v, sizeof(v)) == 0);
}

/* ------------------------------------------------------------- cases */

/*
 * Sends and transfers interleaved on one socket, queued in batches before
 * one submit: the stream must be the pattern, so every piece went out in
 * queue order.  Odd offsets and lengths, len 0, page-crossing chunks,
 * ranges larger than a pipe and than a staging buffer.
 */
static void t_order(uint32_t flags)
{
	static const uint64_t lens[] = { 1, 4095, 4096, 4097, 65536 + 3,
					 MiB + 17, 3 * MiB + 5, 0, 257 * 1024 };
	uint64_t size = 24 * MiB, off = 0;
	static uint8_t hdr[sizeof(lens) / sizeof(lens[0])][512];
	uint32_t hlen[sizeof(lens) / sizeof(lens[0])];
	struct zc_ring *r = ring_new(0);
	int file = pattern_file(size), tx, rx;
	struct reader rd;
	unsigned i, n = 0, round;

	tcp_pair(&tx, &rx);
	reader_start(&rd, rx, true, pattern);
	for (round = 0; round < scaled(3); round++) {
		unsigned queued = 0;

		for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			uint32_t h = (i * 37 + round) % 300 + 1;

			/* a "header" send, then the next range of the file */
			fill_pattern(hdr[i], off, h);
			hlen[i] = h;
			CHECK_EQ(zc_send(r, tx, hdr[i], h, 0, 1000 + i), 0);
			off += h;
			CHECK_EQ(zc_sendfile(r, tx, file, off, lens[i], flags, i), 0);
			off += lens[i];
			queued += 2;
		}
		CHECK(zc_submit(r) >= 0);
		while (queued) {
			struct zc_completion c = wait_rec(r, 20000);

			queued--;
			if (c.user_data >= 1000) {
				CHECK_EQ(c.op, ZC_OP_SEND);
				CHECK_EQ(c.res, hlen[c.user_data - 1000]);
				continue;
			}
			CHECK_EQ(c.op, ZC_OP_SENDFILE);
			CHECK(c.user_data < sizeof(lens) / sizeof(lens[0]));
			CHECK_EQ(c.res, lens[c.user_data]);
			CHECK_EQ(c.aux, lens[c.user_data]);
			CHECK_EQ(c.aux2 & ZC_SENDFILE_PATH_MASK, path_of(flags));
			n++;
		}
	}
	check_idle(r);
	reader_finish(&rd, tx, off);
	printf("order flags %#x: %u transfers, %llu bytes in order\n", flags, n,
	       (unsigned long long)off);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	close(file);
}

/* Many transfers queued back to back with no sends between. */
static void t_back_to_back(uint32_t flags)
{
	uint64_t size = 8 * MiB, off = 0;
	struct zc_ring *r = ring_new(ZC_RING_DEFER_TASKRUN);
	int file = pattern_file(size), tx, rx;
	unsigned i, n = scaled(40), got = 0;
	struct reader rd;

	tcp_pair(&tx, &rx);
	reader_start(&rd, rx, true, pattern);
	for (i = 0; i < n && off < size; i++) {
		uint64_t len = (i * 7919 * 13) % (size / n) + 1;

		CHECK_EQ(zc_sendfile(r, tx, file, off, len, flags, len), 0);
		off += len;
	}
	n = i;
	CHECK(zc_submit(r) >= 0);
	while (got < n) {
		struct zc_completion c = wait_rec(r, 20000);

		CHECK_EQ(c.res, c.user_data);
		CHECK_EQ(c.aux, c.user_data);
		got++;
	}
	check_idle(r);
	reader_finish(&rd, tx, off);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	close(file);
}

static void t_refused(void)
{
	struct zc_ring *r = ring_new(0);
	int file = pattern_file(10000), tx, rx, p[2], u;
	struct sockaddr_in a;

	tcp_pair(&tx, &rx);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, 10001, 0, 1), -ERANGE);
	CHECK_EQ(zc_sendfile(r, tx, file, 10001, 0, 0, 1), -ERANGE);
	CHECK_EQ(zc_sendfile(r, tx, file, 5000, UINT64_MAX, 0, 1), -ERANGE);
	CHECK_EQ(zc_sendfile(r, tx, file, UINT64_MAX, 2, 0, 1), -ERANGE);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, 1, 1u << 20, 1), -EINVAL);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, 1,
			     ZC_SENDFILE_SPLICE | ZC_SENDFILE_READ, 1), -EINVAL);
	CHECK_EQ(zc_sendfile(r, tx, 999, 0, 1, 0, 1), -EBADF);
	CHECK(pipe(p) == 0);
	CHECK_EQ(zc_sendfile(r, tx, p[0], 0, 1, 0, 1), -EINVAL);
	u = udp_bound(&a);
	CHECK_EQ(zc_sendfile(r, u, file, 0, 1, 0, 1), -EINVAL);
	CHECK_EQ(zc_ring_pending(r), 0);
	/* the whole file and the empty range at its end are fine */
	CHECK_EQ(zc_sendfile(r, tx, file, 0, 10000, 0, 1), 0);
	CHECK_EQ(zc_sendfile(r, tx, file, 10000, 0, 0, 2), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(wait_rec(r, 5000).aux, 10000);
	CHECK_EQ(wait_rec(r, 5000).aux, 0);
	close(p[0]);
	close(p[1]);
	close(u);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	close(file);
}

/* Sparse file: zeros except pattern blocks around 0, 4 GiB and the end. */
static uint64_t sparse_size;

static bool in_block(uint64_t off)
{
	return off < 64 * 1024 ||
	       (off >= 4 * GiB - 64 * 1024 && off < 4 * GiB + 64 * 1024) ||
	       off >= sparse_size - 64 * 1024;
}

static uint8_t sparse_expect(uint64_t off)
{
	return in_block(off) ? pattern(off) : 0;
}

static bool sparse_zeros(uint64_t off, uint64_t len)
{
	uint64_t end = off + len;

	return off >= 64 * 1024 && end <= sparse_size - 64 * 1024 &&
	       (end <= 4 * GiB - 64 * 1024 || off >= 4 * GiB + 64 * 1024);
}

static int sparse_file(uint64_t size)
{
	char path[] = "/tmp/zc-sendfile-XXXXXX";
	static uint8_t buf[128 * 1024];
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	unlink(path);
	sparse_size = size;
	CHECK(ftruncate(fd, (off_t)size) == 0);
	fill_pattern(buf, 0, 64 * 1024);
	CHECK_EQ(pwrite(fd, buf, 64 * 1024, 0), 64 * 1024);
	fill_pattern(buf, 4 * GiB - 64 * 1024, sizeof(buf));
	CHECK_EQ(pwrite(fd, buf, sizeof(buf), (off_t)(4 * GiB - 64 * 1024)),
		 sizeof(buf));
	fill_pattern(buf, size - 64 * 1024, 64 * 1024);
	CHECK_EQ(pwrite(fd, buf, 64 * 1024, (off_t)(size - 64 * 1024)),
		 64 * 1024);
	return fd;
}

static void sparse_send(int file, uint64_t off, uint64_t len, uint32_t flags)
{
	struct zc_ring *r = ring_new(0);
	struct zc_completion c;
	struct reader rd;
	int tx, rx;

	tcp_pair(&tx, &rx);
	reader_start(&rd, rx, false, sparse_expect);
	rd.base = off;
	rd.zeros = sparse_zeros;
	reader_open(&rd);
	CHECK_EQ(zc_sendfile(r, tx, file, off, len, flags, 7), 0);
	CHECK(zc_submit(r) >= 0);
	c = wait_rec(r, 600000);
	CHECK_EQ(c.res, len > INT32_MAX ? INT32_MAX : len);
	CHECK_EQ(c.aux, len);
	check_idle(r);
	reader_finish(&rd, tx, len);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
}

/*
 * A transfer longer than 4 GiB: cancelled after a while, it must report
 * more bytes than the length modulo 2^32 (a 32-bit cut would have ended
 * it early with success), all of them the file's.
 */
static void sparse_long_cancel(int file, uint64_t off, uint64_t len)
{
	struct zc_ring *r = ring_new(0);
	struct zc_completion c;
	struct reader rd;
	int tx, rx;

	tcp_pair(&tx, &rx);
	reader_start(&rd, rx, false, sparse_expect);
	rd.base = off;
	rd.zeros = sparse_zeros;
	reader_open(&rd);
	CHECK_EQ(zc_sendfile(r, tx, file, off, len, 0, 7), 0);
	CHECK(zc_submit(r) >= 0);
	while (zc_wait(r, &c, 1, 1, 0) == 0 && rd.bytes < 16 * MiB)
		sleep_ms(1);
	CHECK_EQ(zc_sendfile_cancel(r, 7), 1);
	c = wait_rec(r, 5000);
	CHECK_EQ(c.res, -ECANCELED);
	CHECK(c.aux > (len & 0xffffffffu) && c.aux < len);
	reader_finish(&rd, tx, c.aux);
	check_idle(r);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
}

/*
 * Offsets past 4 GiB on every path, the end of a 5 GiB file, and a range
 * longer than 4 GiB.  Sending all of that range (4 GiB through loopback,
 * with the page cache filling up with the holes' zero pages) takes a
 * minute on this shared host and far longer under TCG: it runs only with
 * URING_ZC_FULL=1 (make test-full); by default the long range is cancelled
 * part-way.
 */
static void t_sparse_4g(void)
{
	uint64_t size = 5 * GiB + 12345, big = 4 * GiB + 4096 + 3;
	int file = sparse_file(size);
	unsigned i;

	for (i = 0; i < NPATHS; i++)
		sparse_send(file, 4 * GiB - 3 * MiB - 77, 6 * MiB + 99, paths[i]);
	sparse_send(file, size - 3 * MiB, 3 * MiB, 0);
	sparse_long_cancel(file, 123, big);
	if (full_run()) {
		sparse_send(file, 123, big, 0);
		printf("sparse: one transfer of %llu bytes (> 4 GiB) byte-exact\n",
		       (unsigned long long)big);
	} else {
		printf("sparse: a > 4 GiB range cancelled part-way (whole: URING_ZC_FULL=1)\n");
	}
	close(file);
}

/*
 * The file shrinks under a stalled transfer: the record says -ENODATA with
 * the bytes sent, which the peer got, and nothing waits for more.  Pages
 * already taken before the truncation may go out with their old bytes or
 * as zeros past the new end (as with sendfile(2)): the pattern is checked
 * up to the new size only.
 */
static void t_truncate(uint32_t flags)
{
	uint64_t size = 64 * MiB, cut = 1 * MiB;
	struct zc_ring *r = ring_new(0);
	/* its own file, as it truncates it: the pattern where it is checked
	 * (below the cut) and a bit beyond, then a hole up to size */
	int file = pattern_file_new(2 * cut), tx, rx;
	struct zc_completion c;
	uint8_t *got;
	uint64_t have = 0;
	ssize_t n;

	CHECK(ftruncate(file, (off_t)size) == 0);
	tcp_pair(&tx, &rx);
	small_sndbuf(tx);
	small_rcvbuf(rx);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 1), 0);
	CHECK(zc_submit(r) >= 0);
	/* stalled: the reader reads nothing yet */
	CHECK_EQ(zc_wait(r, &c, 1, 1, 200), 0);
	CHECK(ftruncate(file, (off_t)cut) == 0);
	/* drain by hand, keeping the bytes */
	got = malloc(size);
	CHECK(got);
	{
		int fl = fcntl(rx, F_GETFL);

		CHECK(fcntl(rx, F_SETFL, fl | O_NONBLOCK) == 0);
	}
	for (;;) {
		int k = zc_wait(r, &c, 1, 0, 0);

		n = read(rx, got + have, size - have);
		if (n > 0)
			have += (uint64_t)n;
		if (k == 1)
			break;
		if (n <= 0)
			sleep_ms(1);
	}
	CHECK_EQ(c.res, -ENODATA);
	CHECK(c.aux >= cut);
	CHECK(c.aux < size);
	shutdown(tx, SHUT_WR);
	{
		int fl = fcntl(rx, F_GETFL);

		CHECK(fcntl(rx, F_SETFL, fl & ~O_NONBLOCK) == 0);
	}
	while ((n = read(rx, got + have, size - have)) > 0)
		have += (uint64_t)n;
	CHECK_EQ(have, c.aux);
	for (uint64_t i = 0; i < cut; i++)
		CHECK_EQ(got[i], pattern(i));
	check_idle(r);
	printf("truncate flags %#x: -ENODATA after %llu bytes\n", flags,
	       (unsigned long long)c.aux);
	free(got);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	close(file);
}

/*
 * Cancel: a stalled transfer ends with -ECANCELED and the bytes it sent,
 * which the peer gets; a queued one ends at once with 0 bytes; the socket
 * keeps working (a following send continues the stream).
 */
static void t_cancel(uint32_t flags)
{
	uint64_t size = 32 * MiB;
	static uint8_t tail[1000];
	struct zc_ring *r = ring_new(0);
	int file = pattern_file(size), tx, rx;
	struct zc_completion c;
	struct reader rd;
	uint64_t sent;

	tcp_pair(&tx, &rx);
	small_sndbuf(tx);
	small_rcvbuf(rx);
	reader_start(&rd, rx, false, pattern);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 1), 0);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 2), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(zc_wait(r, &c, 1, 1, 200), 0);
	CHECK_EQ(zc_sendfile_cancel(r, 2), 1);
	c = wait_rec(r, 1000);
	CHECK_EQ(c.user_data, 2);
	CHECK_EQ(c.res, -ECANCELED);
	CHECK_EQ(c.aux, 0);
	CHECK_EQ(zc_sendfile_cancel(r, 1), 1);
	CHECK(zc_submit(r) >= 0);
	c = wait_rec(r, 5000);
	CHECK_EQ(c.user_data, 1);
	CHECK_EQ(c.res, -ECANCELED);
	CHECK(c.aux > 0 && c.aux < size);
	CHECK_EQ(zc_sendfile_cancel(r, 1), -ENOENT);
	sent = c.aux;
	fill_pattern(tail, sent, sizeof(tail));
	CHECK_EQ(zc_send(r, tx, tail, sizeof(tail), 0, 3), 0);
	reader_open(&rd);
	CHECK_EQ(wait_rec(r, 5000).res, sizeof(tail));
	reader_finish(&rd, tx, sent + sizeof(tail));
	check_idle(r);
	printf("cancel flags %#x: -ECANCELED after %llu bytes, stream intact\n",
	       flags, (unsigned long long)sent);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	close(file);
}

/*
 * Cancel at any moment of a round, the peer paused: a cancel that lands
 * while one step finishes and its linked successor has not started yet
 * cannot find that successor, which then blocks on the full socket; the
 * transfer must still end (libzc re-sends its cancels until all is back).
 */
static void t_cancel_race(uint32_t flags)
{
	uint64_t size = 32 * MiB;
	int file = pattern_file(size);
	unsigned i, n = scaled(60);

	for (i = 0; i < n; i++) {
		struct zc_ring *r = ring_new(i % 2 ? ZC_RING_DEFER_TASKRUN : 0);
		struct zc_completion c;
		struct timespec ts = { 0, (long)(i * 7919 % 400) * 1000 };
		int tx, rx;

		tcp_pair(&tx, &rx);
		small_sndbuf(tx);
		small_rcvbuf(rx);
		CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 1), 0);
		CHECK(zc_submit(r) >= 0);
		nanosleep(&ts, NULL);	/* 0..400 us: any point of the first round */
		CHECK_EQ(zc_sendfile_cancel(r, 1), 1);
		CHECK(zc_submit(r) >= 0);
		c = wait_rec(r, 5000);
		CHECK_EQ(c.res, -ECANCELED);
		check_idle(r);
		zc_ring_destroy(r);
		close(tx);
		close(rx);
	}
	close(file);
}

/* Abortive close mid-transfer: the record comes, then the close's. */
static void t_abort_close(uint32_t flags)
{
	uint64_t size = 32 * MiB;
	struct zc_ring *r = ring_new(0);
	int file = pattern_file(size), tx, rx;
	struct zc_completion cs[2];
	struct linger lg = { 1, 0 };
	int n = 0, k;

	tcp_pair(&tx, &rx);
	small_sndbuf(tx);
	small_rcvbuf(rx);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 1), 0);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 2), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(zc_wait(r, cs, 1, 1, 200), 0);
	/* abortive: a reset frees what the socket still holds at once */
	CHECK(setsockopt(tx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	CHECK_EQ(zc_sock_abort(r, tx), 0);
	CHECK_EQ(zc_close(r, tx, 9), 0);
	CHECK(zc_submit(r) >= 0);
	while (n < 3) {
		k = zc_wait(r, cs, 1, 1, 5000);
		CHECK_EQ(k, 1);
		if (cs[0].user_data == 9)
			CHECK_EQ(cs[0].res, 0);
		else
			CHECK_EQ(cs[0].res, -ECANCELED);
		n++;
	}
	check_idle(r);
	zc_ring_destroy(r);
	close(rx);
	close(file);
}

/* The peer resets mid-transfer: an error record with the bytes sent. */
static void t_peer_reset(uint32_t flags)
{
	uint64_t size = 32 * MiB;
	struct zc_ring *r = ring_new(0);
	int file = pattern_file(size), tx, rx;
	struct linger lg = { 1, 0 };
	struct zc_completion c;

	tcp_pair(&tx, &rx);
	small_sndbuf(tx);
	small_rcvbuf(rx);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 1), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(zc_wait(r, &c, 1, 1, 200), 0);
	CHECK(setsockopt(rx, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) == 0);
	close(rx);
	c = wait_rec(r, 5000);
	CHECK(c.res == -ECONNRESET || c.res == -EPIPE);
	CHECK(c.aux < size);
	check_idle(r);
	zc_ring_destroy(r);
	close(tx);
	close(file);
}

/* A non-blocking socket that fills up: the transfer polls, never fails. */
/* Far more than the small send buffer holds: many EAGAINs on the way. */
#define NONBLOCK_SIZE vm_bytes(16 * MiB)
static void t_nonblocking(uint32_t flags)
{
	uint64_t size = NONBLOCK_SIZE;
	struct zc_ring *r = ring_new(0);
	int file = pattern_file(size), tx, rx;
	struct reader rd;
	struct zc_completion c;

	tcp_pair(&tx, &rx);
	small_sndbuf(tx);
	CHECK(fcntl(tx, F_SETFL, fcntl(tx, F_GETFL) | O_NONBLOCK) == 0);
	reader_start(&rd, rx, false, pattern);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 1), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(zc_wait(r, &c, 1, 1, 100), 0);
	reader_open(&rd);
	c = wait_rec(r, 20000);
	CHECK_EQ(c.res, size);
	CHECK_EQ(c.aux, size);
	check_idle(r);
	reader_finish(&rd, tx, size);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	close(file);
}

/*
 * Eight sockets at once on one ring; on the read path with only three
 * staging buffers, so transfers wait for each other's buffers.
 */
#define NCONC 8
#define CONC_SIZE vm_bytes(6 * MiB)	/* each: many times the 3 buffers */
static void t_concurrent(uint32_t flags)
{
	struct zc_sendfile_config cfg = { .buf_count = 3, .read_depth = 2,
					  .buf_size = 64 * 1024,
					  .pipe_size = 64 * 1024,
					  .idle_pipes = 2 };
	uint64_t size = CONC_SIZE;
	struct zc_ring *r = ring_new(0);
	int file = pattern_file(size), tx[NCONC], rx[NCONC];
	struct reader rd[NCONC];
	struct zc_sendfile_stats st;
	unsigned i, got = 0;

	CHECK_EQ(zc_sendfile_configure(r, &cfg), 0);
	for (i = 0; i < NCONC; i++) {
		tcp_pair(&tx[i], &rx[i]);
		reader_start(&rd[i], rx[i], true, pattern);
		rd[i].base = i * 1000;
		CHECK_EQ(zc_sendfile(r, tx[i], file, i * 1000, size - i * 3000,
				     flags, i), 0);
	}
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(zc_sendfile_configure(r, &cfg), -EBUSY);
	while (got < NCONC) {
		struct zc_completion c = wait_rec(r, 20000);

		CHECK_EQ(c.res, size - c.user_data * 3000);
		CHECK_EQ(c.aux, size - c.user_data * 3000);
		got++;
	}
	check_idle(r);
	CHECK_EQ(zc_sendfile_stats(r, &st), 0);
	CHECK(st.pipes_idle <= 2);
	if (flags & ZC_SENDFILE_READ)
		CHECK_EQ(st.bufs, 3);
	for (i = 0; i < NCONC; i++) {
		reader_finish(&rd[i], tx[i], size - i * 3000);
		close(tx[i]);
		close(rx[i]);
	}
	zc_ring_destroy(r);
	close(file);
}

/*
 * hugetlbfs files (memfd MFD_HUGETLB) refuse splice and O_DIRECT: the
 * default path falls back to reading, O_DIRECT to the page cache, both
 * visible in the record and the stats; splice-only fails with -EINVAL.
 * Unpopulated hugetlbfs pages read as zeros, which the reader checks.
 */
static uint8_t zero(uint64_t off)
{
	(void)off;
	return 0;
}

static void t_fallback(void)
{
	int file = memfd_create("zc-sendfile", MFD_HUGETLB | MFD_CLOEXEC);
	uint64_t size = 2 * MiB;
	struct zc_sendfile_stats st;
	struct zc_completion c;
	struct reader rd;
	struct zc_ring *r;
	int tx, rx;

	if (file < 0 || ftruncate(file, (off_t)size) < 0) {
		printf("fallback: skipped, no hugetlbfs memfd here (%s)\n",
		       strerror(errno));
		if (file >= 0)
			close(file);
		return;
	}
	r = ring_new(0);
	tcp_pair(&tx, &rx);
	reader_start(&rd, rx, true, zero);
	CHECK_EQ(zc_sendfile(r, tx, file, 5, size - 10, 0, 1), 0);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, ZC_SENDFILE_DIRECT, 2), 0);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, ZC_SENDFILE_SPLICE, 3), 0);
	CHECK(zc_submit(r) >= 0);
	c = wait_rec(r, 5000);
	CHECK_EQ(c.user_data, 1);
	CHECK_EQ(c.res, size - 10);
	CHECK_EQ(c.aux, size - 10);
	CHECK_EQ(c.aux2, ZC_SENDFILE_PATH_READ | ZC_SENDFILE_FELL_BACK_SPLICE);
	c = wait_rec(r, 5000);
	CHECK_EQ(c.user_data, 2);
	CHECK_EQ(c.res, size);
	CHECK_EQ(c.aux2, ZC_SENDFILE_PATH_READ | ZC_SENDFILE_FELL_BACK_DIRECT);
	c = wait_rec(r, 5000);
	CHECK_EQ(c.user_data, 3);
	CHECK_EQ(c.res, -EINVAL);
	CHECK_EQ(c.aux, 0);
	CHECK_EQ(zc_sendfile_stats(r, &st), 0);
	CHECK_EQ(st.splice_refused, 1);
	CHECK_EQ(st.direct_refused, 1);
	CHECK_EQ(st.bytes_read, 2 * size - 10);
	check_idle(r);
	reader_finish(&rd, tx, 2 * size - 10);
	printf("fallback: splice -> read and O_DIRECT -> page cache, counted\n");
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	close(file);
}

/* Ring destroyed under running transfers: bounded, nothing leaks. */
static void t_destroy(uint32_t flags)
{
	uint64_t size = 32 * MiB;
	struct zc_ring *r = ring_new(0);
	int file = pattern_file(size), tx, rx;
	struct zc_completion c;

	tcp_pair(&tx, &rx);
	small_sndbuf(tx);
	small_rcvbuf(rx);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 1), 0);
	CHECK_EQ(zc_sendfile(r, tx, file, 0, size, flags, 2), 0);
	CHECK(zc_submit(r) >= 0);
	CHECK_EQ(zc_wait(r, &c, 1, 1, 100), 0);
	zc_ring_destroy(r);
	close(tx);
	close(rx);
	close(file);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run a case; say which and how long when URING_ZC_VERBOSE is set. */
#define T(call) do {							\
	double t0 = now_s();						\
	call;								\
	if (getenv("URING_ZC_VERBOSE"))					\
		printf("  %-40s %.2f s\n", #call, now_s() - t0);	\
} while (0)

/*
 * In the VMs (URING_ZC_VM=1, KASAN under TCG) the failure cases run on the
 * three distinct paths through the kernel only: auto is splice here, and
 * read + send differs from read + SEND_ZC in the send alone, which the
 * order cases cover.  URING_ZC_FULL=1 runs every case on every path.
 */
static bool every_case(uint32_t flags)
{
	if (!in_vm() || full_run())
		return true;
	return flags == ZC_SENDFILE_SPLICE || flags == ZC_SENDFILE_READ ||
	       flags == ZC_SENDFILE_DIRECT;
}

int main(void)
{
	const uint64_t sizes[] = { 2 * MiB, CONC_SIZE, 8 * MiB, NONBLOCK_SIZE,
				   24 * MiB, 32 * MiB };
	int fds;
	unsigned i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	pattern_files_open(sizes, sizeof(sizes) / sizeof(sizes[0]));
	fds = count_fds();
	t_refused();
	for (i = 0; i < NPATHS; i++) {
		T(t_order(paths[i]));
		T(t_back_to_back(paths[i]));
		if (!every_case(paths[i]))
			continue;
		T(t_truncate(paths[i]));
		T(t_cancel(paths[i]));
		T(t_cancel_race(paths[i]));
		T(t_abort_close(paths[i]));
		T(t_peer_reset(paths[i]));
		T(t_nonblocking(paths[i]));
		T(t_concurrent(paths[i]));
		T(t_destroy(paths[i]));
		CHECK_EQ(count_fds(), fds);
	}
	T(t_fallback());
	T(t_sparse_4g());
	CHECK_EQ(count_fds(), fds);
	pattern_files_close();
	return 0;
}
