/* fs/vol/pfs_change.c - the one change path: every change to the store (data, catalogue,
 * attributes, settings) enters through pfs_change_apply(), whoever asks (FUSE, ctl, later the
 * replica). It checks what every kind shares, dispatches to the function that does the work,
 * and counts. It must not grow work of its own: each kind's logic stays with its structures.
 */
#include <errno.h>
#include <stdatomic.h>
#include <string.h>

#include "pfs_vol_int.h"

static const char *const change_names[PFS_CHANGE_COUNT] = {
#define PFS_CHANGE_NAME(n, s) [PFS_CHANGE_##n] = s,
    PFS_CHANGE_KINDS(PFS_CHANGE_NAME)
#undef PFS_CHANGE_NAME
};

const char *pfs_change_kind_name(enum pfs_change_kind k)
{
	return (unsigned)k < PFS_CHANGE_COUNT ? change_names[k] : "unknown";
}

/* ---- the record: what the log and the link carry --------------------------------------------- */
/* Fixed part (little endian): kind u32, attr mask u32, off, len, src_off, size (u64), mode, uid,
 * gid, reserved (u32, 0), atime, mtime (i64), src map (u64); then name, snap, new_name, value,
 * each a u16 length (with the NUL; 0 = absent) and the bytes. Handles (vol, src, created) are
 * local and not carried: the maps are named (and the log record says which map by id). */
#define CHANGE_FIXED   80u
#define CHANGE_STR_MAX 232u
_Static_assert(CHANGE_FIXED + 4 * (2 + CHANGE_STR_MAX) <= PFS_CHANGE_REC_MAX, "record fits");

static int put_str(uint8_t *buf, size_t cap, size_t *off, const char *s)
{
	size_t n = s ? strlen(s) + 1 : 0;

	if (n > CHANGE_STR_MAX)
		return -ENAMETOOLONG;
	if (*off + 2 + n > cap)
		return -ENOSPC;
	buf[*off] = (uint8_t)n;
	buf[*off + 1] = (uint8_t)(n >> 8);
	memcpy(buf + *off + 2, s ? s : "", n);
	*off += 2 + n;
	return 0;
}

int pfs_change_encode(const struct pfs_change *c, uint64_t src_map, uint8_t *buf, size_t cap)
{
	size_t off = CHANGE_FIXED;
	int rc;

	if (cap < CHANGE_FIXED || (unsigned)c->kind >= PFS_CHANGE_COUNT)
		return -EINVAL;
	memset(buf, 0, CHANGE_FIXED);
	pfs_put32(buf, (uint32_t)c->kind);
	pfs_put32(buf + 4, c->attr.mask);
	pfs_put64(buf + 8, c->off);
	pfs_put64(buf + 16, c->len);
	pfs_put64(buf + 24, c->src_off);
	pfs_put64(buf + 32, c->size);
	pfs_put32(buf + 40, c->attr.mode);
	pfs_put32(buf + 44, c->attr.uid);
	pfs_put32(buf + 48, c->attr.gid);
	pfs_put32(buf + 52, 0);
	pfs_put64(buf + 56, (uint64_t)c->attr.atime_ns);
	pfs_put64(buf + 64, (uint64_t)c->attr.mtime_ns);
	pfs_put64(buf + 72, src_map);
	rc = put_str(buf, cap, &off, c->name);
	if (!rc)
		rc = put_str(buf, cap, &off, c->snap);
	if (!rc)
		rc = put_str(buf, cap, &off, c->new_name);
	if (!rc)
		rc = put_str(buf, cap, &off, c->value);
	return rc ? rc : (int)off;
}

static int get_str(const uint8_t *buf, size_t len, size_t *off, const char **out)
{
	if (*off + 2 > len)
		return -EUCLEAN;
	size_t n = buf[*off] | (size_t)buf[*off + 1] << 8;
	*off += 2;
	if (n == 0) {
		*out = NULL;
		return 0;
	}
	if (n > CHANGE_STR_MAX || *off + n > len || buf[*off + n - 1] != 0 ||
	    memchr(buf + *off, 0, n - 1))
		return -EUCLEAN;
	*out = (const char *)buf + *off;
	*off += n;
	return 0;
}

