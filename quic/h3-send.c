/* Sending HTTP/3 messages: requests and responses with their headers,
 * bodies pulled as the connection can send them (memory in place; files
 * and callbacks in chunks held until acknowledged), and trailers. */
#include "h3-internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
  uvq_quic_stream_shutdown(req->hc->qc, req->stream_id, UVQ__H3_SHUT_BOTH,
                           NGHTTP3_H3_INTERNAL_ERROR);
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
  uvq_quic_conn_want_write(req->hc->qc);
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

  if (h3 == NULL || h3->is_server || method == NULL || path == NULL ||
      (headers == NULL && nheaders > 0))
    return UV_EINVAL;
  hc = h3->client;
  if (hc == NULL || hc->hconn == NULL || !(h3->connected || h3->early))
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
  err = uvq_quic_stream_open(hc->qc, 1, &id);
  if (err == UV_EAGAIN || err == UV_ENOMEM)
    return err;
  if (err != 0)
    return UV_EINVAL;
  req = uvq__h3_req_new(hc, id);
  nva = malloc((nheaders + 4) * sizeof(*nva));
  if (req == NULL || nva == NULL) {
    free(nva);
    if (req != NULL)
      uvq__h3_req_free(req);
    uvq_quic_stream_shutdown(hc->qc, id, UVQ__H3_SHUT_BOTH, NGHTTP3_H3_INTERNAL_ERROR);
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
    uvq__h3_req_free(req);
    uvq_quic_stream_shutdown(hc->qc, id, UVQ__H3_SHUT_BOTH, NGHTTP3_H3_INTERNAL_ERROR);
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
    uvq_quic_conn_want_write(req->hc->qc);
  }
  return 0;
}

int uvq_h3_cancel(uvq_h3_req_t* req, uint64_t app_error) {
  if (req == NULL || req->hc == NULL)
    return UV_EINVAL;
  uvq_quic_stream_shutdown(req->hc->qc, req->stream_id, UVQ__H3_SHUT_BOTH, app_error);
  uvq_quic_conn_want_write(req->hc->qc);
  return 0;
}
