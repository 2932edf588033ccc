/* cluster/link/clink.h - the replication link: framed messages over TCP + TLS 1.3 with mutual
 * certificate authentication between two pstorfs boxes. It moves typed byte strings and knows
 * nothing of pods, volumes or the store; what a message means is the layer above's business.
 *
 * Every function returns 0 or -errno and, where it takes ERR, leaves a one-line reason there.
 * Threading: each connection has one I/O thread that owns its TLS session; clink_send and
 * clink_recv may be called from any number of threads at once.
 */
#ifndef PSTOR_CLINK_H
#define PSTOR_CLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* Largest payload of one message. */
#define CLINK_MSG_MAX (32u << 20)
/* Default bound of each connection's outgoing and incoming queues (clink_set_queue_limit). */
#define CLINK_QUEUE_LIMIT_DEFAULT (64u << 20)

struct clink_tls;      /* certificates: shared by listener and connections */
struct clink_listener; /* a listening socket */
struct clink;          /* one connection */

/* Loads our certificate (PEM; a chain file may follow it with intermediates), its key and the CA
 * file that peers' certificates must chain to. PINS, if not NULL or empty, is a comma-separated
 * list of SHA-256 certificate fingerprints (hex, colons allowed); a peer must then also present
 * a certificate whose fingerprint is listed. Errors: -ENOENT/-EACCES (a file), -EINVAL (unusable
 * file contents, key not matching the certificate, no CN in our certificate, a malformed pin),
 * -ENOMEM. */
int clink_tls_new(const char *cert_path, const char *key_path, const char *ca_path,
                  const char *pins, struct clink_tls **out, char *err, size_t errlen);
/* NULL is a no-op. Every listener and connection made with T must be closed first. */
void clink_tls_free(struct clink_tls *t);
/* The CN of our own certificate (the daemon checks it equals its cluster_name). */
const char *clink_tls_own_name(const struct clink_tls *t);

/* Listens on "0.0.0.0:7001", "[::]:7001", "10.9.0.1:7001" (port 0: an ephemeral port, see
 * clink_listener_port). -EADDRINUSE, -EADDRNOTAVAIL, -EINVAL (malformed address)... */
int clink_listen(struct clink_tls *t, const char *addr_port, struct clink_listener **out, char *err,
                 size_t errlen);
/* The listening socket, for the caller's poll() (POLLIN: clink_accept will not wait). */
int clink_listener_fd(const struct clink_listener *l);
/* The local port (useful after listening on port 0). */
int clink_listener_port(const struct clink_listener *l);
/* Waits up to TIMEOUT_MS (-1 forever) for one connection and runs the TLS handshake, the whole
 * bounded by TIMEOUT_MS. -ETIMEDOUT; a peer with a wrong or missing certificate, or one that
 * refuses ours: -EACCES with the reason ("certificate verify failed: unable to get local issuer
 * certificate", "no certificate", "peer refused our certificate: tlsv1 alert unknown ca");
 * -EPROTO for other handshake failures (not TLS, not TLS 1.3). The connection is then closed. The
 * caller checks clink_peer_name() against the peers it knows. */
int clink_accept(struct clink_listener *l, int timeout_ms, struct clink **out, char *err,
                 size_t errlen);
/* NULL is a no-op. Connections already accepted live on. */
void clink_listener_close(struct clink_listener *l);

/* Connects to "HOST:PORT" ("[v6addr]:PORT" too) and handshakes, the whole bounded by TIMEOUT_MS.
 * EXPECT_NAME must equal the CN of the server's certificate. Returns only once the server has
 * accepted our certificate too. -EACCES (certificate refused by either side, with the reason),
 * -ECONNREFUSED, -ETIMEDOUT, -EHOSTUNREACH (also: HOST does not resolve), -ENETUNREACH, -EPROTO
 * as they come. */
int clink_connect(struct clink_tls *t, const char *host_port, const char *expect_name,
                  int timeout_ms, struct clink **out, char *err, size_t errlen);

