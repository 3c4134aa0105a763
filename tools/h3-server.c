/* uvq-h3-server: serves a directory over HTTP/3 with uvq.
 *
 *   uvq-h3-server --cert cert.pem --key key.pem --root www --port 0
 *
 * Every request is answered with uvq_h3_serve_file() from --root. The
 * first line on stdout is "listening on ADDR PORT", so that a script can
 * start it on port 0 and read the port back. SIGINT or SIGTERM (or
 * --max-requests / --timeout) shut it down gracefully: GOAWAY, requests in
 * progress finish, then a one-line summary. A second signal closes at
 * once.
 *
 * With --workers N (default: one per core) each worker is an endpoint on
 * its own loop and thread; their sockets share the port (SO_REUSEPORT) and
 * uvq's steering program hands each datagram to the worker its connection
 * ID names. Worker 0 runs on the main thread, with the signals. */
#include "tool-common.h"
#include "uvq/h3.h"

#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* The worker index is one octet of uvq's connection IDs. */
#define MAX_WORKERS 256

struct server;

/* One worker: an endpoint on its own loop. Everything here belongs to the
 * worker's thread, except the async handle the main thread signals and
 * the counters read after the thread has ended. */
struct worker {
  struct server* s;
  unsigned int index;
  uv_loop_t own_loop;         /* workers 1..N-1 */
  uv_loop_t* loop;
  uv_thread_t thread;
  uvq_h3_t* h3;
  uv_async_t wake;            /* the main thread asks for a stop */
  uint64_t requests;          /* exchanges finished */
  uint64_t failed;            /* of which ended with an error code */
  uvq_quic_endpoint_stats_t endpoint; /* as last read */
  uvq_udp_stats_t udp;        /* the socket's counters, as last read */
  int stopping;               /* graceful shutdown begun */
};

struct server {
  const char* root;
  int quiet;
  int verbose;
  uint64_t max_requests;      /* 0: no limit */
  struct worker* workers;
  unsigned int nworkers;
  uv_mutex_t lock;            /* guards the fields below */
  uint64_t requests;          /* exchanges finished, all workers */
  int stop_level;             /* 1: graceful stop asked, 2: at once */
  const char* stop_reason;
  uv_async_t stop_async;      /* on the main loop: a worker hit the limit */
  uv_signal_t sigint;
  uv_signal_t sigterm;
  uv_timer_t timer;
  int timer_started;
  unsigned int closed;        /* workers whose endpoint has closed */
};

static void usage(FILE* f) {
  fprintf(f,
"usage: uvq-h3-server --cert FILE --key FILE [options]\n"
"\n"
"Serves the files under --root over HTTP/3 (GET and HEAD).\n"
"\n"
"  --listen ADDR       address to bind: IPv4 or IPv6 literal, 0.0.0.0 or\n"
"                      :: (or *) for any (default 127.0.0.1)\n"
"  --port N            UDP port, 0 picks a free one (default 4433); the\n"
"                      first line on stdout is \"listening on ADDR PORT\"\n"
"  --cert FILE         certificate chain, PEM (required)\n"
"  --key FILE          private key, PEM (required)\n"
"  --root DIR          directory to serve (default .)\n"
"  --cc NAME           congestion control: cubic, bbr or reno (default cubic)\n"
"  --retry[=WHEN]      validate client addresses with Retry (RFC 9000, 8.1):\n"
"                      auto (default: only while --retry-threshold\n"
"                      handshakes are in progress), always (also --retry\n"
"                      alone) or never (refuse new clients over\n"
"                      --max-handshakes)\n"
"  --retry-threshold N handshakes in progress from which auto retries\n"
"                      (default a tenth of --max-handshakes)\n"
"  --max-connections N connections held at once (default 10000)\n"
"  --max-handshakes N  handshakes in progress at once (default 1000)\n"
"  --idle-timeout SEC  close connections idle this long (default 30)\n"
"  --preferred-versions LIST  QUIC versions in preference order, v1,v2\n"
"                      (default) or v2,v1: a client that offers the first\n"
"                      is switched to it (RFC 9368); both are accepted\n"
"  --quic-version V    the same as --preferred-versions V: v1 or v2\n"
"  --preferred-ipv4-addr ADDR, --preferred-ipv6-addr ADDR  offer clients\n"
"                      a preferred address (RFC 9000, 9.6) on the same port;\n"
"                      the server must receive there (--listen 0.0.0.0/::)\n"
"  --handshake-timeout SEC  drop a handshake not done after SEC seconds;\n"
"                      0 or none (default): only --idle-timeout\n"
"  --qlog-dir DIR      write one qlog file per connection into DIR\n"
"  --keylog FILE       append TLS secrets to FILE (default $SSLKEYLOGFILE)\n"
"  --ciphersuites LIST TLS 1.3 suites to accept, colon-separated IANA names\n"
"                      (default TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:\n"
"                      TLS_CHACHA20_POLY1305_SHA256)\n"
"  --file-cache-ms N   keep files up to 64 KiB in memory, checked against\n"
"                      the disk at most every N ms; 0 turns it off\n"
"                      (default 1000)\n"
"  --max-requests N    shut down after N requests\n"
"  --timeout SEC       shut down after SEC seconds\n"
"  --workers N         serve the port with N workers, each a thread with its\n"
"                      own socket, steered by connection ID (default: one\n"
"                      per core)\n"
"  -q, --quiet         print nothing but the listening line\n"
"  -v, --verbose       log every request on stderr\n"
"  -h, --help          this text\n"
"\n"
"SIGINT or SIGTERM shut down gracefully (a second one closes at once).\n"
"Exit status: 0 after a shutdown, 1 if the server could not start,\n"
"2 for a bad command line.\n");
}

