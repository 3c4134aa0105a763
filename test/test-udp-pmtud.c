/* Path-MTU discovery over real links in network namespaces.
 *
 *   veth:   client [10.75.2.1 | fd00:75:2::1] --MTU 1280-- server [.2 | ::2]
 *   router: client [10.75.3.1 | fd00:75:3::1] --MTU 1500-- router
 *           router --MTU 1280-- server [10.75.4.1 | fd00:75:4::1]
 *
 * Only 10.x and fd00:: addresses, and only inside the namespaces.
 */
#include <string.h>

#include "netns.h"
#include "task.h"
#include "udp-helpers.h"

static void make_payload(unsigned char* p, size_t len, unsigned int seed) {
  fill_pattern(p, len, seed);
}

static int send_connected(test_peer_t* peer, const void* data, size_t len) {
  return peer_send(peer, NULL, data, len, -1);
}

/* The client's link itself has MTU 1280: with UVQ_UDP_PMTUD (probe mode,
 * DF set) a 1400-byte datagram is refused locally, the path MTU reads
 * 1280, and a 1200-byte datagram goes through. */
static void pmtud_veth(int ipv6) {
  static unsigned char big[1400];
  static unsigned char fits[1200];
  const char* client_ip = ipv6 ? "fd00:75:2::1" : "10.75.2.1";
  const char* server_ip = ipv6 ? "fd00:75:2::2" : "10.75.2.2";
  struct sockaddr_storage server_addr;
  uvq_udp_stats_t stats;
  test_peer_t client;
  test_peer_t server;
  unsigned int features;
  uv_loop_t loop;
  netns_t a;
  netns_t b;
  size_t mtu;

  NETNS_REQUIRE();
  ASSERT_OK(netns_create(&a, "mtua"));
  ASSERT_OK(netns_create(&b, "mtub"));
  ASSERT_OK(netns_veth(&a, "va", &b, "vb", 1280));
  ASSERT_OK(netns_addr(&a, "va", ipv6 ? "fd00:75:2::1/64" : "10.75.2.1/24"));
  ASSERT_OK(netns_addr(&b, "vb", ipv6 ? "fd00:75:2::2/64" : "10.75.2.2/24"));

  make_payload(big, sizeof(big), 31);
  make_payload(fits, sizeof(fits), 32);
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &client);
  peer_init(&loop, &server);
  netns_enter(&b);
  peer_bind(&server, server_ip, 0);
  netns_enter(&a);
  peer_bind(&client, client_ip, UVQ_UDP_PMTUD);
  peer_addr(&server, server_ip, &server_addr);
  ASSERT_OK(uvq_udp_connect(&client.udp, (const struct sockaddr*) &server_addr));
  netns_leave();
  peer_start(&server);
  peer_start(&client);

  features = uvq_udp_features(&client.udp);
  if (!test_portable_build())
    ASSERT_BITS_SET(features, UVQ_UDP_PMTUD);
  ASSERT_OK(uvq_udp_getmtu(&client.udp, &mtu));
  ASSERT_EQ(1280, mtu);

  if (features & UVQ_UDP_PMTUD) {
    ASSERT_ERR(UV_EMSGSIZE, send_connected(&client, big, sizeof(big)));
    ASSERT_OK(uvq_udp_getmtu(&client.udp, &mtu));
    ASSERT_EQ(1280, mtu);
    ASSERT_EQ(1, send_connected(&client, fits, sizeof(fits)));
    run_until_rx(&loop, &server, 1);
    ASSERT_EQ(sizeof(fits), server.rx[0].nread);
    ASSERT_MEM_EQ(fits, server.rx[0].data, sizeof(fits));
    peer_stats(&client, &stats);
    ASSERT_UINT_EQ(1, stats.datagrams_sent);
    ASSERT_UINT_EQ(sizeof(fits), stats.bytes_sent);
  } else {
    /* Without DF the kernel fragments and the datagram arrives whole. */
    ASSERT_EQ(1, send_connected(&client, big, sizeof(big)));
    run_until_rx(&loop, &server, 1);
    ASSERT_EQ(sizeof(big), server.rx[0].nread);
  }
  /* No error-queue entries without UVQ_UDP_RECVERR. */
  ASSERT_EQ(0, client.nrx);

  peer_close(&client);
  peer_close(&server);
  finish_loop(&loop);
  peer_finish(&client);
  peer_finish(&server);
  netns_destroy(&a);
  netns_destroy(&b);
}

