/* The features report: what each datapath must and must not claim, that
 * it follows bind and configure, and that reported bind flags really took
 * effect. */
#ifndef _WIN32
#include <netinet/in.h>
#endif
#include <string.h>
#ifndef _WIN32
#include <sys/socket.h>
#endif

#include "task.h"
#include "udp-helpers.h"

/* Flags that only ever appear in a receive callback. */
#define RECEIVE_ONLY                                                          \
  (UVQ_UDP_PARTIAL | UVQ_UDP_MMSG_CHUNK | UVQ_UDP_MMSG_FREE |                 \
   UVQ_UDP_RECV_ERRQUEUE | UVQ_UDP_CTRUNC)

/* What the portable datapath cannot do, whatever the kernel offers. */
#define NEVER_PORTABLE                                                        \
  (UVQ_UDP_GRO | UVQ_UDP_GRO_RAW | UVQ_UDP_TXTIME | UVQ_UDP_RECVERR |         \
   UVQ_UDP_FEATURE_GSO | UVQ_UDP_FEATURE_SENDMMSG | UVQ_UDP_RECVMMSG)

/* What the Linux datapath always has, without asking (kernel 5.0+). */
#define ALWAYS_LINUX                                                          \
  (UVQ_UDP_RECVMMSG | UVQ_UDP_FEATURE_GSO | UVQ_UDP_FEATURE_SENDMMSG |        \
   UVQ_UDP_FEATURE_ECN_SEND | UVQ_UDP_FEATURE_SRCADDR |                       \
   UVQ_UDP_FEATURE_DROPS)

/* What the Windows datapath never has: no transmit time, error queue,
 * batch syscalls, kernel drop count or SO_REUSEPORT. */
#define NEVER_WINDOWS                                                         \
  (UVQ_UDP_TXTIME | UVQ_UDP_RECVERR | UVQ_UDP_FEATURE_SENDMMSG |              \
   UVQ_UDP_RECVMMSG | UVQ_UDP_FEATURE_DROPS | UVQ_UDP_REUSEPORT)

#define OPT_IN                                                                \
  (UVQ_UDP_RECVECN | UVQ_UDP_PMTUD | UVQ_UDP_RECVPKTINFO | UVQ_UDP_GRO |      \
   UVQ_UDP_GRO_RAW | UVQ_UDP_TXTIME | UVQ_UDP_RECVERR | UVQ_UDP_IPV6ONLY |    \
   UVQ_UDP_REUSEADDR | UVQ_UDP_REUSEPORT)

TEST_IMPL(udp_features_version) {
  ASSERT_EQ((UVQ_VERSION_MAJOR << 16) | (UVQ_VERSION_MINOR << 8) |
                UVQ_VERSION_PATCH,
            uvq_version());
  ASSERT_STR_EQ("0.2.0", uvq_version_string());
  return 0;
}

static void check_default(const char* ip) {
  unsigned int features;
  uv_loop_t loop;
  test_peer_t p;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &p);
  ASSERT_EQ(0, uvq_udp_features(&p.udp));
  peer_bind(&p, ip, 0);
  features = uvq_udp_features(&p.udp);
  if (strchr(ip, ':') != NULL && strcmp(ip, "::") != 0 &&
      (!test_windows_build() || test_under_wine())) {
    /* Linux makes a socket bound to a specific IPv6 address IPv6-only
     * (inet6_bind), and the report says what is in effect. Wine's
     * sockets are Linux sockets and do the same; Windows does not. */
    ASSERT_BITS_SET(features, UVQ_UDP_IPV6ONLY);
    features &= ~(unsigned int) UVQ_UDP_IPV6ONLY;
  }
  ASSERT_BITS_CLEAR(features, RECEIVE_ONLY);
  ASSERT_BITS_CLEAR(features, OPT_IN);
  if (test_windows_build()) {
    ASSERT_BITS_CLEAR(features, NEVER_WINDOWS);
    /* Wine 8 has neither IP_ECN nor UDP_SEND_MSG_SIZE, and ignores
     * IN_PKTINFO on send: nothing comes without asking. Windows always
     * sends from IN_PKTINFO. */
    if (test_under_wine())
      ASSERT_EQ(0, features);
    else
      ASSERT_BITS_SET(features, UVQ_UDP_FEATURE_SRCADDR);
    ASSERT_EQ((features & UVQ_UDP_FEATURE_GSO) ? 64 : 0,
              uvq_udp_gso_max_segments(&p.udp));
  } else if (test_portable_build()) {
    ASSERT_BITS_CLEAR(features, NEVER_PORTABLE);
    ASSERT_EQ(0, uvq_udp_gso_max_segments(&p.udp));
  } else {
    ASSERT_BITS_SET(features, ALWAYS_LINUX);
    ASSERT_EQ(64, uvq_udp_gso_max_segments(&p.udp));
  }
  peer_close(&p);
  finish_loop(&loop);
  peer_finish(&p);
}

