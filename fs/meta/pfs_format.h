/* fs/meta/pfs_format.h - every record fs/ writes to the namespace, in one place: map pages (in
 * SQLite rows and as flash copies), the tags of fs's own chunks, catalogue records and log
 * records. Fixed-width little-endian fields; sizes checked at compile time. The FTL's own
 * format (superblock, segment headers and summaries) is flash/ftl_format.h.
 */
#ifndef PSTOR_PFS_FORMAT_H
#define PSTOR_PFS_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "engine.h"
#include "ftl.h"
#include "pfs_base.h" /* PFS_NAME_MAX */

/* ---- map pages ----------------------------------------------------------------------------- */
/* A block map is an array of engine references (8 bytes each, little endian), one per block of
 * the volume, kept in pages of PFS_PAGE_REFS references; a page is keyed by (map id << 40 |
 * page index). Blob: the references, then a CRC-32C over (map, index, references), so a page
 * read for the wrong key fails like a damaged one. */
#define PFS_PAGE_REFS  256u /* references per map page: 2 KiB page, 1 MiB of a 4 KiB volume */
#define PFS_PAGE_SHIFT 40   /* SQLite key = map id << 40 | page index */
/* Page blob codec, shared with the flash copies and fsck. */
#define PFS_PAGE_BLOB (PFS_PAGE_REFS * 8u + 4u)
void pfs_page_encode(uint64_t map, uint64_t idx, const struct engine_ref *refs, uint8_t *blob);
int pfs_page_decode(uint64_t map, uint64_t idx, const uint8_t *blob, size_t len,
                    struct engine_ref *refs); /* -EUCLEAN on a bad checksum or length */
_Static_assert(PFS_PAGE_BLOB == 2052, "page blob layout changed: bump PFS_META_FORMAT");
_Static_assert(sizeof(struct engine_ref) == 8, "an engine reference is stored as 8 bytes");

/* ---- fs's own chunks in the FTL ------------------------------------------------------------ */
/* Besides data chunks, fs writes three kinds of its own chunks to the FTL (flag
 * PFS_CHUNK_META, told apart by the 32-byte tag every chunk carries in its segment summary):
 *  - page copies: one map page (PFS_PAGE_BLOB) plus the long patterns it references, tagged
 *    (map, page, gen) where gen is the lsn of the checkpoint that wrote it;
 *  - catalogue records: every map (id, kind, parent, name, size, ctime, snapshot gen) and the
 *    settings, tagged with the checkpoint's gen;
 *  - log chunks: map changes (pfs_log.c), tagged with their first lsn and record count.
 * With them the segments alone are enough to rebuild the SQLite metadata (fsck --repair). */
#define PFS_CHUNK_META 0x80u
enum pfs_mchunk_kind {
	PFS_MCHUNK_PAGE = 1,
	PFS_MCHUNK_CATALOG = 2,
	PFS_MCHUNK_LOG = 3,
};
struct pfs_mtag {
	enum pfs_mchunk_kind kind;
	uint64_t a;   /* page: map id; catalog: 0; log: first lsn */
	uint64_t b;   /* page: page index; catalog: 0; log: record count */
	uint64_t gen; /* page, catalog: checkpoint lsn; log: end lsn */
};
void pfs_mtag_encode(const struct pfs_mtag *t, uint8_t hash[FTL_HASH_LEN]);
int pfs_mtag_decode(const uint8_t hash[FTL_HASH_LEN], struct pfs_mtag *t); /* -EINVAL */
/* Tag layout in the 32 bytes of the chunk's summary hash: magic "PFM1" (u32), kind (u8), 3 pad,
 * a (u64), b (u64), gen (u64). */
#define PFS_MTAG_MAGIC 0x314d4650u
_Static_assert(4 + 1 + 3 + 8 + 8 + 8 == FTL_HASH_LEN, "a tag fills the summary hash exactly");

