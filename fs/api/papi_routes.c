/* fs/api/papi_routes.c - the API's routes: which ctl line or control file each request is, its
 * body checked field by field (json-c) before anything runs, and every error as one JSON form.
 * Nothing here changes or prints the store: the ctl language and the report printers do.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "papi.h"

#define SEGS_MAX   10
#define PARAMS_MAX 8
#define VALUE_MAX  256
#define GB_MAX     (1ll << 33) /* 8 EiB in GiB: beyond it the byte count overflows */

/* ---- errors --------------------------------------------------------------------------------- */
/* One table, errno -> HTTP status; anything else is 500. */
#define PAPI_ERRNOS(X)                                                                             \
	X(EINVAL, 400)                                                                             \
	X(ENOENT, 404)                                                                             \
	X(EEXIST, 409)                                                                             \
	X(EBUSY, 409)                                                                              \
	X(ENOSPC, 507)                                                                             \
	X(EACCES, 403)                                                                             \
	X(EPERM, 403)                                                                              \
	X(EROFS, 403)    /* a read-only mount or a snapshot: not the client's to change */         \
	X(EFBIG, 413)    /* a body over PAPI_BODY_MAX */                                           \
	X(ENOTCONN, 503) /* cluster requests on a box that is in no cluster */

int papi_errno_status(int err)
{
	switch (err < 0 ? -err : err) {
#define PAPI_ERRNO_CASE(e, s)                                                                      \
	case e:                                                                                    \
		return s;
		PAPI_ERRNOS(PAPI_ERRNO_CASE)
#undef PAPI_ERRNO_CASE
	}
	return 500;
}

const char *papi_errno_name(int err)
{
	const char *n = strerrorname_np(err < 0 ? -err : err);
	return n ? n : "EIO";
}

void papi_reply_free(struct papi_reply *r)
{
	pfs_buf_free(&r->body);
}

static void reply_error(struct papi_reply *r, int status, int err, const char *text)
{
	pfs_buf_free(&r->body);
	r->status = status ? status : papi_errno_status(err);
	r->content_type = "application/json";
	pfs_buf_printf(&r->body, "{\"error\": ");
	pfs_buf_json_str(&r->body, text);
	pfs_buf_printf(&r->body, ", \"errno\": \"%s\"}\n", papi_errno_name(err));
}

/* ---- the route table ------------------------------------------------------------------------ */
enum field_kind {
	F_NAME,  /* a string that keeps the volume-name rule (pfs_name_valid) */
	F_GB,    /* an integer 1..GB_MAX */
	F_VALUE, /* a string of 1..VALUE_MAX printable characters, no blanks, or an integer */
};

struct field {
	const char *name;
	enum field_kind kind;
};

enum special {
	S_NONE,
	S_LIST_VOLUMES,   /* each volume's summary.json */
	S_LIST_SNAPSHOTS, /* the names in snapshots/VOLUME */
	S_CONFIG_ALL,     /* every setting */
	S_CONFIG_KEY,     /* one setting */
	S_TEXT,           /* FILE as text/plain (Prometheus) */
	S_OPENAPI,
};

struct route {
	const char *method, *path; /* path segments "{x}" are parameters (names) */
	bool mutates;
	struct field body[3]; /* the fields a body may have, all required; none: no body */
	const char *ctl;      /* ctl line template: {x} is parameter or field x */
	const char *file;     /* the file to answer with (after the ctl line, if any) */
	const char *missing;  /* the reason when FILE is missing */
	int status;           /* on success */
	enum special special;
};

#define NAME(n)                                                                                    \
	{                                                                                          \
		n, F_NAME                                                                          \
	}
#define GB(n)                                                                                      \
	{                                                                                          \
		n, F_GB                                                                            \
	}
#define VALUE(n)                                                                                   \
	{                                                                                          \
		n, F_VALUE                                                                         \
	}
#define VOLFILE ".pstorage/volumes/{volume}/summary.json"
#define NOVOL   "{volume}: no such volume"

