/* tests/fs/test_fs_fuse.c - the FUSE front and the daemon, mounted for real: a forked child runs
 * pfs_daemon_main (-f) on a fresh image and a temporary mount point, the test does file
 * operations on the mount, and the teardown unmounts with fusermount3 -u and waits for the
 * daemon. Needs /dev/fuse and root (skips otherwise). Also the daemon's option checks, which
 * fail before anything is mounted.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pfs.h"

#define MIB (1ull << 20)

/* Coverage builds: the daemon child leaves with _exit (it must not run the test runner's
 * atexit handlers), so it writes its counters itself. */
extern void __gcov_dump(void) __attribute__((weak));

static char dir[64], img[128], mnt[128];
static pid_t daemon_pid;

static void path_of(char *out, size_t len, const char *rel)
{
	snprintf(out, len, "%s/%s", mnt, rel);
}

/* True when MNT is a pstorfs mount (from mountinfo: never blocks on the mount itself). */
static bool is_mounted(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[4096], want[160];
	bool found = false;

	snprintf(want, sizeof(want), " %s ", mnt);
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, want) && strstr(line, " - fuse.pstorfs ");
	if (f)
		fclose(f);
	return found;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static int run_daemon(const char *const *args)
{
	char *argv[16];
	int argc = 0;

	argv[argc++] = "pstorfs";
	for (; *args; args++)
		argv[argc++] = (char *)*args;
	argv[argc] = NULL;
	return pfs_daemon_main(argc, argv);
}

/* Mounts IMG on MNT with a forked daemon in the foreground; OPTS may be NULL. */
static void start_daemon(const char *opts)
{
	daemon_pid = fork();
	cr_assert_geq(daemon_pid, 0);
	if (daemon_pid == 0) {
		const char *args[] = {img, mnt, "-f", opts ? "-o" : NULL, opts, NULL};
		int rc = run_daemon(args);
		if (__gcov_dump)
			__gcov_dump();
		_exit(rc);
	}
	for (int i = 0; i < 300 && !is_mounted(); i++) {
		int st;
		cr_assert_eq(waitpid(daemon_pid, &st, WNOHANG), 0,
		             "the daemon exited before mounting");
		sleep_ms(20);
	}
	cr_assert(is_mounted(), "not mounted after 6 s");
}

