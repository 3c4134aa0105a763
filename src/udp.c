/* The uvq UDP handle: public entry points, loop integration, receive
 * delivery, send planning and the send queue. Platform work (socket
 * options, the receive and send syscalls, the error queue) lives in
 * io-linux.c or io-posix.c. */
#include "internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* uv_buf_t is documented to match struct iovec on Unix, and libuv itself
 * passes arrays of one as the other; uvq does the same to send the
 * caller's buffers without copying them. */
_Static_assert(sizeof(uv_buf_t) == sizeof(struct iovec), "uv_buf_t layout");
_Static_assert(offsetof(uv_buf_t, base) == offsetof(struct iovec, iov_base),
               "uv_buf_t layout");
_Static_assert(offsetof(uv_buf_t, len) == offsetof(struct iovec, iov_len),
               "uv_buf_t layout");

#define UVQ__BIND_FLAGS                                                      \
  (UVQ_UDP_IPV6ONLY | UVQ_UDP_REUSEADDR | UVQ_UDP_REUSEPORT |                \
   UVQ_UDP_RECVMMSG | UVQ__CONFIGURE_FLAGS)
#define UVQ__CONFIGURE_FLAGS                                                 \
  (UVQ_UDP_RECVECN | UVQ_UDP_PMTUD | UVQ_UDP_RECVPKTINFO | UVQ_UDP_GRO |      \
   UVQ_UDP_GRO_RAW | UVQ_UDP_TXTIME | UVQ_UDP_RECVERR)

static void on_poll(uv_poll_t* poll, int status, int events);
static void on_kick(uv_timer_t* timer);
static void update_poll(struct uvq__udp_state* s);
static int carry_flush(struct uvq__udp_state* s);
static void flush_queue(struct uvq__udp_state* s);

unsigned int uvq_version(void) {
  return (UVQ_VERSION_MAJOR << 16) | (UVQ_VERSION_MINOR << 8) |
         UVQ_VERSION_PATCH;
}

const char* uvq_version_string(void) {
#define UVQ__STR2(x) #x
#define UVQ__STR(x) UVQ__STR2(x)
  return UVQ__STR(UVQ_VERSION_MAJOR) "." UVQ__STR(
      UVQ_VERSION_MINOR) "." UVQ__STR(UVQ_VERSION_PATCH);
#undef UVQ__STR
#undef UVQ__STR2
}

/* A handle is usable from init until uvq_udp_close is called. */
static struct uvq__udp_state* live_state(const uvq_udp_t* h) {
  if (h == NULL || h->state_ == NULL)
    return NULL;
  if (h->state_->flags & UVQ__F_CLOSING)
    return NULL;
  return h->state_;
}

static int sockaddr_len(const struct sockaddr* sa) {
  if (sa->sa_family == AF_INET)
    return (int) sizeof(struct sockaddr_in);
  if (sa->sa_family == AF_INET6)
    return (int) sizeof(struct sockaddr_in6);
  return 0;
}

static int is_v4mapped(const struct sockaddr* sa) {
  return sa->sa_family == AF_INET6 &&
         IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6*) sa)->sin6_addr);
}

int uvq_udp_init_ex(uv_loop_t* loop, uvq_udp_t* handle, unsigned int flags) {
  struct uvq__udp_state* s;
  unsigned int family;
  int fd;
  int err;

  if (loop == NULL || handle == NULL)
    return UV_EINVAL;
  family = flags & 0xff;
  if (family != AF_UNSPEC && family != AF_INET && family != AF_INET6)
    return UV_EINVAL;
  if (flags & ~(0xffu | UVQ_UDP_RECVMMSG))
    return UV_EINVAL;

  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return UV_ENOMEM;
  s->handle = handle;
  s->fd = -1;
  s->tos = 0;

  err = uv_timer_init(loop, &s->kick);
  if (err) {
    free(s);
    return err;
  }
  s->kick.data = s;
  handle->loop = loop;
  handle->state_ = s;

  if (family != AF_UNSPEC) {
    fd = uvq__io_socket((int) family);
    if (fd < 0) {
      /* The timer is initialized, so it must be closed before the state
       * can go: hand the handle to the normal close path. */
      uvq_udp_close(handle, NULL);
      return fd;
    }
    err = 0;
    s->fd = fd;
    s->family = (int) family;
    err = uv_poll_init_socket(loop, &s->poll, fd);
    if (err) {
      uvq_udp_close(handle, NULL);
      return err;
    }
    s->poll_ready = 1;
    s->poll.data = s;
    s->features = uvq__io_base_features(s);
  }
  return 0;
}

int uvq_udp_init(uv_loop_t* loop, uvq_udp_t* handle) {
  return uvq_udp_init_ex(loop, handle, AF_UNSPEC);
}

/* Takes ownership of fd as the handle's socket. */
static int attach_socket(struct uvq__udp_state* s, int fd, int family) {
  int err;

  err = uv_poll_init_socket(s->handle->loop, &s->poll, fd);
  if (err)
    return err;
  s->fd = fd;
  s->family = family;
  s->poll_ready = 1;
  s->poll.data = s;
  if (s->flags & UVQ__F_UNREF)
    uv_unref((uv_handle_t*) &s->poll);
  s->features = uvq__io_base_features(s);
  return 0;
}