/* R(METHOD, PATH, fields...): a route; W(...) one that changes something (the rw token). */
#define R(m, p, ...)                                                                               \
	{                                                                                          \
		.method = m, .path = p, __VA_ARGS__                                                \
	}
#define W(m, p, ...)                                                                               \
	{                                                                                          \
		.method = m, .path = p, .mutates = true, __VA_ARGS__                               \
	}
#define BODY(...) .body = {__VA_ARGS__}

static const struct route routes[] = {
    R("GET", "/api/v1/volumes", .special = S_LIST_VOLUMES),
    W("POST", "/api/v1/volumes", BODY(NAME("name"), GB("size_gb")),
      .ctl = "volume create {name} {size_gb}G", .file = ".pstorage/volumes/{name}/summary.json",
      .status = 201),
    R("GET", "/api/v1/volumes/{volume}", .file = VOLFILE, .missing = NOVOL),
    W("DELETE", "/api/v1/volumes/{volume}", .ctl = "volume delete {volume}"),
    W("POST", "/api/v1/volumes/{volume}/resize", BODY(GB("size_gb")),
      .ctl = "volume resize {volume} {size_gb}G", .file = VOLFILE),
    R("GET", "/api/v1/volumes/{volume}/snapshots", .special = S_LIST_SNAPSHOTS, .missing = NOVOL),
    W("POST", "/api/v1/volumes/{volume}/snapshots", BODY(NAME("name")),
      .ctl = "snapshot create {volume} {name}", .status = 201),
    W("DELETE", "/api/v1/volumes/{volume}/snapshots/{snapshot}",
      .ctl = "snapshot delete {volume} {snapshot}"),
    W("POST", "/api/v1/volumes/{volume}/snapshots/{snapshot}/restore",
      .ctl = "snapshot restore {volume} {snapshot}", .file = VOLFILE),
    W("POST", "/api/v1/volumes/{volume}/snapshots/{snapshot}/clone", BODY(NAME("name")),
      .ctl = "snapshot clone {volume} {snapshot} {name}",
      .file = ".pstorage/volumes/{name}/summary.json", .status = 201),
    R("GET", "/api/v1/status", .file = ".pstorage/status.json"),
    R("GET", "/api/v1/metrics/reduction", .file = ".pstorage/reduction.json"),
    R("GET", "/api/v1/analytics/capacity/forecast", .file = ".pstorage/analytics/capacity.json"),
    R("GET", "/api/v1/analytics/health", .file = ".pstorage/analytics/health.json"),
    R("GET", "/api/v1/analytics/tiering/recommendations",
      .file = ".pstorage/analytics/tiering.json"),
    R("GET", "/api/v1/analytics/temperature", .file = ".pstorage/analytics/temperature.json"),
    R("GET", "/api/v1/cluster/status", .file = ".pstorage/cluster/status.json"),
    W("POST", "/api/v1/cluster/peers", BODY(NAME("name"), VALUE("address")),
      .ctl = "cluster peer add {name} {address}", .status = 201),
    W("DELETE", "/api/v1/cluster/peers/{peer}", .ctl = "cluster peer remove {peer}"),
    W("POST", "/api/v1/cluster/pods", BODY(NAME("name")), .ctl = "pod create {name}",
      .status = 201),
    W("DELETE", "/api/v1/cluster/pods/{pod}", .ctl = "pod delete {pod}"),
    W("POST", "/api/v1/cluster/pods/{pod}/volumes", BODY(NAME("volume")),
      .ctl = "pod add {pod} {volume}"),
    W("DELETE", "/api/v1/cluster/pods/{pod}/volumes/{volume}", .ctl = "pod remove {pod} {volume}"),
    W("POST", "/api/v1/cluster/pods/{pod}/stretch", BODY(NAME("peer")),
      .ctl = "pod stretch {pod} {peer}"),
    W("POST", "/api/v1/cluster/pods/{pod}/unstretch", BODY(NAME("peer")),
      .ctl = "pod unstretch {pod} {peer}"),
    W("PUT", "/api/v1/cluster/pods/{pod}/settings/{setting}", BODY(VALUE("value")),
      .ctl = "pod set {pod} {setting} {value}"),
    W("POST", "/api/v1/cluster/pods/{pod}/verify", .ctl = "pod verify {pod}"),
    W("POST", "/api/v1/cluster/pods/{pod}/resolve", BODY(NAME("keep")),
      .ctl = "pod resolve {pod} {keep}"),
    R("GET", "/api/v1/config", .special = S_CONFIG_ALL),
    R("GET", "/api/v1/config/{key}", .file = ".pstorage/config/{key}",
      .missing = "{key}: no such setting", .special = S_CONFIG_KEY),
    W("PUT", "/api/v1/config/{key}", BODY(VALUE("value")), .ctl = "config set {key} {value}",
      .file = ".pstorage/config/{key}", .special = S_CONFIG_KEY),
    R("GET", "/api/v1/openapi.json", .special = S_OPENAPI),
    R("GET", "/metrics", .file = ".pstorage/metrics", .special = S_TEXT),
};
const unsigned papi_nroutes = sizeof(routes) / sizeof(routes[0]);

