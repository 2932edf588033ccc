/* tests/fs/test_fs_held.c - a WRITE change that takes blocks the box already holds by reference
 * (pfs_change.held, what the cluster's apply uses for a resync region's kept blocks): the bytes
 * read back, counts and references, misaligned writes refused, and the maps after a reopen.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfs_vol_int.h"

#define BS 4096u

static char img[64];
static struct pfs *p;

static void open_ns(void)
{
	char msg[256];
	struct pfs_opts o = {.device = img, .dedupe = -1, .commit_interval_ms = -1};

	cr_assert_eq(pfs_open(&o, &p, msg, sizeof(msg)), 0, "pfs_open: %s", msg);
}

static void setup(void)
{
	char msg[256];
	struct pfs_mkfs_params prm = {.size = 256ull << 20, .segment_size = 1u << 20};

	snprintf(img, sizeof(img), "/tmp/pstor-held-XXXXXX");
	int fd = mkstemp(img);
	cr_assert_geq(fd, 0);
	close(fd);
	unlink(img);
	cr_assert_eq(pfs_mkfs(img, &prm, msg, sizeof(msg)), 0, "mkfs: %s", msg);
	open_ns();
	cr_assert_eq(pfs_vol_create(p, "a", 1u << 20, NULL), 0);
	cr_assert_eq(pfs_vol_create(p, "b", 1u << 20, NULL), 0);
}

static void teardown(void)
{
	pfs_close(p);
	p = NULL;
	unlink(img);
}

static struct pfs_vol *vol(const char *name)
{
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, name);
	cr_assert_not_null(v, "volume %s", name);
	return v;
}

static void fill(uint8_t *b, uint8_t seed)
{
	for (uint32_t i = 0; i < BS; i++)
		b[i] = (uint8_t)(seed * 131u + i * 7u + (i >> 9));
}

struct captured {
	uint8_t fp[ENGINE_FP_LEN];
	int n;
};

static void capture(void *arg, const struct pfs_block_change *bc)
{
	struct captured *c = arg;

	if (bc->fp) {
		memcpy(c->fp, bc->fp, ENGINE_FP_LEN);
		c->n++;
	}
}

/* Writes one block of SEED's bytes to volume NAME at OFF; its fingerprint into FP. */
static void write_block(const char *name, uint64_t off, uint8_t seed, uint8_t fp[ENGINE_FP_LEN])
{
	uint8_t b[BS];
	struct captured cap = {0};
	struct pfs_vol *v = vol(name);
	struct pfs_change c = {.kind = PFS_CHANGE_WRITE, .vol = v, .buf = b, .off = off, .len = BS};

	fill(b, seed);
	cr_assert_eq(pfs_change_apply_local(p, &c, capture, &cap), 0);
	cr_assert_eq(cap.n, 1);
	memcpy(fp, cap.fp, ENGINE_FP_LEN);
	pfs_vol_unref(v);
}

static void expect_block(const char *name, uint64_t off, uint8_t seed)
{
	uint8_t want[BS], got[BS];
	struct pfs_vol *v = vol(name);

	fill(want, seed);
	cr_assert_eq(pfs_vol_read(p, v, got, BS, off), (ssize_t)BS);
	cr_expect_eq(memcmp(want, got, BS), 0, "%s at %llu", name, (unsigned long long)off);
	pfs_vol_unref(v);
}

/* Applies a WRITE of LEN bytes at OFF to volume NAME with HELD and BLOCK_FP, as the cluster's
 * apply does; DONE gets the bytes done. */
static int write_held(const char *name, const uint8_t *buf, const struct engine_ref *held,
                      const uint8_t (*block_fp)[ENGINE_FP_LEN], uint64_t off, uint64_t len,
                      uint64_t *done)
{
	struct pfs_vol *v = vol(name);
	struct pfs_change c = {.kind = PFS_CHANGE_WRITE,
	                       .vol = v,
	                       .buf = buf,
	                       .held = held,
	                       .block_fp = block_fp,
	                       .off = off,
	                       .len = len};
	int rc = pfs_change_apply_local(p, &c, NULL, NULL);

	pfs_vol_unref(v);
	if (done)
		*done = c.done;
	return rc;
}

TestSuite(held, .init = setup, .fini = teardown, .timeout = 60);

