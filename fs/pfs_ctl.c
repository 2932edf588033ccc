/* fs/pfs_ctl.c - the command language of .pstorage/ctl: one command a line, words separated by
 * blanks. Parsing and argument checks happen before anything changes, so a bad command fails
 * with an errno and a reason (p->msg) and leaves everything as it was.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pfs_analytics.h"
#include "pfs_front_int.h"

#define CTL_MAX_WORDS 8
#define CTL_LINE_MAX  1024

struct ctl_cmd {
	const char *group, *verb;
	int nargs;
	const char *usage;
	int (*run)(struct pfs *p, char **a);
};

static int parse_size_arg(struct pfs *p, const char *s, uint64_t *out)
{
	int rc = pfs_parse_size(s, out);

	if (rc == -ERANGE) {
		pfs_set_msg(p, "size '%s' is beyond the namespace", s);
		return -ENOSPC;
	}
	if (rc)
		pfs_set_msg(p, "bad size '%s' (a number with an optional K, M, G, T suffix)", s);
	return rc;
}

/* Every command that changes something goes through the store's one change path. */
static int apply(struct pfs *p, struct pfs_change c)
{
	return pfs_change_apply(p, &c);
}

static int run_volume_create(struct pfs *p, char **a)
{
	uint64_t size;
	int rc = parse_size_arg(p, a[1], &size);
	return rc ? rc
	          : apply(p, (struct pfs_change){
	                         .kind = PFS_CHANGE_VOL_CREATE, .name = a[0], .size = size});
}

static int run_volume_delete(struct pfs *p, char **a)
{
	return apply(p, (struct pfs_change){.kind = PFS_CHANGE_VOL_DELETE, .name = a[0]});
}

static int run_volume_resize(struct pfs *p, char **a)
{
	uint64_t size;
	int rc = parse_size_arg(p, a[1], &size);
	struct pfs_vol *v;

	if (rc)
		return rc;
	if (size == 0) {
		pfs_set_msg(p, "size must be greater than 0");
		return -EINVAL;
	}
	v = pfs_vol_find(p, PFS_MAP_VOLUME, 0, a[0]);
	if (!v) {
		pfs_set_msg(p, "no volume %s", a[0]);
		return -ENOENT;
	}
	rc = apply(p, (struct pfs_change){.kind = PFS_CHANGE_RESIZE, .vol = v, .size = size});
	pfs_vol_unref(v);
	return rc;
}

static int run_volume_rename(struct pfs *p, char **a)
{
	return apply(
	    p, (struct pfs_change){.kind = PFS_CHANGE_VOL_RENAME, .name = a[0], .new_name = a[1]});
}

/* Per-volume settings kept per box (pfs_tier.c), outside the change path: only
 * cold_compression so far. */
static int run_volume_set(struct pfs *p, char **a)
{
	if (strcmp(a[1], "cold_compression")) {
		pfs_set_msg(p, "unknown volume setting '%s' (cold_compression)", a[1]);
		return -EINVAL;
	}
	return pfs_tier_set(p, a[0], a[2]);
}

static int run_snapshot_create(struct pfs *p, char **a)
{
	return apply(
	    p, (struct pfs_change){.kind = PFS_CHANGE_SNAP_CREATE, .name = a[0], .snap = a[1]});
}

static int run_snapshot_delete(struct pfs *p, char **a)
{
	return apply(
	    p, (struct pfs_change){.kind = PFS_CHANGE_SNAP_DELETE, .name = a[0], .snap = a[1]});
}

static int run_snapshot_restore(struct pfs *p, char **a)
{
	return apply(
	    p, (struct pfs_change){.kind = PFS_CHANGE_SNAP_RESTORE, .name = a[0], .snap = a[1]});
}

static int run_snapshot_clone(struct pfs *p, char **a)
{
	return apply(
	    p, (struct pfs_change){
	           .kind = PFS_CHANGE_SNAP_CLONE, .name = a[0], .snap = a[1], .new_name = a[2]});
}

static int run_config_set(struct pfs *p, char **a)
{
	return apply(
	    p, (struct pfs_change){.kind = PFS_CHANGE_CONFIG_SET, .name = a[0], .value = a[1]});
}

static int run_gc_start(struct pfs *p, char **a)
{
	(void)a;
	int rc = pfs_gc_now(p);
	if (rc < 0)
		return rc;
	pfs_set_msg(p, "ok: gc cleaned %d segments", rc);
	return 0;
}

static int run_scrub_start(struct pfs *p, char **a)
{
	(void)a;
	return pfs_scrub_start(p);
}

static int run_scrub_stop(struct pfs *p, char **a)
{
	(void)a;
	return pfs_scrub_cancel(p);
}

static int run_sync(struct pfs *p, char **a)
{
	(void)a;
	return pfs_commit(p);
}

static int run_analytics_import(struct pfs *p, char **a)
{
	return pfs_analytics_import(p, a[0]);
}

