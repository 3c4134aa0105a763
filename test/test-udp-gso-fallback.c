/* GSO refused by the kernel, for real: every segment still arrives exactly
 * once, the fallback is counted, and GSO is switched off on that socket
 * (uvq.h: uvq_udp_try_send_batch, uvq_udp_features). */
#ifdef __linux__
#include <errno.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#endif

#include "netns.h"
#include "task.h"
#include "udp-helpers.h"

#ifndef __linux__
/* Each test here makes the Linux kernel refuse a GSO send for real
 * (SO_NO_CHECK, UDP-Lite, a veth without checksum offload); other systems
 * have none of them, and their software path is what every GSO test
 * covers there. */
#define LINUX_ONLY "provokes Linux kernel GSO refusals (Linux-only)"
TEST_IMPL(udp_gso_refused_einval_no_check) {
  RETURN_SKIP(LINUX_ONLY);
}
TEST_IMPL(udp_gso_refused_eio_udplite) {
  RETURN_SKIP(LINUX_ONLY);
}
TEST_IMPL(udp_gso_refused_eio_veth) {
  RETURN_SKIP(LINUX_ONLY);
}
#else

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

/* Sends 10 x 1200 (last 500), then 3 x 1000 (last 100); both must be
 * delivered whole; the first send is where the kernel refuses. */
static void assert_refusal_handled(uv_loop_t* loop,
                                   test_peer_t* tx,
                                   test_peer_t* rx,
                                   const struct sockaddr* dest) {
  static unsigned char first[9 * 1200 + 500];
  static unsigned char second[2 * 1000 + 100];
  uvq_udp_stats_t stats;
  uvq_udp_mmsg_t msg;
  unsigned int had_gso;
  uv_buf_t buf;
  unsigned int i;

  fill_pattern(first, sizeof(first), 21);
  fill_pattern(second, sizeof(second), 22);
  had_gso = uvq_udp_features(&tx->udp) & UVQ_UDP_FEATURE_GSO;
  if (!test_portable_build()) {
    ASSERT(had_gso);
    ASSERT_EQ(64, uvq_udp_gso_max_segments(&tx->udp));
  }

  memset(&msg, 0, sizeof(msg));
  buf = uv_buf_init((char*) first, sizeof(first));
  msg.bufs = &buf;
  msg.nbufs = 1;
  msg.addr = dest;
  msg.gso_size = 1200;
  msg.ecn = -1;
  ASSERT_EQ(1, uvq_udp_try_send_batch(&tx->udp, &msg, 1, 0));

  /* GSO is off on this socket now, and says so. */
  ASSERT_BITS_CLEAR(uvq_udp_features(&tx->udp), UVQ_UDP_FEATURE_GSO);
  ASSERT_EQ(0, uvq_udp_gso_max_segments(&tx->udp));
  peer_stats(tx, &stats);
  ASSERT_UINT_EQ(1, stats.gso_fallbacks);
  ASSERT_UINT_EQ(0, stats.gso_sends);
  ASSERT_UINT_EQ(0, stats.gso_segments);
  ASSERT_UINT_EQ(10, stats.datagrams_sent);
  ASSERT_UINT_EQ(sizeof(first), stats.bytes_sent);

  run_until_rx(loop, rx, 10);
  for (i = 0; i < 10; i++) {
    ASSERT_EQ(i < 9 ? 1200 : 500, rx->rx[i].nread);
    ASSERT_MEM_EQ(first + i * 1200, rx->rx[i].data, (size_t) rx->rx[i].nread);
  }

  /* The next GSO message goes straight to software segmentation. */
  buf = uv_buf_init((char*) second, sizeof(second));
  msg.gso_size = 1000;
  ASSERT_EQ(1, uvq_udp_try_send_batch(&tx->udp, &msg, 1, 0));
  run_until_rx(loop, rx, 13);
  for (i = 0; i < 3; i++) {
    ASSERT_EQ(i < 2 ? 1000 : 100, rx->rx[10 + i].nread);
    ASSERT_MEM_EQ(second + i * 1000, rx->rx[10 + i].data,
                  (size_t) rx->rx[10 + i].nread);
  }
  peer_stats(tx, &stats);
  ASSERT_UINT_EQ(2, stats.gso_fallbacks);
  ASSERT_UINT_EQ(0, stats.gso_sends);
  ASSERT_UINT_EQ(13, stats.datagrams_sent);
  ASSERT_BITS_CLEAR(uvq_udp_features(&tx->udp), UVQ_UDP_FEATURE_GSO);

  /* Plain datagrams are unaffected. */
  peer_send_ok(tx, dest, "plain", 5, -1);
  run_until_rx(loop, rx, 14);
  ASSERT_EQ(5, rx->rx[13].nread);
  ASSERT_MEM_EQ("plain", rx->rx[13].data, 5);
}

/* SO_NO_CHECK on the sender: udp_send_skb() refuses UDP_SEGMENT with
 * EINVAL (a segmented send needs the checksum). */
