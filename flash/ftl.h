/* flash/ftl.h - public interface of the flash translation layer.
 *
 * The FTL stores variable-length chunks on a namespace and hands back stable chunk addresses.
 * It knows nothing of volumes, hashes (beyond storing the 32 opaque bytes a caller gives each
 * chunk) or reference counts. All functions return 0 (or a non-negative count) or -errno.
 */
#ifndef PSTOR_FTL_H
#define PSTOR_FTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------------ */
/* Namespace backends                                                                           */
/* ------------------------------------------------------------------------------------------ */

/* A namespace: a byte-addressable device with a logical block size. Offsets and lengths given
 * to read/write/trim must be multiples of the block size (the FTL always does whole blocks).
 */
struct ftl_dev;

enum ftl_dev_kind {
	FTL_DEV_FILE = 0, /* regular image file: pread/pwrite, TRIM = PUNCH_HOLE */
	FTL_DEV_BLOCK,    /* block device: O_DIRECT, BLKGETSIZE64, BLKDISCARD */
	FTL_DEV_NVME,     /* NVMe namespace through libnvme: identify, SMART, DSM deallocate */
	FTL_DEV_MEM,      /* in-memory test device with fault injection */
};

const char *ftl_dev_kind_name(enum ftl_dev_kind kind);

#define FTL_DEV_RDONLY 0x1 /* open read-only */
#define FTL_DEV_CREATE 0x2 /* regular files only: create if missing (size from `size`) */

/* Opens PATH with the backend that fits it: an NVMe namespace block device (/dev/nvmeXnY,
 * detected through sysfs and confirmed with Identify) gets FTL_DEV_NVME, any other block device
 * FTL_DEV_BLOCK, a regular file FTL_DEV_FILE. `size` is only used with FTL_DEV_CREATE.
 * Errors: -ENOENT, -EACCES, -EINVAL (not a file or block device), -EIO.
 */
int ftl_dev_open(const char *path, unsigned flags, uint64_t size, struct ftl_dev **out);

/* In-memory device of SIZE bytes and BLOCK_SIZE logical blocks (512..65536, power of two). */
int ftl_dev_open_mem(uint64_t size, uint32_t block_size, struct ftl_dev **out);
/* The same as a host-managed zoned namespace: zones of ZONE_SIZE bytes (a multiple of the block
 * size dividing SIZE) whose writes must land at the write pointer (-EIO elsewhere), reads past it
 * return zeros, reset/finish/open/close and zone reports as on NVMe ZNS. MAX_OPEN and MAX_ACTIVE
 * (0 = no limit) are enforced as a controller does: an implicit open closes another implicitly
 * open zone when the open limit is reached (-ETOOMANYREFS when none can be), and a write or open
 * that would make one zone more active than MAX_ACTIVE fails with -EOVERFLOW. TRIM is
 * -EOPNOTSUPP; the fault seams below work as on the plain memory device. */
int ftl_dev_open_mem_zoned(uint64_t size, uint32_t block_size, uint64_t zone_size,
                           uint32_t max_open, uint32_t max_active, struct ftl_dev **out);

void ftl_dev_close(struct ftl_dev *dev); /* NULL is a no-op */

enum ftl_dev_kind ftl_dev_kind(const struct ftl_dev *dev);
uint64_t ftl_dev_size(const struct ftl_dev *dev);
uint32_t ftl_dev_block_size(const struct ftl_dev *dev);
const char *ftl_dev_path(const struct ftl_dev *dev);

/* Returns 0 or -EIO (-EROFS on a read-only device for writes/trim). Short transfers are errors. */
int ftl_dev_read(struct ftl_dev *dev, void *buf, size_t len, uint64_t off);
int ftl_dev_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off);
/* Reads LEN bytes at any offset (small metadata reads). Image files and the memory device move
 * just those bytes; O_DIRECT backends read the blocks around them. -EINVAL out of bounds. */
int ftl_dev_read_small(struct ftl_dev *dev, void *buf, size_t len, uint64_t off);
int ftl_dev_flush(struct ftl_dev *dev);
/* Tells the device the range holds no data. -EOPNOTSUPP when the device cannot (harmless). */
int ftl_dev_trim(struct ftl_dev *dev, uint64_t off, uint64_t len);

