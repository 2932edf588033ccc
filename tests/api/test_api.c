/* tests/api/test_api.c - the REST API's routes, bodies and tokens (fs/api) over a fake store:
 * each request's ctl line, every bad input refused before anything runs, and the OpenAPI
 * document against the route table in both directions. The real mount: it_api.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "papi.h"

#define RW "rwtoken-0123456789abcdef"
#define RO "rotoken-0123456789abcdef"

/* A store with one volume "vol" (snapshot "s1") and one setting "dedupe". */
struct fake {
	unsigned ctl_calls;
	char line[1024];
	int ctl_rc;
};

static int fake_ctl(void *ctx, const char *line, char *msg, size_t len)
{
	struct fake *f = ctx;

	f->ctl_calls++;
	snprintf(f->line, sizeof(f->line), "%s", line);
	if (f->ctl_rc)
		snprintf(msg, len, "error: %s: it failed", line);
	else
		snprintf(msg, len, "ok");
	return f->ctl_rc;
}

static int fake_read(void *ctx, const char *path, struct pfs_buf *b)
{
	(void)ctx;
	if (!strcmp(path, ".pstorage/volumes/vol/summary.json") ||
	    !strcmp(path, ".pstorage/volumes/new/summary.json"))
		pfs_buf_printf(b, "{\"name\": \"%s\"}\n", strstr(path, "vol/") ? "vol" : "new");
	else if (!strcmp(path, ".pstorage/config/dedupe"))
		pfs_buf_printf(b, "on\n");
	else if (!strcmp(path, ".pstorage/metrics"))
		pfs_buf_printf(b, "pstorfs_volumes 1\n");
	else if (!strcmp(path, ".pstorage/reduction.json"))
		pfs_buf_printf(b, "{\"total_ratio\": 2.0}\n");
	else
		return -ENOENT;
	return 0;
}

static int fake_list(void *ctx, const char *path, struct pfs_buf *b)
{
	(void)ctx;
	if (!strcmp(path, "volumes"))
		pfs_buf_printf(b, "vol\n");
	else if (!strcmp(path, "snapshots/vol"))
		pfs_buf_printf(b, "s1\n");
	else if (!strcmp(path, ".pstorage/config"))
		pfs_buf_printf(b, "dedupe\n");
	else
		return -ENOENT;
	return 0;
}

static const struct papi_ops ops = {fake_ctl, fake_read, fake_list};
static struct papi_tokens *tokens;
static char tokpath[64];

static void setup(void)
{
	char msg[256];
	snprintf(tokpath, sizeof(tokpath), "/tmp/test_api_tok.XXXXXX");
	int fd = mkstemp(tokpath);
	cr_assert(fd >= 0);
	dprintf(fd, "# tokens\nrw " RW "\n\nro " RO "\n");
	close(fd);
	cr_assert_eq(papi_tokens_load(tokpath, &tokens, msg, sizeof(msg)), 0, "%s", msg);
}

static void teardown(void)
{
	papi_tokens_free(tokens);
	unlink(tokpath);
}

TestSuite(api, .init = setup, .fini = teardown);

/* One request; the reply's status. */
static int req(struct fake *f, const char *tok, const char *method, const char *url,
               const char *body, struct papi_reply *r)
{
	char auth[128];
	snprintf(auth, sizeof(auth), "Bearer %s", tok ? tok : "");
	struct papi_request rq = {method, url, tok ? auth : NULL, body, body ? strlen(body) : 0,
	                          false};
	papi_handle(&ops, f, tokens, &rq, r);
	return r->status;
}

static int status_of(struct fake *f, const char *tok, const char *method, const char *url,
                     const char *body)
{
	struct papi_reply r;
	int s = req(f, tok, method, url, body, &r);
	papi_reply_free(&r);
	return s;
}

