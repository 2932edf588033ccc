/* tests/fuzz/fuzz_segment.c - libFuzzer target for the segment scan at open (ftl_scan.c): the
 * input becomes segment 0 of a freshly formatted in-memory namespace (header, packs, summaries,
 * chunks), then ftl_open must refuse or accept it, and every chunk it reports must read back.
 *
 * Input: one flag byte (FZ_SEG_* in fuzz_common.h), then the segment, either verbatim (RAW) or
 * compact: the 128-byte segment header, then per pack its 64-byte header, its summary entries
 * (as many as the header's nentries says) and its data (data_bytes of it); the harness puts each
 * piece where the format wants it, so mutations are not spent on block padding. Fix-up flags
 * repair what the fuzzer cannot guess (the format's random uuid, CRC-32Cs) so the checks behind
 * them are reached.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_format.h"
#include "fuzz_common.h"

#define BS      4096u
#define HDR_MAX 8u /* pack header blocks, at most (FTL_PACK_HDR_MAX) */
#define MAX_ENTRIES                                                                                \
	((HDR_MAX * BS - sizeof(struct ftl_pack_disk)) / sizeof(struct ftl_pack_entry_disk))
#define DATA_CAP  (FZ_SEG_SIZE - 2 * BS) /* the FTL's pack data cap for this segment size */
#define MAX_FOUND (1u << 16)

static uint8_t seg_img[FZ_SEG_SIZE] __attribute__((aligned(4096)));

struct found {
	struct ftl_addr addr;
	uint32_t len;
	uint8_t flags;
	uint8_t hash[FTL_HASH_LEN];
};

struct found_list {
	struct found *v;
	size_t n, cap;
};

static int scan_cb(void *arg, struct ftl_addr addr, const uint8_t hash[FTL_HASH_LEN],
                   uint32_t hash_len, uint32_t len, uint8_t flags)
{
	(void)hash_len;
	struct found_list *l = arg;

	if (len == 0 || len > FTL_CHUNK_MAX) {
		fprintf(stderr, "scan reported chunk %llu with length %u\n",
		        (unsigned long long)addr.v, len);
		abort();
	}
	if (l->n == MAX_FOUND)
		return 0; /* more than two segments can hold: keep the harness bounded anyway */
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct found *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n].addr = addr;
	l->v[l->n].len = len;
	l->v[l->n].flags = flags;
	memcpy(l->v[l->n].hash, hash, FTL_HASH_LEN);
	l->n++;
	return 0;
}

static int cmp_found(const void *a, const void *b)
{
	uint64_t x = ((const struct found *)a)->addr.v, y = ((const struct found *)b)->addr.v;
	return x < y ? -1 : x > y;
}

/* The chunk checksum as ftl_int.h defines it: id, len_flags, payload. */
static uint32_t chunk_crc(uint64_t id, uint32_t len_flags, const uint8_t *payload, uint32_t len)
{
	uint32_t c = ftl_crc32c(0, &id, sizeof(id));
	c = ftl_crc32c(c, &len_flags, sizeof(len_flags));
	return ftl_crc32c(c, payload, len);
}

static uint32_t hdr_blocks(uint32_t nent)
{
	return (uint32_t)((sizeof(struct ftl_pack_disk) +
	                   (size_t)nent * sizeof(struct ftl_pack_entry_disk) + BS - 1) /
	                  BS);
}

/* Repairs the pack at OFF of seg_img as the flags ask: chunk headers and summary CRCs first
 * (they are inside the pack CRC), then the pack's sequence number and CRC. */
