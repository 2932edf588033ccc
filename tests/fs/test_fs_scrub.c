/* tests/fs/test_fs_scrub.c - `scrub start|stop` and its reports on the fault-injecting memory
 * device: a clean store scrubs clean; a flipped bit in a volume block's chunk is found, named
 * by volume, snapshot and offset, fails reads with EIO and turns the health degraded; a
 * running scrub can be stopped; the reports (text, JSON, status line, metrics) say so.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pfs_front_int.h"
#include "pfs_meta.h"
#include "ftl.h"
#include "ftl_dev_fault.h"
#include "pfs_vol_int.h"

#define DEV_SIZE (256ull << 20)
#define BS       4096u

static struct ftl_dev *dev;
static struct pfs *p;

static void setup(void)
{
	struct ftl_superblock_info sb;
	struct ftl_format_params fp = {
	    .segment_size = 1u << 20,
	    .user_block_size = BS,
	    .meta_blocks = (uint32_t)(DEV_SIZE / 64 / 4096),
	};
	char msg[256];
	/* Raw chunks, so a block's bytes can be found on the device. */
	struct pfs_opts o = {.device = "mem",
	                     .compression = "none",
	                     .dedupe = -1,
	                     .commit_interval_ms = -1,
	                     .gc_thread = false};

	cr_assert_eq(ftl_dev_open_mem(DEV_SIZE, 4096, &dev), 0);
	cr_assert_eq(ftl_format(dev, &fp), 0);
	cr_assert_eq(ftl_read_superblock(dev, &sb), 0);
	cr_assert_eq(pfs_vfs_format(dev, sb.meta_offset, sb.meta_size), 0);
	cr_assert_eq(ftl_dev_flush(dev), 0);
	cr_assert_eq(pfs_open_dev(&o, dev, &p, msg, sizeof(msg)), 0, "pfs_open: %s", msg);
}

static void teardown(void)
{
	pfs_close(p);
	p = NULL;
	ftl_dev_close(dev);
	dev = NULL;
}

TestSuite(fs_scrub, .init = setup, .fini = teardown, .timeout = 60);

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

static struct pfs_vol *vol(const char *name)
{
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, name);
	cr_assert_not_null(v, "volume %s", name);
	return v;
}

/* Volume NAME of NBLK blocks, block i filled from seed SEED + i. */
static void make_volume(const char *name, uint32_t nblk, unsigned seed)
{
	uint8_t buf[BS];
	struct pfs_vol *v;

	char line[96];
	snprintf(line, sizeof(line), "volume create %s %u", name, nblk * BS);
	cr_assert_eq(pfs_ctl_exec(p, line), 0);
	v = vol(name);
	for (uint32_t i = 0; i < nblk; i++) {
		fill(buf, sizeof(buf), seed + i);
		struct pfs_change c = {.kind = PFS_CHANGE_WRITE,
		                       .vol = v,
		                       .buf = buf,
		                       .len = BS,
		                       .off = (uint64_t)i * BS};
		cr_assert_eq(pfs_change_apply(p, &c), 0);
	}
	pfs_vol_unref(v);
	cr_assert_eq(pfs_commit(p), 0);
}

/* Device offset of the block with seed SEED (raw chunk: its bytes are on the device as is). */
static uint64_t find_block(unsigned seed)
{
	uint8_t want[BS];
	size_t win = 4u << 20;
	uint8_t *buf = malloc(win + BS);
	uint64_t found = UINT64_MAX;

	fill(want, sizeof(want), seed);
	for (uint64_t off = 0; off < DEV_SIZE && found == UINT64_MAX; off += win) {
		cr_assert_eq(ftl_dev_read(dev, buf, win, off), 0);
		uint8_t *hit = memmem(buf, win, want, 256);
		if (hit &&
		    memcmp(hit, want,
		           (size_t)(buf + win - hit) < BS ? (size_t)(buf + win - hit) : BS) == 0)
			found = off + (uint64_t)(hit - buf);
	}
	free(buf);
	cr_assert_neq(found, UINT64_MAX, "block of seed %u not on the device", seed);
	return found;
}

