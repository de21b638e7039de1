// SPDX-License-Identifier: MIT
/* zc_probe() fills what it can see and agrees with a ring. */
#include "helpers.h"

#include <sys/resource.h>
#include <sys/utsname.h>

int main(void)
{
	struct zc_probe p;
	struct utsname u;
	struct rlimit rl;

	CHECK_EQ(zc_probe(&p), 0);
	CHECK(uname(&u) == 0);
	CHECK(strcmp(p.kernel_release, u.release) == 0);
	CHECK(getrlimit(RLIMIT_MEMLOCK, &rl) == 0);
	CHECK(p.memlock_cur == (rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX :
				rl.rlim_cur));
	CHECK(p.liburing_major >= 2);
	CHECK_EQ(p.page_size, sysconf(_SC_PAGESIZE));
	if (!(p.caps & ZC_CAP_IO_URING)) {
		CHECK(p.setup_errno != 0);
		skip("io_uring unavailable; probe reported it");
	}
	CHECK(p.features != 0);
	CHECK(p.last_op > 0);
	/* Every kernel this library supports (>= 6.0) has these. */
	CHECK(p.caps & ZC_CAP_SEND_ZC);
	CHECK(p.caps & ZC_CAP_SENDMSG_ZC);
	printf("probe: kernel %s caps %#x features %#x\n", p.kernel_release,
	       p.caps, p.features);
	CHECK(strcmp(zc_version(), "") != 0);
	return 0;
}
