/* tests/bench/bench_ftl_sim.c - the peer for the FTL figures: an idealised log-structured store
 * (one log, greedy victim choice, no headers or summaries, one spare segment) run on the same
 * geometry and the same write sequence, so the real FTL's WAF can be read against it.
 */
#include <stdint.h>
#include <stdlib.h>

#include "bench.h"

struct sim {
	uint32_t nsegs, per_seg;
	uint32_t *live;  /* live blocks per segment */
	uint32_t *owner; /* slot -> key + 1 (0 = dead) */
	uint64_t *where; /* key -> slot */
	uint32_t *free_list, nfree;
	uint32_t cur, fill;
	uint64_t dev;
};

static void sim_append(struct sim *s, uint64_t key)
{
	if (s->fill == s->per_seg) {
		s->cur = s->free_list[--s->nfree];
		s->fill = 0;
	}
	uint64_t slot = (uint64_t)s->cur * s->per_seg + s->fill++;
	s->owner[slot] = (uint32_t)key + 1;
	s->where[key] = slot;
	s->live[s->cur]++;
	s->dev++;
}

static void sim_gc(struct sim *s)
{
	while (s->nfree < 2) {
		uint32_t v = UINT32_MAX;
		for (uint32_t i = 0; i < s->nsegs; i++) {
			int is_free = 0;
			for (uint32_t k = 0; k < s->nfree; k++)
				is_free |= s->free_list[k] == i;
			if (i == s->cur || is_free)
				continue;
			if (v == UINT32_MAX || s->live[i] < s->live[v])
				v = i;
		}
		for (uint32_t b = 0; b < s->per_seg; b++) {
			uint64_t slot = (uint64_t)v * s->per_seg + b;
			if (s->owner[slot]) {
				uint64_t key = s->owner[slot] - 1;
				s->owner[slot] = 0;
				s->live[v]--;
				sim_append(s, key);
			}
		}
		s->free_list[s->nfree++] = v;
	}
}

double bench_sim_waf(uint32_t nsegs, uint32_t per_seg, double hot_data, double hot_writes)
{
	struct sim s = {.nsegs = nsegs, .per_seg = per_seg};
	uint64_t nslots = (uint64_t)nsegs * per_seg;
	uint64_t nkeys = nslots * 8 / 10, nhot = (uint64_t)(nkeys * hot_data);
	uint64_t rs = 0xfeedfacecafebeefull, thresh = (uint64_t)(hot_writes * 1e6);
	s.live = calloc(nsegs, sizeof(*s.live));
	s.owner = calloc(nslots, sizeof(*s.owner));
	s.where = calloc(nkeys, sizeof(*s.where));
	s.free_list = calloc(nsegs, sizeof(*s.free_list));
	for (uint32_t i = nsegs; i-- > 1;)
		s.free_list[s.nfree++] = i;
	s.cur = 0;
	for (uint64_t k = 0; k < nkeys; k++) {
		sim_gc(&s);
		sim_append(&s, k);
	}
	uint64_t dev0 = s.dev, writes = nslots * 10;
	for (uint64_t i = 0; i < writes; i++) {
		uint64_t k = bench_pick_key(&rs, nkeys, nhot, thresh);
		uint64_t slot = s.where[k];
		s.owner[slot] = 0;
		s.live[slot / per_seg]--;
		sim_gc(&s);
		sim_append(&s, k);
	}
	double waf = (double)(s.dev - dev0) / (double)writes;
	free(s.live);
	free(s.owner);
	free(s.where);
	free(s.free_list);
	return waf;
}