Test(api, mutations_are_ctl_lines)
{
	static const struct {
		const char *method, *url, *body, *line;
		int status;
	} cases[] = {
	    {"POST", "/api/v1/volumes", "{\"name\": \"new\", \"size_gb\": 10}",
	     "volume create new 10G", 201},
	    {"DELETE", "/api/v1/volumes/vol", NULL, "volume delete vol", 200},
	    {"POST", "/api/v1/volumes/vol/resize", "{\"size_gb\": 3}", "volume resize vol 3G", 200},
	    {"POST", "/api/v1/volumes/vol/snapshots", "{\"name\":\"s2\"}", "snapshot create vol s2",
	     201},
	    {"DELETE", "/api/v1/volumes/vol/snapshots/s1", NULL, "snapshot delete vol s1", 200},
	    {"POST", "/api/v1/volumes/vol/snapshots/s1/restore", "{}", "snapshot restore vol s1",
	     200},
	    {"POST", "/api/v1/volumes/vol/snapshots/s1/clone", "{\"name\": \"new\"}",
	     "snapshot clone vol s1 new", 201},
	    {"PUT", "/api/v1/config/dedupe", "{\"value\": \"on\"}", "config set dedupe on", 200},
	    {"PUT", "/api/v1/config/commit_interval_ms", "{\"value\": 500}",
	     "config set commit_interval_ms 500", 404 /* the fake has no such file */},
	    {"POST", "/api/v1/cluster/pods", "{\"name\": \"p\"}", "pod create p", 201},
	    {"POST", "/api/v1/cluster/pods/p/volumes", "{\"volume\": \"vol\"}", "pod add p vol",
	     200},
	    {"DELETE", "/api/v1/cluster/pods/p/volumes/vol", NULL, "pod remove p vol", 200},
	    {"PUT", "/api/v1/cluster/pods/p/settings/replication", "{\"value\": \"sync\"}",
	     "pod set p replication sync", 200},
	    {"POST", "/api/v1/cluster/pods/p/resolve", "{\"keep\": \"b\"}", "pod resolve p b", 200},
	    {"POST", "/api/v1/cluster/peers", "{\"name\": \"b\", \"address\": \"10.0.0.2:7000\"}",
	     "cluster peer add b 10.0.0.2:7000", 201},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f = {0};
		int s = status_of(&f, RW, cases[i].method, cases[i].url, cases[i].body);
		cr_expect_eq(s, cases[i].status, "%s %s: %d", cases[i].method, cases[i].url, s);
		cr_expect_eq(f.ctl_calls, 1);
		cr_expect_str_eq(f.line, cases[i].line);
	}
}

Test(api, reads_are_the_files)
{
	struct fake f = {0};
	struct papi_reply r;

	cr_assert_eq(req(&f, RO, "GET", "/api/v1/volumes/vol", NULL, &r), 200);
	cr_expect_str_eq(r.body.data, "{\"name\": \"vol\"}\n");
	papi_reply_free(&r);
	cr_assert_eq(req(&f, RO, "GET", "/api/v1/volumes", NULL, &r), 200);
	cr_expect_str_eq(r.body.data, "{\"volumes\": [\n{\"name\": \"vol\"}\n]}\n");
	papi_reply_free(&r);
	cr_assert_eq(req(&f, RO, "GET", "/api/v1/volumes/vol/snapshots", NULL, &r), 200);
	cr_expect_str_eq(r.body.data, "{\"volume\": \"vol\", \"snapshots\": [\"s1\"]}\n");
	papi_reply_free(&r);
	cr_assert_eq(req(&f, RO, "GET", "/api/v1/config/dedupe", NULL, &r), 200);
	cr_expect_str_eq(r.body.data, "{\"key\": \"dedupe\", \"value\": \"on\"}\n");
	papi_reply_free(&r);
	cr_assert_eq(req(&f, RO, "GET", "/metrics", NULL, &r), 200);
	cr_expect_str_eq(r.body.data, "pstorfs_volumes 1\n");
	cr_expect(strstr(r.content_type, "text/plain"));
	papi_reply_free(&r);
	cr_assert_eq(req(&f, RO, "HEAD", "/metrics", NULL, &r), 200);
	papi_reply_free(&r);
	cr_assert_eq(req(&f, RO, "GET", "/api/v1/volumes/nope", NULL, &r), 404);
	cr_expect_str_eq(r.body.data,
	                 "{\"error\": \"nope: no such volume\", \"errno\": \"ENOENT\"}\n");
	papi_reply_free(&r);
	cr_expect_eq(f.ctl_calls, 0);
}

Test(api, failed_command_carries_the_ctl_message)
{
	struct fake f = {.ctl_rc = -EEXIST};
	struct papi_reply r;

	cr_assert_eq(req(&f, RW, "POST", "/api/v1/volumes", "{\"name\":\"vol\",\"size_gb\":1}", &r),
	             409);
	cr_expect_str_eq(r.body.data, "{\"error\": \"error: volume create vol 1G: it failed\", "
	                              "\"errno\": \"EEXIST\"}\n");
	papi_reply_free(&r);
}

