/* tests/flash/test_nvme_parse.c - the NVMe structure parsers (ftl_nvme_parse.c) on byte arrays
 * laid out by hand from the NVMe base and ZNS specifications (offsets written out here, not
 * taken from libnvme), so a wrong offset in the parser fails a test.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "ftl.h"

static uint8_t buf[FTL_NVME_IDENTIFY_LEN];

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	p[off] = (uint8_t)v;
	p[off + 1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, size_t off, uint32_t v)
{
	put16(p, off, (uint16_t)v);
	put16(p, off + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	put32(p, off, (uint32_t)v);
	put32(p, off + 4, (uint32_t)(v >> 32));
}

/* An ASCII identity field, space padded as the spec says. */
static void put_str(uint8_t *p, size_t off, size_t len, const char *s)
{
	memset(p + off, ' ', len);
	memcpy(p + off, s, strlen(s));
}

/* Identify Controller as QEMU's emulated controller answers it. */
static void make_id_ctrl(void)
{
	memset(buf, 0, sizeof(buf));
	put16(buf, 0, 0x1b36);                  /* VID: Red Hat (QEMU) */
	put_str(buf, 4, 20, "pstor-nvme0");     /* SN  bytes 4..23 */
	put_str(buf, 24, 40, "QEMU NVMe Ctrl"); /* MN  bytes 24..63 */
	put_str(buf, 64, 8, "8.2.2");           /* FR  bytes 64..71 */
	put32(buf, 80, 0x00010400);             /* VER 1.4.0 */
	put16(buf, 520, 0x015d);                /* ONCS: compare, DSM (bit 2), write zeroes... */
	buf[525] = 0x07;                        /* VWC present */
}

Test(nvme_parse, id_ctrl_strings_vendor_version_and_dsm)
{
	struct ftl_dev_identity id;

	make_id_ctrl();
	memset(&id, 0, sizeof(id));
	cr_assert_eq(ftl_nvme_parse_id_ctrl(buf, sizeof(buf), &id), 0);
	cr_expect_str_eq(id.serial, "pstor-nvme0");
	cr_expect_str_eq(id.model, "QEMU NVMe Ctrl");
	cr_expect_str_eq(id.firmware, "8.2.2");
	cr_expect_eq(id.pci_vid, 0x1b36);
	cr_expect_eq(id.nvme_version, 0x00010400);
	cr_expect(id.dealloc);
	cr_expect(id.volatile_cache);
}

Test(nvme_parse, id_ctrl_full_width_fields_and_no_dsm)
{
	struct ftl_dev_identity id;

	make_id_ctrl();
	/* All 20 serial bytes used, all 40 model bytes, all 8 firmware bytes: nothing cut. */
	memcpy(buf + 4, "ABCDEFGHIJKLMNOPQRST", 20);
	memset(buf + 24, 'm', 40);
	memcpy(buf + 64, "FW123456", 8);
	put16(buf, 520, 0x0001); /* compare only: no DSM */
	buf[525] = 0;
	memset(&id, 0, sizeof(id));
	cr_assert_eq(ftl_nvme_parse_id_ctrl(buf, sizeof(buf), &id), 0);
	cr_expect_str_eq(id.serial, "ABCDEFGHIJKLMNOPQRST");
	cr_expect_eq(strlen(id.model), 40);
	cr_expect_eq(id.model[39], 'm');
	cr_expect_str_eq(id.firmware, "FW123456");
	cr_expect_not(id.dealloc);
	cr_expect_not(id.volatile_cache);
}

Test(nvme_parse, id_ctrl_nul_padding_and_control_bytes)
{
	struct ftl_dev_identity id;

	make_id_ctrl();
	memset(buf + 4, 0, 20);
	memcpy(buf + 4, "SN\n\x01X", 5);
	memset(&id, 0, sizeof(id));
	cr_assert_eq(ftl_nvme_parse_id_ctrl(buf, sizeof(buf), &id), 0);
	cr_expect_str_eq(id.serial, "SN??X");
}

Test(nvme_parse, id_ctrl_short_buffer_is_einval)
{
	struct ftl_dev_identity id;

	make_id_ctrl();
	cr_expect_eq(ftl_nvme_parse_id_ctrl(buf, 4095, &id), -EINVAL);
	cr_expect_eq(ftl_nvme_parse_id_ctrl(NULL, sizeof(buf), &id), -EINVAL);
}

