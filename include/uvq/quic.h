/* uvq QUIC: QUIC v1/v2 on ngtcp2 and wolfSSL, driven by a uvq UDP handle
 * inside any libuv loop.
 *
 * An endpoint owns one UDP socket and any number of connections, client
 * and server. It routes packets by connection ID, keeps one libuv timer for
 * all connections, and sends GSO batches with per-packet ECN from the
 * address each connection was reached on.
 *
 * Errors: functions return 0, a count, or a negative UV_E* code, as in
 * libuv. QUIC, TLS and HTTP/3 library errors never travel in those ints:
 * nghttp3's values overlap UV_E* codes on Linux (NGHTTP3_ERR_WOULDBLOCK
 * is -103, UV_ECONNABORTED), and ngtcp2's could tomorrow; they are reported
 * in uvq_quic_error_t instead.
 *
 * Reference: docs/quic.md. Embedding guide: docs/guide-quic-embedding.md.
 */
#ifndef UVQ_QUIC_H
#define UVQ_QUIC_H

#include "../uvq.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uvq_quic_endpoint_s uvq_quic_endpoint_t;
typedef struct uvq_quic_conn_s uvq_quic_conn_t;
typedef struct uvq_quic_write_s uvq_quic_write_t;

/* QUIC versions (RFC 9000, RFC 9369). */
#define UVQ_QUIC_V1 0x00000001u
#define UVQ_QUIC_V2 0x6b3343cfu

enum uvq_quic_cc {
  UVQ_QUIC_CC_CUBIC = 0,
  UVQ_QUIC_CC_BBR = 1,
  UVQ_QUIC_CC_RENO = 2
};

/* When a server asks new clients to prove their address with a Retry
 * (RFC 9000, 8.1.2) before it spends a handshake on them
 * (uvq_quic_config_t.retry). */
enum uvq_quic_retry {
  /* Only under load: an Initial without a token gets a Retry while
   * retry_threshold or more handshakes are in progress. */
  UVQ_QUIC_RETRY_AUTO = 0,
  /* Every Initial without a token gets a Retry. */
  UVQ_QUIC_RETRY_ALWAYS = 1,
  /* Never; over max_handshakes new clients are refused. */
  UVQ_QUIC_RETRY_NEVER = 2
};

/* Why a connection ended (uvq_quic_error_t.kind). */
enum uvq_quic_error_kind {
  UVQ_QUIC_ERROR_NONE = 0,
  /* A CONNECTION_CLOSE with a transport error code (RFC 9000, 20.1);
   * TLS alerts are 0x100 + alert. */
  UVQ_QUIC_ERROR_TRANSPORT = 1,
  /* A CONNECTION_CLOSE with an application error code. */
  UVQ_QUIC_ERROR_APPLICATION = 2,
  /* The idle timeout expired. */
  UVQ_QUIC_ERROR_IDLE = 3,
  /* The handshake did not finish within the handshake timeout. */
  UVQ_QUIC_ERROR_HANDSHAKE_TIMEOUT = 4,
  /* The peer sent a stateless reset. */
  UVQ_QUIC_ERROR_STATELESS_RESET = 5,
  /* No version in common (version negotiation failed). */
  UVQ_QUIC_ERROR_VERSION = 6,
  /* The endpoint was closed with the connection still open. */
  UVQ_QUIC_ERROR_ENDPOINT_CLOSED = 7,
  /* Client, during the handshake: the kernel reported the server
   * unreachable (ICMP port or host unreachable); uv_error says which. */
  UVQ_QUIC_ERROR_UNREACHABLE = 8
};

typedef struct uvq_quic_error_s {
  int kind;            /* enum uvq_quic_error_kind */
  int remote;          /* 1: the peer closed; 0: this side did */
  uint64_t code;       /* transport or application error code */
  /* ngtcp2's library error behind a local close (an NGTCP2_ERR_* value,
   * readable with uvq_quic_strerror()); 0 if none. Never a UV_E* code. */
  int library_error;
  /* With UVQ_QUIC_ERROR_UNREACHABLE: UV_ECONNREFUSED, UV_EHOSTUNREACH or
   * UV_ENETUNREACH. 0 otherwise. */
  int uv_error;
  const char* reason;  /* the CONNECTION_CLOSE reason phrase, or NULL */
  size_t reasonlen;
} uvq_quic_error_t;

/* Describes an ngtcp2 library error (uvq_quic_error_t.library_error). */
UVQ_EXTERN const char* uvq_quic_strerror(int library_error);

/* Struct versions. Each struct a program lays out for uvq has a version
 * of its own, the layout in this header; the library reads older layouts
 * and converts them (new fields at their defaults), so a program built
 * against an older header runs against a newer library. Fields are only
 * appended. A version newer than the library is UV_EINVAL.
 *
 * uvq_quic_config_t: 2 added tls_ciphersuites (after alpn); 3 appended
 * retry, retry_threshold and tls_groups; 4 appended
 * preferred_address_ipv4 and preferred_address_ipv6; 5 appended
 * worker_index, worker_count and lb_server_id. */
#define UVQ_QUIC_CONFIG_VERSION 5
/* uvq_quic_connect_opts_t. Versions 1 to 3 are one layout (programs built
 * against uvq 0.1.0 put UVQ_QUIC_CONFIG_VERSION there); 4 appended
 * quic_version. */