static int ensure_socket(struct uvq__udp_state* s, int family) {
  int fd;
  int err;

  if (s->fd != -1)
    return s->family == family ? 0 : UV_EINVAL;
  fd = uvq__io_socket(family);
  if (fd < 0)
    return fd;
  err = attach_socket(s, fd, family);
  if (err)
    close(fd);
  return err;
}

static void refresh_local(struct uvq__udp_state* s) {
  struct sockaddr_storage ss;
  socklen_t len;
  int v;

  len = sizeof(ss);
  if (getsockname(s->fd, (struct sockaddr*) &ss, &len) == 0) {
    if (ss.ss_family == AF_INET)
      s->port = ntohs(((struct sockaddr_in*) &ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
      s->port = ntohs(((struct sockaddr_in6*) &ss)->sin6_port);
  }
  if (s->family == AF_INET6) {
    len = sizeof(v);
    if (getsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) == 0 && v)
      s->flags |= UVQ__F_V6ONLY;
    else
      s->flags &= ~UVQ__F_V6ONLY;
  }
}

int uvq_udp_open(uvq_udp_t* handle, uv_os_sock_t sock) {
  struct uvq__udp_state* s;
  struct sockaddr_storage ss;
  socklen_t len;
  int type;
  int flags;
  int err;

  s = live_state(handle);
  if (s == NULL || sock < 0)
    return UV_EINVAL;
  if (s->fd != -1)
    return UV_EBUSY;

  len = sizeof(type);
  if (getsockopt(sock, SOL_SOCKET, SO_TYPE, &type, &len))
    return uvq__errno();
  if (type != SOCK_DGRAM)
    return UV_EINVAL;
  len = sizeof(ss);
  if (getsockname(sock, (struct sockaddr*) &ss, &len))
    return uvq__errno();
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
    return UV_EINVAL;

  flags = fcntl(sock, F_GETFL);
  if (flags == -1 || fcntl(sock, F_SETFL, flags | O_NONBLOCK) == -1)
    return uvq__errno();

  err = attach_socket(s, sock, ss.ss_family);
  if (err)
    return err;
  refresh_local(s);
  if (s->port != 0)
    s->flags |= UVQ__F_BOUND;
  len = sizeof(ss);
  if (getpeername(sock, (struct sockaddr*) &ss, &len) == 0)
    s->flags |= UVQ__F_CONNECTED;
  return 0;
}

int uvq_udp_bind(uvq_udp_t* handle,
                 const struct sockaddr* addr,
                 unsigned int flags) {
  struct uvq__udp_state* s;
  int family;
  int yes;
  int err;

  s = live_state(handle);
  if (s == NULL || addr == NULL)
    return UV_EINVAL;
  if (flags & ~UVQ__BIND_FLAGS)
    return UV_EINVAL;
  if ((flags & UVQ_UDP_GRO) && (flags & UVQ_UDP_GRO_RAW))
    return UV_EINVAL;
  family = addr->sa_family;
  if (family != AF_INET && family != AF_INET6)
    return UV_EINVAL;
  if ((flags & UVQ_UDP_IPV6ONLY) && family != AF_INET6)
    return UV_EINVAL;
  if (s->flags & UVQ__F_BOUND)
    return UV_EINVAL;

  err = ensure_socket(s, family);
  if (err)
    return err;

  yes = 1;
  if (flags & UVQ_UDP_REUSEADDR) {
    if (setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes)))
      return uvq__errno();
  }
  if (flags & UVQ_UDP_REUSEPORT) {
#ifdef SO_REUSEPORT
    if (setsockopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof(yes)))
      return uvq__errno();
#else
    return UV_ENOTSUP;
#endif
  }
  if (flags & UVQ_UDP_IPV6ONLY) {
    if (setsockopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof(yes)))
      return uvq__errno();
  }

  if (bind(s->fd, addr, (socklen_t) sockaddr_len(addr)))
    return uvq__errno();
  s->flags |= UVQ__F_BOUND;
  refresh_local(s);

  if (flags & UVQ__CONFIGURE_FLAGS)
    return uvq__io_configure(s, flags & UVQ__CONFIGURE_FLAGS);
  return 0;
}

int uvq_udp_configure(uvq_udp_t* handle, unsigned int flags) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL)
    return UV_EINVAL;
  /* Argument checks first: a bad request must not half-configure. */
  if (flags & ~UVQ__CONFIGURE_FLAGS)
    return UV_EINVAL;
  if ((flags & UVQ_UDP_GRO) && (flags & UVQ_UDP_GRO_RAW))
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  return uvq__io_configure(s, flags);
}

