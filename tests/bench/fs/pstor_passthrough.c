/* tests/bench/fs/pstor_passthrough.c - the "FUSE ceiling" of the file-system benchmark: a minimal
 * multi-threaded low-level passthrough daemon with exactly the libfuse settings pstorfs uses.
 * It must not do anything pstorfs could not (no splice, no writeback cache, no passthrough fds).
 *
 * Inodes follow passthrough_ll: one O_PATH fd per looked-up inode, the fuse_ino_t is the pointer,
 * a list keyed by (st_dev, st_ino) under one mutex. Open flags are passed to the backing file
 * unchanged, O_DIRECT included (what passthrough_hp does), so direct I/O stays direct to the
 * underlying file system; write payloads sit 80 bytes into libfuse's request buffer, so an
 * O_DIRECT write goes through an aligned per-thread bounce buffer.
 */
#define FUSE_USE_VERSION 314

#include <fuse_lowlevel.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

/* The libfuse settings pstorfs uses: keep them equal, or the ceiling is not one. */
#define PT_MAX_IO           (1u << 20) /* conn->max_write, conn->max_readahead */
#define PT_TIMEOUT          1.0        /* attr and entry timeout, seconds */
#define PT_CLONE_FD         1
#define PT_MAX_IDLE_THREADS 32
#define PT_MAX_THREADS      32 /* libfuse 3.14 defaults to 10 when not set */
#define PT_DIRECT_ALIGN     4096

_Static_assert(sizeof(fuse_ino_t) >= sizeof(uintptr_t), "fuse_ino_t must hold a pointer");

struct pt_inode {
	struct pt_inode *next, *prev; /* pt_fs.lock */
	int fd;                       /* O_PATH */
	dev_t dev;
	ino_t ino;
	uint64_t nlookup; /* pt_fs.lock */
};

struct pt_fs {
	pthread_mutex_t lock;
	struct pt_inode root; /* also the list head; never freed */
	pthread_key_t bounce_key;
};

struct pt_dir {
	DIR *dp;
	struct dirent *entry; /* read but not yet returned */
	off_t offset;
};

