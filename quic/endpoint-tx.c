/* The endpoint's send side: packets staged into GSO runs (one path,
 * socket, ECN codepoint and stride each), flushed with sendmmsg through
 * uvq_udp_try_send_batch, queued sends when a socket is full, and the
 * further sockets a client opens to migrate. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int same_addr(const struct sockaddr_storage* a,
                     const ngtcp2_addr* b) {
  return b->addrlen > 0 &&
         memcmp(a, b->addr, (size_t) b->addrlen) == 0;
}

/* Per message bookkeeping lives in the mmsg entries themselves: the buffer
 * length is the fill, gso_size the stride, and the ECN codepoint. */
static uint8_t* msg_base(uvq_quic_endpoint_t* ep, unsigned int i) {
  return ep->txbuf + (size_t) i * 65536;
}

uint8_t* uvq__ep_tx_space(uvq_quic_endpoint_t* ep, size_t* avail) {
  uvq_udp_mmsg_t* m;
  size_t used;

  for (;;) {
    /* The last slot stays free for a packet that cannot join the current
     * run, so an encrypted packet never has to be dropped for lack of
     * room: flush before that could happen. */
    if (ep->ntx >= UVQ__TX_MSGS - 1 &&
        (ep->ntx == UVQ__TX_MSGS || ep->txbufs[ep->ntx].len > 0))
      uvq__ep_flush(ep);
    if (ep->tx_blocked || ep->ntx >= UVQ__TX_MSGS) {
      *avail = 0;
      return NULL;
    }
    m = &ep->txmsgs[ep->ntx];
    used = ep->txbufs[ep->ntx].len;
    /* A packet written after the current run either joins it or, if it
     * cannot, is moved to the next message by uvq__ep_tx_commit. */
    if (used > 0 && (used + UVQ__MAX_UDP_PAYLOAD > 65507 || m->gso_size == 0 ||
                     used % m->gso_size != 0)) {
      ep->ntx++;
      continue;
    }
    *avail = 65536 - used;
    return msg_base(ep, ep->ntx) + used;
  }
}

static void start_msg(uvq_quic_endpoint_t* ep,
                      unsigned int i,
                      const ngtcp2_path* path,
                      int ecn,
                      size_t len) {
  uvq_udp_mmsg_t* m;
  int wildcard;

  m = &ep->txmsgs[i];
  memset(m, 0, sizeof(*m));
  ep->txbufs[i] = uv_buf_init((char*) msg_base(ep, i), (unsigned int) len);
  m->bufs = &ep->txbufs[i];
  m->nbufs = 1;
  memcpy(&ep->txaddr[i], path->remote.addr, (size_t) path->remote.addrlen);
  m->addr = (struct sockaddr*) &ep->txaddr[i];
  memset(&ep->txlocal[i], 0, sizeof(ep->txlocal[i]));
  memcpy(&ep->txlocal[i], path->local.addr, (size_t) path->local.addrlen);
  /* Choose the source address only when it is a specific one: a socket
   * bound to a specific address needs no control message for it. */
  wildcard = 1;
  if (path->local.addr->sa_family == AF_INET)
    wildcard = ((struct sockaddr_in*) path->local.addr)->sin_addr.s_addr == 0;
  else if (path->local.addr->sa_family == AF_INET6)
    wildcard = IN6_IS_ADDR_UNSPECIFIED(
        &((struct sockaddr_in6*) path->local.addr)->sin6_addr);
  m->local = wildcard ? NULL : (struct sockaddr*) &ep->txlocal[i];
  ep->txsock[i] = uvq__ep_socket_for(ep, path->local.addr);
  m->ecn = ecn;
  m->gso_size = (unsigned int) len;
}

/* Records a packet written at uvq__ep_tx_space(): it joins the current run
 * (same path, socket and ECN codepoint, not longer than the run's stride,
 * at most 64 segments; GSO on), or starts the next message. Returns 1 when
 * it started a message. */
