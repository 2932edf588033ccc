/* tests/fs/test_fs_recovery.c - durability below the FTL: the whole fs stack on the fault-
 * injecting memory device, power cut at random device writes (with and without a torn last
 * write) while volumes are written, synced, checkpointed and snapshotted; after each remount
 * every acknowledged block is intact and every other block is old or new, never garbage. Also
 * the metadata region wiped and rebuilt by fsck from the segments alone.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftl_dev_fault.h"
#include "pfs_meta.h"
#include "pfs_vol_int.h"

#define DEV_SIZE (256ull << 20)
#define VOL_BLKS 2048u /* 8 MiB volumes */
#define NVOLS    2
#define BS       4096u
#define HIST     64

static struct ftl_dev *dev;
static struct pfs *p;

static void format_mem(void)
{
	struct ftl_superblock_info sb;
	struct ftl_format_params fp = {
	    .segment_size = 1u << 20,
	    .user_block_size = BS,
	    .meta_blocks = (uint32_t)(DEV_SIZE / 64 / 4096),
	};

	cr_assert_eq(ftl_dev_open_mem(DEV_SIZE, 4096, &dev), 0);
	cr_assert_eq(ftl_format(dev, &fp), 0);
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	cr_assert_eq(pfs_vfs_format(dev, sb.meta_offset, sb.meta_size), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
}

static void open_ns(void)
{
	char msg[256];
	struct pfs_opts o = {.device = "mem",
	                     .dedupe = -1,
	                     .commit_interval_ms = -1,
	                     .gc_thread = !getenv("PSTOR_TEST_NOGC")};
	int rc = pfs_open_dev(&o, dev, &p, msg, sizeof(msg));
	cr_assert_eq(rc, 0, "pfs_open: %s", msg);
}

/* Power cut now: what was not flushed is gone, the close writes nothing, then a mount. */
static void power_cut_and_reopen(void)
{
	cr_assert_eq(ftl_dev_mem_power_cut(dev, false), 0);
	cr_assert_eq(ftl_dev_mem_power_cut_after(dev, 0, false), 0);
	pfs_close(p);
	p = NULL;
	cr_assert_eq(ftl_dev_mem_revive(dev), 0);
	open_ns();
}

static void teardown(void)
{
	pfs_close(p);
	p = NULL;
	ftl_dev_close(dev);
	dev = NULL;
}

/* Block contents: zero, one shared block (dedupe), unique random, compressible text; the
 * non-shared kinds carry (volume, block, generation) so a block from elsewhere is caught. */
enum kind { K_ZERO, K_DUP, K_RANDOM, K_TEXT, K_COUNT };

static void make_block(uint8_t *b, int vol, uint32_t blk, enum kind k, uint32_t gen)
{
	uint64_t x = (uint64_t)vol << 48 ^ (uint64_t)blk << 20 ^ gen ^ 0x9e3779b97f4a7c15ull;

	switch (k) {
	case K_ZERO:
		memset(b, 0, BS);
		return;
	case K_DUP:
		for (uint32_t i = 0; i < BS; i++)
			b[i] = (uint8_t)(i * 7 + 3);
		return;
	case K_RANDOM:
		for (uint32_t i = 0; i < BS; i += 8) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			memcpy(b + i, &x, 8);
		}
		break;
	default:
		for (uint32_t i = 0; i < BS; i++)
			b[i] = (uint8_t) "pstorfs durability "[(i + gen) % 19];
		break;
	}
	memcpy(b, &vol, sizeof(vol));
	memcpy(b + 4, &blk, sizeof(blk));
	memcpy(b + 8, &gen, sizeof(gen));
}

/* What a block may hold: the acknowledged version and every version written after it. */
struct hist {
	uint8_t n;
	uint8_t kind[HIST];
	uint32_t gen[HIST];
};
static struct hist h[NVOLS][VOL_BLKS];

/* Every block starts acknowledged as zeros (a new volume reads as zeros). */
static void hist_reset(void)
{
	for (int v = 0; v < NVOLS; v++)
		for (uint32_t b = 0; b < VOL_BLKS; b++) {
			h[v][b].n = 1;
			h[v][b].kind[0] = K_ZERO;
			h[v][b].gen[0] = 0;
		}
}

static void note_write(int vol, uint32_t blk, enum kind k, uint32_t gen)
{
	struct hist *e = &h[vol][blk];
	if (e->n == HIST) { /* keep the acknowledged one (slot 0) */
		memmove(&e->kind[1], &e->kind[2], HIST - 2);
		memmove(&e->gen[1], &e->gen[2], (HIST - 2) * sizeof(uint32_t));
		e->n--;
	}
	e->kind[e->n] = (uint8_t)k;
	e->gen[e->n] = gen;
	e->n++;
}

