/* tests/bench/bench_ftl.c - FTL write amplification and wear under synthetic overwrite loads.
 *
 * Two geometries: the historical one (a 1 GiB namespace of 4 MiB segments: 254 segments) and a
 * realistic segment count (4,096 segments, as a 32 GiB namespace of 8 MiB segments has, here of
 * 1 MiB segments: the same 1 MiB packs, 8x less memory and time). Each is filled to 80% live
 * data with 4 KiB chunks, then overwritten at random for 10x its capacity: uniformly, and with
 * 80% of writes going to 20% of the data. Each overwrite names the chunk it replaces (as the
 * engine does) and frees it. WAF = device bytes / host bytes over the overwrite phase, headers
 * included, printed next to the one-log greedy peer (bench_ftl_sim.c) on the same geometry
 * (ideal, at the format's capacity, and with the FTL's GC reserve idle too), and the 80/20 run
 * next to the two-group oracle (bench_ftl_sim2.c: perfect separation, best split swept).
 *
 * The device keeps only the head of every write (ftl_dev_open_mem_sparse): segment and pack
 * headers, which is all the FTL reads back here (GC copies payload without looking at it), so
 * the run costs what the FTL costs, not what copying a namespace of payload costs.
 *
 * Environment: PSTOR_BENCH_FTL_MB / PSTOR_BENCH_SEG_KB and PSTOR_BENCH_FTL_BIG_MB /
 * PSTOR_BENCH_BIG_SEG_KB change the two geometries (PSTOR_BENCH_FTL_BIG_MB=33000 with
 * PSTOR_BENCH_BIG_SEG_KB=8192: 4,108 segments of 8 MiB, ~8x longer); PSTOR_BENCH_FTL_ONLY=""
 * or "seg4096." runs one geometry, PSTOR_BENCH_FTL_RUN=uniform80 or hotcold8020 one workload,
 * PSTOR_BENCH_FTL_GC_THREAD=1 runs the background GC too (as the fs does; timing-dependent).
 * Besides WAF each run prints where the capacity went at steady state (free and open segments,
 * the victims' utilization next to the peers', how many victims were picked greedy, chunks a
 * pack): flash/README.md "Write amplification".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ftl.h"

/* A pack header takes at most 8 blocks (FTL_PACK_HDR_MAX) and a pack is written header first:
 * keeping 32 KiB of each write keeps every header the FTL reads back. */
#define BENCH_DEV_KEEP (32u << 10)

struct waf_geom {
	const char *prefix; /* of the printed names */
	uint64_t size_mb, seg_kb;
	const char *env_mb, *env_seg_kb; /* overrides */
};

struct waf_result {
	double waf;
	double peer_waf; /* idealised one-log greedy store, same geometry and writes */
	/* The same with as many blocks a segment as the FTL fits chunks in one (its format's
	 * headers and summaries taken out of the capacity, not counted as writes). */
	double peer_fmt_waf;
	/* ...and keeping as many segments idle as the FTL's GC reserve (2 + segments/256,
	 * flash/README.md "Watermarks"): what a one-log greedy store could do with the same room.
	 */
	double peer_fmt_reserve_waf;
	uint32_t reserve;
	/* Skewed runs: the two-group oracle peer at format capacity with the reserve idle, at the
	 * best hot share of the segments found by a sweep. */
	double peer_oracle2_waf, peer_oracle2_share;
	uint32_t fmt_per_seg;
	double gc_moved_per_host, format_overhead;
	double stream_share[4]; /* chunks per user write appended to each stream */
	double wear_max_over_mean;
	double mem_per_chunk; /* L2P and segment table bytes per live chunk */
	double peer_secs;
	/* Where the capacity goes at steady state (means of samples over the second half of the
	 * overwrites): free segments (the GC reserve among them), open ones; and what GC did. */
	double mean_free, mean_open;
	double victim_u, peer_fmt_victim_u, peer_fmt_reserve_victim_u; /* live share of victims */
	double greedy_share;  /* of the victims picked by dead space rather than cost-benefit */
	double chunks_a_pack; /* chunks (user and GC) per pack written */
	struct ftl_stats st;
};

static uint64_t env_u64(const char *name, uint64_t def)
{
	const char *v = name ? getenv(name) : NULL;
	return v ? strtoull(v, NULL, 0) : def;
}

