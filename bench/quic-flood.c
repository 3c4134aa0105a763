/* bench-quic-flood: a normal client's fetches while a flood of Initials
 * hits the server.
 *
 *   bench-quic-flood --port N [--host 127.0.0.1] [--rate 1500]
 *                    [--sockets 64] [--quiet-ms 5000] [--flood-ms 10000]
 *                    [--interval-ms 100] [--path /small.bin]
 *
 * The flood is what an attacker who spoofs source addresses can send:
 * real client Initials (each captured from a uvq client connection
 * pointed at a plain socket, so each has its own random connection ID and
 * costs the server a real handshake if it takes it), sent at --rate per
 * second from --sockets plain UDP sockets that never answer. The server's
 * replies to them are read and counted (Retry, Initial, other).
 *
 * The normal client fetches --path repeatedly, one fetch at a time, a new
 * uvq_h3_t client (new connection) each time, --interval-ms apart: first
 * for --quiet-ms without the flood, then for --flood-ms with it. A fetch
 * is timed from uvq_h3_connect() to the response's end. Prints one JSON
 * line with both phases' fetch counts and latencies. */
#include "quic-common.h"

#include "uvq/h3.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define INITIAL_LEN 1200
#define MAX_SOCKETS 1024
#define CAPTURE_BATCH 128
#define TICK_MS 10
#define MAX_FETCHES 100000

enum { PHASE_QUIET = 0, PHASE_FLOOD = 1, PHASE_END = 2 };

struct phase_stats {
  size_t fetches;
  size_t served;
  size_t failed;
  double* ms;       /* served fetches' times */
  double* series;   /* every fetch in order: its time, -1 if it failed */
};

struct flood {
  uv_loop_t* loop;
  struct sockaddr_storage server;
  const char* path;
  /* The flood. */
  int fd[MAX_SOCKETS];
  size_t nsockets;
  uint8_t (*initial)[INITIAL_LEN];
  size_t ninitials;
  size_t next_initial;
  uint64_t rate;
  uint64_t sent;
  uint64_t send_errors;
  uint64_t flood_start_ns;
  uint64_t replies_retry;
  uint64_t replies_initial;
  uint64_t replies_other;
  uv_timer_t tick;
  /* The normal client. */
  uvq_quic_config_t config;
  uvq_h3_t* h3;
  uint64_t fetch_start_ns;
  int status;
  int fetch_ok;
  int fetch_over;
  uv_timer_t next_fetch;
  uint64_t interval_ms;
  int phase;
  uint64_t phase_end_ns;
  uint64_t flood_ms;
  struct phase_stats ph[2];
  int first_failure_kind;
  uint64_t first_failure_code;
};

static int udp_socket(void) {
  struct sockaddr_in sa;
  int fd;

  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return -1;
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr*) &sa, sizeof(sa)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

/* ---- capturing real Initials ----------------------------------------- */

/* The capture: connections of the current batch and what has been read.
 * A client's first datagram and its CONNECTION_CLOSE (sent when we close
 * it) carry the same destination connection ID, so Initials are told
 * apart by that ID: a set of the first 8 bytes of every ID kept. */
struct capture {
  struct flood* f;
  uvq_quic_endpoint_t* ep;
  struct sockaddr_storage name;
  uvq_quic_conn_t* conns[CAPTURE_BATCH];
  size_t batch;           /* connections in the current batch */
  size_t batch_end;       /* f->initial index at which it is complete */
  size_t want;
  uint64_t* seen;         /* open addressing, 0: empty */
  size_t seen_size;
  uv_poll_t poll;
  uv_timer_t deadline;
  int fd;
  int error;
};

/* 1 if the ID was new (and is now recorded). */
static int dcid_new(struct capture* c, const uint8_t* pkt) {
  uint64_t key;
  size_t i;

  key = 0;
  memcpy(&key, pkt + 6, pkt[5] < 8 ? pkt[5] : 8);
  key |= 1;  /* never 0 */
  i = (size_t) (key * 0x9e3779b97f4a7c15ull) % c->seen_size;
  while (c->seen[i] != 0) {
    if (c->seen[i] == key)
      return 0;
    i = (i + 1) % c->seen_size;
  }
  c->seen[i] = key;
  return 1;
}

