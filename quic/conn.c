/* A QUIC connection: an ngtcp2_conn with its TLS session, driven by the
 * endpoint. Reading hands packets to ngtcp2; writing pulls stream data and
 * datagrams into packets staged as GSO runs; one heap entry per connection
 * carries ngtcp2's next deadline. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ngtcp2/ngtcp2_crypto.h>

#define UVQ__DEFAULT_MAX_DATA (8u << 20)
#define UVQ__DEFAULT_MAX_STREAM_DATA (2u << 20)
#define UVQ__DEFAULT_MAX_STREAMS_BIDI 100
#define UVQ__DEFAULT_MAX_STREAMS_UNI 3
#define UVQ__DEFAULT_IDLE_MS 30000
#define UVQ__DEFAULT_HANDSHAKE_MS 10000
/* ngtcp2 grows the flow-control windows it advertises up to these as the
 * application consumes data quickly (auto-tuning). */
#define UVQ__MAX_WINDOW (48u << 20)
#define UVQ__MAX_STREAM_WINDOW (32u << 20)

static ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref) {
  return ((uvq_quic_conn_t*) ref->user_data)->conn;
}

static void qlog_write(void* user_data, uint32_t flags, const void* data,
                       size_t len) {
  uvq_quic_conn_t* c = user_data;

  (void) flags;
  if (c->qlog != NULL)
    fwrite(data, 1, len, c->qlog);
}

/* ---- creation ------------------------------------------------------------- */

static const uint32_t uvq__versions_v1_first[2] = {NGTCP2_PROTO_VER_V1,
                                                   NGTCP2_PROTO_VER_V2};
static const uint32_t uvq__versions_v2_first[2] = {NGTCP2_PROTO_VER_V2,
                                                   NGTCP2_PROTO_VER_V1};

static void fill_settings(uvq_quic_conn_t* c,
                          ngtcp2_settings* st,
                          ngtcp2_transport_params* tp,
                          ngtcp2_tstamp ts) {
  const uvq_quic_config_t* cfg;

  cfg = &c->ep->cfg;
  ngtcp2_settings_default(st);
  st->initial_ts = ts;
  st->cc_algo = cfg->cc == UVQ_QUIC_CC_BBR    ? NGTCP2_CC_ALGO_BBR
                : cfg->cc == UVQ_QUIC_CC_RENO ? NGTCP2_CC_ALGO_RENO
                                              : NGTCP2_CC_ALGO_CUBIC;
  st->max_tx_udp_payload_size = UVQ__MAX_UDP_PAYLOAD;
  st->no_pmtud = cfg->pmtud ? 0 : 1;
  /* ngtcp2's "none" is UINT64_MAX nanoseconds; a finite timeout that
   * would overflow the conversion is as good as none. */
  if (cfg->handshake_timeout_ms >= UINT64_MAX / NGTCP2_MILLISECONDS)
    st->handshake_timeout = UINT64_MAX;
  else
    st->handshake_timeout =
        (cfg->handshake_timeout_ms ? cfg->handshake_timeout_ms
                                   : UVQ__DEFAULT_HANDSHAKE_MS) *
        NGTCP2_MILLISECONDS;
  st->max_window = UVQ__MAX_WINDOW;
  st->max_stream_window = UVQ__MAX_STREAM_WINDOW;
  if (cfg->preferred_version == UVQ_QUIC_V2) {
    st->preferred_versions = uvq__versions_v2_first;
  } else {
    st->preferred_versions = uvq__versions_v1_first;
  }
  st->preferred_versionslen = 2;
  st->available_versions = st->preferred_versions;
  st->available_versionslen = 2;
  if (c->qlog != NULL)
    st->qlog_write = qlog_write;

  ngtcp2_transport_params_default(tp);
  tp->initial_max_data = cfg->max_data ? cfg->max_data : UVQ__DEFAULT_MAX_DATA;
  tp->initial_max_stream_data_bidi_local =
      cfg->max_stream_data ? cfg->max_stream_data
                           : UVQ__DEFAULT_MAX_STREAM_DATA;
  tp->initial_max_stream_data_bidi_remote =
      tp->initial_max_stream_data_bidi_local;
  tp->initial_max_stream_data_uni = tp->initial_max_stream_data_bidi_local;
  tp->initial_max_streams_bidi = cfg->max_streams_bidi
                                     ? cfg->max_streams_bidi
                                     : UVQ__DEFAULT_MAX_STREAMS_BIDI;
  tp->initial_max_streams_uni =
      cfg->max_streams_uni ? cfg->max_streams_uni : UVQ__DEFAULT_MAX_STREAMS_UNI;
  tp->max_idle_timeout =
      (cfg->idle_timeout_ms ? cfg->idle_timeout_ms : UVQ__DEFAULT_IDLE_MS) *
      NGTCP2_MILLISECONDS;
  /* Two spare connection IDs from the peer: enough for a migration or a
   * NAT rebinding while the preferred address's ID holds a slot. Each ID
   * costs its issuer a random ID, a reset token, a routing entry and a
   * NEW_CONNECTION_ID frame in the handshake; 7 (six spares each way)
   * cost about 2% of a full handshake's instructions on each side. */
  tp->active_connection_id_limit = 3;
  tp->max_datagram_frame_size = cfg->max_datagram_frame_size;
}

