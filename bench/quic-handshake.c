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
 *   tls:  one client endpoint, uvq_quic_connect() with ALPN --alpn ("h3"),
 *         no stream: the connection is closed as soon as the server's
 *         session ticket (its last handshake message) arrives. With
 *         --connect ADDR:PORT it runs against a server already running
 *         (uvq-h3-server, ngtcp2's gtlsserver), whose CPU time is read
 *         from /proc/--server-pid, so that any server is measured alike.
 *         --resume resumes every connection after the first with the
 *         latest ticket; --groups limits the key exchange groups the
 *         client offers (uvq_quic_config_t.tls_groups).
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
#include <unistd.h>

struct bench {
  uv_loop_t* loop;
  int mode_h3;
  int mode_tls;
  int resume;
  uint64_t resumed;      /* tls mode: connections that resumed */
  uint8_t ticket[8192];  /* tls mode: the latest session ticket */
  size_t ticketlen;
  unsigned int concurrency;   /* tls mode: connections in flight */
  unsigned int inflight;
  struct tls_conn* to_close;  /* tls mode: done, closed from on_defer */
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

/* tls mode: one connection in flight. */
struct tls_conn {
  struct bench* b;
  uvq_quic_conn_t* conn;
  uint64_t start_ns;
  int handshaken;
  int done;                   /* the ticket arrived: close it */
  struct tls_conn* next_close;
};
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
  while (b->to_close != NULL) {
    struct tls_conn* tc = b->to_close;
    b->to_close = tc->next_close;
    uvq_quic_conn_close(tc->conn, 0, NULL);
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

/* ---- tls mode ------------------------------------------------------------- */

static void tls_on_handshake_done(uvq_quic_conn_t* conn) {
  struct tls_conn* tc;

  tc = uvq_quic_conn_get_data(conn);
  tc->b->handshake_ns_sum += qb_now_ns() - tc->start_ns;
  tc->handshaken = 1;
}

static void tls_on_session_ticket(uvq_quic_conn_t* conn,
                                  const uint8_t* ticket,
                                  size_t len) {
  uvq_quic_conn_stats_t st;
  struct tls_conn* tc;
  struct bench* b;

  tc = uvq_quic_conn_get_data(conn);
  b = tc->b;
  if (len <= sizeof(b->ticket)) {
    memcpy(b->ticket, ticket, len);
    b->ticketlen = len;
  }
  /* The ticket comes after the handshake (the server sends it once the
   * client's Finished arrived): the handshake is over on both sides. */
  if (!tc->handshaken || tc->done)
    return;
  if (uvq_quic_conn_get_stats(conn, &st) == 0 && st.resumed)
    b->resumed++;
  tc->done = 1;
  tc->next_close = b->to_close;
  b->to_close = tc;
  uv_idle_start(&b->defer, on_defer);
}

static void tls_on_closed(uvq_quic_conn_t* conn,
                          const uvq_quic_error_t* error) {
  struct tls_conn* tc;
  struct bench* b;

  tc = uvq_quic_conn_get_data(conn);
  b = tc->b;
  if (tc->done) {
    b->connections++;
  } else {
    b->failed++;
    if (b->error[0] == '\0')
      snprintf(b->error, sizeof(b->error), "closed: kind %d code 0x%llx",
               error->kind, (unsigned long long) error->code);
  }
  free(tc);
  b->inflight--;
  next(b);
}

static int tls_start(struct bench* b) {
  uvq_quic_connect_opts_t opts;
  struct tls_conn* tc;
  int err;

  tc = calloc(1, sizeof(*tc));
  if (tc == NULL)
    return UV_ENOMEM;
  tc->b = b;
  tc->start_ns = qb_now_ns();
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  if (b->resume && b->ticketlen > 0) {
    opts.session_ticket = b->ticket;
    opts.session_ticket_len = b->ticketlen;
  }
  err = uvq_quic_connect(b->ep, (struct sockaddr*) &b->server, &opts, tc,
                         &tc->conn);
  if (err != 0) {
    snprintf(b->error, sizeof(b->error), "connect: %s", uv_strerror(err));
    free(tc);
    return err;
  }
  b->inflight++;
  return 0;
}

static int quic_start(struct bench* b) {
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* conn;
  int err;

  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
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

  if (b->mode_tls) {
    /* Keep --concurrency connections in flight until the deadline; then
     * wait for those in flight. */
    err = 0;
    while (err == 0 && b->failed == 0 && b->inflight < b->concurrency &&
           qb_now_ns() < b->deadline_ns)
      err = tls_start(b);
    if (err != 0)
      b->failed++;
    if (b->inflight == 0) {
      if (!uv_is_closing((uv_handle_t*) &b->defer))
        uv_close((uv_handle_t*) &b->defer, NULL);
      if (b->ep != NULL) {
        uvq_quic_endpoint_close(b->ep, quic_on_ep_closed);
        b->ep = NULL;
      }
    }
    return;
  }
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
"usage: bench-quic-handshake [--mode h3|quic|tls] [--duration-ms N]\n"
"           [--client-cpu N] [--server-cpu N] [--response-bytes N]\n"
"           [--cert FILE --key FILE] [--groups LIST] [--resume]\n"
"           [--alpn LIST] [--connect IP:PORT --server-pid PID]\n"
"           [--concurrency N]\n"
"Sequential new connections (handshake, one request, close) to a forked\n"
"uvq server for --duration-ms (3000); prints one JSON line. tls mode:\n"
"handshakes only, optionally against a running server (--connect).\n");
}

/* CPU time of another process in seconds: the scheduler's nanosecond
 * count (/proc/PID/schedstat) where the kernel keeps it, else utime +
 * stime in clock ticks (/proc/PID/stat). -1 if the process is gone. */
static double proc_cpu_s(pid_t pid) {
  unsigned long long ns;
  unsigned long utime;
  unsigned long stime;
  char path[64];
  char buf[1024];
  char* p;
  FILE* f;
  size_t n;
  int i;

  snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) pid);
  f = fopen(path, "r");
  if (f != NULL) {
    i = fscanf(f, "%llu", &ns);
    fclose(f);
    if (i == 1)
      return ns / 1e9;
  }
  snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
  f = fopen(path, "r");
  if (f == NULL)
    return -1;
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  buf[n] = '\0';
  p = strrchr(buf, ')');
  if (p == NULL)
    return -1;
  /* Fields after the command: state is field 3, utime 14, stime 15. */
  for (i = 0; i < 11 && p != NULL; i++)
    p = strchr(p + 1, ' ');
  if (p == NULL || sscanf(p + 1, "%*s %lu %lu", &utime, &stime) != 2)
    return -1;
  return (double) (utime + stime) / sysconf(_SC_CLK_TCK);
}

