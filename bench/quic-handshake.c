/* bench-quic-handshake: handshakes per second with uvq.
 *
 *   bench-quic-handshake --mode h3 --duration-ms 3000 --client-cpu 0 \
 *                        --server-cpu 1 [--cert FILE --key FILE]
 *
 * Forks a uvq server (see quic-common.h), then makes new connections one
 * after the other for --duration-ms: each does a full handshake (no
 * resumption, no 0-RTT), one request with a --response-bytes answer, and
 * closes (CONNECTION_CLOSE) before the next one starts.
 *
 *   h3:   each connection is a new uvq_h3_t client (its own endpoint, UDP
 *         socket and TLS context, as an application that fetches one URL
 *         would make it), GET / over HTTP/3, then uvq_h3_close();
 *   quic: one client endpoint for all connections, uvq_quic_connect() with
 *         ALPN "uvq-bench", one bidirectional stream, then
 *         uvq_quic_conn_close(): the cost of the QUIC handshake alone.
 *
 * The client does not verify the certificate (insecure_skip_verify), as
 * ngtcp2's example client does not either. Prints one JSON line: count,
 * rate, and CPU per handshake on each side. Exit status 0 when at least one
 * connection completed and none failed. */
#include "quic-common.h"

#include "uvq/h3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct bench {
  uv_loop_t* loop;
  int mode_h3;
  uint64_t deadline_ns;
  struct sockaddr_in server;
  uvq_quic_config_t config;
  size_t response_bytes;

  /* h3 mode: the current client. */
  uvq_h3_t* h3;
  int h3_ok;             /* its request completed */
  /* quic mode: the shared endpoint and the current connection's state. */
  uvq_quic_endpoint_t* ep;
  uint64_t got;          /* response bytes on the current connection */
  int quic_ok;
  uvq_quic_write_t write;
  uv_buf_t request;

  uint64_t started_ns;
  uint64_t connections;  /* completed: handshake, request, answer, close */
  uint64_t failed;
  uint64_t handshake_ns_sum;
  uint64_t conn_start_ns;
  char error[256];
  /* Closing is deferred to the next loop iteration, out of the library's
   * callbacks: the connection (h3 mode) or endpoint to close. */
  uv_idle_t defer;
  uvq_quic_conn_t* close_conn;
  int close_h3;
};

static void next(struct bench* b);
static void h3_on_closed_cb(uvq_h3_t* h3);

static void on_defer(uv_idle_t* handle) {
  struct bench* b;
  uvq_quic_conn_t* conn;

  b = handle->data;
  uv_idle_stop(handle);
  if (b->close_h3 && b->h3 != NULL) {
    b->close_h3 = 0;
    uvq_h3_close(b->h3, h3_on_closed_cb);
  }
  if (b->close_conn != NULL) {
    conn = b->close_conn;
    b->close_conn = NULL;
    uvq_quic_conn_close(conn, 0, NULL);
  }
}

/* ---- h3 mode -------------------------------------------------------------- */

static void h3_on_closed_cb(uvq_h3_t* h3) {
  struct bench* b;

  b = uvq_h3_get_data(h3);
  b->h3 = NULL;
  if (b->h3_ok)
    b->connections++;
  else
    b->failed++;
  next(b);
}

static void h3_on_connected(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  struct bench* b;
  int err;

  b = uvq_h3_get_data(h3);
  if (error != NULL) {
    snprintf(b->error, sizeof(b->error), "connect failed: kind %d code 0x%llx",
             error->kind, (unsigned long long) error->code);
    uvq_h3_close(h3, h3_on_closed_cb);
    return;
  }
  b->handshake_ns_sum += qb_now_ns() - b->conn_start_ns;
  err = uvq_h3_request(h3, "GET", "https", "localhost", "/", NULL, 0, NULL,
                       NULL, NULL);
  if (err != 0) {
    snprintf(b->error, sizeof(b->error), "request: %s", uv_strerror(err));
    uvq_h3_close(h3, h3_on_closed_cb);
  }
}

