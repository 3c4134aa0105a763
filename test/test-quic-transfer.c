/* Stream transfers: bulk in both directions, many concurrent streams under
 * a stream limit, flow control holding a sender back, and a key update in
 * the middle of a transfer. Every byte is checked against the pattern. */
#include <string.h>

#include "quic-helpers.h"
#include "task.h"

#define MIB (1024u * 1024u)
#define BULK (16u * MIB)
#define BULK_WRITES 4

static int streams_available_seen(void* arg) {
  return ((qt_conn_t*) arg)->streams_available > 0;
}

static void close_both(qt_t* t, qt_conn_t* c, uint64_t code) {
  t->in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, code, "done"));
  t->in_api--;
  qt_run_until_closed(t, c);
  qt_run_until_closed(t, qt_server_conn(t, 0));
  qt_assert_closed(c, UVQ_QUIC_ERROR_APPLICATION, code, 0, "done");
  qt_assert_closed(qt_server_conn(t, 0), UVQ_QUIC_ERROR_APPLICATION, code, 1,
                   "done");
}

/* A write callback with status 0 means the peer acknowledged every byte,
 * so the peer must already hold them. */
static void check_acked_was_received(qt_conn_t* c, int64_t id, int status) {
  qt_t* t = c->side->t;
  qt_side_t* peer = c->side->is_server ? &t->client : &t->server;
  qt_conn_t* pc = peer->conns[0];

  if (status != 0)
    return;
  ASSERT_UINT_LE(qt_stream(c, id)->acked, qt_stream(pc, id)->rx);
}

TEST_IMPL(quic_transfer_upload_16m) {
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;
  int i;

  qt_init(&t, "127.0.0.1", BULK);
  qt_start(&t);
  t.client.hooks.write_done = check_acked_was_received;
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  id = qt_open_bidi(c);
  ASSERT_EQ(0, id);
  for (i = 0; i < BULK_WRITES; i++)
    qt_write(c, id, BULK / BULK_WRITES, i == BULK_WRITES - 1);
  /* A write after FIN is refused. */
  ASSERT_ERR(UV_EPIPE, qt_try_write(c, id, 1, 0));
  s = qt_server_conn(&t, 0);
  qt_run_until_fins(&t, s, 1);
  qt_run_until_writes(&t, &t.client, BULK_WRITES);
  qt_run_for(&t, 50);
  qt_assert_stream(s, id, BULK);
  ASSERT_EQ(1, s->stream_opens);
  ASSERT_EQ(BULK_WRITES, t.client.writes_done);
  ASSERT_EQ(BULK_WRITES, t.client.writes_ok);
  ASSERT_UINT_EQ(BULK, qt_stream(c, id)->acked);
  close_both(&t, c, 0x42);
  qt_teardown(&t);
  return 0;
}

/* The client sends a request; the server answers 16 MiB on the same
 * stream. */
TEST_IMPL(quic_transfer_download_16m) {
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;

  qt_init(&t, "::1", BULK);
  t.server.respond_bytes = BULK;
  qt_start(&t);
  t.server.hooks.write_done = check_acked_was_received;
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  id = qt_open_bidi(c);
  qt_write(c, id, 1000, 1);
  qt_run_until_fins(&t, c, 1);
  s = qt_server_conn(&t, 0);
  qt_run_until_writes(&t, &t.server, 1);
  qt_run_until_writes(&t, &t.client, 1);
  qt_run_for(&t, 50);
  qt_assert_stream(s, id, 1000);
  qt_assert_stream(c, id, BULK);
  ASSERT_EQ(1, t.server.writes_done);
  ASSERT_EQ(1, t.server.writes_ok);
  ASSERT_EQ(1, t.client.writes_ok);
  close_both(&t, c, 0);
  qt_teardown(&t);
  return 0;
}

/* --- many streams ----------------------------------------------------- */

#define MANY_STREAMS 1000
#define MANY_BYTES (64u * 1024u)
#define MANY_LIMIT 100

struct many {
  unsigned int opened;
  unsigned int eagains;
  unsigned int first_eagain_at; /* streams open when EAGAIN first came */
};

static void open_more(qt_conn_t* c) {
  struct many* m = c->side->t->user;
  int64_t id;
  int rc;

  while (m->opened < MANY_STREAMS) {
    rc = uvq_quic_stream_open(c->conn, 1, &id);
    if (rc == UV_EAGAIN) {
      if (m->eagains++ == 0)
        m->first_eagain_at = m->opened;
      return;
    }
    ASSERT_OK(rc);
    ASSERT_EQ(4 * (int64_t) m->opened, id);
    m->opened++;
    qt_write(c, id, MANY_BYTES, 1);
  }
}

static void finish_server_side(qt_conn_t* c, int64_t id) {
  qt_write(c, id, 0, 1);
}

