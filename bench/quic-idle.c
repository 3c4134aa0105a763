/* bench-quic-idle: memory a uvq server holds per idle connection.
 *
 *   bench-quic-idle --mode h3 --connections 1000 [--cert FILE --key FILE]
 *
 * Forks a uvq server (see quic-common.h) and opens connections to it that
 * then stay idle (no requests):
 *
 *   h3:   each connection is its own uvq_h3_t client, so the server holds a
 *         complete HTTP/3 connection (QUIC + TLS + nghttp3, control and
 *         QPACK streams both ways);
 *   quic: one client endpoint, uvq_quic_connect() with ALPN "uvq-bench":
 *         QUIC and TLS state only.
 *
 * --warmup connections (10) are made first, so that what the server
 * allocates once (TLS tables, buffers, hash tables' first growth) is not
 * charged to the measured ones; then --connections more, at most 64
 * handshakes at a time. After each batch is connected and has been quiet
 * for --settle-ms (500), the server reports its VmRSS and malloc'ed bytes
 * in use (mallinfo2). Per-connection figures are the differences divided
 * by --connections; likewise the client's own heap (quic mode: one
 * client endpoint, so a per-connection figure). Prints one JSON line. */
#include "quic-common.h"

#include "uvq/h3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_PENDING 64

struct bench {
  uv_loop_t* loop;
  int mode_h3;
  struct sockaddr_in server;
  uvq_quic_config_t config;
  uvq_quic_endpoint_t* ep;   /* quic mode */
  uvq_h3_t** h3;             /* h3 mode: every client */
  size_t total;              /* connections to make in all */
  size_t target;             /* ... in the current phase */
  size_t started;
  size_t connected;
  size_t failed;
  size_t closed_h3;
  uint64_t settle_ms;
  uv_timer_t timer;
  int phase;                 /* 0: warm-up, 1: measured, 2: done */
  qb_server_t* srv;
  qb_report_t r[2];
  long client_rss_kb[2];       /* this process, when each phase settled */
  long long client_heap[2];
  uint64_t phase_start_ns;
  double connect_s;
  char error[256];
};

static void pump(struct bench* b);

static void on_settled(uv_timer_t* t) {
  struct bench* b;

  b = t->data;
  b->client_rss_kb[b->phase] = qb_rss_kb();
  b->client_heap[b->phase] = qb_heap_bytes();
  if (qb_server_report(b->srv, &b->r[b->phase]) != 0) {
    snprintf(b->error, sizeof(b->error), "no report from the server");
    b->phase = 2;
  } else if (b->phase == 0) {
    b->phase = 1;
    b->target = b->total;
    b->phase_start_ns = qb_now_ns();
    pump(b);
    return;
  } else {
    b->phase = 2;
  }
  uv_stop(b->loop);
}

static void on_one_connected(struct bench* b) {
  b->connected++;
  if (b->phase == 1 && b->connected == b->target)
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
  if (b->phase < 2)
    on_one_failed(b, error);
}

static void quic_on_handshake_done(uvq_quic_conn_t* conn) {
  on_one_connected(uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn)));
}

static void quic_on_closed(uvq_quic_conn_t* conn,
                           const uvq_quic_error_t* error) {
  struct bench* b;

  b = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));
  if (b->phase < 2)
    on_one_failed(b, error);
}

static void quic_on_stream_data(uvq_quic_conn_t* conn,
                                int64_t stream_id,
                                const uint8_t* data,
                                size_t len,
                                int fin) {
  (void) data;
  (void) fin;
  uvq_quic_stream_consume(conn, stream_id, len);
}

/* Starts connections up to the phase's target, MAX_PENDING handshakes at
 * a time; when all are up, waits settle_ms and has the server report. */
