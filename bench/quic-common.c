/* The QUIC benchmark helpers' shared harness: see quic-common.h. */
#include "quic-common.h"

#include "uvq/h3.h"

#include <errno.h>
#include <malloc.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- small things --------------------------------------------------------- */

uint64_t qb_now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static double tv_s(struct timeval tv) {
  return (double) tv.tv_sec + (double) tv.tv_usec / 1e6;
}

double qb_cpu_self(void) {
  struct rusage ru;

  getrusage(RUSAGE_SELF, &ru);
  return tv_s(ru.ru_utime) + tv_s(ru.ru_stime);
}

long qb_rss_kb(void) {
  char line[256];
  long kb;
  FILE* f;

  kb = -1;
  f = fopen("/proc/self/status", "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  fclose(f);
  return kb;
}

long long qb_heap_bytes(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  struct mallinfo2 mi;

  mi = mallinfo2();
  return (long long) mi.uordblks + (long long) mi.hblkhd;
#else
  return -1;
#endif
}

int qb_pin(int cpu) {
  cpu_set_t set;

  if (cpu < 0)
    return 0;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0) {
    fprintf(stderr, "cannot pin to CPU %d: %s\n", cpu, strerror(errno));
    return -1;
  }
  return 0;
}

const char* qb_option_value(int argc, char** argv, int* ai,
                            void (*usage)(void)) {
  const char* a = argv[*ai];

  if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
    usage();
    exit(0);
  }
  if (*ai + 1 >= argc) {
    usage();
    exit(2);
  }
  return argv[++*ai];
}

uint64_t qb_parse_uint(const char* name, const char* value, uint64_t max) {
  unsigned long long v;
  char* end;

  errno = 0;
  v = strtoull(value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v > max) {
    fprintf(stderr, "bad %s '%s' (0-%llu)\n", name, value,
            (unsigned long long) max);
    exit(2);
  }
  return v;
}

int qb_parse_mode(const char* value) {
  if (strcmp(value, "h3") == 0)
    return 1;
  if (strcmp(value, "quic") == 0)
    return 0;
  fprintf(stderr, "bad --mode '%s' (h3 or quic)\n", value);
  exit(2);
}

int qb_certs_make(qb_certs_t* certs) {
  char cmd[1024];

  snprintf(certs->dir, sizeof(certs->dir), "/tmp/uvq-qbench-XXXXXX");
  if (mkdtemp(certs->dir) == NULL) {
    fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
    return -1;
  }
  snprintf(certs->cert, sizeof(certs->cert), "%s/cert.pem", certs->dir);
  snprintf(certs->key, sizeof(certs->key), "%s/key.pem", certs->dir);
  snprintf(cmd, sizeof(cmd),
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
           "-nodes -keyout %s -out %s -days 2 -subj /CN=localhost "
           "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
           ">/dev/null 2>&1", certs->key, certs->cert);
  if (system(cmd) != 0) {
    fprintf(stderr, "could not make a certificate with the openssl command "
            "(give --cert and --key)\n");
    qb_certs_cleanup(certs);
    return -1;
  }
  return 0;
}

void qb_certs_cleanup(qb_certs_t* certs) {
  if (certs->dir[0] == '\0')
    return;
  unlink(certs->cert);
  unlink(certs->key);
  rmdir(certs->dir);
  certs->dir[0] = '\0';
}

/* ---- the server child ----------------------------------------------------- */

struct child {
  uv_loop_t* loop;
  qb_server_opts_t opts;
  uint8_t* response;
  uvq_h3_t* h3;                /* QB_SERVER_H3 */
  uvq_quic_endpoint_t* ep;     /* QB_SERVER_QUIC (also h3's endpoint) */
  uv_poll_t ctl_poll;
  int ctl;
  unsigned long long live;
  unsigned long long requests;
};

struct child_write {
  uvq_quic_write_t req;
  uv_buf_t buf;
};

static void h3_on_request(uvq_h3_req_t* req) {
  struct child* c;
  uvq_h3_body_t body;

  c = uvq_h3_get_data(uvq_h3_req_h3(req));
  memset(&body, 0, sizeof(body));
  body.kind = UVQ_H3_BODY_MEMORY;
  body.data = c->response;
  body.len = c->opts.response_bytes;
  if (uvq_h3_respond(req, 200, NULL, 0, &body) != 0)
    uvq_h3_cancel(req, UVQ_H3_INTERNAL_ERROR);
}

static void h3_on_done(uvq_h3_req_t* req, uint64_t app_error) {
  struct child* c;

  (void) app_error;
  c = uvq_h3_get_data(uvq_h3_req_h3(req));
  c->requests++;
}

