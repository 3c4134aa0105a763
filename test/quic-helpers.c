#include "quic-helpers.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/hmac.h>

/* --- Certificates ------------------------------------------------------- */

/* arg is a heap copy of the directory's name: the qt_certs_t itself lives
 * on the test's stack, which is gone when the hooks run. */
static void remove_cert_dir(void* arg) {
  char* dir = arg;
  char cmd[256];

  snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", dir);
  free(dir);
}

static void make_one_cert(const char* cert, const char* key, const char* cn) {
  char cmd[1024];
  int rc;

  snprintf(cmd, sizeof(cmd),
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
           "-nodes -keyout '%s' -out '%s' -days 30 -subj '/CN=%s' "
           "-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1' "
           ">/dev/null 2>&1",
           key, cert, cn);
  rc = system(cmd);
  if (rc != 0)
    test_fail(__FILE__, __LINE__, "openssl failed (%d): %s", rc, cmd);
}

void qt_make_certs(qt_certs_t* certs) {
  char* dir;

  memset(certs, 0, sizeof(*certs));
  if (system("openssl version >/dev/null 2>&1") != 0)
    RETURN_SKIP("the openssl command is not installed");
  snprintf(certs->dir, sizeof(certs->dir), "/tmp/uvq-quic-test-XXXXXX");
  if (mkdtemp(certs->dir) == NULL)
    test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
  dir = strdup(certs->dir);
  if (dir == NULL)
    test_fail(__FILE__, __LINE__, "out of memory");
  test_atexit(remove_cert_dir, dir);
  snprintf(certs->cert, sizeof(certs->cert), "%s/cert.pem", certs->dir);
  snprintf(certs->key, sizeof(certs->key), "%s/key.pem", certs->dir);
  snprintf(certs->other_cert, sizeof(certs->other_cert), "%s/other.pem",
           certs->dir);
  snprintf(certs->other_key, sizeof(certs->other_key), "%s/other-key.pem",
           certs->dir);
  make_one_cert(certs->cert, certs->key, "localhost");
  make_one_cert(certs->other_cert, certs->other_key, "localhost");
}

/* --- Pattern ------------------------------------------------------------ */

static uint8_t pattern_byte(size_t i) {
  return (uint8_t) (i * 7u + (i >> 8) * 3u + (i >> 16));
}

size_t qt_stream_start(int64_t id) {
  return (size_t) ((uint64_t) id * 37u % 251u);
}

/* --- Records ------------------------------------------------------------ */

qt_stream_t* qt_stream(qt_conn_t* c, int64_t id) {
  size_t n;

  ASSERT_GE(id, 0);
  if ((size_t) id >= c->nstreams) {
    n = c->nstreams ? c->nstreams : 64;
    while (n <= (size_t) id)
      n *= 2;
    c->streams = realloc(c->streams, n * sizeof(*c->streams));
    ASSERT_NOT_NULL(c->streams);
    memset(c->streams + c->nstreams, 0,
           (n - c->nstreams) * sizeof(*c->streams));
    c->nstreams = n;
  }
  if (!c->streams[id].used) {
    c->streams[id].used = 1;
    c->streams[id].bad_offset = -1;
  }
  return &c->streams[id];
}

static qt_conn_t* new_conn(qt_side_t* side, uvq_quic_conn_t* conn) {
  qt_conn_t* c;

  if (side->nconns == QT_MAX_CONNS)
    FATAL("too many connections for the test records");
  c = calloc(1, sizeof(*c));
  ASSERT_NOT_NULL(c);
  side->conns[side->nconns++] = c;
  c->side = side;
  c->conn = conn;
  c->is_server = side->is_server;
  return c;
}

static qt_conn_t* conn_of(uvq_quic_conn_t* conn) {
  qt_conn_t* c = uvq_quic_conn_get_data(conn);

  ASSERT_NOT_NULL(c);
  ASSERT_PTR_EQ(c->conn, conn);
  return c;
}

/* --- Callbacks ---------------------------------------------------------- */