TEST_IMPL(udp_features_default_ipv4) {
  check_default("127.0.0.1");
  return 0;
}

TEST_IMPL(udp_features_default_ipv6) {
  check_default("::1");
  return 0;
}

/* Everything asked for at bind time on a dual-stack socket. */
TEST_IMPL(udp_features_all_requested) {
  const unsigned int requested =
      UVQ_UDP_RECVECN | UVQ_UDP_PMTUD | UVQ_UDP_RECVPKTINFO | UVQ_UDP_GRO |
      UVQ_UDP_TXTIME | UVQ_UDP_RECVERR | UVQ_UDP_REUSEADDR |
      UVQ_UDP_REUSEPORT | UVQ_UDP_RECVMMSG;
  unsigned int features;
  uv_loop_t loop;
  test_peer_t p;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &p);
  if (test_windows_build()) {
    /* Windows has no SO_REUSEPORT: asked for, it fails the bind. */
    ASSERT_ERR(UV_ENOTSUP, peer_try_bind(&p, "::", requested));
    peer_bind(&p, "::", requested & ~(unsigned int) UVQ_UDP_REUSEPORT);
    features = uvq_udp_features(&p.udp);
    ASSERT_BITS_CLEAR(features, RECEIVE_ONLY | NEVER_WINDOWS);
    ASSERT_BITS_SET(features, UVQ_UDP_RECVPKTINFO | UVQ_UDP_PMTUD |
                                  UVQ_UDP_REUSEADDR);
    /* Wine 8: IP_RECVECN, UDP_RECV_MAX_COALESCED_SIZE and
     * UDP_SEND_MSG_SIZE are refused, IP_DONTFRAGMENT gives PMTUD, and
     * pktinfo works on receive only. */
    if (test_under_wine())
      ASSERT_EQ(UVQ_UDP_RECVPKTINFO | UVQ_UDP_PMTUD | UVQ_UDP_REUSEADDR,
                features);
    else
      ASSERT_BITS_SET(features, UVQ_UDP_FEATURE_SRCADDR);
    peer_close(&p);
    finish_loop(&loop);
    peer_finish(&p);
    return 0;
  }
  peer_bind(&p, "::", requested);
  features = uvq_udp_features(&p.udp);
  ASSERT_BITS_CLEAR(features, RECEIVE_ONLY);
  ASSERT_BITS_CLEAR(features, UVQ_UDP_GRO_RAW | UVQ_UDP_IPV6ONLY);
  ASSERT_BITS_SET(features, UVQ_UDP_REUSEADDR | UVQ_UDP_REUSEPORT);
  if (test_portable_build()) {
    ASSERT_BITS_CLEAR(features, NEVER_PORTABLE);
  } else {
    ASSERT_BITS_SET(features, requested | ALWAYS_LINUX);
  }
  peer_close(&p);
  finish_loop(&loop);
  peer_finish(&p);
  return 0;
}