static void capture_batch(struct capture* c) {
  uvq_quic_connect_opts_t opts;
  struct flood* f;
  size_t i;
  int err;

  f = c->f;
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  c->batch = c->want - f->ninitials < CAPTURE_BATCH ? c->want - f->ninitials
                                                    : CAPTURE_BATCH;
  c->batch_end = f->ninitials + c->batch;
  for (i = 0; i < c->batch; i++) {
    err = uvq_quic_connect(c->ep, (struct sockaddr*) &c->name, &opts, NULL,
                           &c->conns[i]);
    if (err != 0) {
      fprintf(stderr, "capture connect: %s\n", uv_strerror(err));
      c->error = 1;
      uv_stop(f->loop);
      return;
    }
  }
}

static void capture_on_readable(uv_poll_t* handle, int status, int events) {
  struct capture* c;
  struct flood* f;
  uint8_t buf[INITIAL_LEN + 1];
  size_t i;
  ssize_t r;

  (void) status;
  (void) events;
  c = handle->data;
  f = c->f;
  while ((r = recv(c->fd, buf, sizeof(buf), 0)) > 0) {
    if (r != INITIAL_LEN || (buf[0] & 0xf0) != 0xc0 || buf[5] > 20 ||
        f->ninitials >= c->batch_end || !dcid_new(c, buf))
      continue;
    memcpy(f->initial[f->ninitials++], buf, INITIAL_LEN);
  }
  if (f->ninitials < c->batch_end || c->batch == 0)
    return;
  for (i = 0; i < c->batch; i++)
    uvq_quic_conn_close(c->conns[i], 0, NULL);
  c->batch = 0;
  if (f->ninitials == c->want)
    uv_stop(f->loop);
  else
    capture_batch(c);
}

static void capture_on_deadline(uv_timer_t* t) {
  struct capture* c;

  c = t->data;
  fprintf(stderr, "capture: %zu of %zu Initials in time\n", c->f->ninitials,
          c->want);
  c->error = 1;
  uv_stop(c->f->loop);
}

/* Captures n Initials into f->initial, CAPTURE_BATCH connections at a
 * time (so that the socket's receive buffer holds a batch). 0 or -1. */
static int capture(struct flood* f, size_t n) {
  struct sockaddr_in any;
  struct capture c;
  socklen_t namelen;
  int size;
  int err;

  memset(&c, 0, sizeof(c));
  c.f = f;
  c.want = n;
  c.seen_size = 2 * n + 1;
  c.seen = calloc(c.seen_size, sizeof(*c.seen));
  c.fd = udp_socket();
  if (c.seen == NULL || c.fd < 0)
    return -1;
  size = 4 << 20;
  setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  namelen = sizeof(c.name);
  getsockname(c.fd, (struct sockaddr*) &c.name, &namelen);
  err = uvq_quic_endpoint_new(f->loop, &f->config, NULL, NULL, &c.ep);
  uv_ip4_addr("127.0.0.1", 0, &any);
  if (err == 0)
    err = uvq_quic_endpoint_bind(c.ep, (struct sockaddr*) &any);
  if (err != 0) {
    fprintf(stderr, "capture endpoint: %s\n", uv_strerror(err));
    close(c.fd);
    free(c.seen);
    return -1;
  }
  uv_poll_init(f->loop, &c.poll, c.fd);
  c.poll.data = &c;
  uv_poll_start(&c.poll, UV_READABLE, capture_on_readable);
  uv_timer_init(f->loop, &c.deadline);
  c.deadline.data = &c;
  uv_timer_start(&c.deadline, capture_on_deadline, 120000, 0);
  capture_batch(&c);
  uv_run(f->loop, UV_RUN_DEFAULT);
  uv_close((uv_handle_t*) &c.poll, NULL);
  uv_close((uv_handle_t*) &c.deadline, NULL);
  uvq_quic_endpoint_close(c.ep, NULL);
  uv_run(f->loop, UV_RUN_DEFAULT);
  close(c.fd);
  free(c.seen);
  return c.error ? -1 : 0;
}

/* ---- the flood --------------------------------------------------------- */

static void drain_replies(struct flood* f) {
  uint8_t buf[2048];
  ssize_t r;
  size_t i;

  for (i = 0; i < f->nsockets; i++) {
    while ((r = recv(f->fd[i], buf, sizeof(buf), 0)) > 0) {
      /* QUIC v1 long header types: 0 Initial, 3 Retry (RFC 9000, 17.2). */
      if ((buf[0] & 0x80) && (buf[0] & 0x30) == 0x30)
        f->replies_retry++;
      else if ((buf[0] & 0x80) && (buf[0] & 0x30) == 0x00)
        f->replies_initial++;
      else
        f->replies_other++;
    }
  }
}

