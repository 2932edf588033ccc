/* tests/cluster/test_link.c - criterion suite for the replication link (cluster/link/clink.h):
 * framing and queues over real TLS on loopback, certificate refusals with their reasons, pins,
 * close/shutdown semantics, backpressure and timeouts. Certificates come from mkcerts.sh.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "clink.h"

#ifndef PSTOR_MKCERTS
#error "PSTOR_MKCERTS must name tests/cluster/mkcerts.sh"
#endif

static char dir[64];
static char err[256];

static void setup(void)
{
	char cmd[512];

	strcpy(dir, "/tmp/pstor-clink-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	/* good/: the CA both boxes trust; other/: same names, a CA nobody trusts. */
	snprintf(cmd, sizeof(cmd), "sh %s %s/good a b c && sh %s %s/other a b", PSTOR_MKCERTS, dir,
	         PSTOR_MKCERTS, dir);
	cr_assert_eq(system(cmd), 0, "mkcerts.sh failed");
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(link, .init = setup, .fini = teardown, .timeout = 60);

static char *path(const char *ca, const char *file)
{
	static char buf[8][192];
	static int i;
	char *p = buf[i++ % 8];

	snprintf(p, sizeof(buf[0]), "%s/%s/%.64s", dir, ca, file);
	return p;
}

/* Certificates of NAME signed by CA_DIR's CA, trusting TRUST_DIR's CA. */
static struct clink_tls *tls_of(const char *ca_dir, const char *name, const char *trust_dir,
                                const char *pins)
{
	char crt[64], key[64];
	struct clink_tls *t = NULL;
	int r;

	snprintf(crt, sizeof(crt), "%s.crt", name);
	snprintf(key, sizeof(key), "%s.key", name);
	r = clink_tls_new(path(ca_dir, crt), path(ca_dir, key), path(trust_dir, "ca.crt"), pins, &t,
	                  err, sizeof(err));
	cr_assert_eq(r, 0, "clink_tls_new: %s", err);
	return t;
}

struct conn_arg {
	struct clink_tls *tls;
	int port;
	const char *expect;
	int timeout_ms; /* 0: 5000 */
	struct clink *c;
	int r;
	char err[256];
};

static void *connect_main(void *p)
{
	struct conn_arg *a = p;
	char hp[32];

	snprintf(hp, sizeof(hp), "127.0.0.1:%d", a->port);
	a->r = clink_connect(a->tls, hp, a->expect, a->timeout_ms ? a->timeout_ms : 5000, &a->c,
	                     a->err, sizeof(a->err));
	return NULL;
}

/* Connects CLI to SRV over loopback; both results and reasons come back. */
struct pair {
	struct clink_tls *ts, *tc;
	struct clink *srv, *cli;
	int rs, rc;
	char es[256], ec[256];
};

static struct pair connect_pair(struct clink_tls *srv, struct clink_tls *cli, const char *expect)
{
	struct clink_listener *l;
	struct conn_arg a = {.tls = cli, .expect = expect};
	struct pair p = {.ts = srv, .tc = cli};
	pthread_t th;

	cr_assert_eq(clink_listen(srv, "127.0.0.1:0", &l, err, sizeof(err)), 0, "%s", err);
	a.port = clink_listener_port(l);
	cr_assert_gt(a.port, 0);
	pthread_create(&th, NULL, connect_main, &a);
	p.rs = clink_accept(l, 5000, &p.srv, p.es, sizeof(p.es));
	pthread_join(th, NULL);
	p.rc = a.r;
	p.cli = a.c;
	strcpy(p.ec, a.err);
	clink_listener_close(l);
	return p;
}

/* Closes what connect_pair made (the connections first: they use the certificates). */
static void close_pair(struct pair *p)
{
	clink_close(p->cli);
	clink_close(p->srv);
	clink_tls_free(p->tc);
	clink_tls_free(p->ts);
	*p = (struct pair){0};
}

