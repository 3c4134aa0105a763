/* Shared pieces of the UDP tests; see udp-helpers.h. */
#include "udp-helpers.h"

#ifdef _WIN32
#include <iphlpapi.h>
#else
#include <arpa/inet.h>
#include <net/if.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <unistd.h>
#endif

#include "task.h"

int test_portable_build(void) {
#ifdef UVQ_TEST_PORTABLE
  return 1;
#else
  return 0;
#endif
}

int test_windows_build(void) {
#ifdef _WIN32
  return 1;
#else
  return 0;
#endif
}

int test_under_wine(void) {
#ifdef _WIN32
  HMODULE ntdll;

  /* Wine's ntdll exports wine_get_version; Windows' does not. */
  ntdll = GetModuleHandleA("ntdll.dll");
  return ntdll != NULL && GetProcAddress(ntdll, "wine_get_version") != NULL;
#else
  return 0;
#endif
}

unsigned int test_loopback_index(void) {
  unsigned int index;

#ifdef _WIN32
  IP_ADAPTER_ADDRESSES* list;
  IP_ADAPTER_ADDRESSES* a;
  ULONG size;
  ULONG r;

  /* The adapter of type software loopback ("Loopback Pseudo-Interface 1"
   * on Windows, the host's lo under Wine). */
  size = 16384;
  list = malloc(size);
  ASSERT_NOT_NULL(list);
  r = GetAdaptersAddresses(AF_UNSPEC, GAA_FLAG_SKIP_DNS_SERVER, NULL, list,
                           &size);
  if (r == ERROR_BUFFER_OVERFLOW) {
    free(list);
    list = malloc(size);
    ASSERT_NOT_NULL(list);
    r = GetAdaptersAddresses(AF_UNSPEC, GAA_FLAG_SKIP_DNS_SERVER, NULL, list,
                             &size);
  }
  ASSERT_EQ(NO_ERROR, r);
  index = 0;
  for (a = list; a != NULL && index == 0; a = a->Next)
    if (a->IfType == IF_TYPE_SOFTWARE_LOOPBACK)
      index = a->IfIndex;
  free(list);
#else
  /* Linux names it lo, macOS and the BSDs lo0. */
  index = if_nametoindex("lo");
  if (index == 0)
    index = if_nametoindex("lo0");
#endif
  ASSERT_NE(0, index);
  return index;
}

/* --- Buffer ownership --------------------------------------------------- */

void buf_tracker_init(buf_tracker_t* t) {
  memset(t, 0, sizeof(*t));
}

void buf_tracker_alloc(buf_tracker_t* t, size_t size, uv_buf_t* buf) {
  test_buf_t* b;

  if (size == 0) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  if (t->count == t->cap) {
    t->cap = t->cap == 0 ? 16 : 2 * t->cap;
    t->bufs = realloc(t->bufs, t->cap * sizeof(*t->bufs));
    ASSERT_NOT_NULL(t->bufs);
  }
  b = &t->bufs[t->count++];
  b->base = malloc(size);
  ASSERT_NOT_NULL(b->base);
  /* Poison it so that a callback reporting bytes it never wrote shows. */
  memset(b->base, 0xa5, size);
  b->len = size;
  b->returned = 0;
  t->outstanding++;
  *buf = uv_buf_init(b->base, (unsigned int) size);
}

static test_buf_t* find_containing(buf_tracker_t* t, const char* p) {
  unsigned int i;

  for (i = 0; i < t->count; i++)
    if (p >= t->bufs[i].base && p < t->bufs[i].base + t->bufs[i].len)
      return &t->bufs[i];
  return NULL;
}

