/* HTTP/3 protocol errors as a peer sees them. A raw client built on the
 * public QUIC API opens streams and writes HTTP/3 frames, varints and
 * QPACK field lines byte by byte against uvq's HTTP/3 server, and a raw
 * server does the same to uvq's HTTP/3 client:
 *
 * - connection errors (RFC 9114, 8.1; RFC 9204, 6) must end the
 *   connection with an application CONNECTION_CLOSE carrying the exact
 *   HTTP/3 or QPACK code;
 * - malformed requests (RFC 9114, 4.1.2, 4.2, 10.3) must reset only
 *   their stream with H3_MESSAGE_ERROR, never reach the application, and
 *   leave the connection serving the next request. */
#include <string.h>

#include "quic-helpers.h"
#include "task.h"
#include "uvq/h3.h"

/* HTTP/3 and QPACK error codes the tests expect (RFC 9114, 8.1; RFC 9204,
 * 6). */
#define H3_STREAM_CREATION_ERROR 0x103u
#define H3_CLOSED_CRITICAL_STREAM 0x104u
#define H3_FRAME_UNEXPECTED 0x105u
#define H3_FRAME_ERROR 0x106u
#define H3_SETTINGS_ERROR 0x109u
#define H3_MISSING_SETTINGS 0x10au
#define QPACK_DECOMPRESSION_FAILED 0x200u
#define QPACK_ENCODER_STREAM_ERROR 0x201u
#define QPACK_DECODER_STREAM_ERROR 0x202u

/* One test: the raw QUIC side comes from quic-helpers (qt_t), the HTTP/3
 * side is uvq_h3_t on the same loop. */
typedef struct h3t_s {
  qt_t t;
  uvq_h3_t* h3;
  unsigned int h3_closed;
  /* Server: the application's view. */
  unsigned int requests;
  unsigned int dones;
  unsigned int bodies;
  uint64_t last_done_code;
  char last_path[64];
  /* Client: connected and closed callbacks. */
  unsigned int connected;
  unsigned int closed;
  uvq_quic_error_t close_error;
  /* Client cases: the raw server's delayed second stream. */
  uv_timer_t second_stream;
  qt_conn_t* raw;
} h3t_t;

/* A raw write: the bytes live with the request until its callback. */
typedef struct raw_write_s {
  uvq_quic_write_t req;
  unsigned int* acked; /* counts acknowledged writes, or NULL */
  size_t len;
  uint8_t data[];
} raw_write_t;

static void raw_write_done(uvq_quic_write_t* req, int status) {
  raw_write_t* w = req->data;

  if (status == 0 && w->acked != NULL)
    (*w->acked)++;
  free(w);
}

static int raw_write_counted(uvq_quic_conn_t* conn, int64_t id,
                             const uint8_t* data, size_t len, int fin,
                             unsigned int* acked) {
  raw_write_t* w;
  uv_buf_t buf;
  int err;

  w = malloc(sizeof(*w) + len + 1);
  ASSERT_NOT_NULL(w);
  memcpy(w->data, data, len);
  w->len = len;
  w->acked = acked;
  w->req.data = w;
  buf = uv_buf_init((char*) w->data, (unsigned int) len);
  err = uvq_quic_stream_write(&w->req, conn, id, &buf, 1, fin,
                              raw_write_done);
  if (err)
    free(w);
  return err;
}

static void raw_write(uvq_quic_conn_t* conn, int64_t id, const uint8_t* data,
                      size_t len, int fin) {
  ASSERT_OK(raw_write_counted(conn, id, data, len, fin, NULL));
}

static int64_t raw_open(uvq_quic_conn_t* conn, int bidi) {
  int64_t id;

  ASSERT_OK(uvq_quic_stream_open(conn, bidi, &id));
  return id;
}