#define usage_error(...) tool_usage_error("uvq-h3-server", __VA_ARGS__)

/* Reads the counters while the endpoint still exists: they cannot be read
 * once it has closed. */
static void snapshot(struct worker* w) {
  uvq_quic_endpoint_stats_t es;
  uvq_quic_endpoint_t* ep;

  ep = uvq_h3_endpoint(w->h3);
  if (uvq_quic_endpoint_get_stats(ep, &es) == 0)
    w->endpoint = es;
  uvq_udp_get_stats(uvq_quic_endpoint_udp(ep), &w->udp);
}

static void on_h3_closed(uvq_h3_t* h3) {
  struct worker* w;

  w = uvq_h3_get_data(h3);
  w->h3 = NULL;
  uv_close((uv_handle_t*) &w->wake, NULL);
  if (w->index == 0) {
    struct server* s = w->s;
    uv_close((uv_handle_t*) &s->sigint, NULL);
    uv_close((uv_handle_t*) &s->sigterm, NULL);
    uv_close((uv_handle_t*) &s->stop_async, NULL);
    if (s->timer_started)
      uv_close((uv_handle_t*) &s->timer, NULL);
  }
}

/* The summary, once every worker has stopped: the sum of their counters. */
static void print_summary(struct server* s) {
  uvq_quic_endpoint_stats_t e;
  uvq_udp_stats_t u;
  uint64_t requests;
  uint64_t failed;
  unsigned int i;

  memset(&e, 0, sizeof(e));
  memset(&u, 0, sizeof(u));
  requests = failed = 0;
  for (i = 0; i < s->nworkers; i++) {
    const struct worker* w = &s->workers[i];
    requests += w->requests;
    failed += w->failed;
    e.connections_accepted += w->endpoint.connections_accepted;
    e.connections_refused += w->endpoint.connections_refused;
    e.packets_dropped += w->endpoint.packets_dropped;
    e.version_negotiations += w->endpoint.version_negotiations;
    e.retries += w->endpoint.retries;
    e.stateless_resets += w->endpoint.stateless_resets;
    e.packets_misrouted += w->endpoint.packets_misrouted;
    u.bytes_sent += w->udp.bytes_sent;
    u.datagrams_sent += w->udp.datagrams_sent;
    u.send_syscalls += w->udp.send_syscalls;
    u.gso_sends += w->udp.gso_sends;
    u.gso_segments += w->udp.gso_segments;
    u.bytes_received += w->udp.bytes_received;
    u.datagrams_received += w->udp.datagrams_received;
    u.recv_syscalls += w->udp.recv_syscalls;
    u.gro_packets += w->udp.gro_packets;
    u.gro_segments += w->udp.gro_segments;
  }
  /* stderr, like every other diagnostic: stdout carries only the
   * "listening on" line that scripts read the port from. */
  fprintf(stderr,
         "uvq-h3-server: stopped (%s): %llu requests (%llu failed) on %llu "
         "connections (%llu refused, %llu retried); sent %llu bytes in %llu "
         "datagrams "
         "(%.1f per syscall, GSO %llu sends/%llu segments); received %llu "
         "bytes in %llu datagrams (%.1f per syscall, GRO %llu packets/%llu "
         "segments)\n",
         s->stop_reason, (unsigned long long) requests,
         (unsigned long long) failed,
         (unsigned long long) e.connections_accepted,
         (unsigned long long) e.connections_refused,
         (unsigned long long) e.retries,
         (unsigned long long) u.bytes_sent,
         (unsigned long long) u.datagrams_sent,
         u.send_syscalls ? (double) u.datagrams_sent / u.send_syscalls : 0.0,
         (unsigned long long) u.gso_sends,
         (unsigned long long) u.gso_segments,
         (unsigned long long) u.bytes_received,
         (unsigned long long) u.datagrams_received,
         u.recv_syscalls ? (double) u.datagrams_received / u.recv_syscalls
                         : 0.0,
         (unsigned long long) u.gro_packets,
         (unsigned long long) u.gro_segments);
  if (!s->verbose)
    return;
  fprintf(stderr, "uvq-h3-server: endpoint: %llu connections accepted, "
          "%llu refused, %llu packets dropped, %llu version negotiations, "
          "%llu retries, %llu stateless resets sent, %llu misrouted\n",
          (unsigned long long) e.connections_accepted,
          (unsigned long long) e.connections_refused,
          (unsigned long long) e.packets_dropped,
          (unsigned long long) e.version_negotiations,
          (unsigned long long) e.retries,
          (unsigned long long) e.stateless_resets,
          (unsigned long long) e.packets_misrouted);
  for (i = 0; s->nworkers > 1 && i < s->nworkers; i++) {
    const struct worker* w = &s->workers[i];
    fprintf(stderr, "uvq-h3-server: worker %u: %llu requests on %llu "
            "connections, %llu retries, %llu misrouted\n", i,
            (unsigned long long) w->requests,
            (unsigned long long) w->endpoint.connections_accepted,
            (unsigned long long) w->endpoint.retries,
            (unsigned long long) w->endpoint.packets_misrouted);
  }
}

