/* HTTP/3 on nghttp3 over the uvq QUIC layer: exchanges, nghttp3's
 * callbacks, and the application protocol callbacks
 * (uvq_quic_app_callbacks_t) through which the QUIC write loop pulls HTTP/3
 * frames straight from nghttp3, and body data straight from the
 * response's source, without an extra copy. Only the QUIC layer's public
 * API is used. Sending is in h3-send.c, static files in h3-file.c. */
#include "h3-internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- requests ------------------------------------------------------------ */

uvq_h3_req_t* uvq__h3_req_new(struct uvq__h3_conn* hc, int64_t stream_id) {
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

void uvq__h3_req_free(uvq_h3_req_t* req) {
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
  uvq__h3_blob_unref(req->blob);
  free(req);
}

static void maybe_finish_shutdown(uvq_h3_t* h3);

/* Whether the application knows of the exchange: a client made it; a
 * server's request counts from its well-formed header section on. */
static int visible(const uvq_h3_req_t* req) {
  return !req->h3->is_server || req->announced;
}

/* The exchange is over: tell the application once (if it knew of it),
 * then free. */
static void req_done(uvq_h3_req_t* req, uint64_t app_error) {
  struct uvq__h3_conn* hc;

  if (req->done)
    return;
  req->done = 1;
  hc = req->hc;
  if (req->h3->cb.done != NULL && visible(req))
    req->h3->cb.done(req, app_error);
  uvq__h3_req_free(req);
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
  uvq_quic_stream_consume(hc->qc, stream_id, n);
}

static int h3_recv_data(nghttp3_conn* conn, int64_t stream_id,
                        const uint8_t* data, size_t datalen,
                        void* conn_user_data, void* stream_user_data) {
  struct uvq__h3_conn* hc = conn_user_data;
  uvq_h3_req_t* req = stream_user_data;

  (void) conn;
  if (req != NULL && visible(req)) {
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
  /* Made when the stream's first bytes arrived (app_recv). */
  req = uvq_quic_stream_get_data(hc->qc, stream_id);
  if (req == NULL)
    req = uvq__h3_req_new(hc, stream_id);
  if (req == NULL)
    return NGHTTP3_ERR_NOMEM;
  req->bound = 1;
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
  req->nfields++;
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

static int h3_end_headers(nghttp3_conn* conn, int64_t stream_id, int fin,
                          void* conn_user_data, void* stream_user_data) {
  uvq_h3_req_t* req = stream_user_data;

  (void) conn;
  (void) fin;
  (void) conn_user_data;
  if (req == NULL)
    return 0;
  if (req->h3->is_server) {
    /* nghttp3 dropped a field it judged invalid (see h3-scan.c): the
     * request is malformed (RFC 9114, 4.1.2). Its stream is reset both
     * ways with H3_MESSAGE_ERROR, as nghttp3 does for the fields it
     * rejects itself, and the application never sees it. */
    if (req->scan.complete && req->scan.lines != req->nfields) {
      uvq_quic_stream_shutdown(req->hc->qc, stream_id, UVQ__H3_SHUT_BOTH,
                               NGHTTP3_H3_MESSAGE_ERROR);
      return 0;
    }
    req->announced = 1;
    if (req->too_large)
      uvq__h3_respond_text(req, 431, "request header fields too large\n");
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
  if (req->h3->cb.end != NULL && visible(req))
    req->h3->cb.end(req);
  return 0;
}

static int h3_stop_sending(nghttp3_conn* conn, int64_t stream_id,
                           uint64_t app_error_code, void* conn_user_data,
                           void* stream_user_data) {
  struct uvq__h3_conn* hc = conn_user_data;

  (void) conn;
  (void) stream_user_data;
  uvq_quic_stream_shutdown(hc->qc, stream_id, UVQ_QUIC_SHUT_READ,
                           app_error_code);
  return 0;
}

static int h3_reset_stream(nghttp3_conn* conn, int64_t stream_id,
                           uint64_t app_error_code, void* conn_user_data,
                           void* stream_user_data) {
  struct uvq__h3_conn* hc = conn_user_data;

  (void) conn;
  (void) stream_user_data;
  uvq_quic_stream_shutdown(hc->qc, stream_id, UVQ_QUIC_SHUT_WRITE,
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

/* ---- the QUIC application protocol --------------------------------------- */

static int setup_h3(struct uvq__h3_conn* hc);

/* nghttp3 failed in a way that ends the connection: the HTTP/3 or QPACK
 * code it stands for (RFC 9114, 8.1; RFC 9204, 6) goes in an application
 * CONNECTION_CLOSE, which the QUIC layer sends when the callback returns
 * non-zero, instead of a transport INTERNAL_ERROR. */
static int h3_fail(struct uvq__h3_conn* hc, int liberr) {
  uvq_quic_conn_close(hc->qc, nghttp3_err_infer_quic_app_error_code(liberr),
                      NULL);
  return -1;
}

/* A client's bidirectional stream on a server: a request. */
static int is_request_stream(struct uvq__h3_conn* hc, int64_t stream_id) {
  return hc->h3->is_server && (stream_id & 0x3) == 0;
}

static int app_recv(uvq_quic_conn_t* qc, void* app, int64_t stream_id,
                    void* stream_data, const uint8_t* data, size_t len,
                    int fin) {
  struct uvq__h3_conn* hc = app;
  uvq_h3_req_t* req;
  nghttp3_ssize n;

  if (hc->hconn == NULL && setup_h3(hc) != 0)
    return h3_fail(hc, NGHTTP3_ERR_H3_INTERNAL_ERROR);
  /* A request's header section is counted before nghttp3 reads it (see
   * h3-scan.c), so the request exists from its first bytes on, kept with
   * the QUIC stream. */
  if (is_request_stream(hc, stream_id)) {
    req = stream_data;
    if (req == NULL) {
      req = uvq__h3_req_new(hc, stream_id);
      if (req == NULL)
        return h3_fail(hc, NGHTTP3_ERR_NOMEM);
      if (uvq_quic_stream_set_data(qc, stream_id, req) != 0) {
        uvq__h3_req_free(req);
        return h3_fail(hc, NGHTTP3_ERR_H3_INTERNAL_ERROR);
      }
    }
    if (!uvq__h3_scan_done(&req->scan))
      uvq__h3_scan_feed(&req->scan, data, len);
  }
  n = nghttp3_conn_read_stream(hc->hconn, stream_id, data, len, fin);
  if (n < 0)
    return h3_fail(hc, (int) n);
  /* What nghttp3 consumed at once gets its credit back now; what it
   * buffers (a QPACK-blocked header section) comes back through
   * h3_deferred_consume. */
  consume(hc, stream_id, (size_t) n);
  return 0;
}

static int app_acked(uvq_quic_conn_t* qc, void* app, int64_t stream_id,
                     void* stream_data, uint64_t offset, uint64_t len) {
  struct uvq__h3_conn* hc = app;
  int rv;

  (void) qc;
  (void) stream_data;
  (void) offset;
  if (hc->hconn == NULL)
    return 0;
  rv = nghttp3_conn_add_ack_offset(hc->hconn, stream_id, len);
  return rv == 0 ? 0 : h3_fail(hc, rv);
}

static int app_stream_close(uvq_quic_conn_t* qc, void* app, int64_t stream_id,
                            void* stream_data, uint64_t app_error) {
  struct uvq__h3_conn* hc = app;
  uvq_h3_req_t* unbound;
  int rv;

  (void) qc;
  if (hc->hconn == NULL)
    return 0;
  if (app_error == 0)
    app_error = NGHTTP3_H3_NO_ERROR;
  /* A request nghttp3 never gave a header section to (the stream ended or
   * was reset before one, or GOAWAY refused it) is freed here; nghttp3
   * closes the others through h3_stream_close. */
  unbound = NULL;
  if (stream_data != NULL && is_request_stream(hc, stream_id) &&
      !((uvq_h3_req_t*) stream_data)->bound)
    unbound = stream_data;
  rv = nghttp3_conn_close_stream(hc->hconn, stream_id, app_error);
  if (unbound != NULL)
    req_done(unbound, app_error);
  if (rv == NGHTTP3_ERR_STREAM_NOT_FOUND)
    return 0;
  return rv == 0 ? 0 : h3_fail(hc, rv);
}

/* The peer reset its side of the stream, or this side stopped reading
 * it: nghttp3 reads no more of it either way. */
static int shutdown_read(struct uvq__h3_conn* hc, int64_t stream_id) {
  int rv;

  if (hc->hconn == NULL)
    return 0;
  rv = nghttp3_conn_shutdown_stream_read(hc->hconn, stream_id);
  return rv == 0 ? 0 : h3_fail(hc, rv);
}

static int app_stream_reset(uvq_quic_conn_t* qc, void* app, int64_t stream_id,
                            void* stream_data, uint64_t app_error) {
  (void) qc;
  (void) stream_data;
  (void) app_error;
  return shutdown_read(app, stream_id);
}

static int app_stop_sending(uvq_quic_conn_t* qc, void* app, int64_t stream_id,
                            void* stream_data, uint64_t app_error) {
  (void) qc;
  (void) stream_data;
  (void) app_error;
  return shutdown_read(app, stream_id);
}

static int app_unblocked(uvq_quic_conn_t* qc, void* app, int64_t stream_id,
                         void* stream_data) {
  struct uvq__h3_conn* hc = app;
  int rv;

  (void) qc;
  (void) stream_data;
  if (hc->hconn == NULL)
    return 0;
  rv = nghttp3_conn_unblock_stream(hc->hconn, stream_id);
  return rv == 0 ? 0 : h3_fail(hc, rv);
}

static int app_max_remote_streams(uvq_quic_conn_t* qc, void* app, int bidi,
                                  uint64_t max) {
  struct uvq__h3_conn* hc = app;

  (void) qc;
  /* Only a server limits the requests a peer opens. A client gets credit
   * back too when a bidirectional stream a hostile server opened (which
   * HTTP/3 does not allow) is closed; nghttp3 asserts on it there. */
  if (bidi && hc->hconn != NULL && hc->h3->is_server)
    nghttp3_conn_set_max_client_streams_bidi(hc->hconn, max);
  return 0;
}

static int app_send(uvq_quic_conn_t* qc, void* app, int64_t* stream_id,
                    int* fin, uvq_quic_vec_t* vec, size_t maxvec,
                    size_t* nvec) {
  struct uvq__h3_conn* hc = app;
  nghttp3_ssize r;

  (void) qc;
  if (hc->hconn == NULL)
    return 0;
  /* uvq_quic_vec_t and nghttp3_vec are both { uint8_t* base; size_t len; }:
   * nghttp3's vectors go to the QUIC layer as they are. */
  r = nghttp3_conn_writev_stream(hc->hconn, stream_id, fin,
                                 (nghttp3_vec*) vec, maxvec);
  if (r < 0)
    return h3_fail(hc, (int) r);
  *nvec = (size_t) r;
  return 0;
}

static int app_sent(uvq_quic_conn_t* qc, void* app, int64_t stream_id,
                    size_t len) {
  struct uvq__h3_conn* hc = app;
  int rv;

  (void) qc;
  if (hc->hconn == NULL)
    return 0;
  rv = nghttp3_conn_add_write_offset(hc->hconn, stream_id, len);
  return rv == 0 ? 0 : h3_fail(hc, rv);
}

static int app_blocked(uvq_quic_conn_t* qc, void* app, int64_t stream_id) {
  struct uvq__h3_conn* hc = app;

  (void) qc;
  if (hc->hconn != NULL)
    nghttp3_conn_block_stream(hc->hconn, stream_id);
  return 0;
}

static int app_write_closed(uvq_quic_conn_t* qc, void* app,
                            int64_t stream_id) {
  struct uvq__h3_conn* hc = app;

  (void) qc;
  if (hc->hconn != NULL)
    nghttp3_conn_shutdown_stream_write(hc->hconn, stream_id);
  return 0;
}

static const uvq_quic_app_callbacks_t h3_app = {
    .send_stream_data = app_send,
    .stream_data_sent = app_sent,
    .stream_data_blocked = app_blocked,
    .stream_data_unblocked = app_unblocked,
    .stream_write_closed = app_write_closed,
    .acked_stream_data = app_acked,
    .recv_stream_data = app_recv,
    .stream_reset = app_stream_reset,
    .stream_stop_sending = app_stop_sending,
    .stream_close = app_stream_close,
    .max_remote_streams = app_max_remote_streams,
};

_Static_assert(sizeof(nghttp3_vec) == sizeof(uvq_quic_vec_t), "vec layout");
_Static_assert(offsetof(nghttp3_vec, base) == offsetof(uvq_quic_vec_t, base) &&
                   offsetof(nghttp3_vec, len) == offsetof(uvq_quic_vec_t, len),
               "vec layout");

/* Creates the nghttp3 connection and its three unidirectional streams
 * (control, QPACK encoder and decoder: RFC 9114, 6.2). */
static int setup_h3(struct uvq__h3_conn* hc) {
  nghttp3_callbacks cb;
  nghttp3_settings st;
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

  rv = hc->h3->is_server
           ? nghttp3_conn_server_new(&hc->hconn, &cb, &st, NULL, hc)
           : nghttp3_conn_client_new(&hc->hconn, &cb, &st, NULL, hc);
  if (rv != 0)
    return -1;
  if (hc->h3->is_server)
    nghttp3_conn_set_max_client_streams_bidi(hc->hconn,
                                             hc->h3->max_streams_bidi);
  if (uvq_quic_stream_open(hc->qc, 0, &ctrl) != 0 ||
      uvq_quic_stream_open(hc->qc, 0, &enc) != 0 ||
      uvq_quic_stream_open(hc->qc, 0, &dec) != 0)
    return -1;
  if (nghttp3_conn_bind_control_stream(hc->hconn, ctrl) != 0 ||
      nghttp3_conn_bind_qpack_streams(hc->hconn, enc, dec) != 0)
    return -1;
  return 0;
}

/* ---- connections -------------------------------------------------------------- */

static void hc_free(struct uvq__h3_conn* hc);

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
  if (uvq_quic_conn_set_app(qc, &h3_app, hc) != 0) {
    hc_free(hc);
    return NULL;
  }
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
  uvq_quic_conn_set_app(hc->qc, NULL, NULL);
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

  hc = uvq_quic_conn_get_app_data(qc);
  if (hc == NULL)
    return;
  h3 = hc->h3;
  if (setup_h3(hc) != 0) {
    uvq_quic_conn_close(qc, NGHTTP3_H3_INTERNAL_ERROR, NULL);
    return;
  }
  uvq_quic_conn_want_write(qc);
  if (!h3->is_server && !h3->connected) {
    h3->connected = 1;
    h3->early = 0;
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

  hc = uvq_quic_conn_get_app_data(qc);
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
    h3->early = 0;
  }
  maybe_finish_shutdown(h3);
}

static void on_session_ticket(uvq_quic_conn_t* qc, const uint8_t* ticket,
                              size_t len) {
  struct uvq__h3_conn* hc;

  hc = uvq_quic_conn_get_app_data(qc);
  if (hc != NULL && hc->h3->cb.session_ticket != NULL)
    hc->h3->cb.session_ticket(hc->h3, ticket, len);
}

static void on_streams_available(uvq_quic_conn_t* qc) {
  struct uvq__h3_conn* hc;
  uvq_h3_t* h3;

  hc = uvq_quic_conn_get_app_data(qc);
  if (hc == NULL)
    return;
  h3 = hc->h3;
  if (!h3->is_server && (h3->connected || h3->early) &&
      h3->cb.requests_available != NULL)
    h3->cb.requests_available(h3);
}

/* ---- creation ------------------------------------------------------------------ */

void uvq_h3_config_default_versioned(int config_version,
                                     uvq_h3_config_t* config) {
  if (config == NULL)
    return;
  /* Versions 1 to 3 are one layout. */
  if (config_version < 1 || config_version > UVQ_H3_CONFIG_VERSION) {
    config->version = (unsigned int) config_version;
    return;
  }
  memset(config, 0, sizeof(*config));
  config->version = (unsigned int) config_version;
  config->max_field_section_size = 64 * 1024;
  config->max_concurrent_requests = 100;
}

/* A loop object (loop set, io NULL) or a core one (io set, loop NULL). */
static int h3_new(uv_loop_t* loop, int io_version, const uvq_quic_io_t* io,
                  int server, const uvq_quic_config_t* quic,
                  const uvq_h3_config_t* user_h3cfg, int callbacks_version,
                  const uvq_h3_callbacks_t* user_callbacks, void* user_data,
                  uvq_h3_t** out) {
  uvq_h3_callbacks_t callbacks_storage;
  const uvq_h3_callbacks_t* callbacks;
  uvq_h3_config_t h3cfg_storage;
  const uvq_h3_config_t* h3cfg;
  uvq_quic_callbacks_t qcb;
  uvq_quic_config_t qcfg;
  uvq_h3_t* h3;
  int err;

  if ((loop == NULL) == (io == NULL) || quic == NULL || out == NULL)
    return UV_EINVAL;
  /* Each struct read in the layout the caller was built with (compat.c). */
  if (uvq_quic_config_copy(&qcfg, quic) != 0 ||
      uvq__h3_callbacks_load(callbacks_version, user_callbacks,
                             &callbacks_storage) != 0)
    return UV_EINVAL;
  callbacks = user_callbacks != NULL ? &callbacks_storage : NULL;
  h3cfg = NULL;
  if (user_h3cfg != NULL) {
    if (uvq__h3_config_load(user_h3cfg, &h3cfg_storage) != 0)
      return UV_EINVAL;
    h3cfg = &h3cfg_storage;
  }
  h3 = calloc(1, sizeof(*h3));
  if (h3 == NULL)
    return UV_ENOMEM;
  h3->loop = loop;
  h3->is_server = server;
  h3->root_fd = -1;
  h3->user_data = user_data;
  if (callbacks != NULL)
    h3->cb = *callbacks;
  uvq_h3_config_default(&h3->cfg);
  if (h3cfg != NULL) {
    if (h3cfg->max_field_section_size)
      h3->cfg.max_field_section_size = h3cfg->max_field_section_size;
    if (h3cfg->max_concurrent_requests)
      h3->cfg.max_concurrent_requests = h3cfg->max_concurrent_requests;
    h3->cfg.file_cache_ms = h3cfg->file_cache_ms;
  }
  if (qcfg.alpn == NULL)
    qcfg.alpn = "h3";
  /* HTTP/3 needs three unidirectional streams each way, and its request
   * limit is QUIC's bidirectional stream limit. */
  if (qcfg.max_streams_uni < 3)
    qcfg.max_streams_uni = 3;
  if (server && qcfg.max_streams_bidi == 0)
    qcfg.max_streams_bidi = h3->cfg.max_concurrent_requests;
  h3->max_streams_bidi = qcfg.max_streams_bidi;
  memset(&qcb, 0, sizeof(qcb));
  qcb.accept = on_accept;
  qcb.handshake_done = on_handshake;
  qcb.closed = on_closed;
  qcb.streams_available = on_streams_available;
  /* Only a client that keeps tickets has the QUIC layer keep its TLS
   * object until one comes. */
  if (!server && h3->cb.session_ticket != NULL)
    qcb.session_ticket = on_session_ticket;
  if (io != NULL)
    err = uvq_quic_endpoint_new_core_versioned(&qcfg,
                                               UVQ_QUIC_CALLBACKS_VERSION,
                                               &qcb, io_version, io, h3,
                                               &h3->ep);
  else
    err = uvq_quic_endpoint_new(loop, &qcfg, &qcb, h3, &h3->ep);
  if (err) {
    free(h3);
    return err;
  }
  *out = h3;
  return 0;
}

int uvq_h3_server_new_versioned(uv_loop_t* loop, const uvq_quic_config_t* quic,
                                const uvq_h3_config_t* h3,
                                int callbacks_version,
                                const uvq_h3_callbacks_t* cb, void* user_data,
                                uvq_h3_t** out) {
  /* cert_file and key_file sit at the same place in every version. */
  if (quic == NULL || quic->cert_file == NULL || quic->key_file == NULL)
    return UV_EINVAL;
  return h3_new(loop, 0, NULL, 1, quic, h3, callbacks_version, cb, user_data,
                out);
}

int uvq_h3_client_new_versioned(uv_loop_t* loop, const uvq_quic_config_t* quic,
                                const uvq_h3_config_t* h3,
                                int callbacks_version,
                                const uvq_h3_callbacks_t* cb, void* user_data,
                                uvq_h3_t** out) {
  return h3_new(loop, 0, NULL, 0, quic, h3, callbacks_version, cb, user_data,
                out);
}

int uvq_h3_server_new_core_versioned(const uvq_quic_config_t* quic,
                                     const uvq_h3_config_t* h3,
                                     int callbacks_version,
                                     const uvq_h3_callbacks_t* cb,
                                     int io_version, const uvq_quic_io_t* io,
                                     void* user_data, uvq_h3_t** out) {
  if (quic == NULL || quic->cert_file == NULL || quic->key_file == NULL ||
      io == NULL)
    return UV_EINVAL;
  return h3_new(NULL, io_version, io, 1, quic, h3, callbacks_version, cb,
                user_data, out);
}

int uvq_h3_client_new_core_versioned(const uvq_quic_config_t* quic,
                                     const uvq_h3_config_t* h3,
                                     int callbacks_version,
                                     const uvq_h3_callbacks_t* cb,
                                     int io_version, const uvq_quic_io_t* io,
                                     void* user_data, uvq_h3_t** out) {
  if (io == NULL)
    return UV_EINVAL;
  return h3_new(NULL, io_version, io, 0, quic, h3, callbacks_version, cb,
                user_data, out);
}

int uvq_h3_listen(uvq_h3_t* h3, const struct sockaddr* addr) {
  if (h3 == NULL || !h3->is_server || h3->closing || h3->loop == NULL)
    return UV_EINVAL;
  return uvq_quic_endpoint_bind(h3->ep, addr);
}

int uvq_h3_connect(uvq_h3_t* h3, const struct sockaddr* remote,
                   const char* sni) {
  uvq_quic_connect_opts_t opts;

  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = sni;
  return uvq_h3_connect_ex(h3, remote, &opts);
}

int uvq_h3_connect_ex(uvq_h3_t* h3, const struct sockaddr* remote,
                      const uvq_quic_connect_opts_t* opts) {
  struct sockaddr_storage any;
  uvq_quic_conn_stats_t stats;
  uvq_quic_conn_t* qc;
  int err;

  if (h3 == NULL || remote == NULL || opts == NULL || h3->is_server ||
      h3->closing)
    return UV_EINVAL;
  /* opts is read, in the layout of its version, by uvq_quic_connect. */
  if (h3->client != NULL)
    return UV_EALREADY;
  /* A core endpoint has no socket: opts->local names the path's source. */
  if (h3->loop != NULL) {
    memset(&any, 0, sizeof(any));
    any.ss_family = remote->sa_family;
    err = uvq_quic_endpoint_bind(h3->ep, (struct sockaddr*) &any);
    if (err && err != UV_EALREADY)
      return err;
  }
  free(h3->sni);
  h3->sni = opts->server_name ? strdup(opts->server_name) : NULL;
  err = uvq_quic_connect(h3->ep, remote, opts, NULL, &qc);
  if (err)
    return err;
  h3->client = hc_new(h3, qc);
  if (h3->client == NULL) {
    uvq_quic_conn_close(qc, NGHTTP3_H3_INTERNAL_ERROR, NULL);
    return UV_ENOMEM;
  }
  /* With 0-RTT keys the control and QPACK streams, and any request, can
   * go now, within the limits the ticket remembered (RFC 9114, 3.3 allows
   * requests in early data). Without enough remembered stream credit the
   * client waits for the handshake like any other. */
  h3->early = 0;
  if (uvq_quic_conn_get_stats(qc, &stats) == 0 &&
      stats.zero_rtt == UVQ_QUIC_0RTT_SENT) {
    if (setup_h3(h3->client) == 0) {
      h3->early = 1;
      uvq_quic_conn_want_write(qc);
    } else if (h3->client->hconn != NULL) {
      nghttp3_conn_del(h3->client->hconn);
      h3->client->hconn = NULL;
    }
  }
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
  if (h3->root_fd >= 0)
    close(h3->root_fd);
  free(h3->root_path);
  uvq__h3_file_cache_free(h3);
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
      uvq_quic_conn_want_write(hc->qc);
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
