/* A connection's streams and datagrams: write queues that hold the
 * caller's buffers until the peer acknowledges them, round robin among the
 * streams with data, flow-control credit returned as the application
 * consumes, and RFC 9221 datagrams. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

struct uvq__quic_stream* uvq__stream_find(uvq_quic_conn_t* c, int64_t id) {
  return uvq__cidmap_get(&c->streams, (const uint8_t*) &id, sizeof(id));
}

struct uvq__quic_stream* uvq__stream_add(uvq_quic_conn_t* c, int64_t id) {
  struct uvq__quic_stream* s;

  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return NULL;
  s->id = id;
  if (uvq__cidmap_put(&c->streams, (const uint8_t*) &id, sizeof(id), s)) {
    free(s);
    return NULL;
  }
  ngtcp2_conn_set_stream_user_data(c->conn, id, s);
  return s;
}

void uvq__stream_pending_remove(uvq_quic_conn_t* c, struct uvq__quic_stream* s) {
  struct uvq__quic_stream** pp;

  if (!s->pending)
    return;
  for (pp = &c->pending_head; *pp != NULL; pp = &(*pp)->next_pending) {
    if (*pp == s) {
      *pp = s->next_pending;
      break;
    }
  }
  c->pending_tail = NULL;
  for (pp = &c->pending_head; *pp != NULL; pp = &(*pp)->next_pending)
    c->pending_tail = *pp;
  s->next_pending = NULL;
  s->pending = 0;
}

void uvq__stream_pending_add(uvq_quic_conn_t* c, struct uvq__quic_stream* s) {
  if (s->pending || s->blocked || s->write_closed)
    return;
  if (s->sent == s->queued && (!s->fin_queued || s->fin_sent))
    return;
  s->pending = 1;
  s->next_pending = NULL;
  if (c->pending_tail != NULL)
    c->pending_tail->next_pending = s;
  else
    c->pending_head = s;
  c->pending_tail = s;
}

/* Completes writes the peer acknowledged, or all of them with status. */
void uvq__stream_complete_writes(struct uvq__quic_stream* s, int all, int status) {
  struct uvq__quic_write_state* w;

  while ((w = s->wq_head) != NULL) {
    if (!all && w->end > s->acked)
      break;
    s->wq_head = w->next;
    if (s->wq_head == NULL)
      s->wq_tail = NULL;
    w->req->state_ = NULL;
    w->cb(w->req, all ? status : 0);
    free(w);
  }
}

void uvq__stream_free(uvq_quic_conn_t* c, struct uvq__quic_stream* s) {
  uvq__stream_pending_remove(c, s);
  uvq__cidmap_del(&c->streams, (const uint8_t*) &s->id, sizeof(s->id));
  uvq__stream_complete_writes(s, 1, UV_ECANCELED);
  free(s);
}

/* Fills vec with the stream's unsent bytes, from its write queue. */
size_t uvq__stream_vecs(struct uvq__quic_stream* s, ngtcp2_vec* vec,
                          size_t max) {
  struct uvq__quic_write_state* w;
  uint64_t start;
  uint64_t skip;
  size_t n;
  size_t i;
  size_t total;

  n = 0;
  for (w = s->wq_head; w != NULL && n < max; w = w->next) {
    if (w->end <= s->sent)
      continue;
    total = 0;
    for (i = 0; i < w->nbufs; i++)
      total += w->bufs[i].len;
    start = w->end - total;
    skip = s->sent > start ? s->sent - start : 0;
    for (i = 0; i < w->nbufs && n < max; i++) {
      if (skip >= w->bufs[i].len) {
        skip -= w->bufs[i].len;
        continue;
      }
      vec[n].base = (uint8_t*) w->bufs[i].base + skip;
      vec[n].len = w->bufs[i].len - skip;
      skip = 0;
      if (vec[n].len > 0)
        n++;
    }
  }
  return n;
}

void uvq__stream_advance(uvq_quic_conn_t* c, struct uvq__quic_stream* s,
                           ngtcp2_ssize ndatalen, int fin) {
  if (ndatalen > 0)
    s->sent += (uint64_t) ndatalen;
  if (fin && s->sent == s->queued)
    s->fin_sent = 1;
  /* Round robin: a stream that still has data goes to the back. */
  uvq__stream_pending_remove(c, s);
  uvq__stream_pending_add(c, s);
}

int uvq_quic_stream_open(uvq_quic_conn_t* c, int bidi, int64_t* stream_id) {
  struct uvq__quic_stream* s;
  int64_t id;
  int rv;

  if (c == NULL || stream_id == NULL)
    return UV_EINVAL;
  if (c->state >= UVQ__CONN_CLOSING)
    return UV_EPIPE;
  rv = bidi ? ngtcp2_conn_open_bidi_stream(c->conn, &id, NULL)
            : ngtcp2_conn_open_uni_stream(c->conn, &id, NULL);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED)
    return UV_EAGAIN;
  if (rv != 0)
    return UV_EINVAL;
  s = uvq__stream_add(c, id);
  if (s == NULL) {
    ngtcp2_conn_shutdown_stream(c->conn, 0, id, 0);
    return UV_ENOMEM;
  }
  *stream_id = id;
  return 0;
}

