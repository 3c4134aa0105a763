/* ECN: every codepoint, set per handle and per message, over IPv4, IPv6
 * and IPv4-mapped addresses on dual-stack sockets; the DSCP bits of the
 * TOS byte / traffic class survive both ways of setting it. */
#include <errno.h>
#ifndef _WIN32
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#endif
#include <string.h>
#ifndef _WIN32
#include <sys/socket.h>
#endif
#ifndef _WIN32
#include <unistd.h>
#endif

#include "task.h"
#include "udp-helpers.h"

/* Datagram i carries the byte i, so a reordering cannot pair a datagram
 * with the wrong expectation. */
struct ecn_case {
  /* What the message asks for (-1: the handle's default). */
  int msg_ecn;
  /* The handle default to set before sending it (-1: leave it). */
  int handle_ecn;
  /* The codepoint the receiver must see if per-message ECN works. */
  int expected;
};

enum ecn_mode { ECN_PER_HANDLE, ECN_PER_MESSAGE };

#ifdef _WIN32
/* Windows keeps no ECN codepoint per socket (it ignores IP_TOS; the ECN
 * field is set per message with IP_ECN), so uvq_udp_set_ecn() is
 * UV_ENOTSUP there, and every test here starts from a socket default.
 * What ECN does take effect on Windows is asserted by udp_features_*. */
#define WINDOWS_NO_SOCKET_ECN \
  "Windows has no socket-wide ECN or TOS (uvq_udp_set_ecn is UV_ENOTSUP)"
#endif

static void ecn_roundtrip(const char* rx_ip,
                          const char* tx_ip,
                          const char* dest_ip,
                          const char* expected_src_ip,
                          enum ecn_mode mode) {
  /* Per handle: each codepoint as the handle default, messages use -1.
   * Per message: the handle default is ECT(1); each message overrides it
   * (0 included, so NOT-ECT really overrides), and -1 falls back to it.
   * The last one changes the default to CE and sends with -1 again. */
  static const struct ecn_case handle_cases[] = {
    {-1, 0, 0}, {-1, 1, 1}, {-1, 2, 2}, {-1, 3, 3}
  };
  static const struct ecn_case message_cases[] = {
    {0, 1, 0}, {1, -1, 1}, {2, -1, 2}, {3, -1, 3}, {-1, -1, 1}, {-1, 3, 3}
  };
  const struct ecn_case* cases;
  unsigned int ncases;
  uv_loop_t loop;
  test_peer_t rx;
  test_peer_t tx;
  struct sockaddr_storage dest;
  struct sockaddr_storage src;
  uvq_udp_stats_t stats;
  uint64_t per_codepoint[4] = {0, 0, 0, 0};
  unsigned int rx_features;
  unsigned int tx_features;
  unsigned char payload[64];
  unsigned int i;
  int expected;

#ifdef _WIN32
  RETURN_SKIP(WINDOWS_NO_SOCKET_ECN);
#endif
  if (mode == ECN_PER_HANDLE) {
    cases = handle_cases;
    ncases = sizeof(handle_cases) / sizeof(handle_cases[0]);
  } else {
    cases = message_cases;
    ncases = sizeof(message_cases) / sizeof(message_cases[0]);
  }

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, rx_ip, UVQ_UDP_RECVECN);
  peer_bind(&tx, tx_ip, 0);
  peer_start(&rx);
  peer_addr(&rx, dest_ip, &dest);
  make_addr(&src, expected_src_ip, peer_port(&tx));

  rx_features = uvq_udp_features(&rx.udp);
  tx_features = uvq_udp_features(&tx.udp);
  if (!test_portable_build()) {
    ASSERT_BITS_SET(rx_features, UVQ_UDP_RECVECN);
    ASSERT_BITS_SET(tx_features, UVQ_UDP_FEATURE_ECN_SEND);
  }

  for (i = 0; i < ncases; i++) {
    if (cases[i].handle_ecn >= 0) {
      ASSERT_OK(uvq_udp_set_ecn(&tx.udp, cases[i].handle_ecn));
    }
    memset(payload, 0, sizeof(payload));
    payload[0] = (unsigned char) i;
    peer_send_ok(&tx, (const struct sockaddr*) &dest, payload,
                 sizeof(payload), cases[i].msg_ecn);
  }

  run_until_rx(&loop, &rx, ncases);
  for (i = 0; i < ncases; i++) {
    const rx_entry_t* e = &rx.rx[i];
    unsigned int k;

    ASSERT_EQ(sizeof(payload), e->nread);
    k = e->data[0];
    ASSERT_LT(k, ncases);
    ASSERT_EQ(0, e->flags & ~(unsigned int) UVQ_UDP_MMSG_CHUNK);
    ASSERT(e->has_addr);
    ASSERT_ADDR_EQ(&e->addr, &src);
    /* Without per-message ECN the handle default applies to everything
     * (uvq.h: a rejected ECN control message switches it off and nothing
     * is lost). */
    expected = cases[k].expected;
    if (!(tx_features & UVQ_UDP_FEATURE_ECN_SEND) && cases[k].msg_ecn >= 0) {
      unsigned int j;
      expected = 0;
      for (j = 0; j <= k; j++)
        if (cases[j].handle_ecn >= 0)
          expected = cases[j].handle_ecn;
    }
    if (rx_features & UVQ_UDP_RECVECN) {
      ASSERT_EQ(expected, e->ecn);
      per_codepoint[expected]++;
    } else {
      ASSERT_EQ(0, e->ecn);
    }
  }

  peer_stats(&rx, &stats);
  ASSERT_UINT_EQ(ncases, stats.datagrams_received);
  ASSERT_UINT_EQ(ncases * sizeof(payload), stats.bytes_received);
  for (i = 0; i < 4; i++)
    ASSERT_UINT_EQ(per_codepoint[i], stats.ecn_received[i]);
  peer_stats(&tx, &stats);
  ASSERT_UINT_EQ(ncases, stats.datagrams_sent);
  ASSERT_UINT_EQ(ncases * sizeof(payload), stats.bytes_sent);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
}

