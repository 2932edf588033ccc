/* tests/flash/test_ftl_placement.c - hot/cold separation follows its own grade: uniform
 * overwrites (where a chunk's past lifetimes say nothing of its next) turn it off and close the
 * hot streams' segments; 80/20 overwrites keep it on and fill the hot stream.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"

#define NKEYS 6000u

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Writes every key once, then ROUNDS x NKEYS overwrites: HOT_SHARE of them to the first fifth
 * of the keys (0 = uniform). The FTL's stats half way in MID and at the end in ST. */
static void run(double hot_share, unsigned rounds, struct ftl_stats *mid, struct ftl_stats *st)
{
	struct ftl_dev *dev = NULL;
	struct ftl *ftl = NULL;
	static struct ftl_addr a[NKEYS];
	uint8_t buf[4096], h[FTL_HASH_LEN] = {0};

	memset(buf, 0x5a, sizeof(buf));
	cr_assert_eq(ftl_dev_open_mem(40u << 20, 4096, &dev), 0);
	struct ftl_format_params fp = {.segment_size = 256u << 10};
	cr_assert_eq(ftl_format(dev, &fp), 0);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	for (uint32_t k = 0; k < NKEYS; k++)
		cr_assert_eq(ftl_write(ftl, buf, sizeof(buf), h, NULL, &a[k]), 0);
	for (uint64_t i = 0; i < (uint64_t)rounds * NKEYS; i++) {
		if (i == (uint64_t)rounds / 2 * NKEYS)
			ftl_get_stats(ftl, mid);
		uint64_t r = next_rand();
		bool hot = (double)(r % 1000) < hot_share * 1000;
		uint32_t k =
		    hot ? (uint32_t)((r >> 20) % (NKEYS / 5)) : (uint32_t)((r >> 20) % NKEYS);
		struct ftl_addr na;
		struct ftl_write_opts o = {.prev = a[k]};
		cr_assert_eq(ftl_write(ftl, buf, sizeof(buf), h, &o, &na), 0);
		cr_assert_eq(ftl_free(ftl, a[k]), 0);
		a[k] = na;
	}
	ftl_get_stats(ftl, st);
	ftl_close(ftl);
	ftl_dev_close(dev);
}

Test(ftl_placement, uniform_overwrites_turn_separation_off, .timeout = 120)
{
	struct ftl_stats mid, st;
	run(0, 12, &mid, &st);
	cr_expect_not(st.hot_cold_separation, "died young: hot %.3f, cold %.3f",
	              st.young_predicted_hot, st.young_predicted_cold);
	cr_expect_lt(st.young_predicted_hot - st.young_predicted_cold, 0.08);
	/* Off for good: the second half put nothing in the hot streams. */
	cr_expect_eq(st.stream_chunks[0], mid.stream_chunks[0]);
	cr_expect_eq(st.stream_chunks[2], mid.stream_chunks[2]);
}

Test(ftl_placement, skewed_overwrites_keep_separation_on, .timeout = 120)
{
	struct ftl_stats mid, st;
	run(0.8, 12, &mid, &st);
	cr_expect(st.hot_cold_separation, "died young: hot %.3f, cold %.3f", st.young_predicted_hot,
	          st.young_predicted_cold);
	cr_expect_gt(st.young_predicted_hot - st.young_predicted_cold, 0.3);
	double hot = (double)(st.stream_chunks[0] - mid.stream_chunks[0]) / (6.0 * NKEYS);
	cr_expect_gt(hot, 0.5, "user-hot share of the second half %.3f", hot);
}
