/* fs/pfs_tiering.c - .pstorage/analytics/tiering[.json]: the mover's progress (pfs_tier.c) and
 * recommendations whose effect is measured on the data (a sample re-encoded in memory, the
 * volume's stored and logical bytes, a snapshot's unique bytes), each with the ctl command that
 * acts on it. Reads only; a dry run writes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pfs_front_int.h"
#include "pfs_tiering.h"

#define SAMPLE_CHUNKS   64  /* chunks re-encoded in memory per volume */
#define SAMPLE_EXTENTS  32  /* extents classified per volume */
#define SAMPLE_VOLUMES  16  /* volumes sampled per report (the rest: listed, not sampled) */
#define COLD_LEVEL      19  /* the zstd level recommended for cold data */
#define RAW_BELOW       1.1 /* a hot volume reduced less than this would rather be raw */
#define SNAP_OLD_DAYS   90
#define MIN_SAVING_FRAC 0.02 /* recommend recompression when it saves at least this */

struct vol_row {
	uint64_t id;
	char name[PFS_NAME_MAX + 1];
	uint64_t size;
	int64_t chunk_blocks;
};

struct vol_list {
	struct vol_row *v;
	size_t n, cap;
	int err;
};

static int collect(void *arg, struct pfs_vol *v, const struct pfs_vol_info *i)
{
	struct vol_list *l = arg;

	(void)v;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		struct vol_row *n = realloc(l->v, cap * sizeof(*n));
		if (!n) {
			l->err = -ENOMEM;
			return -ENOMEM;
		}
		l->v = n;
		l->cap = cap;
	}
	struct vol_row *r = &l->v[l->n++];
	r->id = i->id;
	snprintf(r->name, sizeof(r->name), "%s", i->name);
	r->size = i->size;
	r->chunk_blocks = i->chunk_blocks;
	return 0;
}

