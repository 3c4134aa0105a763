/* The uvq UDP handle core: lifecycle, addresses, settings, reports, loop
 * integration and close. The receive path is in udp-recv.c, the send path
 * in udp-send.c, and platform work (socket options, the receive and send
 * syscalls, the error queue) in io-linux.c, io-posix.c or io-win.c. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* uv_buf_t is documented to match struct iovec on Unix (and WSABUF on
 * Windows), and libuv itself passes arrays of one as the other; uvq does
 * the same to send the caller's buffers without copying them. */
_Static_assert(sizeof(uv_buf_t) == sizeof(uvq__iovec_t), "uv_buf_t layout");
_Static_assert(offsetof(uv_buf_t, base) == offsetof(uvq__iovec_t, iov_base),
               "uv_buf_t layout");
_Static_assert(offsetof(uv_buf_t, len) == offsetof(uvq__iovec_t, iov_len),
               "uv_buf_t layout");

#define UVQ__BIND_FLAGS                                                      \
  (UVQ_UDP_IPV6ONLY | UVQ_UDP_REUSEADDR | UVQ_UDP_REUSEPORT |                \
   UVQ_UDP_RECVMMSG | UVQ__CONFIGURE_FLAGS)
#define UVQ__CONFIGURE_FLAGS                                                 \
  (UVQ_UDP_RECVECN | UVQ_UDP_PMTUD | UVQ_UDP_RECVPKTINFO | UVQ_UDP_GRO |      \
   UVQ_UDP_GRO_RAW | UVQ_UDP_TXTIME | UVQ_UDP_RECVERR)

static void on_poll(uv_poll_t* poll, int status, int events);
static void refresh_local(struct uvq__udp_state* s);

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

/* Watches fd with a poll handle and records what the socket offers. Only
 * called once nothing else can fail, since an initialized poll handle can
 * only be undone asynchronously. */
static int attach_socket(struct uvq__udp_state* s, int fd, int family) {
  int tos;
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
  s->features |= uvq__io_base_features(s);
  refresh_local(s);
  if (uvq__io_get_tos(s, &tos) == 0)
    s->tos = tos;
  s->tos4 = s->tos;
  return 0;
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

  /* Everything that can fail comes before the first libuv handle is
   * initialized, so a failed init leaves nothing behind for the loop. */
  fd = -1;
  if (family != AF_UNSPEC) {
    fd = uvq__io_socket((int) family);
    if (fd < 0)
      return fd;
  }
  s = calloc(1, sizeof(*s));
  if (s == NULL) {
    if (fd != -1)
      uvq__io_close(fd);
    return UV_ENOMEM;
  }
  s->handle = handle;
  s->fd = -1;
  handle->loop = loop;
  if (fd != -1) {
    err = attach_socket(s, fd, (int) family);
    if (err) {
      uvq__io_close(fd);
      free(s);
      return err;
    }
  }
  uv_timer_init(loop, &s->kick); /* cannot fail */
  s->kick.data = s;
  handle->state_ = s;
  return 0;
}

int uvq_udp_init(uv_loop_t* loop, uvq_udp_t* handle) {
  return uvq_udp_init_ex(loop, handle, AF_UNSPEC);
}

static void refresh_local(struct uvq__udp_state* s) {
  struct sockaddr_storage ss;
  socklen_t len;
  int v;

  len = sizeof(ss);
  if (uvq__sock_name(s->fd, (struct sockaddr*) &ss, &len, 0) == 0) {
    if (ss.ss_family == AF_INET)
      s->port = ntohs(((struct sockaddr_in*) &ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
      s->port = ntohs(((struct sockaddr_in6*) &ss)->sin6_port);
  }
  /* The address-sharing flags are reported as the socket has them, also
   * on a socket adopted with uvq_udp_open. */
  s->features &= ~(UVQ_UDP_IPV6ONLY | UVQ_UDP_REUSEADDR | UVQ_UDP_REUSEPORT);
  s->flags &= ~UVQ__F_V6ONLY;
  /* Zeroed first: Wine writes only one byte of these BOOL options. */
  v = 0;
  len = sizeof(v);
  if (s->family == AF_INET6 &&
      uvq__sock_getopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &len) == 0 && v) {
    s->flags |= UVQ__F_V6ONLY;
    s->features |= UVQ_UDP_IPV6ONLY;
  }
  v = 0;
  len = sizeof(v);
  if (uvq__sock_getopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &v, &len) == 0 && v)
    s->features |= UVQ_UDP_REUSEADDR;
#ifdef SO_REUSEPORT
  v = 0;
  len = sizeof(v);
  if (uvq__sock_getopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &v, &len) == 0 && v)
    s->features |= UVQ_UDP_REUSEPORT;
