/* The libuv adapter of the endpoint core: a uvq UDP handle (the
 * endpoint's own, or one the application lent with
 * uvq_quic_endpoint_open), further sockets for a client that migrates, a
 * timer for the core's next expiry, and a check handle that flushes after
 * each poll phase. It feeds the core received datagrams with one
 * timestamp per receive batch, and is the core's transmit sink: sendmmsg,
 * with queued sends when a socket is full. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void on_timer(uv_timer_t* t);
static void on_flush(uv_check_t* check);
static void on_alloc(uvq_udp_t* udp, size_t suggested, uv_buf_t* buf);
static void on_recv(uvq_udp_t* udp, const uvq_udp_recv_t* r);
static unsigned int bind_flags(const uvq_quic_endpoint_t* ep);
static void handle_done(uvq_quic_endpoint_t* ep);
static void start_flush(uvq_quic_endpoint_t* ep);
static int send_staged(uvq_quic_endpoint_t* ep,
                       const uvq_udp_mmsg_t* staged,
                       unsigned int n);
static uvq_udp_t* socket_for(uvq_quic_endpoint_t* ep,
                             const struct sockaddr* local);

int uvq__uv_init(uvq_quic_endpoint_t* ep, uv_loop_t* loop) {
  int err;

  err = uvq_udp_init(loop, &ep->own_udp);
  if (err)
    return err;
  /* Nothing below fails, so no libuv handle needs undoing. */
  ep->loop = loop;
  /* The adapter is the core's transmit sink and its wake-up, as an
   * application is for a core endpoint. */
  ep->io.version = UVQ_QUIC_IO_VERSION;
  ep->io.send = send_staged;
  ep->io.wake = start_flush;
  ep->udp = &ep->own_udp;
  ep->own_udp.data = ep;
  uv_timer_init(loop, &ep->timer);
  ep->timer.data = ep;
  uv_check_init(loop, &ep->flush);
  ep->flush.data = ep;
  uv_idle_init(loop, &ep->nudge);
  ep->nudge.data = ep;
  return 0;
}

/* ---- the timer and the flush ------------------------------------------------ */

void uvq__uv_arm_timer(uvq_quic_endpoint_t* ep) {
  struct uvq__heap_node* top;
  uint64_t now;
  uint64_t ms;

  top = uvq__heap_top(&ep->timers);
  if (top == NULL) {
    uv_timer_stop(&ep->timer);
    ep->timer_due = 0;
    return;
  }
  if (top->key == ep->timer_due && uv_is_active((uv_handle_t*) &ep->timer))
    return;
  ep->timer_due = top->key;
  now = uvq__now();
  /* libuv timers count milliseconds; round up so that the timer never
   * fires before the deadline and spins. */
  ms = top->key > now ? (top->key - now + 999999) / 1000000 : 0;
  uv_timer_start(&ep->timer, on_timer, ms, 0);
}

static void on_timer(uv_timer_t* t) {
  uvq__ep_on_timer(t->data);
}

static void on_nudge(uv_idle_t* idle) {
  (void) idle;
}

/* The flush runs in the check phase, right after the poll phase that read
 * the packets. Work asked for elsewhere (a timer, the application) must not
 * wait for the poll phase to block first: an active idle handle makes that
 * poll return at once. */
static void start_flush(uvq_quic_endpoint_t* ep) {
  uv_check_start(&ep->flush, on_flush);
  uv_idle_start(&ep->nudge, on_nudge);
}

static void stop_flush(uvq_quic_endpoint_t* ep) {
  ep->flush_active = 0;
  uv_check_stop(&ep->flush);
  uv_idle_stop(&ep->nudge);
}

static void on_flush(uv_check_t* check) {
  uvq_quic_endpoint_t* ep;

  ep = check->data;
  uvq__ep_enter(ep);
  ep->rx_since_flush = 0;
  uvq__ep_write_dirty(ep);
  uvq__ep_flush(ep);
  if (ep->dirty == NULL || ep->tx_blocked || ep->closing)
    stop_flush(ep);
  uvq__ep_leave(ep);
  uvq__ep_update_timer(ep);
}

/* ---- receiving --------------------------------------------------------------- */

#define UVQ__ACK_EVERY 32

static void ack_if_due(uvq_quic_endpoint_t* ep) {
  if (!ep->batch_end)
    return;
  ep->batch_end = 0;
  if (ep->rx_since_flush < UVQ__ACK_EVERY || ep->closing)
    return;
  ep->rx_since_flush = 0;
  uvq__ep_enter(ep);
  uvq__ep_write_dirty(ep);
  uvq__ep_flush(ep);
  uvq__ep_leave(ep);
}