int uvq_udp_connect(uvq_udp_t* handle, const struct sockaddr* addr) {
  struct uvq__udp_state* s;
  struct sockaddr_storage any;
  struct sockaddr unspec;
  int err;

  s = live_state(handle);
  if (s == NULL)
    return UV_EINVAL;

  if (addr == NULL) {
    if (!(s->flags & UVQ__F_CONNECTED))
      return UV_ENOTCONN;
    memset(&unspec, 0, sizeof(unspec));
    unspec.sa_family = AF_UNSPEC;
    /* Linux and the BSDs dissolve the association on AF_UNSPEC; some
     * return EAFNOSUPPORT while still doing it. */
    if (connect(s->fd, &unspec, sizeof(unspec)) && errno != EAFNOSUPPORT)
      return uvq__errno();
    s->flags &= ~UVQ__F_CONNECTED;
    return 0;
  }

  if (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)
    return UV_EINVAL;
  if (s->flags & UVQ__F_CONNECTED)
    return UV_EISCONN;

  if (s->fd == -1 || !(s->flags & UVQ__F_BOUND)) {
    /* Like libuv, connecting an unbound handle binds it to the wildcard
     * address of the peer's family first. */
    memset(&any, 0, sizeof(any));
    any.ss_family = addr->sa_family;
    if (s->fd != -1 && s->family != addr->sa_family)
      return UV_EINVAL;
    err = uvq_udp_bind(handle, (struct sockaddr*) &any, 0);
    if (err)
      return err;
  }
  if (s->family != addr->sa_family)
    return UV_EINVAL;

  do
    err = connect(s->fd, addr, (socklen_t) sockaddr_len(addr));
  while (err == -1 && errno == EINTR);
  if (err)
    return uvq__errno();
  s->flags |= UVQ__F_CONNECTED;
  refresh_local(s);
  return 0;
}

int uvq_udp_getsockname(const uvq_udp_t* handle,
                        struct sockaddr* name,
                        int* namelen) {
  struct uvq__udp_state* s;
  socklen_t len;

  s = live_state(handle);
  if (s == NULL || name == NULL || namelen == NULL || *namelen < 0)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  len = (socklen_t) *namelen;
  if (getsockname(s->fd, name, &len))
    return uvq__errno();
  *namelen = (int) len;
  return 0;
}

int uvq_udp_getpeername(const uvq_udp_t* handle,
                        struct sockaddr* name,
                        int* namelen) {
  struct uvq__udp_state* s;
  socklen_t len;

  s = live_state(handle);
  if (s == NULL || name == NULL || namelen == NULL || *namelen < 0)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  len = (socklen_t) *namelen;
  if (getpeername(s->fd, name, &len))
    return uvq__errno();
  *namelen = (int) len;
  return 0;
}

int uvq_udp_fileno(const uvq_udp_t* handle, uv_os_fd_t* fd) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL || fd == NULL)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  *fd = s->fd;
  return 0;
}

/* ---- receiving ---------------------------------------------------------- */

static void slots_in_effect(const struct uvq__udp_state* s,
                            unsigned int* slot,
                            unsigned int* batch) {
  int gro;

  gro = (s->features & (UVQ_UDP_GRO | UVQ_UDP_GRO_RAW)) != 0;
  *slot = s->slot_size ? s->slot_size : (gro ? UVQ__SLOT_GRO : UVQ__SLOT_DEFAULT);
  *batch = s->batch ? s->batch : (gro ? UVQ__BATCH_GRO : UVQ__BATCH_DEFAULT);
  /* A super-packet is up to 64 KiB whatever the caller asked for; a smaller
   * slot would truncate every coalesced receive. */
  if (gro && *slot < UVQ__SLOT_GRO)
    *slot = UVQ__SLOT_GRO;
  if (!(s->features & UVQ_UDP_RECVMMSG) && *batch > UVQ__RECV_BATCH_MAX)
    *batch = UVQ__RECV_BATCH_MAX;
}

int uvq_udp_set_recv_slots(uvq_udp_t* handle,
                           unsigned int slot_size,
                           unsigned int batch) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL)
    return UV_EINVAL;
  if (slot_size > UVQ__SLOT_MAX || batch > UVQ__RECV_BATCH_MAX)
    return UV_EINVAL;
  if (slot_size)
    s->slot_size = slot_size;
  if (batch)
    s->batch = batch;
  return 0;
}

static void call_recv(struct uvq__udp_state* s, uvq_udp_recv_t* r) {
  s->recv_cb(s->handle, r);
}

static void recv_init(uvq_udp_recv_t* r) {
  memset(r, 0, sizeof(*r));
}

/* Delivers a callback that returns a buffer with no datagram in it: an
 * error (nread < 0), or nothing to read (nread 0). */
static void deliver_empty(struct uvq__udp_state* s, uv_buf_t* buf,
                          ssize_t nread) {
  uvq_udp_recv_t r;

  recv_init(&r);
  r.nread = nread;
  r.buf = buf;
  call_recv(s, &r);
}

/* Used by the platform files to deliver a complete callback (error queue
 * entries). The callback returns its buffer. */
void uvq__udp_deliver_one(struct uvq__udp_state* s, uvq_udp_recv_t* r) {
  call_recv(s, r);
}

static unsigned int segments_of(size_t len, unsigned int seg) {
  if (seg == 0 || len <= seg)
    return 1;
  return (unsigned int) ((len + seg - 1) / seg);
}

