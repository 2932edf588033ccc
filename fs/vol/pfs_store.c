/* fs/vol/pfs_store.c - what the front may ask of the store besides changes: the store's
 * identity, a volume's attributes copied out under the catalogue lock, the last message, and
 * the flash operations the control files expose. Small accessors, so struct pfs stays private.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "pfs_vol_int.h"

uint32_t pfs_block_size(const struct pfs *p)
{
	return p->bs;
}

bool pfs_readonly(const struct pfs *p)
{
	return p->opts.readonly;
}

int64_t pfs_mount_time_ns(const struct pfs *p)
{
	return p->mount_time_ns;
}

void pfs_set_msg(struct pfs *p, const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&p->msg_lock);
	va_start(ap, fmt);
	vsnprintf(p->msg, sizeof(p->msg), fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&p->msg_lock);
}

int pfs_fail(struct pfs *p, enum pfs_err cause, int rc, const char *fmt, ...)
{
	char subject[PFS_MSG_MAX], msg[PFS_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(subject, sizeof(subject), fmt, ap);
	va_end(ap);
	rc = pfs_err_format(msg, sizeof(msg), cause, rc, subject);
	pfs_set_msg(p, "%s", msg);
	return rc;
}

void pfs_msg_get(struct pfs *p, char *out, size_t len)
{
	pthread_mutex_lock(&p->msg_lock);
	snprintf(out, len, "%s", p->msg);
	pthread_mutex_unlock(&p->msg_lock);
}

int pfs_gc_now(struct pfs *p)
{
	int rc = pfs_commit(p); /* releases what the maps dropped, so GC can reclaim it */

	if (rc)
		return rc;
	return ftl_gc(p->ftl, 0);
}

void pfs_flash_space(struct pfs *p, struct ftl_stats *fs)
{
	ftl_get_stats(p->ftl, fs);
}

int pfs_flash_identity(struct pfs *p, struct ftl_dev_identity *id)
{
	return ftl_dev_identify(p->dev, id);
}

int pfs_flash_smart(struct pfs *p, struct ftl_dev_smart *s)
{
	return ftl_get_smart(p->ftl, s);
}