static void on_alloc(uvq_udp_t* udp, size_t suggested, uv_buf_t* buf) {
  uvq_quic_endpoint_t* ep;
  uint8_t* grown;

  ep = udp->data;
  /* uvq never hands out a second buffer before the first comes back, so
   * one receive buffer per endpoint serves every read. */
  if (ep->rxcap < suggested) {
    grown = realloc(ep->rxbuf, suggested);
    if (grown != NULL) {
      ep->rxbuf = grown;
      ep->rxcap = suggested;
    }
  }
  buf->base = (char*) ep->rxbuf;
  buf->len = ep->rxcap;
  ep->rx_held = 1;
}

static void receive(uvq_quic_endpoint_t* ep,
                    uvq_udp_t* udp,
                    const uvq_udp_recv_t* r) {
  struct sockaddr_storage local;
  ngtcp2_pkt_info pi;
  ngtcp2_path path;
  ngtcp2_tstamp ts;
  int namelen;

  /* One timestamp per receive batch: the datagrams of a batch arrived
   * together, and reading the clock per datagram showed in profiles. The
   * batch ends with the callback that returns its buffer. */
  if (!(r->flags & UVQ_UDP_MMSG_CHUNK)) {
    ts = ep->batch_ts != 0 ? ep->batch_ts : uvq__now();
    ep->batch_ts = 0;
    ep->batch_end = 1;
  } else {
    if (ep->batch_ts == 0)
      ep->batch_ts = uvq__now();
    ts = ep->batch_ts;
  }
  if ((r->flags & UVQ_UDP_RECV_ERRQUEUE) && r->addr != NULL && !ep->closing &&
      (r->error == UV_ECONNREFUSED || r->error == UV_EHOSTUNREACH ||
       r->error == UV_ENETUNREACH)) {
    uvq_quic_conn_t* c;
    uvq_quic_conn_t* next;
    /* Clients still handshaking with that peer give up at once instead of
     * waiting for the handshake timeout. */
    uvq__ep_enter(ep);
    for (c = ep->conns; c != NULL; c = next) {
      struct sockaddr_storage remote;
      next = c->next;
      if (uvq_quic_conn_get_path(c, NULL, &remote) == 0 &&
          memcmp(&remote, r->addr,
                 uvq__addr_len(r->addr)) ==
              0)
        uvq__conn_unreachable(c, r->error);
    }
    uvq__ep_leave(ep);
  }
  if (r->nread <= 0 || r->addr == NULL || ep->closing ||
      (r->flags & (UVQ_UDP_RECV_ERRQUEUE | UVQ_UDP_PARTIAL))) {
    ack_if_due(ep);
    return;
  }
  if (r->local.ss_family != 0) {
    local = r->local;
  } else {
    namelen = sizeof(local);
    uvq_udp_getsockname(udp, (struct sockaddr*) &local, &namelen);
  }
  uvq__ep_make_path(ep, &path, (struct sockaddr*) &local, r->addr);
  memset(&pi, 0, sizeof(pi));
  pi.ecn = (uint8_t) r->ecn;
  uvq__ep_input(ep, &path, &pi, (const uint8_t*) r->buf->base,
                (size_t) r->nread, ts);
  ack_if_due(ep);
}

static void maybe_give_back(uvq_quic_endpoint_t* ep);

static void on_recv(uvq_udp_t* udp, const uvq_udp_recv_t* r) {
  uvq_quic_endpoint_t* ep;

  ep = udp->data;
  /* A callback without MMSG_CHUNK hands the receive buffer back. */
  if (!(r->flags & UVQ_UDP_MMSG_CHUNK))
    ep->rx_held = 0;
  receive(ep, udp, r);
  if (ep->finished)
    maybe_give_back(ep);
}

/* ---- binding ------------------------------------------------------------------ */

/* What binding and opening share, once ep->udp has a socket: fill in the
 * preferred addresses' port, attach the workers' steering program, and
 * start receiving. */
