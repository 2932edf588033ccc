/* flash/dev/ftl_dev_mem.c - FTL_DEV_MEM backend: an in-memory namespace for tests and benchmarks,
 * with the fault-injection seams of ftl.h (failed reads/writes, power cut, torn write, bit rot).
 * It must never touch memory for blocks nobody wrote, so a 1 GiB device costs nothing idle.
 *
 * Model and invariants (m = struct ftl_dev_mem):
 *  1. Two images: `vol` is what reads see, `dur` is what survives a power cut. For every block
 *     whose bit in `dirty` is clear, vol and dur hold the same bytes.
 *  2. A write lands in vol and marks its blocks dirty; flush copies dirty blocks to dur; a
 *     power cut copies them back from dur (except the kept half of a torn last write).
 *  3. TRIM is durable at once: it zeroes both images and clears `dirty` for its blocks.
 *     `trimmed` marks blocks trimmed and not written since (reads return zeros); for a dirty
 *     block `dur_trimmed` remembers whether it was trimmed before it became dirty, so a power
 *     cut restores the hole accounting too.
 *  4. Every dirty block appears in `dlist` (extents, maybe stale: a clear dirty bit means
 *     skip), so flush and power cut cost O(unflushed blocks), not O(device).
 *  5. Locks: `lock` (rwlock) guards the images, bitmaps, dlist and last write; reads take it
 *     shared, everything else exclusive. `fault_lock` guards the fault list and is never held
 *     while taking `lock`. nfaults mirrors the list length so reads skip fault_lock when empty.
 *  6. Zoned devices (zones != NULL, guarded by `lock`): every byte at or past a zone's write
 *     pointer is zero in both images; a write must start at the write pointer and stay in the
 *     zone. `dwp` is the write pointer of what is durable: flush moves it up to `wp`, a power
 *     cut moves `wp` back to it (a zone has no holes, so a torn write keeps its first half
 *     only where it starts at `dwp`). Reset and finish are durable at once.
 *  7. Sparse devices (keep != 0, benchmarks): a write lands its first `keep` bytes as any write
 *     does and TRIMs the rest of its range, so the dropped bytes cost neither memory nor
 *     copying, and read back as zeros, never as what was there before. A sparse device
 *     starts trimmed, and reads fill trimmed blocks with zeros without touching the images.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ftl_dev_fault.h"
#include "ftl_dev_int.h"

struct ftl_dev_mem_fault {
	enum ftl_fault kind;
	uint64_t off, len;
	uint32_t remaining;
};

struct ftl_dev_mem_extent {
	uint64_t start, count; /* in blocks */
};

struct ftl_dev_mem_zone {
	uint64_t start, wp, dwp; /* bytes */
	uint8_t state;           /* enum ftl_zone_state */
};

struct ftl_dev_mem {
	struct ftl_dev dev;
	unsigned id; /* for the made-up serial number */

	/* Guards the images, bitmaps, dirty list, last write and armed power cut below (reads
	 * share it; writes, flushes, trims and power cuts take it alone). Never taken under
	 * fault_lock. */
	pthread_rwlock_t lock;
	uint8_t *vol, *dur; /* anonymous mappings of dev.size bytes */
	uint64_t nblocks;
	uint64_t *dirty, *trimmed, *dur_trimmed; /* bitmaps of nblocks bits */
	_Atomic uint64_t trimmed_blocks;         /* written under lock, read without */
	struct ftl_dev_mem_extent *dlist;
	size_t dlist_n, dlist_cap;
	bool last_valid; /* last unflushed write, for power_cut(tear_last) */
	uint64_t last_off, last_len;
	/* Armed power cut: the write that finds cut_left at 0 is the moment power goes. After
	 * it the device is dead (writes, flushes and trims fail) until revived. */
	bool cut_armed, cut_tear;
	uint64_t cut_left;
	_Atomic bool dead;

	pthread_mutex_t fault_lock; /* guards faults and faults_cap (nfaults: atomic mirror) */
	struct ftl_dev_mem_fault *faults;
	size_t faults_cap;
	_Atomic size_t nfaults;

	struct ftl_dev_mem_zone *zones; /* zoned devices only (invariant 6) */
	uint32_t nzones, max_open, max_active;

	/* Sparse devices only (ftl_dev_open_mem_sparse): bytes of each write that land; the rest
	 * of the write is dropped as a TRIM would drop it. 0 = keep everything. */
	size_t keep;
};