#endif
}

int uvq_udp_open(uvq_udp_t* handle, uv_os_sock_t sock) {
  struct uvq__udp_state* s;
  struct sockaddr_storage ss;
  socklen_t len;
  int type;
  int fd;
  int err;

  s = uvq__live_state(handle);
  fd = uvq__sock_to_fd(sock);
  if (s == NULL || fd < 0)
    return UV_EINVAL;
  if (s->fd != -1)
    return UV_EBUSY;

  len = sizeof(type);
  err = uvq__sock_getopt(fd, SOL_SOCKET, SO_TYPE, &type, &len);
  if (err)
    return err;
  if (type != SOCK_DGRAM)
    return UV_EINVAL;
  len = sizeof(ss);
  err = uvq__sock_name(fd, (struct sockaddr*) &ss, &len, 0);
  if (err)
    return err;
  if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
    return UV_EINVAL;

  err = uvq__io_adopt(fd);
  if (err)
    return err;

  err = attach_socket(s, fd, ss.ss_family);
  if (err)
    return err;
  refresh_local(s);
  if (s->port != 0)
    s->flags |= UVQ__F_BOUND;
  len = sizeof(ss);
  if (uvq__sock_name(fd, (struct sockaddr*) &ss, &len, 1) == 0) {
    s->flags |= UVQ__F_CONNECTED;
    if (ss.ss_family == AF_INET || uvq__is_v4mapped((struct sockaddr*) &ss))
      s->flags |= UVQ__F_PEER_V4;
  }
  return 0;
}

/* Sets the options bind asks for, binds, and enables features. */
static int bind_socket(struct uvq__udp_state* s,
                       const struct sockaddr* addr,
                       unsigned int flags) {
  int yes;
  int err;

  yes = 1;
  if (flags & UVQ_UDP_REUSEADDR) {
    err = uvq__sock_setopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (err)
      return err;
  }
  if (flags & UVQ_UDP_REUSEPORT) {
#ifdef SO_REUSEPORT
    err = uvq__sock_setopt(s->fd, SOL_SOCKET, SO_REUSEPORT, &yes, sizeof(yes));
    if (err)
      return err;
#else
    return UV_ENOTSUP;
#endif
  }
  if (flags & UVQ_UDP_IPV6ONLY) {
    err = uvq__sock_setopt(s->fd, IPPROTO_IPV6, IPV6_V6ONLY, &yes, sizeof(yes));
    if (err)
      return err;
  }
  err = uvq__sock_bind(s->fd, addr, (socklen_t) uvq__sockaddr_len(addr));
  if (err)
    return err;
  s->flags |= UVQ__F_BOUND;
  refresh_local(s);
  if (flags & UVQ__CONFIGURE_FLAGS)
    return uvq__io_configure(s, flags & UVQ__CONFIGURE_FLAGS);
  return 0;
}