/* A QUIC variable-length integer (RFC 9000, 16). */
static size_t put_varint(uint8_t* p, uint64_t v) {
  if (v < 64) {
    p[0] = (uint8_t) v;
    return 1;
  }
  if (v < 16384) {
    p[0] = (uint8_t) (0x40 | (v >> 8));
    p[1] = (uint8_t) v;
    return 2;
  }
  ASSERT_LT(v, 1073741824);
  p[0] = (uint8_t) (0x80 | (v >> 24));
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
  return 4;
}

/* A QPACK prefixed integer (RFC 9204, 4.1.1, as RFC 7541, 5.1): first
 * carries the bits above the prefix. */
static size_t put_prefixed(uint8_t* p, uint8_t first, unsigned int bits,
                           uint64_t v) {
  uint64_t max = (1u << bits) - 1;
  size_t n;

  if (v < max) {
    p[0] = (uint8_t) (first | v);
    return 1;
  }
  p[0] = (uint8_t) (first | max);
  v -= max;
  n = 1;
  while (v >= 128) {
    p[n++] = (uint8_t) (0x80 | (v & 0x7f));
    v >>= 7;
  }
  p[n++] = (uint8_t) v;
  return n;
}

typedef struct field_s {
  const char* name;
  size_t namelen;
  const char* value;
  size_t valuelen;
} field_t;

#define F(n, v) {(n), sizeof(n) - 1, (v), sizeof(v) - 1}

/* A HEADERS frame whose field section holds fields exactly as given, each
 * a Literal Field Line with Literal Name without Huffman coding (RFC 9204,
 * 4.5.6), after a prefix with Required Insert Count 0 and Base 0: whatever
 * bytes the names and values hold reach the server's decoder as they are. */
static size_t make_headers(uint8_t* out, const field_t* fields, size_t n) {
  uint8_t block[2048];
  size_t len;
  size_t i;
  size_t o;

  len = 0;
  block[len++] = 0x00; /* Required Insert Count */
  block[len++] = 0x00; /* Sign and Delta Base */
  for (i = 0; i < n; i++) {
    len += put_prefixed(block + len, 0x20, 3, fields[i].namelen);
    memcpy(block + len, fields[i].name, fields[i].namelen);
    len += fields[i].namelen;
    len += put_prefixed(block + len, 0x00, 7, fields[i].valuelen);
    memcpy(block + len, fields[i].value, fields[i].valuelen);
    len += fields[i].valuelen;
    ASSERT_LT(len, sizeof(block) - 300);
  }
  o = put_varint(out, 0x01); /* HEADERS */
  o += put_varint(out + o, len);
  memcpy(out + o, block, len);
  return o + len;
}

/* ---- the HTTP/3 server and the raw client ------------------------------ */

static void srv_request(uvq_h3_req_t* req) {
  h3t_t* ht = uvq_h3_get_data(uvq_h3_req_h3(req));
  const char* path;
  size_t len;

  ht->requests++;
  path = uvq_h3_req_path(req, &len);
  if (path != NULL && len < sizeof(ht->last_path)) {
    memcpy(ht->last_path, path, len);
    ht->last_path[len] = '\0';
  }
  ASSERT_OK(uvq_h3_respond(req, 200, NULL, 0, NULL));
}

static void srv_body(uvq_h3_req_t* req, const uint8_t* data, size_t len) {
  h3t_t* ht = uvq_h3_get_data(uvq_h3_req_h3(req));

  (void) data;
  (void) len;
  ht->bodies++;
}

static void srv_done(uvq_h3_req_t* req, uint64_t app_error) {
  h3t_t* ht = uvq_h3_get_data(uvq_h3_req_h3(req));

  ht->dones++;
  ht->last_done_code = app_error;
}

static void h3_closed_cb(uvq_h3_t* h3) {
  h3t_t* ht = uvq_h3_get_data(h3);

  ht->h3_closed++;
}

/* Starts uvq's HTTP/3 server on 127.0.0.1 (port read back into
 * t.server.addr, where the raw client connects) and the raw client. */
