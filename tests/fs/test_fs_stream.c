/* tests/fs/test_fs_stream.c - the one change path and the change stream it produces: every kind
 * of change goes through pfs_change_apply, and the log's tap sees, in order, records another
 * box could apply (fingerprints for new data, catalogue changes by name, clones before the map
 * changes derived from them). Also the change record codec and its refusals.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pfs_vol_int.h"

static char img[64];
static struct pfs *p;

/* What the tap saw: raw records in lsn order. */
struct tape {
	uint8_t *buf;
	size_t len, cap;
	uint64_t first_lsn, next_lsn;
	size_t n;
	bool gap;
};
static struct tape tape;

static void tap(void *arg, uint64_t lsn, const uint8_t *rec, size_t len)
{
	struct tape *t = arg;

	if (!rec) { /* a lost record: a hole in the stream */
		t->gap = true;
		return;
	}
	if (t->n == 0)
		t->first_lsn = lsn;
	else if (lsn != t->next_lsn)
		t->gap = true;
	t->next_lsn = lsn + 1;
	if (t->len + len > t->cap) {
		t->cap = (t->cap + len) * 2;
		t->buf = realloc(t->buf, t->cap);
	}
	memcpy(t->buf + t->len, rec, len);
	t->len += len;
	t->n++;
}

static void setup(void)
{
	char msg[256];
	struct pfs_mkfs_params prm = {.size = 256ull << 20, .segment_size = 1u << 20};
	struct pfs_opts o = {.device = img, .dedupe = -1, .commit_interval_ms = -1};

	snprintf(img, sizeof(img), "/tmp/pstor-stream-XXXXXX");
	int fd = mkstemp(img);
	cr_assert_geq(fd, 0);
	close(fd);
	unlink(img);
	cr_assert_eq(pfs_mkfs(img, &prm, msg, sizeof(msg)), 0, "mkfs: %s", msg);
	cr_assert_eq(pfs_open(&o, &p, msg, sizeof(msg)), 0, "pfs_open: %s", msg);
	memset(&tape, 0, sizeof(tape));
	pfs_log_set_tap(p, tap, &tape);
}

static void teardown(void)
{
	pfs_log_set_tap(p, NULL, NULL);
	pfs_close(p);
	p = NULL;
	unlink(img);
	free(tape.buf);
}

TestSuite(fs_stream, .init = setup, .fini = teardown, .timeout = 60);

static int apply(struct pfs_change c)
{
	return pfs_change_apply(p, &c);
}

static struct pfs_vol *vol(const char *name)
{
	struct pfs_vol *v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, name);
	cr_assert_not_null(v, "volume %s", name);
	return v;
}

/* Decodes the tape into RECS (at most MAX); returns how many. */
static size_t tape_decode(struct pfs_log_rec *recs, size_t max)
{
	size_t off = 0, n = 0;

	cr_assert(!tape.gap, "the tap saw lsns out of order");
	while (off < tape.len && n < max) {
		cr_assert_eq(pfs_log_rec_decode(tape.buf + off, tape.len - off, tape.first_lsn + n,
		                                &recs[n]),
		             0, "record %zu does not decode", n);
		off += recs[n].len;
		n++;
	}
	cr_assert_eq(off, tape.len);
	return n;
}

static ssize_t find_change(const struct pfs_log_rec *r, size_t n, enum pfs_change_kind k)
{
	for (size_t i = 0; i < n; i++)
		if (r[i].type == PFS_LOG_CHANGE && r[i].decoded.kind == k)
			return (ssize_t)i;
	return -1;
}

