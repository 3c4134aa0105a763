/* The portable POSIX datapath: one recvmsg or sendmsg per datagram, and
 * whatever of ECN, pktinfo and DF the platform's headers offer. No GSO,
 * GRO, TXTIME or error queue: uvq segments in software and reports only
 * what is in effect. Built on non-Linux systems, and on Linux with
 * -DUVQ_PORTABLE=ON so the whole suite can run against it. */
#include "internal.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

int uvq__io_socket(int family) {
  int flags;
  int fd;

  fd = socket(family, SOCK_DGRAM, 0);
  if (fd == -1)
    return uvq__errno();
  flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1 ||
      fcntl(fd, F_SETFD, FD_CLOEXEC) == -1) {
    flags = uvq__errno();
    close(fd);
    return flags;
  }
  return fd;
}

/* Receive options by family, -1 where the platform lacks one: OpenBSD has
 * no IP_RECVTOS, FreeBSD and OpenBSD name the IPv4 destination address
 * IP_RECVDSTADDR. */
#ifdef IP_RECVTOS
#define V4_RECVTOS IP_RECVTOS
#else
#define V4_RECVTOS -1
#endif
#ifdef IPV6_RECVTCLASS
#define V6_RECVTCLASS IPV6_RECVTCLASS
#else
#define V6_RECVTCLASS -1
#endif
#if defined(IP_PKTINFO)
#define V4_RECVDST IP_PKTINFO
#elif defined(IP_RECVDSTADDR)
#define V4_RECVDST IP_RECVDSTADDR
#else
#define V4_RECVDST -1
#endif
#ifdef IPV6_RECVPKTINFO
#define V6_RECVPKTINFO IPV6_RECVPKTINFO
#else
#define V6_RECVPKTINFO -1
#endif

static int unsupported(int err) {
  return err == ENOPROTOOPT || err == EOPNOTSUPP || err == EINVAL ||
         err == EAFNOSUPPORT;
}

static int set_int(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) == 0)
    return 0;
  return unsupported(errno) ? 1 : uvq__errno();
}

static int wants_v4(const struct uvq__udp_state* s) {
  return s->family == AF_INET || !(s->flags & UVQ__F_V6ONLY);
}

unsigned int uvq__io_base_features(struct uvq__udp_state* s) {
  unsigned int f;

  f = 0;
  (void) s;
#if (defined(IP_PKTINFO) || defined(IP_SENDSRCADDR)) && defined(IPV6_PKTINFO)
  f |= UVQ_UDP_FEATURE_SRCADDR;
#endif
#if defined(IP_TOS) && defined(IPV6_TCLASS)
  f |= UVQ_UDP_FEATURE_ECN_SEND;
#endif
  return f;
}

int uvq__io_set_pmtud(struct uvq__udp_state* s, int mode) {
#if defined(IP_MTU_DISCOVER) && defined(IPV6_MTU_DISCOVER)
  int v4;
  int v6;
  int ok;
  int err;

  v4 = mode == UVQ_UDP_PMTUD_OFF  ? IP_PMTUDISC_DONT
       : mode == UVQ_UDP_PMTUD_DO ? IP_PMTUDISC_DO
                                  : IP_PMTUDISC_PROBE;
  v6 = mode == UVQ_UDP_PMTUD_OFF  ? IPV6_PMTUDISC_DONT
       : mode == UVQ_UDP_PMTUD_DO ? IPV6_PMTUDISC_DO
                                  : IPV6_PMTUDISC_PROBE;
  ok = 0;
  if (wants_v4(s)) {
    err = set_int(s->fd, IPPROTO_IP, IP_MTU_DISCOVER, v4);
    if (err < 0)
      return err;
    ok = err == 0;
  }
  if (s->family == AF_INET6) {
    err = set_int(s->fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, v6);
    if (err < 0)
      return err;
    ok = err == 0;
  }
#elif defined(IP_DONTFRAG) && defined(IPV6_DONTFRAG)
  /* The BSDs and macOS have only a DF switch: DO and PROBE are the same. */
  int on;
  int ok;
  int err;

  on = mode != UVQ_UDP_PMTUD_OFF;
  ok = 0;
  if (wants_v4(s)) {
    err = set_int(s->fd, IPPROTO_IP, IP_DONTFRAG, on);
    if (err < 0)
      return err;
    ok = err == 0;
  }
  if (s->family == AF_INET6) {
    err = set_int(s->fd, IPPROTO_IPV6, IPV6_DONTFRAG, on);
    if (err < 0)
      return err;
    ok = err == 0;
  }
#else
  int ok = 0;
  (void) s;
#endif
  if (!ok)
    return UV_ENOTSUP;
  if (mode == UVQ_UDP_PMTUD_OFF)
    s->features &= ~UVQ_UDP_PMTUD;
  else
    s->features |= UVQ_UDP_PMTUD;
  return 0;
}

int uvq__io_getmtu(const struct uvq__udp_state* s, size_t* mtu) {
#if defined(IP_MTU) && defined(IPV6_MTU)
  socklen_t len;
  int v;

  len = sizeof(v);
  if (s->family == AF_INET) {
    if (getsockopt(s->fd, IPPROTO_IP, IP_MTU, &v, &len))
      return uvq__errno();
  } else {
    if (getsockopt(s->fd, IPPROTO_IPV6, IPV6_MTU, &v, &len))
      return uvq__errno();
  }
  *mtu = (size_t) v;
  return 0;
#else
  (void) s;
  (void) mtu;
  return UV_ENOTSUP;
#endif
}