struct ftl_dev_identity {
	char model[64];
	char serial[32];
	char firmware[16];
	uint32_t lba_size;         /* logical block size in use */
	uint64_t capacity_bytes;   /* namespace size */
	uint32_t nsid;             /* NVMe namespace id, 0 elsewhere */
	uint32_t opt_write_size;   /* optimal write granularity in bytes, 0 if not reported */
	uint32_t opt_dealloc_size; /* deallocate granularity in bytes, 0 if not reported */
	bool rotational;
	/* NVMe only (0/false elsewhere). Sizes in bytes; 0 = not reported. */
	uint16_t pci_vid;           /* PCI vendor id */
	uint32_t nvme_version;      /* VER: major << 16 | minor << 8 | tertiary */
	uint32_t lba_format;        /* index of the LBA format in use (FLBAS) */
	uint32_t metadata_size;     /* metadata bytes per LBA in that format */
	uint64_t used_bytes;        /* NUSE: blocks the controller holds allocated */
	uint32_t opt_write_align;   /* NPWA */
	uint32_t opt_dealloc_align; /* NPDA */
	uint32_t opt_write_max;     /* NOWS: optimal write size, above the granularity */
	uint32_t io_boundary;       /* NOIOB: I/O should not cross multiples of this */
	bool dealloc;               /* ONCS: Dataset Management (deallocate) supported */
	bool dealloc_reads_zero;    /* DLFEAT: deallocated blocks read back as zeros */
	bool volatile_cache;        /* VWC: a volatile write cache (Flush matters) */
	/* Zoned (ZNS host-managed) namespaces. */
	bool zoned;
	uint64_t zone_size;        /* bytes from one zone start to the next */
	uint32_t zone_count;       /* capacity_bytes / zone_size */
	uint32_t max_open_zones;   /* MOR + 1; 0 = no limit */
	uint32_t max_active_zones; /* MAR + 1; 0 = no limit */
	uint32_t zone_append_max;  /* largest Zone Append in bytes (kernel's view); 0 = none */
};

/* Device identity: for NVMe from Identify Controller/Namespace, elsewhere from sysfs or made up
 * from the path ("pstorfs image"). Never fails on a device that opened. */
int ftl_dev_identify(struct ftl_dev *dev, struct ftl_dev_identity *id);

/* Bits of ftl_dev_smart.critical_warning (NVMe SMART log byte 0). */
#define FTL_SMART_WARN_SPARE       0x01 /* available spare below its threshold */
#define FTL_SMART_WARN_TEMPERATURE 0x02 /* a temperature threshold is crossed */
#define FTL_SMART_WARN_RELIABILITY 0x04 /* reliability degraded by media errors */
#define FTL_SMART_WARN_READ_ONLY   0x08 /* media placed in read-only mode */
#define FTL_SMART_WARN_BACKUP      0x10 /* volatile memory backup failed */
#define FTL_SMART_WARN_PMR         0x20 /* persistent memory region read-only */

struct ftl_dev_smart {
	/* False: an NVMe SMART / health log. True: made up by ftl_get_smart() from the FTL's own
	 * counters on a device that has no such log; then only the fields below marked (e) are
	 * meaningful, the others are 0 and printed as n/a. */
	bool emulated;
	uint8_t critical_warning;          /* FTL_SMART_WARN_* (e) */
	bool has_temperature;              /* the controller reported one */
	int32_t temperature_c;             /* composite temperature */
	uint8_t available_spare_pct;       /* (e) */
	uint8_t available_spare_threshold; /* (e) */
	uint8_t percentage_used;           /* of rated life; may pass 100, 255 at most (e) */
	uint64_t data_units_written;       /* units of 512,000 bytes, as NVMe reports (e) */
	uint64_t data_units_read;          /* (e) */
	uint64_t host_write_commands;      /* (e) */
	uint64_t host_read_commands;       /* (e) */
	uint64_t media_errors;             /* (e) */
	uint64_t unsafe_shutdowns;
	uint64_t power_cycles;
	uint64_t power_on_hours;
	uint64_t error_log_entries;
	uint32_t warning_temp_minutes; /* time above the warning / critical temperature */
	uint32_t critical_temp_minutes;
};