/* On the worker's own thread: begins (or hurries) its shutdown as the
 * server's stop_level says. */
static void worker_stop(struct worker* w) {
  struct server* s;
  int level;

  s = w->s;
  if (w->h3 == NULL)
    return;
  uv_mutex_lock(&s->lock);
  level = s->stop_level;
  uv_mutex_unlock(&s->lock);
  if (level >= 2) {
    /* Asked twice: do not wait for requests in progress. */
    snapshot(w);
    uvq_h3_close(w->h3, on_h3_closed);
    return;
  }
  if (level == 1 && !w->stopping) {
    w->stopping = 1;
    snapshot(w);
    uvq_h3_shutdown(w->h3, on_h3_closed);
  }
}

static void on_wake(uv_async_t* handle) {
  worker_stop(handle->data);
}

/* On the main thread: every worker stops. */
static void stop(struct server* s, const char* reason) {
  unsigned int i;

  uv_mutex_lock(&s->lock);
  if (s->stop_level == 0)
    s->stop_reason = reason;
  else
    s->stop_reason = "closed at once";
  if (s->stop_level < 2)
    s->stop_level++;
  uv_mutex_unlock(&s->lock);
  if (s->verbose)
    fprintf(stderr, "uvq-h3-server: shutting down (%s)\n", s->stop_reason);
  worker_stop(&s->workers[0]);
  for (i = 1; i < s->nworkers; i++)
    uv_async_send(&s->workers[i].wake);
}

