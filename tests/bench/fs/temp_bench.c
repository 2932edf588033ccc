/* tests/bench/fs/temp_bench.c - what data temperature costs the I/O path: nanoseconds per
 * pfs_temp_touch() (one 4 KiB access) on random extents of a 32 GiB volume, on one extent from
 * two threads at once (the contended worst case), and the tracker's RAM per GiB touched.
 * Prints `name: value` lines; asserts nothing.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pfs_vol_int.h"

#define N 4000000

static struct pfs *p;
static struct pfs_vol *v;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *same_extent(void *arg)
{
	(void)arg;
	for (int i = 0; i < N; i++)
		pfs_temp_touch(p, v, 4096, 4096);
	return NULL;
}

int main(void)
{
	char img[] = "/var/tmp/pstor-temp-bench-XXXXXX", msg[256];
	struct pfs_mkfs_params prm = {.size = 256ull << 20, .segment_size = 1u << 20};
	struct pfs_opts o = {.device = img, .dedupe = -1, .commit_interval_ms = -1};
	struct pfs_temp_stats st;
	uint64_t x = 88172645463325252ull, *offs;
	int fd = mkstemp(img);

	if (fd < 0)
		return 1;
	close(fd);
	unlink(img);
	if (pfs_mkfs(img, &prm, msg, sizeof(msg)) || pfs_open(&o, &p, msg, sizeof(msg)) ||
	    pfs_vol_create(p, "v", 32ull << 30, NULL)) {
		fprintf(stderr, "setup: %s\n", msg);
		pfs_close(p);
		unlink(img);
		return 1;
	}
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v");
	offs = malloc(N * sizeof(*offs));
	for (int i = 0; i < N; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		offs[i] = (x % (32ull << 18)) * 4096;
	}
	/* First pass allocates the leaves; the second is the steady state. */
	for (int pass = 0; pass < 2; pass++) {
		double t0 = now_s();
		for (int i = 0; i < N; i++)
			pfs_temp_touch(p, v, offs[i], 4096);
		printf("temp_touch_random_%s_ns: %.1f\n", pass ? "steady" : "first",
		       (now_s() - t0) * 1e9 / N);
	}
	pfs_temp_get_stats(p, &st);
	printf("temp_ram_bytes_32gib_touched: %llu\n", (unsigned long long)st.ram_bytes);
	printf("temp_ram_bytes_per_gib: %.0f\n", st.ram_bytes / 32.0);
	pthread_t a, b;
	double t0 = now_s();
	pthread_create(&a, NULL, same_extent, NULL);
	pthread_create(&b, NULL, same_extent, NULL);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	printf("temp_touch_same_extent_2_threads_ns: %.1f\n", (now_s() - t0) * 1e9 / N);
	double t1 = now_s();
	int rc = pfs_temp_tick(p);
	printf("temp_tick_32gib_seconds: %.3f (rc %d)\n", now_s() - t1, rc);
	free(offs);
	pfs_vol_unref(v);
	pfs_close(p);
	unlink(img);
	return 0;
}