static _Atomic unsigned ftl_dev_mem_next_id;

static struct ftl_dev_mem *ftl_dev_mem_of(struct ftl_dev *dev)
{
	return ftl_dev_container_of(dev, struct ftl_dev_mem, dev);
}

static bool bit_test(const uint64_t *map, uint64_t i)
{
	return (map[i / 64] >> (i % 64)) & 1;
}

static void bit_set(uint64_t *map, uint64_t i)
{
	map[i / 64] |= UINT64_C(1) << (i % 64);
}

static void bit_clear(uint64_t *map, uint64_t i)
{
	map[i / 64] &= ~(UINT64_C(1) << (i % 64));
}

static void ftl_dev_mem_trimmed_add(struct ftl_dev_mem *m, int64_t delta)
{
	atomic_fetch_add_explicit(&m->trimmed_blocks, (uint64_t)delta, memory_order_relaxed);
}

/* ------------------------------------------------------------------------------------------ */
/* Fault injection                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* True when an armed fault of KIND overlaps the range; every overlapping fault uses up one
 * of its counts (each fault sees "the next N operations that touch me"). */
static bool ftl_dev_mem_fault_hit(struct ftl_dev_mem *m, enum ftl_fault kind, uint64_t off,
                                  uint64_t len)
{
	bool hit = false;
	size_t n;

	if (atomic_load_explicit(&m->nfaults, memory_order_acquire) == 0)
		return false;
	pthread_mutex_lock(&m->fault_lock);
	n = atomic_load_explicit(&m->nfaults, memory_order_relaxed);
	for (size_t i = 0; i < n;) {
		struct ftl_dev_mem_fault *f = &m->faults[i];

		if (f->kind != kind || off >= f->off + f->len || f->off >= off + len) {
			i++;
			continue;
		}
		hit = true;
		if (--f->remaining > 0) {
			i++;
			continue;
		}
		m->faults[i] = m->faults[--n]; /* order does not matter */
	}
	atomic_store_explicit(&m->nfaults, n, memory_order_release);
	pthread_mutex_unlock(&m->fault_lock);
	return hit;
}

static int ftl_dev_mem_check(const struct ftl_dev *dev)
{
	if (!dev)
		return -EINVAL;
	return dev->kind == FTL_DEV_MEM ? 0 : -EOPNOTSUPP;
}

/* COUNT 0 disarms the pending faults of that kind overlapping the range: "the next 0
 * operations fail". */
int ftl_dev_mem_inject(struct ftl_dev *dev, enum ftl_fault fault, uint64_t off, uint64_t len,
                       uint32_t count)
{
	struct ftl_dev_mem *m;
	size_t n;
	int err;

	err = ftl_dev_mem_check(dev);
	if (err < 0)
		return err;
	m = ftl_dev_mem_of(dev);
	if (fault != FTL_FAULT_READ_EIO && fault != FTL_FAULT_WRITE_EIO)
		return -EINVAL;
	if (len == 0 || off >= dev->size || len > dev->size - off)
		return -EINVAL;

	pthread_mutex_lock(&m->fault_lock);
	n = atomic_load_explicit(&m->nfaults, memory_order_relaxed);
	if (count == 0) {
		for (size_t i = 0; i < n;) {
			struct ftl_dev_mem_fault *f = &m->faults[i];

			if (f->kind == fault && off < f->off + f->len && f->off < off + len)
				m->faults[i] = m->faults[--n];
			else
				i++;
		}
	} else {
		if (n == m->faults_cap) {
			size_t cap = m->faults_cap ? m->faults_cap * 2 : 8;
			void *p = realloc(m->faults, cap * sizeof(*m->faults));

			if (!p) {
				err = -ENOMEM;
				goto unlock;
			}
			m->faults = p;
			m->faults_cap = cap;
		}
		m->faults[n++] = (struct ftl_dev_mem_fault){
		    .kind = fault, .off = off, .len = len, .remaining = count};
	}
	atomic_store_explicit(&m->nfaults, n, memory_order_release);
unlock:
	pthread_mutex_unlock(&m->fault_lock);
	return err;
}

/* ------------------------------------------------------------------------------------------ */
/* Zones (invariant 6)                                                                          */
/* ------------------------------------------------------------------------------------------ */

static bool zone_is_open(uint8_t st)
{
	return st == FTL_ZONE_IMPL_OPEN || st == FTL_ZONE_EXPL_OPEN;
}

