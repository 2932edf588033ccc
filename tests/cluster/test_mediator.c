/* tests/cluster/test_mediator.c - criterion suite for the mediator client (cluster/mediator/cmed.h)
 * against a real etcd (Debian's etcd-server) started on loopback for each test: leases, the
 * compare-and-put that failover races with, endpoint failover, and refusals. Skipped when etcd is
 * not installed.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmed.h"

#ifndef PSTOR_MKCERTS
#error "PSTOR_MKCERTS must name tests/cluster/mkcerts.sh"
#endif

static char dir[64];
static pid_t etcd_pid;
static int port;
static char url[64];

/* Starts etcd in DIR on PORT (client) and PORT+1 (peer); with TLS its client door is https with
 * certificates from mkcerts.sh (DIR/certs: localhost for etcd, boxa for the client) and it
 * requires a client certificate. */
static void etcd_launch(bool tls)
{
	char data[128], client[64], peer[64], cmd[512];

	snprintf(data, sizeof(data), "%s/data", dir);
	snprintf(client, sizeof(client), "%s://%s:%d", tls ? "https" : "http",
	         tls ? "localhost" : "127.0.0.1", port);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", port + 1);
	snprintf(url, sizeof(url), "%s", client);
	if (tls) {
		snprintf(cmd, sizeof(cmd), "sh %s %s/certs localhost boxa", PSTOR_MKCERTS, dir);
		cr_assert_eq(system(cmd), 0, "mkcerts.sh failed");
	}
	etcd_pid = fork();
	cr_assert_geq(etcd_pid, 0);
	if (!etcd_pid) {
		char logp[128], listen[64], initial[96], crt[128], key[128], ca[128];
		snprintf(logp, sizeof(logp), "%s/etcd.log", dir);
		snprintf(listen, sizeof(listen), "%s://127.0.0.1:%d", tls ? "https" : "http", port);
		snprintf(initial, sizeof(initial), "default=%s", peer);
		snprintf(crt, sizeof(crt), "%s/certs/localhost.crt", dir);
		snprintf(key, sizeof(key), "%s/certs/localhost.key", dir);
		snprintf(ca, sizeof(ca), "%s/certs/ca.crt", dir);
		if (!freopen(logp, "w", stdout) || !freopen(logp, "a", stderr))
			_exit(126);
		if (tls)
			execl("/usr/bin/etcd", "etcd", "--data-dir", data, "--listen-client-urls",
			      listen, "--advertise-client-urls", client, "--listen-peer-urls", peer,
			      "--initial-advertise-peer-urls", peer, "--initial-cluster", initial,
			      "--cert-file", crt, "--key-file", key, "--trusted-ca-file", ca,
			      "--client-cert-auth", (char *)NULL);
		else
			execl("/usr/bin/etcd", "etcd", "--data-dir", data, "--listen-client-urls",
			      listen, "--advertise-client-urls", client, "--listen-peer-urls", peer,
			      "--initial-advertise-peer-urls", peer, "--initial-cluster", initial,
			      (char *)NULL);
		_exit(127);
	}
}

static void etcd_start(void)
{

	if (access("/usr/bin/etcd", X_OK))
		cr_skip_test("etcd is not installed (Debian package etcd-server)");
	strcpy(dir, "/tmp/pstor-cmed-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	port = 20000 + 2 * (getpid() % 10000); /* port + 1 is etcd's peer port */
	etcd_launch(false);
	/* ready when a grant succeeds */
	struct cmed *m;
	char msg[256];
	cr_assert_eq(
	    cmed_open(&(struct cmed_opts){.urls = url, .timeout_ms = 500}, &m, msg, sizeof(msg)), 0,
	    "%s", msg);
	int64_t id = 0;
	int ttl = 0;
	for (int i = 0; i < 200 && cmed_lease_grant(m, 5, &id, &ttl); i++)
		usleep(50000);
	cmed_close(m);
	cr_assert_neq(id, 0, "etcd did not come up (log in %s)", dir);
}

static void etcd_stop(void)
{
	char cmd[128];

	if (etcd_pid > 0) {
		kill(etcd_pid, SIGKILL);
		waitpid(etcd_pid, NULL, 0);
		etcd_pid = 0;
	}
	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		if (system(cmd))
			cr_log_warn("could not remove %s", dir);
	}
}

TestSuite(mediator, .init = etcd_start, .fini = etcd_stop, .timeout = 60);

static struct cmed *open_urls(const char *urls)
{
	struct cmed *m;
	char msg[256];
	cr_assert_eq(
	    cmed_open(&(struct cmed_opts){.urls = urls, .timeout_ms = 300}, &m, msg, sizeof(msg)),
	    0, "%s", msg);
	return m;
}

