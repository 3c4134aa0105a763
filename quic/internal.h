/* Private declarations of the QUIC layer. quic/ reaches the network only
 * through the public uvq_udp_* API. */
#ifndef UVQ_QUIC_INTERNAL_H
#define UVQ_QUIC_INTERNAL_H

#include "uvq/quic.h"

#include <errno.h>
#include <stdio.h>

#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <wolfssl/options.h>
#include <wolfssl/ssl.h>

#include "cidmap.h"
#include "heap.h"

/* Connection IDs uvq issues are this long; 18 bytes of randomness make
 * collisions and guessing irrelevant. */
#define UVQ__SCID_LEN 18

/* Workers: the QUIC-LB plaintext layout of the IDs a worker issues
 * (uvq_quic_config_t.worker_count). The first octet holds config rotation
 * 0 in its top 3 bits and the length of the rest of the ID (17) in its low
 * 5 bits; the server ID is 2 octets, the machine (lb_server_id) then the
 * worker; 15 random octets follow. The steering program (steer-linux.c)
 * reads the same octets. */
#define UVQ__CID_LB_FIRST ((0u << 5) | (UVQ__SCID_LEN - 1))
#define UVQ__CID_LB_HOST 1
#define UVQ__CID_LB_WORKER 2

/* Send batching: up to this many GSO messages per sendmmsg, each up to 64
 * segments of one path, one ECN codepoint and one size. */
#define UVQ__TX_MSGS 16
#define UVQ__TX_SEGMENTS 64
#define UVQ__TX_BUF (UVQ__TX_MSGS * 65536)

/* Largest UDP payload uvq sends before PMTUD raises it (RFC 9000, 14.1
 * asks for at least 1200). */
#define UVQ__MIN_UDP_PAYLOAD 1200
/* What uvq accepts and probes up to. */
#define UVQ__MAX_UDP_PAYLOAD 1452

/* Safety bounds on loops that always end sooner. One call writing a
 * connection's packets: every round writes a packet, consumes data or
 * drops a stream or datagram from its list. One timer tick: each expired
 * connection's deadline moves forward when handled; more expiries than
 * this wait for the next tick, which is due at once. */
#define UVQ__WRITE_ROUNDS_MAX 100000
#define UVQ__TIMERS_PER_TICK 100000

/* The libuv handles every endpoint has besides its extra sockets: the
 * timer, the flush check handle, the nudge idle handle and the UDP
 * handle. Closing the endpoint waits for all of them. */
#define UVQ__EP_LOOP_HANDLES 4

struct uvq__quic_write_state {
  uvq_quic_write_t* req;
  struct uvq__quic_write_state* next;
  uvq_quic_write_cb cb;
  uint64_t end;          /* stream offset just past this write's bytes */
  size_t nbufs;
  uv_buf_t bufs[1];      /* nbufs entries follow */
};

struct uvq__quic_stream {
  int64_t id;
  void* user_data;
  /* Send side: writes in order; data is handed to ngtcp2 without copying
   * and held until acknowledged. */
  struct uvq__quic_write_state* wq_head;
  struct uvq__quic_write_state* wq_tail;
  uint64_t queued;       /* stream offset after the last queued byte */
  uint64_t sent;         /* bytes handed to ngtcp2 */
  uint64_t acked;        /* bytes the peer acknowledged */
  int fin_queued;
  int fin_sent;
  int write_closed;      /* reset or stopped: no more writes */
  int blocked;           /* flow control: wait for extend_max_stream_data */
  int pending;           /* on the connection's pending list */
  struct uvq__quic_stream* next_pending;
};

struct uvq__quic_dgram {
  struct uvq__quic_dgram* next;
  uint64_t id;
  size_t len;
  uint8_t data[1];
};

enum {
  UVQ__CONN_HANDSHAKING = 0,
  UVQ__CONN_OPEN,
  UVQ__CONN_CLOSING,   /* CONNECTION_CLOSE sent; answering with it */
  UVQ__CONN_DRAINING,  /* the peer closed; silent until the timer */
  UVQ__CONN_DEAD       /* closed callback delivered; freed soon */
};

