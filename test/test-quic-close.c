/* Ending connections: application close, double close, closing the
 * endpoint under open connections, and the idle timeout with and without
 * keep-alives. */
#include <string.h>

#include "quic-helpers.h"
#include "task.h"

#define QUIC_NO_ERROR 0x0u

TEST_IMPL(quic_close_application) {
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;

  qt_init(&t, "127.0.0.1", 1000);
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 0);
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0x1234abcd, "bye for now"));
  t.in_api--;
  /* Not from inside the call; the connection refuses new work now. */
  ASSERT_EQ(0, c->closed);
  ASSERT_ERR(UV_EPIPE, uvq_quic_stream_open(c->conn, 1, &id));
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, s);
  qt_run_for(&t, 50);
  qt_assert_closed(c, UVQ_QUIC_ERROR_APPLICATION, 0x1234abcd, 0,
                   "bye for now");
  qt_assert_closed(s, UVQ_QUIC_ERROR_APPLICATION, 0x1234abcd, 1,
                   "bye for now");
  ASSERT_EQ(0, c->error.library_error);
  ASSERT_EQ(0, s->error.library_error);
  qt_teardown(&t);
  return 0;
}

/* The server closes, without a reason, from inside a stream callback. */
static void close_on_fin(qt_conn_t* c, int64_t id) {
  qt_t* t = c->side->t;

  t->in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 77, NULL));
  ASSERT_ERR(UV_EALREADY, uvq_quic_conn_close(c->conn, 78, "again"));
  t->in_api--;
  ASSERT_EQ(0, c->closed);
}

TEST_IMPL(quic_close_twice) {
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;

  qt_init(&t, "127.0.0.1", 1000);
  qt_start(&t);
  t.server.hooks.fin = close_on_fin;
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 0);
  qt_write(c, qt_open_bidi(c), 1000, 1);
  qt_run_until_closed(&t, s);
  qt_run_until_closed(&t, c);
  qt_run_for(&t, 50);
  qt_assert_closed(s, UVQ_QUIC_ERROR_APPLICATION, 77, 0, NULL);
  qt_assert_closed(c, UVQ_QUIC_ERROR_APPLICATION, 77, 1, NULL);
  qt_teardown(&t);
  return 0;
}

/* Closing the client from the application, twice in a row, outside any
 * callback. */
TEST_IMPL(quic_close_twice_outside_callback) {
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 0);
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 5, "x"));
  ASSERT_ERR(UV_EALREADY, uvq_quic_conn_close(c->conn, 5, "x"));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  qt_assert_closed(c, UVQ_QUIC_ERROR_APPLICATION, 5, 0, "x");
  qt_assert_closed(qt_server_conn(&t, 0), UVQ_QUIC_ERROR_APPLICATION, 5, 1,
                   "x");
  qt_teardown(&t);
  return 0;
}

struct ep_close_order {
  unsigned int closed_at_close_cb;
  unsigned int close_cbs;
};

static void on_server_closed_cb(uvq_quic_endpoint_t* ep) {
  qt_side_t* side = uvq_quic_endpoint_get_data(ep);
  struct ep_close_order* o = side->t->user;
  unsigned int i;

  o->close_cbs++;
  for (i = 0; i < side->nconns; i++)
    o->closed_at_close_cb += side->conns[i]->closed;
}

static int two_handshakes(void* arg) {
  qt_t* t = arg;
  return t->client.nconns == 2 && t->server.nconns == 2 &&
         t->client.conns[0]->handshakes && t->client.conns[1]->handshakes &&
         t->server.conns[0]->handshakes && t->server.conns[1]->handshakes;
}

static int clients_closed(void* arg) {
  qt_t* t = arg;
  return t->client.conns[0]->closed && t->client.conns[1]->closed;
}

/* The server endpoint closes with two connections open: each server
 * connection reports ENDPOINT_CLOSED once, locally, before the endpoint's
 * close callback; each client hears a CONNECTION_CLOSE with NO_ERROR. */