static void scrub_wait(const char *want_state)
{
	struct pfs_buf b = {0};

	for (int i = 0; i < 1000; i++) {
		pfs_buf_free(&b);
		pfs_scrub_report(p, true, &b);
		if (!strstr(b.data, "\"state\": \"running\""))
			break;
		struct timespec ts = {0, 10000000};
		nanosleep(&ts, NULL);
	}
	char want[64];
	snprintf(want, sizeof(want), "\"state\": \"%s\"", want_state);
	cr_assert(strstr(b.data, want), "scrub not %s:\n%s", want_state, b.data);
	pfs_buf_free(&b);
}

static char *text_of(void (*fn)(struct pfs *, bool, struct pfs_buf *), bool json)
{
	struct pfs_buf b = {0};

	fn(p, json, &b);
	cr_assert_eq(b.err, 0);
	return b.data;
}

static void expect_has(const char *text, const char *want)
{
	cr_expect(strstr(text, want), "'%s' not in:\n%s", want, text);
}

Test(fs_scrub, a_clean_store_scrubs_clean)
{
	make_volume("a", 32, 100);
	cr_assert_eq(pfs_scrub_start(p), 0);
	scrub_wait("done");
	char *j = text_of(pfs_scrub_report, true);
	expect_has(j, "\"runs\": 1,");
	expect_has(j, "\"percent\": 100.0,");
	expect_has(j, "\"damaged_chunks\": 0,");
	expect_has(j, "\"metadata_checked\": true,");
	expect_has(j, "\"maps_checked\": true,");
	expect_has(j, "\"affected\": []");
	cr_expect_null(strstr(j, "\"finish_time\": null"));
	free(j);
	char *t = text_of(pfs_scrub_report, false);
	expect_has(t, "state       done\n");
	expect_has(t, "metadata    ok");
	expect_has(t, "volumes     0 blocks unreadable, 0 at risk");
	free(t);
	t = text_of(pfs_scrub_status, false);
	expect_has(t, "scrub       done ");
	free(t);
	cr_expect_not(pfs_scrub_found_damage(p));
	struct pfs_stats st;
	pfs_get_stats(p, &st);
	cr_expect_eq(st.ftl.checksum_errors, 0);
}

Test(fs_scrub, a_flipped_bit_is_found_and_named_by_volume_snapshot_and_offset)
{
	uint8_t back[BS];

	make_volume("a", 16, 200);
	make_volume("b", 4, 300);
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create a s"), 0);
	uint64_t off = find_block(200 + 5);
	cr_assert_eq(ftl_dev_mem_flip_bit(dev, off + 1000, 3), 0);

	cr_assert_eq(pfs_ctl_exec(p, "scrub start"), 0);
	scrub_wait("done");
	char *j = text_of(pfs_scrub_report, true);
	expect_has(j, "\"damaged_chunks\": 1,");
	expect_has(j, "\"affected_blocks\": 2,"); /* the volume's block and its snapshot's */
	expect_has(j, "\"affected_maps\": 2,");
	expect_has(j, "{\"map\": \"volumes/a\", \"blocks\": 1, \"at_risk_blocks\": 0, "
	              "\"offsets\": [{\"offset\": 20480,");
	expect_has(j, "{\"map\": \"snapshots/a/s\", \"blocks\": 1,");
	expect_has(j, "\"kind\": \"data\"");
	cr_expect_null(strstr(j, "volumes/b"), "b is intact");
	free(j);
	char *t = text_of(pfs_scrub_report, false);
	expect_has(t, "data        ");
	expect_has(t, "1 damaged (reads fail)");
	expect_has(t, "damaged chunks (first 256):\n  chunk ");
	expect_has(t, "  volumes/a: 1 blocks unreadable, 0 at risk; offsets 20480 (chunk ");
	free(t);
	cr_expect(pfs_scrub_found_damage(p));

	struct pfs_buf b = {0};
	cr_assert_eq(pfs_report(p, PFS_REPORT_STATUS, false, NULL, &b), 0);
	expect_has(b.data, "health      degraded");
	expect_has(b.data, "scrub       done ");
	expect_has(b.data, "1 damaged chunks");
	pfs_buf_free(&b);
	cr_assert_eq(pfs_report(p, PFS_REPORT_STATUS, true, NULL, &b), 0);
	expect_has(b.data, "\"health\": \"degraded\"");
	expect_has(b.data,
	           "\"scrub\": {\"state\": \"done\", \"percent\": 100.0, \"damaged_chunks\": 1");
	pfs_buf_free(&b);
	pfs_scrub_metrics(p, &b);
	expect_has(b.data, "pstorfs_scrubs_total 1\n");
	expect_has(b.data, "pstorfs_scrub_running 0\n");
	expect_has(b.data, "pstorfs_scrub_damaged_chunks 1\n");
	expect_has(b.data, "pstorfs_scrub_affected_blocks 2\n");
	pfs_buf_free(&b);

	/* An ordinary read of the block fails whole; its neighbours read. From the device: the
	 * FTL keeps the packs just written in memory, and those bytes would read fine. */
	struct pfs_vol *v = vol("a");
	ftl_read_device_only(true);
	cr_expect_lt(pfs_vol_read(p, v, back, BS, 5 * BS), 0);
	cr_expect_eq(pfs_vol_read(p, v, back, BS, 4 * BS), (ssize_t)BS);
	ftl_read_device_only(false);
	pfs_vol_unref(v);
}