/* Delivers the datagrams read into the batch buffer, in order, until all
 * are delivered, the caller stops receiving, or the handle closes. Then,
 * unless a sole datagram already took it back, returns the buffer with one
 * UVQ_UDP_MMSG_FREE callback. State is updated before each callback so the
 * callback may stop, restart or close the handle. */
static void deliver(struct uvq__udp_state* s) {
  struct uvq__recv_batch* rb;
  struct uvq__mmsg* m;
  uvq_udp_recv_t r;
  uv_buf_t chunk;
  size_t len;
  size_t slot_len;
  unsigned int seg;
  unsigned int nseg;
  unsigned int extra;
  int split;
  int sole;

  rb = s->rb;
  while (rb->held && rb->next < rb->count) {
    if (!(s->flags & UVQ__F_RECEIVING) || (s->flags & UVQ__F_CLOSING))
      break;

    m = &rb->msgs[rb->next];
    slot_len = rb->iov[rb->next].iov_len;
    len = m->len < slot_len ? m->len : slot_len;
    if (!rb->meta_valid) {
      uvq__cmsg_decode(&m->hdr, s->port, s->family, &rb->meta);
      rb->meta_valid = 1;
      if (rb->meta.has_drops)
        s->stats.kernel_drops = rb->meta.drops;
    }
    seg = rb->meta.segment_size;
    nseg = segments_of(len, seg);
    split = (s->features & UVQ_UDP_GRO) && nseg > 1;

    extra = 0;
    if (m->hdr.msg_flags & MSG_TRUNC)
      extra |= UVQ_UDP_PARTIAL;
    if (m->hdr.msg_flags & MSG_CTRUNC)
      extra |= UVQ_UDP_CTRUNC;

    recv_init(&r);
    r.addr = m->hdr.msg_namelen > 0 ? (const struct sockaddr*) &rb->peers[rb->next]
                                    : NULL;
    r.local = rb->meta.local;
    r.ifindex = rb->meta.ifindex;
    r.ecn = rb->meta.ecn < 0 ? 0 : rb->meta.ecn;
    r.segment_size = nseg > 1 ? seg : 0;

    if (rb->seg_offset == 0) {
      /* First look at this message: count it once. */
      s->stats.datagrams_received += nseg;
      s->stats.bytes_received += len;
      if (nseg > 1) {
        s->stats.gro_packets++;
        s->stats.gro_segments += nseg;
      }
      if (rb->meta.ecn >= 0 && (s->features & UVQ_UDP_RECVECN))
        s->stats.ecn_received[rb->meta.ecn] += nseg;
      if (extra & UVQ_UDP_PARTIAL)
        s->stats.truncated++;
      if (extra & UVQ_UDP_CTRUNC)
        s->stats.control_truncated++;
    }

    if (split) {
      chunk.base = (char*) rb->iov[rb->next].iov_base + rb->seg_offset;
      chunk.len = len - rb->seg_offset < seg ? len - rb->seg_offset : seg;
      r.nread = (ssize_t) chunk.len;
      r.buf = &chunk;
      r.flags = UVQ_UDP_MMSG_CHUNK | (extra & UVQ_UDP_CTRUNC);
      rb->seg_offset += chunk.len;
      if (rb->seg_offset >= len) {
        rb->next++;
        rb->seg_offset = 0;
        rb->meta_valid = 0;
      }
      call_recv(s, &r);
      continue;
    }

    sole = rb->count == 1;
    rb->next++;
    rb->seg_offset = 0;
    rb->meta_valid = 0;
    r.nread = (ssize_t) len;
    r.flags = extra;
    if (sole) {
      /* The buffer held just this datagram: hand it back with it and save
       * the caller a FREE callback. Slot 0 starts at the buffer's base. */
      rb->held = 0;
      chunk = rb->buf;
      r.buf = &chunk;
    } else {
      chunk.base = rb->iov[rb->next - 1].iov_base;
      chunk.len = len;
      r.buf = &chunk;
      r.flags |= UVQ_UDP_MMSG_CHUNK;
    }
    call_recv(s, &r);
  }

  /* Return the buffer once everything in it was delivered, or when the
   * handle closes (closing discards what was read but not delivered, as
   * closing a socket discards its receive queue). */
  if (rb->held &&
      (rb->next >= rb->count || (s->flags & UVQ__F_CLOSING))) {
    rb->held = 0;
    chunk = rb->buf;
    recv_init(&r);
    r.nread = 0;
    r.buf = &chunk;
    r.flags = UVQ_UDP_MMSG_FREE;
    call_recv(s, &r);
  }
}

/* Reads and delivers datagrams: a bounded number of syscalls per readable
 * event, so one busy socket cannot starve the loop. */
