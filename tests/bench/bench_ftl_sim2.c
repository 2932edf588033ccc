/* tests/bench/bench_ftl_sim2.c - the two-group oracle peer for the 80/20 figure: the one-log
 * greedy store of bench_ftl_sim.c split in two logs, each key written to the log of its true
 * heat (the oracle), the space between the two set by which log GC cleans: the hot one while
 * its segments are more than HOT_SHARE of those in use, else the cold one, greedy in each.
 * What perfect separation with a given split gives on the FTL's geometry and writes.
 */
#include <stdint.h>
#include <stdlib.h>

#include "bench.h"

#define SIM2_NONE UINT32_MAX

struct sim2 {
	uint32_t per_seg, nsegs, idle;
	uint32_t *live;  /* live blocks per segment */
	uint8_t *group;  /* per segment: 0 cold, 1 hot, 2 free, 3 open */
	uint32_t *owner; /* slot -> key + 1 (0 = dead) */
	uint64_t *where; /* key -> slot */
	uint32_t *free_list, nfree;
	uint32_t cur[2], fill[2], nseg[2];
	uint64_t nhot, dev;
	double hot_share;
};

static void sim2_append(struct sim2 *s, uint64_t key);

/* Greedy in the group the split says (the other when it has no victim that gains). */
static void sim2_gc(struct sim2 *s)
{
	while (s->nfree < s->idle + 1) {
		int want = (double)s->nseg[1] > s->hot_share * (s->nseg[0] + s->nseg[1]) ? 1 : 0;
		uint32_t best[2] = {SIM2_NONE, SIM2_NONE};
		for (uint32_t i = 0; i < s->nsegs; i++) {
			uint8_t g = s->group[i];
			if (g > 1 || s->live[i] >= s->per_seg)
				continue;
			if (best[g] == SIM2_NONE || s->live[i] < s->live[best[g]])
				best[g] = i;
		}
		uint32_t v = best[want] != SIM2_NONE ? best[want] : best[!want];
		if (v == SIM2_NONE)
			return;
		s->nseg[s->group[v]]--;
		s->group[v] = 3; /* neither group while its survivors move */
		for (uint32_t b = 0; b < s->per_seg; b++) {
			uint64_t slot = (uint64_t)v * s->per_seg + b;
			if (s->owner[slot]) {
				uint64_t key = s->owner[slot] - 1;
				s->owner[slot] = 0;
				s->live[v]--;
				sim2_append(s, key);
			}
		}
		s->group[v] = 2;
		s->free_list[s->nfree++] = v;
	}
}

static void sim2_append(struct sim2 *s, uint64_t key)
{
	int g = key < s->nhot ? 1 : 0;
	if (s->fill[g] == s->per_seg) {
		s->group[s->cur[g]] = (uint8_t)g; /* closed: now a victim of its group */
		s->cur[g] = s->free_list[--s->nfree];
		s->group[s->cur[g]] = 3;
		s->nseg[g]++;
		s->fill[g] = 0;
	}
	uint64_t slot = (uint64_t)s->cur[g] * s->per_seg + s->fill[g]++;
	s->owner[slot] = (uint32_t)key + 1;
	s->where[key] = slot;
	s->live[s->cur[g]]++;
	s->dev++;
}

double bench_sim2_waf(uint32_t nsegs, uint32_t per_seg, uint32_t idle, uint64_t nkeys,
                      uint64_t writes, double hot_data, double hot_writes, double hot_share)
{
	struct sim2 s = {.nsegs = nsegs, .per_seg = per_seg, .idle = idle, .hot_share = hot_share};
	uint64_t nslots = (uint64_t)nsegs * per_seg;
	uint64_t rs = 0xfeedfacecafebeefull, thresh = (uint64_t)(hot_writes * 1e6);
	double waf = -1;
	s.nhot = (uint64_t)(nkeys * hot_data);
	s.live = calloc(nsegs, sizeof(*s.live));
	s.group = malloc(nsegs);
	s.owner = calloc(nslots, sizeof(*s.owner));
	s.where = calloc(nkeys, sizeof(*s.where));
	s.free_list = calloc(nsegs, sizeof(*s.free_list));
	if (!s.live || !s.group || !s.owner || !s.where || !s.free_list || idle < 1 ||
	    nkeys + (3ull + idle) * per_seg >= nslots)
		goto out_free;
	for (uint32_t i = nsegs; i-- > 2;) {
		s.group[i] = 2;
		s.free_list[s.nfree++] = i;
	}
	/* One open segment a group; each counts in its group once closed. */
	s.cur[0] = 0;
	s.cur[1] = 1;
	s.group[0] = s.group[1] = 3;
	for (uint64_t k = 0; k < nkeys; k++) {
		sim2_gc(&s);
		sim2_append(&s, k);
	}
	uint64_t dev0 = s.dev;
	for (uint64_t i = 0; i < writes; i++) {
		uint64_t k = bench_pick_key(&rs, nkeys, s.nhot, thresh);
		uint64_t slot = s.where[k];
		s.owner[slot] = 0;
		s.live[slot / per_seg]--;
		sim2_gc(&s);
		sim2_append(&s, k);
	}
	waf = (double)(s.dev - dev0) / (double)writes;
out_free:
	free(s.live);
	free(s.group);
	free(s.owner);
	free(s.where);
	free(s.free_list);
	return waf;
}
