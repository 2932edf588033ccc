/* cluster/mediator/cmed.c - etcd v3 through its JSON gateway: requests built and read with json-c,
 * sent with libcurl (one easy handle, its connection kept), keys and values in base64. On a
 * transport failure the next endpoint is tried within the same call; the one that answered stays
 * current, so a three-node etcd with one node down costs one timeout, once.
 */
#include <errno.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "cmed.h"

#define CMED_BODY_MAX (1u << 20) /* no etcd answer of ours is near this */

struct cmed {
	char *urls[CMED_URLS_MAX];
	int nurls, cur;
	char *ca, *cert, *key;
	int timeout_ms;
	CURL *h;
	pthread_mutex_t lock;       /* one request at a time; the handle */
	pthread_mutex_t stats_lock; /* st */
	struct cmed_stats st;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int cmed_open(const struct cmed_opts *o, struct cmed **out, char *msg, size_t msglen)
{
	struct cmed *m;
	char *list = NULL, *save = NULL, *tok;
	int rc = 0;

	*out = NULL;
	if (!o->urls || !o->urls[0]) {
		snprintf(msg, msglen, "mediator: no endpoint");
		return -EINVAL;
	}
	m = calloc(1, sizeof(*m));
	list = strdup(o->urls);
	if (!m || !list) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->stats_lock, NULL);
	m->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 1000;
	for (tok = strtok_r(list, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
		size_t n = strlen(tok);
		bool https = !strncmp(tok, "https://", 8);
		if (m->nurls == CMED_URLS_MAX) {
			snprintf(msg, msglen, "mediator: more than %d endpoints", CMED_URLS_MAX);
			rc = -EINVAL;
			goto out;
		}
		if ((!https && strncmp(tok, "http://", 7)) || n <= (https ? 8u : 7u) || n > 200 ||
		    strpbrk(tok, " \t\"'\\?#")) {
			snprintf(msg, msglen,
			         "mediator: '%.80s' is not an http:// or https:// etcd client URL",
			         tok);
			rc = -EINVAL;
			goto out;
		}
		while (n > 1 && tok[n - 1] == '/')
			tok[--n] = 0; /* we append /v3/... */
		m->urls[m->nurls] = strdup(tok);
		if (!m->urls[m->nurls++]) {
			rc = -ENOMEM;
			goto out;
		}
	}
	if (!m->nurls) {
		snprintf(msg, msglen, "mediator: no endpoint");
		rc = -EINVAL;
		goto out;
	}
	if ((o->ca && !(m->ca = strdup(o->ca))) || (o->cert && !(m->cert = strdup(o->cert))) ||
	    (o->key && !(m->key = strdup(o->key)))) {
		rc = -ENOMEM;
		goto out;
	}
	pthread_once(&curl_once, curl_init_once);
	m->h = curl_easy_init();
	if (!m->h) {
		rc = -ENOMEM;
		goto out;
	}
	snprintf(m->st.endpoint, sizeof(m->st.endpoint), "%s", m->urls[0]);
	*out = m;
	m = NULL;
out:
	free(list);
	cmed_close(m);
	return rc;
}

void cmed_close(struct cmed *m)
{
	if (!m)
		return;
	if (m->h)
		curl_easy_cleanup(m->h);
	for (int i = 0; i < m->nurls; i++)
		free(m->urls[i]);
	free(m->ca);
	free(m->cert);
	free(m->key);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->stats_lock);
	free(m);
}

void cmed_get_stats(struct cmed *m, struct cmed_stats *s)
{
	pthread_mutex_lock(&m->stats_lock);
	*s = m->st;
	pthread_mutex_unlock(&m->stats_lock);
}

/* ---- transport ------------------------------------------------------------------------------ */

struct body {
	char *b;
	size_t len;
	bool over;
};

