/* fs/pfs_vfs.c - a SQLite VFS that stores one database and its rollback journal in a fixed byte
 * range of a namespace (the FTL's metadata region). It knows nothing of SQL or of what the
 * database holds, and never touches a byte outside its region.
 *
 * Layout (offsets from the region start; S = max(4096, device block size), see pfs_vfs_int.h):
 *   [0, S) header copy A | [S, 2S) header copy B | db area | journal area
 * Byte x of the database is at db_off + x, byte x of "<db>-journal" at jnl_off + x. The header
 * records the layout, so open uses what format chose.
 *
 * Invariants (the numbers are referred to in the code):
 *  1. A file lives only in its own area and its size never exceeds the area: an xWrite or
 *     xTruncate beyond it returns SQLITE_FULL having written nothing.
 *  2. Only the header says whether a file exists and how long it is. A copy is valid when its
 *     magic, version, layout and CRC-32C check; open takes the valid copy with the highest seq.
 *  3. A header is written only when every earlier data write is durable: if anything was written
 *     since the last flush, the device is flushed first. So a header never makes a journal hot
 *     whose content is still volatile (SQLite's rule "journal durable before it is hot"), and
 *     a stale journal left in the area by an earlier transaction can never be resurrected.
 *  4. A header update writes the "primary" slot, the one NOT holding the newest header known to
 *     be durable (v->cur), flushes, and only then sets v->cur to it; then it writes the same
 *     state to the other slot without flushing (the next flush makes it durable). A torn or lost
 *     primary leaves the other slot with the previous state; a torn mirror leaves the primary.
 *     After any later flush both copies describe the newest state, so bit rot in one copy loses
 *     nothing. Sequence numbers only grow, also over failed writes.
 *  5. Each file has its live state (exists, size: what SQLite sees) and the state last put in a
 *     header. xWrite/xTruncate/xOpen(CREATE) change only the live state. xSync flushes and, if
 *     any live state differs from the header, updates the header (3, 4) before returning.
 *     xDelete updates the header at once (SYNC_DIR is always honoured); if that fails the file
 *     still exists, as after a failed unlink. The last close of a file whose state is not in the
 *     header does what xSync does, so even synchronous=OFF loses nothing on a clean close.
 *     Together with SQLite's own order (db xSync before the journal is deleted or zeroed), this
 *     keeps the rollback-journal protocol crash safe.
 *  6. Writes that do not cover whole device blocks read-modify-write the blocks around them; a
 *     block that starts at or past the file's size is not read but zero-filled. Device block
 *     writes are atomic per block, so bytes of a block outside a write never change: hence
 *     SQLITE_IOCAP_POWERSAFE_OVERWRITE. SAFE_APPEND is not claimed (sizes move at xSync only).
 *  7. Locking: v->lock (one mutex) guards everything in struct pfs_vfs and every handle's lock
 *     level, and is held across device I/O (SQLite serialises a connection anyway). The lock
 *     table mirrors the unix VFS for handles of one process: nshared counts db handles at
 *     SHARED or above; writer is the one db handle at RESERVED, PENDING or EXCLUSIVE. Journal
 *     handles do not lock (SQLite never locks a journal). The daemon's flock on the device keeps
 *     other processes out.
 *  8. Files: the main database (SQLITE_OPEN_MAIN_DB) and its rollback journal
 *     (SQLITE_OPEN_MAIN_JOURNAL, "<db>-journal"). Anything else (temp, WAL, super-journal,
 *     statement journals that spill) is SQLITE_CANTOPEN. While any db handle is open, only its
 *     name and that name + "-journal" are ours; every other name does not exist.
 *  9. Data writes wait in the write-back buffer (pfs_vfs_wb.c) and reach the device, sorted and
 *     coalesced, before the next flush (xSync, a header update), at the last close of a file,
 *     or when the buffer is full: what the device may hold at a power cut is what it could
 *     hold before (any subset of the writes since the last flush), and no header ever names
 *     data still in memory (3). Reads see the buffered blocks. A truncate drops the blocks
 *     wholly past the new size, so a file that grows again reads zeros there (6).
 */
#include <endian.h>
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftl.h"
#include "pfs_meta.h"
#include "pfs_vfs_wb.h"

#define PFS_VFS_MAGIC      "PSTRVFS\x01"
#define PFS_VFS_VERSION    1u
#define PFS_VFS_MIN_SLOT   4096u
#define PFS_VFS_MIN_JNL    (1024u * 1024)
#define PFS_VFS_MAXPATH    512
#define PFS_VFS_F_EXISTS   0x1u
#define PFS_VFS_JNL_SUFFIX "-journal"
/* Write-back buffer (pfs_vfs_wb.c): a commit of the daemon's map pages journals and rewrites
 * a few thousand pages, about 12 MiB of journal on a busy 8 GiB volume. */
#define PFS_VFS_WB_BYTES (16u << 20)

enum pfs_vfs_kind { PFS_VFS_DB = 0, PFS_VFS_JNL = 1, PFS_VFS_NKIND };

/* ------------------------------------------------------------------------------------------ */
/* On-disk header                                                                               */
/* ------------------------------------------------------------------------------------------ */

/* Little-endian, at the start of each header slot; the rest of the slot is zero. Offsets are
 * relative to the region start. */
struct pfs_vfs_file_disk {
	uint64_t size;
	uint32_t flags; /* PFS_VFS_F_EXISTS */
	uint32_t pad;
};

struct pfs_vfs_hdr_disk {
	uint8_t magic[8];
	uint32_t version;
	uint32_t hdr_size; /* sizeof(struct pfs_vfs_hdr_disk) */
	uint64_t seq;
	uint64_t region_size;
	uint32_t slot_size;
	uint32_t pad0;
	uint64_t db_off, db_cap;
	uint64_t jnl_off, jnl_cap;
	struct pfs_vfs_file_disk files[PFS_VFS_NKIND];
	uint8_t reserved[20];
	uint32_t crc; /* CRC-32C of every byte before it */
};
_Static_assert(sizeof(struct pfs_vfs_file_disk) == 16, "file entry size");
_Static_assert(sizeof(struct pfs_vfs_hdr_disk) == 128, "header size");

struct pfs_vfs_layout {
	uint64_t region_size;
	uint32_t slot;
	uint64_t db_off, db_cap, jnl_off, jnl_cap;
};