void papi_route_at(unsigned i, const char **method, const char **path)
{
	*method = routes[i].method;
	*path = routes[i].path;
}

/* ---- parameters ----------------------------------------------------------------------------- */
struct params {
	unsigned n;
	struct {
		char name[32];
		char val[VALUE_MAX + 1];
	} p[PARAMS_MAX];
};

static int param_add(struct params *ps, const char *name, size_t namelen, const char *val)
{
	if (ps->n == PARAMS_MAX || namelen >= sizeof(ps->p[0].name) || strlen(val) > VALUE_MAX)
		return -EINVAL;
	memcpy(ps->p[ps->n].name, name, namelen);
	ps->p[ps->n].name[namelen] = '\0';
	snprintf(ps->p[ps->n].val, sizeof(ps->p[0].val), "%s", val);
	ps->n++;
	return 0;
}

static const char *param_get(const struct params *ps, const char *name, size_t namelen)
{
	for (unsigned i = 0; i < ps->n; i++)
		if (strlen(ps->p[i].name) == namelen && !memcmp(ps->p[i].name, name, namelen))
			return ps->p[i].val;
	return NULL;
}

/* TEMPLATE with each {x} replaced by parameter x. -EINVAL when one is missing or OUT is short. */
static int expand(const char *tpl, const struct params *ps, char *out, size_t outlen)
{
	size_t o = 0;

	for (const char *s = tpl; *s;) {
		const char *val = NULL, *end;
		size_t n;
		if (*s == '{' && (end = strchr(s, '}'))) {
			val = param_get(ps, s + 1, (size_t)(end - s - 1));
			if (!val)
				return -EINVAL;
			n = strlen(val);
			s = end + 1;
		} else {
			val = s++;
			n = 1;
		}
		if (o + n >= outlen)
			return -EINVAL;
		memcpy(out + o, val, n);
		o += n;
	}
	out[o] = '\0';
	return 0;
}

static bool value_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > VALUE_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static void bad_name(char *msg, size_t msglen, const char *name)
{
	pfs_err_format(msg, msglen, PFS_ERR_BAD_NAME, 0, name);
}

/* Matches URL against route R's path; path parameters go to PS. -ENOENT: not this route's
 * path; -EINVAL: its path with a parameter that breaks the name rule (MSG says which). */
static int match(const struct route *r, const char *url, struct params *ps, char *msg,
                 size_t msglen)
{
	const char *u = url, *t = r->path;

	ps->n = 0;
	while (*t && *u) {
		if (*t != '/' || *u != '/')
			return -ENOENT;
		t++, u++;
		size_t tn = strcspn(t, "/"), un = strcspn(u, "/");
		if (t[0] == '{') {
			char val[VALUE_MAX + 1];
			if (un == 0 || un > VALUE_MAX)
				return -ENOENT;
			memcpy(val, u, un);
			val[un] = '\0';
			if (param_add(ps, t + 1, tn - 2, val))
				return -ENOENT;
		} else if (tn != un || memcmp(t, u, tn)) {
			return -ENOENT;
		}
		t += tn, u += un;
	}
	if (*t || *u)
		return -ENOENT;
	for (unsigned i = 0; i < ps->n; i++)
		if (!pfs_name_valid(ps->p[i].val)) {
			bad_name(msg, msglen, ps->p[i].val);
			return -EINVAL;
		}
	return 0;
}