static size_t body_write(char *p, size_t size, size_t n, void *arg)
{
	struct body *b = arg;
	size_t len = size * n;

	if (b->len + len > CMED_BODY_MAX) {
		b->over = true;
		return 0; /* curl fails the transfer */
	}
	char *nb = realloc(b->b, b->len + len + 1);
	if (!nb)
		return 0;
	memcpy(nb + b->len, p, len);
	b->b = nb;
	b->len += len;
	b->b[b->len] = 0;
	return len;
}

static void note(struct cmed *m, bool ok, int64_t t0, const char *url, const char *err)
{
	pthread_mutex_lock(&m->stats_lock);
	m->st.requests++;
	m->st.reachable = ok;
	snprintf(m->st.endpoint, sizeof(m->st.endpoint), "%s", url);
	if (ok) {
		m->st.last_ok_ns = now_ns();
		m->st.latency_us = (m->st.last_ok_ns - t0) / 1000;
	} else {
		m->st.failures++;
		snprintf(m->st.err, sizeof(m->st.err), "%.60s: %.180s", url, err);
	}
	pthread_mutex_unlock(&m->stats_lock);
}

/* POSTs REQ to PATH on the current endpoint, then the others; *RESP the parsed answer of the
 * first endpoint that answered with HTTP 200. etcd's own errors (HTTP 4xx/5xx with a JSON
 * "error") are answers: not retried elsewhere, -ENOENT for a missing lease, -EIO otherwise. */
static int post(struct cmed *m, const char *path, json_object *req, json_object **resp)
{
	const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
	int rc = -EHOSTUNREACH;

	*resp = NULL;
	pthread_mutex_lock(&m->lock);
	for (int tries = 0; tries < m->nurls; tries++) {
		const char *base = m->urls[m->cur];
		char url[320], err[CURL_ERROR_SIZE] = "";
		struct body b = {0};
		long status = 0;
		int64_t t0 = now_ns();
		CURLcode cc;

		snprintf(url, sizeof(url), "%s%s", base, path);
		curl_easy_reset(m->h);
		curl_easy_setopt(m->h, CURLOPT_URL, url);
		curl_easy_setopt(m->h, CURLOPT_POSTFIELDS, text);
		curl_easy_setopt(m->h, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(m->h, CURLOPT_WRITEFUNCTION, body_write);
		curl_easy_setopt(m->h, CURLOPT_WRITEDATA, &b);
		curl_easy_setopt(m->h, CURLOPT_ERRORBUFFER, err);
		curl_easy_setopt(m->h, CURLOPT_TIMEOUT_MS, (long)m->timeout_ms);
		curl_easy_setopt(m->h, CURLOPT_CONNECTTIMEOUT_MS, (long)m->timeout_ms);
		curl_easy_setopt(m->h, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(m->h, CURLOPT_PROTOCOLS_STR, "http,https");
		if (m->ca)
			curl_easy_setopt(m->h, CURLOPT_CAINFO, m->ca);
		if (m->cert)
			curl_easy_setopt(m->h, CURLOPT_SSLCERT, m->cert);
		if (m->key)
			curl_easy_setopt(m->h, CURLOPT_SSLKEY, m->key);
		cc = curl_easy_perform(m->h);
		if (cc == CURLE_OK)
			curl_easy_getinfo(m->h, CURLINFO_RESPONSE_CODE, &status);
		if (cc != CURLE_OK || status >= 500 || status == 0) {
			char why[CURL_ERROR_SIZE + 32];
			if (cc != CURLE_OK)
				snprintf(why, sizeof(why), "%s",
				         err[0] ? err : curl_easy_strerror(cc));
			else
				snprintf(why, sizeof(why), "HTTP %ld", status);
			note(m, false, t0, base, why);
			free(b.b);
			m->cur = (m->cur + 1) % m->nurls;
			continue;
		}
		json_object *j = b.b ? json_tokener_parse(b.b) : NULL;
		free(b.b);
		note(m, true, t0, base, NULL);
		if (!j || !json_object_is_type(j, json_type_object)) {
			json_object_put(j);
			rc = -EPROTO;
			break;
		}
		if (status != 200) {
			json_object *e = NULL;
			const char *msg = json_object_object_get_ex(j, "error", &e)
			                      ? json_object_get_string(e)
			                      : "";
			rc = msg && strstr(msg, "lease not found") ? -ENOENT : -EIO;
			pthread_mutex_lock(&m->stats_lock);
			snprintf(m->st.err, sizeof(m->st.err), "%.60s: HTTP %ld: %.160s", base,
			         status, msg ? msg : "");
			pthread_mutex_unlock(&m->stats_lock);
			json_object_put(j);
			break;
		}
		*resp = j;
		rc = 0;
		break;
	}
	pthread_mutex_unlock(&m->lock);
	curl_slist_free_all(hdr);
	return rc;
}

/* ---- JSON helpers -----------------------------------------------------------------------------
 */

static json_object *jint(int64_t v)
{
	char s[24];
	snprintf(s, sizeof(s), "%lld", (long long)v); /* the gateway's int64s are strings */
	return json_object_new_string(s);
}

static int64_t get_i64(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : 0;
}

static json_object *get(json_object *o, const char *k)
{
	json_object *v;
	return o && json_object_object_get_ex(o, k, &v) ? v : NULL;
}

static json_object *jb64(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(4 * ((n + 2) / 3) + 1);
	json_object *j;

	if (!out)
		return NULL;
	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)n);
	j = json_object_new_string(out);
	free(out);
	return j;
}

