/* bench-quic-idle: memory a uvq server holds per idle connection.
 *
 *   bench-quic-idle --mode h3|h3-shared|quic --connections N [--requests]
 *                   [--cert FILE --key FILE]
 *
 * Forks a uvq server (see quic-common.h) and opens connections to it that
 * then stay idle (no requests):
 *
 *   h3:        each connection is its own uvq_h3_t client, so the server
 *              holds a complete HTTP/3 connection (QUIC + TLS + nghttp3,
 *              control and QPACK streams both ways). Each client is a
 *              whole endpoint with its own socket (about 1.7 MB of client
 *              heap), which limits this mode to a few thousand;
 *   h3-shared: the same HTTP/3 server, but the clients are connections on
 *              --client-endpoints shared uvq_quic endpoints (a uvq_h3_t
 *              client owns its endpoint and cannot share one) that speak
 *              HTTP/3 themselves: control stream with an empty SETTINGS
 *              frame, QPACK encoder and decoder streams, and requests
 *              encoded with QPACK's static table only. For 10,000s;
 *   quic:      one client endpoint, uvq_quic_connect() with ALPN
 *              "uvq-bench": QUIC and TLS state only.
 *
 * --warmup connections (10) are made first, so that what the server
 * allocates once (TLS tables, buffers, hash tables' first growth) is not
 * charged to the measured ones; then --connections more, at most
 * --pending (64) handshakes at a time. After each batch is connected and
 * has been quiet for --settle-ms (500), the server reports its VmRSS and
 * malloc'ed bytes in use (mallinfo2). Per-connection figures are the
 * differences divided by --connections; likewise the client's own heap.
 *
 * --requests (h3 and h3-shared): then one GET / on every measured
 * connection, --request-window (32) in flight at once, each timed from the
 * request to the response's end; the report adds p50/p99/max and the
 * server's memory afterwards. Prints one JSON line.
 *
 * --port N: no server is forked; the connections go to an HTTP/3 server
 * already listening on 127.0.0.1:N (for instance uvq-h3-server under a
 * heap profiler), and the server figures are left out (0). */
#include "quic-common.h"

#include "uvq/h3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_CONNECTIONS 100000
#define MAX_CLIENT_ENDPOINTS 256

enum { MODE_QUIC = 0, MODE_H3 = 1, MODE_H3_SHARED = 2 };
enum { PHASE_WARMUP = 0, PHASE_MEASURED = 1, PHASE_REQUESTS = 2,
       PHASE_DONE = 3 };

struct bench;

/* h3-shared: one client connection and the writes it has in flight (the
 * payloads are the static byte strings below). */
struct shared_conn {
  struct bench* b;
  size_t index;
  uvq_quic_conn_t* conn;
  int64_t request_stream;   /* -1 until the request is sent */
  int status_ok;            /* the response began with :status 200 */
  uvq_quic_write_t w[4];    /* control, QPACK encoder, decoder, request */
};

struct bench {
  uv_loop_t* loop;
  int mode;
  struct sockaddr_in server;
  uvq_quic_config_t config;
  uvq_quic_endpoint_t* ep[MAX_CLIENT_ENDPOINTS]; /* quic, h3-shared */
  size_t nendpoints;
  uvq_h3_t** h3;             /* h3 mode: every client */
  struct shared_conn* shared; /* h3-shared mode: every connection */
  size_t total;              /* connections to make in all */
  size_t target;             /* ... in the current phase */
  size_t warmup;
  size_t pending_max;
  size_t started;
  size_t connected;
  size_t failed;
  size_t closed_h3;
  uint64_t settle_ms;
  uv_timer_t timer;
  int phase;
  qb_server_t* srv;
  qb_report_t r[3];            /* settled after warm-up, measured, requests */
  long client_rss_kb[3];       /* this process, at the same moments */
  long long client_heap[3];
  uint64_t phase_start_ns;
  double connect_s;
  /* --requests */
  int requests;
  size_t window;
  size_t req_next;             /* next connection to send on */
  size_t req_done;
  size_t req_failed;
  size_t req_bad_status;
  uint64_t* req_start_ns;      /* by connection */
  double* latency_ms;          /* finished requests, in finishing order */
  double requests_s;
  char error[256];
};