static void start_server_side(h3t_t* ht) {
  uvq_h3_callbacks_t cb;
  uvq_quic_config_t q;
  int namelen;

  memset(ht, 0, sizeof(*ht));
  qt_init(&ht->t, "127.0.0.1", 0);
  uvq_quic_config_default(&q);
  q.cert_file = ht->t.certs.cert;
  q.key_file = ht->t.certs.key;
  memset(&cb, 0, sizeof(cb));
  cb.request = srv_request;
  cb.body = srv_body;
  cb.done = srv_done;
  ASSERT_OK(uvq_h3_server_new(&ht->t.loop, &q, NULL, &cb, ht, &ht->h3));
  make_addr(&ht->t.server.addr, "127.0.0.1", 0);
  ASSERT_OK(uvq_h3_listen(ht->h3, (struct sockaddr*) &ht->t.server.addr));
  namelen = sizeof(ht->t.server.addr);
  ASSERT_OK(uvq_udp_getsockname(uvq_quic_endpoint_udp(uvq_h3_endpoint(ht->h3)),
                                (struct sockaddr*) &ht->t.server.addr,
                                &namelen));
  ht->t.client.cfg.alpn = "h3";
  qt_start_client(&ht->t);
}

static qt_conn_t* connect_raw(h3t_t* ht) {
  qt_conn_t* c;

  c = qt_connect(&ht->t);
  qt_run_until(&ht->t, qt_conn_handshaken, c, QT_WAIT_MS);
  return c;
}

static void finish(h3t_t* ht) {
  if (ht->h3 != NULL)
    uvq_h3_close(ht->h3, h3_closed_cb);
  qt_teardown(&ht->t);
  if (ht->h3 != NULL)
    ASSERT_EQ(1, ht->h3_closed);
}

/* A control stream with an empty SETTINGS frame, as a client must open
 * first (RFC 9114, 6.2.1). */
static void open_control(uvq_quic_conn_t* conn) {
  static const uint8_t ctrl[] = {0x00, 0x04, 0x00};

  raw_write(conn, raw_open(conn, 0), ctrl, sizeof(ctrl), 0);
}

/* ---- connection errors, server side ------------------------------------ */

/* One stream the raw client opens and writes. */
typedef struct raw_step_s {
  int bidi;
  uint8_t bytes[16];
  size_t len;
  int fin;
} raw_step_t;

typedef struct conn_error_case_s {
  const char* name;
  int control_first; /* open a proper control stream before the steps */
  raw_step_t steps[2];
  size_t nsteps;
  uint64_t code;
} conn_error_case_t;

