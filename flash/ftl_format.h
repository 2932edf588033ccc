/* flash/ftl_format.h - the FTL's on-disk structures (private to flash/).
 *
 * Little-endian fixed-width fields, explicit padding, magic + version + checksum on each; sizes
 * checked at compile time. In-memory state lives in ftl_int.h, never here.
 *
 * Namespace layout:
 *   [0, 4K)              superblock copy A
 *   [64K, 64K+4K)        superblock copy B (far enough that one torn write cannot hit both)
 *   [meta_offset, +size) reserved metadata region (SQLite lives here from the durability issue on)
 *   [data_offset, ...)   segment 0, 1, ... each segment_size bytes
 *
 * Segment layout (block = FTL block size):
 *   block 0: segment header (state, sequence number, erase count, stream, virtual clock)
 *   then packs, back to back, each a whole number of blocks:
 *     header blocks (as many as the entries need): fixed part + summary entries (id, birth,
 *       hash, length+flags, crc)
 *     data blocks: chunks in entry order, each an 8-byte chunk header + payload, 8-byte aligned
 * A pack is written with one device write; a pack header whose crc, magic or segment sequence
 * does not match ends the segment's scan (anything after it is a torn or stale write).
 */
#ifndef PSTOR_FTL_FORMAT_H
#define PSTOR_FTL_FORMAT_H

#include <stdint.h>

#define FTL_SB_MAGIC       0x46545350u /* "PSTF" */
#define FTL_SEG_MAGIC      0x47455350u /* "PSEG" */
#define FTL_PACK_MAGIC     0x4b415050u /* "PPAK" */
#define FTL_FORMAT_VERSION 1u

#define FTL_SB_OFFSET_A 0ull
#define FTL_SB_OFFSET_B (64ull * 1024)
#define FTL_SB_SIZE     512u

/* Superblock: everything needed to interpret the rest of the namespace. */
struct ftl_sb_disk {
	uint32_t magic;
	uint32_t version;
	uint32_t crc;               /* crc32c of the FTL_SB_SIZE bytes with this field zero */
	uint32_t incompat_features; /* a bit we do not know: refuse to mount */
	uint8_t uuid[16];
	uint32_t block_size;
	uint32_t user_block_size;
	uint64_t segment_size;
	uint32_t segment_count;
	uint32_t rated_pe_cycles;
	uint64_t meta_offset;
	uint64_t meta_size;
	uint64_t data_offset;
	uint64_t device_size;
	uint64_t format_time; /* seconds since the epoch */
	uint32_t compat_features;
	uint32_t pad0;
	/* FTL_INCOMPAT_ZONED only: where the erase-count table starts (u32 per segment). */
	uint64_t wear_offset;
	uint8_t reserved[FTL_SB_SIZE - 112];
};
_Static_assert(sizeof(struct ftl_sb_disk) == FTL_SB_SIZE, "superblock size");

/* Formatted on a zoned namespace: segment = zone, no FREE headers (a free segment is an empty
 * zone), erase counts in the table at wear_offset, and [0, data_offset) is the random-write log
 * below (an FTL that does not know this must not mount it). */
#define FTL_INCOMPAT_ZONED 0x1u

/* The random-write log of a zoned namespace, which holds [0, data_offset), is the device layer's
 * (flash/dev/private/ftl_dev_format.h). */

enum ftl_seg_disk_state {
	FTL_SEG_DISK_FREE = 1, /* erased; the header only keeps the erase count */
	FTL_SEG_DISK_OPEN = 2, /* holds packs (closed segments keep this state too) */
};

/* Segment header: first block of every segment that has ever been used. */
struct ftl_seg_disk {
	uint32_t magic;
	uint32_t crc;     /* crc32c of the struct with this field zero */
	uint8_t uuid[16]; /* the filesystem's: a header from another format is not ours */
	uint64_t seq;     /* global sequence number, new at every open and every free */
	uint32_t seg_index;
	uint32_t erase_count;
	uint8_t state;  /* enum ftl_seg_disk_state */
	uint8_t stream; /* which write stream filled it (hot/cold/GC) */
	uint8_t pad0[6];
	uint64_t open_clock; /* virtual clock (host bytes written) when opened */
	/* Checkpoint segments only (stream FTL_SEG_STREAM_CKPT): which checkpoint, which part. */
	uint64_t ckpt_gen;
	uint32_t ckpt_part, ckpt_nparts;
	uint8_t reserved[56];
};
_Static_assert(sizeof(struct ftl_seg_disk) == 128, "segment header size");

