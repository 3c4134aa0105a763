/* Control messages: the one place that knows how ECN, pktinfo, GRO, GSO
 * and TXTIME are spelled in ancillary data (drop counts come from
 * SO_MEMINFO in io-linux.c, not from a control message). Every read checks
 * the payload length, and payloads are copied out with memcpy because
 * CMSG_DATA is not guaranteed to be aligned for the type. */
#include "internal.h"

#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>

#ifndef SOL_UDP
#define SOL_UDP IPPROTO_UDP
#endif

/* Linux values for C libraries whose headers predate them. */
#ifdef __linux__
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103 /* Linux 4.18 */
#endif
#ifndef UDP_GRO
#define UDP_GRO 104 /* Linux 5.0 */
#endif
#ifndef SCM_TXTIME
#define SCM_TXTIME 61 /* Linux 4.19 */
#endif
#endif

int uvq__ecn_from_tos(int tos) {
  return tos & 3;
}

/* TOS and TCLASS arrive as one byte on some platforms and paths and as an
 * int on others (Linux sends IP_TOS as a byte and IPV6_TCLASS as an int;
 * macOS sends IP_RECVTOS as a byte), so accept both. */
static int cmsg_read_byte_or_int(const struct cmsghdr* c, size_t dlen) {
  unsigned char b;
  int v;

  if (dlen >= sizeof(v)) {
    memcpy(&v, CMSG_DATA(c), sizeof(v));
    return v & 0xff;
  }
  if (dlen >= 1) {
    memcpy(&b, CMSG_DATA(c), 1);
    return b;
  }
  return -1;
}

