/* tests/bench/bench_ftl_sim.c - the peer for the FTL figures: an idealised log-structured store
 * (one log, greedy victim choice, no headers or summaries, one spare segment, or as many as
 * the caller says) run on the same
 * geometry and the same write sequence, so the real FTL's WAF can be read against it.
 *
 * Closed segments sit in buckets by live count, so the greedy choice costs O(1) amortised
 * instead of a scan of every segment: the peer must keep up with thousands of segments.
 */
#include <stdint.h>
#include <stdlib.h>

#include "bench.h"

#define SIM_NONE UINT32_MAX

struct sim {
	uint32_t nsegs, per_seg;
	uint32_t *live;        /* live blocks per segment */
	uint32_t *owner;       /* slot -> key + 1 (0 = dead) */
	uint64_t *where;       /* key -> slot */
	uint32_t *next, *prev; /* closed segments: doubly linked lists, one per live count */
	uint32_t *bucket;      /* live count -> first closed segment with it */
	uint8_t *closed;
	uint32_t min_bucket; /* no closed segment has fewer live blocks */
	uint32_t *free_list, nfree;
	uint32_t cur, fill;
	uint32_t idle; /* free segments GC keeps beside the one being written */
	uint64_t dev;
	uint64_t victims, moved;
};

static void bucket_del(struct sim *s, uint32_t seg)
{
	uint32_t n = s->next[seg], p = s->prev[seg];
	if (p != SIM_NONE)
		s->next[p] = n;
	else
		s->bucket[s->live[seg]] = n;
	if (n != SIM_NONE)
		s->prev[n] = p;
}

static void bucket_add(struct sim *s, uint32_t seg)
{
	uint32_t b = s->live[seg];
	s->prev[seg] = SIM_NONE;
	s->next[seg] = s->bucket[b];
	if (s->bucket[b] != SIM_NONE)
		s->prev[s->bucket[b]] = seg;
	s->bucket[b] = seg;
	if (b < s->min_bucket)
		s->min_bucket = b;
}

/* A block of SEG died. */
static void sim_kill(struct sim *s, uint32_t seg)
{
	if (s->closed[seg])
		bucket_del(s, seg);
	s->live[seg]--;
	if (s->closed[seg])
		bucket_add(s, seg);
}

static void sim_append(struct sim *s, uint64_t key)
{
	if (s->fill == s->per_seg) {
		s->closed[s->cur] = 1;
		bucket_add(s, s->cur);
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
	while (s->nfree < s->idle + 1) {
		while (s->bucket[s->min_bucket] == SIM_NONE)
			s->min_bucket++;
		uint32_t v = s->bucket[s->min_bucket];
		bucket_del(s, v);
		s->closed[v] = 0;
		s->victims++;
		s->moved += s->live[v];
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

double bench_sim_waf(uint32_t nsegs, uint32_t per_seg, uint32_t idle, uint64_t nkeys,
                     uint64_t writes, double hot_data, double hot_writes,
                     struct bench_sim_info *info)
{
	struct sim s = {.nsegs = nsegs, .per_seg = per_seg, .min_bucket = per_seg, .idle = idle};
	uint64_t nslots = (uint64_t)nsegs * per_seg;
	uint64_t nhot = (uint64_t)(nkeys * hot_data);
	uint64_t rs = 0xfeedfacecafebeefull, thresh = (uint64_t)(hot_writes * 1e6);
	double waf = -1;
	s.live = calloc(nsegs, sizeof(*s.live));
	s.owner = calloc(nslots, sizeof(*s.owner));
	s.where = calloc(nkeys, sizeof(*s.where));
	s.next = calloc(nsegs, sizeof(*s.next));
	s.prev = calloc(nsegs, sizeof(*s.prev));
	s.closed = calloc(nsegs, sizeof(*s.closed));
	s.bucket = malloc(((size_t)per_seg + 1) * sizeof(*s.bucket));
	s.free_list = calloc(nsegs, sizeof(*s.free_list));
	/* Keys must leave the idle segments and two more segments' worth of room, or greedy finds
	 * no victim that gains. */
	if (!s.live || !s.owner || !s.where || !s.next || !s.prev || !s.closed || !s.bucket ||
	    !s.free_list || idle < 1 || nkeys + (2ull + idle) * per_seg >= nslots)
		goto out_free;
	for (uint32_t b = 0; b <= per_seg; b++)
		s.bucket[b] = SIM_NONE;
	for (uint32_t i = nsegs; i-- > 1;)
		s.free_list[s.nfree++] = i;
	s.cur = 0;
	for (uint64_t k = 0; k < nkeys; k++) {
		sim_gc(&s);
		sim_append(&s, k);
	}
	uint64_t dev0 = s.dev, victims0 = s.victims, moved0 = s.moved;
	for (uint64_t i = 0; i < writes; i++) {
		uint64_t k = bench_pick_key(&rs, nkeys, nhot, thresh);
		uint64_t slot = s.where[k];
		s.owner[slot] = 0;
		sim_kill(&s, (uint32_t)(slot / per_seg));
		sim_gc(&s);
		sim_append(&s, k);
	}
	waf = (double)(s.dev - dev0) / (double)writes;
	if (info) {
		info->victims = s.victims - victims0;
		info->moved = s.moved - moved0;
	}
out_free:
	free(s.live);
	free(s.owner);
	free(s.where);
	free(s.next);
	free(s.prev);
	free(s.closed);
	free(s.bucket);
	free(s.free_list);
	return waf;
}
