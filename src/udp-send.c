/* The send path: planning messages (kernel GSO, or segmentation in
 * software), batching them into send calls, recovering when the kernel
 * refuses GSO or an ECN control message, and the queue behind
 * uvq_udp_send_batch. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static int carry_flush(struct uvq__udp_state* s);

/* How one message will go out. */
struct plan {
  size_t total;          /* payload bytes */
  unsigned int nseg;     /* datagrams it makes */
  int software;          /* segment in software */
  struct uvq__send_meta meta;
};

static int dest_is_v4(const struct uvq__udp_state* s,
                      const struct sockaddr* addr) {
  if (s->family == AF_INET)
    return 1;
  if (addr != NULL)
    return uvq__is_v4mapped(addr);
  /* Connected dual-stack socket: the peer decides (noted at connect). */
  return (s->flags & UVQ__F_PEER_V4) != 0;
}

/* The checks that need no socket. nbufs 0 is an empty datagram. */
static int check_args(const uvq_udp_mmsg_t* m) {
  if (m->bufs == NULL && m->nbufs > 0)
    return UV_EINVAL;
  if (m->nbufs > UVQ__MAX_BUFS_PER_MSG)
    return UV_EINVAL;
  if (m->ecn < -1 || m->ecn > 3)
    return UV_EINVAL;
  if (m->gso_size > UVQ__GSO_SIZE_MAX)
    return UV_EINVAL;
  return 0;
}

/* Checks one message and decides how it goes out. Errors are the ones the
 * header promises for try_send_batch. */
static int plan_msg(struct uvq__udp_state* s,
                    const uvq_udp_mmsg_t* m,
                    struct plan* p) {
  size_t limit;
  int base;
  int v4;
  int err;

  err = check_args(m);
  if (err)
    return err;
  if (s->flags & UVQ__F_CONNECTED) {
    if (m->addr != NULL)
      return UV_EISCONN;
  } else if (m->addr == NULL) {
    return UV_EDESTADDRREQ;
  }
  if (m->addr != NULL && m->addr->sa_family != s->family)
    return UV_EAFNOSUPPORT;

  v4 = dest_is_v4(s, m->addr);
  if (m->local != NULL) {
    if (m->local->sa_family != s->family)
      return UV_EAFNOSUPPORT;
    if (s->family == AF_INET6 && uvq__is_v4mapped(m->local) != v4)
      return UV_EAFNOSUPPORT;
    if (!(s->features & UVQ_UDP_FEATURE_SRCADDR))
      return UV_ENOTSUP;
  }

  p->total = uvq__bufs_total(m->bufs, m->nbufs);
  limit = v4 ? UVQ__MAX_PAYLOAD_V4 : UVQ__MAX_PAYLOAD_V6;
  if (p->total > limit)
    return UV_EMSGSIZE;
  p->nseg = m->gso_size ? uvq__segments_of(p->total, m->gso_size) : 1;
  if (p->nseg > UVQ__GSO_MAX_SEGMENTS)
    return UV_EMSGSIZE;
  p->software = p->nseg > 1 && !(s->features & UVQ_UDP_FEATURE_GSO);

  memset(&p->meta, 0, sizeof(p->meta));
  p->meta.level_v4 = v4;
  p->meta.tos = -1;
  /* The socket already carries the default codepoint; a control message
   * is needed only for a different one. */
  base = (v4 && s->family == AF_INET6) ? s->tos4 : s->tos;
  if (m->ecn >= 0 && m->ecn != (base & 3) &&
      (s->features & UVQ_UDP_FEATURE_ECN_SEND))
    p->meta.tos = uvq__tos_for_ecn(base, m->ecn);
  p->meta.local = m->local;
  p->meta.gso_size = (p->nseg > 1 && !p->software) ? m->gso_size : 0;
  p->meta.txtime = (s->features & UVQ_UDP_TXTIME) ? m->txtime : 0;
  return 0;
}

static struct uvq__send_scratch* scratch(struct uvq__udp_state* s) {
  if (s->sb == NULL)
    s->sb = malloc(sizeof(*s->sb));
  return s->sb;
}

