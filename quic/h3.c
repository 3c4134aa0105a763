/* HTTP/3 on nghttp3 over the uvq QUIC layer. A connection's streams are
 * handed to nghttp3 through the connection's application hook, so that
 * the QUIC write loop pulls HTTP/3 frames straight from nghttp3, and body
 * data straight from the response's source, without an extra copy. */
#include "internal.h"
#include "uvq/h3.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <nghttp3/nghttp3.h>

#ifdef __linux__
#include <linux/openat2.h>
#endif

/* File and callback bodies are read in chunks of this size and kept until
 * acknowledged; at most this many bytes of them are in flight per
 * response, which bounds memory while covering the congestion window. */
#define UVQ__H3_CHUNK (64 * 1024)
#define UVQ__H3_MAX_INFLIGHT (8u << 20)

struct uvq__h3_chunk {
  struct uvq__h3_chunk* next;
  size_t len;
  uint8_t data[UVQ__H3_CHUNK];
};

struct uvq__h3_conn {
  uvq_h3_t* h3;
  uvq_quic_conn_t* qc;
  nghttp3_conn* hconn;
  struct uvq__h3_conn* next;
  struct uvq__h3_conn* prev;
  size_t nreqs;
  struct uvq_h3_req_s* reqs;   /* open exchanges */
  int going_away;
};

struct uvq_h3_s {
  uv_loop_t* loop;
  int is_server;
  uvq_quic_endpoint_t* ep;
  uvq_h3_callbacks_t cb;
  uvq_h3_config_t cfg;
  void* user_data;
  struct uvq__h3_conn* conns;
  /* Client. */
  struct uvq__h3_conn* client;
  char* sni;
  int connected;
  /* Shutdown. */
  int shutting_down;
  int closing;
  void (*close_cb)(uvq_h3_t*);
};

struct uvq_h3_req_s {
  uvq_h3_t* h3;
  struct uvq__h3_conn* hc;
  int64_t stream_id;
  void* user_data;
  /* The peer's header section. */
  char* method;
  size_t methodlen;
  char* path;
  size_t pathlen;
  char* authority;
  size_t authoritylen;
  char* scheme;
  size_t schemelen;
  uvq_h3_header_t* headers;
  size_t nheaders;
  size_t headers_cap;
  int in_trailers;
  int status;
  uint64_t bytes_received;
  /* What this side sends. */
  int responded;
  uvq_h3_body_t body;
  int close_fd;           /* uvq opened body.fd (serve_file) */
  uint64_t produced;      /* body bytes handed to nghttp3 */
  uint64_t acked;         /* of those, acknowledged */
  uint64_t chunks_start;  /* body offset of the first unacknowledged chunk */
  int eof;
  int would_block;
  int window_blocked;     /* would_block because of the in-flight limit */
  size_t header_bytes;    /* the peer's header section, as RFC 9114 4.2.2 counts */
  int too_large;
  struct uvq__h3_chunk* chunks;      /* unacknowledged, oldest first */
  struct uvq__h3_chunk* chunks_tail;
  struct uvq__h3_chunk* spare;
  int done;
  int peer_ended;         /* the peer's message arrived in full */
  struct uvq_h3_req_s* next;
  struct uvq_h3_req_s* prev;
};

static nghttp3_ssize read_body(nghttp3_conn* conn, int64_t stream_id,
                               nghttp3_vec* vec, size_t veccnt,
                               uint32_t* pflags, void* conn_user_data,
                               void* stream_user_data);

/* ---- requests ------------------------------------------------------------ */

static uvq_h3_req_t* req_new(struct uvq__h3_conn* hc, int64_t stream_id) {
  uvq_h3_req_t* req;

  req = calloc(1, sizeof(*req));
  if (req == NULL)
    return NULL;
  req->h3 = hc->h3;
  req->hc = hc;
  req->stream_id = stream_id;
  req->body.fd = -1;
  hc->nreqs++;
  req->next = hc->reqs;
  if (hc->reqs != NULL)
    hc->reqs->prev = req;
  hc->reqs = req;
  return req;
}

static void free_chunks(struct uvq__h3_chunk* c) {
  struct uvq__h3_chunk* next;

  for (; c != NULL; c = next) {
    next = c->next;
    free(c);
  }
}

static void req_free(uvq_h3_req_t* req) {
  size_t i;

  if (req->hc != NULL) {
    if (req->prev != NULL)
      req->prev->next = req->next;
    else
      req->hc->reqs = req->next;
    if (req->next != NULL)
      req->next->prev = req->prev;
    if (req->hc->nreqs > 0)
      req->hc->nreqs--;
  }
  for (i = 0; i < req->nheaders; i++) {
    free((void*) req->headers[i].name);
    free((void*) req->headers[i].value);
  }
  free(req->headers);
  free(req->method);
  free(req->path);
  free(req->authority);
  free(req->scheme);
  free_chunks(req->chunks);
  free_chunks(req->spare);
  if (req->close_fd && req->body.fd >= 0)
    close(req->body.fd);
  free(req);
}

static void maybe_finish_shutdown(uvq_h3_t* h3);

/* The exchange is over: tell the application once, then free. */
static void req_done(uvq_h3_req_t* req, uint64_t app_error) {
  struct uvq__h3_conn* hc;

  if (req->done)
    return;
  req->done = 1;
  hc = req->hc;
  if (req->h3->cb.done != NULL)
    req->h3->cb.done(req, app_error);
  req_free(req);
  if (hc != NULL && hc->going_away && hc->nreqs == 0)
    uvq_quic_conn_close(hc->qc, UVQ_H3_NO_ERROR, NULL);
}

static char* dup_bytes(const uint8_t* p, size_t len) {
  char* s;

  s = malloc(len + 1);
  if (s == NULL)
    return NULL;
  memcpy(s, p, len);
  s[len] = '\0';
  return s;
}

/* ---- nghttp3 callbacks ---------------------------------------------------- */

static int h3_acked(nghttp3_conn* conn, int64_t stream_id, uint64_t datalen,
                    void* conn_user_data, void* stream_user_data) {
  uvq_h3_req_t* req = stream_user_data;
  struct uvq__h3_chunk* c;

  (void) conn;
  (void) stream_id;
  (void) conn_user_data;
  if (req == NULL)
    return 0;
  req->acked += datalen;
  /* Chunks the peer has all of go back to the spare list. */
  while ((c = req->chunks) != NULL &&
         req->chunks_start + c->len <= req->acked) {
    req->chunks_start += c->len;
    req->chunks = c->next;
    if (req->chunks == NULL)
      req->chunks_tail = NULL;
    c->next = req->spare;
    req->spare = c;
  }
  /* A body held back by the in-flight limit (not one waiting for its
   * application) goes on as acknowledgements free room. */
  if (req->window_blocked && !req->eof &&
      req->produced - req->acked < UVQ__H3_MAX_INFLIGHT) {
    req->window_blocked = 0;
    req->would_block = 0;
    nghttp3_conn_resume_stream(conn, req->stream_id);
  }
  return 0;
}