#define UVQ_QUIC_CONNECT_OPTS_VERSION 4
/* uvq_quic_callbacks_t, passed by the uvq_quic_endpoint_new() macro. */
#define UVQ_QUIC_CALLBACKS_VERSION 1
/* uvq_quic_app_callbacks_t, passed by the uvq_quic_conn_set_app() macro. */
#define UVQ_QUIC_APP_CALLBACKS_VERSION 1
/* uvq_quic_io_t, passed by the uvq_quic_endpoint_new_core() macro. Its
 * version also fixes the layout of the uvq_udp_mmsg_t array handed to
 * send: version 1 hands UVQ_UDP_MMSG_VERSION 1. */
#define UVQ_QUIC_IO_VERSION 1

/* uvq_quic_config_t.handshake_timeout_ms: no handshake timeout. */
#define UVQ_QUIC_NO_HANDSHAKE_TIMEOUT UINT64_MAX

/* Endpoint configuration. Fill it with uvq_quic_config_default() first,
 * which sets version; a struct laid out for an older release is read as
 * such. Strings are copied. */
typedef struct uvq_quic_config_s {
  unsigned int version; /* UVQ_QUIC_CONFIG_VERSION */

  /* TLS. A server needs cert_file and key_file (PEM). A client verifies the
   * server against ca_file (PEM) unless insecure_skip_verify is set, which
   * is for tests only. alpn is a comma-separated list, in preference
   * order, e.g. "h3" or "uvq-test,h3". */
  const char* cert_file;
  const char* key_file;
  const char* ca_file;
  int insecure_skip_verify;
  const char* alpn;
  /* TLS 1.3 cipher suites, colon-separated IANA names in preference order,
   * from TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384 and
   * TLS_CHACHA20_POLY1305_SHA256. A client offers these; a server accepts
   * only these. NULL: all three, in that order. Anything else is
   * UV_EINVAL from uvq_quic_endpoint_new. */
  const char* tls_ciphersuites;

  /* Transport parameters (RFC 9000, 18.2). 0 picks the default. */
  uint64_t max_data;              /* connection flow control window */
  uint64_t max_stream_data;       /* per stream window */
  uint64_t max_streams_bidi;      /* streams the peer may open */
  uint64_t max_streams_uni;
  uint64_t idle_timeout_ms;
  /* 0: 10 s. UVQ_QUIC_NO_HANDSHAKE_TIMEOUT: none, the idle timeout alone
   * ends a handshake that hears nothing from the peer. */
  uint64_t handshake_timeout_ms;
  /* Largest DATAGRAM frame to accept; 0 disables RFC 9221 datagrams. */
  size_t max_datagram_frame_size;
  /* Send a PING after this much quiet time to keep NAT bindings; 0: off. */
  uint64_t keepalive_ms;

  int cc;                          /* enum uvq_quic_cc */
  /* Version this side prefers (UVQ_QUIC_V1 or UVQ_QUIC_V2); 0: v1. Both
   * are offered for compatible version negotiation (RFC 9368). */
  uint32_t preferred_version;

  /* Server policy. */
  int zero_rtt;                    /* accept 0-RTT data (RFC 9001, 4.6); 1 */
  int require_address_validation;  /* 1: as retry = UVQ_QUIC_RETRY_ALWAYS */
  unsigned int max_connections;    /* 0: 10000 */
  unsigned int max_handshakes;     /* handshakes not yet complete; 0: 1000 */

  /* 32 bytes from which stateless reset tokens and Retry tokens are
   * derived. Give the same secret to a restarted server so that it can
   * reset its old connections (RFC 9000, 10.3); NULL: random. */
  const uint8_t* static_secret;

  /* Observability: one qlog file per connection in this directory, and
   * TLS secrets appended to this file in NSS key log format. NULL: off. */
  const char* qlog_dir;
  const char* keylog_file;

  /* Datapath switches, all on by default (1); set 0 to turn one off. */
  int ecn;
  int pmtud;
  int gso;
  int gro;
  int pacing;

  /* Load shedding (3). retry: enum uvq_quic_retry, UVQ_QUIC_RETRY_AUTO by
   * default. retry_threshold: handshakes in progress from which AUTO
   * answers Initials without a token with a Retry; 0: a tenth of
   * max_handshakes (at least 1); more than max_handshakes counts as
   * max_handshakes. */
  int retry;
  unsigned int retry_threshold;

  /* TLS 1.3 key exchange groups, colon-separated in preference order, from
   * X25519, P-256, P-384 and P-521 (3). A client offers a key share for
   * the first; a server accepts only these. NULL: all four, in that
   * order. Anything else is UV_EINVAL from uvq_quic_endpoint_new. */
  const char* tls_groups;

  /* Server (4): a preferred address offered to every client in the transport
   * parameters (RFC 9000, 9.6 and 18.2), IPv4 and/or IPv6; NULL: none.
   * Copied. Each connection gets a connection ID of its own for it, and
   * its stateless reset token. The endpoint must receive there on its one
   * socket: bind the wildcard address of the family (or the preferred
   * address itself) with the same port; port 0 here means the endpoint's
   * port, another is UV_EINVAL from uvq_quic_endpoint_bind() unless it is
   * the port bound. A client validates the path and moves to it. */
  const struct sockaddr_in* preferred_address_ipv4;
  const struct sockaddr_in6* preferred_address_ipv6;

  /* Workers (5). Several endpoints, each on its own loop and thread, serve
   * one port from sockets in one SO_REUSEPORT group. worker_count: the
   * endpoints in the group, 1 to 256; 0 (the default): not a worker
   * (connection IDs are wholly random, the socket is bound alone).
   * worker_index: this endpoint's place, 0 to worker_count - 1, which must
   * also be its bind order (the kernel numbers a group's sockets in the
   * order they were bound, and the steering program answers with that
   * number). Every connection ID the endpoint issues is 18 octets in the
   * QUIC-LB plaintext layout (draft-ietf-quic-load-balancers): first octet
   * 0x11 (config rotation 0, self-encoded length 17), then a 2-octet server
   * ID, lb_server_id then worker_index, then 15 random octets. With
   * worker_count above 1, uvq_quic_endpoint_bind binds with
   * UVQ_UDP_REUSEPORT and attaches the steering program (Linux; see
   * uvq_quic_endpoint_stats_t.steering). Give every worker the same
   * static_secret, so that any of them validates the Retry tokens and
   * produces the stateless resets of another. lb_server_id (0 to 255)
   * tells this machine apart from others behind one QUIC-LB load
   * balancer; 0 by default. Out-of-range values are UV_EINVAL. */
  unsigned int worker_index;
  unsigned int worker_count;
  unsigned int lb_server_id;
} uvq_quic_config_t;