TEST_IMPL(udp_pmtud_veth_ipv4) {
  pmtud_veth(0);
  return 0;
}

TEST_IMPL(udp_pmtud_veth_ipv6) {
  pmtud_veth(1);
  return 0;
}

struct router_net {
  netns_t client;
  netns_t router;
  netns_t server;
};

static void router_net_create(struct router_net* n, int ipv6) {
  ASSERT_OK(netns_create(&n->client, "rtc"));
  ASSERT_OK(netns_create(&n->router, "rtr"));
  ASSERT_OK(netns_create(&n->server, "rts"));
  ASSERT_OK(netns_veth(&n->client, "vc", &n->router, "rc", 1500));
  ASSERT_OK(netns_veth(&n->router, "rs", &n->server, "vs", 1280));
  if (ipv6) {
    ASSERT_OK(netns_addr(&n->client, "vc", "fd00:75:3::1/64"));
    ASSERT_OK(netns_addr(&n->router, "rc", "fd00:75:3::fe/64"));
    ASSERT_OK(netns_addr(&n->router, "rs", "fd00:75:4::fe/64"));
    ASSERT_OK(netns_addr(&n->server, "vs", "fd00:75:4::1/64"));
    ASSERT_OK(netns_sh("ip -n %s -6 route add default via fd00:75:3::fe",
                       n->client.name));
    ASSERT_OK(netns_sh("ip -n %s -6 route add default via fd00:75:4::fe",
                       n->server.name));
    ASSERT_OK(netns_exec(&n->router,
                         "sysctl -qw net.ipv6.conf.all.forwarding=1"));
  } else {
    ASSERT_OK(netns_addr(&n->client, "vc", "10.75.3.1/24"));
    ASSERT_OK(netns_addr(&n->router, "rc", "10.75.3.254/24"));
    ASSERT_OK(netns_addr(&n->router, "rs", "10.75.4.254/24"));
    ASSERT_OK(netns_addr(&n->server, "vs", "10.75.4.1/24"));
    ASSERT_OK(netns_sh("ip -n %s route add default via 10.75.3.254",
                       n->client.name));
    ASSERT_OK(netns_sh("ip -n %s route add default via 10.75.4.254",
                       n->server.name));
    ASSERT_OK(netns_exec(&n->router, "sysctl -qw net.ipv4.ip_forward=1"));
  }
}

static void router_net_destroy(struct router_net* n) {
  netns_destroy(&n->client);
  netns_destroy(&n->router);
  netns_destroy(&n->server);
}

/* The client's own link is 1500; the router's link to the server is 1280.
 * A 1400-byte datagram leaves the client, the router answers with ICMP
 * "fragmentation needed" / ICMPv6 "packet too big" (MTU 1280), and the
 * client learns it from its error queue. */
