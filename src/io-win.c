/* The Windows datapath: WSARecvMsg and WSASendMsg (reached through
 * WSAIoctl's extension function pointers, as Microsoft documents them),
 * one datagram per call, on the same uv_poll-based handle as on POSIX
 * (uv_poll_init_socket accepts a Winsock socket).
 *
 * What Windows offers, each probed at run time and reported through
 * uvq_udp_features() only when it took effect:
 *   - pktinfo: IP_PKTINFO / IPV6_PKTINFO on receive and as the source
 *     address on send (the latter checked on the wire once per process);
 *   - ECN: IP_RECVECN / IPV6_RECVECN on receive and an IP_ECN / IPV6_ECN
 *     control message per send, where the stack knows them (recent
 *     releases; Wine 8 does not);
 *   - PMTUD: IP_MTU_DISCOVER, or IP_DONTFRAGMENT where only that exists,
 *     and IP_MTU / IPV6_MTU for uvq_udp_getmtu();
 *   - UDP send offload (USO, UDP_SEND_MSG_SIZE) for gso_size and receive
 *     coalescing (URO, UDP_RECV_MAX_COALESCED_SIZE with UDP_COALESCED_INFO)
 *     for UVQ_UDP_GRO / UVQ_UDP_GRO_RAW.
 * Without USO, udp-send.c segments in software, as on Linux without GSO.
 * Windows has no transmit time, error queue or kernel drop count. */
#include "internal.h"

#include <string.h>

/* Windows SDK names that MinGW-w64's headers lack (see ws2ipdef.h and
 * the USO/URO documentation). */
#ifndef IP_RECVECN
#define IP_RECVECN IP_ECN
#endif
#ifndef IPV6_RECVECN
#define IPV6_RECVECN IPV6_ECN
#endif
#ifndef UDP_SEND_MSG_SIZE
#define UDP_SEND_MSG_SIZE 2
#endif
#ifndef UDP_RECV_MAX_COALESCED_SIZE
#define UDP_RECV_MAX_COALESCED_SIZE 3
#endif
#ifndef WSA_FLAG_NO_HANDLE_INHERIT
#define WSA_FLAG_NO_HANDLE_INHERIT 0x80
#endif

/* The largest coalesced receive asked for: a UDP payload of 64 KiB less
 * the UDP header, which is what one receive slot holds with GRO. */
#define URO_MAX_COALESCED (65535u - 8u)

static LPFN_WSARECVMSG recvmsg_fn;
static LPFN_WSASENDMSG sendmsg_fn;
static uv_once_t ext_once = UV_ONCE_INIT;
/* Whether WSASendMsg really sends from the IN_PKTINFO address. */
static int srcaddr_works;
static uv_once_t srcaddr_once = UV_ONCE_INIT;

/* The extension functions are per provider, not per socket; every UDP
 * socket of a process uses the same one, so look them up once. */
static void load_extensions(void) {
  GUID recv_id = WSAID_WSARECVMSG;
  GUID send_id = WSAID_WSASENDMSG;
  DWORD bytes;
  SOCKET probe;

  probe = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
  if (probe == INVALID_SOCKET)
    return;
  if (WSAIoctl(probe, SIO_GET_EXTENSION_FUNCTION_POINTER, &recv_id,
               sizeof(recv_id), &recvmsg_fn, sizeof(recvmsg_fn), &bytes,
               NULL, NULL) != 0)
    recvmsg_fn = NULL;
  if (WSAIoctl(probe, SIO_GET_EXTENSION_FUNCTION_POINTER, &send_id,
               sizeof(send_id), &sendmsg_fn, sizeof(sendmsg_fn), &bytes,
               NULL, NULL) != 0)
    sendmsg_fn = NULL;
  closesocket(probe);
}

int uvq__win_error(int code) {
  /* Codes libuv's table (1.44) leaves as UV_UNKNOWN but a UDP socket
   * meets: an option this stack does not know, and ICMP errors. */
  switch (code) {
    case WSAENOPROTOOPT:
      return UV_ENOPROTOOPT;
    case WSAEOPNOTSUPP:
      return UV_ENOTSUP;
    case WSAENETUNREACH:
      return UV_ENETUNREACH;
    case WSAEHOSTDOWN:
      return UV_EHOSTDOWN;
    case WSAECONNREFUSED:
      return UV_ECONNREFUSED;
    default:
      return uv_translate_sys_error(code);
  }
}

static SOCKET sock_of(const struct uvq__udp_state* s) {
  return uvq__fd_to_sock(s->fd);
}

