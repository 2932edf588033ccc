/* fs/api/papi_server.c - the API's HTTP(S) server on libmicrohttpd (the only includer of
 * <microhttpd.h>): the listening socket, TLS through MHD's GnuTLS backend, a thread per
 * connection under a connection limit and an idle timeout, and the request body read up to
 * PAPI_BODY_MAX. What a request means is papi_routes.c's business.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include <microhttpd.h>

#include "papi.h"

#define TIMEOUT_DEFAULT   10
#define MAX_CONNS_DEFAULT 64
#define PEM_MAX           (1u << 20)

struct papi {
	struct MHD_Daemon *mhd;
	const struct papi_ops *ops;
	void *ctx;
	struct papi_tokens *tokens;
	char *cert, *key; /* PEM text: MHD keeps pointers to them while it runs */
	int fd;           /* the listening socket until MHD takes it */
};

/* What the server knows from a config, checked. */
struct resolved {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	bool tls;
	unsigned timeout, max_conns;
};

/* ---- the options ---------------------------------------------------------------------------- */
static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
		return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr))
			return true;
		return IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) && in6->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

/* "ADDR:PORT" or "[V6ADDR]:PORT", numeric address, port 1..65535. */
static int parse_listen(const char *s, struct resolved *rv, char *msg, size_t msglen)
{
	char host[INET6_ADDRSTRLEN + 2], *port, *end;
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	                         .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	const char *colon = strrchr(s, ':');

	if (!colon || colon == s || (size_t)(colon - s) >= sizeof(host))
		goto bad;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	port = (char *)colon + 1;
	if (host[0] == '[') {
		size_t n = strlen(host);
		if (n < 3 || host[n - 1] != ']')
			goto bad;
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	long p = strtol(port, &end, 10);
	if (end == port || *end || p < 1 || p > 65535)
		goto bad;
	if (getaddrinfo(host, port, &hints, &ai) || !ai)
		goto bad;
	memcpy(&rv->addr, ai->ai_addr, ai->ai_addrlen);
	rv->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
bad:
	snprintf(msg, msglen, "bad option api_listen=%s (ADDR:PORT or [ADDR]:PORT, numeric)", s);
	return -EINVAL;
}

static int parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi, unsigned dflt,
                      unsigned *out, char *msg, size_t msglen)
{
	char *end;
	long v;

	if (!s) {
		*out = dflt;
		return 0;
	}
	v = strtol(s, &end, 10);
	if (end == s || *end || v < (long)lo || v > (long)hi) {
		snprintf(msg, msglen, "bad option %s=%s (%u..%u)", opt, s, lo, hi);
		return -EINVAL;
	}
	*out = (unsigned)v;
	return 0;
}

