/* tests/flash/test_ftl_backends.c - the FTL end to end on the real backends: an image file
 * (page cache, punch hole) and a block device (O_DIRECT, BLKDISCARD) through a loop device.
 *
 * Format, fill past one segment set so GC runs, read back (chunks and hashes), reopen by scan,
 * read back again. Loop-device tests skip (exit 77 style, via cr_skip) where losetup fails.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ftl.h"

static char img[64];
static char loopdev[64];

static void backend_setup(void)
{
	snprintf(img, sizeof(img), "/tmp/pstor-ftl-XXXXXX");
	int fd = mkstemp(img);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 24 << 20), 0);
	close(fd);
	loopdev[0] = 0;
}

static void backend_teardown(void)
{
	if (loopdev[0]) {
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "losetup -d %s", loopdev);
		if (system(cmd) != 0)
			fprintf(stderr, "warning: %s failed\n", cmd);
	}
	unlink(img);
}

static void fill(uint8_t *b, uint32_t len, uint32_t key, uint32_t ver)
{
	uint64_t s = ((uint64_t)key << 32 | ver) * 0x9e3779b97f4a7c15ull + 7;
	for (uint32_t i = 0; i < len; i++) {
		s ^= s << 13;
		s ^= s >> 7;
		s ^= s << 17;
		b[i] = (uint8_t)s;
	}
}

static uint32_t len_of(uint32_t key)
{
	return 500 + (key * 977) % 3500; /* odd sizes up to 3999: chunks straddle device blocks */
}

static void round_trip(const char *path, enum ftl_dev_kind want_kind)
{
	enum { KEYS = 2500, ROUNDS = 10 };
	struct ftl_dev *dev;
	struct ftl *ftl;
	struct ftl_addr *a = calloc(KEYS, sizeof(*a));
	uint32_t *ver = calloc(KEYS, sizeof(*ver));
	uint8_t buf[4096], got[4096], h[FTL_HASH_LEN], hg[FTL_HASH_LEN];

	cr_assert_eq(ftl_dev_open(path, 0, 0, &dev), 0, "open %s", path);
	cr_assert_eq(ftl_dev_kind(dev), want_kind);
	struct ftl_format_params p = {.segment_size = 256 << 10};
	cr_assert_eq(ftl_format(dev, &p), 0);
	cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	for (int r = 0; r < ROUNDS; r++)
		for (uint32_t k = 0; k < KEYS; k++) {
			struct ftl_write_opts o = {.prev = r ? a[k] : FTL_ADDR_NONE};
			struct ftl_addr na;
			fill(buf, len_of(k), k, (uint32_t)r);
			memset(h, 0, sizeof(h));
			memcpy(h, &k, sizeof(k));
			memcpy(h + 4, &r, sizeof(r));
			cr_assert_eq(ftl_write(ftl, buf, len_of(k), h, &o, &na), 0,
			             "round %d key %u", r, k);
			if (r)
				cr_assert_eq(ftl_free(ftl, a[k]), 0);
			a[k] = na;
			ver[k] = (uint32_t)r;
		}
	struct ftl_stats st;
	ftl_get_stats(ftl, &st);
	cr_assert_gt(st.gc_runs, 0, "GC never ran");
	/* Freed segments are trimmed after the next flush (their FREE headers durable first). */
	cr_assert_eq(ftl_sync(ftl), 0);
	ftl_get_stats(ftl, &st);
	cr_assert_gt(st.trims, 0);
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t k = 0; k < KEYS; k++) {
			fill(buf, len_of(k), k, ver[k]);
			cr_assert_eq(ftl_read(ftl, a[k], got, sizeof(got), NULL), (int)len_of(k),
			             "pass %d key %u", pass, k);
			cr_assert_eq(memcmp(buf, got, len_of(k)), 0, "pass %d key %u", pass, k);
			cr_assert_eq(ftl_read_hash(ftl, a[k], hg), 0);
			cr_assert_eq(memcmp(hg, &k, sizeof(k)), 0);
		}
		ftl_close(ftl);
		ftl_dev_close(dev);
		cr_assert_eq(ftl_dev_open(path, 0, 0, &dev), 0);
		cr_assert_eq(ftl_open(&(struct ftl_config){.dev = dev}, &ftl), 0);
	}
	ftl_close(ftl);
	ftl_dev_close(dev);
	free(a);
	free(ver);
}

Test(ftl_backends, image_file_end_to_end, .init = backend_setup, .fini = backend_teardown,
     .timeout = 120)
{
	round_trip(img, FTL_DEV_FILE);
}

Test(ftl_backends, loop_block_device_end_to_end, .init = backend_setup, .fini = backend_teardown,
     .timeout = 120)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>/dev/null", img);
	FILE *p = popen(cmd, "r");
	if (!p)
		cr_skip_test("cannot run losetup");
	if (!fgets(loopdev, sizeof(loopdev), p)) {
		loopdev[0] = 0;
		pclose(p);
		cr_skip_test("losetup -f --show failed: no loop devices here");
	}
	pclose(p);
	loopdev[strcspn(loopdev, "\n")] = 0;
	round_trip(loopdev, FTL_DEV_BLOCK);
}