/* True when an option failed because this Windows (or Wine) does not
 * know it, as opposed to a real error. */
static int unsupported(int err) {
  return err == UV_ENOPROTOOPT || err == UV_EINVAL || err == UV_ENOTSUP ||
         err == UV_EAFNOSUPPORT || err == UV_EPROTONOSUPPORT;
}

/* Sets a DWORD option; 0, 1 when unsupported, or an error. */
static int set_dword(SOCKET sock, int level, int name, DWORD value) {
  if (setsockopt(sock, level, name, (const char*) &value, sizeof(value)) == 0)
    return 0;
  return unsupported(uvq__errno()) ? 1 : uvq__errno();
}

/* Makes a socket behave as uvq expects: non-blocking, and deaf to ICMP
 * port-unreachable. By default Windows fails the next receive of a UDP
 * socket with WSAECONNRESET when an earlier datagram drew a port
 * unreachable, even on an unconnected socket where the error belongs to
 * no one; Linux reports ICMP errors only on connected sockets, where
 * uvq__io_recv maps the error as a fallback. */
static int prepare_socket(SOCKET sock) {
  u_long yes;
  BOOL off;
  DWORD bytes;

  yes = 1;
  if (ioctlsocket(sock, FIONBIO, &yes) != 0)
    return uvq__errno();
  off = FALSE;
  /* A stack that refuses the ioctl is left as it is: uvq__io_recv then
   * deals with a stray WSAECONNRESET itself. */
  (void) WSAIoctl(sock, SIO_UDP_CONNRESET, &off, sizeof(off), NULL, 0, &bytes,
                  NULL, NULL);
  return 0;
}