TEST_IMPL(quic_close_endpoint_with_conns) {
  struct ep_close_order o;
  qt_t t;
  unsigned int i;

  memset(&o, 0, sizeof(o));
  qt_init(&t, "127.0.0.1", 0);
  t.user = &o;
  qt_start(&t);
  qt_connect(&t);
  qt_connect(&t);
  qt_run_until(&t, two_handshakes, &t, QT_WAIT_MS);
  t.server.closing = 1;
  t.in_api++;
  uvq_quic_endpoint_close(t.server.ep, on_server_closed_cb);
  /* A second close is ignored. */
  uvq_quic_endpoint_close(t.server.ep, on_server_closed_cb);
  t.in_api--;
  ASSERT_EQ(0, t.server.conns[0]->closed);
  ASSERT_EQ(0, t.server.conns[1]->closed);
  qt_run_until(&t, clients_closed, &t, QT_WAIT_MS);
  qt_run_for(&t, 50);
  ASSERT_EQ(1, o.close_cbs);
  ASSERT_EQ(2, o.closed_at_close_cb);
  for (i = 0; i < 2; i++) {
    qt_assert_closed(t.server.conns[i], UVQ_QUIC_ERROR_ENDPOINT_CLOSED,
                     QUIC_NO_ERROR, 0, NULL);
    qt_assert_closed(t.client.conns[i], UVQ_QUIC_ERROR_TRANSPORT,
                     QUIC_NO_ERROR, 1, NULL);
  }
  /* The helper's close callback was not used for the server. */
  t.server.close_cbs = 1;
  qt_teardown(&t);
  return 0;
}

/* The client endpoint closes with its connection open; the server side
 * hears NO_ERROR. */
TEST_IMPL(quic_close_client_endpoint) {
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "::1", 0);
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  qt_close_side(&t.client);
  ASSERT_EQ(0, c->closed);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  qt_assert_closed(c, UVQ_QUIC_ERROR_ENDPOINT_CLOSED, QUIC_NO_ERROR, 0, NULL);
  qt_assert_closed(qt_server_conn(&t, 0), UVQ_QUIC_ERROR_TRANSPORT,
                   QUIC_NO_ERROR, 1, NULL);
  qt_teardown(&t);
  return 0;
}

/* idle_timeout_ms 300 on both sides and no traffic: both report IDLE,
 * locally, at about 300 ms after the last packet (at least the timeout,
 * and well before a second). */
TEST_IMPL(quic_idle_timeout) {
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  double ms;

  qt_init(&t, "127.0.0.1", 0);
  t.server.cfg.idle_timeout_ms = 300;
  t.client.cfg.idle_timeout_ms = 300;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 0);
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, s);
  qt_assert_closed(c, UVQ_QUIC_ERROR_IDLE, 0, 0, NULL);
  qt_assert_closed(s, UVQ_QUIC_ERROR_IDLE, 0, 0, NULL);
  ms = QT_MS(c->handshake_at, c->closed_at);
  if (ms < 250 || ms > 1000)
    test_fail(__FILE__, __LINE__, "client idle close after %.0f ms", ms);
  ms = QT_MS(s->handshake_at, s->closed_at);
  if (ms < 250 || ms > 1000)
    test_fail(__FILE__, __LINE__, "server idle close after %.0f ms", ms);
  qt_teardown(&t);
  return 0;
}

/* The same timeout, but the client sends a keep-alive every 100 ms: the
 * connection survives a second without application traffic. */
TEST_IMPL(quic_idle_keepalive) {
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 1000);
  t.server.cfg.idle_timeout_ms = 300;
  t.client.cfg.idle_timeout_ms = 300;
  t.client.cfg.keepalive_ms = 100;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  qt_run_for(&t, 1000);
  ASSERT_EQ(0, c->closed);
  ASSERT_EQ(0, qt_server_conn(&t, 0)->closed);
  /* Still usable. */
  qt_write(c, qt_open_bidi(c), 1000, 1);
  qt_run_until_fins(&t, qt_server_conn(&t, 0), 1);
  qt_assert_stream(qt_server_conn(&t, 0), 0, 1000);
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  qt_teardown(&t);
  return 0;
}