Test(api, bad_input_changes_nothing)
{
	static const struct {
		const char *tok, *method, *url, *body;
		int status;
	} cases[] = {
	    {NULL, "POST", "/api/v1/volumes", "{\"name\": \"a\", \"size_gb\": 1}", 401},
	    {"wrong-token-0123456789", "DELETE", "/api/v1/volumes/vol", NULL, 401},
	    {RW "x", "DELETE", "/api/v1/volumes/vol", NULL, 401},
	    {"short", "DELETE", "/api/v1/volumes/vol", NULL, 401},
	    {RO, "DELETE", "/api/v1/volumes/vol", NULL, 403},
	    {RO, "PUT", "/api/v1/config/dedupe", "{\"value\": \"off\"}", 403},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\", \"size_gb\": 1", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\", \"size_gb\": 1} x", 400},
	    {RW, "POST", "/api/v1/volumes", "[1, 2]", 400},
	    {RW, "POST", "/api/v1/volumes", "", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\"}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\", \"size_gb\": 1, \"x\": 0}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\", \"size_gb\": \"1\"}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\", \"size_gb\": 1.5}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\", \"size_gb\": 0}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\", \"size_gb\": -1}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\", \"size_gb\": 99999999999999}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": 7, \"size_gb\": 1}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a b\", \"size_gb\": 1}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \".hidden\", \"size_gb\": 1}", 400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\\nvolume delete x\", \"size_gb\": 1}",
	     400},
	    {RW, "POST", "/api/v1/volumes", "{\"name\": \"a\\u0000b\", \"size_gb\": 1}", 400},
	    {RW, "DELETE", "/api/v1/volumes/a;b", NULL, 400},
	    {RW, "DELETE", "/api/v1/volumes/vol", "{\"force\": true}", 400},
	    {RW, "PUT", "/api/v1/config/dedupe", "{\"value\": \"on off\"}", 400},
	    {RW, "PUT", "/api/v1/config/dedupe", "{\"value\": true}", 400},
	    {RW, "PATCH", "/api/v1/volumes/vol", NULL, 405},
	    {RW, "GET", "/api/v1/nothing", NULL, 404},
	    {RW, "GET", "/api/v1/volumes/", NULL, 404},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fake f = {0};
		struct papi_reply r;
		int s = req(&f, cases[i].tok, cases[i].method, cases[i].url, cases[i].body, &r);
		cr_expect_eq(s, cases[i].status, "case %zu %s %s: %d %s", i, cases[i].method,
		             cases[i].url, s, r.body.data);
		cr_expect_eq(f.ctl_calls, 0, "case %zu ran a command", i);
		struct json_object *o = json_tokener_parse(r.body.data);
		cr_expect(o && json_object_object_get_ex(o, "error", NULL) &&
		              json_object_object_get_ex(o, "errno", NULL),
		          "case %zu: %s", i, r.body.data);
		json_object_put(o);
		papi_reply_free(&r);
	}
}

Test(api, too_large_body_is_413)
{
	struct fake f = {0};
	struct papi_reply r;
	struct papi_request rq = {"POST", "/api/v1/volumes", "Bearer " RW, NULL, 0, true};

	papi_handle(&ops, &f, tokens, &rq, &r);
	cr_expect_eq(r.status, 413);
	cr_expect_eq(f.ctl_calls, 0);
	papi_reply_free(&r);
}

Test(api, errno_table)
{
	cr_expect_eq(papi_errno_status(-EINVAL), 400);
	cr_expect_eq(papi_errno_status(-ENOENT), 404);
	cr_expect_eq(papi_errno_status(-EEXIST), 409);
	cr_expect_eq(papi_errno_status(-EBUSY), 409);
	cr_expect_eq(papi_errno_status(-ENOSPC), 507);
	cr_expect_eq(papi_errno_status(-EACCES), 403);
	cr_expect_eq(papi_errno_status(-EPERM), 403);
	cr_expect_eq(papi_errno_status(-EIO), 500);
	cr_expect_str_eq(papi_errno_name(-ENOENT), "ENOENT");
}

static void write_tokens(const char *text, mode_t mode)
{
	FILE *f = fopen(tokpath, "w");
	cr_assert(f);
	fputs(text, f);
	fclose(f);
	chmod(tokpath, mode);
}

Test(api, token_file_form)
{
	struct papi_tokens *t = NULL;
	char msg[256];

	write_tokens("rw " RW "\n", 0644);
	cr_expect_eq(papi_tokens_load(tokpath, &t, msg, sizeof(msg)), -EACCES);
	cr_expect(strstr(msg, "chmod 600"), "%s", msg);
	write_tokens("rw short\n", 0600);
	cr_expect_eq(papi_tokens_load(tokpath, &t, msg, sizeof(msg)), -EINVAL);
	write_tokens("admin " RW "\n", 0600);
	cr_expect_eq(papi_tokens_load(tokpath, &t, msg, sizeof(msg)), -EINVAL);
	write_tokens("rw " RW " extra\n", 0600);
	cr_expect_eq(papi_tokens_load(tokpath, &t, msg, sizeof(msg)), -EINVAL);
	write_tokens("# nothing\n\n", 0600);
	cr_expect_eq(papi_tokens_load(tokpath, &t, msg, sizeof(msg)), -EINVAL);
	write_tokens("ro " RO "\n", 0600);
	cr_assert_eq(papi_tokens_load(tokpath, &t, msg, sizeof(msg)), 0, "%s", msg);
	cr_expect_eq(papi_tokens_check(t, "Bearer " RO), PAPI_READ);
	cr_expect_eq(papi_tokens_check(t, "bearer " RO), PAPI_READ);
	cr_expect_eq(papi_tokens_check(t, "Bearer " RW), PAPI_DENIED);
	cr_expect_eq(papi_tokens_check(t, "Basic " RO), PAPI_DENIED);
	cr_expect_eq(papi_tokens_check(t, NULL), PAPI_DENIED);
	papi_tokens_free(t);
}