/* NVMe SMART / health log. -EOPNOTSUPP on backends that have none (ftl_get_smart emulates). */
int ftl_dev_smart(struct ftl_dev *dev, struct ftl_dev_smart *smart);

/* Zones of a zoned namespace, in bytes. */
#define FTL_ZONE_STATE_LIST(X)                                                                     \
	X(EMPTY, 0x1, "empty")                                                                     \
	X(IMPL_OPEN, 0x2, "implicitly-open")                                                       \
	X(EXPL_OPEN, 0x3, "explicitly-open")                                                       \
	X(CLOSED, 0x4, "closed")                                                                   \
	X(READ_ONLY, 0xd, "read-only")                                                             \
	X(FULL, 0xe, "full")                                                                       \
	X(OFFLINE, 0xf, "offline")

enum ftl_zone_state {
#define FTL_ZONE_STATE_ENUM(n, v, s) FTL_ZONE_##n = v,
	FTL_ZONE_STATE_LIST(FTL_ZONE_STATE_ENUM)
#undef FTL_ZONE_STATE_ENUM
};
const char *ftl_zone_state_name(unsigned state); /* "unknown" for values outside the list */

#define FTL_ZONE_TYPE_SEQ_WRITE 0x2 /* the only zone type NVMe ZNS defines */

struct ftl_zone {
	uint64_t start;         /* ZSLBA */
	uint64_t capacity;      /* ZCAP: writable bytes from start (may be < zone_size) */
	uint64_t write_pointer; /* WP; start + capacity when full, read-only or offline */
	uint8_t type;           /* FTL_ZONE_TYPE_* */
	uint8_t state;          /* enum ftl_zone_state */
	uint8_t attrs;          /* ZA: bit 0 finished by controller, 1 reset recommended, ... */
};

/* Reports up to MAX zones starting with the one that holds byte OFF. Returns the number filled
 * (0 past the last zone). -EOPNOTSUPP on a device that is not zoned, -EINVAL, -EIO. */
int ftl_dev_report_zones(struct ftl_dev *dev, uint64_t off, struct ftl_zone *zones, uint32_t max);

enum ftl_zone_action {
	FTL_ZONE_RESET,  /* back to empty, write pointer at the start: the zone's erase */
	FTL_ZONE_FINISH, /* to full: frees an active-zone resource without writing */
	FTL_ZONE_OPEN,   /* explicitly open (takes an open and an active resource) */
	FTL_ZONE_CLOSE,  /* open -> closed: frees the open resource, keeps the write pointer */
};
/* Applies ACTION to every zone in [off, off+len) (both zone-aligned). -EOPNOTSUPP on a device
 * that is not zoned, -EINVAL, -EROFS, -EIO (among them: too many open/active zones). */
int ftl_dev_zone_action(struct ftl_dev *dev, enum ftl_zone_action action, uint64_t off,
                        uint64_t len);

/* Zoned namespaces under the FTL (ftl_dev_zoned.c): [0, data_offset) of a namespace formatted
 * on a zoned device is a random-write space kept as a log of 4 KiB blocks in its first zones
 * (superblocks, metadata region), so ftl_dev_read/write/trim work there at any block offset. */
struct ftl_dev_zoned_stats {
	bool zoned;                    /* the device is zoned */
	uint64_t zone_size;            /* bytes */
	uint32_t zones;                /* of the device */
	uint32_t max_open, max_active; /* the device's limits, 0 = none */
	uint64_t zone_resets;          /* zone management commands that succeeded, all callers */
	uint64_t zone_finishes;
	uint64_t zone_appends;       /* writes sent as NVMe Zone Append (the device placed them) */
	uint32_t log_zones;          /* zones holding the random-write log, 0 = not set up */
	uint64_t log_bytes;          /* random-write bytes it offers (from offset 0) */
	uint64_t log_blocks_written; /* 4 KiB blocks appended (data, headers and copies) */
	uint64_t log_records;        /* appends (one header block + data blocks each) */
	uint64_t log_compactions;    /* zones emptied by copying their live blocks out */
	uint64_t log_blocks_copied;  /* live blocks those compactions moved */
	uint64_t log_live_blocks;    /* logical blocks that hold data now */
	uint64_t log_torn_records;   /* records found torn (crc) when the log was read back */
};
/* -EINVAL on NULL; fills zeros (zoned false) for a conventional device. */
int ftl_dev_zoned_get_stats(const struct ftl_dev *dev, struct ftl_dev_zoned_stats *st);

