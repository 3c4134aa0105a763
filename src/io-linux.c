/* The Linux datapath: recvmmsg/sendmmsg, UDP GSO and GRO, SO_TXTIME,
 * IP_RECVERR and SO_MEMINFO. */
#include "internal.h"

#include <fcntl.h>
#include <linux/errqueue.h>
#include <linux/net_tstamp.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* Linux 4.18 */
#endif
#ifndef UDP_GRO
#define UDP_GRO 104 /* Linux 5.0 */
#endif
#ifndef SO_TXTIME
#define SO_TXTIME 61 /* Linux 4.19 */
#endif

/* struct uvq__mmsg stands in for struct mmsghdr in the shared code. */
_Static_assert(sizeof(struct uvq__mmsg) == sizeof(struct mmsghdr),
               "uvq__mmsg layout");
_Static_assert(offsetof(struct uvq__mmsg, len) ==
                   offsetof(struct mmsghdr, msg_len),
               "uvq__mmsg layout");

int uvq__io_socket(int family) {
  int fd;

  fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd == -1)
    return uvq__errno();
  return fd;
}

static int probe_gso(int fd) {
  int v;
  socklen_t len;

  /* Reading UDP_SEGMENT succeeds on kernels that have UDP GSO (4.18+). */
  len = sizeof(v);
  return getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0;
}

int uvq__io_drops(const struct uvq__udp_state* s, uint64_t* drops) {
  uint32_t info[SK_MEMINFO_VARS];
  socklen_t len;

  len = sizeof(info);
  if (getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, info, &len) != 0)
    return uvq__errno();
  if (len < (SK_MEMINFO_DROPS + 1) * sizeof(uint32_t))
    return UV_ENOTSUP;
  *drops = info[SK_MEMINFO_DROPS];
  return 0;
}

unsigned int uvq__io_base_features(struct uvq__udp_state* s) {
  uint64_t drops;
  unsigned int f;

  f = UVQ_UDP_RECVMMSG | UVQ_UDP_FEATURE_SENDMMSG | UVQ_UDP_FEATURE_SRCADDR |
      UVQ_UDP_FEATURE_ECN_SEND;
  if (probe_gso(s->fd))
    f |= UVQ_UDP_FEATURE_GSO;
  /* The kernel's drop count is read when the counters are (SO_MEMINFO,
   * Linux 4.6): SO_RXQ_OVFL would put a control message on every datagram,
   * which measurably slows the receive path. */
  if (uvq__io_drops(s, &drops) == 0)
    f |= UVQ_UDP_FEATURE_DROPS;
  return f;
}

int uvq__io_configure(struct uvq__udp_state* s, unsigned int flags) {
  struct sock_txtime txt;
  int err;

  s->requested |= flags;

  if (flags & UVQ_UDP_RECVECN) {
    err = uvq__sockopt_enable_pair(s, IP_RECVTOS, IPV6_RECVTCLASS,
                                   UVQ_UDP_RECVECN);
    if (err)
      return err;
  }

  if (flags & UVQ_UDP_RECVPKTINFO) {
    err = uvq__sockopt_enable_pair(s, IP_PKTINFO, IPV6_RECVPKTINFO,
                                   UVQ_UDP_RECVPKTINFO);
    if (err)
      return err;
  }

  if (flags & UVQ_UDP_PMTUD) {
    err = uvq__io_set_pmtud(s, UVQ_UDP_PMTUD_PROBE);
    if (err && err != UV_ENOTSUP)
      return err;
  }

  if (flags & UVQ_UDP_RECVERR) {
    err = uvq__sockopt_enable_pair(s, IP_RECVERR, IPV6_RECVERR,
                                   UVQ_UDP_RECVERR);
    if (err)
      return err;
  }

  if (flags & (UVQ_UDP_GRO | UVQ_UDP_GRO_RAW)) {
    err = uvq__sockopt_set_int(s->fd, SOL_UDP, UDP_GRO, 1);
    if (err < 0)
      return err;
    if (err == 0) {
      s->features &= ~(UVQ_UDP_GRO | UVQ_UDP_GRO_RAW);
      s->features |= flags & (UVQ_UDP_GRO | UVQ_UDP_GRO_RAW);
    }
  }

  if (flags & UVQ_UDP_TXTIME) {
    /* fq and etf compare release times with CLOCK_MONOTONIC, the clock of
     * uv_hrtime(); libuv#5116 documents CLOCK_TAI, which fq ignores. */
    memset(&txt, 0, sizeof(txt));
    txt.clockid = CLOCK_MONOTONIC;
    txt.flags = 0;
    if (setsockopt(s->fd, SOL_SOCKET, SO_TXTIME, &txt, sizeof(txt)) == 0)
      s->features |= UVQ_UDP_TXTIME;
    else if (!uvq__sockopt_unsupported(errno) && errno != EPERM)
      return uvq__errno();
  }
  return 0;
}

