/* cluster/cluster_msg.c - the byte layout of what two boxes say to each other: a little-endian
 * encoder that records its first failure, a decoder that never reads past the end, and the
 * codec of a change as it travels (maps by name, WRITE as block descriptors).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster_int.h"

static bool grow(struct cl_wbuf *w, size_t cap)
{
	uint8_t *nb = realloc(w->b, cap);

	if (!nb) {
		w->err = -ENOMEM;
		return false;
	}
	w->b = nb;
	w->cap = cap;
	return true;
}

static void *room(struct cl_wbuf *w, size_t n)
{
	if (w->err)
		return NULL;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->len + n)
			cap *= 2;
		if (!grow(w, cap))
			return NULL;
	}
	void *r = w->b + w->len;
	w->len += n;
	return r;
}

uint8_t *cl_put_room(struct cl_wbuf *w, size_t n)
{
	return room(w, n);
}

void cl_wbuf_reserve(struct cl_wbuf *w, size_t cap)
{
	if (!w->err && cap > w->cap)
		grow(w, cap);
}

void cl_put8(struct cl_wbuf *w, uint8_t v)
{
	uint8_t *r = room(w, 1);
	if (r)
		*r = v;
}

void cl_put32(struct cl_wbuf *w, uint32_t v)
{
	uint8_t *r = room(w, 4);
	if (r)
		pfs_put32(r, v);
}

void cl_put64(struct cl_wbuf *w, uint64_t v)
{
	uint8_t *r = room(w, 8);
	if (r)
		pfs_put64(r, v);
}

void cl_put_bytes(struct cl_wbuf *w, const void *p, size_t n)
{
	uint8_t *r = room(w, n);
	if (r && n)
		memcpy(r, p, n);
}

void cl_put_str(struct cl_wbuf *w, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n > 0xffff) {
		w->err = -ENAMETOOLONG;
		return;
	}
	cl_put8(w, (uint8_t)n);
	cl_put8(w, (uint8_t)(n >> 8));
	cl_put_bytes(w, s, n);
}

void cl_wbuf_free(struct cl_wbuf *w)
{
	free(w->b);
	memset(w, 0, sizeof(*w));
}

const uint8_t *cl_get_bytes(struct cl_rbuf *r, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->b + r->off;
	r->off += n;
	return p;
}

uint8_t cl_get8(struct cl_rbuf *r)
{
	const uint8_t *p = cl_get_bytes(r, 1);
	return p ? *p : 0;
}

uint32_t cl_get32(struct cl_rbuf *r)
{
	const uint8_t *p = cl_get_bytes(r, 4);
	return p ? pfs_get32(p) : 0;
}

uint64_t cl_get64(struct cl_rbuf *r)
{
	const uint8_t *p = cl_get_bytes(r, 8);
	return p ? pfs_get64(p) : 0;
}

void cl_get_str(struct cl_rbuf *r, char *out, size_t cap)
{
	size_t n = cl_get8(r);
	n |= (size_t)cl_get8(r) << 8;
	const uint8_t *p = cl_get_bytes(r, n);

	out[0] = 0;
	if (!p)
		return;
	if (n >= cap || memchr(p, 0, n)) {
		r->bad = true;
		return;
	}
	memcpy(out, p, n);
	out[n] = 0;
}

/* Fixed fields, then the strings, then (WRITE) the block range and its descriptors. */
void cl_change_put(struct cl_wbuf *w, const struct cl_change *cc)
{
	cl_change_put_head(w, cc);
	if (cc->c.kind == PFS_CHANGE_WRITE)
		cl_put_bytes(w, cc->blocks, cc->blocks_len);
}

void cl_change_put_head(struct cl_wbuf *w, const struct cl_change *cc)
{
	const struct pfs_change *c = &cc->c;

	cl_put32(w, (uint32_t)c->kind);
	cl_put64(w, c->off);
	cl_put64(w, c->len);
	cl_put64(w, c->src_off);
	cl_put64(w, c->size);
	cl_put32(w, c->attr.mask);
	cl_put32(w, c->attr.mode);
	cl_put32(w, c->attr.uid);
	cl_put32(w, c->attr.gid);
	cl_put64(w, (uint64_t)c->attr.atime_ns);
	cl_put64(w, (uint64_t)c->attr.mtime_ns);
	cl_put_str(w, cc->name);
	cl_put_str(w, cc->snap);
	cl_put_str(w, cc->new_name);
	cl_put_str(w, cc->src_name);
	cl_put_str(w, cc->src_snap);
	cl_put_str(w, cc->value);
	if (c->kind == PFS_CHANGE_WRITE) {
		cl_put64(w, cc->first);
		cl_put64(w, cc->nblk);
		cl_put64(w, cc->size_after);
		cl_put64(w, cc->blocks_len);
	}
}

int cl_change_get(struct cl_rbuf *r, struct cl_change *cc)
{
	struct pfs_change *c = &cc->c;
	uint32_t kind;

	memset(cc, 0, sizeof(*cc));
	kind = cl_get32(r);
	c->off = cl_get64(r);
	c->len = cl_get64(r);
	c->src_off = cl_get64(r);
	c->size = cl_get64(r);
	c->attr.mask = cl_get32(r);
	c->attr.mode = cl_get32(r);
	c->attr.uid = cl_get32(r);
	c->attr.gid = cl_get32(r);
	c->attr.atime_ns = (int64_t)cl_get64(r);
	c->attr.mtime_ns = (int64_t)cl_get64(r);
	cl_get_str(r, cc->name, sizeof(cc->name));
	cl_get_str(r, cc->snap, sizeof(cc->snap));
	cl_get_str(r, cc->new_name, sizeof(cc->new_name));
	cl_get_str(r, cc->src_name, sizeof(cc->src_name));
	cl_get_str(r, cc->src_snap, sizeof(cc->src_snap));
	cl_get_str(r, cc->value, sizeof(cc->value));
	if (r->bad || kind >= PFS_CHANGE_COUNT)
		return -EPROTO;
	c->kind = (enum pfs_change_kind)kind;
	c->name = cc->name[0] ? cc->name : NULL;
	c->snap = cc->snap[0] ? cc->snap : NULL;
	c->new_name = cc->new_name[0] ? cc->new_name : NULL;
	c->value = cc->value[0] ? cc->value : NULL;
	if (c->kind == PFS_CHANGE_WRITE) {
		cc->first = cl_get64(r);
		cc->nblk = cl_get64(r);
		cc->size_after = cl_get64(r);
		cc->blocks_len = cl_get64(r);
		cc->blocks = cl_get_bytes(r, cc->blocks_len);
		/* A bound so a forged count cannot ask for an absurd buffer: 64 MiB of blocks. A
		 * forwarded write carries its bytes instead of blocks (no range). */
		if (r->bad || cc->nblk > 16384 || (cc->nblk == 0) != (cc->blocks_len == 0))
			return -EPROTO;
	}
	return 0;
}