TEST_IMPL(quic_transfer_many_streams) {
  struct many m;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  unsigned int i;

  memset(&m, 0, sizeof(m));
  qt_init(&t, "127.0.0.1", MANY_BYTES + 4 * MANY_STREAMS);
  t.user = &m;
  t.server.cfg.max_stream_data = 16 * 1024;
  t.server.cfg.max_streams_bidi = MANY_LIMIT;
  qt_start(&t);
  t.client.hooks.streams_available = open_more;
  /* A bidirectional stream counts against the limit until both sides are
   * done: the server ends its side of each one with a FIN and no data, as
   * a server with an empty response does. */
  t.server.hooks.fin = finish_server_side;
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  open_more(c);
  ASSERT_EQ(MANY_LIMIT, m.opened);
  ASSERT_GE(m.eagains, 1);
  ASSERT_EQ(MANY_LIMIT, m.first_eagain_at);
  s = qt_server_conn(&t, 0);
  qt_run_until_fins(&t, s, MANY_STREAMS);
  qt_run_until_writes(&t, &t.client, MANY_STREAMS);
  ASSERT_EQ(MANY_STREAMS, m.opened);
  ASSERT_GT(c->streams_available, 0);
  ASSERT_EQ(MANY_STREAMS, s->stream_opens);
  for (i = 0; i < MANY_STREAMS; i++)
    qt_assert_stream(s, 4 * (int64_t) i, MANY_BYTES);
  ASSERT_EQ(MANY_STREAMS, t.client.writes_ok);
  close_both(&t, c, 1);
  qt_teardown(&t);
  return 0;
}

/* The stream limit itself: exactly max_streams_bidi opens succeed, then
 * UV_EAGAIN, and again after each further try, until the peer raises the
 * limit; uni streams have their own limit. */
TEST_IMPL(quic_transfer_stream_limit) {
  qt_t t;
  qt_conn_t* c;
  int64_t id;
  int i;

  qt_init(&t, "127.0.0.1", 0);
  t.server.cfg.max_streams_bidi = 3;
  t.server.cfg.max_streams_uni = 2;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  for (i = 0; i < 3; i++) {
    ASSERT_OK(uvq_quic_stream_open(c->conn, 1, &id));
    ASSERT_EQ(4 * i, id);
  }
  id = -7;
  ASSERT_ERR(UV_EAGAIN, uvq_quic_stream_open(c->conn, 1, &id));
  ASSERT_EQ(-7, id);
  ASSERT_ERR(UV_EAGAIN, uvq_quic_stream_open(c->conn, 1, &id));
  for (i = 0; i < 2; i++) {
    ASSERT_OK(uvq_quic_stream_open(c->conn, 0, &id));
    ASSERT_EQ(4 * i + 2, id);
  }
  ASSERT_ERR(UV_EAGAIN, uvq_quic_stream_open(c->conn, 0, &id));
  /* Finishing a stream both ways lets the server raise the limit. */
  t.server.respond_bytes = 10;
  c->streams_available = 0;
  qt_write(c, 0, 10, 1);
  qt_run_until_fins(&t, c, 1);
  qt_run_until(&t, streams_available_seen, c, QT_WAIT_MS);
  ASSERT_OK(uvq_quic_stream_open(c->conn, 1, &id));
  ASSERT_EQ(12, id);
  ASSERT_ERR(UV_EAGAIN, uvq_quic_stream_open(c->conn, 1, &id));
  close_both(&t, c, 3);
  qt_teardown(&t);
  return 0;
}

/* --- flow control ------------------------------------------------------ */

#define FC_WINDOW (64u * 1024u)
#define FC_WRITE (16u * 1024u)
#define FC_TOTAL (1u * MIB)

/* The server holds its credit back: the client gets exactly one window
 * through, and only the writes inside it are acknowledged. After the
 * server consumes, the rest flows. */
TEST_IMPL(quic_transfer_flow_control) {
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;
  unsigned int i;

  qt_init(&t, "127.0.0.1", FC_TOTAL);
  t.server.cfg.max_stream_data = FC_WINDOW;
  t.server.cfg.max_data = 4 * FC_WINDOW;
  t.server.auto_consume = 0;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  id = qt_open_bidi(c);
  for (i = 0; i < FC_TOTAL / FC_WRITE; i++)
    qt_write(c, id, FC_WRITE, i == FC_TOTAL / FC_WRITE - 1);
  qt_run_for(&t, 300);
  s = qt_server_conn(&t, 0);
  /* One window's worth arrived, no more, and nothing was lost. */
  ASSERT_UINT_EQ(FC_WINDOW, qt_stream(s, id)->rx);
  ASSERT_UINT_EQ(FC_WINDOW, qt_stream(s, id)->unconsumed);
  ASSERT_EQ(-1, qt_stream(s, id)->bad_offset);
  ASSERT_EQ(0, s->fins);
  ASSERT_UINT_LE(qt_stream(c, id)->acked, FC_WINDOW);
  ASSERT_EQ(FC_WINDOW / FC_WRITE, t.client.writes_done);
  ASSERT_EQ(FC_WINDOW / FC_WRITE, t.client.writes_ok);
  /* Still held after more time: the sender is blocked, not slow. */
  qt_run_for(&t, 200);
  ASSERT_UINT_EQ(FC_WINDOW, qt_stream(s, id)->rx);
  /* Consume, and keep consuming from now on. */
  t.server.auto_consume = 1;
  qt_consume_all(s);
  qt_run_until_fins(&t, s, 1);
  qt_run_until_writes(&t, &t.client, FC_TOTAL / FC_WRITE);
  qt_assert_stream(s, id, FC_TOTAL);
  ASSERT_EQ(FC_TOTAL / FC_WRITE, t.client.writes_ok);
  close_both(&t, c, 0);
  qt_teardown(&t);
  return 0;
}