/* HTTP/3 by hand (RFC 9114, 6.2 and 7.2; RFC 9204, 4.5). The control
 * stream: type 0x00, then a SETTINGS frame with no settings (so the
 * server may not use a dynamic QPACK table towards us). */
static char h3_control[] = { 0x00, 0x04, 0x00 };
static char h3_qpack_encoder[] = { 0x02 };
static char h3_qpack_decoder[] = { 0x03 };
/* GET https://localhost/: a HEADERS frame, field section prefix 0 0, then
 * static-table lines :method GET (17), :scheme https (23), :path / (1),
 * and :authority (0) with the literal value "localhost". */
static char h3_request[] = {
  0x01, 0x10, 0x00, 0x00, (char) 0xd1, (char) 0xd7, (char) 0xc1,
  0x50, 0x09, 'l', 'o', 'c', 'a', 'l', 'h', 'o', 's', 't'
};
static uv_buf_t h3_bufs[4];

static void pump(struct bench* b);
static void requests_pump(struct bench* b);

static void stop_with(struct bench* b, const char* what) {
  if (b->error[0] == '\0')
    snprintf(b->error, sizeof(b->error), "%s", what);
  uv_stop(b->loop);
}

static void on_settled(uv_timer_t* t) {
  struct bench* b;

  b = t->data;
  b->client_rss_kb[b->phase] = qb_rss_kb();
  b->client_heap[b->phase] = qb_heap_bytes();
  if (b->srv != NULL && qb_server_report(b->srv, &b->r[b->phase]) != 0) {
    snprintf(b->error, sizeof(b->error), "no report from the server");
    b->phase = PHASE_DONE;
  } else if (b->phase == PHASE_WARMUP) {
    b->phase = PHASE_MEASURED;
    b->target = b->total;
    b->phase_start_ns = qb_now_ns();
    pump(b);
    return;
  } else if (b->phase == PHASE_MEASURED && b->requests) {
    b->phase = PHASE_REQUESTS;
    b->req_next = b->warmup;
    b->phase_start_ns = qb_now_ns();
    requests_pump(b);
    return;
  } else {
    b->phase = PHASE_DONE;
  }
  uv_stop(b->loop);
}

static void on_one_connected(struct bench* b) {
  b->connected++;
  if (b->phase == PHASE_MEASURED && b->connected == b->target)
    b->connect_s = (qb_now_ns() - b->phase_start_ns) / 1e9;
  pump(b);
}

static void on_one_failed(struct bench* b, const uvq_quic_error_t* error) {
  b->failed++;
  if (b->error[0] == '\0')
    snprintf(b->error, sizeof(b->error), "connection failed: kind %d code "
             "0x%llx", error ? error->kind : -1,
             error ? (unsigned long long) error->code : 0ull);
  uv_stop(b->loop);
}

/* A request on connection i ended (ok: a complete 200 response). */
static void request_finished(struct bench* b, size_t i, int ok) {
  uint64_t now;

  now = qb_now_ns();
  if (!ok)
    b->req_failed++;
  else
    b->latency_ms[b->req_done - b->req_failed] =
        (now - b->req_start_ns[i]) / 1e6;
  b->req_done++;
  if (b->req_done == b->total - b->warmup) {
    b->requests_s = (now - b->phase_start_ns) / 1e9;
    /* The server's memory once every connection has served a request. */
    uv_timer_start(&b->timer, on_settled, b->settle_ms, 0);
    return;
  }
  requests_pump(b);
}

static void h3_on_connected(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  struct bench* b;

  b = uvq_h3_get_data(h3);
  if (error != NULL)
    on_one_failed(b, error);
  else
    on_one_connected(b);
}

static void h3_on_closed(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  struct bench* b;

  b = uvq_h3_get_data(h3);
  if (b->phase < PHASE_DONE)
    on_one_failed(b, error);
}

/* h3 mode: a request's data is its connection's index shifted left by
 * one; the low bit marks a status other than 200. */