static void open_qlog(uvq_quic_conn_t* c, const ngtcp2_cid* scid) {
  char path[4096];
  size_t off;
  size_t i;
  int n;

  if (c->ep->cfg.qlog_dir == NULL)
    return;
  n = snprintf(path, sizeof(path), "%s/", c->ep->cfg.qlog_dir);
  if (n < 0 || (size_t) n >= sizeof(path) - 2 * NGTCP2_MAX_CIDLEN - 16)
    return;
  off = (size_t) n;
  for (i = 0; i < scid->datalen; i++)
    off += (size_t) snprintf(path + off, sizeof(path) - off, "%02x",
                             scid->data[i]);
  snprintf(path + off, sizeof(path) - off, "%s",
           c->is_server ? "-server.sqlog" : "-client.sqlog");
  c->qlog = fopen(path, "w");
}

/* A new connection with its first connection ID (scid) drawn; 0 or a
 * UV_E* error (UV_ENOMEM, or no random bytes to be had). */
static int conn_alloc(uvq_quic_endpoint_t* ep, int server, ngtcp2_cid* scid,
                      uvq_quic_conn_t** out) {
  uvq_quic_conn_t* c;
  int err;

  c = calloc(1, sizeof(*c));
  if (c == NULL)
    return UV_ENOMEM;
  scid->datalen = UVQ__SCID_LEN;
  err = uvq__ep_make_cid(ep, scid->data, scid->datalen);
  if (err == 0)
    err = uvq__cidmap_init(&c->streams);
  if (err) {
    free(c);
    return err;
  }
  c->ep = ep;
  c->is_server = server;
  c->state = UVQ__CONN_HANDSHAKING;
  c->conn_ref.get_conn = get_conn;
  c->conn_ref.user_data = c;
  uvq__heap_node_init(&c->timer);
  *out = c;
  return 0;
}

static void link_conn(uvq_quic_conn_t* c) {
  uvq_quic_endpoint_t* ep;

  ep = c->ep;
  c->next = ep->conns;
  if (ep->conns != NULL)
    ep->conns->prev = c;
  ep->conns = c;
  ep->nconns++;
}