static void do_read(struct uvq__udp_state* s) {
  struct uvq__recv_batch* rb;
  unsigned int slot;
  unsigned int batch;
  unsigned int n;
  unsigned int i;
  size_t slot_len;
  uv_buf_t buf;
  int reads;
  int r;

  rb = s->rb;
  for (reads = 0; reads < UVQ__READS_PER_EVENT; reads++) {
    if (!(s->flags & UVQ__F_RECEIVING) || (s->flags & UVQ__F_CLOSING))
      return;
    if (rb->held) {
      deliver(s);
      if (rb->held)
        return;
      continue;
    }

    slots_in_effect(s, &slot, &batch);
    buf = uv_buf_init(NULL, 0);
    s->alloc_cb(s->handle, (size_t) slot * batch, &buf);
    if (s->flags & UVQ__F_CLOSING) {
      /* alloc_cb closed the handle; give the buffer straight back. */
      deliver_empty(s, &buf, UV_ECANCELED);
      return;
    }
    if (buf.base == NULL || buf.len == 0) {
      deliver_empty(s, &buf, UV_ENOBUFS);
      return;
    }

    n = (unsigned int) (buf.len / slot);
    if (n > batch)
      n = batch;
    slot_len = slot;
    if (n == 0) {
      n = 1;
      slot_len = buf.len;
    }
    for (i = 0; i < n; i++) {
      rb->iov[i].iov_base = buf.base + i * slot_len;
      rb->iov[i].iov_len = slot_len;
      memset(&rb->msgs[i].hdr, 0, sizeof(rb->msgs[i].hdr));
      rb->msgs[i].hdr.msg_name = &rb->peers[i];
      rb->msgs[i].hdr.msg_namelen = sizeof(rb->peers[i]);
      rb->msgs[i].hdr.msg_iov = &rb->iov[i];
      rb->msgs[i].hdr.msg_iovlen = 1;
      rb->msgs[i].hdr.msg_control = rb->control[i];
      rb->msgs[i].hdr.msg_controllen = sizeof(rb->control[i]);
      rb->msgs[i].len = 0;
    }

    r = uvq__io_recv(s, rb->msgs, n);
    if (r == -EAGAIN || r == -EWOULDBLOCK) {
      /* As in libuv: nread 0 with addr NULL means nothing was read. */
      deliver_empty(s, &buf, 0);
      return;
    }
    if (r < 0) {
      deliver_empty(s, &buf, r);
      return;
    }

    rb->buf = buf;
    rb->held = 1;
    rb->count = (unsigned int) r;
    rb->next = 0;
    rb->seg_offset = 0;
    rb->meta_valid = 0;
    deliver(s);
    if (rb->held)
      return;
    /* A short batch means the socket is drained: save the EAGAIN call.
     * The loop polls level-triggered, so anything newer wakes it again. */
    if ((unsigned int) r < n)
      return;
  }
}

int uvq_udp_recv_start2(uvq_udp_t* handle,
                        uvq_udp_alloc_cb alloc_cb,
                        uvq_udp_recv_cb recv_cb) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL || alloc_cb == NULL || recv_cb == NULL)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  if (s->flags & UVQ__F_RECEIVING)
    return UV_EALREADY;
  if (s->rb == NULL) {
    s->rb = calloc(1, sizeof(*s->rb));
    if (s->rb == NULL)
      return UV_ENOMEM;
  }
  s->alloc_cb = alloc_cb;
  s->recv_cb = recv_cb;
  s->flags |= UVQ__F_RECEIVING;
  update_poll(s);
  /* Datagrams parked by an earlier recv_stop are delivered from the loop,
   * never from inside this call. */
  if (s->rb->held)
    uv_timer_start(&s->kick, on_kick, 0, 0);
  return 0;
}

int uvq_udp_recv_stop(uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL)
    return UV_EINVAL;
  if (!(s->flags & UVQ__F_RECEIVING))
    return 0;
  s->flags &= ~UVQ__F_RECEIVING;
  uv_timer_stop(&s->kick);
  update_poll(s);
  return 0;
}

static void on_kick(uv_timer_t* timer) {
  struct uvq__udp_state* s;

  s = timer->data;
  if ((s->flags & UVQ__F_RECEIVING) && s->rb != NULL && s->rb->held)
    do_read(s);
}

/* ---- sending ------------------------------------------------------------- */

/* How one message will go out. */
struct plan {
  size_t total;          /* payload bytes */
  unsigned int nseg;     /* datagrams it makes */
  int software;          /* segment in software */
  struct uvq__send_meta meta;
};

static int dest_is_v4(const struct uvq__udp_state* s,
                      const struct sockaddr* addr) {
  struct sockaddr_storage peer;
  socklen_t len;

  if (s->family == AF_INET)
    return 1;
  if (addr != NULL)
    return is_v4mapped(addr);
  /* Connected dual-stack socket: the peer decides. */
  len = sizeof(peer);
  if (getpeername(s->fd, (struct sockaddr*) &peer, &len))
    return 0;
  return is_v4mapped((struct sockaddr*) &peer);
}

/* Checks one message and decides how it goes out. Errors are the ones the
 * header promises for try_send_batch. */