int buf_tracker_on_recv(buf_tracker_t* t, const uvq_udp_recv_t* recv) {
  test_buf_t* b;
  const char* base;

  ASSERT_NOT_NULL(recv);
  base = recv->buf != NULL ? recv->buf->base : NULL;
  if (recv->flags & UVQ_UDP_MMSG_CHUNK) {
    /* A chunk lends a view into a buffer that is still outstanding. */
    ASSERT_BITS_CLEAR(recv->flags, UVQ_UDP_MMSG_FREE);
    ASSERT_NOT_NULL(base);
    b = find_containing(t, base);
    if (b == NULL)
      test_fail(__FILE__, __LINE__,
                "MMSG_CHUNK callback points at %p, outside every buffer "
                "alloc_cb handed out",
                (const void*) base);
    if (b->returned)
      test_fail(__FILE__, __LINE__,
                "MMSG_CHUNK callback points into buffer %p, which was "
                "already returned",
                (const void*) b->base);
    if (recv->nread > 0)
      ASSERT_LE(base + recv->nread - b->base, (intmax_t) b->len);
    return 0;
  }
  if (base == NULL)
    return 0;
  b = find_containing(t, base);
  if (b == NULL)
    test_fail(__FILE__, __LINE__,
              "callback without MMSG_CHUNK returns %p, which alloc_cb never "
              "handed out",
              (const void*) base);
  if (b->base != base)
    test_fail(__FILE__, __LINE__,
              "callback without MMSG_CHUNK returns %p, %td bytes into buffer "
              "%p: the caller could not free it",
              (const void*) base, base - b->base, (const void*) b->base);
  if (b->returned)
    test_fail(__FILE__, __LINE__, "buffer %p returned twice",
              (const void*) base);
  b->returned = 1;
  t->outstanding--;
  return 1;
}

void buf_tracker_assert_all_returned(const buf_tracker_t* t) {
  unsigned int i;

  for (i = 0; i < t->count; i++)
    if (!t->bufs[i].returned)
      test_fail(__FILE__, __LINE__,
                "buffer %u of %u (%p, %zu bytes) never came back in a "
                "callback without MMSG_CHUNK",
                i + 1, t->count, (const void*) t->bufs[i].base,
                t->bufs[i].len);
  ASSERT_EQ(0, t->outstanding);
}

void buf_tracker_free(buf_tracker_t* t) {
  unsigned int i;

  for (i = 0; i < t->count; i++)
    free(t->bufs[i].base);
  free(t->bufs);
  memset(t, 0, sizeof(*t));
}

/* --- Test peer ---------------------------------------------------------- */

static void peer_alloc_cb(uvq_udp_t* handle,
                          size_t suggested_size,
                          uv_buf_t* buf) {
  test_peer_t* peer = handle->data;

  ASSERT_PTR_EQ(handle, &peer->udp);
  ASSERT_EQ(0, peer->close_cbs);
  /* uvq.h: suggested_size is the slot size times the batch size. */
  ASSERT_GT(suggested_size, 0);
  peer->alloc_calls++;
  peer->last_suggested_size = suggested_size;
  if (peer->alloc_refuse > 0) {
    peer->alloc_refuse--;
    buf_tracker_alloc(&peer->tracker, 0, buf);
    return;
  }
  buf_tracker_alloc(&peer->tracker,
                    peer->alloc_size ? peer->alloc_size : suggested_size, buf);
}

static void copy_addr(struct sockaddr_storage* out, const struct sockaddr* a) {
  memset(out, 0, sizeof(*out));
  ASSERT(a->sa_family == AF_INET || a->sa_family == AF_INET6);
  memcpy(out, a, addr_len(a));
}

static void peer_recv_cb(uvq_udp_t* handle, const uvq_udp_recv_t* recv) {
  test_peer_t* peer = handle->data;
  rx_entry_t* e;
  unsigned int seq;

  ASSERT_PTR_EQ(handle, &peer->udp);
  if (peer->close_cbs != 0)
    FATAL("receive callback after close_cb");
  seq = peer->callbacks++;
  buf_tracker_on_recv(&peer->tracker, recv);
  if (recv->flags & UVQ_UDP_MMSG_CHUNK)
    peer->chunk_cbs++;
  if (recv->flags & UVQ_UDP_MMSG_FREE) {
    /* uvq.h: "the last callback for a batch buffer; free buf->base now.
     * nread is 0 and addr is NULL." */
    ASSERT_EQ(0, recv->nread);
    ASSERT_NULL(recv->addr);
    ASSERT_NOT_NULL(recv->buf);
    ASSERT_NOT_NULL(recv->buf->base);
  }
  if (recv->nread < 0)
    ASSERT_NULL(recv->addr);
  if (recv->nread == 0 && recv->addr == NULL &&
      !(recv->flags & UVQ_UDP_RECV_ERRQUEUE)) {
    peer->terminal_cbs++;
    if (recv->flags & UVQ_UDP_MMSG_FREE)
      peer->free_cbs++;
    if (peer->hook != NULL)
      peer->hook(peer, recv, NULL);
    return;
  }
  if (!(recv->flags & UVQ_UDP_RECV_ERRQUEUE)) {
    ASSERT_EQ(0, recv->error);
    ASSERT_EQ(0, recv->mtu);
    ASSERT_NULL(recv->offender);
  }
  if (peer->nrx == peer->rx_cap) {
    peer->rx_cap = peer->rx_cap == 0 ? 32 : 2 * peer->rx_cap;
    peer->rx = realloc(peer->rx, peer->rx_cap * sizeof(*peer->rx));
    ASSERT_NOT_NULL(peer->rx);
  }
  e = &peer->rx[peer->nrx++];
  memset(e, 0, sizeof(*e));
  e->seq = seq;
  e->nread = recv->nread;
  e->flags = recv->flags;
  e->ecn = recv->ecn;
  e->ifindex = recv->ifindex;
  e->segment_size = recv->segment_size;
  e->error = recv->error;
  e->mtu = recv->mtu;
  e->local = recv->local;
  if (recv->nread > 0) {
    ASSERT_NOT_NULL(recv->buf);
    e->data = malloc((size_t) recv->nread);
    ASSERT_NOT_NULL(e->data);
    memcpy(e->data, recv->buf->base, (size_t) recv->nread);
  }
  if (recv->addr != NULL) {
    e->has_addr = 1;
    copy_addr(&e->addr, recv->addr);
  }
  if (recv->offender != NULL) {
    e->has_offender = 1;
    copy_addr(&e->offender, recv->offender);
  }
  if (peer->hook != NULL)
    peer->hook(peer, recv, e);
}