static int on_accept(uvq_quic_endpoint_t* ep, uvq_quic_conn_t* conn) {
  qt_side_t* side = uvq_quic_endpoint_get_data(ep);
  qt_conn_t* c;

  side->accepts++;
  ASSERT(uvq_quic_conn_is_server(conn));
  ASSERT_PTR_EQ(uvq_quic_conn_endpoint(conn), ep);
  if (side->refuse)
    return 1;
  c = new_conn(side, conn);
  uvq_quic_conn_set_data(conn, c);
  return 0;
}

static void on_handshake_done(uvq_quic_conn_t* conn) {
  qt_conn_t* c = conn_of(conn);
  const char* alpn;
  size_t len;

  c->handshakes++;
  c->handshake_at = uv_hrtime();
  alpn = uvq_quic_conn_alpn(conn, &len);
  if (alpn == NULL) {
    c->alpn_null = 1;
  } else {
    ASSERT_LT(len, sizeof(c->alpn));
    memcpy(c->alpn, alpn, len);
    c->alpn[len] = '\0';
    c->alpnlen = len;
  }
  if (c->side->hooks.handshake_done != NULL)
    c->side->hooks.handshake_done(c);
}

static void on_closed(uvq_quic_conn_t* conn, const uvq_quic_error_t* err) {
  qt_conn_t* c = conn_of(conn);
  size_t n;

  c->closed++;
  c->closed_at = uv_hrtime();
  if (c->side->t->in_api)
    c->closed_in_api++;
  uvq_quic_conn_get_stats(conn, &c->stats_at_close);
  c->error = *err;
  c->reason[0] = '\0';
  if (err->reason != NULL) {
    n = err->reasonlen < sizeof(c->reason) - 1 ? err->reasonlen
                                               : sizeof(c->reason) - 1;
    memcpy(c->reason, err->reason, n);
    c->reason[n] = '\0';
  }
  c->error.reason = err->reason != NULL ? c->reason : NULL;
  if (c->side->hooks.closed != NULL)
    c->side->hooks.closed(c);
  /* The connection is freed when this returns. */
  c->conn = NULL;
}

static void on_stream_open(uvq_quic_conn_t* conn, int64_t id) {
  qt_conn_t* c = conn_of(conn);

  c->stream_opens++;
  qt_stream(c, id);
}

static void on_write_done(uvq_quic_write_t* req, int status);

typedef struct qt_write_s {
  uvq_quic_write_t req;
  qt_conn_t* c;
  uint64_t len;
} qt_write_t;

int qt_try_write(qt_conn_t* c, int64_t id, uint64_t len, int fin) {
  qt_t* t = c->side->t;
  qt_stream_t* s;
  qt_write_t* w;
  uv_buf_t buf;
  size_t start;
  int rc;

  ASSERT_NOT_NULL(c->conn);
  s = qt_stream(c, id);
  /* Writes on one stream continue the stream's pattern where the previous
   * one ended. */
  start = qt_stream_start(id) + (size_t) s->queued;
  ASSERT_LE(start + len, t->pattern_len);
  w = calloc(1, sizeof(*w));
  ASSERT_NOT_NULL(w);
  w->c = c;
  w->len = len;
  w->req.data = w;
  buf = uv_buf_init((char*) t->pattern + start, (unsigned int) len);
  rc = uvq_quic_stream_write(&w->req, c->conn, id, &buf, len > 0 ? 1 : 0,
                             fin, on_write_done);
  if (rc != 0) {
    free(w);
    return rc;
  }
  s->queued += len;
  c->side->writes_started++;
  return 0;
}

void qt_write(qt_conn_t* c, int64_t id, uint64_t len, int fin) {
  ASSERT_OK(qt_try_write(c, id, len, fin));
}

static void on_write_done(uvq_quic_write_t* req, int status) {
  qt_write_t* w = req->data;
  qt_conn_t* c = w->c;
  qt_side_t* side = c->side;
  int64_t id = req->stream_id;

  side->writes_done++;
  if (status == 0) {
    side->writes_ok++;
    qt_stream(c, id)->acked += w->len;
  } else if (status == UV_ECANCELED) {
    side->writes_canceled++;
  } else {
    side->writes_other++;
    side->writes_other_status = status;
  }
  free(w);
  if (side->hooks.write_done != NULL)
    side->hooks.write_done(c, id, status);
}

