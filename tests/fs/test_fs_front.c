/* tests/fs/test_fs_front.c - the store's one change path (every kind, and the errors that change
 * nothing), the ctl language, the reports and the counter printers, in process on an image file
 * (no FUSE: test_fs_fuse.c mounts).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pfs_front_int.h"

#define MIB (1ull << 20)

static char dir[64], img[128];
static struct pfs *p;

static void open_ns(bool readonly)
{
	char msg[256];
	struct pfs_opts o = {
	    .device = img, .readonly = readonly, .dedupe = -1, .commit_interval_ms = -1};
	int rc = pfs_open(&o, &p, msg, sizeof(msg));
	cr_assert_eq(rc, 0, "pfs_open: %s", msg);
}

/* The image lives in its own directory, so a test can give it an awkward name. */
static void make_ns(const char *name)
{
	char msg[256];
	struct pfs_mkfs_params prm = {.size = 256 * MIB, .segment_size = MIB};

	snprintf(dir, sizeof(dir), "/tmp/pstor-front-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/%s", dir, name);
	cr_assert_eq(pfs_mkfs(img, &prm, msg, sizeof(msg)), 0, "mkfs: %s", msg);
	open_ns(false);
}

static void setup(void)
{
	make_ns("img");
}

static void teardown(void)
{
	pfs_close(p);
	p = NULL;
	unlink(img);
	rmdir(dir);
}

static void reopen(bool readonly)
{
	pfs_close(p);
	p = NULL;
	open_ns(readonly);
}

static struct pfs_vol *vol(const char *name)
{
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, name);
	cr_assert_not_null(v, "volume %s", name);
	return v;
}

static struct pfs_vol *snap(const char *volume, const char *name)
{
	struct pfs_vol *v = vol(volume);
	struct pfs_vol_info i;

	pfs_vol_get_info(v, &i);
	pfs_vol_unref(v);
	return pfs_vol_find(p, PFS_MAP_SNAPSHOT, i.id, name);
}

static struct pfs_vol_info info(const char *name)
{
	struct pfs_vol_info i;
	struct pfs_vol *v = vol(name);

	pfs_vol_get_info(v, &i);
	pfs_vol_unref(v);
	return i;
}

static int change(struct pfs_change c)
{
	return pfs_change_apply(p, &c);
}

static void create(const char *name, uint64_t size)
{
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = name, .size = size}),
	    0, "create %s", name);
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

static void write_at(const char *name, uint64_t off, const void *buf, size_t len)
{
	struct pfs_vol *v = vol(name);
	struct pfs_change c = {
	    .kind = PFS_CHANGE_WRITE, .vol = v, .buf = buf, .len = len, .off = off};

	cr_assert_eq(pfs_change_apply(p, &c), 0);
	cr_assert_eq(c.done, len);
	pfs_vol_unref(v);
}

static void read_at(const char *name, uint64_t off, void *buf, size_t len)
{
	struct pfs_vol *v = vol(name);

	cr_assert_eq(pfs_vol_read(p, v, buf, len, off), (ssize_t)len);
	pfs_vol_unref(v);
}

static void msg_is(const char *want)
{
	char msg[PFS_MSG_MAX];

	pfs_msg_get(p, msg, sizeof(msg));
	cr_assert(strstr(msg, want), "message '%s' lacks '%s'", msg, want);
}

static uint64_t count_vols(int kind, uint64_t parent);

/* ---- pfs_change_apply: every kind ----------------------------------------------------------- */

TestSuite(fs_change, .init = setup, .fini = teardown, .timeout = 60);

Test(fs_change, kind_names_come_from_one_table)
{
	cr_expect_str_eq(pfs_change_kind_name(PFS_CHANGE_WRITE), "write");
	cr_expect_str_eq(pfs_change_kind_name(PFS_CHANGE_SNAP_CLONE), "snapshot_clone");
	cr_expect_str_eq(pfs_change_kind_name(PFS_CHANGE_CONFIG_SET), "config_set");
	cr_expect_str_eq(pfs_change_kind_name(PFS_CHANGE_COUNT), "unknown");
	cr_expect_str_eq(pfs_change_kind_name((enum pfs_change_kind) - 1), "unknown");
}

Test(fs_change, unknown_kind_is_einval_and_counts_nothing)
{
	struct pfs_stats st;

	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_COUNT}), -EINVAL);
	msg_is("not a change the store knows");
	cr_assert_eq(change((struct pfs_change){.kind = (enum pfs_change_kind)99}), -EINVAL);
	pfs_get_stats(p, &st);
	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		cr_expect_eq(st.changes[k], 0);
}

Test(fs_change, data_kinds_without_a_volume_are_einval)
{
	static const enum pfs_change_kind kinds[] = {PFS_CHANGE_WRITE, PFS_CHANGE_PUNCH,
	                                             PFS_CHANGE_RESIZE, PFS_CHANGE_CLONE_RANGE,
	                                             PFS_CHANGE_SETATTR};
	struct pfs_stats st;

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		cr_assert_eq(change((struct pfs_change){.kind = kinds[i], .len = 4096}), -EINVAL);
		msg_is("no such volume");
	}
	pfs_get_stats(p, &st);
	cr_expect_eq(st.change_errors, sizeof(kinds) / sizeof(kinds[0]),
	             "every refused change counts as an error");
	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		cr_expect_eq(st.changes[k], 0, "a refused change counted as applied");
}

