/* tests/bench/cluster/clink_bench.c - clink-bench: one replication-link connection over loopback:
 * throughput with 1 MiB and 4 KiB messages, and the round trip of a small request/response.
 * Prints "name: value" lines; not part of the suite. Certificates from tests/cluster/mkcerts.sh.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clink.h"

static char err[256];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct clink_tls *tls_for(const char *dir, const char *name)
{
	char crt[300], key[300], ca[300];
	struct clink_tls *t;

	snprintf(crt, sizeof(crt), "%s/%s.crt", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(ca, sizeof(ca), "%s/ca.crt", dir);
	if (clink_tls_new(crt, key, ca, NULL, &t, err, sizeof(err)) < 0) {
		fprintf(stderr, "clink_tls_new: %s\n", err);
		exit(1);
	}
	return t;
}

struct conn_arg {
	struct clink_tls *tls;
	int port;
	struct clink *c;
	int r;
};

static void *connect_main(void *p)
{
	struct conn_arg *a = p;
	char hp[32];

	snprintf(hp, sizeof(hp), "127.0.0.1:%d", a->port);
	a->r = clink_connect(a->tls, hp, "a", 5000, &a->c, err, sizeof(err));
	return NULL;
}

struct sink {
	struct clink *c;
	long count;
};

static void *sink_main(void *p)
{
	struct sink *s = p;

	for (long i = 0; i < s->count; i++) {
		uint16_t type;
		void *buf;
		size_t len;

		if (clink_recv(s->c, &type, &buf, &len, 30000) < 0) {
			fprintf(stderr, "recv failed at %ld\n", i);
			exit(1);
		}
		free(buf);
	}
	return NULL;
}

static void throughput(struct clink *tx, struct clink *rx, const char *name, size_t msg,
                       size_t total)
{
	struct sink s = {.c = rx, .count = (long)(total / msg)};
	struct iovec iov;
	pthread_t th;
	double t0, dt;

	iov.iov_len = msg;
	iov.iov_base = malloc(msg);
	memset(iov.iov_base, 0xa5, msg);
	pthread_create(&th, NULL, sink_main, &s);
	t0 = now_s();
	for (long i = 0; i < s.count; i++) {
		if (clink_send(tx, 1, &iov, 1) < 0)
			exit(1);
	}
	pthread_join(th, NULL);
	dt = now_s() - t0;
	printf("%s_mib_per_s: %.0f\n", name, (double)s.count * (double)msg / dt / 1048576.0);
	printf("%s_msgs_per_s: %.0f\n", name, (double)s.count / dt);
	free(iov.iov_base);
}

static void *echo_main(void *p)
{
	struct clink *c = p;

	for (;;) {
		uint16_t type;
		void *buf;
		size_t len;
		struct iovec iov;

		if (clink_recv(c, &type, &buf, &len, -1) < 0)
			return NULL;
		iov.iov_base = buf;
		iov.iov_len = len;
		clink_send(c, type, &iov, 1);
		free(buf);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void latency(struct clink *cli, struct clink *srv, int n)
{
	double *rtt = malloc(sizeof(double) * (size_t)n), sum = 0;
	char req[64] = "ping";
	struct iovec iov = {req, sizeof(req)};
	pthread_t th;

	pthread_create(&th, NULL, echo_main, srv);
	for (int i = 0; i < n; i++) {
		uint16_t type;
		void *buf;
		size_t len;
		double t0 = now_s();

		if (clink_send(cli, 2, &iov, 1) < 0 || clink_recv(cli, &type, &buf, &len, 5000) < 0)
			exit(1);
		rtt[i] = (now_s() - t0) * 1e6;
		sum += rtt[i];
		free(buf);
	}
	clink_shutdown(srv);
	pthread_join(th, NULL);
	qsort(rtt, (size_t)n, sizeof(double), cmp_double);
	printf("rtt_64b_mean_us: %.1f\n", sum / n);
	printf("rtt_64b_p50_us: %.1f\n", rtt[n / 2]);
	printf("rtt_64b_p99_us: %.1f\n", rtt[n * 99 / 100]);
	free(rtt);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/clink-bench-XXXXXX", cmd[512];
	struct clink_tls *ts, *tc;
	struct clink_listener *l;
	struct conn_arg a = {0};
	struct clink *srv;
	pthread_t th;
	double mib = argc > 1 ? atof(argv[1]) : 1024;

	if (!mkdtemp(dir))
		return 1;
	snprintf(cmd, sizeof(cmd), "sh %s %s a b", PSTOR_MKCERTS, dir);
	if (system(cmd) != 0)
		return 1;
	ts = tls_for(dir, "a");
	tc = tls_for(dir, "b");
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	if (clink_listen(ts, "127.0.0.1:0", &l, err, sizeof(err)) < 0)
		return 1;
	a.tls = tc;
	a.port = clink_listener_port(l);
	pthread_create(&th, NULL, connect_main, &a);
	if (clink_accept(l, 5000, &srv, err, sizeof(err)) < 0) {
		fprintf(stderr, "accept: %s\n", err);
		return 1;
	}
	pthread_join(th, NULL);
	if (a.r < 0) {
		fprintf(stderr, "connect: %s\n", err);
		return 1;
	}
	printf("cipher: %s\n", clink_cipher(a.c));
	throughput(a.c, srv, "msg_1mib", 1u << 20, (size_t)(mib * 1048576));
	throughput(a.c, srv, "msg_4kib", 4096, (size_t)(mib / 4 * 1048576));
	latency(a.c, srv, 20000);
	clink_close(a.c);
	clink_close(srv);
	clink_listener_close(l);
	clink_tls_free(ts);
	clink_tls_free(tc);
	return 0;
}