static void pmtud_router(int ipv6) {
  static unsigned char big[1400];
  static unsigned char fits[1200];
  const char* client_ip = ipv6 ? "fd00:75:3::1" : "10.75.3.1";
  const char* server_ip = ipv6 ? "fd00:75:4::1" : "10.75.4.1";
  const char* router_ip = ipv6 ? "fd00:75:3::fe" : "10.75.3.254";
  struct sockaddr_storage server_addr;
  struct sockaddr_storage router_addr;
  struct router_net net;
  uvq_udp_stats_t stats;
  const rx_entry_t* e;
  unsigned int features;
  test_peer_t client;
  test_peer_t server;
  uv_loop_t loop;
  size_t mtu;

  NETNS_REQUIRE();
  router_net_create(&net, ipv6);
  make_payload(big, sizeof(big), 41);
  make_payload(fits, sizeof(fits), 42);

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &client);
  peer_init(&loop, &server);
  netns_enter(&net.server);
  peer_bind(&server, server_ip, 0);
  netns_enter(&net.client);
  peer_bind(&client, client_ip, UVQ_UDP_RECVERR);
  peer_addr(&server, server_ip, &server_addr);
  ASSERT_OK(uvq_udp_connect(&client.udp,
                            (const struct sockaddr*) &server_addr));
  netns_leave();
  make_addr(&router_addr, router_ip, 0);
  peer_start(&server);
  peer_start(&client);

  features = uvq_udp_features(&client.udp);
  if (test_portable_build()) {
    /* No error queue on the portable path: nothing to observe. */
    ASSERT_BITS_CLEAR(features, UVQ_UDP_RECVERR);
  } else {
    ASSERT_BITS_SET(features, UVQ_UDP_RECVERR);
  }
  ASSERT_OK(uvq_udp_set_pmtud(&client.udp, UVQ_UDP_PMTUD_DO));
  ASSERT_OK(uvq_udp_getmtu(&client.udp, &mtu));
  ASSERT_EQ(1500, mtu);

  ASSERT_EQ(1, send_connected(&client, big, sizeof(big)));
  if (!(features & UVQ_UDP_RECVERR)) {
    /* Without IP_RECVERR the kernel still sets the pending socket error
     * of a connected socket for a DF datagram (__udp4_lib_err, harderr),
     * and the next read reports it: one error callback, no address. */
    run_until_rx(&loop, &client, 1);
    ASSERT_ERR(UV_EMSGSIZE, client.rx[0].nread);
    ASSERT(!client.rx[0].has_addr);
    ASSERT_BITS_CLEAR(client.rx[0].flags, UVQ_UDP_RECV_ERRQUEUE);
    ASSERT_EQ(0, client.rx[0].error);
    ASSERT_EQ(0, server.nrx);
    /* The kernel still learned the path MTU from the ICMP message. */
    ASSERT_OK(uvq_udp_getmtu(&client.udp, &mtu));
    ASSERT_EQ(1280, mtu);
    goto done;
  }

  run_until_rx(&loop, &client, 1);
  e = &client.rx[0];
  ASSERT_BITS_SET(e->flags, UVQ_UDP_RECV_ERRQUEUE);
  ASSERT_ERR(UV_EMSGSIZE, e->error);
  ASSERT_EQ(1280, e->mtu);
  ASSERT(e->has_offender);
  ASSERT_ADDR_IP_EQ(&e->offender, &router_addr);
  ASSERT(e->has_addr);
  ASSERT_ADDR_EQ(&e->addr, &server_addr);
  /* The ICMP message quotes the start of the datagram; how much depends on
   * the message's size limit (576 bytes for IPv4, 1280 for IPv6). */
  ASSERT_GT(e->nread, 0);
  ASSERT_LE(e->nread, (ssize_t) sizeof(big));
  ASSERT_MEM_EQ(big, e->data, (size_t) e->nread);
  ASSERT_EQ(0, server.nrx);

  ASSERT_OK(uvq_udp_getmtu(&client.udp, &mtu));
  ASSERT_EQ(1280, mtu);
  peer_stats(&client, &stats);
  ASSERT_UINT_EQ(1, stats.errqueue_entries);
  ASSERT_UINT_EQ(0, stats.datagrams_received);

  /* What fits goes through... */
  ASSERT_EQ(1, send_connected(&client, fits, sizeof(fits)));
  run_until_rx(&loop, &server, 1);
  ASSERT_EQ(sizeof(fits), server.rx[0].nread);
  ASSERT_MEM_EQ(fits, server.rx[0].data, sizeof(fits));

  /* ...and with PMTUD_DO the learned MTU is enforced locally; the kernel
   * also queues a local error (no offender) on the error queue. */
  ASSERT_ERR(UV_EMSGSIZE, send_connected(&client, big, sizeof(big)));
  run_until_rx(&loop, &client, 2);
  e = &client.rx[1];
  ASSERT_BITS_SET(e->flags, UVQ_UDP_RECV_ERRQUEUE);
  ASSERT_ERR(UV_EMSGSIZE, e->error);
  ASSERT_EQ(1280, e->mtu);
  ASSERT(!e->has_offender);
  peer_stats(&client, &stats);
  ASSERT_UINT_EQ(2, stats.errqueue_entries);
  ASSERT_UINT_EQ(0, stats.datagrams_received);
  ASSERT_UINT_EQ(2, stats.datagrams_sent);
  ASSERT_EQ(1, server.nrx);

done:
  peer_close(&client);
  peer_close(&server);
  finish_loop(&loop);
  peer_finish(&client);
  peer_finish(&server);
  router_net_destroy(&net);
}

TEST_IMPL(udp_pmtud_router_ipv4) {
  pmtud_router(0);
  return 0;
}

TEST_IMPL(udp_pmtud_router_ipv6) {
  pmtud_router(1);
  return 0;
}