/* tls mode against a server that runs already (--connect): its CPU time
 * from /proc, before and after. */
static int run_external(struct bench* b,
                        const char* connect,
                        pid_t server_pid,
                        const char* groups,
                        const char* alpn,
                        uint64_t duration_ms,
                        int client_cpu) {
  uvq_quic_callbacks_t qcb;
  struct sockaddr_in any;
  char host[64];
  const char* colon;
  double cpu0;
  double cpu1;
  double srv0;
  double srv1;
  double seconds;
  int err;

  colon = strrchr(connect, ':');
  if (colon == NULL || (size_t) (colon - connect) >= sizeof(host)) {
    usage();
    return 2;
  }
  memcpy(host, connect, (size_t) (colon - connect));
  host[colon - connect] = '\0';
  if (uv_ip4_addr(host, (int) qb_parse_uint("--connect", colon + 1, 65535),
                  &b->server) != 0) {
    usage();
    return 2;
  }
  if (qb_pin(client_cpu) != 0)
    return 1;
  b->loop = uv_default_loop();
  uvq_quic_config_default(&b->config);
  b->config.insecure_skip_verify = 1;
  b->config.alpn = alpn != NULL ? alpn : "h3";
  b->config.tls_groups = groups;
  uv_idle_init(b->loop, &b->defer);
  b->defer.data = b;
  memset(&qcb, 0, sizeof(qcb));
  qcb.handshake_done = tls_on_handshake_done;
  qcb.session_ticket = tls_on_session_ticket;
  qcb.closed = tls_on_closed;
  err = uvq_quic_endpoint_new(b->loop, &b->config, &qcb, b, &b->ep);
  uv_ip4_addr("127.0.0.1", 0, &any);
  if (err == 0)
    err = uvq_quic_endpoint_bind(b->ep, (struct sockaddr*) &any);
  if (err != 0) {
    fprintf(stderr, "client endpoint: %s\n", uv_strerror(err));
    return 1;
  }
  srv0 = proc_cpu_s(server_pid);
  cpu0 = qb_cpu_self();
  b->started_ns = qb_now_ns();
  b->deadline_ns = b->started_ns + duration_ms * 1000000u;
  next(b);
  uv_run(b->loop, UV_RUN_DEFAULT);
  seconds = (qb_now_ns() - b->started_ns) / 1e9;
  cpu1 = qb_cpu_self();
  srv1 = proc_cpu_s(server_pid);
  uv_loop_close(b->loop);
  if (srv0 < 0 || srv1 < 0)
    snprintf(b->error, sizeof(b->error), "cannot read the CPU time of "
             "process %d", (int) server_pid);

  printf("{\"program\": \"bench-quic-handshake\", \"mode\": \"tls\", "
         "\"version\": \"%s\", \"connect\": \"%s\", \"groups\": \"%s\", "
         "\"resume\": %d, \"concurrency\": %u, \"connections\": %llu, "
         "\"resumed\": %llu, "
         "\"failed\": %llu, \"seconds\": %.6f, \"handshakes_per_s\": %.1f, "
         "\"mean_handshake_ms\": %.3f, \"client_cpu_s\": %.6f, "
         "\"server_cpu_s\": %.6f, \"client_cpu_ms_per_conn\": %.4f, "
         "\"server_cpu_ms_per_conn\": %.4f, \"error\": ",
         uvq_version_string(), connect, groups != NULL ? groups : "default",
         b->resume, b->concurrency, (unsigned long long) b->connections,
         (unsigned long long) b->resumed, (unsigned long long) b->failed,
         seconds, seconds > 0 ? b->connections / seconds : 0.0,
         b->connections ? b->handshake_ns_sum / 1e6 / b->connections : 0.0,
         cpu1 - cpu0, srv1 - srv0,
         b->connections ? (cpu1 - cpu0) * 1e3 / b->connections : 0.0,
         b->connections ? (srv1 - srv0) * 1e3 / b->connections : 0.0);
  if (b->error[0] != '\0')
    printf("\"%s\"}\n", b->error);
  else
    printf("null}\n");
  return b->connections > 0 && b->failed == 0 && b->error[0] == '\0' ? 0
                                                                      : 1;
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
  const char* groups;
  const char* alpn;
  const char* connect;
  pid_t server_pid;
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
  groups = NULL;
  alpn = NULL;
  connect = NULL;
  server_pid = 0;
  for (i = 1; i < argc; i++) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage();
      return 0;
    }
    if (strcmp(a, "--resume") == 0) {
      b.resume = 1;
      continue;
    }
    if (strcmp(a, "--concurrency") == 0 && v != NULL) {
      b.concurrency = (unsigned int) qb_parse_uint(a, v, 4096);
      i++;
      continue;
    }
    if (v == NULL) {
      usage();
      return 2;
    }
    i++;
    if (strcmp(a, "--mode") == 0) {
      b.mode_tls = strcmp(v, "tls") == 0;
      b.mode_h3 = b.mode_tls ? 0 : qb_parse_mode(v);
    } else if (strcmp(a, "--groups") == 0) {
      groups = v;
    } else if (strcmp(a, "--alpn") == 0) {
      alpn = v;
    } else if (strcmp(a, "--connect") == 0) {
      connect = v;
    } else if (strcmp(a, "--server-pid") == 0) {
      server_pid = (pid_t) qb_parse_uint(a, v, 1u << 30);
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
  if (b.concurrency == 0)
    b.concurrency = 1;
  if ((cert == NULL) != (key == NULL) ||
      ((connect != NULL || b.resume || b.concurrency > 1) && !b.mode_tls) ||
      (connect != NULL) != (server_pid != 0)) {
    usage();
    return 2;
  }
  if (connect != NULL)
    return run_external(&b, connect, server_pid, groups, alpn, duration_ms,
                        client_cpu);
  if (cert == NULL) {
    if (qb_certs_make(&certs) != 0)
      return 1;
    cert = certs.cert;
    key = certs.key;
  }

  memset(&sopts, 0, sizeof(sopts));
  sopts.kind = b.mode_h3 || b.mode_tls ? QB_SERVER_H3 : QB_SERVER_QUIC;
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
  b.config.alpn = b.mode_h3 || b.mode_tls ? "h3" : QB_ALPN_QUIC;
  b.config.tls_groups = groups;
  b.request = uv_buf_init("GET /\n", 6);
  uv_idle_init(b.loop, &b.defer);
  b.defer.data = &b;
  if (!b.mode_h3) {
    memset(&qcb, 0, sizeof(qcb));
    qcb.handshake_done =
        b.mode_tls ? tls_on_handshake_done : quic_on_handshake_done;
    qcb.stream_data = quic_on_stream_data;
    qcb.session_ticket = b.mode_tls ? tls_on_session_ticket : NULL;
    qcb.closed = b.mode_tls ? tls_on_closed : quic_on_closed;
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
         b.mode_h3 ? "h3" : b.mode_tls ? "tls" : "quic", uvq_version_string(),
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
