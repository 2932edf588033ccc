/* fs/pfs_report.c - the read-only reports of .pstorage/ (text and JSON) and the Prometheus
 * exposition, built from the counters of the FTL, the engine and the catalogue, so what an
 * operator reads is what the code knows. Never changes state.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_analytics.h"
#include "pfs_front_int.h"
#include "pfs_tiering.h"

/* Below this much written since mount, the status shows no write amplification. */
#define PFS_WA_MIN_BYTES (64ull << 20)

const char *const pfs_volume_values[PFS_VOLUME_VALUES] = {
    "size", "written", "unique", "shared", "reduction", "snapshots", "temperature",
};

static double ratio(uint64_t a, uint64_t b)
{
	if (b == 0)
		return a ? INFINITY : 1.0;
	return (double)a / (double)b;
}

/* JSON has no infinity: null stands for "everything removed". */
static void json_ratio(struct pfs_buf *b, const char *key, double r, bool comma)
{
	if (isinf(r))
		pfs_buf_printf(b, "  \"%s\": null%s\n", key, comma ? "," : "");
	else
		pfs_buf_printf(b, "  \"%s\": %.3f%s\n", key, r, comma ? "," : "");
}

struct reduction {
	uint64_t logical, after_pattern, after_dedupe, after_compression, provisioned;
	double pattern, dedupe, compression, total, thin;
};

static void reduction_of(const struct pfs_stats *st, struct reduction *r)
{
	r->logical = st->logical_bytes;
	r->after_pattern = st->after_pattern_bytes;
	r->after_dedupe = st->engine.unique_chunks * st->block_size;
	r->after_compression = st->ftl.bytes_live;
	r->provisioned = st->provisioned_bytes;
	r->pattern = ratio(r->logical, r->after_pattern);
	r->dedupe = ratio(r->after_pattern, r->after_dedupe);
	r->compression = ratio(r->after_dedupe, r->after_compression);
	r->total = ratio(r->logical, r->after_compression);
	r->thin = ratio(r->provisioned, r->logical);
}

static void report_reduction(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct pfs_stats st;
	struct reduction r;
	char eng[4096];

	pfs_get_stats(p, &st);
	reduction_of(&st, &r);
	const struct engine_stats es = st.engine;
	if (json) {
		engine_stats_to_json(&es, eng, sizeof(eng));
		pfs_buf_printf(
		    b,
		    "{\n  \"logical_bytes\": %llu,\n  \"after_pattern_bytes\": %llu,\n"
		    "  \"after_dedupe_bytes\": %llu,\n  \"after_compression_bytes\": %llu,\n"
		    "  \"provisioned_bytes\": %llu,\n",
		    (unsigned long long)r.logical, (unsigned long long)r.after_pattern,
		    (unsigned long long)r.after_dedupe, (unsigned long long)r.after_compression,
		    (unsigned long long)r.provisioned);
		json_ratio(b, "pattern_ratio", r.pattern, true);
		json_ratio(b, "dedupe_ratio", r.dedupe, true);
		json_ratio(b, "compression_ratio", r.compression, true);
		json_ratio(b, "total_ratio", r.total, true);
		json_ratio(b, "thin_provisioning_ratio", r.thin, true);
		pfs_buf_printf(b, "  \"since_mount\": %s\n}\n", eng);
		return;
	}
	engine_stats_to_text(&es, eng, sizeof(eng));
	pfs_buf_printf(b,
	               "data reduction (volumes as they are now; snapshots share their blocks)\n"
	               "  logical written        %20llu bytes\n"
	               "  after pattern removal  %20llu bytes   %.2f:1\n"
	               "  after deduplication    %20llu bytes   %.2f:1\n"
	               "  after compression      %20llu bytes   %.2f:1\n"
	               "  total reduction        %25.2f:1\n"
	               "thin provisioning (apart from reduction)\n"
	               "  provisioned            %20llu bytes   %.2f:1 of written\n"
	               "\nsince mount\n%s",
	               (unsigned long long)r.logical, (unsigned long long)r.after_pattern,
	               r.pattern, (unsigned long long)r.after_dedupe, r.dedupe,
	               (unsigned long long)r.after_compression, r.compression, r.total,
	               (unsigned long long)r.provisioned, r.thin, eng);
}