/* Decodes base64 IN into OUT (NUL-terminated, at most LEN-1 bytes); -EPROTO when malformed. */
static int unb64(const char *in, char *out, size_t len)
{
	size_t n = strlen(in);
	unsigned char *tmp;
	int d;

	if (!len)
		return 0;
	out[0] = 0;
	if (n % 4)
		return -EPROTO;
	tmp = malloc(n / 4 * 3 + 1);
	if (!tmp)
		return -ENOMEM;
	d = n ? EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)n) : 0;
	if (d < 0) {
		free(tmp);
		return -EPROTO;
	}
	/* EVP_DecodeBlock counts the padding's zero bytes */
	for (size_t i = n; i > 0 && in[i - 1] == '=' && d > 0; i--)
		d--;
	if ((size_t)d >= len)
		d = (int)len - 1;
	memcpy(out, tmp, (size_t)d);
	out[d] = 0;
	free(tmp);
	return 0;
}

/* ---- calls ------------------------------------------------------------------------------------
 */

int cmed_lease_grant(struct cmed *m, int ttl_s, int64_t *id, int *granted)
{
	json_object *req = json_object_new_object(), *resp = NULL;
	int rc;

	json_object_object_add(req, "TTL", jint(ttl_s));
	rc = post(m, "/v3/lease/grant", req, &resp);
	if (!rc) {
		*id = get_i64(resp, "ID");
		*granted = (int)get_i64(resp, "TTL");
		if (!*id || *granted <= 0)
			rc = -EPROTO;
	}
	json_object_put(req);
	json_object_put(resp);
	return rc;
}

int cmed_lease_keepalive(struct cmed *m, int64_t id, int *ttl)
{
	json_object *req = json_object_new_object(), *resp = NULL;
	int rc;

	json_object_object_add(req, "ID", jint(id));
	rc = post(m, "/v3/lease/keepalive", req, &resp);
	if (!rc) {
		json_object *res = get(resp, "result");
		if (!res)
			rc = -EPROTO;
		else if ((*ttl = (int)get_i64(res, "TTL")) <= 0)
			rc = -ENOENT; /* expired: etcd leaves TTL out */
	}
	json_object_put(req);
	json_object_put(resp);
	return rc;
}

int cmed_lease_revoke(struct cmed *m, int64_t id)
{
	json_object *req = json_object_new_object(), *resp = NULL;
	int rc;

	json_object_object_add(req, "ID", jint(id));
	rc = post(m, "/v3/lease/revoke", req, &resp);
	json_object_put(req);
	json_object_put(resp);
	return rc;
}