void peer_init(uv_loop_t* loop, test_peer_t* peer) {
  memset(peer, 0, sizeof(*peer));
  peer->loop = loop;
  buf_tracker_init(&peer->tracker);
  ASSERT_OK(uvq_udp_init(loop, &peer->udp));
  ASSERT_PTR_EQ(loop, peer->udp.loop);
  peer->udp.data = peer;
}

int peer_try_bind(test_peer_t* peer, const char* ip, unsigned int flags) {
  struct sockaddr_storage addr;
  int namelen;
  int rc;

  make_addr(&addr, ip, 0);
  rc = uvq_udp_bind(&peer->udp, (const struct sockaddr*) &addr, flags);
  if (rc != 0)
    return rc;
  namelen = sizeof(peer->name);
  ASSERT_OK(uvq_udp_getsockname(&peer->udp, (struct sockaddr*) &peer->name,
                                &namelen));
  ASSERT_EQ(addr.ss_family, peer->name.ss_family);
  ASSERT_NE(0, addr_port((const struct sockaddr*) &peer->name));
  return 0;
}

void peer_bind(test_peer_t* peer, const char* ip, unsigned int flags) {
  ASSERT_OK(peer_try_bind(peer, ip, flags));
}

void peer_start(test_peer_t* peer) {
  ASSERT_OK(uvq_udp_recv_start2(&peer->udp, peer_alloc_cb, peer_recv_cb));
}

unsigned short peer_port(const test_peer_t* peer) {
  return addr_port((const struct sockaddr*) &peer->name);
}

void peer_addr(const test_peer_t* peer,
               const char* ip,
               struct sockaddr_storage* out) {
  make_addr(out, ip, peer_port(peer));
}

int peer_send(test_peer_t* peer,
              const struct sockaddr* to,
              const void* data,
              size_t len,
              int ecn) {
  uvq_udp_mmsg_t msg;
  uv_buf_t buf;

  buf = uv_buf_init((char*) data, (unsigned int) len);
  memset(&msg, 0, sizeof(msg));
  msg.bufs = &buf;
  msg.nbufs = 1;
  msg.addr = to;
  msg.ecn = ecn;
  return uvq_udp_try_send_batch(&peer->udp, &msg, 1, 0);
}

void peer_send_ok(test_peer_t* peer,
                  const struct sockaddr* to,
                  const void* data,
                  size_t len,
                  int ecn) {
  ASSERT_EQ(1, peer_send(peer, to, data, len, ecn));
}

void peer_stats(const test_peer_t* peer, uvq_udp_stats_t* stats) {
  memset(stats, 0xff, sizeof(*stats));
  ASSERT_OK(uvq_udp_get_stats(&peer->udp, stats));
}

uv_os_sock_t peer_fd(const test_peer_t* peer) {
  uv_os_fd_t fd;

  ASSERT_OK(uvq_udp_fileno(&peer->udp, &fd));
#ifdef _WIN32
  /* uv_fileno()'s convention: a Windows socket comes back as a HANDLE. */
  ASSERT_NE((uintptr_t) fd, (uintptr_t) INVALID_SOCKET);
  return (uv_os_sock_t) (uintptr_t) fd;
#else
  ASSERT_GE(fd, 0);
  return fd;
#endif
}

