/* An application protocol on the public interface (uvq_quic_conn_set_app),
 * not HTTP/3: a line protocol in the spirit of HTTP/0.9. The client opens
 * a bidirectional stream and sends "GET <n>\n" with FIN; the server answers
 * n bytes of a pattern and FIN on the same stream. Both sides are written
 * only with include/uvq/quic.h, over loopback, and every byte, callback
 * and credit is checked. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quic-helpers.h"
#include "task.h"

#define LINE_ALPN "uvq-line"
#define RESPONSE (1024u * 1024u)
/* The client's stream window: what the server may send before the client
 * returns credit. */
#define WINDOW (64u * 1024u)

typedef struct line_stream_s {
  int64_t id;
  /* Receiving: the request (server) or the response (client). */
  char req[64];
  size_t reqlen;
  uint64_t rx;
  unsigned int fins;
  int64_t bad_offset;   /* first byte differing from the pattern, or -1 */
  uint64_t held;        /* received, credit not yet returned */
  /* Sending: the response (server) or the request (client). */
  const uint8_t* out;
  uint64_t total;
  uint64_t sent;
  int ready;            /* total is known */
  int fin_sent;
  int blocked;
  uint64_t acked;
  int acked_out_of_order;
  unsigned int closes;
  uint64_t close_code;
} line_stream_t;

typedef struct line_side_s {
  struct line_test_s* t;
  uvq_quic_endpoint_t* ep;
  uvq_quic_conn_t* conn;
  int is_server;
  int user_sentinel;    /* the connection's user data points here */
  line_stream_t stream; /* one exchange per connection in this test */
  int has_stream;
  int hold_credit;      /* client: keep credit back in stream.held */
  /* Callback counts. */
  unsigned int opens;
  unsigned int blocked_calls;
  unsigned int unblocked_calls;
  unsigned int wrong_data;  /* app_data or user data not as set */
  unsigned int handshakes;
  unsigned int closed;
  uvq_quic_error_t error;
  unsigned int endpoint_closed;
} line_side_t;

typedef struct line_test_s {
  uv_loop_t loop;
  uv_timer_t tick;
  qt_certs_t certs;
  uint8_t* pattern;
  line_side_t server;
  line_side_t client;
  struct sockaddr_storage addr;
  const char* request;
} line_test_t;

static line_side_t* side_of(uvq_quic_conn_t* conn, void* app_data) {
  line_side_t* side = app_data;

  if (uvq_quic_conn_get_app_data(conn) != app_data ||
      uvq_quic_conn_get_data(conn) != &side->user_sentinel)
    side->wrong_data++;
  return side;
}

static line_stream_t* stream_of(line_side_t* side, int64_t id) {
  if (!side->has_stream || side->stream.id != id)
    return NULL;
  return &side->stream;
}

/* ---- the protocol, both sides -------------------------------------------- */

static int app_send(uvq_quic_conn_t* conn, void* app_data, int64_t* stream_id,
                    int* fin, uvq_quic_vec_t* vec, size_t maxvec,
                    size_t* nvec) {
  line_side_t* side = side_of(conn, app_data);
  line_stream_t* s = &side->stream;

  if (!side->has_stream || !s->ready || s->fin_sent || s->blocked ||
      maxvec == 0)
    return 0;
  *stream_id = s->id;
  vec[0].base = (uint8_t*) s->out + s->sent;
  vec[0].len = (size_t) (s->total - s->sent);
  *nvec = vec[0].len > 0 ? 1 : 0;
  *fin = 1;
  return 0;
}

static int app_sent(uvq_quic_conn_t* conn, void* app_data, int64_t stream_id,
                    size_t len) {
  line_side_t* side = side_of(conn, app_data);
  line_stream_t* s = stream_of(side, stream_id);

  ASSERT_NOT_NULL(s);
  s->sent += len;
  ASSERT_UINT_LE(s->sent, s->total);
  /* The FIN was offered with the last bytes: it went if they all did. */
  if (s->sent == s->total)
    s->fin_sent = 1;
  return 0;
}

static int app_blocked(uvq_quic_conn_t* conn, void* app_data,
                       int64_t stream_id) {
  line_side_t* side = side_of(conn, app_data);
  line_stream_t* s = stream_of(side, stream_id);

  ASSERT_NOT_NULL(s);
  s->blocked = 1;
  side->blocked_calls++;
  return 0;
}