int uvq__conn_new_server(uvq_quic_endpoint_t* ep,
                         const ngtcp2_path* path,
                         const ngtcp2_pkt_hd* hd,
                         const ngtcp2_cid* ocid,
                         ngtcp2_tstamp ts,
                         uvq_quic_conn_t** out) {
  ngtcp2_transport_params tp;
  ngtcp2_callbacks cb;
  ngtcp2_settings st;
  ngtcp2_cid scid;
  uvq_quic_conn_t* c;
  int rv;

  rv = conn_alloc(ep, 1, &scid, &c);
  if (rv != 0)
    return rv;
  open_qlog(c, &scid);
  fill_settings(c, &st, &tp, ts);
  st.original_version = hd->version;
  if (ocid != NULL) {
    /* Validated by Retry: the client's first DCID, and the Retry's SCID
     * that it used since (RFC 9000, 7.3). */
    tp.original_dcid = *ocid;
    tp.retry_scid = hd->dcid;
    tp.retry_scid_present = 1;
    st.token = hd->token;
    st.tokenlen = hd->tokenlen;
    st.token_type = NGTCP2_TOKEN_TYPE_RETRY;
  } else {
    tp.original_dcid = hd->dcid;
  }
  tp.original_dcid_present = 1;
  if (uvq__sr_token(ep->static_secret, scid.data, scid.datalen,
                    tp.stateless_reset_token) != 0) {
    uvq__conn_free(c);
    return UV_EIO;
  }
  tp.stateless_reset_token_present = 1;
  /* The preferred address gets a connection ID of its own, sequence
   * number 1 for ngtcp2, with its reset token (RFC 9000, 18.2). */
  if (ep->has_preferred_v4 || ep->has_preferred_v6) {
    ngtcp2_preferred_addr* pa = &tp.preferred_addr;
    pa->cid.datalen = UVQ__SCID_LEN;
    uvq__ep_make_cid(ep, pa->cid.data, pa->cid.datalen);
    if (uvq__sr_token(ep->static_secret, pa->cid.data, pa->cid.datalen,
                      pa->stateless_reset_token) != 0) {
      uvq__conn_free(c);
      return UV_EIO;
    }
    if (ep->has_preferred_v4) {
      memcpy(&pa->ipv4, &ep->preferred_v4, sizeof(ep->preferred_v4));
      pa->ipv4_present = 1;
    }
    if (ep->has_preferred_v6) {
      memcpy(&pa->ipv6, &ep->preferred_v6, sizeof(ep->preferred_v6));
      pa->ipv6_present = 1;
    }
    tp.preferred_addr_present = 1;
  }

  uvq__conn_fill_callbacks(&cb, 1);
  rv = ngtcp2_conn_server_new(&c->conn, &hd->scid, &scid, path, hd->version,
                              &cb, &st, &tp, NULL, c);
  if (rv != 0) {
    uvq__conn_free(c);
    return UV_ENOMEM;
  }
  if (uvq__tls_conn_init(c, NULL, NULL, 0) != 0 ||
      uvq__ep_add_cid(c, scid.data, scid.datalen) != 0 ||
      uvq__ep_add_cid(c, hd->dcid.data, hd->dcid.datalen) != 0 ||
      (tp.preferred_addr_present &&
       uvq__ep_add_cid(c, tp.preferred_addr.cid.data,
                       tp.preferred_addr.cid.datalen) != 0)) {
    uvq__conn_free(c);
    return UV_ENOMEM;
  }
  c->odcid.len = (uint8_t) hd->dcid.datalen;
  memcpy(c->odcid.data, hd->dcid.data, hd->dcid.datalen);
  if (ocid != NULL) {
    /* The client's Initials from before the Retry may still arrive; they
     * must reach this connection (which cannot decrypt them and drops
     * them), not become a second one for an attempt the client left. */
    if (uvq__ep_add_cid(c, ocid->data, ocid->datalen) != 0) {
      uvq__conn_free(c);
      return UV_ENOMEM;
    }
    c->retry_odcid.len = (uint8_t) ocid->datalen;
    memcpy(c->retry_odcid.data, ocid->data, ocid->datalen);
  }
  if (ep->cfg.keepalive_ms)
    ngtcp2_conn_set_keep_alive_timeout(c->conn,
                                       ep->cfg.keepalive_ms *
                                           NGTCP2_MILLISECONDS);
  link_conn(c);
  ep->nhandshakes++;
  *out = c;
  return 0;
}

/* A connection's path names a real local address: packets arrive with the
 * address they were sent to (pktinfo), and ngtcp2 discards packets of a
 * path it does not know. For a socket bound to a wildcard address, the
 * kernel's choice of source towards the peer is what a connected socket
 * reports; the port stays the endpoint's. */