static const struct ctl_cmd ctl_cmds[] = {
    {"volume", "create", 2, "volume create NAME SIZE", run_volume_create},
    {"volume", "delete", 1, "volume delete NAME", run_volume_delete},
    {"volume", "resize", 2, "volume resize NAME SIZE", run_volume_resize},
    {"volume", "rename", 2, "volume rename OLD NEW", run_volume_rename},
    {"volume", "set", 3, "volume set NAME cold_compression VALUE", run_volume_set},
    {"snapshot", "create", 2, "snapshot create VOLUME SNAP", run_snapshot_create},
    {"snapshot", "delete", 2, "snapshot delete VOLUME SNAP", run_snapshot_delete},
    {"snapshot", "restore", 2, "snapshot restore VOLUME SNAP", run_snapshot_restore},
    {"snapshot", "clone", 3, "snapshot clone VOLUME SNAP NEWVOLUME", run_snapshot_clone},
    {"config", "set", 2, "config set KEY VALUE", run_config_set},
    {"gc", "start", 0, "gc start", run_gc_start},
    {"scrub", "start", 0, "scrub start", run_scrub_start},
    {"scrub", "stop", 0, "scrub stop", run_scrub_stop},
    {"sync", NULL, 0, "sync", run_sync},
    {"analytics", "import", 1, "analytics import PATH", run_analytics_import},
};

/* The result of a command: the reason (logged) on failure, "ok..." on success. */
static int finish(struct pfs *p, const char *line, int rc)
{
	char msg[PFS_MSG_MAX];

	pfs_msg_get(p, msg, sizeof(msg));
	if (rc) {
		if (!strncmp(msg, "ok", 2))
			snprintf(msg, sizeof(msg), "%s", strerror(-rc));
		pfs_set_msg(p, "error: %s: %s", line, msg);
		pfs_logl(LOG_WARNING, "pstorfs: ctl: %s: %s", line, msg);
	} else {
		if (strncmp(msg, "ok", 2))
			pfs_set_msg(p, "ok");
		pfs_logl(LOG_INFO, "pstorfs: ctl: %s: ok", line);
	}
	return rc;
}

int pfs_ctl_exec(struct pfs *p, const char *line)
{
	char buf[CTL_LINE_MAX], *w[CTL_MAX_WORDS + 1], *save = NULL;
	int n = 0, rc;

	if (strlen(line) >= sizeof(buf)) {
		pfs_set_msg(p, "error: command too long");
		return -EINVAL;
	}
	snprintf(buf, sizeof(buf), "%s", line);
	for (char *t = strtok_r(buf, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
		if (n == CTL_MAX_WORDS) {
			pfs_set_msg(p, "error: too many words in '%s'", line);
			return -EINVAL;
		}
		w[n++] = t;
	}
	if (n == 0)
		return 0; /* blank line */
	for (size_t i = 0; i < sizeof(ctl_cmds) / sizeof(ctl_cmds[0]); i++) {
		const struct ctl_cmd *c = &ctl_cmds[i];
		int words = c->verb ? 2 : 1;
		if (strcmp(w[0], c->group))
			continue;
		if (c->verb && (n < 2 || strcmp(w[1], c->verb)))
			continue;
		if (n - words != c->nargs) {
			pfs_set_msg(p, "error: %s arguments; usage: %s",
			            n - words < c->nargs ? "missing" : "too many", c->usage);
			return -EINVAL;
		}
		pfs_set_msg(p, "ok");
		return finish(p, line, c->run(p, w + words));
	}
	if (!strcmp(w[0], "cluster") || !strcmp(w[0], "pod")) {
		/* The cluster's own language (cluster/cluster_ctl.c): its result stays readable. */
		pfs_set_msg(p, "ok");
		rc = cluster_ctl(pfs_front_cluster(p), p, n, w);
		if (!rc) {
			char msg[PFS_MSG_MAX], out[PFS_MSG_MAX + 8];
			pfs_msg_get(p, msg, sizeof(msg));
			if (strncmp(msg, "ok", 2)) {
				snprintf(out, sizeof(out), "ok: %s", msg);
				pfs_set_msg(p, "%s", out);
			}
		}
		return finish(p, line, rc);
	}
	pfs_set_msg(p,
	            "error: unknown command '%s' (volume, snapshot, config, gc, scrub, sync, "
	            "analytics, cluster, pod)",
	            line);
	return -EINVAL;
}

int pfs_ctl_write(struct pfs *p, const char *data, size_t len)
{
	char line[CTL_LINE_MAX];
	size_t start = 0;

	while (start < len) {
		size_t end = start;
		while (end < len && data[end] != '\n')
			end++;
		if (end - start >= sizeof(line)) {
			pfs_set_msg(p, "error: command too long");
			return -EINVAL;
		}
		memcpy(line, data + start, end - start);
		line[end - start] = '\0';
		int rc = pfs_ctl_exec(p, line);
		if (rc)
			return rc;
		start = end + 1;
	}
	return 0;
}