Test(fs_stream, every_kind_goes_through_the_change_path_and_is_counted)
{
	uint8_t blk[4096];
	struct pfs_stats st;
	struct pfs_vol *v;

	memset(blk, 0x5a, sizeof(blk));
	blk[7] = 1; /* not a pattern */
	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "a", .size = 1 << 20}),
	    0);
	v = vol("a");
	struct pfs_change w = {.kind = PFS_CHANGE_WRITE, .vol = v, .buf = blk, .len = 4096};
	cr_assert_eq(pfs_change_apply(p, &w), 0);
	cr_assert_eq(w.done, 4096);
	cr_assert_eq(apply((struct pfs_change){.kind = PFS_CHANGE_PUNCH, .vol = v, .len = 4096}),
	             0);
	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_RESIZE, .vol = v, .size = 2 << 20}), 0);
	struct pfs_change sa = {.kind = PFS_CHANGE_SETATTR, .vol = v};
	sa.attr.mask = PFS_ATTR_MODE;
	sa.attr.mode = 0640;
	cr_assert_eq(pfs_change_apply(p, &sa), 0);
	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "a", .snap = "s"}),
	    0);
	cr_assert_eq(apply((struct pfs_change){
	                 .kind = PFS_CHANGE_SNAP_CLONE, .name = "a", .snap = "s", .new_name = "b"}),
	             0);
	struct pfs_vol *b = vol("b");
	struct pfs_change cl = {.kind = PFS_CHANGE_CLONE_RANGE, .src = v, .vol = b, .len = 8192};
	cr_assert_eq(pfs_change_apply(p, &cl), 0);
	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_SNAP_RESTORE, .name = "a", .snap = "s"}),
	    0);
	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_SNAP_DELETE, .name = "a", .snap = "s"}),
	    0);
	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_VOL_RENAME, .name = "b", .new_name = "c"}),
	    0);
	cr_assert_eq(apply((struct pfs_change){
	                 .kind = PFS_CHANGE_CONFIG_SET, .name = "dedupe", .value = "off"}),
	             0);
	pfs_vol_unref(b);
	pfs_vol_unref(v);
	cr_assert_eq(apply((struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = "c"}), 0);

	pfs_get_stats(p, &st);
	for (int k = 0; k < PFS_CHANGE_COUNT; k++)
		cr_expect_eq(st.changes[k], 1, "%s applied %llu times", pfs_change_kind_name(k),
		             (unsigned long long)st.changes[k]);
	cr_expect_eq(st.change_errors, 0);

	/* Every change but the data ones is a CHANGE record, in the order applied. */
	static struct pfs_log_rec recs[4096];
	size_t n = tape_decode(recs, 4096);
	enum pfs_change_kind order[] = {
	    PFS_CHANGE_VOL_CREATE,   PFS_CHANGE_RESIZE,      PFS_CHANGE_SETATTR,
	    PFS_CHANGE_SNAP_CREATE,  PFS_CHANGE_SNAP_CLONE,  PFS_CHANGE_CLONE_RANGE,
	    PFS_CHANGE_SNAP_RESTORE, PFS_CHANGE_SNAP_DELETE, PFS_CHANGE_VOL_RENAME,
	    PFS_CHANGE_CONFIG_SET,   PFS_CHANGE_VOL_DELETE,
	};
	ssize_t last = -1;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		ssize_t at = find_change(recs, n, order[i]);
		cr_assert_gt(at, last, "%s record missing or out of order",
		             pfs_change_kind_name(order[i]));
		last = at;
	}
	ssize_t ren = find_change(recs, n, PFS_CHANGE_VOL_RENAME);
	cr_expect_str_eq(recs[ren].decoded.name, "b");
	cr_expect_str_eq(recs[ren].decoded.new_name, "c");
	ssize_t sat = find_change(recs, n, PFS_CHANGE_SETATTR);
	cr_expect_eq(recs[sat].decoded.attr.mask, PFS_ATTR_MODE);
	cr_expect_eq(recs[sat].decoded.attr.mode, 0640);
	ssize_t cfg = find_change(recs, n, PFS_CHANGE_CONFIG_SET);
	cr_expect_str_eq(recs[cfg].decoded.value, "off");
}