static int plan_msg(struct uvq__udp_state* s,
                    const uvq_udp_mmsg_t* m,
                    struct plan* p) {
  size_t limit;
  int v4;

  if (m->bufs == NULL && m->nbufs > 0)
    return UV_EINVAL;
  if (m->nbufs > 1024)
    return UV_EINVAL;
  if (m->ecn < -1 || m->ecn > 3)
    return UV_EINVAL;
  if (m->gso_size > 65535)
    return UV_EINVAL;
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
    if (s->family == AF_INET6 && is_v4mapped(m->local) != v4)
      return UV_EAFNOSUPPORT;
    if (!(s->features & UVQ_UDP_FEATURE_SRCADDR))
      return UV_ENOTSUP;
  }

  p->total = uvq__bufs_total(m->bufs, m->nbufs);
  limit = v4 ? UVQ__MAX_PAYLOAD_V4 : UVQ__MAX_PAYLOAD_V6;
  if (p->total > limit)
    return UV_EMSGSIZE;
  p->nseg = m->gso_size ? segments_of(p->total, m->gso_size) : 1;
  if (p->nseg > UVQ__GSO_MAX_SEGMENTS)
    return UV_EMSGSIZE;
  p->software = p->nseg > 1 && !(s->features & UVQ_UDP_FEATURE_GSO);

  memset(&p->meta, 0, sizeof(p->meta));
  p->meta.level_v4 = v4;
  p->meta.tos = -1;
  /* The socket already carries the default codepoint; a control message
   * is needed only for a different one. */
  if (m->ecn >= 0 && m->ecn != (s->tos & 3) &&
      (s->features & UVQ_UDP_FEATURE_ECN_SEND))
    p->meta.tos = uvq__tos_for_ecn(s->tos, m->ecn);
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
                       struct iovec* iov,
                       size_t iovcnt,
                       const struct sockaddr* addr,
                       const struct uvq__send_meta* meta) {
  struct uvq__send_scratch* sb;
  struct msghdr* h;
  size_t clen;
  int err;

  sb = s->sb;
  h = &sb->msgs[i].hdr;
  memset(h, 0, sizeof(*h));
  h->msg_name = (void*) addr;
  h->msg_namelen = addr ? (socklen_t) sockaddr_len(addr) : 0;
  h->msg_iov = iov;
  h->msg_iovlen = iovcnt;
  clen = 0;
  err = uvq__cmsg_encode(sb->control[i], sizeof(sb->control[i]), meta,
                         s->family, &clen);
  if (err)
    return err;
  if (clen > 0) {
    h->msg_control = sb->control[i];
    h->msg_controllen = clen;
  }
  return 0;
}

static int is_eagain(int r) {
  return r == -EAGAIN || r == -EWOULDBLOCK || r == -ENOBUFS;
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
    memcpy(&c->addr, m->addr, (size_t) sockaddr_len(m->addr));
  memset(&c->local, 0, sizeof(c->local));
  if (m->local != NULL)
    memcpy(&c->local, m->local, (size_t) sockaddr_len(m->local));
  c->tos = p->meta.tos;
  c->txtime = p->meta.txtime;
  c->level_v4 = p->meta.level_v4;
  c->sent = 0;
  return 0;
}

/* Sends what the carry buffer holds. 0 when empty, -EAGAIN when the kernel
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
    return -ENOMEM;
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
      return -EAGAIN;
    }
    if (r == -EINVAL && meta.tos >= 0 &&
        (s->features & UVQ_UDP_FEATURE_ECN_SEND)) {
      s->features &= ~UVQ_UDP_FEATURE_ECN_SEND;
      continue;
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

/* Segments a message in software: the first segment goes out at once, so
 * a message the kernel rejects (too big for the path, no route) fails here
 * with its own error and is not accepted; the rest is copied and follows
 * before anything newer. Returns 1 when the message was accepted,
 * UV_EAGAIN, or the first segment's error. */
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
  first = p->total < m->gso_size ? p->total : m->gso_size;
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
  s->stats.gso_fallbacks++;
  if (p->total > first) {
    r = carry_load(s, m, p, first);
    if (r)
      return r;
    carry_flush(s);
  }
  return 1;
}

/* When the kernel refuses a GSO send, the cause is either GSO itself (no
 * checksum offload on the route: EIO; SO_NO_CHECK: EINVAL) or the message
 * (a segment larger than the path allows). Sending the message segmented
 * in software tells them apart: if its first segment goes, GSO was the
 * problem and is switched off for this socket, and the rest follows at
 * once; if it fails, the message's own error is reported and GSO stays. */
