/* RFC 9221 datagrams: exact delivery and acknowledgement, and the two
 * ways a send is refused. */
#include <string.h>

#include "quic-helpers.h"
#include "task.h"

#define DGRAMS 10

static void close_both(qt_t* t, qt_conn_t* c) {
  t->in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t->in_api--;
  qt_run_until_closed(t, c);
  qt_run_until_closed(t, qt_server_conn(t, 0));
}

static size_t dgram_len(unsigned int i) {
  return 1 + i * 111;
}

static void fill_dgram(uint8_t* buf, size_t len, unsigned int i) {
  size_t k;

  for (k = 0; k < len; k++)
    buf[k] = (uint8_t) (i * 31 + k * 3);
}

struct dgram_wait {
  qt_conn_t* sender;
  qt_conn_t* receiver;
};

static int all_delivered(void* arg) {
  struct dgram_wait* w = arg;
  return w->receiver->dgrams >= DGRAMS && w->sender->dgram_acked >= DGRAMS;
}

static void exchange(qt_t* t, qt_conn_t* from, qt_conn_t* to) {
  uint8_t buf[1200];
  struct dgram_wait w;
  uv_buf_t b;
  uint64_t id;
  unsigned int i;

  for (i = 0; i < DGRAMS; i++) {
    fill_dgram(buf, dgram_len(i), i);
    b = uv_buf_init((char*) buf, (unsigned int) dgram_len(i));
    id = UINT64_MAX;
    ASSERT_OK(uvq_quic_datagram_send(from->conn, &b, 1, &id));
    ASSERT_UINT_EQ(i, id);
  }
  w.sender = from;
  w.receiver = to;
  qt_run_until(t, all_delivered, &w, QT_WAIT_MS);
  qt_run_for(t, 50);
  /* Loopback neither loses nor reorders: every datagram arrives once, in
   * order, with its exact contents, and each is acknowledged once. */
  ASSERT_EQ(DGRAMS, to->dgrams);
  ASSERT_EQ(DGRAMS, from->dgram_acked);
  ASSERT_EQ(0, from->dgram_lost);
  for (i = 0; i < DGRAMS; i++) {
    fill_dgram(buf, dgram_len(i), i);
    ASSERT_UINT_EQ(dgram_len(i), to->dgram_len[i]);
    ASSERT_MEM_EQ(buf, to->dgram_data[i], dgram_len(i));
  }
  /* Each id acknowledged exactly once. */
  for (i = 0; i < DGRAMS; i++) {
    unsigned int j;
    unsigned int seen = 0;
    for (j = 0; j < DGRAMS; j++)
      seen += from->dgram_acked_ids[j] == i;
    ASSERT_EQ(1, seen);
  }
}

TEST_IMPL(quic_datagram_exchange) {
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 0);
  t.server.cfg.max_datagram_frame_size = 1200;
  t.client.cfg.max_datagram_frame_size = 1200;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  exchange(&t, c, qt_server_conn(&t, 0));
  exchange(&t, qt_server_conn(&t, 0), c);
  close_both(&t, c);
  qt_teardown(&t);
  return 0;
}

/* Only the client accepts datagrams: the client may not send any (the
 * server did not offer), the server may. */
TEST_IMPL(quic_datagram_not_allowed) {
  uint8_t buf[16];
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  uv_buf_t b;
  uint64_t id;

  qt_init(&t, "127.0.0.1", 0);
  t.client.cfg.max_datagram_frame_size = 1200;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 0);
  memset(buf, 7, sizeof(buf));
  b = uv_buf_init((char*) buf, sizeof(buf));
  ASSERT_ERR(UV_ENOTSUP, uvq_quic_datagram_send(c->conn, &b, 1, &id));
  ASSERT_OK(uvq_quic_datagram_send(s->conn, &b, 1, &id));
  qt_run_until(&t, qt_conn_has_dgram, c, QT_WAIT_MS);
  ASSERT_EQ(1, c->dgrams);
  ASSERT_UINT_EQ(sizeof(buf), c->dgram_len[0]);
  ASSERT_MEM_EQ(buf, c->dgram_data[0], sizeof(buf));
  ASSERT_EQ(0, s->dgrams);
  close_both(&t, c);
  qt_teardown(&t);
  return 0;
}

/* The server accepts DATAGRAM frames of up to 100 bytes: a 200-byte
 * payload is refused, a 50-byte one goes. */
TEST_IMPL(quic_datagram_too_large) {
  uint8_t buf[200];
  qt_t t;
  qt_conn_t* c;
  uv_buf_t b[2];
  uint64_t id;

  qt_init(&t, "127.0.0.1", 0);
  t.server.cfg.max_datagram_frame_size = 100;
  t.client.cfg.max_datagram_frame_size = 1200;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  memset(buf, 9, sizeof(buf));
  b[0] = uv_buf_init((char*) buf, 200);
  ASSERT_ERR(UV_EMSGSIZE, uvq_quic_datagram_send(c->conn, b, 1, &id));
  /* Gathered from two buffers, the total counts. */
  b[0] = uv_buf_init((char*) buf, 60);
  b[1] = uv_buf_init((char*) buf + 60, 60);
  ASSERT_ERR(UV_EMSGSIZE, uvq_quic_datagram_send(c->conn, b, 2, &id));
  b[0] = uv_buf_init((char*) buf, 50);
  ASSERT_OK(uvq_quic_datagram_send(c->conn, b, 1, &id));
  ASSERT_UINT_EQ(0, id);
  qt_run_until(&t, qt_conn_has_dgram, qt_server_conn(&t, 0),
               QT_WAIT_MS);
  ASSERT_UINT_EQ(50, qt_server_conn(&t, 0)->dgram_len[0]);
  close_both(&t, c);
  qt_teardown(&t);
  return 0;
}
