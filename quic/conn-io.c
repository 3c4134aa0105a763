/* A connection's I/O: packets in (ngtcp2_conn_read_pkt), packets out (the
 * write loop that pulls datagrams and stream data, the connection's own or
 * an application protocol's, into packets staged as GSO runs, within
 * ngtcp2's send quantum), and its deadline on the endpoint's timer heap. */
#include "internal.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ngtcp2 requires each connection's clock never to go back, but one
 * receive batch shares a timestamp taken before the application, from a
 * callback, may have acted on this connection with a later one. Every
 * timestamp handed to ngtcp2 goes through here. */
ngtcp2_tstamp uvq__conn_ts(uvq_quic_conn_t* c, ngtcp2_tstamp ts) {
  if (ts < c->last_ts)
    return c->last_ts;
  c->last_ts = ts;
  return ts;
}

int uvq__conn_read(uvq_quic_conn_t* c,
                   const ngtcp2_path* path,
                   const ngtcp2_pkt_info* pi,
                   const uint8_t* data,
                   size_t len,
                   ngtcp2_tstamp ts) {
  int rv;

  if (c->state == UVQ__CONN_CLOSING) {
    /* RFC 9000, 10.2.1: answer with the CONNECTION_CLOSE again. */
    if (c->close_pkt != NULL)
      uvq__ep_stage(c->ep, &c->close_path.path, 0, c->close_pkt,
                    c->close_pktlen, 0);
    return 0;
  }
  if (c->state >= UVQ__CONN_DRAINING)
    return 0;

  c->packets_received++;
  c->bytes_received += len;
  c->ecn_received[pi->ecn & 3]++;
  ts = uvq__conn_ts(c, ts);
  c->in_ngtcp2 = 1;
  rv = ngtcp2_conn_read_pkt(c->conn, path, pi, data, len, ts);
  c->in_ngtcp2 = 0;
  if (rv != 0) {
    uvq__conn_handle_error(c, rv, ts);
    return 0;
  }
  uvq__conn_run_pending_close(c);
  if (c->state < UVQ__CONN_CLOSING)
    uvq__ep_mark_dirty(c);
  return 0;
}

void uvq__conn_schedule(uvq_quic_conn_t* c) {
  ngtcp2_tstamp expiry;

  if (c->state >= UVQ__CONN_CLOSING)
    return;
  expiry = ngtcp2_conn_get_expiry(c->conn);
  if (expiry == UINT64_MAX)
    uvq__heap_remove(&c->ep->timers, &c->timer);
  else
    uvq__heap_set(&c->ep->timers, &c->timer, expiry);
}

void uvq__conn_on_timer(uvq_quic_conn_t* c, ngtcp2_tstamp ts) {
  int rv;

  if (c->state >= UVQ__CONN_CLOSING) {
    /* The closing or draining period is over. */
    uvq__conn_report_closed(c);
    c->state = UVQ__CONN_DEAD;
    uvq__conn_release(c);
    return;
  }
  ts = uvq__conn_ts(c, ts);
  c->in_ngtcp2 = 1;
  rv = ngtcp2_conn_handle_expiry(c->conn, ts);
  c->in_ngtcp2 = 0;
  if (rv != 0) {
    uvq__conn_handle_error(c, rv, ts);
    return;
  }
  uvq__conn_run_pending_close(c);
  uvq__conn_write(c, ts);
}

/* The write loop's sources. Each writes at most one packet into buf and
 * returns its length, 0 when the connection has nothing to send, WRITE_AGAIN
 * when it consumed something without finishing a packet (data coalesced
 * into the packet being built, a datagram or stream dropped from its queue)
 * and the loop should go round again, or an ngtcp2 error that ends the
 * connection (NGTCP2_ERR_CALLBACK_FAILURE when an application protocol
 * failed). */
#define WRITE_AGAIN NGTCP2_ERR_WRITE_MORE

_Static_assert(sizeof(uvq_quic_vec_t) == sizeof(ngtcp2_vec), "vec layout");
_Static_assert(offsetof(uvq_quic_vec_t, base) == offsetof(ngtcp2_vec, base) &&
                   offsetof(uvq_quic_vec_t, len) == offsetof(ngtcp2_vec, len),
               "vec layout");

