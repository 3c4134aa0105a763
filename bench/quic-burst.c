/* bench-quic-burst: many HTTP/3 clients connecting at the same moment.
 *
 *   bench-quic-burst --port N [--host 127.0.0.1] [--clients 3000]
 *                    [--path /small.bin] [--timeout-ms 60000]
 *                    [--handshake-timeout-ms N]
 *
 * Creates --clients uvq_h3_t clients, each its own endpoint and UDP socket
 * (so each is a client of its own to the server, with its own address),
 * then starts all their handshakes in one loop iteration; each sends one
 * GET for --path once connected and closes when the response is complete.
 * The server is whatever listens at --host:--port (uvq-h3-server,
 * ngtcp2's gtlsserver ...); certificates are not checked.
 *
 * Every client ends one way: served (a 200 with its whole body), refused
 * (the server closed the handshake with CONNECTION_REFUSED), or failed
 * otherwise (kind and code of the first such failure are printed). Retry
 * is invisible here (the client follows it); the server's own counters
 * tell how many it sent. The time to serve all runs from the first
 * connect to the last client's end; per-client times from its connect to
 * its response's end. Prints one JSON line. */
#include "quic-common.h"

#include "uvq/h3.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define MAX_CLIENTS 20000

struct burst;

struct client {
  struct burst* b;
  uvq_h3_t* h3;
  int status;               /* :status of the response, 0 before */
  int ended;                /* 1 served, 2 refused, 3 failed */
  uint64_t bytes;
  uint64_t end_ns;
};

struct burst {
  uv_loop_t* loop;
  struct sockaddr_storage server;
  const char* path;
  struct client* clients;
  size_t n;
  size_t ended;
  size_t served;
  size_t refused;
  size_t failed;
  size_t closed;
  uint64_t start_ns;
  uint64_t last_ns;
  uv_timer_t timeout;
  int timed_out;
  int first_failure_kind;
  uint64_t first_failure_code;
};

static void client_end(struct client* c, int how) {
  struct burst* b;

  if (c->ended)
    return;
  b = c->b;
  c->ended = how;
  c->end_ns = qb_now_ns();
  b->last_ns = c->end_ns;
  if (how == 1)
    b->served++;
  else if (how == 2)
    b->refused++;
  else
    b->failed++;
  if (++b->ended == b->n)
    uv_stop(b->loop);
}

static void on_failure(struct client* c, const uvq_quic_error_t* error) {
  struct burst* b;

  b = c->b;
  if (error != NULL && error->kind == UVQ_QUIC_ERROR_TRANSPORT &&
      error->code == 0x2 /* CONNECTION_REFUSED */) {
    client_end(c, 2);
    return;
  }
  if (!c->ended && b->failed == 0) {
    b->first_failure_kind = error ? error->kind : -1;
    b->first_failure_code = error ? error->code : 0;
  }
  client_end(c, 3);
}

static void on_h3_closed(uvq_h3_t* h3) {
  struct client* c;

  c = uvq_h3_get_data(h3);
  c->h3 = NULL;
  c->b->closed++;
}

static void on_response(uvq_h3_req_t* req, int status) {
  struct client* c;

  c = uvq_h3_req_get_data(req);
  c->status = status;
}

static void on_body(uvq_h3_req_t* req, const uint8_t* data, size_t len) {
  struct client* c;

  (void) data;
  c = uvq_h3_req_get_data(req);
  c->bytes += len;
}

static void on_done(uvq_h3_req_t* req, uint64_t app_error) {
  struct client* c;
  uvq_quic_error_t e;

  c = uvq_h3_req_get_data(req);
  if (app_error == UVQ_H3_NO_ERROR && c->status == 200) {
    client_end(c, 1);
  } else {
    memset(&e, 0, sizeof(e));
    e.kind = UVQ_QUIC_ERROR_APPLICATION;
    e.code = app_error == UVQ_H3_NO_ERROR ? (uint64_t) c->status : app_error;
    on_failure(c, &e);
  }
  /* One request per client: close gracefully once it is over (its
   * socket too, as a real client's would go). */
  uvq_h3_shutdown(c->h3, on_h3_closed);
}