static void fix_pack(uint32_t off, uint8_t flags, uint64_t seq)
{
	struct ftl_pack_disk ph;
	memcpy(&ph, seg_img + off, sizeof(ph));
	uint32_t nent = ph.nentries;
	uint32_t room_e =
	    (FZ_SEG_SIZE - off - (uint32_t)sizeof(ph)) / sizeof(struct ftl_pack_entry_disk);
	uint8_t *ents = seg_img + off + sizeof(ph);

	if (nent > MAX_ENTRIES || nent > room_e)
		return; /* the parser rejects it before anything these fixes would reach */
	if ((flags & FZ_SEG_FIX_CHUNK) && ph.hdr_blocks <= HDR_MAX &&
	    (uint64_t)off + (uint64_t)ph.hdr_blocks * BS < FZ_SEG_SIZE) {
		uint32_t dstart = off + ph.hdr_blocks * BS;
		uint32_t dlen =
		    ph.data_bytes < FZ_SEG_SIZE - dstart ? ph.data_bytes : FZ_SEG_SIZE - dstart;
		uint32_t cur = 0;
		for (uint32_t i = 0; i < nent; i++) {
			struct ftl_pack_entry_disk e;
			struct ftl_chunk_disk ch;
			memcpy(&e, ents + (size_t)i * sizeof(e), sizeof(e));
			uint32_t len = e.len_flags & FTL_LEN_MASK;
			uint32_t fp = ftl_chunk_footprint(len);
			if (len == 0 || len > FTL_CHUNK_MAX || (uint64_t)cur + fp > dlen)
				break;
			uint8_t *c = seg_img + dstart + cur;
			ch.crc = chunk_crc(e.id, e.len_flags, c + sizeof(ch), len);
			ch.entry = (uint16_t)i;
			ch.flags = (uint8_t)(e.len_flags >> 24);
			ch.reserved = 0;
			memcpy(c, &ch, sizeof(ch));
			e.crc = ch.crc;
			memcpy(ents + (size_t)i * sizeof(e), &e, sizeof(e));
			cur += fp;
		}
	}
	if (flags & FZ_SEG_FIX_PACK) {
		ph.seg_seq = seq;
		ph.crc = 0;
		memcpy(seg_img + off, &ph, sizeof(ph));
		ph.crc = ftl_crc32c(0, seg_img + off,
		                    sizeof(ph) + (size_t)nent * sizeof(struct ftl_pack_entry_disk));
		memcpy(seg_img + off, &ph, sizeof(ph));
	}
}

/* Copies up to N bytes of the input to DST; returns how many. */
static size_t take(uint8_t *dst, const uint8_t **p, size_t *left, size_t n)
{
	if (n > *left)
		n = *left;
	memcpy(dst, *p, n);
	*p += n;
	*left -= n;
	return n;
}

static bool pack_size_sane(const struct ftl_pack_disk *ph, uint32_t off)
{
	return ph->total_bytes >= 2 * BS && ph->total_bytes % BS == 0 &&
	       (uint64_t)off + ph->total_bytes <= FZ_SEG_SIZE;
}

static void build_compact(const uint8_t *p, size_t left, uint8_t flags, uint64_t *seq)
{
	struct ftl_seg_disk sh;
	uint32_t off = BS;

	take(seg_img, &p, &left, sizeof(sh));
	memcpy(&sh, seg_img, sizeof(sh));
	*seq = sh.seq;
	while (left > 0 && off + 2 * BS <= FZ_SEG_SIZE) {
		struct ftl_pack_disk ph = {0};
		take((uint8_t *)&ph, &p, &left, sizeof(ph));
		uint32_t nent = ph.nentries < MAX_ENTRIES ? ph.nentries : (uint32_t)MAX_ENTRIES;
		uint32_t hb = hdr_blocks(nent);
		if (off + (hb + 1) * BS > FZ_SEG_SIZE)
			break;
		take(seg_img + off + sizeof(ph), &p, &left,
		     (size_t)nent * sizeof(struct ftl_pack_entry_disk));
		uint32_t room = FZ_SEG_SIZE - off - hb * BS;
		if (room > DATA_CAP)
			room = DATA_CAP;
		uint32_t want = (flags & FZ_SEG_FIX_SIZE) ? room : ph.data_bytes;
		uint32_t dl =
		    (uint32_t)take(seg_img + off + hb * BS, &p, &left, want < room ? want : room);
		if (flags & FZ_SEG_FIX_SIZE) {
			ph.nentries = nent;
			ph.hdr_blocks = hb;
			ph.data_bytes = dl;
			ph.total_bytes = (hb + (dl ? (dl + BS - 1) / BS : 1)) * BS;
		}
		memcpy(seg_img + off, &ph, sizeof(ph));
		fix_pack(off, flags, *seq);
		if (!pack_size_sane(&ph, off))
			break;
		off += ph.total_bytes;
	}
}