static struct pt_fs *pt_fs(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct pt_inode *pt_inode(fuse_req_t req, fuse_ino_t ino)
{
	if (ino == FUSE_ROOT_ID)
		return &pt_fs(req)->root;
	return (struct pt_inode *)(uintptr_t)ino;
}

static void pt_proc_path(char *buf, size_t len, int fd)
{
	snprintf(buf, len, "/proc/self/fd/%d", fd);
}

static int pt_do_lookup(fuse_req_t req, fuse_ino_t parent, const char *name,
                        struct fuse_entry_param *e)
{
	struct pt_fs *fs = pt_fs(req);
	struct pt_inode *in, *it;
	int fd;

	memset(e, 0, sizeof(*e));
	e->attr_timeout = PT_TIMEOUT;
	e->entry_timeout = PT_TIMEOUT;
	fd = openat(pt_inode(req, parent)->fd, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno;
	if (fstatat(fd, "", &e->attr, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int err = errno;
		close(fd);
		return err;
	}
	pthread_mutex_lock(&fs->lock);
	for (in = fs->root.next; in != &fs->root; in = in->next)
		if (in->ino == e->attr.st_ino && in->dev == e->attr.st_dev)
			break;
	if (in != &fs->root) {
		in->nlookup++;
		pthread_mutex_unlock(&fs->lock);
		close(fd);
	} else {
		in = calloc(1, sizeof(*in));
		if (!in) {
			pthread_mutex_unlock(&fs->lock);
			close(fd);
			return ENOMEM;
		}
		in->fd = fd;
		in->dev = e->attr.st_dev;
		in->ino = e->attr.st_ino;
		in->nlookup = 1;
		it = fs->root.prev;
		in->next = &fs->root;
		in->prev = it;
		it->next = in;
		fs->root.prev = in;
		pthread_mutex_unlock(&fs->lock);
	}
	e->ino = (uintptr_t)in;
	return 0;
}

static void pt_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;
	int err = pt_do_lookup(req, parent, name, &e);

	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void pt_unref(fuse_req_t req, fuse_ino_t ino, uint64_t n)
{
	struct pt_fs *fs = pt_fs(req);
	struct pt_inode *in = pt_inode(req, ino);

	if (in == &fs->root)
		return;
	pthread_mutex_lock(&fs->lock);
	in->nlookup -= n < in->nlookup ? n : in->nlookup;
	if (in->nlookup) {
		pthread_mutex_unlock(&fs->lock);
		return;
	}
	in->prev->next = in->next;
	in->next->prev = in->prev;
	pthread_mutex_unlock(&fs->lock);
	close(in->fd);
	free(in);
}

static void pt_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	pt_unref(req, ino, nlookup);
	fuse_reply_none(req);
}

static void pt_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		pt_unref(req, forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void pt_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	if (fstatat(pt_inode(req, ino)->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_attr(req, &st, PT_TIMEOUT);
}

static void pt_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int valid,
                       struct fuse_file_info *fi)
{
	int ifd = pt_inode(req, ino)->fd;
	char path[64];
	int res = 0;

	pt_proc_path(path, sizeof(path), ifd);
	if (valid & FUSE_SET_ATTR_MODE)
		res = fi ? fchmod(fi->fh, attr->st_mode) : chmod(path, attr->st_mode);
	if (!res && (valid & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))) {
		uid_t uid = (valid & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t gid = (valid & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		res = fchownat(ifd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
	}
	if (!res && (valid & FUSE_SET_ATTR_SIZE))
		res = fi ? ftruncate(fi->fh, attr->st_size) : truncate(path, attr->st_size);
	if (!res && (valid & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME))) {
		struct timespec tv[2] = {{.tv_nsec = UTIME_OMIT}, {.tv_nsec = UTIME_OMIT}};

		if (valid & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (valid & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (valid & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		res = fi ? futimens(fi->fh, tv) : utimensat(AT_FDCWD, path, tv, 0);
	}
	if (res)
		fuse_reply_err(req, errno);
	else
		pt_getattr(req, ino, fi);
}

static void pt_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct fuse_entry_param e;
	int err = 0;

	if (mkdirat(pt_inode(req, parent)->fd, name, mode) < 0)
		err = errno;
	if (!err)
		err = pt_do_lookup(req, parent, name, &e);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_entry(req, &e);
}

static void pt_remove(fuse_req_t req, fuse_ino_t parent, const char *name, int flags)
{
	if (unlinkat(pt_inode(req, parent)->fd, name, flags) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, 0);
}

static void pt_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	pt_remove(req, parent, name, 0);
}

static void pt_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	pt_remove(req, parent, name, AT_REMOVEDIR);
}

static void pt_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
	struct fuse_entry_param e;
	int fd, err;

	fd = openat(pt_inode(req, parent)->fd, name,
	            (fi->flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW, mode);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	err = pt_do_lookup(req, parent, name, &e);
	if (err) {
		close(fd);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = fd;
	fuse_reply_create(req, &e, fi);
}

static void pt_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	char path[64];
	int fd;

	pt_proc_path(path, sizeof(path), pt_inode(req, ino)->fd);
	fd = open(path, (fi->flags | O_CLOEXEC) & ~O_NOFOLLOW);
	if (fd < 0) {
		fuse_reply_err(req, errno);
		return;
	}
	fi->fh = fd;
	fuse_reply_open(req, fi);
}

static void pt_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
	/* Without splice libfuse reads the fd into a page-aligned buffer: fine for O_DIRECT. */
	struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);

	buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	buf.buf[0].fd = fi->fh;
	buf.buf[0].pos = off;
	fuse_reply_data(req, &buf, FUSE_BUF_NO_SPLICE);
}

static void *pt_bounce(struct pt_fs *fs)
{
	void *b = pthread_getspecific(fs->bounce_key);

	if (b)
		return b;
	if (posix_memalign(&b, PT_DIRECT_ALIGN, PT_MAX_IO))
		return NULL;
	if (pthread_setspecific(fs->bounce_key, b)) {
		free(b);
		return NULL;
	}
	return b;
}

static void pt_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
                         struct fuse_file_info *fi)
{
	size_t size = fuse_buf_size(in);
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(size);
	ssize_t res;

	out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
	out.buf[0].fd = fi->fh;
	out.buf[0].pos = off;
	if ((fi->flags & O_DIRECT) && size <= PT_MAX_IO) {
		struct fuse_bufvec mem = FUSE_BUFVEC_INIT(size);

		mem.buf[0].mem = pt_bounce(pt_fs(req));
		if (!mem.buf[0].mem) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
		res = fuse_buf_copy(&mem, in, FUSE_BUF_NO_SPLICE);
		if (res >= 0) {
			mem.buf[0].size = res;
			res = fuse_buf_copy(&out, &mem, FUSE_BUF_NO_SPLICE);
		}
	} else {
		res = fuse_buf_copy(&out, in, FUSE_BUF_NO_SPLICE);
	}
	if (res < 0)
		fuse_reply_err(req, (int)-res);
	else
		fuse_reply_write(req, res);
}

static void pt_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	/* close(dup()) reports deferred errors of the backing file, as passthrough_hp does. */
	int fd = dup(fi->fh);

	if (fd < 0 || close(fd) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_err(req, 0);
}

static void pt_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	close(fi->fh);
	fuse_reply_err(req, 0);
}