Test(held, held_blocks_are_taken_by_reference_beside_written_ones)
{
	struct engine *e = pfs_engine(p);
	uint8_t fp[ENGINE_FP_LEN], buf[2 * BS];
	uint8_t block_fp[2][ENGINE_FP_LEN] = {{0}};
	struct engine_ref held[2] = {ENGINE_REF_ZERO_VALUE, ENGINE_REF_ZERO_VALUE};

	write_block("a", 0, 1, fp);
	cr_assert_eq(engine_find_fp(e, fp, &held[0]), 0);
	memcpy(block_fp[0], fp, ENGINE_FP_LEN);
	cr_assert_eq(engine_ref_count(e, held[0]), 2); /* volume a's and ours */

	/* Block 0 by reference: its bytes in BUF are garbage the write must not store. */
	memset(buf, 0xee, BS);
	fill(buf + BS, 2);
	uint64_t done = 0;
	cr_assert_eq(write_held("b", buf, held, (const uint8_t(*)[ENGINE_FP_LEN])block_fp, 8 * BS,
	                        2 * BS, &done),
	             0);
	cr_expect_eq(done, 2 * BS);
	cr_expect_eq(engine_ref_count(e, held[0]), 3, "the write took a reference of its own");
	engine_ref_put(e, held[0]);
	expect_block("b", 8 * BS, 1);
	expect_block("b", 9 * BS, 2);

	/* The map holds it as any deduplicated block: it survives the source's overwrite and a
	 * reopen (the log record carries its fingerprint). */
	write_block("a", 0, 3, fp);
	pfs_close(p);
	p = NULL;
	open_ns();
	expect_block("b", 8 * BS, 1);
	expect_block("b", 9 * BS, 2);
	expect_block("a", 0, 3);
}

Test(held, a_write_with_held_blocks_off_block_boundaries_is_refused_and_changes_nothing)
{
	struct engine *e = pfs_engine(p);
	uint8_t fp[ENGINE_FP_LEN], buf[2 * BS], zero[BS] = {0}, got[BS];
	struct engine_ref held[2] = {ENGINE_REF_ZERO_VALUE, ENGINE_REF_ZERO_VALUE};

	write_block("a", 0, 4, fp);
	cr_assert_eq(engine_find_fp(e, fp, &held[0]), 0);
	uint8_t block_fp[2][ENGINE_FP_LEN] = {{0}};
	memcpy(block_fp[0], fp, ENGINE_FP_LEN);
	fill(buf, 5);
	fill(buf + BS, 6);
	struct pfs_vol *b = vol("b");
	const struct {
		uint64_t off, len;
		bool no_fp;
	} bad[] = {{100, BS, false}, {0, BS + 1, false}, {0, BS, true}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(
		    write_held("b", buf, held,
		               bad[i].no_fp ? NULL : (const uint8_t(*)[ENGINE_FP_LEN])block_fp,
		               bad[i].off, bad[i].len, NULL),
		    -EINVAL, "case %zu", i);
	cr_assert_eq(pfs_vol_read(p, b, got, BS, 0), (ssize_t)BS);
	cr_expect_eq(memcmp(got, zero, BS), 0, "nothing was written");
	pfs_vol_unref(b);
	cr_expect_eq(engine_ref_count(e, held[0]), 2, "no reference taken");
	engine_ref_put(e, held[0]);
}

Test(held, a_reference_to_no_chunk_fails_the_write)
{
	uint8_t buf[BS], fp[ENGINE_FP_LEN] = {0};
	struct engine_ref held[1] = {{(uint64_t)ENGINE_REF_CHUNK << 62 | 123456}};

	fill(buf, 7);
	cr_expect_lt(write_held("b", buf, held, (const uint8_t(*)[ENGINE_FP_LEN])fp, 0, BS, NULL),
	             0);
}

Test(held, a_block_given_with_its_checked_fingerprint_is_indexed_under_it)
{
	struct engine *e = pfs_engine(p);
	uint8_t fp[ENGINE_FP_LEN], other[ENGINE_FP_LEN], buf[BS];
	uint8_t block_fp[1][ENGINE_FP_LEN];
	struct engine_ref held[1] = {ENGINE_REF_ZERO_VALUE}, found;

	/* The fingerprint of SEED 8's bytes, then no chunk of them left on the box. */
	write_block("a", 0, 8, fp);
	write_block("a", 0, 9, other);
	pfs_close(p); /* the overwritten chunk is released at the commit */
	p = NULL;
	open_ns();
	cr_assert_eq(engine_find_fp(e = pfs_engine(p), fp, &found), -ENOENT);

	fill(buf, 8);
	memcpy(block_fp[0], fp, ENGINE_FP_LEN);
	cr_assert_eq(
	    write_held("b", buf, held, (const uint8_t(*)[ENGINE_FP_LEN])block_fp, 4 * BS, BS, NULL),
	    0);
	expect_block("b", 4 * BS, 8);
	cr_assert_eq(engine_find_fp(e, fp, &found), 0, "indexed under the fingerprint given");
	cr_expect_eq(engine_ref_count(e, found), 2);
	engine_ref_put(e, found);
}
