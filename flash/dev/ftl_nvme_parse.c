/* flash/dev/ftl_nvme_parse.c - turns the raw bytes of NVMe Identify Controller/Namespace, the ZNS
 * Identify Namespace, the SMART / health log and zone reports into ftl_dev structures. Pure:
 * no I/O and no libnvme, byte offsets straight from the NVMe base and ZNS specifications, so
 * they are tested from captured bytes. Device data is untrusted: every field is range checked.
 */
#include <errno.h>
#include <string.h>

#include "ftl_dev.h"

static uint16_t le16_at(const uint8_t *p, size_t off)
{
	return (uint16_t)(p[off] | (uint16_t)p[off + 1] << 8);
}

static uint32_t le32_at(const uint8_t *p, size_t off)
{
	return (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
	       (uint32_t)p[off + 3] << 24;
}

static uint64_t le64_at(const uint8_t *p, size_t off)
{
	return (uint64_t)le32_at(p, off) | (uint64_t)le32_at(p, off + 4) << 32;
}

/* 128-bit SMART counters: values above 2^64 do not happen in practice; saturate, never wrap. */
static uint64_t le128_sat_at(const uint8_t *p, size_t off)
{
	for (size_t i = 8; i < 16; i++) {
		if (p[off + i])
			return UINT64_MAX;
	}
	return le64_at(p, off);
}

/* Identity strings are space-padded ASCII; a controller may pad with NULs or send bytes a
 * report (and JSON) cannot carry, which become '?'. */
static void copy_ascii(char *dst, size_t dlen, const uint8_t *src, size_t slen)
{
	size_t n = slen < dlen - 1 ? slen : dlen - 1;

	while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == '\0'))
		n--;
	for (size_t i = 0; i < n; i++)
		dst[i] = src[i] >= 0x20 && src[i] < 0x7f ? (char)src[i] : '?';
	dst[n] = '\0';
}

/* COUNT logical blocks in bytes, 0 when that does not fit the 32-bit field ("not reported" is
 * better than a wrapped size that alignment would then trust). */
static uint32_t lbas_to_u32(uint64_t count, uint32_t lba_size)
{
	uint64_t v = count * lba_size; /* count < 2^17, lba_size <= 2^16: no overflow */

	return v > UINT32_MAX ? 0 : (uint32_t)v;
}

static bool lba_size_ok(uint32_t lba_size)
{
	return lba_size >= 512 && lba_size <= 65536 && (lba_size & (lba_size - 1)) == 0;
}

/* Identify Controller (CNS 01h) byte offsets. */
enum {
	IDC_VID = 0,    /* 2 bytes */
	IDC_SN = 4,     /* 20 bytes ASCII */
	IDC_MN = 24,    /* 40 bytes ASCII */
	IDC_FR = 64,    /* 8 bytes ASCII */
	IDC_VER = 80,   /* 4 bytes */
	IDC_ONCS = 520, /* 2 bytes: bit 2 Dataset Management */
	IDC_VWC = 525,  /* bit 0: volatile write cache present */
	IDC_ONCS_DSM = 1u << 2,
};

int ftl_nvme_parse_id_ctrl(const void *buf, size_t len, struct ftl_dev_identity *id)
{
	const uint8_t *p = buf;

	if (!buf || !id || len < FTL_NVME_IDENTIFY_LEN)
		return -EINVAL;
	copy_ascii(id->serial, sizeof(id->serial), p + IDC_SN, 20);
	copy_ascii(id->model, sizeof(id->model), p + IDC_MN, 40);
	copy_ascii(id->firmware, sizeof(id->firmware), p + IDC_FR, 8);
	id->pci_vid = le16_at(p, IDC_VID);
	id->nvme_version = le32_at(p, IDC_VER);
	id->dealloc = (le16_at(p, IDC_ONCS) & IDC_ONCS_DSM) != 0;
	id->volatile_cache = (p[IDC_VWC] & 1) != 0;
	return 0;
}

/* Identify Namespace (CNS 00h, NVM command set) byte offsets. */
enum {
	IDN_NSZE = 0,
	IDN_NCAP = 8,
	IDN_NUSE = 16,
	IDN_NSFEAT = 24, /* bit 4 OPTPERF: NPWG, NPWA, NPDG, NPDA and NOWS are defined */
	IDN_NLBAF = 25,  /* number of LBA formats, 0's based */
	IDN_FLBAS = 26,  /* bits 3:0 format index, bits 6:5 its upper bits (beyond 16 formats) */
	IDN_DLFEAT = 33, /* bits 2:0 = 001b: deallocated blocks read as zeros */
	IDN_NOIOB = 46,  /* LBAs, not 0's based; 0 = not reported */
	IDN_NPWG = 64,   /* the five below: LBAs, 0's based */
	IDN_NPWA = 66,
	IDN_NPDG = 68,
	IDN_NPDA = 70,
	IDN_NOWS = 72,
	IDN_NULBAF = 82, /* unique-attribute LBA formats after the NLBAF ones */
	IDN_LBAF = 128,  /* 64 x 4 bytes: MS (2 bytes), LBADS (log2 of the LBA size), RP */
	IDN_NSFEAT_OPTPERF = 1u << 4,
};