/* Parsers of raw NVMe structures, as the controller returns them (little-endian, the spec's
 * byte offsets). Pure: no I/O, so they are tested from captured bytes. -EINVAL when LEN is
 * short or the structure is unusable here. */
#define FTL_NVME_IDENTIFY_LEN  4096 /* Identify Controller / Namespace data */
#define FTL_NVME_SMART_LEN     512  /* SMART / Health Information log page */
#define FTL_NVME_ZONE_HDR_LEN  64   /* zone report header (number of zones) */
#define FTL_NVME_ZONE_DESC_LEN 64   /* one zone descriptor */
/* Identify Controller: model, serial, firmware, vendor, version, DSM and volatile cache. */
int ftl_nvme_parse_id_ctrl(const void *buf, size_t len, struct ftl_dev_identity *id);
/* Identify Namespace (NVM command set): LBA format in use, capacity, optimal I/O hints. */
int ftl_nvme_parse_id_ns(const void *buf, size_t len, uint32_t nsid, struct ftl_dev_identity *id);
/* ZNS command-set Identify Namespace, after ftl_nvme_parse_id_ns (it needs the LBA format):
 * zone size, max open/active zones; sets id->zoned. */
int ftl_nvme_parse_zns_id_ns(const void *buf, size_t len, struct ftl_dev_identity *id);
int ftl_nvme_parse_smart(const void *buf, size_t len, struct ftl_dev_smart *smart);
/* Zone report (Zone Management Receive), descriptors followed by EXT_LEN bytes of extension
 * each (0 for a plain report). Fills up to MAX zones (LBAs turned to bytes with LBA_SIZE) and
 * returns how many; *NR_REPORTED gets the count the header claims, which may be larger. */
int ftl_nvme_parse_zone_report(const void *buf, size_t len, size_t ext_len, uint32_t lba_size,
                               struct ftl_zone *zones, uint32_t max, uint64_t *nr_reported);

/* Backend counters, kept by every backend. */
struct ftl_dev_stats {
	uint64_t reads, writes, flushes, trims;
	uint64_t bytes_read, bytes_written, bytes_trimmed;
	uint64_t read_errors, write_errors;
};
void ftl_dev_get_stats(const struct ftl_dev *dev, struct ftl_dev_stats *st);

/* Fault injection, only on FTL_DEV_MEM devices (-EOPNOTSUPP elsewhere).
 * The memory device keeps two images: what is durable and what is volatile (written, not yet
 * flushed). A read sees the volatile image; ftl_dev_flush() makes it durable. */
enum ftl_fault {
	FTL_FAULT_READ_EIO,  /* the next `count` reads overlapping [off, off+len) fail with -EIO */
	FTL_FAULT_WRITE_EIO, /* the next `count` writes overlapping the range fail with -EIO */
};
int ftl_dev_mem_inject(struct ftl_dev *dev, enum ftl_fault fault, uint64_t off, uint64_t len,
                       uint32_t count);
/* Power cut: every write not yet flushed is dropped. With `tear_last`, the most recent unflushed
 * write survives in part: its first half (rounded to blocks) lands, the rest is lost. */
int ftl_dev_mem_power_cut(struct ftl_dev *dev, bool tear_last);
/* Power cut at a chosen point: the device dies during the write that comes after NWRITES more
 * writes (0 = the next one). That write is lost (with TEAR its first half, in whole blocks,
 * lands), every unflushed write is dropped, and from then on writes, flushes and trims fail
 * with -EIO (reads still work) until ftl_dev_mem_revive(): the machine is off. */