int uvq__ep_tx_commit(uvq_quic_endpoint_t* ep,
                      const ngtcp2_path* path,
                      int ecn,
                      size_t len) {
  uvq_udp_mmsg_t* m;
  unsigned int i;
  size_t used;

  i = ep->ntx;
  m = &ep->txmsgs[i];
  used = ep->txbufs[i].len;
  if (used == 0) {
    start_msg(ep, i, path, ecn, len);
    return 1;
  }
  if (ep->cfg.gso && m->ecn == ecn && len <= m->gso_size &&
      ep->txsock[i] == uvq__ep_socket_for(ep, path->local.addr) &&
      same_addr(&ep->txaddr[i], &path->remote) &&
      same_addr(&ep->txlocal[i], &path->local) &&
      used / m->gso_size < UVQ__TX_SEGMENTS) {
    ep->txbufs[i].len += len;
    return 0;
  }
  /* The packet cannot join this run: it starts the next message, in the
   * slot uvq__ep_tx_space() kept free. */
  ep->ntx++;
  memmove(msg_base(ep, ep->ntx), msg_base(ep, i) + used, len);
  start_msg(ep, ep->ntx, path, ecn, len);
  return 1;
}

int uvq__ep_stage(uvq_quic_endpoint_t* ep,
                  const ngtcp2_path* path,
                  int ecn,
                  const uint8_t* data,
                  size_t len,
                  size_t gso_size) {
  uint8_t* p;
  size_t avail;

  p = uvq__ep_tx_space(ep, &avail);
  if (p == NULL || avail < len)
    return UV_ENOBUFS;
  memcpy(p, data, len);
  uvq__ep_tx_commit(ep, path, ecn, len);
  /* A packet sent on its own ends its run. */
  ep->ntx++;
  /* Packets without a connection (Retry, Version Negotiation, resets,
   * refusals) go out with the next flush, which nothing else may be about
   * to run. */
  if (!ep->flush_active && !ep->finished)
    uvq__ep_start_flush(ep);
  return 0;
}

static void on_queued_sent(uvq_udp_send_t* req, int status) {
  uvq_quic_endpoint_t* ep;

  ep = req->data;
  free(req);
  (void) status;
  if (--ep->tx_pending > 0)
    return;
  ep->tx_blocked = 0;
  ep->ntx = 0;
  memset(ep->txbufs, 0, sizeof(ep->txbufs));
  if (!ep->closing && ep->dirty != NULL && !ep->flush_active)
    uvq__ep_start_flush(ep);
}

/* Queues msgs on their socket; the staging area stays busy until the
 * callback. */
static int queue_rest(uvq_quic_endpoint_t* ep, uvq_udp_t* udp,
                      uvq_udp_mmsg_t* msgs, unsigned int n) {
  uvq_udp_send_t* req;
  int r;

  req = malloc(sizeof(*req));
  if (req == NULL)
    return UV_ENOMEM;
  req->data = ep;
  r = uvq_udp_send_batch(req, udp, msgs, n, 0, on_queued_sent);
  if (r != 0) {
    free(req);
    return r;
  }
  ep->tx_pending++;
  ep->tx_blocked = 1;
  return 0;
}

/* Sends every staged message, each run of messages through the socket its
 * path's local port belongs to. Messages whose gso_size equals their
 * length are single datagrams. When a socket is full, what is left for it
 * and after it is handed to queued sends and staging pauses until they
 * complete: nothing is dropped and nothing is encrypted twice. */
int uvq__ep_flush(uvq_quic_endpoint_t* ep) {
  unsigned int n;
  unsigned int i;
  unsigned int j;
  unsigned int off;
  int r;

  if (ep->tx_blocked)
    return UV_EAGAIN;
  n = ep->ntx;
  if (n < UVQ__TX_MSGS && ep->txbufs[n].len > 0)
    n++;
  if (n == 0)
    return 0;
  for (i = 0; i < n; i++) {
    if (ep->txbufs[i].len <= ep->txmsgs[i].gso_size)
      ep->txmsgs[i].gso_size = 0;
  }

  off = 0;
  while (off < n) {
    /* The run of messages that share this message's socket. */
    for (j = off + 1; j < n && ep->txsock[j] == ep->txsock[off]; j++)
      ;
    r = uvq_udp_try_send_batch(ep->txsock[off], ep->txmsgs + off, j - off, 0);
    if (r > 0) {
      off += (unsigned int) r;
      continue;
    }
    if (r == UV_EAGAIN) {
      while (off < n) {
        for (j = off + 1; j < n && ep->txsock[j] == ep->txsock[off]; j++)
          ;
        if (queue_rest(ep, ep->txsock[off], ep->txmsgs + off, j - off) != 0)
          break;
        off = j;
      }
      if (ep->tx_blocked)
        return UV_EAGAIN;
      break;
    }
    /* This message cannot go (EMSGSIZE for a path MTU probe larger than
     * the route allows, an unreachable network): it is lost like a packet
     * dropped on the path, and loss recovery or PMTUD deal with it. */
    off++;
  }
  ep->ntx = 0;
  memset(ep->txbufs, 0, sizeof(ep->txbufs));
  return 0;
}

