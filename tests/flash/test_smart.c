/* tests/flash/test_smart.c - SMART / health emulation on devices without an NVMe log
 * (ftl_smart.c): the counters it is made from, the warnings that follow, ftl_get_smart on a
 * memory device, and the text/JSON printers (source line, n/a for what it cannot know).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"

Test(ftl_smart, emulation_maps_counters_to_nvme_units)
{
	struct ftl_stats st = {0};
	struct ftl_dev_stats ds = {0};
	struct ftl_dev_smart s;

	ds.bytes_written = 512000ull * 7 + 1; /* rounds up: 8 units */
	ds.bytes_read = 512000ull * 3;        /* exact: 3 units */
	ds.writes = 40;
	ds.reads = 30;
	st.read_errors = 0;
	st.segments_free = 100;
	st.life_used_pct = 12.7;
	ftl_smart_emulate(&st, &ds, 4, &s);
	cr_expect(s.emulated);
	cr_expect_eq(s.data_units_written, 8);
	cr_expect_eq(s.data_units_read, 3);
	cr_expect_eq(s.host_write_commands, 40);
	cr_expect_eq(s.host_read_commands, 30);
	cr_expect_eq(s.percentage_used, 12);
	cr_expect_eq(s.available_spare_pct, 100);
	cr_expect_eq(s.available_spare_threshold, 10);
	cr_expect_eq(s.media_errors, 0);
	cr_expect_eq(s.critical_warning, 0);
	cr_expect_not(s.has_temperature);
}

Test(ftl_smart, emulation_warns_on_spare_and_media_errors)
{
	struct ftl_stats st = {0};
	struct ftl_dev_stats ds = {0};
	struct ftl_dev_smart s;

	st.segments_free = 1; /* one of a 4-segment GC reserve left */
	st.read_errors = 2;
	st.life_used_pct = 400.0; /* worn past rating: NVMe saturates at 255 */
	ftl_smart_emulate(&st, &ds, 4, &s);
	cr_expect_eq(s.available_spare_pct, 25);
	cr_expect_eq(s.media_errors, 2);
	cr_expect_eq(s.percentage_used, 255);
	cr_expect_eq(s.critical_warning, FTL_SMART_WARN_RELIABILITY);
	st.segments_free = 0;
	ftl_smart_emulate(&st, &ds, 4, &s);
	cr_expect_eq(s.available_spare_pct, 0);
	cr_expect_eq(s.critical_warning, FTL_SMART_WARN_RELIABILITY | FTL_SMART_WARN_SPARE);
}

Test(ftl_smart, get_smart_on_memory_device_is_emulated_and_counts_writes)
{
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct ftl_format_params prm = {.segment_size = 1u << 20, .meta_blocks = 256};
	struct ftl_config cfg = {0};
	struct ftl_dev_smart s;
	uint8_t hash[FTL_HASH_LEN] = {0};
	static uint8_t data[4096];
	struct ftl_addr a;

	cr_assert_eq(ftl_dev_open_mem(64ull << 20, 4096, &dev), 0);
	cr_assert_eq(ftl_dev_smart(dev, &s), -EOPNOTSUPP);
	cr_assert_eq(ftl_format(dev, &prm), 0);
	cfg.dev = dev;
	cr_assert_eq(ftl_open(&cfg, &ftl), 0);
	cr_assert_eq(ftl_get_smart(ftl, &s), 0);
	cr_expect(s.emulated);
	uint64_t before = s.data_units_written;
	memset(data, 0x5a, sizeof(data));
	for (int i = 0; i < 512; i++) { /* 2 MiB of chunks: at least 4 more data units */
		data[0] = (uint8_t)i;
		data[1] = (uint8_t)(i >> 8);
		cr_assert_eq(ftl_write(ftl, data, sizeof(data), hash, NULL, &a), 0);
	}
	cr_assert_eq(ftl_sync(ftl), 0);
	cr_assert_eq(ftl_get_smart(ftl, &s), 0);
	cr_expect_geq(s.data_units_written, before + 2097152 / 512000);
	cr_expect_eq(s.available_spare_pct, 100);
	cr_expect_eq(s.media_errors, 0);
	ftl_close(ftl);
	ftl_dev_close(dev);
}

Test(ftl_smart, text_and_json_mark_the_source)
{
	struct ftl_stats st = {0};
	struct ftl_dev_stats ds = {.bytes_written = 512000};
	struct ftl_dev_smart s;
	char txt[4096];

	st.segments_free = 10;
	ftl_smart_emulate(&st, &ds, 2, &s);
	cr_assert_gt(ftl_smart_to_text(&s, txt, sizeof(txt)), 0);
	cr_expect(strncmp(txt, "source: emulated (not an NVMe device)\n", 38) == 0, "%s", txt);
	cr_expect_not_null(strstr(txt, "data units written:         1 (0.5 MB)\n"), "%s", txt);
	cr_expect_not_null(strstr(txt, "unsafe shutdowns:           n/a\n"), "%s", txt);
	cr_expect_not_null(strstr(txt, "temperature:                n/a\n"), "%s", txt);
	cr_assert_gt(ftl_smart_to_json(&s, txt, sizeof(txt)), 0);
	cr_expect_not_null(strstr(txt, "\"source\":\"emulated\""), "%s", txt);
	cr_expect_not_null(strstr(txt, "\"unsafe_shutdowns\":null"), "%s", txt);
	cr_expect_not_null(strstr(txt, "\"temperature_c\":null"), "%s", txt);

	memset(&s, 0, sizeof(s)); /* as parsed from an NVMe log */
	s.has_temperature = true;
	s.temperature_c = 40;
	s.critical_warning = FTL_SMART_WARN_TEMPERATURE | FTL_SMART_WARN_READ_ONLY;
	s.unsafe_shutdowns = 3;
	cr_assert_gt(ftl_smart_to_text(&s, txt, sizeof(txt)), 0);
	cr_expect(strncmp(txt, "source: nvme\n", 13) == 0, "%s", txt);
	cr_expect_not_null(
	    strstr(txt, "critical warning:           0x0a (temperature, read-only)\n"), "%s", txt);
	cr_expect_not_null(strstr(txt, "temperature:                40 C\n"), "%s", txt);
	cr_expect_not_null(strstr(txt, "unsafe shutdowns:           3\n"), "%s", txt);
	cr_assert_gt(ftl_smart_to_json(&s, txt, sizeof(txt)), 0);
	cr_expect_not_null(strstr(txt, "\"critical_warnings\":[\"temperature\",\"read-only\"]"),
	                   "%s", txt);
	cr_expect_not_null(strstr(txt, "\"unsafe_shutdowns\":3"), "%s", txt);
}

Test(ftl_smart, printers_report_full_length_when_truncated)
{
	struct ftl_dev_smart s = {0};
	char big[4096], small[16];
	int n = ftl_smart_to_text(&s, big, sizeof(big));

	cr_assert_gt(n, 16);
	cr_expect_eq(ftl_smart_to_text(&s, small, sizeof(small)), n);
	cr_expect_eq(small[15], '\0');
}