static int h3_stream_close(nghttp3_conn* conn, int64_t stream_id,
                           uint64_t app_error_code, void* conn_user_data,
                           void* stream_user_data) {
  uvq_h3_req_t* req = stream_user_data;

  (void) conn;
  (void) stream_id;
  (void) conn_user_data;
  if (req != NULL)
    req_done(req, app_error_code);
  return 0;
}

static void consume(struct uvq__h3_conn* hc, int64_t stream_id, size_t n) {
  ngtcp2_conn* qc;

  qc = uvq__conn_ngtcp2(hc->qc);
  ngtcp2_conn_extend_max_stream_offset(qc, stream_id, n);
  ngtcp2_conn_extend_max_offset(qc, n);
}

static int h3_recv_data(nghttp3_conn* conn, int64_t stream_id,
                        const uint8_t* data, size_t datalen,
                        void* conn_user_data, void* stream_user_data) {
  struct uvq__h3_conn* hc = conn_user_data;
  uvq_h3_req_t* req = stream_user_data;

  (void) conn;
  if (req != NULL) {
    req->bytes_received += datalen;
    if (req->h3->cb.body != NULL)
      req->h3->cb.body(req, data, datalen);
  }
  /* Body bytes are consumed once delivered: the application copies what
   * it keeps, and flow control follows the callback. */
  consume(hc, stream_id, datalen);
  return 0;
}

static int h3_deferred_consume(nghttp3_conn* conn, int64_t stream_id,
                               size_t consumed, void* conn_user_data,
                               void* stream_user_data) {
  (void) conn;
  (void) stream_user_data;
  consume(conn_user_data, stream_id, consumed);
  return 0;
}

static int h3_begin_headers(nghttp3_conn* conn, int64_t stream_id,
                            void* conn_user_data, void* stream_user_data) {
  struct uvq__h3_conn* hc = conn_user_data;
  uvq_h3_req_t* req;

  if (stream_user_data != NULL || !hc->h3->is_server)
    return 0;
  req = req_new(hc, stream_id);
  if (req == NULL)
    return NGHTTP3_ERR_CALLBACK_FAILURE;
  nghttp3_conn_set_stream_user_data(conn, stream_id, req);
  return 0;
}

static int set_field(char** dst, size_t* dstlen, nghttp3_vec v) {
  if (*dst != NULL)
    return NGHTTP3_ERR_CALLBACK_FAILURE; /* a repeated pseudo-header */
  *dst = dup_bytes(v.base, v.len);
  *dstlen = v.len;
  return *dst == NULL ? NGHTTP3_ERR_NOMEM : 0;
}

static int h3_recv_header(nghttp3_conn* conn, int64_t stream_id,
                          int32_t token, nghttp3_rcbuf* name,
                          nghttp3_rcbuf* value, uint8_t flags,
                          void* conn_user_data, void* stream_user_data) {
  uvq_h3_req_t* req = stream_user_data;
  nghttp3_vec n;
  nghttp3_vec v;
  uvq_h3_header_t* grown;

  (void) conn;
  (void) stream_id;
  (void) token;
  (void) flags;
  (void) conn_user_data;
  if (req == NULL || req->in_trailers)
    return 0;
  n = nghttp3_rcbuf_get_buf(name);
  v = nghttp3_rcbuf_get_buf(value);
  /* nghttp3 1.8 only announces SETTINGS_MAX_FIELD_SECTION_SIZE; uvq holds
   * the peer to it (RFC 9114, 4.2.2: name + value + 32 per field). */
  req->header_bytes += n.len + v.len + 32;
  if (req->header_bytes > req->h3->cfg.max_field_section_size) {
    req->too_large = 1;
    return 0;
  }
  /* nghttp3 has already checked the fields (RFC 9114, 4.3). */
  if (n.len > 0 && n.base[0] == ':') {
    if (n.len == 7 && memcmp(n.base, ":method", 7) == 0)
      return set_field(&req->method, &req->methodlen, v);
    if (n.len == 5 && memcmp(n.base, ":path", 5) == 0)
      return set_field(&req->path, &req->pathlen, v);
    if (n.len == 10 && memcmp(n.base, ":authority", 10) == 0)
      return set_field(&req->authority, &req->authoritylen, v);
    if (n.len == 7 && memcmp(n.base, ":scheme", 7) == 0)
      return set_field(&req->scheme, &req->schemelen, v);
    if (n.len == 7 && memcmp(n.base, ":status", 7) == 0 && v.len == 3) {
      req->status = (v.base[0] - '0') * 100 + (v.base[1] - '0') * 10 +
                    (v.base[2] - '0');
      return 0;
    }
    return 0;
  }
  if (req->nheaders == req->headers_cap) {
    size_t cap = req->headers_cap ? req->headers_cap * 2 : 16;
    grown = realloc(req->headers, cap * sizeof(*grown));
    if (grown == NULL)
      return NGHTTP3_ERR_NOMEM;
    req->headers = grown;
    req->headers_cap = cap;
  }
  req->headers[req->nheaders].name = dup_bytes(n.base, n.len);
  req->headers[req->nheaders].namelen = n.len;
  req->headers[req->nheaders].value = dup_bytes(v.base, v.len);
  req->headers[req->nheaders].valuelen = v.len;
  if (req->headers[req->nheaders].name == NULL ||
      req->headers[req->nheaders].value == NULL) {
    free((void*) req->headers[req->nheaders].name);
    free((void*) req->headers[req->nheaders].value);
    return NGHTTP3_ERR_NOMEM;
  }
  req->nheaders++;
  return 0;
}

static int respond_text(uvq_h3_req_t* req, int status, const char* text);

static int h3_end_headers(nghttp3_conn* conn, int64_t stream_id, int fin,
                          void* conn_user_data, void* stream_user_data) {
  uvq_h3_req_t* req = stream_user_data;

  (void) conn;
  (void) stream_id;
  (void) fin;
  (void) conn_user_data;
  if (req == NULL)
    return 0;
  if (req->h3->is_server) {
    if (req->too_large)
      respond_text(req, 431, "request header fields too large\n");
    else if (req->h3->cb.request != NULL)
      req->h3->cb.request(req);
    else
      uvq_h3_respond(req, 404, NULL, 0, NULL);
  } else if (req->h3->cb.response != NULL) {
    req->h3->cb.response(req, req->status);
  }
  return 0;
}

