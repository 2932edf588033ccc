/* cluster/link/clink_int.h - private seams between the link's three files: clink_tls.c (the only
 * file that includes OpenSSL), clink_sock.c (addresses and sockets) and clink.c (connections, the
 * I/O thread and the queues). Never included from outside cluster/link/.
 */
#ifndef PSTOR_CLINK_INT_H
#define PSTOR_CLINK_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "clink.h"

#define CLINK_NAME_MAX 256
#define CLINK_FPR_LEN  (32 * 3) /* "ab:cd:..." without the NUL */

/* Monotonic clock in ms (and us); deadlines are absolute, -1 meaning none. */
int64_t clink_now_ms(void);
int64_t clink_now_us(void);
int64_t clink_deadline(int timeout_ms);
int clink_remaining(int64_t deadline); /* for poll(): -1, or ms left (0 once past) */

/* Waits for EVENTS on FD until DEADLINE: 0, -ETIMEDOUT, -errno. */
int clink_wait_fd(int fd, short events, int64_t deadline);

/* clink_sock.c */
int clink_sock_listen(const char *addr_port, int *fd, char *err, size_t errlen);
int clink_sock_connect(const char *host_port, int64_t deadline, int *fd, char *err, size_t errlen);
int clink_sock_accept(int lfd, int64_t deadline, int *fd, char *err, size_t errlen);
int clink_sock_port(int fd);

/* clink_tls.c: one TLS session over a connected non-blocking socket. */
struct clink_sess;
struct clink_peer {
	char name[CLINK_NAME_MAX];
	char fingerprint[CLINK_FPR_LEN + 1];
	char cipher[64];
};
/* Handshakes as server (EXPECT_NAME NULL) or client until DEADLINE; -EACCES, -EPROTO, -ETIMEDOUT,
 * -errno with the reason in ERR. The socket stays the caller's. */
int clink_sess_handshake(struct clink_tls *t, int fd, const char *expect_name, int64_t deadline,
                         struct clink_sess **out, struct clink_peer *peer, char *err,
                         size_t errlen);
/* Bytes moved (> 0), -EAGAIN with *WANT set to POLLIN or POLLOUT, -EPIPE when the peer closed,
 * other -errno with the reason in ERR. Only the owning thread may call these. */
ssize_t clink_sess_read(struct clink_sess *s, void *buf, size_t len, short *want, char *err,
                        size_t errlen);
ssize_t clink_sess_write(struct clink_sess *s, const void *buf, size_t len, short *want, char *err,
                         size_t errlen);
/* Sends close_notify if the socket takes it now; never waits. */
void clink_sess_close_notify(struct clink_sess *s);
void clink_sess_free(struct clink_sess *s);

#endif