int uvq__io_socket(int family) {
  SOCKET sock;
  DWORD off;
  int err;

  uv_once(&ext_once, load_extensions);
  if (recvmsg_fn == NULL || sendmsg_fn == NULL)
    return UV_ENOSYS;
  sock = WSASocketW(family, SOCK_DGRAM, IPPROTO_UDP, NULL, 0,
                    WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (sock == INVALID_SOCKET)
    return uvq__errno();
  err = prepare_socket(sock);
  /* Windows makes AF_INET6 sockets IPv6-only by default; uvq, like libuv
   * and Linux, makes them dual-stack unless UVQ_UDP_IPV6ONLY asks. */
  off = 0;
  if (err == 0 && family == AF_INET6 &&
      setsockopt(sock, IPPROTO_IPV6, IPV6_V6ONLY, (const char*) &off,
                 sizeof(off)) != 0)
    err = uvq__errno();
  if (err) {
    closesocket(sock);
    return err;
  }
  return uvq__sock_to_fd(sock);
}

int uvq__io_adopt(int fd) {
  uv_once(&ext_once, load_extensions);
  if (recvmsg_fn == NULL || sendmsg_fn == NULL)
    return UV_ENOSYS;
  return prepare_socket(uvq__fd_to_sock(fd));
}

void uvq__io_close(int fd) {
  closesocket(uvq__fd_to_sock(fd));
}

int uvq__io_disconnect(struct uvq__udp_state* s) {
  struct sockaddr_storage any;
  int len;

  /* Winsock dissolves the association when connected to the all-zero
   * address of the socket's family. */
  memset(&any, 0, sizeof(any));
  any.ss_family = (ADDRESS_FAMILY) s->family;
  len = s->family == AF_INET6 ? (int) sizeof(struct sockaddr_in6)
                              : (int) sizeof(struct sockaddr_in);
  if (connect(sock_of(s), (struct sockaddr*) &any, len) != 0)
    return uvq__errno();
  return 0;
}

int uvq__io_pending_error(struct uvq__udp_state* s) {
  int soerr;
  int len;

  soerr = 0;
  len = sizeof(soerr);
  if (getsockopt(sock_of(s), SOL_SOCKET, SO_ERROR, (char*) &soerr, &len) != 0)
    return 0;
  return soerr == 0 ? 0 : uvq__sys_error(soerr);
}

/* The IPv4 form of an option applies to an AF_INET socket and to the
 * IPv4-mapped traffic of a dual-stack AF_INET6 socket. */
static int wants_v4(const struct uvq__udp_state* s) {
  return s->family == AF_INET || !(s->flags & UVQ__F_V6ONLY);
}

/* Enables the IPv4 and/or IPv6 form of a receive option and records
 * feature when the form for the socket's own family took. 0 or an
 * error. */
static int enable_pair(struct uvq__udp_state* s,
                       int v4name,
                       int v6name,
                       unsigned int feature) {
  int r4;
  int r6;

  r4 = 1;
  r6 = 1;
  if (wants_v4(s)) {
    r4 = set_dword(sock_of(s), IPPROTO_IP, v4name, 1);
    if (r4 < 0)
      return r4;
  }
  if (s->family == AF_INET6) {
    r6 = set_dword(sock_of(s), IPPROTO_IPV6, v6name, 1);
    if (r6 < 0)
      return r6;
  }
  if (s->family == AF_INET6 ? r6 == 0 : r4 == 0)
    s->features |= feature;
  return 0;
}

/* Whether the stack knows the ECN options. Setting IP_RECVECN (or
 * IPV6_RECVECN) to its default, off, changes nothing and fails where the
 * option does not exist. The IP_ECN control message for sending came in
 * the same Windows release, so this answers for both directions. */
static int probe_ecn(const struct uvq__udp_state* s) {
  if (s->family == AF_INET6)
    return set_dword(sock_of(s), IPPROTO_IPV6, IPV6_RECVECN, 0) == 0;
  return set_dword(sock_of(s), IPPROTO_IP, IP_RECVECN, 0) == 0;
}

/* Whether the stack has UDP send offload: reading UDP_SEND_MSG_SIZE
 * succeeds where it does, which is how msquic probes for it too. */
static int probe_uso(const struct uvq__udp_state* s) {
  DWORD v;
  int len;

  v = 0;
  len = sizeof(v);
  return getsockopt(sock_of(s), IPPROTO_UDP, UDP_SEND_MSG_SIZE, (char*) &v,
                    &len) == 0;
}

/* Windows sends from the address of an IN_PKTINFO /
 * IN6_PKTINFO control message; Wine 8 accepts the message and ignores
 * it. Which one this is shows only on the wire, so a datagram from
 * 127.0.0.2, which every loopback answers for, goes to a socket on
 * 127.0.0.1 once per process, and its source tells. */
static void probe_srcaddr(void) {
  struct sockaddr_in rx_addr;
  struct sockaddr_in from;
  _Alignas(WSACMSGHDR) char control[WSA_CMSG_SPACE(sizeof(IN_PKTINFO))];
  IN_PKTINFO pi;
  WSACMSGHDR* c;
  WSAMSG w;
  WSABUF buf;
  SOCKET rx;
  SOCKET tx;
  fd_set readable;
  struct timeval timeout;
  DWORD bytes;
  char byte;
  int len;

  rx = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
  tx = socket(AF_INET, SOCK_DGRAM, IPPROTO_UDP);
  if (rx == INVALID_SOCKET || tx == INVALID_SOCKET)
    goto done;
  memset(&rx_addr, 0, sizeof(rx_addr));
  rx_addr.sin_family = AF_INET;
  rx_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  len = sizeof(rx_addr);
  if (bind(rx, (struct sockaddr*) &rx_addr, len) != 0 ||
      getsockname(rx, (struct sockaddr*) &rx_addr, &len) != 0)
    goto done;

  memset(control, 0, sizeof(control));
  memset(&pi, 0, sizeof(pi));
  pi.ipi_addr.s_addr = htonl(INADDR_LOOPBACK + 1);
  byte = 'p';
  buf.buf = &byte;
  buf.len = 1;
  memset(&w, 0, sizeof(w));
  w.name = (struct sockaddr*) &rx_addr;
  w.namelen = sizeof(rx_addr);
  w.lpBuffers = &buf;
  w.dwBufferCount = 1;
  w.Control.buf = control;
  w.Control.len = sizeof(control);
  c = WSA_CMSG_FIRSTHDR(&w);
  c->cmsg_level = IPPROTO_IP;
  c->cmsg_type = IP_PKTINFO;
  c->cmsg_len = WSA_CMSG_LEN(sizeof(pi));
  memcpy(WSA_CMSG_DATA(c), &pi, sizeof(pi));
  if (sendmsg_fn(tx, &w, 0, &bytes, NULL, NULL) != 0)
    goto done;

  /* Loopback delivers at once; the wait only bounds a lost datagram. */
  FD_ZERO(&readable);
  FD_SET(rx, &readable);
  timeout.tv_sec = 1;
  timeout.tv_usec = 0;
  if (select(0, &readable, NULL, NULL, &timeout) != 1)
    goto done;
  len = sizeof(from);
  if (recvfrom(rx, &byte, 1, 0, (struct sockaddr*) &from, &len) != 1)
    goto done;
  srcaddr_works = from.sin_addr.s_addr == htonl(INADDR_LOOPBACK + 1);

done:
  if (rx != INVALID_SOCKET)
    closesocket(rx);
  if (tx != INVALID_SOCKET)
    closesocket(tx);
}

unsigned int uvq__io_base_features(struct uvq__udp_state* s) {
  unsigned int f;

  f = 0;
  uv_once(&srcaddr_once, probe_srcaddr);
  if (srcaddr_works)
    f |= UVQ_UDP_FEATURE_SRCADDR;
  if (probe_ecn(s))
    f |= UVQ_UDP_FEATURE_ECN_SEND;
  if (probe_uso(s))
    f |= UVQ_UDP_FEATURE_GSO;
  return f;
}

int uvq__io_configure(struct uvq__udp_state* s, unsigned int flags) {
  int err;

  s->requested |= flags;
  if (flags & UVQ_UDP_RECVECN) {
    err = enable_pair(s, IP_RECVECN, IPV6_RECVECN, UVQ_UDP_RECVECN);
    if (err)
      return err;
  }
  if (flags & UVQ_UDP_RECVPKTINFO) {
    err = enable_pair(s, IP_PKTINFO, IPV6_PKTINFO, UVQ_UDP_RECVPKTINFO);
    if (err)
      return err;
  }
  if (flags & UVQ_UDP_PMTUD) {
    err = uvq__io_set_pmtud(s, UVQ_UDP_PMTUD_PROBE);
    if (err && err != UV_ENOTSUP)
      return err;
  }
  if (flags & (UVQ_UDP_GRO | UVQ_UDP_GRO_RAW)) {
    /* The option is per socket and covers both families. */
    err = set_dword(sock_of(s), IPPROTO_UDP, UDP_RECV_MAX_COALESCED_SIZE,
                    URO_MAX_COALESCED);
    if (err < 0)
      return err;
    if (err == 0) {
      s->features &= ~(UVQ_UDP_GRO | UVQ_UDP_GRO_RAW);
      s->features |= flags & (UVQ_UDP_GRO | UVQ_UDP_GRO_RAW);
    }
  }
  /* UVQ_UDP_TXTIME and UVQ_UDP_RECVERR have no Windows form: accepted,
   * not in effect. */
  return 0;
}

/* Sets the DF mode for one family: IP_MTU_DISCOVER where the stack has it
 * (newer releases), else the plain DF switch, which makes DO
 * and PROBE the same. 0, 1 when neither exists, or an error. */
static int set_pmtud_level(SOCKET sock, int level, int mode) {
  int discover;
  int dontfrag;
  DWORD v;
  int r;

  discover = level == IPPROTO_IP ? IP_MTU_DISCOVER : IPV6_MTU_DISCOVER;
  dontfrag = level == IPPROTO_IP ? IP_DONTFRAGMENT : IPV6_DONTFRAG;
  v = mode == UVQ_UDP_PMTUD_OFF  ? IP_PMTUDISC_DONT
      : mode == UVQ_UDP_PMTUD_DO ? IP_PMTUDISC_DO
                                 : IP_PMTUDISC_PROBE;
  r = set_dword(sock, level, discover, v);
  if (r != 1)
    return r;
  return set_dword(sock, level, dontfrag, mode != UVQ_UDP_PMTUD_OFF);
}

int uvq__io_set_pmtud(struct uvq__udp_state* s, int mode) {
  int ok;
  int err;

  ok = 0;
  if (wants_v4(s)) {
    err = set_pmtud_level(sock_of(s), IPPROTO_IP, mode);
    if (err < 0)
      return err;
    ok = err == 0;
  }
  if (s->family == AF_INET6) {
    err = set_pmtud_level(sock_of(s), IPPROTO_IPV6, mode);
    if (err < 0)
      return err;
    ok = err == 0;
  }
  if (!ok)
    return UV_ENOTSUP;
  if (mode == UVQ_UDP_PMTUD_OFF)
    s->features &= ~UVQ_UDP_PMTUD;
  else
    s->features |= UVQ_UDP_PMTUD;
  return 0;
}

int uvq__io_getmtu(const struct uvq__udp_state* s, size_t* mtu) {
  DWORD v;
  int len;
  int err;
  int r;

  v = 0;
  len = sizeof(v);
  if (s->family == AF_INET)
    r = getsockopt(sock_of(s), IPPROTO_IP, IP_MTU, (char*) &v, &len);
  else
    r = getsockopt(sock_of(s), IPPROTO_IPV6, IPV6_MTU, (char*) &v, &len);
  if (r != 0) {
    err = uvq__errno();
    return unsupported(err) ? UV_ENOTSUP : err;
  }
  *mtu = (size_t) v;
  return 0;
}

int uvq__io_get_tos(const struct uvq__udp_state* s, int* tos) {
  DWORD v;
  int len;
  int r;

  v = 0;
  len = sizeof(v);
  if (s->family == AF_INET6)
    r = getsockopt(sock_of(s), IPPROTO_IPV6, IPV6_TCLASS, (char*) &v, &len);
  else
    r = getsockopt(sock_of(s), IPPROTO_IP, IP_TOS, (char*) &v, &len);
  if (r != 0)
    return uvq__errno();
  *tos = (int) (v & 0xff);
  return 0;
}

/* Windows ignores IP_TOS and has no socket-wide ECN setting: the ECN
 * field is set per message (IP_ECN), so a socket default cannot be
 * kept. uvq_udp_set_ecn() says so; uvq_udp_mmsg_t.ecn works where
 * UVQ_UDP_FEATURE_ECN_SEND is reported. */
int uvq__io_set_ecn(struct uvq__udp_state* s, int ecn) {
  (void) s;
  (void) ecn;
  return UV_ENOTSUP;
}

static void to_wsamsg(WSAMSG* w, uvq__msghdr_t* h) {
  w->name = h->msg_name;
  w->namelen = h->msg_namelen;
  w->lpBuffers = (WSABUF*) h->msg_iov;
  w->dwBufferCount = (ULONG) h->msg_iovlen;
  w->Control.buf = h->msg_control;
  w->Control.len = (ULONG) h->msg_controllen;
  w->dwFlags = 0;
}

static size_t iov_total(const uvq__msghdr_t* h) {
  size_t total;
  size_t i;

  total = 0;
  for (i = 0; i < h->msg_iovlen; i++)
    total += h->msg_iov[i].iov_len;
  return total;
}

/* One WSARecvMsg; 0 with *len set, or an error. */
static int recv_one(struct uvq__udp_state* s, struct uvq__mmsg* m) {
  WSAMSG w;
  DWORD bytes;
  int err;

  for (;;) {
    to_wsamsg(&w, &m->hdr);
    bytes = 0;
    s->stats.recv_syscalls++;
    if (recvmsg_fn(sock_of(s), &w, &bytes, NULL, NULL) == 0)
      break;
    err = WSAGetLastError();
    if (err == WSAEMSGSIZE) {
      /* The datagram was larger than the buffer: Winsock fills the
       * buffer, drops the rest and fails the call; POSIX reports the same
       * with MSG_TRUNC. */
      w.dwFlags |= MSG_TRUNC;
      bytes = (DWORD) iov_total(&m->hdr);
      break;
    }
    if (err == WSAECONNRESET) {
      /* An ICMP port unreachable, reported although SIO_UDP_CONNRESET
       * asked not to. On a connected socket it is the peer's answer, and
       * Linux reports it as ECONNREFUSED; on any other it belongs to no
       * one and is skipped. */
      if (s->flags & UVQ__F_CONNECTED)
        return UV_ECONNREFUSED;
      continue;
    }
    return uvq__win_error(err);
  }
  m->hdr.msg_namelen = w.namelen;
  m->hdr.msg_controllen = w.Control.len;
  m->hdr.msg_flags = (int) w.dwFlags;
  m->len = (unsigned int) bytes;
  return 0;
}

int uvq__io_recv(struct uvq__udp_state* s,
                 struct uvq__mmsg* msgs,
                 unsigned int n) {
  unsigned int i;
  int err;

  for (i = 0; i < n; i++) {
    err = recv_one(s, &msgs[i]);
    if (err) {
      /* After the first datagram the error (or EAGAIN) comes back on the
       * next read. */
      if (i > 0)
        break;
      return err;
    }
  }
  return (int) i;
}

int uvq__io_send(struct uvq__udp_state* s,
                 struct uvq__mmsg* msgs,
                 unsigned int n) {
  unsigned int i;
  WSAMSG w;
  DWORD bytes;

  for (i = 0; i < n; i++) {
    to_wsamsg(&w, &msgs[i].hdr);
    bytes = 0;
    s->stats.send_syscalls++;
    if (sendmsg_fn(sock_of(s), &w, 0, &bytes, NULL, NULL) != 0) {
      if (i > 0)
        break;
      return uvq__errno();
    }
    msgs[i].len = (unsigned int) bytes;
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