static int h3_begin_trailers(nghttp3_conn* conn, int64_t stream_id,
                             void* conn_user_data, void* stream_user_data) {
  uvq_h3_req_t* req = stream_user_data;

  (void) conn;
  (void) stream_id;
  (void) conn_user_data;
  if (req != NULL)
    req->in_trailers = 1;
  return 0;
}

static int h3_end_stream(nghttp3_conn* conn, int64_t stream_id,
                         void* conn_user_data, void* stream_user_data) {
  uvq_h3_req_t* req = stream_user_data;

  (void) conn;
  (void) stream_id;
  (void) conn_user_data;
  if (req == NULL)
    return 0;
  req->peer_ended = 1;
  if (req->h3->cb.end != NULL)
    req->h3->cb.end(req);
  return 0;
}

static int h3_stop_sending(nghttp3_conn* conn, int64_t stream_id,
                           uint64_t app_error_code, void* conn_user_data,
                           void* stream_user_data) {
  struct uvq__h3_conn* hc = conn_user_data;

  (void) conn;
  (void) stream_user_data;
  ngtcp2_conn_shutdown_stream_read(uvq__conn_ngtcp2(hc->qc), 0, stream_id,
                                   app_error_code);
  return 0;
}

static int h3_reset_stream(nghttp3_conn* conn, int64_t stream_id,
                           uint64_t app_error_code, void* conn_user_data,
                           void* stream_user_data) {
  struct uvq__h3_conn* hc = conn_user_data;

  (void) conn;
  (void) stream_user_data;
  ngtcp2_conn_shutdown_stream_write(uvq__conn_ngtcp2(hc->qc), 0, stream_id,
                                    app_error_code);
  return 0;
}

static int h3_shutdown(nghttp3_conn* conn, int64_t id, void* conn_user_data) {
  struct uvq__h3_conn* hc = conn_user_data;

  (void) conn;
  (void) id;
  /* The peer sent GOAWAY: no new requests on this connection. */
  hc->going_away = 1;
  return 0;
}

/* ---- the QUIC application hook ------------------------------------------------ */

static int setup_h3(struct uvq__h3_conn* hc);

static int64_t app_recv(void* app, int64_t stream_id, const uint8_t* data,
                        size_t len, int fin) {
  struct uvq__h3_conn* hc = app;
  nghttp3_ssize n;

  if (hc->hconn == NULL && setup_h3(hc) != 0)
    return -1;
  n = nghttp3_conn_read_stream(hc->hconn, stream_id, data, len, fin);
  if (n < 0) {
    hc->qc->app_error = nghttp3_err_infer_quic_app_error_code((int) n);
    return -1;
  }
  return n;
}

static int app_acked(void* app, int64_t stream_id, uint64_t len) {
  struct uvq__h3_conn* hc = app;

  if (hc->hconn == NULL)
    return 0;
  return nghttp3_conn_add_ack_offset(hc->hconn, stream_id, len) == 0 ? 0 : -1;
}

static int app_stream_close(void* app, int64_t stream_id, uint64_t app_error) {
  struct uvq__h3_conn* hc = app;
  int rv;

  if (hc->hconn == NULL)
    return 0;
  if (app_error == 0)
    app_error = NGHTTP3_H3_NO_ERROR;
  rv = nghttp3_conn_close_stream(hc->hconn, stream_id, app_error);
  if (rv == NGHTTP3_ERR_STREAM_NOT_FOUND)
    return 0;
  if (rv != 0) {
    hc->qc->app_error = nghttp3_err_infer_quic_app_error_code(rv);
    return -1;
  }
  return 0;
}

static int app_shutdown_read(void* app, int64_t stream_id) {
  struct uvq__h3_conn* hc = app;

  if (hc->hconn == NULL)
    return 0;
  return nghttp3_conn_shutdown_stream_read(hc->hconn, stream_id) == 0 ? 0 : -1;
}

static int app_unblock(void* app, int64_t stream_id) {
  struct uvq__h3_conn* hc = app;

  if (hc->hconn == NULL)
    return 0;
  return nghttp3_conn_unblock_stream(hc->hconn, stream_id) == 0 ? 0 : -1;
}

static void app_max_remote_streams(void* app, uint64_t max) {
  struct uvq__h3_conn* hc = app;

  if (hc->hconn != NULL)
    nghttp3_conn_set_max_client_streams_bidi(hc->hconn, max);
}

static int64_t app_writev(void* app, int64_t* stream_id, int* fin,
                          ngtcp2_vec* vec, size_t n) {
  struct uvq__h3_conn* hc = app;
  nghttp3_ssize r;

  if (hc->hconn == NULL)
    return 0;
  /* nghttp3_vec and ngtcp2_vec are both { uint8_t* base; size_t len; }. */
  r = nghttp3_conn_writev_stream(hc->hconn, stream_id, fin,
                                 (nghttp3_vec*) vec, n);
  if (r < 0) {
    hc->qc->app_error = nghttp3_err_infer_quic_app_error_code((int) r);
    return -1;
  }
  return r;
}

static int app_written(void* app, int64_t stream_id, size_t len) {
  struct uvq__h3_conn* hc = app;

  if (hc->hconn == NULL)
    return 0;
  return nghttp3_conn_add_write_offset(hc->hconn, stream_id, len);
}

static int app_block(void* app, int64_t stream_id) {
  struct uvq__h3_conn* hc = app;

  if (hc->hconn == NULL)
    return 0;
  nghttp3_conn_block_stream(hc->hconn, stream_id);
  return 0;
}

static int app_shutdown_write(void* app, int64_t stream_id) {
  struct uvq__h3_conn* hc = app;

  if (hc->hconn == NULL)
    return 0;
  nghttp3_conn_shutdown_stream_write(hc->hconn, stream_id);
  return 0;
}

static const struct uvq__quic_app uvq__h3_app = {
    app_recv,        app_acked,  app_stream_close, app_shutdown_read,
    app_unblock,     app_max_remote_streams,        app_writev,
    app_written,     app_block,  app_shutdown_write};

_Static_assert(sizeof(nghttp3_vec) == sizeof(ngtcp2_vec), "vec layout");
_Static_assert(offsetof(nghttp3_vec, len) == offsetof(ngtcp2_vec, len),
               "vec layout");

/* Creates the nghttp3 connection and its three unidirectional streams
 * (control, QPACK encoder and decoder: RFC 9114, 6.2). */