static void set_local_v4(struct uvq__recv_meta* m,
                         const struct in_addr* a,
                         uint16_t port,
                         int family) {
  struct sockaddr_in* sin;
  struct sockaddr_in6* sin6;

  memset(&m->local, 0, sizeof(m->local));
  if (family == AF_INET6) {
    /* A dual-stack socket names its IPv4 peers as IPv4-mapped addresses, so
     * the local address is reported the same way and can be passed back as
     * uvq_udp_mmsg_t.local unchanged. */
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

void uvq__cmsg_decode(struct msghdr* hdr,
                      uint16_t port,
                      int family,
                      struct uvq__recv_meta* m) {
  struct cmsghdr* c;
  size_t dlen;
  int v;

  m->local.ss_family = 0; /* filled in full only when pktinfo is there */
  m->ifindex = 0;
  m->ecn = -1;
  m->segment_size = 0;

  if (hdr->msg_controllen == 0)
    return;

  for (c = CMSG_FIRSTHDR(hdr); c != NULL; c = CMSG_NXTHDR(hdr, c)) {
    if (c->cmsg_len < CMSG_LEN(0))
      break;
    dlen = c->cmsg_len - CMSG_LEN(0);

    if (c->cmsg_level == IPPROTO_IP) {
#if defined(IP_TOS) || defined(IP_RECVTOS)
      if (0
#ifdef IP_TOS
          || c->cmsg_type == IP_TOS
#endif
#ifdef IP_RECVTOS
          || c->cmsg_type == IP_RECVTOS
#endif
      ) {
        v = cmsg_read_byte_or_int(c, dlen);
        if (v >= 0)
          m->ecn = uvq__ecn_from_tos(v);
        continue;
      }
#endif
#ifdef IP_PKTINFO
      if (c->cmsg_type == IP_PKTINFO && dlen >= sizeof(struct in_pktinfo)) {
        struct in_pktinfo pi;
        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
        /* ipi_addr is the header's destination address, which is what a
         * reply must come from; ipi_spec_dst is only a routing guess. */
        set_local_v4(m, &pi.ipi_addr, port, family);
        m->ifindex = (unsigned int) pi.ipi_ifindex;
        continue;
      }
#endif
#ifdef IP_RECVDSTADDR
      if (c->cmsg_type == IP_RECVDSTADDR && dlen >= sizeof(struct in_addr)) {
        struct in_addr a;
        memcpy(&a, CMSG_DATA(c), sizeof(a));
        set_local_v4(m, &a, port, family);
        continue;
      }
#endif
    } else if (c->cmsg_level == IPPROTO_IPV6) {
#ifdef IPV6_TCLASS
      if (c->cmsg_type == IPV6_TCLASS) {
        v = cmsg_read_byte_or_int(c, dlen);
        if (v >= 0)
          m->ecn = uvq__ecn_from_tos(v);
        continue;
      }
#endif
#ifdef IPV6_PKTINFO
      if (c->cmsg_type == IPV6_PKTINFO && dlen >= sizeof(struct in6_pktinfo)) {
        struct in6_pktinfo pi;
        struct sockaddr_in6* sin6;
        memcpy(&pi, CMSG_DATA(c), sizeof(pi));
        memset(&m->local, 0, sizeof(m->local));
        sin6 = (struct sockaddr_in6*) &m->local;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        sin6->sin6_addr = pi.ipi6_addr;
        /* Link-local addresses are meaningless without their interface. */
        if (IN6_IS_ADDR_LINKLOCAL(&pi.ipi6_addr))
          sin6->sin6_scope_id = pi.ipi6_ifindex;
        m->ifindex = pi.ipi6_ifindex;
        continue;
      }
#endif
    } else if (c->cmsg_level == SOL_UDP) {
#ifdef UDP_GRO
      /* The kernel stores the GRO segment size as an int (udp_cmsg_recv). */
      if (c->cmsg_type == UDP_GRO) {
        if (dlen >= sizeof(int)) {
          memcpy(&v, CMSG_DATA(c), sizeof(v));
          if (v > 0)
            m->segment_size = (unsigned int) v;
        } else if (dlen >= sizeof(uint16_t)) {
          uint16_t s16;
          memcpy(&s16, CMSG_DATA(c), sizeof(s16));
          m->segment_size = s16;
        }
        continue;
      }
#endif
    }
  }
}

/* Appends one control message; -ENOBUFS when it does not fit. */
static int put(char* buf,
               size_t cap,
               size_t* off,
               int level,
               int type,
               const void* data,
               size_t dlen) {
  struct cmsghdr* c;

  if (*off + CMSG_SPACE(dlen) > cap)
    return -ENOBUFS;
  c = (struct cmsghdr*) (buf + *off);
  memset(c, 0, CMSG_SPACE(dlen));
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(dlen);
  memcpy(CMSG_DATA(c), data, dlen);
  *off += CMSG_SPACE(dlen);
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
  err = 0;

  if (m->tos >= 0) {
    v = m->tos;
    /* An IPv4 or IPv4-mapped destination goes out as IPv4 even from an
     * AF_INET6 socket, and only IP-level options apply to it: Linux ignores
     * IPV6_TCLASS there. */
    if (m->level_v4)
      err = put(buf, cap, &off, IPPROTO_IP, IP_TOS, &v, sizeof(v));
    else
      err = put(buf, cap, &off, IPPROTO_IPV6, IPV6_TCLASS, &v, sizeof(v));
    if (err)
      return err;
  }

  if (m->local != NULL) {
    if (m->level_v4) {
#ifdef IP_PKTINFO
      struct in_pktinfo pi;
      memset(&pi, 0, sizeof(pi));
      if (m->local->sa_family == AF_INET)
        pi.ipi_spec_dst = ((const struct sockaddr_in*) m->local)->sin_addr;
      else if (uvq__is_v4mapped(m->local))
        memcpy(&pi.ipi_spec_dst,
               &((const struct sockaddr_in6*) m->local)->sin6_addr.s6_addr[12],
               4);
      else
        return -EAFNOSUPPORT;
      err = put(buf, cap, &off, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
#elif defined(IP_SENDSRCADDR)
      /* FreeBSD and macOS choose the IPv4 source with IP_SENDSRCADDR. */
      struct in_addr a;
      if (m->local->sa_family == AF_INET)
        a = ((const struct sockaddr_in*) m->local)->sin_addr;
      else if (uvq__is_v4mapped(m->local))
        memcpy(&a, &((const struct sockaddr_in6*) m->local)->sin6_addr.s6_addr[12],
               4);
      else
        return -EAFNOSUPPORT;
      err = put(buf, cap, &off, IPPROTO_IP, IP_SENDSRCADDR, &a, sizeof(a));
#else
      return -ENOTSUP;
#endif
    } else {
#ifdef IPV6_PKTINFO
      struct in6_pktinfo pi;
      const struct sockaddr_in6* sin6;
      if (m->local->sa_family != AF_INET6 || uvq__is_v4mapped(m->local))
        return -EAFNOSUPPORT;
      sin6 = (const struct sockaddr_in6*) m->local;
      memset(&pi, 0, sizeof(pi));
      pi.ipi6_addr = sin6->sin6_addr;
      pi.ipi6_ifindex = sin6->sin6_scope_id;
      err = put(buf, cap, &off, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
#else
      return -ENOTSUP;
#endif
    }
    if (err)
      return err;
  }

  if (m->gso_size > 0) {
#ifdef UDP_SEGMENT
    uint16_t seg = (uint16_t) m->gso_size;
    err = put(buf, cap, &off, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg));
    if (err)
      return err;
#else
    return -ENOTSUP;
#endif
  }

  if (m->txtime > 0) {
#ifdef SCM_TXTIME
    uint64_t t = m->txtime;
    err = put(buf, cap, &off, SOL_SOCKET, SCM_TXTIME, &t, sizeof(t));
    if (err)
      return err;
#else
    return -ENOTSUP;
#endif
  }

  *len = off;
  return 0;
}