static void on_stream_data(uvq_quic_conn_t* conn,
                           int64_t id,
                           const uint8_t* data,
                           size_t len,
                           int fin) {
  qt_conn_t* c = conn_of(conn);
  qt_side_t* side = c->side;
  qt_stream_t* s = qt_stream(c, id);
  size_t start = qt_stream_start(id);
  size_t i;

  if (s->fins > 0)
    s->after_fin++;
  if (s->bad_offset < 0) {
    for (i = 0; i < len; i++) {
      if (data[i] != pattern_byte(start + s->rx + i)) {
        s->bad_offset = (int64_t) (s->rx + i);
        break;
      }
    }
  }
  s->rx += len;
  c->rx_total += len;
  if (side->auto_consume) {
    if (len > 0)
      ASSERT_OK(uvq_quic_stream_consume(conn, id, len));
  } else {
    s->unconsumed += len;
  }
  if (side->hooks.stream_data != NULL)
    side->hooks.stream_data(c, id, data, len, fin);
  if (fin) {
    s->fins++;
    c->fins++;
    if (side->is_server && side->respond_bytes > 0 && c->conn != NULL)
      qt_write(c, id, side->respond_bytes, 1);
    if (side->hooks.fin != NULL)
      side->hooks.fin(c, id);
  }
}

static void on_stream_reset(uvq_quic_conn_t* conn, int64_t id, uint64_t code) {
  qt_stream_t* s = qt_stream(conn_of(conn), id);

  s->resets++;
  s->reset_code = code;
}

static void on_stream_stop_sending(uvq_quic_conn_t* conn, int64_t id,
                                   uint64_t code) {
  (void) code;
  qt_stream(conn_of(conn), id)->stop_sendings++;
}

static void on_stream_closed(uvq_quic_conn_t* conn, int64_t id,
                             uint64_t code) {
  qt_stream_t* s = qt_stream(conn_of(conn), id);

  s->closes++;
  s->close_code = code;
}

static void on_streams_available(uvq_quic_conn_t* conn) {
  qt_conn_t* c = conn_of(conn);

  c->streams_available++;
  if (c->side->hooks.streams_available != NULL)
    c->side->hooks.streams_available(c);
}

static void on_datagram(uvq_quic_conn_t* conn, const uint8_t* data,
                        size_t len) {
  qt_conn_t* c = conn_of(conn);

  if (c->dgrams < QT_MAX_DGRAMS) {
    c->dgram_data[c->dgrams] = malloc(len ? len : 1);
    ASSERT_NOT_NULL(c->dgram_data[c->dgrams]);
    memcpy(c->dgram_data[c->dgrams], data, len);
    c->dgram_len[c->dgrams] = len;
  }
  c->dgrams++;
}

static void on_datagram_acked(uvq_quic_conn_t* conn, uint64_t id) {
  qt_conn_t* c = conn_of(conn);

  if (c->dgram_acked < QT_MAX_DGRAMS)
    c->dgram_acked_ids[c->dgram_acked] = id;
  c->dgram_acked++;
}

static void on_datagram_lost(uvq_quic_conn_t* conn, uint64_t id) {
  conn_of(conn)->dgram_lost++;
}

/* Client: keeps the latest session ticket for a later connection. */
static void on_session_ticket(uvq_quic_conn_t* conn, const uint8_t* ticket,
                              size_t len) {
  qt_side_t* side = conn_of(conn)->side;

  side->tickets++;
  ASSERT_LE(len, sizeof(side->ticket));
  memcpy(side->ticket, ticket, len);
  side->ticketlen = len;
}

static const uvq_quic_callbacks_t qt_callbacks = {
  on_accept,
  on_handshake_done,
  on_closed,
  on_stream_open,
  on_stream_data,
  on_stream_reset,
  on_stream_stop_sending,
  on_stream_closed,
  on_streams_available,
  on_datagram,
  on_datagram_acked,
  on_datagram_lost,
  on_session_ticket,
};

/* --- Setup and teardown ------------------------------------------------ */