static int setup_h3(struct uvq__h3_conn* hc) {
  nghttp3_callbacks cb;
  nghttp3_settings st;
  ngtcp2_conn* qc;
  int64_t ctrl;
  int64_t enc;
  int64_t dec;
  int rv;

  if (hc->hconn != NULL)
    return 0;
  memset(&cb, 0, sizeof(cb));
  cb.acked_stream_data = h3_acked;
  cb.stream_close = h3_stream_close;
  cb.recv_data = h3_recv_data;
  cb.deferred_consume = h3_deferred_consume;
  cb.begin_headers = h3_begin_headers;
  cb.recv_header = h3_recv_header;
  cb.end_headers = h3_end_headers;
  cb.begin_trailers = h3_begin_trailers;
  cb.recv_trailer = h3_recv_header;
  cb.end_stream = h3_end_stream;
  cb.stop_sending = h3_stop_sending;
  cb.reset_stream = h3_reset_stream;
  cb.shutdown = h3_shutdown;
  nghttp3_settings_default(&st);
  st.max_field_section_size = hc->h3->cfg.max_field_section_size;
  st.qpack_max_dtable_capacity = 4096;
  st.qpack_blocked_streams = 100;

  qc = uvq__conn_ngtcp2(hc->qc);
  rv = hc->h3->is_server
           ? nghttp3_conn_server_new(&hc->hconn, &cb, &st, NULL, hc)
           : nghttp3_conn_client_new(&hc->hconn, &cb, &st, NULL, hc);
  if (rv != 0)
    return -1;
  if (hc->h3->is_server)
    nghttp3_conn_set_max_client_streams_bidi(
        hc->hconn, ngtcp2_conn_get_local_transport_params(qc)
                       ->initial_max_streams_bidi);
  if (ngtcp2_conn_open_uni_stream(qc, &ctrl, NULL) != 0 ||
      ngtcp2_conn_open_uni_stream(qc, &enc, NULL) != 0 ||
      ngtcp2_conn_open_uni_stream(qc, &dec, NULL) != 0)
    return -1;
  if (nghttp3_conn_bind_control_stream(hc->hconn, ctrl) != 0 ||
      nghttp3_conn_bind_qpack_streams(hc->hconn, enc, dec) != 0)
    return -1;
  return 0;
}

/* ---- connections -------------------------------------------------------------- */

static struct uvq__h3_conn* hc_new(uvq_h3_t* h3, uvq_quic_conn_t* qc) {
  struct uvq__h3_conn* hc;

  hc = calloc(1, sizeof(*hc));
  if (hc == NULL)
    return NULL;
  hc->h3 = h3;
  hc->qc = qc;
  hc->next = h3->conns;
  if (h3->conns != NULL)
    h3->conns->prev = hc;
  h3->conns = hc;
  uvq_quic_conn_set_data(qc, hc);
  uvq__conn_set_app(qc, &uvq__h3_app, hc);
  return hc;
}

static void hc_free(struct uvq__h3_conn* hc) {
  uvq_h3_t* h3;

  h3 = hc->h3;
  if (hc->prev != NULL)
    hc->prev->next = hc->next;
  else
    h3->conns = hc->next;
  if (hc->next != NULL)
    hc->next->prev = hc->prev;
  uvq__conn_set_app(hc->qc, NULL, NULL);
  if (hc->hconn != NULL)
    nghttp3_conn_del(hc->hconn);
  if (h3->client == hc)
    h3->client = NULL;
  free(hc);
}

static int on_accept(uvq_quic_endpoint_t* ep, uvq_quic_conn_t* qc) {
  uvq_h3_t* h3;

  h3 = uvq_quic_endpoint_get_data(ep);
  if (h3->shutting_down)
    return 1;
  return hc_new(h3, qc) == NULL ? 1 : 0;
}

static void on_handshake(uvq_quic_conn_t* qc) {
  struct uvq__h3_conn* hc;
  uvq_h3_t* h3;

  hc = uvq_quic_conn_get_data(qc);
  if (hc == NULL)
    return;
  h3 = hc->h3;
  if (setup_h3(hc) != 0) {
    uvq_quic_conn_close(qc, NGHTTP3_H3_INTERNAL_ERROR, NULL);
    return;
  }
  uvq__conn_mark_dirty(qc);
  if (!h3->is_server && !h3->connected) {
    h3->connected = 1;
    if (h3->cb.connected != NULL)
      h3->cb.connected(h3, NULL);
  }
}

/* Ends every exchange still open on a connection that is gone: nghttp3
 * does not report them when it is deleted. */
static void fail_requests(struct uvq__h3_conn* hc, uint64_t code,
                          int graceful) {
  uvq_h3_req_t* req;

  while ((req = hc->reqs) != NULL) {
    /* The peer closed gracefully after its message ended and ours was
     * handed over in full: the exchange is complete even though the
     * final acknowledgement never came (clients often close right after
     * the last response). */
    if (graceful && req->peer_ended && (req->eof || req->body.kind == 0))
      req_done(req, UVQ_H3_NO_ERROR);
    else
      req_done(req, code);
  }
}

static void on_closed(uvq_quic_conn_t* qc, const uvq_quic_error_t* err) {
  struct uvq__h3_conn* hc;
  uvq_h3_t* h3;
  uint64_t code;

  hc = uvq_quic_conn_get_data(qc);
  if (hc == NULL)
    return;
  h3 = hc->h3;
  code = err->kind == UVQ_QUIC_ERROR_APPLICATION ? err->code
                                                 : UVQ_H3_REQUEST_CANCELLED;
  fail_requests(hc, code,
                (err->kind == UVQ_QUIC_ERROR_TRANSPORT && err->code == 0) ||
                    (err->kind == UVQ_QUIC_ERROR_APPLICATION &&
                     err->code == UVQ_H3_NO_ERROR));
  hc_free(hc);
  if (!h3->is_server) {
    if (!h3->connected) {
      if (h3->cb.connected != NULL)
        h3->cb.connected(h3, err);
    } else if (h3->cb.closed != NULL) {
      h3->cb.closed(h3, err);
    }
    h3->connected = 0;
  }
  maybe_finish_shutdown(h3);
}

/* ---- creation ------------------------------------------------------------------ */

void uvq_h3_config_default(uvq_h3_config_t* config) {
  memset(config, 0, sizeof(*config));
  config->version = UVQ_QUIC_CONFIG_VERSION;
  config->max_field_section_size = 64 * 1024;
  config->max_concurrent_requests = 100;
}