int ftl_nvme_parse_id_ns(const void *buf, size_t len, uint32_t nsid, struct ftl_dev_identity *id)
{
	const uint8_t *p = buf;
	uint8_t flbas, ds;
	unsigned idx;
	uint64_t nsze, nuse;
	uint32_t lba;

	if (!buf || !id || len < FTL_NVME_IDENTIFY_LEN)
		return -EINVAL;
	flbas = p[IDN_FLBAS];
	idx = (flbas & 0x0fu) | ((flbas & 0x60u) >> 1);
	if (idx > (unsigned)p[IDN_NLBAF] + p[IDN_NULBAF] || idx >= 64)
		return -EINVAL;
	ds = p[IDN_LBAF + 4 * idx + 2];
	if (ds < 9 || ds > 16)
		return -EINVAL;
	lba = 1u << ds;
	nsze = le64_at(p, IDN_NSZE);
	if (nsze == 0 || nsze > UINT64_MAX / lba)
		return -EINVAL;
	id->nsid = nsid;
	id->lba_size = lba;
	id->lba_format = idx;
	id->metadata_size = le16_at(p, IDN_LBAF + 4 * idx);
	id->capacity_bytes = nsze * lba;
	nuse = le64_at(p, IDN_NUSE);
	id->used_bytes = nuse > nsze ? id->capacity_bytes : nuse * lba;
	id->dealloc_reads_zero = (p[IDN_DLFEAT] & 0x7) == 1;
	id->io_boundary = lbas_to_u32(le16_at(p, IDN_NOIOB), lba);
	if (p[IDN_NSFEAT] & IDN_NSFEAT_OPTPERF) {
		id->opt_write_size = lbas_to_u32((uint64_t)le16_at(p, IDN_NPWG) + 1, lba);
		id->opt_write_align = lbas_to_u32((uint64_t)le16_at(p, IDN_NPWA) + 1, lba);
		id->opt_dealloc_size = lbas_to_u32((uint64_t)le16_at(p, IDN_NPDG) + 1, lba);
		id->opt_dealloc_align = lbas_to_u32((uint64_t)le16_at(p, IDN_NPDA) + 1, lba);
		id->opt_write_max = lbas_to_u32((uint64_t)le16_at(p, IDN_NOWS) + 1, lba);
	}
	id->rotational = false;
	return 0;
}

/* ZNS Identify Namespace (CNS 05h, CSI 02h) byte offsets. */
enum {
	IDZ_MAR = 4,      /* max active resources, 0's based; all ones = no limit */
	IDZ_MOR = 8,      /* max open resources, same encoding */
	IDZ_LBAFE = 2816, /* 64 x 16 bytes, one per LBA format: ZSZE (8 bytes, LBAs), ZDES */
};

static uint32_t zns_limit(uint32_t v)
{
	return v == UINT32_MAX ? 0 : v + 1;
}

int ftl_nvme_parse_zns_id_ns(const void *buf, size_t len, struct ftl_dev_identity *id)
{
	const uint8_t *p = buf;
	uint64_t zsze, zones;

	if (!buf || !id || len < FTL_NVME_IDENTIFY_LEN || !lba_size_ok(id->lba_size) ||
	    id->lba_format >= 64)
		return -EINVAL;
	zsze = le64_at(p, IDZ_LBAFE + 16 * (size_t)id->lba_format);
	if (zsze == 0 || zsze > UINT64_MAX / id->lba_size)
		return -EINVAL;
	zones = id->capacity_bytes / (zsze * id->lba_size);
	if (zones == 0 || zones > UINT32_MAX)
		return -EINVAL;
	id->zoned = true;
	id->zone_size = zsze * id->lba_size;
	id->zone_count = (uint32_t)zones;
	id->max_active_zones = zns_limit(le32_at(p, IDZ_MAR));
	id->max_open_zones = zns_limit(le32_at(p, IDZ_MOR));
	return 0;
}

/* SMART / Health Information log (log id 02h) byte offsets. */
enum {
	SL_CRIT = 0,
	SL_TEMP = 1, /* 2 bytes, Kelvin; 0 = not reported */
	SL_SPARE = 3,
	SL_SPARE_THRESH = 4,
	SL_USED = 5,
	SL_DUR = 32, /* 16-byte counters from here */
	SL_DUW = 48,
	SL_HRC = 64,
	SL_HWC = 80,
	SL_PWR_CYCLES = 112,
	SL_POH = 128,
	SL_UNSAFE = 144,
	SL_MEDIA = 160,
	SL_ERRLOG = 176,
	SL_WARN_TIME = 192, /* 4 bytes, minutes */
	SL_CRIT_TIME = 196,
};

