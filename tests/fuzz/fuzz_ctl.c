/* tests/fuzz/fuzz_ctl.c - libFuzzer target for the .pstorage/ctl command parser (fs/pfs_ctl.c):
 * every input is written to ctl of one namespace opened at start (a sparse image in /dev/shm),
 * as `echo ... > ctl` would. After each input the harness deletes what it created and puts the
 * settings back, so inputs do not depend on each other and memory stays flat.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "pfs_front_int.h"
#include "pfs_vol_int.h"

#define IMAGE_SIZE   (64ull << 20) /* the smallest mkfs.pstorfs accepts */
#define SEGMENT_SIZE (1ull << 20)
#define MAX_MAPS     4096

static struct pfs *fz_p;
static char fz_img[256];
static char fz_cfg[PFS_CFG_COUNT][64]; /* settings at open, restored after each input */

static void fz_teardown(void)
{
	pfs_close(fz_p);
	fz_p = NULL;
}

/* Images of earlier runs that died inside pfs_mkfs or pfs_open (before the unlink below):
 * removed when the process that made one is gone, so crashes do not fill /dev/shm. */
static void fz_remove_stale(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char path[512];
	int pid;

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (sscanf(de->d_name, "pstor-fuzz-ctl-%d.img", &pid) != 1 || pid <= 0)
			continue;
		if (kill(pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		unlink(path);
	}
	closedir(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct pfs_mkfs_params prm = {.size = IMAGE_SIZE, .segment_size = SEGMENT_SIZE};
	struct pfs_opts o = {.dedupe = -1, .commit_interval_ms = -1, .gc_thread = false};
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	char msg[1024];
	int rc;

	(void)argc;
	(void)argv;
	fz_remove_stale(dir);
	snprintf(fz_img, sizeof(fz_img), "%s/pstor-fuzz-ctl-%d.img", dir, (int)getpid());
	unlink(fz_img);
	rc = pfs_mkfs(fz_img, &prm, msg, sizeof(msg));
	if (rc) {
		fprintf(stderr, "fuzz_ctl: mkfs %s: %s\n", fz_img, msg);
		abort();
	}
	o.device = fz_img;
	rc = pfs_open(&o, &fz_p, msg, sizeof(msg));
	/* The namespace keeps its descriptor: the name can go now, so that no image is left
	 * behind in /dev/shm however the run ends. */
	unlink(fz_img);
	if (rc) {
		fprintf(stderr, "fuzz_ctl: open %s: %s\n", fz_img, msg);
		abort();
	}
	for (int k = 0; k < PFS_CFG_COUNT; k++)
		fz_check(pfs_config_get(fz_p, pfs_config_names[k], fz_cfg[k], sizeof(fz_cfg[k])),
		         "pfs_config_get");
	atexit(fz_teardown);
	return 0;
}

struct fz_map {
	enum pfs_map_kind kind;
	uint64_t id, parent;
	char name[PFS_NAME_MAX + 1];
};

static const char *volume_name(const struct fz_map *m, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (m[i].kind == PFS_MAP_VOLUME && m[i].id == id)
			return m[i].name;
	return NULL;
}

/* Stops a scrub the input started, deletes every snapshot, then every volume (what an input
 * created must be deletable), and puts the settings back. */
static void fz_reset(void)
{
	static struct fz_map maps[MAX_MAPS];
	size_t n = 0;

	(void)pfs_ctl_exec(fz_p, "scrub stop"); /* fails when none runs: nothing to undo */
	pthread_mutex_lock(&fz_p->cat_lock);
	for (struct pfs_vol *v = fz_p->vols; v && n < MAX_MAPS; v = v->next, n++) {
		maps[n].kind = v->kind;
		maps[n].id = v->id;
		maps[n].parent = v->parent;
		snprintf(maps[n].name, sizeof(maps[n].name), "%s", v->name);
	}
	pthread_mutex_unlock(&fz_p->cat_lock);

	for (size_t i = 0; i < n; i++) {
		if (maps[i].kind != PFS_MAP_SNAPSHOT)
			continue;
		const char *vol = volume_name(maps, n, maps[i].parent);
		int rc = vol ? pfs_snap_delete(fz_p, vol, maps[i].name) : -ENOENT;
		if (rc) {
			fprintf(stderr, "fuzz_ctl: cannot delete snapshot %s of %s: %d\n",
			        maps[i].name, vol ? vol : "(no volume)", rc);
			abort();
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (maps[i].kind != PFS_MAP_VOLUME)
			continue;
		int rc = pfs_vol_delete(fz_p, maps[i].name);
		if (rc) {
			fprintf(stderr, "fuzz_ctl: cannot delete volume %s: %d\n", maps[i].name,
			        rc);
			abort();
		}
	}
	for (int k = 0; k < PFS_CFG_COUNT; k++) {
		char now[64];
		fz_check(pfs_config_get(fz_p, pfs_config_names[k], now, sizeof(now)),
		         "pfs_config_get");
		if (strcmp(now, fz_cfg[k]))
			fz_check(pfs_config_set(fz_p, pfs_config_names[k], fz_cfg[k], true),
			         "pfs_config_set (restore)");
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char msg[PFS_MSG_MAX];
	int rc = pfs_ctl_write(fz_p, (const char *)data, size);

	pthread_mutex_lock(&fz_p->msg_lock);
	memcpy(msg, fz_p->msg, sizeof(msg));
	pthread_mutex_unlock(&fz_p->msg_lock);
	/* fs/README.md: the errors a command may fail with, and "error: ..." to read back
	 * (ENOTCONN: a cluster or pod command on a box that is not in a cluster). */
	if (rc != 0 && rc != -EINVAL && rc != -ENOENT && rc != -EEXIST && rc != -ENOSPC &&
	    rc != -EBUSY && rc != -ENOTCONN) {
		fprintf(stderr, "fuzz_ctl: undocumented error %d (%s)\n", rc, msg);
		abort();
	}
	if (rc != 0 && strncmp(msg, "error", 5)) {
		fprintf(stderr, "fuzz_ctl: failed with %d but reads back \"%s\"\n", rc, msg);
		abort();
	}
	fz_reset();
	return 0;
}