static void report_status(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct pfs_stats st;
	struct reduction r;
	char cfgc[64], cfgd[64];

	pfs_get_stats(p, &st);
	reduction_of(&st, &r);
	const struct ftl_stats fs = st.ftl;
	pfs_config_get(p, "compression", cfgc, sizeof(cfgc));
	pfs_config_get(p, "dedupe", cfgd, sizeof(cfgd));
	uint64_t used = fs.capacity_bytes - fs.free_bytes;
	uint64_t errors = st.io_errors + fs.read_errors;
	uint64_t damaged = st.damaged_refs;
	/* Checksum failures alone are not damage: a pack torn by a power cut fails them at mount
	 * and held nothing acknowledged. Reads that failed, references to lost chunks and what the
	 * scrub found are. */
	const char *health = errors || damaged || pfs_scrub_found_damage(p) ? "degraded" : "ok";
	if (json) {
		/* The device path is the operator's string: escaped like any other. */
		pfs_buf_printf(b, "{\n  \"device\": ");
		pfs_buf_json_str(b, st.device);
		pfs_buf_printf(
		    b,
		    ",\n  \"readonly\": %s,\n"
		    "  \"capacity_bytes\": %llu,\n  \"used_bytes\": %llu,\n"
		    "  \"free_bytes\": %llu,\n  \"volumes\": %llu,\n  \"snapshots\": %llu,\n"
		    "  \"provisioned_bytes\": %llu,\n  \"logical_bytes\": %llu,\n"
		    "  \"stored_bytes\": %llu,\n",
		    st.readonly ? "true" : "false", (unsigned long long)fs.capacity_bytes,
		    (unsigned long long)used, (unsigned long long)fs.free_bytes,
		    (unsigned long long)st.volumes, (unsigned long long)st.snapshots,
		    (unsigned long long)st.provisioned_bytes, (unsigned long long)r.logical,
		    (unsigned long long)r.after_compression);
		json_ratio(b, "reduction_ratio", r.total, true);
		pfs_buf_printf(
		    b,
		    "  \"compression\": \"%s\",\n  \"dedupe\": \"%s\",\n"
		    "  \"write_amplification\": %.3f,\n  \"life_used_pct\": %.3f,\n"
		    "  \"health\": \"%s\",\n  \"read_errors\": %llu,\n"
		    "  \"checksum_errors\": %llu,\n"
		    "  \"damaged_references\": %llu,\n  \"commits\": %llu,\n"
		    "  \"commit_errors\": %llu,\n  \"metadata_bytes\": %llu,\n"
		    "  \"metadata_capacity_bytes\": %llu,\n  \"mount_seconds\": %.3f,\n"
		    "  \"mount_from_checkpoint\": %s,\n  \"mount_segments_walked\": %llu,\n"
		    "  \"enospc_retries\": %llu,\n  \"room_commits\": %llu,\n"
		    "  \"cluster\": ",
		    cfgc, cfgd, fs.write_amplification, fs.life_used_pct, health,
		    (unsigned long long)errors, (unsigned long long)fs.checksum_errors,
		    (unsigned long long)damaged, (unsigned long long)st.commits,
		    (unsigned long long)st.commit_errors, (unsigned long long)st.meta_db_bytes,
		    (unsigned long long)st.meta_db_capacity, st.mount_seconds,
		    fs.open_from_ckpt ? "true" : "false", (unsigned long long)fs.open_segs_walked,
		    (unsigned long long)st.enospc_retries, (unsigned long long)st.room_commits);
		cluster_status_line(pfs_front_cluster(p), true, b);
		pfs_buf_printf(b, ",\n  \"scrub\": ");
		pfs_scrub_status(p, true, b);
		pfs_buf_printf(b, "\n}\n");
		return;
	}
	/* The counters start at mount: right after it, a few KiB of metadata give a ratio that
	 * says nothing (a 204-byte commit in a 12 KiB pack reads as 60x). */
	char wa[64];
	if (fs.host_bytes_written >= PFS_WA_MIN_BYTES)
		snprintf(wa, sizeof(wa), "%.2f since mount", fs.write_amplification);
	else
		snprintf(wa, sizeof(wa), "n/a (under %u MiB written since mount)",
		         (unsigned)(PFS_WA_MIN_BYTES >> 20));
	pfs_buf_printf(
	    b,
	    "pstorfs on %s%s\n"
	    "capacity    %.2f GiB physical, %.2f GiB used, %.2f GiB free\n"
	    "volumes     %llu (%.2f GiB provisioned, %.2f GiB written), %llu snapshots\n"
	    "reduction   %.2f:1 (pattern %.2f, dedupe %.2f, compression %.2f); "
	    "compression=%s dedupe=%s\n"
	    "flash       %u of %u segments free, write amplification %s, "
	    "%.2f%% of rated life used\n"
	    "health      %s (%llu read errors, %llu checksum failures, %llu damaged references)\n"
	    "metadata    %.1f MiB of %.1f MiB, %llu commits, %llu failed\n"
	    "mount       rebuilt in %.2f s (%llu chunks found, %llu unreferenced freed; "
	    "flash %s, %llu segments walked)\n",
	    st.device, st.readonly ? " (read-only)" : "", fs.capacity_bytes / 1073741824.0,
	    used / 1073741824.0, fs.free_bytes / 1073741824.0, (unsigned long long)st.volumes,
	    st.provisioned_bytes / 1073741824.0, r.logical / 1073741824.0,
	    (unsigned long long)st.snapshots, r.total, r.pattern, r.dedupe, r.compression, cfgc,
	    cfgd, fs.segments_free, fs.segments_total, wa, fs.life_used_pct, health,
	    (unsigned long long)errors, (unsigned long long)fs.checksum_errors,
	    (unsigned long long)damaged, st.meta_db_bytes / 1048576.0,
	    st.meta_db_capacity / 1048576.0, (unsigned long long)st.commits,
	    (unsigned long long)st.commit_errors, st.mount_seconds,
	    (unsigned long long)st.mount_chunks_scanned, (unsigned long long)st.mount_chunks_freed,
	    fs.open_from_ckpt ? "from its checkpoint" : "fully scanned",
	    (unsigned long long)fs.open_segs_walked);
	pfs_buf_printf(b, "cluster     ");
	cluster_status_line(pfs_front_cluster(p), false, b);
	pfs_buf_printf(b, "\n");
	pfs_scrub_status(p, false, b);
}