/* What one volume's sample measured. */
struct vol_sample {
	uint32_t extents, cold, hot; /* classified, cold or frozen, hot */
	uint32_t chunks;             /* re-encoded in memory */
	uint64_t stored, recoded;    /* their stored bytes now, and with zstd:COLD_LEVEL */
	double recode_us;            /* time per chunk of that encoding */
	uint32_t reads;              /* chunks read and decoded as a read would */
	double read_us;              /* time per block of that */
	uint64_t unique, shared;     /* the volume's physical bytes (pfs_vol_usage) */
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Spreads SAMPLE_EXTENTS over the volume; in each, classifies the extent and re-encodes a few of
 * its chunks in memory (dry run), and times plain reads of them. */
static void sample_volume(struct pfs *p, struct pfs_vol *v, uint64_t size, struct vol_sample *s)
{
	struct engine *e = pfs_engine(p);
	uint32_t bs = pfs_block_size(p);
	uint64_t next = (size + PFS_TEMP_EXTENT_BYTES - 1) / PFS_TEMP_EXTENT_BYTES;
	uint32_t want = next < SAMPLE_EXTENTS ? (uint32_t)next : SAMPLE_EXTENTS;
	uint32_t per = want ? (SAMPLE_CHUNKS + want - 1) / want : 0;
	uint32_t blocks = PFS_TEMP_EXTENT_BYTES / bs;
	struct engine_ref *refs = calloc(blocks, sizeof(*refs));
	uint8_t *block = malloc(bs);

	memset(s, 0, sizeof(*s));
	(void)pfs_vol_usage(p, v, true, &s->unique, &s->shared);
	if (!refs || !block)
		goto out;
	for (uint32_t k = 0; k < want; k++) {
		uint64_t ext = next * k / want, off = ext * PFS_TEMP_EXTENT_BYTES;
		uint32_t n =
		    (uint32_t)((size - off < PFS_TEMP_EXTENT_BYTES ? size - off
		                                                   : PFS_TEMP_EXTENT_BYTES) /
		               bs);
		if (!n || pfs_vol_refs(p, v, off / bs, n, refs))
			continue;
		/* Only extents holding data count: a hole has no temperature worth acting on. */
		bool data = false;
		for (uint32_t j = 0; j < n && !data; j++)
			data = engine_ref_kind(refs[j]) == ENGINE_REF_CHUNK;
		if (data) {
			enum pfs_temp_class c = pfs_temp_class_at(p, v, off);
			s->extents++;
			s->cold += c >= PFS_TEMP_COLD;
			s->hot += c == PFS_TEMP_HOT;
		}
		uint32_t taken = 0;
		/* Chunks spread over the extent, not only its first blocks. */
		for (uint32_t j = 0; j < n && taken < per && s->chunks < SAMPLE_CHUNKS; j++) {
			struct engine_ref r = refs[(j * 37u) % n];
			struct engine_recompress rr;
			if (engine_ref_kind(r) != ENGINE_REF_CHUNK)
				continue;
			double t0 = now_us();
			int rc = engine_chunk_recompress(e, r, ENGINE_CODEC_ZSTD, COLD_LEVEL,
			                                 ENGINE_RECOMPRESS_DRY_RUN, &rr);
			double t1 = now_us();
			if (rc < 0)
				continue;
			s->recode_us += t1 - t0;
			s->chunks++;
			s->stored += rr.old_len;
			s->recoded += rr.new_len < rr.old_len ? rr.new_len : rr.old_len;
			taken++;
			t0 = now_us();
			if (engine_read(e, r, block) == 0) {
				s->read_us += now_us() - t0;
				s->reads++;
			}
		}
		for (uint32_t j = 0; j < n; j++)
			engine_ref_put(e, refs[j]);
	}
	if (s->chunks)
		s->recode_us /= s->chunks;
	if (s->reads)
		s->read_us /= s->reads;
out:
	free(refs);
	free(block);
}

/* One recommendation. */
struct reco {
	const char *kind; /* recompress_cold, store_raw, delete_snapshot */
	char what[160], why[400], effect[300], command[200];
	int64_t effect_bytes; /* bytes saved (>0) or what it costs (<0) */
};

struct reco_list {
	struct reco *r;
	size_t n, cap;
};

static struct reco *reco_add(struct reco_list *l)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 8;
		struct reco *n = realloc(l->r, cap * sizeof(*n));
		if (!n)
			return NULL;
		l->r = n;
		l->cap = cap;
	}
	memset(&l->r[l->n], 0, sizeof(l->r[0]));
	return &l->r[l->n++];
}

static void volume_recos(struct pfs *p, const struct vol_row *row, struct pfs_vol *v,
                         struct reco_list *l)
{
	struct vol_sample s;
	char cur[32];
	uint32_t bs = pfs_block_size(p);

