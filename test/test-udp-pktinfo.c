/* pktinfo: a wildcard-bound socket learns which local address each
 * datagram arrived on (with its own port) and on which interface, and can
 * answer from exactly that address with uvq_udp_mmsg_t.local. */
#include <string.h>

#include "netns.h"
#include "task.h"
#include "udp-helpers.h"

struct pktinfo_case {
  /* The server binds the wildcard address of this family. */
  const char* server_bind;
  /* The client binds this address; the server sees it as client_seen. */
  const char* client_bind;
  const char* client_seen;
  /* The two local addresses the client sends to, as the client writes
   * them, as the server must report them, and as the client must see the
   * answers come from. */
  const char* dest[2];
  const char* server_local[2];
  const char* client_sees[2];
};

static void pktinfo_roundtrip(const struct pktinfo_case* c) {
  struct sockaddr_storage dest[2];
  struct sockaddr_storage expected_local[2];
  struct sockaddr_storage answer_from[2];
  struct sockaddr_storage reply_local[2];
  struct sockaddr_storage client_name;
  uvq_udp_mmsg_t replies[2];
  uv_buf_t reply_bufs[2];
  uvq_udp_stats_t stats;
  unsigned int features;
  unsigned int lo_index;
  unsigned char payload[2][32];
  test_peer_t server;
  test_peer_t client;
  uv_loop_t loop;
  unsigned int i;

  lo_index = test_loopback_index();

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &server);
  peer_init(&loop, &client);
  peer_bind(&server, c->server_bind, UVQ_UDP_RECVPKTINFO);
  peer_bind(&client, c->client_bind, 0);
  peer_start(&server);
  peer_start(&client);
  features = uvq_udp_features(&server.udp);
  if (!test_portable_build())
    ASSERT_BITS_SET(features,
                    UVQ_UDP_RECVPKTINFO | UVQ_UDP_FEATURE_SRCADDR);
  make_addr(&client_name, c->client_seen, peer_port(&client));

  for (i = 0; i < 2; i++) {
    peer_addr(&server, c->dest[i], &dest[i]);
    peer_addr(&server, c->server_local[i], &expected_local[i]);
    make_addr(&answer_from[i], c->client_sees[i], peer_port(&server));
    fill_pattern(payload[i], sizeof(payload[i]), i);
    peer_send_ok(&client, (const struct sockaddr*) &dest[i], payload[i],
                 sizeof(payload[i]), -1);
  }
  run_until_rx(&loop, &server, 2);

  for (i = 0; i < 2; i++) {
    const rx_entry_t* e = &server.rx[i];

    ASSERT_EQ(sizeof(payload[i]), e->nread);
    ASSERT_MEM_EQ(payload[i], e->data, sizeof(payload[i]));
    ASSERT_ADDR_EQ(&e->addr, &client_name);
    ASSERT_EQ(0, e->flags & ~(unsigned int) UVQ_UDP_MMSG_CHUNK);
    if (features & UVQ_UDP_RECVPKTINFO) {
      /* The address the client used, with the server's own port. */
      ASSERT_ADDR_EQ(&e->local, &expected_local[i]);
      ASSERT_EQ(lo_index, e->ifindex);
    } else {
      ASSERT_EQ(0, e->local.ss_family);
      ASSERT_EQ(0, e->ifindex);
    }
  }

  /* Answer each datagram from the other address it was not sent to, so
   * that the kernel's own choice (the address the request came in on or
   * the route's preferred source) cannot pass for uvq's. The local port is
   * ignored by uvq, so give it a wrong one on purpose. */
  memset(replies, 0, sizeof(replies));
  for (i = 0; i < 2; i++) {
    make_addr(&reply_local[i], c->server_local[1 - i], 9);
    reply_bufs[i] = uv_buf_init((char*) payload[i], sizeof(payload[i]));
    replies[i].bufs = &reply_bufs[i];
    replies[i].nbufs = 1;
    replies[i].addr = (const struct sockaddr*) &server.rx[i].addr;
    replies[i].local = (const struct sockaddr*) &reply_local[i];
    replies[i].ecn = -1;
  }
  if (!(uvq_udp_features(&server.udp) & UVQ_UDP_FEATURE_SRCADDR)) {
    /* Wine ignores IN_PKTINFO on send, and uvq says so: a source address
     * is refused rather than silently not used. */
    ASSERT(test_under_wine());
    ASSERT_ERR(UV_ENOTSUP, uvq_udp_try_send_batch(&server.udp, replies, 2, 0));
    replies[0].local = NULL;
    replies[1].local = NULL;
  }
  ASSERT_EQ(2, uvq_udp_try_send_batch(&server.udp, replies, 2, 0));
  run_until_rx(&loop, &client, 2);
  for (i = 0; i < 2; i++) {
    const rx_entry_t* e = &client.rx[i];

    ASSERT_EQ(sizeof(payload[i]), e->nread);
    ASSERT_MEM_EQ(payload[i], e->data, sizeof(payload[i]));
    if (uvq_udp_features(&server.udp) & UVQ_UDP_FEATURE_SRCADDR)
      ASSERT_ADDR_EQ(&e->addr, &answer_from[1 - i]);
    else
      ASSERT_EQ(peer_port(&server), addr_port((struct sockaddr*) &e->addr));
  }

  peer_stats(&server, &stats);
  ASSERT_UINT_EQ(2, stats.datagrams_received);
  ASSERT_UINT_EQ(2, stats.datagrams_sent);

  peer_close(&server);
  peer_close(&client);
  finish_loop(&loop);
  peer_finish(&server);
  peer_finish(&client);
}

/* 127.0.0.2 is local on Linux without configuration: lo owns 127/8. */
TEST_IMPL(udp_pktinfo_ipv4) {
  static const struct pktinfo_case c = {
    "0.0.0.0", "127.0.0.1", "127.0.0.1",
    {"127.0.0.1", "127.0.0.2"},
    {"127.0.0.1", "127.0.0.2"},
    {"127.0.0.1", "127.0.0.2"}
  };
  pktinfo_roundtrip(&c);
  return 0;
}

/* IPv4 arrivals on a dual-stack socket are reported IPv4-mapped, and a
 * reply's source is given IPv4-mapped too (the socket is AF_INET6). */
TEST_IMPL(udp_pktinfo_mapped) {
  static const struct pktinfo_case c = {
    "::", "127.0.0.1", "::ffff:127.0.0.1",
    {"127.0.0.1", "127.0.0.2"},
    {"::ffff:127.0.0.1", "::ffff:127.0.0.2"},
    {"127.0.0.1", "127.0.0.2"}
  };
  pktinfo_roundtrip(&c);
  return 0;
}

/* The host's loopback has only ::1, and the tests must not add addresses
 * to it: a namespace gets a second one. */
TEST_IMPL(udp_pktinfo_ipv6) {
  static const struct pktinfo_case c = {
    "::", "::1", "::1",
    {"::1", "fd00:75:71::2"},
    {"::1", "fd00:75:71::2"},
    {"::1", "fd00:75:71::2"}
  };
  netns_t ns;

  NETNS_REQUIRE();
  ASSERT_OK(netns_create(&ns, "pktinfo6"));
  ASSERT_OK(netns_addr(&ns, "lo", "fd00:75:71::2/128"));
  netns_enter(&ns);
  pktinfo_roundtrip(&c);
  netns_leave();
  netns_destroy(&ns);
  return 0;
}