Test(fs_scrub, a_second_run_starts_fresh)
{
	make_volume("a", 8, 400);
	cr_assert_eq(pfs_scrub_start(p), 0);
	scrub_wait("done");
	uint64_t off = find_block(400 + 2);
	cr_assert_eq(ftl_dev_mem_flip_bit(dev, off + 7, 0), 0);
	cr_assert_eq(pfs_scrub_start(p), 0);
	scrub_wait("done");
	char *j = text_of(pfs_scrub_report, true);
	expect_has(j, "\"runs\": 2,");
	expect_has(j, "\"damaged_chunks\": 1,");
	expect_has(j, "\"offset\": 8192,");
	free(j);
}

Test(fs_scrub, stop_with_none_running_is_enoent)
{
	cr_assert_eq(pfs_scrub_cancel(p), -ENOENT);
	char msg[PFS_MSG_MAX];
	pfs_msg_get(p, msg, sizeof(msg));
	cr_expect_str_eq(msg, "no scrub is running");
	cr_assert_eq(pfs_scrub_start(p), 0);
	scrub_wait("done");
	cr_assert_eq(pfs_scrub_cancel(p), -ENOENT, "a finished scrub is not running");
}

/* Stopped while it runs (8 MiB of data: it usually is), it says cancelled and a new start
 * works; on a machine fast enough to finish first, the test skips. */
Test(fs_scrub, stop_cancels_a_running_scrub)
{
	make_volume("a", 2048, 500); /* 8 MiB: several segments */
	cr_assert_eq(pfs_scrub_start(p), 0);
	int rc = pfs_scrub_start(p);
	if (rc == 0) {
		/* It finished before the second start: nothing to cancel on this machine. */
		scrub_wait("done");
		cr_skip_test("the scrub finished before it could be stopped");
	}
	cr_assert_eq(rc, -EBUSY);
	char msg[PFS_MSG_MAX];
	pfs_msg_get(p, msg, sizeof(msg));
	expect_has(msg, "already running");
	struct pfs_buf b = {0};
	pfs_scrub_status(p, false, &b);
	cr_expect(strstr(b.data, "scrub       running") || strstr(b.data, "scrub       done"), "%s",
	          b.data);
	pfs_buf_free(&b);
	rc = pfs_scrub_cancel(p);
	if (rc == 0) {
		pfs_msg_get(p, msg, sizeof(msg));
		cr_expect(!strcmp(msg, "ok: scrub cancelled") || !strcmp(msg, "ok: scrub done"),
		          "%s", msg);
	} else {
		cr_expect_eq(rc, -ENOENT, "it finished in between");
	}
	cr_assert_eq(pfs_scrub_start(p), 0);
	scrub_wait("done");
}

Test(fs_scrub, close_stops_a_running_scrub)
{
	make_volume("a", 1024, 600);
	cr_assert_eq(pfs_scrub_start(p), 0);
	pfs_close(p); /* must not hang or leak the thread */
	p = NULL;
}