/* A sync returned: the newest version of every block is now the acknowledged one. */
static void note_ack(void)
{
	for (int v = 0; v < NVOLS; v++)
		for (uint32_t b = 0; b < VOL_BLKS; b++) {
			struct hist *e = &h[v][b];
			if (e->n > 1) {
				e->kind[0] = e->kind[e->n - 1];
				e->gen[0] = e->gen[e->n - 1];
				e->n = 1;
			}
		}
}

static uint64_t verify_all(uint64_t *lost)
{
	static uint8_t got[BS], want[BS];
	uint64_t checked = 0;

	for (int v = 0; v < NVOLS; v++) {
		char name[16];
		snprintf(name, sizeof(name), "v%d", v);
		struct pfs_vol *vol = pfs_vol_find(p, PFS_MAP_VOLUME, 0, name);
		cr_assert_not_null(vol, "volume %s after remount", name);
		for (uint32_t b = 0; b < VOL_BLKS; b++) {
			struct hist *e = &h[v][b];
			ssize_t n = pfs_vol_read(p, vol, got, BS, (uint64_t)b * BS);
			cr_assert_eq(n, (ssize_t)BS, "read %s block %u: %zd", name, b, n);
			bool ok = false;
			if (e->n == 0) {
				make_block(want, v, b, K_ZERO, 0);
				ok = !memcmp(got, want, BS);
			}
			for (int i = 0; i < e->n && !ok; i++) {
				make_block(want, v, b, (enum kind)e->kind[i], e->gen[i]);
				ok = !memcmp(got, want, BS);
			}
			if (!ok)
				(*lost)++;
			cr_assert(ok,
			          "%s block %u holds neither its acknowledged nor a later version",
			          name, b);
			/* What was read is what survived: it becomes the only version. */
			for (int i = 0; i < e->n; i++) {
				make_block(want, v, b, (enum kind)e->kind[i], e->gen[i]);
				if (!memcmp(got, want, BS)) {
					e->kind[0] = e->kind[i];
					e->gen[0] = e->gen[i];
					e->n = 1;
					break;
				}
			}
			checked++;
		}
		pfs_vol_unref(vol);
	}
	return checked;
}

static void crash_round(unsigned seed, int round, uint32_t *gen)
{
	static uint8_t blk[8 * BS];
	struct pfs_vol *vols[NVOLS];

	for (int v = 0; v < NVOLS; v++) {
		char name[16];
		snprintf(name, sizeof(name), "v%d", v);
		vols[v] = pfs_vol_find(p, PFS_MAP_VOLUME, 0, name);
		cr_assert_not_null(vols[v]);
	}
	/* The device dies somewhere in the next few hundred writes (data packs, log chunks,
	 * page copies, SQLite pages and journal, headers: all of them count). */
	cr_assert_eq(
	    ftl_dev_mem_power_cut_after(dev, (uint64_t)(rand_r(&seed) % 400), rand_r(&seed) % 2),
	    0);
	for (int op = 0; op < 600 && !ftl_dev_mem_is_dead(dev); op++) {
		int v = (int)(rand_r(&seed) % NVOLS);
		uint32_t b = rand_r(&seed) % (VOL_BLKS - 8), n = 1 + rand_r(&seed) % 8;
		enum kind kinds[8];
		for (uint32_t i = 0; i < n; i++) {
			kinds[i] = (enum kind)(rand_r(&seed) % K_COUNT);
			make_block(blk + (size_t)i * BS, v, b + i, kinds[i], *gen + 1 + i);
		}
		ssize_t w = pfs_vol_write(p, vols[v], blk, (size_t)n * BS, (uint64_t)b * BS);
		/* A failed write may still have changed some blocks: they count as written. */
		for (uint32_t i = 0; i < n; i++)
			note_write(v, b + i, kinds[i], *gen + 1 + i);
		*gen += n;
		if (w < 0)
			break;
		unsigned r = rand_r(&seed) % 100;
		if (r < 15) {
			if (pfs_sync(p) == 0)
				note_ack();
		} else if (r < 18) {
			if (pfs_commit(p) == 0)
				note_ack();
		} else if (r < 20) {
			char snap[16];
			snprintf(snap, sizeof(snap), "s%d", round);
			pfs_snap_create(p, "v0", snap);
			if (round > 1) {
				snprintf(snap, sizeof(snap), "s%d", round - 2);
				pfs_snap_delete(p, "v0", snap);
			}
		} else if (r < 21 && !getenv("PSTOR_TEST_NOGC")) {
			ftl_gc(p->ftl, 2);
		}
	}
	for (int v = 0; v < NVOLS; v++)
		pfs_vol_unref(vols[v]);
	/* Power goes off at the next write: close frees memory, and every write it tries
	 * fails (a power cut alone would let it go on writing to a device that lost data). */
	if (!ftl_dev_mem_is_dead(dev))
		cr_assert_eq(ftl_dev_mem_power_cut_after(dev, 0, rand_r(&seed) % 2), 0);
	pfs_close(p);
	p = NULL;
	cr_assert_eq(ftl_dev_mem_revive(dev), 0);
}