/* uvq_quic_config_default(config): fills config with the defaults, in
 * this header's layout (a macro passing UVQ_QUIC_CONFIG_VERSION). */
UVQ_EXTERN void uvq_quic_config_default_versioned(int config_version,
                                                  uvq_quic_config_t* config);
#define uvq_quic_config_default(config)                                     \
  uvq_quic_config_default_versioned(UVQ_QUIC_CONFIG_VERSION, (config))

/* uvq_quic_config_copy(dst, src): copies src, laid out for any version
 * this library reads, into dst in this header's layout (a macro passing
 * UVQ_QUIC_CONFIG_VERSION), so that a library layered on uvq can adjust
 * a configuration its own caller filled in (as HTTP/3 sets alpn and the
 * stream limits). Strings are not copied: dst points at src's. UV_EINVAL
 * for NULL arguments or a version this library does not know. */
UVQ_EXTERN int uvq_quic_config_copy_versioned(int dst_version,
                                              uvq_quic_config_t* dst,
                                              const uvq_quic_config_t* src);
#define uvq_quic_config_copy(dst, src)                                      \
  uvq_quic_config_copy_versioned(UVQ_QUIC_CONFIG_VERSION, (dst), (src))

/* Callbacks. All optional except where noted; user_data is the endpoint's
 * (uvq_quic_endpoint_get_data) or the connection's
 * (uvq_quic_conn_get_data). */
typedef struct uvq_quic_callbacks_s {
  /* Server: a client started a handshake. Set the connection's data here.
   * Return non-zero to refuse it (CONNECTION_REFUSED). */
  int (*accept)(uvq_quic_endpoint_t* ep, uvq_quic_conn_t* conn);
  /* The handshake completed. */
  void (*handshake_done)(uvq_quic_conn_t* conn);
  /* The connection is over; conn is freed when this returns. Every open
   * stream's writes complete first. */
  void (*closed)(uvq_quic_conn_t* conn, const uvq_quic_error_t* error);
  /* The peer opened a stream. */
  void (*stream_open)(uvq_quic_conn_t* conn, int64_t stream_id);
  /* Stream data in order. fin marks the end. The data is valid during the
   * call; flow-control credit returns only with uvq_quic_stream_consume. */
  void (*stream_data)(uvq_quic_conn_t* conn,
                      int64_t stream_id,
                      const uint8_t* data,
                      size_t len,
                      int fin);
  /* The peer reset its sending side (RESET_STREAM). */
  void (*stream_reset)(uvq_quic_conn_t* conn, int64_t stream_id,
                       uint64_t app_error);
  /* The peer asked this side to stop sending (STOP_SENDING). ngtcp2 1.11
   * answers STOP_SENDING with RESET_STREAM without telling uvq, so this is
   * not called with it: writes still queued complete with UV_ECANCELED,
   * and stream_closed carries the peer's code. Stopping to read a stream
   * yourself never calls it. */
  void (*stream_stop_sending)(uvq_quic_conn_t* conn, int64_t stream_id,
                              uint64_t app_error);
  /* The stream is closed both ways and forgotten. */
  void (*stream_closed)(uvq_quic_conn_t* conn, int64_t stream_id,
                        uint64_t app_error);
  /* More local streams may be opened (the peer raised MAX_STREAMS). */
  void (*streams_available)(uvq_quic_conn_t* conn);
  /* An RFC 9221 datagram arrived. */
  void (*datagram)(uvq_quic_conn_t* conn, const uint8_t* data, size_t len);
  /* A sent datagram was acknowledged, or declared lost. */
  void (*datagram_acked)(uvq_quic_conn_t* conn, uint64_t datagram_id);
  void (*datagram_lost)(uvq_quic_conn_t* conn, uint64_t datagram_id);
  /* Client: the server sent a session ticket; ticket (opaque bytes) can be
   * passed to a later uvq_quic_connect for resumption and 0-RTT. */
  void (*session_ticket)(uvq_quic_conn_t* conn,
                         const uint8_t* ticket,
                         size_t len);
} uvq_quic_callbacks_t;

typedef void (*uvq_quic_write_cb)(uvq_quic_write_t* req, int status);

/* A stream write. The payload buffers stay the caller's and must live until
 * the callback, which runs once the peer acknowledged every byte (status
 * 0), or the stream was reset or the connection closed (UV_ECANCELED). */
struct uvq_quic_write_s {
  void* data;             /* for the user */
  uvq_quic_conn_t* conn;  /* read-only */
  int64_t stream_id;      /* read-only */
  struct uvq__quic_write_state* state_;
};

