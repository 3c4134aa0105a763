/* Shared pieces of the QUIC tests: certificates made at run time, a
 * server and a client endpoint on one loop, per-connection and per-stream
 * records filled in by callbacks that verify every byte, and bounded loop
 * runners.
 *
 * One qt_t per test holds everything; nothing is carried in statics. Each
 * endpoint is a qt_side_t (endpoint user_data), each connection a
 * qt_conn_t (connection data), each stream a qt_stream_t inside its
 * connection, indexed by stream ID.
 *
 * Payloads come from one pattern buffer: stream S sends bytes
 * pattern[start(S) + offset], where start(S) depends on the stream ID, so
 * the receiver checks every byte at its stream offset and data delivered on
 * the wrong stream or at the wrong offset is caught.
 */
#ifndef UVQ_TEST_QUIC_HELPERS_H
#define UVQ_TEST_QUIC_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "netns.h"
#include "task.h"
#include "udp-helpers.h"
#include "uvq/quic.h"

/* How long a QUIC test waits for something that should happen soon. */
#define QT_WAIT_MS 10000
/* The ALPN both sides use unless a test says otherwise. */
#define QT_ALPN "uvq-test"
/* Connections one side can record (the robustness test makes many). */
#define QT_MAX_CONNS 8192
/* Datagrams one connection records. */
#define QT_MAX_DGRAMS 64

/* --- Certificates ------------------------------------------------------- */

typedef struct qt_certs_s {
  char dir[128];
  /* A self-signed P-256 certificate for CN=localhost with the subject
   * alternative names DNS:localhost, IP:127.0.0.1 and IP:::1; it is its
   * own CA, so ca_file = cert verifies it. */
  char cert[192];
  char key[192];
  /* A second, unrelated self-signed certificate (another "CA"). */
  char other_cert[192];
  char other_key[192];
} qt_certs_t;

/* The stateless reset token docs/quic.md documents for a connection ID:
 * the first 16 bytes of HMAC-SHA256(K, cid), K = HMAC-SHA256(static_secret,
 * "uvq stateless reset"), computed here with wolfCrypt's HMAC. */
void qt_reset_token(const uint8_t secret[32], const uint8_t* cid,
                    size_t cidlen, uint8_t token[16]);

/* Creates a temporary directory with both certificates (openssl CLI);
 * the directory is removed when the test ends. Skips the test without the
 * openssl command. */
void qt_make_certs(qt_certs_t* certs);

/* --- Records ------------------------------------------------------------ */

typedef struct qt_s qt_t;
typedef struct qt_side_s qt_side_t;
typedef struct qt_conn_s qt_conn_t;

typedef struct qt_stream_s {
  int used;
  /* Bytes received in order, and how many stream_data callbacks had fin
   * set (a FIN must be seen exactly once). */
  uint64_t rx;
  unsigned int fins;
  /* Callbacks after the one with fin (must stay 0). */
  unsigned int after_fin;
  /* The stream offset of the first byte that differs from the pattern,
   * or -1. */
  int64_t bad_offset;
  /* Received and not yet passed to uvq_quic_stream_consume (only grows
   * while the side holds credit back). */
  uint64_t unconsumed;
  unsigned int resets;
  uint64_t reset_code;
  unsigned int stop_sendings;
  unsigned int closes;
  uint64_t close_code; /* the stream_closed callback's app_error */
  /* Bytes this side queued with qt_write, and the bytes of writes that
   * completed with status 0 (acknowledged by the peer). */
  uint64_t queued;
  uint64_t acked;
} qt_stream_t;

struct qt_conn_s {
  qt_side_t* side;
  /* NULL once the closed callback ran. */
  uvq_quic_conn_t* conn;
  int is_server;
  unsigned int handshakes;
  char alpn[64];
  size_t alpnlen;
  int alpn_null; /* uvq_quic_conn_alpn returned NULL at handshake_done */
  uvq_quic_conn_stats_t stats_at_close; /* read just before closing */
  unsigned int closed;
  /* The closed callback ran while the test was inside a uvq_quic_* call
   * (qt_t.in_api): it must always come from the loop. */
  unsigned int closed_in_api;
  uvq_quic_error_t error;
  char reason[256];
  uint64_t closed_at; /* uv_hrtime() */
  uint64_t handshake_at;
  unsigned int stream_opens;
  unsigned int streams_available;
  qt_stream_t* streams; /* indexed by stream ID */
  size_t nstreams;
  unsigned int dgrams;
  uint8_t* dgram_data[QT_MAX_DGRAMS];
  size_t dgram_len[QT_MAX_DGRAMS];
  unsigned int dgram_acked;
  unsigned int dgram_lost;
  uint64_t dgram_acked_ids[QT_MAX_DGRAMS];
  /* Stream FINs received on this connection. */
  unsigned int fins;
  uint64_t rx_total;
  void* user; /* for the test */
};