static void pt_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int res = datasync ? fdatasync(fi->fh) : fsync(fi->fh);

	fuse_reply_err(req, res < 0 ? errno : 0);
}

static void pt_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
                         struct fuse_file_info *fi)
{
	fuse_reply_err(req, fallocate(fi->fh, mode, off, len) < 0 ? errno : 0);
}

static void pt_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct statvfs st;

	if (fstatvfs(pt_inode(req, ino)->fd, &st) < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_statfs(req, &st);
}

static void pt_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pt_dir *d = calloc(1, sizeof(*d));
	int fd, err;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	fd = openat(pt_inode(req, ino)->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || !(d->dp = fdopendir(fd))) {
		err = errno;
		if (fd >= 0)
			close(fd);
		free(d);
		fuse_reply_err(req, err);
		return;
	}
	fi->fh = (uintptr_t)d;
	fuse_reply_open(req, fi);
}

static void pt_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
	struct pt_dir *d = (struct pt_dir *)(uintptr_t)fi->fh;
	char *buf = malloc(size);
	size_t used = 0;
	int err = 0;

	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (off != d->offset) {
		seekdir(d->dp, off);
		d->entry = NULL;
		d->offset = off;
	}
	for (;;) {
		struct stat st = {0};
		size_t n;

		if (!d->entry) {
			errno = 0;
			d->entry = readdir(d->dp);
			if (!d->entry) {
				err = errno;
				break;
			}
		}
		st.st_ino = d->entry->d_ino;
		st.st_mode = (mode_t)d->entry->d_type << 12;
		n = fuse_add_direntry(req, buf + used, size - used, d->entry->d_name, &st,
		                      d->entry->d_off);
		if (n > size - used)
			break;
		used += n;
		d->offset = d->entry->d_off;
		d->entry = NULL;
	}
	if (err && !used)
		fuse_reply_err(req, err);
	else
		fuse_reply_buf(req, buf, used);
	free(buf);
}

static void pt_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pt_dir *d = (struct pt_dir *)(uintptr_t)fi->fh;

	closedir(d->dp);
	free(d);
	fuse_reply_err(req, 0);
}

static void pt_init(void *userdata, struct fuse_conn_info *conn)
{
	conn->max_write = PT_MAX_IO;
	conn->max_readahead = PT_MAX_IO;
	/* libfuse turns splice reads on by default when write_buf exists: pstorfs does not splice.
	 */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
	                FUSE_CAP_WRITEBACK_CACHE);
	conn->want |=
	    conn->capable & (FUSE_CAP_ASYNC_DIO | FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS);
	/* As pstorfs (fs/pfs_fuse.c op_init): asynchronous direct I/O arrives as background
	 * requests, of which the kernel lets only 12 be in flight by default, so fio's qd32 would
	 * run at qd12 here and at qd32 on pstorfs. */
	conn->max_background = 64;
	conn->congestion_threshold = 48;
}