int pfs_change_decode(const uint8_t *buf, size_t len, struct pfs_change *c, uint64_t *src_map)
{
	size_t off = CHANGE_FIXED;
	uint32_t kind;
	int rc;

	memset(c, 0, sizeof(*c));
	if (len < CHANGE_FIXED || len > PFS_CHANGE_REC_MAX)
		return -EUCLEAN;
	kind = pfs_get32(buf);
	if (kind >= PFS_CHANGE_COUNT || pfs_get32(buf + 52) ||
	    (pfs_get32(buf + 4) & ~(unsigned)(PFS_ATTR_MODE | PFS_ATTR_UID | PFS_ATTR_GID |
	                                      PFS_ATTR_ATIME | PFS_ATTR_MTIME)))
		return -EUCLEAN;
	c->kind = (enum pfs_change_kind)kind;
	c->attr.mask = pfs_get32(buf + 4);
	c->off = pfs_get64(buf + 8);
	c->len = pfs_get64(buf + 16);
	c->src_off = pfs_get64(buf + 24);
	c->size = pfs_get64(buf + 32);
	c->attr.mode = pfs_get32(buf + 40);
	c->attr.uid = pfs_get32(buf + 44);
	c->attr.gid = pfs_get32(buf + 48);
	c->attr.atime_ns = (int64_t)pfs_get64(buf + 56);
	c->attr.mtime_ns = (int64_t)pfs_get64(buf + 64);
	*src_map = pfs_get64(buf + 72);
	rc = get_str(buf, len, &off, &c->name);
	if (!rc)
		rc = get_str(buf, len, &off, &c->snap);
	if (!rc)
		rc = get_str(buf, len, &off, &c->new_name);
	if (!rc)
		rc = get_str(buf, len, &off, &c->value);
	if (!rc && off != len)
		rc = -EUCLEAN;
	return rc;
}

/* ---- applying ------------------------------------------------------------------------------ */

/* Kinds that act on an open volume handle. */
static bool needs_vol(enum pfs_change_kind k)
{
	return k == PFS_CHANGE_WRITE || k == PFS_CHANGE_PUNCH || k == PFS_CHANGE_RESIZE ||
	       k == PFS_CHANGE_CLONE_RANGE || k == PFS_CHANGE_SETATTR;
}

static int apply_write(struct pfs *p, struct pfs_change *c)
{
	ssize_t n;

	if (c->held && (c->off % p->bs || c->len % p->bs || !c->block_fp))
		return -EINVAL;
	n = pfs_vol_write_held(p, c->vol, c->buf, c->held, c->block_fp, c->len, c->off);

	if (n < 0)
		return (int)n;
	c->done = (uint64_t)n;
	return 0;
}

static int apply_clone_range(struct pfs *p, struct pfs_change *c)
{
	ssize_t n;

	if (!c->src)
		return -EINVAL;
	n = pfs_vol_clone_range(p, c->src, c->src_off, c->vol, c->off, c->len);
	if (n < 0)
		return (int)n;
	c->done = (uint64_t)n;
	return 0;
}

static int apply_vol_create(struct pfs *p, struct pfs_change *c)
{
	if (c->created)
		return pfs_vol_create_file(p, c->name, c->created);
	return pfs_vol_create(p, c->name, c->size, NULL);
}