static int app_unblocked(uvq_quic_conn_t* conn, void* app_data,
                         int64_t stream_id, void* stream_data) {
  line_side_t* side = side_of(conn, app_data);
  line_stream_t* s = stream_of(side, stream_id);

  if (s == NULL)
    return 0;
  ASSERT_PTR_EQ(stream_data, s);
  s->blocked = 0;
  side->unblocked_calls++;
  uvq_quic_conn_want_write(conn);
  return 0;
}

static int app_acked(uvq_quic_conn_t* conn, void* app_data, int64_t stream_id,
                     void* stream_data, uint64_t offset, uint64_t len) {
  line_side_t* side = side_of(conn, app_data);
  line_stream_t* s = stream_of(side, stream_id);

  ASSERT_NOT_NULL(s);
  ASSERT_PTR_EQ(stream_data, s);
  if (offset != s->acked)
    s->acked_out_of_order++;
  s->acked = offset + len;
  return 0;
}

static int app_stream_open(uvq_quic_conn_t* conn, void* app_data,
                           int64_t stream_id) {
  line_side_t* side = side_of(conn, app_data);

  side->opens++;
  if (side->has_stream)
    return -1; /* one exchange per connection */
  memset(&side->stream, 0, sizeof(side->stream));
  side->stream.id = stream_id;
  side->stream.bad_offset = -1;
  side->has_stream = 1;
  ASSERT_NULL(uvq_quic_stream_get_data(conn, stream_id));
  ASSERT_OK(uvq_quic_stream_set_data(conn, stream_id, &side->stream));
  return 0;
}

/* Server: reads the request line, then answers. */
static int server_recv(line_side_t* side, uvq_quic_conn_t* conn,
                       line_stream_t* s, const uint8_t* data, size_t len,
                       int fin) {
  unsigned long n;
  char* end;

  if (s->reqlen + len >= sizeof(s->req))
    return -1;
  memcpy(s->req + s->reqlen, data, len);
  s->reqlen += len;
  ASSERT_OK(uvq_quic_stream_consume(conn, s->id, len));
  if (!fin)
    return 0;
  s->req[s->reqlen] = '\0';
  if (strcmp(s->req, "BAD\n") == 0) {
    /* The protocol's own error code goes in CONNECTION_CLOSE. */
    ASSERT_OK(uvq_quic_conn_close(conn, 0x10c, NULL));
    return -1;
  }
  if (strncmp(s->req, "GET ", 4) != 0)
    return -1; /* no code given: transport INTERNAL_ERROR */
  n = strtoul(s->req + 4, &end, 10);
  if (*end != '\n' || n > RESPONSE)
    return -1;
  s->out = side->t->pattern;
  s->total = n;
  s->ready = 1;
  uvq_quic_conn_want_write(conn);
  return 0;
}

static int app_recv(uvq_quic_conn_t* conn, void* app_data, int64_t stream_id,
                    void* stream_data, const uint8_t* data, size_t len,
                    int fin) {
  line_side_t* side = side_of(conn, app_data);
  line_stream_t* s = stream_of(side, stream_id);
  size_t i;

  ASSERT_NOT_NULL(s);
  ASSERT_PTR_EQ(stream_data, s);
  if (fin)
    s->fins++;
  if (side->is_server)
    return server_recv(side, conn, s, data, len, fin);
  for (i = 0; i < len; i++)
    if (s->bad_offset < 0 && data[i] != side->t->pattern[s->rx + i])
      s->bad_offset = (int64_t) (s->rx + i);
  s->rx += len;
  if (side->hold_credit)
    s->held += len;
  else
    ASSERT_OK(uvq_quic_stream_consume(conn, stream_id, len));
  return 0;
}

static int app_stream_close(uvq_quic_conn_t* conn, void* app_data,
                            int64_t stream_id, void* stream_data,
                            uint64_t app_error) {
  line_side_t* side = side_of(conn, app_data);
  line_stream_t* s = stream_of(side, stream_id);

  ASSERT_NOT_NULL(s);
  ASSERT_PTR_EQ(stream_data, s);
  s->closes++;
  s->close_code = app_error;
  return 0;
}

static const uvq_quic_app_callbacks_t line_app = {
    .send_stream_data = app_send,
    .stream_data_sent = app_sent,
    .stream_data_blocked = app_blocked,
    .stream_data_unblocked = app_unblocked,
    .acked_stream_data = app_acked,
    .stream_open = app_stream_open,
    .recv_stream_data = app_recv,
    .stream_close = app_stream_close,
};

/* ---- endpoints ----------------------------------------------------------- */

static int on_accept(uvq_quic_endpoint_t* ep, uvq_quic_conn_t* conn) {
  line_side_t* side = uvq_quic_endpoint_get_data(ep);

  side->conn = conn;
  uvq_quic_conn_set_data(conn, &side->user_sentinel);
  ASSERT_OK(uvq_quic_conn_set_app(conn, &line_app, side));
  return 0;
}