/* What became of 0-RTT (uvq_quic_conn_stats_t.zero_rtt). */
enum uvq_quic_0rtt {
  UVQ_QUIC_0RTT_NONE = 0,      /* not attempted (no usable ticket) */
  UVQ_QUIC_0RTT_SENT = 1,      /* client: attempted, handshake not done */
  UVQ_QUIC_0RTT_ACCEPTED = 2,  /* the server took the early data */
  UVQ_QUIC_0RTT_REJECTED = 3   /* the server refused it: streams written
                                * before the handshake are resent by ngtcp2
                                * only if it kept them; see docs */
};

typedef struct uvq_quic_conn_stats_s {
  uint64_t smoothed_rtt_ns;
  uint64_t min_rtt_ns;
  uint64_t latest_rtt_ns;
  uint64_t cwnd;
  uint64_t bytes_in_flight;
  uint64_t bytes_sent;          /* UDP payload bytes */
  uint64_t bytes_received;
  uint64_t packets_sent;
  uint64_t packets_received;
  uint64_t sends;               /* UDP messages (GSO batches) handed over */
  uint64_t ecn_sent[4];         /* packets sent by codepoint */
  uint64_t ecn_received[4];     /* packets received by codepoint */
  /* 1 while packets go out ECT(0): ECN validation (RFC 9000, 13.4.2) has
   * not failed on the current path. */
  int ecn_marking;
  size_t path_mtu;              /* largest UDP payload PMTUD has validated */
  uint32_t version;             /* negotiated QUIC version */
  int zero_rtt;                 /* enum uvq_quic_0rtt */
  int resumed;                  /* the TLS session was resumed */
  uint64_t reserved[16];
} uvq_quic_conn_stats_t;

/* How datagrams find their worker (uvq_quic_endpoint_stats_t.steering). */
enum uvq_quic_steering {
  /* Not a worker group (worker_count 0 or 1), or not bound yet. */
  UVQ_QUIC_STEERING_NONE = 0,
  /* The reuseport BPF program steers each datagram to the worker its
   * destination connection ID names; Initials with a client-chosen ID
   * are spread by that ID. */
  UVQ_QUIC_STEERING_BPF = 1,
  /* The program could not be attached (not Linux, or the kernel refused
   * it: steering_error says why): the kernel's 4-tuple hash picks the
   * worker, so a client whose address changes reaches another worker and
   * loses its connection. */
  UVQ_QUIC_STEERING_KERNEL_HASH = 2
};

typedef struct uvq_quic_endpoint_stats_s {
  uint64_t connections_accepted;
  uint64_t connections_refused;  /* over max_connections/max_handshakes */
  uint64_t packets_dropped;      /* unroutable, malformed or refused */
  uint64_t version_negotiations; /* Version Negotiation packets sent */
  uint64_t retries;              /* Retry packets sent */
  uint64_t stateless_resets;     /* Stateless Reset packets sent */
  /* Workers: short-header packets for no known connection whose ID names
   * another worker of the group (steering did not deliver them there). */
  uint64_t packets_misrouted;
  uint64_t steering;             /* enum uvq_quic_steering */
  /* With UVQ_QUIC_STEERING_KERNEL_HASH: why the program was not attached,
   * a negative UV_E* code (UV_ENOTSUP where the platform has none). */
  int64_t steering_error;
  /* Initials with a valid Retry token that came while max_handshakes
   * handshakes were in progress and waited for a slot instead of being
   * dropped (at most 1024 wait at a time, each up to 5 s). */
  uint64_t initials_waited;
  uint64_t reserved[12];
} uvq_quic_endpoint_stats_t;

/* Options for one client connection. */
typedef struct uvq_quic_connect_opts_s {
  unsigned int version;          /* UVQ_QUIC_CONNECT_OPTS_VERSION */
  /* The name the certificate must be for: a host name (also sent as SNI)
   * or an IP address (checked against the certificate's IP entries, never
   * sent as SNI). Required unless insecure_skip_verify is set. */
  const char* server_name;
  /* A ticket from the session_ticket callback: resume, and send 0-RTT
   * data written before the handshake completes. */
  const uint8_t* session_ticket;
  size_t session_ticket_len;
  /* Local address to send from (port 0: the endpoint's); NULL: default. */
  const struct sockaddr* local;
  /* The version of the first Initial: UVQ_QUIC_V1 or UVQ_QUIC_V2; 0: v1.
   * Both are offered for compatible version negotiation either way, so a
   * server may still switch the connection to the other. With a ticket,
   * use the version the ticket's connection ended on: 0-RTT packets go in
   * this version and a server that switches discards them (RFC 9368, 6). */
  uint32_t quic_version;
} uvq_quic_connect_opts_t;

/* uvq_quic_endpoint_new(loop, config, callbacks, user_data, ep): a macro
 * passing UVQ_QUIC_CALLBACKS_VERSION to uvq_quic_endpoint_new_versioned().
 * Creates an endpoint on loop. config and callbacks are copied; callbacks
 * may be NULL (no callbacks). Errors: UV_EINVAL (NULL loop, config or ep,
 * a config or callbacks version newer than the library, bad values),
 * UV_ENOMEM, UV_EIO (the TLS context could not be set up: certificate,
 * key or CA file unreadable), or uv_random()'s error when the kernel gives
 * no random bytes (the process is never aborted for it). */
UVQ_EXTERN int uvq_quic_endpoint_new_versioned(
    uv_loop_t* loop,
    const uvq_quic_config_t* config,
    int callbacks_version,
    const uvq_quic_callbacks_t* callbacks,
    void* user_data,
    uvq_quic_endpoint_t** ep);
#define uvq_quic_endpoint_new(loop, config, callbacks, user_data, ep)       \
  uvq_quic_endpoint_new_versioned((loop), (config),                         \
                                  UVQ_QUIC_CALLBACKS_VERSION, (callbacks),  \
                                  (user_data), (ep))