/* Identify Namespace: 2 LBA formats (512 B and 4 KiB + 8 B metadata), format 1 in use. */
static void make_id_ns(void)
{
	memset(buf, 0, sizeof(buf));
	put64(buf, 0, 262144);  /* NSZE: 1 GiB of 4 KiB blocks */
	put64(buf, 8, 262144);  /* NCAP */
	put64(buf, 16, 1000);   /* NUSE */
	buf[24] = 0x14;         /* NSFEAT: OPTPERF (bit 4) | DAE */
	buf[25] = 1;            /* NLBAF: 2 formats, 0's based */
	buf[26] = 0x01;         /* FLBAS: format 1 */
	buf[33] = 0x09;         /* DLFEAT: deallocated reads zeros (001b) + write zeroes dealloc */
	put16(buf, 46, 64);     /* NOIOB: 64 blocks = 256 KiB */
	put16(buf, 64, 3);      /* NPWG: 4 blocks (0's based) */
	put16(buf, 66, 7);      /* NPWA: 8 blocks */
	put16(buf, 68, 15);     /* NPDG: 16 blocks */
	put16(buf, 70, 31);     /* NPDA: 32 blocks */
	put16(buf, 72, 63);     /* NOWS: 64 blocks */
	put16(buf, 128 + 0, 0); /* LBAF0: MS 0, LBADS 9 */
	buf[128 + 2] = 9;
	put16(buf, 128 + 4, 8); /* LBAF1: MS 8, LBADS 12 */
	buf[128 + 6] = 12;
}

Test(nvme_parse, id_ns_format_in_use_capacity_and_hints)
{
	struct ftl_dev_identity id;

	make_id_ns();
	memset(&id, 0, sizeof(id));
	cr_assert_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 3, &id), 0);
	cr_expect_eq(id.nsid, 3);
	cr_expect_eq(id.lba_format, 1);
	cr_expect_eq(id.lba_size, 4096);
	cr_expect_eq(id.metadata_size, 8);
	cr_expect_eq(id.capacity_bytes, 1ull << 30);
	cr_expect_eq(id.used_bytes, 1000ull * 4096);
	cr_expect_eq(id.opt_write_size, 4 * 4096);
	cr_expect_eq(id.opt_write_align, 8 * 4096);
	cr_expect_eq(id.opt_dealloc_size, 16 * 4096);
	cr_expect_eq(id.opt_dealloc_align, 32 * 4096);
	cr_expect_eq(id.opt_write_max, 64 * 4096);
	cr_expect_eq(id.io_boundary, 64 * 4096);
	cr_expect(id.dealloc_reads_zero);
	cr_expect_not(id.zoned);
}

Test(nvme_parse, id_ns_hints_ignored_without_optperf)
{
	struct ftl_dev_identity id;

	make_id_ns();
	buf[24] = 0x00; /* NSFEAT without OPTPERF: NPWG..NOWS are not defined */
	buf[26] = 0x10; /* FLBAS: format 0, metadata at the end of the LBA (bit 4) */
	buf[33] = 0x02; /* DLFEAT: deallocated reads all ones */
	put16(buf, 46, 0);
	memset(&id, 0, sizeof(id));
	cr_assert_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 1, &id), 0);
	cr_expect_eq(id.lba_size, 512);
	cr_expect_eq(id.lba_format, 0);
	cr_expect_eq(id.capacity_bytes, 262144ull * 512);
	cr_expect_eq(id.opt_write_size, 0);
	cr_expect_eq(id.opt_dealloc_size, 0);
	cr_expect_eq(id.opt_write_max, 0);
	cr_expect_eq(id.io_boundary, 0);
	cr_expect_not(id.dealloc_reads_zero);
}

Test(nvme_parse, id_ns_extended_format_index_uses_flbas_bits_6_5)
{
	struct ftl_dev_identity id;

	make_id_ns();
	buf[25] = 20;               /* 21 formats */
	buf[26] = 0x22;             /* bits 3:0 = 2, bits 6:5 = 01b: format 0x12 = 18 */
	buf[128 + 18 * 4 + 2] = 16; /* format 18: 64 KiB */
	memset(&id, 0, sizeof(id));
	cr_assert_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 1, &id), 0);
	cr_expect_eq(id.lba_format, 18);
	cr_expect_eq(id.lba_size, 65536);
}

