/* tests/tools/pstor-nvme-info.c - what the flash module sees of a device, for the QEMU NVMe test
 * (tests/vm): identity, SMART / health, the zone report of a zoned namespace, how many blocks
 * of each pstorfs segment hold data (to see that deallocate reached the device), and a write /
 * zone-reset round trip on a zoned namespace. flash/'s public interface, and its on-disk segment
 * header to recognise the segments the FTL freed.
 *
 *   pstor-nvme-info DEV               identity, SMART, zones (never writes)
 *   pstor-nvme-info --segments DEV    non-zero blocks of a formatted namespace, by segment part
 *   pstor-nvme-info --zone-test DEV   write a block at zone 1's write pointer, then reset it
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_format.h"

#define MAX_ZONES_LISTED 16

static int open_dev(const char *path, bool rdonly, struct ftl_dev **dev)
{
	int err = ftl_dev_open(path, rdonly ? FTL_DEV_RDONLY : 0, 0, dev);

	if (err < 0)
		fprintf(stderr, "pstor-nvme-info: %s: %s\n", path, strerror(-err));
	return err;
}

static void print_identity(struct ftl_dev *dev)
{
	struct ftl_dev_identity id;

	ftl_dev_identify(dev, &id);
	printf("backend: %s\nmodel: %s\nserial: %s\nfirmware: %s\npci vendor: 0x%04x\n"
	       "nvme version: %u.%u.%u\nnamespace id: %u\nlba format: %u\nlba size: %u\n"
	       "metadata size: %u\ncapacity: %llu\nused (NUSE): %llu\n"
	       "write granularity (NPWG): %u\nwrite alignment (NPWA): %u\n"
	       "optimal write (NOWS): %u\ndealloc granularity (NPDG): %u\n"
	       "dealloc alignment (NPDA): %u\nio boundary (NOIOB): %u\ndeallocate: %s\n"
	       "deallocated reads zero: %s\nvolatile write cache: %s\nzoned: %s\n",
	       ftl_dev_kind_name(ftl_dev_kind(dev)), id.model, id.serial, id.firmware, id.pci_vid,
	       id.nvme_version >> 16, (id.nvme_version >> 8) & 0xff, id.nvme_version & 0xff,
	       id.nsid, id.lba_format, id.lba_size, id.metadata_size,
	       (unsigned long long)id.capacity_bytes, (unsigned long long)id.used_bytes,
	       id.opt_write_size, id.opt_write_align, id.opt_write_max, id.opt_dealloc_size,
	       id.opt_dealloc_align, id.io_boundary, id.dealloc ? "yes" : "no",
	       id.dealloc_reads_zero ? "yes" : "no", id.volatile_cache ? "yes" : "no",
	       id.zoned ? "host-managed" : "no");
	if (id.zoned)
		printf("zone size: %llu\nzones: %u\nmax open zones: %u\nmax active zones: %u\n"
		       "zone append max: %u\n",
		       (unsigned long long)id.zone_size, id.zone_count, id.max_open_zones,
		       id.max_active_zones, id.zone_append_max);
}

static int print_smart(struct ftl_dev *dev)
{
	struct ftl_dev_smart s;
	char txt[4096];
	int err = ftl_dev_smart(dev, &s);

	if (err == -EOPNOTSUPP) {
		printf("smart: none (not an NVMe device)\n");
		return 0;
	}
	if (err < 0) {
		printf("smart: error: %s\n", strerror(-err));
		return err;
	}
	ftl_smart_to_text(&s, txt, sizeof(txt));
	printf("%s", txt);
	return 0;
}

/* Zone states summed over the whole namespace, then the first zones one a line. */
static int print_zones(struct ftl_dev *dev)
{
	struct ftl_dev_identity id;
	struct ftl_zone z[64];
	uint32_t count[16] = {0}, total = 0;
	uint64_t off = 0;
	int n;

	ftl_dev_identify(dev, &id);
	for (;;) {
		n = ftl_dev_report_zones(dev, off, z, 64);
		if (n == -EOPNOTSUPP) {
			printf("zones: none (not zoned)\n");
			return 0;
		}
		if (n < 0) {
			printf("zones: error: %s\n", strerror(-n));
			return n;
		}
		for (int i = 0; i < n; i++, total++) {
			count[z[i].state & 0xf]++;
			if (total < MAX_ZONES_LISTED)
				printf("zone %u: start %llu capacity %llu wp %llu state %s type %u "
				       "attrs 0x%02x\n",
				       total, (unsigned long long)z[i].start,
				       (unsigned long long)z[i].capacity,
				       (unsigned long long)z[i].write_pointer,
				       ftl_zone_state_name(z[i].state), z[i].type, z[i].attrs);
		}
		if (n < 64)
			break;
		off = z[n - 1].start + id.zone_size;
	}
	printf("zones: %u", total);
	for (unsigned s = 0; s < 16; s++) {
		if (count[s])
			printf(", %u %s", count[s], ftl_zone_state_name(s));
	}
	printf("\n");
	return 0;
}