/* Hooks a test may set; the helpers record first, then call them. */
typedef struct qt_hooks_s {
  void (*handshake_done)(qt_conn_t* c);
  void (*stream_data)(qt_conn_t* c, int64_t id, const uint8_t* data,
                      size_t len, int fin);
  void (*fin)(qt_conn_t* c, int64_t id);
  void (*closed)(qt_conn_t* c);
  void (*streams_available)(qt_conn_t* c);
  void (*write_done)(qt_conn_t* c, int64_t id, int status);
} qt_hooks_t;

struct qt_side_s {
  qt_t* t;
  uvq_quic_endpoint_t* ep;
  int is_server;
  uvq_quic_config_t cfg;
  qt_hooks_t hooks;
  /* Return credit at once (default 1); 0 holds it back in
   * qt_stream_t.unconsumed until qt_consume_all. */
  int auto_consume;
  /* Server: answer every stream that ends with this many bytes and FIN on
   * the same stream (0: no answer). */
  uint64_t respond_bytes;
  /* Server: refuse connections in the accept callback. */
  int refuse;
  /* Client: no session_ticket callback (set before qt_start). */
  int no_tickets;
  qt_conn_t* conns[QT_MAX_CONNS]; /* allocated as connections appear */
  unsigned int nconns;
  unsigned int accepts;
  unsigned int close_cbs;
  /* Write callbacks by status. */
  unsigned int writes_started;
  unsigned int writes_done;
  unsigned int writes_ok;
  unsigned int writes_canceled;
  unsigned int writes_other;
  int writes_other_status;
  struct sockaddr_storage addr; /* bound address, port read back */
  /* Client: session tickets received, and the latest one. */
  unsigned int tickets;
  uint8_t ticket[8192];
  size_t ticketlen;
  uvq_quic_endpoint_stats_t stats_at_close;
  int closing;
};

struct qt_s {
  uv_loop_t loop;
  qt_certs_t certs;
  qt_side_t server;
  qt_side_t client;
  const char* ip; /* "127.0.0.1" or "::1" */
  uint8_t* pattern;
  size_t pattern_len;
  /* Non-zero while the test is inside a uvq_quic_* call that may end a
   * connection (see qt_conn_t.closed_in_api). */
  int in_api;
  void* user;
};

/* --- Setup and teardown ------------------------------------------------ */

/* Initializes t: its loop, certificates, a pattern buffer of
 * max_payload + 256 bytes, and default configurations for both sides
 * (server: cert, key, QT_ALPN; client: ca_file = cert, QT_ALPN). Change
 * t->server.cfg / t->client.cfg before qt_start. */
void qt_init(qt_t* t, const char* ip, size_t max_payload);
/* Creates and binds the server (ip, port 0, read back) and the client
 * endpoints; asserts success. */
void qt_start(qt_t* t);
void qt_start_server(qt_t* t);
void qt_start_client(qt_t* t);
/* Creates an endpoint for side with its config; returns the result. */
int qt_side_new(qt_t* t, qt_side_t* side, int is_server);
/* Client connection to the server with server_name "localhost"; asserts
 * that uvq_quic_connect returns 0. */
qt_conn_t* qt_connect(qt_t* t);
qt_conn_t* qt_connect_name(qt_t* t, const char* server_name);
/* Connects with the given options (copied by the library). */
qt_conn_t* qt_connect_opts(qt_t* t, const uvq_quic_connect_opts_t* opts);
/* Connects resuming with a session ticket (and 0-RTT when it allows). */
qt_conn_t* qt_connect_ticket(qt_t* t, const uint8_t* ticket, size_t len);
/* Closes whichever endpoints are still open, runs the loop to the end and
 * asserts that each close callback ran exactly once and that
 * uv_loop_close() returns 0; frees what the records hold. */
void qt_teardown(qt_t* t);
/* Closes one endpoint (reads its stats into stats_at_close first). */
void qt_close_side(qt_side_t* side);

/* --- Traffic ------------------------------------------------------------ */

/* The pattern offset stream id starts at. */
size_t qt_stream_start(int64_t id);
/* Queues len pattern bytes on stream id (fin as given); asserts that the
 * write is accepted. The write record is freed by its callback. */