static const conn_error_case_t conn_error_cases[] = {
    /* RFC 9114, 4.1: DATA before HEADERS on a request stream. */
    {"data before headers", 1,
     {{1, {0x00, 0x04, 'a', 'b', 'c', 'd'}, 6, 1}}, 1, H3_FRAME_UNEXPECTED},
    /* RFC 9114, 7.1: a SETTINGS frame one byte long that ends inside its
     * first setting (an identifier with no value). */
    {"settings frame shorter than its content", 0,
     {{0, {0x00, 0x04, 0x01, 0x06}, 4, 0}}, 1, H3_FRAME_ERROR},
    /* A HEADERS frame announcing 10 bytes on a stream that ends after 2. */
    {"headers frame longer than the stream", 1,
     {{1, {0x01, 0x0a, 0x00, 0x00}, 4, 1}}, 1, H3_FRAME_ERROR},
    /* RFC 9114, 6.2.1: a second control stream. */
    {"second control stream", 1,
     {{0, {0x00, 0x04, 0x00}, 3, 0}}, 1, H3_STREAM_CREATION_ERROR},
    /* RFC 9114, 6.2.1: the control stream closed. */
    {"control stream closed", 0,
     {{0, {0x00, 0x04, 0x00}, 3, 1}}, 1, H3_CLOSED_CRITICAL_STREAM},
    /* RFC 9114, 7.2.8: HTTP/2 frame types reserved in HTTP/3. */
    {"HTTP/2 PRIORITY on the control stream", 0,
     {{0, {0x00, 0x04, 0x00, 0x02, 0x00}, 5, 0}}, 1, H3_FRAME_UNEXPECTED},
    {"HTTP/2 PING on the control stream", 0,
     {{0, {0x00, 0x04, 0x00, 0x06, 0x00}, 5, 0}}, 1, H3_FRAME_UNEXPECTED},
    {"HTTP/2 WINDOW_UPDATE on the control stream", 0,
     {{0, {0x00, 0x04, 0x00, 0x08, 0x00}, 5, 0}}, 1, H3_FRAME_UNEXPECTED},
    {"HTTP/2 CONTINUATION on the control stream", 0,
     {{0, {0x00, 0x04, 0x00, 0x09, 0x00}, 5, 0}}, 1, H3_FRAME_UNEXPECTED},
    /* RFC 9114, 6.2.1: the first frame is not SETTINGS (a GOAWAY). */
    {"settings not first", 0,
     {{0, {0x00, 0x07, 0x01, 0x00}, 4, 0}}, 1, H3_MISSING_SETTINGS},
    /* RFC 9114, 7.2.4: a second SETTINGS frame. */
    {"duplicate settings", 0,
     {{0, {0x00, 0x04, 0x00, 0x04, 0x00}, 5, 0}}, 1, H3_FRAME_UNEXPECTED},
    /* RFC 9114, 7.2.4.1: an HTTP/2 setting (ENABLE_PUSH, 0x02). */
    {"HTTP/2 setting", 0,
     {{0, {0x00, 0x04, 0x02, 0x02, 0x00}, 5, 0}}, 1, H3_SETTINGS_ERROR},
    /* RFC 9114, 6.2.2: only servers open push streams. */
    {"push stream from a client", 1,
     {{0, {0x01, 0x00}, 2, 0}}, 1, H3_STREAM_CREATION_ERROR},
    /* RFC 9204, 4.3.1: a dynamic table capacity (5000) above the 4096
     * the server allowed. */
    {"encoder stream capacity too large", 1,
     {{0, {0x02, 0x3f, 0xe9, 0x26}, 4, 0}}, 1, QPACK_ENCODER_STREAM_ERROR},
    /* RFC 9204, 4.4.1: a Section Acknowledgment for a stream that had no
     * field section. */
    {"decoder stream acknowledges nothing", 1,
     {{0, {0x03, 0x80}, 2, 0}}, 1, QPACK_DECODER_STREAM_ERROR},
    /* RFC 9204, 4.5.2: an indexed field line for static entry 163 (the
     * static table has 99). */
    {"static index out of range", 1,
     {{1, {0x01, 0x04, 0x00, 0x00, 0xff, 0x64}, 6, 1}}, 1,
     QPACK_DECOMPRESSION_FAILED},
};

/* Each case on a new connection to the same server. */
static void run_conn_error_case(h3t_t* ht, const conn_error_case_t* tc) {
  qt_conn_t* c;
  size_t i;

  ht->requests = 0;
  c = connect_raw(ht);
  if (tc->control_first)
    open_control(c->conn);
  for (i = 0; i < tc->nsteps; i++)
    raw_write(c->conn, raw_open(c->conn, tc->steps[i].bidi),
              tc->steps[i].bytes, tc->steps[i].len, tc->steps[i].fin);
  qt_run_until_closed(&ht->t, c);
  fprintf(stderr, "# %s: kind %d code 0x%" PRIx64 " remote %d\n", tc->name,
          c->error.kind, c->error.code, c->error.remote);
  /* The server closed with an application CONNECTION_CLOSE (frame type
   * 0x1d) carrying the code, with no reason phrase. */
  qt_assert_closed(c, UVQ_QUIC_ERROR_APPLICATION, tc->code, 1, NULL);
  ASSERT_EQ(0, ht->requests);
}