/* Fills entry i of the scratch batch; 0 or a UV_E* error. */
static int build_entry(struct uvq__udp_state* s,
                       unsigned int i,
                       uvq__iovec_t* iov,
                       size_t iovcnt,
                       const struct sockaddr* addr,
                       const struct uvq__send_meta* meta) {
  struct uvq__send_scratch* sb;
  uvq__msghdr_t* h;
  size_t clen;
  int err;

  sb = s->sb;
  h = &sb->msgs[i].hdr;
  memset(h, 0, sizeof(*h));
  h->msg_name = (void*) addr;
  h->msg_namelen = addr ? (socklen_t) uvq__sockaddr_len(addr) : 0;
  h->msg_iov = iov;
  h->msg_iovlen = iovcnt;
  clen = 0;
  err = uvq__cmsg_encode(sb->control[i], sizeof(sb->control[i]), meta,
                         &clen);
  if (err)
    return err;
  if (clen > 0) {
    h->msg_control = sb->control[i];
    h->msg_controllen = clen;
  }
  return 0;
}

static int is_eagain(int r) {
  return r == UV_EAGAIN || r == UV_ENOBUFS;
}

/* Copies bytes [offset, total) of a message into the carry buffer, to be
 * sent in gso_size segments before anything newer. */
static int carry_load(struct uvq__udp_state* s,
                      const uvq_udp_mmsg_t* m,
                      const struct plan* p,
                      size_t offset) {
  struct uvq__carry* c;

  c = &s->carry;
  if (c->cap < UVQ__MAX_PAYLOAD_V6) {
    free(c->data);
    c->data = malloc(UVQ__MAX_PAYLOAD_V6);
    if (c->data == NULL) {
      c->cap = 0;
      return UV_ENOMEM;
    }
    c->cap = UVQ__MAX_PAYLOAD_V6;
  }
  uvq__bufs_copy(m->bufs, m->nbufs, offset, p->total - offset, c->data);
  c->len = p->total - offset;
  c->seg = m->gso_size;
  memset(&c->addr, 0, sizeof(c->addr));
  if (m->addr != NULL)
    memcpy(&c->addr, m->addr, (size_t) uvq__sockaddr_len(m->addr));
  memset(&c->local, 0, sizeof(c->local));
  if (m->local != NULL)
    memcpy(&c->local, m->local, (size_t) uvq__sockaddr_len(m->local));
  c->tos = p->meta.tos;
  c->txtime = p->meta.txtime;
  c->level_v4 = p->meta.level_v4;
  c->sent = 0;
  return 0;
}

/* Sends what the carry buffer holds. 0 when empty, UV_EAGAIN when the kernel
 * has no room. Its first segment went out when the message was accepted,
 * so the rest, no larger, fits the path too; a segment the kernel still
 * rejects is dropped and counted, since its message was already reported
 * as sent. */
static int carry_flush(struct uvq__udp_state* s) {
  struct uvq__carry* c;
  struct uvq__send_scratch* sb;
  struct uvq__send_meta meta;
  struct sockaddr* addr;
  size_t off;
  size_t seglen;
  unsigned int n;
  int r;

  c = &s->carry;
  sb = scratch(s);
  if (sb == NULL)
    return UV_ENOMEM;
  while (c->len > 0) {
    memset(&meta, 0, sizeof(meta));
    meta.level_v4 = c->level_v4;
    meta.tos = (s->features & UVQ_UDP_FEATURE_ECN_SEND) ? c->tos : -1;
    meta.local = c->local.ss_family ? (struct sockaddr*) &c->local : NULL;
    meta.txtime = c->txtime;
    addr = c->addr.ss_family ? (struct sockaddr*) &c->addr : NULL;

    off = 0;
    for (n = 0; n < UVQ__SEND_BATCH_MAX && off < c->len; n++) {
      seglen = c->len - off < c->seg ? c->len - off : c->seg;
      sb->iov[n].iov_base = c->data + c->sent + off;
      sb->iov[n].iov_len = seglen;
      r = build_entry(s, n, &sb->iov[n], 1, addr, &meta);
      if (r)
        return r;
      off += seglen;
    }

    r = uvq__io_send(s, sb->msgs, n);
    if (r > 0) {
      unsigned int i;
      for (i = 0; i < (unsigned int) r; i++) {
        seglen = sb->iov[i].iov_len;
        c->sent += seglen;
        c->len -= seglen;
        s->stats.datagrams_sent++;
        s->stats.bytes_sent += seglen;
      }
      continue;
    }
    if (is_eagain(r)) {
      s->stats.send_eagain++;
      return UV_EAGAIN;
    }
    if (r == UV_EINVAL && meta.tos >= 0) {
      /* As in recover(): the ECN control message is switched off only if
       * the same segment goes without it. */
      meta.tos = -1;
      if (build_entry(s, 0, &sb->iov[0], 1, addr, &meta) == 0 &&
          uvq__io_send(s, sb->msgs, 1) == 1) {
        s->features &= ~UVQ_UDP_FEATURE_ECN_SEND;
        seglen = sb->iov[0].iov_len;
        c->sent += seglen;
        c->len -= seglen;
        s->stats.datagrams_sent++;
        s->stats.bytes_sent += seglen;
        continue;
      }
    }
    /* Rejected outright (the route went away, a pending ICMP error on a
     * connected socket): drop this one segment. */
    seglen = sb->iov[0].iov_len;
    c->sent += seglen;
    c->len -= seglen;
    s->stats.segments_dropped++;
  }
  c->sent = 0;
  return 0;
}