static int waf_run(const struct waf_geom *g, double hot_data, double hot_writes,
                   struct waf_result *res)
{
	struct ftl_dev *dev = NULL;
	struct ftl *ftl = NULL;
	struct ftl_addr *a = NULL;
	uint8_t buf[4096], h[FTL_HASH_LEN] = {0};
	uint64_t rs = 0xfeedfacecafebeefull;
	uint64_t size = env_u64(g->env_mb, g->size_mb) << 20;
	uint64_t seg_kb = env_u64(g->env_seg_kb, g->seg_kb);
	int rc;

	memset(buf, 0x3c, sizeof(buf));
	rc = ftl_dev_open_mem_sparse(size, 4096, BENCH_DEV_KEEP, &dev);
	if (rc)
		goto out;
	struct ftl_format_params fp = {.segment_size = seg_kb << 10};
	rc = ftl_format(dev, &fp);
	if (rc)
		goto out;
	/* The fs runs GC in a background thread too (PSTOR_BENCH_FTL_GC_THREAD=1: the figures
	 * then depend on timing; without it GC runs only when a writer finds no free segment). */
	rc = ftl_open(
	    &(struct ftl_config){.dev = dev, .gc_thread = env_u64("PSTOR_BENCH_FTL_GC_THREAD", 0)},
	    &ftl);
	if (rc)
		goto out;
	struct ftl_stats st0, st1;
	ftl_get_stats(ftl, &st0);
	uint64_t nkeys = st0.capacity_bytes * 8 / 10 / sizeof(buf);
	uint64_t nhot = (uint64_t)(nkeys * hot_data);
	a = calloc(nkeys, sizeof(*a));
	if (!a) {
		rc = 1;
		goto out;
	}
	for (uint64_t k = 0; k < nkeys; k++) {
		rc = ftl_write(ftl, buf, sizeof(buf), h, NULL, &a[k]);
		if (rc)
			goto out;
	}
	ftl_get_stats(ftl, &st0);
	/* The fill went to one stream: every closed segment is full. */
	res->fmt_per_seg = st0.segments_closed ? (uint32_t)(nkeys / st0.segments_closed) : 0;
	uint64_t writes = st0.capacity_bytes * 10 / sizeof(buf);
	uint64_t thresh = (uint64_t)(hot_writes * 1e6);
	uint64_t sample_every = writes / 2000 ? writes / 2000 : 1, nsamples = 0;
	double sum_free = 0, sum_open = 0;
	for (uint64_t i = 0; i < writes; i++) {
		if (i >= writes / 2 && i % sample_every == 0) {
			struct ftl_stats sm;
			ftl_get_stats(ftl, &sm);
			sum_free += sm.segments_free;
			sum_open += sm.segments_open;
			nsamples++;
		}
		uint64_t k = bench_pick_key(&rs, nkeys, nhot, thresh);
		struct ftl_write_opts o = {.prev = a[k]};
		struct ftl_addr na;
		rc = ftl_write(ftl, buf, sizeof(buf), h, &o, &na);
		if (rc)
			goto out;
		rc = ftl_free(ftl, a[k]);
		if (rc)
			goto out;
		a[k] = na;
	}
	ftl_get_stats(ftl, &st1);
	res->mean_free = nsamples ? sum_free / (double)nsamples : 0;
	res->mean_open = nsamples ? sum_open / (double)nsamples : 0;
	uint64_t victims = st1.gc_runs - st0.gc_runs;
	res->victim_u = victims ? (double)(st1.gc_bytes_moved - st0.gc_bytes_moved) / sizeof(buf) /
	                              (double)victims / res->fmt_per_seg
	                        : 0;
	res->greedy_share =
	    victims ? (double)(st1.gc_greedy_picks - st0.gc_greedy_picks) / (double)victims : 0;
	uint64_t packs = st1.packs_written - st0.packs_written;
	res->chunks_a_pack =
	    packs ? (double)(writes + (st1.gc_bytes_moved - st0.gc_bytes_moved) / sizeof(buf)) /
	                (double)packs
	          : 0;
	res->waf = (double)(st1.device_bytes_written - st0.device_bytes_written) /
	           (double)(st1.host_bytes_written - st0.host_bytes_written);
	res->gc_moved_per_host = (double)(st1.gc_bytes_moved - st0.gc_bytes_moved) /
	                         (double)(st1.host_bytes_written - st0.host_bytes_written);
	/* Device bytes per byte of chunk payload written (user or GC): the on-flash format's
	 * own cost (chunk headers, summaries, segment headers, padding). */
	res->format_overhead = (double)(st1.device_bytes_written - st0.device_bytes_written) /
	                       (double)(st1.host_bytes_written - st0.host_bytes_written +
	                                st1.gc_bytes_moved - st0.gc_bytes_moved);
	for (int i = 0; i < 4; i++)
		res->stream_share[i] =
		    (double)(st1.stream_chunks[i] - st0.stream_chunks[i]) / (double)(writes);
	res->mem_per_chunk = (double)(st1.mem_l2p_bytes + st1.mem_segment_bytes) /
	                     (double)(st1.chunks_live ? st1.chunks_live : 1);
	double t0 = bench_now();
	struct bench_sim_info pi;
	res->peer_waf = bench_sim_waf(
	    st1.segments_total, (uint32_t)(st1.capacity_bytes / st1.segments_total / sizeof(buf)),
	    1, nkeys, writes, hot_data, hot_writes, NULL);
	res->peer_fmt_waf = bench_sim_waf(st1.segments_total, res->fmt_per_seg, 1, nkeys, writes,
	                                  hot_data, hot_writes, &pi);
	res->peer_fmt_victim_u =
	    pi.victims ? (double)pi.moved / (double)pi.victims / res->fmt_per_seg : 0;
	res->reserve = 2 + st1.segments_total / 256;
	res->peer_fmt_reserve_waf =
	    bench_sim_waf(st1.segments_total, res->fmt_per_seg, res->reserve, nkeys, writes,
	                  hot_data, hot_writes, &pi);
	res->peer_fmt_reserve_victim_u =
	    pi.victims ? (double)pi.moved / (double)pi.victims / res->fmt_per_seg : 0;
	res->peer_oracle2_waf = -1;
	for (double share = 0.20; hot_data > 0 && share < 0.365; share += 0.02) {
		double w = bench_sim2_waf(st1.segments_total, res->fmt_per_seg, res->reserve, nkeys,
		                          writes, hot_data, hot_writes, share);
		if (w > 0 && (res->peer_oracle2_waf < 0 || w < res->peer_oracle2_waf)) {
			res->peer_oracle2_waf = w;
			res->peer_oracle2_share = share;
		}
	}
	res->peer_secs = bench_now() - t0;
	res->wear_max_over_mean = st1.erase_mean > 0 ? st1.erase_max / st1.erase_mean : 0;
	res->st = st1;
out:
	free(a);
	ftl_close(ftl);
	ftl_dev_close(dev);
	if (rc)
		fprintf(stderr, "pstor-bench: ftl run failed: %d\n", rc);
	return rc;
}

