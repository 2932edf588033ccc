/* cluster/link/clink_tls.c - everything OpenSSL for the link (the only file that includes it):
 * certificates, the TLS 1.3 context, the mutual-authentication handshake with CN and pin checks,
 * and non-blocking record I/O. No sockets are made here and no frames are parsed.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "clink_int.h"

/* OpenSSL's read buffer with read ahead: 16 full TLS records. */
#define CLINK_TLS_READ_BUF (16 * (SSL3_RT_MAX_PLAIN_LENGTH + SSL3_RT_MAX_ENCRYPTED_OVERHEAD + 5))

struct clink_tls {
	SSL_CTX *ctx; /* one context for both roles: the role is set per session */
	char own_name[CLINK_NAME_MAX];
	unsigned char (*pins)[32];
	size_t npins;
};

struct clink_sess {
	SSL *ssl;
};

/* What the callbacks of one handshake see (through the SSL's ex_data, cleared afterwards). */
struct hs_state {
	const struct clink_tls *tls;
	const char *expect_name; /* client side: the server's CN */
	char reason[640];        /* set when our own check refused the peer */
	bool ticket_seen;        /* client side: the server accepted our certificate */
};

static int hs_index = -1;
static pthread_once_t hs_once = PTHREAD_ONCE_INIT;

static void hs_index_init(void)
{
	hs_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* The subject CN of CERT into BUF; false if there is none (or it holds a NUL). */
static bool cert_cn(X509 *cert, char *buf, size_t len)
{
	X509_NAME *subj = X509_get_subject_name(cert);
	int i = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
	unsigned char *utf8 = NULL;
	int n;

	if (i < 0)
		return false;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i)));
	if (n < 0)
		return false;
	if ((size_t)n >= len || strlen((char *)utf8) != (size_t)n) {
		OPENSSL_free(utf8);
		return false;
	}
	memcpy(buf, utf8, (size_t)n + 1);
	OPENSSL_free(utf8);
	return true;
}

static bool cert_sha256(X509 *cert, unsigned char md[32])
{
	unsigned int n = 0;

	return X509_digest(cert, EVP_sha256(), md, &n) == 1 && n == 32;
}

static void hex_colons(const unsigned char md[32], char out[CLINK_FPR_LEN + 1])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 3 * i, 4, i == 31 ? "%02x" : "%02x:", md[i]);
}

/* Runs after OpenSSL's own chain check of each certificate; on the peer's leaf we add the CN
 * (client side) and pin checks, so that a refusal happens inside the handshake and the peer gets
 * an alert instead of a session that closes without a word. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct hs_state *h = ssl ? SSL_get_ex_data(ssl, hs_index) : NULL;
	X509 *cert = X509_STORE_CTX_get_current_cert(xs);
	char cn[CLINK_NAME_MAX];

	if (!ok || !h || !cert || X509_STORE_CTX_get_error_depth(xs) != 0)
		return ok;
	if (h->expect_name && (!cert_cn(cert, cn, sizeof(cn)) || strcmp(cn, h->expect_name) != 0)) {
		snprintf(h->reason, sizeof(h->reason),
		         "server certificate CN is '%s', expected '%s'",
		         cert_cn(cert, cn, sizeof(cn)) ? cn : "(none)", h->expect_name);
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	if (h->tls->npins) {
		unsigned char md[32];
		char hex[CLINK_FPR_LEN + 1];
		size_t i;

		if (!cert_sha256(cert, md))
			return 0;
		for (i = 0; i < h->tls->npins; i++) {
			if (memcmp(md, h->tls->pins[i], 32) == 0)
				return 1;
		}
		hex_colons(md, hex);
		snprintf(h->reason, sizeof(h->reason),
		         "certificate %s is not among the pinned ones", hex);
		X509_STORE_CTX_set_error(xs, X509_V_ERR_CERT_REJECTED);
		return 0;
	}
	return 1;
}

/* In TLS 1.3 the client's handshake is over before the server has checked the client's
 * certificate; the server's first session ticket, sent only after that check, is our proof that
 * we were accepted (a refusal arrives as an alert instead). We never resume sessions. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct hs_state *h = SSL_get_ex_data(ssl, hs_index);

	if (h)
		h->ticket_seen = true;
	return 0; /* not kept: OpenSSL frees it */
}