static void on_signal(uv_signal_t* handle, int signum) {
  stop(handle->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void on_timer(uv_timer_t* handle) {
  stop(handle->data, "timeout");
}

static void on_stop_async(uv_async_t* handle) {
  struct server* s = handle->data;
  int level;

  uv_mutex_lock(&s->lock);
  level = s->stop_level;
  uv_mutex_unlock(&s->lock);
  if (level == 0)
    stop(s, "max requests");
}

static void on_request(uvq_h3_req_t* req) {
  struct worker* w;
  int err;

  w = uvq_h3_get_data(uvq_h3_req_h3(req));
  err = uvq_h3_serve_file(req, w->s->root);
  if (err) {
    if (!w->s->quiet)
      fprintf(stderr, "uvq-h3-server: cannot answer a request: %s\n",
              uv_strerror(err));
    uvq_h3_cancel(req, UVQ_H3_INTERNAL_ERROR);
  }
}

static void on_done(uvq_h3_req_t* req, uint64_t app_error) {
  struct worker* w;
  struct server* s;
  const char* method;
  const char* path;
  uint64_t total;
  size_t mlen;
  size_t plen;

  w = uvq_h3_get_data(uvq_h3_req_h3(req));
  s = w->s;
  w->requests++;
  if (app_error != 0 && app_error != UVQ_H3_NO_ERROR)
    w->failed++;
  if (s->verbose) {
    method = uvq_h3_req_method(req, &mlen);
    path = uvq_h3_req_path(req, &plen);
    fprintf(stderr, "uvq-h3-server: %.*s %.*s: %s (0x%llx)\n",
            method ? (int) mlen : 1, method ? method : "-",
            path ? (int) plen : 1, path ? path : "-",
            app_error == 0 || app_error == UVQ_H3_NO_ERROR ? "done" : "reset",
            (unsigned long long) app_error);
  }
  /* The counters are read when shutting down starts, and after each
   * request that finishes during it, so the summary includes them; not
   * on every request (a syscall each). */
  if (w->stopping)
    snapshot(w);
  if (s->max_requests == 0)
    return;
  uv_mutex_lock(&s->lock);
  total = ++s->requests;
  uv_mutex_unlock(&s->lock);
  if (total == s->max_requests)
    uv_async_send(&s->stop_async);
}

static void worker_run(void* arg) {
  struct worker* w = arg;

  uv_run(w->loop, UV_RUN_DEFAULT);
}

enum {
  OPT_LISTEN = 256,
  OPT_PORT,
  OPT_CERT,
  OPT_KEY,
  OPT_ROOT,
  OPT_CC,
  OPT_RETRY,
  OPT_RETRY_THRESHOLD,
  OPT_MAX_CONNECTIONS,
  OPT_MAX_HANDSHAKES,
  OPT_IDLE_TIMEOUT,
  OPT_QLOG_DIR,
  OPT_KEYLOG,
  OPT_CIPHERSUITES,
  OPT_MAX_REQUESTS,
  OPT_TIMEOUT,
  OPT_FILE_CACHE,
  OPT_QUIC_VERSION,
  OPT_PREFERRED_VERSIONS,
  OPT_HANDSHAKE_TIMEOUT,
  OPT_PREFERRED_IPV4,
  OPT_PREFERRED_IPV6,
  OPT_WORKERS
};

int main(int argc, char** argv) {
  static const struct option options[] = {
      {"listen", required_argument, NULL, OPT_LISTEN},
      {"port", required_argument, NULL, OPT_PORT},
      {"cert", required_argument, NULL, OPT_CERT},
      {"key", required_argument, NULL, OPT_KEY},
      {"root", required_argument, NULL, OPT_ROOT},
      {"cc", required_argument, NULL, OPT_CC},
      {"retry", optional_argument, NULL, OPT_RETRY},
      {"retry-threshold", required_argument, NULL, OPT_RETRY_THRESHOLD},
      {"max-connections", required_argument, NULL, OPT_MAX_CONNECTIONS},
      {"max-handshakes", required_argument, NULL, OPT_MAX_HANDSHAKES},
      {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
      {"qlog-dir", required_argument, NULL, OPT_QLOG_DIR},
      {"keylog", required_argument, NULL, OPT_KEYLOG},
      {"ciphersuites", required_argument, NULL, OPT_CIPHERSUITES},
      {"max-requests", required_argument, NULL, OPT_MAX_REQUESTS},
      {"timeout", required_argument, NULL, OPT_TIMEOUT},
      {"file-cache-ms", required_argument, NULL, OPT_FILE_CACHE},
      {"quic-version", required_argument, NULL, OPT_QUIC_VERSION},
      {"preferred-versions", required_argument, NULL, OPT_PREFERRED_VERSIONS},
      {"handshake-timeout", required_argument, NULL, OPT_HANDSHAKE_TIMEOUT},
      {"preferred-ipv4-addr", required_argument, NULL, OPT_PREFERRED_IPV4},
      {"preferred-ipv6-addr", required_argument, NULL, OPT_PREFERRED_IPV6},
      {"workers", required_argument, NULL, OPT_WORKERS},
      {"quiet", no_argument, NULL, 'q'},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  struct sockaddr_storage addr;
  struct sockaddr_storage bound;
  uvq_quic_config_t config;
  uvq_h3_config_t h3config;
  uvq_h3_callbacks_t callbacks;
  struct server s;
  struct worker* w;
  struct stat st;
  uint8_t secret[32];
  uint64_t nworkers;
  unsigned int i;
  const char* listen_addr;
  struct sockaddr_in preferred_v4;
  struct sockaddr_in6 preferred_v6;
  const char* keylog;
  const char* ciphersuites;
  uint64_t timeout_ms;
  uint64_t limit;
  uint64_t port;
  char name[64];
  int namelen;
  int err;
  int c;

  /* Scripts read the listening line through a pipe or a file. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  memset(&s, 0, sizeof(s));
  uvq_quic_config_default(&config);
  /* As ngtcp2's own server: no limit on the handshake but the idle
   * timeout. A client's ClientHello retransmissions through heavy loss
   * come at 1, 3, 7, 15 and 31 s; a connection dropped after 10 s leaves
   * a client still trying to finish its handshake talking to nobody. */
  config.handshake_timeout_ms = UVQ_QUIC_NO_HANDSHAKE_TIMEOUT;
  config.alpn = "h3";
  uvq_h3_config_default(&h3config);
  h3config.file_cache_ms = 1000;
  listen_addr = "127.0.0.1";
  port = 4433;
  keylog = NULL;
  ciphersuites = NULL;
  timeout_ms = 0;
  s.root = ".";
  s.stop_reason = "?";
  nworkers = uv_available_parallelism();
  if (nworkers > MAX_WORKERS)
    nworkers = MAX_WORKERS;

  opterr = 0;
  while ((c = getopt_long(argc, argv, ":qvh", options, NULL)) != -1) {
    switch (c) {
      case OPT_LISTEN: listen_addr = optarg; break;
      case OPT_PORT:
        if (tool_parse_uint(optarg, 0, 65535, &port) != 0)
          usage_error("bad port '%s' (0-65535)", optarg);
        break;
      case OPT_CERT: config.cert_file = optarg; break;
      case OPT_KEY: config.key_file = optarg; break;
      case OPT_ROOT: s.root = optarg; break;
      case OPT_CC:
        if (tool_parse_cc(optarg, &config.cc) != 0)
          usage_error("unknown congestion control '%s' (cubic, bbr, reno)",
                      optarg);
        break;
      case OPT_RETRY:
        if (optarg == NULL || strcmp(optarg, "always") == 0)
          config.retry = UVQ_QUIC_RETRY_ALWAYS;
        else if (strcmp(optarg, "auto") == 0)
          config.retry = UVQ_QUIC_RETRY_AUTO;
        else if (strcmp(optarg, "never") == 0)
          config.retry = UVQ_QUIC_RETRY_NEVER;
        else
          usage_error("bad --retry '%s' (auto, always, never)", optarg);
        break;
      case OPT_RETRY_THRESHOLD:
        if (tool_parse_uint(optarg, 1, UINT_MAX, &limit) != 0)
          usage_error("bad --retry-threshold '%s'", optarg);
        config.retry_threshold = (unsigned int) limit;
        break;
      case OPT_MAX_CONNECTIONS:
        if (tool_parse_uint(optarg, 1, UINT_MAX, &limit) != 0)
          usage_error("bad --max-connections '%s'", optarg);
        config.max_connections = (unsigned int) limit;
        break;
      case OPT_MAX_HANDSHAKES:
        if (tool_parse_uint(optarg, 1, UINT_MAX, &limit) != 0)
          usage_error("bad --max-handshakes '%s'", optarg);
        config.max_handshakes = (unsigned int) limit;
        break;
      case OPT_IDLE_TIMEOUT:
        if (tool_parse_seconds(optarg, &config.idle_timeout_ms) != 0 ||
            config.idle_timeout_ms == 0)
          usage_error("bad --idle-timeout '%s' (seconds, more than 0)",
                      optarg);
        break;
      case OPT_QUIC_VERSION:
        if (tool_parse_quic_version(optarg, &config.preferred_version) != 0)
          usage_error("bad --quic-version '%s' (%s)", optarg,
                      TOOL_VERSIONS_HELP);
        break;
      case OPT_PREFERRED_VERSIONS:
        if (tool_parse_quic_versions(optarg, &config.preferred_version) != 0)
          usage_error("bad --preferred-versions '%s' (%s)", optarg,
                      TOOL_VERSIONS_HELP);
        break;
      case OPT_PREFERRED_IPV4:
        if (uv_ip4_addr(optarg, 0, &preferred_v4) != 0)
          usage_error("bad --preferred-ipv4-addr '%s' (an IPv4 address)",
                      optarg);
        config.preferred_address_ipv4 = &preferred_v4;
        break;
      case OPT_PREFERRED_IPV6:
        if (uv_ip6_addr(optarg, 0, &preferred_v6) != 0)
          usage_error("bad --preferred-ipv6-addr '%s' (an IPv6 address)",
                      optarg);
        config.preferred_address_ipv6 = &preferred_v6;
        break;
      case OPT_HANDSHAKE_TIMEOUT:
        if (tool_parse_handshake_timeout(optarg,
                                         &config.handshake_timeout_ms) != 0)
          usage_error("bad --handshake-timeout '%s' (seconds, or 0 or none)",
                      optarg);
        break;
      case OPT_QLOG_DIR: config.qlog_dir = optarg; break;
      case OPT_KEYLOG: keylog = optarg; break;
      case OPT_CIPHERSUITES:
        if (tool_check_ciphersuites(optarg) != 0)
          usage_error("bad --ciphersuites '%s' (%s)", optarg,
                      TOOL_CIPHERSUITES_HELP);
        ciphersuites = optarg;
        break;
      case OPT_MAX_REQUESTS:
        if (tool_parse_uint(optarg, 1, UINT64_MAX, &s.max_requests) != 0)
          usage_error("bad request count '%s'", optarg);
        break;
      case OPT_FILE_CACHE:
        if (tool_parse_uint(optarg, 0, UINT32_MAX, &h3config.file_cache_ms) != 0)
          usage_error("bad cache time '%s' (milliseconds)", optarg);
        break;
      case OPT_TIMEOUT:
        if (tool_parse_seconds(optarg, &timeout_ms) != 0)
          usage_error("bad timeout '%s' (seconds)", optarg);
        break;
      case OPT_WORKERS:
        if (tool_parse_uint(optarg, 1, MAX_WORKERS, &nworkers) != 0)
          usage_error("bad --workers '%s' (1-%d)", optarg, MAX_WORKERS);
        break;
      case 'q': s.quiet = 1; break;
      case 'v': s.verbose = 1; break;
      case 'h': usage(stdout); return TOOL_EXIT_OK;
      case ':': usage_error("option '%s' needs a value", argv[optind - 1]);
        break;
      default: usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc)
    usage_error("unexpected argument '%s'", argv[optind]);
  if (config.cert_file == NULL || config.key_file == NULL)
    usage_error("--cert and --key are required");
  if (stat(s.root, &st) != 0 || !S_ISDIR(st.st_mode))
    usage_error("--root '%s' is not a directory", s.root);
  if (config.qlog_dir != NULL &&
      (stat(config.qlog_dir, &st) != 0 || !S_ISDIR(st.st_mode)))
    usage_error("--qlog-dir '%s' is not a directory", config.qlog_dir);
  if (tool_parse_ip(listen_addr, (int) port, &addr) != 0)
    usage_error("bad listen address '%s' (a numeric IPv4 or IPv6 address)",
                listen_addr);
  config.keylog_file = tool_keylog_file(keylog);
  config.tls_ciphersuites = ciphersuites;

  /* One secret for the group: any worker then validates the Retry tokens
   * and makes the stateless resets of another. */
  if (nworkers > 1) {
    err = uv_random(NULL, NULL, secret, sizeof(secret), 0, NULL);
    if (err) {
      fprintf(stderr, "uvq-h3-server: no random bytes: %s\n",
              uv_strerror(err));
      return TOOL_EXIT_FAILED;
    }
    config.static_secret = secret;
    config.worker_count = (unsigned int) nworkers;
  }
  s.nworkers = (unsigned int) nworkers;
  s.workers = calloc(s.nworkers, sizeof(*s.workers));
  if (s.workers == NULL || uv_mutex_init(&s.lock) != 0) {
    fprintf(stderr, "uvq-h3-server: out of memory\n");
    return TOOL_EXIT_FAILED;
  }
  memset(&callbacks, 0, sizeof(callbacks));
  callbacks.request = on_request;
  callbacks.done = on_done;
  /* The workers bind in index order: the kernel numbers the sockets of a
   * reuseport group in bind order, and the steering program answers with
   * the worker index. Worker 0 picks the port when --port is 0. */
  for (i = 0; i < s.nworkers; i++) {
    w = &s.workers[i];
    w->s = &s;
    w->index = i;
    if (i == 0) {
      w->loop = uv_default_loop();
    } else {
      w->loop = &w->own_loop;
      if (uv_loop_init(w->loop) != 0) {
        fprintf(stderr, "uvq-h3-server: cannot make a loop\n");
        return TOOL_EXIT_FAILED;
      }
    }
    config.worker_index = nworkers > 1 ? i : 0;
    err = uvq_h3_server_new(w->loop, &config, &h3config, &callbacks, w,
                            &w->h3);
    if (err) {
      fprintf(stderr, "uvq-h3-server: cannot set up TLS: %s (%s)\n",
              uv_strerror(err),
              err == UV_EIO ? "certificate, key or key log file unreadable, "
                              "or the key does not match the certificate"
                            : "bad configuration");
      return TOOL_EXIT_FAILED;
    }
    err = uvq_h3_listen(w->h3, (struct sockaddr*) &addr);
    if (err) {
      fprintf(stderr, "uvq-h3-server: cannot listen on %s port %d: %s\n",
              listen_addr, (int) port, uv_strerror(err));
      return TOOL_EXIT_FAILED;
    }
    if (i == 0) {
      namelen = sizeof(bound);
      err = uvq_udp_getsockname(uvq_quic_endpoint_udp(uvq_h3_endpoint(w->h3)),
                                (struct sockaddr*) &bound, &namelen);
      if (err) {
        fprintf(stderr, "uvq-h3-server: getsockname: %s\n", uv_strerror(err));
        return TOOL_EXIT_FAILED;
      }
      addr = bound;
    }
    uv_async_init(w->loop, &w->wake, on_wake);
    w->wake.data = w;
  }
  {
    uvq_quic_endpoint_stats_t es;
    int p = tool_format_addr((struct sockaddr*) &bound, name, sizeof(name));
    printf("listening on %s %d\n", name, p);
    /* The last worker's attach is the one in effect for the group. */
    uvq_quic_endpoint_get_stats(
        uvq_h3_endpoint(s.workers[s.nworkers - 1].h3), &es);
    if (!s.quiet && s.nworkers > 1)
      fprintf(stderr, "uvq-h3-server: %u workers, steering: %s%s%s\n",
              s.nworkers,
              es.steering == UVQ_QUIC_STEERING_BPF
                  ? "BPF by connection ID"
                  : "the kernel's hash (no steering program: ",
              es.steering == UVQ_QUIC_STEERING_BPF
                  ? ""
                  : uv_strerror((int) es.steering_error),
              es.steering == UVQ_QUIC_STEERING_BPF ? "" : ")");
  }

  w = &s.workers[0];
  uv_async_init(w->loop, &s.stop_async, on_stop_async);
  s.stop_async.data = &s;
  uv_signal_init(w->loop, &s.sigint);
  uv_signal_init(w->loop, &s.sigterm);
  s.sigint.data = &s;
  s.sigterm.data = &s;
  uv_signal_start(&s.sigint, on_signal, SIGINT);
  uv_signal_start(&s.sigterm, on_signal, SIGTERM);
  if (timeout_ms > 0) {
    uv_timer_init(w->loop, &s.timer);
    s.timer.data = &s;
    uv_timer_start(&s.timer, on_timer, timeout_ms, 0);
    s.timer_started = 1;
  }
  for (i = 1; i < s.nworkers; i++) {
    if (uv_thread_create(&s.workers[i].thread, worker_run,
                         &s.workers[i]) != 0) {
      fprintf(stderr, "uvq-h3-server: cannot start worker %u\n", i);
      return TOOL_EXIT_FAILED;
    }
  }

  uv_run(w->loop, UV_RUN_DEFAULT);
  for (i = 1; i < s.nworkers; i++) {
    uv_thread_join(&s.workers[i].thread);
    uv_loop_close(s.workers[i].loop);
  }
  uv_loop_close(w->loop);
  if (!s.quiet)
    print_summary(&s);
  uv_mutex_destroy(&s.lock);
  free(s.workers);
  return TOOL_EXIT_OK;
}