/* Every tick sends what the rate allows since the flood began, so that
 * the rate holds whatever the timer's jitter. */
static void on_tick(uv_timer_t* t) {
  struct flood* f;
  uint64_t due;
  socklen_t len;
  ssize_t r;

  f = t->data;
  due = (qb_now_ns() - f->flood_start_ns) * f->rate / 1000000000ull;
  len = f->server.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                        : sizeof(struct sockaddr_in);
  while (f->sent < due) {
    r = sendto(f->fd[f->sent % f->nsockets],
               f->initial[f->next_initial % f->ninitials], INITIAL_LEN, 0,
               (struct sockaddr*) &f->server, len);
    if (r != INITIAL_LEN)
      f->send_errors++;
    f->next_initial++;
    f->sent++;
  }
  drain_replies(f);
}

/* ---- the normal client ------------------------------------------------- */

static void fetch_start(struct flood* f);

static void on_next_fetch(uv_timer_t* t) {
  fetch_start(t->data);
}

static void fetch_closed(uvq_h3_t* h3) {
  (void) h3;
}

static void fetch_over(struct flood* f, int ok, const uvq_quic_error_t* e) {
  struct phase_stats* ps;
  uint64_t now;

  if (f->fetch_over)
    return;
  f->fetch_over = 1;
  now = qb_now_ns();
  ps = &f->ph[f->phase];
  ps->series[ps->fetches] = ok ? (now - f->fetch_start_ns) / 1e6 : -1.0;
  ps->fetches++;
  if (ok) {
    ps->ms[ps->served++] = (now - f->fetch_start_ns) / 1e6;
  } else {
    if (ps->failed == 0 && f->ph[0].failed + f->ph[1].failed == 0) {
      f->first_failure_kind = e ? e->kind : -1;
      f->first_failure_code = e ? e->code : 0;
    }
    ps->failed++;
  }
  /* Closed from the timer, not from inside its own callback. */
  uv_timer_start(&f->next_fetch, on_next_fetch, f->interval_ms,
                 0);
}

static void on_response(uvq_h3_req_t* req, int status) {
  struct flood* f;

  f = uvq_h3_req_get_data(req);
  f->status = status;
}

static void on_done(uvq_h3_req_t* req, uint64_t app_error) {
  struct flood* f;
  uvq_quic_error_t e;

  f = uvq_h3_req_get_data(req);
  memset(&e, 0, sizeof(e));
  e.kind = UVQ_QUIC_ERROR_APPLICATION;
  e.code = app_error == UVQ_H3_NO_ERROR ? (uint64_t) f->status : app_error;
  fetch_over(f, app_error == UVQ_H3_NO_ERROR && f->status == 200, &e);
}

static void on_connected(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  struct flood* f;
  uvq_h3_req_t* req;
  uvq_quic_error_t e;
  int err;

  f = uvq_h3_get_data(h3);
  if (error != NULL) {
    fetch_over(f, 0, error);
    return;
  }
  err = uvq_h3_request(h3, "GET", NULL, NULL, f->path, NULL, 0, NULL, f,
                       &req);
  if (err != 0) {
    memset(&e, 0, sizeof(e));
    e.kind = -2;
    e.code = (uint64_t) -err;
    fetch_over(f, 0, &e);
  }
}

static void on_closed(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  struct flood* f;

  f = uvq_h3_get_data(h3);
  if (h3 == f->h3)
    fetch_over(f, 0, error);
}