uv_os_sock_t test_socket(int family, int type) {
  uv_os_sock_t sock;

#ifdef _WIN32
  sock = socket(family, type, 0);
  ASSERT_NE((uintptr_t) sock, (uintptr_t) INVALID_SOCKET);
#elif defined(SOCK_CLOEXEC)
  sock = socket(family, type | SOCK_CLOEXEC, 0);
  ASSERT_GE(sock, 0);
#else
  sock = socket(family, type, 0);
  ASSERT_GE(sock, 0);
#endif
  return sock;
}

int test_socket_family(uv_os_sock_t sock) {
#ifdef _WIN32
  WSAPROTOCOL_INFOW info;
  int len;

  len = sizeof(info);
  ASSERT_OK(getsockopt(sock, SOL_SOCKET, SO_PROTOCOL_INFOW, (char*) &info,
                       &len));
  return info.iAddressFamily;
#else
  socklen_t len;
  int domain;

#ifdef SO_DOMAIN
  len = sizeof(domain);
  ASSERT_OK(getsockopt(sock, SOL_SOCKET, SO_DOMAIN, &domain, &len));
#else
  {
    /* macOS has no SO_DOMAIN; an unbound socket still names its family. */
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    len = sizeof(ss);
    ASSERT_OK(getsockname(sock, (struct sockaddr*) &ss, &len));
    domain = ss.ss_family;
  }
#endif
  return domain;
#endif
}

void test_close_socket(uv_os_sock_t sock) {
#ifdef _WIN32
  closesocket(sock);
#else
  close(sock);
#endif
}

static void peer_close_cb(uvq_udp_t* handle) {
  test_peer_t* peer = handle->data;

  ASSERT_PTR_EQ(handle, &peer->udp);
  peer->close_cbs++;
  peer->callbacks_at_close = peer->callbacks;
}

void peer_close(test_peer_t* peer) {
  uvq_udp_close(&peer->udp, peer_close_cb);
  ASSERT(uvq_udp_is_closing(&peer->udp));
}

void peer_finish(test_peer_t* peer) {
  unsigned int i;

  ASSERT_EQ(1, peer->close_cbs);
  ASSERT_EQ(peer->callbacks, peer->callbacks_at_close);
  buf_tracker_assert_all_returned(&peer->tracker);
  buf_tracker_free(&peer->tracker);
  for (i = 0; i < peer->nrx; i++)
    free(peer->rx[i].data);
  free(peer->rx);
  peer->rx = NULL;
  peer->nrx = 0;
}

/* --- Loop --------------------------------------------------------------- */

static void tick_cb(uv_timer_t* timer) {
  /* Only there to make UV_RUN_ONCE return regularly. */
  (void) timer;
}

static void tick_close_cb(uv_handle_t* handle) {
  *(int*) handle->data = 1;
}

static void run_loop_until(uv_loop_t* loop,
                           int (*cond)(void* arg),
                           void* arg,
                           unsigned int timeout_ms,
                           int fail_on_timeout) {
  uv_timer_t tick;
  uint64_t deadline;
  int closed;

  ASSERT_OK(uv_timer_init(loop, &tick));
  ASSERT_OK(uv_timer_start(&tick, tick_cb, 5, 5));
  uv_update_time(loop);
  deadline = uv_now(loop) + timeout_ms;
  while (cond == NULL || !cond(arg)) {
    uv_update_time(loop);
    if (uv_now(loop) >= deadline) {
      if (fail_on_timeout)
        test_fail(__FILE__, __LINE__,
                  "condition not met within %u ms", timeout_ms);
      break;
    }
    uv_run(loop, UV_RUN_ONCE);
  }
  closed = 0;
  tick.data = &closed;
  uv_close((uv_handle_t*) &tick, tick_close_cb);
  /* The handle lives on this stack frame, so its close must complete
   * before the function returns. */
  while (!closed)
    uv_run(loop, UV_RUN_NOWAIT);
}

void run_until(uv_loop_t* loop,
               int (*cond)(void* arg),
               void* arg,
               unsigned int timeout_ms) {
  run_loop_until(loop, cond, arg, timeout_ms, 1);
}

void run_for(uv_loop_t* loop, unsigned int ms) {
  run_loop_until(loop, NULL, NULL, ms, 0);
}

struct rx_wait {
  test_peer_t* peer;
  unsigned int n;
};