static void report_identity(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct ftl_dev_identity id;
	struct pfs_stats st;

	pfs_get_stats(p, &st);
	const char *kind = ftl_dev_kind_name(st.dev_kind);

	pfs_flash_identity(p, &id);
	if (json) {
		pfs_buf_printf(b, "{\n  \"backend\": \"%s\",\n  \"model\": ", kind);
		pfs_buf_json_str(b, id.model);
		pfs_buf_printf(b, ",\n  \"serial\": ");
		pfs_buf_json_str(b, id.serial);
		pfs_buf_printf(b, ",\n  \"firmware\": ");
		pfs_buf_json_str(b, id.firmware);
		pfs_buf_printf(b, ",\n  \"cache\": ");
		pfs_buf_json_str(b, id.cache);
		pfs_buf_printf(b, ",\n  \"cache_reason\": ");
		pfs_buf_json_str(b, id.cache_reason);
		pfs_buf_printf(
		    b,
		    ",\n  \"lba_size\": %u,\n  \"capacity_bytes\": %llu,\n  \"nsid\": %u,\n"
		    "  \"pci_vendor_id\": %u,\n  \"nvme_version\": \"%u.%u.%u\",\n"
		    "  \"lba_format\": %u,\n  \"metadata_size\": %u,\n  \"used_bytes\": %llu,\n"
		    "  \"opt_write_size\": %u,\n  \"opt_write_align\": %u,\n"
		    "  \"opt_write_max\": %u,\n  \"opt_dealloc_size\": %u,\n"
		    "  \"opt_dealloc_align\": %u,\n  \"io_boundary\": %u,\n"
		    "  \"deallocate\": %s,\n  \"deallocate_reads_zero\": %s,\n"
		    "  \"volatile_write_cache\": %s,\n  \"rotational\": %s,\n  \"zoned\": %s,\n"
		    "  \"zone_size\": %llu,\n  \"zones\": %u,\n  \"max_open_zones\": %u,\n"
		    "  \"max_active_zones\": %u,\n  \"zone_append_max\": %u,\n"
		    "  \"block_size\": %u,\n  \"volume_block_size\": %u,\n"
		    "  \"segment_size\": %llu,\n  \"segments\": %u,\n"
		    "  \"format_version\": %u\n}\n",
		    id.lba_size, (unsigned long long)id.capacity_bytes, id.nsid, id.pci_vid,
		    id.nvme_version >> 16, (id.nvme_version >> 8) & 0xff, id.nvme_version & 0xff,
		    id.lba_format, id.metadata_size, (unsigned long long)id.used_bytes,
		    id.opt_write_size, id.opt_write_align, id.opt_write_max, id.opt_dealloc_size,
		    id.opt_dealloc_align, id.io_boundary, id.dealloc ? "true" : "false",
		    id.dealloc_reads_zero ? "true" : "false", id.volatile_cache ? "true" : "false",
		    id.rotational ? "true" : "false", id.zoned ? "true" : "false",
		    (unsigned long long)id.zone_size, id.zone_count, id.max_open_zones,
		    id.max_active_zones, id.zone_append_max, st.device_block_size, st.block_size,
		    (unsigned long long)st.segment_size, (unsigned)st.segment_count,
		    st.format_version);
		return;
	}
	pfs_buf_printf(b,
	               "backend           %s\nmodel             %s\nserial            %s\n"
	               "firmware          %s\nlba size          %u\ncapacity          %llu bytes\n"
	               "namespace id      %u\ncache             %s%s%s%s\n",
	               kind, id.model, id.serial, id.firmware, id.lba_size,
	               (unsigned long long)id.capacity_bytes, id.nsid, id.cache,
	               id.cache_reason[0] ? " (" : "", id.cache_reason,
	               id.cache_reason[0] ? ")" : "");
	if (st.dev_kind == FTL_DEV_NVME) {
		/* 0 means "not reported" for every hint (NVMe only defines them with OPTPERF). */
		pfs_buf_printf(b,
		               "pci vendor id     0x%04x\nnvme version      %u.%u.%u\n"
		               "lba format        %u (%u bytes metadata)\n"
		               "used (NUSE)       %llu bytes\n"
		               "write granularity %u bytes (NPWG), alignment %u (NPWA), optimal %u "
		               "(NOWS)\n"
		               "dealloc gran.     %u bytes (NPDG), alignment %u (NPDA)\n"
		               "io boundary       %u bytes (NOIOB)\n"
		               "deallocate        %s%s\nwrite cache       %s\n",
		               id.pci_vid, id.nvme_version >> 16, (id.nvme_version >> 8) & 0xff,
		               id.nvme_version & 0xff, id.lba_format, id.metadata_size,
		               (unsigned long long)id.used_bytes, id.opt_write_size,
		               id.opt_write_align, id.opt_write_max, id.opt_dealloc_size,
		               id.opt_dealloc_align, id.io_boundary,
		               id.dealloc ? "supported" : "not supported",
		               id.dealloc_reads_zero ? ", reads back zeros" : "",
		               id.volatile_cache ? "volatile" : "none");
		if (id.zoned)
			pfs_buf_printf(b,
			               "zoned             host-managed, %u zones of %llu bytes, "
			               "max open %u, max active %u (0: no limit), append max %u\n",
			               id.zone_count, (unsigned long long)id.zone_size,
			               id.max_open_zones, id.max_active_zones, id.zone_append_max);
	} else {
		pfs_buf_printf(b, "write granularity %u bytes\ndealloc gran.     %u bytes\n",
		               id.opt_write_size, id.opt_dealloc_size);
	}
	pfs_buf_printf(b,
	               "flash block       %u\nvolume block      %u\nsegment size      %llu\n"
	               "segments          %u\nformat version    %u\n",
	               st.device_block_size, st.block_size, (unsigned long long)st.segment_size,
	               (unsigned)st.segment_count, st.format_version);
}