TEST_IMPL(udp_gso_refused_einval_no_check) {
  struct sockaddr_storage dest;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  int one = 1;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  ASSERT_OK(setsockopt(peer_fd(&tx), SOL_SOCKET, SO_NO_CHECK, &one,
                       sizeof(one)));
  assert_refusal_handled(&loop, &tx, &rx, (const struct sockaddr*) &dest);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

/* A UDP-Lite socket adopted with uvq_udp_open(): udp_send_skb() refuses
 * UDP_SEGMENT on it with EIO, the same error as an egress device without
 * checksum offload gave before Linux 6.11. */
TEST_IMPL(udp_gso_refused_eio_udplite) {
  struct sockaddr_storage addr;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  socklen_t len;
  int rx_fd;
  int tx_fd;
  int rc;

  tx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 IPPROTO_UDPLITE);
  if (tx_fd < 0)
    RETURN_SKIP("no UDP-Lite sockets on this kernel: %s", strerror(errno));
  rx_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                 IPPROTO_UDPLITE);
  ASSERT_GE(rx_fd, 0);
  make_addr(&addr, "127.0.0.1", 0);
  ASSERT_OK(bind(rx_fd, (struct sockaddr*) &addr, sizeof(struct sockaddr_in)));
  ASSERT_OK(bind(tx_fd, (struct sockaddr*) &addr, sizeof(struct sockaddr_in)));

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  rc = uvq_udp_open(&tx.udp, tx_fd);
  if (rc == UV_EINVAL) {
    /* uvq.h allows refusing sockets that are not plain UDP. */
    close(rx_fd);
    close(tx_fd);
    uvq_udp_close(&rx.udp, NULL);
    uvq_udp_close(&tx.udp, NULL);
    finish_loop(&loop);
    RETURN_SKIP("uvq_udp_open() refuses UDP-Lite sockets (UV_EINVAL)");
  }
  ASSERT_OK(rc);
  ASSERT_OK(uvq_udp_open(&rx.udp, rx_fd));
  len = sizeof(rx.name);
  ASSERT_OK(getsockname(rx_fd, (struct sockaddr*) &rx.name, &len));
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &addr);
  assert_refusal_handled(&loop, &tx, &rx, (const struct sockaddr*) &addr);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

/* Turns off transmit checksum offload, as `ethtool -K dev tx off` does,
 * with the legacy ioctl (ethtool itself may not be installed). */
static int disable_tx_checksum(const char* dev) {
  struct ethtool_value ev;
  struct ifreq ifr;
  int fd;
  int rc;

  fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  memset(&ifr, 0, sizeof(ifr));
  snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dev);
  ev.cmd = ETHTOOL_STXCSUM;
  ev.data = 0;
  ifr.ifr_data = (void*) &ev;
  rc = ioctl(fd, SIOCETHTOOL, &ifr);
  if (rc == 0) {
    ev.cmd = ETHTOOL_GTXCSUM;
    ev.data = 1;
    rc = ioctl(fd, SIOCETHTOOL, &ifr);
    if (rc == 0 && ev.data != 0)
      rc = -1;
  }
  close(fd);
  return rc;
}

/* What the kernel says to a plain GSO send from this namespace. */
static int kernel_gso_errno(const struct sockaddr* dest) {
  static char payload[3000];
  int seg = 1200;
  int err = 0;
  int fd;

  fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  ASSERT_OK(setsockopt(fd, SOL_UDP, UDP_SEGMENT, &seg, sizeof(seg)));
  if (sendto(fd, payload, sizeof(payload), 0, dest, addr_len(dest)) < 0)
    err = errno;
  close(fd);
  return err;
}

/* The veth variant: the sender's egress device has tx checksum offload
 * off. Linux before 6.11 refuses GSO there with EIO; since 6.11 ("udp:
 * Allow GSO transmit from devices with no checksum offload") the kernel
 * checksums in software and there is no refusal to provoke. */
TEST_IMPL(udp_gso_refused_eio_veth) {
  struct sockaddr_storage dest;
  netns_t a;
  netns_t b;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  int err;

  NETNS_REQUIRE();
  ASSERT_OK(netns_create(&a, "gsoa"));
  ASSERT_OK(netns_create(&b, "gsob"));
  ASSERT_OK(netns_veth(&a, "va", &b, "vb", 0));
  ASSERT_OK(netns_addr(&a, "va", "10.75.1.1/24"));
  ASSERT_OK(netns_addr(&b, "vb", "10.75.1.2/24"));

  netns_enter(&a);
  if (disable_tx_checksum("va") != 0)
    RETURN_SKIP("cannot turn tx checksum offload off on veth");
  make_addr(&dest, "10.75.1.2", 9);
  err = kernel_gso_errno((const struct sockaddr*) &dest);
  netns_leave();
  if (err != EIO)
    RETURN_SKIP("GSO over a veth without tx checksum offload %s here "
                "(Linux 6.11+ checksums in software); the EIO path is "
                "covered by udp_gso_refused_eio_udplite",
                err == 0 ? "succeeds" : strerror(err));

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  netns_enter(&b);
  peer_bind(&rx, "10.75.1.2", 0);
  netns_enter(&a);
  peer_bind(&tx, "10.75.1.1", 0);
  netns_leave();
  peer_start(&rx);
  peer_addr(&rx, "10.75.1.2", &dest);
  assert_refusal_handled(&loop, &tx, &rx, (const struct sockaddr*) &dest);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  netns_destroy(&a);
  netns_destroy(&b);
  return 0;
}
#endif /* __linux__ */