/* Binds the endpoint's socket and starts receiving. A server binds where
 * it listens (any address: replies come from the address each client
 * reached); a client binds anywhere, port 0. UV_EALREADY when bound;
 * bind errors. */
UVQ_EXTERN int uvq_quic_endpoint_bind(uvq_quic_endpoint_t* ep,
                                      const struct sockaddr* addr);

/* Closes every connection (CONNECTION_CLOSE with NO_ERROR), then the
 * socket; close_cb runs last, after every connection's closed callback. */
UVQ_EXTERN void uvq_quic_endpoint_close(uvq_quic_endpoint_t* ep,
                                        void (*close_cb)(uvq_quic_endpoint_t*));

UVQ_EXTERN void* uvq_quic_endpoint_get_data(const uvq_quic_endpoint_t* ep);
UVQ_EXTERN uvq_udp_t* uvq_quic_endpoint_udp(uvq_quic_endpoint_t* ep);
UVQ_EXTERN int uvq_quic_endpoint_get_stats(const uvq_quic_endpoint_t* ep,
                                           uvq_quic_endpoint_stats_t* stats);

/* ---- The endpoint without I/O ---------------------------------------------
 *
 * An endpoint is a state machine with explicit inputs and outputs; the
 * functions above wire it to a libuv loop and a uvq UDP handle. A core
 * endpoint (uvq_quic_endpoint_new_core) has no loop, socket or handle:
 *
 *   - every datagram the application receives goes to
 *     uvq_quic_endpoint_input() with its path, ECN codepoint and time;
 *   - uvq_quic_endpoint_next_expiry() says when the endpoint next needs
 *     the time, and uvq_quic_endpoint_expire() tells it that time came;
 *   - uvq_quic_endpoint_flush() makes the connections write, and hands
 *     their packets to the io.send sink in GSO runs.
 *
 * Times are nanoseconds on any monotonic clock the application chooses
 * (uv_hrtime() is one), and must never go back. Everything else works as
 * on a loop endpoint: connections, streams, callbacks, HTTP/3. A core
 * endpoint never reads a clock or a socket itself, so a test or a fuzzer
 * can drive it packet by packet, and an application can run it over any
 * transport (a socket it owns, a socket of a SO_REUSEPORT group, a
 * tunnel). */

/* The transmit sink of a core endpoint. */
typedef struct uvq_quic_io_s {
  unsigned int version;          /* UVQ_QUIC_IO_VERSION */
  /* Required. Takes count messages, each one GSO run of packets: one
   * destination (addr), one source (local: the path's local address with
   * its port, always set, so that an application with several sockets can
   * pick the socket), one ECN codepoint (ecn, 0-3) and a stride (gso_size;
   * 0 for a single datagram). The layout is uvq_udp_try_send_batch()'s, so
   * the messages can be passed to it as they are. Returns how many it took,
   * from the first: their buffers may be reused once it returns. A message
   * that cannot be sent for another reason than a full socket (EMSGSIZE,
   * an unreachable network) counts as taken: it is lost, as on the path.
   * Fewer than count (0 included; a negative return counts as 0) means the
   * socket is full: the endpoint keeps the rest, writes nothing more, and
   * offers them again at the next uvq_quic_endpoint_flush(). Must not call
   * back into the endpoint. */
  int (*send)(uvq_quic_endpoint_t* ep,
              const uvq_udp_mmsg_t* msgs,
              unsigned int count);
  /* Optional. The endpoint has work for uvq_quic_endpoint_flush(): a
   * connection has something to send (the application wrote, a callback
   * closed a stream) or the next expiry moved earlier. Called at most once
   * between two flushes, possibly from inside a callback: schedule the
   * flush, do not run it from here. Without wake, flush after every call
   * into the endpoint or its connections. */
  void (*wake)(uvq_quic_endpoint_t* ep);
} uvq_quic_io_t;

/* uvq_quic_endpoint_new_core(config, callbacks, io, user_data, ep): a
 * macro passing UVQ_QUIC_CALLBACKS_VERSION and UVQ_QUIC_IO_VERSION to
 * uvq_quic_endpoint_new_core_versioned(). Creates a core endpoint. config,
 * callbacks and io are copied. Its clock starts at 0: give it the current
 * time with the first call. Errors as uvq_quic_endpoint_new(), and
 * UV_EINVAL for a NULL io or io->send. uvq_quic_endpoint_bind() and
 * uvq_quic_endpoint_open() refuse it (UV_EINVAL), uvq_quic_endpoint_udp()
 * returns NULL, uvq_quic_connect() needs opts->local with a port (the
 * source of the path; UV_EINVAL otherwise) and uvq_quic_conn_migrate() a
 * local address with a port, which the application must be able to send
 * from and receive on. uvq_quic_endpoint_close() ends it at once: it hands
 * the CONNECTION_CLOSE packets to io.send, reports every connection
 * closed, then calls close_cb and frees the endpoint before it returns (or,
 * when called from inside a callback, before the call into the endpoint
 * that ran the callback returns). */
UVQ_EXTERN int uvq_quic_endpoint_new_core_versioned(
    const uvq_quic_config_t* config,
    int callbacks_version,
    const uvq_quic_callbacks_t* callbacks,
    int io_version,
    const uvq_quic_io_t* io,
    void* user_data,
    uvq_quic_endpoint_t** ep);