Test(fs_recovery, power_cut_rounds, .init = format_mem, .fini = teardown, .timeout = 240)
{
	uint32_t gen = 0;
	uint64_t checked = 0, lost = 0;
	const int rounds = 24;

	open_ns();
	cr_assert_eq(pfs_vol_create(p, "v0", (uint64_t)VOL_BLKS * BS, NULL), 0);
	cr_assert_eq(pfs_vol_create(p, "v1", (uint64_t)VOL_BLKS * BS, NULL), 0);
	hist_reset();
	for (int round = 0; round < rounds; round++) {
		crash_round(0x5eed0000u + (unsigned)round, round, &gen);
		open_ns();
		if (getenv("PSTOR_TEST_VERBOSE"))
			fprintf(stderr,
			        "round %d: replayed %llu records, %llu dangling, ckpt %llu\n",
			        round, (unsigned long long)p->replayed_records,
			        (unsigned long long)atomic_load(&p->damaged_refs),
			        (unsigned long long)p->ckpt_lsn);
		checked += verify_all(&lost);
	}
	cr_assert_eq(lost, 0);
	cr_log_info("power cut: %d rounds, %llu blocks checked, %llu lost", rounds,
	            (unsigned long long)checked, (unsigned long long)lost);
	/* What survived is consistent offline too. */
	pfs_close(p);
	p = NULL;
	FILE *out = fopen("/dev/null", "w");
	cr_assert_eq(pfs_fsck_dev(dev, false, false, out), 0);
	fclose(out);
	open_ns();
}

Test(fs_recovery, log_replay_after_crash, .init = format_mem, .fini = teardown)
{
	static uint8_t b[BS];
	uint32_t gen = 0;

	open_ns();
	cr_assert_eq(pfs_vol_create(p, "v0", (uint64_t)VOL_BLKS * BS, NULL), 0);
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v0");
	hist_reset();
	for (uint32_t i = 0; i < 300; i++) {
		make_block(b, 0, i, (enum kind)(i % K_COUNT), ++gen);
		cr_assert_eq(pfs_vol_write(p, v, b, BS, (uint64_t)i * BS), (ssize_t)BS);
		note_write(0, i, (enum kind)(i % K_COUNT), gen);
	}
	cr_assert_eq(pfs_sync(p), 0); /* the log, not a checkpoint */
	note_ack();
	pfs_vol_unref(v);
	power_cut_and_reopen();
	cr_assert_gt(p->replayed_records, 0, "the synced writes came back through the log");
	/* Volume v1 does not exist: verify only v0. */
	static uint8_t got[BS], want[BS];
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v0");
	for (uint32_t i = 0; i < 300; i++) {
		cr_assert_eq(pfs_vol_read(p, v, got, BS, (uint64_t)i * BS), (ssize_t)BS);
		make_block(want, 0, i, (enum kind)h[0][i].kind[0], h[0][i].gen[0]);
		cr_assert_eq(memcmp(got, want, BS), 0, "block %u", i);
	}
	pfs_vol_unref(v);
}