static int h3_new(uv_loop_t* loop, int server, const uvq_quic_config_t* quic,
                  const uvq_h3_config_t* h3cfg,
                  const uvq_h3_callbacks_t* callbacks, void* user_data,
                  uvq_h3_t** out) {
  uvq_quic_callbacks_t qcb;
  uvq_quic_config_t qcfg;
  uvq_h3_t* h3;
  int err;

  if (loop == NULL || quic == NULL || out == NULL)
    return UV_EINVAL;
  if (h3cfg != NULL && h3cfg->version != UVQ_QUIC_CONFIG_VERSION)
    return UV_EINVAL;
  h3 = calloc(1, sizeof(*h3));
  if (h3 == NULL)
    return UV_ENOMEM;
  h3->loop = loop;
  h3->is_server = server;
  h3->user_data = user_data;
  if (callbacks != NULL)
    h3->cb = *callbacks;
  uvq_h3_config_default(&h3->cfg);
  if (h3cfg != NULL) {
    if (h3cfg->max_field_section_size)
      h3->cfg.max_field_section_size = h3cfg->max_field_section_size;
    if (h3cfg->max_concurrent_requests)
      h3->cfg.max_concurrent_requests = h3cfg->max_concurrent_requests;
  }
  qcfg = *quic;
  if (qcfg.alpn == NULL)
    qcfg.alpn = "h3";
  /* HTTP/3 needs three unidirectional streams each way, and its request
   * limit is QUIC's bidirectional stream limit. */
  if (qcfg.max_streams_uni < 3)
    qcfg.max_streams_uni = 3;
  if (server && qcfg.max_streams_bidi == 0)
    qcfg.max_streams_bidi = h3->cfg.max_concurrent_requests;
  memset(&qcb, 0, sizeof(qcb));
  qcb.accept = on_accept;
  qcb.handshake_done = on_handshake;
  qcb.closed = on_closed;
  err = uvq_quic_endpoint_new(loop, &qcfg, &qcb, h3, &h3->ep);
  if (err) {
    free(h3);
    return err;
  }
  *out = h3;
  return 0;
}

int uvq_h3_server_new(uv_loop_t* loop, const uvq_quic_config_t* quic,
                      const uvq_h3_config_t* h3, const uvq_h3_callbacks_t* cb,
                      void* user_data, uvq_h3_t** out) {
  if (quic == NULL || quic->cert_file == NULL || quic->key_file == NULL)
    return UV_EINVAL;
  return h3_new(loop, 1, quic, h3, cb, user_data, out);
}

int uvq_h3_client_new(uv_loop_t* loop, const uvq_quic_config_t* quic,
                      const uvq_h3_config_t* h3, const uvq_h3_callbacks_t* cb,
                      void* user_data, uvq_h3_t** out) {
  return h3_new(loop, 0, quic, h3, cb, user_data, out);
}

int uvq_h3_listen(uvq_h3_t* h3, const struct sockaddr* addr) {
  if (h3 == NULL || !h3->is_server || h3->closing)
    return UV_EINVAL;
  return uvq_quic_endpoint_bind(h3->ep, addr);
}

int uvq_h3_connect(uvq_h3_t* h3, const struct sockaddr* remote,
                   const char* sni) {
  struct sockaddr_storage any;
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* qc;
  int err;

  if (h3 == NULL || remote == NULL || h3->is_server || h3->closing)
    return UV_EINVAL;
  if (h3->client != NULL)
    return UV_EALREADY;
  memset(&any, 0, sizeof(any));
  any.ss_family = remote->sa_family;
  err = uvq_quic_endpoint_bind(h3->ep, (struct sockaddr*) &any);
  if (err && err != UV_EALREADY)
    return err;
  free(h3->sni);
  h3->sni = sni ? strdup(sni) : NULL;
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONFIG_VERSION;
  opts.server_name = sni;
  err = uvq_quic_connect(h3->ep, remote, &opts, NULL, &qc);
  if (err)
    return err;
  h3->client = hc_new(h3, qc);
  if (h3->client == NULL) {
    uvq_quic_conn_close(qc, NGHTTP3_H3_INTERNAL_ERROR, NULL);
    return UV_ENOMEM;
  }
  return 0;
}

/* ---- sending -------------------------------------------------------------------- */

static void make_nv(nghttp3_nv* nv, const char* name, size_t namelen,
                    const char* value, size_t valuelen) {
  nv->name = (const uint8_t*) name;
  nv->namelen = namelen;
  nv->value = (const uint8_t*) value;
  nv->valuelen = valuelen;
  nv->flags = NGHTTP3_NV_FLAG_NONE;
}

static int valid_header(const uvq_h3_header_t* h) {
  return h->name != NULL && h->value != NULL && h->namelen > 0 &&
         nghttp3_check_header_name((const uint8_t*) h->name, h->namelen) &&
         nghttp3_check_header_value((const uint8_t*) h->value, h->valuelen);
}

/* A body source failed: reset this stream only (H3_INTERNAL_ERROR); the
 * done callback reports it. */
static nghttp3_ssize body_failed(uvq_h3_req_t* req) {
  ngtcp2_conn_shutdown_stream(uvq__conn_ngtcp2(req->hc->qc), 0,
                              req->stream_id, NGHTTP3_H3_INTERNAL_ERROR);
  req->would_block = 1;
  return NGHTTP3_ERR_WOULDBLOCK;
}

/* Gives nghttp3 the next piece of body: memory is handed over in place;
 * file and callback bodies are read into chunks held until acknowledged. */