#define uvq_quic_endpoint_new_core(config, callbacks, io, user_data, ep)    \
  uvq_quic_endpoint_new_core_versioned((config), UVQ_QUIC_CALLBACKS_VERSION,\
                                       (callbacks), UVQ_QUIC_IO_VERSION,    \
                                       (io), (user_data), (ep))

/* One received datagram: from remote to local (the local address it
 * arrived on with the port it arrived at; a wildcard address when the
 * application does not know which), with its ECN codepoint (0-3), at time
 * now. The endpoint routes it by connection ID, answers what needs no
 * connection (Version Negotiation, Retry, Stateless Reset, refusals) and
 * makes new server connections; what the connections have to send waits
 * for uvq_quic_endpoint_flush(), so flush after a batch of datagrams. A
 * datagram the endpoint cannot use is dropped and counted
 * (uvq_quic_endpoint_stats_t.packets_dropped): that is not an error.
 * Returns 0, or UV_EINVAL for a NULL or a loop endpoint, NULL data, len 0,
 * a missing address or one that is not AF_INET/AF_INET6, ecn outside 0-3,
 * or remote and local of different families. */
UVQ_EXTERN int uvq_quic_endpoint_input(uvq_quic_endpoint_t* ep,
                                       const struct sockaddr* remote,
                                       const struct sockaddr* local,
                                       int ecn,
                                       const void* data,
                                       size_t len,
                                       uint64_t now);

/* The time at which the endpoint next needs uvq_quic_endpoint_expire()
 * (a loss, idle, handshake, draining or close timer of a connection):
 * UINT64_MAX when none is set. A time at or before the current one means
 * now. Call it again after every call into the endpoint. */
UVQ_EXTERN uint64_t uvq_quic_endpoint_next_expiry(
    const uvq_quic_endpoint_t* ep);

/* The endpoint's time, in the nanoseconds of uvq_quic_endpoint_input()'s
 * now: for a core endpoint the latest time the application gave it (0
 * before the first), for a loop endpoint uv_hrtime(). 0 for NULL. */
UVQ_EXTERN uint64_t uvq_quic_endpoint_now(const uvq_quic_endpoint_t* ep);

/* Runs every timer due at now (connections retransmit, time out, finish
 * closing), then writes and hands what they send to io.send, as
 * uvq_quic_endpoint_flush() does. 0, or UV_EINVAL for a NULL or a loop
 * endpoint. */
UVQ_EXTERN int uvq_quic_endpoint_expire(uvq_quic_endpoint_t* ep,
                                        uint64_t now);

/* Offers io.send what it did not take last time, then makes every
 * connection with something to send write it (ACKs, stream data, the
 * packets of new connections), in GSO runs of up to 64 packets. 0 when all
 * was taken; UV_EAGAIN when io.send took less: flush again once the socket
 * can take more (its writable event). UV_EINVAL for a NULL or a loop
 * endpoint. */
UVQ_EXTERN int uvq_quic_endpoint_flush(uvq_quic_endpoint_t* ep,
                                       uint64_t now);

/* A loop endpoint on a socket the application made: udp is a bound uvq
 * handle on the endpoint's loop (made with uvq_udp_bind, or adopted with
 * uvq_udp_open: an inherited or socket-activated descriptor, one member
 * of a SO_REUSEPORT group), used instead of bind. The endpoint enables
 * what it needs on it (uvq_udp_configure: pktinfo, ECN, PMTUD, GRO, error
 * queue as the config says) and receives on it. While the endpoint has it,
 * udp->data and the receive callbacks are the endpoint's; closing the
 * endpoint stops receiving, puts data back and leaves the handle open for
 * the application to close (after close_cb). UV_EINVAL for a core
 * endpoint, a NULL handle or one of another loop; UV_EALREADY when bound
 * or open; UV_EBADF when udp has no socket; uvq_udp_recv_start2()'s
 * errors (UV_EALREADY when the application is receiving on it). */
UVQ_EXTERN int uvq_quic_endpoint_open(uvq_quic_endpoint_t* ep,
                                      uvq_udp_t* udp);

/* Starts a client connection to remote. The handshake_done or closed
 * callback tells how it went. UV_EINVAL (also: no server_name while
 * verifying certificates), UV_ENOMEM, UV_EBADF (endpoint not bound),
 * UV_EAFNOSUPPORT (remote's family differs from the socket's), or
 * uv_random()'s error when the kernel gives no random bytes. */
UVQ_EXTERN int uvq_quic_connect(uvq_quic_endpoint_t* ep,
                                const struct sockaddr* remote,
                                const uvq_quic_connect_opts_t* opts,
                                void* user_data,
                                uvq_quic_conn_t** conn);

/* Closes the connection with an application error code and reason
 * (CONNECTION_CLOSE, RFC 9000, 10.2); the closed callback follows. */
UVQ_EXTERN int uvq_quic_conn_close(uvq_quic_conn_t* conn,
                                   uint64_t app_error,
                                   const char* reason);

UVQ_EXTERN void* uvq_quic_conn_get_data(const uvq_quic_conn_t* conn);
UVQ_EXTERN void uvq_quic_conn_set_data(uvq_quic_conn_t* conn, void* data);
UVQ_EXTERN uvq_quic_endpoint_t* uvq_quic_conn_endpoint(uvq_quic_conn_t* conn);
UVQ_EXTERN int uvq_quic_conn_is_server(const uvq_quic_conn_t* conn);
/* The negotiated ALPN protocol (not NUL-terminated), or NULL before the
 * handshake. */
UVQ_EXTERN const char* uvq_quic_conn_alpn(const uvq_quic_conn_t* conn,
                                          size_t* len);