static void report_smart(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct ftl_dev_smart s;
	char txt[4096];
	int rc = pfs_flash_smart(p, &s);

	/* A failed log read is shown, not hidden behind an emulation. */
	if (rc < 0) {
		if (json)
			pfs_buf_printf(b, "{\"source\":\"nvme\",\"error\":\"%s\"}\n",
			               strerror(-rc));
		else
			pfs_buf_printf(b, "source: nvme\nerror: cannot read the SMART log: %s\n",
			               strerror(-rc));
		return;
	}
	if (json)
		ftl_smart_to_json(&s, txt, sizeof(txt));
	else
		ftl_smart_to_text(&s, txt, sizeof(txt));
	pfs_buf_printf(b, "%s", txt);
}

static void report_flash_stats(struct pfs *p, bool json, struct pfs_buf *b)
{
	struct pfs_stats st;
	char txt[8192];

	pfs_get_stats(p, &st);
	if (json)
		ftl_stats_to_json(&st.ftl, txt, sizeof(txt));
	else
		ftl_stats_to_text(&st.ftl, txt, sizeof(txt));
	pfs_buf_printf(b, "%s", txt);
}

static int snap_count(void *arg, struct pfs_vol *v, const struct pfs_vol_info *i)
{
	(void)v;
	(void)i;
	(*(uint64_t *)arg)++;
	return 0;
}