void qt_init(qt_t* t, const char* ip, size_t max_payload) {
  size_t i;

  memset(t, 0, sizeof(*t));
  ASSERT_OK(uv_loop_init(&t->loop));
  qt_make_certs(&t->certs);
  t->ip = ip;
  t->pattern_len = max_payload + 256;
  t->pattern = malloc(t->pattern_len);
  ASSERT_NOT_NULL(t->pattern);
  for (i = 0; i < t->pattern_len; i++)
    t->pattern[i] = pattern_byte(i);

  t->server.t = t;
  t->server.is_server = 1;
  t->server.auto_consume = 1;
  uvq_quic_config_default(&t->server.cfg);
  t->server.cfg.cert_file = t->certs.cert;
  t->server.cfg.key_file = t->certs.key;
  t->server.cfg.alpn = QT_ALPN;

  t->client.t = t;
  t->client.auto_consume = 1;
  uvq_quic_config_default(&t->client.cfg);
  t->client.cfg.ca_file = t->certs.cert;
  t->client.cfg.alpn = QT_ALPN;
}

int qt_side_new(qt_t* t, qt_side_t* side, int is_server) {
  /* UVQ_TEST_QLOG_DIR=dir: one qlog per connection there, for reports. */
  if (side->cfg.qlog_dir == NULL && getenv("UVQ_TEST_QLOG_DIR") != NULL)
    side->cfg.qlog_dir = getenv("UVQ_TEST_QLOG_DIR");
  uvq_quic_callbacks_t cb;

  side->t = t;
  side->is_server = is_server;
  cb = qt_callbacks;
  if (side->no_tickets)
    cb.session_ticket = NULL;
  return uvq_quic_endpoint_new(&t->loop, &side->cfg, &cb, side, &side->ep);
}

static void bind_side(qt_t* t, qt_side_t* side) {
  int namelen;

  make_addr(&side->addr, t->ip, 0);
  ASSERT_OK(uvq_quic_endpoint_bind(side->ep, (struct sockaddr*) &side->addr));
  namelen = sizeof(side->addr);
  ASSERT_OK(uvq_udp_getsockname(uvq_quic_endpoint_udp(side->ep),
                                (struct sockaddr*) &side->addr, &namelen));
  ASSERT_NE(0, addr_port((struct sockaddr*) &side->addr));
}

void qt_start_server(qt_t* t) {
  ASSERT_OK(qt_side_new(t, &t->server, 1));
  bind_side(t, &t->server);
}

void qt_start_client(qt_t* t) {
  ASSERT_OK(qt_side_new(t, &t->client, 0));
  bind_side(t, &t->client);
}

void qt_start(qt_t* t) {
  qt_start_server(t);
  qt_start_client(t);
}

qt_conn_t* qt_connect_ticket(qt_t* t, const uint8_t* ticket, size_t len) {
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* conn;
  qt_conn_t* c;

  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  opts.session_ticket = ticket;
  opts.session_ticket_len = len;
  c = new_conn(&t->client, NULL);
  conn = NULL;
  ASSERT_OK(uvq_quic_connect(t->client.ep, (struct sockaddr*) &t->server.addr,
                             &opts, c, &conn));
  ASSERT_NOT_NULL(conn);
  c->conn = conn;
  return c;
}

qt_conn_t* qt_connect_name(qt_t* t, const char* server_name) {
  uvq_quic_connect_opts_t opts;

  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = server_name;
  return qt_connect_opts(t, &opts);
}

qt_conn_t* qt_connect_opts(qt_t* t, const uvq_quic_connect_opts_t* opts) {
  uvq_quic_conn_t* conn;
  qt_conn_t* c;

  c = new_conn(&t->client, NULL);
  conn = NULL;
  ASSERT_OK(uvq_quic_connect(t->client.ep, (struct sockaddr*) &t->server.addr,
                             opts, c, &conn));
  ASSERT_NOT_NULL(conn);
  ASSERT_PTR_EQ(uvq_quic_conn_get_data(conn), c);
  ASSERT_EQ(0, uvq_quic_conn_is_server(conn));
  c->conn = conn;
  return c;
}

qt_conn_t* qt_connect(qt_t* t) {
  return qt_connect_name(t, "localhost");
}

