// SPDX-License-Identifier: MIT
/*
 * Sends longer than 2 GiB (more than the kernel takes per call, and than
 * an int32 res holds): every byte arrives once and in order, the send
 * queued behind one arrives after it, and the record says so: res is
 * INT32_MAX (saturated) and aux the exact length.  Copy, zero-copy and
 * vectored, one after another on one stream.
 *
 * Needs about 2.1 GiB of memory for the buffer: skipped (77) below
 * 3 GiB available, with the reason.
 */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#include "helpers.h"

/* Just over 2^31, and not a multiple of anything. */
#define LEN ((1ull << 31) + (1u << 20) + 77)
#define TAIL 1000

static uint8_t *mem;

struct reader {
	int fd;
	uint64_t want;		/* bytes expected in total */
	uint64_t got;
	uint64_t bad_at;	/* first mismatch + 1 */
};

/* Byte i of the expected stream: the buffer three times, then a tail. */
static uint8_t expected(uint64_t i)
{
	if (i < 3 * LEN)
		return mem[i % LEN];
	return (uint8_t)(i - 3 * LEN);
}

static void *reader_main(void *arg)
{
	struct reader *rd = arg;
	static __thread uint8_t buf[1 << 20];
	ssize_t n;

	while ((n = read(rd->fd, buf, sizeof(buf))) > 0) {
		uint64_t at = rd->got;

		/* compare with memcmp where the stream is the buffer */
		if (!rd->bad_at && at / LEN == (at + n - 1) / LEN &&
		    at + n <= 3 * LEN) {
			if (memcmp(buf, mem + at % LEN, (size_t)n))
				for (ssize_t k = 0; k < n; k++)
					if (buf[k] != mem[(at + k) % LEN]) {
						rd->bad_at = at + k + 1;
						break;
					}
		} else if (!rd->bad_at) {
			for (ssize_t k = 0; k < n; k++)
				if (buf[k] != expected(at + k)) {
					rd->bad_at = at + k + 1;
					break;
				}
		}
		__atomic_store_n(&rd->got, at + (uint64_t)n, __ATOMIC_RELAXED);
	}
	return NULL;
}

static uint64_t mem_available_kb(void)
{
	FILE *f = fopen("/proc/meminfo", "r");
	char line[256];
	unsigned long long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %llu kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int main(void)
{
	static uint8_t tail[TAIL];
	struct zc_completion cs[8];
	struct reader rd = { 0 };
	struct iovec iov[3];
	pthread_t th;
	struct zc_ring *r;
	int tx, rx, got = 0, n, i;
	uint64_t k;

	/* Under TCG moving ~6 GiB over loopback takes many minutes: the VM
	 * suites run it only in `make test-full`. */
	if (in_vm() && !full_run())
		skip("moves ~6 GiB; in the VMs (TCG) only with URING_ZC_FULL=1 (make test-full)");
	if (mem_available_kb() < (3ull << 20))
		skip("needs 3 GiB of available memory for a 2 GiB + 1 MiB send buffer");
	signal(SIGPIPE, SIG_IGN);
	mem = mmap(NULL, LEN, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(mem != MAP_FAILED);
	/* a pattern that is cheap to write and never repeats in 2^31 */
	for (k = 0; k < LEN / 8; k++)
		((uint64_t *)mem)[k] = k * 0x9e3779b97f4a7c15ull;
	for (k = LEN / 8 * 8; k < LEN; k++)
		mem[k] = (uint8_t)k;
	for (i = 0; i < TAIL; i++)
		tail[i] = (uint8_t)i;

	r = ring_new(0);
	tcp_pair(&tx, &rx);
	rd.fd = rx;
	rd.want = 3 * LEN + TAIL;
	CHECK(pthread_create(&th, NULL, reader_main, &rd) == 0);

	CHECK_EQ(zc_send(r, tx, mem, LEN, 0, 1), 0);
	CHECK_EQ(zc_send(r, tx, mem, LEN, ZC_SEND_ZEROCOPY, 2), 0);
	iov[0] = (struct iovec){ mem, 1u << 30 };
	iov[1] = (struct iovec){ mem + (1u << 30), 1u << 30 };
	iov[2] = (struct iovec){ mem + (2ull << 30), LEN - (2ull << 30) };
	CHECK_EQ(zc_sendmsg(r, tx, iov, 3, NULL, 0, ZC_SEND_ZEROCOPY, 3), 0);
	CHECK_EQ(zc_send(r, tx, tail, TAIL, 0, 4), 0);
	CHECK(zc_submit(r) >= 0);
	while (got < 4) {
		uint64_t seen = __atomic_load_n(&rd.got, __ATOMIC_RELAXED);

		n = zc_wait(r, cs, 8, 1, 60000);
		/* A 2 GiB send on a loaded machine (ASan, two TCG guests beside
		 * it) can take minutes: fail only after a whole minute in which
		 * the reader got nothing either. */
		if (n <= 0 && __atomic_load_n(&rd.got, __ATOMIC_RELAXED) != seen)
			continue;
		CHECK(n > 0);
		for (i = 0; i < n; i++) {
			uint64_t want = cs[i].user_data == 4 ? TAIL : LEN;

			if (cs[i].aux != want ||
			    cs[i].res != (want > INT32_MAX ? INT32_MAX :
					  (int32_t)want)) {
				fprintf(stderr, "send %llu: res %d aux %llu, "
					"expected aux %llu\n",
					(unsigned long long)cs[i].user_data,
					cs[i].res,
					(unsigned long long)cs[i].aux,
					(unsigned long long)want);
				exit(1);
			}
		}
		got += n;
	}
	shutdown(tx, SHUT_WR);
	pthread_join(th, NULL);
	CHECK_EQ(rd.bad_at, 0);
	CHECK_EQ(rd.got, rd.want);
	close(tx);
	close(rx);
	zc_ring_destroy(r);
	munmap(mem, LEN);
	return 0;
}