static int start_socket(uvq_quic_endpoint_t* ep) {
  struct sockaddr_storage bound;
  uint16_t port;
  int namelen;
  int err;

  namelen = sizeof(bound);
  err = uvq_udp_getsockname(ep->udp, (struct sockaddr*) &bound, &namelen);
  if (err)
    return err;
  port = bound.ss_family == AF_INET6
             ? ((struct sockaddr_in6*) &bound)->sin6_port
             : ((struct sockaddr_in*) &bound)->sin_port;
  ep->udp_addr = bound;
  if ((ep->has_preferred_v4 && ep->preferred_v4.sin_port != 0 &&
       ep->preferred_v4.sin_port != port) ||
      (ep->has_preferred_v6 && ep->preferred_v6.sin6_port != 0 &&
       ep->preferred_v6.sin6_port != port))
    return UV_EINVAL;
  if (ep->has_preferred_v4 && ep->preferred_v4.sin_port == 0)
    ep->preferred_v4.sin_port = port;
  if (ep->has_preferred_v6 && ep->preferred_v6.sin6_port == 0)
    ep->preferred_v6.sin6_port = port;
  if (ep->cfg.worker_count > 1) {
    /* Every worker attaches the same program; the last one attached serves
     * the whole group. Without it the kernel's hash still spreads the
     * datagrams, so this is reported, not refused. */
    err = uvq__ep_attach_steering(ep);
    ep->stats.steering =
        err == 0 ? UVQ_QUIC_STEERING_BPF : UVQ_QUIC_STEERING_KERNEL_HASH;
    ep->stats.steering_error = err;
  }
  err = uvq_udp_recv_start2(ep->udp, on_alloc, on_recv);
  if (err)
    return err;
  ep->bound = 1;
  return 0;
}

int uvq_quic_endpoint_bind(uvq_quic_endpoint_t* ep,
                           const struct sockaddr* addr) {
  unsigned int flags;
  uint16_t port;
  int size;
  int err;

  if (ep == NULL || addr == NULL || ep->closing || ep->loop == NULL)
    return UV_EINVAL;
  if (ep->bound)
    return UV_EALREADY;
  port = addr->sa_family == AF_INET6
             ? ((const struct sockaddr_in6*) addr)->sin6_port
             : ((const struct sockaddr_in*) addr)->sin_port;
  /* Packets to a preferred address must reach this socket: the same port,
   * or port 0 there, which becomes the socket's. */
  if ((ep->has_preferred_v4 && ep->preferred_v4.sin_port != 0 &&
       ep->preferred_v4.sin_port != port) ||
      (ep->has_preferred_v6 && ep->preferred_v6.sin6_port != 0 &&
       ep->preferred_v6.sin6_port != port))
    return UV_EINVAL;
  flags = bind_flags(ep);
  /* GRO coalesces datagrams by 4-tuple, and the steering program sees only
   * the first of a coalesced batch: the packets of two connections from
   * one client socket (a client that multiplexes them, like uvq's own)
   * would reach one worker. Workers read datagram by datagram. */
  if (ep->cfg.worker_count > 1)
    flags = (flags & ~(unsigned int) UVQ_UDP_GRO) | UVQ_UDP_REUSEPORT;
  err = uvq_udp_bind(ep->udp, addr, flags);
  if (err)
    return err;
  /* Room for bursts: 4 MiB where the system allows it (the kernel caps
   * the request at net.core.[rw]mem_max silently). */
  size = 4 << 20;
  uvq_udp_recv_buffer_size(ep->udp, &size);
  size = 4 << 20;
  uvq_udp_send_buffer_size(ep->udp, &size);
  return start_socket(ep);
}

int uvq_quic_endpoint_open(uvq_quic_endpoint_t* ep, uvq_udp_t* udp) {
  unsigned int flags;
  uv_os_fd_t fd;
  void* saved;
  int err;

  if (ep == NULL || udp == NULL || ep->loop == NULL || ep->closing ||
      udp->loop != ep->loop || udp == &ep->own_udp)
    return UV_EINVAL;
  if (ep->bound)
    return UV_EALREADY;
  if (uvq_udp_fileno(udp, &fd) != 0)
    return UV_EBADF;
  /* The application chose the socket's buffers and reuseport group; the
   * endpoint only enables what it reads (configure is additive). */
  flags = bind_flags(ep);
  if (ep->cfg.worker_count > 1)
    flags &= ~(unsigned int) UVQ_UDP_GRO;
  err = uvq_udp_configure(udp, flags);
  if (err)
    return err;
  saved = udp->data;
  udp->data = ep;
  ep->udp = udp;
  err = start_socket(ep);
  if (err) {
    udp->data = saved;
    ep->udp = &ep->own_udp;
    return err;
  }
  ep->udp_saved_data = saved;
  ep->udp_borrowed = 1;
  return 0;
}

/* ---- sending -------------------------------------------------------------------- */


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
  if (ep->finished) {
    maybe_give_back(ep);
    return;
  }
  if (!ep->closing && ep->dirty != NULL)
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

/* The adapter's transmit sink. Each run of messages goes through the
 * socket its local port belongs to, with sendmmsg. When a socket is full,
 * what is left for it and after it is handed to queued sends, which keep
 * staging busy (tx_blocked) until they complete. A message that cannot go
 * (EMSGSIZE for a path MTU probe larger than the route allows, an
 * unreachable network) is lost like a packet dropped on the path, and loss
 * recovery or PMTUD deal with it. Takes everything. */