static void on_connected(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  struct client* c;
  uvq_h3_req_t* req;
  uvq_quic_error_t e;
  int err;

  c = uvq_h3_get_data(h3);
  if (error != NULL) {
    on_failure(c, error);
    return;
  }
  err = uvq_h3_request(h3, "GET", NULL, NULL, c->b->path, NULL, 0, NULL, c,
                       &req);
  if (err != 0) {
    memset(&e, 0, sizeof(e));
    e.kind = -2;
    e.code = (uint64_t) -err;
    on_failure(c, &e);
  }
}

static void on_closed(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  struct client* c;

  c = uvq_h3_get_data(h3);
  if (!c->ended)
    on_failure(c, error);
}

static void on_timeout(uv_timer_t* t) {
  struct burst* b;

  b = t->data;
  b->timed_out = 1;
  uv_stop(b->loop);
}

static int cmp_u64(const void* a, const void* b) {
  uint64_t x;
  uint64_t y;

  x = *(const uint64_t*) a;
  y = *(const uint64_t*) b;
  return x < y ? -1 : x > y;
}

static void usage(void) {
  fprintf(stderr,
"usage: bench-quic-burst --port N [--host ADDR] [--clients N] [--path P]\n"
"           [--timeout-ms N] [--handshake-timeout-ms N] [--client-cpu N]\n"
"Connects N HTTP/3 clients at once to the server at ADDR:N (127.0.0.1),\n"
"one GET each, and prints how many were served, refused or failed.\n");
}

