/* ECN on loopback: packets go out ECT(0), the peer sees ECT(0), ECN
 * validation keeps marking on, and the bulk sender uses GSO. */
#include <string.h>

#include "quic-helpers.h"
#include "task.h"

#define ECN_BYTES (4u * 1024u * 1024u)

static void assert_conn_ecn(qt_conn_t* c) {
  uvq_quic_conn_stats_t st;

  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &st));
  if (st.ecn_sent[UVQ_ECN_ECT0] == 0 || st.ecn_received[UVQ_ECN_ECT0] == 0 ||
      st.ecn_marking != 1)
    test_fail(__FILE__, __LINE__,
              "%s: ecn_sent %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
              " ecn_received %" PRIu64 "/%" PRIu64 "/%" PRIu64 "/%" PRIu64
              " marking %d",
              c->is_server ? "server" : "client", st.ecn_sent[0],
              st.ecn_sent[1], st.ecn_sent[2], st.ecn_sent[3],
              st.ecn_received[0], st.ecn_received[1], st.ecn_received[2],
              st.ecn_received[3], st.ecn_marking);
  /* Nothing on loopback sets CE or ECT(1). */
  ASSERT_UINT_EQ(0, st.ecn_received[UVQ_ECN_CE]);
  ASSERT_UINT_EQ(0, st.ecn_received[UVQ_ECN_ECT1]);
  ASSERT_UINT_EQ(0, st.ecn_sent[UVQ_ECN_CE]);
  ASSERT_UINT_EQ(0, st.ecn_sent[UVQ_ECN_ECT1]);
  ASSERT_UINT_GE(st.packets_sent,
                 st.ecn_sent[0] + st.ecn_sent[1] + st.ecn_sent[2]);
}

static void ecn_transfer(const char* ip) {
  uvq_udp_stats_t us;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;

  qt_init(&t, ip, ECN_BYTES);
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  id = qt_open_bidi(c);
  qt_write(c, id, ECN_BYTES, 1);
  s = qt_server_conn(&t, 0);
  qt_run_until_fins(&t, s, 1);
  qt_run_until_writes(&t, &t.client, 1);
  qt_assert_stream(s, id, ECN_BYTES);
  assert_conn_ecn(c);
  assert_conn_ecn(s);
  /* The UDP handles underneath agree. */
  ASSERT_OK(uvq_udp_get_stats(uvq_quic_endpoint_udp(t.server.ep), &us));
  ASSERT_UINT_GE(us.ecn_received[UVQ_ECN_ECT0], 1);
  ASSERT_UINT_EQ(0, us.ecn_received[UVQ_ECN_CE]);
  ASSERT_OK(uvq_udp_get_stats(uvq_quic_endpoint_udp(t.client.ep), &us));
  ASSERT_UINT_GE(us.ecn_received[UVQ_ECN_ECT0], 1);
  /* The client sent 4 MiB: in GSO batches where the datapath has kernel
   * GSO, segmented in software (one datagram per syscall) where not. */
  if (uvq_udp_features(uvq_quic_endpoint_udp(t.client.ep)) &
      UVQ_UDP_FEATURE_GSO) {
    if (us.gso_sends == 0)
      test_fail(__FILE__, __LINE__,
                "client sent %" PRIu64 " datagrams in %" PRIu64
                " syscalls without a GSO send (fallbacks %" PRIu64 ")",
                us.datagrams_sent, us.send_syscalls, us.gso_fallbacks);
    ASSERT(us.gso_segments > us.gso_sends);
  } else {
    ASSERT_UINT_EQ(0, us.gso_sends);
    ASSERT_UINT_GE(us.gso_fallbacks, 1);
    ASSERT_UINT_EQ(us.datagrams_sent, us.send_syscalls);
  }
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, s);
  qt_teardown(&t);
}

TEST_IMPL(quic_ecn_ipv4) {
  ecn_transfer("127.0.0.1");
  return 0;
}

TEST_IMPL(quic_ecn_ipv6) {
  ecn_transfer("::1");
  return 0;
}

/* config.ecn = 0: nothing is marked. */
TEST_IMPL(quic_ecn_off) {
  uvq_quic_conn_stats_t st;
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 100000);
  t.client.cfg.ecn = 0;
  t.server.cfg.ecn = 0;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  qt_write(c, qt_open_bidi(c), 100000, 1);
  qt_run_until_fins(&t, qt_server_conn(&t, 0), 1);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &st));
  ASSERT_UINT_EQ(0, st.ecn_sent[UVQ_ECN_ECT0]);
  ASSERT_EQ(0, st.ecn_marking);
  ASSERT_OK(uvq_quic_conn_get_stats(qt_server_conn(&t, 0)->conn, &st));
  ASSERT_UINT_EQ(0, st.ecn_received[UVQ_ECN_ECT0]);
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  qt_teardown(&t);
  return 0;
}