Test(fs_recovery, wipe_metadata_and_repair, .init = format_mem, .fini = teardown)
{
	static uint8_t b[BS], got[BS];
	static uint8_t before[2][64][BS];

	open_ns();
	cr_assert_eq(pfs_vol_create(p, "v0", (uint64_t)VOL_BLKS * BS, NULL), 0);
	cr_assert_eq(pfs_vol_create(p, "v1", (uint64_t)VOL_BLKS * BS, NULL), 0);
	struct pfs_vol *v0 = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v0");
	struct pfs_vol *v1 = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v1");
	for (uint32_t i = 0; i < 64; i++) {
		make_block(b, 0, i * 7, (enum kind)(i % K_COUNT), i + 1);
		cr_assert_eq(pfs_vol_write(p, v0, b, BS, (uint64_t)i * 7 * BS), (ssize_t)BS);
	}
	cr_assert_eq(pfs_snap_create(p, "v0", "s"), 0);
	for (uint32_t i = 0; i < 64; i++) {
		make_block(b, 1, i * 5, (enum kind)((i + 1) % K_COUNT), i + 100);
		cr_assert_eq(pfs_vol_write(p, v0, b, BS, (uint64_t)i * 5 * BS), (ssize_t)BS);
		cr_assert_eq(pfs_vol_write(p, v1, b, BS, (uint64_t)i * 3 * BS), (ssize_t)BS);
	}
	cr_assert_eq(pfs_sync(p), 0);
	for (uint32_t i = 0; i < 64; i++) {
		cr_assert_eq(pfs_vol_read(p, v0, before[0][i], BS, (uint64_t)i * 5 * BS),
		             (ssize_t)BS);
		cr_assert_eq(pfs_vol_read(p, v1, before[1][i], BS, (uint64_t)i * 3 * BS),
		             (ssize_t)BS);
	}
	pfs_vol_unref(v0);
	pfs_vol_unref(v1);
	pfs_close(p);
	p = NULL;

	/* Wipe the whole metadata region. */
	struct ftl_superblock_info sb;
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	uint8_t *zero = calloc(1, 1 << 20);
	for (uint64_t off = 0; off < sb.meta_size; off += 1 << 20) {
		uint64_t n = sb.meta_size - off < (1 << 20) ? sb.meta_size - off : (1 << 20);
		cr_assert_eq(ftl_dev_write(dev, zero, n, sb.meta_offset + off), 0);
	}
	free(zero);
	cr_assert_eq(ftl_dev_flush(dev), 0);

	FILE *out = fopen("/dev/null", "w");
	cr_assert_eq(pfs_fsck_dev(dev, false, false, out), 4, "damage is found");
	cr_assert_eq(pfs_fsck_dev(dev, true, false, out), 1, "and repaired");
	cr_assert_eq(pfs_fsck_dev(dev, false, false, out), 0, "clean afterwards");
	fclose(out);

	open_ns();
	v0 = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v0");
	v1 = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v1");
	cr_assert_not_null(v0);
	cr_assert_not_null(v1);
	for (uint32_t i = 0; i < 64; i++) {
		cr_assert_eq(pfs_vol_read(p, v0, got, BS, (uint64_t)i * 5 * BS), (ssize_t)BS);
		cr_assert_eq(memcmp(got, before[0][i], BS), 0, "v0 block %u", i * 5);
		cr_assert_eq(pfs_vol_read(p, v1, got, BS, (uint64_t)i * 3 * BS), (ssize_t)BS);
		cr_assert_eq(memcmp(got, before[1][i], BS), 0, "v1 block %u", i * 3);
	}
	/* The snapshot holds the first generation. */
	struct pfs_vol *s = pfs_vol_find(p, PFS_MAP_SNAPSHOT, v0->id, "s");
	cr_assert_not_null(s, "snapshot rebuilt");
	for (uint32_t i = 0; i < 64; i++) {
		uint8_t want[BS];
		make_block(want, 0, i * 7, (enum kind)(i % K_COUNT), i + 1);
		cr_assert_eq(pfs_vol_read(p, s, got, BS, (uint64_t)i * 7 * BS), (ssize_t)BS);
		cr_assert_eq(memcmp(got, want, BS), 0, "snapshot block %u", i * 7);
	}
	pfs_vol_unref(s);
	pfs_vol_unref(v0);
	pfs_vol_unref(v1);
}

/* A checkpoint that runs while a write is between taking its lsn and finishing its map change
 * (the seam waits up to 300 ms for it; it must not drop the write's record without storing
 * its page). The write is then synced and the power cut: the write must come back. */
static _Atomic int cut_commit_done;
static pthread_t cut_thread;

static void *cut_commit(void *arg)
{
	(void)arg;
	cr_assert_eq(pfs_commit(p), 0);
	atomic_store(&cut_commit_done, 1);
	return NULL;
}

static void commit_between_lsn_and_dirty(struct pfs *fs)
{
	fs->test_after_log = NULL; /* once */
	cr_assert_eq(pthread_create(&cut_thread, NULL, cut_commit, NULL), 0);
	for (int i = 0; i < 300 && !atomic_load(&cut_commit_done); i++)
		usleep(1000);
}