static nghttp3_ssize read_body(nghttp3_conn* conn, int64_t stream_id,
                               nghttp3_vec* vec, size_t veccnt,
                               uint32_t* pflags, void* conn_user_data,
                               void* stream_user_data) {
  uvq_h3_req_t* req = stream_user_data;
  struct uvq__h3_chunk* c;
  size_t n;
  ssize_t r;

  (void) conn;
  (void) stream_id;
  (void) conn_user_data;
  if (req == NULL || veccnt == 0)
    return 0;

  if (req->body.kind == UVQ_H3_BODY_MEMORY) {
    /* In place: the application keeps the memory until done. (Files are
     * read, not mapped: a file truncated while mapped would raise SIGBUS
     * in the server.) */
    vec[0].base = (uint8_t*) req->body.data;
    vec[0].len = req->body.len;
    req->produced = req->body.len;
    req->eof = 1;
    *pflags |= NGHTTP3_DATA_FLAG_EOF;
    return 1;
  }

  n = 0;
  while (n < veccnt && !req->eof) {
    if (req->produced - req->acked >= UVQ__H3_MAX_INFLIGHT) {
      req->would_block = 1;
      req->window_blocked = 1;
      break;
    }
    c = req->spare;
    if (c != NULL)
      req->spare = c->next;
    else
      c = malloc(sizeof(*c));
    if (c == NULL)
      return NGHTTP3_ERR_NOMEM;
    if (req->body.kind == UVQ_H3_BODY_FILE) {
      uint64_t left = req->body.len - req->produced;
      size_t want = left < UVQ__H3_CHUNK ? (size_t) left : UVQ__H3_CHUNK;
      do
        r = want ? pread(req->body.fd, c->data, want,
                         (off_t) (req->body.offset + req->produced))
                 : 0;
      while (r == -1 && errno == EINTR);
      if (r < 0 || (r == 0 && want > 0)) {
        /* The file shrank or failed under us: this response cannot be
         * completed as announced, so its stream is reset; the connection
         * and its other exchanges go on. */
        c->next = req->spare;
        req->spare = c;
        return body_failed(req);
      }
    } else {
      r = req->body.read(req, c->data, UVQ__H3_CHUNK);
      if (r == UV_EAGAIN) {
        c->next = req->spare;
        req->spare = c;
        req->would_block = 1;
        break;
      }
      if (r < 0) {
        c->next = req->spare;
        req->spare = c;
        return body_failed(req);
      }
    }
    if (r == 0) {
      c->next = req->spare;
      req->spare = c;
      req->eof = 1;
      break;
    }
    c->len = (size_t) r;
    c->next = NULL;
    if (req->chunks_tail != NULL)
      req->chunks_tail->next = c;
    else
      req->chunks = c;
    req->chunks_tail = c;
    req->produced += c->len;
    vec[n].base = c->data;
    vec[n].len = c->len;
    n++;
    if (req->body.kind == UVQ_H3_BODY_FILE && req->produced == req->body.len)
      req->eof = 1;
  }
  if (req->eof)
    *pflags |= NGHTTP3_DATA_FLAG_EOF;
  if (n == 0 && !req->eof)
    return NGHTTP3_ERR_WOULDBLOCK;
  return (nghttp3_ssize) n;
}

static int submit(uvq_h3_req_t* req, nghttp3_nv* nva, size_t nv,
                  const uvq_h3_body_t* body, int request) {
  nghttp3_data_reader dr;
  nghttp3_nv* tnv;
  size_t i;
  int rv;

  dr.read_data = read_body;
  if (body != NULL && body->kind == UVQ_H3_BODY_NONE && body->ntrailers > 0) {
    /* Trailers need an open stream after the header: an empty body. */
    static const char empty[1];
    uvq_h3_body_t* b = (uvq_h3_body_t*) &req->body;
    *b = *body;
    b->kind = UVQ_H3_BODY_MEMORY;
    b->data = empty;
    b->len = 0;
    body = b;
  }
  if (body != NULL && body->kind != UVQ_H3_BODY_NONE) {
    req->body = *body;
    req->body.trailers = NULL;
    req->body.ntrailers = 0;
  }
  if (request)
    rv = nghttp3_conn_submit_request(req->hc->hconn, req->stream_id, nva, nv,
                                     body && body->kind != UVQ_H3_BODY_NONE
                                         ? &dr
                                         : NULL,
                                     req);
  else
    rv = nghttp3_conn_submit_response(req->hc->hconn, req->stream_id, nva, nv,
                                      body && body->kind != UVQ_H3_BODY_NONE
                                          ? &dr
                                          : NULL);
  if (rv != 0)
    return UV_EINVAL;
  if (body != NULL && body->ntrailers > 0) {
    /* nghttp3 sends submitted trailers after the body's end. */
    tnv = malloc(body->ntrailers * sizeof(*tnv));
    if (tnv == NULL)
      return UV_ENOMEM;
    for (i = 0; i < body->ntrailers; i++)
      make_nv(&tnv[i], body->trailers[i].name, body->trailers[i].namelen,
              body->trailers[i].value, body->trailers[i].valuelen);
    rv = nghttp3_conn_submit_trailers(req->hc->hconn, req->stream_id, tnv,
                                      body->ntrailers);
    free(tnv);
    if (rv != 0)
      return UV_EINVAL;
  }
  uvq__conn_mark_dirty(req->hc->qc);
  return 0;
}

static int check_body(const uvq_h3_body_t* body) {
  if (body == NULL)
    return 0;
  switch (body->kind) {
    case UVQ_H3_BODY_NONE:
      return 0;
    case UVQ_H3_BODY_MEMORY:
      return body->data == NULL && body->len > 0 ? UV_EINVAL : 0;
    case UVQ_H3_BODY_FILE:
      return body->fd < 0 ? UV_EINVAL : 0;
    case UVQ_H3_BODY_CALLBACK:
      return body->read == NULL ? UV_EINVAL : 0;
    default:
      return UV_EINVAL;
  }
}

int uvq_h3_respond(uvq_h3_req_t* req, int status,
                   const uvq_h3_header_t* headers, size_t nheaders,
                   const uvq_h3_body_t* body) {
  nghttp3_nv* nva;
  char statusbuf[4];
  char lenbuf[24];
  size_t nv;
  size_t i;
  int has_len;
  int err;

  if (req == NULL || !req->h3->is_server || status < 100 || status > 999 ||
      (headers == NULL && nheaders > 0))
    return UV_EINVAL;
  if (req->responded)
    return UV_EALREADY;
  err = check_body(body);
  if (err)
    return err;
  for (i = 0; i < nheaders; i++)
    if (!valid_header(&headers[i]))
      return UV_EINVAL;
  nva = malloc((nheaders + 2) * sizeof(*nva));
  if (nva == NULL)
    return UV_ENOMEM;
  snprintf(statusbuf, sizeof(statusbuf), "%03d", status);
  nv = 0;
  make_nv(&nva[nv++], ":status", 7, statusbuf, 3);
  has_len = 0;
  for (i = 0; i < nheaders; i++) {
    if (headers[i].namelen == 14 &&
        memcmp(headers[i].name, "content-length", 14) == 0)
      has_len = 1;
    make_nv(&nva[nv++], headers[i].name, headers[i].namelen, headers[i].value,
            headers[i].valuelen);
  }
  if (!has_len && body != NULL &&
      (body->kind == UVQ_H3_BODY_MEMORY || body->kind == UVQ_H3_BODY_FILE)) {
    snprintf(lenbuf, sizeof(lenbuf), "%llu", (unsigned long long) body->len);
    make_nv(&nva[nv++], "content-length", 14, lenbuf, strlen(lenbuf));
  }
  req->responded = 1;
  err = submit(req, nva, nv, body, 0);
  free(nva);
  return err;
}