static const char *kind_text(enum field_kind k)
{
	return k == F_NAME ? "a name (string)"
	       : k == F_GB ? "an integer number of GiB"
	                   : "a string or an integer";
}

/* One body field V into PS, checked for its kind. */
static int field_take(const struct field *f, struct json_object *v, struct params *ps, char *msg,
                      size_t msglen)
{
	char val[VALUE_MAX + 1];
	enum json_type t = json_object_get_type(v);

	if (f->kind == F_GB) {
		if (t != json_type_int) {
			snprintf(msg, msglen, "field '%s' must be %s", f->name, kind_text(f->kind));
			return -EINVAL;
		}
		errno = 0;
		int64_t gb = json_object_get_int64(v);
		if (errno || gb < 1 || gb > GB_MAX) {
			snprintf(msg, msglen, "field '%s' must be 1..%lld", f->name, GB_MAX);
			return -EINVAL;
		}
		snprintf(val, sizeof(val), "%" PRId64, gb);
	} else if (t == json_type_string) {
		if (json_object_get_string_len(v) > VALUE_MAX ||
		    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
			snprintf(msg, msglen, "field '%s': too long or holds NUL", f->name);
			return -EINVAL;
		}
		snprintf(val, sizeof(val), "%s", json_object_get_string(v));
		if (f->kind == F_NAME && !pfs_name_valid(val)) {
			bad_name(msg, msglen, val);
			return -EINVAL;
		}
		if (f->kind == F_VALUE && !value_ok(val)) {
			snprintf(msg, msglen,
			         "field '%s': 1..%d printable characters without blanks", f->name,
			         VALUE_MAX);
			return -EINVAL;
		}
	} else if (f->kind == F_VALUE && t == json_type_int) {
		snprintf(val, sizeof(val), "%" PRId64, json_object_get_int64(v));
	} else {
		snprintf(msg, msglen, "field '%s' must be %s", f->name, kind_text(f->kind));
		return -EINVAL;
	}
	return param_add(ps, f->name, strlen(f->name), val);
}

static void field_list(const struct route *r, char *out, size_t len)
{
	size_t o = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < 3 && r->body[i].name && o < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%s%s", i ? ", " : "", r->body[i].name);
	if (!r->body[0].name)
		snprintf(out, len, "none");
}

/* BODY (may be empty when the route takes no fields) into PS: an object with exactly the
 * route's fields. -EINVAL with the reason in MSG. */
