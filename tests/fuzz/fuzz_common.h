/* tests/fuzz/fuzz_common.h - what the fuzz targets and the seed generator must agree on: the
 * geometry each target builds its device with and the layout of each target's input. Test code
 * only; nothing in the libraries includes it.
 */
#ifndef PSTOR_FUZZ_COMMON_H
#define PSTOR_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* fuzz_superblock: [flags][copy A: up to 512 bytes][copy B: up to 512 bytes]. */
#define FZ_SB_FIX_A     0x01u /* recompute copy A's CRC-32C */
#define FZ_SB_FIX_B     0x02u /* recompute copy B's CRC-32C */
#define FZ_SB_DEV_SHIFT 2     /* bits 2-3: device size (fuzz_superblock.c: sb_dev_sizes) */
#define FZ_SB_BS512     0x10u /* 512-byte device blocks instead of 4096 */
#define FZ_SB_OPEN      0x20u /* ftl_open the result when it validates */

/* fuzz_segment: [flags][segment 0 image, compact or raw]. The device is formatted with
 * FZ_SEG_SIZE segments, FZ_SEG_COUNT of them. */
#define FZ_SEG_SIZE      (256u << 10) /* the FTL's smallest segment */
#define FZ_SEG_COUNT     8u
#define FZ_SEG_RAW       0x01u /* input is the segment verbatim, else compact (fuzz_segment.c) */
#define FZ_SEG_FIX_HDR   0x02u /* segment header: our uuid and a correct CRC */
#define FZ_SEG_FIX_PACK  0x04u /* pack headers: the segment's seq and a correct CRC */
#define FZ_SEG_FIX_CHUNK 0x08u /* chunk headers and summary CRCs match the payloads */
#define FZ_SEG_FIX_SIZE  0x10u /* compact only: pack sizes match what the input holds */
#define FZ_SEG_TWICE     0x20u /* the same image in segment 1 too (duplicate ids) */
#define FZ_SEG_WORK      0x40u /* after the reads: free, write, GC */

/* fuzz_metaregion: [flags][header A: 128][header B: 128][db length: le32][db][journal]. */
#define FZ_META_REGION  (264u << 10) /* two 4 KiB slots + 128 KiB db + 128 KiB journal */
#define FZ_META_OFF     (64u << 10)  /* region offset on the device */
#define FZ_META_DEV     (FZ_META_OFF + FZ_META_REGION + (64u << 10))
#define FZ_META_HDR     128u /* bytes of a header copy the input may replace */
#define FZ_META_FIX_A   0x01u
#define FZ_META_FIX_B   0x02u
#define FZ_META_BS512   0x04u /* 512-byte device blocks (read-modify-write paths) */
#define FZ_META_WRITE   0x08u /* also run writing statements (journal, header updates) */
#define FZ_META_CREATE  0x10u /* open with SQLITE_OPEN_CREATE */
#define FZ_META_CRC_OFF 124u  /* the header's CRC-32C field, over the bytes before it */
#define FZ_META_SLOT    32u   /* le32 slot size (where header B starts) in a header */
#define FZ_META_DB_OFF  40u   /* le64 db area offset in a header */
#define FZ_META_JNL_OFF 56u   /* le64 journal area offset in a header */
#define FZ_META_JNL_CAP 64u   /* le64 journal area size in a header */
#define FZ_META_DB_CAP  48u   /* le64 db area size in a header */

/* fuzz_nvme: [kind][flags][structure bytes], kind % 5 one of FZ_NVME_*: the raw NVMe structure
 * a controller returns, fed to its parser in ftl_nvme_parse.c. */
enum { FZ_NVME_ID_CTRL, FZ_NVME_ID_NS, FZ_NVME_ZNS_ID_NS, FZ_NVME_SMART, FZ_NVME_ZONES };
#define FZ_NVME_PAD       0x01u /* zero-pad to the structure's full length, else pass the input's */
#define FZ_NVME_LBA512    0x02u /* ZNS and zone report: 512-byte LBAs, else 4096 */
#define FZ_NVME_FMT_SHIFT 2     /* bits 2-3: ZNS: the LBA format index in use */
#define FZ_NVME_EXT_SHIFT 4     /* bits 4-7: zone report: descriptor extension, 64-byte units */
#define FZ_NVME_ZNS_CAP   (1ull << 30) /* ZNS: the namespace size its identity gives */

/* fuzz_log: [flags][from][stop][log chunk payload], fed to pfs_log_decode (fs/vol/pfs_log.c).
 * The first lsn the decoder is given is the chunk header's (bytes 8..15) with FZ_LOG_LSN_OK,
 * else that plus one (the decoder must refuse it); records below first + FROM are skipped;
 * with FZ_LOG_STOP the callback fails at the STOP-th record it sees. */
#define FZ_LOG_LSN_OK 0x01u
#define FZ_LOG_STOP   0x02u

/* fuzz_catalog: a catalogue record verbatim, fed to pfs_catalog_decode (fs/vol/pfs_mchunk.c).
 * Its layout is PFS_CAT_* in fs/meta/pfs_format.h: the harness re-encodes what it decoded. */

/* fuzz_pfs_format: [kind][...], kind even: a map page, [flags][map: le64][page: le64][blob],
 * to pfs_page_decode; kind odd: a chunk tag, [32 bytes, zero-padded], to pfs_mtag_decode. */
#define FZ_PAGE_FIX_CRC 0x01u /* make the blob's CRC right for (map, page) */
#define FZ_PAGE_FULL    0x02u /* zero-pad the blob to its full length (else the input's) */
/* Bit 2 and bits 3-7 of the flags: the key an accepted blob must be refused for is the map
 * (bit 2 clear) or the page index (set) with bit 2 * (flags >> 3) flipped. */

static inline uint32_t fz_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, sizeof(v)); /* the on-disk formats are little-endian, as are our hosts */
	return v;
}

static inline uint64_t fz_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void fz_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline void fz_put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* A harness that cannot build its fixture has nothing to fuzz: stop loudly, not silently. */
static inline void fz_check(int rc, const char *what)
{
	if (rc) {
		fprintf(stderr, "fuzz harness: %s failed: %d\n", what, rc);
		abort();
	}
}

#endif
