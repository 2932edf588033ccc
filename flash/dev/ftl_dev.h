/* flash/dev/ftl_dev.h - public interface of the device layer: namespaces and their backends
 * (image file, block device, NVMe, memory), identity, SMART log, zones and the random-write log
 * of a zoned namespace, backend counters, and the CRC-32C every on-disk structure uses.
 *
 * It knows nothing of segments, chunks or the FTL above it. The FTL reaches it through ftl.h,
 * which includes this header. The memory device's fault injection is apart, in ftl_dev_fault.h.
 * All functions return 0 (or a non-negative count) or -errno.
 */
#ifndef PSTOR_FTL_DEV_H
#define PSTOR_FTL_DEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

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
/* Regular files only: through the host's page cache. Without it an image file is opened
 * O_DIRECT, and buffered only where the host filesystem refuses O_DIRECT (the identity's
 * `cache` and `cache_reason` say which and why). */
#define FTL_DEV_BUFFERED 0x4

/* Opens PATH with the backend that fits it: an NVMe namespace block device (/dev/nvmeXnY,
 * detected through sysfs and confirmed with Identify) gets FTL_DEV_NVME, any other block device
 * FTL_DEV_BLOCK, a regular file FTL_DEV_FILE. `size` is only used with FTL_DEV_CREATE.
 * Errors: -ENOENT, -EACCES, -EINVAL (not a file or block device), -EIO.
 */
int ftl_dev_open(const char *path, unsigned flags, uint64_t size, struct ftl_dev **out);

/* In-memory device of SIZE bytes and BLOCK_SIZE logical blocks (512..65536, power of two). */
int ftl_dev_open_mem(uint64_t size, uint32_t block_size, struct ftl_dev **out);
/* An in-memory device for benchmarks that never read data back: of every write only the first
 * KEEP bytes (a multiple of BLOCK_SIZE) land, the rest is dropped as a TRIM drops it (reads give
 * zeros there). Enough for what the FTL itself reads (segment and pack headers, which a pack
 * write puts first) at a fraction of the memory and copying of a whole namespace. Otherwise
 * the plain memory device, fault seams included. -EINVAL, -ENOMEM. */
int ftl_dev_open_mem_sparse(uint64_t size, uint32_t block_size, size_t keep, struct ftl_dev **out);
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
/* Reads at least [OFF, OFF+LEN) into BUF (CAP bytes, 4096-aligned) in one device read that
 * starts at OFF rounded down to the device's read grain: a byte on image files through the page
 * cache and on memory, the O_DIRECT alignment on direct backends (512 for an image on most
 * filesystems), a block in a zoned namespace's log. Returns where OFF landed in BUF (>= 0), or
 * -EINVAL (out of bounds, CAP too small) / -EIO. For the hot read path: a 4 KiB chunk with its
 * header spans two blocks but only nine 512-byte sectors. */
int ftl_dev_read_span(struct ftl_dev *dev, void *buf, size_t cap, size_t len, uint64_t off);
int ftl_dev_flush(struct ftl_dev *dev);
/* Tells the device the range holds no data. -EOPNOTSUPP when the device cannot (harmless). */
int ftl_dev_trim(struct ftl_dev *dev, uint64_t off, uint64_t len);
/* [OFF, OFF+LEN) is about to be written, front to back: an image file allocates it now
 * (fallocate), so the writes that fill it find their blocks allocated. On ext4 a direct write
 * into a hole allocates under the file's exclusive lock and holds it until the write ends: the
 * segment's pack writes, its header reads and the other streams' writes then queue one behind
 * the other. A hint: 0 where the backend has nothing to do, else what fallocate said (the
 * caller may ignore it: a full host filesystem fails the writes themselves). */
int ftl_dev_reserve(struct ftl_dev *dev, uint64_t off, uint64_t len);

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
	/* How I/O reaches the medium: "direct" (O_DIRECT, no host page cache: block devices, NVMe,
	 * image files where the host filesystem takes it), "buffered" (an image file through the
	 * host's page cache), "memory" (the memory device). */
	char cache[16];
	char cache_reason[96]; /* why "buffered": "cache=buffered" or the refusal; else empty */
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

/* True for a device opened FTL_DEV_RDONLY: writes, flushes of writes and trims give -EROFS. */
bool ftl_dev_is_rdonly(const struct ftl_dev *dev);

/* The random-write log of a zoned namespace (ftl_dev_zoned.c), as the FTL's format sets it up.
 * Resets every zone of DEV and sets up an empty log big enough for RAND_BYTES from offset 0;
 * *DATA_OFFSET gets where the zones after it start. -EOPNOTSUPP (zone capacity below zone size,
 * blocks above 4 KiB), -ENOSPC, -EIO. */
int ftl_dev_zoned_format(struct ftl_dev *dev, uint64_t rand_bytes, uint64_t *data_offset);
/* Zones the log takes for RAND_BYTES: its live blocks fill at most 2/5 of the zones but one. */
uint32_t ftl_dev_zoned_log_zones(uint64_t rand_bytes, uint64_t zone_size);

/* CRC-32C (Castagnoli; SSE4.2 when the CPU has it) used for every on-disk checksum, for other
 * modules' on-disk structures too. CRC is the value so far (0 to start). */
uint32_t ftl_crc32c(uint32_t crc, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