/* Every route the server has is in the document, and every operation of the document is a
 * route the server has. */
Test(api, openapi_matches_routes)
{
	struct json_object *doc = json_tokener_parse(papi_openapi_json), *paths;
	unsigned ops_in_doc = 0;

	cr_assert(doc, "papi_openapi.json does not parse");
	cr_assert(json_object_object_get_ex(doc, "paths", &paths));
	for (unsigned i = 0; i < papi_nroutes; i++) {
		const char *m, *p;
		char lower[8];
		struct json_object *item;
		papi_route_at(i, &m, &p);
		for (size_t k = 0; k <= strlen(m); k++)
			lower[k] = (char)(m[k] >= 'A' && m[k] <= 'Z' ? m[k] + 32 : m[k]);
		cr_expect(json_object_object_get_ex(paths, p, &item) &&
		              json_object_object_get_ex(item, lower, NULL),
		          "route %s %s is not in the OpenAPI document", m, p);
	}
	json_object_object_foreach(paths, path, item)
	{
		json_object_object_foreach(item, method, op)
		{
			bool found = false;
			(void)op;
			for (unsigned i = 0; i < papi_nroutes; i++) {
				const char *m, *p;
				papi_route_at(i, &m, &p);
				found |= !strcmp(p, path) && !strcasecmp(m, method);
			}
			cr_expect(found, "OpenAPI has %s %s, the server has no such route", method,
			          path);
			ops_in_doc++;
		}
	}
	cr_expect_eq(ops_in_doc, papi_nroutes);
	json_object_put(doc);
}

Test(api, openapi_is_served)
{
	struct fake f = {0};
	struct papi_reply r;

	cr_assert_eq(req(&f, RO, "GET", "/api/v1/openapi.json", NULL, &r), 200);
	cr_expect_eq(r.body.len, papi_openapi_json_len);
	cr_expect(!memcmp(r.body.data, papi_openapi_json, r.body.len));
	papi_reply_free(&r);
}

Test(api, body_to_ctl)
{
	char line[256], msg[256];
	const char *args[] = {"vol", "s1"};

	cr_expect_eq(papi_body_to_ctl("POST", "/api/v1/volumes/{volume}/snapshots/{snapshot}/clone",
	                              args, "{\"name\":\"c\"}", 12, line, sizeof(line), msg,
	                              sizeof(msg)),
	             200);
	cr_expect_str_eq(line, "snapshot clone vol s1 c");
	cr_expect_eq(papi_body_to_ctl("POST", "/api/v1/volumes", NULL, "{\"name\":\"c\"}", 12, line,
	                              sizeof(line), msg, sizeof(msg)),
	             400);
	cr_expect(strstr(msg, "missing field 'size_gb'"), "%s", msg);
}

Test(api, config_check)
{
	char msg[256];
	struct papi_config c = {.listen = "127.0.0.1:8080", .token_file = tokpath};

	cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), 0, "%s", msg);
	c.listen = "[::1]:8080";
	cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), 0, "%s", msg);
	c.listen = "127.9.9.9:1";
	cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), 0, "%s", msg);
	static const char *const bad[] = {
	    "0.0.0.0:8080",    "10.1.2.3:443",   "[::]:8080", "127.0.0.1", "127.0.0.1:0",
	    "127.0.0.1:65536", "localhost:8080", ":8080",     "[::1:8080", "127.0.0.1:80x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c.listen = bad[i];
		cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), -EINVAL, "%s accepted",
		             bad[i]);
	}
	c.listen = "127.0.0.1:8080";
	c.timeout = "0";
	cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), -EINVAL);
	c.timeout = NULL;
	c.max_conns = "2000";
	cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), -EINVAL);
	c.max_conns = NULL;
	c.token_file = NULL;
	cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), -EINVAL);
	c.token_file = tokpath;
	c.cert = tokpath; /* a key without a certificate, and not PEM either */
	cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), -EINVAL);
	c.key = tokpath;
	cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), -EINVAL);
	cr_expect(strstr(msg, "not a PEM file"), "%s", msg);
	c = (struct papi_config){.token_file = tokpath};
	cr_expect_eq(papi_config_check(&c, msg, sizeof(msg)), -EINVAL);
	cr_expect(strstr(msg, "need api_listen"), "%s", msg);
}