/* Sends a message as separate datagrams of gso_size bytes (or as one
 * datagram without gso_size): the first goes out at once, so a message the
 * kernel rejects (too big for the path, no route) fails here with its own
 * error and is not accepted; the rest is copied and follows before
 * anything newer. Returns 1 when the message was accepted, UV_EAGAIN, or
 * the first datagram's error. */
static int software_send(struct uvq__udp_state* s,
                         const uvq_udp_mmsg_t* m,
                         const struct plan* p) {
  struct uvq__send_scratch* sb;
  struct uvq__send_meta meta;
  size_t first;
  int n;
  int r;

  sb = s->sb;
  meta = p->meta;
  meta.gso_size = 0;
  first = p->total;
  if (p->nseg > 1 && m->gso_size < first)
    first = m->gso_size;
  n = uvq__slice_iov(m->bufs, m->nbufs, 0, first, sb->iov,
                     UVQ__SEND_BATCH_MAX * 4);
  if (n < 0)
    return UV_EINVAL;
  r = build_entry(s, 0, sb->iov, (size_t) n, m->addr, &meta);
  if (r)
    return r;
  r = uvq__io_send(s, sb->msgs, 1);
  if (r < 0) {
    if (is_eagain(r)) {
      s->stats.send_eagain++;
      return UV_EAGAIN;
    }
    return r;
  }
  s->stats.datagrams_sent++;
  s->stats.bytes_sent += first;
  if (p->nseg > 1) {
    s->stats.gso_fallbacks++;
    r = carry_load(s, m, p, first);
    if (r)
      return r;
    carry_flush(s);
  }
  return 1;
}

/* Errors an ICMP message leaves pending on a socket. EMSGSIZE is left
 * out: a local EMSGSIZE (the message is larger than the route allows) is
 * far more common than a stale one, and sending it again would only fail
 * twice. */
static int is_icmp_error(int r) {
  return r == UV_ECONNREFUSED || r == UV_EHOSTUNREACH || r == UV_ENETUNREACH ||
         r == UV_EHOSTDOWN || r == UV_EPROTO;
}

/* The first message of a batch failed with r. Works out whose fault it is
 * before changing anything that lasts:
 *  - With IP_RECVERR the kernel leaves an ICMP error pending even on an
 *    unconnected socket, and the next send to any destination returns it
 *    once (consuming it). Such an error belongs to an earlier datagram, and
 *    the error queue reports it; the message is simply sent again, once.
 *  - A refused GSO send (EIO without checksum offload, EINVAL with
 *    SO_NO_CHECK) is re-sent segmented in software; only if that works is
 *    GSO switched off for the socket.
 *  - An EINVAL with an ECN control message is re-sent without it; only if
 *    that works is per-message ECN switched off for the socket.
 * Returns 1 when the message went, 0 to try it again as planned now,
 * UV_EAGAIN, or the message's own error. */
static int recover(struct uvq__udp_state* s,
                   const uvq_udp_mmsg_t* m,
                   int r,
                   int* retried) {
  struct plan p;
  int err;

  if (!*retried && !(s->flags & UVQ__F_CONNECTED) &&
      (s->features & UVQ_UDP_RECVERR) && is_icmp_error(r)) {
    *retried = 1;
    return 0;
  }
  if (plan_msg(s, m, &p))
    return r;

  if ((r == UV_EIO || r == UV_EINVAL) && p.meta.gso_size > 0) {
    err = software_send(s, m, &p);
    if (err == 1) {
      s->features &= ~UVQ_UDP_FEATURE_GSO;
      return 1;
    }
    if (err == UV_EAGAIN)
      return err;
    r = err;
  }

  if (r == UV_EINVAL && p.meta.tos >= 0) {
    p.meta.tos = -1;
    err = software_send(s, m, &p);
    if (err == 1)
      s->features &= ~UVQ_UDP_FEATURE_ECN_SEND;
    return err;
  }
  return r;
}