static void fetch_start(struct flood* f) {
  uvq_h3_callbacks_t hcb;
  uvq_quic_error_t e;
  uint64_t now;
  int err;

  if (f->h3 != NULL) {
    uvq_h3_close(f->h3, fetch_closed);
    f->h3 = NULL;
  }
  now = qb_now_ns();
  if (now >= f->phase_end_ns) {
    if (f->phase == PHASE_QUIET) {
      /* The flood begins; the next fetches count as during it. */
      f->phase = PHASE_FLOOD;
      f->phase_end_ns = now + f->flood_ms * 1000000ull;
      f->flood_start_ns = now;
      uv_timer_start(&f->tick, on_tick, 0, TICK_MS);
      /* One interval of flood before the first fetch of the phase. */
      uv_timer_start(&f->next_fetch, on_next_fetch,
                     f->interval_ms, 0);
      return;
    }
    f->phase = PHASE_END;
    uv_timer_stop(&f->tick);
    drain_replies(f);
    uv_stop(f->loop);
    return;
  }
  if (f->ph[f->phase].fetches >= MAX_FETCHES) {
    uv_stop(f->loop);
    return;
  }
  memset(&hcb, 0, sizeof(hcb));
  hcb.connected = on_connected;
  hcb.closed = on_closed;
  hcb.response = on_response;
  hcb.done = on_done;
  f->status = 0;
  f->fetch_over = 0;
  err = uvq_h3_client_new(f->loop, &f->config, NULL, &hcb, f, &f->h3);
  f->fetch_start_ns = qb_now_ns();
  if (err == 0)
    err = uvq_h3_connect(f->h3, (struct sockaddr*) &f->server, "localhost");
  if (err != 0) {
    fprintf(stderr, "fetch: %s\n", uv_strerror(err));
    memset(&e, 0, sizeof(e));
    e.kind = -3;
    e.code = (uint64_t) -err;
    if (f->h3 == NULL) {
      uv_stop(f->loop);
      return;
    }
    fetch_over(f, 0, &e);
  }
}

/* ---- report ------------------------------------------------------------ */


static void print_phase(const char* name, struct phase_stats* ps) {
  size_t i;

  /* In order first (fetches are --interval-ms apart plus their own time),
   * then sorted for the quantiles. */
  printf("\"%s_series_ms\": [", name);
  for (i = 0; i < ps->fetches; i++)
    printf("%s%.2f", i ? ", " : "", ps->series[i]);
  printf("], ");
  qb_sort_doubles(ps->ms, ps->served);
  printf("\"%s_fetches\": %zu, \"%s_served\": %zu, \"%s_failed\": %zu, "
         "\"%s_p50_ms\": %.2f, \"%s_p90_ms\": %.2f, \"%s_max_ms\": %.2f, ",
         name, ps->fetches, name, ps->served, name, ps->failed, name,
         qb_quantile(ps->ms, ps->served, 0.5), name,
         qb_quantile(ps->ms, ps->served, 0.9), name,
         ps->served ? ps->ms[ps->served - 1] : 0.0);
}

static void usage(void) {
  fprintf(stderr,
"usage: bench-quic-flood --port N [--host ADDR] [--rate N] [--sockets N]\n"
"           [--initials N] [--quiet-ms N] [--flood-ms N] [--interval-ms N]\n"
"           [--path P] [--client-cpu N]\n"
"Fetches P from the HTTP/3 server at ADDR:N (127.0.0.1) again and again,\n"
"first quietly, then under a flood of real client Initials from N plain\n"
"sockets, and prints both phases' fetch latencies as one JSON line.\n");
}

