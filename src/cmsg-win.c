/* Control messages on Windows: how Winsock spells pktinfo, ECN and UDP
 * send/receive offload in the control buffer of WSASendMsg/WSARecvMsg.
 * The counterpart of cmsg.c, with the same contract: every read checks
 * the payload length, and payloads are copied out with memcpy. */
#include "internal.h"

#include <string.h>

/* Windows SDK names that MinGW-w64's headers lack. The receive options
 * share their numbers with the control messages they produce. */
#ifndef IP_RECVECN
#define IP_RECVECN IP_ECN
#endif
#ifndef UDP_SEND_MSG_SIZE
#define UDP_SEND_MSG_SIZE 2
#endif
#ifndef UDP_COALESCED_INFO
#define UDP_COALESCED_INFO 3
#endif

int uvq__ecn_from_tos(int tos) {
  return tos & 3;
}

/* Wraps a uvq__msghdr_t's control buffer in the WSAMSG the WSA_CMSG_*
 * macros walk. */
static void control_msg(WSAMSG* w, void* control, size_t len) {
  memset(w, 0, sizeof(*w));
  w->Control.buf = control;
  w->Control.len = (ULONG) len;
}

/* An int-sized value that some stacks deliver as one byte. */
static int read_small_int(const WSACMSGHDR* c, size_t dlen) {
  unsigned char b;
  int v;

  if (dlen >= sizeof(v)) {
    memcpy(&v, WSA_CMSG_DATA(c), sizeof(v));
    return v & 0xff;
  }
  if (dlen >= 1) {
    memcpy(&b, WSA_CMSG_DATA(c), 1);
    return b;
  }
  return -1;
}

static void set_local_v4(struct uvq__recv_meta* m,
                         const IN_ADDR* a,
                         uint16_t port,
                         int family) {
  struct sockaddr_in* sin;
  struct sockaddr_in6* sin6;

  memset(&m->local, 0, sizeof(m->local));
  if (family == AF_INET6) {
    /* As on POSIX: a dual-stack socket reports the IPv4 local address
     * IPv4-mapped, ready to be passed back as uvq_udp_mmsg_t.local. */
    sin6 = (struct sockaddr_in6*) &m->local;
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    sin6->sin6_addr.s6_addr[10] = 0xff;
    sin6->sin6_addr.s6_addr[11] = 0xff;
    memcpy(&sin6->sin6_addr.s6_addr[12], a, 4);
  } else {
    sin = (struct sockaddr_in*) &m->local;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    sin->sin_addr = *a;
  }
}

void uvq__cmsg_decode(uvq__msghdr_t* hdr,
                      uint16_t port,
                      int family,
                      struct uvq__recv_meta* m) {
  WSACMSGHDR* c;
  WSAMSG w;
  size_t dlen;
  int v;

  m->local.ss_family = 0;
  m->ifindex = 0;
  m->ecn = -1;
  m->segment_size = 0;
  if (hdr->msg_controllen == 0)
    return;

  control_msg(&w, hdr->msg_control, hdr->msg_controllen);
  for (c = WSA_CMSG_FIRSTHDR(&w); c != NULL; c = WSA_CMSG_NXTHDR(&w, c)) {
    if (c->cmsg_len < WSA_CMSG_LEN(0))
      break;
    dlen = c->cmsg_len - WSA_CMSG_LEN(0);

    if (c->cmsg_level == IPPROTO_IP) {
      /* IP_ECN comes with IP_RECVECN; Wine answers IP_RECVTOS with IP_TOS,
       * which uvq does not enable but reads the same way if it comes. */
      if (c->cmsg_type == IP_ECN || c->cmsg_type == IP_TOS) {
        v = read_small_int(c, dlen);
        if (v >= 0)
          m->ecn = uvq__ecn_from_tos(v);
      } else if (c->cmsg_type == IP_PKTINFO && dlen >= sizeof(IN_PKTINFO)) {
        IN_PKTINFO pi;
        memcpy(&pi, WSA_CMSG_DATA(c), sizeof(pi));
        set_local_v4(m, &pi.ipi_addr, port, family);
        m->ifindex = pi.ipi_ifindex;
      }
    } else if (c->cmsg_level == IPPROTO_IPV6) {
      if (c->cmsg_type == IPV6_ECN || c->cmsg_type == IPV6_TCLASS) {
        v = read_small_int(c, dlen);
        if (v >= 0)
          m->ecn = uvq__ecn_from_tos(v);
      } else if (c->cmsg_type == IPV6_PKTINFO && dlen >= sizeof(IN6_PKTINFO)) {
        IN6_PKTINFO pi;
        struct sockaddr_in6* sin6;
        memcpy(&pi, WSA_CMSG_DATA(c), sizeof(pi));
        memset(&m->local, 0, sizeof(m->local));
        sin6 = (struct sockaddr_in6*) &m->local;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        sin6->sin6_addr = pi.ipi6_addr;
        if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
          sin6->sin6_scope_id = pi.ipi6_ifindex;
        m->ifindex = pi.ipi6_ifindex;
      }
    } else if (c->cmsg_level == IPPROTO_UDP) {
      /* Receive coalescing (URO) tells the stride of a coalesced
       * datagram as a DWORD, the counterpart of Linux's UDP_GRO. */
      if (c->cmsg_type == UDP_COALESCED_INFO && dlen >= sizeof(DWORD)) {
        DWORD seg;
        memcpy(&seg, WSA_CMSG_DATA(c), sizeof(seg));
        m->segment_size = (unsigned int) seg;
      }
    }
  }
}