static void on_handshake(uvq_quic_conn_t* conn) {
  line_side_t* side = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));
  line_stream_t* s = &side->stream;
  uvq_quic_write_t req;
  uv_buf_t buf;
  int64_t id;

  side->handshakes++;
  if (side->is_server)
    return;
  /* The client asks as soon as it can. */
  ASSERT_OK(uvq_quic_stream_open(conn, 1, &id));
  ASSERT_EQ(0, id);
  memset(s, 0, sizeof(*s));
  s->id = id;
  s->bad_offset = -1;
  s->out = (const uint8_t*) side->t->request;
  s->total = strlen(side->t->request);
  s->ready = 1;
  side->has_stream = 1;
  ASSERT_OK(uvq_quic_stream_set_data(conn, id, s));
  /* A protocol is attached before any stream exists. */
  ASSERT_ERR(UV_EBUSY, uvq_quic_conn_set_app(conn, &line_app, side));
  /* The protocol's streams are not written through the stream API. */
  buf = uv_buf_init((char*) "x", 1);
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_write(&req, conn, id, &buf, 1, 0,
                                              NULL));
  uvq_quic_conn_want_write(conn);
}

static void on_closed(uvq_quic_conn_t* conn, const uvq_quic_error_t* error) {
  line_side_t* side = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));

  side->closed++;
  side->error = *error;
  side->error.reason = NULL;
  ASSERT_OK(uvq_quic_conn_set_app(conn, NULL, NULL));
  ASSERT_NULL(uvq_quic_conn_get_app_data(conn));
  side->conn = NULL;
}

static void on_ep_closed(uvq_quic_endpoint_t* ep) {
  line_side_t* side = uvq_quic_endpoint_get_data(ep);

  side->endpoint_closed++;
}

static void on_tick(uv_timer_t* timer) {
  (void) timer;
}

static void line_init(line_test_t* t, const char* request, int hold_credit) {
  uvq_quic_callbacks_t cb;
  uvq_quic_config_t cfg;
  struct sockaddr_in addr;
  struct sockaddr_in any;
  int namelen;
  size_t i;

  memset(t, 0, sizeof(*t));
  qt_make_certs(&t->certs);
  t->request = request;
  t->pattern = malloc(RESPONSE);
  ASSERT_NOT_NULL(t->pattern);
  for (i = 0; i < RESPONSE; i++)
    t->pattern[i] = (uint8_t) ((i * 131) ^ (i >> 11));
  ASSERT_OK(uv_loop_init(&t->loop));
  ASSERT_OK(uv_timer_init(&t->loop, &t->tick));
  ASSERT_OK(uv_timer_start(&t->tick, on_tick, 10, 10));

  memset(&cb, 0, sizeof(cb));
  cb.accept = on_accept;
  cb.handshake_done = on_handshake;
  cb.closed = on_closed;

  t->server.t = t;
  t->server.is_server = 1;
  uvq_quic_config_default(&cfg);
  cfg.cert_file = t->certs.cert;
  cfg.key_file = t->certs.key;
  cfg.alpn = LINE_ALPN;
  ASSERT_OK(uvq_quic_endpoint_new(&t->loop, &cfg, &cb, &t->server,
                                  &t->server.ep));
  ASSERT_OK(uv_ip4_addr("127.0.0.1", 0, &addr));
  ASSERT_OK(uvq_quic_endpoint_bind(t->server.ep, (struct sockaddr*) &addr));
  namelen = sizeof(t->addr);
  ASSERT_OK(uvq_udp_getsockname(uvq_quic_endpoint_udp(t->server.ep),
                                (struct sockaddr*) &t->addr, &namelen));

  t->client.t = t;
  t->client.hold_credit = hold_credit;
  uvq_quic_config_default(&cfg);
  cfg.ca_file = t->certs.cert;
  cfg.alpn = LINE_ALPN;
  cfg.max_stream_data = WINDOW;
  ASSERT_OK(uvq_quic_endpoint_new(&t->loop, &cfg, &cb, &t->client,
                                  &t->client.ep));
  ASSERT_OK(uv_ip4_addr("0.0.0.0", 0, &any));
  ASSERT_OK(uvq_quic_endpoint_bind(t->client.ep, (struct sockaddr*) &any));
}