/* The peer's address and the local address of the current path. */
UVQ_EXTERN int uvq_quic_conn_get_path(const uvq_quic_conn_t* conn,
                                      struct sockaddr_storage* local,
                                      struct sockaddr_storage* remote);
UVQ_EXTERN int uvq_quic_conn_get_stats(uvq_quic_conn_t* conn,
                                       uvq_quic_conn_stats_t* stats);
/* Initiates a key update (RFC 9001, 6). UV_EAGAIN before the handshake is
 * confirmed, while the previous update is in progress, or from inside a
 * callback of this connection (ngtcp2 cannot be re-entered). */
UVQ_EXTERN int uvq_quic_conn_update_key(uvq_quic_conn_t* conn);
/* Client: moves the connection to a new local address (port 0 picks one),
 * validating the new path (RFC 9000, 9). UV_EAGAIN before the handshake
 * completed, from inside a callback of this connection, or while the
 * server has given no spare connection ID; UV_EINVAL on a server
 * connection; UV_EAFNOSUPPORT for another address family. A client also
 * moves, by itself, to a server's preferred address of its socket's
 * family once the handshake is confirmed (RFC 9000, 9.6);
 * uvq_quic_conn_get_path tells where the connection is. */
UVQ_EXTERN int uvq_quic_conn_migrate(uvq_quic_conn_t* conn,
                                     const struct sockaddr* local);

/* Opens a stream. bidi: 1 for bidirectional. UV_EAGAIN when the peer's
 * stream limit is reached (streams_available says when to retry). */
UVQ_EXTERN int uvq_quic_stream_open(uvq_quic_conn_t* conn,
                                    int bidi,
                                    int64_t* stream_id);

/* Queues bufs on the stream; fin ends the stream after them. The buffers
 * are sent without copying and must stay valid until cb. UV_EINVAL (also:
 * the connection has an application protocol, uvq_quic_conn_set_app),
 * UV_ENOENT (no such stream), UV_EPIPE (the stream's sending side is
 * finished or reset). */
UVQ_EXTERN int uvq_quic_stream_write(uvq_quic_write_t* req,
                                     uvq_quic_conn_t* conn,
                                     int64_t stream_id,
                                     const uv_buf_t bufs[],
                                     unsigned int nbufs,
                                     int fin,
                                     uvq_quic_write_cb cb);

/* Returns n bytes of flow-control credit on the stream (and the
 * connection): call it as the application consumes data, so that a slow
 * reader holds the sender back instead of growing memory. */
UVQ_EXTERN int uvq_quic_stream_consume(uvq_quic_conn_t* conn,
                                       int64_t stream_id,
                                       size_t n);

/* Abruptly ends the sending side (RESET_STREAM) and/or asks the peer to
 * stop sending (STOP_SENDING), with an application error code. Both on a
 * unidirectional stream end the one direction it has. */
#define UVQ_QUIC_SHUT_WRITE 1
#define UVQ_QUIC_SHUT_READ 2
UVQ_EXTERN int uvq_quic_stream_shutdown(uvq_quic_conn_t* conn,
                                        int64_t stream_id,
                                        int how,
                                        uint64_t app_error);

UVQ_EXTERN int uvq_quic_stream_set_data(uvq_quic_conn_t* conn,
                                        int64_t stream_id,
                                        void* data);
UVQ_EXTERN void* uvq_quic_stream_get_data(uvq_quic_conn_t* conn,
                                          int64_t stream_id);

/* Sends an RFC 9221 datagram (copied). *id, if not NULL, identifies it in
 * the datagram_acked/lost callbacks. UV_ENOTSUP when the peer does not
 * accept datagrams, UV_EMSGSIZE when it is larger than the peer accepts,
 * UV_EAGAIN when too many are queued. */
UVQ_EXTERN int uvq_quic_datagram_send(uvq_quic_conn_t* conn,
                                      const uv_buf_t bufs[],
                                      unsigned int nbufs,
                                      uint64_t* id);

/* ---- Application protocols ----------------------------------------------
 *
 * An application protocol (HTTP/3, HTTP/0.9, a protocol of your own) can
 * take over a connection's streams, as nghttp3 sits on ngtcp2: uvq pulls
 * the data to send from it when the connection can send (without copying),
 * hands it received data and lets it return flow-control credit when it
 * has consumed the bytes, tells it what the peer acknowledged and how
 * streams end. Reference: docs/quic.md, "Application protocols".
 *
 * While a connection has an application protocol, the stream callbacks of
 * uvq_quic_callbacks_t (stream_open, stream_data, stream_reset,
 * stream_stop_sending, stream_closed) are not called for it and
 * uvq_quic_stream_write() is UV_EINVAL on it; the connection, datagram and
 * streams_available callbacks stay the endpoint's. Streams are opened,
 * given data, credited and shut down with uvq_quic_stream_open(),
 * uvq_quic_stream_set_data(), uvq_quic_stream_consume() and
 * uvq_quic_stream_shutdown(), all of which may be called from the
 * callbacks below, and the connection ends with uvq_quic_conn_close().
 *
 * Every callback but send_stream_data and recv_stream_data is optional.
 * Callbacks returning int return 0, or non-zero when the application
 * protocol failed in a way that ends the connection: the connection then
 * closes with the application error code given to uvq_quic_conn_close()
 * in that callback (e.g. H3_FRAME_UNEXPECTED), or with the transport error
 * INTERNAL_ERROR if it gave none. app_data is the pointer given to
 * uvq_quic_conn_set_app(); stream_data is what uvq_quic_stream_set_data()
 * set on the stream (NULL until then). */

/* One piece of stream data to send; the layout of ngtcp2's and nghttp3's
 * vectors, so an application on nghttp3 passes its vectors through. */