int ftl_dev_mem_power_cut_after(struct ftl_dev *dev, uint64_t nwrites, bool tear);
bool ftl_dev_mem_is_dead(const struct ftl_dev *dev);
int ftl_dev_mem_revive(struct ftl_dev *dev);
/* Flips bit BIT (0-7) of the byte at OFF in both images (bit rot). */
int ftl_dev_mem_flip_bit(struct ftl_dev *dev, uint64_t off, unsigned bit);
/* Bytes currently trimmed (holes) in the memory device; for tests that TRIM reached it. */
uint64_t ftl_dev_mem_trimmed_bytes(const struct ftl_dev *dev);

/* ------------------------------------------------------------------------------------------ */
/* The FTL                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* A stable chunk address. GC moves chunks without changing their address. */
struct ftl_addr {
	uint64_t v;
};
#define FTL_ADDR_NONE ((struct ftl_addr){UINT64_MAX})
static inline bool ftl_addr_is_none(struct ftl_addr a)
{
	return a.v == UINT64_MAX;
}

#define FTL_HASH_LEN   32     /* opaque per-chunk tag the caller gives (the engine: SHA-256) */
#define FTL_CHUNK_MAX  65536u /* largest chunk payload */
#define FTL_FLAGS_MASK 0xffu  /* caller-owned flag bits stored with each chunk */
/* The one flags value a caller may not use (-EINVAL): the checkpoint's owner word marks chunks
 * that failed their checksum with it. */
#define FTL_FLAGS_RESERVED 0xffu

struct ftl_format_params {
	uint32_t block_size;      /* FTL block; 0 = device block size (min 4096) */
	uint64_t segment_size;    /* erase unit in bytes; 0 = 8 MiB */
	uint32_t rated_pe_cycles; /* endurance for "percent of life used"; 0 = 3000 */
	uint32_t meta_blocks;     /* blocks reserved after the superblocks for metadata (issue 4);
	                             0 = 1/256 of the device, at least 1 MiB */
	uint32_t user_block_size; /* engine block size recorded in the superblock (4K..64K) */
};

/* Writes the two superblocks and marks every segment free (TRIMming them). Destroys data. */
int ftl_format(struct ftl_dev *dev, const struct ftl_format_params *p);

struct ftl_superblock_info {
	uint8_t uuid[16];
	uint32_t version;
	uint32_t block_size;
	uint32_t user_block_size;
	uint64_t segment_size;
	uint32_t segment_count;
	uint32_t rated_pe_cycles;
	uint64_t meta_offset, meta_size; /* the reserved metadata region */
	uint64_t data_offset;            /* where segment 0 starts */
	uint64_t device_size;            /* bytes of device the namespace needs (its end) */
	/* Formatted on a zoned device: a segment is a zone, [0, data_offset) is the random-write
	 * log of ftl_dev_zoned_stats, and the erase count of every segment is kept in a table
	 * at wear_offset (4 bytes each) since a reset zone keeps no header. */
	bool zoned;
	uint64_t wear_offset;
};

/* CRC-32C (Castagnoli; SSE4.2 when the CPU has it) used for every on-disk checksum, for other
 * modules' on-disk structures too. CRC is the value so far (0 to start). */
uint32_t ftl_crc32c(uint32_t crc, const void *data, size_t len);

/* Reads and validates the superblocks (either copy may be damaged). -EINVAL not formatted,
 * -EPROTONOSUPPORT newer version, -EUCLEAN both copies damaged, -EFBIG the namespace is larger
 * than the device (a truncated image or a shrunk device; SB is filled in, so the caller can
 * compare sb->device_size with ftl_dev_size()). */
int ftl_read_superblock(struct ftl_dev *dev, struct ftl_superblock_info *sb);

/* Called for every live chunk at open. A chunk found more than once (old copies left by GC) is
 * reported once, for the copy that wins. HASH_LEN says how much of HASH is known: all of it
 * (FTL_HASH_LEN) for chunks read from segment summaries, only the first FTL_SCAN_HASH_PREFIX
 * bytes (the rest zero) for chunks restored from a checkpoint; ftl_read_hash() has the rest. */
#define FTL_SCAN_HASH_PREFIX 5
typedef int (*ftl_scan_fn)(void *arg, struct ftl_addr addr, const uint8_t hash[FTL_HASH_LEN],
                           uint32_t hash_len, uint32_t len, uint8_t flags);