TEST_IMPL(udp_ecn_ipv4_handle) {
  ecn_roundtrip("127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1",
                ECN_PER_HANDLE);
  return 0;
}

TEST_IMPL(udp_ecn_ipv4_message) {
  ecn_roundtrip("127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.1",
                ECN_PER_MESSAGE);
  return 0;
}

TEST_IMPL(udp_ecn_ipv6_handle) {
  ecn_roundtrip("::1", "::1", "::1", "::1", ECN_PER_HANDLE);
  return 0;
}

TEST_IMPL(udp_ecn_ipv6_message) {
  ecn_roundtrip("::1", "::1", "::1", "::1", ECN_PER_MESSAGE);
  return 0;
}

/* A dual-stack AF_INET6 sender reaching an IPv4 peer through an
 * IPv4-mapped address: the kernel takes the IPv4 path, so uvq must mark
 * with IP_TOS, not IPV6_TCLASS. */
TEST_IMPL(udp_ecn_mapped_send_handle) {
  ecn_roundtrip("127.0.0.1", "::", "::ffff:127.0.0.1", "127.0.0.1",
                ECN_PER_HANDLE);
  return 0;
}

TEST_IMPL(udp_ecn_mapped_send_message) {
  ecn_roundtrip("127.0.0.1", "::", "::ffff:127.0.0.1", "127.0.0.1",
                ECN_PER_MESSAGE);
  return 0;
}

/* A dual-stack receiver gets IPv4 datagrams with an IP_TOS control
 * message, not IPV6_TCLASS; the sender shows up IPv4-mapped. */
TEST_IMPL(udp_ecn_mapped_recv_handle) {
  ecn_roundtrip("::", "127.0.0.1", "127.0.0.1", "::ffff:127.0.0.1",
                ECN_PER_HANDLE);
  return 0;
}

TEST_IMPL(udp_ecn_mapped_recv_message) {
  ecn_roundtrip("::", "127.0.0.1", "127.0.0.1", "::ffff:127.0.0.1",
                ECN_PER_MESSAGE);
  return 0;
}

#ifndef _WIN32
/* A plain socket that reports the whole TOS byte / traffic class. */
static int tos_receiver(int family, struct sockaddr_storage* name) {
  socklen_t len;
  int on = 1;
  int fd;

  /* Blocking is fine: recv_tos polls before it reads. */
  fd = test_socket(family, SOCK_DGRAM);
  make_addr(name, family == AF_INET ? "127.0.0.1" : "::1", 0);
  ASSERT_OK(bind(fd, (struct sockaddr*) name,
                 addr_len((struct sockaddr*) name)));
  len = sizeof(*name);
  ASSERT_OK(getsockname(fd, (struct sockaddr*) name, &len));
  if (family == AF_INET)
    ASSERT_OK(setsockopt(fd, IPPROTO_IP, IP_RECVTOS, &on, sizeof(on)));
  else
    ASSERT_OK(setsockopt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, &on, sizeof(on)));
  return fd;
}