static bool all_zero(const uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i])
			return false;
	}
	return true;
}

/* A valid FREE segment header of this namespace: a segment the FTL freed (and deallocated). */
static bool seg_free_header(const uint8_t *blk, const struct ftl_superblock_info *sb, uint32_t segi)
{
	struct ftl_seg_disk h;

	memcpy(&h, blk, sizeof(h));
	if (h.magic != FTL_SEG_MAGIC || h.seg_index != segi || h.state != FTL_SEG_DISK_FREE ||
	    memcmp(h.uuid, sb->uuid, sizeof(h.uuid)))
		return false;
	uint32_t crc = h.crc;
	h.crc = 0;
	return ftl_crc32c(0, &h, sizeof(h)) == crc;
}

/* Counts blocks holding anything but zeros, segment header blocks apart from the rest: a freed
 * segment keeps its header (FREE, with the erase count) and the rest is deallocated, so its
 * body must read zeros on a device whose deallocated blocks do. */
static int segments(struct ftl_dev *dev)
{
	struct ftl_superblock_info sb;
	uint64_t hdr_nz = 0, data_nz = 0, data_blocks = 0, empty_segs = 0;
	uint64_t freed = 0, freed_dirty = 0;
	uint8_t *buf;
	int err = ftl_read_superblock(dev, &sb);

	if (err < 0) {
		fprintf(stderr, "pstor-nvme-info: superblock: %s\n", strerror(-err));
		return err;
	}
	if (posix_memalign((void **)&buf, 4096, sb.segment_size))
		return -ENOMEM;
	for (uint32_t i = 0; i < sb.segment_count; i++) {
		uint64_t nz = 0;

		err = ftl_dev_read(dev, buf, sb.segment_size, sb.data_offset + i * sb.segment_size);
		if (err < 0) {
			fprintf(stderr, "pstor-nvme-info: segment %u: %s\n", i, strerror(-err));
			goto out_free;
		}
		if (!all_zero(buf, sb.block_size))
			hdr_nz++;
		for (uint64_t b = sb.block_size; b < sb.segment_size; b += sb.block_size) {
			data_blocks++;
			if (!all_zero(buf + b, sb.block_size))
				nz++;
		}
		data_nz += nz;
		empty_segs += nz == 0;
		if (seg_free_header(buf, &sb, i)) {
			freed++;
			freed_dirty += nz != 0;
		}
	}
	printf("segments: %u of %llu bytes, block %u\n", sb.segment_count,
	       (unsigned long long)sb.segment_size, sb.block_size);
	printf("segment headers non-zero: %llu\n", (unsigned long long)hdr_nz);
	printf("segments empty after the header: %llu\n", (unsigned long long)empty_segs);
	printf("data blocks non-zero: %llu of %llu (%llu bytes)\n", (unsigned long long)data_nz,
	       (unsigned long long)data_blocks, (unsigned long long)(data_nz * sb.block_size));
	printf("freed segments (FREE header): %llu\n", (unsigned long long)freed);
	printf("freed segments with data after the header: %llu\n",
	       (unsigned long long)freed_dirty);
out_free:
	free(buf);
	return err;
}

static int report_zone(struct ftl_dev *dev, uint64_t start, struct ftl_zone *z, const char *when)
{
	int n = ftl_dev_report_zones(dev, start, z, 1);

	if (n != 1) {
		printf("zone-test: FAIL: report at %llu: %s\n", (unsigned long long)start,
		       n < 0 ? strerror(-n) : "no zone");
		return n < 0 ? n : -EIO;
	}
	printf("zone-test: %s: start %llu wp %llu state %s\n", when, (unsigned long long)z->start,
	       (unsigned long long)z->write_pointer, ftl_zone_state_name(z->state));
	return 0;
}