int ftl_nvme_parse_smart(const void *buf, size_t len, struct ftl_dev_smart *s)
{
	const uint8_t *p = buf;
	unsigned kelvin;

	if (!buf || !s || len < FTL_NVME_SMART_LEN)
		return -EINVAL;
	memset(s, 0, sizeof(*s));
	kelvin = le16_at(p, SL_TEMP);
	s->critical_warning = p[SL_CRIT];
	s->has_temperature = kelvin != 0;
	s->temperature_c = kelvin ? (int32_t)kelvin - 273 : 0;
	s->available_spare_pct = p[SL_SPARE];
	s->available_spare_threshold = p[SL_SPARE_THRESH];
	s->percentage_used = p[SL_USED];
	s->data_units_read = le128_sat_at(p, SL_DUR);
	s->data_units_written = le128_sat_at(p, SL_DUW);
	s->host_read_commands = le128_sat_at(p, SL_HRC);
	s->host_write_commands = le128_sat_at(p, SL_HWC);
	s->power_cycles = le128_sat_at(p, SL_PWR_CYCLES);
	s->power_on_hours = le128_sat_at(p, SL_POH);
	s->unsafe_shutdowns = le128_sat_at(p, SL_UNSAFE);
	s->media_errors = le128_sat_at(p, SL_MEDIA);
	s->error_log_entries = le128_sat_at(p, SL_ERRLOG);
	s->warning_temp_minutes = le32_at(p, SL_WARN_TIME);
	s->critical_temp_minutes = le32_at(p, SL_CRIT_TIME);
	return 0;
}

/* Zone descriptor byte offsets (ZNS specification, Report Zones data structure). */
enum {
	ZD_ZT = 0,     /* bits 3:0 zone type */
	ZD_ZS = 1,     /* bits 7:4 zone state */
	ZD_ZA = 2,     /* zone attributes */
	ZD_ZCAP = 8,   /* zone capacity, LBAs */
	ZD_ZSLBA = 16, /* zone start LBA */
	ZD_WP = 24,    /* write pointer LBA */
};

static bool lbas_to_bytes(uint64_t lbas, uint32_t lba_size, uint64_t *out)
{
	if (lbas > UINT64_MAX / lba_size)
		return false;
	*out = lbas * lba_size;
	return true;
}

int ftl_nvme_parse_zone_report(const void *buf, size_t len, size_t ext_len, uint32_t lba_size,
                               struct ftl_zone *zones, uint32_t max, uint64_t *nr_reported)
{
	const uint8_t *p = buf;
	size_t stride = FTL_NVME_ZONE_DESC_LEN + ext_len;
	uint64_t nr, fit;
	uint32_t n;

	if (!buf || (!zones && max) || len < FTL_NVME_ZONE_HDR_LEN || ext_len % 64 ||
	    ext_len > 255 * 64 || !lba_size_ok(lba_size))
		return -EINVAL;
	nr = le64_at(p, 0);
	if (nr_reported)
		*nr_reported = nr;
	fit = (len - FTL_NVME_ZONE_HDR_LEN) / stride;
	n = (uint32_t)(nr < fit ? nr : fit);
	if (n > max)
		n = max;
	if (n > INT32_MAX) /* the count is the return value */
		n = INT32_MAX;
	for (uint32_t i = 0; i < n; i++) {
		const uint8_t *d = p + FTL_NVME_ZONE_HDR_LEN + (size_t)i * stride;
		struct ftl_zone *z = &zones[i];

		z->type = d[ZD_ZT] & 0x0f;
		z->state = d[ZD_ZS] >> 4;
		z->attrs = d[ZD_ZA];
		if (!lbas_to_bytes(le64_at(d, ZD_ZSLBA), lba_size, &z->start) ||
		    !lbas_to_bytes(le64_at(d, ZD_ZCAP), lba_size, &z->capacity) ||
		    z->capacity > UINT64_MAX - z->start)
			return -EINVAL;
		/* The write pointer is not valid in these states (controllers report all ones);
		 * "nothing more fits" is what a caller can use. */
		if (z->state == FTL_ZONE_FULL || z->state == FTL_ZONE_READ_ONLY ||
		    z->state == FTL_ZONE_OFFLINE)
			z->write_pointer = z->start + z->capacity;
		else if (!lbas_to_bytes(le64_at(d, ZD_WP), lba_size, &z->write_pointer) ||
		         z->write_pointer < z->start || z->write_pointer > z->start + z->capacity)
			return -EINVAL; /* the FTL would write where the zone is not */
	}
	return (int)n;
}

const char *ftl_zone_state_name(unsigned state)
{
	switch (state) {
#define FTL_ZONE_STATE_CASE(n, v, s)                                                               \
	case v:                                                                                    \
		return s;
		FTL_ZONE_STATE_LIST(FTL_ZONE_STATE_CASE)
#undef FTL_ZONE_STATE_CASE
	}
	return "unknown";
}