int uvq__io_recv(struct uvq__udp_state* s,
                 struct uvq__mmsg* msgs,
                 unsigned int n) {
  int r;

  do {
    s->stats.recv_syscalls++;
    r = recvmmsg(s->fd, (struct mmsghdr*) msgs, n, 0, NULL);
  } while (r == -1 && errno == EINTR);
  if (r == -1)
    return uvq__errno();
  return r;
}

int uvq__io_send(struct uvq__udp_state* s,
                 struct uvq__mmsg* msgs,
                 unsigned int n) {
  int r;

  do {
    s->stats.send_syscalls++;
    r = sendmmsg(s->fd, (struct mmsghdr*) msgs, n, 0);
  } while (r == -1 && errno == EINTR);
  if (r == -1)
    return uvq__errno();
  return r;
}

int uvq__io_errqueue(struct uvq__udp_state* s) {
  _Alignas(struct cmsghdr) char control[512];
  struct sock_extended_err ee;
  struct sockaddr_storage dest;
  struct sockaddr_storage offender;
  struct cmsghdr* c;
  struct msghdr hdr;
  struct iovec iov;
  uvq_udp_recv_t r;
  uv_buf_t buf;
  char data[2048];
  unsigned int slot;
  unsigned int batch;
  size_t copied;
  int have_ee;
  ssize_t n;

  memset(&hdr, 0, sizeof(hdr));
  iov.iov_base = data;
  iov.iov_len = sizeof(data);
  hdr.msg_name = &dest;
  hdr.msg_namelen = sizeof(dest);
  hdr.msg_iov = &iov;
  hdr.msg_iovlen = 1;
  hdr.msg_control = control;
  hdr.msg_controllen = sizeof(control);

  do
    n = recvmsg(s->fd, &hdr, MSG_ERRQUEUE);
  while (n == -1 && errno == EINTR);
  s->stats.recv_syscalls++;
  if (n == -1)
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : uvq__errno();

  have_ee = 0;
  memset(&offender, 0, sizeof(offender));
  for (c = CMSG_FIRSTHDR(&hdr); c != NULL; c = CMSG_NXTHDR(&hdr, c)) {
    size_t dlen = c->cmsg_len - CMSG_LEN(0);
    if (!((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_RECVERR) ||
          (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_RECVERR)))
      continue;
    if (dlen < sizeof(ee))
      continue;
    memcpy(&ee, CMSG_DATA(c), sizeof(ee));
    have_ee = 1;
    /* The reporting node's address follows the extended error. */
    if (dlen > sizeof(ee) && ee.ee_origin != SO_EE_ORIGIN_LOCAL) {
      size_t olen = dlen - sizeof(ee);
      if (olen > sizeof(offender))
        olen = sizeof(offender);
      memcpy(&offender, CMSG_DATA(c) + sizeof(ee), olen);
    }
  }
  s->stats.errqueue_entries++;
  if (!have_ee || !(s->flags & UVQ__F_RECEIVING))
    return 1;

  /* The entry goes into a buffer from alloc_cb like any datagram, asked
   * for with the usual suggested size. */
  uvq__udp_slots(s, &slot, &batch);
  buf = uv_buf_init(NULL, 0);
  s->alloc_cb(s->handle, (size_t) slot * batch, &buf);
  copied = 0;
  if (buf.base != NULL) {
    copied = (size_t) n < buf.len ? (size_t) n : buf.len;
    memcpy(buf.base, data, copied);
  }

  memset(&r, 0, sizeof(r));
  r.buf = &buf;
  r.nread = (ssize_t) copied;
  r.addr = hdr.msg_namelen > 0 ? (struct sockaddr*) &dest : NULL;
  r.flags = UVQ_UDP_RECV_ERRQUEUE;
  /* The kernel quotes as much of the failed datagram as fits. */
  if ((hdr.msg_flags & MSG_TRUNC) || copied < (size_t) n)
    r.flags |= UVQ_UDP_PARTIAL;
  if (hdr.msg_flags & MSG_CTRUNC)
    r.flags |= UVQ_UDP_CTRUNC;
  r.error = -(int) ee.ee_errno;
  if (ee.ee_errno == EMSGSIZE)
    r.mtu = ee.ee_info;
  if (offender.ss_family == AF_INET || offender.ss_family == AF_INET6)
    r.offender = (struct sockaddr*) &offender;
  uvq__udp_deliver_one(s, &r);
  return 1;
}