/* Unmounts and waits for the daemon to exit; its exit status. */
static int stop_daemon(void)
{
	char cmd[256];
	int st = 0;

	if (daemon_pid <= 0)
		return -1;
	snprintf(cmd, sizeof(cmd), "fusermount3 -u -- '%s' 2>/dev/null", mnt);
	for (int i = 0; i < 50 && is_mounted(); i++) {
		if (system(cmd) == 0)
			break;
		sleep_ms(100); /* busy: a handle still closing */
	}
	if (is_mounted())
		umount2(mnt, MNT_DETACH);
	for (int i = 0; i < 300; i++) {
		if (waitpid(daemon_pid, &st, WNOHANG) == daemon_pid) {
			daemon_pid = 0;
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		sleep_ms(50);
	}
	kill(daemon_pid, SIGKILL);
	waitpid(daemon_pid, &st, 0);
	daemon_pid = 0;
	return -1;
}

static void make_image(void)
{
	char msg[256];
	struct pfs_mkfs_params prm = {.size = 256 * MIB, .segment_size = MIB};

	if (access("/dev/fuse", R_OK | W_OK) || geteuid() != 0)
		cr_skip_test("needs root and /dev/fuse");
	snprintf(dir, sizeof(dir), "/tmp/pstor-fuse-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(img, sizeof(img), "%s/img", dir);
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	cr_assert_eq(mkdir(mnt, 0755), 0);
	cr_assert_eq(pfs_mkfs(img, &prm, msg, sizeof(msg)), 0, "mkfs: %s", msg);
}

static void setup(void)
{
	make_image();
	start_daemon("compression=lz4,dedupe=on,commit_interval_ms=200,defaults,_netdev");
}

static void teardown(void)
{
	if (daemon_pid > 0)
		cr_expect_eq(stop_daemon(), 0, "daemon exit status");
	unlink(img);
	rmdir(mnt);
	rmdir(dir);
}

static void remount(const char *opts)
{
	cr_assert_eq(stop_daemon(), 0);
	start_daemon(opts);
}

/* The whole of a file on the mount (NUL-terminated; the caller frees), or NULL with errno. */
static char *slurp(const char *rel)
{
	char path[256];
	size_t len = 0, cap = 4096;
	char *b = malloc(cap);
	ssize_t n;

	path_of(path, sizeof(path), rel);
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		free(b);
		return NULL;
	}
	while ((n = read(fd, b + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (cap - len < 2)
			b = realloc(b, cap *= 2);
	}
	close(fd);
	b[len] = '\0';
	return b;
}

/* Writes S to a file of the mount in one write(2); 0 or -errno. */
static int put(const char *rel, const char *s, int flags)
{
	char path[256];

	path_of(path, sizeof(path), rel);
	int fd = open(path, O_WRONLY | flags, 0644);
	if (fd < 0)
		return -errno;
	ssize_t n = write(fd, s, strlen(s));
	int rc = n < 0 ? -errno : 0;
	close(fd);
	return rc;
}

static int ctl(const char *cmd)
{
	return put(".pstorage/ctl", cmd, 0);
}

static void expect_has(const char *text, const char *want)
{
	cr_expect(text && strstr(text, want), "'%s' not in:\n%s", want, text ? text : "(null)");
}

static int open_rel(const char *rel, int flags)
{
	char path[256];

	path_of(path, sizeof(path), rel);
	return open(path, flags, 0644);
}

static int stat_rel(const char *rel, struct stat *st)
{
	char path[256];

	path_of(path, sizeof(path), rel);
	return stat(path, st) ? -errno : 0;
}

/* The names in a directory of the mount, sorted, comma separated. */
static char *list(const char *rel)
{
	char path[256], *names[64], *out = calloc(1, 4096);
	int n = 0;
	struct dirent *e;

	path_of(path, sizeof(path), rel);
	DIR *d = opendir(path);
	cr_assert_not_null(d, "opendir %s: %s", rel, strerror(errno));
	while ((e = readdir(d)) && n < 64)
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			names[n++] = strdup(e->d_name);
	closedir(d);
	for (int i = 0; i < n; i++)
		for (int k = i + 1; k < n; k++)
			if (strcmp(names[k], names[i]) < 0) {
				char *t = names[i];
				names[i] = names[k];
				names[k] = t;
			}
	for (int i = 0; i < n; i++) {
		strcat(out, i ? "," : "");
		strcat(out, names[i]);
		free(names[i]);
	}
	return out;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++) {
		seed = seed * 1103515245u + 12345u;
		b[i] = (uint8_t)(seed >> 16);
	}
}

TestSuite(fs_fuse, .init = setup, .fini = teardown, .timeout = 120);

Test(fs_fuse, the_tree_has_volumes_snapshots_and_pstorage)
{
	char *l;

	cr_assert_eq(ctl("volume create a 4M"), 0);
	l = list("");
	cr_expect_str_eq(l, ".pstorage,snapshots,volumes");
	free(l);
	l = list(".pstorage");
	cr_expect_str_eq(l, "analytics,cluster,config,ctl,flash,metrics,reduction,reduction.json,"
	                    "scrub,scrub.json,stats,stats.json,status,status.json,volumes");
	free(l);
	l = list(".pstorage/flash");
	cr_expect_str_eq(l, "identity,identity.json,smart,smart.json,stats,stats.json");
	free(l);
	l = list(".pstorage/config");
	cr_expect_str_eq(l,
	                 "analytics_interval,commit_interval_ms,compression,dedupe,temp_cold_after,"
	                 "temp_frozen_after,temp_half_life,temp_hot_heat,tier_rate");
	free(l);
	l = list(".pstorage/volumes/a");
	cr_expect_str_eq(l, "cold_compression,reduction,shared,size,snapshots,summary,summary.json,"
	                    "temperature,unique,written");
	free(l);
	l = list("volumes");
	cr_expect_str_eq(l, "a");
	free(l);
	l = list("snapshots");
	cr_expect_str_eq(l, "a");
	free(l);
	struct stat st;
	cr_expect_eq(stat_rel("nothing", &st), -ENOENT);
	cr_expect_eq(stat_rel(".pstorage/nothing", &st), -ENOENT);
	cr_expect_eq(stat_rel(".pstorage/flash/nothing", &st), -ENOENT);
	cr_expect_eq(stat_rel(".pstorage/config/nothing", &st), -ENOENT);
	cr_expect_eq(stat_rel(".pstorage/volumes/a/nothing", &st), -ENOENT);
	cr_expect_eq(stat_rel(".pstorage/volumes/b", &st), -ENOENT);
	cr_expect_eq(stat_rel("snapshots/a/nothing", &st), -ENOENT);
	cr_expect_eq(stat_rel("volumes/a/x", &st), -ENOTDIR);
	cr_expect_eq(stat_rel(".pstorage/status", &st), 0);
	cr_expect_eq(st.st_mode, S_IFREG | 0444);
	cr_expect_eq(stat_rel(".pstorage/ctl", &st), 0);
	cr_expect_eq(st.st_mode, S_IFREG | 0600);
	cr_expect_eq(stat_rel(".pstorage/volumes/a", &st), 0);
	cr_expect(S_ISDIR(st.st_mode));
}

Test(fs_fuse, a_created_volume_keeps_its_data_across_a_remount)
{
	uint8_t buf[10000], back[10000];
	struct stat st;
	int fd = open_rel("volumes/v", O_CREAT | O_RDWR);

	cr_assert_geq(fd, 0, "create: %s", strerror(errno));
	fill(buf, sizeof(buf), 1);
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), 777), (ssize_t)sizeof(buf));
	cr_assert_eq(fsync(fd), 0);
	cr_assert_eq(fdatasync(fd), 0);
	cr_assert_eq(pread(fd, back, sizeof(back), 777), (ssize_t)sizeof(back));
	cr_expect_arr_eq(back, buf, sizeof(buf));
	close(fd);
	cr_assert_eq(stat_rel("volumes/v", &st), 0);
	cr_expect_eq(st.st_size, 777 + (off_t)sizeof(buf));
	cr_expect_eq(st.st_mode, S_IFREG | 0600, "volumes start 0600 whatever open asked");
	remount(NULL);
	fd = open_rel("volumes/v", O_RDONLY);
	cr_assert_geq(fd, 0);
	memset(back, 0, sizeof(back));
	cr_assert_eq(pread(fd, back, sizeof(back), 777), (ssize_t)sizeof(back));
	cr_expect_arr_eq(back, buf, sizeof(buf));
	cr_assert_eq(pread(fd, back, 100, 0), 100);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(back[i], 0, "byte %d before the first write", i);
	close(fd);
}