int uvq_udp_bind(uvq_udp_t* handle,
                 const struct sockaddr* addr,
                 unsigned int flags) {
  struct uvq__udp_state* s;
  int family;
  int fd;
  int err;

  s = uvq__live_state(handle);
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

  if (s->fd != -1) {
    if (s->family != family)
      return UV_EINVAL;
    return bind_socket(s, addr, flags);
  }

  /* A socket made here is attached only once everything succeeded, and
   * closed otherwise, so a failed bind leaves the handle as it was. */
  fd = uvq__io_socket(family);
  if (fd < 0)
    return fd;
  s->fd = fd;
  s->family = family;
  err = bind_socket(s, addr, flags);
  if (err == 0) {
    s->fd = -1;
    err = attach_socket(s, fd, family);
  }
  if (err) {
    uvq__io_close(fd);
    s->fd = -1;
    s->family = 0;
    s->features = 0;
    s->requested = 0;
    s->port = 0;
    s->flags &= ~(UVQ__F_BOUND | UVQ__F_V6ONLY);
  }
  return err;
}

int uvq_udp_configure(uvq_udp_t* handle, unsigned int flags) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
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
  int err;

  s = uvq__live_state(handle);
  if (s == NULL)
    return UV_EINVAL;

  if (addr == NULL) {
    if (!(s->flags & UVQ__F_CONNECTED))
      return UV_ENOTCONN;
    err = uvq__io_disconnect(s);
    if (err)
      return err;
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

  err = uvq__sock_connect(s->fd, addr, (socklen_t) uvq__sockaddr_len(addr));
  if (err)
    return err;
  s->flags |= UVQ__F_CONNECTED;
  if (addr->sa_family == AF_INET || uvq__is_v4mapped(addr))
    s->flags |= UVQ__F_PEER_V4;
  else
    s->flags &= ~UVQ__F_PEER_V4;
  refresh_local(s);
  return 0;
}

/* getsockname or getpeername with uv_udp_getsockname()'s conventions. */
static int get_name(const uvq_udp_t* handle,
                    struct sockaddr* name,
                    int* namelen,
                    int peer) {
  struct uvq__udp_state* s;
  socklen_t len;
  int err;

  s = uvq__live_state(handle);
  if (s == NULL || name == NULL || namelen == NULL || *namelen < 0)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  len = (socklen_t) *namelen;
  err = uvq__sock_name(s->fd, name, &len, peer);
  if (err)
    return err;
  *namelen = (int) len;
  return 0;
}

int uvq_udp_getsockname(const uvq_udp_t* handle,
                        struct sockaddr* name,
                        int* namelen) {
  return get_name(handle, name, namelen, 0);
}

int uvq_udp_getpeername(const uvq_udp_t* handle,
                        struct sockaddr* name,
                        int* namelen) {
  return get_name(handle, name, namelen, 1);
}

int uvq_udp_fileno(const uvq_udp_t* handle, uv_os_fd_t* fd) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
  if (s == NULL || fd == NULL)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  *fd = uvq__fd_to_os(s->fd);
  return 0;
}

/* ---- the loop ------------------------------------------------------------- */

void uvq__udp_update_poll(struct uvq__udp_state* s) {
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

/* libuv's poll handle reports POLLERR as status UV_EBADF, with no events,
 * and stops itself. For a UDP socket POLLERR means a pending socket error
 * (an ICMP error on a connected socket) or a non-empty error queue
 * (IP_RECVERR), both ordinary events: deal with them and poll again.
 * Readability is not known, so reading waits for the next event, which a
 * level-triggered poll delivers at once if data is waiting. */
static void handle_pollerr(struct uvq__udp_state* s) {
  int err;
  int i;

  /* A batch parked by recv_stop and restarted goes first, so that alloc_cb
   * is never asked for a buffer while another one is out. */
  if ((s->flags & UVQ__F_RECEIVING) && s->rb != NULL && s->rb->held)
    uvq__udp_deliver(s);
  if (s->features & UVQ_UDP_RECVERR) {
    for (i = 0; i < UVQ__READS_PER_EVENT; i++) {
      if (s->flags & UVQ__F_CLOSING)
        return;
      if (uvq__io_errqueue(s) <= 0)
        break;
    }
  }
  /* A receiver hears of a pending error at once. Otherwise it stays with
   * the socket for the next send to report, where it belongs. */
  if (s->flags & UVQ__F_RECEIVING) {
    err = uvq__io_pending_error(s);
    if (err != 0)
      uvq__udp_deliver_error(s, err);
  }
}

static void on_poll(uv_poll_t* poll, int status, int events) {
  struct uvq__udp_state* s;

  s = poll->data;
  if (status < 0) {
    s->poll_events = 0; /* libuv stopped the handle */
    handle_pollerr(s);
    events = UV_WRITABLE;
  }
  if ((events & UV_READABLE) && (s->flags & UVQ__F_RECEIVING))
    uvq__udp_read(s);
  if ((events & UV_WRITABLE) && !(s->flags & UVQ__F_CLOSING))
    uvq__udp_flush_queue(s);
  uvq__udp_update_poll(s);
}

/* ---- settings and reports -------------------------------------------------- */

int uvq_udp_set_ecn(uvq_udp_t* handle, int ecn) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
  if (s == NULL || ecn < 0 || ecn > 3)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  return uvq__io_set_ecn(s, ecn);
}