/* In memory: what SQLite sees (live) and what the last header written or read says. */
struct pfs_vfs_file {
	bool exists, hdr_exists;
	uint64_t size, hdr_size;
	uint64_t dev_off, cap; /* absolute device offset of the area, its size */
	unsigned nopen;        /* handles open on this file */
};

struct pfs_vfs_handle;

struct pfs_vfs {
	sqlite3_vfs base;
	sqlite3_vfs *def; /* the default VFS: randomness, time, sleep, dlopen */
	char *name;
	struct ftl_dev *dev;
	uint64_t off;
	uint32_t bs;
	struct pfs_vfs_layout lay;

	pthread_mutex_t lock; /* invariant 7: everything below */
	struct pfs_vfs_file f[PFS_VFS_NKIND];
	char dbname[PFS_VFS_MAXPATH + 1]; /* name of the open db, "" when none (invariant 8) */
	unsigned cur;                     /* slot of the newest header known durable (4) */
	uint64_t seq;                     /* highest sequence number written or read */
	bool unflushed;                   /* a write since the last flush (3) */
	unsigned nshared;
	struct pfs_vfs_handle *writer;
	uint8_t *hdrbuf; /* one slot, aligned for O_DIRECT backends */
	/* Blocks written since the last sync (invariant 9): written out before any flush, read
	 * back from here until then. */
	struct pfs_vfs_wb wb;
	uint8_t *scratch;
	size_t scratch_len;
	struct pfs_vfs_stats st;
};

struct pfs_vfs_handle {
	sqlite3_file base;
	struct pfs_vfs *v;
	enum pfs_vfs_kind kind;
	int lock; /* SQLITE_LOCK_* (db handles only) */
	bool delete_on_close;
};

static uint32_t pfs_vfs_slot_size(uint32_t bs)
{
	return bs > PFS_VFS_MIN_SLOT ? bs : PFS_VFS_MIN_SLOT;
}

/* Computes the layout of a region of SIZE bytes on a device of BS-byte blocks. */
static int pfs_vfs_layout(uint32_t bs, uint64_t size, struct pfs_vfs_layout *l)
{
	uint64_t rest, jnl;

	l->slot = pfs_vfs_slot_size(bs);
	if (size < 2 * (uint64_t)l->slot + 2 * PFS_VFS_MIN_AREA)
		return -EINVAL;
	rest = size - 2 * (uint64_t)l->slot;
	jnl = rest / 4 > PFS_VFS_MIN_JNL ? rest / 4 : PFS_VFS_MIN_JNL;
	/* Small regions (the FTL's minimum is 1 MiB) split evenly rather than leave no db. */
	if (jnl > rest / 2)
		jnl = rest / 2;
	jnl = jnl / l->slot * l->slot;
	l->region_size = size;
	l->db_off = 2 * (uint64_t)l->slot;
	l->db_cap = rest - jnl;
	l->jnl_off = l->db_off + l->db_cap;
	l->jnl_cap = jnl;
	if (l->db_cap < PFS_VFS_MIN_AREA || l->jnl_cap < PFS_VFS_MIN_AREA)
		return -EINVAL;
	return 0;
}

static int pfs_vfs_check_region(struct ftl_dev *dev, uint64_t off, uint64_t size)
{
	uint64_t bs;

	if (!dev)
		return -EINVAL;
	bs = ftl_dev_block_size(dev);
	if (off % bs || size % bs || off > ftl_dev_size(dev) || size > ftl_dev_size(dev) - off)
		return -EINVAL;
	return 0;
}

/* Device buffers are aligned to the slot size (a power of two >= the block size), which is
 * what O_DIRECT backends need. */
static void *pfs_vfs_alloc_aligned(uint32_t align, size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, align, len))
		return NULL;
	return p;
}

/* Fills BUF (one slot) with a header for layout L, sequence SEQ and the given file states. */
static void pfs_vfs_hdr_encode(uint8_t *buf, const struct pfs_vfs_layout *l, uint64_t seq,
                               const bool exists[PFS_VFS_NKIND], const uint64_t size[PFS_VFS_NKIND])
{
	struct pfs_vfs_hdr_disk h;

	memset(&h, 0, sizeof(h));
	memcpy(h.magic, PFS_VFS_MAGIC, sizeof(h.magic));
	h.version = htole32(PFS_VFS_VERSION);
	h.hdr_size = htole32(sizeof(h));
	h.seq = htole64(seq);
	h.region_size = htole64(l->region_size);
	h.slot_size = htole32(l->slot);
	h.db_off = htole64(l->db_off);
	h.db_cap = htole64(l->db_cap);
	h.jnl_off = htole64(l->jnl_off);
	h.jnl_cap = htole64(l->jnl_cap);
	for (int k = 0; k < PFS_VFS_NKIND; k++) {
		h.files[k].size = htole64(exists[k] ? size[k] : 0);
		h.files[k].flags = htole32(exists[k] ? PFS_VFS_F_EXISTS : 0);
	}
	h.crc = htole32(ftl_crc32c(0, &h, offsetof(struct pfs_vfs_hdr_disk, crc)));
	memset(buf, 0, l->slot);
	memcpy(buf, &h, sizeof(h));
}

enum pfs_vfs_hdr_state { PFS_HDR_FOREIGN, PFS_HDR_DAMAGED, PFS_HDR_NEWER, PFS_HDR_OK };

struct pfs_vfs_hdr {
	uint64_t seq;
	struct pfs_vfs_layout lay;
	bool exists[PFS_VFS_NKIND];
	uint64_t size[PFS_VFS_NKIND];
};

/* Checks one header copy against the device block size BS; fills OUT when it is usable. */
static enum pfs_vfs_hdr_state pfs_vfs_hdr_decode(const uint8_t *buf, uint32_t bs,
                                                 struct pfs_vfs_hdr *out)
{
	struct pfs_vfs_hdr_disk h;
	struct pfs_vfs_layout *l = &out->lay;

