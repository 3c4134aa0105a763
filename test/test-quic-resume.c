/* Session resumption and 0-RTT (RFC 9001, 4.6): a ticket from one
 * connection lets the next one resume, and send stream data before any
 * handshake packet has come back. */
#include <string.h>

#include "quic-helpers.h"
#include "task.h"

#define EARLY_BYTES 3000

static int got_ticket(void* arg) {
  qt_t* t = arg;

  return t->client.tickets > 0;
}

/* A first, full handshake that leaves the client a ticket. */
static void first_connection(qt_t* t) {
  qt_conn_t* c;
  uvq_quic_conn_stats_t st;

  c = qt_connect(t);
  qt_run_handshake(t, c);
  qt_run_until(t, got_ticket, t, QT_WAIT_MS);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &st));
  ASSERT_EQ(0, st.resumed);
  ASSERT_EQ(UVQ_QUIC_0RTT_NONE, st.zero_rtt);
  ASSERT_GT(t->client.ticketlen, 0);
  t->in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t->in_api--;
  qt_run_until_closed(t, c);
}

TEST_IMPL(quic_resume_0rtt) {
  uvq_quic_conn_stats_t cst;
  uvq_quic_conn_stats_t sst;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;

  qt_init(&t, "127.0.0.1", EARLY_BYTES);
  qt_start(&t);
  first_connection(&t);

  /* Resume, and write before the loop runs: nothing of the handshake has
   * happened yet, so these bytes can only go as 0-RTT. */
  c = qt_connect_ticket(&t, t.client.ticket, t.client.ticketlen);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &cst));
  ASSERT_EQ(UVQ_QUIC_0RTT_SENT, cst.zero_rtt);
  id = qt_open_bidi(c);
  qt_write(c, id, EARLY_BYTES, 1);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 1);
  qt_run_until_fins(&t, s, 1);
  qt_assert_stream(s, id, EARLY_BYTES);

  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &cst));
  ASSERT_OK(uvq_quic_conn_get_stats(s->conn, &sst));
  ASSERT_EQ(1, cst.resumed);
  ASSERT_EQ(1, sst.resumed);
  ASSERT_EQ(UVQ_QUIC_0RTT_ACCEPTED, cst.zero_rtt);
  ASSERT_EQ(UVQ_QUIC_0RTT_ACCEPTED, sst.zero_rtt);

  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, s);
  qt_teardown(&t);
  return 0;
}

/* A server that does not take early data still resumes; the ticket then
 * allows no 0-RTT, so no stream can be opened before the handshake. */
TEST_IMPL(quic_resume_server_refuses_0rtt) {
  uvq_quic_conn_stats_t cst;
  qt_t t;
  qt_conn_t* c;
  int64_t id;

  qt_init(&t, "127.0.0.1", EARLY_BYTES);
  t.server.cfg.zero_rtt = 0;
  qt_start(&t);
  first_connection(&t);

  c = qt_connect_ticket(&t, t.client.ticket, t.client.ticketlen);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &cst));
  ASSERT_EQ(UVQ_QUIC_0RTT_NONE, cst.zero_rtt);
  t.in_api++;
  ASSERT_ERR(UV_EAGAIN, uvq_quic_stream_open(c->conn, 1, &id));
  t.in_api--;
  qt_run_handshake(&t, c);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &cst));
  ASSERT_EQ(1, cst.resumed);
  ASSERT_EQ(UVQ_QUIC_0RTT_NONE, cst.zero_rtt);

  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_teardown(&t);
  return 0;
}

/* A ticket that is not one (truncated, or random bytes) is ignored: a full
 * handshake follows, safely. */
TEST_IMPL(quic_resume_bad_ticket) {
  uvq_quic_conn_stats_t cst;
  uint8_t junk[300];
  size_t i;
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", EARLY_BYTES);
  qt_start(&t);
  first_connection(&t);

  for (i = 0; i < sizeof(junk); i++)
    junk[i] = (uint8_t) (i * 37 + 11);
  c = qt_connect_ticket(&t, junk, sizeof(junk));
  qt_run_handshake(&t, c);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &cst));
  ASSERT_EQ(0, cst.resumed);
  ASSERT_EQ(UVQ_QUIC_0RTT_NONE, cst.zero_rtt);
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);

  /* The real ticket cut short: the same. */
  c = qt_connect_ticket(&t, t.client.ticket, t.client.ticketlen / 2);
  qt_run_handshake(&t, c);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &cst));
  ASSERT_EQ(0, cst.resumed);
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_teardown(&t);
  return 0;
}