int uvq_quic_stream_write(uvq_quic_write_t* req,
                          uvq_quic_conn_t* c,
                          int64_t stream_id,
                          const uv_buf_t bufs[],
                          unsigned int nbufs,
                          int fin,
                          uvq_quic_write_cb cb) {
  struct uvq__quic_write_state* w;
  struct uvq__quic_stream* s;
  uint64_t total;
  unsigned int i;

  if (req == NULL || c == NULL || cb == NULL || (bufs == NULL && nbufs > 0))
    return UV_EINVAL;
  if (nbufs == 0 && !fin)
    return UV_EINVAL;
  /* An application protocol's streams are sent from its send_stream_data
   * callback only. */
  if (c->app != NULL)
    return UV_EINVAL;
  if (c->state >= UVQ__CONN_CLOSING)
    return UV_EPIPE;
  s = uvq__stream_find(c, stream_id);
  if (s == NULL)
    return UV_ENOENT;
  if (s->write_closed || s->fin_queued)
    return UV_EPIPE;
  w = malloc(sizeof(*w) + (nbufs ? nbufs - 1 : 0) * sizeof(uv_buf_t));
  if (w == NULL)
    return UV_ENOMEM;
  total = 0;
  for (i = 0; i < nbufs; i++) {
    w->bufs[i] = bufs[i];
    total += bufs[i].len;
  }
  w->nbufs = nbufs;
  w->req = req;
  w->cb = cb;
  w->next = NULL;
  s->queued += total;
  w->end = s->queued;
  if (fin)
    s->fin_queued = 1;
  req->conn = c;
  req->stream_id = stream_id;
  req->state_ = w;
  if (s->wq_tail != NULL)
    s->wq_tail->next = w;
  else
    s->wq_head = w;
  s->wq_tail = w;
  uvq__stream_pending_add(c, s);
  uvq__ep_mark_dirty(c);
  return 0;
}

int uvq_quic_stream_consume(uvq_quic_conn_t* c, int64_t stream_id, size_t n) {
  if (c == NULL)
    return UV_EINVAL;
  if (c->state >= UVQ__CONN_CLOSING)
    return UV_EPIPE;
  if (uvq__stream_find(c, stream_id) == NULL)
    return UV_ENOENT;
  ngtcp2_conn_extend_max_stream_offset(c->conn, stream_id, n);
  ngtcp2_conn_extend_max_offset(c->conn, n);
  uvq__ep_mark_dirty(c);
  return 0;
}

int uvq_quic_stream_shutdown(uvq_quic_conn_t* c,
                             int64_t stream_id,
                             int how,
                             uint64_t app_error) {
  struct uvq__quic_stream* s;
  int rv;

  if (c == NULL || how < 1 || how > 3)
    return UV_EINVAL;
  if (c->state >= UVQ__CONN_CLOSING)
    return UV_EPIPE;
  s = uvq__stream_find(c, stream_id);
  if (s == NULL)
    return UV_ENOENT;
  if (how & UVQ_QUIC_SHUT_WRITE) {
    s->write_closed = 1;
    uvq__stream_pending_remove(c, s);
  }
  /* Both ways in one call: ngtcp2 shuts down the directions the stream
   * has (one, on a unidirectional stream). */
  if (how == (UVQ_QUIC_SHUT_WRITE | UVQ_QUIC_SHUT_READ))
    rv = ngtcp2_conn_shutdown_stream(c->conn, 0, stream_id, app_error);
  else if (how == UVQ_QUIC_SHUT_WRITE)
    rv = ngtcp2_conn_shutdown_stream_write(c->conn, 0, stream_id, app_error);
  else
    rv = ngtcp2_conn_shutdown_stream_read(c->conn, 0, stream_id, app_error);
  if (rv != 0)
    return UV_ENOENT;
  uvq__ep_mark_dirty(c);
  return 0;
}

int uvq_quic_stream_set_data(uvq_quic_conn_t* c, int64_t stream_id,
                             void* data) {
  struct uvq__quic_stream* s;

  if (c == NULL)
    return UV_EINVAL;
  s = uvq__stream_find(c, stream_id);
  if (s == NULL)
    return UV_ENOENT;
  s->user_data = data;
  return 0;
}

void* uvq_quic_stream_get_data(uvq_quic_conn_t* c, int64_t stream_id) {
  struct uvq__quic_stream* s;

  if (c == NULL)
    return NULL;
  s = uvq__stream_find(c, stream_id);
  return s != NULL ? s->user_data : NULL;
}

int uvq_quic_datagram_send(uvq_quic_conn_t* c,
                           const uv_buf_t bufs[],
                           unsigned int nbufs,
                           uint64_t* id) {
  const ngtcp2_transport_params* peer;
  struct uvq__quic_dgram* d;
  size_t total;
  size_t off;
  unsigned int i;

  if (c == NULL || (bufs == NULL && nbufs > 0))
    return UV_EINVAL;
  if (c->state >= UVQ__CONN_CLOSING)
    return UV_EPIPE;
  peer = ngtcp2_conn_get_remote_transport_params(c->conn);
  if (peer == NULL || peer->max_datagram_frame_size == 0)
    return UV_ENOTSUP;
  total = 0;
  for (i = 0; i < nbufs; i++)
    total += bufs[i].len;
  /* The frame carries a type byte and a length besides the payload. */
  if (total + 1 + 8 > peer->max_datagram_frame_size)
    return UV_EMSGSIZE;
  if (c->dgram_count >= UVQ__MAX_QUEUED_DGRAMS)
    return UV_EAGAIN;
  d = malloc(sizeof(*d) + total);
  if (d == NULL)
    return UV_ENOMEM;
  off = 0;
  for (i = 0; i < nbufs; i++) {
    memcpy(d->data + off, bufs[i].base, bufs[i].len);
    off += bufs[i].len;
  }
  d->len = total;
  d->id = c->next_dgram_id++;
  d->next = NULL;
  if (c->dgram_tail != NULL)
    c->dgram_tail->next = d;
  else
    c->dgram_head = d;
  c->dgram_tail = d;
  c->dgram_count++;
  if (id != NULL)
    *id = d->id;
  uvq__ep_mark_dirty(c);
  return 0;
}