/* The oldest queued RFC 9221 datagram, with whatever frames are due. */
static ngtcp2_ssize write_datagram(uvq_quic_conn_t* c, ngtcp2_path* path,
                                   ngtcp2_pkt_info* pi, uint8_t* buf,
                                   size_t avail, ngtcp2_tstamp ts) {
  struct uvq__quic_dgram* d;
  ngtcp2_ssize nwrite;
  ngtcp2_vec dv;
  int accepted;

  d = c->dgram_head;
  dv.base = d->data;
  dv.len = d->len;
  accepted = 0;
  nwrite = ngtcp2_conn_writev_datagram(c->conn, path, pi, buf, avail,
                                       &accepted,
                                       NGTCP2_WRITE_DATAGRAM_FLAG_MORE, d->id,
                                       &dv, 1, ts);
  if (accepted || nwrite == NGTCP2_ERR_INVALID_STATE ||
      nwrite == NGTCP2_ERR_INVALID_ARGUMENT) {
    /* Sent, or never sendable (the peer takes no datagrams, or not this
     * large): either way it leaves the queue. */
    c->dgram_head = d->next;
    if (c->dgram_head == NULL)
      c->dgram_tail = NULL;
    c->dgram_count--;
    if (!accepted && c->ep->cb.datagram_lost != NULL)
      c->ep->cb.datagram_lost(c, d->id);
    free(d);
    if (nwrite == NGTCP2_ERR_INVALID_STATE ||
        nwrite == NGTCP2_ERR_INVALID_ARGUMENT)
      return WRITE_AGAIN;
  }
  return nwrite;
}

/* Stream data an application protocol offers (uvq_quic_app_callbacks_t),
 * told back how much of it went. */