struct vol_figures {
	uint64_t size, written, unique, shared, snapshots;
	double reduction;
};

static int volume_figures(struct pfs *p, struct pfs_vol *v, struct vol_figures *f)
{
	struct pfs_vol_info i;
	int rc;

	pfs_vol_get_info(v, &i);
	memset(f, 0, sizeof(*f));
	f->size = i.size;
	f->written = (uint64_t)i.nz_blocks * pfs_block_size(p);
	/* The last walk's figures while they stand (pfs_vol_usage_recent): a walk per read cost
	 * the writers a fifth of their IOPS under 100 reads a second of the volume list. */
	rc = pfs_vol_usage_recent(p, v, PFS_USAGE_REPORT_MS, &f->unique, &f->shared);
	if (rc)
		return rc;
	pfs_vol_each(p, PFS_MAP_SNAPSHOT, i.id, snap_count, &f->snapshots);
	f->reduction = ratio(f->written, f->unique + f->shared);
	return 0;
}

static int report_volume(struct pfs *p, struct pfs_vol *v, bool json, struct pfs_buf *b)
{
	struct vol_figures f;
	struct pfs_vol_info i;
	int rc = volume_figures(p, v, &f);

	if (rc)
		return rc;
	pfs_vol_get_info(v, &i);
	if (json) {
		pfs_buf_printf(b, "{\n  \"name\": ");
		pfs_buf_json_str(b, i.name);
		pfs_buf_printf(b,
		               ",\n  \"size_bytes\": %llu,\n  \"written_bytes\": %llu,\n"
		               "  \"unique_bytes\": %llu,\n  \"shared_bytes\": %llu,\n"
		               "  \"snapshots\": %llu,\n",
		               (unsigned long long)f.size, (unsigned long long)f.written,
		               (unsigned long long)f.unique, (unsigned long long)f.shared,
		               (unsigned long long)f.snapshots);
		json_ratio(b, "reduction_ratio", f.reduction, false);
		pfs_buf_printf(b, "}\n");
		return 0;
	}
	pfs_buf_printf(b,
	               "volume      %s\nsize        %llu bytes\nwritten     %llu bytes\n"
	               "unique      %llu bytes (physical, held by this volume only)\n"
	               "shared      %llu bytes (physical, shared with snapshots or clones)\n"
	               "reduction   %.2f:1\nsnapshots   %llu\n",
	               i.name, (unsigned long long)f.size, (unsigned long long)f.written,
	               (unsigned long long)f.unique, (unsigned long long)f.shared, f.reduction,
	               (unsigned long long)f.snapshots);
	return 0;
}