static int quic_on_accept(uvq_quic_endpoint_t* ep, uvq_quic_conn_t* conn) {
  struct child* c;

  (void) conn;
  c = uvq_quic_endpoint_get_data(ep);
  c->live++;
  return 0;
}

static void quic_on_closed(uvq_quic_conn_t* conn,
                           const uvq_quic_error_t* error) {
  struct child* c;

  (void) error;
  c = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));
  if (uvq_quic_conn_is_server(conn) && c->live > 0)
    c->live--;
}

static void quic_on_write(uvq_quic_write_t* req, int status) {
  (void) status;
  free(req->data);
}

static void quic_on_stream_data(uvq_quic_conn_t* conn,
                                int64_t stream_id,
                                const uint8_t* data,
                                size_t len,
                                int fin) {
  struct child_write* w;
  struct child* c;

  (void) data;
  c = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));
  uvq_quic_stream_consume(conn, stream_id, len);
  if (!fin || (stream_id & 3) != 0)
    return;
  w = calloc(1, sizeof(*w));
  if (w == NULL)
    return;
  w->req.data = w;
  w->buf = uv_buf_init((char*) c->response,
                       (unsigned int) c->opts.response_bytes);
  if (uvq_quic_stream_write(&w->req, conn, stream_id, &w->buf, 1, 1,
                            quic_on_write) != 0) {
    free(w);
    return;
  }
  c->requests++;
}

static void child_report(struct child* c) {
  uvq_quic_endpoint_stats_t st;
  struct rusage ru;
  char line[256];
  int n;

  memset(&st, 0, sizeof(st));
  uvq_quic_endpoint_get_stats(c->ep, &st);
  getrusage(RUSAGE_SELF, &ru);
  n = snprintf(line, sizeof(line), "R %.6f %.6f %ld %lld %llu %llu %llu\n",
               tv_s(ru.ru_utime), tv_s(ru.ru_stime), qb_rss_kb(),
               qb_heap_bytes(),
               (unsigned long long) st.connections_accepted,
               c->opts.kind == QB_SERVER_QUIC ? c->live : 0ull, c->requests);
  if (write(c->ctl, line, (size_t) n) != n)
    _exit(3);
}

static void child_on_closed_h3(uvq_h3_t* h3) {
  (void) h3;
}

static void child_on_closed_ep(uvq_quic_endpoint_t* ep) {
  (void) ep;
}

static void child_on_ctl(uv_poll_t* handle, int status, int events) {
  struct child* c;
  char buf[64];
  ssize_t n;
  ssize_t i;

  (void) status;
  (void) events;
  c = handle->data;
  n = read(c->ctl, buf, sizeof(buf));
  if (n <= 0)
    buf[0] = 'Q', n = 1;  /* The parent went away. */
  for (i = 0; i < n; i++) {
    if (buf[i] == 'R') {
      child_report(c);
    } else if (buf[i] == 'Q') {
      uv_poll_stop(&c->ctl_poll);
      uv_close((uv_handle_t*) &c->ctl_poll, NULL);
      if (c->h3 != NULL)
        uvq_h3_close(c->h3, child_on_closed_h3);
      else
        uvq_quic_endpoint_close(c->ep, child_on_closed_ep);
      return;
    }
  }
}