static const struct fuse_lowlevel_ops pt_ops = {
    .init = pt_init,
    .lookup = pt_lookup,
    .forget = pt_forget,
    .forget_multi = pt_forget_multi,
    .getattr = pt_getattr,
    .setattr = pt_setattr,
    .mkdir = pt_mkdir,
    .unlink = pt_unlink,
    .rmdir = pt_rmdir,
    .create = pt_create,
    .open = pt_open,
    .read = pt_read,
    .write_buf = pt_write_buf,
    .flush = pt_flush,
    .release = pt_release,
    .fsync = pt_fsync,
    .fallocate = pt_fallocate,
    .statfs = pt_statfs,
    .opendir = pt_opendir,
    .readdir = pt_readdir,
    .releasedir = pt_releasedir,
};

/* fsname is one mount option: escape the separators libfuse's option parser knows. */
static char *pt_mount_opts(const char *src)
{
	char *o = malloc(strlen(src) * 2 + 64), *p;

	if (!o)
		return NULL;
	p = o + sprintf(o, "fsname=");
	for (; *src; src++) {
		if (*src == ',' || *src == '\\')
			*p++ = '\\';
		*p++ = *src;
	}
	strcpy(p, ",subtype=pstor-passthrough");
	return o;
}

int main(int argc, char *argv[])
{
	const char *src = NULL, *mnt = NULL;
	int foreground = 0, debug = 0, ret = 1;
	struct pt_fs fs = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se;
	char *opts, rsrc[PATH_MAX];
	struct stat st;

	int bad = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-f"))
			foreground = 1;
		else if (!strcmp(argv[i], "-d"))
			foreground = debug = 1;
		else if (argv[i][0] != '-' && !src)
			src = argv[i];
		else if (argv[i][0] != '-' && !mnt)
			mnt = argv[i];
		else
			bad = 1;
	}
	if (bad || !src || !mnt) {
		fprintf(stderr, "usage: %s SOURCE_DIR MOUNTPOINT [-f] [-d]\n", argv[0]);
		return 2;
	}
	if (!realpath(src, rsrc) ||
	    (fs.root.fd = open(rsrc, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0 ||
	    fstat(fs.root.fd, &st) < 0) {
		fprintf(stderr, "pstor-passthrough: %s: %s\n", src, strerror(errno));
		return 1;
	}
	fs.root.next = fs.root.prev = &fs.root;
	fs.root.dev = st.st_dev;
	fs.root.ino = st.st_ino;
	fs.root.nlookup = 2;
	if (pthread_key_create(&fs.bounce_key, free) || !(opts = pt_mount_opts(rsrc)))
		return 1;

	char *fargv[] = {argv[0], "-o", opts, debug ? "-d" : NULL, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(debug ? 4 : 3, fargv);

	se = fuse_session_new(&args, &pt_ops, sizeof(pt_ops), &fs);
	if (!se)
		goto err_free_opts;
	if (fuse_set_signal_handlers(se))
		goto err_destroy_session;
	if (fuse_session_mount(se, mnt))
		goto err_remove_handlers;
	if (fuse_daemonize(foreground))
		goto err_unmount;
	cfg = fuse_loop_cfg_create();
	if (!cfg)
		goto err_unmount;
	fuse_loop_cfg_set_clone_fd(cfg, PT_CLONE_FD);
	fuse_loop_cfg_set_idle_threads(cfg, PT_MAX_IDLE_THREADS);
	fuse_loop_cfg_set_max_threads(cfg, PT_MAX_THREADS);
	ret = fuse_session_loop_mt(se, cfg) ? 1 : 0;
	fuse_loop_cfg_destroy(cfg);
err_unmount:
	fuse_session_unmount(se);
err_remove_handlers:
	fuse_remove_signal_handlers(se);
err_destroy_session:
	fuse_session_destroy(se);
err_free_opts:
	free(opts);
	fuse_opt_free_args(&args);
	close(fs.root.fd);
	return ret;
}