struct ftl_config {
	struct ftl_dev *dev;  /* not owned */
	bool gc_thread;       /* run GC and wear leveling in a background thread */
	uint32_t gc_low_pct;  /* background GC starts below this % of free segments; 0 = 10 */
	uint32_t gc_high_pct; /* ... and stops above this; 0 = 15 */
	uint32_t wear_spread; /* static wear leveling when max-min erase count exceeds; 0 = 4 */
	ftl_scan_fn scan_cb;  /* optional: told of every chunk found at open */
	void *scan_arg;
	bool full_scan; /* ignore the checkpoint: read every segment (fsck) */
};

struct ftl;

/* Opens a formatted device. Reads every segment header, then the newest sound checkpoint, and
 * walks the pack summaries only of segments written since it (all of them without one, or
 * with cfg->full_scan). Chunks that were freed before an unclean stop may be found again:
 * their owner frees them. Errors: those of ftl_read_superblock, -ENOMEM, -EIO. */
int ftl_open(const struct ftl_config *cfg, struct ftl **out);
/* Writes a checkpoint, flushes, writes a checkpoint when it has changed and closes. NULL is a
 * no-op. */
void ftl_close(struct ftl *ftl);

/* Writes a checkpoint of the FTL's tables (segment table, L2P, owner words) to free segments
 * and frees the previous one once it is durable. Writers wait while the tables are copied
 * (tens of ms for 10 GiB), not while they are written. -ENOSPC when the free segments beyond
 * the GC reserve cannot hold it (the previous checkpoint stays; open walks more). */
int ftl_checkpoint(struct ftl *ftl);
/* The policy: a checkpoint when the segments opened since the last one reach a bound that
 * keeps the walk at open short and the checkpoint's own writes a small part of all writes.
 * Returns 1 if it wrote one, 0 if none was due, or the error of ftl_checkpoint(). */
int ftl_checkpoint_maybe(struct ftl *ftl);

struct ftl_write_opts {
	/* The chunk this write supersedes (an overwrite of the same logical data), or
	 * FTL_ADDR_NONE. The FTL uses the old chunk's age to place data by how often it is
	 * rewritten (hot/cold separation); it does not free PREV. */
	struct ftl_addr prev;
	uint8_t flags; /* caller-owned (any value but FTL_FLAGS_RESERVED), returned by read */
	/* Metadata whose write lets the caller free space (catalogue and map records written
	 * while deleting on a full device) may also take the free segments kept back for GC. */
	bool reserve;
};

/* Appends a chunk (1..FTL_CHUNK_MAX bytes). HASH is stored in the segment summary.
 * Errors: -ENOSPC (no free space even after GC; a write with opts->reserve gets it only when
 * taking another segment would leave GC less than half its reserve), -EIO, -EINVAL (bad
 * length). */
int ftl_write(struct ftl *ftl, const void *data, uint32_t len, const uint8_t hash[FTL_HASH_LEN],
              const struct ftl_write_opts *opts, struct ftl_addr *out);

/* Reads a chunk into BUF (BUFLEN >= its length). Returns its length. FLAGS may be NULL.
 * Errors: -ENOENT (no such chunk), -ENOBUFS, -EIO (device error or checksum failure: the FTL
 * never returns bytes whose checksum fails). */
int ftl_read(struct ftl *ftl, struct ftl_addr addr, void *buf, uint32_t buflen, uint8_t *flags);

/* Length of a chunk, or -ENOENT. */
int ftl_chunk_len(struct ftl *ftl, struct ftl_addr addr);

/* Reads the hash stored with a chunk (from its summary entry). -ENOENT, -EIO. */
int ftl_read_hash(struct ftl *ftl, struct ftl_addr addr, uint8_t hash[FTL_HASH_LEN]);

/* Forgets a chunk; its space is reclaimed by GC. -ENOENT if it does not exist. */
int ftl_free(struct ftl *ftl, struct ftl_addr addr);

/* Writes every buffered chunk and flushes the device: when it returns, all chunks written
 * before the call survive a power cut. */
int ftl_sync(struct ftl *ftl);

/* One GC pass: cleans up to MAX_SEGMENTS victims (0 = until the high watermark). Returns the
 * number of segments cleaned. */
