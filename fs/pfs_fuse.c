/* fs/pfs_fuse.c - the FUSE low-level operations: the tree of volumes/, snapshots/ and
 * .pstorage/. Inode numbers are computed from what a node is (kind, map id, file index), so
 * no inode table is kept and a number never names two things in one mount. Each request is
 * answered exactly once, after every lock is dropped. The only file that includes
 * <fuse_lowlevel.h> besides the daemon's main.
 */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pfs_analytics.h"
#include "pfs_front_int.h"

/* Fixed nodes. */
enum {
	INO_ROOT = FUSE_ROOT_ID,
	INO_VOLUMES,
	INO_SNAPSHOTS,
	INO_PSTORAGE,
	INO_CONFIGDIR,
	INO_FLASHDIR,
	INO_PVOLSDIR,
	INO_CTL,
	INO_CLUSTERDIR,
	INO_ANALYTICSDIR,
	INO_REPORT0 = 16,    /* .pstorage/<report> */
	INO_FLASH0 = 32,     /* .pstorage/flash/<file> */
	INO_CONFIG0 = 48,    /* .pstorage/config/<key> */
	INO_CLUSTER0 = 60,   /* .pstorage/cluster/<file> */
	INO_ANALYTICS0 = 64, /* .pstorage/analytics/<file> (pfs_analytics.c) */
};

/* Nodes named by a map id: kind << 56 | id << 8 | sub. */
enum {
	K_VOL = 1,      /* volumes/NAME */
	K_SNAPDIR = 2,  /* snapshots/VOLUME/ (id = the volume) */
	K_SNAP = 3,     /* snapshots/VOLUME/SNAP (id = the snapshot) */
	K_PVOLDIR = 4,  /* .pstorage/volumes/NAME/ */
	K_PVOLFILE = 5, /* .pstorage/volumes/NAME/<file> (sub = index) */
};

#define INO_MAKE(k, id, sub) ((fuse_ino_t)(k) << 56 | (fuse_ino_t)(id) << 8 | (sub))
#define INO_KIND(i)          ((int)((i) >> 56))
#define INO_ID(i)            (((i) >> 8) & ((1ull << 48) - 1))
#define INO_SUB(i)           ((unsigned)((i)&0xff))

static const struct {
	const char *name;
	enum pfs_report r;
	bool json;
} reports[] = {
    {"status", PFS_REPORT_STATUS, false},       {"status.json", PFS_REPORT_STATUS, true},
    {"reduction", PFS_REPORT_REDUCTION, false}, {"reduction.json", PFS_REPORT_REDUCTION, true},
    {"metrics", PFS_REPORT_METRICS, false},     {"scrub", PFS_REPORT_SCRUB, false},
    {"scrub.json", PFS_REPORT_SCRUB, true},     {"stats", PFS_REPORT_STATS, false},
    {"stats.json", PFS_REPORT_STATS, true},
};
#define NREPORTS (sizeof(reports) / sizeof(reports[0]))
_Static_assert(NREPORTS <= INO_FLASH0 - INO_REPORT0, "reports fit their inode range");

static const struct {
	const char *name;
	enum pfs_report r;
	bool json;
} flash_files[] = {
    {"identity", PFS_REPORT_FLASH_IDENTITY, false},
    {"identity.json", PFS_REPORT_FLASH_IDENTITY, true},
    {"stats", PFS_REPORT_FLASH_STATS, false},
    {"stats.json", PFS_REPORT_FLASH_STATS, true},
    {"smart", PFS_REPORT_FLASH_SMART, false},
    {"smart.json", PFS_REPORT_FLASH_SMART, true},
};
#define NFLASH (sizeof(flash_files) / sizeof(flash_files[0]))
_Static_assert(NFLASH <= INO_CONFIG0 - INO_FLASH0, "flash files fit their inode range");
_Static_assert(PFS_CFG_COUNT <= INO_CLUSTER0 - INO_CONFIG0, "settings fit their inode range");

/* .pstorage/cluster/: the state of the pods and the link (cluster/cluster_report.c). */
static const struct {
	const char *name;
	bool json;
} cluster_files[] = {{"status", false}, {"status.json", true}};
#define NCLUSTER (sizeof(cluster_files) / sizeof(cluster_files[0]))

/* .pstorage/volumes/NAME/: summary, summary.json, one value a file, then the settings one can
 * write (cold_compression, pfs_tier.c). */
#define PVOL_COLD  (2 + PFS_VOLUME_VALUES)
#define PVOL_FILES (PVOL_COLD + 1)
static const char *pvol_file_name(unsigned i)
{
	return i == 0           ? "summary"
	       : i == 1         ? "summary.json"
	       : i == PVOL_COLD ? "cold_compression"
	                        : pfs_volume_values[i - 2];
}

struct pfs_fuse {
	struct pfs *p;
	struct fuse_session *se;
	uid_t uid;
	gid_t gid;
	/* Writes answered later (PFS_CHANGE_PENDING: a stretched pod's, until the other box
	 * confirms them): the session may not go before their answers (op_destroy waits). */
	pthread_mutex_t pending_lock;
	pthread_cond_t pending_cond;
	atomic_int pending; /* briefly -1 when an answer beats the count */
	/* Open files, so those the kernel never released (the session ended with them open or
	 * their RELEASE still queued: SIGTERM right after a close) are freed by op_destroy,
	 * their volume references dropped before the store closes. */
	pthread_mutex_t fh_lock;
	struct open_link *fhs;  /* open files (struct fh) */
	struct open_link *dirs; /* open directories (struct dir_list) */
};

/* The session's end frees the handles whose RELEASE never came (SIGTERM with files open, or
 * their RELEASE still queued), so each open file and directory is on a list (under fh_lock). */
struct open_link {
	struct open_link *prev, *next;
};

/* The handle of type TYPE whose member `link` is L. */
#define OPEN_OF(l, type) ((type *)(void *)((char *)(l)-offsetof(type, link)))

static void open_link_add(struct pfs_fuse *f, struct open_link **head, struct open_link *l)
{
	pthread_mutex_lock(&f->fh_lock);
	l->prev = NULL;
	l->next = *head;
	if (*head)
		(*head)->prev = l;
	*head = l;
	pthread_mutex_unlock(&f->fh_lock);
}

static void open_link_del(struct pfs_fuse *f, struct open_link **head, struct open_link *l)
{
	pthread_mutex_lock(&f->fh_lock);
	if (l->prev)
		l->prev->next = l->next;
	else
		*head = l->next;
	if (l->next)
		l->next->prev = l->prev;
	pthread_mutex_unlock(&f->fh_lock);
}