/* --- key update --------------------------------------------------------- */

struct key_update {
  uv_timer_t timer;
  qt_conn_t* c;
  unsigned int eagains;
  int done;
  int again_rc;
};

static void try_key_update(uv_timer_t* timer) {
  struct key_update* k = timer->data;
  int rc;

  if (k->c->conn == NULL)
    return;
  rc = uvq_quic_conn_update_key(k->c->conn);
  if (rc == UV_EAGAIN) {
    k->eagains++;
    return;
  }
  ASSERT_OK(rc);
  k->done = 1;
  /* A second update while the first is in progress must wait. */
  k->again_rc = uvq_quic_conn_update_key(k->c->conn);
  uv_timer_stop(timer);
}

static void start_key_update(qt_conn_t* c) {
  struct key_update* k = c->side->t->user;

  k->c = c;
  ASSERT_OK(uv_timer_start(&k->timer, try_key_update, 0, 5));
}

TEST_IMPL(quic_transfer_key_update) {
  struct key_update k;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;

  memset(&k, 0, sizeof(k));
  qt_init(&t, "127.0.0.1", BULK);
  t.user = &k;
  ASSERT_OK(uv_timer_init(&t.loop, &k.timer));
  k.timer.data = &k;
  qt_start(&t);
  t.client.hooks.handshake_done = start_key_update;
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  id = qt_open_bidi(c);
  qt_write(c, id, BULK, 1);
  s = qt_server_conn(&t, 0);
  qt_run_until_fins(&t, s, 1);
  qt_run_until_writes(&t, &t.client, 1);
  ASSERT_EQ(1, k.done);
  ASSERT_ERR(UV_EAGAIN, k.again_rc);
  qt_assert_stream(s, id, BULK);
  ASSERT_EQ(1, t.client.writes_ok);
  uv_close((uv_handle_t*) &k.timer, NULL);
  close_both(&t, c, 0);
  qt_teardown(&t);
  return 0;
}

static int server_stream_got_data(void* arg) {
  qt_conn_t* s = arg;
  return s->nstreams > 0 && qt_stream(s, 0)->rx == 1000;
}

static int stream0_closed(void* arg) {
  return qt_stream(arg, 0)->closes > 0;
}

/* Stopping to read a stream (STOP_SENDING) leaves this side's sending half
 * alone: the server stops reading the client's request and still sends
 * its whole response. ngtcp2 reports the local STOP_SENDING through the
 * same callback it would use for a received one, and uvq used to take it
 * for the peer's, closing the server's own sending side (the response
 * below never arrived) and telling the application that the peer had
 * asked it to stop. The client, whose sending side the STOP_SENDING did
 * end, sees the server's code when its stream closes. */
TEST_IMPL(quic_stream_shutdown_read_keeps_writing) {
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;

  qt_init(&t, "127.0.0.1", 300000);
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  id = qt_open_bidi(c);
  ASSERT_EQ(0, id);
  qt_write(c, id, 1000, 0);
  s = qt_server_conn(&t, 0);
  qt_run_until(&t, server_stream_got_data, s, 5000);
  ASSERT_OK(uvq_quic_stream_shutdown(s->conn, id, UVQ_QUIC_SHUT_READ, 0x42));
  qt_write(s, id, 200000, 1);
  qt_run_until_fins(&t, c, 1);
  qt_assert_stream(c, id, 200000);
  qt_run_until_writes(&t, &t.server, 1);
  ASSERT_EQ(1, t.server.writes_ok);
  ASSERT_EQ(0, qt_stream(s, id)->stop_sendings);
  qt_run_until(&t, stream0_closed, c, 5000);
  ASSERT_EQ(1, qt_stream(c, id)->closes);
  ASSERT_UINT_EQ(0x42, qt_stream(c, id)->close_code);
  close_both(&t, c, 1);
  qt_teardown(&t);
  return 0;
}