static void print_detail(const char *name, const struct waf_result *r)
{
	static const char *streams[] = {"user_hot", "user_cold", "gc_hot", "gc_cold"};
	printf("ftl.%s.gc_moved_per_host_byte: %.3f\n", name, r->gc_moved_per_host);
	printf("ftl.%s.format_overhead: %.4f\n", name, r->format_overhead);
	for (int i = 0; i < 4; i++)
		printf("ftl.%s.stream.%s: %.3f\n", name, streams[i], r->stream_share[i]);
	printf("ftl.%s.steady.segments_free: %.2f (GC reserve %u)\n", name, r->mean_free,
	       r->reserve);
	printf("ftl.%s.steady.segments_open: %.2f\n", name, r->mean_open);
	printf("ftl.%s.victim_utilization: %.4f (peer at format capacity %.4f, with the reserve "
	       "idle %.4f)\n",
	       name, r->victim_u, r->peer_fmt_victim_u, r->peer_fmt_reserve_victim_u);
	printf("ftl.%s.victims_greedy_share: %.3f\n", name, r->greedy_share);
	printf("ftl.%s.chunks_a_pack: %.1f\n", name, r->chunks_a_pack);
}

int bench_ftl(void)
{
	static const struct waf_geom geoms[] = {
	    {"", 1024, 4096, "PSTOR_BENCH_FTL_MB", "PSTOR_BENCH_SEG_KB"},
	    /* 4,096 segments and more after the superblocks and the metadata region. */
	    {"seg4096.", 4128, 1024, "PSTOR_BENCH_FTL_BIG_MB", "PSTOR_BENCH_BIG_SEG_KB"},
	};
	static const struct {
		const char *name;
		double hot_data, hot_writes;
	} runs[] = {{"uniform80", 0, 0}, {"hotcold8020", 0.2, 0.8}};
	const char *only = getenv("PSTOR_BENCH_FTL_ONLY"); /* a prefix: "seg4096." or "" */
	double wear = 0, mem = 0, t_all = bench_now();
	for (size_t gi = 0; gi < sizeof(geoms) / sizeof(geoms[0]); gi++) {
		const struct waf_geom *g = &geoms[gi];
		if (only && strcmp(only, g->prefix))
			continue;
		for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++) {
			struct waf_result r = {0};
			const char *run = getenv("PSTOR_BENCH_FTL_RUN"); /* a workload's name */
			if (run && strcmp(run, runs[i].name))
				continue;
			double t0 = bench_now();
			if (waf_run(g, runs[i].hot_data, runs[i].hot_writes, &r))
				return 1;
			double secs = bench_now() - t0 - r.peer_secs;
			char n[64];
			snprintf(n, sizeof(n), "%s%s", g->prefix, runs[i].name);
			printf(
			    "ftl.%s.segments: %u x %llu KiB\n", n, r.st.segments_total,
			    (unsigned long long)(r.st.capacity_bytes / r.st.segments_total >> 10));
			printf("ftl.%s.waf: %.3f\n", n, r.waf);
			printf("ftl.%s.peer_one_log_greedy.waf: %.3f\n", n, r.peer_waf);
			printf("ftl.%s.ratio_to_peer: %.3f\n", n, r.waf / r.peer_waf);
			printf("ftl.%s.peer_at_format_capacity.waf: %.3f (%u blocks a segment)\n",
			       n, r.peer_fmt_waf, r.fmt_per_seg);
			printf("ftl.%s.ratio_to_peer_at_format_capacity: %.3f\n", n,
			       r.waf / r.peer_fmt_waf);
			printf("ftl.%s.peer_at_format_capacity_and_reserve.waf: %.3f (%u segments "
			       "idle)\n",
			       n, r.peer_fmt_reserve_waf, r.reserve);
			printf("ftl.%s.ratio_to_peer_at_format_capacity_and_reserve: %.3f\n", n,
			       r.waf / r.peer_fmt_reserve_waf);
			if (r.peer_oracle2_waf > 0)
				printf("ftl.%s.peer_two_group_oracle.waf: %.3f (format capacity, "
				       "reserve idle, hot log %.2f of the segments)\n",
				       n, r.peer_oracle2_waf, r.peer_oracle2_share);
			print_detail(n, &r);
			printf("ftl.%s.hot_cold_separation: %s (died young: %.3f of the chunks "
			       "predicted hot, %.3f of those predicted cold)\n",
			       n, r.st.hot_cold_separation ? "on" : "off", r.st.young_predicted_hot,
			       r.st.young_predicted_cold);
			printf("ftl.%s.gc_runs: %llu\n", n, (unsigned long long)r.st.gc_runs);
			printf("ftl.%s.wear_moves: %llu\n", n, (unsigned long long)r.st.wear_moves);
			printf("ftl.%s.erase_min_mean_max: %u %.2f %u\n", n, r.st.erase_min,
			       r.st.erase_mean, r.st.erase_max);
			printf("ftl.%s.wear_max_over_mean: %.3f\n", n, r.wear_max_over_mean);
			printf("ftl.%s.mem_bytes_per_chunk: %.1f\n", n, r.mem_per_chunk);
			printf("ftl.%s.mwrites_per_s: %.3f\n", n,
			       (double)r.st.host_bytes_written / 4096 / 1e6 / secs);
			printf("ftl.%s.seconds: %.1f (peer %.1f)\n", n, secs, r.peer_secs);
			if (r.wear_max_over_mean > wear)
				wear = r.wear_max_over_mean;
			if (r.mem_per_chunk > mem)
				mem = r.mem_per_chunk;
		}
	}
	printf("ftl.wear.max_over_mean: %.3f\n", wear);
	printf("ftl.mem_bytes_per_chunk.max: %.1f\n", mem);
	printf("ftl.seconds: %.1f\n", bench_now() - t_all);
	return 0;
}