static bool zone_is_active(uint8_t st)
{
	return zone_is_open(st) || st == FTL_ZONE_CLOSED;
}

static void zone_count(const struct ftl_dev_mem *m, uint32_t *open, uint32_t *active)
{
	*open = *active = 0;
	for (uint32_t i = 0; i < m->nzones; i++) {
		*open += zone_is_open(m->zones[i].state);
		*active += zone_is_active(m->zones[i].state);
	}
}

/* Takes the open (and, from empty, the active) resource zone Z needs to become open, as a
 * controller does: an implicitly open zone is closed to make room for another open. */
static int zone_take_open(struct ftl_dev_mem *m, struct ftl_dev_mem_zone *z)
{
	uint32_t open, active;

	if (zone_is_open(z->state))
		return 0;
	zone_count(m, &open, &active);
	if (z->state == FTL_ZONE_EMPTY && m->max_active && active >= m->max_active)
		return -EOVERFLOW;
	if (m->max_open && open >= m->max_open) {
		struct ftl_dev_mem_zone *victim = NULL;
		for (uint32_t i = 0; i < m->nzones && !victim; i++)
			if (m->zones[i].state == FTL_ZONE_IMPL_OPEN)
				victim = &m->zones[i];
		if (!victim)
			return -ETOOMANYREFS;
		victim->state = FTL_ZONE_CLOSED;
	}
	return 0;
}

static void zone_settle_state(struct ftl_dev_mem *m, struct ftl_dev_mem_zone *z)
{
	if (z->wp == z->start + m->dev.zone_size)
		z->state = FTL_ZONE_FULL;
}

/* Checks a write against the zone rules and moves the write pointer. Caller holds the lock. */
static int zone_write(struct ftl_dev_mem *m, uint64_t off, uint64_t len)
{
	struct ftl_dev_mem_zone *z = &m->zones[off / m->dev.zone_size];
	int err;

	if (off != z->wp || off + len > z->start + m->dev.zone_size)
		return -EIO; /* NVMe: Zone Invalid Write / Zone Boundary Error */
	if (z->state == FTL_ZONE_FULL || z->state == FTL_ZONE_READ_ONLY ||
	    z->state == FTL_ZONE_OFFLINE)
		return -EIO;
	err = zone_take_open(m, z);
	if (err < 0)
		return err;
	if (z->state != FTL_ZONE_EXPL_OPEN)
		z->state = FTL_ZONE_IMPL_OPEN;
	z->wp += len;
	zone_settle_state(m, z);
	return 0;
}

/* After a power cut: every zone keeps what was durable; open zones come back closed. */
static void zone_power_cycle(struct ftl_dev_mem *m)
{
	for (uint32_t i = 0; m->zones && i < m->nzones; i++) {
		struct ftl_dev_mem_zone *z = &m->zones[i];
		if (z->state == FTL_ZONE_READ_ONLY || z->state == FTL_ZONE_OFFLINE)
			continue;
		z->wp = z->dwp;
		z->state = z->wp == z->start ? FTL_ZONE_EMPTY : FTL_ZONE_CLOSED;
		zone_settle_state(m, z);
	}
}

/* A torn write keeps its first half only where a zone can hold it: at the durable write
 * pointer (the dropped unflushed writes before it would otherwise leave a hole). */
static uint64_t zone_tear_keep(struct ftl_dev_mem *m, uint64_t off, uint64_t keep)
{
	if (!m->zones || keep == 0)
		return keep;
	struct ftl_dev_mem_zone *z = &m->zones[off / m->dev.zone_size];
	if (off != z->dwp)
		return 0;
	z->dwp += keep;
	return keep;
}

/* ------------------------------------------------------------------------------------------ */
/* I/O                                                                                          */
/* ------------------------------------------------------------------------------------------ */

static int ftl_dev_mem_read(struct ftl_dev *dev, void *buf, size_t len, uint64_t off)
{
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);

	if (ftl_dev_mem_fault_hit(m, FTL_FAULT_READ_EIO, off, len))
		return -EIO;
	pthread_rwlock_rdlock(&m->lock);
	if (!m->keep) {
		memcpy(buf, m->vol + off, len);
		goto unlock;
	}
	/* Sparse: most of what the FTL reads was dropped. Zeros for trimmed blocks without
	 * touching their pages, which would map (and fault in) every page of the range. */
	uint32_t bs = dev->block_size;
	for (uint64_t b = off / bs; b < (off + len) / bs; b++) {
		uint8_t *dst = (uint8_t *)buf + (b * bs - off);
		if (bit_test(m->trimmed, b))
			memset(dst, 0, bs);
		else
			memcpy(dst, m->vol + b * bs, bs);
	}