static int child_main(int ctl, const qb_server_opts_t* opts) {
  uvq_quic_callbacks_t qcb;
  uvq_h3_callbacks_t hcb;
  uvq_quic_config_t config;
  struct sockaddr_in addr;
  struct sockaddr_storage bound;
  struct child c;
  char line[64];
  int namelen;
  int err;
  int n;

  memset(&c, 0, sizeof(c));
  c.loop = uv_default_loop();
  c.opts = *opts;
  c.ctl = ctl;
  c.response = malloc(opts->response_bytes ? opts->response_bytes : 1);
  memset(c.response, 'x', opts->response_bytes);
  if (qb_pin(opts->cpu) != 0)
    return 1;

  uvq_quic_config_default(&config);
  config.cert_file = opts->cert;
  config.key_file = opts->key;
  if (opts->max_connections)
    config.max_connections = opts->max_connections;
  if (opts->max_handshakes)
    config.max_handshakes = opts->max_handshakes;
  if (opts->idle_timeout_ms)
    config.idle_timeout_ms = opts->idle_timeout_ms;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if (opts->kind == QB_SERVER_H3) {
    config.alpn = "h3";
    memset(&hcb, 0, sizeof(hcb));
    hcb.request = h3_on_request;
    hcb.done = h3_on_done;
    err = uvq_h3_server_new(c.loop, &config, NULL, &hcb, &c, &c.h3);
    if (err == 0)
      err = uvq_h3_listen(c.h3, (struct sockaddr*) &addr);
    if (err == 0)
      c.ep = uvq_h3_endpoint(c.h3);
  } else {
    config.alpn = QB_ALPN_QUIC;
    memset(&qcb, 0, sizeof(qcb));
    qcb.accept = quic_on_accept;
    qcb.closed = quic_on_closed;
    qcb.stream_data = quic_on_stream_data;
    err = uvq_quic_endpoint_new(c.loop, &config, &qcb, &c, &c.ep);
    if (err == 0)
      err = uvq_quic_endpoint_bind(c.ep, (struct sockaddr*) &addr);
  }
  if (err != 0) {
    fprintf(stderr, "server: cannot start: %s\n", uv_strerror(err));
    return 1;
  }
  namelen = sizeof(bound);
  err = uvq_udp_getsockname(uvq_quic_endpoint_udp(c.ep),
                            (struct sockaddr*) &bound, &namelen);
  if (err != 0)
    return 1;
  n = snprintf(line, sizeof(line), "P %d\n",
               ntohs(((struct sockaddr_in*) &bound)->sin_port));
  if (write(ctl, line, (size_t) n) != n)
    return 1;
  uv_poll_init(c.loop, &c.ctl_poll, ctl);
  c.ctl_poll.data = &c;
  uv_poll_start(&c.ctl_poll, UV_READABLE, child_on_ctl);
  uv_run(c.loop, UV_RUN_DEFAULT);
  free(c.response);
  return 0;
}

/* ---- the parent's side ---------------------------------------------------- */

/* Reads one line (up to len-1 bytes) from fd, blocking. */
static int read_line(int fd, char* buf, size_t len) {
  size_t off;
  ssize_t n;

  off = 0;
  while (off + 1 < len) {
    n = read(fd, buf + off, 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return -1;
    if (buf[off] == '\n')
      break;
    off++;
  }
  buf[off] = '\0';
  return 0;
}

int qb_server_start(qb_server_t* s, const qb_server_opts_t* opts) {
  char line[64];
  int sv[2];

  memset(s, 0, sizeof(*s));
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    perror("socketpair");
    return -1;
  }
  fflush(stdout);
  fflush(stderr);
  s->pid = fork();
  if (s->pid < 0) {
    perror("fork");
    return -1;
  }
  if (s->pid == 0) {
    close(sv[0]);
    _exit(child_main(sv[1], opts));
  }
  close(sv[1]);
  s->ctl = sv[0];
  if (read_line(s->ctl, line, sizeof(line)) != 0 ||
      sscanf(line, "P %d", &s->port) != 1) {
    fprintf(stderr, "the server child did not start\n");
    qb_server_stop(s);
    return -1;
  }
  return 0;
}

int qb_server_report(qb_server_t* s, qb_report_t* r) {
  char line[256];

  memset(r, 0, sizeof(*r));
  if (write(s->ctl, "R", 1) != 1 || read_line(s->ctl, line, sizeof(line)) != 0)
    return -1;
  if (sscanf(line, "R %lf %lf %ld %lld %llu %llu %llu", &r->cpu_user_s,
             &r->cpu_sys_s, &r->rss_kb, &r->heap_bytes, &r->accepted,
             &r->live, &r->requests) != 7)
    return -1;
  return 0;
}

int qb_server_stop(qb_server_t* s) {
  int status;
  int i;

  if (s->pid <= 0)
    return -1;
  if (write(s->ctl, "Q", 1) != 1) {
    /* Already gone; reap below. */
  }
  /* A clean close takes a few ms; a hung child is killed after 5 s. */
  for (i = 0; i < 500; i++) {
    if (waitpid(s->pid, &status, WNOHANG) == s->pid)
      break;
    usleep(10000);
  }
  if (i == 500) {
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &status, 0);
  }
  close(s->ctl);
  s->pid = 0;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int cmp_double(const void* a, const void* b) {
  double x;
  double y;

  x = *(const double*) a;
  y = *(const double*) b;
  return x < y ? -1 : x > y;
}

void qb_sort_doubles(double* v, size_t n) {
  qsort(v, n, sizeof(*v), cmp_double);
}

double qb_quantile(const double* v, size_t n, double q) {
  size_t k;

  if (n == 0)
    return 0.0;
  k = (size_t) (q * (double) n + 0.999999);
  if (k == 0)
    k = 1;
  if (k > n)
    k = n;
  return v[k - 1];
}
