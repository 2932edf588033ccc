/* analytics/analytics_health.c - the health grade: ok / warning / critical from the device's
 * SMART log or the FTL's own wear, the store's error counters, the scrub and the trends the
 * history shows, each finding with its reason. Pure: the caller gathers the inputs.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "analytics.h"

const char *const analytics_health_names[3] = {"ok", "warning", "critical"};

static void add(struct analytics_health *h, enum analytics_health_status level, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));
static void add(struct analytics_health *h, enum analytics_health_status level, const char *fmt,
                ...)
{
	va_list ap;

	if (level > h->status)
		h->status = level;
	if (h->nreasons >= ANALYTICS_HEALTH_MAX_REASONS)
		return;
	h->reason[h->nreasons].level = level;
	va_start(ap, fmt);
	vsnprintf(h->reason[h->nreasons].text, sizeof(h->reason[0].text), fmt, ap);
	va_end(ap);
	h->nreasons++;
}

static bool positive(double v)
{
	return isfinite(v) && v > 0;
}

void analytics_health_grade(const struct analytics_health_input *in, struct analytics_health *out)
{
	static const struct {
		unsigned bit;
		const char *what;
	} warns[] = {
	    {0x01, "available spare below its threshold"},
	    {0x02, "a temperature threshold crossed"},
	    {0x04, "reliability degraded by media errors"},
	    {0x08, "media placed in read-only mode"},
	    {0x10, "volatile memory backup failed"},
	    {0x20, "persistent memory region read-only"},
	};

	memset(out, 0, sizeof(*out));
	if (in->smart) {
		for (size_t i = 0; i < sizeof(warns) / sizeof(warns[0]); i++)
			if (in->critical_warning & warns[i].bit)
				add(out, ANALYTICS_CRITICAL, "SMART critical warning: %s",
				    warns[i].what);
		if (isfinite(in->spare_pct) && isfinite(in->spare_threshold_pct) &&
		    in->spare_pct < in->spare_threshold_pct)
			add(out, ANALYTICS_CRITICAL,
			    "available spare %.0f%% is below its threshold %.0f%%", in->spare_pct,
			    in->spare_threshold_pct);
		/* NVMe says percentage_used may pass 100 without a failure: past the rated
		 * endurance, not broken. */
		if (isfinite(in->percentage_used) && in->percentage_used >= 100)
			add(out, ANALYTICS_WARNING,
			    "SMART percentage used %.0f%%: past the rated endurance (the drive may "
			    "keep working; plan its replacement)",
			    in->percentage_used);
		else if (isfinite(in->percentage_used) && in->percentage_used >= 80)
			add(out, ANALYTICS_WARNING, "SMART percentage used %.0f%%",
			    in->percentage_used);
		if (positive(in->media_errors))
			add(out, ANALYTICS_WARNING, "%.0f media errors", in->media_errors);
		if (isfinite(in->temperature_c) && in->temperature_c >= 70)
			add(out, ANALYTICS_WARNING, "temperature %.0f C", in->temperature_c);
	}
	if (isfinite(in->life_used_pct) && in->life_used_pct >= 100)
		add(out, ANALYTICS_WARNING,
		    "flash life used %.1f%% (erase counts past the rated endurance)",
		    in->life_used_pct);
	else if (isfinite(in->life_used_pct) && in->life_used_pct >= 80)
		add(out, ANALYTICS_WARNING, "flash life used %.1f%%", in->life_used_pct);
	if (positive(in->damaged_refs))
		add(out, ANALYTICS_CRITICAL, "%.0f block references to damaged or missing chunks",
		    in->damaged_refs);
	if (positive(in->commit_errors))
		add(out, ANALYTICS_CRITICAL, "%.0f failed metadata commits", in->commit_errors);
	if (positive(in->checksum_errors))
		add(out, ANALYTICS_WARNING, "%.0f chunks failed their checksum",
		    in->checksum_errors);
	if (positive(in->read_errors))
		add(out, ANALYTICS_WARNING, "%.0f read errors", in->read_errors);
	/* What the last scrub found, by what it costs: blocks a read fails on now are lost data
	 * until restored (critical); damaged chunks nothing reads yet, at-risk chunks and damaged
	 * metadata copies foretell it (warning). */
	if (positive(in->scrub_blocks_failing))
		add(out, ANALYTICS_CRITICAL,
		    "the last scrub found %.0f volume blocks whose reads fail",
		    in->scrub_blocks_failing);
	if (positive(in->scrub_damaged_chunks))
		add(out, ANALYTICS_WARNING, "the last scrub found %.0f damaged chunks",
		    in->scrub_damaged_chunks);
	if (positive(in->scrub_at_risk))
		add(out, ANALYTICS_WARNING,
		    "the last scrub found %.0f chunks readable only through a damaged summary",
		    in->scrub_at_risk);
	if (positive(in->scrub_metadata))
		add(out, ANALYTICS_WARNING, "the last scrub found %.0f damaged metadata copies",
		    in->scrub_metadata);
	if (in->scrub_found_damage && !positive(in->scrub_blocks_failing) &&
	    !positive(in->scrub_damaged_chunks) && !positive(in->scrub_at_risk) &&
	    !positive(in->scrub_metadata))
		add(out, ANALYTICS_WARNING, "the last scrub found damage");
	if (isfinite(in->wearout_days) && in->wearout_days <= 90)
		add(out, ANALYTICS_WARNING, "flash wear-out foreseen in %.0f days",
		    in->wearout_days);
	if (isfinite(in->spare_days) && in->spare_days <= 90)
		add(out, ANALYTICS_WARNING, "spare foreseen below its threshold in %.0f days",
		    in->spare_days);
	if (isfinite(in->wa_recent) && isfinite(in->wa_before) && in->wa_before > 0 &&
	    in->wa_recent >= 1.5 * in->wa_before)
		add(out, ANALYTICS_WARNING,
		    "write amplification up from %.2f to %.2f in the last week", in->wa_before,
		    in->wa_recent);
}