Test(nvme_parse, id_ns_rejects_bad_formats_and_empty_namespaces)
{
	struct ftl_dev_identity id;

	make_id_ns();
	buf[26] = 0x02; /* format 2 of 2 formats (0..1): out of range */
	cr_expect_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 1, &id), -EINVAL);
	make_id_ns();
	buf[128 + 6] = 8; /* 256-byte LBAs: below 512 */
	cr_expect_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 1, &id), -EINVAL);
	make_id_ns();
	buf[128 + 6] = 17; /* 128 KiB LBAs: above 64 KiB */
	cr_expect_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 1, &id), -EINVAL);
	make_id_ns();
	put64(buf, 0, 0); /* NSZE 0 */
	cr_expect_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 1, &id), -EINVAL);
	make_id_ns();
	put64(buf, 0, UINT64_MAX / 1024); /* bytes overflow 64 bits */
	cr_expect_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 1, &id), -EINVAL);
	make_id_ns();
	cr_expect_eq(ftl_nvme_parse_id_ns(buf, 100, 1, &id), -EINVAL);
}

/* ZNS Identify Namespace for format 1 (4 KiB): 64 MiB zones, MAR 13 (14), MOR 12 (13). */
static void make_zns_id_ns(void)
{
	memset(buf, 0, sizeof(buf));
	put32(buf, 4, 13);                 /* MAR, 0's based */
	put32(buf, 8, 12);                 /* MOR, 0's based */
	put64(buf, 2816 + 0 * 16, 131072); /* LBAFE0 ZSZE: 64 MiB of 512 B */
	put64(buf, 2816 + 1 * 16, 16384);  /* LBAFE1 ZSZE: 64 MiB of 4 KiB */
	buf[2816 + 1 * 16 + 8] = 0;        /* ZDES: no extension */
}

Test(nvme_parse, zns_id_ns_zone_size_and_limits)
{
	struct ftl_dev_identity id;

	make_id_ns();
	memset(&id, 0, sizeof(id));
	cr_assert_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 2, &id), 0);
	make_zns_id_ns();
	cr_assert_eq(ftl_nvme_parse_zns_id_ns(buf, sizeof(buf), &id), 0);
	cr_expect(id.zoned);
	cr_expect_eq(id.zone_size, 64ull << 20);
	cr_expect_eq(id.zone_count, 16); /* 1 GiB / 64 MiB */
	cr_expect_eq(id.max_active_zones, 14);
	cr_expect_eq(id.max_open_zones, 13);
}

Test(nvme_parse, zns_id_ns_no_limits_and_bad_zone_size)
{
	struct ftl_dev_identity id;

	make_id_ns();
	memset(&id, 0, sizeof(id));
	cr_assert_eq(ftl_nvme_parse_id_ns(buf, sizeof(buf), 2, &id), 0);
	make_zns_id_ns();
	put32(buf, 4, UINT32_MAX); /* all ones: no limit */
	put32(buf, 8, UINT32_MAX);
	cr_assert_eq(ftl_nvme_parse_zns_id_ns(buf, sizeof(buf), &id), 0);
	cr_expect_eq(id.max_active_zones, 0);
	cr_expect_eq(id.max_open_zones, 0);
	put64(buf, 2816 + 16, 0); /* no zone size for the format in use */
	cr_expect_eq(ftl_nvme_parse_zns_id_ns(buf, sizeof(buf), &id), -EINVAL);
	put64(buf, 2816 + 16, 1ull << 30); /* one zone larger than the namespace */
	cr_expect_eq(ftl_nvme_parse_zns_id_ns(buf, sizeof(buf), &id), -EINVAL);
}