/* What an open file is. */
enum fh_kind { FH_VOL, FH_TEXT, FH_CTL, FH_CONFIG, FH_VOLSET };
struct fh {
	enum fh_kind kind;
	struct pfs_vol *v; /* FH_VOL */
	struct pfs_buf text;
	int key;               /* FH_CONFIG */
	struct open_link link; /* pfs_fuse.fhs */
};

static void fh_link(struct pfs_fuse *f, struct fh *h)
{
	open_link_add(f, &f->fhs, &h->link);
}

/* Unlinks and frees H. */
static void fh_free(struct pfs_fuse *f, struct fh *h)
{
	open_link_del(f, &f->fhs, &h->link);
	pfs_vol_unref(h->v);
	pfs_buf_free(&h->text);
	free(h);
}

static struct pfs_fuse *ctx(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static void fill_dir(struct pfs_fuse *f, struct stat *st, fuse_ino_t ino, int64_t mtime_ns)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_mode = S_IFDIR | 0755;
	st->st_nlink = 2;
	st->st_uid = f->uid;
	st->st_gid = f->gid;
	st->st_mtim.tv_sec = mtime_ns / 1000000000;
	st->st_mtim.tv_nsec = mtime_ns % 1000000000;
	st->st_ctim = st->st_atim = st->st_mtim;
}

static void fill_file(struct pfs_fuse *f, struct stat *st, fuse_ino_t ino, mode_t mode,
                      uint64_t size, int64_t mtime_ns)
{
	fill_dir(f, st, ino, mtime_ns);
	st->st_mode = S_IFREG | mode;
	st->st_nlink = 1;
	st->st_size = (off_t)size;
	st->st_blksize = 1 << 20;
}

static enum pfs_map_kind vol_kind(struct pfs_vol *v)
{
	struct pfs_vol_info i;

	pfs_vol_get_info(v, &i);
	return i.kind;
}

static uint64_t vol_id(struct pfs_vol *v)
{
	struct pfs_vol_info i;

	pfs_vol_get_info(v, &i);
	return i.id;
}

static void set_time(struct timespec *ts, int64_t ns)
{
	ts->tv_sec = ns / 1000000000;
	ts->tv_nsec = ns % 1000000000;
}

/* Returns a referenced map for a map-named inode of KIND, or NULL. */
static struct pfs_vol *vol_of(struct pfs *p, fuse_ino_t ino, int kind)
{
	struct pfs_vol *v = pfs_vol_by_id(p, INO_ID(ino));
	int want = kind == K_SNAP ? PFS_MAP_SNAPSHOT : PFS_MAP_VOLUME;

	if (v && (int)vol_kind(v) != want) {
		pfs_vol_unref(v);
		v = NULL;
	}
	return v;
}

static int node_stat(struct pfs_fuse *f, fuse_ino_t ino, struct stat *st)
{
	struct pfs *p = f->p;
	int64_t t = pfs_mount_time_ns(p);
	struct pfs_vol *v;

	switch (ino) {
	case INO_ROOT:
	case INO_VOLUMES:
	case INO_SNAPSHOTS:
	case INO_PSTORAGE:
	case INO_CONFIGDIR:
	case INO_FLASHDIR:
	case INO_PVOLSDIR:
	case INO_CLUSTERDIR:
	case INO_ANALYTICSDIR:
		fill_dir(f, st, ino, t);
		return 0;
	case INO_CTL:
		fill_file(f, st, ino, 0600, 0, t);
		return 0;
	}
	if (ino >= INO_REPORT0 && ino < INO_REPORT0 + NREPORTS) {
		fill_file(f, st, ino, 0444, 0, t);
		return 0;
	}
	if ((ino >= INO_FLASH0 && ino < INO_FLASH0 + NFLASH) ||
	    (ino >= INO_CLUSTER0 && ino < INO_CLUSTER0 + NCLUSTER)) {
		fill_file(f, st, ino, 0444, 0, t);
		return 0;
	}
	if (ino >= INO_CONFIG0 && ino < INO_CONFIG0 + PFS_CFG_COUNT) {
		fill_file(f, st, ino, 0644, 0, t);
		return 0;
	}
	if (ino >= INO_ANALYTICS0 && ino < INO_ANALYTICS0 + pfs_analytics_nfiles) {
		fill_file(f, st, ino, 0444, 0, t);
		return 0;
	}
	switch (INO_KIND(ino)) {
	case K_VOL:
	case K_SNAP: {
		uint64_t unique = 0, shared = 0;
		struct pfs_vol_info i;
		v = vol_of(p, ino, INO_KIND(ino));
		if (!v)
			return -ENOENT;
		pfs_vol_get_info(v, &i);
		/* Mode and owner are the volume's own (0600 root:root when made), enforced by the
		 * kernel (default_permissions); a snapshot keeps its volume's at the time. */
		fill_file(f, st, ino, i.mode & 07777, i.size, i.mtime_ns);
		st->st_uid = i.uid;
		st->st_gid = i.gid;
		set_time(&st->st_atim, i.atime_ns);
		set_time(&st->st_ctim, i.ctime_ns);
		/* st_blocks: the physical bytes only this file holds. */
		pfs_vol_usage(p, v, false, &unique, &shared);
		st->st_blocks = (blkcnt_t)((unique + 511) / 512);
		pfs_vol_unref(v);
		return 0;
	}
	case K_SNAPDIR:
	case K_PVOLDIR:
		v = vol_of(p, ino, K_VOL);
		if (!v || INO_SUB(ino))
			goto enoent;
		{
			struct pfs_vol_info i;
			pfs_vol_get_info(v, &i);
			fill_dir(f, st, ino, i.ctime_ns);
		}
		pfs_vol_unref(v);
		return 0;
	case K_PVOLFILE:
		v = vol_of(p, ino, K_VOL);
		if (!v || INO_SUB(ino) >= PVOL_FILES)
			goto enoent;
		fill_file(f, st, ino, INO_SUB(ino) == PVOL_COLD ? 0644 : 0444, 0, t);
		pfs_vol_unref(v);
		return 0;
	}
	return -ENOENT;
enoent:
	pfs_vol_unref(v);
	return -ENOENT;
}

/* Volumes and snapshots change behind the kernel's back (ctl, other names): no caching of
 * their attributes or names. Fixed nodes are cached for a second. */
static double node_timeout(fuse_ino_t ino)
{
	return INO_KIND(ino) ? 0.0 : 1.0;
}