static int gso_refused(struct uvq__udp_state* s,
                       const uvq_udp_mmsg_t* m,
                       const struct plan* p) {
  int r;

  r = software_send(s, m, p);
  if (r == 1)
    s->features &= ~UVQ_UDP_FEATURE_GSO;
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
  int tos[UVQ__SEND_BATCH_MAX];
  int err;
  int r;

  sb = scratch(s);
  if (sb == NULL)
    return UV_ENOMEM;

  sent = 0;
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
      err = build_entry(s, n, (struct iovec*) m->bufs, m->nbufs, m->addr,
                        &p.meta);
      if (err)
        break;
      nseg[n] = p.nseg;
      bytes[n] = p.total;
      gso[n] = p.meta.gso_size > 0;
      tos[n] = p.meta.tos;
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
        /* On a short count the next round finds out why. */
        continue;
      }
      if (is_eagain(r)) {
        s->stats.send_eagain++;
        break;
      }
      if ((r == -EIO || r == -EINVAL) && gso[0]) {
        plan_msg(s, &msgs[sent], &p);
        r = gso_refused(s, &msgs[sent], &p);
        if (r == 1) {
          sent++;
          continue;
        }
        if (r == UV_EAGAIN)
          break;
        if (r == UV_EINVAL && tos[0] >= 0 &&
            (s->features & UVQ_UDP_FEATURE_ECN_SEND)) {
          s->features &= ~UVQ_UDP_FEATURE_ECN_SEND;
          continue;
        }
        return sent ? (int) sent : r;
      }
      if (r == -EINVAL && tos[0] >= 0 &&
          (s->features & UVQ_UDP_FEATURE_ECN_SEND)) {
        /* The kernel rejects the ECN control message: stop marking per
         * message on this socket and send the same message without it. */
        s->features &= ~UVQ_UDP_FEATURE_ECN_SEND;
        continue;
      }
      return sent ? (int) sent : r;
    }

    /* Message `sent` is invalid, or must be segmented in software. */
    if (err)
      return sent ? (int) sent : err;
    r = software_send(s, &msgs[sent], &p);
    if (r == UV_EAGAIN)
      break;
    if (r < 0)
      return sent ? (int) sent : r;
    sent++;
  }

  if (s->carry.len > 0)
    update_poll(s);
  if (sent == 0)
    return UV_EAGAIN;
  return (int) sent;
}

int uvq_udp_try_send_batch(uvq_udp_t* handle,
                           const uvq_udp_mmsg_t* msgs,
                           unsigned int count) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL || msgs == NULL || count == 0)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
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

int uvq_udp_send_batch(uvq_udp_send_t* req,
                       uvq_udp_t* handle,
                       const uvq_udp_mmsg_t* msgs,
                       unsigned int count,
                       uvq_udp_send_cb cb) {
  struct uvq__udp_state* s;
  struct uvq__udp_send_state* q;
  size_t size;
  size_t nbufs;
  char* p;
  unsigned int i;
  int err;

  s = live_state(handle);
  if (s == NULL || req == NULL || msgs == NULL || count == 0 || cb == NULL)
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
        memcpy(&addrs[0], msgs[i].addr, (size_t) sockaddr_len(msgs[i].addr));
        q->msgs[i].addr = (struct sockaddr*) &addrs[0];
      }
      if (msgs[i].local != NULL) {
        memcpy(&addrs[1], msgs[i].local, (size_t) sockaddr_len(msgs[i].local));
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
  update_poll(s);
  return 0;
}

static void complete_req(struct uvq__udp_state* s,
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

static void flush_queue(struct uvq__udp_state* s) {
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
    complete_req(s, q, q->status);
    if (s->flags & UVQ__F_CLOSING)
      return;
  }
}

/* ---- the loop ------------------------------------------------------------- */

static void update_poll(struct uvq__udp_state* s) {
  int events;

  if (!s->poll_ready || (s->flags & UVQ__F_CLOSING))
    return;
  events = 0;
  if (s->flags & UVQ__F_RECEIVING)
    events |= UV_READABLE;
  if (s->queue_head != NULL || s->carry.len > 0)
    events |= UV_WRITABLE;
  if (events == s->poll_events && uv_is_active((uv_handle_t*) &s->poll))
    return;
  if (events == 0 && s->poll_events == 0)
    return;
  s->poll_events = events;
  if (events == 0)
    uv_poll_stop(&s->poll);
  else
    uv_poll_start(&s->poll, events, on_poll);
}

/* libuv's poll handle reports POLLERR as status UV_EBADF and stops itself.
 * For a UDP socket POLLERR means a pending socket error (an ICMP error on a
 * connected socket) or a non-empty error queue (IP_RECVERR), both normal
 * events: drain them, report them, and poll again. */
static void handle_pollerr(struct uvq__udp_state* s) {
  socklen_t len;
  int soerr;
  int i;

  if (s->features & UVQ_UDP_RECVERR) {
    for (i = 0; i < UVQ__READS_PER_EVENT; i++) {
      if (s->flags & UVQ__F_CLOSING)
        return;
      if (uvq__io_errqueue(s) <= 0)
        break;
    }
  }
  if (s->flags & UVQ__F_RECEIVING)
    return; /* the read that follows reports a pending socket error */
  soerr = 0;
  len = sizeof(soerr);
  getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
}

static void on_poll(uv_poll_t* poll, int status, int events) {
  struct uvq__udp_state* s;

  s = poll->data;
  if (status < 0) {
    s->poll_events = 0; /* libuv stopped the handle */
    handle_pollerr(s);
    events = UV_READABLE | UV_WRITABLE;
  }
  if ((events & UV_READABLE) && (s->flags & UVQ__F_RECEIVING))
    do_read(s);
  if ((events & UV_WRITABLE) && !(s->flags & UVQ__F_CLOSING))
    flush_queue(s);
  update_poll(s);
}

/* ---- settings and reports -------------------------------------------------- */