/* The first kv of a range response inside a txn's responses (NULL when absent). */
static json_object *txn_range_kv(json_object *resp)
{
	json_object *rs = get(resp, "responses");
	if (!rs || !json_object_is_type(rs, json_type_array) || !json_object_array_length(rs))
		return NULL;
	json_object *kvs = get(get(json_object_array_get_idx(rs, 0), "response_range"), "kvs");
	if (!kvs || !json_object_is_type(kvs, json_type_array) || !json_object_array_length(kvs))
		return NULL;
	return json_object_array_get_idx(kvs, 0);
}

int cmed_put_if(struct cmed *m, const char *key, const char *value, int64_t lease, int64_t mod_rev,
                int64_t *rev, char *cur, size_t curlen)
{
	json_object *req = json_object_new_object(), *resp = NULL;
	json_object *cmp = json_object_new_object(), *put = json_object_new_object();
	json_object *rput = json_object_new_object(), *range = json_object_new_object();
	json_object *rrange = json_object_new_object();
	json_object *cmps = json_object_new_array(), *succ = json_object_new_array();
	json_object *fail = json_object_new_array();
	int rc;

	*rev = 0;
	if (cur && curlen)
		cur[0] = 0;
	/* mod_revision == 0 is how etcd describes an absent key, so one compare covers both */
	json_object_object_add(cmp, "target", json_object_new_string("MOD"));
	json_object_object_add(cmp, "result", json_object_new_string("EQUAL"));
	json_object_object_add(cmp, "key", jb64(key));
	json_object_object_add(cmp, "mod_revision", jint(mod_rev));
	json_object_array_add(cmps, cmp);
	json_object_object_add(put, "key", jb64(key));
	json_object_object_add(put, "value", jb64(value));
	if (lease)
		json_object_object_add(put, "lease", jint(lease));
	json_object_object_add(rput, "request_put", put);
	json_object_array_add(succ, rput);
	json_object_object_add(range, "key", jb64(key));
	json_object_object_add(rrange, "request_range", range);
	json_object_array_add(fail, rrange);
	json_object_object_add(req, "compare", cmps);
	json_object_object_add(req, "success", succ);
	json_object_object_add(req, "failure", fail);
	rc = post(m, "/v3/kv/txn", req, &resp);
	if (rc)
		goto out;
	if (json_object_get_boolean(get(resp, "succeeded"))) {
		*rev = get_i64(get(resp, "header"), "revision");
		rc = *rev > 0 ? 0 : -EPROTO;
		goto out;
	}
	json_object *kv = txn_range_kv(resp);
	*rev = kv ? get_i64(kv, "mod_revision") : 0;
	if (kv && cur && curlen) {
		json_object *v = get(kv, "value");
		if (v && unb64(json_object_get_string(v), cur, curlen))
			rc = -EPROTO;
	}
	if (!rc)
		rc = -EBUSY;
out:
	json_object_put(req);
	json_object_put(resp);
	return rc;
}

int cmed_get(struct cmed *m, const char *key, int64_t *mod_rev, char *val, size_t len)
{
	json_object *req = json_object_new_object(), *resp = NULL;
	int rc;

	*mod_rev = 0;
	if (len)
		val[0] = 0;
	json_object_object_add(req, "key", jb64(key));
	rc = post(m, "/v3/kv/range", req, &resp);
	if (!rc) {
		json_object *kvs = get(resp, "kvs");
		if (kvs && json_object_is_type(kvs, json_type_array) &&
		    json_object_array_length(kvs)) {
			json_object *kv = json_object_array_get_idx(kvs, 0);
			json_object *v = get(kv, "value");
			*mod_rev = get_i64(kv, "mod_revision");
			if (v)
				rc = unb64(json_object_get_string(v), val, len);
		}
	}
	json_object_put(req);
	json_object_put(resp);
	return rc;
}