static void on_ep_closed(uvq_quic_endpoint_t* ep) {
  qt_side_t* side = uvq_quic_endpoint_get_data(ep);

  side->close_cbs++;
}

void qt_close_side(qt_side_t* side) {
  if (side->ep == NULL || side->closing)
    return;
  side->closing = 1;
  ASSERT_OK(uvq_quic_endpoint_get_stats(side->ep, &side->stats_at_close));
  side->t->in_api++;
  uvq_quic_endpoint_close(side->ep, on_ep_closed);
  side->t->in_api--;
}

static void free_side(qt_side_t* side) {
  unsigned int i;
  unsigned int j;
  qt_conn_t* c;

  for (i = 0; i < side->nconns; i++) {
    c = side->conns[i];
    for (j = 0; j < c->dgrams && j < QT_MAX_DGRAMS; j++)
      free(c->dgram_data[j]);
    free(c->streams);
    free(c);
    side->conns[i] = NULL;
  }
}

void qt_teardown(qt_t* t) {
  unsigned int i;

  qt_close_side(&t->client);
  qt_close_side(&t->server);
  finish_loop(&t->loop);
  if (t->client.ep != NULL)
    ASSERT_EQ(1, t->client.close_cbs);
  if (t->server.ep != NULL)
    ASSERT_EQ(1, t->server.close_cbs);
  /* Every connection reported its end exactly once, never from inside an
   * API call. */
  for (i = 0; i < t->client.nconns; i++) {
    if (t->client.conns[i]->conn == NULL && t->client.conns[i]->closed == 0)
      continue; /* connect failed before a connection existed */
    ASSERT_EQ(1, t->client.conns[i]->closed);
    ASSERT_EQ(0, t->client.conns[i]->closed_in_api);
  }
  for (i = 0; i < t->server.nconns; i++) {
    ASSERT_EQ(1, t->server.conns[i]->closed);
    ASSERT_EQ(0, t->server.conns[i]->closed_in_api);
  }
  /* Every write completed. */
  ASSERT_EQ(t->client.writes_started, t->client.writes_done);
  ASSERT_EQ(t->server.writes_started, t->server.writes_done);
  free_side(&t->client);
  free_side(&t->server);
  free(t->pattern);
  t->pattern = NULL;
}

/* --- Traffic ------------------------------------------------------------ */

int64_t qt_open_bidi(qt_conn_t* c) {
  int64_t id = -1;

  ASSERT_OK(uvq_quic_stream_open(c->conn, 1, &id));
  ASSERT_GE(id, 0);
  qt_stream(c, id);
  return id;
}

void qt_consume_all(qt_conn_t* c) {
  size_t i;

  for (i = 0; i < c->nstreams; i++) {
    if (!c->streams[i].used || c->streams[i].unconsumed == 0)
      continue;
    ASSERT_OK(uvq_quic_stream_consume(c->conn, (int64_t) i,
                                      (size_t) c->streams[i].unconsumed));
    c->streams[i].unconsumed = 0;
  }
}

void qt_assert_stream(qt_conn_t* c, int64_t id, uint64_t len) {
  qt_stream_t* s = qt_stream(c, id);

  if (s->bad_offset >= 0)
    test_fail(__FILE__, __LINE__,
              "stream %" PRId64 ": byte at offset %" PRId64
              " differs from the pattern",
              id, s->bad_offset);
  ASSERT_UINT_EQ(len, s->rx);
  ASSERT_EQ(1, s->fins);
  ASSERT_EQ(0, s->after_fin);
}

void qt_assert_closed(const qt_conn_t* c, int kind, uint64_t code,
                      int remote, const char* reason) {
  if (c->closed != 1 || c->error.kind != kind || c->error.code != code ||
      c->error.remote != remote) {
    test_fail(__FILE__, __LINE__,
              "%s connection: expected closed once with kind %d code 0x%" PRIx64
              " remote %d; got closed %u times, kind %d code 0x%" PRIx64
              " remote %d library_error %d (%s) reason \"%s\"",
              c->is_server ? "server" : "client", kind, code, remote,
              c->closed, c->error.kind, c->error.code, c->error.remote,
              c->error.library_error,
              c->error.library_error
                  ? uvq_quic_strerror(c->error.library_error)
                  : "-",
              c->reason);
  }
  if (reason == NULL) {
    ASSERT_NULL(c->error.reason);
    ASSERT_UINT_EQ(0, c->error.reasonlen);
  } else {
    ASSERT_NOT_NULL(c->error.reason);
    ASSERT_UINT_EQ(strlen(reason), c->error.reasonlen);
    ASSERT_STR_EQ(reason, c->reason);
  }
}