	sample_volume(p, v, row->size, &s);
	pfs_tier_get(p, v, cur, sizeof(cur));
	uint64_t stored = s.unique + s.shared;
	uint64_t logical = (uint64_t)(row->chunk_blocks > 0 ? row->chunk_blocks : 0) * bs;
	/* Cold data and what zstd at a high level would make of it. */
	if (s.chunks && s.cold && s.recoded < s.stored && strcmp(cur, "none") == 0) {
		double frac_cold = (double)s.cold / s.extents;
		double keep = (double)s.recoded / (double)s.stored;
		uint64_t cold_stored = (uint64_t)((double)stored * frac_cold);
		uint64_t saving = (uint64_t)((double)cold_stored * (1.0 - keep));
		if (saving > 0 && (double)saving >= MIN_SAVING_FRAC * (double)stored) {
			struct reco *r = reco_add(l);
			if (r) {
				r->kind = "recompress_cold";
				snprintf(
				    r->what, sizeof(r->what),
				    "volume %s: re-encode its cold and frozen data with zstd:%d",
				    row->name, COLD_LEVEL);
				snprintf(r->why, sizeof(r->why),
				         "%u of %u sampled extents holding data are cold or "
				         "frozen; %u of their "
				         "chunks "
				         "went from %llu to %llu stored bytes re-encoded in memory "
				         "(%.0f%% saved, %.0f us a chunk)",
				         s.cold, s.extents, s.chunks, (unsigned long long)s.stored,
				         (unsigned long long)s.recoded, 100.0 * (1.0 - keep),
				         s.recode_us);
				snprintf(
				    r->effect, sizeof(r->effect),
				    "about %llu bytes saved of the %llu stored bytes of its cold "
				    "data "
				    "(sample ratio applied to %.0f%% of the volume's %llu stored "
				    "bytes)",
				    (unsigned long long)saving, (unsigned long long)cold_stored,
				    100.0 * frac_cold, (unsigned long long)stored);
				snprintf(r->command, sizeof(r->command),
				         "volume set %s cold_compression zstd:%d", row->name,
				         COLD_LEVEL);
				r->effect_bytes = (int64_t)saving;
			}
		}
	}
	/* Hot data that hardly compresses: storing it raw would save the codec's CPU. */
	if (stored && logical && s.hot * 2 > s.extents && s.reads &&
	    (double)logical / (double)stored < RAW_BELOW) {
		struct reco *r = reco_add(l);
		if (r) {
			char codec[64] = "?";
			pfs_config_get(p, "compression", codec, sizeof(codec));
			r->kind = "store_raw";
			snprintf(r->what, sizeof(r->what),
			         "volume %s: hot data that compresses below %.1f:1", row->name,
			         RAW_BELOW);
			snprintf(
			    r->why, sizeof(r->why),
			    "%llu logical bytes in chunks are stored in %llu bytes (%.2f:1); %u of "
			    "%u sampled extents are hot; reading a block through %s took %.1f us "
			    "(sample of %u blocks)",
			    (unsigned long long)logical, (unsigned long long)stored,
			    (double)logical / (double)stored, s.hot, s.extents, codec, s.read_us,
			    s.reads);
			snprintf(
			    r->effect, sizeof(r->effect),
			    "the codec's CPU on every write and read of it, for %lld more stored "
			    "bytes; compression is set for the whole pool, so this changes it "
			    "for every volume",
			    (long long)(logical > stored ? logical - stored : 0));
			snprintf(r->command, sizeof(r->command), "config set compression none");
			r->effect_bytes = -(int64_t)(logical > stored ? logical - stored : 0);
		}
	}
}

struct snap_arg {
	struct pfs *p;
	const char *vol;
	struct reco_list *l;
	int64_t now_ns;
};

static int snap_reco(void *arg, struct pfs_vol *v, const struct pfs_vol_info *i)
{
	struct snap_arg *a = arg;
	double days = (double)(a->now_ns - i->ctime_ns) / 86400e9;

	(void)v;
	if (days < SNAP_OLD_DAYS)
		return 0;
	struct reco *r = reco_add(a->l);
	if (!r)
		return -ENOMEM;
	r->kind = "delete_snapshot";
	snprintf(r->what, sizeof(r->what), "snapshot %s of volume %s: unchanged for %.0f days",
	         i->name, a->vol, days);
	snprintf(r->why, sizeof(r->why),
	         "a snapshot never changes after it is taken; this one is %.0f days old (more "
	         "than %d)",
	         days, SNAP_OLD_DAYS);
	/* Its unique bytes are filled in outside the catalogue lock (pfs_vol_usage walks). */
	snprintf(r->command, sizeof(r->command), "snapshot delete %s %s", a->vol, i->name);
	r->effect_bytes = (int64_t)i->id; /* the snapshot's id until the usage is known */
	return 0;
}

