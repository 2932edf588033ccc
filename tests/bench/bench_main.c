/* tests/bench/bench_main.c - pstor-bench: runs the engine and FTL benchmarks, no arguments.
 *
 * `pstor-bench engine` or `pstor-bench ftl` runs one part. Prints figures, never judges them.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bench.h"

double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t bench_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

uint64_t bench_pick_key(uint64_t *s, uint64_t nkeys, uint64_t nhot, uint64_t thresh)
{
	uint64_t r = bench_rand(s);
	if (!nhot)
		return (r >> 20) % nkeys;
	if (r % 1000000 < thresh)
		return (r >> 20) % nhot;
	return nhot + (r >> 20) % (nkeys - nhot);
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "all";
	int rc = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(what, "all") || !strcmp(what, "engine"))
		rc |= bench_engine();
	if (!strcmp(what, "all") || !strcmp(what, "ftl"))
		rc |= bench_ftl();
	return rc ? 1 : 0;
}