static int node_lookup(struct pfs_fuse *f, fuse_ino_t parent, const char *name, fuse_ino_t *out)
{
	struct pfs *p = f->p;
	struct pfs_vol *v = NULL;

	switch (parent) {
	case INO_ROOT:
		if (!strcmp(name, "volumes"))
			*out = INO_VOLUMES;
		else if (!strcmp(name, "snapshots"))
			*out = INO_SNAPSHOTS;
		else if (!strcmp(name, ".pstorage"))
			*out = INO_PSTORAGE;
		else
			return -ENOENT;
		return 0;
	case INO_PSTORAGE:
		if (!strcmp(name, "ctl"))
			*out = INO_CTL;
		else if (!strcmp(name, "config"))
			*out = INO_CONFIGDIR;
		else if (!strcmp(name, "flash"))
			*out = INO_FLASHDIR;
		else if (!strcmp(name, "cluster"))
			*out = INO_CLUSTERDIR;
		else if (!strcmp(name, "volumes"))
			*out = INO_PVOLSDIR;
		else if (!strcmp(name, "analytics"))
			*out = INO_ANALYTICSDIR;
		else {
			for (unsigned i = 0; i < NREPORTS; i++)
				if (!strcmp(name, reports[i].name)) {
					*out = INO_REPORT0 + i;
					return 0;
				}
			return -ENOENT;
		}
		return 0;
	case INO_FLASHDIR:
		for (unsigned i = 0; i < NFLASH; i++)
			if (!strcmp(name, flash_files[i].name)) {
				*out = INO_FLASH0 + i;
				return 0;
			}
		return -ENOENT;
	case INO_CLUSTERDIR:
		for (unsigned i = 0; i < NCLUSTER; i++)
			if (!strcmp(name, cluster_files[i].name)) {
				*out = INO_CLUSTER0 + i;
				return 0;
			}
		return -ENOENT;
	case INO_ANALYTICSDIR:
		for (unsigned i = 0; i < pfs_analytics_nfiles; i++)
			if (!strcmp(name, pfs_analytics_files[i])) {
				*out = INO_ANALYTICS0 + i;
				return 0;
			}
		return -ENOENT;
	case INO_CONFIGDIR: {
		int k = pfs_config_key(name);
		if (k < 0)
			return -ENOENT;
		*out = INO_CONFIG0 + (unsigned)k;
		return 0;
	}
	case INO_VOLUMES:
	case INO_SNAPSHOTS:
	case INO_PVOLSDIR:
		v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, name);
		if (!v)
			return -ENOENT;
		*out = INO_MAKE(parent == INO_VOLUMES     ? K_VOL
		                : parent == INO_SNAPSHOTS ? K_SNAPDIR
		                                          : K_PVOLDIR,
		                vol_id(v), 0);
		pfs_vol_unref(v);
		return 0;
	}
	switch (INO_KIND(parent)) {
	case K_SNAPDIR:
		v = pfs_vol_find(p, PFS_MAP_SNAPSHOT, INO_ID(parent), name);
		if (!v)
			return -ENOENT;
		*out = INO_MAKE(K_SNAP, vol_id(v), 0);
		pfs_vol_unref(v);
		return 0;
	case K_PVOLDIR:
		for (unsigned i = 0; i < PVOL_FILES; i++)
			if (!strcmp(name, pvol_file_name(i))) {
				*out = INO_MAKE(K_PVOLFILE, INO_ID(parent), i);
				return 0;
			}
		return -ENOENT;
	}
	return -ENOTDIR;
}

static void reply_entry(fuse_req_t req, struct pfs_fuse *f, fuse_ino_t ino)
{
	struct fuse_entry_param e;
	int rc;

	memset(&e, 0, sizeof(e));
	rc = node_stat(f, ino, &e.attr);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	e.ino = ino;
	e.generation = 1;
	e.attr_timeout = e.entry_timeout = node_timeout(ino);
	fuse_reply_entry(req, &e);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pfs_fuse *f = ctx(req);
	fuse_ino_t ino;
	int rc = node_lookup(f, parent, name, &ino);

	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_entry(req, f, ino);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;
	int rc = node_stat(ctx(req), ino, &st);

	(void)fi;
	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_attr(req, &st, node_timeout(ino));
}

/* chmod, chown, utimens and truncate of a volume are changes on the store's change path (they
 * persist in the catalogue); a snapshot is read-only in its attributes as in its data. */
static int vol_setattr(struct pfs_fuse *f, struct pfs_vol *v, const struct stat *attr, int to_set)
{
	struct pfs_change c = {.kind = PFS_CHANGE_SETATTR, .vol = v};
	int64_t now = pfs_now_ns();
	int rc = 0;

	if (to_set & FUSE_SET_ATTR_SIZE) {
		rc = pfs_change_apply(f->p, &(struct pfs_change){.kind = PFS_CHANGE_RESIZE,
		                                                 .vol = v,
		                                                 .size = (uint64_t)attr->st_size});
		if (rc)
			return rc == -ENOSPC ? -EFBIG : rc;
	}
	if (to_set & FUSE_SET_ATTR_MODE) {
		c.attr.mask |= PFS_ATTR_MODE;
		c.attr.mode = attr->st_mode & 07777;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		c.attr.mask |= PFS_ATTR_UID;
		c.attr.uid = attr->st_uid;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		c.attr.mask |= PFS_ATTR_GID;
		c.attr.gid = attr->st_gid;
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) {
		c.attr.mask |= PFS_ATTR_ATIME;
		c.attr.atime_ns =
		    (to_set & FUSE_SET_ATTR_ATIME_NOW)
		        ? now
		        : (int64_t)attr->st_atim.tv_sec * 1000000000 + attr->st_atim.tv_nsec;
	}
	if (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) {
		c.attr.mask |= PFS_ATTR_MTIME;
		c.attr.mtime_ns =
		    (to_set & FUSE_SET_ATTR_MTIME_NOW)
		        ? now
		        : (int64_t)attr->st_mtim.tv_sec * 1000000000 + attr->st_mtim.tv_nsec;
	}
	if (c.attr.mask)
		rc = pfs_change_apply(f->p, &c);
	return rc;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
	struct pfs_fuse *f = ctx(req);
	int rc = 0;

	(void)fi;
	if (INO_KIND(ino) == K_VOL) {
		struct pfs_vol *v = vol_of(f->p, ino, K_VOL);
		if (!v) {
			fuse_reply_err(req, ENOENT);
			return;
		}
		rc = vol_setattr(f, v, attr, to_set);
		pfs_vol_unref(v);
	} else if (INO_KIND(ino) == K_SNAP) {
		rc = -EROFS;
	} else if (to_set & FUSE_SET_ATTR_SIZE) {
		/* `echo x > file` truncates first: fine for ctl and config, not for reports. */
		bool writable = ino == INO_CTL ||
		                (ino >= INO_CONFIG0 && ino < INO_CONFIG0 + PFS_CFG_COUNT) ||
		                (INO_KIND(ino) == K_PVOLFILE && INO_SUB(ino) == PVOL_COLD);
		if (!writable)
			rc = -EACCES;
	} else if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		rc = -EPERM; /* the tree's own nodes keep their fixed modes */
	}
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	op_getattr(req, ino, NULL);
}

