/* fs/api/papi.h - the management REST API (/api/v1/..., /metrics): routes, request bodies,
 * bearer tokens and the HTTP(S) server. It changes and reads nothing of the store itself: each
 * request becomes a ctl line or a control-file read through struct papi_ops, which the front
 * fills with the ctl language (fs/pfs_ctl.c) and the control files' printers (fs/pfs_fuse.c).
 */
#ifndef PSTOR_PAPI_H
#define PSTOR_PAPI_H

#include <stdbool.h>
#include <stddef.h>

#include "pfs_base.h"

/* How the API reaches the store: the same doors a user has on the mount. Each returns 0 or
 * -errno. */
struct papi_ops {
	/* Runs the ctl line LINE; MSG receives what `cat .pstorage/ctl` shows after it ("ok..."
	 * or "error: LINE: reason"). */
	int (*ctl)(void *ctx, const char *line, char *msg, size_t msglen);
	/* The text of the file PATH under the mount root (".pstorage/reduction.json") into B,
	 * exactly as a read of it gives. -ENOENT when there is no such file. */
	int (*read)(void *ctx, const char *path, struct pfs_buf *b);
	/* The names in the directory PATH under the mount root ("volumes", "snapshots/VOL"), one
	 * a line, as readdir lists them. -ENOENT, -ENOTDIR. */
	int (*list)(void *ctx, const char *path, struct pfs_buf *b);
};

/* The mount options that turn the API on (fs/README.md). LISTEN NULL: off. */
struct papi_config {
	const char *listen;     /* ADDR:PORT, [V6ADDR]:PORT */
	const char *cert, *key; /* PEM files; needed unless LISTEN is a loopback address */
	const char *token_file; /* "rw TOKEN" and "ro TOKEN" lines, mode 0600 or stricter */
	const char *timeout;    /* seconds a connection may idle (default 10) */
	const char *max_conns;  /* connections served at once (default 64) */
};

#define PAPI_BODY_MAX (64u << 10) /* a larger request body gets 413 */

/* ---- tokens (papi_auth.c) ------------------------------------------------------------------ */
struct papi_tokens;
/* Reads a token file: lines "rw TOKEN" or "ro TOKEN" (16..256 printable characters, no blanks),
 * blank lines and #-comments; at least one token. A file others than its owner can read or
 * write is refused. MSG receives the reason. -EINVAL, -EACCES, -ENOENT, -ENOMEM. */
int papi_tokens_load(const char *path, struct papi_tokens **out, char *msg, size_t msglen);
void papi_tokens_free(struct papi_tokens *t);
enum papi_access { PAPI_DENIED, PAPI_READ, PAPI_WRITE };
/* What the Authorization header value AUTH (NULL: none) allows, compared in constant time. */
enum papi_access papi_tokens_check(const struct papi_tokens *t, const char *auth);

/* ---- routes and requests (papi_routes.c) ---------------------------------------------------- */
/* One answer: STATUS, CONTENT_TYPE and BODY (owned by the reply). */
struct papi_reply {
	int status;
	const char *content_type;
	bool www_authenticate; /* a 401: say "Bearer" */
	struct pfs_buf body;
};
void papi_reply_free(struct papi_reply *r);

/* Answers one request: METHOD URL (path only, no query), the Authorization header AUTH (NULL:
 * none) and the body BODY/LEN (BODY_TOO_LARGE: it passed PAPI_BODY_MAX and was dropped).
 * Never fails: every error is a reply (JSON {"error", "errno"}). */
struct papi_request {
	const char *method, *url, *auth;
	const char *body;
	size_t len;
	bool body_too_large;
};
void papi_handle(const struct papi_ops *ops, void *ctx, const struct papi_tokens *tokens,
                 const struct papi_request *req, struct papi_reply *r);

/* The route table, for the OpenAPI check: METHOD and PATH ("/api/v1/volumes/{volume}") of route
 * I, I < papi_nroutes. */
extern const unsigned papi_nroutes;
void papi_route_at(unsigned i, const char **method, const char **path);

/* The request-body step alone (the fuzz target's door): the ctl line the route METHOD PATH
 * (a route's own path template, path parameters taken from PATH_ARGS in order) makes of BODY,
 * or an HTTP status >= 400 with the reason in MSG. Returns the status (200 when LINE holds a
 * line; 0 when the route runs no ctl line). */
int papi_body_to_ctl(const char *method, const char *path, const char *const *path_args,
                     const char *body, size_t len, char *line, size_t linelen, char *msg,
                     size_t msglen);

/* The status an errno maps to (one table: EINVAL 400, ENOENT 404, ...), and its name. */
int papi_errno_status(int err);
const char *papi_errno_name(int err);

/* The embedded OpenAPI 3 document (fs/api/papi_openapi.json). */
extern const char papi_openapi_json[];
extern const size_t papi_openapi_json_len;

/* ---- the server (papi_server.c) ------------------------------------------------------------ */
struct papi;
/* Checks CFG before the daemon forks (so errors reach the terminal): the address, TLS unless
 * loopback, the files readable, the token file's form. MSG receives the reason. -EINVAL... */
int papi_config_check(const struct papi_config *cfg, char *msg, size_t msglen);
/* Listens and serves until papi_stop. OPS/CTX must outlive the server. -EADDRINUSE, -EINVAL. */
int papi_start(const struct papi_config *cfg, const struct papi_ops *ops, void *ctx,
               struct papi **out, char *msg, size_t msglen);
/* Stops accepting, waits for the requests in flight, frees. NULL is a no-op. */
void papi_stop(struct papi *a);

#endif