/* ---- sockets --------------------------------------------------------------- */

uint16_t uvq__ep_addr_port(const struct sockaddr* sa) {
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6*) sa)->sin6_port);
  return ntohs(((const struct sockaddr_in*) sa)->sin_port);
}

/* The socket a path's packets leave from: the one bound to its local port
 * (a client that migrated has more than one). */
uvq_udp_t* uvq__ep_socket_for(uvq_quic_endpoint_t* ep,
                              const struct sockaddr* local) {
  struct uvq__quic_sock* s;
  uint16_t port;

  if (ep->socks == NULL)
    return &ep->udp;
  port = uvq__ep_addr_port(local);
  for (s = ep->socks; s != NULL; s = s->next)
    if (s->port == port)
      return &s->udp;
  return &ep->udp;
}

unsigned int uvq__ep_bind_flags(const uvq_quic_endpoint_t* ep) {
  unsigned int flags;

  /* RECVERR: ICMP unreachable ends a client's handshake at once. */
  flags = UVQ_UDP_RECVPKTINFO | UVQ_UDP_RECVERR;
  if (ep->cfg.ecn)
    flags |= UVQ_UDP_RECVECN;
  if (ep->cfg.pmtud)
    flags |= UVQ_UDP_PMTUD;
  if (ep->cfg.gro)
    flags |= UVQ_UDP_GRO;
  return flags;
}


static void on_sock_removed(uvq_udp_t* udp) {
  free(udp->data);
}

/* Closes the socket bound to bound, opened by uvq__ep_add_socket, when the
 * migration it was for could not start. */
void uvq__ep_remove_socket(uvq_quic_endpoint_t* ep,
                           const struct sockaddr* bound) {
  struct uvq__quic_sock** pp;
  struct uvq__quic_sock* s;
  uint16_t port;

  port = uvq__ep_addr_port(bound);
  for (pp = &ep->socks; (s = *pp) != NULL; pp = &s->next) {
    if (s->port == port) {
      *pp = s->next;
      s->udp.data = s;
      uvq_udp_close(&s->udp, on_sock_removed);
      return;
    }
  }
}

/* Opens another socket of the endpoint, for a client moving to a new
 * local address or port; *bound receives its address. */
int uvq__ep_add_socket(uvq_quic_endpoint_t* ep,
                       const struct sockaddr* addr,
                       struct sockaddr_storage* bound) {
  struct uvq__quic_sock* s;
  int namelen;
  int err;

  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return UV_ENOMEM;
  err = uvq_udp_init(ep->loop, &s->udp);
  if (err) {
    free(s);
    return err;
  }
  s->udp.data = ep;
  s->ep = ep;
  err = uvq_udp_bind(&s->udp, addr, uvq__ep_bind_flags(ep));
  if (err == 0) {
    namelen = sizeof(*bound);
    err = uvq_udp_getsockname(&s->udp, (struct sockaddr*) bound, &namelen);
  }
  if (err == 0)
    err = uvq_udp_recv_start2(&s->udp, uvq__ep_on_alloc, uvq__ep_on_recv);
  if (err) {
    s->closing_only = 1;
    s->next = ep->socks;
    ep->socks = s;
    return err;
  }
  s->port = uvq__ep_addr_port((struct sockaddr*) bound);
  s->next = ep->socks;
  ep->socks = s;
  return 0;
}