static void mover_text(const struct pfs_tier_progress *m, struct pfs_buf *b)
{
	pfs_buf_printf(b, "mover: %s", m->state);
	if (m->volume[0])
		pfs_buf_printf(b, " (volume %s, offset %llu)", m->volume,
		               (unsigned long long)m->offset);
	pfs_buf_printf(b,
	               "\n  tier_rate %llu bytes/s%s, throughput while moving %.0f bytes/s\n"
	               "  volumes with cold_compression %u, passes finished %llu",
	               (unsigned long long)m->rate, m->rate ? "" : " (paused)", m->measured_rate,
	               m->volumes, (unsigned long long)m->passes);
	if (m->last_pass_end) {
		time_t t = (time_t)m->last_pass_end;
		struct tm tm;
		char when[32];
		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		pfs_buf_printf(b, " (last %s)", when);
	}
	pfs_buf_printf(b,
	               "\n  extents scanned %llu, cold %llu, moved %llu\n"
	               "  chunks moved %llu, already in place %llu, changed meanwhile %llu, "
	               "errors %llu\n"
	               "  stored bytes of moved chunks %llu -> %llu, saved %llu\n",
	               (unsigned long long)m->extents_scanned, (unsigned long long)m->extents_cold,
	               (unsigned long long)m->extents_moved, (unsigned long long)m->chunks_moved,
	               (unsigned long long)m->chunks_skipped, (unsigned long long)m->chunks_stale,
	               (unsigned long long)m->errors, (unsigned long long)m->bytes_before,
	               (unsigned long long)m->bytes_after, (unsigned long long)m->bytes_saved);
}

static void mover_json(const struct pfs_tier_progress *m, struct pfs_buf *b)
{
	pfs_buf_printf(b, "  \"mover\": {\"state\": \"%s\", \"volume\": ", m->state);
	pfs_buf_json_str(b, m->volume);
	pfs_buf_printf(
	    b,
	    ", \"offset\": %llu, \"tier_rate\": %llu, \"throughput_bytes_per_second\": %.0f, "
	    "\"volumes\": %u, \"passes\": %llu, \"last_pass_end\": %lld, \"extents_scanned\": "
	    "%llu, "
	    "\"extents_cold\": %llu, \"extents_moved\": %llu, \"chunks_moved\": %llu, "
	    "\"chunks_skipped\": %llu, \"chunks_stale\": %llu, \"errors\": %llu, "
	    "\"bytes_before\": %llu, \"bytes_after\": %llu, \"bytes_saved\": %llu},\n",
	    (unsigned long long)m->offset, (unsigned long long)m->rate, m->measured_rate,
	    m->volumes, (unsigned long long)m->passes, (long long)m->last_pass_end,
	    (unsigned long long)m->extents_scanned, (unsigned long long)m->extents_cold,
	    (unsigned long long)m->extents_moved, (unsigned long long)m->chunks_moved,
	    (unsigned long long)m->chunks_skipped, (unsigned long long)m->chunks_stale,
	    (unsigned long long)m->errors, (unsigned long long)m->bytes_before,
	    (unsigned long long)m->bytes_after, (unsigned long long)m->bytes_saved);
}