static void line_connect(line_test_t* t) {
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* conn;

  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  ASSERT_OK(uvq_quic_connect(t->client.ep, (struct sockaddr*) &t->addr, &opts,
                             &t->client.user_sentinel, &conn));
  t->client.conn = conn;
  ASSERT_OK(uvq_quic_conn_set_app(conn, &line_app, &t->client));
  /* A protocol without its two required callbacks is refused. */
  {
    uvq_quic_app_callbacks_t partial = line_app;
    partial.recv_stream_data = NULL;
    ASSERT_ERR(UV_EINVAL, uvq_quic_conn_set_app(conn, &partial, &t->client));
  }
  /* A callbacks version this library does not know is refused. */
  ASSERT_ERR(UV_EINVAL, uvq_quic_conn_set_app_versioned(
                            conn, UVQ_QUIC_APP_CALLBACKS_VERSION + 1,
                            &line_app, &t->client));
}

static void line_run_until(line_test_t* t, int (*cond)(line_test_t* t),
                           const char* what) {
  uint64_t deadline;

  deadline = uv_hrtime() + (uint64_t) QT_WAIT_MS * 1000000u;
  while (!cond(t)) {
    if (uv_hrtime() > deadline) {
      fprintf(stderr, "timed out waiting for %s\n", what);
      ASSERT(0);
    }
    uv_run(&t->loop, UV_RUN_ONCE);
  }
}

static int both_closed(line_test_t* t) {
  return t->server.closed == 1 && t->client.closed == 1;
}

static void line_teardown(line_test_t* t) {
  uvq_quic_endpoint_close(t->server.ep, on_ep_closed);
  uvq_quic_endpoint_close(t->client.ep, on_ep_closed);
  uv_close((uv_handle_t*) &t->tick, NULL);
  ASSERT_OK(uv_run(&t->loop, UV_RUN_DEFAULT));
  ASSERT_EQ(1, t->server.endpoint_closed);
  ASSERT_EQ(1, t->client.endpoint_closed);
  ASSERT_OK(uv_loop_close(&t->loop));
  free(t->pattern);
}

/* ---- tests --------------------------------------------------------------- */

static int window_full(line_test_t* t) {
  return t->server.blocked_calls > 0 && t->client.stream.rx == WINDOW;
}

static int response_done(line_test_t* t) {
  return t->client.stream.fins == 1 && t->server.stream.closes == 1 &&
         t->client.stream.closes == 1;
}

TEST_IMPL(quic_app_request_response) {
  line_test_t t;
  line_stream_t* cs;
  line_stream_t* ss;
  char request[32];

  snprintf(request, sizeof(request), "GET %u\n", RESPONSE);
  line_init(&t, request, 1);
  line_connect(&t);
  cs = &t.client.stream;
  ss = &t.server.stream;

  /* The client holds its credit back: the server sends exactly the
   * window, is told it is blocked, and waits. */
  line_run_until(&t, window_full,
                 "the server blocked at the client's window");
  uv_run(&t.loop, UV_RUN_NOWAIT);
  ASSERT_EQ(1, t.client.handshakes);
  ASSERT_EQ(1, t.server.handshakes);
  ASSERT_EQ(1, t.server.opens);
  ASSERT_EQ(0, t.client.opens);
  ASSERT_EQ(0, ss->id);
  ASSERT_STR_EQ(request, ss->req);
  ASSERT_EQ(1, ss->fins);
  ASSERT_UINT_EQ(WINDOW, cs->rx);
  ASSERT_UINT_EQ(WINDOW, cs->held);
  ASSERT_UINT_EQ(WINDOW, ss->sent);
  ASSERT_EQ(1, ss->blocked);
  ASSERT_EQ(0, t.server.unblocked_calls);

  /* Credit returned from the loop lets the rest through. */
  t.client.hold_credit = 0;
  ASSERT_OK(uvq_quic_stream_consume(t.client.conn, cs->id, cs->held));
  line_run_until(&t, response_done,
                 "the whole response and both stream closes");

  ASSERT_UINT_EQ(RESPONSE, cs->rx);
  ASSERT_EQ(-1, cs->bad_offset);
  ASSERT_EQ(1, cs->fins);
  ASSERT_UINT_EQ(RESPONSE, ss->sent);
  ASSERT_EQ(1, ss->fin_sent);
  ASSERT_UINT_EQ(RESPONSE, ss->acked);
  ASSERT_EQ(0, ss->acked_out_of_order);
  ASSERT_UINT_EQ(strlen(request), cs->acked);
  ASSERT_EQ(0, cs->acked_out_of_order);
  ASSERT_GE(t.server.unblocked_calls, 1);
  ASSERT_EQ(1, ss->closes);
  ASSERT_UINT_EQ(0, ss->close_code);
  ASSERT_EQ(1, cs->closes);
  ASSERT_UINT_EQ(0, cs->close_code);
  ASSERT_EQ(0, t.server.wrong_data);
  ASSERT_EQ(0, t.client.wrong_data);

  /* The protocol closes the connection with its own code. */
  ASSERT_OK(uvq_quic_conn_close(t.client.conn, 0x1234, "bye"));
  line_run_until(&t, both_closed, "both closed callbacks");
  ASSERT_EQ(UVQ_QUIC_ERROR_APPLICATION, t.server.error.kind);
  ASSERT_EQ(1, t.server.error.remote);
  ASSERT_UINT_EQ(0x1234, t.server.error.code);
  ASSERT_EQ(UVQ_QUIC_ERROR_APPLICATION, t.client.error.kind);
  ASSERT_EQ(0, t.client.error.remote);
  ASSERT_UINT_EQ(0x1234, t.client.error.code);
  line_teardown(&t);
  return 0;
}