/* ---- page copies (vol/pfs_mchunk.c) --------------------------------------------------------- */
/* A page copy: the page blob (PFS_PAGE_BLOB), a u32 count of the long patterns its references
 * use, then per pattern an entry: the reference (u64), period (u8), the 16 pattern bytes, 7 pad
 * bytes. Tag (map, page, gen). */
#define PFS_PAGE_COPY_PAT_ENTRY 32u
_Static_assert(8 + 1 + 16 + 7 == PFS_PAGE_COPY_PAT_ENTRY, "page copy pattern entry layout");

/* ---- catalogue records (vol/pfs_mchunk.c) --------------------------------------------------- */
/* Header (32 bytes): magic "PCAT" (u32), version (u32), gen (u64: the checkpoint's lsn),
 * next map id (u64), map count (u32), settings length (u32). Then one entry per map, then the
 * settings as "key=value\n" text (less than PFS_CFG_TEXT_MAX bytes, no NUL).
 * Entry, version 1 (120 bytes): id, parent, size, snapshot gen, ctime (u64 each), kind (u32),
 * name length (u32, 1..PFS_NAME_MAX), the name (PFS_NAME_MAX bytes, zero-padded), 8 pad bytes.
 * Version 2 (152 bytes) appends mode, uid, gid, pad (u32 each), atime, mtime (i64 each).
 * Readers take both; writers write version 2. Tag (0, 0, gen). */
#define PFS_CAT_MAGIC    0x54414350u
#define PFS_CAT_VERSION  2u
#define PFS_CAT_HDR      32u
#define PFS_CAT_ENTRY_V1 (48u + 8u + PFS_NAME_MAX)
#define PFS_CAT_ENTRY    (PFS_CAT_ENTRY_V1 + 32u)
_Static_assert(PFS_CAT_ENTRY_V1 == 120, "catalogue entry v1 layout");
_Static_assert(PFS_CAT_ENTRY == 152, "catalogue entry v2 layout");
_Static_assert(4 + 4 + 8 + 8 + 4 + 4 == PFS_CAT_HDR, "catalogue header layout");

/* ---- log records (vol/pfs_log.c) ------------------------------------------------------------ */
/* A log chunk: a 16-byte header (u32 magic "PLOG", u32 record count, u64 first lsn), then its
 * records; record i has lsn first + i. Every record starts with three little-endian words:
 * word0 = map id | type << 56 (the type byte's top bit: PFS_LOG_DERIVED), then two words whose
 * meaning is the type's, then a tail padded to 8 bytes:
 *   SET          block, reference                          (24 bytes)
 *   SET_PATTERN  block, reference; period (u8), 16 pattern bytes, pad     (48)
 *   SIZE         0, new size                                            (24)
 *   NOP          0, 0: the lsn a checkpoint takes                       (24)
 *   SET_FP       block, reference; the block's SHA-256 (32 bytes)      (56)
 *   CHANGE       payload length, change kind; the encoded struct pfs_change (pfs_change.c),
 *                catalogue, attribute and setting changes by name   (24 + payload, padded)
 * DERIVED marks a SET or SET_PATTERN that follows from the CHANGE before it (the blocks a
 * clone_range shares): replayed here, never sent to another box, which applies the CHANGE. */
enum pfs_log_type {
	PFS_LOG_SET = 0,
	PFS_LOG_SET_PATTERN = 1,
	PFS_LOG_SIZE = 2,
	PFS_LOG_NOP = 3,
	PFS_LOG_SET_FP = 4,
	PFS_LOG_CHANGE = 5,
};
#define PFS_LOG_DERIVED     0x80u
#define PFS_LOG_REC_BASE    24u
#define PFS_LOG_REC_PATTERN 48u
#define PFS_LOG_REC_FP      56u
_Static_assert(PFS_LOG_REC_BASE + 1 + 16 <= PFS_LOG_REC_PATTERN, "pattern tail fits");
_Static_assert(PFS_LOG_REC_BASE + ENGINE_FP_LEN == PFS_LOG_REC_FP, "fingerprint tail fits");

#endif