Test(fs_stream, new_data_carries_its_fingerprint)
{
	uint8_t blk[2][4096], fp[32];
	struct pfs_vol *v;

	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "v", .size = 1 << 20}),
	    0);
	v = vol("v");
	for (int i = 0; i < 2; i++)
		for (int j = 0; j < 4096; j++)
			blk[i][j] = (uint8_t)(j * 31 + i * 7 + (j >> 5));
	tape.len = tape.n = 0;
	/* Two whole blocks, then a partial write (read-modify-write of block 2). */
	cr_assert_eq(apply((struct pfs_change){
	                 .kind = PFS_CHANGE_WRITE, .vol = v, .buf = blk, .len = sizeof(blk)}),
	             0);
	cr_assert_eq(apply((struct pfs_change){.kind = PFS_CHANGE_WRITE,
	                                       .vol = v,
	                                       .buf = blk[1],
	                                       .len = 100,
	                                       .off = 2 * 4096 + 10}),
	             0);
	static struct pfs_log_rec recs[64];
	size_t n = tape_decode(recs, 64), sets = 0;
	for (size_t i = 0; i < n; i++) {
		if (recs[i].type != PFS_LOG_SET_FP)
			continue;
		uint8_t want[4096];
		if (recs[i].blk < 2) {
			memcpy(want, blk[recs[i].blk], 4096);
		} else {
			memset(want, 0, sizeof(want));
			memcpy(want + 10, blk[1], 100);
		}
		engine_sha256(want, 4096, fp);
		cr_expect(!memcmp(fp, recs[i].fp, 32), "block %llu: fingerprint is not its SHA-256",
		          (unsigned long long)recs[i].blk);
		cr_expect(!recs[i].derived);
		sets++;
	}
	cr_expect_eq(sets, 3, "3 new chunks, %zu SET_FP records", sets);
	pfs_vol_unref(v);
}

Test(fs_stream, a_snapshot_sits_between_the_writes_before_and_after_it)
{
	uint8_t blk[4096];
	struct pfs_vol *v;

	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "v", .size = 1 << 20}),
	    0);
	v = vol("v");
	for (int j = 0; j < 4096; j++)
		blk[j] = (uint8_t)(j * 13 + (j >> 3));
	tape.len = tape.n = 0;
	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_WRITE, .vol = v, .buf = blk, .len = 4096}),
	    0);
	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = "v", .snap = "s"}),
	    0);
	blk[0] ^= 0xff;
	cr_assert_eq(apply((struct pfs_change){
	                 .kind = PFS_CHANGE_WRITE, .vol = v, .buf = blk, .len = 4096, .off = 4096}),
	             0);
	static struct pfs_log_rec recs[64];
	size_t n = tape_decode(recs, 64);
	ssize_t snap = find_change(recs, n, PFS_CHANGE_SNAP_CREATE);
	cr_assert_geq(snap, 0);
	for (size_t i = 0; i < n; i++) {
		if (recs[i].type != PFS_LOG_SET_FP)
			continue;
		if (recs[i].blk == 0)
			cr_expect_lt((ssize_t)i, snap, "the write before the snapshot is after it");
		else
			cr_expect_gt((ssize_t)i, snap, "the write after the snapshot is before it");
	}
	cr_expect_str_eq(recs[snap].decoded.name, "v");
	cr_expect_str_eq(recs[snap].decoded.snap, "s");
	cr_expect_eq(recs[snap].src_map, recs[0].map, "the snapshot's source is the volume");
	pfs_vol_unref(v);
}

Test(fs_stream, clone_range_comes_before_the_map_changes_derived_from_it)
{
	uint8_t blk[3 * 4096];
	struct pfs_vol *a, *b;

	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "a", .size = 1 << 20}),
	    0);
	cr_assert_eq(
	    apply((struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = "b", .size = 1 << 20}),
	    0);
	a = vol("a");
	b = vol("b");
	for (size_t j = 0; j < sizeof(blk); j++)
		blk[j] = (uint8_t)(j * 7 + (j >> 9));
	cr_assert_eq(apply((struct pfs_change){
	                 .kind = PFS_CHANGE_WRITE, .vol = a, .buf = blk, .len = sizeof(blk)}),
	             0);
	tape.len = tape.n = 0;
	struct pfs_change c = {
	    .kind = PFS_CHANGE_CLONE_RANGE, .src = a, .vol = b, .len = sizeof(blk), .off = 8192};
	cr_assert_eq(pfs_change_apply(p, &c), 0);
	cr_assert_eq(c.done, sizeof(blk));
	static struct pfs_log_rec recs[64];
	size_t n = tape_decode(recs, 64);
	cr_assert_geq(n, 4);
	cr_expect_eq(recs[0].type, PFS_LOG_CHANGE);
	cr_expect_eq(recs[0].decoded.kind, PFS_CHANGE_CLONE_RANGE);
	cr_expect_eq(recs[0].decoded.off, 8192);
	cr_expect_eq(recs[0].decoded.len, sizeof(blk));
	size_t derived = 0;
	for (size_t i = 1; i < n; i++)
		if (recs[i].type == PFS_LOG_SET && recs[i].derived)
			derived++;
	cr_expect_eq(derived, 3, "the 3 shared blocks are derived records (%zu)", derived);
	pfs_vol_unref(a);
	pfs_vol_unref(b);
}

