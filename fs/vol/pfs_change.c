/* fs/vol/pfs_change.c - the one change path: every change to the store (data, catalogue,
 * attributes, settings) enters through pfs_change_apply(), whoever asks (FUSE, ctl, later the
 * replica). It checks what every kind shares, dispatches to the function that does the work,
 * and counts. It must not grow work of its own: each kind's logic stays with its structures.
 */
#include <errno.h>
#include <stdatomic.h>

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

/* Kinds that act on an open volume handle. */
static bool needs_vol(enum pfs_change_kind k)
{
	return k == PFS_CHANGE_WRITE || k == PFS_CHANGE_PUNCH || k == PFS_CHANGE_RESIZE ||
	       k == PFS_CHANGE_CLONE_RANGE || k == PFS_CHANGE_SETATTR;
}

static int apply_write(struct pfs *p, struct pfs_change *c)
{
	ssize_t n = pfs_vol_write(p, c->vol, c->buf, c->len, c->off);

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
	pfs_set_msg(p, "unknown change %d", (int)c->kind);
	return -EINVAL;
}

int pfs_change_apply(struct pfs *p, struct pfs_change *c)
{
	int rc;

	if ((unsigned)c->kind >= PFS_CHANGE_COUNT) {
		pfs_set_msg(p, "unknown change %d", (int)c->kind);
		return -EINVAL;
	}
	if (p->opts.readonly) {
		pfs_set_msg(p, "the namespace is mounted read-only");
		return -EROFS;
	}
	if (needs_vol(c->kind) && !c->vol) {
		pfs_set_msg(p, "%s: no volume", change_names[c->kind]);
		return -EINVAL;
	}
	c->done = 0;
	rc = dispatch(p, c);
	if (rc)
		atomic_fetch_add(&p->change_errors, 1);
	else
		atomic_fetch_add(&p->changes[c->kind], 1);
	return rc;
}
