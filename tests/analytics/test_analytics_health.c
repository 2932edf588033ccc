/* tests/analytics/test_analytics_health.c - the health grade: each finding raises the status to
 * its level with a reason, and nothing known wrong is ok.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "analytics.h"

static struct analytics_health_input healthy(void)
{
	return (struct analytics_health_input){
	    .life_used_pct = 12,
	    .smart = true,
	    .percentage_used = 3,
	    .spare_pct = 100,
	    .spare_threshold_pct = 10,
	    .media_errors = 0,
	    .temperature_c = 40,
	    .wa_recent = 1.2,
	    .wa_before = 1.1,
	    .wearout_days = NAN,
	    .spare_days = NAN,
	};
}

static bool has(const struct analytics_health *h, const char *text)
{
	for (unsigned i = 0; i < h->nreasons; i++)
		if (strstr(h->reason[i].text, text))
			return true;
	return false;
}

Test(analytics_health, nothing_wrong_is_ok)
{
	struct analytics_health_input in = healthy();
	struct analytics_health h;

	analytics_health_grade(&in, &h);
	cr_expect_eq(h.status, ANALYTICS_OK);
	cr_expect_eq(h.nreasons, 0);
	cr_expect_str_eq(analytics_health_names[h.status], "ok");
}

static void expect(const struct analytics_health_input *in, enum analytics_health_status want,
                   const char *reason)
{
	struct analytics_health h;

	analytics_health_grade(in, &h);
	cr_expect_eq(h.status, want, "'%s': status %s", reason, analytics_health_names[h.status]);
	cr_expect(has(&h, reason), "no reason '%s' (%u reasons, first '%s')", reason, h.nreasons,
	          h.nreasons ? h.reason[0].text : "");
}

Test(analytics_health, each_finding_with_its_level_and_reason)
{
	struct analytics_health_input in;

	in = healthy(), in.percentage_used = 130;
	expect(&in, ANALYTICS_WARNING, "SMART percentage used 130%: past the rated endurance");
	in = healthy(), in.percentage_used = 85;
	expect(&in, ANALYTICS_WARNING, "SMART percentage used 85%");
	in = healthy(), in.spare_pct = 5;
	expect(&in, ANALYTICS_CRITICAL, "available spare 5% is below its threshold 10%");
	in = healthy(), in.critical_warning = 0x04 | 0x08;
	expect(&in, ANALYTICS_CRITICAL, "reliability degraded by media errors");
	expect(&in, ANALYTICS_CRITICAL, "media placed in read-only mode");
	in = healthy(), in.media_errors = 3;
	expect(&in, ANALYTICS_WARNING, "3 media errors");
	in = healthy(), in.temperature_c = 75;
	expect(&in, ANALYTICS_WARNING, "temperature 75 C");
	in = healthy(), in.life_used_pct = 101;
	expect(&in, ANALYTICS_WARNING, "flash life used 101.0% (erase counts past");
	in = healthy(), in.life_used_pct = 85;
	expect(&in, ANALYTICS_WARNING, "flash life used 85.0%");
	in = healthy(), in.damaged_refs = 2;
	expect(&in, ANALYTICS_CRITICAL, "2 block references to damaged or missing chunks");
	in = healthy(), in.commit_errors = 1;
	expect(&in, ANALYTICS_CRITICAL, "1 failed metadata commits");
	in = healthy(), in.checksum_errors = 4;
	expect(&in, ANALYTICS_WARNING, "4 chunks failed their checksum");
	in = healthy(), in.read_errors = 1;
	expect(&in, ANALYTICS_WARNING, "1 read errors");
	in = healthy(), in.scrub_found_damage = true;
	expect(&in, ANALYTICS_WARNING, "the last scrub found damage");
	in = healthy(), in.scrub_found_damage = true, in.scrub_blocks_failing = 7;
	expect(&in, ANALYTICS_CRITICAL, "the last scrub found 7 volume blocks whose reads fail");
	in = healthy(), in.scrub_found_damage = true, in.scrub_damaged_chunks = 2;
	expect(&in, ANALYTICS_WARNING, "the last scrub found 2 damaged chunks");
	in = healthy(), in.scrub_found_damage = true, in.scrub_at_risk = 5;
	expect(&in, ANALYTICS_WARNING, "5 chunks readable only through a damaged summary");
	in = healthy(), in.scrub_found_damage = true, in.scrub_metadata = 1;
	expect(&in, ANALYTICS_WARNING, "the last scrub found 1 damaged metadata copies");
	in = healthy(), in.wearout_days = 45;
	expect(&in, ANALYTICS_WARNING, "flash wear-out foreseen in 45 days");
	in = healthy(), in.spare_days = 30;
	expect(&in, ANALYTICS_WARNING, "spare foreseen below its threshold in 30 days");
	in = healthy(), in.wa_recent = 3, in.wa_before = 1.5;
	expect(&in, ANALYTICS_WARNING, "write amplification up from 1.50 to 3.00");
}

Test(analytics_health, the_worst_finding_sets_the_status)
{
	struct analytics_health_input in = healthy();
	struct analytics_health h;

	in.checksum_errors = 1;
	in.damaged_refs = 1;
	in.wearout_days = 400; /* beyond 90 days: not a finding */
	analytics_health_grade(&in, &h);
	cr_expect_eq(h.status, ANALYTICS_CRITICAL);
	cr_expect_eq(h.nreasons, 2);
}

Test(analytics_health, smart_fields_count_only_from_a_real_log)
{
	struct analytics_health_input in = healthy();
	struct analytics_health h;

	in.smart = false;
	in.spare_pct = 0;
	in.critical_warning = 0xff;
	in.percentage_used = 200;
	analytics_health_grade(&in, &h);
	cr_expect_eq(h.status, ANALYTICS_OK, "%u reasons", h.nreasons);
}