static int write_acked(void* arg) {
  return *(unsigned int*) arg == 1;
}

/* RFC 9114, 6.2.1: the control stream reset once the server knows it. */
static void run_control_reset_case(h3t_t* ht) {
  static const uint8_t ctrl[] = {0x00, 0x04, 0x00};
  unsigned int acked;
  qt_conn_t* c;
  int64_t id;

  c = connect_raw(ht);
  id = raw_open(c->conn, 0);
  acked = 0;
  ASSERT_OK(raw_write_counted(c->conn, id, ctrl, sizeof(ctrl), 0, &acked));
  qt_run_until(&ht->t, write_acked, &acked, QT_WAIT_MS);
  ASSERT_OK(uvq_quic_stream_shutdown(c->conn, id, UVQ_QUIC_SHUT_WRITE,
                                     UVQ_H3_REQUEST_CANCELLED));
  qt_run_until_closed(&ht->t, c);
  qt_assert_closed(c, UVQ_QUIC_ERROR_APPLICATION, H3_CLOSED_CRITICAL_STREAM,
                   1, NULL);
}

TEST_IMPL(quic_h3_conn_errors_server) {
  h3t_t ht;
  size_t i;

  start_server_side(&ht);
  for (i = 0; i < sizeof(conn_error_cases) / sizeof(conn_error_cases[0]);
       i++)
    run_conn_error_case(&ht, &conn_error_cases[i]);
  run_control_reset_case(&ht);
  finish(&ht);
  return 0;
}

/* ---- connection errors, client side ------------------------------------ */

static void cli_connected(uvq_h3_t* h3, const uvq_quic_error_t* err) {
  h3t_t* ht = uvq_h3_get_data(h3);

  if (err != NULL) {
    /* The error ended the connection before it was reported ready. */
    ht->closed++;
    ht->close_error = *err;
    return;
  }
  ht->connected++;
}

static void cli_closed(uvq_h3_t* h3, const uvq_quic_error_t* err) {
  h3t_t* ht = uvq_h3_get_data(h3);

  ASSERT_NOT_NULL(err);
  ht->closed++;
  ht->close_error = *err;
}

static int h3_client_closed(void* arg) {
  return ((h3t_t*) arg)->closed > 0;
}

typedef struct client_case_s {
  const char* name;
  int bidi;
  uint8_t bytes[8];
  size_t len;
  uint64_t code;
  /* First a bidirectional stream ended both ways before any byte. */
  int abort_first;
} client_case_t;

static const client_case_t client_cases[] = {
    /* RFC 9114, 6.2.1: the server's control stream starts with GOAWAY. */
    {"settings not first", 0, {0x00, 0x07, 0x01, 0x00}, 4,
     H3_MISSING_SETTINGS, 0},
    /* RFC 9114, 6.1: servers open no bidirectional streams. */
    {"server-initiated bidirectional stream", 1, {0x01, 0x00}, 2,
     H3_STREAM_CREATION_ERROR, 0},
    /* RFC 9204, 4.3.1: capacity over what the client allowed. */
    {"encoder stream capacity too large", 0, {0x02, 0x3f, 0xe9, 0x26}, 4,
     QPACK_ENCODER_STREAM_ERROR, 0},
    /* A server-initiated bidirectional stream reset and stopped before its
     * first byte closes on the client, which gets the stream's credit
     * back; uvq used to hand that to nghttp3's server-only setter, which
     * aborted the client (found by fuzz-h3). The second stream then ends
     * the connection as above. */
    {"server bidirectional stream aborted, then another", 1, {0x01, 0x00},
     2, H3_STREAM_CREATION_ERROR, 1},
};

static void raw_server_second_stream(uv_timer_t* timer) {
  h3t_t* ht = timer->data;
  const client_case_t* tc = ht->t.user;

  raw_write(ht->raw->conn, raw_open(ht->raw->conn, tc->bidi), tc->bytes,
            tc->len, 0);
  uv_close((uv_handle_t*) timer, NULL);
}