/* configure adds features one call at a time. */
TEST_IMPL(udp_features_configure_additive) {
  unsigned int base;
  unsigned int features;
  uv_loop_t loop;
  test_peer_t p;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &p);
  peer_bind(&p, "127.0.0.1", 0);
  base = uvq_udp_features(&p.udp);
  ASSERT_OK(uvq_udp_configure(&p.udp, UVQ_UDP_RECVECN));
  features = uvq_udp_features(&p.udp);
  ASSERT_BITS_SET(features, base);
  ASSERT_BITS_CLEAR(features, OPT_IN & ~(unsigned int) UVQ_UDP_RECVECN);
  if (test_under_wine())
    ASSERT_EQ(base, features);
  else if (!test_portable_build())
    ASSERT_EQ(base | UVQ_UDP_RECVECN, features);
  ASSERT_OK(uvq_udp_configure(&p.udp, UVQ_UDP_GRO_RAW | UVQ_UDP_PMTUD));
  features = uvq_udp_features(&p.udp);
  ASSERT_BITS_SET(features, base);
  if (test_under_wine())
    ASSERT_EQ(base | UVQ_UDP_PMTUD, features);
  else if (test_portable_build())
    ASSERT_BITS_CLEAR(features, NEVER_PORTABLE);
  else
    ASSERT_EQ(base | UVQ_UDP_RECVECN | UVQ_UDP_GRO_RAW | UVQ_UDP_PMTUD,
              features);
  /* GRO after GRO_RAW would make both; uvq.h only forbids asking for both
   * in one call, so this is left unchecked. */
  ASSERT_OK(uvq_udp_configure(&p.udp, 0));
  ASSERT_EQ(features, uvq_udp_features(&p.udp));
  peer_close(&p);
  finish_loop(&loop);
  peer_finish(&p);
  return 0;
}

/* A reported REUSEPORT really lets a second socket share the port;
 * without it the port is taken. */
TEST_IMPL(udp_features_reuseport_effect) {
  struct sockaddr_storage addr;
  uv_loop_t loop;
  test_peer_t a;
  test_peer_t b;
  test_peer_t c;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &a);
  peer_init(&loop, &b);
  peer_init(&loop, &c);
  if (test_windows_build()) {
    /* Windows has no SO_REUSEPORT (its SO_REUSEADDR lets any socket take
     * over a port, which is something else): refused, never dropped
     * silently, and the port stays exclusive. */
    ASSERT_ERR(UV_ENOTSUP, peer_try_bind(&a, "127.0.0.1", UVQ_UDP_REUSEPORT));
    ASSERT_EQ(0, uvq_udp_features(&a.udp));
    peer_bind(&a, "127.0.0.1", 0);
    ASSERT_BITS_CLEAR(uvq_udp_features(&a.udp), UVQ_UDP_REUSEPORT);
    peer_addr(&a, "127.0.0.1", &addr);
    ASSERT_ERR(UV_EADDRINUSE,
               uvq_udp_bind(&c.udp, (const struct sockaddr*) &addr, 0));
    peer_bind(&b, "127.0.0.1", 0);
  } else {
  peer_bind(&a, "127.0.0.1", UVQ_UDP_REUSEPORT);
  ASSERT_BITS_SET(uvq_udp_features(&a.udp), UVQ_UDP_REUSEPORT);
  peer_addr(&a, "127.0.0.1", &addr);
  ASSERT_OK(uvq_udp_bind(&b.udp, (const struct sockaddr*) &addr,
                         UVQ_UDP_REUSEPORT));
  ASSERT_ERR(UV_EADDRINUSE,
             uvq_udp_bind(&c.udp, (const struct sockaddr*) &addr, 0));
  }
  peer_close(&a);
  peer_close(&b);
  peer_close(&c);
  finish_loop(&loop);
  peer_finish(&a);
  peer_finish(&b);
  peer_finish(&c);
  return 0;
}