static void h3_on_response(uvq_h3_req_t* req, int status) {
  if (status != 200)
    uvq_h3_req_set_data(req,
                        (void*) ((uintptr_t) uvq_h3_req_get_data(req) | 1));
}

static void h3_on_done(uvq_h3_req_t* req, uint64_t app_error) {
  struct bench* b;
  uintptr_t v;

  b = uvq_h3_get_data(uvq_h3_req_h3(req));
  v = (uintptr_t) uvq_h3_req_get_data(req);
  if (v & 1)
    b->req_bad_status++;
  request_finished(b, v >> 1, app_error == UVQ_H3_NO_ERROR && !(v & 1));
}

/* The payloads are static; nothing to free. A write cancelled by the
 * connection's close at the end is no failure. */
static void on_write(uvq_quic_write_t* req, int status) {
  (void) req;
  (void) status;
}

static void quic_on_handshake_done(uvq_quic_conn_t* conn) {
  struct shared_conn* sc;
  struct bench* b;
  int64_t id;
  int i;

  b = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));
  if (b->mode == MODE_H3_SHARED) {
    /* The three unidirectional streams an HTTP/3 client opens. */
    sc = uvq_quic_conn_get_data(conn);
    for (i = 0; i < 3; i++) {
      if (uvq_quic_stream_open(conn, 0, &id) != 0 ||
          uvq_quic_stream_write(&sc->w[i], conn, id, &h3_bufs[i], 1, 0,
                                on_write) != 0) {
        stop_with(b, "cannot open the HTTP/3 control streams");
        return;
      }
    }
  }
  on_one_connected(b);
}

static void quic_on_closed(uvq_quic_conn_t* conn,
                           const uvq_quic_error_t* error) {
  struct bench* b;

  b = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));
  if (b->phase < PHASE_DONE)
    on_one_failed(b, error);
}

/* Reads a QUIC variable-length integer (RFC 9000, 16); 0 if short. */
static size_t read_varint(const uint8_t* p, size_t len, uint64_t* v) {
  size_t n;
  size_t i;

  if (len == 0)
    return 0;
  n = (size_t) 1 << (p[0] >> 6);
  if (len < n)
    return 0;
  *v = p[0] & 0x3f;
  for (i = 1; i < n; i++)
    *v = (*v << 8) | p[i];
  return n;
}

static void quic_on_stream_data(uvq_quic_conn_t* conn,
                                int64_t stream_id,
                                const uint8_t* data,
                                size_t len,
                                int fin) {
  struct shared_conn* sc;
  uint64_t frame_len;
  size_t n;

  uvq_quic_stream_consume(conn, stream_id, len);
  sc = uvq_quic_conn_get_data(conn);
  if (sc == NULL || stream_id != sc->request_stream)
    return;
  /* The response's HEADERS frame comes first: type 0x01, its length,
   * the field section prefix 0 0 (no dynamic table: our SETTINGS allowed
   * none), then :status 200, which is static-table entry 25 (0xd9). The
   * response fits in one packet, so the first call has it whole. */
  if (len > 0 && !sc->status_ok && data[0] == 0x01 &&
      (n = read_varint(data + 1, len - 1, &frame_len)) != 0 &&
      len >= 1 + n + 3 && data[1 + n] == 0 && data[2 + n] == 0 &&
      data[3 + n] == 0xd9)
    sc->status_ok = 1;
  if (fin) {
    if (!sc->status_ok)
      sc->b->req_bad_status++;
    sc->request_stream = -1;
    request_finished(sc->b, sc->index, sc->status_ok);
  }
}

static void quic_on_stream_reset(uvq_quic_conn_t* conn, int64_t stream_id,
                                 uint64_t app_error) {
  struct shared_conn* sc;

  (void) app_error;
  sc = uvq_quic_conn_get_data(conn);
  if (sc != NULL && stream_id == sc->request_stream) {
    sc->request_stream = -1;
    request_finished(sc->b, sc->index, 0);
  }
}