static void raw_server_handshake(qt_conn_t* c) {
  const client_case_t* tc = c->side->t->user;
  h3t_t* ht;

  if (!c->is_server)
    return;
  if (!tc->abort_first) {
    raw_write(c->conn, raw_open(c->conn, tc->bidi), tc->bytes, tc->len, 0);
    return;
  }
  /* The client closes the aborted stream and writes MAX_STREAMS (where the
   * credit reached nghttp3) on its next packets: the second stream comes
   * 200 ms later. */
  ASSERT_OK(uvq_quic_stream_shutdown(c->conn, raw_open(c->conn, 1),
                                     UVQ_QUIC_SHUT_WRITE | UVQ_QUIC_SHUT_READ,
                                     0x10c));
  /* ht's first member is the qt_t. */
  ht = (h3t_t*) (void*) c->side->t;
  ht->raw = c;
  ASSERT_OK(uv_timer_init(&ht->t.loop, &ht->second_stream));
  ht->second_stream.data = ht;
  ASSERT_OK(uv_timer_start(&ht->second_stream, raw_server_second_stream,
                           200, 0));
}

static void run_client_case(const client_case_t* tc) {
  uvq_h3_callbacks_t cb;
  uvq_quic_config_t q;
  qt_conn_t* s;
  h3t_t ht;

  memset(&ht, 0, sizeof(ht));
  qt_init(&ht.t, "127.0.0.1", 0);
  ht.t.server.cfg.alpn = "h3";
  ht.t.user = (void*) tc;
  ht.t.server.hooks.handshake_done = raw_server_handshake;
  qt_start_server(&ht.t);
  uvq_quic_config_default(&q);
  q.ca_file = ht.t.certs.cert;
  memset(&cb, 0, sizeof(cb));
  cb.connected = cli_connected;
  cb.closed = cli_closed;
  ASSERT_OK(uvq_h3_client_new(&ht.t.loop, &q, NULL, &cb, &ht, &ht.h3));
  ASSERT_OK(uvq_h3_connect(ht.h3, (struct sockaddr*) &ht.t.server.addr,
                           "localhost"));
  qt_run_until(&ht.t, h3_client_closed, &ht, QT_WAIT_MS);
  fprintf(stderr, "# client, %s: kind %d code 0x%" PRIx64 " remote %d\n",
          tc->name, ht.close_error.kind, ht.close_error.code,
          ht.close_error.remote);
  ASSERT_EQ(1, ht.connected);
  ASSERT_EQ(1, ht.closed);
  ASSERT_EQ(UVQ_QUIC_ERROR_APPLICATION, ht.close_error.kind);
  ASSERT_UINT_EQ(tc->code, ht.close_error.code);
  ASSERT_EQ(0, ht.close_error.remote);
  /* The raw server received it as an application close. */
  s = qt_server_conn(&ht.t, 0);
  qt_run_until_closed(&ht.t, s);
  qt_assert_closed(s, UVQ_QUIC_ERROR_APPLICATION, tc->code, 1, NULL);
  finish(&ht);
}

TEST_IMPL(quic_h3_conn_errors_client) {
  size_t i;

  for (i = 0; i < sizeof(client_cases) / sizeof(client_cases[0]); i++)
    run_client_case(&client_cases[i]);
  return 0;
}

/* ---- malformed requests ------------------------------------------------ */

#define PSEUDO                                                               \
  F(":method", "GET"), F(":scheme", "https"), F(":authority", "localhost")

typedef struct malformed_case_s {
  const char* name;
  field_t fields[8];
  size_t nfields;
} malformed_case_t;

