/* flash/dev/private/ftl_dev_format.h - on-disk structs of the device layer (private to
 * flash/dev): the records of the random-write log of a zoned namespace. Little-endian, sizes
 * asserted. The FTL's own on-disk structs are in flash/ftl_format.h, which the device layer
 * never sees.
 */
#ifndef PSTOR_FTL_DEV_FORMAT_H
#define PSTOR_FTL_DEV_FORMAT_H

#include <stdint.h>

/* The random-write log of a zoned namespace (ftl_dev_zoned.c). The first zones of the namespace
 * hold records, each written with one device write at the zone's write pointer: a header block
 * then the data blocks it lists (4 KiB each). Entries name the logical block (offset / 4 KiB in
 * [0, data_offset)) and carry a sequence number: the highest sound one wins when the log is read
 * back, copies made by compaction keep theirs. Every record repeats the log's geometry, so it
 * can be found before the superblock (which lives in it) is read. */
#define FTL_ZLOG_MAGIC 0x4c5a5050u /* "PPZL" */
#define FTL_ZLOG_BLOCK 4096u
struct ftl_zlog_rec_disk {
	uint32_t magic;
	uint32_t crc; /* crc32c of this header and its entries, with this field zero */
	uint32_t nentries;
	uint32_t ndata;  /* data blocks that follow the header */
	uint32_t nzones; /* zones of the log (from zone 0) */
	uint32_t pad;
	uint64_t limit;     /* logical bytes that may be written */
	uint64_t zone_size; /* bytes */
	uint8_t reserved[24];
};
_Static_assert(sizeof(struct ftl_zlog_rec_disk) == 64, "log record header size");
#define FTL_ZLOG_ZERO 0x1u /* the block reads as zeros (TRIM); no data block */
struct ftl_zlog_entry_disk {
	uint64_t lbn;
	uint64_t seq;
	uint32_t crc; /* crc32c of lbn, seq and the data block (0 with FTL_ZLOG_ZERO) */
	uint32_t flags;
};
_Static_assert(sizeof(struct ftl_zlog_entry_disk) == 24, "log entry size");
#define FTL_ZLOG_MAX_ENTRIES                                                                       \
	((FTL_ZLOG_BLOCK - sizeof(struct ftl_zlog_rec_disk)) / sizeof(struct ftl_zlog_entry_disk))

#endif