static void h3_on_done(uvq_h3_req_t* req, uint64_t app_error) {
  struct bench* b;
  uvq_h3_t* h3;

  h3 = uvq_h3_req_h3(req);
  b = uvq_h3_get_data(h3);
  b->h3_ok = (app_error == 0 || app_error == UVQ_H3_NO_ERROR) &&
             uvq_h3_req_bytes_received(req) == b->response_bytes;
  if (!b->h3_ok)
    snprintf(b->error, sizeof(b->error), "request ended with 0x%llx after "
             "%llu bytes", (unsigned long long) app_error,
             (unsigned long long) uvq_h3_req_bytes_received(req));
  /* Not from inside the request's own callback: close at once (it sends
   * CONNECTION_CLOSE) on the next loop iteration; the close callback
   * starts the next connection. */
  b->close_h3 = 1;
  uv_idle_start(&b->defer, on_defer);
}

static void h3_on_closed(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  (void) h3;
  (void) error;
}

static int h3_start(struct bench* b) {
  uvq_h3_callbacks_t cb;
  int err;

  memset(&cb, 0, sizeof(cb));
  cb.connected = h3_on_connected;
  cb.closed = h3_on_closed;
  cb.done = h3_on_done;
  b->h3_ok = 0;
  err = uvq_h3_client_new(b->loop, &b->config, NULL, &cb, b, &b->h3);
  if (err == 0)
    err = uvq_h3_connect(b->h3, (struct sockaddr*) &b->server, "localhost");
  if (err != 0) {
    snprintf(b->error, sizeof(b->error), "client: %s", uv_strerror(err));
    if (b->h3 != NULL)
      uvq_h3_close(b->h3, h3_on_closed_cb);
    return err;
  }
  return 0;
}

/* ---- quic mode ------------------------------------------------------------ */

static void quic_on_write(uvq_quic_write_t* req, int status) {
  (void) req;
  (void) status;
}

static void quic_on_handshake_done(uvq_quic_conn_t* conn) {
  struct bench* b;
  int64_t id;
  int err;

  b = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));
  b->handshake_ns_sum += qb_now_ns() - b->conn_start_ns;
  err = uvq_quic_stream_open(conn, 1, &id);
  if (err == 0)
    err = uvq_quic_stream_write(&b->write, conn, id, &b->request, 1, 1,
                                quic_on_write);
  if (err != 0) {
    snprintf(b->error, sizeof(b->error), "stream: %s", uv_strerror(err));
    uvq_quic_conn_close(conn, 1, "stream failed");
  }
}

static void quic_on_stream_data(uvq_quic_conn_t* conn,
                                int64_t stream_id,
                                const uint8_t* data,
                                size_t len,
                                int fin) {
  struct bench* b;

  (void) data;
  b = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));
  uvq_quic_stream_consume(conn, stream_id, len);
  b->got += len;
  if (fin) {
    b->quic_ok = b->got == b->response_bytes;
    if (!b->quic_ok)
      snprintf(b->error, sizeof(b->error), "short answer: %llu bytes",
               (unsigned long long) b->got);
    b->close_conn = conn;
    uv_idle_start(&b->defer, on_defer);
  }
}

static void quic_on_closed(uvq_quic_conn_t* conn,
                           const uvq_quic_error_t* error) {
  struct bench* b;

  b = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));
  if (b->quic_ok) {
    b->connections++;
  } else {
    b->failed++;
    if (b->error[0] == '\0')
      snprintf(b->error, sizeof(b->error), "closed: kind %d code 0x%llx",
               error->kind, (unsigned long long) error->code);
  }
  next(b);
}

static int quic_start(struct bench* b) {
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* conn;
  int err;

  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONFIG_VERSION;
  opts.server_name = "localhost";
  b->got = 0;
  b->quic_ok = 0;
  err = uvq_quic_connect(b->ep, (struct sockaddr*) &b->server, &opts, NULL,
                         &conn);
  if (err != 0)
    snprintf(b->error, sizeof(b->error), "connect: %s", uv_strerror(err));
  return err;
}