Test(fs_change, create_counts_and_rejects_bad_names_and_sizes)
{
	struct pfs_stats st;

	create("a", 8 * MIB);
	cr_assert_eq(info("a").size, 8 * MIB);
	cr_assert_eq(info("a").mode, 0600);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_VOL_CREATE, .name = ".hidden", .size = MIB}),
	             -EINVAL);
	msg_is("bad volume name");
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "a/b", .size = MIB}),
	    -EINVAL);
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "z", .size = 0}),
	    -EINVAL);
	msg_is("greater than 0");
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_VOL_CREATE, .name = "z", .size = 1ull << 60}),
	             -ENOSPC);
	msg_is("beyond the largest volume");
	pfs_get_stats(p, &st);
	cr_expect_eq(st.changes[PFS_CHANGE_VOL_CREATE], 1);
	cr_expect_eq(st.change_errors, 4);
	cr_expect_eq(st.volumes, 1);
}

Test(fs_change, create_of_an_existing_name_is_eexist)
{
	create("a", MIB);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_VOL_CREATE, .name = "a", .size = 2 * MIB}),
	             -EEXIST);
	msg_is("already exists");
	cr_assert_eq(info("a").size, MIB);
}

Test(fs_change, create_as_open_does_returns_an_empty_handle)
{
	struct pfs_vol *v = NULL;
	struct pfs_vol_info i;

	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "f", .created = &v}),
	    0);
	cr_assert_not_null(v);
	pfs_vol_get_info(v, &i);
	cr_expect_str_eq(i.name, "f");
	cr_expect_eq(i.size, 0);
	uint8_t buf[5000];
	fill(buf, sizeof(buf), 1);
	struct pfs_change w = {
	    .kind = PFS_CHANGE_WRITE, .vol = v, .buf = buf, .len = sizeof(buf), .off = 100};
	cr_assert_eq(pfs_change_apply(p, &w), 0);
	pfs_vol_get_info(v, &i);
	cr_expect_eq(i.size, 5100, "a write grows a file-created volume");
	pfs_vol_unref(v);
	v = NULL;
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "f", .created = &v}),
	    -EEXIST);
	cr_assert_null(v);
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "", .created = &v}),
	    -EINVAL);
}

Test(fs_change, write_past_the_end_grows_the_size_up_to_the_largest_volume)
{
	uint8_t buf[4096] = {1};
	struct pfs_vol *v;
	struct pfs_vol_info i;

	create("a", MIB);
	v = vol("a");
	struct pfs_change c = {
	    .kind = PFS_CHANGE_WRITE, .vol = v, .buf = buf, .len = sizeof(buf), .off = MIB + 10};
	cr_assert_eq(pfs_change_apply(p, &c), 0);
	cr_expect_eq(c.done, sizeof(buf));
	pfs_vol_get_info(v, &i);
	cr_expect_eq(i.size, MIB + 10 + sizeof(buf), "a write grows a volume as it grows a file");
	c = (struct pfs_change){
	    .kind = PFS_CHANGE_WRITE, .vol = v, .buf = buf, .len = sizeof(buf), .off = 1ull << 60};
	cr_assert_eq(pfs_change_apply(p, &c), -EFBIG);
	cr_expect_eq(c.done, 0);
	pfs_vol_get_info(v, &i);
	cr_expect_eq(i.size, MIB + 10 + sizeof(buf));
	pfs_vol_unref(v);
}

Test(fs_change, punch_reads_back_zeros_and_keeps_the_rest)
{
	uint8_t buf[3 * 4096], back[3 * 4096], zero[4096] = {0};
	struct pfs_vol *v;

	create("a", MIB);
	fill(buf, sizeof(buf), 7);
	write_at("a", 0, buf, sizeof(buf));
	v = vol("a");
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_PUNCH, .vol = v, .off = 4096, .len = 4096}),
	             0);
	pfs_vol_unref(v);
	read_at("a", 0, back, sizeof(back));
	cr_expect_arr_eq(back, buf, 4096);
	cr_expect_arr_eq(back + 4096, zero, 4096);
	cr_expect_arr_eq(back + 8192, buf + 8192, 4096);
}

Test(fs_change, resize_shrinks_and_the_tail_reads_zero_after_growing_again)
{
	uint8_t buf[8192], back[8192];
	struct pfs_vol *v;

	create("a", MIB);
	fill(buf, sizeof(buf), 3);
	write_at("a", 0, buf, sizeof(buf));
	v = vol("a");
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_RESIZE, .vol = v, .size = 5000}),
	             0);
	cr_assert_eq(info("a").size, 5000);
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_RESIZE, .vol = v, .size = MIB}),
	             0);
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_RESIZE, .vol = v, .size = 1ull << 60}),
	    -ENOSPC);
	pfs_vol_unref(v);
	read_at("a", 0, back, sizeof(back));
	cr_expect_arr_eq(back, buf, 5000);
	for (size_t i = 5000; i < sizeof(back); i++)
		cr_assert_eq(back[i], 0, "byte %zu after shrink and grow", i);
	reopen(false);
	cr_expect_eq(info("a").size, MIB, "a resize is committed");
}