int main(int argc, char** argv) {
  uvq_h3_callbacks_t hcb;
  uvq_quic_config_t config;
  struct burst b;
  struct rlimit rl;
  const char* host;
  uint64_t timeout_ms;
  uint64_t handshake_timeout_ms;
  uint64_t* times;
  size_t ntimes;
  size_t i;
  double cpu0;
  double cpu1;
  int client_cpu;
  int port;
  int err;
  int ai;

  memset(&b, 0, sizeof(b));
  host = "127.0.0.1";
  port = -1;
  b.n = 3000;
  b.path = "/small.bin";
  timeout_ms = 60000;
  handshake_timeout_ms = 0;
  client_cpu = -1;
  for (ai = 1; ai < argc; ai++) {
    const char* a = argv[ai];
    const char* v = qb_option_value(argc, argv, &ai, usage);
    if (strcmp(a, "--port") == 0)
      port = (int) qb_parse_uint(a, v, 65535);
    else if (strcmp(a, "--host") == 0)
      host = v;
    else if (strcmp(a, "--clients") == 0)
      b.n = qb_parse_uint(a, v, MAX_CLIENTS);
    else if (strcmp(a, "--path") == 0)
      b.path = v;
    else if (strcmp(a, "--timeout-ms") == 0)
      timeout_ms = qb_parse_uint(a, v, 3600000);
    else if (strcmp(a, "--handshake-timeout-ms") == 0)
      handshake_timeout_ms = qb_parse_uint(a, v, 3600000);
    else if (strcmp(a, "--client-cpu") == 0)
      client_cpu = (int) qb_parse_uint(a, v, 1023);
    else {
      usage();
      return 2;
    }
  }
  if (port < 0 || b.n == 0) {
    usage();
    return 2;
  }
  if (uv_ip4_addr(host, port, (struct sockaddr_in*) &b.server) != 0 &&
      uv_ip6_addr(host, port, (struct sockaddr_in6*) &b.server) != 0) {
    fprintf(stderr, "bad --host '%s' (a numeric address)\n", host);
    return 2;
  }
  /* One UDP socket per client. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < b.n + 64) {
    rl.rlim_cur = b.n + 64;
    if (rl.rlim_max < rl.rlim_cur)
      rl.rlim_max = rl.rlim_cur;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      fprintf(stderr, "cannot raise the open file limit to %zu\n", b.n + 64);
      return 1;
    }
  }
  if (qb_pin(client_cpu) != 0)
    return 1;

  b.loop = uv_default_loop();
  b.clients = calloc(b.n, sizeof(*b.clients));
  times = calloc(b.n, sizeof(*times));
  if (b.clients == NULL || times == NULL)
    return 1;
  uvq_quic_config_default(&config);
  config.insecure_skip_verify = 1;
  config.alpn = "h3";
  /* 0: uvq's default (10 s). */
  config.handshake_timeout_ms = handshake_timeout_ms;
  memset(&hcb, 0, sizeof(hcb));
  hcb.connected = on_connected;
  hcb.closed = on_closed;
  hcb.response = on_response;
  hcb.body = on_body;
  hcb.done = on_done;
  /* Every client is made first, so that the handshakes start together. */
  for (i = 0; i < b.n; i++) {
    b.clients[i].b = &b;
    err = uvq_h3_client_new(b.loop, &config, NULL, &hcb, &b.clients[i],
                            &b.clients[i].h3);
    if (err != 0) {
      fprintf(stderr, "client #%zu: %s\n", i, uv_strerror(err));
      return 1;
    }
  }
  uv_timer_init(b.loop, &b.timeout);
  b.timeout.data = &b;
  uv_timer_start(&b.timeout, on_timeout, timeout_ms, 0);
  cpu0 = qb_cpu_self();
  b.start_ns = qb_now_ns();
  for (i = 0; i < b.n; i++) {
    err = uvq_h3_connect(b.clients[i].h3, (struct sockaddr*) &b.server,
                         "localhost");
    if (err != 0) {
      uvq_quic_error_t e;
      memset(&e, 0, sizeof(e));
      e.kind = -3;
      e.code = (uint64_t) -err;
      on_failure(&b.clients[i], &e);
    }
  }
  if (b.ended < b.n)
    uv_run(b.loop, UV_RUN_DEFAULT);
  cpu1 = qb_cpu_self();

  ntimes = 0;
  for (i = 0; i < b.n; i++)
    if (b.clients[i].ended == 1)
      times[ntimes++] = b.clients[i].end_ns - b.start_ns;
  qsort(times, ntimes, sizeof(*times), cmp_u64);
  printf("{\"program\": \"bench-quic-burst\", \"version\": \"%s\", "
         "\"clients\": %zu, \"served\": %zu, \"refused\": %zu, "
         "\"failed\": %zu, \"unfinished\": %zu, \"timed_out\": %d, "
         "\"seconds\": %.3f, \"served_p50_ms\": %.1f, "
         "\"served_p99_ms\": %.1f, \"served_max_ms\": %.1f, "
         "\"client_cpu_s\": %.3f, \"first_failure_kind\": %d, "
         "\"first_failure_code\": %llu}\n",
         uvq_version_string(), b.n, b.served, b.refused, b.failed,
         b.n - b.ended, b.timed_out, (b.last_ns - b.start_ns) / 1e9,
         ntimes ? times[ntimes / 2] / 1e6 : 0.0,
         ntimes ? times[(ntimes * 99 + 99) / 100 - 1] / 1e6 : 0.0,
         ntimes ? times[ntimes - 1] / 1e6 : 0.0, cpu1 - cpu0,
         b.first_failure_kind, (unsigned long long) b.first_failure_code);
  fflush(stdout);

  /* Close whatever is still open. */
  uv_timer_stop(&b.timeout);
  uv_close((uv_handle_t*) &b.timeout, NULL);
  for (i = 0; i < b.n; i++)
    if (b.clients[i].h3 != NULL)
      uvq_h3_close(b.clients[i].h3, on_h3_closed);
  uv_run(b.loop, UV_RUN_DEFAULT);
  uv_loop_close(b.loop);
  free(b.clients);
  free(times);
  return b.served == b.n ? 0 : 1;
}