unlock:
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

/* Makes room for the extents a write of blocks [first, first+nb) may add, before anything is
 * changed, so that -ENOMEM leaves the device as it was. */
static int ftl_dev_mem_reserve(struct ftl_dev_mem *m, uint64_t first, uint64_t nb)
{
	size_t runs = 0;
	bool in_run = false;
	void *p;
	size_t cap;

	for (uint64_t b = first; b < first + nb; b++) {
		bool clean = !bit_test(m->dirty, b);

		if (clean && !in_run)
			runs++;
		in_run = clean;
	}
	if (m->dlist_n + runs <= m->dlist_cap)
		return 0;
	cap = m->dlist_cap ? m->dlist_cap : 64;
	while (cap < m->dlist_n + runs)
		cap *= 2;
	p = realloc(m->dlist, cap * sizeof(*m->dlist));
	if (!p)
		return -ENOMEM;
	m->dlist = p;
	m->dlist_cap = cap;
	return 0;
}

static void ftl_dev_mem_mark_dirty(struct ftl_dev_mem *m, uint64_t b)
{
	struct ftl_dev_mem_extent *last = m->dlist_n ? &m->dlist[m->dlist_n - 1] : NULL;

	bit_set(m->dirty, b);
	if (bit_test(m->trimmed, b))
		bit_set(m->dur_trimmed, b);
	else
		bit_clear(m->dur_trimmed, b);
	if (last && last->start + last->count == b)
		last->count++;
	else
		m->dlist[m->dlist_n++] = (struct ftl_dev_mem_extent){.start = b, .count = 1};
}

static void ftl_dev_mem_settle(struct ftl_dev_mem *m, bool vol_to_dur);
static void ftl_dev_mem_trim_locked(struct ftl_dev_mem *m, uint64_t off, uint64_t len);

/* The armed power cut strikes during this write. Caller holds the lock. With cut_tear the
 * first half of the write (whole blocks) reaches the media; every unflushed write is lost. */
static void ftl_dev_mem_die(struct ftl_dev_mem *m, const void *buf, uint64_t off, size_t len)
{
	uint32_t bs = m->dev.block_size;
	ftl_dev_mem_settle(m, false);
	if (m->cut_tear) {
		size_t keep = zone_tear_keep(m, off, len / bs / 2 * bs);
		memcpy(m->vol + off, buf, keep);
		memcpy(m->dur + off, buf, keep);
		for (uint64_t b = off / bs; b < (off + keep) / bs; b++) {
			if (bit_test(m->trimmed, b)) {
				bit_clear(m->trimmed, b);
				ftl_dev_mem_trimmed_add(m, -1);
			}
			bit_clear(m->dur_trimmed, b);
		}
	}
	zone_power_cycle(m);
	m->cut_armed = false;
	m->last_valid = false;
	atomic_store(&m->dead, true);
}

static int ftl_dev_mem_write(struct ftl_dev *dev, const void *buf, size_t len, uint64_t off)
{
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);
	size_t full = len;
	int64_t untrimmed = 0;
	int err;

	/* Sparse: only the head of the write lands (the tail is trimmed below, after the zone
	 * and power-cut checks have seen the whole write). */
	if (m->keep && len > m->keep)
		len = m->keep;
	uint64_t first = off / dev->block_size;
	uint64_t nb = len / dev->block_size;

	if (atomic_load(&m->dead))
		return -EIO;
	if (ftl_dev_mem_fault_hit(m, FTL_FAULT_WRITE_EIO, off, len))
		return -EIO; /* nothing of a failed write lands */
	pthread_rwlock_wrlock(&m->lock);
	if (m->cut_armed && m->cut_left-- == 0) {
		ftl_dev_mem_die(m, buf, off, len);
		err = -EIO;
		goto unlock;
	}
	err = ftl_dev_mem_reserve(m, first, nb);
	if (err < 0)
		goto unlock;
	/* A write the zone refuses lands nowhere (the controller rejects the command). */
	if (m->zones) {
		err = zone_write(m, off, full);
		if (err < 0)
			goto unlock;
	}
	for (uint64_t b = first; b < first + nb; b++) {
		if (!bit_test(m->dirty, b))
			ftl_dev_mem_mark_dirty(m, b);
		if (bit_test(m->trimmed, b)) {
			bit_clear(m->trimmed, b);
			untrimmed++;
		}
	}
	ftl_dev_mem_trimmed_add(m, -untrimmed);
	memcpy(m->vol + off, buf, len);
	if (full > len)
		ftl_dev_mem_trim_locked(m, off + len, full - len);
	m->last_valid = true;
	m->last_off = off;
	m->last_len = len;