	memcpy(&h, buf, sizeof(h));
	if (memcmp(h.magic, PFS_VFS_MAGIC, sizeof(h.magic)) != 0)
		return PFS_HDR_FOREIGN;
	if (le32toh(h.crc) != ftl_crc32c(0, &h, offsetof(struct pfs_vfs_hdr_disk, crc)))
		return PFS_HDR_DAMAGED;
	if (le32toh(h.version) > PFS_VFS_VERSION)
		return PFS_HDR_NEWER;
	if (le32toh(h.version) != PFS_VFS_VERSION || le32toh(h.hdr_size) != sizeof(h))
		return PFS_HDR_DAMAGED;
	out->seq = le64toh(h.seq);
	l->region_size = le64toh(h.region_size);
	l->slot = le32toh(h.slot_size);
	l->db_off = le64toh(h.db_off);
	l->db_cap = le64toh(h.db_cap);
	l->jnl_off = le64toh(h.jnl_off);
	l->jnl_cap = le64toh(h.jnl_cap);
	/* A checksummed header with an impossible layout was written by a broken program:
	 * treat it as damaged rather than trust offsets that could reach outside the region. */
	if (l->slot < PFS_VFS_MIN_SLOT || l->slot % bs || l->db_off != 2 * (uint64_t)l->slot ||
	    l->db_cap % bs || l->jnl_cap % bs || l->jnl_off != l->db_off + l->db_cap ||
	    l->jnl_off < l->db_off || l->jnl_off + l->jnl_cap < l->jnl_off ||
	    l->jnl_off + l->jnl_cap > l->region_size)
		return PFS_HDR_DAMAGED;
	for (int k = 0; k < PFS_VFS_NKIND; k++) {
		uint32_t flags = le32toh(h.files[k].flags);

		out->exists[k] = flags & PFS_VFS_F_EXISTS;
		out->size[k] = le64toh(h.files[k].size);
		if ((flags & ~PFS_VFS_F_EXISTS) ||
		    out->size[k] > (k == PFS_VFS_DB ? l->db_cap : l->jnl_cap))
			return PFS_HDR_DAMAGED;
	}
	return PFS_HDR_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Device I/O and the header protocol (invariants 3, 4, 5)                                     */
/* ------------------------------------------------------------------------------------------ */

/* -ENOMEM becomes SQLITE_IOERR_NOMEM; every other device error the operation's IOERR. This is
 * the one place errno values turn into SQLite codes. */
static int pfs_vfs_sqlite_err(int err, int ioerr)
{
	return err == -ENOMEM ? SQLITE_IOERR_NOMEM : ioerr;
}

static int pfs_vfs_scratch(struct pfs_vfs *v, size_t len)
{
	uint8_t *p;

	if (len <= v->scratch_len)
		return 0;
	p = pfs_vfs_alloc_aligned(pfs_vfs_slot_size(v->bs), len);
	if (!p)
		return -ENOMEM;
	free(v->scratch);
	v->scratch = p;
	v->scratch_len = len;
	return 0;
}

/* Invariant 9: the buffered blocks to the device (no flush). Caller holds v->lock. */
static int pfs_vfs_write_out(struct pfs_vfs *v)
{
	uint64_t before = v->wb.device_writes;
	int err = pfs_vfs_wb_write_out(&v->wb, v->dev);

	v->st.device_writes += v->wb.device_writes - before;
	return err;
}

/* Invariant 9: no flush without the buffered blocks written first. */
static int pfs_vfs_flush(struct pfs_vfs *v)
{
	int err = pfs_vfs_write_out(v);

	if (err < 0)
		return err;
	err = ftl_dev_flush(v->dev);
	v->st.flushes++;
	if (err == 0)
		v->unflushed = false;
	return err;
}

static int pfs_vfs_hdr_write(struct pfs_vfs *v, unsigned slot)
{
	bool exists[PFS_VFS_NKIND];
	uint64_t size[PFS_VFS_NKIND];

	for (int k = 0; k < PFS_VFS_NKIND; k++) {
		exists[k] = v->f[k].exists;
		size[k] = v->f[k].size;
	}
	pfs_vfs_hdr_encode(v->hdrbuf, &v->lay, ++v->seq, exists, size);
	v->st.header_writes++;
	v->unflushed = true; /* even a failed write may have landed in part */
	return ftl_dev_write(v->dev, v->hdrbuf, v->lay.slot, v->off + (uint64_t)slot * v->lay.slot);
}

static bool pfs_vfs_file_dirty(const struct pfs_vfs_file *f)
{
	return f->exists != f->hdr_exists || (f->exists && f->size != f->hdr_size);
}

static bool pfs_vfs_hdr_dirty(const struct pfs_vfs *v)
{
	return pfs_vfs_file_dirty(&v->f[PFS_VFS_DB]) || pfs_vfs_file_dirty(&v->f[PFS_VFS_JNL]);
}

/* Makes the live state of both files durable in a header. Caller holds v->lock. */
static int pfs_vfs_commit(struct pfs_vfs *v)
{
	unsigned primary = v->cur ^ 1;
	int err;

	/* Buffered blocks keep unflushed set (invariant 9), so the flush writes them out. */
	if (v->unflushed) {
		err = pfs_vfs_flush(v); /* invariant 3 */
		if (err < 0)
			return err;
	}
	err = pfs_vfs_hdr_write(v, primary);
	if (err < 0)
		return err;
	err = pfs_vfs_flush(v);
	if (err < 0)
		return err;
	v->cur = primary;
	for (int k = 0; k < PFS_VFS_NKIND; k++) {
		v->f[k].hdr_exists = v->f[k].exists;
		v->f[k].hdr_size = v->f[k].size;
	}
	/* The mirror (invariant 4). Its failure costs only redundancy: the next update writes
	 * that slot first anyway, because v->cur still names the primary. */
	(void)pfs_vfs_hdr_write(v, primary ^ 1);
	return 0;
}

/* xSync without the SQLite types: flush, then the header if any state changed. */
static int pfs_vfs_sync_locked(struct pfs_vfs *v)
{
	if (pfs_vfs_hdr_dirty(v))
		return pfs_vfs_commit(v);
	if (v->unflushed)
		return pfs_vfs_flush(v);
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* sqlite3_io_methods                                                                           */
/* ------------------------------------------------------------------------------------------ */

static struct pfs_vfs_handle *pfs_vfs_handle_of(sqlite3_file *file)
{
	return (struct pfs_vfs_handle *)file;
}

static void pfs_vfs_unlock_locked(struct pfs_vfs *v, struct pfs_vfs_handle *h, int level)
{
	if (h->lock <= level)
		return;
	if (h->lock >= SQLITE_LOCK_RESERVED) {
		if (v->writer == h)
			v->writer = NULL;
		h->lock = SQLITE_LOCK_SHARED;
	}
	if (level == SQLITE_LOCK_NONE && h->lock == SQLITE_LOCK_SHARED) {
		v->nshared--;
		h->lock = SQLITE_LOCK_NONE;
	}
}

static int pfs_vfs_xclose(sqlite3_file *file)
{
	struct pfs_vfs_handle *h = pfs_vfs_handle_of(file);
	struct pfs_vfs *v = h->v;
	struct pfs_vfs_file *f = &v->f[h->kind];
	int rc = SQLITE_OK, err;

	pthread_mutex_lock(&v->lock);
	if (h->kind == PFS_VFS_DB)
		pfs_vfs_unlock_locked(v, h, SQLITE_LOCK_NONE);
	f->nopen--;
	if (h->delete_on_close) {
		f->exists = false;
		f->size = 0;
	}
	if (f->nopen == 0 && pfs_vfs_file_dirty(f)) {
		err = pfs_vfs_commit(v); /* invariant 5: a clean close keeps what was written */
		if (err < 0)
			rc = pfs_vfs_sqlite_err(err, SQLITE_IOERR_CLOSE);
	} else if (f->nopen == 0) {
		err = pfs_vfs_write_out(v); /* invariant 9: as far as a write without a buffer */
		if (err < 0)
			rc = pfs_vfs_sqlite_err(err, SQLITE_IOERR_CLOSE);
	}
	if (h->kind == PFS_VFS_DB && f->nopen == 0)
		v->dbname[0] = '\0';
	pthread_mutex_unlock(&v->lock);
	return rc;
}

/* Blocks [lo, hi) of file F into v->scratch: from the device unless every one is buffered,
 * then the buffered ones over them (invariant 9). Caller holds v->lock. */
static int pfs_vfs_read_blocks(struct pfs_vfs *v, const struct pfs_vfs_file *f, uint64_t lo,
                               uint64_t hi)
{
	bool all = true, any = false;
	int err;

	for (uint64_t b = lo; b < hi && pfs_vfs_wb_enabled(&v->wb); b += v->bs) {
		bool held = pfs_vfs_wb_find(&v->wb, f->dev_off + b) != NULL;
		all &= held;
		any |= held;
	}
	if (!all || !any) {
		err = ftl_dev_read(v->dev, v->scratch, hi - lo, f->dev_off + lo);
		if (err < 0)
			return err;
		v->st.reads++;
	}
	for (uint64_t b = lo; b < hi && any; b += v->bs) {
		const uint8_t *blk = pfs_vfs_wb_find(&v->wb, f->dev_off + b);
		if (blk)
			memcpy(v->scratch + (b - lo), blk, v->bs);
	}
	return 0;
}

static int pfs_vfs_xread(sqlite3_file *file, void *buf, int amt, sqlite3_int64 ofst)
{
	struct pfs_vfs_handle *h = pfs_vfs_handle_of(file);
	struct pfs_vfs *v = h->v;
	struct pfs_vfs_file *f = &v->f[h->kind];
	uint64_t o = (uint64_t)ofst, n = 0, lo, hi;
	int rc = SQLITE_OK, err;

	if (amt <= 0 || ofst < 0)
		return SQLITE_IOERR_READ;
	pthread_mutex_lock(&v->lock);
	if (o < f->size)
		n = f->size - o < (uint64_t)amt ? f->size - o : (uint64_t)amt;
	if (n > 0) {
		/* Whole blocks through the aligned scratch buffer: O_DIRECT backends need both. */
		lo = o / v->bs * v->bs;
		hi = (o + n + v->bs - 1) / v->bs * v->bs;
		err = pfs_vfs_scratch(v, hi - lo);
		if (err == 0)
			err = pfs_vfs_read_blocks(v, f, lo, hi);
		if (err < 0) {
			rc = pfs_vfs_sqlite_err(err, SQLITE_IOERR_READ);
			goto out_unlock;
		}
		memcpy(buf, v->scratch + (o - lo), n);
		v->st.bytes_read += n;
	}
	if (n < (uint64_t)amt) {
		/* SQLite requires the unread tail to be zeroed on a short read. */
		memset((uint8_t *)buf + n, 0, (size_t)amt - n);
		rc = SQLITE_IOERR_SHORT_READ;
	}
out_unlock:
	pthread_mutex_unlock(&v->lock);
	return rc;
}

/* Bytes [o, o + n) of file F into the write-back buffer (invariant 9), block by block; a block
 * first held and not wholly written is read first where it holds file bytes, as a device
 * write reads it (6). A full buffer is written out to make room. Caller holds v->lock. */
static int pfs_vfs_write_buffered(struct pfs_vfs *v, const struct pfs_vfs_file *f,
                                  const uint8_t *buf, uint64_t o, uint64_t n)
{
	uint64_t lo = o / v->bs * v->bs;
	int err;

	v->unflushed = true; /* the flush that makes these durable is due from here */
	for (uint64_t b = lo; b < o + n; b += v->bs) {
		uint64_t dev_off = f->dev_off + b;
		uint64_t s = o > b ? o : b, e = o + n < b + v->bs ? o + n : b + v->bs;
		uint8_t *blk = pfs_vfs_wb_find(&v->wb, dev_off);
		if (!blk) {
			blk = pfs_vfs_wb_add(&v->wb, dev_off);
			if (!blk) {
				err = pfs_vfs_write_out(v);
				if (err < 0)
					return err;
				blk = pfs_vfs_wb_add(&v->wb, dev_off);
			}
			if (s > b || e < b + v->bs) {
				err = 0;
				if (b < f->size)
					err = ftl_dev_read(v->dev, blk, v->bs, dev_off);
				else
					memset(blk, 0, v->bs);
				if (err < 0) {
					pfs_vfs_wb_drop(&v->wb, dev_off, dev_off + v->bs);
					return err;
				}
			}
		}
		memcpy(blk + (s - b), buf + (s - o), e - s);
	}
	return 0;
}

static int pfs_vfs_xwrite(sqlite3_file *file, const void *buf, int amt, sqlite3_int64 ofst)
{
	struct pfs_vfs_handle *h = pfs_vfs_handle_of(file);
	struct pfs_vfs *v = h->v;
	struct pfs_vfs_file *f = &v->f[h->kind];
	uint64_t o = (uint64_t)ofst, n = (uint64_t)amt, lo, hi, tail;
	int rc = SQLITE_OK, err;

	if (amt <= 0 || ofst < 0)
		return SQLITE_IOERR_WRITE;
	if (o > f->cap || n > f->cap - o)
		return SQLITE_FULL; /* invariant 1; f->cap is constant, no lock needed */
	lo = o / v->bs * v->bs;
	hi = (o + n + v->bs - 1) / v->bs * v->bs;
	tail = hi - v->bs;
	pthread_mutex_lock(&v->lock);
	if (pfs_vfs_wb_enabled(&v->wb)) {
		err = pfs_vfs_write_buffered(v, f, buf, o, n);
		if (err < 0)
			goto err_unlock;
		goto done;
	}
	err = pfs_vfs_scratch(v, hi - lo);
	if (err < 0)
		goto err_unlock;
	/* Invariant 6: read the partial blocks at either end only where they hold file bytes. */
	if (o > lo || o + n < hi) {
		if (lo < f->size && o > lo)
			err = ftl_dev_read(v->dev, v->scratch, v->bs, f->dev_off + lo);
		else if (o > lo)
			memset(v->scratch, 0, v->bs);
		if (err == 0 && o + n < hi && (tail != lo || o == lo)) {
			if (tail < f->size)
				err = ftl_dev_read(v->dev, v->scratch + (tail - lo), v->bs,
				                   f->dev_off + tail);
			else
				memset(v->scratch + (tail - lo), 0, v->bs);
		}
		if (err < 0)
			goto err_unlock;
	}
	memcpy(v->scratch + (o - lo), buf, n);
	v->unflushed = true;
	err = ftl_dev_write(v->dev, v->scratch, hi - lo, f->dev_off + lo);
	if (err < 0)
		goto err_unlock;
	v->st.device_writes++;
done:
	if (o + n > f->size)
		f->size = o + n;
	v->st.writes++;
	v->st.bytes_written += n;
	pthread_mutex_unlock(&v->lock);
	return SQLITE_OK;

err_unlock:
	rc = pfs_vfs_sqlite_err(err, SQLITE_IOERR_WRITE);
	pthread_mutex_unlock(&v->lock);
	return rc;
}

static int pfs_vfs_xtruncate(sqlite3_file *file, sqlite3_int64 size)
{
	struct pfs_vfs_handle *h = pfs_vfs_handle_of(file);
	struct pfs_vfs *v = h->v;
	struct pfs_vfs_file *f = &v->f[h->kind];

	if (size < 0)
		return SQLITE_IOERR_TRUNCATE;
	if ((uint64_t)size > f->cap)
		return SQLITE_FULL;
	pthread_mutex_lock(&v->lock);
	/* Invariant 9: blocks wholly past the new end are forgotten. */
	pfs_vfs_wb_drop(&v->wb, f->dev_off + ((uint64_t)size + v->bs - 1) / v->bs * v->bs,
	                f->dev_off + f->cap);
	f->size = (uint64_t)size; /* durable at the next xSync (invariant 5) */
	pthread_mutex_unlock(&v->lock);
	return SQLITE_OK;
}

static int pfs_vfs_xsync(sqlite3_file *file, int flags)
{
	struct pfs_vfs_handle *h = pfs_vfs_handle_of(file);
	struct pfs_vfs *v = h->v;
	int err;

	(void)flags; /* FULL or NORMAL, DATAONLY or not: a device flush is all we have */
	pthread_mutex_lock(&v->lock);
	v->st.syncs++;
	err = pfs_vfs_sync_locked(v);
	pthread_mutex_unlock(&v->lock);
	return err < 0 ? pfs_vfs_sqlite_err(err, SQLITE_IOERR_FSYNC) : SQLITE_OK;
}

static int pfs_vfs_xfilesize(sqlite3_file *file, sqlite3_int64 *size)
{
	struct pfs_vfs_handle *h = pfs_vfs_handle_of(file);
	struct pfs_vfs *v = h->v;

	pthread_mutex_lock(&v->lock);
	*size = (sqlite3_int64)v->f[h->kind].size;
	pthread_mutex_unlock(&v->lock);
	return SQLITE_OK;
}

static int pfs_vfs_xlock(sqlite3_file *file, int level)
{
	struct pfs_vfs_handle *h = pfs_vfs_handle_of(file);
	struct pfs_vfs *v = h->v;
	int rc = SQLITE_OK;

	if (h->kind != PFS_VFS_DB)
		return SQLITE_OK;
	pthread_mutex_lock(&v->lock);
	if (h->lock >= level)
		goto out_unlock;
	if (level == SQLITE_LOCK_SHARED) {
		/* A writer at PENDING or above keeps new readers out so it can get EXCLUSIVE. */
		if (v->writer && v->writer != h && v->writer->lock >= SQLITE_LOCK_PENDING) {
			rc = SQLITE_BUSY;
			goto out_unlock;
		}
		v->nshared++;
		h->lock = SQLITE_LOCK_SHARED;
		goto out_unlock;
	}
	/* RESERVED, PENDING, EXCLUSIVE: SQLite asks for them only while holding SHARED. */
	if (h->lock < SQLITE_LOCK_SHARED || (v->writer && v->writer != h)) {
		rc = SQLITE_BUSY;
		goto out_unlock;
	}
	v->writer = h;
	if (level == SQLITE_LOCK_RESERVED) {
		h->lock = SQLITE_LOCK_RESERVED;
		goto out_unlock;
	}
	if (level == SQLITE_LOCK_EXCLUSIVE && v->nshared == 1) {
		h->lock = SQLITE_LOCK_EXCLUSIVE;
		goto out_unlock;
	}
	/* Readers remain: hold PENDING (no new readers) and let SQLite retry. */
	h->lock = SQLITE_LOCK_PENDING;
	if (level == SQLITE_LOCK_EXCLUSIVE)
		rc = SQLITE_BUSY;
out_unlock:
	pthread_mutex_unlock(&v->lock);
	return rc;
}

static int pfs_vfs_xunlock(sqlite3_file *file, int level)
{
	struct pfs_vfs_handle *h = pfs_vfs_handle_of(file);
	struct pfs_vfs *v = h->v;

	if (h->kind != PFS_VFS_DB)
		return SQLITE_OK;
	pthread_mutex_lock(&v->lock);
	pfs_vfs_unlock_locked(v, h, level);
	pthread_mutex_unlock(&v->lock);
	return SQLITE_OK;
}

static int pfs_vfs_xcheck_reserved(sqlite3_file *file, int *out)
{
	struct pfs_vfs *v = pfs_vfs_handle_of(file)->v;

	pthread_mutex_lock(&v->lock);
	*out = v->writer != NULL; /* as unix: a reserved lock held by anyone, us included */
	pthread_mutex_unlock(&v->lock);
	return SQLITE_OK;
}

static int pfs_vfs_xfile_control(sqlite3_file *file, int op, void *arg)
{
	(void)file;
	(void)op;
	(void)arg;
	return SQLITE_NOTFOUND;
}

static int pfs_vfs_xsector_size(sqlite3_file *file)
{
	return (int)pfs_vfs_handle_of(file)->v->bs;
}

static int pfs_vfs_xdevice_characteristics(sqlite3_file *file)
{
	(void)file;
	return SQLITE_IOCAP_POWERSAFE_OVERWRITE; /* invariant 6 */
}

/* Version 1: no shared memory (so no WAL) and no memory mapping. */
static const sqlite3_io_methods pfs_vfs_io_methods = {
    .iVersion = 1,
    .xClose = pfs_vfs_xclose,
    .xRead = pfs_vfs_xread,
    .xWrite = pfs_vfs_xwrite,
    .xTruncate = pfs_vfs_xtruncate,
    .xSync = pfs_vfs_xsync,
    .xFileSize = pfs_vfs_xfilesize,
    .xLock = pfs_vfs_xlock,
    .xUnlock = pfs_vfs_xunlock,
    .xCheckReservedLock = pfs_vfs_xcheck_reserved,
    .xFileControl = pfs_vfs_xfile_control,
    .xSectorSize = pfs_vfs_xsector_size,
    .xDeviceCharacteristics = pfs_vfs_xdevice_characteristics,
};

/* ------------------------------------------------------------------------------------------ */
/* sqlite3_vfs                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static struct pfs_vfs *pfs_vfs_of(sqlite3_vfs *vfs)
{
	return vfs->pAppData;
}

static bool pfs_vfs_is_journal_name(const char *name)
{
	size_t n = strlen(name), s = strlen(PFS_VFS_JNL_SUFFIX);

	return n > s && strcmp(name + n - s, PFS_VFS_JNL_SUFFIX) == 0;
}

/* Which file NAME is (invariant 8), or -1 when it is none of ours. Caller holds v->lock. */
static int pfs_vfs_kind_of(const struct pfs_vfs *v, const char *name)
{
	size_t n = strlen(v->dbname);

	if (!v->dbname[0])
		return pfs_vfs_is_journal_name(name) ? PFS_VFS_JNL : -1;
	if (strcmp(name, v->dbname) == 0)
		return PFS_VFS_DB;
	if (strncmp(name, v->dbname, n) == 0 && strcmp(name + n, PFS_VFS_JNL_SUFFIX) == 0)
		return PFS_VFS_JNL;
	return -1;
}

static int pfs_vfs_xopen(sqlite3_vfs *vfs, sqlite3_filename zname, sqlite3_file *file, int flags,
                         int *out_flags)
{
	struct pfs_vfs *v = pfs_vfs_of(vfs);
	struct pfs_vfs_handle *h = pfs_vfs_handle_of(file);
	struct pfs_vfs_file *f;
	enum pfs_vfs_kind kind;
	int rc = SQLITE_OK;

	memset(h, 0, sizeof(*h)); /* pMethods NULL: SQLite will not xClose a failed open */
	if (!zname || strlen(zname) > PFS_VFS_MAXPATH)
		return SQLITE_CANTOPEN;
	if ((flags & SQLITE_OPEN_MAIN_DB) && !pfs_vfs_is_journal_name(zname))
		kind = PFS_VFS_DB;
	else if ((flags & SQLITE_OPEN_MAIN_JOURNAL) && pfs_vfs_is_journal_name(zname))
		kind = PFS_VFS_JNL;
	else
		return SQLITE_CANTOPEN; /* temp, WAL, super-journal, spilled statement journal */

	pthread_mutex_lock(&v->lock);
	if (kind == PFS_VFS_DB && v->dbname[0] && strcmp(zname, v->dbname) != 0) {
		rc = SQLITE_CANTOPEN; /* one database per VFS */
		goto out_unlock;
	}
	if (kind == PFS_VFS_JNL && v->dbname[0] && pfs_vfs_kind_of(v, zname) != PFS_VFS_JNL) {
		rc = SQLITE_CANTOPEN;
		goto out_unlock;
	}
	f = &v->f[kind];
	if (f->exists && (flags & SQLITE_OPEN_EXCLUSIVE) && (flags & SQLITE_OPEN_CREATE)) {
		rc = SQLITE_CANTOPEN;
		goto out_unlock;
	}
	if (!f->exists) {
		if (!(flags & SQLITE_OPEN_CREATE)) {
			rc = SQLITE_CANTOPEN;
			goto out_unlock;
		}
		f->exists = true; /* durable at the next xSync (invariant 5) */
		f->size = 0;
	}
	f->nopen++;
	if (kind == PFS_VFS_DB)
		strcpy(v->dbname, zname);
	h->v = v;
	h->kind = kind;
	h->lock = SQLITE_LOCK_NONE;
	h->delete_on_close = flags & SQLITE_OPEN_DELETEONCLOSE;
	h->base.pMethods = &pfs_vfs_io_methods;
	if (out_flags)
		*out_flags = flags;
out_unlock:
	pthread_mutex_unlock(&v->lock);
	return rc;
}

static int pfs_vfs_xdelete(sqlite3_vfs *vfs, const char *zname, int sync_dir)
{
	struct pfs_vfs *v = pfs_vfs_of(vfs);
	struct pfs_vfs_file *f, old;
	int rc = SQLITE_OK, kind, err;

	(void)sync_dir; /* always: the header write is the directory entry */
	pthread_mutex_lock(&v->lock);
	kind = pfs_vfs_kind_of(v, zname);
	if (kind < 0 || !v->f[kind].exists) {
		rc = SQLITE_IOERR_DELETE_NOENT;
		goto out_unlock;
	}
	f = &v->f[kind];
	old = *f;
	f->exists = false;
	f->size = 0;
	if (!pfs_vfs_hdr_dirty(v))
		goto out_unlock; /* created and deleted between two headers: nothing to write */
	err = pfs_vfs_commit(v);
	if (err < 0) {
		*f = old; /* invariant 5: a failed delete leaves the file */
		rc = pfs_vfs_sqlite_err(err, SQLITE_IOERR_DELETE);
	}
out_unlock:
	pthread_mutex_unlock(&v->lock);
	return rc;
}

static int pfs_vfs_xaccess(sqlite3_vfs *vfs, const char *zname, int flags, int *out)
{
	struct pfs_vfs *v = pfs_vfs_of(vfs);
	int kind;

	pthread_mutex_lock(&v->lock);
	kind = pfs_vfs_kind_of(v, zname);
	*out = 0;
	/* As unixAccess: an empty file "does not exist", which is how SQLite tells a journal
	 * that might be hot from one that cannot be. */
	if (kind >= 0 && v->f[kind].exists)
		*out = flags != SQLITE_ACCESS_EXISTS || v->f[kind].size > 0;
	pthread_mutex_unlock(&v->lock);
	return SQLITE_OK;
}

static int pfs_vfs_xfull_pathname(sqlite3_vfs *vfs, const char *zname, int nout, char *zout)
{
	size_t n = strlen(zname);

	(void)vfs;
	if (n + 1 > (size_t)nout || n > PFS_VFS_MAXPATH)
		return SQLITE_CANTOPEN;
	memcpy(zout, zname, n + 1); /* names are keys in the region, not paths */
	return SQLITE_OK;
}

static void *pfs_vfs_xdlopen(sqlite3_vfs *vfs, const char *path)
{
	sqlite3_vfs *def = pfs_vfs_of(vfs)->def;

	return def->xDlOpen ? def->xDlOpen(def, path) : NULL;
}

static void pfs_vfs_xdlerror(sqlite3_vfs *vfs, int n, char *msg)
{
	sqlite3_vfs *def = pfs_vfs_of(vfs)->def;

	if (def->xDlError)
		def->xDlError(def, n, msg);
	else if (n > 0)
		snprintf(msg, (size_t)n, "not supported");
}

static void (*pfs_vfs_xdlsym(sqlite3_vfs *vfs, void *lib, const char *sym))(void)
{
	sqlite3_vfs *def = pfs_vfs_of(vfs)->def;

	return def->xDlSym ? def->xDlSym(def, lib, sym) : NULL;
}

static void pfs_vfs_xdlclose(sqlite3_vfs *vfs, void *lib)
{
	sqlite3_vfs *def = pfs_vfs_of(vfs)->def;

	if (def->xDlClose)
		def->xDlClose(def, lib);
}

static int pfs_vfs_xrandomness(sqlite3_vfs *vfs, int n, char *out)
{
	sqlite3_vfs *def = pfs_vfs_of(vfs)->def;

	return def->xRandomness(def, n, out);
}

static int pfs_vfs_xsleep(sqlite3_vfs *vfs, int us)
{
	sqlite3_vfs *def = pfs_vfs_of(vfs)->def;

	return def->xSleep(def, us);
}

static int pfs_vfs_xcurrent_time(sqlite3_vfs *vfs, double *out)
{
	sqlite3_vfs *def = pfs_vfs_of(vfs)->def;

	return def->xCurrentTime(def, out);
}

static int pfs_vfs_xget_last_error(sqlite3_vfs *vfs, int n, char *msg)
{
	sqlite3_vfs *def = pfs_vfs_of(vfs)->def;

	return def->xGetLastError ? def->xGetLastError(def, n, msg) : 0;
}

static int pfs_vfs_xcurrent_time_int64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
	sqlite3_vfs *def = pfs_vfs_of(vfs)->def;
	double d;
	int rc;

	if (def->iVersion >= 2 && def->xCurrentTimeInt64)
		return def->xCurrentTimeInt64(def, out);
	rc = def->xCurrentTime(def, &d);
	*out = (sqlite3_int64)(d * 86400000.0);
	return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Public functions                                                                             */
/* ------------------------------------------------------------------------------------------ */

int pfs_vfs_format(struct ftl_dev *dev, uint64_t off, uint64_t size)
{
	static const bool none[PFS_VFS_NKIND] = {false, false};
	static const uint64_t zero[PFS_VFS_NKIND] = {0, 0};
	struct pfs_vfs_layout lay;
	uint8_t *buf;
	int err;

	err = pfs_vfs_check_region(dev, off, size);
	if (err < 0)
		return err;
	err = pfs_vfs_layout(ftl_dev_block_size(dev), size, &lay);
	if (err < 0)
		return err;
	buf = pfs_vfs_alloc_aligned(lay.slot, lay.slot);
	if (!buf)
		return -ENOMEM;
	/* Two valid copies describing no files; whatever the areas hold is garbage now. */
	for (unsigned slot = 0; slot < 2; slot++) {
		pfs_vfs_hdr_encode(buf, &lay, slot + 1, none, zero);
		err = ftl_dev_write(dev, buf, lay.slot, off + (uint64_t)slot * lay.slot);
		if (err < 0)
			goto out_free;
	}
	err = ftl_dev_flush(dev);
out_free:
	free(buf);
	return err;
}

/* Reads both header copies and picks the one to trust (invariant 2). */
static int pfs_vfs_load(struct pfs_vfs *v, uint64_t size)
{
	struct pfs_vfs_hdr hdr[2], *best = NULL;
	enum pfs_vfs_hdr_state state[2];
	bool newer = false, damaged = false;
	uint32_t slot_size = pfs_vfs_slot_size(v->bs);
	int err;

	for (unsigned s = 0; s < 2; s++) {
		err = ftl_dev_read(v->dev, v->hdrbuf, slot_size, v->off + (uint64_t)s * slot_size);
		if (err < 0)
			return err;
		state[s] = pfs_vfs_hdr_decode(v->hdrbuf, v->bs, &hdr[s]);
		newer |= state[s] == PFS_HDR_NEWER;
		damaged |= state[s] == PFS_HDR_DAMAGED;
		if (state[s] == PFS_HDR_OK && (!best || hdr[s].seq > best->seq)) {
			best = &hdr[s];
			v->cur = s;
		}
	}
	/* A newer program's copy may be the newest state: never fall back to an older one. */
	if (newer)
		return -EPROTONOSUPPORT;
	if (!best)
		return damaged ? -EUCLEAN : -EINVAL;
	if (best->lay.region_size != size || best->lay.slot != slot_size)
		return -EINVAL; /* formatted for another region */
	v->lay = best->lay;
	v->seq = best->seq; /* the highest of the valid copies */
	for (int k = 0; k < PFS_VFS_NKIND; k++) {
		struct pfs_vfs_file *f = &v->f[k];

		f->exists = f->hdr_exists = best->exists[k];
		f->size = f->hdr_size = best->exists[k] ? best->size[k] : 0;
		f->dev_off = v->off + (k == PFS_VFS_DB ? v->lay.db_off : v->lay.jnl_off);
		f->cap = k == PFS_VFS_DB ? v->lay.db_cap : v->lay.jnl_cap;
	}
	return 0;
}

int pfs_vfs_open(struct ftl_dev *dev, uint64_t off, uint64_t size, const char *name,
                 struct pfs_vfs **out)
{
	struct pfs_vfs *v;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (!name || !name[0])
		return -EINVAL;
	err = pfs_vfs_check_region(dev, off, size);
	if (err < 0)
		return err;
	if (sqlite3_initialize() != SQLITE_OK)
		return -ENOMEM;
	if (sqlite3_vfs_find(name))
		return -EEXIST;
	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->dev = dev;
	v->off = off;
	v->bs = ftl_dev_block_size(dev);
	err = -ENOMEM;
	v->name = strdup(name);
	v->hdrbuf = pfs_vfs_alloc_aligned(pfs_vfs_slot_size(v->bs), pfs_vfs_slot_size(v->bs));
	if (!v->name || !v->hdrbuf)
		goto err_free;
	err = pfs_vfs_load(v, size);
	if (err < 0)
		goto err_free;
	err = pfs_vfs_wb_init(&v->wb, v->bs, pfs_vfs_slot_size(v->bs), PFS_VFS_WB_BYTES);
	if (err < 0)
		goto err_free;
	v->def = sqlite3_vfs_find(NULL);
	if (!v->def) {
		err = -EIO; /* a SQLite built without an OS layer */
		goto err_free;
	}
	err = -pthread_mutex_init(&v->lock, NULL);
	if (err < 0)
		goto err_free;

	v->base = (sqlite3_vfs){
	    .iVersion = 2,
	    .szOsFile = sizeof(struct pfs_vfs_handle),
	    .mxPathname = PFS_VFS_MAXPATH,
	    .zName = v->name,
	    .pAppData = v,
	    .xOpen = pfs_vfs_xopen,
	    .xDelete = pfs_vfs_xdelete,
	    .xAccess = pfs_vfs_xaccess,
	    .xFullPathname = pfs_vfs_xfull_pathname,
	    .xDlOpen = pfs_vfs_xdlopen,
	    .xDlError = pfs_vfs_xdlerror,
	    .xDlSym = pfs_vfs_xdlsym,
	    .xDlClose = pfs_vfs_xdlclose,
	    .xRandomness = pfs_vfs_xrandomness,
	    .xSleep = pfs_vfs_xsleep,
	    .xCurrentTime = pfs_vfs_xcurrent_time,
	    .xGetLastError = pfs_vfs_xget_last_error,
	    .xCurrentTimeInt64 = pfs_vfs_xcurrent_time_int64,
	};
	if (sqlite3_vfs_register(&v->base, 0) != SQLITE_OK) {
		err = -ENOMEM;
		goto err_destroy_lock;
	}
	*out = v;
	return 0;

err_destroy_lock:
	pthread_mutex_destroy(&v->lock);
err_free:
	pfs_vfs_wb_fini(&v->wb);
	free(v->hdrbuf);
	free(v->name);
	free(v);
	return err;
}

void pfs_vfs_close(struct pfs_vfs *v)
{
	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	if (v->f[PFS_VFS_DB].nopen || v->f[PFS_VFS_JNL].nopen) {
		/* A caller bug; freeing would turn it into a use-after-free in SQLite. */
		pthread_mutex_unlock(&v->lock);
		return;
	}
	/* Nothing is open, so every state is in a header already (invariant 5); the flush makes
	 * the mirror copy durable too (invariant 4). Errors have no one left to report to. */
	(void)pfs_vfs_sync_locked(v);
	pthread_mutex_unlock(&v->lock);
	sqlite3_vfs_unregister(&v->base);
	pthread_mutex_destroy(&v->lock);
	pfs_vfs_wb_fini(&v->wb);
	free(v->scratch);
	free(v->hdrbuf);
	free(v->name);
	free(v);
}

int pfs_vfs_set_writeback(struct pfs_vfs *v, size_t bytes)
{
	struct pfs_vfs_wb wb;
	int err;

	pthread_mutex_lock(&v->lock);
	err = pfs_vfs_write_out(v);
	if (err == 0)
		err = pfs_vfs_wb_init(&wb, v->bs, pfs_vfs_slot_size(v->bs), bytes);
	if (err == 0) {
		pfs_vfs_wb_fini(&v->wb);
		v->wb = wb;
	}
	pthread_mutex_unlock(&v->lock);
	return err;
}

void pfs_vfs_get_stats(struct pfs_vfs *v, struct pfs_vfs_stats *st)
{
	pthread_mutex_lock(&v->lock);
	*st = v->st;
	st->db_bytes = v->f[PFS_VFS_DB].exists ? v->f[PFS_VFS_DB].size : 0;
	st->journal_bytes = v->f[PFS_VFS_JNL].exists ? v->f[PFS_VFS_JNL].size : 0;
	st->db_capacity = v->f[PFS_VFS_DB].cap;
	st->journal_capacity = v->f[PFS_VFS_JNL].cap;
	pthread_mutex_unlock(&v->lock);
}

int pfs_vfs_stats_to_text(const struct pfs_vfs_stats *st, char *buf, size_t len)
{
	return snprintf(buf, len,
	                "reads: %llu\nwrites: %llu\ndevice_writes: %llu\nbytes_read: %llu\n"
	                "bytes_written: %llu\nsyncs: %llu\nflushes: %llu\nheader_writes: %llu\n"
	                "db_bytes: %llu\njournal_bytes: %llu\ndb_capacity: %llu\n"
	                "journal_capacity: %llu\n",
	                (unsigned long long)st->reads, (unsigned long long)st->writes,
	                (unsigned long long)st->device_writes, (unsigned long long)st->bytes_read,
	                (unsigned long long)st->bytes_written, (unsigned long long)st->syncs,
	                (unsigned long long)st->flushes, (unsigned long long)st->header_writes,
	                (unsigned long long)st->db_bytes, (unsigned long long)st->journal_bytes,
	                (unsigned long long)st->db_capacity,
	                (unsigned long long)st->journal_capacity);
}
