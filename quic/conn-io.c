/* A connection's I/O: packets in (ngtcp2_conn_read_pkt), packets out (the
 * write loop that pulls stream data, HTTP/3 frames and datagrams into
 * packets staged as GSO runs, within ngtcp2's send quantum), and its
 * deadline on the endpoint's timer heap. */
#include "internal.h"

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

void uvq__conn_write(uvq_quic_conn_t* c, ngtcp2_tstamp ts) {
  uvq_quic_endpoint_t* ep;
  struct uvq__quic_stream* s;
  struct uvq__quic_dgram* d;
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_vec vec[16];
  ngtcp2_ssize ndatalen;
  ngtcp2_ssize nwrite;
  size_t max_payload;
  size_t quantum;
  size_t written;
  size_t avail;
  size_t nvec;
  uint8_t* buf;
  uint32_t flags;
  int accepted;
  int fin;
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

    d = c->dgram_head;
    if (d != NULL) {
      ngtcp2_vec dv;
      dv.base = d->data;
      dv.len = d->len;
      accepted = 0;
      nwrite = ngtcp2_conn_writev_datagram(
          c->conn, &ps.path, &pi, buf, avail, &accepted,
          NGTCP2_WRITE_DATAGRAM_FLAG_MORE, d->id, &dv, 1, ts);
      if (accepted || nwrite == NGTCP2_ERR_INVALID_STATE ||
          nwrite == NGTCP2_ERR_INVALID_ARGUMENT) {
        /* Sent, or never sendable (the peer takes no datagrams, or not
         * this large): either way it leaves the queue. */
        c->dgram_head = d->next;
        if (c->dgram_head == NULL)
          c->dgram_tail = NULL;
        c->dgram_count--;
        if (!accepted && ep->cb.datagram_lost != NULL)
          ep->cb.datagram_lost(c, d->id);
        free(d);
      }
      if (nwrite == NGTCP2_ERR_WRITE_MORE ||
          nwrite == NGTCP2_ERR_INVALID_STATE ||
          nwrite == NGTCP2_ERR_INVALID_ARGUMENT)
        continue;
    } else if (c->app != NULL) {
      int64_t sid;
      int64_t n;

      sid = -1;
      fin = 0;
      n = c->app->writev(c->app_data, &sid, &fin, vec,
                         sizeof(vec) / sizeof(vec[0]));
      if (n < 0) {
        c->in_ngtcp2 = 0;
        uvq__conn_close_local(c, UVQ_QUIC_ERROR_APPLICATION, c->app_error, 0);
        return;
      }
      flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
      if (fin)
        flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
      ndatalen = -1;
      nwrite = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, buf, avail,
                                         &ndatalen, flags, sid, vec,
                                         (size_t) n, ts);
      if (nwrite < 0) {
        if (nwrite == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
          c->app->block(c->app_data, sid);
          continue;
        }
        if (nwrite == NGTCP2_ERR_STREAM_SHUT_WR ||
            nwrite == NGTCP2_ERR_STREAM_NOT_FOUND) {
          c->app->shutdown_write(c->app_data, sid);
          continue;
        }
        if (nwrite == NGTCP2_ERR_WRITE_MORE) {
          c->app->written(c->app_data, sid, (size_t) ndatalen);
          continue;
        }
      } else if (ndatalen >= 0 && sid >= 0) {
        c->app->written(c->app_data, sid, (size_t) ndatalen);
      }
    } else {
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
      nwrite = ngtcp2_conn_writev_stream(c->conn, &ps.path, &pi, buf, avail,
                                         &ndatalen, flags,
                                         s != NULL ? s->id : -1, vec, nvec,
                                         ts);
      if (nwrite < 0) {
        if (s != NULL && (nwrite == NGTCP2_ERR_STREAM_DATA_BLOCKED)) {
          s->blocked = 1;
          uvq__stream_pending_remove(c, s);
          continue;
        }
        if (s != NULL && (nwrite == NGTCP2_ERR_STREAM_SHUT_WR ||
                          nwrite == NGTCP2_ERR_STREAM_NOT_FOUND)) {
          s->write_closed = 1;
          uvq__stream_pending_remove(c, s);
          continue;
        }
        if (nwrite == NGTCP2_ERR_WRITE_MORE) {
          uvq__stream_advance(c, s, ndatalen, fin);
          continue;
        }
      } else if (s != NULL && ndatalen >= 0) {
        uvq__stream_advance(c, s, ndatalen, fin);
      }
    }

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