static struct pair good_pair(void)
{
	struct pair p =
	    connect_pair(tls_of("good", "a", "good", NULL), tls_of("good", "b", "good", NULL), "a");

	cr_assert_eq(p.rs, 0, "accept: %s", p.es);
	cr_assert_eq(p.rc, 0, "connect: %s", p.ec);
	return p;
}

static int send1(struct clink *c, uint16_t type, const void *buf, size_t len)
{
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};

	return clink_send(c, type, &iov, 1);
}

static void fill(uint8_t *b, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++)
		b[i] = (uint8_t)(seed * 2654435761u + i * 31u + (i >> 9));
}

static bool check(const uint8_t *b, size_t len, uint32_t seed)
{
	for (size_t i = 0; i < len; i++) {
		if (b[i] != (uint8_t)(seed * 2654435761u + i * 31u + (i >> 9)))
			return false;
	}
	return true;
}

Test(link, handshake_reports_names_fingerprint_and_cipher)
{
	struct pair p = good_pair();
	char fp[128];
	FILE *f;

	cr_expect_str_eq(clink_peer_name(p.srv), "b");
	cr_expect_str_eq(clink_peer_name(p.cli), "a");
	cr_expect_str_eq(clink_cipher(p.cli), "TLS_AES_128_GCM_SHA256");
	/* The fingerprint is the one openssl prints, lowercased. */
	snprintf(fp, sizeof(fp), "openssl x509 -in %s -noout -fingerprint -sha256 | cut -d= -f2",
	         path("good", "a.crt"));
	f = popen(fp, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(fp, sizeof(fp), f));
	pclose(f);
	fp[strcspn(fp, "\n")] = 0;
	for (char *s = fp; *s; s++)
		*s = (char)(*s >= 'A' && *s <= 'F' ? *s + 32 : *s);
	cr_expect_str_eq(clink_peer_fingerprint(p.cli), fp);
	cr_expect(clink_is_up(p.srv) && clink_is_up(p.cli));
	cr_expect_str_eq(clink_down_reason(p.cli), "");
	close_pair(&p);
}

Test(link, tls_new_checks_files_and_pins)
{
	struct clink_tls *t = NULL;

	cr_expect_eq(clink_tls_new(path("good", "nope.crt"), path("good", "a.key"),
	                           path("good", "ca.crt"), NULL, &t, err, sizeof(err)),
	             -ENOENT);
	cr_expect_eq(clink_tls_new(path("good", "a.crt"), path("good", "b.key"),
	                           path("good", "ca.crt"), NULL, &t, err, sizeof(err)),
	             -EINVAL, "key of another certificate: %s", err);
	cr_expect_eq(clink_tls_new(path("good", "a.crt"), path("good", "a.key"),
	                           path("good", "ca.crt"), "12:34", &t, err, sizeof(err)),
	             -EINVAL);
	t = tls_of("good", "c", "good", "");
	cr_expect_str_eq(clink_tls_own_name(t), "c");
	clink_tls_free(t);
}

struct flood {
	struct clink *c;
	uint16_t id;
	int count;
};

#define FLOOD_THREADS 3
#define FLOOD_MSGS    1500

static void *flood_send(void *p)
{
	struct flood *f = p;
	uint8_t buf[9000];

	for (int i = 0; i < f->count; i++) {
		uint32_t seed = (uint32_t)f->id << 20 | (uint32_t)i;
		size_t len = (seed * 7919u) % sizeof(buf);
		struct iovec iov[2] = {{buf, len / 3}, {buf + len / 3, len - len / 3}};

		fill(buf, len, seed);
		/* The type carries the sender; the first 4 payload bytes would be too clever. */
		cr_assert_eq(clink_send(f->c, f->id, iov, 2), 0);
	}
	return NULL;
}

struct drain {
	struct clink *c;
	int expect, got;
	int next[16];
	bool ok;
};