static int parse_body(const struct route *r, const char *body, size_t len, struct params *ps,
                      char *msg, size_t msglen)
{
	struct json_tokener *tok;
	struct json_object *o = NULL;
	char fields[96];
	int rc = -EINVAL;

	field_list(r, fields, sizeof(fields));
	if (len == 0) {
		if (!r->body[0].name)
			return 0;
		snprintf(msg, msglen, "a JSON object body is needed (fields: %s)", fields);
		return -EINVAL;
	}
	if (len > PAPI_BODY_MAX) {
		snprintf(msg, msglen, "request body over %u bytes", PAPI_BODY_MAX);
		return -EFBIG;
	}
	tok = json_tokener_new_ex(16);
	if (!tok) {
		snprintf(msg, msglen, "out of memory");
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, body, (int)len);
	enum json_tokener_error jerr = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	while (o && used < len && strchr(" \t\r\n", body[used]) && body[used])
		used++;
	if (!o || jerr != json_tokener_success || used != len) {
		snprintf(msg, msglen, "malformed JSON body: %s",
		         jerr == json_tokener_continue        ? "it ends too soon"
		         : !o || jerr != json_tokener_success ? json_tokener_error_desc(jerr)
		                                              : "something after the object");
		goto out;
	}
	if (!json_object_is_type(o, json_type_object)) {
		snprintf(msg, msglen, "the body must be a JSON object (fields: %s)", fields);
		goto out;
	}
	json_object_object_foreach(o, key, val)
	{
		const struct field *f = NULL;
		for (unsigned i = 0; i < 3 && r->body[i].name; i++)
			if (!strcmp(key, r->body[i].name))
				f = &r->body[i];
		if (!f) {
			snprintf(msg, msglen, "unknown field '%.64s' (fields: %s)", key, fields);
			goto out;
		}
		if (field_take(f, val, ps, msg, msglen))
			goto out;
	}
	for (unsigned i = 0; i < 3 && r->body[i].name; i++)
		if (!param_get(ps, r->body[i].name, strlen(r->body[i].name))) {
			snprintf(msg, msglen, "missing field '%s' (fields: %s)", r->body[i].name,
			         fields);
			goto out;
		}
	rc = 0;
out:
	json_object_put(o);
	json_tokener_free(tok);
	return rc;
}

int papi_body_to_ctl(const char *method, const char *path, const char *const *path_args,
                     const char *body, size_t len, char *line, size_t linelen, char *msg,
                     size_t msglen)
{
	const struct route *r = NULL;
	struct params ps = {0};
	int rc;

	for (unsigned i = 0; i < papi_nroutes; i++)
		if (!strcmp(routes[i].method, method) && !strcmp(routes[i].path, path))
			r = &routes[i];
	if (!r) {
		snprintf(msg, msglen, "no route %s %s", method, path);
		return 404;
	}
	for (const char *t = strchr(r->path, '{'); t; t = strchr(t + 1, '{')) {
		const char *arg = *path_args++;
		if (!pfs_name_valid(arg)) {
			bad_name(msg, msglen, arg);
			return 400;
		}
		if (param_add(&ps, t + 1, strcspn(t + 1, "}"), arg))
			return 400;
	}
	rc = parse_body(r, body, len, &ps, msg, msglen);
	if (rc)
		return papi_errno_status(rc);
	if (!r->ctl)
		return 0;
	if (expand(r->ctl, &ps, line, linelen)) {
		snprintf(msg, msglen, "command too long");
		return 400;
	}
	return 200;
}

/* ---- answering ------------------------------------------------------------------------------ */
struct call {
	const struct papi_ops *ops;
	void *ctx;
	struct papi_reply *r;
};

static void strip_nl(struct pfs_buf *b)
{
	while (b->len && (b->data[b->len - 1] == '\n' || b->data[b->len - 1] == '\r'))
		b->data[--b->len] = '\0';
}

/* The file at template TPL as the reply body; MISSING (a template) is the reason on -ENOENT. */
static int reply_file(struct call *c, const struct route *r, const struct params *ps, int status)
{
	char path[512], why[600];
	struct pfs_buf b = {0};
	int rc = expand(r->file, ps, path, sizeof(path));

	if (!rc)
		rc = c->ops->read(c->ctx, path, &b);
	if (rc) {
		if (rc != -ENOENT || !r->missing || expand(r->missing, ps, why, sizeof(why)))
			snprintf(why, sizeof(why), "%s: %s", path, strerror(-rc));
		reply_error(c->r, 0, rc, why);
		goto out;
	}
	c->r->status = status;
	if (r->special == S_TEXT) {
		c->r->content_type = "text/plain; version=0.0.4; charset=utf-8";
		c->r->body = b;
		return 0;
	}
	c->r->content_type = "application/json";
	if (r->special == S_CONFIG_KEY) {
		strip_nl(&b);
		pfs_buf_printf(&c->r->body, "{\"key\": ");
		pfs_buf_json_str(&c->r->body, param_get(ps, "key", 3));
		pfs_buf_printf(&c->r->body, ", \"value\": ");
		pfs_buf_json_str(&c->r->body, b.data ? b.data : "");
		pfs_buf_printf(&c->r->body, "}\n");
		goto out;
	}
	c->r->body = b;
	return 0;
out:
	pfs_buf_free(&b);
	return rc;
}