struct uvq_quic_conn_s {
  uvq_quic_endpoint_t* ep;
  ngtcp2_conn* conn;
  ngtcp2_crypto_conn_ref conn_ref;
  WOLFSSL* ssl;          /* NULL once the TLS object is freed (tls.c) */
  const char* alpn;      /* negotiated, in ep->alpn_wire; NULL before */
  uint8_t alpnlen;
  uint8_t resumed;       /* the handshake resumed a session */
  uint8_t ticket_seen;   /* client: a session ticket was handed out */
  /* Framing of the TLS messages in 1-RTT CRYPTO data, followed so that
   * the TLS object is only freed between two of them: the 4-byte
   * handshake header gathered so far, and the body bytes still to come. */
  uint8_t hs_hdr[4];
  uint8_t hs_hdrlen;
  uint32_t hs_body_left;
  void* user_data;
  int is_server;
  int state;
  int handshake_reported;

  struct uvq__heap_node timer;  /* in ep->timers, keyed by expiry */
  struct uvq_quic_conn_s* next; /* ep->conns */
  struct uvq_quic_conn_s* prev;
  struct uvq_quic_conn_s* next_dirty;
  int dirty;

  /* Connection IDs routed to this connection (ours, and for a server the
   * client's original DCID until the handshake completes). */
  struct uvq__cid* cids;
  size_t ncids;
  size_t cids_cap;
  /* The peer's stateless reset tokens in ep->tokens (16 bytes each). */
  struct uvq__cid* tokens;
  size_t ntokens;
  size_t tokens_cap;

  struct uvq__cidmap streams;   /* stream ID (8 bytes) -> uvq__quic_stream */
  struct uvq__quic_stream* pending_head;
  struct uvq__quic_stream* pending_tail;

  struct uvq__quic_dgram* dgram_head;
  struct uvq__quic_dgram* dgram_tail;
  size_t dgram_count;
  uint64_t next_dgram_id;

  /* The CONNECTION_CLOSE packet, resent while closing. */
  uint8_t* close_pkt;
  size_t close_pktlen;
  ngtcp2_path_storage close_path;

  uvq_quic_error_t error;
  char* reason;

  FILE* qlog;
  uint64_t packets_sent;
  uint64_t packets_received;
  uint64_t bytes_sent;
  uint64_t bytes_received;
  uint64_t ecn_sent[4];
  uint64_t ecn_received[4];
  int last_tx_ecn;

  /* uvq_quic_conn_close called from inside a callback: done after ngtcp2
   * returns, since ngtcp2 may not be re-entered from its callbacks. */
  int close_pending;
  int close_pending_kind;
  uint64_t close_pending_code;
  ngtcp2_tstamp last_ts;       /* latest timestamp given to ngtcp2 */
  uint64_t sends;              /* UDP messages this connection started */
  int closed_pending;          /* closed callback waits for the loop */
  int closed_reported;
  int zero_rtt;                /* enum uvq_quic_0rtt */
  uint8_t tls_alert;           /* a TLS alert uvq raised itself */
  /* The application protocol that owns the streams (uvq_quic_conn_set_app):
   * app points at app_cb while there is one, NULL otherwise. */
  const uvq_quic_app_callbacks_t* app;
  uvq_quic_app_callbacks_t app_cb;
  void* app_data;
  struct uvq__cid odcid;       /* server: the client's first DCID */
  struct uvq__cid retry_odcid; /* server: its DCID before our Retry */
  int in_ngtcp2;
  struct uvq_quic_conn_s* next_dead;
};

/* A further socket of an endpoint (a client that migrated). */
struct uvq__quic_sock {
  uvq_udp_t udp;
  uvq_quic_endpoint_t* ep;
  uint16_t port;
  int closing_only;            /* failed to open; only needs closing */
  struct uvq__quic_sock* next;
};