static void ssl_reason(char *err, size_t errlen, const char *what)
{
	unsigned long e = ERR_peek_last_error();
	const char *r = e ? ERR_reason_error_string(e) : NULL;

	snprintf(err, errlen, "%s: %s", what, r ? r : "unknown OpenSSL error");
	ERR_clear_error();
}

static int parse_pins(struct clink_tls *t, const char *pins, char *err, size_t errlen)
{
	size_t n = 1;
	const char *p;

	if (!pins || !*pins)
		return 0;
	for (p = pins; *p; p++)
		n += *p == ',';
	t->pins = calloc(n, sizeof(*t->pins));
	if (!t->pins) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (p = pins; *p;) {
		unsigned char *md = t->pins[t->npins];
		int nib = 0;

		for (; *p && *p != ','; p++) {
			int v;

			if (*p == ':' || *p == ' ')
				continue;
			if (*p >= '0' && *p <= '9')
				v = *p - '0';
			else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
				v = (*p | 0x20) - 'a' + 10;
			else
				goto bad;
			if (nib >= 64)
				goto bad;
			md[nib / 2] = (unsigned char)(md[nib / 2] << 4 | v);
			nib++;
		}
		if (nib != 64)
			goto bad;
		t->npins++;
		if (*p == ',')
			p++;
	}
	return 0;
bad:
	snprintf(err, errlen, "pin %zu is not a SHA-256 fingerprint (64 hex digits)", t->npins + 1);
	return -EINVAL;
}

static int check_file(const char *what, const char *path, char *err, size_t errlen)
{
	if (!path) {
		snprintf(err, errlen, "no %s file given", what);
		return -EINVAL;
	}
	if (access(path, R_OK) < 0) {
		int e = errno;

		snprintf(err, errlen, "%s %s: %s", what, path, strerror(e));
		return -e;
	}
	return 0;
}

int clink_tls_new(const char *cert_path, const char *key_path, const char *ca_path,
                  const char *pins, struct clink_tls **out, char *err, size_t errlen)
{
	struct clink_tls *t;
	int r;

	if ((r = check_file("certificate", cert_path, err, errlen)) < 0 ||
	    (r = check_file("key", key_path, err, errlen)) < 0 ||
	    (r = check_file("CA", ca_path, err, errlen)) < 0)
		return r;
	pthread_once(&hs_once, hs_index_init);
	if (hs_index < 0) {
		snprintf(err, errlen, "OpenSSL: no ex_data index");
		return -ENOMEM;
	}
	t = calloc(1, sizeof(*t));
	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = parse_pins(t, pins, err, errlen);
	if (r < 0)
		goto err_free;
	r = -ENOMEM;
	t->ctx = SSL_CTX_new(TLS_method());
	if (!t->ctx) {
		ssl_reason(err, errlen, "SSL_CTX_new");
		goto err_free;
	}
	r = -EINVAL;
	if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) != 1) {
		ssl_reason(err, errlen, "TLS 1.3");
		goto err_free;
	}
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_path) != 1) {
		ssl_reason(err, errlen, cert_path);
		goto err_free;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key_path, SSL_FILETYPE_PEM) != 1) {
		ssl_reason(err, errlen, key_path);
		goto err_free;
	}
	if (SSL_CTX_check_private_key(t->ctx) != 1) {
		ssl_reason(err, errlen, "key does not match the certificate");
		goto err_free;
	}
	if (SSL_CTX_load_verify_locations(t->ctx, ca_path, NULL) != 1) {
		ssl_reason(err, errlen, ca_path);
		goto err_free;
	}
	if (!cert_cn(SSL_CTX_get0_certificate(t->ctx), t->own_name, sizeof(t->own_name))) {
		snprintf(err, errlen, "%s: the certificate has no usable CN", cert_path);
		goto err_free;
	}
	/* AES-128-GCM first (TLS 1.3's mandatory suite; OpenSSL 3.0 puts AES-256 first): 4.5
	 * against 2.8 GB/s a core here, and every replicated byte is sealed on one box and opened
	 * on the other. */
	if (SSL_CTX_set_ciphersuites(t->ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
	                                     "TLS_CHACHA20_POLY1305_SHA256") != 1) {
		ssl_reason(err, errlen, "TLS 1.3 cipher suites");
		goto err_free;
	}
	/* The I/O thread retries a write with whatever remains of its staging buffer. */
	SSL_CTX_set_mode(t->ctx,
	                 SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* Read ahead: one read() takes every record the socket holds, not a 5-byte header and then
	 * the body of each (two system calls a record; at qd32 a replicated 4k write cost its
	 * leader two reads for its ACK). The I/O thread reads until TLS wants more, so nothing
	 * complete is left in the buffer while it sleeps in poll(). */
	SSL_CTX_set_read_ahead(t->ctx, 1);
	/* ... and as many records as a 1 MiB write makes: with one record's room (the default),
	 * a replicated 1 MiB write cost the other box 64 reads. */
	SSL_CTX_set_default_read_buffer_len(t->ctx, CLINK_TLS_READ_BUF);
	/* One ticket: the client's proof of acceptance (new_session_cb), not for resumption. */
	SSL_CTX_set_num_tickets(t->ctx, 1);
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(t->ctx, new_session_cb);
	*out = t;
	return 0;
err_free:
	clink_tls_free(t);
	return r;
}