Test(fs_change, resize_of_a_snapshot_is_erofs)
{
	create("a", MIB);
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "a", .snap = "s"}),
	    0);
	struct pfs_vol *s = snap("a", "s");
	cr_assert_not_null(s);
	cr_expect_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_RESIZE, .vol = s, .size = 2 * MIB}),
	    -EROFS);
	struct pfs_change c = {.kind = PFS_CHANGE_SETATTR, .vol = s};
	c.attr.mask = PFS_ATTR_MODE;
	c.attr.mode = 0644;
	cr_expect_eq(pfs_change_apply(p, &c), -EROFS);
	msg_is("read-only");
	pfs_vol_unref(s);
}

Test(fs_change, clone_range_needs_a_source_and_shares_blocks)
{
	uint8_t buf[8192], back[8192];
	struct pfs_vol *a, *b;

	create("a", MIB);
	create("b", MIB);
	fill(buf, sizeof(buf), 11);
	write_at("a", 0, buf, sizeof(buf));
	a = vol("a");
	b = vol("b");
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_CLONE_RANGE, .vol = b, .off = 0, .len = 8192}),
	             -EINVAL);
	struct pfs_change c = {.kind = PFS_CHANGE_CLONE_RANGE,
	                       .src = a,
	                       .src_off = 0,
	                       .vol = b,
	                       .off = 4096,
	                       .len = 8192};
	cr_assert_eq(pfs_change_apply(p, &c), 0);
	cr_assert_eq(c.done, 8192);
	pfs_vol_unref(a);
	pfs_vol_unref(b);
	read_at("b", 4096, back, sizeof(back));
	cr_expect_arr_eq(back, buf, sizeof(buf));
}

Test(fs_change, setattr_persists_mode_owner_and_times)
{
	struct pfs_vol *v;

	create("a", MIB);
	v = vol("a");
	struct pfs_change c = {.kind = PFS_CHANGE_SETATTR, .vol = v};
	c.attr.mask = PFS_ATTR_MODE | PFS_ATTR_UID | PFS_ATTR_GID | PFS_ATTR_ATIME | PFS_ATTR_MTIME;
	c.attr.mode = 0100640; /* type bits are dropped */
	c.attr.uid = 1000;
	c.attr.gid = 100;
	c.attr.atime_ns = 1111000000000;
	c.attr.mtime_ns = 2222000000000;
	cr_assert_eq(pfs_change_apply(p, &c), 0);
	pfs_vol_unref(v);
	reopen(false);
	struct pfs_vol_info i = info("a");
	cr_expect_eq(i.mode, 0640);
	cr_expect_eq(i.uid, 1000);
	cr_expect_eq(i.gid, 100);
	cr_expect_eq(i.atime_ns, 1111000000000);
	cr_expect_eq(i.mtime_ns, 2222000000000);
}

Test(fs_change, setattr_with_an_empty_mask_changes_nothing)
{
	struct pfs_vol *v;

	create("a", MIB);
	struct pfs_vol_info before = info("a");
	v = vol("a");
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_SETATTR, .vol = v}), 0);
	pfs_vol_unref(v);
	struct pfs_vol_info after = info("a");
	cr_expect_eq(after.mode, before.mode);
	cr_expect_eq(after.uid, before.uid);
	cr_expect_eq(after.mtime_ns, before.mtime_ns);
}

Test(fs_change, delete_removes_and_a_missing_name_is_enoent)
{
	create("a", MIB);
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = "a"}), 0);
	cr_assert_null(pfs_vol_find(p, PFS_MAP_VOLUME, 0, "a"));
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = "a"}),
	             -ENOENT);
	msg_is("no volume a");
	reopen(false);
	cr_assert_null(pfs_vol_find(p, PFS_MAP_VOLUME, 0, "a"));
}

Test(fs_change, delete_of_a_volume_with_snapshots_is_ebusy)
{
	create("a", MIB);
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "a", .snap = "s"}),
	    0);
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = "a"}),
	             -EBUSY);
	msg_is("has snapshots");
	pfs_vol_unref(vol("a"));
}

Test(fs_change, a_deleted_volume_handle_reports_gone)
{
	struct pfs_vol *v;
	struct pfs_vol_info i;

	create("a", MIB);
	v = vol("a");
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = "a"}), 0);
	pfs_vol_get_info(v, &i);
	cr_expect(i.gone);
	struct pfs_change c = {.kind = PFS_CHANGE_SETATTR, .vol = v};
	c.attr.mask = PFS_ATTR_MODE;
	c.attr.mode = 0644;
	cr_expect_eq(pfs_change_apply(p, &c), -ENOENT);
	pfs_vol_unref(v);
}

Test(fs_change, rename_moves_the_name_and_keeps_the_data)
{
	uint8_t buf[4096], back[4096];

	create("a", MIB);
	fill(buf, sizeof(buf), 5);
	write_at("a", 0, buf, sizeof(buf));
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_VOL_RENAME, .name = "a", .new_name = "b"}),
	             0);
	cr_assert_null(pfs_vol_find(p, PFS_MAP_VOLUME, 0, "a"));
	reopen(false);
	read_at("b", 0, back, sizeof(back));
	cr_expect_arr_eq(back, buf, sizeof(buf));
}

