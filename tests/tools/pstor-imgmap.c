/* tests/tools/pstor-imgmap.c - prints where things are in an unmounted pstorfs image: the
 * superblock's layout, and every chunk found in the segments with the byte offset of its
 * payload, so integration tests can damage exactly the bytes they mean to. Reads only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "ftl_format.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: pstor-imgmap IMAGE\n"
	           "prints 'KEY VALUE' lines of the superblock layout (block_size, segment_size,\n"
	           "segment_count, meta_offset, meta_size, data_offset), then one line per chunk:\n"
	           "chunk ID PAYLOAD_OFFSET LENGTH FLAGS SEGMENT ok|bad\n");
}

static bool seg_header_ok(const struct ftl_seg_disk *h, const struct ftl_superblock_info *sb,
                          uint32_t segi)
{
	struct ftl_seg_disk tmp = *h;
	tmp.crc = 0;
	return h->magic == FTL_SEG_MAGIC && ftl_crc32c(0, &tmp, sizeof(tmp)) == h->crc &&
	       !memcmp(h->uuid, sb->uuid, sizeof(h->uuid)) && h->seg_index == segi &&
	       h->state == FTL_SEG_DISK_OPEN;
}

/* Prints the chunks of the packs of one segment held in BUF, up to the first bad pack. */
static void print_segment(const uint8_t *buf, const struct ftl_superblock_info *sb, uint32_t segi)
{
	const struct ftl_seg_disk *h = (const void *)buf;
	uint64_t base = sb->data_offset + (uint64_t)segi * sb->segment_size;
	uint32_t off = sb->block_size;

	while (off + 2ull * sb->block_size <= sb->segment_size) {
		struct ftl_pack_disk ph;
		memcpy(&ph, buf + off, sizeof(ph));
		size_t elen = (size_t)ph.nentries * sizeof(struct ftl_pack_entry_disk);
		if (ph.magic != FTL_PACK_MAGIC || ph.seg_seq != h->seq || ph.nentries == 0 ||
		    sizeof(ph) + elen > (uint64_t)ph.hdr_blocks * sb->block_size ||
		    (uint64_t)off + ph.total_bytes > sb->segment_size ||
		    ph.hdr_blocks * sb->block_size + ph.data_bytes > ph.total_bytes)
			return;
		uint8_t *hdr = malloc(sizeof(ph) + elen);
		if (!hdr)
			return;
		memcpy(hdr, buf + off, sizeof(ph) + elen);
		((struct ftl_pack_disk *)hdr)->crc = 0;
		bool crc_ok = ftl_crc32c(0, hdr, sizeof(ph) + elen) == ph.crc;
		free(hdr);
		if (!crc_ok)
			return;
		const struct ftl_pack_entry_disk *e = (const void *)(buf + off + sizeof(ph));
		uint32_t cur = off + ph.hdr_blocks * sb->block_size;
		for (uint32_t i = 0; i < ph.nentries; i++) {
			uint32_t len = e[i].len_flags & FTL_LEN_MASK;
			struct ftl_chunk_disk ch;
			if (len == 0 || cur + sizeof(ch) + len > off + ph.total_bytes)
				break;
			memcpy(&ch, buf + cur, sizeof(ch));
			uint64_t id = e[i].id;
			uint32_t lf = e[i].len_flags;
			uint32_t c = ftl_crc32c(0, &id, sizeof(id));
			c = ftl_crc32c(c, &lf, sizeof(lf));
			c = ftl_crc32c(c, buf + cur + sizeof(ch), len);
			printf("chunk %" PRIu64 " %" PRIu64 " %u %u %u %s\n", id,
			       base + cur + sizeof(ch), len, lf >> 24, segi,
			       c == ch.crc && ch.crc == e[i].crc ? "ok" : "bad");
			cur += (uint32_t)((sizeof(ch) + len + FTL_CHUNK_ALIGN - 1) &
			                  ~(FTL_CHUNK_ALIGN - 1));
		}
		off += ph.total_bytes;
	}
}

int main(int argc, char **argv)
{
	struct ftl_dev *dev = NULL;
	struct ftl_superblock_info sb;
	uint8_t *buf = NULL;
	int rc;

	if (argc != 2) {
		usage(stderr);
		return 2;
	}
	rc = ftl_dev_open(argv[1], FTL_DEV_RDONLY, 0, &dev);
	if (rc) {
		fprintf(stderr, "pstor-imgmap: %s: %s\n", argv[1], strerror(-rc));
		return 1;
	}
	rc = ftl_read_superblock(dev, &sb);
	if (rc) {
		fprintf(stderr, "pstor-imgmap: %s: superblock: %s\n", argv[1], strerror(-rc));
		goto err_close;
	}
	printf("block_size %u\nsegment_size %" PRIu64 "\nsegment_count %u\nmeta_offset %" PRIu64
	       "\nmeta_size %" PRIu64 "\ndata_offset %" PRIu64 "\n",
	       sb.block_size, sb.segment_size, sb.segment_count, sb.meta_offset, sb.meta_size,
	       sb.data_offset);
	buf = aligned_alloc(4096, sb.segment_size);
	if (!buf) {
		rc = -ENOMEM;
		goto err_close;
	}
	for (uint32_t s = 0; s < sb.segment_count; s++) {
		rc = ftl_dev_read(dev, buf, sb.segment_size,
		                  sb.data_offset + (uint64_t)s * sb.segment_size);
		if (rc) {
			fprintf(stderr, "pstor-imgmap: segment %u: %s\n", s, strerror(-rc));
			goto err_close;
		}
		if (seg_header_ok((const void *)buf, &sb, s))
			print_segment(buf, &sb, s);
	}
	free(buf);
	ftl_dev_close(dev);
	return 0;

err_close:
	free(buf);
	ftl_dev_close(dev);
	return 1;
}