int uvq_udp_set_ecn(uvq_udp_t* handle, int ecn) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL || ecn < 0 || ecn > 3)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  return uvq__io_set_tos(s, uvq__tos_for_ecn(s->tos, ecn));
}

int uvq_udp_set_pmtud(uvq_udp_t* handle, int mode) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL)
    return UV_EINVAL;
  if (mode != UVQ_UDP_PMTUD_OFF && mode != UVQ_UDP_PMTUD_DO &&
      mode != UVQ_UDP_PMTUD_PROBE)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  return uvq__io_set_pmtud(s, mode);
}

int uvq_udp_getmtu(const uvq_udp_t* handle, size_t* mtu) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL || mtu == NULL)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  if (!(s->flags & UVQ__F_CONNECTED))
    return UV_ENOTCONN;
  return uvq__io_getmtu(s, mtu);
}

unsigned int uvq_udp_gso_max_segments(const uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL || !(s->features & UVQ_UDP_FEATURE_GSO))
    return 0;
  return UVQ__GSO_MAX_SEGMENTS;
}

static int buffer_size(uvq_udp_t* handle, int* value, int opt) {
  struct uvq__udp_state* s;
  socklen_t len;

  s = live_state(handle);
  if (s == NULL || value == NULL || *value < 0)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  if (*value == 0) {
    len = sizeof(*value);
    if (getsockopt(s->fd, SOL_SOCKET, opt, value, &len))
      return uvq__errno();
    return 0;
  }
  if (setsockopt(s->fd, SOL_SOCKET, opt, value, sizeof(*value)))
    return uvq__errno();
  return 0;
}

int uvq_udp_send_buffer_size(uvq_udp_t* handle, int* value) {
  return buffer_size(handle, value, SO_SNDBUF);
}

int uvq_udp_recv_buffer_size(uvq_udp_t* handle, int* value) {
  return buffer_size(handle, value, SO_RCVBUF);
}

unsigned int uvq_udp_features(const uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL || s->fd == -1)
    return 0;
  return s->features;
}

int uvq_udp_get_stats(const uvq_udp_t* handle, uvq_udp_stats_t* stats) {
  if (handle == NULL || handle->state_ == NULL || stats == NULL)
    return UV_EINVAL;
  *stats = handle->state_->stats;
  return 0;
}

int uvq_udp_is_active(const uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL)
    return 0;
  return (s->flags & UVQ__F_RECEIVING) || s->queue_head != NULL ||
         s->carry.len > 0;
}

void uvq_udp_ref(uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL)
    return;
  s->flags &= ~UVQ__F_UNREF;
  if (s->poll_ready)
    uv_ref((uv_handle_t*) &s->poll);
  uv_ref((uv_handle_t*) &s->kick);
}

void uvq_udp_unref(uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = live_state(handle);
  if (s == NULL)
    return;
  s->flags |= UVQ__F_UNREF;
  if (s->poll_ready)
    uv_unref((uv_handle_t*) &s->poll);
  uv_unref((uv_handle_t*) &s->kick);
}

/* ---- closing ---------------------------------------------------------------- */

static void finish_close(struct uvq__udp_state* s) {
  struct uvq__udp_send_state* q;
  uvq_udp_close_cb cb;
  uvq_udp_t* handle;

  /* Requests that never went: their callbacks, oldest first. */
  while ((q = s->queue_head) != NULL)
    complete_req(s, q, UV_ECANCELED);

  /* A parked batch buffer goes back to its owner. */
  if (s->rb != NULL && s->rb->held && s->recv_cb != NULL)
    deliver(s);

  handle = s->handle;
  cb = s->close_cb;
  free(s->rb);
  free(s->sb);
  free(s->carry.data);
  free(s);
  handle->state_ = NULL;
  if (cb != NULL)
    cb(handle);
}

static void on_part_closed(uv_handle_t* h) {
  struct uvq__udp_state* s;

  s = h->data;
  if (--s->pending_closes == 0)
    finish_close(s);
}

void uvq_udp_close(uvq_udp_t* handle, uvq_udp_close_cb close_cb) {
  struct uvq__udp_state* s;

  if (handle == NULL || handle->state_ == NULL)
    return;
  s = handle->state_;
  if (s->flags & UVQ__F_CLOSING)
    return;
  s->flags |= UVQ__F_CLOSING;
  s->close_cb = close_cb;

  if (s->poll_ready) {
    s->pending_closes++;
    uv_close((uv_handle_t*) &s->poll, on_part_closed);
  }
  /* The poll handle is stopped by uv_close, so the descriptor can go now:
   * any later use of the handle sees UVQ__F_CLOSING first. */
  if (s->fd != -1) {
    close(s->fd);
    s->fd = -1;
  }
  /* The timer is always there, so close_cb is always deferred to the
   * loop's close phase, as libuv promises for its own handles. */
  s->pending_closes++;
  uv_close((uv_handle_t*) &s->kick, on_part_closed);
}

int uvq_udp_is_closing(const uvq_udp_t* handle) {
  if (handle == NULL || handle->state_ == NULL)
    return 1;
  return (handle->state_->flags & UVQ__F_CLOSING) != 0;
}