Test(fs_change, rename_to_existing_name_is_eexist)
{
	create("a", MIB);
	create("b", 2 * MIB);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_VOL_RENAME, .name = "a", .new_name = "b"}),
	             -EEXIST);
	msg_is("already exists");
	cr_expect_eq(info("a").size, MIB);
	cr_expect_eq(info("b").size, 2 * MIB);
}

Test(fs_change, rename_errors_change_nothing)
{
	create("a", MIB);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_VOL_RENAME, .name = "nope", .new_name = "c"}),
	             -ENOENT);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_VOL_RENAME, .name = "a", .new_name = ".c"}),
	             -EINVAL);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_VOL_RENAME, .name = "a", .new_name = "a"}),
	             0, "rename onto itself is a no-op, as rename(2)");
	cr_expect_eq(info("a").size, MIB);
	cr_expect_eq(count_vols(PFS_MAP_VOLUME, 0), 1);
}

Test(fs_change, snapshot_errors_are_enoent_eexist_einval)
{
	create("a", MIB);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_SNAP_CREATE, .name = "nope", .snap = "s"}),
	             -ENOENT);
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "a", .snap = ".s"}),
	    -EINVAL);
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "a", .snap = "s"}),
	    0);
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "a", .snap = "s"}),
	    -EEXIST);
	msg_is("already has a snapshot");
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_DELETE, .name = "a", .snap = "t"}),
	    -ENOENT);
	msg_is("has no snapshot t");
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_RESTORE, .name = "a", .snap = "t"}),
	    -ENOENT);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_SNAP_CLONE, .name = "a", .snap = "s", .new_name = "a"}),
	             -EEXIST);
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_SNAP_CLONE,
	                                        .name = "a",
	                                        .snap = "s",
	                                        .new_name = "-ok-but/bad"}),
	             -EINVAL);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_SNAP_CLONE, .name = "a", .snap = "t", .new_name = "c"}),
	             -ENOENT);
	cr_expect_eq(count_vols(PFS_MAP_VOLUME, 0), 1);
}

Test(fs_change, restore_brings_back_the_snapshot_data_and_size)
{
	uint8_t old[8192], new[8192], back[8192];

	create("a", MIB);
	fill(old, sizeof(old), 21);
	fill(new, sizeof(new), 22);
	write_at("a", 0, old, sizeof(old));
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "a", .snap = "s"}),
	    0);
	write_at("a", 0, new, sizeof(new));
	struct pfs_vol *v = vol("a");
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_RESIZE, .vol = v, .size = 4 * MIB}), 0);
	pfs_vol_unref(v);
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_RESTORE, .name = "a", .snap = "s"}),
	    0);
	cr_expect_eq(info("a").size, MIB);
	read_at("a", 0, back, sizeof(back));
	cr_expect_arr_eq(back, old, sizeof(old));
	reopen(false);
	read_at("a", 0, back, sizeof(back));
	cr_expect_arr_eq(back, old, sizeof(old));
}

Test(fs_change, clone_of_a_snapshot_is_a_new_writable_volume)
{
	uint8_t buf[4096], other[4096], back[4096];

	create("a", MIB);
	fill(buf, sizeof(buf), 31);
	fill(other, sizeof(other), 32);
	write_at("a", 0, buf, sizeof(buf));
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "a", .snap = "s"}),
	    0);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_SNAP_CLONE, .name = "a", .snap = "s", .new_name = "c"}),
	             0);
	write_at("c", 0, other, sizeof(other));
	read_at("a", 0, back, sizeof(back));
	cr_expect_arr_eq(back, buf, sizeof(buf), "the clone's writes stay in the clone");
	read_at("c", 0, back, sizeof(back));
	cr_expect_arr_eq(back, other, sizeof(other));
	cr_assert_eq(
	    change((struct pfs_change){.kind = PFS_CHANGE_SNAP_DELETE, .name = "a", .snap = "s"}),
	    0);
	cr_expect_eq(count_vols(PFS_MAP_VOLUME, 0), 2);
	reopen(false);
	read_at("c", 0, back, sizeof(back));
	cr_expect_arr_eq(back, other, sizeof(other));
}

Test(fs_change, config_set_persists_and_bad_values_are_einval)
{
	char val[64];

	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_CONFIG_SET, .name = "compression", .value = "zstd:3"}),
	             0);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_CONFIG_SET, .name = "dedupe", .value = "off"}),
	             0);
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_CONFIG_SET,
	                                        .name = "commit_interval_ms",
	                                        .value = "250"}),
	             0);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_CONFIG_SET, .name = "compression", .value = "gzip"}),
	             -EINVAL);
	msg_is("compression must be");
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_CONFIG_SET, .name = "dedupe", .value = "maybe"}),
	             -EINVAL);
	cr_assert_eq(change((struct pfs_change){.kind = PFS_CHANGE_CONFIG_SET,
	                                        .name = "commit_interval_ms",
	                                        .value = "5"}),
	             -EINVAL);
	cr_assert_eq(change((struct pfs_change){
	                 .kind = PFS_CHANGE_CONFIG_SET, .name = "colour", .value = "blue"}),
	             -EINVAL);
	msg_is("unknown setting");
	reopen(false);
	cr_assert_eq(pfs_config_get(p, "compression", val, sizeof(val)), 0);
	cr_expect(strstr(val, "zstd"), "compression after reopen: %s", val);
	cr_assert_eq(pfs_config_get(p, "dedupe", val, sizeof(val)), 0);
	cr_expect_str_eq(val, "off");
	cr_assert_eq(pfs_config_get(p, "commit_interval_ms", val, sizeof(val)), 0);
	cr_expect_str_eq(val, "250");
	cr_expect_lt(pfs_config_get(p, "colour", val, sizeof(val)), 0);
	cr_expect_eq(pfs_config_key("dedupe"), PFS_CFG_DEDUPE);
	cr_expect_lt(pfs_config_key("colour"), 0);
}