/* Sends msgs[0..count) now: as many as the kernel takes. Returns the number
 * of messages handed over in full, or an error of the first. */
static int send_now(struct uvq__udp_state* s,
                    const uvq_udp_mmsg_t* msgs,
                    unsigned int count) {
  struct uvq__send_scratch* sb;
  struct plan p;
  unsigned int sent;
  unsigned int n;
  unsigned int i;
  unsigned int nseg[UVQ__SEND_BATCH_MAX];
  size_t bytes[UVQ__SEND_BATCH_MAX];
  int gso[UVQ__SEND_BATCH_MAX];
  int retried;
  int err;
  int r;

  sb = scratch(s);
  if (sb == NULL)
    return UV_ENOMEM;

  sent = 0;
  retried = 0;
  while (sent < count) {
    if (s->carry.len > 0)
      break;

    /* Gather consecutive messages that go out as one entry each. */
    err = 0;
    for (n = 0; sent + n < count && n < UVQ__SEND_BATCH_MAX; n++) {
      const uvq_udp_mmsg_t* m = &msgs[sent + n];
      err = plan_msg(s, m, &p);
      if (err || p.software)
        break;
      err = build_entry(s, n, (uvq__iovec_t*) m->bufs, m->nbufs, m->addr,
                        &p.meta);
      if (err)
        break;
      nseg[n] = p.nseg;
      bytes[n] = p.total;
      gso[n] = p.meta.gso_size > 0;
    }

    if (n > 0) {
      r = uvq__io_send(s, sb->msgs, n);
      if (r > 0) {
        for (i = 0; i < (unsigned int) r; i++) {
          s->stats.datagrams_sent += nseg[i];
          s->stats.bytes_sent += bytes[i];
          if (gso[i]) {
            s->stats.gso_sends++;
            s->stats.gso_segments += nseg[i];
          }
        }
        sent += (unsigned int) r;
        retried = 0;
        /* On a short count the next round finds out why. */
        continue;
      }
      if (is_eagain(r)) {
        s->stats.send_eagain++;
        break;
      }
    } else {
      /* Message `sent` is invalid, or must be segmented in software. */
      if (err)
        return sent ? (int) sent : err;
      r = software_send(s, &msgs[sent], &p);
      if (r == 1) {
        sent++;
        retried = 0;
        continue;
      }
      if (r == UV_EAGAIN)
        break;
    }

    /* The first message failed with r: find out whose fault it is. */
    r = recover(s, &msgs[sent], r, &retried);
    if (r == 1) {
      sent++;
      retried = 0;
      continue;
    }
    if (r == 0)
      continue;
    if (r == UV_EAGAIN)
      break;
    return sent ? (int) sent : r;
  }

  if (s->carry.len > 0)
    uvq__udp_update_poll(s);
  if (sent == 0)
    return UV_EAGAIN;
  return (int) sent;
}

/* The uvq_udp_mmsg_t layouts this library reads: 1, the only one so far.
 * When a release appends fields (version 2), arrays laid out as version 1
 * have a smaller stride and are copied into the current layout here, with
 * the new fields at their defaults. */
static int check_batch_abi(int mmsg_version, unsigned int flags) {
  if (mmsg_version != UVQ_UDP_MMSG_VERSION)
    return UV_EINVAL;
  if (flags != 0)
    return UV_EINVAL;
  return 0;
}

int uvq_udp_try_send_batch_versioned(uvq_udp_t* handle,
                                     int mmsg_version,
                                     const uvq_udp_mmsg_t* msgs,
                                     unsigned int count,
                                     unsigned int flags) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
  if (s == NULL || msgs == NULL || count == 0 ||
      check_batch_abi(mmsg_version, flags) != 0)
    return UV_EINVAL;
  if (s->fd == -1)
    return check_args(&msgs[0]) ? UV_EINVAL : UV_EBADF;
  /* Older data goes first: queued requests and carried segments. */
  if (s->queue_head != NULL || s->carry.len > 0)
    return UV_EAGAIN;
  return send_now(s, msgs, count);
}

static int validate_all(struct uvq__udp_state* s,
                        const uvq_udp_mmsg_t* msgs,
                        unsigned int count) {
  struct plan p;
  unsigned int i;
  int err;

  for (i = 0; i < count; i++) {
    err = plan_msg(s, &msgs[i], &p);
    if (err)
      return err;
  }
  return 0;
}