struct dir_list {
	fuse_req_t req;
	char *buf;
	size_t len, cap;
	int err;
	struct pfs_buf *names; /* set: the names, one a line, for the API (pfs_fuse_list_path) */
	struct open_link link; /* pfs_fuse.dirs while open (opendir) */
};

static void dir_free(struct pfs_fuse *f, struct dir_list *d)
{
	open_link_del(f, &f->dirs, &d->link);
	free(d->buf);
	free(d);
}

static void dl_add(struct dir_list *d, const char *name, fuse_ino_t ino, mode_t mode)
{
	struct stat st = {.st_ino = ino, .st_mode = mode};
	size_t need;

	if (d->names) {
		if (strcmp(name, ".") && strcmp(name, ".."))
			pfs_buf_printf(d->names, "%s\n", name);
		return;
	}
	need = fuse_add_direntry(d->req, NULL, 0, name, NULL, 0);
	if (d->err)
		return;
	if (d->len + need > d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 4096;
		while (cap < d->len + need)
			cap *= 2;
		char *n = realloc(d->buf, cap);
		if (!n) {
			d->err = ENOMEM;
			return;
		}
		d->buf = n;
		d->cap = cap;
	}
	fuse_add_direntry(d->req, d->buf + d->len, need, name, &st, (off_t)(d->len + need));
	d->len += need;
}

struct dl_vol_arg {
	struct dir_list *d;
	int kind;
};

static int dl_vol(void *arg, struct pfs_vol *v, const struct pfs_vol_info *i)
{
	struct dl_vol_arg *a = arg;
	mode_t mode = a->kind == K_VOL || a->kind == K_SNAP ? S_IFREG : S_IFDIR;

	(void)v;
	dl_add(a->d, i->name, INO_MAKE(a->kind, i->id, 0), mode);
	return 0;
}

/* The entries of directory INO, for readdir and for the API's listings. */
static void list_dir(struct pfs_fuse *f, fuse_ino_t ino, struct dir_list *d)
{
	dl_add(d, ".", ino, S_IFDIR);
	dl_add(d, "..", INO_ROOT, S_IFDIR);
	struct dl_vol_arg a = {d, 0};
	switch (ino) {
	case INO_ROOT:
		dl_add(d, "volumes", INO_VOLUMES, S_IFDIR);
		dl_add(d, "snapshots", INO_SNAPSHOTS, S_IFDIR);
		dl_add(d, ".pstorage", INO_PSTORAGE, S_IFDIR);
		break;
	case INO_PSTORAGE:
		dl_add(d, "ctl", INO_CTL, S_IFREG);
		for (unsigned i = 0; i < NREPORTS; i++)
			dl_add(d, reports[i].name, INO_REPORT0 + i, S_IFREG);
		dl_add(d, "config", INO_CONFIGDIR, S_IFDIR);
		dl_add(d, "flash", INO_FLASHDIR, S_IFDIR);
		dl_add(d, "cluster", INO_CLUSTERDIR, S_IFDIR);
		dl_add(d, "volumes", INO_PVOLSDIR, S_IFDIR);
		dl_add(d, "analytics", INO_ANALYTICSDIR, S_IFDIR);
		break;
	case INO_ANALYTICSDIR:
		for (unsigned i = 0; i < pfs_analytics_nfiles; i++)
			dl_add(d, pfs_analytics_files[i], INO_ANALYTICS0 + i, S_IFREG);
		break;
	case INO_CLUSTERDIR:
		for (unsigned i = 0; i < NCLUSTER; i++)
			dl_add(d, cluster_files[i].name, INO_CLUSTER0 + i, S_IFREG);
		break;
	case INO_FLASHDIR:
		for (unsigned i = 0; i < NFLASH; i++)
			dl_add(d, flash_files[i].name, INO_FLASH0 + i, S_IFREG);
		break;
	case INO_CONFIGDIR:
		for (unsigned i = 0; i < PFS_CFG_COUNT; i++)
			dl_add(d, pfs_config_names[i], INO_CONFIG0 + i, S_IFREG);
		break;
	case INO_VOLUMES:
	case INO_SNAPSHOTS:
	case INO_PVOLSDIR:
		a.kind = ino == INO_VOLUMES ? K_VOL : ino == INO_SNAPSHOTS ? K_SNAPDIR : K_PVOLDIR;
		pfs_vol_each(f->p, PFS_MAP_VOLUME, 0, dl_vol, &a);
		break;
	default:
		if (INO_KIND(ino) == K_SNAPDIR) {
			a.kind = K_SNAP;
			pfs_vol_each(f->p, PFS_MAP_SNAPSHOT, INO_ID(ino), dl_vol, &a);
		} else if (INO_KIND(ino) == K_PVOLDIR) {
			for (unsigned i = 0; i < PVOL_FILES; i++)
				dl_add(d, pvol_file_name(i), INO_MAKE(K_PVOLFILE, INO_ID(ino), i),
				       S_IFREG);
		}
	}
}

/* The listing is built at opendir, so a readdir that continues at an offset sees the same
 * entries even if volumes come and go meanwhile. */
static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs_fuse *f = ctx(req);
	struct dir_list *d = calloc(1, sizeof(*d));
	struct stat st;
	int rc = node_stat(f, ino, &st);

	if (!d || rc || !S_ISDIR(st.st_mode)) {
		free(d);
		fuse_reply_err(req, !d ? ENOMEM : rc ? -rc : ENOTDIR);
		return;
	}
	d->req = req;
	list_dir(f, ino, d);
	if (d->err) {
		rc = d->err;
		free(d->buf);
		free(d);
		fuse_reply_err(req, rc);
		return;
	}
	open_link_add(f, &f->dirs, &d->link);
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

/* Replies with a private copy: once the kernel has the reply it may send RELEASE, and another
 * thread frees the handle's buffer while this one is still returning from writev. */