Test(fs_fuse, o_sync_writes_are_durable_without_a_commit)
{
	uint8_t buf[4096], back[4096];
	int fd = open_rel("volumes/s", O_CREAT | O_RDWR | O_SYNC);

	cr_assert_geq(fd, 0);
	fill(buf, sizeof(buf), 2);
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	close(fd);
	expect_has(slurp(".pstorage/metrics"), "pstorfs_store_log_syncs_total ");
	remount(NULL);
	fd = open_rel("volumes/s", O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
	cr_expect_arr_eq(back, buf, sizeof(buf));
	close(fd);
}

Test(fs_fuse, ctl_results_read_back_ok_or_the_error)
{
	char *r;

	cr_assert_eq(ctl("volume create a 4M\n"), 0);
	r = slurp(".pstorage/ctl");
	cr_expect_str_eq(r, "ok\n");
	free(r);
	cr_assert_eq(ctl("volume create a 4M\n"), -EEXIST);
	r = slurp(".pstorage/ctl");
	cr_expect_str_eq(r, "error: volume create a 4M: volume a already exists\n");
	free(r);
	cr_assert_eq(ctl("frobnicate\n"), -EINVAL);
	cr_assert_eq(put(".pstorage/ctl", "sync\n", O_TRUNC), 0, "echo > ctl truncates first");
	r = slurp(".pstorage/ctl");
	cr_expect_str_eq(r, "ok\n");
	free(r);
	struct stat st;
	cr_assert_eq(stat_rel("volumes/a", &st), 0);
	cr_expect_eq(st.st_size, 4 * MIB);
}

Test(fs_fuse, snapshots_are_read_only_and_keep_the_old_data)
{
	uint8_t old[4096], new[4096], back[4096];
	int fd;

	cr_assert_eq(ctl("volume create a 1M"), 0);
	fill(old, sizeof(old), 3);
	fill(new, sizeof(new), 4);
	fd = open_rel("volumes/a", O_RDWR);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pwrite(fd, old, sizeof(old), 0), (ssize_t)sizeof(old));
	cr_assert_eq(ctl("snapshot create a s1"), 0);
	cr_assert_eq(pwrite(fd, new, sizeof(new), 0), (ssize_t)sizeof(new));
	close(fd);
	char *l = list("snapshots/a");
	cr_expect_str_eq(l, "s1");
	free(l);
	fd = open_rel("snapshots/a/s1", O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
	cr_expect_arr_eq(back, old, sizeof(old));
	close(fd);
	cr_expect_lt(open_rel("snapshots/a/s1", O_RDWR), 0);
	cr_expect_eq(errno, EACCES);
	char path[256];
	path_of(path, sizeof(path), "snapshots/a/s1");
	cr_expect_eq(chmod(path, 0644), -1);
	cr_expect_eq(errno, EROFS);
	cr_expect_eq(truncate(path, 0), -1);
	cr_expect_eq(unlink(path), 0);
	l = list("snapshots/a");
	cr_expect_str_eq(l, "");
	free(l);
	cr_expect_eq(unlink(path), -1);
	cr_expect_eq(errno, ENOENT);
}

Test(fs_fuse, truncate_fallocate_punch_and_seek)
{
	uint8_t buf[3 * 4096], back[4096], zero[4096] = {0};
	struct stat st;
	int fd = open_rel("volumes/t", O_CREAT | O_RDWR);

	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 8 * MIB), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(st.st_size, 8 * MIB);
	fill(buf, sizeof(buf), 5);
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), MIB), (ssize_t)sizeof(buf));
	cr_expect_eq(lseek(fd, 0, SEEK_DATA), (off_t)MIB);
	cr_expect_eq(lseek(fd, MIB, SEEK_HOLE), (off_t)(MIB + sizeof(buf)));
	cr_assert_eq(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, MIB + 4096, 4096),
	             0);
	cr_assert_eq(pread(fd, back, sizeof(back), MIB + 4096), (ssize_t)sizeof(back));
	cr_expect_arr_eq(back, zero, sizeof(zero));
	cr_assert_eq(pread(fd, back, sizeof(back), MIB + 8192), (ssize_t)sizeof(back));
	cr_expect_arr_eq(back, buf + 8192, sizeof(back));
	cr_assert_eq(fallocate(fd, 0, 8 * MIB, MIB), 0, "plain fallocate grows the size");
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(st.st_size, 9 * MIB);
	cr_expect_eq(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, MIB), -1);
	cr_expect_eq(errno, EOPNOTSUPP);
	cr_assert_eq(ftruncate(fd, MIB + 100), 0);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_expect_eq(st.st_size, MIB + 100);
	cr_expect_eq(ftruncate(fd, (off_t)1 << 60), -1);
	cr_expect_eq(errno, EFBIG);
	close(fd);
}