struct uvq_quic_endpoint_s {
  /* NULL for a core endpoint (uvq_quic_endpoint_new_core): no loop, no
   * socket, no handles; the application feeds it packets and time and
   * takes its packets through io.send. Otherwise the libuv adapter
   * (endpoint-uv.c) drives the same core from the loop. */
  uv_loop_t* loop;
  /* The socket: own_udp, or one the application made and lent with
   * uvq_quic_endpoint_open (udp_borrowed; its data field is kept in
   * udp_saved_data until the endpoint gives it back). NULL for a core
   * endpoint. */
  uvq_udp_t* udp;
  uvq_udp_t own_udp;
  void* udp_saved_data;
  int udp_borrowed;
  /* The socket's address once bound or open: a client connection's path
   * starts from it (no getsockname per connection). */
  struct sockaddr_storage udp_addr;
  int udp_given_back;
  int rx_held;                 /* the socket holds rxbuf (endpoint-uv.c) */
  uvq_quic_io_t io;            /* core: the application's transmit sink */
  uint64_t clock;              /* core: the latest time it was given */
  int bound;
  int closing;                 /* uvq_quic_endpoint_close was called */
  int finished;                /* handles are closing */
  void (*close_cb)(uvq_quic_endpoint_t*);
  void* user_data;

  uvq_quic_config_t cfg;       /* strings point into owned copies */
  char* strings[8];
  uvq_quic_callbacks_t cb;
  WOLFSSL_CTX* server_ctx;
  WOLFSSL_CTX* client_ctx;
  uint8_t alpn_wire[256];      /* ALPN list in TLS wire format */
  size_t alpn_wirelen;
  FILE* keylog;

  uint8_t static_secret[32];   /* stateless reset and token keys */
  uint8_t ticket_key[32];      /* session tickets (ticket-keys.c) */
  uint8_t ticket_name[16];
  /* Server: cfg.preferred_address_ipv4/_ipv6, copied (cfg's pointers are
   * NULL); a port of 0 is filled in from the socket at bind time. */
  struct sockaddr_in preferred_v4;
  struct sockaddr_in6 preferred_v6;
  uint8_t has_preferred_v4;
  uint8_t has_preferred_v6;

  struct uvq__cidmap cids;
  uvq_quic_conn_t* last_conn;  /* the last lookup in cids, remembered */
  struct uvq__cid last_cid;
  struct uvq__cidmap tokens;   /* stateless reset token -> connection */
  struct uvq__heap timers;
  uv_timer_t timer;
  uint64_t timer_due;
  uv_check_t flush;
  uv_idle_t nudge;
  int flush_active;
  uvq_quic_conn_t* conns;
  uvq_quic_conn_t* dirty;
  uvq_quic_conn_t* dead;       /* closed, freed when no callback runs */
  int depth;                   /* entry points on the stack */
  int close_pending;
  uint8_t* rxbuf;
  size_t rxcap;
  ngtcp2_tstamp batch_ts;      /* timestamp of the receive batch in progress */
  int batch_end;               /* the callback ends a receive batch */
  unsigned int rx_since_flush; /* packets read since connections wrote */
  size_t nconns;
  size_t nhandshakes;
  unsigned int retry_threshold; /* effective: 1..max_handshakes */
  /* Recently refused client Initials, so that a re-sent one is refused
   * again rather than accepted (allocated at the first refusal). */
  struct uvq__refusal* refused;
  /* Initials with a valid Retry token waiting for a handshake slot: a
   * ring of wait_head, nwaiting (endpoint.c). */
  struct uvq__waiting* waiting;
  size_t wait_head;
  size_t nwaiting;
  uint64_t refused_key;        /* random: hashes of refused DCIDs */
  int pending_handles;

  /* Send staging. */
  uint8_t* txbuf;
  size_t txlen;
  uvq_udp_mmsg_t txmsgs[UVQ__TX_MSGS];
  uv_buf_t txbufs[UVQ__TX_MSGS];
  struct sockaddr_storage txaddr[UVQ__TX_MSGS];
  struct sockaddr_storage txlocal[UVQ__TX_MSGS];
  unsigned int ntx;
  /* Staging is busy: the adapter's queued sends are in flight, or a core
   * endpoint's sink took only the messages before tx_off (the rest is
   * offered again by the next uvq_quic_endpoint_flush). */
  int tx_blocked;
  unsigned int tx_off;
  int tx_pending;
  struct uvq__quic_sock* socks;