int uvq__io_get_tos(const struct uvq__udp_state* s, int* tos) {
  socklen_t len;
  int v;

  v = 0;
  len = sizeof(v);
  if (s->family == AF_INET6) {
    if (getsockopt(s->fd, IPPROTO_IPV6, IPV6_TCLASS, &v, &len))
      return uvq__errno();
  } else {
    if (getsockopt(s->fd, IPPROTO_IP, IP_TOS, &v, &len))
      return uvq__errno();
  }
  *tos = v & 0xff;
  return 0;
}

/* Reads an int option and sets its two low bits to ecn; the new value in
 * *out. 0, 1 when the platform lacks the option, or -errno. */
static int set_ecn_bits(int fd, int level, int name, int ecn, int* out) {
  socklen_t len;
  int v;

  v = 0;
  len = sizeof(v);
  if (getsockopt(fd, level, name, &v, &len))
    return unsupported(errno) ? 1 : uvq__errno();
  v = uvq__tos_for_ecn(v & 0xff, ecn);
  if (setsockopt(fd, level, name, &v, sizeof(v)))
    return unsupported(errno) ? 1 : uvq__errno();
  *out = v;
  return 0;
}

int uvq__io_set_ecn(struct uvq__udp_state* s, int ecn) {
  int r4;
  int r6;
  int v;

  v = 0;
  r4 = 1;
  r6 = 1;
  if (wants_v4(s)) {
    r4 = set_ecn_bits(s->fd, IPPROTO_IP, IP_TOS, ecn, &v);
    if (r4 < 0)
      return r4;
    if (r4 == 0)
      s->tos4 = v;
  }
  if (s->family == AF_INET6) {
    r6 = set_ecn_bits(s->fd, IPPROTO_IPV6, IPV6_TCLASS, ecn, &v);
    if (r6 < 0)
      return r6;
    if (r6 == 0)
      s->tos = v;
  } else if (r4 == 0) {
    s->tos = s->tos4;
  }
  if (s->family == AF_INET6 ? r6 != 0 : r4 != 0)
    return UV_ENOTSUP;
  return 0;
}

/* Enables one receive option pair; the feature holds if the form for the
 * socket's own family took. */
static int enable_pair(struct uvq__udp_state* s,
                       int v4name,
                       int v6name,
                       unsigned int feature) {
  int r4;
  int r6;

  r4 = 1;
  r6 = 1;
  if (wants_v4(s) && v4name != -1) {
    r4 = set_int(s->fd, IPPROTO_IP, v4name, 1);
    if (r4 < 0)
      return r4;
  }
  if (s->family == AF_INET6 && v6name != -1) {
    r6 = set_int(s->fd, IPPROTO_IPV6, v6name, 1);
    if (r6 < 0)
      return r6;
  }
  if (s->family == AF_INET6 ? r6 == 0 : r4 == 0)
    s->features |= feature;
  return 0;
}

int uvq__io_configure(struct uvq__udp_state* s, unsigned int flags) {
  int err;

  err = 0;
  s->requested |= flags;
  /* GRO, GRO_RAW, TXTIME and RECVERR have no portable form: accepted, not
   * in effect. */
  if (flags & UVQ_UDP_RECVECN) {
    err = enable_pair(s, V4_RECVTOS, V6_RECVTCLASS, UVQ_UDP_RECVECN);
    if (err)
      return err;
  }
  if (flags & UVQ_UDP_RECVPKTINFO) {
    err = enable_pair(s, V4_RECVDST, V6_RECVPKTINFO, UVQ_UDP_RECVPKTINFO);
    if (err)
      return err;
  }
  if (flags & UVQ_UDP_PMTUD) {
    err = uvq__io_set_pmtud(s, UVQ_UDP_PMTUD_PROBE);
    if (err && err != UV_ENOTSUP)
      return err;
  }
  (void) err;
  return 0;
}

int uvq__io_recv(struct uvq__udp_state* s,
                 struct uvq__mmsg* msgs,
                 unsigned int n) {
  unsigned int i;
  ssize_t r;

  for (i = 0; i < n; i++) {
    do {
      s->stats.recv_syscalls++;
      r = recvmsg(s->fd, &msgs[i].hdr, 0);
    } while (r == -1 && errno == EINTR);
    if (r == -1) {
      if (i > 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        break;
      if (i > 0)
        break; /* the error comes back on the next read */
      return uvq__errno();
    }
    msgs[i].len = (unsigned int) r;
  }
  return (int) i;
}

int uvq__io_send(struct uvq__udp_state* s,
                 struct uvq__mmsg* msgs,
                 unsigned int n) {
  unsigned int i;
  ssize_t r;

  for (i = 0; i < n; i++) {
    do {
      s->stats.send_syscalls++;
      r = sendmsg(s->fd, &msgs[i].hdr, 0);
    } while (r == -1 && errno == EINTR);
    if (r == -1) {
      if (i > 0)
        break;
      return uvq__errno();
    }
    msgs[i].len = (unsigned int) r;
  }
  return (int) i;
}

int uvq__io_errqueue(struct uvq__udp_state* s) {
  (void) s;
  return 0;
}