static void pump(struct bench* b) {
  uvq_h3_callbacks_t hcb;
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* conn;
  uvq_h3_t* h3;
  int err;

  while (b->started < b->target && b->started - b->connected < MAX_PENDING) {
    if (b->mode_h3) {
      memset(&hcb, 0, sizeof(hcb));
      hcb.connected = h3_on_connected;
      hcb.closed = h3_on_closed;
      err = uvq_h3_client_new(b->loop, &b->config, NULL, &hcb, b, &h3);
      if (err == 0) {
        b->h3[b->started] = h3;
        err = uvq_h3_connect(h3, (struct sockaddr*) &b->server, "localhost");
      }
    } else {
      memset(&opts, 0, sizeof(opts));
      opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
      opts.server_name = "localhost";
      err = uvq_quic_connect(b->ep, (struct sockaddr*) &b->server, &opts,
                             NULL, &conn);
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
"usage: bench-quic-idle [--mode h3|quic] [--connections N] [--warmup N]\n"
"           [--settle-ms N] [--client-cpu N] [--server-cpu N]\n"
"           [--cert FILE --key FILE]\n"
"Opens N idle connections to a forked uvq server and prints the server's\n"
"VmRSS and heap growth per connection as one JSON line.\n");
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
  size_t warmup;
  size_t measured;
  size_t i;
  double rss_per;
  double heap_per;
  double client_heap_per;
  int client_cpu;
  int server_cpu;
  int status;
  int err;
  int ai;

  memset(&b, 0, sizeof(b));
  memset(&certs, 0, sizeof(certs));
  b.mode_h3 = 1;
  b.settle_ms = 500;
  warmup = 10;
  measured = 1000;
  client_cpu = 0;
  server_cpu = 1;
  cert = NULL;
  key = NULL;
  for (ai = 1; ai < argc; ai++) {
    const char* a = argv[ai];
    const char* v = ai + 1 < argc ? argv[ai + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage();
      return 0;
    }
    if (v == NULL) {
      usage();
      return 2;
    }
    ai++;
    if (strcmp(a, "--mode") == 0) {
      b.mode_h3 = qb_parse_mode(v);
    } else if (strcmp(a, "--connections") == 0) {
      measured = qb_parse_uint(a, v, 9000);
    } else if (strcmp(a, "--warmup") == 0) {
      warmup = qb_parse_uint(a, v, 1000);
    } else if (strcmp(a, "--settle-ms") == 0) {
      b.settle_ms = qb_parse_uint(a, v, 60000);
    } else if (strcmp(a, "--client-cpu") == 0) {
      client_cpu = (int) qb_parse_uint(a, v, 1023);
    } else if (strcmp(a, "--server-cpu") == 0) {
      server_cpu = (int) qb_parse_uint(a, v, 1023);
    } else if (strcmp(a, "--cert") == 0) {
      cert = v;
    } else if (strcmp(a, "--key") == 0) {
      key = v;
    } else {
      usage();
      return 2;
    }
  }
  if ((cert == NULL) != (key == NULL) || measured == 0) {
    usage();
    return 2;
  }
  /* h3 mode: one UDP socket per client. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
      rl.rlim_cur < warmup + measured + 64) {
    rl.rlim_cur = warmup + measured + 64;
    if (rl.rlim_max < rl.rlim_cur)
      rl.rlim_max = rl.rlim_cur;
    setrlimit(RLIMIT_NOFILE, &rl);
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
  sopts.response_bytes = 1;
  sopts.max_connections = (unsigned int) (warmup + measured + 16);
  sopts.idle_timeout_ms = 120000;
  if (qb_server_start(&server, &sopts) != 0) {
    qb_certs_cleanup(&certs);
    return 1;
  }
  if (qb_pin(client_cpu) != 0)
    return 1;
  b.srv = &server;

  b.loop = uv_default_loop();
  uv_ip4_addr("127.0.0.1", server.port, &b.server);
  uvq_quic_config_default(&b.config);
  b.config.insecure_skip_verify = 1;
  b.config.alpn = b.mode_h3 ? "h3" : QB_ALPN_QUIC;
  b.config.idle_timeout_ms = 120000;
  b.total = warmup + measured;
  b.h3 = calloc(b.total, sizeof(*b.h3));
  uv_timer_init(b.loop, &b.timer);
  b.timer.data = &b;
  if (!b.mode_h3) {
    memset(&qcb, 0, sizeof(qcb));
    qcb.handshake_done = quic_on_handshake_done;
    qcb.closed = quic_on_closed;
    qcb.stream_data = quic_on_stream_data;
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

  /* Phase 0 reports the baseline; with --warmup 0 it is the idle server. */
  b.target = warmup;
  if (warmup == 0)
    uv_timer_start(&b.timer, on_settled, b.settle_ms, 0);
  else
    pump(&b);
  uv_run(b.loop, UV_RUN_DEFAULT);
  if (b.phase == 1 && b.failed == 0 && b.error[0] == '\0')
    snprintf(b.error, sizeof(b.error), "stopped before the measurement");
  b.target = b.total;  /* (unused from here) */
  measured = b.connected > warmup ? b.connected - warmup : 0;

  /* Close everything, then stop the server. */
  b.phase = 2;
  uv_timer_stop(&b.timer);
  uv_close((uv_handle_t*) &b.timer, NULL);
  if (b.mode_h3) {
    for (i = 0; i < b.total; i++)
      if (b.h3[i] != NULL)
        uvq_h3_close(b.h3[i], on_h3_closed_cb);
  } else {
    uvq_quic_endpoint_close(b.ep, on_ep_closed);
  }
  uv_run(b.loop, UV_RUN_DEFAULT);
  status = qb_server_stop(&server);
  uv_loop_close(b.loop);
  qb_certs_cleanup(&certs);
  free(b.h3);

  rss_per = measured ? (b.r[1].rss_kb - b.r[0].rss_kb) * 1024.0 / measured
                     : 0.0;
  heap_per = measured ? (double) (b.r[1].heap_bytes - b.r[0].heap_bytes) /
                            measured
                      : 0.0;
  /* The client's side: meaningful in quic mode, where every connection
   * shares one endpoint; in h3 mode each client is a whole endpoint. */
  client_heap_per =
      measured ? (double) (b.client_heap[1] - b.client_heap[0]) / measured
               : 0.0;
  printf("{\"program\": \"bench-quic-idle\", \"mode\": \"%s\", "
         "\"version\": \"%s\", \"connections\": %zu, \"warmup\": %zu, "
         "\"failed\": %zu, \"connect_seconds\": %.3f, "
         "\"server_rss_kb_before\": %ld, \"server_rss_kb_after\": %ld, "
         "\"server_heap_before\": %lld, \"server_heap_after\": %lld, "
         "\"server_accepted\": %llu, "
         "\"rss_bytes_per_conn\": %.0f, \"heap_bytes_per_conn\": %.0f, "
         "\"client_heap_bytes_per_conn\": %.0f, "
         "\"server_exit\": %d, \"error\": ",
         b.mode_h3 ? "h3" : "quic", uvq_version_string(), measured, warmup,
         b.failed, b.connect_s, b.r[0].rss_kb, b.r[1].rss_kb,
         b.r[0].heap_bytes, b.r[1].heap_bytes,
         b.r[1].accepted - b.r[0].accepted, rss_per, heap_per,
         client_heap_per, status);
  if (b.error[0] != '\0')
    printf("\"%s\"}\n", b.error);
  else
    printf("null}\n");
  return measured > 0 && b.failed == 0 && b.error[0] == '\0' && status == 0
             ? 0
             : 1;
}