  uvq_quic_endpoint_stats_t stats;
};

/* One slot of the endpoint's memory of refusals: a keyed hash of the
 * client's DCID and SCID, and when it may be forgotten. */
#define UVQ__REFUSED_SLOTS 1024
struct uvq__refusal {
  uint64_t hash;
  uint64_t expiry;
};

static inline int uvq__quic_errno(void) {
  return -errno;
}

/* The length of an IPv4 or IPv6 socket address, as ngtcp2 and the
 * socket calls want it. */
static inline socklen_t uvq__addr_len(const struct sockaddr* sa) {
  return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
}

/* Whether an IPv4 or IPv6 address is the unspecified (wildcard) one. */
static inline int uvq__addr_is_wildcard(const struct sockaddr* sa) {
  if (sa->sa_family == AF_INET)
    return ((const struct sockaddr_in*) sa)->sin_addr.s_addr == 0;
  if (sa->sa_family == AF_INET6)
    return IN6_IS_ADDR_UNSPECIFIED(
        &((const struct sockaddr_in6*) sa)->sin6_addr);
  return 0;
}

/* Timestamps are uv_hrtime() nanoseconds, the clock ngtcp2 is given. */
static inline ngtcp2_tstamp uvq__now(void) {
  return (ngtcp2_tstamp) uv_hrtime();
}

/* The endpoint's time: the loop's clock, or for a core endpoint the latest
 * time the application gave it, so that a core endpoint's behaviour
 * depends only on its inputs. */
static inline ngtcp2_tstamp uvq__ep_now(const uvq_quic_endpoint_t* ep) {
  return ep->loop != NULL ? uvq__now() : ep->clock;
}

/* compat.c: public structs read in the layout of the caller's version and
 * converted to the current one; UV_EINVAL for a version this library does
 * not know. */
int uvq__quic_config_load(const uvq_quic_config_t* in, uvq_quic_config_t* out);
int uvq__quic_connect_opts_load(const uvq_quic_connect_opts_t* in,
                                uvq_quic_connect_opts_t* out);
int uvq__quic_callbacks_load(int version,
                             const uvq_quic_callbacks_t* in,
                             uvq_quic_callbacks_t* out);
int uvq__quic_app_callbacks_load(int version,
                                 const uvq_quic_app_callbacks_t* in,
                                 uvq_quic_app_callbacks_t* out);

/* tls.c */
int uvq__tls_endpoint_init(uvq_quic_endpoint_t* ep);
/* Seals the server's session tickets with a key derived from static_secret
 * (ticket-keys.c): 0 or UV_EIO. */
int uvq__tls_ticket_keys(uvq_quic_endpoint_t* ep);
/* The stateless reset token of a connection ID (ticket-keys.c): 0 or -1. */
int uvq__sr_token(const uint8_t secret[32], const uint8_t* cid,
                  size_t cidlen, uint8_t token[16]);
void uvq__tls_endpoint_free(uvq_quic_endpoint_t* ep);
int uvq__tls_conn_init(uvq_quic_conn_t* c,
                       const char* server_name,
                       const uint8_t* ticket,
                       size_t ticketlen);
void uvq__tls_conn_free(uvq_quic_conn_t* c);
/* At handshake completion: keeps what the connection reports later
 * (ALPN, resumption), so the TLS object can go. */
void uvq__tls_handshake_done(uvq_quic_conn_t* c);
/* ngtcp2's recv_crypto_data callback: hands data to TLS while there is a
 * TLS object, frees it when it is no longer needed, and judges what comes
 * after (see tls.c). */
int uvq__tls_recv_crypto_data(ngtcp2_conn* conn,
                              ngtcp2_encryption_level level,
                              uint64_t offset,
                              const uint8_t* data,
                              size_t datalen,
                              void* user_data);

