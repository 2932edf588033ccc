/* cluster/cluster.h - ActiveCluster for pstorfs: pods (named groups of volumes) mirrored
 * synchronously between two boxes over mutually authenticated TLS, dedupe-aware on the wire,
 * with resync from a persistent dirty map and online verify. The daemon opens it over an open
 * store; it then takes every change of a stretched pod from the store's change path (a hook)
 * and applies the peer's changes through the same path. All functions return 0 or -errno.
 */
#ifndef PSTOR_CLUSTER_H
#define PSTOR_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>

#include "pfs_store.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cluster_opts {
	const char *name;   /* this box: must be its certificate's CN */
	const char *listen; /* ADDR:PORT */
	const char *cert, *key, *ca;
	const char
	    *pins; /* NULL or SHA-256 fingerprints of the peer's certificate, comma-separated */
	/* Failover (all optional, strings as given in the mount options): */
	const char *mediator;      /* etcd client URLs joined by '|' */
	const char *med_prefix;    /* key prefix, default /pstorfs/ */
	const char *med_ttl;       /* lease seconds, default 5 */
	const char *head_start_ms; /* the preferred box's head start in a race, default 300 */
	const char *timeout_ms;    /* silence after which the peer is gone, default 1500 */
};

struct cluster;

/* Opens the cluster over P: loads the pods and peer from the namespace, listens, and starts
 * the threads. MSG gets a one-line reason on failure (-EINVAL for bad options, -EACCES for a
 * certificate whose CN is not NAME, -EADDRINUSE ...). */
int cluster_open(struct pfs *p, const struct cluster_opts *o, struct cluster **out, char *msg,
                 size_t msglen);
/* Stops the threads and the link, removes the hook. NULL is a no-op. */
void cluster_close(struct cluster *cl);

/* The `cluster ...` and `pod ...` ctl commands (ARGV[0] is "cluster" or "pod"). The result or
 * the reason goes to the store's message (pfs_set_msg / pfs_fail). Without a cluster (CL NULL)
 * every command fails with -ENOTCONN and says how to configure one. */
int cluster_ctl(struct cluster *cl, struct pfs *p, int argc, char **argv);

/* .pstorage/cluster/status[.json]; the value of the `cluster` entry of .pstorage/status (a line
 * of text, or a JSON value: "standalone" without a cluster); Prometheus families. CL may be
 * NULL. */
void cluster_report(struct cluster *cl, bool json, struct pfs_buf *b);
void cluster_status_line(struct cluster *cl, bool json, struct pfs_buf *b);
void cluster_metrics(struct cluster *cl, struct pfs_buf *b);

#ifdef __cplusplus
}
#endif
#endif