/* SMART / Health log with every field set to a distinct value. */
static void make_smart(void)
{
	memset(buf, 0, FTL_NVME_SMART_LEN);
	buf[0] = 0x05;        /* critical warning: spare | reliability */
	put16(buf, 1, 323);   /* composite temperature: 323 K = 50 C */
	buf[3] = 97;          /* available spare */
	buf[4] = 10;          /* available spare threshold */
	buf[5] = 3;           /* percentage used */
	put64(buf, 32, 1111); /* data units read */
	put64(buf, 48, 2222); /* data units written */
	put64(buf, 64, 3333); /* host read commands */
	put64(buf, 80, 4444); /* host write commands */
	put64(buf, 112, 55);  /* power cycles */
	put64(buf, 128, 66);  /* power on hours */
	put64(buf, 144, 7);   /* unsafe shutdowns */
	put64(buf, 160, 8);   /* media errors */
	put64(buf, 176, 9);   /* error log entries */
	put32(buf, 192, 11);  /* warning temperature time */
	put32(buf, 196, 12);  /* critical temperature time */
}

Test(nvme_parse, smart_every_field_at_its_offset)
{
	struct ftl_dev_smart s;

	make_smart();
	cr_assert_eq(ftl_nvme_parse_smart(buf, FTL_NVME_SMART_LEN, &s), 0);
	cr_expect_not(s.emulated);
	cr_expect_eq(s.critical_warning, 0x05);
	cr_expect(s.has_temperature);
	cr_expect_eq(s.temperature_c, 50);
	cr_expect_eq(s.available_spare_pct, 97);
	cr_expect_eq(s.available_spare_threshold, 10);
	cr_expect_eq(s.percentage_used, 3);
	cr_expect_eq(s.data_units_read, 1111);
	cr_expect_eq(s.data_units_written, 2222);
	cr_expect_eq(s.host_read_commands, 3333);
	cr_expect_eq(s.host_write_commands, 4444);
	cr_expect_eq(s.power_cycles, 55);
	cr_expect_eq(s.power_on_hours, 66);
	cr_expect_eq(s.unsafe_shutdowns, 7);
	cr_expect_eq(s.media_errors, 8);
	cr_expect_eq(s.error_log_entries, 9);
	cr_expect_eq(s.warning_temp_minutes, 11);
	cr_expect_eq(s.critical_temp_minutes, 12);
}

Test(nvme_parse, smart_no_temperature_large_and_saturated_counters)
{
	struct ftl_dev_smart s;

	make_smart();
	put16(buf, 1, 0);                      /* no temperature reported */
	put64(buf, 48, 0x0123456789abcdefull); /* low 64 bits only */
	buf[160 + 8] = 1;                      /* media errors >= 2^64 */
	cr_assert_eq(ftl_nvme_parse_smart(buf, FTL_NVME_SMART_LEN, &s), 0);
	cr_expect_not(s.has_temperature);
	cr_expect_eq(s.data_units_written, 0x0123456789abcdefull);
	cr_expect_eq(s.media_errors, UINT64_MAX);
	put16(buf, 1, 250); /* below 0 C */
	cr_assert_eq(ftl_nvme_parse_smart(buf, FTL_NVME_SMART_LEN, &s), 0);
	cr_expect_eq(s.temperature_c, -23);
	cr_expect_eq(ftl_nvme_parse_smart(buf, 511, &s), -EINVAL);
}

/* A zone report of 3 zones of 64 MiB (16384 blocks of 4 KiB), 60 MiB capacity each. */
static size_t make_zone_report(size_t ext_len)
{
	static const struct {
		uint8_t zs;
		uint64_t wp;
	} z[3] = {{0x10, 0}, {0x20, 16384 + 100}, {0xe0, 2 * 16384 + 15360}};
	size_t stride = 64 + ext_len;

	memset(buf, 0, sizeof(buf));
	put64(buf, 0, 3); /* number of zones */
	for (int i = 0; i < 3; i++) {
		uint8_t *d = buf + 64 + i * stride;

		d[0] = 0x02;                       /* ZT: sequential write required */
		d[1] = z[i].zs;                    /* ZS in bits 7:4 */
		d[2] = i == 2 ? 0x01 : 0;          /* ZA: zone finished by controller */
		put64(d, 8, 15360);                /* ZCAP */
		put64(d, 16, (uint64_t)i * 16384); /* ZSLBA */
		put64(d, 24, i == 0 ? 0 : z[i].wp);
		if (ext_len)
			memset(d + 64, 0xa5, ext_len); /* extension bytes must be skipped */
	}
	return 64 + 3 * stride;
}