static int expect_zone(const struct ftl_zone *z, uint64_t wp, unsigned state)
{
	if (z->write_pointer == wp && z->state == state)
		return 0;
	printf("zone-test: FAIL: expected wp %llu, state %s\n", (unsigned long long)wp,
	       ftl_zone_state_name(state));
	return -EIO;
}

static int zone_do(struct ftl_dev *dev, enum ftl_zone_action a, const char *name, uint64_t start,
                   uint64_t zsize)
{
	int err = ftl_dev_zone_action(dev, a, start, zsize);

	if (err < 0)
		printf("zone-test: FAIL: %s: %s\n", name, strerror(-err));
	else
		printf("zone-test: %s\n", name);
	return err;
}

/* One block written at zone 1's write pointer moves the pointer by one block and opens the
 * zone; a write elsewhere is refused; finish fills it, reset empties it. This is what the
 * FTL's ZNS support will build on. */
static int zone_test(struct ftl_dev *dev)
{
	struct ftl_zone z[2];
	uint32_t bs = ftl_dev_block_size(dev);
	uint64_t start, zsize;
	uint8_t *buf;
	int err = ftl_dev_report_zones(dev, 0, z, 2);

	if (err < 2) {
		printf("zone-test: FAIL: zone report: %s\n",
		       err < 0 ? strerror(-err) : "< 2 zones");
		return err < 0 ? err : -EIO;
	}
	start = z[1].start;
	zsize = z[1].start - z[0].start;
	if (posix_memalign((void **)&buf, 4096, bs))
		return -ENOMEM;
	memset(buf, 0xa5, bs);
	/* A leftover of an earlier run: start from an empty zone. */
	if (z[1].state != FTL_ZONE_EMPTY &&
	    (err = zone_do(dev, FTL_ZONE_RESET, "reset leftover", start, zsize)) < 0)
		goto out_free;
	if ((err = report_zone(dev, start, z, "before")) < 0 ||
	    (err = expect_zone(z, start, FTL_ZONE_EMPTY)) < 0)
		goto out_free;
	err = ftl_dev_write(dev, buf, bs, start);
	if (err == 0)
		err = ftl_dev_flush(dev);
	if (err < 0) {
		printf("zone-test: FAIL: write at the write pointer: %s\n", strerror(-err));
		goto out_free;
	}
	if ((err = report_zone(dev, start, z, "after one block")) < 0 ||
	    (err = expect_zone(z, start + bs, FTL_ZONE_IMPL_OPEN)) < 0)
		goto out_free;
	if (ftl_dev_write(dev, buf, bs, start + 4 * (uint64_t)bs) == 0) {
		printf("zone-test: FAIL: a write off the write pointer succeeded\n");
		err = -EIO;
		goto out_free;
	}
	printf("zone-test: a write off the write pointer is refused\n");
	if ((err = zone_do(dev, FTL_ZONE_FINISH, "finish", start, zsize)) < 0 ||
	    (err = report_zone(dev, start, z, "after finish")) < 0)
		goto out_free;
	if (z->state != FTL_ZONE_FULL) {
		printf("zone-test: FAIL: finish did not fill the zone\n");
		err = -EIO;
		goto out_free;
	}
	if ((err = zone_do(dev, FTL_ZONE_RESET, "reset", start, zsize)) < 0 ||
	    (err = report_zone(dev, start, z, "after reset")) < 0 ||
	    (err = expect_zone(z, start, FTL_ZONE_EMPTY)) < 0)
		goto out_free;
	printf("zone-test: ok\n");
out_free:
	free(buf);
	return err;
}

int main(int argc, char **argv)
{
	struct ftl_dev *dev = NULL;
	int err;

	if (argc == 2 && argv[1][0] != '-') {
		err = open_dev(argv[1], true, &dev);
		if (err < 0)
			return 1;
		print_identity(dev);
		err = print_smart(dev);
		if (print_zones(dev) < 0)
			err = -EIO;
	} else if (argc == 3 && !strcmp(argv[1], "--segments")) {
		err = open_dev(argv[2], true, &dev);
		if (err < 0)
			return 1;
		err = segments(dev);
	} else if (argc == 3 && !strcmp(argv[1], "--zone-test")) {
		err = open_dev(argv[2], false, &dev);
		if (err < 0)
			return 1;
		err = zone_test(dev);
	} else {
		fprintf(stderr, "usage: pstor-nvme-info [--segments|--zone-test] DEVICE\n");
		return 2;
	}
	ftl_dev_close(dev);
	return err < 0 ? 1 : 0;
}