void qt_write(qt_conn_t* c, int64_t id, uint64_t len, int fin);
int qt_try_write(qt_conn_t* c, int64_t id, uint64_t len, int fin);
/* Opens a bidirectional stream, asserting success. */
int64_t qt_open_bidi(qt_conn_t* c);
/* The record of stream id (grows the table). */
qt_stream_t* qt_stream(qt_conn_t* c, int64_t id);
/* Returns all credit held back on c's streams. */
void qt_consume_all(qt_conn_t* c);
/* Asserts the stream received exactly len bytes, all matching, one FIN. */
void qt_assert_stream(qt_conn_t* c, int64_t id, uint64_t len);
/* Asserts the connection ended as described (reason NULL: none). */
void qt_assert_closed(const qt_conn_t* c, int kind, uint64_t code,
                      int remote, const char* reason);

/* --- Loop --------------------------------------------------------------- */

/* Runs until cond(arg), failing after timeout_ms (the watchdog) with the
 * caller's file and line and what it waited for. */
#define qt_run_until(t, cond, arg, timeout_ms)                                \
  qt_run_until_((t), (cond), (arg), (timeout_ms), #cond, __FILE__, __LINE__)
void qt_run_until_(qt_t* t, int (*cond)(void* arg), void* arg,
                   unsigned int timeout_ms, const char* what,
                   const char* file, int line);
void qt_run_for(qt_t* t, unsigned int ms);
/* Runs until both sides of the last connection reported handshake_done. */
#define qt_run_handshake(t, c) qt_run_handshake_((t), (c), __FILE__, __LINE__)
void qt_run_handshake_(qt_t* t, qt_conn_t* client, const char* file, int line);
/* Runs until c's closed callback ran. */
#define qt_run_until_closed(t, c)                                             \
  qt_run_until_closed_((t), (c), __FILE__, __LINE__)
void qt_run_until_closed_(qt_t* t, qt_conn_t* c, const char* file, int line);
/* Runs until c received n stream FINs. */
#define qt_run_until_fins(t, c, n)                                            \
  qt_run_until_fins_((t), (c), (n), __FILE__, __LINE__)
void qt_run_until_fins_(qt_t* t, qt_conn_t* c, unsigned int n,
                        const char* file, int line);
/* Runs until side's write callbacks number n. */
#define qt_run_until_writes(t, side, n)                                       \
  qt_run_until_writes_((t), (side), (n), __FILE__, __LINE__)
void qt_run_until_writes_(qt_t* t, qt_side_t* side, unsigned int n,
                          const char* file, int line);

/* Conditions for qt_run_until. */
int qt_conn_has_dgram(void* c);
int qt_conn_closed(void* c);
int qt_conn_handshaken(void* c);

/* The server's connection (the n-th accepted), asserting it exists. */
qt_conn_t* qt_server_conn(qt_t* t, unsigned int n);

/* Milliseconds between two uv_hrtime() values. */
#define QT_MS(a, b) ((double) ((b) - (a)) / 1e6)

/* --- A client behind a masquerading router ---------------------------- */

/* Three namespaces (tags PREFIXc, PREFIXr, PREFIXs): the client at
 * NET.1.2, behind a router (NET.1.1 inside, NET.2.1 outside) whose
 * nftables masquerade its UDP towards the server at NET.2.2. */
typedef struct qt_nat_s {
  netns_t cli;
  netns_t rtr;
  netns_t srv;
} qt_nat_t;

/* Sets the namespaces up, net being the first two octets ("10.78"), and
 * registers their removal at exit; skips the test without nft and
 * conntrack. No mapping is in place until qt_nat_map. */
void qt_nat_up(qt_nat_t* n, const char* prefix, const char* net);
/* Masquerades the client's UDP to the router's source port port, and
 * forgets the tracked connections so that the next packet takes it. */
void qt_nat_map(qt_nat_t* n, unsigned int port);
/* Leaves the namespaces and removes them (also run at exit). */
void qt_nat_down(qt_nat_t* n);

/* Asserts that udp, a socket an endpoint had (uvq_quic_endpoint_open) and
 * has given back, is the application's again: open, its data pointer
 * data, not receiving, and receiving with the application's own callbacks
 * a datagram a fresh socket on loop sends to its address. Leaves it open,
 * not receiving, with data as it was. */
void qt_assert_udp_given_back(uv_loop_t* loop, uvq_udp_t* udp, void* data);

#endif /* UVQ_TEST_QUIC_HELPERS_H */