static int route_source(const struct sockaddr* remote,
                        struct sockaddr_storage* local) {
  struct sockaddr_storage ss;
  socklen_t len;
  uint16_t port;
  int fd;
  int err;

  fd = socket(remote->sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return uvq__quic_errno();
  err = connect(fd, remote,
                uvq__addr_len(remote));
  len = sizeof(ss);
  if (err == 0)
    err = getsockname(fd, (struct sockaddr*) &ss, &len);
  if (err != 0) {
    err = uvq__quic_errno();
    close(fd);
    return err;
  }
  close(fd);
  port = ((struct sockaddr_in*) local)->sin_port; /* same offset in v6 */
  memcpy(local, &ss, len);
  ((struct sockaddr_in*) local)->sin_port = port;
  return 0;
}

int uvq_quic_connect(uvq_quic_endpoint_t* ep,
                     const struct sockaddr* remote,
                     const uvq_quic_connect_opts_t* user_opts,
                     void* user_data,
                     uvq_quic_conn_t** out) {
  uvq_quic_connect_opts_t opts_storage;
  const uvq_quic_connect_opts_t* opts;
  struct sockaddr_storage local;
  ngtcp2_transport_params tp;
  ngtcp2_callbacks cb;
  ngtcp2_settings st;
  ngtcp2_path path;
  ngtcp2_cid scid;
  ngtcp2_cid dcid;
  uvq_quic_conn_t* c;
  const char* sni;
  int rv;

  if (ep == NULL || remote == NULL || out == NULL || ep->closing)
    return UV_EINVAL;
  opts = NULL;
  if (user_opts != NULL) {
    /* Read in the layout the caller was built with (compat.c). */
    if (uvq__quic_connect_opts_load(user_opts, &opts_storage) != 0)
      return UV_EINVAL;
    opts = &opts_storage;
  }
  if (opts != NULL && opts->quic_version != 0 &&
      opts->quic_version != UVQ_QUIC_V1 && opts->quic_version != UVQ_QUIC_V2)
    return UV_EINVAL;
  /* Verifying a certificate means checking whose it is: without a name any
   * certificate from a trusted CA would do. */
  if (!ep->cfg.insecure_skip_verify &&
      (opts == NULL || opts->server_name == NULL || *opts->server_name == 0))
    return UV_EINVAL;
  if (ep->loop == NULL) {
    /* A core endpoint has no socket to ask: the application names the
     * path's source, port included. */
    if (opts == NULL || opts->local == NULL ||
        (opts->local->sa_family != AF_INET &&
         opts->local->sa_family != AF_INET6) ||
        uvq__ep_addr_port(opts->local) == 0)
      return UV_EINVAL;
    memset(&local, 0, sizeof(local));
    memcpy(&local, opts->local,
           uvq__addr_len(opts->local));
    if (remote->sa_family != local.ss_family)
      return UV_EAFNOSUPPORT;
  } else {
    if (!ep->bound)
      return UV_EBADF;
    local = ep->udp_addr;
    if (remote->sa_family != local.ss_family)
      return UV_EAFNOSUPPORT;
  }
  if (ep->loop != NULL && opts != NULL && opts->local != NULL) {
    /* Same socket, chosen source address (pktinfo); the port stays the
     * endpoint's. */
    uint16_t port = ((struct sockaddr_in*) &local)->sin_port;
    memcpy(&local, opts->local,
           uvq__addr_len(opts->local));
    ((struct sockaddr_in*) &local)->sin_port = port;
  }

  if (ep->loop != NULL && uvq__addr_is_wildcard((struct sockaddr*) &local)) {
    rv = route_source(remote, &local);
    if (rv)
      return rv;
  }

  dcid.datalen = UVQ__SCID_LEN;
  rv = uvq__ep_rand(dcid.data, dcid.datalen);
  if (rv != 0)
    return rv;
  rv = conn_alloc(ep, 0, &scid, &c);
  if (rv != 0)
    return rv;
  c->user_data = user_data;
  open_qlog(c, &scid);
  fill_settings(c, &st, &tp, uvq__ep_now(ep));
  path.local.addr = (ngtcp2_sockaddr*) &local;
  path.local.addrlen = uvq__addr_len((const struct sockaddr*) &local);
  path.remote.addr = (ngtcp2_sockaddr*) remote;
  path.remote.addrlen = uvq__addr_len(remote);
  path.user_data = ep;

  uvq__conn_fill_callbacks(&cb, 0);
  /* The client starts with v1 (or the version asked for) and offers both
   * through compatible version negotiation (RFC 9368); the server's
   * preference decides. */
  rv = ngtcp2_conn_client_new(&c->conn, &dcid, &scid, &path,
                              opts != NULL && opts->quic_version != 0
                                  ? opts->quic_version
                                  : NGTCP2_PROTO_VER_V1,
                              &cb, &st, &tp, NULL, c);
  if (rv != 0) {
    uvq__conn_free(c);
    return UV_ENOMEM;
  }
  if (ep->cfg.keepalive_ms)
    ngtcp2_conn_set_keep_alive_timeout(c->conn,
                                       ep->cfg.keepalive_ms *
                                           NGTCP2_MILLISECONDS);
  sni = opts != NULL ? opts->server_name : NULL;
  rv = uvq__tls_conn_init(c, sni, opts ? opts->session_ticket : NULL,
                          opts ? opts->session_ticket_len : 0);
  if (rv == 0)
    rv = uvq__ep_add_cid(c, scid.data, scid.datalen);
  if (rv != 0) {
    uvq__conn_free(c);
    return rv;
  }
  link_conn(c);
  *out = c;
  uvq__ep_mark_dirty(c);
  return 0;
}

/* ---- closing ------------------------------------------------------------- */

/* Tells the application the connection is over, once, and always from
 * the loop: called from the application (uvq_quic_conn_close, endpoint
 * close), the report waits for the endpoint's next flush. */
void uvq__conn_report_closed(uvq_quic_conn_t* c) {
  struct uvq__quic_stream* s;
  size_t i;

  if (c->state == UVQ__CONN_DEAD || c->closed_reported)
    return;
  if (c->ep->depth == 0) {
    c->closed_pending = 1;
    uvq__ep_mark_dirty(c);
    return;
  }
  c->closed_pending = 0;
  c->closed_reported = 1;
  if (c->is_server && !c->handshake_reported && c->ep->nhandshakes > 0)
    c->ep->nhandshakes--;
  c->handshake_reported = 1;
  /* Datagrams that never went are lost, and writes that can no longer be
   * acknowledged complete, first. */
  while (c->dgram_head != NULL) {
    struct uvq__quic_dgram* d = c->dgram_head;
    c->dgram_head = d->next;
    c->dgram_count--;
    if (c->ep->cb.datagram_lost != NULL)
      c->ep->cb.datagram_lost(c, d->id);
    free(d);
  }
  c->dgram_tail = NULL;
  for (i = 0; i < c->streams.cap; i++) {
    s = c->streams.slots[i].value;
    if (s != NULL)
      uvq__stream_complete_writes(s, 1, UV_ECANCELED);
  }
  if (c->ep->cb.closed != NULL)
    c->ep->cb.closed(c, &c->error);
}

static ngtcp2_duration closing_period(uvq_quic_conn_t* c) {
  /* RFC 9000, 10.2: at least three times the current PTO. */
  return 3 * ngtcp2_conn_get_pto(c->conn);
}

static void enter_lingering(uvq_quic_conn_t* c, int state, ngtcp2_tstamp ts) {
  c->state = state;
  uvq__heap_set(&c->ep->timers, &c->timer, ts + closing_period(c));
  uvq__ep_update_timer(c->ep);
}

void uvq__conn_close_local(uvq_quic_conn_t* c, int kind, uint64_t code,
                           int liberr) {
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi;
  ngtcp2_ccerr ccerr;
  uint8_t buf[UVQ__MAX_UDP_PAYLOAD];
  ngtcp2_ssize n;
  ngtcp2_tstamp ts;

  if (c->state >= UVQ__CONN_CLOSING)
    return;
  if (c->in_ngtcp2) {
    c->close_pending = 1;
    c->close_pending_kind = kind;
    c->close_pending_code = code;
    return;
  }
  ngtcp2_ccerr_default(&ccerr);
  if (kind == UVQ_QUIC_ERROR_APPLICATION)
    ngtcp2_ccerr_set_application_error(
        &ccerr, code, (const uint8_t*) c->reason,
        c->reason ? strlen(c->reason) : 0);
  else if (liberr != 0)
    ngtcp2_ccerr_set_liberr(&ccerr, liberr, NULL, 0);
  else
    ngtcp2_ccerr_set_transport_error(&ccerr, code, NULL, 0);

  c->error.kind = kind;
  c->error.remote = 0;
  c->error.code = ccerr.error_code;
  c->error.library_error = liberr;
  c->error.reason = c->reason;
  c->error.reasonlen = c->reason ? strlen(c->reason) : 0;

  ts = uvq__conn_ts(c, uvq__ep_now(c->ep));
  ngtcp2_path_storage_zero(&ps);
  n = ngtcp2_conn_write_connection_close(c->conn, &ps.path, &pi, buf,
                                         sizeof(buf), &ccerr, ts);
  if (n > 0) {
    c->close_pkt = malloc((size_t) n);
    if (c->close_pkt != NULL) {
      memcpy(c->close_pkt, buf, (size_t) n);
      c->close_pktlen = (size_t) n;
      ngtcp2_path_storage_init(&c->close_path, ps.path.local.addr,
                               ps.path.local.addrlen, ps.path.remote.addr,
                               ps.path.remote.addrlen, NULL);
      uvq__ep_stage(c->ep, &c->close_path.path, pi.ecn, buf, (size_t) n, 0);
    }
  }
  enter_lingering(c, UVQ__CONN_CLOSING, ts);
  uvq__conn_report_closed(c);
}

int uvq_quic_conn_close(uvq_quic_conn_t* c, uint64_t app_error,
                        const char* reason) {
  if (c == NULL)
    return UV_EINVAL;
  if (c->state >= UVQ__CONN_CLOSING || c->close_pending)
    return UV_EALREADY;
  free(c->reason);
  c->reason = reason ? strdup(reason) : NULL;
  uvq__conn_close_local(c, UVQ_QUIC_ERROR_APPLICATION, app_error, 0);
  if (!c->in_ngtcp2)
    uvq__ep_flush(c->ep);
  return 0;
}

/* Ends the connection without a word to the peer (idle timeout, handshake
 * timeout, a packet ngtcp2 says to drop the connection for). */
static void close_silently(uvq_quic_conn_t* c, int kind, int liberr) {
  if (c->error.kind != UVQ_QUIC_ERROR_STATELESS_RESET) {
    c->error.kind = kind;
    c->error.library_error = liberr;
  }
  uvq__conn_report_closed(c);
  c->state = UVQ__CONN_DEAD;
  uvq__conn_release(c);
}

/* Turns an error from ngtcp2 into the connection's end. */
void uvq__conn_handle_error(uvq_quic_conn_t* c, int rv, ngtcp2_tstamp ts) {
  const ngtcp2_ccerr* cc;

  switch (rv) {
    case NGTCP2_ERR_DRAINING:
      /* The peer closed: record what it said, stay silent for the
       * draining period (RFC 9000, 10.2.2). */
      cc = ngtcp2_conn_get_ccerr(c->conn);
      if (c->error.kind != UVQ_QUIC_ERROR_STATELESS_RESET) {
        c->error.kind = cc->type == NGTCP2_CCERR_TYPE_APPLICATION
                            ? UVQ_QUIC_ERROR_APPLICATION
                            : UVQ_QUIC_ERROR_TRANSPORT;
        c->error.remote = 1;
        c->error.code = cc->error_code;
        if (cc->reasonlen > 0) {
          free(c->reason);
          c->reason = malloc(cc->reasonlen + 1);
          if (c->reason != NULL) {
            memcpy(c->reason, cc->reason, cc->reasonlen);
            c->reason[cc->reasonlen] = '\0';
            c->error.reason = c->reason;
            c->error.reasonlen = cc->reasonlen;
          }
        }
      }
      enter_lingering(c, UVQ__CONN_DRAINING, ts);
      uvq__conn_report_closed(c);
      return;
    case NGTCP2_ERR_IDLE_CLOSE:
      close_silently(c, UVQ_QUIC_ERROR_IDLE, 0);
      return;
    case NGTCP2_ERR_HANDSHAKE_TIMEOUT:
      close_silently(c, UVQ_QUIC_ERROR_HANDSHAKE_TIMEOUT, 0);
      return;
    case NGTCP2_ERR_DROP_CONN:
      close_silently(c, UVQ_QUIC_ERROR_TRANSPORT, rv);
      return;
    case NGTCP2_ERR_RECV_VERSION_NEGOTIATION:
      close_silently(c, UVQ_QUIC_ERROR_VERSION, rv);
      return;
    case NGTCP2_ERR_CALLBACK_FAILURE:
      if (c->tls_alert != 0) {
        uvq__conn_close_local(c, UVQ_QUIC_ERROR_TRANSPORT,
                              NGTCP2_CRYPTO_ERROR + c->tls_alert, 0);
        return;
      }
      /* A callback failed after asking for an application close (an
       * application protocol saying why it failed, such as HTTP/3 with
       * its error code, RFC 9114, 8): that close is the one sent. */
      if (c->close_pending &&
          c->close_pending_kind == UVQ_QUIC_ERROR_APPLICATION) {
        uvq__conn_run_pending_close(c);
        return;
      }
      uvq__conn_close_local(c, UVQ_QUIC_ERROR_TRANSPORT,
                            ngtcp2_err_infer_quic_transport_error_code(rv), rv);
      return;
    case NGTCP2_ERR_CRYPTO:
      uvq__conn_close_local(c, UVQ_QUIC_ERROR_TRANSPORT,
                            NGTCP2_CRYPTO_ERROR +
                                ngtcp2_conn_get_tls_alert(c->conn),
                            0);
      return;
    default:
      uvq__conn_close_local(c, UVQ_QUIC_ERROR_TRANSPORT,
                            ngtcp2_err_infer_quic_transport_error_code(rv), rv);
      return;
  }
}

/* After ngtcp2 returned: a close the application asked for inside a
 * callback. */
void uvq__conn_run_pending_close(uvq_quic_conn_t* c) {
  if (c->close_pending && c->state < UVQ__CONN_CLOSING) {
    c->close_pending = 0;
    uvq__conn_close_local(c, c->close_pending_kind, c->close_pending_code, 0);
  }
}

int uvq_quic_conn_set_app_versioned(uvq_quic_conn_t* c,
                                    int callbacks_version,
                                    const uvq_quic_app_callbacks_t* callbacks,
                                    void* app_data) {
  uvq_quic_app_callbacks_t cb;

  if (c == NULL)
    return UV_EINVAL;
  if (callbacks == NULL) {
    c->app = NULL;
    c->app_data = NULL;
    return 0;
  }
  if (uvq__quic_app_callbacks_load(callbacks_version, callbacks, &cb) != 0 ||
      cb.send_stream_data == NULL || cb.recv_stream_data == NULL)
    return UV_EINVAL;
  /* Streams opened before would be half the endpoint callbacks' and half
   * the protocol's. */
  if (c->streams.len > 0)
    return UV_EBUSY;
  c->app_cb = cb;
  c->app = &c->app_cb;
  c->app_data = app_data;
  return 0;
}

void* uvq_quic_conn_get_app_data(const uvq_quic_conn_t* c) {
  return c != NULL ? c->app_data : NULL;
}

void uvq_quic_conn_want_write(uvq_quic_conn_t* c) {
  if (c != NULL && c->state < UVQ__CONN_CLOSING)
    uvq__ep_mark_dirty(c);
}

/* ---- freeing ---------------------------------------------------------------- */

void uvq__conn_release(uvq_quic_conn_t* c) {
  uvq_quic_endpoint_t* ep;
  uvq_quic_conn_t** pp;

  ep = c->ep;
  uvq__heap_remove(&ep->timers, &c->timer);
  /* Unlinked now so that no dispatch, flush or timer reaches it again. */
  while (c->ncids > 0)
    uvq__ep_remove_cid(c, c->cids[0].data, c->cids[0].len);
  while (c->ntokens > 0)
    uvq__ep_remove_token(c, c->tokens[0].data);
  if (c->dirty) {
    for (pp = &ep->dirty; *pp != NULL; pp = &(*pp)->next_dirty) {
      if (*pp == c) {
        *pp = c->next_dirty;
        break;
      }
    }
    c->dirty = 0;
  }
  if (c->prev != NULL)
    c->prev->next = c->next;
  else if (ep->conns == c)
    ep->conns = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  c->next = c->prev = NULL;
  ep->nconns--;
  c->next_dead = ep->dead;
  ep->dead = c;
}

/* A server connection the application never accepted. */
void uvq__conn_discard(uvq_quic_conn_t* c) {
  if (c->is_server && !c->handshake_reported && c->ep->nhandshakes > 0)
    c->ep->nhandshakes--;
  c->handshake_reported = 1;
  c->closed_reported = 1;
  c->state = UVQ__CONN_DEAD;
  uvq__conn_release(c);
}

void uvq__conn_free(uvq_quic_conn_t* c) {
  struct uvq__quic_dgram* d;
  struct uvq__quic_stream* s;
  size_t i;

  for (i = 0; i < c->streams.cap; i++) {
    s = c->streams.slots[i].value;
    if (s != NULL) {
      uvq__stream_complete_writes(s, 1, UV_ECANCELED);
      free(s);
    }
  }
  uvq__cidmap_free(&c->streams);
  while ((d = c->dgram_head) != NULL) {
    c->dgram_head = d->next;
    free(d);
  }
  while (c->ncids > 0)
    uvq__ep_remove_cid(c, c->cids[0].data, c->cids[0].len);
  while (c->ntokens > 0)
    uvq__ep_remove_token(c, c->tokens[0].data);
  uvq__heap_remove(&c->ep->timers, &c->timer);
  if (c->conn != NULL)
    ngtcp2_conn_del(c->conn);
  uvq__tls_conn_free(c);
  if (c->qlog != NULL)
    fclose(c->qlog);
  free(c->cids);
  free(c->tokens);
  free(c->close_pkt);
  free(c->reason);
  free(c);
}

/* The kernel reported the peer unreachable (ICMP, through the socket's
 * error queue). ICMP is not authenticated, so it may only end a connection
 * that has not finished its handshake, and only a client's, which knows
 * whom it tried to reach (RFC 9000, 14.2.1 allows this much). */
void uvq__conn_unreachable(uvq_quic_conn_t* c, int uv_error) {
  if (c->is_server || c->state != UVQ__CONN_HANDSHAKING || c->in_ngtcp2)
    return;
  c->error.kind = UVQ_QUIC_ERROR_UNREACHABLE;
  c->error.uv_error = uv_error;
  uvq__conn_report_closed(c);
  c->state = UVQ__CONN_DEAD;
  uvq__conn_release(c);
}

/* ---- the public connection API -------------------------------------------- */

void* uvq_quic_conn_get_data(const uvq_quic_conn_t* c) {
  return c->user_data;
}

void uvq_quic_conn_set_data(uvq_quic_conn_t* c, void* data) {
  c->user_data = data;
}

uvq_quic_endpoint_t* uvq_quic_conn_endpoint(uvq_quic_conn_t* c) {
  return c->ep;
}

int uvq_quic_conn_is_server(const uvq_quic_conn_t* c) {
  return c->is_server;
}

const char* uvq_quic_conn_alpn(const uvq_quic_conn_t* c, size_t* len) {
  if (len != NULL)
    *len = c->alpn != NULL ? c->alpnlen : 0;
  return c->alpn;
}

int uvq_quic_conn_get_path(const uvq_quic_conn_t* c,
                           struct sockaddr_storage* local,
                           struct sockaddr_storage* remote) {
  const ngtcp2_path* p;

  if (c == NULL || c->conn == NULL)
    return UV_EINVAL;
  p = ngtcp2_conn_get_path(c->conn);
  if (local != NULL) {
    memset(local, 0, sizeof(*local));
    memcpy(local, p->local.addr, (size_t) p->local.addrlen);
  }
  if (remote != NULL) {
    memset(remote, 0, sizeof(*remote));
    memcpy(remote, p->remote.addr, (size_t) p->remote.addrlen);
  }
  return 0;
}

int uvq_quic_conn_get_stats(uvq_quic_conn_t* c, uvq_quic_conn_stats_t* st) {
  ngtcp2_conn_info ci;

  if (c == NULL || st == NULL || c->conn == NULL)
    return UV_EINVAL;
  memset(st, 0, sizeof(*st));
  ngtcp2_conn_get_conn_info(c->conn, &ci);
  st->smoothed_rtt_ns = ci.smoothed_rtt;
  st->min_rtt_ns = ci.min_rtt;
  st->latest_rtt_ns = ci.latest_rtt;
  st->cwnd = ci.cwnd;
  st->bytes_in_flight = ci.bytes_in_flight;
  st->bytes_sent = c->bytes_sent;
  st->bytes_received = c->bytes_received;
  st->packets_sent = c->packets_sent;
  st->packets_received = c->packets_received;
  st->sends = c->sends;
  memcpy(st->ecn_sent, c->ecn_sent, sizeof(st->ecn_sent));
  memcpy(st->ecn_received, c->ecn_received, sizeof(st->ecn_received));
  st->ecn_marking = c->last_tx_ecn == NGTCP2_ECN_ECT_0;
  st->path_mtu = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->conn);
  st->version = ngtcp2_conn_get_negotiated_version(c->conn);
  st->zero_rtt = c->zero_rtt;
  st->resumed = c->resumed;
  return 0;
}

