/* tests/fs/test_fs_log.c - the daemon log's levels: each line reaches syslog with the level
 * its call site gives (seen through pfs_logl_set_sink), so `journalctl -p warning` shows
 * failures and damage and leaves routine lines out.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "pfs_front_int.h"
#include "pfs_vol_int.h"

#define MAX_LINES 64

static struct {
	int level[MAX_LINES];
	char line[MAX_LINES][256];
	int n;
} seen;

static void sink(int level, const char *line)
{
	if (seen.n < MAX_LINES) {
		seen.level[seen.n] = level;
		snprintf(seen.line[seen.n], sizeof(seen.line[0]), "%s", line);
		seen.n++;
	}
}

/* The level of the first line containing WHAT, or -1. */
static int level_of(const char *what)
{
	for (int i = 0; i < seen.n; i++)
		if (strstr(seen.line[i], what))
			return seen.level[i];
	return -1;
}

static void setup(void)
{
	memset(&seen, 0, sizeof(seen));
	pfs_logl_set_sink(sink);
}

static void teardown(void)
{
	pfs_logl_set_sink(NULL);
}

TestSuite(fs_log, .init = setup, .fini = teardown, .timeout = 60);

Test(fs_log, each_line_keeps_its_level)
{
	pfs_logl(LOG_ERR, "pstorfs: test %d", 1);
	pfs_logl(LOG_WARNING, "pstorfs: test %d", 2);
	pfs_logl(LOG_NOTICE, "pstorfs: test %d", 3);
	pfs_logl(LOG_INFO, "pstorfs: test %d", 4);
	cr_assert_eq(seen.n, 4);
	cr_expect_eq(level_of("test 1"), LOG_ERR);
	cr_expect_eq(level_of("test 2"), LOG_WARNING);
	cr_expect_eq(level_of("test 3"), LOG_NOTICE);
	cr_expect_eq(level_of("test 4"), LOG_INFO);
	cr_expect_str_eq(seen.line[3], "pstorfs: test 4");
}

/* Through real call sites: a ctl command that works is routine (info); one that is refused is
 * a warning, so the operator sees it with -p warning. */
Test(fs_log, ctl_ok_is_info_and_a_refused_command_is_a_warning)
{
	char img[] = "/tmp/pstor-log-XXXXXX", msg[256];
	struct pfs_mkfs_params prm = {.size = 128ull << 20, .segment_size = 1u << 20};
	struct pfs_opts o = {.device = img, .dedupe = -1, .commit_interval_ms = -1};
	struct pfs *p = NULL;
	int fd = mkstemp(img);

	cr_assert_geq(fd, 0);
	close(fd);
	unlink(img);
	cr_assert_eq(pfs_mkfs(img, &prm, msg, sizeof(msg)), 0, "mkfs: %s", msg);
	cr_assert_eq(pfs_open(&o, &p, msg, sizeof(msg)), 0, "pfs_open: %s", msg);
	cr_expect_eq(pfs_ctl_exec(p, "volume create v 16M"), 0);
	cr_expect_neq(pfs_ctl_exec(p, "volume create v 16M"), 0);
	cr_expect_neq(pfs_ctl_exec(p, "config set compression rot13"), 0);
	pfs_close(p);
	unlink(img);
	cr_expect_eq(level_of("ctl: volume create v 16M: ok"), LOG_INFO);
	cr_expect_eq(level_of("ctl: volume create v 16M: volume v already exists"), LOG_WARNING);
	cr_expect_eq(level_of("ctl: config set compression rot13"), LOG_WARNING);
	for (int i = 0; i < seen.n; i++)
		cr_expect(seen.level[i] >= LOG_ERR && seen.level[i] <= LOG_DEBUG, "line %s",
		          seen.line[i]);
}