int uvq_h3_request(uvq_h3_t* h3, const char* method, const char* scheme,
                   const char* authority, const char* path,
                   const uvq_h3_header_t* headers, size_t nheaders,
                   const uvq_h3_body_t* body, void* req_data,
                   uvq_h3_req_t** out) {
  struct uvq__h3_conn* hc;
  uvq_h3_req_t* req;
  nghttp3_nv* nva;
  int64_t id;
  size_t nv;
  size_t i;
  int err;
  int rv;

  if (h3 == NULL || h3->is_server || method == NULL || path == NULL ||
      (headers == NULL && nheaders > 0))
    return UV_EINVAL;
  hc = h3->client;
  if (hc == NULL || hc->hconn == NULL || !h3->connected)
    return UV_ENOTCONN;
  if (hc->going_away || h3->shutting_down)
    return UV_ECONNRESET;
  err = check_body(body);
  if (err)
    return err;
  for (i = 0; i < nheaders; i++)
    if (!valid_header(&headers[i]))
      return UV_EINVAL;
  if (authority == NULL)
    authority = h3->sni ? h3->sni : "localhost";
  rv = ngtcp2_conn_open_bidi_stream(uvq__conn_ngtcp2(hc->qc), &id, NULL);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
    return UV_EAGAIN;
  if (rv != 0)
    return UV_EINVAL;
  req = req_new(hc, id);
  nva = malloc((nheaders + 4) * sizeof(*nva));
  if (req == NULL || nva == NULL) {
    free(nva);
    if (req != NULL)
      req_free(req);
    ngtcp2_conn_shutdown_stream(uvq__conn_ngtcp2(hc->qc), 0, id,
                                NGHTTP3_H3_INTERNAL_ERROR);
    return UV_ENOMEM;
  }
  req->user_data = req_data;
  nv = 0;
  make_nv(&nva[nv++], ":method", 7, method, strlen(method));
  make_nv(&nva[nv++], ":scheme", 7, scheme ? scheme : "https",
          strlen(scheme ? scheme : "https"));
  make_nv(&nva[nv++], ":authority", 10, authority, strlen(authority));
  make_nv(&nva[nv++], ":path", 5, path, strlen(path));
  for (i = 0; i < nheaders; i++)
    make_nv(&nva[nv++], headers[i].name, headers[i].namelen, headers[i].value,
            headers[i].valuelen);
  err = submit(req, nva, nv, body, 1);
  free(nva);
  if (err) {
    req_free(req);
    ngtcp2_conn_shutdown_stream(uvq__conn_ngtcp2(hc->qc), 0, id,
                                NGHTTP3_H3_INTERNAL_ERROR);
    return err;
  }
  if (out != NULL)
    *out = req;
  return 0;
}

int uvq_h3_resume(uvq_h3_req_t* req) {
  if (req == NULL || req->hc == NULL || req->hc->hconn == NULL)
    return UV_EINVAL;
  if (req->would_block) {
    req->would_block = 0;
    nghttp3_conn_resume_stream(req->hc->hconn, req->stream_id);
    uvq__conn_mark_dirty(req->hc->qc);
  }
  return 0;
}

int uvq_h3_cancel(uvq_h3_req_t* req, uint64_t app_error) {
  if (req == NULL || req->hc == NULL)
    return UV_EINVAL;
  ngtcp2_conn_shutdown_stream(uvq__conn_ngtcp2(req->hc->qc), 0, req->stream_id,
                              app_error);
  uvq__conn_mark_dirty(req->hc->qc);
  return 0;
}

/* ---- static files ------------------------------------------------------------- */

static const char* content_type(const char* path) {
  static const struct {
    const char* ext;
    const char* type;
  } types[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".css", "text/css"},
      {".js", "text/javascript"},
      {".json", "application/json"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".svg", "image/svg+xml"},
      {".wasm", "application/wasm"},
      {".pdf", "application/pdf"},
  };
  const char* dot;
  size_t i;

  dot = strrchr(path, '.');
  if (dot != NULL && strchr(dot, '/') == NULL)
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
      if (strcasecmp(dot, types[i].ext) == 0)
        return types[i].type;
  return "application/octet-stream";
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Turns a request path into a relative file path under the root, or
 * fails: percent-decoding first, then refusing NUL, backslashes, and any
 * "." or ".." segment, so that no spelling can climb out of the root. */
static int sanitize_path(const char* path, size_t len, char* out, size_t cap) {
  size_t i;
  size_t o;
  size_t seg;
  int hi;
  int lo;
  char ch;

  if (len == 0 || path[0] != '/')
    return -1;
  o = 0;
  for (i = 1; i < len && path[i] != '?' && path[i] != '#'; i++) {
    ch = path[i];
    if (ch == '%') {
      if (i + 2 >= len + 0 || (hi = hexval(path[i + 1])) < 0 ||
          (lo = hexval(path[i + 2])) < 0)
        return -1;
      ch = (char) (hi * 16 + lo);
      i += 2;
    }
    if (ch == '\0' || ch == '\\')
      return -1;
    if (o + 1 >= cap)
      return -1;
    out[o++] = ch;
  }
  out[o] = '\0';
  /* Check every segment. */
  for (i = 0, seg = 0; i <= o; i++) {
    if (i == o || out[i] == '/') {
      size_t slen = i - seg;
      if ((slen == 1 && out[seg] == '.') ||
          (slen == 2 && out[seg] == '.' && out[seg + 1] == '.'))
        return -1;
      seg = i + 1;
    }
  }
  if (o == 0 || out[o - 1] == '/') {
    if (o + sizeof("index.html") >= cap)
      return -1;
    memcpy(out + o, "index.html", sizeof("index.html"));
  }
  return 0;
}

/* Opens rel beneath root: openat2 with RESOLVE_BENEATH also stops symbolic
 * links from leading out (Linux 5.6+); elsewhere, or on older kernels, the
 * opened file's real path must lie under the root's. */
static int open_beneath(const char* root, const char* rel) {
  int dirfd;
  int fd;

  dirfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dirfd < 0)
    return -1;
  fd = -1;
#if defined(__linux__) && defined(SYS_openat2)
  {
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = O_RDONLY | O_CLOEXEC;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    fd = (int) syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    if (fd < 0 && errno != ENOSYS) {
      close(dirfd);
      return -1;
    }
  }
#endif
  if (fd < 0) {
    /* Without openat2 only the last component can refuse to be a link, so
     * the file's real path is checked against the root's. */
    char rootreal[PATH_MAX];
    char fullreal[PATH_MAX];
    char full[PATH_MAX * 2];
    size_t rl;

    fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    snprintf(full, sizeof(full), "%s/%s", root, rel);
    if (fd >= 0 && (realpath(root, rootreal) == NULL ||
                    realpath(full, fullreal) == NULL ||
                    strncmp(fullreal, rootreal, rl = strlen(rootreal)) != 0 ||
                    (fullreal[rl] != '/' && fullreal[rl] != '\0'))) {
      close(fd);
      fd = -1;
    }
  }
  close(dirfd);
  return fd;
}