Test(nvme_parse, zone_report_states_pointers_and_capacity)
{
	struct ftl_zone zones[8];
	uint64_t nr = 0;
	size_t len = make_zone_report(0);

	cr_assert_eq(ftl_nvme_parse_zone_report(buf, len, 0, 4096, zones, 8, &nr), 3);
	cr_expect_eq(nr, 3);
	cr_expect_eq(zones[0].state, FTL_ZONE_EMPTY);
	cr_expect_eq(zones[1].state, FTL_ZONE_IMPL_OPEN);
	cr_expect_eq(zones[2].state, FTL_ZONE_FULL);
	for (int i = 0; i < 3; i++) {
		cr_expect_eq(zones[i].type, FTL_ZONE_TYPE_SEQ_WRITE);
		cr_expect_eq(zones[i].start, (uint64_t)i * (64ull << 20));
		cr_expect_eq(zones[i].capacity, 60ull << 20);
	}
	cr_expect_eq(zones[0].write_pointer, 0);
	cr_expect_eq(zones[1].write_pointer, (64ull << 20) + 100 * 4096);
	cr_expect_eq(zones[2].attrs, 0x01);
	cr_expect_str_eq(ftl_zone_state_name(zones[1].state), "implicitly-open");
	cr_expect_str_eq(ftl_zone_state_name(FTL_ZONE_OFFLINE), "offline");
	cr_expect_str_eq(ftl_zone_state_name(0x7), "unknown");
}

Test(nvme_parse, zone_report_extended_descriptors_and_limits)
{
	struct ftl_zone zones[8];
	uint64_t nr = 0;
	size_t len = make_zone_report(64);

	cr_assert_eq(ftl_nvme_parse_zone_report(buf, len, 64, 4096, zones, 8, &nr), 3);
	cr_expect_eq(zones[2].start, 2 * (64ull << 20));
	cr_expect_eq(zones[2].state, FTL_ZONE_FULL);
	/* MAX caps the count; the header's count still comes back. */
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, len, 64, 4096, zones, 2, &nr), 2);
	cr_expect_eq(nr, 3);
	/* A header claiming more zones than the buffer holds: only what is there. */
	put64(buf, 0, 1000);
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, len, 64, 4096, zones, 8, &nr), 3);
	cr_expect_eq(nr, 1000);
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, 63, 0, 4096, zones, 8, NULL), -EINVAL);
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, len, 32, 4096, zones, 8, NULL), -EINVAL);
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, len, 0, 1000, zones, 8, NULL), -EINVAL);
}

Test(nvme_parse, zone_report_full_zone_write_pointer_is_its_end)
{
	struct ftl_zone zones[4];
	size_t len = make_zone_report(0);

	put64(buf, 64 + 2 * 64 + 24, UINT64_MAX); /* zone 2 (full): WP all ones, as QEMU sends */
	cr_assert_eq(ftl_nvme_parse_zone_report(buf, len, 0, 4096, zones, 4, NULL), 3);
	cr_expect_eq(zones[2].write_pointer, 2 * (64ull << 20) + (60ull << 20));
	put64(buf, 64 + 1 * 64 + 24, UINT64_MAX); /* zone 1 is open: its WP must be valid */
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, len, 0, 4096, zones, 4, NULL), -EINVAL);
}

Test(nvme_parse, zone_report_write_pointer_outside_its_zone_is_einval)
{
	struct ftl_zone zones[4];
	size_t len = make_zone_report(0);

	put64(buf, 64 + 1 * 64 + 24, 16384 - 1); /* zone 1 (open): WP before its start */
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, len, 0, 4096, zones, 4, NULL), -EINVAL);
	put64(buf, 64 + 1 * 64 + 24, 16384 + 15360 + 1); /* past start + capacity */
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, len, 0, 4096, zones, 4, NULL), -EINVAL);
	put64(buf, 64 + 1 * 64 + 24, 16384 + 15360); /* exactly at the end: no room left */
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, len, 0, 4096, zones, 4, NULL), 3);
	cr_expect_eq(zones[1].write_pointer, (64ull << 20) + (60ull << 20));
}

Test(nvme_parse, zone_report_lba_overflow_is_einval)
{
	struct ftl_zone zones[4];
	size_t len = make_zone_report(0);

	put64(buf, 64 + 16, UINT64_MAX / 2); /* ZSLBA * 4096 overflows */
	cr_expect_eq(ftl_nvme_parse_zone_report(buf, len, 0, 4096, zones, 4, NULL), -EINVAL);
}