Test(fs_stream, refused_changes_change_nothing_and_say_why)
{
	char msg[256];
	struct pfs_stats st;

	cr_expect_eq(apply((struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = "nope"}),
	             -ENOENT);
	pfs_msg_get(p, msg, sizeof(msg));
	cr_expect(strstr(msg, "nope"), "message: %s", msg);
	cr_expect_eq(apply((struct pfs_change){.kind = PFS_CHANGE_WRITE}), -EINVAL);
	cr_expect_eq(apply((struct pfs_change){.kind = (enum pfs_change_kind)99}), -EINVAL);
	cr_expect_eq(apply((struct pfs_change){
	                 .kind = PFS_CHANGE_CONFIG_SET, .name = "dedupe", .value = "maybe"}),
	             -EINVAL);
	pfs_get_stats(p, &st);
	cr_expect_eq(st.change_errors, 3); /* the unknown kind is refused before counting */
	for (size_t off = 0; off < tape.len;) {
		struct pfs_log_rec r;
		cr_assert_eq(pfs_log_rec_decode(tape.buf + off, tape.len - off, 0, &r), 0);
		cr_expect_neq(r.type, PFS_LOG_CHANGE, "a refused change was logged");
		off += r.len;
	}
}

Test(fs_change_codec, round_trip_and_refusals)
{
	uint8_t buf[PFS_CHANGE_REC_MAX];
	struct pfs_change c = {.kind = PFS_CHANGE_SNAP_CLONE,
	                       .name = "vol",
	                       .snap = "nightly",
	                       .new_name = "copy",
	                       .off = 1,
	                       .len = 2,
	                       .src_off = 3,
	                       .size = 4},
	                  d;
	uint64_t src = 0;
	c.attr.mask = PFS_ATTR_UID;
	c.attr.uid = 1000;
	int n = pfs_change_encode(&c, 77, buf, sizeof(buf));
	cr_assert_gt(n, 0);
	cr_assert_eq(pfs_change_decode(buf, (size_t)n, &d, &src), 0);
	cr_expect_eq(d.kind, c.kind);
	cr_expect_str_eq(d.name, "vol");
	cr_expect_str_eq(d.snap, "nightly");
	cr_expect_str_eq(d.new_name, "copy");
	cr_expect_null(d.value);
	cr_expect_eq(d.off + d.len + d.src_off + d.size, 10);
	cr_expect_eq(d.attr.uid, 1000);
	cr_expect_eq(src, 77);

	/* Truncated, trailing bytes, an unterminated string, an unknown kind or mask bit. */
	cr_expect_eq(pfs_change_decode(buf, (size_t)n - 1, &d, &src), -EUCLEAN);
	cr_expect_eq(pfs_change_decode(buf, 40, &d, &src), -EUCLEAN);
	buf[n] = 0;
	cr_expect_eq(pfs_change_decode(buf, (size_t)n + 1, &d, &src), -EUCLEAN);
	uint8_t bad[PFS_CHANGE_REC_MAX];
	memcpy(bad, buf, (size_t)n);
	bad[n - 1] = 'x';
	cr_expect_eq(pfs_change_decode(bad, (size_t)n, &d, &src), -EUCLEAN);
	memcpy(bad, buf, (size_t)n);
	bad[0] = 200;
	cr_expect_eq(pfs_change_decode(bad, (size_t)n, &d, &src), -EUCLEAN);
	memcpy(bad, buf, (size_t)n);
	bad[4] |= 0x80;
	cr_expect_eq(pfs_change_decode(bad, (size_t)n, &d, &src), -EUCLEAN);

	char longname[400];
	memset(longname, 'n', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;
	c.name = longname;
	cr_expect_eq(pfs_change_encode(&c, 0, buf, sizeof(buf)), -ENAMETOOLONG);
}
