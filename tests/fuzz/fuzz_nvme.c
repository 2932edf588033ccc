/* tests/fuzz/fuzz_nvme.c - libFuzzer target for the parsers of raw NVMe structures (Identify
 * Controller/Namespace, ZNS Identify Namespace, SMART log, zone report): whatever a controller
 * sends, a parser either refuses it with -EINVAL or returns values the FTL can trust.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "fuzz_common.h"

static void must(bool ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_nvme: %s\n", what);
		abort();
	}
}

static bool pow2_lba(uint32_t v)
{
	return v >= 512 && v <= 65536 && (v & (v - 1)) == 0;
}

static void check_str(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	must(n < cap, "identity string not terminated");
	for (size_t i = 0; i < n; i++)
		must(s[i] >= 0x20 && s[i] < 0x7f, "identity string not printable ASCII");
}

static void check_hint(uint32_t v, uint32_t lba)
{
	must(v % lba == 0, "an optimal-I/O hint that is not whole LBAs");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ftl_dev_identity id;
	struct ftl_dev_smart smart;
	struct ftl_zone zones[32];
	uint8_t kind, flags;
	size_t len, full;
	uint8_t *buf;
	int rc;

	if (size < 2)
		return 0;
	kind = data[0] % 5;
	flags = data[1];
	data += 2;
	size -= 2;
	full = kind == FZ_NVME_SMART   ? FTL_NVME_SMART_LEN
	       : kind == FZ_NVME_ZONES ? FTL_NVME_ZONE_HDR_LEN + 32 * 16 * 64
	                               : FTL_NVME_IDENTIFY_LEN;
	len = (flags & FZ_NVME_PAD) && size < full ? full : size;
	/* An exact-size copy, so ASan sees any read past what the parser was given. */
	buf = calloc(1, len ? len : 1);
	fz_check(buf == NULL, "calloc");
	memcpy(buf, data, size < len ? size : len);
	memset(&id, 0, sizeof(id));
	switch (kind) {
	case FZ_NVME_ID_CTRL:
		rc = ftl_nvme_parse_id_ctrl(buf, len, &id);
		must(rc == 0 || rc == -EINVAL, "id_ctrl: undocumented error");
		if (rc == 0) {
			check_str(id.model, sizeof(id.model));
			check_str(id.serial, sizeof(id.serial));
			check_str(id.firmware, sizeof(id.firmware));
		}
		break;
	case FZ_NVME_ID_NS:
		rc = ftl_nvme_parse_id_ns(buf, len, 7, &id);
		must(rc == 0 || rc == -EINVAL, "id_ns: undocumented error");
		if (rc == 0) {
			must(pow2_lba(id.lba_size) && id.lba_format < 64, "id_ns: LBA format");
			must(id.capacity_bytes > 0 && id.capacity_bytes % id.lba_size == 0,
			     "id_ns: capacity");
			must(id.used_bytes <= id.capacity_bytes, "id_ns: NUSE above NSZE");
			check_hint(id.opt_write_size, id.lba_size);
			check_hint(id.opt_write_align, id.lba_size);
			check_hint(id.opt_write_max, id.lba_size);
			check_hint(id.opt_dealloc_size, id.lba_size);
			check_hint(id.opt_dealloc_align, id.lba_size);
			check_hint(id.io_boundary, id.lba_size);
			must(id.nsid == 7, "id_ns: nsid");
		}
		break;
	case FZ_NVME_ZNS_ID_NS:
		id.lba_size = flags & FZ_NVME_LBA512 ? 512 : 4096;
		id.lba_format = (flags >> FZ_NVME_FMT_SHIFT) & 3;
		id.capacity_bytes = FZ_NVME_ZNS_CAP;
		rc = ftl_nvme_parse_zns_id_ns(buf, len, &id);
		must(rc == 0 || rc == -EINVAL, "zns_id_ns: undocumented error");
		if (rc == 0) {
			must(id.zoned && id.zone_size % id.lba_size == 0, "zns: zone size");
			must(id.zone_count >= 1 &&
			         (uint64_t)id.zone_count * id.zone_size <= id.capacity_bytes,
			     "zns: zones beyond the namespace");
		}
		break;
	case FZ_NVME_SMART:
		rc = ftl_nvme_parse_smart(buf, len, &smart);
		must(rc == 0 || rc == -EINVAL, "smart: undocumented error");
		if (rc == 0)
			must(!smart.emulated && smart.has_temperature == (buf[1] || buf[2]),
			     "smart: emulated, or a temperature that was not reported");
		break;
	case FZ_NVME_ZONES: {
		uint32_t lba = flags & FZ_NVME_LBA512 ? 512 : 4096;
		size_t ext = (size_t)(flags >> FZ_NVME_EXT_SHIFT) * 64;
		uint64_t nr;

		rc = ftl_nvme_parse_zone_report(buf, len, ext, lba, zones, 32, &nr);
		must(rc >= -EINVAL && rc <= 32 && (rc >= 0 || rc == -EINVAL),
		     "zones: bad count or undocumented error");
		for (int i = 0; i < rc; i++) {
			const struct ftl_zone *z = &zones[i];

			must(z->start % lba == 0 && z->capacity % lba == 0,
			     "zones: not whole LBAs");
			must(z->capacity <= UINT64_MAX - z->start, "zones: capacity overflows");
			must(z->write_pointer >= z->start &&
			         z->write_pointer <= z->start + z->capacity,
			     "zones: write pointer outside its zone");
			must(z->state < 16 && z->type < 16, "zones: state or type out of range");
		}
		if (rc >= 0)
			must((uint64_t)rc <= nr, "zones: more zones than the header says");
		break;
	}
	}
	free(buf);
	return 0;
}