typedef struct uvq_quic_vec_s {
  uint8_t* base;
  size_t len;
} uvq_quic_vec_t;

typedef struct uvq_quic_app_callbacks_s {
  /* Required. The connection can send: fill up to maxvec entries of vec
   * with the next bytes of one stream, set *stream_id to it and *nvec to
   * the entries filled, and *fin to 1 if they end the stream. *stream_id
   * stays -1 (and *nvec 0) when there is nothing to send. The bytes must
   * stay valid and unchanged until acked_stream_data covers them: uvq
   * does not copy them and may send them again. */
  int (*send_stream_data)(uvq_quic_conn_t* conn, void* app_data,
                          int64_t* stream_id, int* fin, uvq_quic_vec_t* vec,
                          size_t maxvec, size_t* nvec);
  /* How many of the bytes last offered for stream_id went into packets
   * (len may be less than offered, and 0 with a lone FIN); the next
   * send_stream_data call offers what follows them. */
  int (*stream_data_sent)(uvq_quic_conn_t* conn, void* app_data,
                          int64_t stream_id, size_t len);
  /* The stream's flow-control limit stopped the data offered for it:
   * offer nothing more for it until stream_data_unblocked. */
  int (*stream_data_blocked)(uvq_quic_conn_t* conn, void* app_data,
                             int64_t stream_id);
  /* The peer raised the stream's limit (MAX_STREAM_DATA). */
  int (*stream_data_unblocked)(uvq_quic_conn_t* conn, void* app_data,
                               int64_t stream_id, void* stream_data);
  /* The stream can no longer send (it was reset, or the peer sent
   * STOP_SENDING and uvq answered with RESET_STREAM): offer nothing more
   * for it. */
  int (*stream_write_closed)(uvq_quic_conn_t* conn, void* app_data,
                             int64_t stream_id);
  /* The peer acknowledged len bytes of the stream from offset on
   * (ranges arrive in order): they may be freed. */
  int (*acked_stream_data)(uvq_quic_conn_t* conn, void* app_data,
                           int64_t stream_id, void* stream_data,
                           uint64_t offset, uint64_t len);

  /* The peer opened a stream (before its first data arrives). */
  int (*stream_open)(uvq_quic_conn_t* conn, void* app_data,
                     int64_t stream_id);
  /* Required. Stream data in order, valid during the call; fin marks the
   * end. No credit returns by itself: call uvq_quic_stream_consume() for
   * the bytes consumed, now or later, or the peer stops at the window. */
  int (*recv_stream_data)(uvq_quic_conn_t* conn, void* app_data,
                          int64_t stream_id, void* stream_data,
                          const uint8_t* data, size_t len, int fin);
  /* The peer reset its sending side of the stream (RESET_STREAM). */
  int (*stream_reset)(uvq_quic_conn_t* conn, void* app_data,
                      int64_t stream_id, void* stream_data,
                      uint64_t app_error);
  /* This side stopped reading the stream before its end
   * (uvq_quic_stream_shutdown() with UVQ_QUIC_SHUT_READ): STOP_SENDING
   * goes to the peer with app_error. */
  int (*stream_stop_sending)(uvq_quic_conn_t* conn, void* app_data,
                             int64_t stream_id, void* stream_data,
                             uint64_t app_error);
  /* The stream is closed both ways and forgotten; app_error is the code
   * it was reset with, 0 if none. stream_data is not used after this. */
  int (*stream_close)(uvq_quic_conn_t* conn, void* app_data,
                      int64_t stream_id, void* stream_data,
                      uint64_t app_error);
  /* The peer may now open streams of the kind (bidi: 1 bidirectional, 0
   * unidirectional) up to max in all (this side sent MAX_STREAMS). */
  int (*max_remote_streams)(uvq_quic_conn_t* conn, void* app_data, int bidi,
                            uint64_t max);
} uvq_quic_app_callbacks_t;

/* uvq_quic_conn_set_app(conn, callbacks, app_data): a macro passing
 * UVQ_QUIC_APP_CALLBACKS_VERSION to uvq_quic_conn_set_app_versioned().
 * Hands the connection's streams to an application protocol; callbacks
 * are copied. Call it in the accept callback (server) or after
 * uvq_quic_connect() returns (client), before any stream exists. NULL
 * callbacks detach the protocol (from the closed callback, say); its
 * streams are then the endpoint callbacks'. Errors: UV_EINVAL (NULL conn,
 * an unknown callbacks version, send_stream_data or recv_stream_data
 * missing), UV_EBUSY (the connection has streams already). */
UVQ_EXTERN int uvq_quic_conn_set_app_versioned(
    uvq_quic_conn_t* conn,
    int callbacks_version,
    const uvq_quic_app_callbacks_t* callbacks,
    void* app_data);
#define uvq_quic_conn_set_app(conn, callbacks, app_data)                    \
  uvq_quic_conn_set_app_versioned((conn), UVQ_QUIC_APP_CALLBACKS_VERSION,   \
                                  (callbacks), (app_data))

/* The application protocol's pointer (NULL without one); separate from
 * the connection's user data (uvq_quic_conn_get_data), which stays the
 * application's. */
UVQ_EXTERN void* uvq_quic_conn_get_app_data(const uvq_quic_conn_t* conn);

/* The application protocol has new data for send_stream_data: the
 * connection writes before the loop next polls for I/O. No effect on a
 * closing connection. */
UVQ_EXTERN void uvq_quic_conn_want_write(uvq_quic_conn_t* conn);

#ifdef __cplusplus
}
#endif

#endif /* UVQ_QUIC_H */