unlock:
	pthread_rwlock_unlock(&m->lock);
	return err;
}

/* Copies dirty blocks of the dirty list from SRC to DST image and cleans them. With
 * VOL_TO_DUR false (power cut) the hole accounting is restored from dur_trimmed. */
static void ftl_dev_mem_settle(struct ftl_dev_mem *m, bool vol_to_dur)
{
	uint32_t bs = m->dev.block_size;
	int64_t trimmed = 0;

	for (size_t i = 0; i < m->dlist_n; i++) {
		const struct ftl_dev_mem_extent *e = &m->dlist[i];

		for (uint64_t b = e->start; b < e->start + e->count; b++) {
			uint64_t off = b * bs;

			if (!bit_test(m->dirty, b))
				continue; /* trimmed or landed since it was listed */
			bit_clear(m->dirty, b);
			if (vol_to_dur) {
				memcpy(m->dur + off, m->vol + off, bs);
				continue;
			}
			memcpy(m->vol + off, m->dur + off, bs);
			if (bit_test(m->dur_trimmed, b)) {
				bit_set(m->trimmed, b); /* clear since the write that dirtied it */
				trimmed++;
			}
		}
	}
	ftl_dev_mem_trimmed_add(m, trimmed);
	m->dlist_n = 0;
	m->last_valid = false;
}

static int ftl_dev_mem_flush(struct ftl_dev *dev)
{
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);

	if (atomic_load(&m->dead))
		return -EIO;
	pthread_rwlock_wrlock(&m->lock);
	ftl_dev_mem_settle(m, true);
	for (uint32_t i = 0; m->zones && i < m->nzones; i++)
		m->zones[i].dwp = m->zones[i].wp;
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

/* Zeroes [off, off+len) of an image, handing whole pages back to the kernel so that trimmed
 * space costs no memory, as it costs no flash. */
static void ftl_dev_mem_zero(uint8_t *img, uint64_t off, uint64_t len)
{
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint64_t lo = (off + page - 1) & ~(page - 1);
	uint64_t hi = (off + len) & ~(page - 1);

	if (lo >= hi || madvise(img + lo, hi - lo, MADV_DONTNEED) < 0) {
		memset(img + off, 0, len);
		return;
	}
	memset(img + off, 0, lo - off);
	memset(img + hi, 0, off + len - hi);
}

/* Caller holds the lock exclusively. */
static void ftl_dev_mem_trim_locked(struct ftl_dev_mem *m, uint64_t off, uint64_t len)
{
	uint64_t first = off / m->dev.block_size;
	uint64_t nb = len / m->dev.block_size;
	int64_t trimmed = 0;

	for (uint64_t b = first; b < first + nb; b++) {
		bit_clear(m->dirty, b); /* TRIM is durable at once (invariant 3) */
		if (!bit_test(m->trimmed, b)) {
			bit_set(m->trimmed, b);
			trimmed++;
		}
	}
	ftl_dev_mem_trimmed_add(m, trimmed);
	ftl_dev_mem_zero(m->vol, off, len);
	ftl_dev_mem_zero(m->dur, off, len);
}

static int ftl_dev_mem_trim(struct ftl_dev *dev, uint64_t off, uint64_t len)
{
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);

	if (m->zones)
		return -EOPNOTSUPP; /* zones are emptied by a reset */
	if (atomic_load(&m->dead))
		return -EIO;
	pthread_rwlock_wrlock(&m->lock);
	ftl_dev_mem_trim_locked(m, off, len);
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

static int ftl_dev_mem_report_zones(struct ftl_dev *dev, uint64_t off, struct ftl_zone *zones,
                                    uint32_t max)
{
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);
	uint32_t n = 0;

	pthread_rwlock_rdlock(&m->lock);
	for (uint32_t i = (uint32_t)(off / dev->zone_size); i < m->nzones && n < max; i++, n++) {
		const struct ftl_dev_mem_zone *z = &m->zones[i];
		bool at_end = z->state == FTL_ZONE_FULL || z->state == FTL_ZONE_READ_ONLY ||
		              z->state == FTL_ZONE_OFFLINE;
		zones[n] = (struct ftl_zone){
		    .start = z->start,
		    .capacity = dev->zone_size,
		    .write_pointer = at_end ? z->start + dev->zone_size : z->wp,
		    .type = FTL_ZONE_TYPE_SEQ_WRITE,
		    .state = z->state,
		};
	}
	pthread_rwlock_unlock(&m->lock);
	return (int)n;
}