static void *flood_recv(void *p)
{
	struct drain *d = p;

	d->ok = true;
	while (d->got < d->expect) {
		uint16_t type;
		void *buf;
		size_t len;
		uint32_t seed;

		if (clink_recv(d->c, &type, &buf, &len, 10000) != 0) {
			d->ok = false;
			return NULL;
		}
		/* Per sending thread, messages arrive in order and whole. */
		seed = (uint32_t)type << 20 | (uint32_t)d->next[type & 15]++;
		if (len != (seed * 7919u) % 9000 || !check(buf, len, seed))
			d->ok = false;
		free(buf);
		d->got++;
	}
	return NULL;
}

Test(link, many_messages_both_ways_from_several_threads)
{
	struct pair p = good_pair();
	struct flood f[2][FLOOD_THREADS];
	struct drain d[2] = {{.c = p.srv, .expect = FLOOD_THREADS * FLOOD_MSGS},
	                     {.c = p.cli, .expect = FLOOD_THREADS * FLOOD_MSGS}};
	pthread_t ts[2][FLOOD_THREADS], tr[2];
	struct clink_stats st;

	for (int s = 0; s < 2; s++) {
		pthread_create(&tr[s], NULL, flood_recv, &d[s]);
		for (int i = 0; i < FLOOD_THREADS; i++) {
			f[s][i] = (struct flood){s ? p.srv : p.cli, (uint16_t)(i + 1), FLOOD_MSGS};
			pthread_create(&ts[s][i], NULL, flood_send, &f[s][i]);
		}
	}
	for (int s = 0; s < 2; s++) {
		for (int i = 0; i < FLOOD_THREADS; i++)
			pthread_join(ts[s][i], NULL);
		pthread_join(tr[s], NULL);
		cr_expect(d[s].ok, "side %d: wrong or missing messages (%d of %d)", s, d[s].got,
		          d[s].expect);
	}
	clink_get_stats(p.cli, &st);
	cr_expect_eq(st.msgs_sent, FLOOD_THREADS * FLOOD_MSGS);
	cr_expect_eq(st.msgs_received, FLOOD_THREADS * FLOOD_MSGS);
	cr_expect_gt(st.bytes_sent, st.msgs_sent * 8);
	close_pair(&p);
}

/* The receive hook: it takes the messages it accepts (type 7 here) on the I/O thread, in the
 * order they came, with their bytes and the count of messages queued before each; the others
 * stay queued for clink_recv, in their order. Every other one it keeps (and frees) itself. */
struct hooked {
	pthread_mutex_t lock;
	uint32_t seen[64];
	uint64_t queued[64];
	int n;
	bool bad;
};