Test(mediator, compare_and_put_takes_a_key_once)
{
	struct cmed *m = open_urls(url);
	int64_t rev = 0, rev2 = 0, mod = 0;
	char cur[64];

	/* absent: only a compare with 0 takes it */
	cr_assert_eq(cmed_put_if(m, "/t/pod", "boxa", 0, 0, &rev, cur, sizeof(cur)), 0);
	cr_assert_gt(rev, 0);
	cr_assert_eq(cmed_put_if(m, "/t/pod", "boxb", 0, 0, &rev2, cur, sizeof(cur)), -EBUSY);
	cr_assert_eq(rev2, rev, "the failed compare reports the key's revision");
	cr_assert_str_eq(cur, "boxa");
	/* the holder of the agreed revision takes it; a stale one does not */
	cr_assert_eq(cmed_put_if(m, "/t/pod", "boxb", 0, rev, &rev2, NULL, 0), 0);
	cr_assert_gt(rev2, rev);
	cr_assert_eq(cmed_put_if(m, "/t/pod", "boxa", 0, rev, &mod, NULL, 0), -EBUSY);
	cr_assert_eq(cmed_get(m, "/t/pod", &mod, cur, sizeof(cur)), 0);
	cr_assert_eq(mod, rev2);
	cr_assert_str_eq(cur, "boxb");
	cr_assert_eq(cmed_get(m, "/t/none", &mod, cur, sizeof(cur)), 0);
	cr_assert_eq(mod, 0);
	cr_assert_str_eq(cur, "");
	cmed_close(m);
}

Test(mediator, a_key_on_a_lease_goes_with_it)
{
	struct cmed *m = open_urls(url);
	int64_t id, rev, mod;
	int ttl, left;
	char cur[64];

	cr_assert_eq(cmed_lease_grant(m, 1, &id, &ttl), 0);
	cr_assert_geq(ttl, 1, "etcd grants at least what is asked, or its minimum");
	cr_assert_eq(cmed_lease_keepalive(m, id, &left), 0);
	cr_assert_gt(left, 0);
	cr_assert_eq(cmed_put_if(m, "/t/leased", "x", id, 0, &rev, NULL, 0), 0);
	cr_assert_eq(cmed_lease_revoke(m, id), 0);
	cr_assert_eq(cmed_get(m, "/t/leased", &mod, cur, sizeof(cur)), 0);
	cr_assert_eq(mod, 0, "revoking the lease deleted the key");
	cr_assert_eq(cmed_lease_keepalive(m, id, &left), -ENOENT);
	cr_assert_eq(cmed_put_if(m, "/t/leased", "x", id, 0, &rev, NULL, 0), -ENOENT,
	             "a put on a dead lease is refused");
	cmed_close(m);
}

Test(mediator, the_next_endpoint_answers_when_one_is_down)
{
	char urls[160];
	struct cmed *m;
	struct cmed_stats st;
	int64_t id;
	int ttl;

	/* port 9 (discard) is closed on loopback: refused at once */
	snprintf(urls, sizeof(urls), "http://127.0.0.1:9|%s/", url);
	m = open_urls(urls);
	cr_assert_eq(cmed_lease_grant(m, 5, &id, &ttl), 0);
	cmed_get_stats(m, &st);
	cr_assert(st.reachable);
	cr_assert_str_eq(st.endpoint, url, "the endpoint that answered stays current");
	cr_assert_eq(st.failures, 1);
	cmed_close(m);

	m = open_urls("http://127.0.0.1:9");
	cr_assert_eq(cmed_lease_grant(m, 5, &id, &ttl), -EHOSTUNREACH);
	cmed_get_stats(m, &st);
	cr_assert_not(st.reachable);
	cr_assert_neq(st.err[0], 0);
	cmed_close(m);
}

Test(mediator, bad_endpoints_are_refused)
{
	static const char *bad[] = {"",        "127.0.0.1:2379", "ftp://x",
	                            "http://", "http://a b",     "http://a|https://"};
	struct cmed *m;
	char msg[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		msg[0] = 0;
		cr_assert_eq(cmed_open(&(struct cmed_opts){.urls = bad[i]}, &m, msg, sizeof(msg)),
		             -EINVAL, "'%s'", bad[i]);
		cr_assert_neq(msg[0], 0);
	}
}

Test(mediator, https_with_client_certificates)
{
	char ca[128], crt[128], key[128], msg[256];
	struct cmed *m;
	int64_t id = 0;
	int ttl, rc = -1;

	/* The suite's etcd is plain http: replace it with one that requires TLS both ways. */
	kill(etcd_pid, SIGKILL);
	waitpid(etcd_pid, NULL, 0);
	snprintf(msg, sizeof(msg), "rm -rf %s/data", dir);
	cr_assert_eq(system(msg), 0);
	etcd_launch(true);
	snprintf(ca, sizeof(ca), "%s/certs/ca.crt", dir);
	snprintf(crt, sizeof(crt), "%s/certs/boxa.crt", dir);
	snprintf(key, sizeof(key), "%s/certs/boxa.key", dir);
	cr_assert_eq(cmed_open(
	                 &(struct cmed_opts){
	                     .urls = url, .ca = ca, .cert = crt, .key = key, .timeout_ms = 500},
	                 &m, msg, sizeof(msg)),
	             0, "%s", msg);
	for (int i = 0; i < 200 && (rc = cmed_lease_grant(m, 5, &id, &ttl)); i++)
		usleep(50000);
	cr_assert_eq(rc, 0, "no answer over https (etcd log in %s)", dir);
	cmed_close(m);

	/* Without a client certificate etcd refuses the handshake: unreachable, with a reason. */
	cr_assert_eq(cmed_open(&(struct cmed_opts){.urls = url, .ca = ca, .timeout_ms = 500}, &m,
	                       msg, sizeof(msg)),
	             0);
	cr_assert_eq(cmed_lease_grant(m, 5, &id, &ttl), -EHOSTUNREACH);
	struct cmed_stats st;
	cmed_get_stats(m, &st);
	cr_assert_neq(st.err[0], 0);
	cmed_close(m);
}