static int send_staged(uvq_quic_endpoint_t* ep,
                       const uvq_udp_mmsg_t* staged,
                       unsigned int n) {
  uvq_udp_mmsg_t msgs[UVQ__TX_MSGS];
  uvq_udp_t* sock[UVQ__TX_MSGS];
  unsigned int off;
  unsigned int i;
  unsigned int j;
  int r;

  for (i = 0; i < n; i++) {
    msgs[i] = staged[i];
    sock[i] = socket_for(ep, staged[i].local);
    /* A socket bound to a specific address needs no control message to
     * send from it. */
    if (uvq__addr_is_wildcard(staged[i].local))
      msgs[i].local = NULL;
  }
  off = 0;
  while (off < n) {
    /* The run of messages that share this message's socket. */
    for (j = off + 1; j < n && sock[j] == sock[off]; j++)
      ;
    r = uvq_udp_try_send_batch(sock[off], msgs + off, j - off, 0);
    if (r > 0) {
      off += (unsigned int) r;
      continue;
    }
    if (r == UV_EAGAIN) {
      while (off < n) {
        for (j = off + 1; j < n && sock[j] == sock[off]; j++)
          ;
        if (queue_rest(ep, sock[off], msgs + off, j - off) != 0)
          break;
        off = j;
      }
      break;
    }
    off++;
  }
  return (int) n;
}

/* ---- sockets --------------------------------------------------------------- */

uint16_t uvq__ep_addr_port(const struct sockaddr* sa) {
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6*) sa)->sin6_port);
  return ntohs(((const struct sockaddr_in*) sa)->sin_port);
}

/* The socket a path's packets leave from: the one bound to its local port
 * (a client that migrated has more than one). */
static uvq_udp_t* socket_for(uvq_quic_endpoint_t* ep,
                             const struct sockaddr* local) {
  struct uvq__quic_sock* s;
  uint16_t port;

  if (ep->socks == NULL)
    return ep->udp;
  port = uvq__ep_addr_port(local);
  for (s = ep->socks; s != NULL; s = s->next)
    if (s->port == port)
      return &s->udp;
  return ep->udp;
}

static unsigned int bind_flags(const uvq_quic_endpoint_t* ep) {
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
  err = uvq_udp_bind(&s->udp, addr, bind_flags(ep));
  if (err == 0) {
    namelen = sizeof(*bound);
    err = uvq_udp_getsockname(&s->udp, (struct sockaddr*) bound, &namelen);
  }
  if (err == 0)
    err = uvq_udp_recv_start2(&s->udp, on_alloc, on_recv);
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

/* ---- closing ----------------------------------------------------------------------- */

static void handle_done(uvq_quic_endpoint_t* ep) {
  if (--ep->pending_handles > 0)
    return;
  if (ep->close_cb != NULL)
    ep->close_cb(ep);
  uvq__ep_free(ep);
}

/* A closing endpoint gives the application's socket back once nothing of
 * the endpoint's is left in it: no queued send (they read the staging
 * area and call back), and not the receive buffer (the handle would keep
 * it, parked, for whoever receives next). Until then it keeps receiving,
 * and drops what it reads. */
static void maybe_give_back(uvq_quic_endpoint_t* ep) {
  if (!ep->udp_borrowed || ep->udp_given_back || ep->rx_held ||
      ep->tx_pending > 0)
    return;
  ep->udp_given_back = 1;
  uvq_udp_recv_stop(ep->udp);
  ep->udp->data = ep->udp_saved_data;
  handle_done(ep);
}

static void on_handle_closed(uv_handle_t* h) {
  handle_done(h->data);
}

/* The endpoint's own UDP handle and every extra socket's have the
 * endpoint as their data. */
static void on_udp_closed(uvq_udp_t* udp) {
  handle_done(udp->data);
}

/* Closes the handles; close_cb comes after the last one is closed. */
void uvq__uv_close(uvq_quic_endpoint_t* ep) {
  struct uvq__quic_sock* s;

  ep->pending_handles = UVQ__EP_LOOP_HANDLES;
  /* The application's socket stays open (maybe_give_back). */
  if (ep->udp_borrowed)
    ep->pending_handles++;
  for (s = ep->socks; s != NULL; s = s->next) {
    ep->pending_handles++;
    uvq_udp_close(&s->udp, on_udp_closed);
  }
  uv_close((uv_handle_t*) &ep->timer, on_handle_closed);
  uv_close((uv_handle_t*) &ep->flush, on_handle_closed);
  uv_close((uv_handle_t*) &ep->nudge, on_handle_closed);
  uvq_udp_close(&ep->own_udp, on_udp_closed);
  maybe_give_back(ep);
}