static void quic_on_ep_closed(uvq_quic_endpoint_t* ep) {
  (void) ep;
}

/* ---- the loop ------------------------------------------------------------- */

/* Starts the next connection, or ends the run. Called from close
 * callbacks, so the previous connection is gone. */
static void next(struct bench* b) {
  int err;

  if (qb_now_ns() >= b->deadline_ns || b->failed > 0) {
    if (!uv_is_closing((uv_handle_t*) &b->defer))
      uv_close((uv_handle_t*) &b->defer, NULL);
    if (!b->mode_h3 && b->ep != NULL) {
      uvq_quic_endpoint_close(b->ep, quic_on_ep_closed);
      b->ep = NULL;
    }
    return;
  }
  b->conn_start_ns = qb_now_ns();
  err = b->mode_h3 ? h3_start(b) : quic_start(b);
  if (err != 0) {
    b->failed++;
    if (!uv_is_closing((uv_handle_t*) &b->defer))
      uv_close((uv_handle_t*) &b->defer, NULL);
    if (!b->mode_h3 && b->ep != NULL) {
      uvq_quic_endpoint_close(b->ep, quic_on_ep_closed);
      b->ep = NULL;
    }
  }
}

static void usage(void) {
  fprintf(stderr,
"usage: bench-quic-handshake [--mode h3|quic] [--duration-ms N]\n"
"           [--client-cpu N] [--server-cpu N] [--response-bytes N]\n"
"           [--cert FILE --key FILE]\n"
"Sequential new connections (handshake, one request, close) to a forked\n"
"uvq server for --duration-ms (3000); prints one JSON line.\n");
}