int pfs_report_volume_value(struct pfs *p, struct pfs_vol *v, const char *what, struct pfs_buf *b)
{
	struct vol_figures f;
	int rc;

	if (!strcmp(what, "temperature"))
		return pfs_temperature_volume(p, v, b); /* pfs_temperature.c */
	rc = volume_figures(p, v, &f);
	if (rc)
		return rc;
	if (!strcmp(what, "size"))
		pfs_buf_printf(b, "%llu\n", (unsigned long long)f.size);
	else if (!strcmp(what, "written"))
		pfs_buf_printf(b, "%llu\n", (unsigned long long)f.written);
	else if (!strcmp(what, "unique"))
		pfs_buf_printf(b, "%llu\n", (unsigned long long)f.unique);
	else if (!strcmp(what, "shared"))
		pfs_buf_printf(b, "%llu\n", (unsigned long long)f.shared);
	else if (!strcmp(what, "reduction"))
		pfs_buf_printf(b, "%.2f\n", f.reduction);
	else if (!strcmp(what, "snapshots"))
		pfs_buf_printf(b, "%llu\n", (unsigned long long)f.snapshots);
	else
		return -ENOENT;
	return b->err;
}

struct metrics_arg {
	struct pfs *p;
	struct pfs_buf *b;
	bool written; /* second family: samples of one family must stay together */
};

static int metrics_volume(void *arg, struct pfs_vol *v, const struct pfs_vol_info *i)
{
	struct metrics_arg *a = arg;

	(void)v;
	if (!a->written)
		pfs_buf_printf(a->b, "pstorfs_volume_size_bytes{volume=\"%s\"} %llu\n", i->name,
		               (unsigned long long)i->size);
	else
		pfs_buf_printf(a->b, "pstorfs_volume_written_bytes{volume=\"%s\"} %llu\n", i->name,
		               (unsigned long long)i->nz_blocks * pfs_block_size(a->p));
	return 0;
}