void clink_tls_free(struct clink_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t->pins);
	free(t);
}

const char *clink_tls_own_name(const struct clink_tls *t)
{
	return t->own_name;
}

/* Certificate trouble (ours refused or theirs) is -EACCES; anything else a protocol failure. */
static bool is_cert_reason(int reason)
{
	switch (reason) {
	case SSL_R_CERTIFICATE_VERIFY_FAILED:
	case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
	case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
	case SSL_R_TLSV1_ALERT_ACCESS_DENIED:
	case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
	case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
	case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
	case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
		return true;
	default:
		return false;
	}
}

/* Turns a failed SSL call during the handshake into -errno and a reason. */
static int hs_error(SSL *ssl, int ret, struct hs_state *h, char *err, size_t errlen)
{
	int e = SSL_get_error(ssl, ret);
	long vr = SSL_get_verify_result(ssl);
	unsigned long code = ERR_peek_last_error();
	int reason = code ? ERR_GET_REASON(code) : 0;
	int r;

	if (h->reason[0]) {
		snprintf(err, errlen, "%s", h->reason);
		r = -EACCES;
	} else if (vr != X509_V_OK) {
		snprintf(err, errlen, "certificate verify failed: %s",
		         X509_verify_cert_error_string(vr));
		r = -EACCES;
	} else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
		snprintf(err, errlen, "no certificate");
		r = -EACCES;
	} else if (e == SSL_ERROR_SSL && is_cert_reason(reason)) {
		snprintf(err, errlen, "peer refused our certificate: %s",
		         ERR_reason_error_string(code));
		r = -EACCES;
	} else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN ||
	           reason == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
		int en = errno;

		r = (e == SSL_ERROR_SYSCALL && en && en != EAGAIN) ? -en : -ECONNRESET;
		snprintf(err, errlen, "TLS handshake: %s",
		         r == -ECONNRESET ? "peer closed the connection" : strerror(-r));
	} else {
		snprintf(err, errlen, "TLS handshake: %s",
		         code ? ERR_reason_error_string(code) : "failed");
		r = -EPROTO;
	}
	ERR_clear_error();
	return r;
}

int clink_sess_handshake(struct clink_tls *t, int fd, const char *expect_name, int64_t deadline,
                         struct clink_sess **out, struct clink_peer *peer, char *err, size_t errlen)
{
	struct hs_state h = {.tls = t, .expect_name = expect_name};
	struct clink_sess *s;
	X509 *pc;
	unsigned char md[32];
	int r, ret;