static int ftl_dev_mem_zone_one(struct ftl_dev_mem *m, enum ftl_zone_action action,
                                struct ftl_dev_mem_zone *z)
{
	uint64_t zs = m->dev.zone_size;
	int err;

	if (z->state == FTL_ZONE_READ_ONLY || z->state == FTL_ZONE_OFFLINE)
		return -EIO;
	switch (action) {
	case FTL_ZONE_RESET:
		if (z->wp > z->start || z->state == FTL_ZONE_FULL)
			ftl_dev_mem_trim_locked(m, z->start, zs);
		z->wp = z->dwp = z->start;
		z->state = FTL_ZONE_EMPTY;
		return 0;
	case FTL_ZONE_FINISH:
		z->wp = z->dwp = z->start + zs;
		z->state = FTL_ZONE_FULL;
		return 0;
	case FTL_ZONE_OPEN:
		if (z->state == FTL_ZONE_FULL)
			return -EIO;
		if (z->state == FTL_ZONE_IMPL_OPEN) {
			z->state = FTL_ZONE_EXPL_OPEN;
			return 0;
		}
		/* An explicit open may not close an explicit one, nor take the last slot from
		 * nobody: the same check as an implicit open. */
		err = zone_take_open(m, z);
		if (err < 0)
			return err;
		z->state = FTL_ZONE_EXPL_OPEN;
		return 0;
	case FTL_ZONE_CLOSE:
		if (z->state == FTL_ZONE_CLOSED)
			return 0;
		if (!zone_is_open(z->state))
			return -EIO;
		z->state = z->wp == z->start ? FTL_ZONE_EMPTY : FTL_ZONE_CLOSED;
		return 0;
	}
	return -EINVAL;
}

static int ftl_dev_mem_zone_action(struct ftl_dev *dev, enum ftl_zone_action action, uint64_t off,
                                   uint64_t len)
{
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);
	int err = 0;

	if (atomic_load(&m->dead))
		return -EIO;
	pthread_rwlock_wrlock(&m->lock);
	for (uint64_t o = off; o < off + len && err == 0; o += dev->zone_size)
		err = ftl_dev_mem_zone_one(m, action, &m->zones[o / dev->zone_size]);
	pthread_rwlock_unlock(&m->lock);
	return err;
}

int ftl_dev_mem_power_cut(struct ftl_dev *dev, bool tear_last)
{
	struct ftl_dev_mem *m;
	int err;

	err = ftl_dev_mem_check(dev);
	if (err < 0)
		return err;
	m = ftl_dev_mem_of(dev);
	pthread_rwlock_wrlock(&m->lock);
	if (tear_last && m->last_valid) {
		uint32_t bs = dev->block_size;
		uint64_t first = m->last_off / bs;
		uint64_t keep = zone_tear_keep(m, m->last_off, m->last_len / bs / 2 * bs) / bs;

		/* The kept half lands: make it durable and clean before the rest is undone. */
		for (uint64_t b = first; b < first + keep; b++) {
			if (!bit_test(m->dirty, b))
				continue;
			memcpy(m->dur + b * bs, m->vol + b * bs, bs);
			bit_clear(m->dirty, b);
		}
	}
	ftl_dev_mem_settle(m, false);
	zone_power_cycle(m);
	pthread_rwlock_unlock(&m->lock);
	/* The host forgot what it knew of the device too: its random-write log map. */
	return ftl_dev_zoned_reload(dev);
}

int ftl_dev_mem_power_cut_after(struct ftl_dev *dev, uint64_t nwrites, bool tear)
{
	int err = ftl_dev_mem_check(dev);
	if (err < 0)
		return err;
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);
	pthread_rwlock_wrlock(&m->lock);
	m->cut_armed = true;
	m->cut_tear = tear;
	m->cut_left = nwrites;
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

bool ftl_dev_mem_is_dead(const struct ftl_dev *dev)
{
	if (ftl_dev_mem_check(dev) < 0)
		return false;
	return atomic_load(&ftl_dev_mem_of((struct ftl_dev *)dev)->dead);
}