int uvq_udp_send_batch_versioned(uvq_udp_send_t* req,
                                 uvq_udp_t* handle,
                                 int mmsg_version,
                                 const uvq_udp_mmsg_t* msgs,
                                 unsigned int count,
                                 unsigned int flags,
                                 uvq_udp_send_cb cb) {
  struct uvq__udp_state* s;
  struct uvq__udp_send_state* q;
  size_t size;
  size_t nbufs;
  char* p;
  unsigned int i;
  int err;

  s = uvq__live_state(handle);
  /* count 0 (msgs may then be NULL) asks only to be told when the socket
   * is writable and everything queued before has gone. */
  if (s == NULL || req == NULL || (msgs == NULL && count > 0) || cb == NULL ||
      check_batch_abi(mmsg_version, flags) != 0)
    return UV_EINVAL;
  for (i = 0; i < count; i++)
    if (check_args(&msgs[i]))
      return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  err = validate_all(s, msgs, count);
  if (err)
    return err;

  /* One allocation holds the request state, the messages, their buffer
   * lists and their addresses; the payload stays the caller's. */
  nbufs = 0;
  for (i = 0; i < count; i++)
    nbufs += msgs[i].nbufs;
  size = sizeof(*q) + count * sizeof(uvq_udp_mmsg_t) + nbufs * sizeof(uv_buf_t) +
         2 * count * sizeof(struct sockaddr_storage);
  q = malloc(size);
  if (q == NULL)
    return UV_ENOMEM;
  memset(q, 0, sizeof(*q));
  q->req = req;
  q->cb = cb;
  q->count = count;
  q->msgs = (uvq_udp_mmsg_t*) (q + 1);
  p = (char*) (q->msgs + count);
  {
    uv_buf_t* bufs = (uv_buf_t*) p;
    struct sockaddr_storage* addrs =
        (struct sockaddr_storage*) (bufs + nbufs);
    for (i = 0; i < count; i++) {
      q->msgs[i] = msgs[i];
      if (msgs[i].nbufs > 0)
        memcpy(bufs, msgs[i].bufs, msgs[i].nbufs * sizeof(uv_buf_t));
      q->msgs[i].bufs = bufs;
      bufs += msgs[i].nbufs;
      if (msgs[i].addr != NULL) {
        memcpy(&addrs[0], msgs[i].addr, (size_t) uvq__sockaddr_len(msgs[i].addr));
        q->msgs[i].addr = (struct sockaddr*) &addrs[0];
      }
      if (msgs[i].local != NULL) {
        memcpy(&addrs[1], msgs[i].local, (size_t) uvq__sockaddr_len(msgs[i].local));
        q->msgs[i].local = (struct sockaddr*) &addrs[1];
      }
      addrs += 2;
    }
  }

  req->handle = handle;
  req->nsent = 0;
  req->state_ = q;
  if (s->queue_tail != NULL)
    s->queue_tail->next = q;
  else
    s->queue_head = q;
  s->queue_tail = q;

  /* Send at once when nothing older waits; the callback still comes from
   * the loop, on the next writable event. */
  if (s->queue_head == q && s->carry.len == 0) {
    int r = send_now(s, q->msgs, q->count);
    if (r > 0)
      q->done = (unsigned int) r;
    else if (r != UV_EAGAIN)
      q->status = r;
  }
  uvq__udp_update_poll(s);
  return 0;
}

void uvq__udp_complete_req(struct uvq__udp_state* s,
                         struct uvq__udp_send_state* q,
                         int status) {
  uvq_udp_send_t* req;

  s->queue_head = q->next;
  if (s->queue_head == NULL)
    s->queue_tail = NULL;
  req = q->req;
  req->nsent = q->done;
  req->state_ = NULL;
  q->cb(req, status);
  free(q);
}

void uvq__udp_flush_queue(struct uvq__udp_state* s) {
  struct uvq__udp_send_state* q;
  int r;

  if (s->carry.len > 0 && carry_flush(s) != 0)
    return;
  while ((q = s->queue_head) != NULL) {
    while (q->status == 0 && q->done < q->count) {
      r = send_now(s, q->msgs + q->done, q->count - q->done);
      if (r == UV_EAGAIN)
        return;
      if (r < 0) {
        q->status = r;
        break;
      }
      q->done += (unsigned int) r;
      if (s->carry.len > 0 && carry_flush(s) != 0)
        return;
    }
    uvq__udp_complete_req(s, q, q->status);
    if (s->flags & UVQ__F_CLOSING)
      return;
  }
}