int pfs_tiering_report(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct pfs_tier_progress m;
	struct vol_list vl = {0};
	struct reco_list rl = {0};
	int rc;

	pfs_tier_progress(p, &m);
	rc = pfs_vol_each(p, PFS_MAP_VOLUME, 0, collect, &vl);
	if (rc)
		goto out;
	for (size_t k = 0; k < vl.n; k++) {
		struct pfs_vol *v = pfs_vol_by_id(p, vl.v[k].id);
		if (!v)
			continue;
		if (k < SAMPLE_VOLUMES)
			volume_recos(p, &vl.v[k], v, &rl);
		size_t first = rl.n;
		struct snap_arg sa = {p, vl.v[k].name, &rl, pfs_now_ns()};
		rc = pfs_vol_each(p, PFS_MAP_SNAPSHOT, vl.v[k].id, snap_reco, &sa);
		for (size_t j = first; j < rl.n; j++) {
			struct pfs_vol *sv = pfs_vol_by_id(p, (uint64_t)rl.r[j].effect_bytes);
			uint64_t unique = 0, shared = 0;
			if (sv) {
				(void)pfs_vol_usage(p, sv, true, &unique, &shared);
				pfs_vol_unref(sv);
			}
			rl.r[j].effect_bytes = (int64_t)unique;
			snprintf(rl.r[j].effect, sizeof(rl.r[j].effect),
			         "%llu bytes freed: the physical bytes only this snapshot holds",
			         (unsigned long long)unique);
		}
		pfs_vol_unref(v);
		if (rc)
			goto out;
	}
	if (json) {
		pfs_buf_printf(b, "{\n");
		mover_json(&m, b);
		pfs_buf_printf(b, "  \"volumes\": [");
		for (size_t k = 0; k < vl.n; k++) {
			struct pfs_vol *v = pfs_vol_by_id(p, vl.v[k].id);
			char cur[32] = "none";
			if (v) {
				pfs_tier_get(p, v, cur, sizeof(cur));
				pfs_vol_unref(v);
			}
			pfs_buf_printf(b, "%s{\"name\": ", k ? ", " : "");
			pfs_buf_json_str(b, vl.v[k].name);
			pfs_buf_printf(b, ", \"cold_compression\": \"%s\"}", cur);
		}
		pfs_buf_printf(b, "],\n  \"recommendations\": [");
		for (size_t j = 0; j < rl.n; j++) {
			const struct reco *r = &rl.r[j];
			pfs_buf_printf(b, "%s\n    {\"kind\": \"%s\", \"what\": ", j ? "," : "",
			               r->kind);
			pfs_buf_json_str(b, r->what);
			pfs_buf_printf(b, ", \"why\": ");
			pfs_buf_json_str(b, r->why);
			pfs_buf_printf(b, ", \"effect\": ");
			pfs_buf_json_str(b, r->effect);
			pfs_buf_printf(b, ", \"effect_bytes\": %lld, \"command\": ",
			               (long long)r->effect_bytes);
			pfs_buf_json_str(b, r->command);
			pfs_buf_printf(b, "}");
		}
		pfs_buf_printf(b, "%s]\n}\n", rl.n ? "\n  " : "");
	} else {
		pfs_buf_printf(b, "tiering\n");
		mover_text(&m, b);
		pfs_buf_printf(b, "\nrecommendations (each measured on this box's data):\n");
		if (!rl.n)
			pfs_buf_printf(b, "  none\n");
		for (size_t j = 0; j < rl.n; j++) {
			const struct reco *r = &rl.r[j];
			pfs_buf_printf(
			    b,
			    "%zu. %s\n   why:     %s\n   effect:  %s\n   command: echo '%s' "
			    "> .pstorage/ctl\n",
			    j + 1, r->what, r->why, r->effect, r->command);
		}
	}
out:
	free(vl.v);
	free(rl.r);
	return rc ? rc : vl.err;
}

void pfs_tiering_metrics(struct pfs *p, struct pfs_buf *b)
{
	struct pfs_tier_progress m;

	pfs_tier_progress(p, &m);
	pfs_buf_printf(
	    b,
	    "# HELP pstorfs_tier_bytes_saved_total Stored bytes the tiering mover saved "
	    "by re-encoding cold data.\n# TYPE pstorfs_tier_bytes_saved_total counter\n"
	    "pstorfs_tier_bytes_saved_total %llu\n"
	    "# HELP pstorfs_tier_chunks_moved_total Chunks the tiering mover re-encoded.\n"
	    "# TYPE pstorfs_tier_chunks_moved_total counter\n"
	    "pstorfs_tier_chunks_moved_total %llu\n"
	    "# HELP pstorfs_tier_extents_scanned_total Extents the tiering mover looked "
	    "at.\n# TYPE pstorfs_tier_extents_scanned_total counter\n"
	    "pstorfs_tier_extents_scanned_total %llu\n"
	    "# HELP pstorfs_tier_passes_total Passes of the tiering mover over every "
	    "volume.\n# TYPE pstorfs_tier_passes_total counter\n"
	    "pstorfs_tier_passes_total %llu\n"
	    "# HELP pstorfs_tier_rate_bytes_per_second The mover's throttle (tier_rate; "
	    "0 = paused).\n# TYPE pstorfs_tier_rate_bytes_per_second gauge\n"
	    "pstorfs_tier_rate_bytes_per_second %llu\n",
	    (unsigned long long)m.bytes_saved, (unsigned long long)m.chunks_moved,
	    (unsigned long long)m.extents_scanned, (unsigned long long)m.passes,
	    (unsigned long long)m.rate);
}