int main(int argc, char** argv) {
  qb_server_opts_t sopts;
  qb_server_t server;
  qb_report_t r0;
  qb_report_t r1;
  qb_certs_t certs;
  struct bench b;
  uvq_quic_callbacks_t qcb;
  struct sockaddr_in any;
  const char* cert;
  const char* key;
  uint64_t duration_ms;
  double cpu0;
  double cpu1;
  double seconds;
  int client_cpu;
  int server_cpu;
  int status;
  int err;
  int i;

  memset(&b, 0, sizeof(b));
  memset(&certs, 0, sizeof(certs));
  b.mode_h3 = 1;
  duration_ms = 3000;
  client_cpu = 0;
  server_cpu = 1;
  b.response_bytes = 100;
  cert = NULL;
  key = NULL;
  for (i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage();
      return 0;
    }
    if (v == NULL) {
      usage();
      return 2;
    }
    i++;
    if (strcmp(a, "--mode") == 0) {
      b.mode_h3 = qb_parse_mode(v);
    } else if (strcmp(a, "--duration-ms") == 0) {
      duration_ms = qb_parse_uint(a, v, 600000);
    } else if (strcmp(a, "--client-cpu") == 0) {
      client_cpu = (int) qb_parse_uint(a, v, 1023);
    } else if (strcmp(a, "--server-cpu") == 0) {
      server_cpu = (int) qb_parse_uint(a, v, 1023);
    } else if (strcmp(a, "--response-bytes") == 0) {
      b.response_bytes = qb_parse_uint(a, v, 1 << 20);
    } else if (strcmp(a, "--cert") == 0) {
      cert = v;
    } else if (strcmp(a, "--key") == 0) {
      key = v;
    } else {
      usage();
      return 2;
    }
  }
  if ((cert == NULL) != (key == NULL)) {
    usage();
    return 2;
  }
  if (cert == NULL) {
    if (qb_certs_make(&certs) != 0)
      return 1;
    cert = certs.cert;
    key = certs.key;
  }

  memset(&sopts, 0, sizeof(sopts));
  sopts.kind = b.mode_h3 ? QB_SERVER_H3 : QB_SERVER_QUIC;
  sopts.cert = cert;
  sopts.key = key;
  sopts.cpu = server_cpu;
  sopts.response_bytes = b.response_bytes;
  if (qb_server_start(&server, &sopts) != 0) {
    qb_certs_cleanup(&certs);
    return 1;
  }
  if (qb_pin(client_cpu) != 0)
    return 1;

  b.loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", server.port, &b.server);
  uvq_quic_config_default(&b.config);
  b.config.insecure_skip_verify = 1;
  b.config.alpn = b.mode_h3 ? "h3" : QB_ALPN_QUIC;
  b.request = uv_buf_init("GET /\n", 6);
  uv_idle_init(b.loop, &b.defer);
  b.defer.data = &b;
  if (!b.mode_h3) {
    memset(&qcb, 0, sizeof(qcb));
    qcb.handshake_done = quic_on_handshake_done;
    qcb.stream_data = quic_on_stream_data;
    qcb.closed = quic_on_closed;
    err = uvq_quic_endpoint_new(b.loop, &b.config, &qcb, &b, &b.ep);
    uv_ip4_addr("127.0.0.1", 0, &any);
    if (err == 0)
      err = uvq_quic_endpoint_bind(b.ep, (struct sockaddr*) &any);
    if (err != 0) {
      fprintf(stderr, "client endpoint: %s\n", uv_strerror(err));
      qb_server_stop(&server);
      qb_certs_cleanup(&certs);
      return 1;
    }
  }

  if (qb_server_report(&server, &r0) != 0) {
    fprintf(stderr, "no report from the server\n");
    return 1;
  }
  cpu0 = qb_cpu_self();
  b.started_ns = qb_now_ns();
  b.deadline_ns = b.started_ns + duration_ms * 1000000u;
  next(&b);
  uv_run(b.loop, UV_RUN_DEFAULT);
  seconds = (qb_now_ns() - b.started_ns) / 1e9;
  cpu1 = qb_cpu_self();
  if (qb_server_report(&server, &r1) != 0)
    memset(&r1, 0, sizeof(r1));
  status = qb_server_stop(&server);
  uv_loop_close(b.loop);
  qb_certs_cleanup(&certs);

  printf("{\"program\": \"bench-quic-handshake\", \"mode\": \"%s\", "
         "\"version\": \"%s\", \"connections\": %llu, \"failed\": %llu, "
         "\"seconds\": %.6f, \"handshakes_per_s\": %.1f, "
         "\"mean_handshake_ms\": %.3f, \"client_cpu_s\": %.6f, "
         "\"server_cpu_s\": %.6f, \"client_cpu_ms_per_conn\": %.4f, "
         "\"server_cpu_ms_per_conn\": %.4f, \"server_accepted\": %llu, "
         "\"server_requests\": %llu, \"response_bytes\": %zu, "
         "\"server_exit\": %d, \"error\": ",
         b.mode_h3 ? "h3" : "quic", uvq_version_string(),
         (unsigned long long) b.connections, (unsigned long long) b.failed,
         seconds, seconds > 0 ? b.connections / seconds : 0.0,
         b.connections ? b.handshake_ns_sum / 1e6 / b.connections : 0.0,
         cpu1 - cpu0,
         (r1.cpu_user_s + r1.cpu_sys_s) - (r0.cpu_user_s + r0.cpu_sys_s),
         b.connections ? (cpu1 - cpu0) * 1e3 / b.connections : 0.0,
         b.connections ? ((r1.cpu_user_s + r1.cpu_sys_s) -
                          (r0.cpu_user_s + r0.cpu_sys_s)) * 1e3 /
                             b.connections
                       : 0.0,
         r1.accepted - r0.accepted, r1.requests - r0.requests,
         b.response_bytes, status);
  if (b.error[0] != '\0')
    printf("\"%s\"}\n", b.error);
  else
    printf("null}\n");
  return b.connections > 0 && b.failed == 0 && status == 0 ? 0 : 1;
}
