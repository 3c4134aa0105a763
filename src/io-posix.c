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

int uvq__io_configure(struct uvq__udp_state* s, unsigned int flags) {
  int err;

  err = 0;
  s->requested |= flags;
  /* GRO, GRO_RAW, TXTIME and RECVERR have no portable form: accepted, not
   * in effect. */
  if (flags & UVQ_UDP_RECVECN) {
    err = uvq__sockopt_enable_pair(s, V4_RECVTOS, V6_RECVTCLASS, UVQ_UDP_RECVECN);
    if (err)
      return err;
  }
  if (flags & UVQ_UDP_RECVPKTINFO) {
    err = uvq__sockopt_enable_pair(s, V4_RECVDST, V6_RECVPKTINFO, UVQ_UDP_RECVPKTINFO);
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

int uvq__io_drops(const struct uvq__udp_state* s, uint64_t* drops) {
  (void) s;
  (void) drops;
  return UV_ENOTSUP;
}

int uvq__io_errqueue(struct uvq__udp_state* s) {
  (void) s;
  return 0;
}