static void build_raw(const uint8_t *p, size_t left, uint8_t flags, uint64_t *seq)
{
	struct ftl_seg_disk sh;
	uint32_t off = BS;

	take(seg_img, &p, &left, sizeof(seg_img));
	memcpy(&sh, seg_img, sizeof(sh));
	*seq = sh.seq;
	while (off + 2 * BS <= FZ_SEG_SIZE) {
		struct ftl_pack_disk ph;
		fix_pack(off, flags, *seq);
		memcpy(&ph, seg_img + off, sizeof(ph));
		if (!pack_size_sane(&ph, off))
			break;
		off += ph.total_bytes;
	}
}

/* The segment header: our uuid, the segment index it is written to, a correct CRC. */
static void fix_seg_header(const uint8_t uuid[16], uint32_t segi)
{
	struct ftl_seg_disk h;
	memcpy(&h, seg_img, sizeof(h));
	memcpy(h.uuid, uuid, sizeof(h.uuid));
	h.seg_index = segi;
	h.crc = 0;
	h.crc = ftl_crc32c(0, &h, sizeof(h));
	memcpy(seg_img, &h, sizeof(h));
}

/* Reads every chunk the scan reported: it passed its checksum at open, so it must read back
 * with the reported length and flags. */
static void read_all(struct ftl *ftl, const struct found_list *l, uint8_t *buf)
{
	for (size_t i = 0; i < l->n; i++) {
		uint8_t flags = 0, hash[FTL_HASH_LEN];
		int rc = ftl_read(ftl, l->v[i].addr, buf, FTL_CHUNK_MAX, &flags);
		if (rc != (int)l->v[i].len || flags != l->v[i].flags) {
			fprintf(stderr, "chunk %llu: scanned len %u flags %u, read %d flags %u\n",
			        (unsigned long long)l->v[i].addr.v, l->v[i].len, l->v[i].flags, rc,
			        flags);
			abort();
		}
		/* The chunk header's summary index is outside the chunk CRC: -EIO is allowed. */
		rc = ftl_read_hash(ftl, l->v[i].addr, hash);
		if (rc != 0 && rc != -EIO) {
			fprintf(stderr, "ftl_read_hash: %d\n", rc);
			abort();
		}
	}
}

/* Life after a hostile scan: free half of what was found, write new chunks, GC the fuzzed
 * segments, then check the new chunks read back, before and after a reopen. */