/* Sends the request on connection i; 0 or a UV_E* code. */
static int request_send(struct bench* b, size_t i) {
  struct shared_conn* sc;
  uvq_h3_req_t* req;
  int64_t id;
  int err;

  b->req_start_ns[i] = qb_now_ns();
  if (b->mode == MODE_H3)
    return uvq_h3_request(b->h3[i], "GET", NULL, NULL, "/", NULL, 0, NULL,
                          (void*) ((uintptr_t) i << 1), &req);
  sc = &b->shared[i];
  err = uvq_quic_stream_open(sc->conn, 1, &id);
  if (err == 0)
    err = uvq_quic_stream_write(&sc->w[3], sc->conn, id, &h3_bufs[3], 1, 1,
                                on_write);
  if (err == 0)
    sc->request_stream = id;
  return err;
}

static void requests_pump(struct bench* b) {
  int err;

  while (b->req_next < b->total &&
         b->req_next - b->warmup - b->req_done < b->window) {
    err = request_send(b, b->req_next);
    if (err != 0) {
      snprintf(b->error, sizeof(b->error), "request #%zu: %s", b->req_next,
               uv_strerror(err));
      uv_stop(b->loop);
      return;
    }
    b->req_next++;
  }
}

/* Starts connections up to the phase's target, pending_max handshakes at
 * a time; when all are up, waits settle_ms and has the server report. */
static void pump(struct bench* b) {
  uvq_h3_callbacks_t hcb;
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* conn;
  struct shared_conn* sc;
  uvq_h3_t* h3;
  size_t i;
  int err;

  while (b->started < b->target &&
         b->started - b->connected < b->pending_max) {
    i = b->started;
    if (b->mode == MODE_H3) {
      memset(&hcb, 0, sizeof(hcb));
      hcb.connected = h3_on_connected;
      hcb.closed = h3_on_closed;
      hcb.response = h3_on_response;
      hcb.done = h3_on_done;
      err = uvq_h3_client_new(b->loop, &b->config, NULL, &hcb, b, &h3);
      if (err == 0) {
        b->h3[i] = h3;
        err = uvq_h3_connect(h3, (struct sockaddr*) &b->server, "localhost");
      }
    } else {
      memset(&opts, 0, sizeof(opts));
      opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
      opts.server_name = "localhost";
      sc = NULL;
      if (b->mode == MODE_H3_SHARED) {
        sc = &b->shared[i];
        sc->b = b;
        sc->index = i;
        sc->request_stream = -1;
      }
      err = uvq_quic_connect(b->ep[i % b->nendpoints],
                             (struct sockaddr*) &b->server, &opts, sc, &conn);
      if (err == 0 && sc != NULL)
        sc->conn = conn;
    }
    if (err != 0) {
      snprintf(b->error, sizeof(b->error), "connect #%zu: %s", b->started,
               uv_strerror(err));
      b->failed++;
      uv_stop(b->loop);
      return;
    }
    b->started++;
  }
  if (b->connected == b->target && !uv_is_active((uv_handle_t*) &b->timer))
    uv_timer_start(&b->timer, on_settled, b->settle_ms, 0);
}


static void on_h3_closed_cb(uvq_h3_t* h3) {
  struct bench* b;

  b = uvq_h3_get_data(h3);
  b->closed_h3++;
}

static void on_ep_closed(uvq_quic_endpoint_t* ep) {
  (void) ep;
}

static void usage(void) {
  fprintf(stderr,
"usage: bench-quic-idle [--mode h3|h3-shared|quic] [--connections N]\n"
"           [--warmup N] [--pending N] [--client-endpoints N]\n"
"           [--requests] [--request-window N] [--idle-timeout-ms N]\n"
"           [--settle-ms N] [--client-cpu N] [--server-cpu N]\n"
"           [--cert FILE --key FILE] [--port N]\n"
"Opens N idle connections to a forked uvq server and prints the server's\n"
"VmRSS and heap growth per connection as one JSON line; --requests then\n"
"sends one GET on every connection and adds its latency.\n");
}

