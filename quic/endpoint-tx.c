/* The endpoint's send side: packets staged into GSO runs (one path, ECN
 * codepoint and stride each) and handed to the transmit sink: the loop
 * adapter's sendmmsg (endpoint-uv.c) or a core endpoint's io.send. */
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

  m = &ep->txmsgs[i];
  memset(m, 0, sizeof(*m));
  ep->txbufs[i] = uv_buf_init((char*) msg_base(ep, i), (unsigned int) len);
  m->bufs = &ep->txbufs[i];
  m->nbufs = 1;
  memcpy(&ep->txaddr[i], path->remote.addr, (size_t) path->remote.addrlen);
  m->addr = (struct sockaddr*) &ep->txaddr[i];
  /* The path's local address with its port: it names the socket (a client
   * that migrated has several) and the source address. */
  memset(&ep->txlocal[i], 0, sizeof(ep->txlocal[i]));
  memcpy(&ep->txlocal[i], path->local.addr, (size_t) path->local.addrlen);
  m->local = (struct sockaddr*) &ep->txlocal[i];
  m->ecn = ecn;
  m->gso_size = (unsigned int) len;
}

/* Records a packet written at uvq__ep_tx_space(): it joins the current run
 * (same path and ECN codepoint, not longer than the run's stride,
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
  uvq__ep_start_flush(ep);
  return 0;
}

/* Hands every staged message to the sink (io.send: the application's, or
 * the loop adapter's), from tx_off on. Messages whose
 * gso_size equals their length are single datagrams. When the sink takes
 * fewer (a full socket), staging stays busy with the rest (tx_blocked):
 * connections write nothing more until they are taken, so nothing is
 * dropped and nothing is encrypted twice. The loop adapter's sink queues
 * what the socket did not take itself and keeps staging busy until those
 * sends complete. */
int uvq__ep_flush(uvq_quic_endpoint_t* ep) {
  unsigned int n;
  unsigned int i;
  int r;

  n = ep->ntx;
  if (n < UVQ__TX_MSGS && ep->txbufs[n].len > 0)
    n++;
  if (ep->tx_blocked) {
    /* The adapter's queued sends still read the staging area. */
    if (ep->tx_pending > 0 || ep->tx_off >= n)
      return UV_EAGAIN;
  } else {
    if (n == 0)
      return 0;
    for (i = 0; i < n; i++) {
      if (ep->txbufs[i].len <= ep->txmsgs[i].gso_size)
        ep->txmsgs[i].gso_size = 0;
    }
    ep->tx_off = 0;
  }
  r = ep->io.send(ep, ep->txmsgs + ep->tx_off, n - ep->tx_off);
  if (ep->tx_pending > 0)
    return UV_EAGAIN;
  if (r < 0)
    r = 0;
  if ((unsigned int) r < n - ep->tx_off) {
    ep->tx_off += (unsigned int) r;
    ep->tx_blocked = 1;
    return UV_EAGAIN;
  }
  ep->tx_blocked = 0;
  ep->tx_off = 0;
  ep->ntx = 0;
  memset(ep->txbufs, 0, sizeof(ep->txbufs));
  return 0;
}