/* conn.c */
int uvq__conn_new_server(uvq_quic_endpoint_t* ep,
                         const ngtcp2_path* path,
                         const ngtcp2_pkt_hd* hd,
                         const ngtcp2_cid* ocid,
                         ngtcp2_tstamp ts,
                         uvq_quic_conn_t** out);
int uvq__conn_read(uvq_quic_conn_t* c,
                   const ngtcp2_path* path,
                   const ngtcp2_pkt_info* pi,
                   const uint8_t* data,
                   size_t len,
                   ngtcp2_tstamp ts);
void uvq__conn_write(uvq_quic_conn_t* c, ngtcp2_tstamp ts);
void uvq__conn_on_timer(uvq_quic_conn_t* c, ngtcp2_tstamp ts);
void uvq__conn_close_local(uvq_quic_conn_t* c, int kind, uint64_t code,
                           int liberr);
void uvq__conn_free(uvq_quic_conn_t* c);
/* Marks a closed connection for freeing once no callback is running. */
void uvq__conn_release(uvq_quic_conn_t* c);
void uvq__conn_discard(uvq_quic_conn_t* c);
void uvq__conn_report_closed(uvq_quic_conn_t* c);
void uvq__conn_unreachable(uvq_quic_conn_t* c, int uv_error);
void uvq__conn_schedule(uvq_quic_conn_t* c);

/* stream.c */
#define UVQ__MAX_QUEUED_DGRAMS 1024
struct uvq__quic_stream* uvq__stream_find(uvq_quic_conn_t* c, int64_t id);
struct uvq__quic_stream* uvq__stream_add(uvq_quic_conn_t* c, int64_t id);
void uvq__stream_pending_add(uvq_quic_conn_t* c, struct uvq__quic_stream* s);
void uvq__stream_pending_remove(uvq_quic_conn_t* c,
                                struct uvq__quic_stream* s);
/* Completes writes the peer acknowledged, or all of them with status. */
void uvq__stream_complete_writes(struct uvq__quic_stream* s, int all,
                                 int status);
void uvq__stream_free(uvq_quic_conn_t* c, struct uvq__quic_stream* s);
size_t uvq__stream_vecs(struct uvq__quic_stream* s, ngtcp2_vec* vec,
                        size_t max);
void uvq__stream_advance(uvq_quic_conn_t* c, struct uvq__quic_stream* s,
                         ngtcp2_ssize ndatalen, int fin);

/* conn-callbacks.c */
void uvq__conn_fill_callbacks(ngtcp2_callbacks* cb, int server);

/* crypto.c: the per-packet callbacks (encrypt, decrypt, hp_mask), through
 * wolfCrypt directly once a self-test on first use has shown it agrees with
 * the helper, and update_key and delete_crypto_aead_ctx, which derive the
 * next key phase's keys and build their cipher contexts at first use. uvq__crypto_fast_path(): AES-GCM goes through wolfCrypt (1)
 * or the helper (0). uvq__crypto_chacha_ok(): ChaCha20-Poly1305 packets
 * can be opened with their tag checked; when 0, the TLS contexts must not
 * offer ChaCha20-Poly1305 (the helper's path does not check the tag). */
void uvq__crypto_fill_callbacks(ngtcp2_callbacks* cb);
/* HKDF-Expand-Label (RFC 8446, 7.1) with an empty context and a label of
 * at most 16 bytes: 0 or -1. */
int uvq__hkdf_expand_label(uint8_t* dest, size_t destlen,
                           const ngtcp2_crypto_md* md, const uint8_t* secret,
                           size_t secretlen, const char* label);
int uvq__crypto_fast_path(void);
int uvq__crypto_chacha_ok(void);

/* conn-io.c */
ngtcp2_tstamp uvq__conn_ts(uvq_quic_conn_t* c, ngtcp2_tstamp ts);