static const malformed_case_t malformed_cases[] = {
    /* RFC 9114, 10.3 and RFC 9110, 5.5: NUL, CR or LF in a value. */
    {"NUL in a value", {PSEUDO, F(":path", "/"), F("x-test", "a\0b")}, 5},
    {"CR in a value", {PSEUDO, F(":path", "/"), F("x-test", "a\rb")}, 5},
    {"LF in a value", {PSEUDO, F(":path", "/"), F("x-test", "a\nb")}, 5},
    {"CR LF in a value",
     {PSEUDO, F(":path", "/"), F("x-test", "a\r\nx-injected: 1")}, 5},
    /* RFC 9114, 4.2: field names are tokens, in lower case. */
    {"empty name", {PSEUDO, F(":path", "/"), F("", "v")}, 5},
    {"uppercase name", {PSEUDO, F(":path", "/"), F("X-Test", "v")}, 5},
    {"space in a name", {PSEUDO, F(":path", "/"), F("x test", "v")}, 5},
    /* RFC 9114, 4.3: pseudo-headers come first, and only defined ones. */
    {"pseudo-header after a regular one",
     {PSEUDO, F("x-test", "v"), F(":path", "/")}, 5},
    {"unknown pseudo-header", {PSEUDO, F(":path", "/"), F(":foo", "bar")}, 5},
    /* RFC 9114, 4.2: connection-specific fields. */
    {"connection", {PSEUDO, F(":path", "/"), F("connection", "close")}, 5},
    {"keep-alive", {PSEUDO, F(":path", "/"), F("keep-alive", "5")}, 5},
    {"proxy-connection",
     {PSEUDO, F(":path", "/"), F("proxy-connection", "x")}, 5},
    {"transfer-encoding",
     {PSEUDO, F(":path", "/"), F("transfer-encoding", "chunked")}, 5},
    {"upgrade", {PSEUDO, F(":path", "/"), F("upgrade", "h2c")}, 5},
    {"te other than trailers", {PSEUDO, F(":path", "/"), F("te", "gzip")}, 5},
};

static int stream_reset_seen(void* arg) {
  qt_stream_t* s = arg;

  return s->resets > 0 && s->closes > 0;
}

typedef struct wait_s {
  qt_stream_t* stream;
  h3t_t* ht;
} wait_t;

static int good_request_done(void* arg) {
  wait_t* w = arg;

  return w->stream->fins == 1 && w->ht->dones == 1;
}

typedef struct split_wait_s {
  qt_conn_t* c;
  int64_t id;
  unsigned int acked;
} split_wait_t;

/* The byte was acknowledged, or the server reset the stream (then the
 * write completes only when the stream closes, with UV_ECANCELED). */
static int split_write_done(void* arg) {
  split_wait_t* w = arg;

  return w->acked == 1 || qt_stream(w->c, w->id)->resets > 0;
}

/* Writes bytes one at a time, each acknowledged before the next, so that
 * the server reads the request in one-byte STREAM frames. Stops early when
 * the server has stopped the stream (UV_EPIPE, or UV_ENOENT once it is
 * closed): a malformed section is refused as soon as it is complete. */
static void write_split(h3t_t* ht, qt_conn_t* c, int64_t id,
                        const uint8_t* data, size_t len, int fin) {
  split_wait_t w;
  size_t i;
  int err;

  w.c = c;
  w.id = id;
  for (i = 0; i < len; i++) {
    w.acked = 0;
    err = raw_write_counted(c->conn, id, data + i, 1, fin && i == len - 1,
                            &w.acked);
    if (err == UV_EPIPE || err == UV_ENOENT)
      return;
    ASSERT_OK(err);
    qt_run_until(&ht->t, split_write_done, &w, QT_WAIT_MS);
  }
}