/* The whole of a PEM file, NUL-terminated. */
static int read_pem(const char *opt, const char *path, char **out, char *msg, size_t msglen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	ssize_t n;

	if (fd < 0) {
		snprintf(msg, msglen, "%s %s: %s", opt, path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size == 0 ||
	    (size_t)st.st_size > PEM_MAX) {
		snprintf(msg, msglen, "%s %s: not a PEM file (a regular file of 1 B..1 MiB)", opt,
		         path);
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	n = read(fd, buf, (size_t)st.st_size);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (n != st.st_size || !strstr(buf, "-----BEGIN ")) {
		snprintf(msg, msglen, "%s %s: not a PEM file", opt, path);
		free(buf);
		return -EINVAL;
	}
	*out = buf;
	return 0;
}

static int resolve(const struct papi_config *cfg, struct resolved *rv, char *msg, size_t msglen)
{
	int rc;

	if (!cfg->listen) {
		snprintf(msg, msglen,
		         "api_cert, api_key, api_token_file, api_timeout and "
		         "api_max_conns need api_listen=ADDR:PORT");
		return -EINVAL;
	}
	rc = parse_listen(cfg->listen, rv, msg, msglen);
	if (!rc)
		rc = parse_uint("api_timeout", cfg->timeout, 1, 3600, TIMEOUT_DEFAULT, &rv->timeout,
		                msg, msglen);
	if (!rc)
		rc = parse_uint("api_max_conns", cfg->max_conns, 1, 1024, MAX_CONNS_DEFAULT,
		                &rv->max_conns, msg, msglen);
	if (rc)
		return rc;
	if (!cfg->cert != !cfg->key) {
		snprintf(msg, msglen, "the API needs both api_cert and api_key, or neither");
		return -EINVAL;
	}
	rv->tls = cfg->cert;
	if (!rv->tls && !is_loopback(&rv->addr)) {
		snprintf(msg, msglen,
		         "api_listen=%s is not a loopback address: HTTPS is required there "
		         "(api_cert=PATH,api_key=PATH)",
		         cfg->listen);
		return -EINVAL;
	}
	if (!cfg->token_file) {
		snprintf(msg, msglen, "the API needs api_token_file=PATH (\"rw TOKEN\" lines)");
		return -EINVAL;
	}
	return 0;
}

int papi_config_check(const struct papi_config *cfg, char *msg, size_t msglen)
{
	struct papi_tokens *t = NULL;
	struct resolved rv;
	char *cert = NULL, *key = NULL;
	int rc = resolve(cfg, &rv, msg, msglen);

	if (!rc && rv.tls)
		rc = read_pem("api_cert", cfg->cert, &cert, msg, msglen);
	if (!rc && rv.tls)
		rc = read_pem("api_key", cfg->key, &key, msg, msglen);
	if (!rc)
		rc = papi_tokens_load(cfg->token_file, &t, msg, msglen);
	papi_tokens_free(t);
	free(cert);
	free(key);
	return rc;
}

/* ---- requests ------------------------------------------------------------------------------- */
struct req {
	char *body;
	size_t len;
	bool too_large;
};

static enum MHD_Result answer(struct papi *a, struct MHD_Connection *conn, const char *url,
                              const char *method, struct req *rq)
{
	struct papi_request r = {
	    .method = method,
	    .url = url,
	    .auth =
	        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
	    .body = rq->body,
	    .len = rq->len,
	    .body_too_large = rq->too_large,
	};
	struct papi_reply rep;
	struct MHD_Response *resp;
	enum MHD_Result ret = MHD_NO;

	papi_handle(a->ops, a->ctx, a->tokens, &r, &rep);
	resp = MHD_create_response_from_buffer(rep.body.len, rep.body.data, MHD_RESPMEM_MUST_COPY);
	if (!resp)
		goto out;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep.content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (rep.www_authenticate)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        "Bearer realm=\"pstorfs\"");
	/* A body that was not read to its end cannot be followed by another request. */
	if (rq->too_large)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(conn, (unsigned)rep.status, resp);
	MHD_destroy_response(resp);
out:
	papi_reply_free(&rep);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
	struct papi *a = cls;
	struct req *rq = *con_cls;

	(void)version;
	if (!rq) {
		/* Headers only: a declared length over the limit is refused before any of the
		 * body is read. */
		const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
		                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*con_cls = rq;
		if (cl && strtoull(cl, NULL, 10) > PAPI_BODY_MAX) {
			rq->too_large = true;
			return answer(a, conn, url, method, rq);
		}
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;
		*upload_data_size = 0;
		if (rq->too_large)
			return MHD_YES;
		/* Past the limit the rest is read and dropped (the answer, 413, comes at the end:
		 * MHD cannot send one in the middle of an upload without resetting the client). */
		if (rq->len + n > PAPI_BODY_MAX) {
			free(rq->body);
			rq->body = NULL;
			rq->len = 0;
			rq->too_large = true;
			return MHD_YES;
		}
		char *nb = realloc(rq->body, rq->len + n + 1);
		if (!nb)
			return MHD_NO;
		memcpy(nb + rq->len, upload_data, n);
		rq->body = nb;
		rq->len += n;
		rq->body[rq->len] = '\0';
		return MHD_YES;
	}
	return answer(a, conn, url, method, rq);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *con_cls;

	(void)cls, (void)conn, (void)toe;
	if (rq) {
		free(rq->body);
		free(rq);
		*con_cls = NULL;
	}
}

static void on_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];

	(void)cls;
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	pfs_logl(LOG_WARNING, "pstorfs: api: %s", line);
}