static void work(struct ftl_dev *dev, struct ftl *ftl, struct found_list *l, uint8_t *buf)
{
	struct ftl_addr addrs[4];
	uint8_t payload[4][512];
	uint8_t hash[FTL_HASH_LEN] = {0};
	int nw = 0;

	for (size_t i = 0; i < l->n; i += 2)
		fz_check(ftl_free(ftl, l->v[i].addr), "ftl_free of a scanned chunk");
	for (int k = 0; k < 4; k++) {
		memset(payload[k], 0xa0 + k, sizeof(payload[k]));
		int rc = ftl_write(ftl, payload[k], (uint32_t)sizeof(payload[k]) - 100u * k, hash,
		                   NULL, &addrs[nw]);
		if (rc == -ENOSPC)
			break;
		fz_check(rc, "ftl_write");
		nw++;
	}
	fz_check(ftl_sync(ftl), "ftl_sync");
	/* Up to every segment, watermarks or not, so the fuzzed ones are GC victims; one that GC
	 * cannot account for stays pinned, which is allowed. */
	int gc_rc = ftl_gc(ftl, FZ_SEG_COUNT);
	if (gc_rc < 0 && gc_rc != -ENOSPC) {
		fprintf(stderr, "ftl_gc: %d\n", gc_rc);
		abort();
	}
	/* What the scan accepted and was not freed survives GC, with its length and flags. */
	for (size_t i = 1; i < l->n; i += 2)
		l->v[i / 2] = l->v[i];
	l->n /= 2;
	read_all(ftl, l, buf);
	for (int k = 0; k < nw; k++) {
		int rc = ftl_read(ftl, addrs[k], buf, FTL_CHUNK_MAX, NULL);
		if (rc != (int)sizeof(payload[k]) - 100 * k ||
		    memcmp(buf, payload[k], (size_t)rc)) {
			fprintf(stderr, "new chunk %d lost after GC: %d\n", k, rc);
			abort();
		}
	}
	ftl_close(ftl);

	struct ftl_config cfg = {.dev = dev};
	fz_check(ftl_open(&cfg, &ftl), "reopen");
	for (int k = 0; k < nw; k++) {
		int rc = ftl_read(ftl, addrs[k], buf, FTL_CHUNK_MAX, NULL);
		if (rc != (int)sizeof(payload[k]) - 100 * k ||
		    memcmp(buf, payload[k], (size_t)rc)) {
			fprintf(stderr, "new chunk %d lost after reopen: %d\n", k, rc);
			abort();
		}
	}
	ftl_close(ftl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t buf[FTL_CHUNK_MAX];
	struct ftl_format_params fp = {.segment_size = FZ_SEG_SIZE, .meta_blocks = 256};
	struct ftl_superblock_info sb;
	struct found_list found = {0};
	struct ftl_dev *dev;
	struct ftl *ftl = NULL;
	uint64_t seq = 0;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	/* 1 MiB metadata after the superblocks puts segment 0 at 1280 KiB. */
	uint64_t dev_size = (1280ull << 10) + (uint64_t)FZ_SEG_COUNT * FZ_SEG_SIZE;
	fz_check(ftl_dev_open_mem(dev_size, BS, &dev), "ftl_dev_open_mem");
	fz_check(ftl_format(dev, &fp), "ftl_format");
	fz_check(ftl_read_superblock(dev, &sb), "ftl_read_superblock");
	if (sb.segment_count != FZ_SEG_COUNT || sb.segment_size != FZ_SEG_SIZE) {
		fprintf(stderr, "unexpected geometry: %u segments of %llu\n", sb.segment_count,
		        (unsigned long long)sb.segment_size);
		abort();
	}

	memset(seg_img, 0, sizeof(seg_img));
	if (flags & FZ_SEG_RAW)
		build_raw(data + 1, size - 1, flags, &seq);
	else
		build_compact(data + 1, size - 1, flags, &seq);
	for (uint32_t segi = 0; segi < ((flags & FZ_SEG_TWICE) ? 2u : 1u); segi++) {
		if (flags & FZ_SEG_FIX_HDR)
			fix_seg_header(sb.uuid, segi);
		fz_check(ftl_dev_write(dev, seg_img, sizeof(seg_img),
		                       sb.data_offset + (uint64_t)segi * FZ_SEG_SIZE),
		         "segment write");
	}

	struct ftl_config cfg = {.dev = dev, .scan_cb = scan_cb, .scan_arg = &found};
	int rc = ftl_open(&cfg, &ftl);
	if (rc == 0) {
		/* "A chunk found more than once is reported once" (ftl.h). */
		if (found.n > 1)
			qsort(found.v, found.n, sizeof(*found.v), cmp_found);
		for (size_t i = 1; i < found.n; i++) {
			if (found.v[i].addr.v == found.v[i - 1].addr.v) {
				fprintf(stderr, "chunk %llu reported twice\n",
				        (unsigned long long)found.v[i].addr.v);
				abort();
			}
		}
		read_all(ftl, &found, buf);
		if (flags & FZ_SEG_WORK)
			work(dev, ftl, &found, buf);
		else
			ftl_close(ftl);
	} else if (rc != -ENOMEM && rc != -EIO) {
		fprintf(stderr, "ftl_open: undocumented error %d\n", rc);
		abort();
	}
	free(found.v);
	ftl_dev_close(dev);
	return 0;
}