int ftl_gc(struct ftl *ftl, uint32_t max_segments);

struct ftl_stats {
	uint64_t host_bytes_written;   /* chunk payload bytes written by callers */
	uint64_t device_bytes_written; /* bytes written to the device (headers, GC, padding) */
	uint64_t gc_runs;              /* segments cleaned */
	uint64_t gc_bytes_moved;       /* chunk bytes relocated by GC */
	uint64_t wear_moves;           /* segments cleaned by static wear leveling */
	uint64_t trims;                /* segments TRIMmed */
	uint64_t read_errors;          /* device errors and checksum failures on read */
	uint64_t checksum_errors;
	uint64_t chunks_live;
	uint64_t bytes_live; /* payload bytes of live chunks */
	uint32_t segments_total, segments_free, segments_open, segments_closed;
	uint32_t erase_min, erase_max;
	double erase_mean;
	uint32_t rated_pe_cycles;
	double life_used_pct;       /* mean erase count / rated endurance */
	double write_amplification; /* device / host bytes */
	uint64_t capacity_bytes;    /* bytes of all segments */
	uint64_t free_bytes;        /* free segments plus dead bytes in closed segments */
	uint64_t stream_chunks[5];  /* chunks appended to user-hot, user-cold, gc-hot, gc-cold,
	                               reserve (ftl_write_opts.reserve) */
	uint64_t mem_l2p_bytes;     /* RAM of the L2P map */
	uint64_t mem_segment_bytes; /* RAM of the per-segment table */
	/* Checkpoint and the last open. */
	uint32_t segments_ckpt; /* segments holding the current checkpoint */
	uint64_t ckpt_gen;      /* current checkpoint, 0 = none */
	uint64_t ckpt_writes, ckpt_bytes, ckpt_skipped;
	uint64_t segs_since_ckpt;  /* segments opened since the current checkpoint */
	bool open_from_ckpt;       /* the last open started from a checkpoint */
	uint64_t open_ckpt_gen;    /* ... this one */
	uint64_t open_segs_walked; /* segments whose summaries that open read */
	double open_seconds;       /* how long ftl_open took */
	/* Zoned namespaces (all 0 elsewhere). */
	bool zoned;
	uint32_t zone_max_active;    /* the device's limit, 0 = none */
	uint32_t zone_active_budget; /* zones the FTL may hold active: streams + checkpoint + log */
	uint32_t zone_streams;       /* write streams left after folding to fit the limit */
	uint64_t zone_resets;        /* segments freed by a zone reset (this FTL, since open) */
	uint64_t zone_finishes;      /* segments closed before full and finished */
	struct ftl_dev_zoned_stats zdev; /* the device's zone counters and the random-write log */
};
void ftl_get_stats(struct ftl *ftl, struct ftl_stats *st);

/* Human-readable multi-line summary; returns bytes written (like snprintf). */
int ftl_stats_to_text(const struct ftl_stats *st, char *buf, size_t len);
int ftl_stats_to_json(const struct ftl_stats *st, char *buf, size_t len);

/* SMART / health of the device under the FTL: the NVMe log where the device has one, otherwise
 * (smart->emulated) the same fields made up from the FTL's and the backend's counters by
 * ftl_smart_emulate(). Errors: those of reading the log (-EIO, -ENOMEM). */
int ftl_get_smart(struct ftl *ftl, struct ftl_dev_smart *smart);
/* The emulation (pure): data units from the device bytes written/read since open (512,000-byte
 * units, rounded up), media errors from failed reads (device errors and checksum failures),
 * percentage used from mean erases over rated P/E cycles, available spare from free segments
 * over RESERVE (the free segments the FTL keeps for GC alone), and the critical warning bits
 * that follow from those. */
void ftl_smart_emulate(const struct ftl_stats *st, const struct ftl_dev_stats *ds, uint32_t reserve,
                       struct ftl_dev_smart *smart);
/* Printers for .pstorage/flash/smart: a first line "source: nvme" or "source: emulated (not an
 * NVMe device)", then one field a line; n/a (JSON null) for what an emulation cannot know. */