/* ---- start and stop ------------------------------------------------------------------------- */
static int listen_on(const struct resolved *rv, const char *listen_opt, int *out, char *msg,
                     size_t msglen)
{
	int one = 1, fd = socket(rv->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		goto err;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&rv->addr, rv->addrlen) || listen(fd, 64))
		goto err;
	*out = fd;
	return 0;
err:;
	int rc = -errno;
	snprintf(msg, msglen, "api_listen=%s: %s", listen_opt, strerror(errno));
	if (fd >= 0)
		close(fd);
	return rc;
}

int papi_start(const struct papi_config *cfg, const struct papi_ops *ops, void *ctx,
               struct papi **out, char *msg, size_t msglen)
{
	struct papi *a = calloc(1, sizeof(*a));
	struct resolved rv;
	int rc;

	if (!a)
		return -ENOMEM;
	a->ops = ops;
	a->ctx = ctx;
	a->fd = -1;
	rc = resolve(cfg, &rv, msg, msglen);
	if (!rc && rv.tls)
		rc = read_pem("api_cert", cfg->cert, &a->cert, msg, msglen);
	if (!rc && rv.tls)
		rc = read_pem("api_key", cfg->key, &a->key, msg, msglen);
	if (!rc)
		rc = papi_tokens_load(cfg->token_file, &a->tokens, msg, msglen);
	if (!rc)
		rc = listen_on(&rv, cfg->listen, &a->fd, msg, msglen);
	if (rc)
		goto err;
	/* A thread per connection: a request may wait on the store (a commit, a snapshot), and
	 * it must not hold up the others; the connection limit bounds the threads. */
	unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
	                 MHD_USE_POLL | MHD_USE_ERROR_LOG | (rv.tls ? MHD_USE_TLS : 0) |
	                 (rv.addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	struct MHD_OptionItem tls_opts[] = {
	    {MHD_OPTION_HTTPS_MEM_CERT, 0, a->cert},
	    {MHD_OPTION_HTTPS_MEM_KEY, 0, a->key},
	    {MHD_OPTION_END, 0, NULL},
	};
	a->mhd = MHD_start_daemon(
	    flags, 0, NULL, NULL, on_request, a, MHD_OPTION_LISTEN_SOCKET, a->fd,
	    MHD_OPTION_CONNECTION_LIMIT, rv.max_conns, MHD_OPTION_CONNECTION_TIMEOUT, rv.timeout,
	    MHD_OPTION_NOTIFY_COMPLETED, on_completed, a, MHD_OPTION_EXTERNAL_LOGGER, on_log, a,
	    MHD_OPTION_ARRAY, rv.tls ? tls_opts : tls_opts + 2, MHD_OPTION_END);
	a->fd = -1; /* MHD's now: it closes it at stop (and on a failed start) */
	if (!a->mhd) {
		snprintf(msg, msglen, "api_listen=%s: cannot start the HTTP%s server (%s)",
		         cfg->listen, rv.tls ? "S" : "",
		         rv.tls ? "is the key the certificate's, in PEM?" : "see the log");
		rc = -EINVAL;
		goto err;
	}
	pfs_logl(LOG_NOTICE, "pstorfs: api: serving http%s://%s/api/v1/", rv.tls ? "s" : "",
	         cfg->listen);
	*out = a;
	return 0;
err:
	if (a->fd >= 0)
		close(a->fd);
	papi_tokens_free(a->tokens);
	free(a->cert);
	free(a->key);
	free(a);
	return rc;
}

void papi_stop(struct papi *a)
{
	if (!a)
		return;
	MHD_stop_daemon(a->mhd);
	papi_tokens_free(a->tokens);
	free(a->cert);
	free(a->key);
	free(a);
}