Test(fs_change, a_read_only_store_refuses_every_kind_with_erofs)
{
	create("a", MIB);
	reopen(true);
	cr_assert(pfs_readonly(p));
	struct pfs_vol *v = vol("a");
	for (int k = 0; k < PFS_CHANGE_COUNT; k++) {
		struct pfs_change c = {.kind = (enum pfs_change_kind)k,
		                       .vol = v,
		                       .src = v,
		                       .name = "a",
		                       .snap = "s",
		                       .new_name = "b",
		                       .value = "on",
		                       .buf = "x",
		                       .len = 1,
		                       .size = MIB};
		cr_expect_eq(pfs_change_apply(p, &c), -EROFS, "kind %s",
		             pfs_change_kind_name(c.kind));
	}
	msg_is("read-only");
	pfs_vol_unref(v);
	cr_expect_eq(count_vols(PFS_MAP_VOLUME, 0), 1);
}

/* ---- the ctl language ----------------------------------------------------------------------- */

TestSuite(fs_ctl, .init = setup, .fini = teardown, .timeout = 60);

static int count_fn(void *arg, struct pfs_vol *v, const struct pfs_vol_info *i)
{
	(void)v;
	(void)i;
	(*(uint64_t *)arg)++;
	return 0;
}

static uint64_t count_vols(int kind, uint64_t parent)
{
	uint64_t n = 0;

	pfs_vol_each(p, kind, parent, count_fn, &n);
	return n;
}

Test(fs_ctl, every_command_runs_and_reports_ok)
{
	static const char *const lines[] = {
	    "volume create a 4M",
	    "volume resize a 8M",
	    "volume rename a b",
	    "snapshot create b s",
	    "snapshot restore b s",
	    "snapshot clone b s c",
	    "snapshot delete b s",
	    "config set dedupe off",
	    "sync",
	    "volume delete c",
	    "gc start",
	    "",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		cr_assert_eq(pfs_ctl_exec(p, lines[i]), 0, "'%s'", lines[i]);
		msg_is("ok");
	}
	cr_expect_eq(info("b").size, 8 * MIB);
	cr_expect_eq(count_vols(PFS_MAP_VOLUME, 0), 1);
	cr_expect_eq(count_vols(PFS_MAP_SNAPSHOT, info("b").id), 0);
}

Test(fs_ctl, gc_start_says_how_many_segments_it_cleaned)
{
	cr_assert_eq(pfs_ctl_exec(p, "gc start"), 0);
	msg_is("ok: gc cleaned ");
}

Test(fs_ctl, argument_count_errors_name_the_usage)
{
	cr_assert_eq(pfs_ctl_exec(p, "volume create a"), -EINVAL);
	msg_is("missing arguments; usage: volume create NAME SIZE");
	cr_assert_eq(pfs_ctl_exec(p, "volume delete a b"), -EINVAL);
	msg_is("too many arguments; usage: volume delete NAME");
	cr_assert_eq(pfs_ctl_exec(p, "sync now"), -EINVAL);
	cr_assert_eq(pfs_ctl_exec(p, "volume"), -EINVAL);
	msg_is("unknown command");
	cr_assert_eq(pfs_ctl_exec(p, "volume explode a"), -EINVAL);
	msg_is("unknown command");
	cr_assert_eq(pfs_ctl_exec(p, "a b c d e f g h i"), -EINVAL);
	msg_is("too many words");
	cr_expect_eq(count_vols(PFS_MAP_VOLUME, 0), 0);
}

Test(fs_ctl, sizes_bad_zero_and_beyond_the_namespace)
{
	cr_assert_eq(pfs_ctl_exec(p, "volume create a 12Q"), -EINVAL);
	msg_is("bad size '12Q'");
	cr_assert_eq(pfs_ctl_exec(p, "volume create a 0"), -EINVAL);
	cr_assert_eq(pfs_ctl_exec(p, "volume create a 99999999999999999999"), -ENOSPC);
	msg_is("beyond the namespace");
	cr_assert_eq(pfs_ctl_exec(p, "volume create a 1M"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "volume resize a 0"), -EINVAL);
	msg_is("greater than 0");
	cr_assert_eq(pfs_ctl_exec(p, "volume resize nope 2M"), -ENOENT);
	msg_is("no volume nope");
	cr_assert_eq(pfs_ctl_exec(p, "volume resize a x"), -EINVAL);
	cr_expect_eq(info("a").size, MIB);
}