/* --- Loop --------------------------------------------------------------- */

static void tick_cb(uv_timer_t* timer) {
  /* Only there to make UV_RUN_ONCE return regularly. */
  (void) timer;
}

static void tick_close_cb(uv_handle_t* handle) {
  *(int*) handle->data = 1;
}

static void describe_side(const qt_side_t* side) {
  const qt_conn_t* c;
  unsigned int i;

  for (i = 0; i < side->nconns; i++) {
    c = side->conns[i];
    fprintf(stderr,
            "  %s conn %u: handshakes %u closed %u (kind %d code 0x%" PRIx64
            " remote %d lib %d) fins %u rx %" PRIu64 "\n",
            side->is_server ? "server" : "client", i, c->handshakes,
            c->closed, c->error.kind, c->error.code, c->error.remote,
            c->error.library_error, c->fins, c->rx_total);
  }
  fprintf(stderr, "  %s writes: started %u done %u ok %u canceled %u\n",
          side->is_server ? "server" : "client", side->writes_started,
          side->writes_done, side->writes_ok, side->writes_canceled);
}

static void run_loop(qt_t* t, int (*cond)(void* arg), void* arg,
                     unsigned int timeout_ms, const char* what,
                     const char* file, int line) {
  uv_timer_t tick;
  uint64_t deadline;
  int closed;

  ASSERT_OK(uv_timer_init(&t->loop, &tick));
  ASSERT_OK(uv_timer_start(&tick, tick_cb, 5, 5));
  uv_update_time(&t->loop);
  deadline = uv_now(&t->loop) + timeout_ms;
  while (cond == NULL || !cond(arg)) {
    uv_update_time(&t->loop);
    if (uv_now(&t->loop) >= deadline) {
      if (what == NULL)
        break;
      fprintf(stderr, "%s:%d: waited %u ms for %s\n", file, line, timeout_ms,
              what);
      describe_side(&t->client);
      describe_side(&t->server);
      test_fail(file, line, "condition not met within %u ms: %s", timeout_ms,
                what);
    }
    uv_run(&t->loop, UV_RUN_ONCE);
  }
  closed = 0;
  tick.data = &closed;
  uv_close((uv_handle_t*) &tick, tick_close_cb);
  while (!closed)
    uv_run(&t->loop, UV_RUN_NOWAIT);
}

void qt_run_until_(qt_t* t, int (*cond)(void* arg), void* arg,
                   unsigned int timeout_ms, const char* what,
                   const char* file, int line) {
  run_loop(t, cond, arg, timeout_ms, what, file, line);
}

void qt_run_for(qt_t* t, unsigned int ms) {
  run_loop(t, NULL, NULL, ms, NULL, __FILE__, __LINE__);
}

static int handshake_reached(void* arg) {
  qt_conn_t* c = arg;
  qt_t* t = c->side->t;

  if (c->closed)
    test_fail(__FILE__, __LINE__,
              "client connection closed during the handshake: kind %d "
              "code 0x%" PRIx64 " remote %d library_error %d",
              c->error.kind, c->error.code, c->error.remote,
              c->error.library_error);
  return c->handshakes > 0 && t->server.nconns > 0 &&
         t->server.conns[t->server.nconns - 1]->handshakes > 0;
}

void qt_run_handshake_(qt_t* t, qt_conn_t* client, const char* file,
                       int line) {
  run_loop(t, handshake_reached, client, QT_WAIT_MS, "the handshake", file,
           line);
}

static int closed_reached(void* arg) {
  return ((qt_conn_t*) arg)->closed > 0;
}

void qt_run_until_closed_(qt_t* t, qt_conn_t* c, const char* file, int line) {
  run_loop(t, closed_reached, c, QT_WAIT_MS,
           c->is_server ? "the server connection's closed callback"
                        : "the client connection's closed callback",
           file, line);
}