int main(int argc, char** argv) {
  uvq_quic_callbacks_t qcb;
  qb_server_opts_t sopts;
  qb_server_t server;
  qb_certs_t certs;
  struct bench b;
  struct sockaddr_in any;
  struct rlimit rl;
  const char* cert;
  const char* key;
  const char* mode_name;
  size_t warmup;
  size_t measured;
  size_t nlat;
  size_t i;
  uint64_t idle_timeout_ms;
  double rss_per;
  double heap_per;
  double client_heap_per;
  double client_rss_per;
  int client_cpu;
  int server_cpu;
  int external_port;
  int status;
  int err;
  int ai;

  memset(&b, 0, sizeof(b));
  memset(&certs, 0, sizeof(certs));
  b.mode = MODE_H3;
  b.settle_ms = 500;
  b.pending_max = 64;
  b.nendpoints = 16;
  b.window = 32;
  warmup = 10;
  measured = 1000;
  idle_timeout_ms = 600000;
  client_cpu = 0;
  server_cpu = 1;
  cert = NULL;
  key = NULL;
  external_port = -1;
  for (ai = 1; ai < argc; ai++) {
    const char* a = argv[ai];
    const char* v;
    if (strcmp(a, "--requests") == 0) {
      b.requests = 1;
      continue;
    }
    v = qb_option_value(argc, argv, &ai, usage);
    if (strcmp(a, "--mode") == 0) {
      b.mode = strcmp(v, "h3-shared") == 0 ? MODE_H3_SHARED
                                            : qb_parse_mode(v);
    } else if (strcmp(a, "--connections") == 0) {
      measured = qb_parse_uint(a, v, MAX_CONNECTIONS);
    } else if (strcmp(a, "--warmup") == 0) {
      warmup = qb_parse_uint(a, v, 1000);
    } else if (strcmp(a, "--pending") == 0) {
      b.pending_max = qb_parse_uint(a, v, 10000);
    } else if (strcmp(a, "--client-endpoints") == 0) {
      b.nendpoints = qb_parse_uint(a, v, MAX_CLIENT_ENDPOINTS);
    } else if (strcmp(a, "--request-window") == 0) {
      b.window = qb_parse_uint(a, v, MAX_CONNECTIONS);
    } else if (strcmp(a, "--idle-timeout-ms") == 0) {
      idle_timeout_ms = qb_parse_uint(a, v, 3600000);
    } else if (strcmp(a, "--settle-ms") == 0) {
      b.settle_ms = qb_parse_uint(a, v, 60000);
    } else if (strcmp(a, "--client-cpu") == 0) {
      client_cpu = (int) qb_parse_uint(a, v, 1023);
    } else if (strcmp(a, "--server-cpu") == 0) {
      server_cpu = (int) qb_parse_uint(a, v, 1023);
    } else if (strcmp(a, "--port") == 0) {
      external_port = (int) qb_parse_uint(a, v, 65535);
    } else if (strcmp(a, "--cert") == 0) {
      cert = v;
    } else if (strcmp(a, "--key") == 0) {
      key = v;
    } else {
      usage();
      return 2;
    }
  }
  if ((cert == NULL) != (key == NULL) || measured == 0 ||
      b.pending_max == 0 || b.nendpoints == 0 || b.window == 0 ||
      (b.requests && b.mode == MODE_QUIC) ||
      (external_port >= 0 && b.mode == MODE_QUIC)) {
    usage();
    return 2;
  }
  mode_name = b.mode == MODE_H3 ? "h3"
              : b.mode == MODE_H3_SHARED ? "h3-shared" : "quic";
  /* h3 mode: one UDP socket per client; the kernel's hard limit is raised
   * too when the process may (root). */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
      rl.rlim_cur < warmup + measured + 64) {
    rl.rlim_cur = warmup + measured + 64;
    if (rl.rlim_max < rl.rlim_cur)
      rl.rlim_max = rl.rlim_cur;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && b.mode == MODE_H3)
      fprintf(stderr, "warning: cannot raise the open file limit to %llu\n",
              (unsigned long long) rl.rlim_cur);
  }
  if (cert == NULL && external_port < 0) {
    if (qb_certs_make(&certs) != 0)
      return 1;
    cert = certs.cert;
    key = certs.key;
  }

  memset(&sopts, 0, sizeof(sopts));
  sopts.kind = b.mode == MODE_QUIC ? QB_SERVER_QUIC : QB_SERVER_H3;
  sopts.cert = cert;
  sopts.key = key;
  sopts.cpu = server_cpu;
  sopts.response_bytes = 1;
  /* uvq's default is 10,000. */
  sopts.max_connections = (unsigned int) (warmup + measured + 16);
  /* Opening 50,000 takes a minute or more: no connection may time out
   * while the others are made. */
  sopts.idle_timeout_ms = idle_timeout_ms;
  memset(&server, 0, sizeof(server));
  if (external_port >= 0) {
    server.port = external_port;
  } else {
    if (qb_server_start(&server, &sopts) != 0) {
      qb_certs_cleanup(&certs);
      return 1;
    }
    b.srv = &server;
  }
  if (qb_pin(client_cpu) != 0)
    return 1;

  b.loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", server.port, &b.server);
  uvq_quic_config_default(&b.config);
  b.config.insecure_skip_verify = 1;
  b.config.alpn = b.mode == MODE_QUIC ? QB_ALPN_QUIC : "h3";
  b.config.idle_timeout_ms = idle_timeout_ms;
  b.warmup = warmup;
  b.total = warmup + measured;
  b.h3 = calloc(b.total, sizeof(*b.h3));
  b.shared = calloc(b.total, sizeof(*b.shared));
  b.req_start_ns = calloc(b.total, sizeof(*b.req_start_ns));
  b.latency_ms = calloc(measured, sizeof(*b.latency_ms));
  if (b.h3 == NULL || b.shared == NULL || b.req_start_ns == NULL ||
      b.latency_ms == NULL) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  h3_bufs[0] = uv_buf_init(h3_control, sizeof(h3_control));
  h3_bufs[1] = uv_buf_init(h3_qpack_encoder, sizeof(h3_qpack_encoder));
  h3_bufs[2] = uv_buf_init(h3_qpack_decoder, sizeof(h3_qpack_decoder));
  h3_bufs[3] = uv_buf_init(h3_request, sizeof(h3_request));
  uv_timer_init(b.loop, &b.timer);
  b.timer.data = &b;
  if (b.mode == MODE_QUIC)
    b.nendpoints = 1;
  if (b.mode != MODE_H3) {
    memset(&qcb, 0, sizeof(qcb));
    qcb.handshake_done = quic_on_handshake_done;
    qcb.closed = quic_on_closed;
    qcb.stream_data = quic_on_stream_data;
    qcb.stream_reset = quic_on_stream_reset;
    uv_ip4_addr("127.0.0.1", 0, &any);
    for (i = 0; i < b.nendpoints; i++) {
      err = uvq_quic_endpoint_new(b.loop, &b.config, &qcb, &b, &b.ep[i]);
      if (err == 0)
        err = uvq_quic_endpoint_bind(b.ep[i], (struct sockaddr*) &any);
      if (err != 0) {
        fprintf(stderr, "client endpoint: %s\n", uv_strerror(err));
        if (b.srv != NULL)
          qb_server_stop(&server);
        qb_certs_cleanup(&certs);
        return 1;
      }
    }
  } else {
    b.nendpoints = 0;
  }

  /* Phase 0 reports the baseline; with --warmup 0 it is the idle server. */
  b.target = warmup;
  if (warmup == 0)
    uv_timer_start(&b.timer, on_settled, b.settle_ms, 0);
  else
    pump(&b);
  uv_run(b.loop, UV_RUN_DEFAULT);
  if (b.phase != PHASE_DONE && b.failed == 0 && b.error[0] == '\0')
    snprintf(b.error, sizeof(b.error), "stopped before the measurement");
  measured = b.connected > warmup ? b.connected - warmup : 0;

  /* Close everything, then stop the server. */
  b.phase = PHASE_DONE;
  uv_timer_stop(&b.timer);
  uv_close((uv_handle_t*) &b.timer, NULL);
  if (b.mode == MODE_H3) {
    for (i = 0; i < b.total; i++)
      if (b.h3[i] != NULL)
        uvq_h3_close(b.h3[i], on_h3_closed_cb);
  } else {
    for (i = 0; i < b.nendpoints; i++)
      uvq_quic_endpoint_close(b.ep[i], on_ep_closed);
  }
  uv_run(b.loop, UV_RUN_DEFAULT);
  status = b.srv != NULL ? qb_server_stop(&server) : 0;
  uv_loop_close(b.loop);
  qb_certs_cleanup(&certs);

  rss_per = measured ? (b.r[1].rss_kb - b.r[0].rss_kb) * 1024.0 / measured
                     : 0.0;
  heap_per = measured ? (double) (b.r[1].heap_bytes - b.r[0].heap_bytes) /
                            measured
                      : 0.0;
  /* The client's side: meaningful where connections share endpoints
   * (quic, h3-shared); in h3 mode each client is a whole endpoint. */
  client_heap_per =
      measured ? (double) (b.client_heap[1] - b.client_heap[0]) / measured
               : 0.0;
  client_rss_per =
      measured ? (b.client_rss_kb[1] - b.client_rss_kb[0]) * 1024.0 / measured
               : 0.0;
  printf("{\"program\": \"bench-quic-idle\", \"mode\": \"%s\", "
         "\"version\": \"%s\", \"connections\": %zu, \"warmup\": %zu, "
         "\"client_endpoints\": %zu, \"pending\": %zu, "
         "\"failed\": %zu, \"connect_seconds\": %.3f, "
         "\"server_rss_kb_before\": %ld, \"server_rss_kb_after\": %ld, "
         "\"server_heap_before\": %lld, \"server_heap_after\": %lld, "
         "\"server_accepted\": %llu, "
         "\"server_cpu_connect_s\": %.3f, "
         "\"rss_bytes_per_conn\": %.0f, \"heap_bytes_per_conn\": %.0f, "
         "\"client_heap_bytes_per_conn\": %.0f, "
         "\"client_rss_bytes_per_conn\": %.0f, ",
         mode_name, uvq_version_string(), measured, warmup, b.nendpoints,
         b.pending_max, b.failed, b.connect_s, b.r[0].rss_kb, b.r[1].rss_kb,
         b.r[0].heap_bytes, b.r[1].heap_bytes,
         b.r[1].accepted - b.r[0].accepted,
         b.r[1].cpu_user_s + b.r[1].cpu_sys_s - b.r[0].cpu_user_s -
             b.r[0].cpu_sys_s,
         rss_per, heap_per, client_heap_per, client_rss_per);
  if (b.requests) {
    nlat = b.req_done - b.req_failed;
    qb_sort_doubles(b.latency_ms, nlat);
    printf("\"requests\": %zu, \"requests_failed\": %zu, "
           "\"requests_bad_status\": %zu, \"request_window\": %zu, "
           "\"requests_seconds\": %.3f, \"request_p50_ms\": %.3f, "
           "\"request_p99_ms\": %.3f, \"request_max_ms\": %.3f, "
           "\"server_requests\": %llu, "
           "\"server_cpu_requests_s\": %.3f, "
           "\"server_rss_kb_after_requests\": %ld, "
           "\"server_heap_after_requests\": %lld, ",
           b.req_done, b.req_failed, b.req_bad_status, b.window,
           b.requests_s, qb_quantile(b.latency_ms, nlat, 0.5),
           qb_quantile(b.latency_ms, nlat, 0.99),
           nlat ? b.latency_ms[nlat - 1] : 0.0,
           b.r[2].requests - b.r[1].requests,
           b.r[2].cpu_user_s + b.r[2].cpu_sys_s - b.r[1].cpu_user_s -
               b.r[1].cpu_sys_s,
           b.r[2].rss_kb, b.r[2].heap_bytes);
  }
  printf("\"server_exit\": %d, \"error\": ", status);
  if (b.error[0] != '\0')
    printf("\"%s\"}\n", b.error);
  else
    printf("null}\n");
  free(b.h3);
  free(b.shared);
  free(b.req_start_ns);
  free(b.latency_ms);
  return measured > 0 && b.failed == 0 && b.error[0] == '\0' &&
                 status == 0 &&
                 (!b.requests || (b.req_done == measured &&
                                  b.req_failed == 0))
             ? 0
             : 1;
}