/* The stream value of a segment that holds a checkpoint of the FTL's tables, not packs. */
#define FTL_SEG_STREAM_CKPT 0xc0u

/* Checkpoint of the FTL's in-memory tables (segment table, pack offsets, L2P with each chunk's
 * owner word), so open reads it and walks only the segments written since instead of scanning
 * every one. Written as plain bytes after the header block of one or more checkpoint segments
 * (part k holds content bytes [k * (segment_size - block), ...)); this header starts part 0.
 * Layout after the header: nsegs x ftl_ckpt_seg_disk, the pack offsets (u32 each, padded to
 * 8 bytes), then npages x (u64 page index, u32 count, u32 pad, count x u64 location, count x
 * u64 owner word); pages hold 65536 ids, the last one ends at next_id. */
#define FTL_CKPT_MAGIC   0x504b4350u /* "PCKP" */
#define FTL_CKPT_VERSION 1u
struct ftl_ckpt_disk {
	uint32_t magic;
	uint32_t version;
	uint32_t crc; /* crc32c of the header (this field zero) and every content byte after it */
	uint32_t nsegs;
	uint8_t uuid[16];
	uint64_t gen;
	uint64_t bytes; /* content bytes, header included */
	uint64_t next_seq, clock, next_birth, next_id;
	uint64_t npack_offs;
	uint32_t npages, block_size;
	uint64_t segment_size;
	uint8_t reserved[40];
};
_Static_assert(sizeof(struct ftl_ckpt_disk) == 144, "checkpoint header size");

struct ftl_ckpt_seg_disk {
	uint64_t seq;
	uint64_t open_clock, close_clock;
	uint64_t birth_sum;
	uint32_t birth_n;
	uint32_t end;
	uint32_t erase_count;
	uint32_t npacks;
	uint8_t state; /* FTL_CKPT_SEG_* */
	uint8_t stream;
	uint8_t pad[6];
};
_Static_assert(sizeof(struct ftl_ckpt_seg_disk) == 56, "checkpoint segment entry size");
enum {
	FTL_CKPT_SEG_FREE = 0,
	FTL_CKPT_SEG_CLOSED = 1, /* immutable until GC frees it (its seq then changes) */
	FTL_CKPT_SEG_OPEN = 2,   /* a stream's current segment: packs may follow `end` */
};

/* Pack header: the fixed part at the start of a pack's first block; entries follow it. */
struct ftl_pack_disk {
	uint32_t magic;
	uint32_t crc;     /* crc32c of fixed part + all entries, with this field zero */
	uint64_t seg_seq; /* must equal the segment header's seq */
	uint32_t nentries;
	uint32_t data_bytes;  /* bytes of chunk data after the header block */
	uint32_t total_bytes; /* header blocks + data, rounded up to blocks */
	uint32_t hdr_blocks;  /* blocks taken by this header and its entries */
	uint64_t clock;       /* virtual clock when sealed */
	uint8_t reserved[24];
};
_Static_assert(sizeof(struct ftl_pack_disk) == 64, "pack header size");

/* Summary entry: enough to rebuild the L2P and the dedupe index by a scan. */
struct ftl_pack_entry_disk {
	uint64_t id;    /* chunk address */
	uint64_t birth; /* write sequence of this chunk's content; GC copies keep it */
	uint8_t hash[32];
	uint32_t len_flags; /* same as the chunk header's */
	uint32_t crc;       /* same as the chunk header's */
};
_Static_assert(sizeof(struct ftl_pack_entry_disk) == 56, "pack entry size");

/* Chunk header: in front of every payload, so a read is one device access. The crc covers the
 * chunk id (so a chunk read from the wrong place fails), len_flags (payload length in bits
 * 0..16, caller flags in bits 24..31; the length itself is kept in the L2P and the summary) and
 * the payload. `entry` is the chunk's index in its pack summary, to find its hash in one read;
 * GC rewrites it when it moves the chunk (the crc does not cover it). */
struct ftl_chunk_disk {
	uint32_t crc;
	uint16_t entry;
	uint8_t flags;
	uint8_t reserved;
};
#define FTL_LEN_MASK 0x1ffffu
_Static_assert(sizeof(struct ftl_chunk_disk) == 8, "chunk header size");

#define FTL_CHUNK_ALIGN 8u

static inline uint32_t ftl_chunk_footprint(uint32_t len)
{
	return (uint32_t)((sizeof(struct ftl_chunk_disk) + len + FTL_CHUNK_ALIGN - 1) &
	                  ~(FTL_CHUNK_ALIGN - 1));
}

#endif