struct count_wait {
  const unsigned int* counter;
  unsigned int n;
};

static int count_reached(void* arg) {
  struct count_wait* w = arg;
  return *w->counter >= w->n;
}

void qt_run_until_fins_(qt_t* t, qt_conn_t* c, unsigned int n,
                        const char* file, int line) {
  struct count_wait w;

  w.counter = &c->fins;
  w.n = n;
  run_loop(t, count_reached, &w, QT_WAIT_MS, "stream FINs", file, line);
}

void qt_run_until_writes_(qt_t* t, qt_side_t* side, unsigned int n,
                          const char* file, int line) {
  struct count_wait w;

  w.counter = &side->writes_done;
  w.n = n;
  run_loop(t, count_reached, &w, QT_WAIT_MS, "write callbacks", file, line);
}

int qt_conn_has_dgram(void* c) {
  return ((qt_conn_t*) c)->dgrams > 0;
}

int qt_conn_handshaken(void* c) {
  return ((qt_conn_t*) c)->handshakes > 0;
}

int qt_conn_closed(void* c) {
  return ((qt_conn_t*) c)->closed > 0;
}

qt_conn_t* qt_server_conn(qt_t* t, unsigned int n) {
  ASSERT_LT(n, t->server.nconns);
  return t->server.conns[n];
}

/* --- A client behind a masquerading router ---------------------------- */

static void nat_down_at_exit(void* arg) {
  qt_nat_down(arg);
}

void qt_nat_down(qt_nat_t* n) {
  test_atexit_cancel(nat_down_at_exit, n);
  netns_leave();
  netns_destroy(&n->cli);
  netns_destroy(&n->rtr);
  netns_destroy(&n->srv);
}

void qt_nat_map(qt_nat_t* n, unsigned int port) {
  ASSERT_OK(netns_exec(&n->rtr, "nft flush chain ip nat post"));
  ASSERT_OK(netns_exec(&n->rtr,
                       "nft add rule ip nat post oifname r1 meta l4proto udp "
                       "masquerade to :%u",
                       port));
  ASSERT_OK(netns_exec(&n->rtr, "conntrack -F >/dev/null 2>&1"));
}

void qt_nat_up(qt_nat_t* n, const char* prefix, const char* net) {
  char tag[32];
  char cidr[32];

  NETNS_REQUIRE();
  if (netns_sh("command -v nft >/dev/null && command -v conntrack >/dev/null"))
    RETURN_SKIP("nft and conntrack are needed (Debian nftables, conntrack)");
  test_atexit(nat_down_at_exit, n);
  snprintf(tag, sizeof(tag), "%sc", prefix);
  ASSERT_OK(netns_create(&n->cli, tag));
  snprintf(tag, sizeof(tag), "%sr", prefix);
  ASSERT_OK(netns_create(&n->rtr, tag));
  snprintf(tag, sizeof(tag), "%ss", prefix);
  ASSERT_OK(netns_create(&n->srv, tag));
  ASSERT_OK(netns_veth(&n->cli, "c0", &n->rtr, "r0", 0));
  ASSERT_OK(netns_veth(&n->rtr, "r1", &n->srv, "s0", 0));
  snprintf(cidr, sizeof(cidr), "%s.1.2/24", net);
  ASSERT_OK(netns_addr(&n->cli, "c0", cidr));
  snprintf(cidr, sizeof(cidr), "%s.1.1/24", net);
  ASSERT_OK(netns_addr(&n->rtr, "r0", cidr));
  snprintf(cidr, sizeof(cidr), "%s.2.1/24", net);
  ASSERT_OK(netns_addr(&n->rtr, "r1", cidr));
  snprintf(cidr, sizeof(cidr), "%s.2.2/24", net);
  ASSERT_OK(netns_addr(&n->srv, "s0", cidr));
  ASSERT_OK(netns_exec(&n->cli, "ip route add default via %s.1.1", net));
  ASSERT_OK(netns_exec(&n->rtr, "sysctl -q -w net.ipv4.ip_forward=1"));
  ASSERT_OK(netns_exec(&n->rtr, "nft add table ip nat"));
  ASSERT_OK(netns_exec(&n->rtr,
                       "nft \"add chain ip nat post { type nat hook "
                       "postrouting priority 100 ; }\""));
}

