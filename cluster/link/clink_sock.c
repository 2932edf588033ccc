/* cluster/link/clink_sock.c - addresses and TCP sockets for the link: "HOST:PORT" parsing,
 * listening, non-blocking connect and accept with deadlines. No TLS here and no framing.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clink_int.h"

int64_t clink_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clink_now_ms(void)
{
	return clink_now_us() / 1000;
}

int64_t clink_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : clink_now_ms() + timeout_ms;
}

int clink_remaining(int64_t deadline)
{
	int64_t left;

	if (deadline < 0)
		return -1;
	left = deadline - clink_now_ms();
	if (left <= 0)
		return 0;
	return left > 1000000000 ? 1000000000 : (int)left;
}

int clink_wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};
	int r;

	for (;;) {
		int left = clink_remaining(deadline);

		r = poll(&p, 1, left);
		if (r > 0)
			return 0;
		if (r == 0)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
	}
}

/* Splits "host:port" or "[v6]:port" into HOST and PORT (both NUL-terminated copies). */
static int split_host_port(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon, *h = s;
	size_t hl;

	if (!s)
		return -EINVAL;
	if (*s == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		h = s + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -EINVAL;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen || !colon[1] || strlen(colon + 1) >= portlen)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = 0;
	strcpy(port, colon + 1);
	for (const char *p = port; *p; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
	}
	return 0;
}

static int resolve(const char *host_port, bool passive, struct addrinfo **res, char *err,
                   size_t errlen)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_family = AF_UNSPEC};
	char host[256], port[16];
	int r;

	if (split_host_port(host_port, host, sizeof(host), port, sizeof(port)) < 0) {
		snprintf(err, errlen, "malformed address '%s' (want HOST:PORT or [V6ADDR]:PORT)",
		         host_port ? host_port : "(null)");
		return -EINVAL;
	}
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	r = getaddrinfo(host, port, &hints, res);
	if (r) {
		snprintf(err, errlen, "%s: %s", host_port, gai_strerror(r));
		return r == EAI_MEMORY ? -ENOMEM : (passive ? -EADDRNOTAVAIL : -EHOSTUNREACH);
	}
	return 0;
}

int clink_sock_listen(const char *addr_port, int *fd, char *err, size_t errlen)
{
	struct addrinfo *res, *ai;
	int r, s = -1, one = 1;

	r = resolve(addr_port, true, &res, err, errlen);
	if (r < 0)
		return r;
	r = -EADDRNOTAVAIL;
	snprintf(err, errlen, "%s: no address to listen on", addr_port);
	for (ai = res; ai; ai = ai->ai_next) {
		s = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		           ai->ai_protocol);
		if (s < 0) {
			r = -errno;
			snprintf(err, errlen, "socket: %s", strerror(errno));
			continue;
		}
		/* A restarted daemon must get its port back while old connections sit in
		 * TIME_WAIT. */
		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, ai->ai_addr, ai->ai_addrlen) == 0 && listen(s, 16) == 0)
			break;
		r = -errno;
		snprintf(err, errlen, "listen on %s: %s", addr_port, strerror(errno));
		close(s);
		s = -1;
	}
	freeaddrinfo(res);
	if (s < 0)
		return r;
	*fd = s;
	return 0;
}

static void tune(int s)
{
	int one = 1;

	/* Replication messages are latency-bound acknowledgements as often as bulk data. */
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* A SYN lost while the path was cut is sent again only after the kernel's initial RTO (1 s), so
 * a link that heals just after a dial began stayed down until that dial ran out. Instead a fresh
 * connect goes out every CONNECT_RETRY_MS beside the pending ones, up to CONNECT_TRIES: the
 * first to complete wins, so a slow path (a SYN-ACK later than the retry) still connects. */
#define CONNECT_RETRY_MS 250
#define CONNECT_TRIES    8

/* Starts a non-blocking connect to AI: the socket (connected or in progress), or -errno. */
static int connect_start(const struct addrinfo *ai)
{
	int s =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);

	if (s < 0)
		return -errno;
	if (connect(s, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS)
		return s;
	int r = -errno;
	close(s);
	return r;
}

/* Connects to AI by the deadline: the connected socket, or -errno (-ETIMEDOUT when none of
 * the tries completed; the first error another way, such as -ECONNREFUSED, at once). */
static int connect_addr(const struct addrinfo *ai, int64_t deadline)
{
	struct pollfd p[CONNECT_TRIES];
	int n = 0, r = -ETIMEDOUT;
	int64_t next = clink_now_ms();

	for (;;) {
		int64_t now = clink_now_ms();
		int left = clink_remaining(deadline);
		if (left == 0)
			break; /* r: -ETIMEDOUT */
		if (n < CONNECT_TRIES && now >= next) {
			int s = connect_start(ai);
			if (s < 0) {
				r = s;
				break;
			}
			p[n++] = (struct pollfd){.fd = s, .events = POLLOUT};
			next = now + CONNECT_RETRY_MS;
		}
		if (n < CONNECT_TRIES && (left < 0 || next - now < left))
			left = (int)(next - now); /* the next try's time */
		int got = poll(p, (nfds_t)n, left);
		if (got < 0 && errno != EINTR) {
			r = -errno;
			break;
		}
		for (int i = 0; got > 0 && i < n; i++) {
			int soerr = 0;
			socklen_t sl = sizeof(soerr);
			if (!p[i].revents)
				continue;
			if (getsockopt(p[i].fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
				soerr = errno;
			if (soerr == 0) {
				r = p[i].fd;
				p[i].fd = -1;
			} else {
				r = -soerr;
			}
			goto out;
		}
	}
out:
	for (int i = 0; i < n; i++)
		if (p[i].fd >= 0 && p[i].fd != r)
			close(p[i].fd);
	return r;
}

int clink_sock_connect(const char *host_port, int64_t deadline, int *fd, char *err, size_t errlen)
{
	struct addrinfo *res, *ai;
	int r, s = -1;

	r = resolve(host_port, false, &res, err, errlen);
	if (r < 0)
		return r;
	r = -EHOSTUNREACH;
	for (ai = res; ai; ai = ai->ai_next) {
		r = connect_addr(ai, deadline);
		if (r >= 0) {
			s = r;
			break;
		}
		snprintf(err, errlen, "connect to %s: %s", host_port, strerror(-r));
		if (r == -ETIMEDOUT)
			break;
	}
	freeaddrinfo(res);
	if (s < 0)
		return r;
	tune(s);
	*fd = s;
	return 0;
}

int clink_sock_accept(int lfd, int64_t deadline, int *fd, char *err, size_t errlen)
{
	for (;;) {
		int s, r;

		r = clink_wait_fd(lfd, POLLIN, deadline);
		if (r < 0) {
			snprintf(err, errlen, "accept: %s",
			         r == -ETIMEDOUT ? "no connection in time" : strerror(-r));
			return r;
		}
		s = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (s >= 0) {
			tune(s);
			*fd = s;
			return 0;
		}
		/* Another thread took it, or the client gave up before we got to it. */
		if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
			continue;
		snprintf(err, errlen, "accept: %s", strerror(errno));
		return -errno;
	}
}

int clink_sock_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -EAFNOSUPPORT;
}