/* The lines of directory PATH, each a name; -errno. FN(arg, name) for each. */
static int each_name(struct call *c, const char *path,
                     int (*fn)(struct call *, const char *, void *), void *arg)
{
	struct pfs_buf b = {0};
	int rc = c->ops->list(c->ctx, path, &b);
	char *save = NULL;

	if (rc || !b.data)
		goto out;
	for (char *n = strtok_r(b.data, "\n", &save); n && !rc; n = strtok_r(NULL, "\n", &save))
		rc = fn(c, n, arg);
out:
	pfs_buf_free(&b);
	return rc;
}

struct list_arg {
	struct pfs_buf out;
	unsigned n;
};

static int add_volume(struct call *c, const char *name, void *arg)
{
	struct list_arg *a = arg;
	struct pfs_buf b = {0};
	char path[PFS_NAME_MAX + 64];

	snprintf(path, sizeof(path), ".pstorage/volumes/%s/summary.json", name);
	int rc = c->ops->read(c->ctx, path, &b);
	if (rc == -ENOENT) /* deleted since the listing */
		rc = 0;
	else if (!rc) {
		strip_nl(&b);
		pfs_buf_printf(&a->out, "%s%s", a->n++ ? ",\n" : "\n", b.data ? b.data : "{}");
	}
	pfs_buf_free(&b);
	return rc;
}

static int add_name(struct call *c, const char *name, void *arg)
{
	struct list_arg *a = arg;

	(void)c;
	pfs_buf_printf(&a->out, "%s", a->n++ ? ", " : "");
	pfs_buf_json_str(&a->out, name);
	return 0;
}

static int add_setting(struct call *c, const char *name, void *arg)
{
	struct list_arg *a = arg;
	struct pfs_buf b = {0};
	char path[PFS_NAME_MAX + 32];

	snprintf(path, sizeof(path), ".pstorage/config/%s", name);
	int rc = c->ops->read(c->ctx, path, &b);
	if (!rc) {
		strip_nl(&b);
		pfs_buf_printf(&a->out, "%s\n  ", a->n++ ? "," : "");
		pfs_buf_json_str(&a->out, name);
		pfs_buf_printf(&a->out, ": ");
		pfs_buf_json_str(&a->out, b.data ? b.data : "");
	}
	pfs_buf_free(&b);
	return rc;
}

static void reply_list(struct call *c, const struct route *r, const struct params *ps)
{
	struct list_arg a = {0};
	char path[PFS_NAME_MAX + 32], why[256];
	int rc;

	if (r->special == S_LIST_VOLUMES) {
		pfs_buf_printf(&a.out, "{\"volumes\": [");
		rc = each_name(c, "volumes", add_volume, &a);
		pfs_buf_printf(&a.out, "%s]}\n", a.n ? "\n" : "");
	} else if (r->special == S_LIST_SNAPSHOTS) {
		const char *vol = param_get(ps, "volume", 6);
		snprintf(path, sizeof(path), "snapshots/%s", vol);
		pfs_buf_printf(&a.out, "{\"volume\": ");
		pfs_buf_json_str(&a.out, vol);
		pfs_buf_printf(&a.out, ", \"snapshots\": [");
		rc = each_name(c, path, add_name, &a);
		pfs_buf_printf(&a.out, "]}\n");
	} else {
		pfs_buf_printf(&a.out, "{");
		rc = each_name(c, ".pstorage/config", add_setting, &a);
		pfs_buf_printf(&a.out, "\n}\n");
	}
	if (!rc && a.out.err)
		rc = a.out.err;
	if (rc) {
		pfs_buf_free(&a.out);
		if (rc != -ENOENT || !r->missing || expand(r->missing, ps, why, sizeof(why)))
			snprintf(why, sizeof(why), "%s", strerror(-rc));
		reply_error(c->r, 0, rc, why);
		return;
	}
	c->r->status = 200;
	c->r->content_type = "application/json";
	c->r->body = a.out;
}