Test(fs_ctl, a_failure_without_a_reason_shows_strerror)
{
	cr_assert_eq(pfs_ctl_exec(p, "volume create a 1M"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create a s"), 0);
	struct pfs_vol *s = snap("a", "s");
	pfs_vol_unref(s);
	/* scrub stop with none running sets its own reason */
	cr_assert_eq(pfs_ctl_exec(p, "scrub stop"), -ENOENT);
	msg_is("error: scrub stop: no scrub is running");
}

Test(fs_ctl, long_lines_are_refused_whole)
{
	char line[1100];

	memset(line, 'x', sizeof(line) - 1);
	line[sizeof(line) - 1] = '\0';
	cr_assert_eq(pfs_ctl_exec(p, line), -EINVAL);
	msg_is("command too long");
	cr_assert_eq(pfs_ctl_write(p, line, strlen(line)), -EINVAL);
	msg_is("command too long");
}

Test(fs_ctl, a_write_runs_its_lines_until_the_first_error)
{
	const char *cmds = "volume create a 1M\n\nvolume create a 1M\nvolume create b 1M\n";

	cr_assert_eq(pfs_ctl_write(p, cmds, strlen(cmds)), -EEXIST);
	msg_is("error: volume create a 1M: volume a already exists");
	cr_expect_eq(count_vols(PFS_MAP_VOLUME, 0), 1, "the line after the error did not run");
	cr_assert_eq(pfs_ctl_write(p, "volume create b 2M", 18), 0, "no final newline");
	cr_expect_eq(info("b").size, 2 * MIB);
}

Test(fs_ctl, scrub_start_twice_is_ebusy_or_done_and_stop_cancels)
{
	cr_assert_eq(pfs_ctl_exec(p, "scrub start"), 0);
	msg_is("scrub started");
	int rc = pfs_ctl_write(p, "scrub start\n", 12);
	/* An empty store scrubs in a blink: the second start finds it running or done. */
	cr_assert(rc == -EBUSY || rc == 0, "second scrub start: %d", rc);
	if (rc)
		msg_is("already running");
	rc = pfs_ctl_exec(p, "scrub stop");
	cr_assert(rc == 0 || rc == -ENOENT, "scrub stop: %d", rc);
}

/* ---- reports and printers ----------------------------------------------------------------- */

TestSuite(fs_report, .init = setup, .fini = teardown, .timeout = 60);

static char *report(enum pfs_report r, bool json, struct pfs_vol *v)
{
	struct pfs_buf b = {0};

	cr_assert_eq(pfs_report(p, r, json, v, &b), 0, "report %d", r);
	cr_assert_not_null(b.data);
	return b.data; /* the caller frees */
}

static void expect_has(const char *text, const char *want)
{
	cr_expect(strstr(text, want), "'%s' not in:\n%s", want, text);
}

/* Two volumes: random data, a zero block, repeated blocks, and a snapshot. */
static void populate(void)
{
	uint8_t buf[4 * 4096];

	create("a", 4 * MIB);
	create("b", 2 * MIB);
	fill(buf, 4096, 41);
	memcpy(buf + 4096, buf, 4096);
	memset(buf + 8192, 0, 4096);
	memset(buf + 12288, 'x', 4096);
	write_at("a", 0, buf, sizeof(buf));
	write_at("b", 0, buf, 4096);
	cr_assert_eq(pfs_ctl_exec(p, "snapshot create a s"), 0);
	cr_assert_eq(pfs_commit(p), 0);
}

Test(fs_report, status_text_and_json_agree_on_the_counts)
{
	populate();
	char *t = report(PFS_REPORT_STATUS, false, NULL);
	expect_has(t, "pstorfs on ");
	expect_has(t, "volumes     2 (");
	expect_has(t, "1 snapshots");
	expect_has(t, "health      ok");
	expect_has(t, "n/a (under 64 MiB written since mount)");
	expect_has(t, "scrub       not run since mount");
	free(t);
	char *j = report(PFS_REPORT_STATUS, true, NULL);
	expect_has(j, "\"volumes\": 2,");
	expect_has(j, "\"snapshots\": 1,");
	expect_has(j, "\"provisioned_bytes\": 6291456,");
	expect_has(j, "\"health\": \"ok\"");
	expect_has(j, "\"scrub\": {\"state\": \"idle\"");
	cr_expect_eq(j[strlen(j) - 2], '}');
	free(j);
}

Test(fs_report, status_of_a_read_only_mount_says_so)
{
	reopen(true);
	char *t = report(PFS_REPORT_STATUS, false, NULL);
	expect_has(t, " (read-only)");
	free(t);
	char *j = report(PFS_REPORT_STATUS, true, NULL);
	expect_has(j, "\"readonly\": true");
	free(j);
}

/* The device path is the caller's string: JSON must escape it like any other string. */
Test(fs_report_path, status_json_escapes_the_device_path, .fini = teardown, .timeout = 60)
{
	make_ns("odd\"name\\img");
	char *j = report(PFS_REPORT_STATUS, true, NULL);
	expect_has(j, "odd\\\"name\\\\img\"");
	free(j);
}

Test(fs_report, reduction_counts_patterns_and_dedupe)
{
	populate();
	char *j = report(PFS_REPORT_REDUCTION, true, NULL);
	/* a: random twice, zeros, 'x' (3 non-zero blocks); b: the same random block */
	expect_has(j, "\"logical_bytes\": 16384,");
	expect_has(j, "\"after_pattern_bytes\": 12288,");
	expect_has(j, "\"after_dedupe_bytes\": 4096,");
	expect_has(j, "\"provisioned_bytes\": 6291456,");
	expect_has(j, "\"dedupe_ratio\": 3.000,");
	expect_has(j, "\"since_mount\": {");
	free(j);
	char *t = report(PFS_REPORT_REDUCTION, false, NULL);
	expect_has(t, "after deduplication");
	expect_has(t, "3.00:1");
	free(t);
}

Test(fs_report, reduction_of_an_empty_store_has_null_ratios_or_ones)
{
	char *j = report(PFS_REPORT_REDUCTION, true, NULL);
	expect_has(j, "\"logical_bytes\": 0,");
	expect_has(j, "\"pattern_ratio\": 1.000,");
	cr_expect_null(strstr(j, "inf"));
	cr_expect_null(strstr(j, "nan"));
	free(j);
	/* Only zeros and patterns written: everything removed, JSON says null, not inf. */
	uint8_t buf[4096];
	memset(buf, 'y', sizeof(buf));
	create("a", MIB);
	write_at("a", 0, buf, sizeof(buf));
	j = report(PFS_REPORT_REDUCTION, true, NULL);
	expect_has(j, "\"pattern_ratio\": null,");
	cr_expect_null(strstr(j, "inf"));
	free(j);
}

Test(fs_report, metrics_have_help_and_type_for_each_family)
{
	populate();
	char *m = report(PFS_REPORT_METRICS, false, NULL);
	expect_has(m, "# TYPE pstorfs_capacity_bytes gauge\npstorfs_capacity_bytes ");
	expect_has(m, "# TYPE pstorfs_commits_total counter\n");
	expect_has(m, "pstorfs_volumes 2\n");
	expect_has(m, "pstorfs_store_changes_total{kind=\"volume_create\"} 2\n");
	expect_has(m, "pstorfs_store_changes_total{kind=\"snapshot_create\"} 1\n");
	expect_has(m, "# TYPE pstorfs_scrubs_total counter\npstorfs_scrubs_total 0\n");
	expect_has(m, "pstorfs_volume_size_bytes{volume=\"a\"} 4194304\n");
	expect_has(m, "pstorfs_volume_written_bytes{volume=\"a\"} 12288\n");
	expect_has(m, "pstorfs_volume_written_bytes{volume=\"b\"} 4096\n");
	/* Every sample line follows its family's TYPE line (a histogram's _bucket, _sum and
	 * _count samples follow the histogram's). */
	for (char *l = m; *l; l = strchr(l, '\n') + 1) {
		if (*l != '#') {
			char name[128];
			cr_assert_eq(sscanf(l, "%127[a-z_]", name), 1);
			char type[160];
			snprintf(type, sizeof(type), "# TYPE %s ", name);
			char *at = strstr(m, type);
			for (const char *sfx = "_bucket\0_sum\0_count\0"; !at && *sfx;
			     sfx += strlen(sfx) + 1) {
				size_t n = strlen(name), k = strlen(sfx);
				if (n > k && !strcmp(name + n - k, sfx)) {
					snprintf(type, sizeof(type), "# TYPE %.*s histogram\n",
					         (int)(n - k), name);
					at = strstr(m, type);
				}
			}
			cr_expect(at && at < l, "sample %s before its TYPE", name);
		}
		if (!strchr(l, '\n'))
			break;
	}
	free(m);
}

Test(fs_report, flash_identity_stats_and_smart_of_an_image_file)
{
	char *t = report(PFS_REPORT_FLASH_IDENTITY, false, NULL);
	expect_has(t, "backend           file");
	expect_has(t, "volume block      4096\n");
	expect_has(t, "segment size      1048576\n");
	expect_has(t, "write granularity");
	free(t);
	char *j = report(PFS_REPORT_FLASH_IDENTITY, true, NULL);
	expect_has(j, "\"backend\": \"file\"");
	expect_has(j, "\"zoned\": false");
	expect_has(j, "\"segment_size\": 1048576,");
	free(j);
	t = report(PFS_REPORT_FLASH_STATS, false, NULL);
	cr_expect_gt(strlen(t), 100);
	free(t);
	j = report(PFS_REPORT_FLASH_STATS, true, NULL);
	cr_expect_eq(j[0], '{');
	free(j);
	t = report(PFS_REPORT_FLASH_SMART, false, NULL);
	cr_expect_gt(strlen(t), 20);
	free(t);
	j = report(PFS_REPORT_FLASH_SMART, true, NULL);
	cr_expect_eq(j[0], '{');
	free(j);
}

Test(fs_report, volume_summary_and_values)
{
	populate();
	struct pfs_vol *a = vol("a");
	char *t = report(PFS_REPORT_VOLUME, false, a);
	expect_has(t, "volume      a\n");
	expect_has(t, "size        4194304 bytes\n");
	expect_has(t, "written     12288 bytes\n");
	expect_has(t, "snapshots   1\n");
	free(t);
	char *j = report(PFS_REPORT_VOLUME, true, a);
	expect_has(j, "\"name\": \"a\"");
	expect_has(j, "\"written_bytes\": 12288,");
	expect_has(j, "\"snapshots\": 1,");
	free(j);
	static const char *const want[PFS_VOLUME_VALUES] = {"4194304\n", "12288\n", NULL,
	                                                    NULL,        NULL,      "1\n"};
	for (int i = 0; i < PFS_VOLUME_VALUES; i++) {
		struct pfs_buf b = {0};
		cr_assert_eq(pfs_report_volume_value(p, a, pfs_volume_values[i], &b), 0);
		if (want[i])
			cr_expect_str_eq(b.data, want[i], "%s", pfs_volume_values[i]);
		else
			cr_expect_gt(b.len, 1);
		pfs_buf_free(&b);
	}
	struct pfs_buf b = {0};
	cr_expect_eq(pfs_report_volume_value(p, a, "colour", &b), -ENOENT);
	pfs_buf_free(&b);
	cr_expect_eq(pfs_report(p, (enum pfs_report)99, false, a, &b), -ENOENT);
	pfs_buf_free(&b);
	pfs_vol_unref(a);
}

Test(fs_report, scrub_report_before_any_scrub_is_idle)
{
	char *t = report(PFS_REPORT_SCRUB, false, NULL);
	expect_has(t, "state       idle\n");
	expect_has(t, "no scrub since mount");
	free(t);
	char *j = report(PFS_REPORT_SCRUB, true, NULL);
	expect_has(j, "\"state\": \"idle\"");
	expect_has(j, "\"start_time\": null");
	expect_has(j, "\"runs\": 0,");
	free(j);
	cr_expect_not(pfs_scrub_found_damage(p));
}

Test(fs_report, stats_report_counts_changes_by_kind)
{
	cr_assert_eq(pfs_ctl_exec(p, "volume create a 4M"), 0);
	cr_assert_eq(pfs_ctl_exec(p, "volume rename a b"), 0);
	char *t = report(PFS_REPORT_STATS, false, NULL);
	expect_has(t, "changes.volume_create    1\n");
	expect_has(t, "changes.volume_rename    1\n");
	expect_has(t, "volumes                  1\n");
	free(t);
	char *j = report(PFS_REPORT_STATS, true, NULL);
	expect_has(j, "\"volume_rename\": 1");
	free(j);
}

Test(fs_report, stats_printers_share_one_table)
{
	struct pfs_stats st;
	struct pfs_buf t = {0}, j = {0}, m = {0};

	populate();
	pfs_get_stats(p, &st);
	cr_expect_eq(st.volumes, 2);
	cr_expect_eq(st.snapshots, 1);
	cr_expect_eq(st.changes[PFS_CHANGE_WRITE], 2);
	cr_expect_eq(st.snapshot_logical_bytes, 12288);
	cr_expect_gt(st.commits, 0);
	cr_expect_geq(st.time_ns, pfs_mount_time_ns(p));
	pfs_stats_to_text(&st, &t);
	pfs_stats_to_json(&st, &j);
	pfs_stats_to_prom(&st, &m);
	cr_assert_eq(t.err + j.err + m.err, 0);
	expect_has(t.data, "volumes                  2\n");
	expect_has(t.data, "changes.write            2\n");
	expect_has(t.data, "mount_seconds");
	expect_has(j.data, "\"volumes\": 2,");
	expect_has(j.data, "\"changes\": {\"write\": 2, \"punch\": 0");
	expect_has(j.data, "\"config_set\": 0}\n}\n");
	expect_has(m.data, "# TYPE pstorfs_store_volumes gauge\npstorfs_store_volumes 2\n");
	expect_has(m.data, "# TYPE pstorfs_store_commits_total counter\n");
	expect_has(m.data, "# TYPE pstorfs_store_commit_seconds_total counter\n");
	expect_has(m.data, "pstorfs_store_changes_total{kind=\"write\"} 2\n");
	/* as many text lines as JSON keys (the changes object counts its keys) */
	size_t tl = 0, jk = 0;
	for (char *c = t.data; *c; c++)
		tl += *c == '\n';
	for (char *c = j.data; *c; c++)
		jk += *c == ':';
	cr_expect_eq(tl, jk - 1, "text %zu lines, json %zu keys (one is \"changes\")", tl, jk);
	pfs_buf_free(&t);
	pfs_buf_free(&j);
	pfs_buf_free(&m);
}

Test(fs_report, buffer_grows_and_escapes_json)
{
	struct pfs_buf b = {0};

	for (int i = 0; i < 2000; i++)
		pfs_buf_printf(&b, "%04d ", i);
	cr_assert_eq(b.err, 0);
	cr_assert_eq(b.len, 10000);
	cr_expect_eq(strncmp(b.data + 9995, "1999 ", 5), 0);
	pfs_buf_free(&b);
	cr_expect_null(b.data);
	pfs_buf_json_str(&b, "a\"b\\c\n\x01");
	cr_expect_str_eq(b.data, "\"a\\\"b\\\\c\\u000a\\u0001\"");
	pfs_buf_free(&b);
}