/* Reads one datagram and returns its TOS byte / traffic class. */
static int recv_tos(int fd) {
  union {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int)) * 2];
  } control;
  struct pollfd pfd;
  struct cmsghdr* cmsg;
  struct msghdr msg;
  struct iovec iov;
  char data[256];
  int tos = -1;

  pfd.fd = fd;
  pfd.events = POLLIN;
  ASSERT_EQ(1, poll(&pfd, 1, TEST_WAIT_MS));
  iov.iov_base = data;
  iov.iov_len = sizeof(data);
  memset(&msg, 0, sizeof(msg));
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.buf;
  msg.msg_controllen = sizeof(control.buf);
  ASSERT_GT(recvmsg(fd, &msg, 0), 0);
  for (cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
    if (cmsg->cmsg_level == IPPROTO_IP && cmsg->cmsg_type == IP_TOS)
      tos = *(unsigned char*) CMSG_DATA(cmsg);
    if (cmsg->cmsg_level == IPPROTO_IPV6 && cmsg->cmsg_type == IPV6_TCLASS)
      memcpy(&tos, CMSG_DATA(cmsg), sizeof(tos));
  }
  ASSERT_GE(tos, 0);
  return tos;
}

static int get_tos(int fd, int family) {
  socklen_t len;
  int tos = -1;

  len = sizeof(tos);
  if (family == AF_INET)
    ASSERT_OK(getsockopt(fd, IPPROTO_IP, IP_TOS, &tos, &len));
  else
    ASSERT_OK(getsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &tos, &len));
  return tos;
}

static void ecn_keeps_dscp(int family) {
  const char* ip = family == AF_INET ? "127.0.0.1" : "::1";
  struct sockaddr_storage dest;
  uv_loop_t loop;
  test_peer_t tx;
  int dscp = 0xb8; /* EF, 46 << 2 */
  int fd;
  int rx_fd;
  int ecn_send;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &tx);
  peer_bind(&tx, ip, 0);
  fd = peer_fd(&tx);
  if (family == AF_INET)
    ASSERT_OK(setsockopt(fd, IPPROTO_IP, IP_TOS, &dscp, sizeof(dscp)));
  else
    ASSERT_OK(setsockopt(fd, IPPROTO_IPV6, IPV6_TCLASS, &dscp, sizeof(dscp)));
  ASSERT_EQ(0xb8, get_tos(fd, family));

  ASSERT_OK(uvq_udp_set_ecn(&tx.udp, UVQ_ECN_ECT1));
  ASSERT_EQ(0xb9, get_tos(fd, family));
  ASSERT_OK(uvq_udp_set_ecn(&tx.udp, UVQ_ECN_CE));
  ASSERT_EQ(0xbb, get_tos(fd, family));
  ASSERT_OK(uvq_udp_set_ecn(&tx.udp, UVQ_ECN_NOT_ECT));
  ASSERT_EQ(0xb8, get_tos(fd, family));
  ASSERT_OK(uvq_udp_set_ecn(&tx.udp, UVQ_ECN_ECT0));
  ASSERT_EQ(0xba, get_tos(fd, family));
  /* A rejected value changes nothing. */
  ASSERT_ERR(UV_EINVAL, uvq_udp_set_ecn(&tx.udp, 4));
  ASSERT_EQ(0xba, get_tos(fd, family));

  /* On the wire: the handle default, then per-message codepoints, all
   * with the DSCP bits. */
  ecn_send = (uvq_udp_features(&tx.udp) & UVQ_UDP_FEATURE_ECN_SEND) != 0;
  if (!test_portable_build())
    ASSERT(ecn_send);
  rx_fd = tos_receiver(family, &dest);
  peer_send_ok(&tx, (const struct sockaddr*) &dest, "a", 1, -1);
  ASSERT_EQ(0xba, recv_tos(rx_fd));
  peer_send_ok(&tx, (const struct sockaddr*) &dest, "b", 1, UVQ_ECN_CE);
  ASSERT_EQ(ecn_send ? 0xbb : 0xba, recv_tos(rx_fd));
  peer_send_ok(&tx, (const struct sockaddr*) &dest, "c", 1, UVQ_ECN_NOT_ECT);
  ASSERT_EQ(ecn_send ? 0xb8 : 0xba, recv_tos(rx_fd));
  peer_send_ok(&tx, (const struct sockaddr*) &dest, "d", 1, UVQ_ECN_ECT1);
  ASSERT_EQ(ecn_send ? 0xb9 : 0xba, recv_tos(rx_fd));
  /* Per-message marks do not stick to the socket. */
  ASSERT_EQ(0xba, get_tos(fd, family));
  peer_send_ok(&tx, (const struct sockaddr*) &dest, "e", 1, -1);
  ASSERT_EQ(0xba, recv_tos(rx_fd));
  close(rx_fd);

  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&tx);
}

#endif /* !_WIN32 */

TEST_IMPL(udp_ecn_keeps_dscp_ipv4) {
#ifdef _WIN32
  RETURN_SKIP(WINDOWS_NO_SOCKET_ECN);
#else
  ecn_keeps_dscp(AF_INET);
  return 0;
#endif
}

TEST_IMPL(udp_ecn_keeps_dscp_ipv6) {
#ifdef _WIN32
  RETURN_SKIP(WINDOWS_NO_SOCKET_ECN);
#else
  ecn_keeps_dscp(AF_INET6);
  return 0;
#endif
}
