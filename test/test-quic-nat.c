/* NAT rebinding, for real: the client sits behind a router namespace that
 * masquerades its traffic with nftables. Mid-transfer the router's mapping
 * changes (a new source port, and its connection tracking forgotten), so
 * the server sees the client's packets arrive from a new address without
 * the client knowing. The server must validate the new path and carry on
 * (RFC 9000, 9.3); the transfer completes byte for byte. */
#include <string.h>
#include <unistd.h>

#include "netns.h"
#include "quic-helpers.h"
#include "task.h"

#define NAT_BYTES (4u * 1024u * 1024u)
#define NAT_CLIENT "10.78.1.2"
#define NAT_ROUTER_IN "10.78.1.1"
#define NAT_ROUTER_OUT "10.78.2.1"
#define NAT_SERVER "10.78.2.2"
#define NAT_PORT_BEFORE 41000
#define NAT_PORT_AFTER 42000

typedef struct nat_s {
  netns_t cli;
  netns_t rtr;
  netns_t srv;
  qt_conn_t* server_conn;
  uint64_t switch_at;   /* server bytes received when the NAT changes */
} nat_t;

static void nat_down(void* arg) {
  nat_t* n = arg;

  test_atexit_cancel(nat_down, n);
  netns_leave();
  netns_destroy(&n->cli);
  netns_destroy(&n->rtr);
  netns_destroy(&n->srv);
}

static void nat_map(nat_t* n, unsigned int port) {
  /* One rule: UDP leaving towards the server takes the router's address
   * and this source port. Flushing the conntrack table makes the next
   * packet take the new mapping at once. */
  ASSERT_OK(netns_exec(&n->rtr, "nft flush chain ip nat post"));
  ASSERT_OK(netns_exec(&n->rtr,
                       "nft add rule ip nat post oifname r1 meta l4proto udp "
                       "masquerade to :%u",
                       port));
  ASSERT_OK(netns_exec(&n->rtr, "conntrack -F >/dev/null 2>&1"));
}

static void nat_up(nat_t* n) {
  NETNS_REQUIRE();
  if (netns_sh("command -v nft >/dev/null && command -v conntrack >/dev/null"))
    RETURN_SKIP("nft and conntrack are needed (Debian nftables, conntrack)");
  test_atexit(nat_down, n);
  ASSERT_OK(netns_create(&n->cli, "natc"));
  ASSERT_OK(netns_create(&n->rtr, "natr"));
  ASSERT_OK(netns_create(&n->srv, "nats"));
  ASSERT_OK(netns_veth(&n->cli, "c0", &n->rtr, "r0", 0));
  ASSERT_OK(netns_veth(&n->rtr, "r1", &n->srv, "s0", 0));
  ASSERT_OK(netns_addr(&n->cli, "c0", NAT_CLIENT "/24"));
  ASSERT_OK(netns_addr(&n->rtr, "r0", NAT_ROUTER_IN "/24"));
  ASSERT_OK(netns_addr(&n->rtr, "r1", NAT_ROUTER_OUT "/24"));
  ASSERT_OK(netns_addr(&n->srv, "s0", NAT_SERVER "/24"));
  ASSERT_OK(netns_exec(&n->cli, "ip route add default via " NAT_ROUTER_IN));
  ASSERT_OK(netns_exec(&n->rtr, "sysctl -q -w net.ipv4.ip_forward=1"));
  ASSERT_OK(netns_exec(&n->rtr, "nft add table ip nat"));
  ASSERT_OK(netns_exec(&n->rtr,
                       "nft \"add chain ip nat post { type nat hook "
                       "postrouting priority 100 ; }\""));
  nat_map(n, NAT_PORT_BEFORE);
}

static unsigned int remote_port(qt_conn_t* c) {
  struct sockaddr_storage remote;

  ASSERT_OK(uvq_quic_conn_get_path(c->conn, NULL, &remote));
  return addr_port((struct sockaddr*) &remote);
}

static int server_got_enough(void* arg) {
  nat_t* n = arg;

  return n->server_conn != NULL && n->server_conn->rx_total >= n->switch_at;
}

TEST_IMPL(quic_nat_rebinding) {
  nat_t n;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;

  memset(&n, 0, sizeof(n));
  qt_init(&t, NAT_SERVER, NAT_BYTES);
  nat_up(&n);

  netns_enter(&n.srv);
  t.ip = NAT_SERVER;
  qt_start_server(&t);
  netns_leave();
  netns_enter(&n.cli);
  t.ip = NAT_CLIENT;
  qt_start_client(&t);
  netns_leave();

  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 0);
  /* The server knows the client by the router's address and first port. */
  ASSERT_EQ(NAT_PORT_BEFORE, remote_port(s));

  id = qt_open_bidi(c);
  qt_write(c, id, NAT_BYTES, 1);
  n.server_conn = s;
  n.switch_at = NAT_BYTES / 4;
  qt_run_until(&t, server_got_enough, &n, QT_WAIT_MS);
  nat_map(&n, NAT_PORT_AFTER);

  qt_run_until_fins(&t, s, 1);
  qt_run_until_writes(&t, &t.client, 1);
  qt_assert_stream(s, id, NAT_BYTES);
  ASSERT_EQ(1, t.client.writes_ok);
  /* The server moved to the new address and the connection lived on. */
  ASSERT_EQ(NAT_PORT_AFTER, remote_port(s));
  ASSERT_EQ(0, c->closed);
  ASSERT_EQ(0, s->closed);

  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, s);
  qt_teardown(&t);
  nat_down(&n);
  return 0;
}