int uvq_udp_set_pmtud(uvq_udp_t* handle, int mode) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
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

  s = uvq__live_state(handle);
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

  s = uvq__live_state(handle);
  if (s == NULL || !(s->features & UVQ_UDP_FEATURE_GSO))
    return 0;
  return UVQ__GSO_MAX_SEGMENTS;
}

static int buffer_size(uvq_udp_t* handle, int* value, int opt) {
  struct uvq__udp_state* s;
  socklen_t len;

  s = uvq__live_state(handle);
  if (s == NULL || value == NULL || *value < 0)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  if (*value == 0) {
    len = sizeof(*value);
    return uvq__sock_getopt(s->fd, SOL_SOCKET, opt, value, &len);
  }
  return uvq__sock_setopt(s->fd, SOL_SOCKET, opt, value, sizeof(*value));
}

int uvq_udp_send_buffer_size(uvq_udp_t* handle, int* value) {
  return buffer_size(handle, value, SO_SNDBUF);
}

int uvq_udp_recv_buffer_size(uvq_udp_t* handle, int* value) {
  return buffer_size(handle, value, SO_RCVBUF);
}

unsigned int uvq_udp_features(const uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
  if (s == NULL || s->fd == -1)
    return 0;
  return s->features;
}

int uvq_udp_get_stats(const uvq_udp_t* handle, uvq_udp_stats_t* stats) {
  const struct uvq__udp_state* s;
  uint64_t drops;

  if (handle == NULL || handle->state_ == NULL || stats == NULL)
    return UV_EINVAL;
  s = handle->state_;
  *stats = s->stats;
  if (s->fd != -1 && (s->features & UVQ_UDP_FEATURE_DROPS) &&
      uvq__io_drops(s, &drops) == 0)
    stats->kernel_drops = drops;
  return 0;
}

int uvq_udp_is_active(const uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
  if (s == NULL)
    return 0;
  return (s->flags & UVQ__F_RECEIVING) || s->queue_head != NULL ||
         s->carry.len > 0;
}

void uvq_udp_ref(uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
  if (s == NULL)
    return;
  s->flags &= ~UVQ__F_UNREF;
  if (s->poll_ready)
    uv_ref((uv_handle_t*) &s->poll);
  uv_ref((uv_handle_t*) &s->kick);
}

void uvq_udp_unref(uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
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

  /* Segments of an accepted message that never went, counted
   * before the callbacks below, which may read the counters. */
  if (s->carry.len > 0 && s->carry.seg > 0)
    s->stats.segments_dropped +=
        (s->carry.len + s->carry.seg - 1) / s->carry.seg;

  /* Queued requests complete, oldest first: with their own result if
   * they were done, UV_ECANCELED if anything of theirs did not go. */
  while ((q = s->queue_head) != NULL)
    uvq__udp_complete_req(s, q,
                          q->status != 0          ? q->status
                          : q->done == q->count ? 0
                                                : UV_ECANCELED);


  /* A parked batch buffer goes back to its owner. */
  if (s->rb != NULL && s->rb->held && s->recv_cb != NULL)
    uvq__udp_deliver(s);

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
    uvq__io_close(s->fd);
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