static int respond_text(uvq_h3_req_t* req, int status, const char* text) {
  uvq_h3_header_t h;
  uvq_h3_body_t body;

  h.name = "content-type";
  h.namelen = 12;
  h.value = "text/plain; charset=utf-8";
  h.valuelen = strlen(h.value);
  memset(&body, 0, sizeof(body));
  body.kind = UVQ_H3_BODY_MEMORY;
  body.data = text;
  body.len = strlen(text);
  return uvq_h3_respond(req, status, &h, 1, &body);
}

int uvq_h3_serve_file(uvq_h3_req_t* req, const char* root) {
  uvq_h3_header_t h;
  uvq_h3_body_t body;
  struct stat st;
  char rel[4096];
  int head;
  int fd;
  int err;

  if (req == NULL || root == NULL || !req->h3->is_server)
    return UV_EINVAL;
  head = req->methodlen == 4 && memcmp(req->method, "HEAD", 4) == 0;
  if (!head && !(req->methodlen == 3 && memcmp(req->method, "GET", 3) == 0))
    return respond_text(req, 405, "method not allowed\n");
  if (req->path == NULL ||
      sanitize_path(req->path, req->pathlen, rel, sizeof(rel)) != 0)
    return respond_text(req, 400, "bad path\n");
  fd = open_beneath(root, rel);
  if (fd < 0)
    return respond_text(req, 404, "not found\n");
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return respond_text(req, 404, "not found\n");
  }
  h.name = "content-type";
  h.namelen = 12;
  h.value = content_type(rel);
  h.valuelen = strlen(h.value);
  memset(&body, 0, sizeof(body));
  if (head || st.st_size == 0) {
    char lenbuf[24];
    uvq_h3_header_t hs[2];
    close(fd);
    snprintf(lenbuf, sizeof(lenbuf), "%lld", (long long) st.st_size);
    hs[0] = h;
    hs[1].name = "content-length";
    hs[1].namelen = 14;
    hs[1].value = lenbuf;
    hs[1].valuelen = strlen(lenbuf);
    return uvq_h3_respond(req, 200, hs, 2, NULL);
  }
  body.kind = UVQ_H3_BODY_FILE;
  body.fd = fd;
  body.offset = 0;
  body.len = (uint64_t) st.st_size;
  err = uvq_h3_respond(req, 200, &h, 1, &body);
  if (err) {
    close(fd);
    return err;
  }
  req->close_fd = 1;
  return 0;
}

/* ---- accessors ---------------------------------------------------------------- */

static const char* field(const char* s, size_t slen, size_t* len) {
  if (len != NULL)
    *len = s ? slen : 0;
  return s;
}

const char* uvq_h3_req_method(const uvq_h3_req_t* r, size_t* len) {
  return field(r->method, r->methodlen, len);
}

const char* uvq_h3_req_path(const uvq_h3_req_t* r, size_t* len) {
  return field(r->path, r->pathlen, len);
}

const char* uvq_h3_req_authority(const uvq_h3_req_t* r, size_t* len) {
  return field(r->authority, r->authoritylen, len);
}

const char* uvq_h3_req_scheme(const uvq_h3_req_t* r, size_t* len) {
  return field(r->scheme, r->schemelen, len);
}

int uvq_h3_req_header(const uvq_h3_req_t* r, size_t i, uvq_h3_header_t* h) {
  if (r == NULL || h == NULL)
    return UV_EINVAL;
  if (i >= r->nheaders)
    return UV_ENOENT;
  *h = r->headers[i];
  return 0;
}

void* uvq_h3_req_get_data(const uvq_h3_req_t* r) {
  return r->user_data;
}

void uvq_h3_req_set_data(uvq_h3_req_t* r, void* data) {
  r->user_data = data;
}

uvq_h3_t* uvq_h3_req_h3(const uvq_h3_req_t* r) {
  return r->h3;
}

uvq_quic_conn_t* uvq_h3_req_conn(const uvq_h3_req_t* r) {
  return r->hc != NULL ? r->hc->qc : NULL;
}

uint64_t uvq_h3_req_bytes_received(const uvq_h3_req_t* r) {
  return r->bytes_received;
}

void* uvq_h3_get_data(const uvq_h3_t* h3) {
  return h3->user_data;
}

uvq_quic_endpoint_t* uvq_h3_endpoint(uvq_h3_t* h3) {
  return h3->ep;
}

uvq_quic_conn_t* uvq_h3_conn(uvq_h3_t* h3) {
  return h3->client != NULL ? h3->client->qc : NULL;
}

/* ---- shutting down --------------------------------------------------------------- */

static void on_endpoint_closed(uvq_quic_endpoint_t* ep) {
  uvq_h3_t* h3;

  h3 = uvq_quic_endpoint_get_data(ep);
  if (h3->close_cb != NULL)
    h3->close_cb(h3);
  free(h3->sni);
  free(h3);
}

static void maybe_finish_shutdown(uvq_h3_t* h3) {
  if (h3->shutting_down && !h3->closing && h3->conns == NULL) {
    h3->closing = 1;
    uvq_quic_endpoint_close(h3->ep, on_endpoint_closed);
  }
}

void uvq_h3_shutdown(uvq_h3_t* h3, void (*close_cb)(uvq_h3_t*)) {
  struct uvq__h3_conn* hc;
  struct uvq__h3_conn* next;

  if (h3 == NULL || h3->shutting_down)
    return;
  h3->shutting_down = 1;
  h3->close_cb = close_cb;
  for (hc = h3->conns; hc != NULL; hc = next) {
    next = hc->next;
    hc->going_away = 1;
    if (hc->hconn != NULL && h3->is_server)
      nghttp3_conn_shutdown(hc->hconn); /* GOAWAY (RFC 9114, 5.2) */
    if (hc->nreqs == 0)
      uvq_quic_conn_close(hc->qc, UVQ_H3_NO_ERROR, NULL);
    else
      uvq__conn_mark_dirty(hc->qc);
  }
  maybe_finish_shutdown(h3);
}

void uvq_h3_close(uvq_h3_t* h3, void (*close_cb)(uvq_h3_t*)) {
  if (h3 == NULL || h3->closing)
    return;
  h3->shutting_down = 1;
  h3->closing = 1;
  h3->close_cb = close_cb;
  uvq_quic_endpoint_close(h3->ep, on_endpoint_closed);
}
