/* ngtcp2's callbacks for a connection: the handshake, streams (to the
 * application, or to an application protocol such as HTTP/3 through the
 * connection's hook), connection IDs and reset tokens, datagrams. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2_crypto.h>

/* ngtcp2 draws these for non-cryptographic uses only (which packet
 * numbers to skip, PING padding) and cannot be told of a failure: without
 * kernel randomness the bytes come from a generator seeded by the clock,
 * which is all those uses need. Everything that must be unguessable
 * (connection IDs, secrets, path challenges) fails instead. */
static void rand_cb(uint8_t* dest, size_t len, const ngtcp2_rand_ctx* ctx) {
  uint64_t x;
  size_t i;

  (void) ctx;
  if (uvq__ep_rand(dest, len) == 0)
    return;
  x = uv_hrtime();
  for (i = 0; i < len; i++) {
    /* splitmix64 */
    uint64_t z = (x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    dest[i] = (uint8_t) (z ^ (z >> 31));
  }
}

/* An application protocol's answer as ngtcp2 wants it. */
static int app_result(int rv) {
  return rv == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static void* stream_data_of(const struct uvq__quic_stream* s) {
  return s != NULL ? s->user_data : NULL;
}

/* Client: the server offered a preferred address (RFC 9000, 9.6). The
 * connection follows the one of its socket's family, from the same local
 * address: ngtcp2 validates the new path and moves once it answers, and
 * stays where it is if it does not. */
static int cb_select_preferred_addr(ngtcp2_conn* conn,
                                    ngtcp2_path* dest,
                                    const ngtcp2_preferred_addr* paddr,
                                    void* user_data) {
  (void) user_data;
  if (dest->local.addr->sa_family == AF_INET && paddr->ipv4_present)
    ngtcp2_addr_copy_byte(&dest->remote,
                          (const ngtcp2_sockaddr*) &paddr->ipv4,
                          sizeof(paddr->ipv4));
  else if (dest->local.addr->sa_family == AF_INET6 && paddr->ipv6_present)
    ngtcp2_addr_copy_byte(&dest->remote,
                          (const ngtcp2_sockaddr*) &paddr->ipv6,
                          sizeof(paddr->ipv6));
  (void) conn;
  return 0;
}

static int cb_handshake_completed(ngtcp2_conn* conn, void* user_data) {
  uvq_quic_conn_t* c = user_data;
  size_t alpnlen;

  (void) conn;
  uvq__tls_handshake_done(c);
  /* QUIC requires an application protocol (RFC 9001, 8.1). wolfSSL lets a
   * handshake through without one when the server's selection fails, so
   * the check is made here: no_application_protocol (alert 120). */
  if (uvq_quic_conn_alpn(c, &alpnlen) == NULL || alpnlen == 0) {
    c->tls_alert = 120;
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  if (c->state == UVQ__CONN_HANDSHAKING)
    c->state = UVQ__CONN_OPEN;
  if (c->zero_rtt == UVQ_QUIC_0RTT_SENT)
    c->zero_rtt = wolfSSL_get_early_data_status(c->ssl) ==
                          WOLFSSL_EARLY_DATA_ACCEPTED
                      ? UVQ_QUIC_0RTT_ACCEPTED
                      : UVQ_QUIC_0RTT_REJECTED;
  else if (c->is_server && wolfSSL_session_reused(c->ssl) &&
           wolfSSL_get_early_data_status(c->ssl) == WOLFSSL_EARLY_DATA_ACCEPTED)
    c->zero_rtt = UVQ_QUIC_0RTT_ACCEPTED;
  if (c->is_server && !c->handshake_reported && c->ep->nhandshakes > 0)
    c->ep->nhandshakes--;
  /* The client's first DCID routed its Initials; from now on it uses ours
   * (RFC 9000, 7.2). */
  if (c->is_server && c->odcid.len > 0) {
    uvq__ep_remove_cid(c, c->odcid.data, c->odcid.len);
    c->odcid.len = 0;
  }
  if (c->is_server && c->retry_odcid.len > 0) {
    uvq__ep_remove_cid(c, c->retry_odcid.data, c->retry_odcid.len);
    c->retry_odcid.len = 0;
  }
  if (!c->handshake_reported) {
    c->handshake_reported = 1;
    if (c->ep->cb.handshake_done != NULL)
      c->ep->cb.handshake_done(c);
  }
  /* A server has no further use for its TLS object: its last flight (with
   * the session ticket) is with ngtcp2, which copied it, keys are updated
   * from the secrets ngtcp2 holds, and what the connection reports later
   * was kept above. Freeing it here, outside the helper's calls, saves
   * over half of an idle connection's memory. A client that does not
   * collect session tickets is done with its own too; one that does frees
   * it after the first ticket (tls.c), or now if that came already. */
  if (c->is_server || c->ep->cb.session_ticket == NULL ||
      (c->ticket_seen && c->hs_hdrlen == 0 && c->hs_body_left == 0))
    uvq__tls_conn_free(c);
  return 0;
}

static int cb_recv_stream_data(ngtcp2_conn* conn,
                               uint32_t flags,
                               int64_t stream_id,
                               uint64_t offset,
                               const uint8_t* data,
                               size_t datalen,
                               void* user_data,
                               void* stream_user_data) {
  uvq_quic_conn_t* c = user_data;
  struct uvq__quic_stream* s = stream_user_data;

  (void) conn;
  (void) offset;
  if (c->app != NULL)
    return app_result(c->app->recv_stream_data(
        c, c->app_data, stream_id, stream_data_of(s), data, datalen,
        (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0));
  if (c->ep->cb.stream_data != NULL)
    c->ep->cb.stream_data(c, stream_id, data, datalen,
                          (flags & NGTCP2_STREAM_DATA_FLAG_FIN) != 0);
  else
    uvq_quic_stream_consume(c, stream_id, datalen);
  return 0;
}

static int cb_stream_open(ngtcp2_conn* conn, int64_t stream_id,
                          void* user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  if (uvq__stream_add(c, stream_id) == NULL)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (c->app != NULL)
    return c->app->stream_open != NULL
               ? app_result(c->app->stream_open(c, c->app_data, stream_id))
               : 0;
  if (c->ep->cb.stream_open != NULL)
    c->ep->cb.stream_open(c, stream_id);
  return 0;
}

static int cb_stream_close(ngtcp2_conn* conn,
                           uint32_t flags,
                           int64_t stream_id,
                           uint64_t app_error_code,
                           void* user_data,
                           void* stream_user_data) {
  uvq_quic_conn_t* c = user_data;
  struct uvq__quic_stream* s = stream_user_data;

  if (!(flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET))
    app_error_code = 0;
  /* A stream the peer opened is gone: it may open another (MAX_STREAMS,
   * RFC 9000, 4.6). */
  if (!ngtcp2_conn_is_local_stream(conn, stream_id)) {
    if (ngtcp2_is_bidi_stream(stream_id))
      ngtcp2_conn_extend_max_streams_bidi(conn, 1);
    else
      ngtcp2_conn_extend_max_streams_uni(conn, 1);
  }
  if (c->app != NULL) {
    int rv = 0;
    /* The stream is still known while the protocol hears of its end, so
     * that credit it returns then (uvq_quic_stream_consume) reaches the
     * connection. */
    if (c->app->stream_close != NULL)
      rv = c->app->stream_close(c, c->app_data, stream_id, stream_data_of(s),
                                app_error_code);
    if (s != NULL)
      uvq__stream_free(c, s);
    return app_result(rv);
  }
  if (s != NULL)
    uvq__stream_free(c, s);
  if (c->ep->cb.stream_closed != NULL)
    c->ep->cb.stream_closed(c, stream_id, app_error_code);
  return 0;
}

static int cb_stream_reset(ngtcp2_conn* conn,
                           int64_t stream_id,
                           uint64_t final_size,
                           uint64_t app_error_code,
                           void* user_data,
                           void* stream_user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  (void) final_size;
  if (c->app != NULL)
    return c->app->stream_reset != NULL
               ? app_result(c->app->stream_reset(
                     c, c->app_data, stream_id,
                     stream_data_of(stream_user_data), app_error_code))
               : 0;
  if (c->ep->cb.stream_reset != NULL)
    c->ep->cb.stream_reset(c, stream_id, app_error_code);
  return 0;
}

/* ngtcp2 (1.11) calls this when *this* side stops reading a stream
 * (uvq_quic_stream_shutdown with UVQ_QUIC_SHUT_READ, or HTTP/3 giving up
 * on a request body), not when the peer sends STOP_SENDING: it answers a
 * received STOP_SENDING with RESET_STREAM by itself and tells nobody. Our
 * sending side stays open, and the application already knows what it
 * did, so only an application protocol hears of it. */
static int cb_stream_stop_sending(ngtcp2_conn* conn,
                                  int64_t stream_id,
                                  uint64_t app_error_code,
                                  void* user_data,
                                  void* stream_user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  if (c->app != NULL && c->app->stream_stop_sending != NULL)
    return app_result(c->app->stream_stop_sending(
        c, c->app_data, stream_id, stream_data_of(stream_user_data),
        app_error_code));
  return 0;
}

static int cb_acked_stream_data_offset(ngtcp2_conn* conn,
                                       int64_t stream_id,
                                       uint64_t offset,
                                       uint64_t datalen,
                                       void* user_data,
                                       void* stream_user_data) {
  struct uvq__quic_stream* s = stream_user_data;
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  if (c->app != NULL)
    return c->app->acked_stream_data != NULL
               ? app_result(c->app->acked_stream_data(
                     c, c->app_data, stream_id, stream_data_of(s), offset,
                     datalen))
               : 0;
  if (s == NULL)
    return 0;
  /* ngtcp2 reports acknowledged ranges in order. */
  if (offset + datalen > s->acked)
    s->acked = offset + datalen;
  uvq__stream_complete_writes(s, 0, 0);
  return 0;
}

static int cb_extend_max_local_streams(ngtcp2_conn* conn,
                                       uint64_t max_streams,
                                       void* user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  (void) max_streams;
  if (c->ep->cb.streams_available != NULL)
    c->ep->cb.streams_available(c);
  return 0;
}

static int cb_extend_max_stream_data(ngtcp2_conn* conn,
                                     int64_t stream_id,
                                     uint64_t max_data,
                                     void* user_data,
                                     void* stream_user_data) {
  uvq_quic_conn_t* c = user_data;
  struct uvq__quic_stream* s = stream_user_data;

  (void) conn;
  (void) max_data;
  if (c->app != NULL)
    return c->app->stream_data_unblocked != NULL
               ? app_result(c->app->stream_data_unblocked(
                     c, c->app_data, stream_id, stream_data_of(s)))
               : 0;
  if (s != NULL && s->blocked) {
    s->blocked = 0;
    uvq__stream_pending_add(c, s);
    uvq__ep_mark_dirty(c);
  }
  return 0;
}

static int max_remote_streams(uvq_quic_conn_t* c, int bidi, uint64_t max) {
  if (c->app != NULL && c->app->max_remote_streams != NULL)
    return app_result(c->app->max_remote_streams(c, c->app_data, bidi, max));
  return 0;
}

static int cb_extend_max_remote_streams_bidi(ngtcp2_conn* conn,
                                            uint64_t max_streams,
                                            void* user_data) {
  (void) conn;
  return max_remote_streams(user_data, 1, max_streams);
}

static int cb_extend_max_remote_streams_uni(ngtcp2_conn* conn,
                                           uint64_t max_streams,
                                           void* user_data) {
  (void) conn;
  return max_remote_streams(user_data, 0, max_streams);
}

static int cb_get_new_connection_id(ngtcp2_conn* conn,
                                    ngtcp2_cid* cid,
                                    uint8_t* token,
                                    size_t cidlen,
                                    void* user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  cid->datalen = cidlen;
  if (uvq__ep_make_cid(c->ep, cid->data, cidlen) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (uvq__sr_token(c->ep->static_secret, cid->data, cid->datalen, token) !=
      0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (uvq__ep_add_cid(c, cid->data, cid->datalen) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

static int cb_remove_connection_id(ngtcp2_conn* conn,
                                   const ngtcp2_cid* cid,
                                   void* user_data) {
  (void) conn;
  uvq__ep_remove_cid(user_data, cid->data, cid->datalen);
  return 0;
}

/* The peer's stateless reset tokens, one per destination connection ID in
 * use, go into the endpoint's token map: a reset carries a random DCID, so
 * only its trailing token says which connection it is for. */
static int cb_dcid_status(ngtcp2_conn* conn,
                          ngtcp2_connection_id_status_type type,
                          uint64_t seq,
                          const ngtcp2_cid* cid,
                          const uint8_t* token,
                          void* user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  (void) seq;
  (void) cid;
  if (token == NULL)
    return 0;
  if (type == NGTCP2_CONNECTION_ID_STATUS_TYPE_ACTIVATE)
    return uvq__ep_add_token(c, token) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
  uvq__ep_remove_token(c, token);
  return 0;
}

static int cb_recv_datagram(ngtcp2_conn* conn,
                            uint32_t flags,
                            const uint8_t* data,
                            size_t datalen,
                            void* user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  (void) flags;
  if (c->ep->cb.datagram != NULL)
    c->ep->cb.datagram(c, data, datalen);
  return 0;
}

static int cb_ack_datagram(ngtcp2_conn* conn, uint64_t id, void* user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  if (c->ep->cb.datagram_acked != NULL)
    c->ep->cb.datagram_acked(c, id);
  return 0;
}

static int cb_lost_datagram(ngtcp2_conn* conn, uint64_t id, void* user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  if (c->ep->cb.datagram_lost != NULL)
    c->ep->cb.datagram_lost(c, id);
  return 0;
}

static int cb_recv_stateless_reset(ngtcp2_conn* conn,
                                   const ngtcp2_pkt_stateless_reset* sr,
                                   void* user_data) {
  uvq_quic_conn_t* c = user_data;

  (void) conn;
  (void) sr;
  c->error.kind = UVQ_QUIC_ERROR_STATELESS_RESET;
  c->error.remote = 1;
  return 0;
}

void uvq__conn_fill_callbacks(ngtcp2_callbacks* cb, int server) {
  memset(cb, 0, sizeof(*cb));
  if (server) {
    cb->recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    cb->client_initial = ngtcp2_crypto_client_initial_cb;
    cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  }
  cb->recv_crypto_data = uvq__tls_recv_crypto_data;
  /* encrypt, decrypt, hp_mask, update_key, delete_crypto_aead_ctx */
  uvq__crypto_fill_callbacks(cb);
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb->rand = rand_cb;
  cb->handshake_completed = cb_handshake_completed;
  cb->recv_stream_data = cb_recv_stream_data;
  cb->stream_open = cb_stream_open;
  cb->stream_close = cb_stream_close;
  cb->stream_reset = cb_stream_reset;
  cb->stream_stop_sending = cb_stream_stop_sending;
  cb->acked_stream_data_offset = cb_acked_stream_data_offset;
  cb->extend_max_local_streams_bidi = cb_extend_max_local_streams;
  cb->extend_max_local_streams_uni = cb_extend_max_local_streams;
  cb->extend_max_stream_data = cb_extend_max_stream_data;
  cb->extend_max_remote_streams_bidi = cb_extend_max_remote_streams_bidi;
  cb->extend_max_remote_streams_uni = cb_extend_max_remote_streams_uni;
  cb->get_new_connection_id = cb_get_new_connection_id;
  cb->remove_connection_id = cb_remove_connection_id;
  cb->recv_datagram = cb_recv_datagram;
  cb->ack_datagram = cb_ack_datagram;
  cb->lost_datagram = cb_lost_datagram;
  cb->recv_stateless_reset = cb_recv_stateless_reset;
  cb->dcid_status = cb_dcid_status;
  if (!server)
    cb->select_preferred_addr = cb_select_preferred_addr;
}
