/* Socket calls every POSIX platform makes the same way: TOS/TCLASS and its
 * ECN bits, the DF mode and the path MTU, how a failed option is told
 * apart from a real error, and the descriptor's own life (adopting,
 * disconnecting, closing). Used with io-linux.c and io-posix.c; io-win.c
 * has its own. */
#include "internal.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <unistd.h>

int uvq__io_adopt(int fd) {
  int flags;

  flags = fcntl(fd, F_GETFL);
  if (flags == -1 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) == -1)
    return uvq__errno();
  return 0;
}


void uvq__io_close(int fd) {
  close(fd);
}


int uvq__io_disconnect(struct uvq__udp_state* s) {
  struct sockaddr unspec;

  memset(&unspec, 0, sizeof(unspec));
  unspec.sa_family = AF_UNSPEC;
  /* Linux and the BSDs dissolve the association on AF_UNSPEC; some
   * return EAFNOSUPPORT while still doing it. */
  if (connect(s->fd, &unspec, sizeof(unspec)) && errno != EAFNOSUPPORT)
    return uvq__errno();
  return 0;
}


int uvq__io_pending_error(struct uvq__udp_state* s) {
  socklen_t len;
  int soerr;

  soerr = 0;
  len = sizeof(soerr);
  if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
    return 0;
  return uvq__sys_error(soerr);
}

/* True when an option failed because this platform or this socket cannot
 * do it, as opposed to a real error. */
int uvq__sockopt_unsupported(int err) {
  return err == ENOPROTOOPT || err == EOPNOTSUPP || err == EINVAL ||
         err == EAFNOSUPPORT || err == EPROTONOSUPPORT;
}


/* Sets an int option; 0, 1 when unsupported, or -errno. */
int uvq__sockopt_set_int(int fd, int level, int name, int value) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) == 0)
    return 0;
  return uvq__sockopt_unsupported(errno) ? 1 : uvq__errno();
}


/* The IPv4 form of an option applies to an AF_INET socket and to the
 * IPv4-mapped traffic of a dual-stack AF_INET6 socket. */
int uvq__wants_v4(const struct uvq__udp_state* s) {
  return s->family == AF_INET || !(s->flags & UVQ__F_V6ONLY);
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
  if (uvq__wants_v4(s)) {
    err = uvq__sockopt_set_int(s->fd, IPPROTO_IP, IP_MTU_DISCOVER, v4);
    if (err < 0)
      return err;
    ok = err == 0;
  }
  if (s->family == AF_INET6) {
    err = uvq__sockopt_set_int(s->fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, v6);
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
  if (uvq__wants_v4(s)) {
    err = uvq__sockopt_set_int(s->fd, IPPROTO_IP, IP_DONTFRAG, on);
    if (err < 0)
      return err;
    ok = err == 0;
  }
  if (s->family == AF_INET6) {
    err = uvq__sockopt_set_int(s->fd, IPPROTO_IPV6, IPV6_DONTFRAG, on);
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
    return uvq__sockopt_unsupported(errno) ? 1 : uvq__errno();
  v = uvq__tos_for_ecn(v & 0xff, ecn);
  if (setsockopt(fd, level, name, &v, sizeof(v)))
    return uvq__sockopt_unsupported(errno) ? 1 : uvq__errno();
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
  if (uvq__wants_v4(s)) {
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

/* Enables the IPv4 and/or IPv6 form of a receive option, as the socket
 * needs (-1: the platform has no such option), and records feature when
 * the form for the socket's own family took. 0 or -errno. */
int uvq__sockopt_enable_pair(struct uvq__udp_state* s,
                             int v4name,
                             int v6name,
                             unsigned int feature) {
  int r4;
  int r6;

  r4 = 1;
  r6 = 1;
  if (uvq__wants_v4(s) && v4name != -1) {
    r4 = uvq__sockopt_set_int(s->fd, IPPROTO_IP, v4name, 1);
    if (r4 < 0)
      return r4;
  }
  if (s->family == AF_INET6 && v6name != -1) {
    r6 = uvq__sockopt_set_int(s->fd, IPPROTO_IPV6, v6name, 1);
    if (r6 < 0)
      return r6;
  }
  if (s->family == AF_INET6 ? r6 == 0 : r4 == 0)
    s->features |= feature;
  return 0;
}
