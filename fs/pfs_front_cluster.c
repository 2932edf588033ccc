/* fs/pfs_front_cluster.c - which cluster a mounted store belongs to, for the ctl language and the
 * reports (the daemon opens one store and at most one cluster over it; tests open several
 * stores without one).
 */
#include <pthread.h>

#include "pfs_front_int.h"

static pthread_mutex_t front_lock = PTHREAD_MUTEX_INITIALIZER;
static struct pfs *front_store;
static struct cluster *front_cl;

void pfs_front_set_cluster(struct pfs *p, struct cluster *cl)
{
	pthread_mutex_lock(&front_lock);
	front_store = cl ? p : NULL;
	front_cl = cl;
	pthread_mutex_unlock(&front_lock);
}

struct cluster *pfs_front_cluster(struct pfs *p)
{
	struct cluster *cl;

	pthread_mutex_lock(&front_lock);
	cl = p == front_store ? front_cl : NULL;
	pthread_mutex_unlock(&front_lock);
	return cl;
}