int ftl_smart_to_text(const struct ftl_dev_smart *smart, char *buf, size_t len);
int ftl_smart_to_json(const struct ftl_dev_smart *smart, char *buf, size_t len);

/* Erase count of each segment (for wear reports): fills up to N entries, returns the count. */
int ftl_erase_counts(struct ftl *ftl, uint32_t *counts, uint32_t n);

/* ------------------------------------------------------------------------------------------ */
/* Scrub                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* What is wrong with a chunk the scrub lists (one X-macro list: enum and names agree). */
#define FTL_SCRUB_KIND_LIST(X)                                                                     \
	X(DATA, "data")             /* header or payload fails its checksum: reads give -EIO */    \
	X(UNREADABLE, "unreadable") /* the device cannot read it: reads give -EIO */               \
	X(SUMMARY, "summary")       /* the data verifies, but its pack summary or segment header   \
	                               does not: reads work, the hash may be wrong, and a scan at  \
	                               the next open would not find the chunk */                   \
	X(LOST, "lost")             /* a damaged copy of an id that has no live copy: the scan at  \
	                               open dropped it, reads give -ENOENT (the owner's reference  \
	                               dangles; a freed chunk not yet collected looks the same) */

enum ftl_scrub_kind {
#define FTL_SCRUB_KIND_ENUM(n, s) FTL_SCRUB_##n,
	FTL_SCRUB_KIND_LIST(FTL_SCRUB_KIND_ENUM)
#undef FTL_SCRUB_KIND_ENUM
	    FTL_SCRUB_KIND_COUNT
};
const char *ftl_scrub_kind_name(enum ftl_scrub_kind kind);

struct ftl_scrub_damage {
	struct ftl_addr addr;
	uint32_t seg; /* where the damaged copy is: segment, byte offset of its chunk header */
	uint32_t off;
	uint32_t len;
	uint8_t kind; /* enum ftl_scrub_kind */
};

#define FTL_SCRUB_LIST_MAX 256 /* damaged chunks listed by address; the counts are complete */

struct ftl_scrub_result {
	uint32_t segments_total;    /* segments of the namespace */
	uint32_t segments_done;     /* looked at so far (free segments count: nothing to check) */
	uint64_t bytes_checked;     /* device bytes read and verified */
	uint64_t chunks_checked;    /* live chunks whose checksum was verified */
	uint64_t damaged_chunks;    /* live chunks reads cannot return (DATA + UNREADABLE) */
	uint64_t lost_chunks;       /* LOST */
	uint64_t summary_chunks;    /* SUMMARY: readable, but at risk */
	uint64_t summary_errors;    /* pack summaries and segment headers failing their checks */
	uint64_t unreadable_ranges; /* runs of blocks the device could not read */
	uint64_t unreadable_bytes;
	uint32_t nlisted; /* entries of damaged[] in use: the first FTL_SCRUB_LIST_MAX found */
	struct ftl_scrub_damage damaged[FTL_SCRUB_LIST_MAX];
};

/* Told after every segment with the totals so far (and once before the first). A non-zero
 * return stops the scrub. */
typedef int (*ftl_scrub_progress_fn)(void *arg, const struct ftl_scrub_result *so_far);

/* Reads every used segment (one large read each; only the sealed part of open ones) and checks
 * its header, each pack summary, and the checksum of every live chunk. Locks are held only to
 * take a consistent view of one segment (microseconds), never across the device read, so
 * writes, reads and GC go on; a segment that GC frees while it is read is skipped, and chunks
 * GC moves may be missed or checked twice. A suspected chunk is read again through ftl_read
 * before it is counted, so a race is never reported as damage, and every damaged chunk adds to
 * ftl_stats.checksum_errors (read_errors too for DATA and UNREADABLE) as an ordinary read
 * would. A pack whose summary fails costs one pass over the L2P to find its live chunks.
 * FN may be NULL. Damage is not an error: it is in RES. Returns 0, -ECANCELED (FN asked to
 * stop; RES holds what was checked) or -ENOMEM. */
int ftl_scrub(struct ftl *ftl, ftl_scrub_progress_fn fn, void *arg, struct ftl_scrub_result *res);

#ifdef __cplusplus
}
#endif
#endif