static bool take_sevens(void *arg, uint16_t type, void **buf, size_t len, uint64_t queued)
{
	struct hooked *h = arg;
	uint32_t v;

	if (type != 7)
		return false;
	pthread_mutex_lock(&h->lock);
	if (len != sizeof(v) || h->n >= 64) {
		h->bad = true;
	} else {
		memcpy(&v, *buf, sizeof(v));
		h->queued[h->n] = queued;
		h->seen[h->n++] = v;
		if (v % 4 == 1) { /* taken: the link must not free it too (ASan would see that) */
			free(*buf);
			*buf = NULL;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return true;
}

Test(link, receive_hook_takes_what_it_accepts_and_the_rest_stays_queued_in_order)
{
	struct pair p = good_pair();
	struct hooked h = {.lock = PTHREAD_MUTEX_INITIALIZER};
	uint16_t type;
	void *buf;
	size_t len;

	clink_set_rx_hook(p.srv, take_sevens, &h);
	for (uint32_t i = 0; i <= 40; i++)
		cr_assert_eq(send1(p.cli, i % 2 ? 7 : 8, &i, sizeof(i)), 0);
	for (uint32_t i = 0; i <= 40; i += 2) {
		cr_assert_eq(clink_recv(p.srv, &type, &buf, &len, 10000), 0);
		cr_expect_eq(type, 8);
		cr_expect(len == sizeof(i) && !memcmp(buf, &i, sizeof(i)), "message %u", i);
		free(buf);
	}
	/* Every hooked message came before the last plain one, so all were handed over. */
	pthread_mutex_lock(&h.lock);
	cr_expect(!h.bad);
	cr_expect_eq(h.n, 20);
	for (int i = 0; i < h.n; i++) {
		cr_expect_eq(h.seen[i], (uint32_t)(2 * i + 1));
		/* The eights before seven 2i + 1: 0, 2, ..., 2i. */
		cr_expect_eq(h.queued[i], (uint64_t)i + 1, "seven %d: %llu queued before it",
		             2 * i + 1, (unsigned long long)h.queued[i]);
	}
	pthread_mutex_unlock(&h.lock);
	/* Removed: the next seven is queued like any message. */
	clink_set_rx_hook(p.srv, NULL, NULL);
	uint32_t last = 99;
	cr_assert_eq(send1(p.cli, 7, &last, sizeof(last)), 0);
	cr_assert_eq(clink_recv(p.srv, &type, &buf, &len, 10000), 0);
	cr_expect(type == 7 && len == sizeof(last) && !memcmp(buf, &last, sizeof(last)));
	free(buf);
	cr_expect_eq(h.n, 20);
	close_pair(&p);
}

Test(link, largest_message_arrives_whole_and_one_more_byte_is_refused)
{
	struct pair p = good_pair();
	uint8_t *big = malloc(CLINK_MSG_MAX + 1);
	struct iovec iov[2] = {{big, CLINK_MSG_MAX}, {big, 1}};
	uint16_t type;
	void *buf;
	size_t len;

	cr_assert_not_null(big);
	fill(big, CLINK_MSG_MAX, 77);
	cr_expect_eq(clink_send(p.cli, 3, iov, 2), -EMSGSIZE);
	cr_expect_eq(send1(p.cli, 0, NULL, 0), 0); /* an empty message is fine */
	cr_expect_eq(send1(p.cli, 65535, big, CLINK_MSG_MAX), 0);
	cr_assert_eq(clink_recv(p.srv, &type, &buf, &len, 10000), 0);
	cr_expect(type == 0 && len == 0 && buf);
	free(buf);
	cr_assert_eq(clink_recv(p.srv, &type, &buf, &len, 20000), 0);
	cr_expect_eq(type, 65535);
	cr_assert_eq(len, CLINK_MSG_MAX);
	cr_expect(check(buf, len, 77));
	free(buf);
	cr_expect(clink_is_up(p.cli));
	free(big);
	close_pair(&p);
}

Test(link, server_refuses_a_client_of_another_ca)
{
	struct pair p = connect_pair(tls_of("good", "a", "good", NULL),
	                             tls_of("other", "b", "good", NULL), "a");

	cr_expect_eq(p.rs, -EACCES, "accept: %d %s", p.rs, p.es);
	cr_expect_str_eq(p.es, "certificate verify failed: unable to get local issuer certificate");
	/* The client learns it in clink_connect, not at its first send. */
	cr_expect_eq(p.rc, -EACCES, "connect: %d %s", p.rc, p.ec);
	cr_expect(strstr(p.ec, "peer refused our certificate"), "%s", p.ec);
	close_pair(&p);
}

Test(link, client_refuses_a_server_of_another_ca)
{
	struct pair p = connect_pair(tls_of("other", "a", "good", NULL),
	                             tls_of("good", "b", "good", NULL), "a");

	cr_expect_eq(p.rc, -EACCES, "connect: %d %s", p.rc, p.ec);
	cr_expect_str_eq(p.ec, "certificate verify failed: unable to get local issuer certificate");
	cr_expect_eq(p.rs, -EACCES, "accept: %d %s", p.rs, p.es);
	cr_expect(strstr(p.es, "peer refused our certificate"), "%s", p.es);
	close_pair(&p);
}

Test(link, client_refuses_a_server_with_another_name)
{
	struct pair p =
	    connect_pair(tls_of("good", "c", "good", NULL), tls_of("good", "b", "good", NULL), "a");

	cr_expect_eq(p.rc, -EACCES, "connect: %d %s", p.rc, p.ec);
	cr_expect_str_eq(p.ec, "server certificate CN is 'c', expected 'a'");
	cr_expect_eq(p.rs, -EACCES, "accept: %d %s", p.rs, p.es);
	close_pair(&p);
}

/* A raw OpenSSL client: no certificate, or ours, and bytes of our choosing after the handshake. */
struct raw_arg {
	int port;
	bool with_cert;
	const uint8_t *bytes;
	size_t len;
	int ok;
};

static void *raw_client(void *p)
{
	struct raw_arg *a = p;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)a->port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	SSL *ssl;
	char b;

	sa.sin_addr.s_addr = htonl(0x7f000001);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_load_verify_locations(ctx, path("good", "ca.crt"), NULL);
	if (a->with_cert) {
		SSL_CTX_use_certificate_file(ctx, path("good", "b.crt"), SSL_FILETYPE_PEM);
		SSL_CTX_use_PrivateKey_file(ctx, path("good", "b.key"), SSL_FILETYPE_PEM);
	}
	ssl = SSL_new(ctx);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && SSL_set_fd(ssl, fd) == 1 &&
	    SSL_connect(ssl) == 1) {
		a->ok = 1;
		if (a->len)
			SSL_write(ssl, a->bytes, (int)a->len);
		SSL_read(ssl, &b, 1); /* until the server closes */
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return NULL;
}

static int raw_accept(struct raw_arg *a, struct clink **out, char *e, size_t elen)
{
	struct clink_tls *t = tls_of("good", "a", "good", NULL);
	struct clink_listener *l;
	pthread_t th;
	int r;

	cr_assert_eq(clink_listen(t, "127.0.0.1:0", &l, err, sizeof(err)), 0);
	a->port = clink_listener_port(l);
	pthread_create(&th, NULL, raw_client, a);
	r = clink_accept(l, 5000, out, e, elen);
	if (r == 0 && a->len) {
		uint16_t type;
		void *buf;
		size_t len;

		r = clink_recv(*out, &type, &buf, &len, 5000);
		if (r == 0) {
			free(buf);
			r = clink_recv(*out, &type, &buf, &len, 5000);
		}
		clink_close(*out);
	}
	pthread_join(th, NULL);
	clink_listener_close(l);
	clink_tls_free(t);
	return r;
}

Test(link, server_refuses_a_client_without_certificate)
{
	struct raw_arg a = {.with_cert = false};
	struct clink *c = NULL;
	char e[256];

	cr_expect_eq(raw_accept(&a, &c, e, sizeof(e)), -EACCES);
	cr_expect_str_eq(e, "no certificate");
}

Test(link, oversized_frame_is_a_protocol_error)
{
	/* A good empty message, then a frame claiming CLINK_MSG_MAX + 1 bytes. */
	uint8_t bytes[] = {0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 2, 7, 0, 0, 0};
	struct raw_arg a = {.with_cert = true, .bytes = bytes, .len = sizeof(bytes)};
	struct clink *c = NULL;
	char e[256];

	cr_expect_eq(raw_accept(&a, &c, e, sizeof(e)), -EPROTO);
}

Test(link, nonzero_reserved_field_is_a_protocol_error)
{
	uint8_t bytes[] = {0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0, 0, 7, 0, 1, 0, 'x'};
	struct raw_arg a = {.with_cert = true, .bytes = bytes, .len = sizeof(bytes)};
	struct clink *c = NULL;
	char e[256];

	cr_expect_eq(raw_accept(&a, &c, e, sizeof(e)), -EPROTO);
}

Test(link, pins_refuse_other_certificates_and_accept_the_pinned_one)
{
	struct pair p = good_pair();
	char fa[128], fb[128], both[300];

	strcpy(fa, clink_peer_fingerprint(p.cli));
	strcpy(fb, clink_peer_fingerprint(p.srv));
	close_pair(&p);

	/* Server pins only a's certificate: client b is refused. */
	p = connect_pair(tls_of("good", "a", "good", fa), tls_of("good", "b", "good", NULL), "a");
	cr_expect_eq(p.rs, -EACCES, "accept: %s", p.es);
	cr_expect(strstr(p.es, "not among the pinned"), "%s", p.es);
	cr_expect_eq(p.rc, -EACCES, "connect: %s", p.ec);
	close_pair(&p);
	/* Client pins b's: server a is refused. */
	p = connect_pair(tls_of("good", "a", "good", NULL), tls_of("good", "b", "good", fb), "a");
	cr_expect_eq(p.rc, -EACCES, "connect: %s", p.ec);
	cr_expect(strstr(p.ec, "not among the pinned"), "%s", p.ec);
	cr_expect_lt(p.rs, 0);
	close_pair(&p);
	/* Both pin the right ones (uppercase and without colons is fine too). */
	snprintf(both, sizeof(both), "%s,", fa);
	for (char *s = both; *s; s++)
		*s = (char)(*s >= 'a' && *s <= 'f' ? *s - 32 : *s);
	for (char *s = fb, *d = both + strlen(both); *s; s++) {
		if (*s != ':')
			*d++ = *s, *d = 0;
	}
	p = connect_pair(tls_of("good", "a", "good", both), tls_of("good", "b", "good", both), "a");
	cr_expect_eq(p.rs, 0, "accept: %s", p.es);
	cr_expect_eq(p.rc, 0, "connect: %s", p.ec);
	close_pair(&p);
}

Test(link, peer_closing_delivers_what_it_sent_then_epipe)
{
	struct pair p = good_pair();
	uint16_t type;
	void *buf;
	size_t len;

	for (uint32_t i = 0; i < 100; i++)
		cr_assert_eq(send1(p.cli, 9, &i, sizeof(i)), 0);
	clink_close(p.cli);
	p.cli = NULL;
	for (uint32_t i = 0; i < 100; i++) {
		cr_assert_eq(clink_recv(p.srv, &type, &buf, &len, 5000), 0, "message %u", i);
		cr_expect(len == 4 && !memcmp(buf, &i, 4));
		free(buf);
	}
	cr_expect_eq(clink_recv(p.srv, &type, &buf, &len, 5000), -EPIPE);
	cr_expect_not(clink_is_up(p.srv));
	cr_expect_str_eq(clink_down_reason(p.srv), "peer closed the connection");
	cr_expect_eq(send1(p.srv, 1, "x", 1), -EPIPE);
	close_pair(&p);
}

static void *recv_forever(void *p)
{
	uint16_t type;
	void *buf;
	size_t len;

	return (void *)(intptr_t)clink_recv(p, &type, &buf, &len, -1);
}

Test(link, shutdown_wakes_a_blocked_recv)
{
	struct pair p = good_pair();
	pthread_t th;
	void *r;
	uint16_t type;
	void *buf;
	size_t len;

	pthread_create(&th, NULL, recv_forever, p.srv);
	usleep(100000);
	clink_shutdown(p.srv);
	clink_shutdown(p.srv); /* idempotent */
	pthread_join(th, &r);
	cr_expect_eq((intptr_t)r, -EPIPE);
	cr_expect_eq(send1(p.srv, 1, "x", 1), -EPIPE);
	/* The other side sees the end too. */
	cr_expect_eq(clink_recv(p.cli, &type, &buf, &len, 5000), -EPIPE);
	close_pair(&p);
}

Test(link, recv_times_out)
{
	struct pair p = good_pair();
	struct timespec a, b;
	uint16_t type;
	void *buf;
	size_t len;

	cr_expect_eq(clink_recv(p.srv, &type, &buf, &len, 0), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &a);
	cr_expect_eq(clink_recv(p.srv, &type, &buf, &len, 150), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	cr_expect_geq((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000, 149);
	cr_expect(clink_is_up(p.srv));
	close_pair(&p);
}

#define BP_MSG   (256u << 10)
#define BP_COUNT 400 /* 100 MiB in all, against 1 MiB queues */

struct bp {
	struct clink *c;
	_Atomic int sent;
};

static void *bp_send(void *p)
{
	struct bp *b = p;
	uint8_t *buf = malloc(BP_MSG);

	for (int i = 0; i < BP_COUNT; i++) {
		fill(buf, BP_MSG, (uint32_t)i);
		if (send1(b->c, 5, buf, BP_MSG) != 0)
			break;
		b->sent++;
	}
	free(buf);
	return NULL;
}

Test(link, backpressure_blocks_the_sender_until_the_reader_catches_up)
{
	struct pair p = good_pair();
	struct bp b = {.c = p.cli};
	struct clink_stats st;
	pthread_t th;
	int stuck;

	clink_set_queue_limit(p.cli, 1u << 20);
	clink_set_queue_limit(p.srv, 1u << 20);
	pthread_create(&th, NULL, bp_send, &b);
	usleep(500000);
	stuck = b.sent;
	usleep(300000);
	/* Nobody reads: the sender stops after both queues and the socket buffers are full. */
	cr_expect_eq(b.sent, stuck, "the sender kept going (%d, then %d)", stuck, b.sent);
	cr_expect_lt(stuck, BP_COUNT / 4);
	clink_get_stats(p.cli, &st);
	cr_expect_leq(st.queued_bytes, (1u << 20) + BP_MSG + 8);
	for (int i = 0; i < BP_COUNT; i++) {
		uint16_t type;
		void *buf;
		size_t len;

		cr_assert_eq(clink_recv(p.srv, &type, &buf, &len, 10000), 0, "message %d", i);
		cr_assert(len == BP_MSG && check(buf, len, (uint32_t)i));
		free(buf);
	}
	pthread_join(th, NULL);
	cr_expect_eq(b.sent, BP_COUNT);
	close_pair(&p);
}

Test(link, send_nowait_refuses_instead_of_waiting_and_queues_nothing_then)
{
	struct pair p = good_pair();
	uint8_t *buf = malloc(BP_MSG);
	int sent = 0, rc = 0;

	clink_set_queue_limit(p.cli, 1u << 20);
	clink_set_queue_limit(p.srv, 1u << 20);
	/* Nobody reads: once both queues and the socket buffers are full, -EAGAIN at once. */
	while (sent < BP_COUNT) {
		fill(buf, BP_MSG, (uint32_t)sent);
		struct iovec iov = {buf, BP_MSG};
		rc = clink_send_nowait(p.cli, 5, &iov, 1);
		if (rc)
			break;
		sent++;
		if (sent % 16 == 0)
			usleep(20000); /* let the I/O thread move what it can */
	}
	cr_assert_eq(rc, -EAGAIN, "%d after %d messages", rc, sent);
	cr_expect_lt(sent, BP_COUNT / 4);
	/* What was refused is not queued: the reader gets the accepted ones, then what comes
	 * after the refusal, in order. */
	fill(buf, BP_MSG, 777);
	for (int i = 0; i < sent; i++) {
		uint16_t type;
		void *got;
		size_t len;

		cr_assert_eq(clink_recv(p.srv, &type, &got, &len, 10000), 0, "message %d", i);
		cr_assert(len == BP_MSG && check(got, len, (uint32_t)i), "message %d", i);
		free(got);
	}
	struct iovec iov = {buf, BP_MSG};
	cr_assert_eq(clink_send_nowait(p.cli, 5, &iov, 1), 0, "room again after the reader");
	uint16_t type;
	void *got;
	size_t len;
	cr_assert_eq(clink_recv(p.srv, &type, &got, &len, 10000), 0);
	cr_expect(len == BP_MSG && check(got, len, 777), "the message after the refusal");
	free(got);
	free(buf);
	close_pair(&p);
}

Test(link, connect_to_a_closed_port_is_refused)
{
	struct clink_tls *t = tls_of("good", "b", "good", NULL);
	struct clink_listener *l;
	struct clink *c;
	char hp[32];
	int port;

	/* A port that was just free. */
	cr_assert_eq(clink_listen(t, "127.0.0.1:0", &l, err, sizeof(err)), 0);
	port = clink_listener_port(l);
	clink_listener_close(l);
	snprintf(hp, sizeof(hp), "127.0.0.1:%d", port);
	cr_expect_eq(clink_connect(t, hp, "a", 2000, &c, err, sizeof(err)), -ECONNREFUSED, "%s",
	             err);
	cr_expect_eq(clink_connect(t, "127.0.0.1", "a", 2000, &c, err, sizeof(err)), -EINVAL);
	int r6 = clink_listen(t, "[::1]:0", &l, err, sizeof(err));
	cr_expect(r6 == 0 || r6 == -EADDRNOTAVAIL, "%s", err);
	if (r6 == 0)
		clink_listener_close(l); /* (ASan found it left open) */
	clink_tls_free(t);
}

/* A dial that began while the path dropped its SYN (here: the listener's accept queue full, as
 * a cut drops it) connects soon after the path clears: a fresh SYN goes out every 250 ms, where
 * the lost one is sent again only after the kernel's 1 s. The 950 ms bound fails without that. */
Test(link, dial_connects_once_syns_get_through_before_the_kernels_retry)
{
	struct clink_tls *ts = tls_of("good", "b", "good", NULL);
	struct clink_tls *tc = tls_of("good", "a", "good", NULL);
	struct conn_arg a = {.tls = tc, .expect = "b", .timeout_ms = 950};
	struct clink_listener *l;
	struct sockaddr_in sa = {.sin_family = AF_INET};
	struct clink *srv = NULL;
	int fill[64], nfill = 0, rs;
	pthread_t th;

	cr_assert_eq(clink_listen(ts, "127.0.0.1:0", &l, err, sizeof(err)), 0, "%s", err);
	a.port = clink_listener_port(l);
	sa.sin_port = htons((uint16_t)a.port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (;;) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		struct pollfd p = {.fd = s, .events = POLLOUT};
		cr_assert(s >= 0);
		connect(s, (struct sockaddr *)&sa, sizeof(sa));
		if (poll(&p, 1, 200) == 1) {
			cr_assert_lt(nfill, 64, "the accept queue never filled");
			fill[nfill++] = s;
			continue;
		}
		close(s); /* its SYN was dropped: the queue is full */
		break;
	}
	cr_assert_eq(pthread_create(&th, NULL, connect_main, &a), 0);
	usleep(200 * 1000);
	for (int i = 0; i < nfill; i++) {
		int s = accept(clink_listener_fd(l), NULL, NULL);
		if (s >= 0)
			close(s);
		close(fill[i]);
	}
	rs = clink_accept(l, 3000, &srv, err, sizeof(err));
	pthread_join(th, NULL);
	cr_expect_eq(a.r, 0, "dial: %s", a.err);
	cr_expect_eq(rs, 0, "accept: %s", err);
	clink_close(a.c);
	clink_close(srv);
	clink_listener_close(l);
	clink_tls_free(ts);
	clink_tls_free(tc);
}

Test(link, accept_times_out_and_a_taken_port_is_refused)
{
	struct clink_tls *t = tls_of("good", "a", "good", NULL);
	struct clink_listener *l, *l2;
	struct clink *c;
	char ap[32];

	cr_assert_eq(clink_listen(t, "127.0.0.1:0", &l, err, sizeof(err)), 0);
	cr_expect_eq(clink_accept(l, 100, &c, err, sizeof(err)), -ETIMEDOUT);
	snprintf(ap, sizeof(ap), "127.0.0.1:%d", clink_listener_port(l));
	cr_expect_eq(clink_listen(t, ap, &l2, err, sizeof(err)), -EADDRINUSE, "%s", err);
	cr_expect_eq(clink_listen(t, "127.0.0.1:x", &l2, err, sizeof(err)), -EINVAL);
	clink_listener_close(l);
	clink_tls_free(t);
}