/* A mutation: the ctl line, then the route's file or the ctl's message. */
static void run_ctl(struct call *c, const struct route *r, const struct params *ps)
{
	char line[1024], msg[512];
	int rc = expand(r->ctl, ps, line, sizeof(line));

	if (rc) {
		reply_error(c->r, 0, -EINVAL, "command too long");
		return;
	}
	msg[0] = '\0';
	rc = c->ops->ctl(c->ctx, line, msg, sizeof(msg));
	if (rc) {
		reply_error(c->r, 0, rc, msg[0] ? msg : strerror(-rc));
		return;
	}
	if (r->file) {
		reply_file(c, r, ps, r->status ? r->status : 200);
		return;
	}
	c->r->status = r->status ? r->status : 200;
	c->r->content_type = "application/json";
	pfs_buf_printf(&c->r->body, "{\"message\": ");
	pfs_buf_json_str(&c->r->body, msg);
	pfs_buf_printf(&c->r->body, "}\n");
}

void papi_handle(const struct papi_ops *ops, void *ctx, const struct papi_tokens *tokens,
                 const struct papi_request *req, struct papi_reply *r)
{
	struct call c = {ops, ctx, r};
	const struct route *rt = NULL;
	bool path_known = false;
	struct params ps;
	char msg[512];
	int rc = -ENOENT;

	memset(r, 0, sizeof(*r));
	enum papi_access access = papi_tokens_check(tokens, req->auth);
	if (access == PAPI_DENIED) {
		r->www_authenticate = true;
		reply_error(r, 401, EACCES,
		            "missing or wrong bearer token (Authorization: Bearer TOKEN)");
		return;
	}
	if (req->body_too_large) {
		snprintf(msg, sizeof(msg), "request body over %u bytes", PAPI_BODY_MAX);
		reply_error(r, 0, EFBIG, msg);
		return;
	}
	for (unsigned i = 0; i < papi_nroutes && !rt; i++) {
		rc = match(&routes[i], req->url, &ps, msg, sizeof(msg));
		if (rc == -ENOENT)
			continue;
		path_known = true;
		/* HEAD is GET without the body (MHD leaves the body out). */
		if (!strcmp(routes[i].method, req->method) ||
		    (!strcmp(req->method, "HEAD") && !strcmp(routes[i].method, "GET")))
			rt = &routes[i];
		else if (!rc)
			rc = -ENOENT;
		if (rc && rc != -ENOENT)
			break; /* a bad name in the path: the same for every method */
	}
	if (rc == -EINVAL) {
		reply_error(r, 0, rc, msg);
		return;
	}
	if (!rt) {
		snprintf(msg, sizeof(msg), "%s %s: %s", req->method, req->url,
		         path_known ? "method not allowed" : "no such endpoint");
		reply_error(r, path_known ? 405 : 404, path_known ? ENOTSUP : ENOENT, msg);
		return;
	}
	if (rt->mutates && access != PAPI_WRITE) {
		reply_error(r, 0, EPERM, "the read-only token cannot change anything");
		return;
	}
	rc = parse_body(rt, req->body, req->len, &ps, msg, sizeof(msg));
	if (rc) {
		reply_error(r, 0, rc, msg);
		return;
	}
	if (rt->ctl)
		run_ctl(&c, rt, &ps);
	else if (rt->special == S_OPENAPI) {
		r->status = 200;
		r->content_type = "application/json";
		pfs_buf_printf(&r->body, "%.*s", (int)papi_openapi_json_len, papi_openapi_json);
	} else if (rt->file)
		reply_file(&c, rt, &ps, 200);
	else
		reply_list(&c, rt, &ps);
	if (r->body.err)
		reply_error(r, 0, -ENOMEM, "out of memory");
}