Test(fs_recovery, checkpoint_racing_a_map_change_keeps_it, .init = format_mem, .fini = teardown)
{
	static uint8_t b[BS], got[BS];

	open_ns();
	cr_assert_eq(pfs_vol_create(p, "v0", (uint64_t)VOL_BLKS * BS, NULL), 0);
	cr_assert_eq(pfs_vol_create(p, "v1", (uint64_t)VOL_BLKS * BS, NULL), 0);
	struct pfs_vol *v0 = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v0");
	struct pfs_vol *v1 = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v1");
	make_block(b, 0, 5, K_RANDOM, 1);
	cr_assert_eq(pfs_vol_write(p, v0, b, BS, 5 * BS), (ssize_t)BS);
	cr_assert_eq(pfs_commit(p), 0); /* v0's page is clean now */
	/* Something else to checkpoint, so the racing commit has a cut to store. */
	make_block(b, 1, 9, K_RANDOM, 2);
	cr_assert_eq(pfs_vol_write(p, v1, b, BS, 9 * BS), (ssize_t)BS);

	p->test_after_log = commit_between_lsn_and_dirty;
	make_block(b, 0, 5, K_RANDOM, 3);
	cr_assert_eq(pfs_vol_write(p, v0, b, BS, 5 * BS), (ssize_t)BS);
	cr_assert_eq(pthread_join(cut_thread, NULL), 0);
	cr_assert(atomic_load(&cut_commit_done));
	cr_assert_eq(pfs_sync(p), 0); /* acknowledged */
	pfs_vol_unref(v0);
	pfs_vol_unref(v1);

	power_cut_and_reopen();
	v0 = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v0");
	cr_assert_eq(pfs_vol_read(p, v0, got, BS, 5 * BS), (ssize_t)BS);
	cr_assert_eq(memcmp(got, b, BS), 0, "the synced write raced by a checkpoint is lost");
	pfs_vol_unref(v0);
}

/* A pack torn by a power cut: its chunks never reached a sync, so no map holds them; the mount
 * frees them instead of keeping their ids (and space) forever. */
Test(fs_recovery, chunks_of_a_torn_pack_are_freed_at_mount, .init = format_mem, .fini = teardown)
{
	static uint8_t b[BS], got[BS];

	open_ns();
	cr_assert_eq(pfs_vol_create(p, "v0", (uint64_t)VOL_BLKS * BS, NULL), 0);
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v0");
	for (uint32_t i = 0; i < 5; i++) {
		make_block(b, 0, i, K_RANDOM, 1);
		cr_assert_eq(pfs_vol_write(p, v, b, BS, (uint64_t)i * BS), (ssize_t)BS);
	}
	cr_assert_eq(pfs_sync(p), 0);
	/* 24 unique blocks in one pack; the power goes during its write, half of it lands. */
	for (uint32_t i = 5; i < 29; i++) {
		make_block(b, 0, i, K_RANDOM, 2);
		cr_assert_eq(pfs_vol_write(p, v, b, BS, (uint64_t)i * BS), (ssize_t)BS);
	}
	pfs_vol_unref(v);
	cr_assert_eq(ftl_dev_mem_power_cut_after(dev, 0, true), 0);
	cr_assert_neq(pfs_sync(p), 0);
	cr_assert(ftl_dev_mem_is_dead(dev));
	pfs_close(p);
	p = NULL;
	cr_assert_eq(ftl_dev_mem_revive(dev), 0);
	open_ns();
	cr_assert_gt(p->mount_lost_freed, 0, "the tear left no damaged chunk: the test needs one");
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, "v0");
	for (uint32_t i = 0; i < 5; i++) {
		make_block(b, 0, i, K_RANDOM, 1);
		cr_assert_eq(pfs_vol_read(p, v, got, BS, (uint64_t)i * BS), (ssize_t)BS);
		cr_assert_eq(memcmp(got, b, BS), 0, "synced block %u", i);
	}
	pfs_vol_unref(v);
	/* Freed for good once a flash checkpoint records it (a clean close takes one): the next
	 * mount is told of none. (After another power cut they would be told again, and freed
	 * again, as any chunk freed since the last checkpoint is.) */
	pfs_close(p);
	p = NULL;
	open_ns();
	cr_assert_eq(p->mount_lost_freed, 0, "%llu damaged chunks still held",
	             (unsigned long long)p->mount_lost_freed);
	cr_assert_eq(p->damaged_refs, 0);
}

/* mkfs, then fsck before any mount: the metadata region holds no database yet, which is clean. */
Test(fs_recovery, fsck_of_a_never_mounted_namespace_is_clean, .init = format_mem, .fini = teardown)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	cr_assert_not_null(f);
	int code = pfs_fsck_dev(dev, false, false, f);
	fclose(f);
	cr_expect_eq(code, 0, "fsck exit %d:\n%s", code, out);
	cr_expect(strstr(out, "never been mounted"), "%s", out);
	free(out);
}