/* conn.c: how a connection ends, after ngtcp2 returned. */
void uvq__conn_handle_error(uvq_quic_conn_t* c, int rv, ngtcp2_tstamp ts);
void uvq__conn_run_pending_close(uvq_quic_conn_t* c);


/* endpoint.c */
void uvq__ep_mark_dirty(uvq_quic_conn_t* c);
void uvq__ep_update_timer(uvq_quic_endpoint_t* ep);
int uvq__ep_add_cid(uvq_quic_conn_t* c, const uint8_t* cid, size_t len);
void uvq__ep_remove_cid(uvq_quic_conn_t* c, const uint8_t* cid, size_t len);
int uvq__ep_add_token(uvq_quic_conn_t* c, const uint8_t* token);
void uvq__ep_remove_token(uvq_quic_conn_t* c, const uint8_t* token);
/* Stages one packet (or a run of equal-size packets) for sending. */
int uvq__ep_stage(uvq_quic_endpoint_t* ep,
                  const ngtcp2_path* path,
                  int ecn,
                  const uint8_t* data,
                  size_t len,
                  size_t gso_size);
uint8_t* uvq__ep_tx_space(uvq_quic_endpoint_t* ep, size_t* avail);
int uvq__ep_tx_commit(uvq_quic_endpoint_t* ep,
                      const ngtcp2_path* path,
                      int ecn,
                      size_t len);
int uvq__ep_flush(uvq_quic_endpoint_t* ep);
/* Asks for a flush: from the loop's check phase, or a core endpoint's
 * io.wake. */
void uvq__ep_start_flush(uvq_quic_endpoint_t* ep);
/* Makes every connection with something to send write it. */
void uvq__ep_write_dirty(uvq_quic_endpoint_t* ep);
/* One received datagram into the core (routing, stateless answers, new
 * connections). */
void uvq__ep_input(uvq_quic_endpoint_t* ep,
                   const ngtcp2_path* path,
                   const ngtcp2_pkt_info* pi,
                   const uint8_t* data,
                   size_t len,
                   ngtcp2_tstamp ts);
void uvq__ep_make_path(uvq_quic_endpoint_t* ep,
                       ngtcp2_path* path,
                       const struct sockaddr* local,
                       const struct sockaddr* remote);
/* The loop adapter's timer tick. */
void uvq__ep_on_timer(uvq_quic_endpoint_t* ep);
void uvq__ep_free(uvq_quic_endpoint_t* ep);
/* Draws a connection ID of len octets: random, with the worker's QUIC-LB
 * server ID in it when the endpoint is a worker. 0 or uv_random()'s
 * error. */
int uvq__ep_make_cid(const uvq_quic_endpoint_t* ep, uint8_t* cid, size_t len);
/* Attaches the reuseport steering program for worker_count workers to the
 * endpoint's bound socket: 0, or a UV_E* code (UV_ENOTSUP off Linux). */
int uvq__ep_attach_steering(uvq_quic_endpoint_t* ep);
uint16_t uvq__ep_addr_port(const struct sockaddr* sa);
int uvq__ep_add_socket(uvq_quic_endpoint_t* ep,
                       const struct sockaddr* addr,
                       struct sockaddr_storage* bound);
void uvq__ep_remove_socket(uvq_quic_endpoint_t* ep,
                           const struct sockaddr* bound);
/* Entry points bracket their work with these; leaving the outermost one
 * frees released connections and runs a deferred endpoint close. */
void uvq__ep_enter(uvq_quic_endpoint_t* ep);
/* 1 when leaving freed a core endpoint (it was closed): the caller must
 * not touch it. */
int uvq__ep_leave(uvq_quic_endpoint_t* ep);

/* endpoint-uv.c: the libuv adapter. */
int uvq__uv_init(uvq_quic_endpoint_t* ep, uv_loop_t* loop);
void uvq__uv_arm_timer(uvq_quic_endpoint_t* ep);
/* Closes the handles; close_cb and freeing follow from the loop. */
void uvq__uv_close(uvq_quic_endpoint_t* ep);

#endif /* UVQ_QUIC_INTERNAL_H */