/* A callback that fails ends the connection: with the application code
 * it gave uvq_quic_conn_close(), else with INTERNAL_ERROR. */
static void expect_failure(const char* request, int kind, uint64_t code) {
  line_test_t t;

  line_init(&t, request, 0);
  line_connect(&t);
  line_run_until(&t, both_closed, "both closed callbacks");
  ASSERT_EQ(kind, t.client.error.kind);
  ASSERT_EQ(1, t.client.error.remote);
  ASSERT_UINT_EQ(code, t.client.error.code);
  ASSERT_EQ(kind, t.server.error.kind);
  ASSERT_EQ(0, t.server.error.remote);
  ASSERT_UINT_EQ(code, t.server.error.code);
  ASSERT_UINT_EQ(0, t.client.stream.rx);
  line_teardown(&t);
}

TEST_IMPL(quic_app_failure_codes) {
  expect_failure("BAD\n", UVQ_QUIC_ERROR_APPLICATION, 0x10c);
  expect_failure("PUT 1\n", UVQ_QUIC_ERROR_TRANSPORT, 0x1);
  return 0;
}

/* uvq_quic_config_copy: what a protocol library layered on uvq (HTTP/3
 * here) uses to adjust its caller's configuration, whatever layout the
 * caller was built with. */
TEST_IMPL(quic_app_config_copy) {
  uvq_quic_config_t defaults;
  uvq_quic_config_t old;
  uvq_quic_config_t cur;
  union {
    uvq_quic_config_t cfg;
    unsigned char bytes[sizeof(uvq_quic_config_t)];
  } out;
  size_t tail;
  size_t i;

  uvq_quic_config_default(&defaults);

  /* A version 3 layout comes out current, later fields at defaults. */
  uvq_quic_config_default_versioned(3, &old);
  ASSERT_EQ(3, old.version);
  old.cert_file = "cert.pem";
  old.retry_threshold = 7;
  memset(&cur, 0xAA, sizeof(cur));
  ASSERT_OK(uvq_quic_config_copy(&cur, &old));
  ASSERT_EQ(UVQ_QUIC_CONFIG_VERSION, cur.version);
  ASSERT_STR_EQ("cert.pem", cur.cert_file);
  ASSERT_EQ(7, cur.retry_threshold);
  ASSERT_PTR_EQ(defaults.preferred_address_ipv4, cur.preferred_address_ipv4);
  ASSERT_EQ(defaults.worker_index, cur.worker_index);
  ASSERT_EQ(defaults.worker_count, cur.worker_count);

  /* Into a version 2 layout: nothing written past it (version 3 appended
   * retry, retry_threshold and tls_groups after pacing). */
  memset(&out, 0xAA, sizeof(out));
  ASSERT_OK(uvq_quic_config_copy_versioned(2, &out.cfg, &cur));
  ASSERT_EQ(2, out.cfg.version);
  ASSERT_STR_EQ("cert.pem", out.cfg.cert_file);
  tail = offsetof(uvq_quic_config_t, tls_groups);
  for (i = tail; i < sizeof(out.bytes); i++)
    ASSERT_EQ(0xAA, out.bytes[i]);

  /* Versions this library does not know, either way. */
  old.version = UVQ_QUIC_CONFIG_VERSION + 1;
  ASSERT_ERR(UV_EINVAL, uvq_quic_config_copy(&cur, &old));
  ASSERT_ERR(UV_EINVAL, uvq_quic_config_copy_versioned(
                            UVQ_QUIC_CONFIG_VERSION + 1, &cur, &defaults));
  ASSERT_ERR(UV_EINVAL, uvq_quic_config_copy(&cur, NULL));
  return 0;
}