const char *clink_peer_name(const struct clink *c);        /* peer certificate CN */
const char *clink_peer_fingerprint(const struct clink *c); /* SHA-256, lowercase hex, colons */
const char *clink_cipher(const struct clink *c);           /* e.g. "TLS_AES_256_GCM_SHA384" */

/* Bounds the outgoing queue (clink_send blocks above it) and the incoming queue (the link stops
 * reading above it, so a slow reader pushes back on the sending box through TCP). Either may
 * exceed BYTES by one message. Default CLINK_QUEUE_LIMIT_DEFAULT. */
void clink_set_queue_limit(struct clink *c, size_t bytes);

/* Lets the I/O thread hand some messages to FN itself, as they arrive, instead of queueing them
 * for clink_recv, which saves the receiving thread's wake-up on a path such as an
 * acknowledgement. FN returns false to have the message queued as usual; true when it consumed
 * it: the link then frees *BUF, unless FN took it (set *BUF to NULL, and frees it itself).
 * QUEUED is how many messages this link had queued for clink_recv before this one (every one,
 * including any that arrived before the hook was set): a receiver that counts what it has
 * finished with can tell that nothing queued is still ahead of this message, for messages
 * whose order matters. FN runs on the I/O thread, so it must not block for long and must never
 * call clink_recv on C, nor clink_send while the outgoing queue could be full (the thread that
 * would empty it is the one waiting; clink_send_nowait is safe). FN NULL removes it. */
typedef bool (*clink_rx_hook)(void *arg, uint16_t type, void **buf, size_t len, uint64_t queued);
void clink_set_rx_hook(struct clink *c, clink_rx_hook fn, void *arg);

/* Queues one message: TYPE and the concatenation of the IOVCNT buffers (copied; total at most
 * CLINK_MSG_MAX). Thread-safe; messages of one thread leave in the order it sent them. Blocks
 * while the outgoing queue is over its limit. -EMSGSIZE (too big, nothing sent), -EINVAL,
 * -ENOMEM, -EPIPE once the connection is down. */
int clink_send(struct clink *c, uint16_t type, const struct iovec *iov, int iovcnt);
/* clink_send that never waits: -EAGAIN (nothing queued) while the outgoing queue is over its
 * limit. For the receive hook's thread, which must not wait for room it would itself make. */
int clink_send_nowait(struct clink *c, uint16_t type, const struct iovec *iov, int iovcnt);
/* Pops the next received message; *BUF is malloc'ed (never NULL, even for LEN 0) and the caller
 * frees it. Waits up to TIMEOUT_MS (-1 forever, 0 not at all). -ETIMEDOUT; once the connection
 * is down, the messages already received first, then -EPIPE, or -EPROTO if the peer sent a
 * malformed frame (length over CLINK_MSG_MAX, reserved field not 0). */
int clink_recv(struct clink *c, uint16_t *type, void **buf, size_t *len, int timeout_ms);
/* Marks the connection down now, dropping what is still queued to send, and wakes clink_recv
 * and clink_send waiters with -EPIPE. Idempotent, thread-safe. */
void clink_shutdown(struct clink *c);
bool clink_is_up(const struct clink *c);
/* Why the connection went down ("peer closed the connection", "shut down locally", the TLS or
 * socket error...), or "" while it is up. */
const char *clink_down_reason(const struct clink *c);
/* Flushes what is queued to send (at most ~2 s if the peer does not read), closes the TLS
 * session cleanly, joins the I/O thread and frees. NULL is a no-op. No other call may be running
 * or made on C. */
void clink_close(struct clink *c);

struct clink_stats {
	uint64_t bytes_sent, bytes_received; /* frames (header + payload) */
	uint64_t msgs_sent, msgs_received;
	uint64_t queued_bytes; /* in the outgoing queue (plus up to 64 KiB being written) */
};
void clink_get_stats(const struct clink *c, struct clink_stats *st);

#endif
