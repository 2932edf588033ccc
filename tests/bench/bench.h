/* tests/bench/bench.h - shared declarations of the pstor-bench program.
 *
 * The benchmark prints `name: value` lines; it asserts nothing (goals are checked by reading).
 */
#ifndef PSTOR_BENCH_H
#define PSTOR_BENCH_H

#include <stdint.h>

double bench_now(void);
uint64_t bench_rand(uint64_t *state);
/* A key for the next overwrite: with probability THRESH/1e6 one of the first NHOT keys, else
 * one of the others (NHOT = 0: uniform over all NKEYS). */
uint64_t bench_pick_key(uint64_t *state, uint64_t nkeys, uint64_t nhot, uint64_t thresh);
int bench_engine(void);
int bench_ftl(void);
/* WAF of the one-log greedy peer: NSEGS segments of PER_SEG blocks, NKEYS keys written once,
 * then WRITES overwrites picked as bench_pick_key does (the FTL runs' sequence). IDLE free
 * segments are kept aside beside the one being written (1: the ideal; an FTL's GC reserve to
 * compare like with like). -1: no memory, or too little room. INFO (may be NULL) gets how
 * many victims GC cleaned and how many live blocks they held, for their mean utilization. */
struct bench_sim_info {
	uint64_t victims, moved; /* over the overwrites: segments cleaned, blocks they held */
};
double bench_sim_waf(uint32_t nsegs, uint32_t per_seg, uint32_t idle, uint64_t nkeys,
                     uint64_t writes, double hot_data, double hot_writes,
                     struct bench_sim_info *info);
/* The same writes on two greedy logs, each key in the log of its true heat (the first
 * HOT_DATA of the keys are hot), GC cleaning the hot log while it holds more than HOT_SHARE of
 * the segments in use (bench_ftl_sim2.c). -1: no memory, or too little room. */
double bench_sim2_waf(uint32_t nsegs, uint32_t per_seg, uint32_t idle, uint64_t nkeys,
                      uint64_t writes, double hot_data, double hot_writes, double hot_share);

#endif