/* Each case on a new connection to the same server, closed afterwards. */
static void run_malformed_case(h3t_t* ht, const malformed_case_t* tc,
                               int split) {
  static const field_t good[] = {PSEUDO, F(":path", "/next")};
  uint8_t frame[2048];
  uint8_t data[] = {0x00, 0x03, 'a', 'b', 'c'};
  qt_stream_t* bad;
  qt_stream_t* next;
  int64_t bad_id;
  int64_t next_id;
  qt_conn_t* c;
  wait_t w;
  size_t n;

  ht->requests = 0;
  ht->dones = 0;
  ht->bodies = 0;
  ht->last_done_code = 0;
  ht->last_path[0] = '\0';
  c = connect_raw(ht);
  open_control(c->conn);
  /* The malformed request, with a DATA frame after it and the stream left
   * open (a body would follow), so that the reset is the server's doing. */
  n = make_headers(frame, tc->fields, tc->nfields);
  memcpy(frame + n, data, sizeof(data));
  n += sizeof(data);
  bad_id = raw_open(c->conn, 1);
  if (split)
    write_split(ht, c, bad_id, frame, n, 0);
  else
    raw_write(c->conn, bad_id, frame, n, 0);
  bad = qt_stream(c, bad_id);
  qt_run_until(&ht->t, stream_reset_seen, bad, QT_WAIT_MS);
  bad = qt_stream(c, bad_id);
  fprintf(stderr, "# %s%s: reset %u code 0x%" PRIx64 ", closed %u code 0x%" PRIx64
          "\n",
          tc->name, split ? " (one-byte frames)" : "", bad->resets,
          bad->reset_code, bad->closes,
          bad->close_code);
  /* RESET_STREAM with H3_MESSAGE_ERROR, and STOP_SENDING: the client had
   * not finished its side, so only STOP_SENDING (answered by ngtcp2 with
   * RESET_STREAM) can have closed the stream. ngtcp2 has no callback for a
   * STOP_SENDING received; the stream's code is the first one it saw. */
  ASSERT_EQ(1, bad->resets);
  ASSERT_UINT_EQ(UVQ_H3_MESSAGE_ERROR, bad->reset_code);
  ASSERT_EQ(1, bad->closes);
  ASSERT_UINT_EQ(UVQ_H3_MESSAGE_ERROR, bad->close_code);
  ASSERT_UINT_EQ(0, bad->rx);

  /* The connection goes on: a valid request on the next stream is
   * answered, and it is the only one the application ever saw. */
  n = make_headers(frame, good, sizeof(good) / sizeof(good[0]));
  next_id = raw_open(c->conn, 1);
  if (split)
    write_split(ht, c, next_id, frame, n, 1);
  else
    raw_write(c->conn, next_id, frame, n, 1);
  next = qt_stream(c, next_id);
  w.stream = next;
  w.ht = ht;
  qt_run_until(&ht->t, good_request_done, &w, QT_WAIT_MS);
  next = qt_stream(c, next_id);
  ASSERT_EQ(0, next->resets);
  ASSERT_UINT_GE(next->rx, 3); /* at least a HEADERS frame */
  ASSERT_EQ(1, ht->requests);
  ASSERT_STR_EQ("/next", ht->last_path);
  ASSERT_EQ(1, ht->dones);
  ASSERT_UINT_EQ(UVQ_H3_NO_ERROR, ht->last_done_code);
  ASSERT_EQ(0, ht->bodies);
  ASSERT_EQ(0, c->closed);
  ASSERT_OK(uvq_quic_conn_close(c->conn, UVQ_H3_NO_ERROR, NULL));
  qt_run_until_closed(&ht->t, c);
  /* Closing left nothing for the application either. */
  ASSERT_EQ(1, ht->requests);
  ASSERT_EQ(1, ht->dones);
}

TEST_IMPL(quic_h3_malformed_requests) {
  h3t_t ht;
  size_t i;

  start_server_side(&ht);
  for (i = 0; i < sizeof(malformed_cases) / sizeof(malformed_cases[0]); i++)
    run_malformed_case(&ht, &malformed_cases[i], 0);
  /* The count survives a section cut anywhere: varints, prefixes and
   * strings split across STREAM frames. */
  run_malformed_case(&ht, &malformed_cases[0], 1);
  run_malformed_case(&ht, &malformed_cases[4], 1);
  finish(&ht);
  return 0;
}
