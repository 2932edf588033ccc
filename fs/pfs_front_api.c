/* fs/pfs_front_api.c - the REST API's door onto this mount (fs/api): its ctl lines run as a
 * write to .pstorage/ctl runs them and its reads are the control files' own text, so the API
 * and the files can never disagree. Holds nothing of the store, only the lock that keeps a
 * request's command and the message it leaves together.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "papi.h"
#include "pfs_front_int.h"

struct pfs_front_api {
	struct pfs *p;
	struct pfs_fuse *f;
	pthread_mutex_t lock; /* one API command and its message at a time */
	struct papi *srv;
};

static int api_ctl(void *ctx, const char *line, char *msg, size_t msglen)
{
	struct pfs_front_api *a = ctx;
	int rc;

	pthread_mutex_lock(&a->lock);
	rc = pfs_fuse_ctl(a->f, line);
	pfs_msg_get(a->p, msg, msglen);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

static int api_read(void *ctx, const char *path, struct pfs_buf *b)
{
	struct pfs_front_api *a = ctx;
	return pfs_fuse_read_path(a->f, path, b);
}

static int api_list(void *ctx, const char *path, struct pfs_buf *b)
{
	struct pfs_front_api *a = ctx;
	return pfs_fuse_list_path(a->f, path, b);
}

static const struct papi_ops api_ops = {.ctl = api_ctl, .read = api_read, .list = api_list};

int pfs_front_api_start(struct pfs *p, struct pfs_fuse *f, const struct papi_config *cfg,
                        struct pfs_front_api **out, char *msg, size_t msglen)
{
	struct pfs_front_api *a;
	int rc;

	*out = NULL;
	if (!cfg->listen)
		return 0;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->p = p;
	a->f = f;
	pthread_mutex_init(&a->lock, NULL);
	rc = papi_start(cfg, &api_ops, a, &a->srv, msg, msglen);
	if (rc) {
		pthread_mutex_destroy(&a->lock);
		free(a);
		return rc;
	}
	*out = a;
	return 0;
}

void pfs_front_api_stop(struct pfs_front_api *a)
{
	if (!a)
		return;
	papi_stop(a->srv);
	pthread_mutex_destroy(&a->lock);
	free(a);
}