static int rx_reached(void* arg) {
  struct rx_wait* w = arg;
  return w->peer->nrx >= w->n;
}

void run_until_rx(uv_loop_t* loop, test_peer_t* peer, unsigned int n) {
  struct rx_wait w;

  w.peer = peer;
  w.n = n;
  run_until(loop, rx_reached, &w, TEST_WAIT_MS);
  run_for(loop, TEST_SETTLE_MS);
  ASSERT_EQ(n, peer->nrx);
}

static void print_handle(uv_handle_t* handle, void* arg) {
  (void) arg;
  fprintf(stderr, "  live handle %p: %s%s%s\n", (void*) handle,
          uv_handle_type_name(uv_handle_get_type(handle)),
          uv_is_active(handle) ? " active" : "",
          uv_is_closing(handle) ? " closing" : "");
}

static void finish_watchdog_cb(uv_timer_t* timer) {
  uv_walk(timer->loop, print_handle, NULL);
  FATAL("the loop did not finish: a handle or request is still alive");
}

void finish_loop(uv_loop_t* loop) {
  uv_timer_t watchdog;
  int rc;

  ASSERT_OK(uv_timer_init(loop, &watchdog));
  ASSERT_OK(uv_timer_start(&watchdog, finish_watchdog_cb, TEST_WAIT_MS, 0));
  uv_unref((uv_handle_t*) &watchdog);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t*) &watchdog, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  rc = uv_loop_close(loop);
  if (rc != 0)
    uv_walk(loop, print_handle, NULL);
  ASSERT_OK(rc);
}

/* --- Addresses and payloads --------------------------------------------- */

void make_addr(struct sockaddr_storage* out, const char* ip,
               unsigned short port) {
  memset(out, 0, sizeof(*out));
  if (strchr(ip, ':') != NULL)
    ASSERT_OK(uv_ip6_addr(ip, port, (struct sockaddr_in6*) out));
  else
    ASSERT_OK(uv_ip4_addr(ip, port, (struct sockaddr_in*) out));
}

socklen_t addr_len(const struct sockaddr* addr) {
  return addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                     : sizeof(struct sockaddr_in);
}

unsigned short addr_port(const struct sockaddr* addr) {
  if (addr->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6*) addr)->sin6_port);
  if (addr->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in*) addr)->sin_port);
  return 0;
}

const char* addr_str(const struct sockaddr* addr, char* out, size_t len) {
  char ip[INET6_ADDRSTRLEN];

  if (addr == NULL) {
    snprintf(out, len, "(null)");
  } else if (addr->sa_family == AF_INET) {
    inet_ntop(AF_INET, &((const struct sockaddr_in*) addr)->sin_addr, ip,
              sizeof(ip));
    snprintf(out, len, "%s:%u", ip, addr_port(addr));
  } else if (addr->sa_family == AF_INET6) {
    inet_ntop(AF_INET6, &((const struct sockaddr_in6*) addr)->sin6_addr, ip,
              sizeof(ip));
    snprintf(out, len, "[%s]:%u", ip, addr_port(addr));
  } else {
    snprintf(out, len, "(family %d)", addr->sa_family);
  }
  return out;
}

void test_assert_addr_eq_(const char* file,
                          int line,
                          const char* a_text,
                          const char* b_text,
                          const struct sockaddr* a,
                          const struct sockaddr* b,
                          int with_port) {
  char sa[80];
  char sb[80];
  int same;

  same = a->sa_family == b->sa_family;
  if (same && a->sa_family == AF_INET)
    same = memcmp(&((const struct sockaddr_in*) a)->sin_addr,
                  &((const struct sockaddr_in*) b)->sin_addr,
                  sizeof(struct in_addr)) == 0;
  else if (same && a->sa_family == AF_INET6)
    same = memcmp(&((const struct sockaddr_in6*) a)->sin6_addr,
                  &((const struct sockaddr_in6*) b)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
  if (same && with_port)
    same = addr_port(a) == addr_port(b);
  if (!same)
    test_fail(file, line, "Assertion failed: %s == %s%s (%s == %s)", a_text,
              b_text, with_port ? "" : " (address only)",
              addr_str(a, sa, sizeof(sa)), addr_str(b, sb, sizeof(sb)));
}

void fill_pattern(void* buf, size_t len, unsigned int seed) {
  unsigned char* p = buf;
  size_t i;

  for (i = 0; i < len; i++)
    p[i] = (unsigned char) (seed * 131u + i * 7u + (i >> 8));
}