int uvq_quic_conn_update_key(uvq_quic_conn_t* c) {
  int rv;

  if (c == NULL || c->state >= UVQ__CONN_CLOSING)
    return UV_EINVAL;
  /* ngtcp2 asserts the handshake is over and may not be re-entered from
   * its own callbacks: ask only then. */
  if (c->state != UVQ__CONN_OPEN || c->in_ngtcp2 ||
      !ngtcp2_conn_get_handshake_completed(c->conn))
    return UV_EAGAIN;
  rv = ngtcp2_conn_initiate_key_update(c->conn, uvq__conn_ts(c, uvq__ep_now(c->ep)));
  if (rv != 0)
    return UV_EAGAIN;
  uvq__ep_mark_dirty(c);
  return 0;
}

int uvq_quic_conn_migrate(uvq_quic_conn_t* c, const struct sockaddr* local) {
  struct sockaddr_storage bound;
  const ngtcp2_path* cur;
  ngtcp2_path path;
  int err;
  int rv;

  if (c == NULL || local == NULL)
    return UV_EINVAL;
  if (c->is_server)
    return UV_EINVAL;
  if (c->state != UVQ__CONN_OPEN || c->in_ngtcp2)
    return UV_EAGAIN;
  cur = ngtcp2_conn_get_path(c->conn);
  if (local->sa_family != cur->remote.addr->sa_family)
    return UV_EAFNOSUPPORT;
  if (c->ep->loop == NULL) {
    /* A core endpoint's application has the socket for it already. */
    if (uvq__ep_addr_port(local) == 0)
      return UV_EINVAL;
    memset(&bound, 0, sizeof(bound));
    memcpy(&bound, local,
           uvq__addr_len(local));
  } else {
    /* A new socket for the new local port; the old one stays with the
     * endpoint for any connection still using it. */
    err = uvq__ep_add_socket(c->ep, local, &bound);
    if (err)
      return err;
  }
  path.local.addr = (ngtcp2_sockaddr*) &bound;
  path.local.addrlen = uvq__addr_len((const struct sockaddr*) &bound);
  path.remote = cur->remote;
  path.user_data = c->ep;
  /* Validated migration: ngtcp2 probes the new path with PATH_CHALLENGE and
   * moves to it once the server answers (RFC 9000, 9.2). */
  rv = ngtcp2_conn_initiate_migration(c->conn, &path, uvq__conn_ts(c, uvq__ep_now(c->ep)));
  if (rv != 0) {
    if (c->ep->loop != NULL)
      uvq__ep_remove_socket(c->ep, (struct sockaddr*) &bound);
    return rv == NGTCP2_ERR_CONN_ID_BLOCKED ? UV_EAGAIN : UV_EINVAL;
  }
  uvq__ep_mark_dirty(c);
  return 0;
}