/* Appends one control message; UV_ENOBUFS when it does not fit. */
static int put(char* buf,
               size_t cap,
               size_t* off,
               int level,
               int type,
               const void* data,
               size_t dlen) {
  WSACMSGHDR* c;

  if (*off + WSA_CMSG_SPACE(dlen) > cap)
    return UV_ENOBUFS;
  c = (WSACMSGHDR*) (buf + *off);
  memset(c, 0, WSA_CMSG_SPACE(dlen));
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = WSA_CMSG_LEN(dlen);
  memcpy(WSA_CMSG_DATA(c), data, dlen);
  *off += WSA_CMSG_SPACE(dlen);
  return 0;
}

int uvq__cmsg_encode(char* buf,
                     size_t cap,
                     const struct uvq__send_meta* m,
                     size_t* len) {
  size_t off;
  int err;
  int v;

  off = 0;

  if (m->tos >= 0) {
    /* Windows sets only the ECN field per message (IP_ECN / IPV6_ECN, an
     * int); the DSCP bits are the system's QoS policy's to choose. */
    v = uvq__ecn_from_tos(m->tos);
    if (m->level_v4)
      err = put(buf, cap, &off, IPPROTO_IP, IP_ECN, &v, sizeof(v));
    else
      err = put(buf, cap, &off, IPPROTO_IPV6, IPV6_ECN, &v, sizeof(v));
    if (err)
      return err;
  }

  if (m->local != NULL) {
    if (m->level_v4) {
      /* On send, Winsock takes the source address from ipi_addr. */
      IN_PKTINFO pi;
      memset(&pi, 0, sizeof(pi));
      if (m->local->sa_family == AF_INET)
        pi.ipi_addr = ((const struct sockaddr_in*) m->local)->sin_addr;
      else if (uvq__is_v4mapped(m->local))
        memcpy(&pi.ipi_addr,
               &((const struct sockaddr_in6*) m->local)->sin6_addr.s6_addr[12],
               4);
      else
        return UV_EAFNOSUPPORT;
      err = put(buf, cap, &off, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
    } else {
      IN6_PKTINFO pi;
      const struct sockaddr_in6* sin6;
      if (m->local->sa_family != AF_INET6 || uvq__is_v4mapped(m->local))
        return UV_EAFNOSUPPORT;
      sin6 = (const struct sockaddr_in6*) m->local;
      memset(&pi, 0, sizeof(pi));
      pi.ipi6_addr = sin6->sin6_addr;
      pi.ipi6_ifindex = sin6->sin6_scope_id;
      err = put(buf, cap, &off, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
    }
    if (err)
      return err;
  }

  if (m->gso_size > 0) {
    /* UDP send offload (USO): the segment size of this send, a DWORD. */
    DWORD seg = (DWORD) m->gso_size;
    err = put(buf, cap, &off, IPPROTO_UDP, UDP_SEND_MSG_SIZE, &seg, sizeof(seg));
    if (err)
      return err;
  }

  /* Windows has no transmit time: uvq never enables UVQ_UDP_TXTIME here,
   * so a txtime never reaches this function. */
  if (m->txtime > 0)
    return UV_ENOTSUP;

  *len = off;
  return 0;
}