static void reply_copy(fuse_req_t req, const char *data, size_t n)
{
	char *c = malloc(n ? n : 1);

	if (!c) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	memcpy(c, data, n);
	fuse_reply_buf(req, c, n);
	free(c);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	struct dir_list *d = (struct dir_list *)(uintptr_t)fi->fh;

	(void)ino;
	if ((size_t)off >= d->len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	/* Entries end at offsets we gave; send whole entries only. */
	size_t n = d->len - (size_t)off;
	if (n > size) {
		/* Walk entry boundaries: each fuse_dirent is 24 bytes + name, padded to 8. */
		size_t pos = (size_t)off, last = pos;
		while (pos < d->len) {
			uint32_t namelen;
			memcpy(&namelen, d->buf + pos + 16, sizeof(namelen));
			size_t ent = (24 + namelen + 7) & ~(size_t)7;
			if (pos + ent - (size_t)off > size)
				break;
			pos += ent;
			last = pos;
		}
		n = last - (size_t)off;
	}
	reply_copy(req, d->buf + off, n);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_list *d = (struct dir_list *)(uintptr_t)fi->fh;

	(void)ino;
	dir_free(ctx(req), d);
	fuse_reply_err(req, 0);
}

static int text_of(struct pfs_fuse *f, fuse_ino_t ino, struct pfs_buf *b)
{
	struct pfs *p = f->p;
	int rc = 0;

	if (ino == INO_CTL) {
		char msg[PFS_MSG_MAX];
		pfs_msg_get(p, msg, sizeof(msg));
		pfs_buf_printf(b, "%s\n", msg);
	} else if (ino >= INO_REPORT0 && ino < INO_REPORT0 + NREPORTS) {
		rc = pfs_report(p, reports[ino - INO_REPORT0].r, reports[ino - INO_REPORT0].json,
		                NULL, b);
	} else if (ino >= INO_FLASH0 && ino < INO_FLASH0 + NFLASH) {
		rc = pfs_report(p, flash_files[ino - INO_FLASH0].r,
		                flash_files[ino - INO_FLASH0].json, NULL, b);
	} else if (ino >= INO_CLUSTER0 && ino < INO_CLUSTER0 + NCLUSTER) {
		cluster_report(pfs_front_cluster(p), cluster_files[ino - INO_CLUSTER0].json, b);
	} else if (ino >= INO_CONFIG0 && ino < INO_CONFIG0 + PFS_CFG_COUNT) {
		char val[64];
		rc = pfs_config_get(p, pfs_config_names[ino - INO_CONFIG0], val, sizeof(val));
		pfs_buf_printf(b, "%s\n", val);
	} else if (ino >= INO_ANALYTICS0 && ino < INO_ANALYTICS0 + pfs_analytics_nfiles) {
		rc = pfs_analytics_file(p, (unsigned)(ino - INO_ANALYTICS0), b);
	} else if (INO_KIND(ino) == K_PVOLFILE) {
		struct pfs_vol *v = vol_of(p, ino, K_VOL);
		unsigned i = INO_SUB(ino);
		if (!v)
			return -ENOENT;
		if (i < 2) {
			rc = pfs_report(p, PFS_REPORT_VOLUME, i == 1, v, b);
		} else if (i == PVOL_COLD) {
			char val[32];
			pfs_tier_get(p, v, val, sizeof(val));
			pfs_buf_printf(b, "%s\n", val);
		} else
			rc = pfs_report_volume_value(p, v, pfs_volume_values[i - 2], b);
		pfs_vol_unref(v);
	} else {
		rc = -EISDIR;
	}
	return rc ? rc : b->err;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs_fuse *f = ctx(req);
	bool wr = (fi->flags & O_ACCMODE) != O_RDONLY;
	struct fh *h = calloc(1, sizeof(*h));
	int rc = 0;

	if (!h) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (INO_KIND(ino) == K_VOL || INO_KIND(ino) == K_SNAP) {
		h->kind = FH_VOL;
		h->v = vol_of(f->p, ino, INO_KIND(ino));
		if (!h->v)
			rc = -ENOENT;
		else if (wr && (INO_KIND(ino) == K_SNAP || pfs_readonly(f->p)))
			rc = INO_KIND(ino) == K_SNAP ? -EACCES : -EROFS;
		/* An O_DIRECT opener (fio, qemu cache=none, databases) never uses the page cache:
		 * FOPEN_DIRECT_IO sends its I/O straight here. Without it the kernel's cached read
		 * path revalidates the attributes first, and a volume's attributes never stay
		 * valid (timeout 0, node_timeout), so every read cost a GETATTR round trip too:
		 * two requests per 4 KiB read. Others still see changes through that
		 * revalidation; ctl changes also invalidate the inode (inval_vol). */
		if (!rc && (fi->flags & O_DIRECT))
			fi->direct_io = 1;
	} else if (ino == INO_CTL) {
		h->kind = FH_CTL;
		fi->direct_io = 1;
		fi->nonseekable = 0;
	} else if (ino >= INO_CONFIG0 && ino < INO_CONFIG0 + PFS_CFG_COUNT) {
		h->kind = FH_CONFIG;
		h->key = (int)(ino - INO_CONFIG0);
		fi->direct_io = 1;
		if (!wr)
			rc = text_of(f, ino, &h->text);
	} else if (INO_KIND(ino) == K_PVOLFILE && INO_SUB(ino) == PVOL_COLD && wr) {
		h->kind = FH_VOLSET;
		fi->direct_io = 1;
		h->v = vol_of(f->p, ino, K_VOL);
		if (!h->v)
			rc = -ENOENT;
	} else {
		struct stat st;
		h->kind = FH_TEXT;
		fi->direct_io = 1;
		rc = node_stat(f, ino, &st);
		if (!rc && S_ISDIR(st.st_mode))
			rc = -EISDIR;
		else if (!rc && wr)
			rc = -EACCES; /* root bypasses the mode bits; reports are read-only */
		else if (!rc)
			rc = text_of(f, ino, &h->text); /* a snapshot of the report at open */
	}
	if (rc) {
		if (h->v)
			pfs_vol_unref(h->v);
		pfs_buf_free(&h->text);
		free(h);
		fuse_reply_err(req, -rc);
		return;
	}
	fh_link(f, h);
	fi->fh = (uintptr_t)h;
	fuse_reply_open(req, fi);
}

/* open(O_CREAT) and mknod in volumes/: an empty volume that writes and truncate grow. It starts
 * 0600 and owned by its creator, whatever mode was asked, as disk images are kept. */
static int create_volume(struct pfs_fuse *f, fuse_req_t req, const char *name, struct pfs_vol **out)
{
	const struct fuse_ctx *fc = fuse_req_ctx(req);
	int rc = pfs_change_apply(
	    f->p,
	    &(struct pfs_change){.kind = PFS_CHANGE_VOL_CREATE, .name = name, .created = out});

	if (rc || !fc || (fc->uid == 0 && fc->gid == 0))
		return rc;
	struct pfs_change c = {.kind = PFS_CHANGE_SETATTR, .vol = *out};
	c.attr.mask = PFS_ATTR_UID | PFS_ATTR_GID;
	c.attr.uid = fc->uid;
	c.attr.gid = fc->gid;
	return pfs_change_apply(f->p, &c);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct pfs_fuse *f = ctx(req);
	struct pfs_vol *v = NULL;
	struct fuse_entry_param e;
	struct fh *h;
	int rc;

	(void)mode;
	if (parent != INO_VOLUMES) {
		fuse_reply_err(req, parent == INO_ROOT || INO_KIND(parent) ? EPERM : EACCES);
		return;
	}
	rc = create_volume(f, req, name, &v);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		pfs_vol_unref(v);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	h->kind = FH_VOL;
	h->v = v;
	memset(&e, 0, sizeof(e));
	e.ino = INO_MAKE(K_VOL, vol_id(v), 0);
	e.generation = 1;
	node_stat(f, e.ino, &e.attr);
	fh_link(f, h);
	fi->fh = (uintptr_t)h;
	fuse_reply_create(req, &e, fi);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	struct pfs_fuse *f = ctx(req);
	struct pfs_vol *v = NULL;
	int rc;

	(void)rdev;
	if (parent != INO_VOLUMES || !S_ISREG(mode)) {
		fuse_reply_err(req, EPERM);
		return;
	}
	rc = create_volume(f, req, name, &v);
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_ino_t ino = INO_MAKE(K_VOL, vol_id(v), 0);
	pfs_vol_unref(v);
	reply_entry(req, f, ino);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	fh_free(ctx(req), h);
	fuse_reply_err(req, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	struct pfs_fuse *f = ctx(req);
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;

	if (h->kind == FH_VOL) {
		char *buf = malloc(size ? size : 1);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		ssize_t n = pfs_vol_read(f->p, h->v, buf, size, (uint64_t)off);
		/* The kernel takes a short read for the end of the file: it zero-fills the rest of
		 * the request in the page cache and may shrink i_size. pfs_vol_read also stops
		 * short before a block it cannot read (EIO), which must fail the whole request,
		 * or that block would read as zeros: read on from there to tell which it was. */
		while (n >= 0 && (size_t)n < size) {
			ssize_t m = pfs_vol_read(f->p, h->v, buf + n, size - (size_t)n,
			                         (uint64_t)off + (uint64_t)n);
			if (m <= 0) {
				n = m < 0 ? m : n;
				break;
			}
			n += m;
		}
		if (n < 0)
			fuse_reply_err(req, (int)-n);
		else
			fuse_reply_buf(req, buf, (size_t)n);
		free(buf);
		return;
	}
	if (h->kind == FH_CTL) {
		/* ctl reads the latest result each time it is opened and read from 0. */
		if (off == 0) {
			pfs_buf_free(&h->text);
			text_of(f, ino, &h->text);
		}
	}
	if (h->text.err) {
		fuse_reply_err(req, -h->text.err);
		return;
	}
	if ((size_t)off >= h->text.len) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	size_t n = h->text.len - (size_t)off;
	reply_copy(req, h->text.data + off, n < size ? n : size);
}

/* Volume invalidation after ctl changes a volume behind the kernel's page cache (restore,
 * resize): done after the reply, so the kernel is not waiting on us. */
struct inval_arg {
	struct pfs_fuse *f;
};

static int inval_vol(void *arg, struct pfs_vol *v, const struct pfs_vol_info *i)
{
	struct inval_arg *a = arg;

	fuse_lowlevel_notify_inval_inode(a->f->se, INO_MAKE(K_VOL, i->id, 0), 0, 0);
	return 0;
}

static void inval_vols(struct pfs_fuse *f)
{
	struct inval_arg a = {f};

	if (f->se)
		pfs_vol_each(f->p, PFS_MAP_VOLUME, 0, inval_vol, &a);
}

/* The FUSE workers run SCHED_BATCH (pfs_daemon.c). A ctl command or a config key may start a
 * thread (scrub, tiering, a link's), which inherits the policy of the thread that creates it:
 * they run as an ordinary thread. Returns what to give ordinary_thread_end. */
static int ordinary_thread_begin(void)
{
	struct sched_param sp = {0};
	int policy = sched_getscheduler(0);

	if (policy == SCHED_BATCH && sched_setscheduler(0, SCHED_OTHER, &sp))
		return SCHED_OTHER; /* left as it was: nothing to restore */
	return policy;
}

static void ordinary_thread_end(int policy)
{
	struct sched_param sp = {0};

	if (policy == SCHED_BATCH)
		sched_setscheduler(0, SCHED_BATCH, &sp);
}

int pfs_fuse_ctl(struct pfs_fuse *f, const char *line)
{
	int policy = ordinary_thread_begin();
	int rc = pfs_ctl_exec(f->p, line);

	ordinary_thread_end(policy);
	if (!rc)
		inval_vols(f);
	return rc;
}

/* Counts pending writes; only the way back to none takes the lock (op_destroy waits for it). */
static void pending_add(struct pfs_fuse *f, int n)
{
	if (atomic_fetch_add(&f->pending, n) + n == 0) {
		pthread_mutex_lock(&f->pending_lock);
		pthread_cond_broadcast(&f->pending_cond);
		pthread_mutex_unlock(&f->pending_lock);
	}
}

/* The late answer of a write the store made pending, from whichever thread decided it (the
 * low-level API lets any thread reply). */
static void write_done(void *arg, int rc, uint64_t done)
{
	fuse_req_t req = arg;
	struct pfs_fuse *f = ctx(req);

	if (rc)
		fuse_reply_err(req, -rc);
	else
		fuse_reply_write(req, (size_t)done);
	pending_add(f, -1);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
	struct pfs_fuse *f = ctx(req);
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	int rc;

	(void)ino;
	switch (h->kind) {
	case FH_VOL: {
		/* The answer may come later (a stretched pod's write, once the other box has it),
		 * and this thread serves the next request meanwhile; O_SYNC writes still sync
		 * here after the write is complete. */
		bool later = !(fi->flags & (O_SYNC | O_DSYNC));
		struct pfs_change c = {.kind = PFS_CHANGE_WRITE,
		                       .vol = h->v,
		                       .buf = buf,
		                       .len = size,
		                       .off = (uint64_t)off,
		                       .on_done = later ? write_done : NULL,
		                       .on_done_arg = req};
		rc = pfs_change_apply(f->p, &c);
		if (rc == PFS_CHANGE_PENDING) {
			pending_add(f, 1); /* write_done answers it and counts it off */
			return;
		}
		if (rc) {
			fuse_reply_err(req, -rc);
			return;
		}
		if ((fi->flags & (O_SYNC | O_DSYNC)) && pfs_sync_vol(f->p, h->v)) {
			fuse_reply_err(req, EIO);
			return;
		}
		fuse_reply_write(req, (size_t)c.done);
		return;
	}
	case FH_CTL: {
		int policy = ordinary_thread_begin();

		rc = pfs_ctl_write(f->p, buf, size);
		ordinary_thread_end(policy);
		if (rc)
			fuse_reply_err(req, -rc);
		else
			fuse_reply_write(req, size);
		if (!rc)
			inval_vols(f);
		return;
	}
	case FH_CONFIG: {
		char val[128];
		int policy;
		size_t n = size < sizeof(val) - 1 ? size : sizeof(val) - 1;
		memcpy(val, buf, n);
		val[n] = '\0';
		while (n && (val[n - 1] == '\n' || val[n - 1] == ' ' || val[n - 1] == '\t'))
			val[--n] = '\0';
		if (size >= sizeof(val) - 1) {
			fuse_reply_err(req, EINVAL);
			return;
		}
		policy = ordinary_thread_begin();
		rc = pfs_change_apply(f->p, &(struct pfs_change){.kind = PFS_CHANGE_CONFIG_SET,
		                                                 .name = pfs_config_names[h->key],
		                                                 .value = val});
		ordinary_thread_end(policy);
		if (rc) {
			char msg[PFS_MSG_MAX];
			pfs_msg_get(f->p, msg, sizeof(msg));
			pfs_logl(LOG_WARNING, "pstorfs: config %s=%s refused: %s",
			         pfs_config_names[h->key], val, msg);
			fuse_reply_err(req, -rc);
		} else {
			fuse_reply_write(req, size);
		}
		return;
	}
	case FH_VOLSET: {
		/* The same as `volume set NAME cold_compression VALUE`; the reason of a refusal
		 * is in ctl. */
		char val[64];
		struct pfs_vol_info i;
		size_t n = size < sizeof(val) - 1 ? size : sizeof(val) - 1;
		memcpy(val, buf, n);
		val[n] = '\0';
		while (n && (val[n - 1] == '\n' || val[n - 1] == ' ' || val[n - 1] == '\t'))
			val[--n] = '\0';
		if (size >= sizeof(val) - 1) {
			pfs_set_msg(f->p, "error: cold_compression: value too long");
			fuse_reply_err(req, EINVAL);
			return;
		}
		pfs_vol_get_info(h->v, &i);
		rc = i.gone ? -ENOENT : pfs_tier_set(f->p, i.name, val);
		if (rc) {
			char msg[PFS_MSG_MAX];
			pfs_msg_get(f->p, msg, sizeof(msg));
			pfs_set_msg(f->p, "error: volume %s cold_compression %s: %s", i.name, val,
			            msg);
			fuse_reply_err(req, -rc);
		} else {
			fuse_reply_write(req, size);
		}
		return;
	}
	default:
		fuse_reply_err(req, EACCES);
	}
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	(void)datasync;
	/* The roll-forward log makes this one group-committed pair of device flushes; the
	 * background checkpoint moves the changes into SQLite later. */
	fuse_reply_err(req, -pfs_sync_vol(ctx(req)->p, h && h->kind == FH_VOL ? h->v : NULL));
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pfs_fuse *f = ctx(req);
	int rc;

	if (parent == INO_VOLUMES) {
		rc = pfs_change_apply(
		    f->p, &(struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = name});
	} else if (INO_KIND(parent) == K_SNAPDIR) {
		struct pfs_vol *v = pfs_vol_by_id(f->p, INO_ID(parent));
		if (!v) {
			rc = -ENOENT;
		} else {
			struct pfs_vol_info i;
			pfs_vol_get_info(v, &i);
			pfs_vol_unref(v);
			rc = pfs_change_apply(f->p,
			                      &(struct pfs_change){.kind = PFS_CHANGE_SNAP_DELETE,
			                                           .name = i.name,
			                                           .snap = name});
		}
	} else {
		rc = -EPERM;
	}
	fuse_reply_err(req, -rc);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
	struct pfs_fuse *f = ctx(req);
	int rc;

	if (parent != INO_VOLUMES || newparent != INO_VOLUMES) {
		fuse_reply_err(req, parent == newparent ? EPERM : EXDEV);
		return;
	}
	if (flags & RENAME_EXCHANGE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	rc = pfs_change_apply(
	    f->p,
	    &(struct pfs_change){.kind = PFS_CHANGE_VOL_RENAME, .name = name, .new_name = newname});
	fuse_reply_err(req, -rc);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct pfs_fuse *f = ctx(req);
	struct ftl_stats fs;
	struct statvfs st;
	uint32_t bs = pfs_block_size(f->p);

	(void)ino;
	pfs_flash_space(f->p, &fs);
	memset(&st, 0, sizeof(st));
	st.f_bsize = bs;
	st.f_frsize = bs;
	st.f_blocks = fs.capacity_bytes / bs;
	st.f_bfree = st.f_bavail = fs.free_bytes / bs;
	st.f_files = 1u << 20;
	st.f_ffree = st.f_favail = st.f_files;
	st.f_namemax = PFS_NAME_MAX;
	fuse_reply_statfs(req, &st);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
	struct pfs_fuse *f = ctx(req);
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;
	int rc = 0;

	(void)ino;
	if (h->kind != FH_VOL) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if (mode & ~(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
		fuse_reply_err(req, EOPNOTSUPP);
		return;
	}
	if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE))
		rc = pfs_change_apply(f->p, &(struct pfs_change){.kind = PFS_CHANGE_PUNCH,
		                                                 .vol = h->v,
		                                                 .off = (uint64_t)off,
		                                                 .len = (uint64_t)len});
	/* Thin volumes allocate on write; plain fallocate only grows the size. */
	struct pfs_vol_info i;
	pfs_vol_get_info(h->v, &i);
	if (!rc && !(mode & FALLOC_FL_KEEP_SIZE) && (uint64_t)(off + len) > i.size)
		rc = pfs_change_apply(f->p, &(struct pfs_change){.kind = PFS_CHANGE_RESIZE,
		                                                 .vol = h->v,
		                                                 .size = (uint64_t)(off + len)});
	fuse_reply_err(req, rc == -ENOSPC ? EFBIG : -rc);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
	struct pfs_fuse *f = ctx(req);
	struct fh *h = (struct fh *)(uintptr_t)fi->fh;

	(void)ino;
	if (h->kind != FH_VOL || (whence != SEEK_DATA && whence != SEEK_HOLE)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	int64_t r = pfs_vol_seek(f->p, h->v, off, whence);
	if (r < 0)
		fuse_reply_err(req, (int)-r);
	else
		fuse_reply_lseek(req, r);
}

static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
                               struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
                               struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct pfs_fuse *f = ctx(req);
	struct fh *in = (struct fh *)(uintptr_t)fi_in->fh,
	          *out = (struct fh *)(uintptr_t)fi_out->fh;
	uint32_t bs = pfs_block_size(f->p);
	ssize_t n;

	(void)ino_in;
	(void)ino_out;
	(void)flags;
	if (in->kind != FH_VOL || out->kind != FH_VOL) {
		fuse_reply_err(req, EXDEV);
		return;
	}
	if (vol_kind(out->v) != PFS_MAP_VOLUME) {
		fuse_reply_err(req, EBADF);
		return;
	}
	if ((uint64_t)off_in % bs == 0 && (uint64_t)off_out % bs == 0) {
		/* Metadata only: the destination shares the source's blocks. */
		struct pfs_change c = {.kind = PFS_CHANGE_CLONE_RANGE,
		                       .src = in->v,
		                       .src_off = (uint64_t)off_in,
		                       .vol = out->v,
		                       .off = (uint64_t)off_out,
		                       .len = len};
		int rc = pfs_change_apply(f->p, &c);
		n = rc ? rc : (ssize_t)c.done;
		if (n != 0) {
			if (n < 0)
				fuse_reply_err(req, (int)-n);
			else
				fuse_reply_write(req, (size_t)n);
			return;
		}
	}
	/* Unaligned: copy through a buffer, at most 1 MiB a call (callers loop). */
	size_t chunk = len < (1u << 20) ? len : (1u << 20);
	char *buf = malloc(chunk ? chunk : 1);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pfs_vol_read(f->p, in->v, buf, chunk, (uint64_t)off_in);
	if (n > 0) {
		struct pfs_change c = {.kind = PFS_CHANGE_WRITE,
		                       .vol = out->v,
		                       .buf = buf,
		                       .len = (size_t)n,
		                       .off = (uint64_t)off_out};
		int rc = pfs_change_apply(f->p, &c);
		n = rc ? rc : (ssize_t)c.done;
	}
	free(buf);
	if (n < 0)
		fuse_reply_err(req, (int)-n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Same settings as the benchmark's passthrough daemon (tests/bench/fs). */
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
	/* Asynchronous direct I/O (fio's libaio, qemu) reaches the daemon as background
	 * requests, of which the kernel lets 12 be in flight by default: too few to cover the
	 * latency of a write that waits for the other box of a stretched pod. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	conn->want &=
	    ~(unsigned)(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
}

static void op_destroy(void *userdata)
{
	struct pfs_fuse *f = userdata;

	/* Writes still waiting for the other box are answered before the session goes (the
	 * cluster decides each: confirmed, or the peer declared gone). */
	pthread_mutex_lock(&f->pending_lock);
	while (atomic_load(&f->pending))
		pthread_cond_wait(&f->pending_cond, &f->pending_lock);
	pthread_mutex_unlock(&f->pending_lock);

	/* Unmount: everything acknowledged becomes durable before the daemon exits. */
	int rc = pfs_commit(f->p);
	if (rc)
		pfs_logl(LOG_ERR, "pstorfs: commit at unmount failed: %d", rc);
	/* No request comes after this: files still open are released here. */
	while (f->fhs)
		fh_free(f, OPEN_OF(f->fhs, struct fh));
	while (f->dirs)
		dir_free(f, OPEN_OF(f->dirs, struct dir_list));
}

static const struct fuse_lowlevel_ops pfs_fuse_ops = {
    .init = op_init,
    .destroy = op_destroy,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .setattr = op_setattr,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .releasedir = op_releasedir,
    .open = op_open,
    .create = op_create,
    .mknod = op_mknod,
    .release = op_release,
    .read = op_read,
    .write = op_write,
    .flush = op_flush,
    .fsync = op_fsync,
    .unlink = op_unlink,
    .rename = op_rename,
    .statfs = op_statfs,
    .fallocate = op_fallocate,
    .lseek = op_lseek,
    .copy_file_range = op_copy_file_range,
};

struct pfs_fuse *pfs_fuse_new(struct pfs *p)
{
	struct pfs_fuse *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->p = p;
	f->uid = getuid();
	f->gid = getgid();
	pthread_mutex_init(&f->pending_lock, NULL);
	pthread_cond_init(&f->pending_cond, NULL);
	pthread_mutex_init(&f->fh_lock, NULL);
	return f;
}

struct fuse_session *pfs_fuse_session(struct pfs_fuse *f, struct fuse_args *args)
{
	f->se = fuse_session_new(args, &pfs_fuse_ops, sizeof(pfs_fuse_ops), f);
	return f->se;
}

void pfs_fuse_free(struct pfs_fuse *f)
{
	if (!f)
		return;
	pthread_mutex_destroy(&f->pending_lock);
	pthread_cond_destroy(&f->pending_cond);
	pthread_mutex_destroy(&f->fh_lock);
	free(f);
}

/* PATH ("a/b/c", relative to the mount root) to its inode, by the lookups the kernel makes. */
static int path_ino(struct pfs_fuse *f, const char *path, fuse_ino_t *out)
{
	char name[PFS_NAME_MAX + 16];
	fuse_ino_t ino = INO_ROOT;

	while (*path) {
		size_t n = strcspn(path, "/");
		if (n == 0 || n >= sizeof(name))
			return -ENOENT;
		memcpy(name, path, n);
		name[n] = '\0';
		int rc = node_lookup(f, ino, name, &ino);
		if (rc)
			return rc;
		path += n + (path[n] == '/');
	}
	*out = ino;
	return 0;
}

int pfs_fuse_read_path(struct pfs_fuse *f, const char *path, struct pfs_buf *b)
{
	fuse_ino_t ino;
	int rc = path_ino(f, path, &ino);

	if (rc)
		return rc;
	if (ino == INO_CTL || INO_KIND(ino) == K_VOL || INO_KIND(ino) == K_SNAP)
		return -EACCES; /* data and the ctl file are not reports */
	return text_of(f, ino, b);
}

int pfs_fuse_list_path(struct pfs_fuse *f, const char *path, struct pfs_buf *b)
{
	struct dir_list d = {.names = b};
	struct stat st;
	fuse_ino_t ino;
	int rc = path_ino(f, path, &ino);

	if (!rc)
		rc = node_stat(f, ino, &st);
	if (rc)
		return rc;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	list_dir(f, ino, &d);
	return b->err;
}