static void report_metrics(struct pfs *p, struct pfs_buf *b)
{
	struct pfs_stats st;
	struct reduction r;
	struct metrics_arg ma = {p, b, false};

	pfs_get_stats(p, &st);
	reduction_of(&st, &r);
	const struct ftl_stats fs = st.ftl;
	const struct engine_stats es = st.engine;
#define GAUGE(name, help, val)                                                                     \
	pfs_buf_printf(b,                                                                          \
	               "# HELP pstorfs_" name " " help "\n# TYPE pstorfs_" name " gauge\n"         \
	               "pstorfs_" name " %.17g\n",                                                 \
	               (double)(val))
#define COUNTER(name, help, val)                                                                   \
	pfs_buf_printf(b,                                                                          \
	               "# HELP pstorfs_" name " " help "\n# TYPE pstorfs_" name " counter\n"       \
	               "pstorfs_" name " %llu\n",                                                  \
	               (unsigned long long)(val))
	GAUGE("capacity_bytes", "Physical capacity of the namespace.", fs.capacity_bytes);
	GAUGE("used_bytes", "Physical bytes in use.", fs.capacity_bytes - fs.free_bytes);
	GAUGE("free_bytes", "Physical bytes free.", fs.free_bytes);
	GAUGE("volumes", "Number of volumes.", st.volumes);
	GAUGE("snapshots", "Number of snapshots.", st.snapshots);
	GAUGE("provisioned_bytes", "Sum of volume sizes.", st.provisioned_bytes);
	GAUGE("logical_bytes", "Bytes of volume data written (not holes or zeros).", r.logical);
	GAUGE("stored_bytes", "Payload bytes stored on flash after reduction.",
	      r.after_compression);
	GAUGE("reduction_ratio", "Logical / stored bytes.", isinf(r.total) ? 0 : r.total);
	GAUGE("segments_free", "Free flash segments.", fs.segments_free);
	GAUGE("write_amplification", "Device bytes / host bytes written.", fs.write_amplification);
	GAUGE("erase_count_max", "Highest segment erase count.", fs.erase_max);
	GAUGE("life_used_percent", "Mean erase count over rated endurance.", fs.life_used_pct);
	COUNTER("device_bytes_written_total", "Bytes written to the device.",
	        fs.device_bytes_written);
	COUNTER("host_bytes_written_total", "Chunk bytes written by the engine.",
	        fs.host_bytes_written);
	COUNTER("gc_segments_cleaned_total", "Segments cleaned by GC.", fs.gc_runs);
	COUNTER("gc_bytes_moved_total", "Bytes relocated by GC.", fs.gc_bytes_moved);
	COUNTER("read_errors_total", "Read errors (device or checksum).",
	        fs.read_errors + st.io_errors);
	COUNTER("checksum_errors_total",
	        "Chunks found failing their checksum (reads, scan, scrub).", fs.checksum_errors);
	GAUGE("damaged_references", "Block references to chunks missing at mount.",
	      st.damaged_refs);
	COUNTER("engine_blocks_written_total", "Blocks given to the engine since mount.",
	        es.blocks_written);
	COUNTER("engine_dedupe_blocks_total", "Blocks deduplicated since mount.", es.dedupe_blocks);
	COUNTER("engine_pattern_blocks_total", "Blocks removed as patterns since mount.",
	        es.pattern_blocks);
	COUNTER("commits_total", "Metadata commits.", st.commits);
	COUNTER("commit_errors_total", "Failed metadata commits.", st.commit_errors);
	COUNTER("enospc_retries_total",
	        "Writes retried after a checkpoint gave released space back.", st.enospc_retries);
#undef GAUGE
#undef COUNTER
	pfs_stats_to_prom(&st, b);
	pfs_scrub_metrics(p, b);
	cluster_metrics(pfs_front_cluster(p), b);
	pfs_buf_printf(b, "# HELP pstorfs_volume_size_bytes Provisioned size of a volume.\n"
	                  "# TYPE pstorfs_volume_size_bytes gauge\n");
	pfs_vol_each(p, PFS_MAP_VOLUME, 0, metrics_volume, &ma);
	ma.written = true;
	pfs_buf_printf(b, "# HELP pstorfs_volume_written_bytes Bytes written to a volume.\n"
	                  "# TYPE pstorfs_volume_written_bytes gauge\n");
	pfs_vol_each(p, PFS_MAP_VOLUME, 0, metrics_volume, &ma);
	pfs_analytics_metrics(p, b);
	pfs_temperature_metrics(p, b);
	pfs_tiering_metrics(p, b);
}

int pfs_report(struct pfs *p, enum pfs_report r, bool json, struct pfs_vol *v, struct pfs_buf *b)
{
	int rc = 0;

	switch (r) {
	case PFS_REPORT_STATUS:
		report_status(p, json, b);
		break;
	case PFS_REPORT_REDUCTION:
		report_reduction(p, json, b);
		break;
	case PFS_REPORT_METRICS:
		report_metrics(p, b);
		break;
	case PFS_REPORT_FLASH_IDENTITY:
		report_identity(p, json, b);
		break;
	case PFS_REPORT_FLASH_STATS:
		report_flash_stats(p, json, b);
		break;
	case PFS_REPORT_FLASH_SMART:
		report_smart(p, json, b);
		break;
	case PFS_REPORT_VOLUME:
		rc = report_volume(p, v, json, b);
		break;
	case PFS_REPORT_SCRUB:
		pfs_scrub_report(p, json, b);
		break;
	case PFS_REPORT_STATS: {
		struct pfs_stats st;
		pfs_get_stats(p, &st);
		if (json)
			pfs_stats_to_json(&st, b);
		else
			pfs_stats_to_text(&st, b);
		break;
	}
	default:
		rc = -ENOENT;
	}
	return rc ? rc : b->err;
}