static ngtcp2_ssize write_app_stream(uvq_quic_conn_t* c, ngtcp2_path* path,
                                     ngtcp2_pkt_info* pi, uint8_t* buf,
                                     size_t avail, ngtcp2_tstamp ts) {
  const uvq_quic_app_callbacks_t* app;
  uvq_quic_vec_t vec[16];
  ngtcp2_ssize ndatalen;
  ngtcp2_ssize nwrite;
  uint32_t flags;
  int64_t sid;
  size_t nvec;
  int fin;
  int rv;

  app = c->app;
  sid = -1;
  fin = 0;
  nvec = 0;
  if (app->send_stream_data(c, c->app_data, &sid, &fin, vec,
                            sizeof(vec) / sizeof(vec[0]), &nvec) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (sid < 0)
    nvec = 0;
  flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
  if (fin)
    flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
  ndatalen = -1;
  nwrite = ngtcp2_conn_writev_stream(c->conn, path, pi, buf, avail, &ndatalen,
                                     flags, sid, (const ngtcp2_vec*) vec,
                                     nvec, ts);
  rv = 0;
  switch (nwrite) {
    case NGTCP2_ERR_STREAM_DATA_BLOCKED:
      if (app->stream_data_blocked != NULL)
        rv = app->stream_data_blocked(c, c->app_data, sid);
      nwrite = WRITE_AGAIN;
      break;
    case NGTCP2_ERR_STREAM_SHUT_WR:
    case NGTCP2_ERR_STREAM_NOT_FOUND:
      if (app->stream_write_closed != NULL)
        rv = app->stream_write_closed(c, c->app_data, sid);
      nwrite = WRITE_AGAIN;
      break;
    default:
      if ((nwrite >= 0 || nwrite == NGTCP2_ERR_WRITE_MORE) && ndatalen >= 0 &&
          sid >= 0 && app->stream_data_sent != NULL)
        rv = app->stream_data_sent(c, c->app_data, sid, (size_t) ndatalen);
      break;
  }
  return rv != 0 ? NGTCP2_ERR_CALLBACK_FAILURE : nwrite;
}

/* The connection's own streams (uvq_quic_stream_write), round robin, with
 * whatever frames are due; only those when no stream has data. */
static ngtcp2_ssize write_own_stream(uvq_quic_conn_t* c, ngtcp2_path* path,
                                     ngtcp2_pkt_info* pi, uint8_t* buf,
                                     size_t avail, ngtcp2_tstamp ts) {
  struct uvq__quic_stream* s;
  ngtcp2_vec vec[16];
  ngtcp2_ssize ndatalen;
  ngtcp2_ssize nwrite;
  uint32_t flags;
  size_t nvec;
  int fin;

  s = c->pending_head;
  nvec = 0;
  fin = 0;
  if (s != NULL) {
    nvec = uvq__stream_vecs(s, vec, sizeof(vec) / sizeof(vec[0]));
    /* FIN goes with the last bytes, or alone once they are sent. */
    if (s->fin_queued && !s->fin_sent) {
      uint64_t total = s->sent;
      size_t i;
      for (i = 0; i < nvec; i++)
        total += vec[i].len;
      fin = total == s->queued;
    }
  }
  flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
  if (fin)
    flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
  ndatalen = -1;
  nwrite = ngtcp2_conn_writev_stream(c->conn, path, pi, buf, avail, &ndatalen,
                                     flags, s != NULL ? s->id : -1, vec, nvec,
                                     ts);
  if (s == NULL)
    return nwrite;
  switch (nwrite) {
    case NGTCP2_ERR_STREAM_DATA_BLOCKED:
      s->blocked = 1;
      uvq__stream_pending_remove(c, s);
      return WRITE_AGAIN;
    case NGTCP2_ERR_STREAM_SHUT_WR:
    case NGTCP2_ERR_STREAM_NOT_FOUND:
      s->write_closed = 1;
      uvq__stream_pending_remove(c, s);
      return WRITE_AGAIN;
    default:
      if ((nwrite >= 0 || nwrite == NGTCP2_ERR_WRITE_MORE) && ndatalen >= 0)
        uvq__stream_advance(c, s, ndatalen, fin);
      return nwrite;
  }
}

/* Writes the connection's packets into the endpoint's staging, up to the
 * send quantum: queued datagrams first, then stream data, from the
 * application protocol if it has one. */
void uvq__conn_write(uvq_quic_conn_t* c, ngtcp2_tstamp ts) {
  uvq_quic_endpoint_t* ep;
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_ssize nwrite;
  size_t max_payload;
  size_t quantum;
  size_t written;
  size_t avail;
  uint8_t* buf;
  int rounds;

  if (c->closed_pending)
    uvq__conn_report_closed(c);
  if (c->state >= UVQ__CONN_CLOSING)
    return;
  ep = c->ep;
  ts = uvq__conn_ts(c, ts);
  ngtcp2_path_storage_zero(&ps);
  max_payload = ngtcp2_conn_get_max_tx_udp_payload_size(c->conn);
  quantum = ep->cfg.pacing ? ngtcp2_conn_get_send_quantum(c->conn) : SIZE_MAX;
  written = 0;

  c->in_ngtcp2 = 1;
  for (rounds = 0; rounds < UVQ__WRITE_ROUNDS_MAX && written < quantum;
       rounds++) {
    buf = uvq__ep_tx_space(ep, &avail);
    if (buf == NULL) {
      /* Staging waits for the socket: try again when it drains. */
      uvq__ep_mark_dirty(c);
      break;
    }
    if (avail > max_payload)
      avail = max_payload;

    if (c->dgram_head != NULL)
      nwrite = write_datagram(c, &ps.path, &pi, buf, avail, ts);
    else if (c->app != NULL)
      nwrite = write_app_stream(c, &ps.path, &pi, buf, avail, ts);
    else
      nwrite = write_own_stream(c, &ps.path, &pi, buf, avail, ts);
    if (nwrite == WRITE_AGAIN)
      continue;
    if (nwrite < 0) {
      c->in_ngtcp2 = 0;
      uvq__conn_handle_error(c, (int) nwrite, ts);
      return;
    }
    if (nwrite == 0)
      break;
    /* With ECN off the packets go Not-ECT; ngtcp2's validation then fails
     * and it stops asking for ECT on its own. */
    if (!ep->cfg.ecn)
      pi.ecn = NGTCP2_ECN_NOT_ECT;
    c->sends += (uint64_t) uvq__ep_tx_commit(ep, &ps.path, pi.ecn,
                                             (size_t) nwrite);
    c->packets_sent++;
    c->bytes_sent += (uint64_t) nwrite;
    c->ecn_sent[pi.ecn & 3]++;
    c->last_tx_ecn = pi.ecn;
    written += (size_t) nwrite;
  }
  c->in_ngtcp2 = 0;
  /* The connection's run ends here: the next connection's packets start
   * their own message even on the same path. A GSO message stays one
   * skb all the way into a receiver on the same host, and a reuseport
   * steering program (uvq's workers, see steer-linux.c) sees only its
   * first packet, so packets of two connections in one message would all
   * reach the first one's worker. */
  if (ep->ntx < UVQ__TX_MSGS && ep->txbufs[ep->ntx].len > 0)
    ep->ntx++;
  ngtcp2_conn_update_pkt_tx_time(c->conn, ts);
  uvq__conn_run_pending_close(c);
  uvq__conn_schedule(c);
}