Test(fs_fuse, copy_file_range_shares_aligned_and_copies_unaligned)
{
	uint8_t buf[4 * 4096], back[4 * 4096];
	int a = open_rel("volumes/a", O_CREAT | O_RDWR),
	    b = open_rel("volumes/b", O_CREAT | O_RDWR);

	cr_assert_geq(a, 0);
	cr_assert_geq(b, 0);
	fill(buf, sizeof(buf), 6);
	cr_assert_eq(pwrite(a, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	loff_t in = 0, out = 0;
	cr_assert_eq(copy_file_range(a, &in, b, &out, sizeof(buf), 0), (ssize_t)sizeof(buf));
	cr_assert_eq(pread(b, back, sizeof(back), 0), (ssize_t)sizeof(back));
	cr_expect_arr_eq(back, buf, sizeof(buf));
	in = 100;
	out = 5 * 4096 + 3;
	ssize_t n = copy_file_range(a, &in, b, &out, 5000, 0);
	cr_assert_eq(n, 5000);
	cr_assert_eq(pread(b, back, 5000, 5 * 4096 + 3), 5000);
	cr_expect_arr_eq(back, buf + 100, 5000);
	close(a);
	close(b);
}

Test(fs_fuse, rename_unlink_and_their_errors)
{
	char from[256], to[256];
	struct stat st;

	cr_assert_eq(ctl("volume create a 1M"), 0);
	cr_assert_eq(ctl("volume create c 1M"), 0);
	path_of(from, sizeof(from), "volumes/a");
	path_of(to, sizeof(to), "volumes/b");
	cr_assert_eq(rename(from, to), 0);
	cr_expect_eq(stat_rel("volumes/a", &st), -ENOENT);
	cr_expect_eq(stat_rel("volumes/b", &st), 0);
	path_of(from, sizeof(from), "volumes/b");
	path_of(to, sizeof(to), "volumes/c");
	cr_expect_eq(rename(from, to), -1, "onto an existing volume");
	cr_expect_eq(errno, EEXIST);
	cr_expect_eq(renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_EXCHANGE), -1);
	cr_expect_eq(errno, EINVAL);
	path_of(to, sizeof(to), ".pstorage/b");
	cr_expect_eq(rename(from, to), -1);
	cr_expect_eq(errno, EXDEV);
	path_of(from, sizeof(from), ".pstorage/status");
	path_of(to, sizeof(to), ".pstorage/status2");
	cr_expect_eq(rename(from, to), -1);
	cr_expect_eq(errno, EPERM);
	cr_expect_eq(unlink(from), -1);
	cr_expect_eq(errno, EPERM);
	path_of(from, sizeof(from), "volumes/b");
	cr_expect_eq(unlink(from), 0);
	cr_expect_eq(stat_rel("volumes/b", &st), -ENOENT);
	char *l = list("volumes");
	cr_expect_str_eq(l, "c");
	free(l);
}

Test(fs_fuse, chmod_chown_and_times_of_a_volume_persist)
{
	char path[256];
	struct stat st;
	struct timespec ts[2] = {{1000000000, 5}, {1200000000, 7}};

	cr_assert_eq(ctl("volume create a 1M"), 0);
	path_of(path, sizeof(path), "volumes/a");
	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(chown(path, 1000, 100), 0);
	cr_assert_eq(utimensat(AT_FDCWD, path, ts, 0), 0);
	remount(NULL);
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_eq(st.st_mode, S_IFREG | 0640);
	cr_expect_eq(st.st_uid, 1000);
	cr_expect_eq(st.st_gid, 100);
	cr_expect_eq(st.st_atim.tv_sec, 1000000000);
	cr_expect_eq(st.st_mtim.tv_sec, 1200000000);
	cr_expect_eq(st.st_mtim.tv_nsec, 7);
	cr_assert_eq(utimensat(AT_FDCWD, path, NULL, 0), 0, "touch: now");
	cr_assert_eq(stat(path, &st), 0);
	cr_expect_gt(st.st_mtim.tv_sec, 1200000000);
}

Test(fs_fuse, reports_and_volume_values_read_as_files)
{
	uint8_t buf[8192];
	char *t;
	int fd;

	cr_assert_eq(ctl("volume create a 4M"), 0);
	fd = open_rel("volumes/a", O_RDWR);
	cr_assert_geq(fd, 0);
	fill(buf, sizeof(buf), 7);
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	close(fd);
	expect_has(t = slurp(".pstorage/status"), "pstorfs on ");
	free(t);
	expect_has(t = slurp(".pstorage/status.json"), "\"volumes\": 1,");
	free(t);
	expect_has(t = slurp(".pstorage/reduction"), "after deduplication");
	free(t);
	expect_has(t = slurp(".pstorage/reduction.json"), "\"logical_bytes\": 8192,");
	free(t);
	expect_has(t = slurp(".pstorage/metrics"),
	           "pstorfs_volume_size_bytes{volume=\"a\"} 4194304");
	free(t);
	expect_has(t = slurp(".pstorage/scrub"), "state       idle");
	free(t);
	expect_has(t = slurp(".pstorage/scrub.json"), "\"state\": \"idle\"");
	free(t);
	expect_has(t = slurp(".pstorage/flash/identity"), "backend           file");
	free(t);
	expect_has(t = slurp(".pstorage/flash/identity.json"), "\"backend\": \"file\"");
	free(t);
	cr_expect_not_null(t = slurp(".pstorage/flash/stats"));
	free(t);
	cr_expect_not_null(t = slurp(".pstorage/flash/stats.json"));
	free(t);
	cr_expect_not_null(t = slurp(".pstorage/flash/smart"));
	free(t);
	cr_expect_not_null(t = slurp(".pstorage/flash/smart.json"));
	free(t);
	expect_has(t = slurp(".pstorage/volumes/a/summary"), "volume      a\n");
	free(t);
	expect_has(t = slurp(".pstorage/volumes/a/summary.json"), "\"written_bytes\": 8192,");
	free(t);
	t = slurp(".pstorage/volumes/a/size");
	cr_expect_str_eq(t, "4194304\n");
	free(t);
	t = slurp(".pstorage/volumes/a/written");
	cr_expect_str_eq(t, "8192\n");
	free(t);
	t = slurp(".pstorage/volumes/a/snapshots");
	cr_expect_str_eq(t, "0\n");
	free(t);
	cr_expect_not_null(t = slurp(".pstorage/volumes/a/unique"));
	free(t);
	cr_expect_not_null(t = slurp(".pstorage/volumes/a/shared"));
	free(t);
	cr_expect_not_null(t = slurp(".pstorage/volumes/a/reduction"));
	free(t);
}

Test(fs_fuse, config_files_read_and_set_and_refuse_bad_values)
{
	char *t;

	t = slurp(".pstorage/config/dedupe");
	cr_expect_str_eq(t, "on\n");
	free(t);
	cr_assert_eq(put(".pstorage/config/dedupe", "off\n", O_TRUNC), 0);
	t = slurp(".pstorage/config/dedupe");
	cr_expect_str_eq(t, "off\n");
	free(t);
	cr_assert_eq(put(".pstorage/config/commit_interval_ms", "300 \t\n", O_TRUNC), 0);
	t = slurp(".pstorage/config/commit_interval_ms");
	cr_expect_str_eq(t, "300\n");
	free(t);
	cr_expect_eq(put(".pstorage/config/compression", "gzip\n", O_TRUNC), -EINVAL);
	char big[200];
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_expect_eq(put(".pstorage/config/commit_interval_ms", big, 0), -EINVAL);
	remount(NULL);
	t = slurp(".pstorage/config/dedupe");
	cr_expect_str_eq(t, "off\n", "a setting persists");
	free(t);
}

Test(fs_fuse, fixed_nodes_refuse_writes_and_attribute_changes)
{
	char path[256];
	struct stat st;

	cr_expect_eq(put(".pstorage/status", "x", 0), -EACCES);
	cr_expect_eq(put(".pstorage/flash/identity", "x", 0), -EACCES);
	cr_expect_eq(put(".pstorage/volumes", "x", 0), -EISDIR);
	path_of(path, sizeof(path), ".pstorage/status");
	cr_expect_eq(chmod(path, 0666), -1);
	cr_expect_eq(errno, EPERM);
	cr_expect_eq(truncate(path, 0), -1);
	cr_expect_eq(errno, EACCES);
	path_of(path, sizeof(path), "newfile");
	cr_expect_eq(open(path, O_CREAT | O_RDWR, 0644), -1, "create outside volumes/");
	cr_expect_eq(errno, EPERM);
	path_of(path, sizeof(path), ".pstorage/newfile");
	cr_expect_eq(open(path, O_CREAT | O_RDWR, 0644), -1);
	cr_expect_eq(errno, EACCES);
	path_of(path, sizeof(path), "volumes/.bad");
	cr_expect_eq(open(path, O_CREAT | O_RDWR, 0644), -1);
	cr_expect_eq(errno, EINVAL);
	path_of(path, sizeof(path), "volumes/dir");
	cr_expect_eq(mkdir(path, 0755), -1);
	cr_expect_eq(stat_rel("volumes/dir", &st), -ENOENT);
	path_of(path, sizeof(path), "volumes/fifo");
	cr_expect_eq(mknod(path, S_IFIFO | 0600, 0), -1);
	cr_expect_eq(errno, EPERM);
	path_of(path, sizeof(path), "volumes/node");
	cr_expect_eq(mknod(path, S_IFREG | 0600, 0), 0);
	cr_expect_eq(stat_rel("volumes/node", &st), 0);
	cr_expect_eq(st.st_size, 0);
}

Test(fs_fuse, statfs_reports_the_flash_and_name_length)
{
	struct statvfs sv;

	cr_assert_eq(statvfs(mnt, &sv), 0);
	cr_expect_eq(sv.f_bsize, 4096);
	cr_expect_eq(sv.f_namemax, 64);
	cr_expect_gt(sv.f_blocks, 0);
	cr_expect_leq(sv.f_bfree, sv.f_blocks);
}

Test(fs_fuse, scrub_from_ctl_runs_to_done)
{
	uint8_t buf[65536];
	char *t = NULL;
	int fd = open_rel("volumes/a", O_CREAT | O_RDWR);

	cr_assert_geq(fd, 0);
	fill(buf, sizeof(buf), 8);
	cr_assert_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	close(fd);
	cr_assert_eq(ctl("scrub start"), 0);
	for (int i = 0; i < 500; i++) {
		free(t);
		t = slurp(".pstorage/scrub.json");
		if (t && strstr(t, "\"state\": \"done\""))
			break;
		sleep_ms(20);
	}
	expect_has(t, "\"state\": \"done\"");
	expect_has(t, "\"damaged_chunks\": 0,");
	free(t);
	expect_has(t = slurp(".pstorage/scrub"), "metadata    ok");
	free(t);
	expect_has(t = slurp(".pstorage/status"), "scrub       done ");
	free(t);
	cr_expect_eq(ctl("scrub stop"), -ENOENT);
}

Test(fs_fuse, a_read_only_mount_refuses_changes)
{
	uint8_t buf[4096] = {1};

	cr_assert_eq(ctl("volume create a 1M"), 0);
	remount("ro");
	int fd = open_rel("volumes/a", O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_expect_eq(pread(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
	close(fd);
	cr_expect_lt(open_rel("volumes/a", O_RDWR), 0);
	cr_expect_eq(errno, EROFS);
	char *t = slurp(".pstorage/status");
	expect_has(t, "(read-only)");
	free(t);
}

Test(fs_fuse, a_second_mount_of_the_same_image_is_refused)
{
	char mnt2[160];

	cr_redirect_stderr();
	snprintf(mnt2, sizeof(mnt2), "%s/mnt2", dir);
	cr_assert_eq(mkdir(mnt2, 0755), 0);
	const char *args[] = {img, mnt2, "-f", NULL};
	cr_expect_eq(run_daemon(args), 1);
	rmdir(mnt2);
	fflush(stderr);
	char want[256];
	snprintf(want, sizeof(want), "pstorfs: %s: already mounted\n", img);
	cr_expect_stderr_eq_str(want);
}

/* ---- the daemon's checks before anything is mounted ---------------------------------------- */

static void daemon_fails_with(const char *const *args, const char *err)
{
	char want[512];

	cr_expect_eq(run_daemon(args), 1);
	fflush(stderr);
	snprintf(want, sizeof(want), "pstorfs: %s\n", err);
	cr_expect_stderr_eq_str(want);
}

static void daemon_setup(void)
{
	cr_redirect_stderr();
	cr_redirect_stdout();
	make_image();
}

TestSuite(fs_daemon, .init = daemon_setup, .fini = teardown, .timeout = 60);

Test(fs_daemon, help_and_version_exit_zero)
{
	const char *h[] = {"--help", NULL}, *v[] = {"-V", NULL};

	cr_expect_eq(run_daemon(h), 0);
	cr_expect_eq(run_daemon(v), 0);
	fflush(stdout);
	cr_expect_stdout_neq_str("");
}

Test(fs_daemon, missing_arguments_print_the_usage)
{
	const char *a[] = {img, NULL};

	cr_expect_eq(run_daemon(a), 1);
	fflush(stderr);
	cr_expect_stderr_neq_str("");
}

Test(fs_daemon, a_third_argument_is_refused)
{
	const char *a[] = {img, mnt, "extra", NULL};

	daemon_fails_with(a, "unexpected argument 'extra'");
}

Test(fs_daemon, bad_recovery_option)
{
	const char *a[] = {img, mnt, "-o", "recovery=fast", NULL};

	daemon_fails_with(a, "bad option recovery=fast (checkpoint or scan)");
}

Test(fs_daemon, bad_dedupe_option)
{
	const char *a[] = {img, mnt, "-o", "dedupe=maybe", NULL};

	daemon_fails_with(a, "bad option dedupe=maybe (on or off)");
}

Test(fs_daemon, bad_compression_option)
{
	const char *a[] = {img, mnt, "-o", "compression=gzip", NULL};

	daemon_fails_with(a, "bad option compression=gzip (lz4, zstd[:1..19], none)");
}

Test(fs_daemon, bad_commit_interval_option)
{
	const char *a[] = {img, mnt, "-o", "commit_interval_ms=5", NULL};

	daemon_fails_with(a, "bad option commit_interval_ms=5 (10..600000)");
}

Test(fs_daemon, a_missing_device)
{
	const char *a[] = {"/nonexistent/img", mnt, NULL};

	daemon_fails_with(a, "/nonexistent/img: No such file or directory");
}

Test(fs_daemon, a_missing_mount_point)
{
	const char *a[] = {img, "/nonexistent/mnt", NULL};

	daemon_fails_with(a, "mount point /nonexistent/mnt: No such file or directory");
}

Test(fs_daemon, a_mount_point_that_is_a_file)
{
	const char *a[] = {img, img, NULL};
	char want[256];

	snprintf(want, sizeof(want), "mount point %s: not a directory", img);
	daemon_fails_with(a, want);
}

Test(fs_daemon, a_device_that_is_a_directory)
{
	const char *a[] = {mnt, mnt, NULL};
	char want[256];

	snprintf(want, sizeof(want), "%s: is a directory, not a block device or image file", mnt);
	daemon_fails_with(a, want);
}

Test(fs_daemon, a_device_that_is_not_a_file)
{
	const char *a[] = {"/dev/null", mnt, NULL};

	daemon_fails_with(a, "/dev/null: not a block device or image file");
}

Test(fs_daemon, an_image_without_pstorfs)
{
	char plain[160];

	snprintf(plain, sizeof(plain), "%s/plain", dir);
	int fd = open(plain, O_CREAT | O_RDWR, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, 64 * MIB), 0);
	close(fd);
	const char *a[] = {plain, mnt, NULL};
	cr_expect_eq(run_daemon(a), 1);
	unlink(plain);
	fflush(stderr);
	cr_expect_stderr_neq_str("");
}

Test(fs_daemon, an_unknown_fuse_option)
{
	const char *a[] = {img, mnt, "-o", "frobnicate", NULL};

	daemon_fails_with(a, "bad mount option: unknown option(s): `-o frobnicate'");
}

/* Without -f the daemon forks: the parent returns 0 once the child has mounted. */
Test(fs_daemon, daemonizes_and_serves_until_unmounted)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		const char *args[] = {img, mnt, "-o", "recovery=scan", NULL};
		int rc = run_daemon(args);
		if (__gcov_dump)
			__gcov_dump();
		_exit(rc); /* the parent's 0, or later the detached daemon's own exit */
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "pstorfs exit %d", st);
	cr_assert(is_mounted(), "mounted once the parent returned");
	cr_expect_eq(ctl("volume create a 1M"), 0);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "fusermount3 -u -- '%s'", mnt);
	cr_assert_eq(system(cmd), 0);
	/* The detached daemon lets go of the image once it has committed and closed. */
	for (int i = 0; i < 200; i++) {
		struct ftl_dev *dev = NULL;
		int rc = ftl_dev_open(img, 0, 0, &dev);
		ftl_dev_close(dev);
		if (rc != -EBUSY)
			break;
		sleep_ms(50);
	}
	sleep_ms(200); /* and writes its coverage counters */
	start_daemon(NULL);
	struct stat sb;
	cr_expect_eq(stat_rel("volumes/a", &sb), 0, "the detached daemon committed at unmount");
}