static int dispatch(struct pfs *p, struct pfs_change *c)
{
	switch (c->kind) {
	case PFS_CHANGE_WRITE:
		return apply_write(p, c);
	case PFS_CHANGE_PUNCH:
		return pfs_vol_punch(p, c->vol, c->off, c->len);
	case PFS_CHANGE_RESIZE:
		return pfs_vol_resize(p, c->vol, c->size);
	case PFS_CHANGE_CLONE_RANGE:
		return apply_clone_range(p, c);
	case PFS_CHANGE_SETATTR:
		return pfs_vol_setattr(p, c->vol, &c->attr);
	case PFS_CHANGE_VOL_CREATE:
		return apply_vol_create(p, c);
	case PFS_CHANGE_VOL_DELETE:
		return pfs_vol_delete(p, c->name);
	case PFS_CHANGE_VOL_RENAME:
		return pfs_vol_rename(p, c->name, c->new_name);
	case PFS_CHANGE_SNAP_CREATE:
		return pfs_snap_create(p, c->name, c->snap);
	case PFS_CHANGE_SNAP_DELETE:
		return pfs_snap_delete(p, c->name, c->snap);
	case PFS_CHANGE_SNAP_RESTORE:
		return pfs_snap_restore(p, c->name, c->snap);
	case PFS_CHANGE_SNAP_CLONE:
		return pfs_snap_clone(p, c->name, c->snap, c->new_name);
	case PFS_CHANGE_CONFIG_SET:
		return pfs_config_set(p, c->name, c->value, true);
	case PFS_CHANGE_COUNT:
		break;
	}
	return pfs_fail(p, PFS_ERR_BAD_CHANGE, 0, "change %d", (int)c->kind);
}

/* A write of this box's users warms what it wrote (pfs_temp.c). Counted here, at the entry of
 * the change path, so the changes the cluster applies from the peer (through
 * pfs_change_apply_local: its users' writes and resync copies alike) do not. */
static void change_touch(struct pfs *p, const struct pfs_change *c)
{
	if (c->kind == PFS_CHANGE_WRITE && c->vol)
		pfs_temp_touch(p, c->vol, c->off, c->done ? c->done : c->len);
}

int pfs_change_apply(struct pfs *p, struct pfs_change *c)
{
	int rc;

	/* A stretched pod's changes go to the cluster, which orders them with the other box's
	 * and comes back through pfs_change_apply_local. */
	if (p->hooks.change && (unsigned)c->kind < PFS_CHANGE_COUNT && !p->opts.readonly) {
		rc = p->hooks.change(p->hooks.arg, c);
		if (rc == PFS_CHANGE_PENDING && c->on_done) {
			change_touch(p, c); /* this box's user wrote it; the answer comes later */
			return rc;
		}
		if (rc <= 0) {
			if (rc)
				atomic_fetch_add(&p->change_errors, 1);
			else
				change_touch(p, c);
			return rc;
		}
	}
	rc = pfs_change_apply_here(p, c);
	if (!rc)
		change_touch(p, c);
	return rc;
}

void pfs_change_finish(struct pfs *p, pfs_change_done_fn fn, void *arg, int rc, uint64_t done)
{
	if (rc)
		atomic_fetch_add(&p->change_errors, 1);
	fn(arg, rc, done);
}

int pfs_change_apply_here(struct pfs *p, struct pfs_change *c)
{
	int rc;

	if ((unsigned)c->kind >= PFS_CHANGE_COUNT) {
		return pfs_fail(p, PFS_ERR_BAD_CHANGE, 0, "change %d", (int)c->kind);
	}
	c->done = 0;
	if (p->opts.readonly) {
		rc = pfs_fail(p, PFS_ERR_MOUNT_READONLY, 0, "%s", change_names[c->kind]);
	} else if (needs_vol(c->kind) && !c->vol) {
		rc = pfs_fail(p, PFS_ERR_NO_VOLUME, 0, "%s", change_names[c->kind]);
		rc = -EINVAL; /* a caller's mistake, not a missing volume */
	} else {
		rc = dispatch(p, c);
	}
	if (rc)
		atomic_fetch_add(&p->change_errors, 1);
	else
		atomic_fetch_add(&p->changes[c->kind], 1);
	return rc;
}