int ftl_dev_mem_revive(struct ftl_dev *dev)
{
	int err = ftl_dev_mem_check(dev);
	if (err < 0)
		return err;
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);
	pthread_rwlock_wrlock(&m->lock);
	m->cut_armed = false;
	atomic_store(&m->dead, false);
	pthread_rwlock_unlock(&m->lock);
	/* A reboot: the host reads its random-write log back from the device. */
	return ftl_dev_zoned_reload(dev);
}

int ftl_dev_mem_flip_bit(struct ftl_dev *dev, uint64_t off, unsigned bit)
{
	struct ftl_dev_mem *m;
	uint64_t b;
	int err;

	err = ftl_dev_mem_check(dev);
	if (err < 0)
		return err;
	if (off >= dev->size || bit > 7)
		return -EINVAL;
	m = ftl_dev_mem_of(dev);
	b = off / dev->block_size;
	pthread_rwlock_wrlock(&m->lock);
	m->vol[off] ^= (uint8_t)(1u << bit);
	m->dur[off] ^= (uint8_t)(1u << bit);
	/* A rotted hole is no longer all zeros. */
	if (bit_test(m->trimmed, b)) {
		bit_clear(m->trimmed, b);
		ftl_dev_mem_trimmed_add(m, -1);
	}
	bit_clear(m->dur_trimmed, b);
	pthread_rwlock_unlock(&m->lock);
	return 0;
}

uint64_t ftl_dev_mem_trimmed_bytes(const struct ftl_dev *dev)
{
	const struct ftl_dev_mem *m;

	if (ftl_dev_mem_check(dev) < 0)
		return 0;
	m = ftl_dev_container_of(dev, const struct ftl_dev_mem, dev);
	return atomic_load_explicit(&m->trimmed_blocks, memory_order_relaxed) * dev->block_size;
}

static int ftl_dev_mem_identify(struct ftl_dev *dev, struct ftl_dev_identity *id)
{
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);

	snprintf(id->model, sizeof(id->model), "pstorfs memory device%s",
	         m->zones ? " (zoned)" : "");
	snprintf(id->serial, sizeof(id->serial), "mem%u", m->id);
	if (m->zones) {
		id->zoned = true;
		id->zone_size = dev->zone_size;
		id->zone_count = m->nzones;
		id->max_open_zones = m->max_open;
		id->max_active_zones = m->max_active;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Open and close                                                                               */
/* ------------------------------------------------------------------------------------------ */

static void ftl_dev_mem_close(struct ftl_dev *dev)
{
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);

	free(m->zones);
	free(m->faults);
	pthread_mutex_destroy(&m->fault_lock);
	free(m->dlist);
	free(m->dur_trimmed);
	free(m->trimmed);
	free(m->dirty);
	munmap(m->dur, dev->size);
	munmap(m->vol, dev->size);
	pthread_rwlock_destroy(&m->lock);
	ftl_dev_fini_common(&m->dev);
	free(m);
}

static const struct ftl_dev_ops ftl_dev_mem_ops = {
    .read = ftl_dev_mem_read,
    .write = ftl_dev_mem_write,
    .flush = ftl_dev_mem_flush,
    .trim = ftl_dev_mem_trim,
    .identify = ftl_dev_mem_identify,
    .smart = NULL,
    .close = ftl_dev_mem_close,
};

static const struct ftl_dev_ops ftl_dev_mem_zoned_ops = {
    .read = ftl_dev_mem_read,
    .write = ftl_dev_mem_write,
    .flush = ftl_dev_mem_flush,
    .trim = ftl_dev_mem_trim,
    .identify = ftl_dev_mem_identify,
    .smart = NULL,
    .report_zones = ftl_dev_mem_report_zones,
    .zone_action = ftl_dev_mem_zone_action,
    .close = ftl_dev_mem_close,
};

