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
#define NAT_NET "10.78"
#define NAT_CLIENT NAT_NET ".1.2"
#define NAT_SERVER NAT_NET ".2.2"
#define NAT_PORT_BEFORE 41000
#define NAT_PORT_AFTER 42000

typedef struct nat_s {
  qt_nat_t net;
  qt_conn_t* server_conn;
  uint64_t switch_at;   /* server bytes received when the NAT changes */
} nat_t;

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
  qt_nat_up(&n.net, "nat", NAT_NET);
  qt_nat_map(&n.net, NAT_PORT_BEFORE);

  netns_enter(&n.net.srv);
  t.ip = NAT_SERVER;
  qt_start_server(&t);
  netns_leave();
  netns_enter(&n.net.cli);
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
  qt_nat_map(&n.net, NAT_PORT_AFTER);

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
  qt_nat_down(&n.net);
  return 0;
}