int main(int argc, char** argv) {
  struct flood f;
  const char* host;
  uint64_t quiet_ms;
  size_t ninitials;
  size_t i;
  double cpu0;
  int client_cpu;
  int port;
  int ai;

  memset(&f, 0, sizeof(f));
  host = "127.0.0.1";
  port = -1;
  f.rate = 1500;
  f.nsockets = 64;
  f.path = "/small.bin";
  f.interval_ms = 100;
  quiet_ms = 5000;
  f.flood_ms = 10000;
  ninitials = 0;
  client_cpu = -1;
  for (ai = 1; ai < argc; ai++) {
    const char* a = argv[ai];
    const char* v = qb_option_value(argc, argv, &ai, usage);
    if (strcmp(a, "--port") == 0)
      port = (int) qb_parse_uint(a, v, 65535);
    else if (strcmp(a, "--host") == 0)
      host = v;
    else if (strcmp(a, "--rate") == 0)
      f.rate = qb_parse_uint(a, v, 1000000);
    else if (strcmp(a, "--sockets") == 0)
      f.nsockets = qb_parse_uint(a, v, MAX_SOCKETS);
    else if (strcmp(a, "--initials") == 0)
      ninitials = qb_parse_uint(a, v, 1000000);
    else if (strcmp(a, "--quiet-ms") == 0)
      quiet_ms = qb_parse_uint(a, v, 3600000);
    else if (strcmp(a, "--flood-ms") == 0)
      f.flood_ms = qb_parse_uint(a, v, 3600000);
    else if (strcmp(a, "--interval-ms") == 0)
      f.interval_ms = qb_parse_uint(a, v, 60000);
    else if (strcmp(a, "--path") == 0)
      f.path = v;
    else if (strcmp(a, "--client-cpu") == 0)
      client_cpu = (int) qb_parse_uint(a, v, 1023);
    else {
      usage();
      return 2;
    }
  }
  if (port < 0 || f.nsockets == 0 || f.rate == 0) {
    usage();
    return 2;
  }
  if (uv_ip4_addr(host, port, (struct sockaddr_in*) &f.server) != 0) {
    fprintf(stderr, "bad --host '%s' (a numeric IPv4 address)\n", host);
    return 2;
  }
  if (qb_pin(client_cpu) != 0)
    return 1;
  /* Unique Initials for the whole flood by default: a re-sent one would
   * find its connection (or its refusal) and cost the server less. */
  if (ninitials == 0)
    ninitials = (size_t) (f.rate * f.flood_ms / 1000 + 1);
  f.loop = uv_default_loop();
  uvq_quic_config_default(&f.config);
  f.config.insecure_skip_verify = 1;
  f.config.alpn = "h3";
  f.initial = malloc(ninitials * sizeof(*f.initial));
  for (i = 0; i < MAX_SOCKETS; i++)
    f.fd[i] = -1;
  for (i = 0; i < f.nsockets; i++)
    if ((f.fd[i] = udp_socket()) < 0) {
      fprintf(stderr, "socket: %s\n", strerror(errno));
      return 1;
    }
  f.ph[0].ms = calloc(MAX_FETCHES, sizeof(double));
  f.ph[1].ms = calloc(MAX_FETCHES, sizeof(double));
  f.ph[0].series = calloc(MAX_FETCHES, sizeof(double));
  f.ph[1].series = calloc(MAX_FETCHES, sizeof(double));
  if (f.initial == NULL || f.ph[0].ms == NULL || f.ph[1].ms == NULL ||
      f.ph[0].series == NULL || f.ph[1].series == NULL)
    return 1;
  cpu0 = qb_cpu_self();
  if (capture(&f, ninitials) != 0)
    return 1;
  fprintf(stderr, "bench-quic-flood: captured %zu Initials in %.1f s of "
          "CPU\n", f.ninitials, qb_cpu_self() - cpu0);

  uv_timer_init(f.loop, &f.tick);
  f.tick.data = &f;
  uv_timer_init(f.loop, &f.next_fetch);
  f.next_fetch.data = &f;
  f.phase = PHASE_QUIET;
  f.phase_end_ns = qb_now_ns() + quiet_ms * 1000000ull;
  fetch_start(&f);
  uv_run(f.loop, UV_RUN_DEFAULT);

  printf("{\"program\": \"bench-quic-flood\", \"version\": \"%s\", "
         "\"rate\": %llu, \"sockets\": %zu, \"initials\": %zu, "
         "\"flood_sent\": %llu, \"flood_send_errors\": %llu, "
         "\"flood_seconds\": %.3f, \"replies_retry\": %llu, "
         "\"replies_initial\": %llu, \"replies_other\": %llu, ",
         uvq_version_string(), (unsigned long long) f.rate, f.nsockets,
         f.ninitials, (unsigned long long) f.sent,
         (unsigned long long) f.send_errors,
         f.flood_start_ns ? (qb_now_ns() - f.flood_start_ns) / 1e9 : 0.0,
         (unsigned long long) f.replies_retry,
         (unsigned long long) f.replies_initial,
         (unsigned long long) f.replies_other);
  print_phase("quiet", &f.ph[0]);
  print_phase("flood", &f.ph[1]);
  printf("\"first_failure_kind\": %d, \"first_failure_code\": %llu}\n",
         f.first_failure_kind, (unsigned long long) f.first_failure_code);
  fflush(stdout);

  uv_timer_stop(&f.tick);
  uv_timer_stop(&f.next_fetch);
  uv_close((uv_handle_t*) &f.tick, NULL);
  uv_close((uv_handle_t*) &f.next_fetch, NULL);
  if (f.h3 != NULL)
    uvq_h3_close(f.h3, fetch_closed);
  uv_run(f.loop, UV_RUN_DEFAULT);
  uv_loop_close(f.loop);
  for (i = 0; i < f.nsockets; i++)
    close(f.fd[i]);
  free(f.initial);
  free(f.ph[0].ms);
  free(f.ph[1].ms);
  free(f.ph[0].series);
  free(f.ph[1].series);
  return f.ph[0].failed + f.ph[1].failed == 0 && f.ph[1].served > 0 ? 0 : 1;
}