/* Writer-preferring: glibc's default lets a stream of readers starve writers forever. */
static int ftl_dev_mem_rwlock_init(pthread_rwlock_t *lock)
{
	pthread_rwlockattr_t attr;
	int err;

	err = -pthread_rwlockattr_init(&attr);
	if (err < 0)
		return err;
	pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	err = -pthread_rwlock_init(lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return err;
}

/* MAP_NORESERVE and anonymous zero-fill: pages cost memory only once written. */
static uint8_t *ftl_dev_mem_map(uint64_t size)
{
	void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE,
	               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

int ftl_dev_open_mem(uint64_t size, uint32_t block_size, struct ftl_dev **out)
{
	struct ftl_dev_mem *m;
	size_t words;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (block_size < 512 || block_size > 65536 || (block_size & (block_size - 1)))
		return -EINVAL;
	if (size == 0 || size % block_size || size > SIZE_MAX / 2)
		return -EINVAL;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	err = ftl_dev_init_common(&m->dev, &ftl_dev_mem_ops, FTL_DEV_MEM, "mem", size, block_size,
	                          false);
	if (err < 0)
		goto err_free_m;
	err = ftl_dev_mem_rwlock_init(&m->lock);
	if (err < 0)
		goto err_fini_common;
	err = -pthread_mutex_init(&m->fault_lock, NULL);
	if (err < 0)
		goto err_destroy_lock;
	err = -ENOMEM;
	m->vol = ftl_dev_mem_map(size);
	if (!m->vol)
		goto err_destroy_fault_lock;
	m->dur = ftl_dev_mem_map(size);
	if (!m->dur)
		goto err_unmap_vol;
	m->nblocks = size / block_size;
	words = (size_t)((m->nblocks + 63) / 64);
	m->dirty = calloc(words, sizeof(uint64_t));
	m->trimmed = calloc(words, sizeof(uint64_t));
	m->dur_trimmed = calloc(words, sizeof(uint64_t));
	if (!m->dirty || !m->trimmed || !m->dur_trimmed)
		goto err_free_bitmaps;
	atomic_init(&m->trimmed_blocks, 0);
	atomic_init(&m->nfaults, 0);
	m->id = atomic_fetch_add_explicit(&ftl_dev_mem_next_id, 1, memory_order_relaxed);
	*out = &m->dev;
	return 0;

err_free_bitmaps:
	free(m->dur_trimmed);
	free(m->trimmed);
	free(m->dirty);
	munmap(m->dur, size);
err_unmap_vol:
	munmap(m->vol, size);
err_destroy_fault_lock:
	pthread_mutex_destroy(&m->fault_lock);
err_destroy_lock:
	pthread_rwlock_destroy(&m->lock);
err_fini_common:
	ftl_dev_fini_common(&m->dev);
err_free_m:
	free(m);
	return err;
}

int ftl_dev_open_mem_sparse(uint64_t size, uint32_t block_size, size_t keep, struct ftl_dev **out)
{
	struct ftl_dev *dev;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (keep == 0 || block_size == 0 || keep % block_size)
		return -EINVAL;
	err = ftl_dev_open_mem(size, block_size, &dev);
	if (err < 0)
		return err;
	struct ftl_dev_mem *m = ftl_dev_mem_of(dev);
	m->keep = keep;
	/* Starts trimmed (reads give zeros without touching the image, invariant 7). */
	memset(m->trimmed, 0xff, (size_t)((m->nblocks + 63) / 64) * sizeof(uint64_t));
	if (m->nblocks % 64)
		m->trimmed[m->nblocks / 64] = (UINT64_C(1) << (m->nblocks % 64)) - 1;
	atomic_store(&m->trimmed_blocks, m->nblocks);
	*out = dev;
	return 0;
}

int ftl_dev_open_mem_zoned(uint64_t size, uint32_t block_size, uint64_t zone_size,
                           uint32_t max_open, uint32_t max_active, struct ftl_dev **out)
{
	struct ftl_dev_mem *m;
	struct ftl_dev *dev;
	int err;

	if (!out)
		return -EINVAL;
	*out = NULL;
	if (zone_size == 0 || block_size == 0 || zone_size % block_size || size % zone_size ||
	    size / zone_size > UINT32_MAX)
		return -EINVAL;
	err = ftl_dev_open_mem(size, block_size, &dev);
	if (err < 0)
		return err;
	m = ftl_dev_mem_of(dev);
	m->nzones = (uint32_t)(size / zone_size);
	m->zones = calloc(m->nzones, sizeof(*m->zones));
	if (!m->zones) {
		ftl_dev_close(dev);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < m->nzones; i++) {
		struct ftl_dev_mem_zone *z = &m->zones[i];
		z->start = z->wp = z->dwp = (uint64_t)i * zone_size;
		z->state = FTL_ZONE_EMPTY;
	}
	m->max_open = max_open;
	m->max_active = max_active;
	dev->zone_size = zone_size;
	dev->ops = &ftl_dev_mem_zoned_ops;
	*out = dev;
	return 0;
}
