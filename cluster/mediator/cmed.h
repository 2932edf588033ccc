/* cluster/mediator/cmed.h - the mediator client: a few etcd v3 calls (lease grant and keepalive,
 * a compare-and-put transaction, a read) through etcd's JSON gateway with libcurl, over one or
 * several endpoints (a three-node etcd), http or https. It knows nothing of pods or epochs: the
 * cluster decides what the keys mean.
 *
 * Every function returns 0 or -errno: -EHOSTUNREACH when no endpoint answered in time, -EPROTO
 * for an answer it cannot read, -ENOENT for an unknown or expired lease, -EBUSY for a compare
 * that failed. Calls are serialized: one request at a time per client.
 */
#ifndef PSTOR_CMED_H
#define PSTOR_CMED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CMED_URLS_MAX 8

struct cmed_opts {
	const char *urls;            /* "http://10.0.0.1:2379|https://..." */
	const char *ca, *cert, *key; /* for https endpoints: CA file, client certificate and key */
	int timeout_ms;              /* per request and endpoint (connect included) */
};

struct cmed;

/* Parses the endpoint list (-EINVAL with a reason for a malformed one); makes no request. */
int cmed_open(const struct cmed_opts *o, struct cmed **out, char *msg, size_t msglen);
void cmed_close(struct cmed *m); /* NULL is a no-op */

/* A lease of TTL_S seconds; etcd may grant a longer one (its minimum): *GRANTED. */
int cmed_lease_grant(struct cmed *m, int ttl_s, int64_t *id, int *granted);
/* One keepalive: *TTL the seconds left after it. -ENOENT when the lease has expired. */
int cmed_lease_keepalive(struct cmed *m, int64_t id, int *ttl);
/* Drops a lease (and the keys attached to it). */
int cmed_lease_revoke(struct cmed *m, int64_t id);

/* Puts KEY = VALUE, attached to LEASE (0: none), only if KEY's mod revision is MOD_REV (0: only if
 * KEY does not exist). On success *REV is the revision of the put (the key's new mod revision).
 * When the compare fails: -EBUSY, *REV the key's mod revision now (0: absent) and its value in
 * CUR (may be NULL). */
int cmed_put_if(struct cmed *m, const char *key, const char *value, int64_t lease, int64_t mod_rev,
                int64_t *rev, char *cur, size_t curlen);
/* Reads KEY: *MOD_REV 0 and VAL "" when absent. */
int cmed_get(struct cmed *m, const char *key, int64_t *mod_rev, char *val, size_t len);

struct cmed_stats {
	bool reachable;     /* the last request got an answer */
	int64_t last_ok_ns; /* CLOCK_MONOTONIC of the last answer (0: never) */
	int64_t latency_us; /* of the last answered request */
	char endpoint[256]; /* the endpoint in use */
	char err[256];      /* the last failure */
	uint64_t requests, failures;
};
void cmed_get_stats(struct cmed *m, struct cmed_stats *s);

#endif