/* --- Stateless reset tokens -------------------------------------------- */

/* HMAC-SHA256 with wolfCrypt's one-shot calls. */
static void hmac_sha256(const uint8_t* key, size_t keylen,
                        const uint8_t* data, size_t len, uint8_t out[32]) {
  Hmac h;

  ASSERT_OK(wc_HmacInit(&h, NULL, INVALID_DEVID));
  ASSERT_OK(wc_HmacSetKey(&h, WC_SHA256, key, (word32) keylen));
  ASSERT_OK(wc_HmacUpdate(&h, data, (word32) len));
  ASSERT_OK(wc_HmacFinal(&h, out));
  wc_HmacFree(&h);
}

void qt_reset_token(const uint8_t secret[32], const uint8_t* cid,
                    size_t cidlen, uint8_t token[16]) {
  static const char label[] = "uvq stateless reset";
  uint8_t k[32];
  uint8_t out[32];

  hmac_sha256(secret, 32, (const uint8_t*) label, sizeof(label) - 1, k);
  hmac_sha256(k, sizeof(k), cid, cidlen, out);
  memcpy(token, out, 16);
}

/* ---- a socket given back ------------------------------------------------------ */

typedef struct qt_given_back_s {
  char space[2048];
  int got;
  int sender_closed;
} qt_given_back_t;

static void given_back_sender_closed(uvq_udp_t* u) {
  ((qt_given_back_t*) u->data)->sender_closed = 1;
}

static void given_back_alloc(uvq_udp_t* u, size_t suggested, uv_buf_t* buf) {
  qt_given_back_t* g = u->data;

  (void) suggested;
  *buf = uv_buf_init(g->space, sizeof(g->space));
}

static void given_back_recv(uvq_udp_t* u, const uvq_udp_recv_t* r) {
  qt_given_back_t* g = u->data;

  if (r->nread == 5 && memcmp(r->buf->base, "hello", 5) == 0)
    g->got++;
}

void qt_assert_udp_given_back(uv_loop_t* loop, uvq_udp_t* udp, void* data) {
  struct sockaddr_storage to;
  struct sockaddr_in any;
  qt_given_back_t g;
  uvq_udp_mmsg_t m;
  uvq_udp_t other;
  uv_buf_t b;
  int namelen;
  int i;

  ASSERT_PTR_EQ(data, udp->data);
  ASSERT(!uvq_udp_is_closing(udp));
  namelen = sizeof(to);
  ASSERT_OK(uvq_udp_getsockname(udp, (struct sockaddr*) &to, &namelen));
  /* The endpoint stopped receiving on it: the application can start. */
  memset(&g, 0, sizeof(g));
  udp->data = &g;
  ASSERT_OK(uvq_udp_recv_start2(udp, given_back_alloc, given_back_recv));
  ASSERT_OK(uv_ip4_addr("127.0.0.1", 0, &any));
  ASSERT_OK(uvq_udp_init(loop, &other));
  ASSERT_OK(uvq_udp_bind(&other, (struct sockaddr*) &any, 0));
  b = uv_buf_init("hello", 5);
  memset(&m, 0, sizeof(m));
  m.bufs = &b;
  m.nbufs = 1;
  m.addr = (struct sockaddr*) &to;
  m.ecn = -1;
  ASSERT_EQ(1, uvq_udp_try_send_batch(&other, &m, 1, 0));
  for (i = 0; i < 1000 && g.got == 0; i++)
    uv_run(loop, UV_RUN_ONCE);
  ASSERT_EQ(1, g.got);
  ASSERT_OK(uvq_udp_recv_stop(udp));
  udp->data = data;
  /* The sender lives on this stack: wait until the loop is done with it. */
  other.data = &g;
  uvq_udp_close(&other, given_back_sender_closed);
  for (i = 0; i < 1000 && !g.sender_closed; i++)
    uv_run(loop, UV_RUN_ONCE);
  ASSERT_EQ(1, g.sender_closed);
}
