/* tests/fuzz/fuzz_log.c - libFuzzer target for the roll-forward log decoder, pfs_log_decode
 * (fs/vol/pfs_log.c): a pure function over a log chunk's payload, as mount and fsck replay it.
 *
 * Input: [flags][from][stop][payload] (FZ_LOG_* in fuzz_common.h). Must hold: only -EUCLEAN or
 * the callback's own error; a wrong first lsn is refused; every record reported has an lsn in
 * [max(first, first + from), first + count), increasing, a known type, a map id below 2^56, a
 * pattern of 1..16 bytes inside the payload exactly for SET_PATTERN, a fingerprint inside it
 * exactly for SET_FP, for CHANGE a payload inside it that re-encodes to the same bytes, and the
 * derived mark only on SET and SET_PATTERN; a callback error stops the walk and is returned;
 * decoding from a later lsn reports the tail of what decoding from the first reports; a payload
 * cut short by one byte is refused.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "pfs_vol_int.h"

struct rec {
	uint64_t lsn, map, blk, value;
	int type, derived;
	uint32_t period;
	uint8_t pat[16];
	uint8_t fp[32];
};

struct walk {
	const uint8_t *buf;
	size_t len;
	uint64_t first, from, count;
	struct rec *v;
	size_t n, cap;
	bool stop;
	size_t stop_at;
	bool stopped;
};

static void fail(const char *what, unsigned long long a, unsigned long long b)
{
	fprintf(stderr, "fuzz_log: %s (%llu, %llu)\n", what, a, b);
	abort();
}

static bool inside(const struct walk *w, const uint8_t *p, size_t n)
{
	return p >= w->buf && n <= w->len && p - w->buf <= (ptrdiff_t)(w->len - n);
}

static void check_change(const struct walk *w, const struct pfs_log_rec *r)
{
	uint8_t again[PFS_CHANGE_REC_MAX];
	struct pfs_change c;
	uint64_t src = 0;

	if (!r->change || !inside(w, r->change, r->change_len))
		fail("change payload outside the record", r->change_len, r->lsn);
	if (pfs_change_decode(r->change, r->change_len, &c, &src) != 0)
		fail("a reported change does not decode", r->change_len, r->lsn);
	if ((uint64_t)c.kind != r->value || c.kind != r->decoded.kind || src != r->src_map)
		fail("change kind or source disagree", r->value, r->lsn);
	int n = pfs_change_encode(&c, src, again, sizeof(again));
	if (n != (int)r->change_len || memcmp(again, r->change, r->change_len))
		fail("a change does not re-encode to its bytes", (unsigned long long)n, r->lsn);
}

static int on_rec(void *arg, const struct pfs_log_rec *lr)
{
	struct walk *w = arg;
	uint64_t lsn = lr->lsn, map = lr->map;
	int type = (int)lr->type;
	const uint8_t *pat = lr->pat;
	uint32_t period = lr->period;

	if (w->stopped)
		fail("a record after the callback failed", lsn, 0);
	if (lsn < w->first || lsn < w->from || lsn - w->first >= w->count)
		fail("lsn outside the chunk or below the start", lsn, w->count);
	if (w->n && lsn <= w->v[w->n - 1].lsn)
		fail("lsns not increasing", lsn, w->v[w->n - 1].lsn);
	if (type != PFS_LOG_SET && type != PFS_LOG_SET_PATTERN && type != PFS_LOG_SIZE &&
	    type != PFS_LOG_SET_FP && type != PFS_LOG_CHANGE)
		fail("unknown record type reported", (unsigned long long)type, lsn);
	if (lr->derived && type != PFS_LOG_SET && type != PFS_LOG_SET_PATTERN)
		fail("derived mark on a record that cannot have it", (unsigned long long)type, lsn);
	if (map >> 56)
		fail("map id with type bits", map, lsn);
	if ((type == PFS_LOG_SET_PATTERN) != (pat != NULL))
		fail("pattern pointer and type disagree", (unsigned long long)type, lsn);
	if (pat && (period < 1 || period > 16 || !inside(w, pat, period)))
		fail("pattern outside the payload or of a bad period", period, lsn);
	if (!pat && period)
		fail("period without a pattern", period, lsn);
	if ((type == PFS_LOG_SET_FP) != (lr->fp != NULL) || (lr->fp && !inside(w, lr->fp, 32)))
		fail("fingerprint and type disagree, or outside the payload",
		     (unsigned long long)type, lsn);
	if (type == PFS_LOG_CHANGE)
		check_change(w, lr);
	else if (lr->change)
		fail("a change payload on another type", (unsigned long long)type, lsn);
	if (w->n == w->cap) {
		size_t cap = w->cap ? 2 * w->cap : 64;
		struct rec *v = realloc(w->v, cap * sizeof(*v));
		if (!v)
			abort();
		w->v = v;
		w->cap = cap;
	}
	struct rec *r = &w->v[w->n++];
	*r = (struct rec){lsn, map, lr->blk, lr->value, type, lr->derived, period, {0}, {0}};
	if (pat)
		memcpy(r->pat, pat, period);
	if (lr->fp)
		memcpy(r->fp, lr->fp, 32);
	if (w->stop && w->n == w->stop_at) {
		w->stopped = true;
		return -ECANCELED;
	}
	return 0;
}

static int decode(struct walk *w, const uint8_t *buf, size_t len, uint64_t first, uint64_t from)
{
	w->buf = buf;
	w->len = len;
	w->first = first;
	w->from = from;
	w->n = 0;
	w->stopped = false;
	return pfs_log_decode(buf, len, first, from, on_rec, w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct walk w = {0}, all = {0};

	if (size < 3)
		return 0;
	uint8_t flags = data[0], from_delta = data[1];
	size_t len = size - 3;
	/* A copy of its own, so ASan sees a read past the payload. */
	uint8_t *buf = malloc(len ? len : 1);
	if (!buf)
		return 0;
	memcpy(buf, data + 3, len);
	uint64_t hdr_lsn = len >= 16 ? fz_le64(buf + 8) : 0;
	uint64_t first = (flags & FZ_LOG_LSN_OK) ? hdr_lsn : hdr_lsn + 1;
	uint64_t from = first + from_delta < first ? first : first + from_delta;
	w.count = len >= 8 ? fz_le64(buf) >> 32 : 0;
	w.stop = flags & FZ_LOG_STOP;
	w.stop_at = (size_t)data[2] + 1;

	int rc = decode(&w, buf, len, first, from);
	if (rc != 0 && rc != -EUCLEAN && !(rc == -ECANCELED && w.stopped))
		fail("undocumented error", (unsigned long long)-rc, 0);
	if (w.stopped && rc != -ECANCELED)
		fail("the callback's error was not returned", (unsigned long long)-rc, w.n);
	if (!(flags & FZ_LOG_LSN_OK) && rc != -EUCLEAN)
		fail("a chunk for another lsn accepted", first, hdr_lsn);
	if (rc == 0 && !w.stop) {
		/* From the first lsn: what was reported is the tail of that. */
		all.count = w.count;
		if (decode(&all, buf, len, first, first) != 0)
			fail("decoding from the first lsn fails where from a later one did not",
			     from, first);
		if (all.n < w.n)
			fail("fewer records from the first lsn", all.n, w.n);
		if (w.n && memcmp(all.v + (all.n - w.n), w.v, w.n * sizeof(*w.v)))
			fail("records differ by the lsn decoding starts at", from, first);
		for (size_t i = 0; i < all.n - w.n; i++)
			if (all.v[i].lsn >= from)
				fail("a record at or above the start was skipped", all.v[i].lsn,
				     from);
		/* Every record is needed: one byte less is a malformed chunk. */
		if (len > 0 && decode(&all, buf, len - 1, first, first) != -EUCLEAN)
			fail("a chunk cut short accepted", len, 0);
	}
	free(w.v);
	free(all.v);
	free(buf);
	return 0;
}