	ERR_clear_error();
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	s->ssl = SSL_new(t->ctx);
	if (!s->ssl || SSL_set_fd(s->ssl, fd) != 1 || SSL_set_ex_data(s->ssl, hs_index, &h) != 1) {
		ssl_reason(err, errlen, "SSL_new");
		r = -ENOMEM;
		goto err_free;
	}
	if (expect_name) {
		SSL_set_connect_state(s->ssl);
		SSL_set_verify(s->ssl, SSL_VERIFY_PEER, verify_cb);
	} else {
		SSL_set_accept_state(s->ssl);
		SSL_set_verify(s->ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
		               verify_cb);
	}
	for (;;) {
		int e;

		errno = 0; /* hs_error reads it for SSL_ERROR_SYSCALL */
		ret = SSL_do_handshake(s->ssl);
		if (ret == 1)
			break;
		e = SSL_get_error(s->ssl, ret);

		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			r = hs_error(s->ssl, ret, &h, err, errlen);
			goto err_free;
		}
		r = clink_wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
		if (r < 0)
			goto err_wait;
	}
	/* Client: wait for the server's verdict on our certificate (see new_session_cb). SSL_peek
	 * processes the ticket or the alert and leaves any application data for the I/O thread. */
	while (expect_name && !h.ticket_seen) {
		char b;

		errno = 0;
		ret = SSL_peek(s->ssl, &b, 1);
		if (ret > 0 || h.ticket_seen)
			break;
		ret = SSL_get_error(s->ssl, ret);
		if (ret != SSL_ERROR_WANT_READ && ret != SSL_ERROR_WANT_WRITE) {
			r = hs_error(s->ssl, -1, &h, err, errlen);
			goto err_free;
		}
		r = clink_wait_fd(fd, ret == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
		if (r < 0)
			goto err_wait;
	}
	SSL_set_ex_data(s->ssl, hs_index, NULL);

	pc = SSL_get0_peer_certificate(s->ssl);
	if (!pc || !cert_cn(pc, peer->name, sizeof(peer->name)) || !cert_sha256(pc, md)) {
		snprintf(err, errlen, "peer certificate has no usable CN");
		r = -EACCES;
		goto err_free;
	}
	hex_colons(md, peer->fingerprint);
	snprintf(peer->cipher, sizeof(peer->cipher), "%s", SSL_get_cipher_name(s->ssl));
	*out = s;
	return 0;
err_wait:
	snprintf(err, errlen, "TLS handshake: %s", r == -ETIMEDOUT ? "timed out" : strerror(-r));
err_free:
	clink_sess_free(s);
	ERR_clear_error();
	return r;
}

static ssize_t io_error(struct clink_sess *s, int ret, short *want, char *err, size_t errlen)
{
	int e = SSL_get_error(s->ssl, ret);
	unsigned long code;
	ssize_t r;

	switch (e) {
	case SSL_ERROR_WANT_READ:
		*want = POLLIN;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		*want = POLLOUT;
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		snprintf(err, errlen, "peer closed the connection");
		return -EPIPE;
	case SSL_ERROR_SYSCALL:
		r = errno ? -errno : -EPIPE;
		snprintf(err, errlen, "%s",
		         r == -EPIPE ? "peer closed the connection (no TLS close)"
		                     : strerror(errno));
		ERR_clear_error();
		return r;
	default:
		code = ERR_peek_last_error();
		if (ERR_GET_REASON(code) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
			snprintf(err, errlen, "peer closed the connection (no TLS close)");
			r = -EPIPE;
		} else {
			snprintf(err, errlen, "TLS: %s",
			         code ? ERR_reason_error_string(code) : "error");
			r = -EPROTO;
		}
		ERR_clear_error();
		return r;
	}
}

ssize_t clink_sess_read(struct clink_sess *s, void *buf, size_t len, short *want, char *err,
                        size_t errlen)
{
	size_t n = 0;
	int ret;

	errno = 0;
	ret = SSL_read_ex(s->ssl, buf, len, &n);
	if (ret == 1)
		return (ssize_t)n;
	return io_error(s, ret, want, err, errlen);
}

ssize_t clink_sess_write(struct clink_sess *s, const void *buf, size_t len, short *want, char *err,
                         size_t errlen)
{
	size_t n = 0;
	int ret;

	errno = 0;
	ret = SSL_write_ex(s->ssl, buf, len, &n);
	if (ret == 1)
		return (ssize_t)n;
	return io_error(s, ret, want, err, errlen);
}

void clink_sess_close_notify(struct clink_sess *s)
{
	SSL_shutdown(s->ssl);
	ERR_clear_error();
}

void clink_sess_free(struct clink_sess *s)
{
	if (!s)
		return;
	SSL_free(s->ssl);
	free(s);
}
