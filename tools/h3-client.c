/* uvq-h3-client: fetches URLs over HTTP/3 with uvq, like a small curl.
 *
 *   uvq-h3-client --cacert cert.pem --repeat 10 --json --sha256 \
 *       https://localhost:4433/file.bin
 *
 * Every URL names the same server: all fetches share one QUIC connection,
 * up to --concurrency of them in flight at once. At the end it can print
 * one JSON object with the transfer's figures and what the datapath did
 * (the connection's and the UDP socket's counters). The exit status says
 * what went wrong first; see usage(). */
#include "tool-common.h"
#include "uvq/h3.h"

/* wolfSSL's build options must come before any wolfCrypt header, or the
 * structures here and in the library disagree. */
#include <wolfssl/options.h>
#include <wolfssl/wolfcrypt/sha256.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 10000

enum output_mode { OUT_STDOUT, OUT_FILE, OUT_DIR, OUT_DISCARD };

struct url {
  const char* text;      /* as given */
  char* host;            /* without brackets */
  char* authority;       /* host[:port] as written, for :authority */
  char* path;            /* path and query, at least "/" */
  char* name;            /* file name for --output-dir */
  int port;
};

struct fetch {
  size_t url;            /* index into client.urls */
  int started;
  int finished;
  int status;            /* :status, 0 if none arrived */
  int ended;             /* the response's stream ended */
  uint64_t app_error;    /* from the done callback */
  int64_t content_length; /* -1 if absent */
  uint64_t bytes;
  uint64_t start_ns;
  uint64_t end_ns;
  int fd;                /* where the body goes; -1: nowhere */
  char* out_path;
  int write_error;       /* errno of a failed write */
  wc_Sha256* sha;
  char sha_hex[65];
};

struct client {
  uv_loop_t* loop;
  uvq_h3_t* h3;
  uvq_quic_config_t config;

  /* Options. */
  uint64_t repeat;
  uint64_t concurrency;
  int mode;              /* enum output_mode */
  const char* output;    /* file or directory */
  const char* sni;
  int family;            /* AF_UNSPEC, AF_INET or AF_INET6 */
  uint64_t max_time_ms;
  int json;
  int sha256;
  int verbose;

  struct url* urls;
  size_t nurls;
  struct fetch* fetches;
  size_t nfetches;
  size_t next;           /* next fetch to start */
  size_t inflight;
  size_t done;

  struct sockaddr_storage remote;
  uv_getaddrinfo_t resolver;
  uv_idle_t pump;
  uv_timer_t max_timer;
  uint64_t connect_ns;   /* uvq_h3_connect called */
  uint64_t connected_ns; /* the handshake completed */
  uint64_t first_ns;     /* first request sent */
  uint64_t last_ns;      /* last exchange over */
  int connected;
  int finishing;         /* our own shutdown or close is under way */

  uvq_quic_conn_stats_t conn_stats;
  int have_conn_stats;
  uvq_udp_stats_t udp_stats;
  unsigned int features;

  char user_agent[64];
  int exit_code;         /* the first fatal error's, or 0 */
  char error[512];       /* its description */
};

static void usage(FILE* f) {
  fprintf(f,
"usage: uvq-h3-client [options] URL...\n"
"\n"
"Fetches each URL (https://HOST[:PORT]/path; HOST a name, an IPv4 address\n"
"or [an IPv6 address]) over HTTP/3. All URLs must name the same server:\n"
"they share one connection.\n"
"\n"
"  --repeat N           fetch the URL list N times (default 1)\n"
"  --concurrency N      requests in flight at once (default 1)\n"
"  -o, --output FILE    write the body to FILE (one fetch only; - is stdout)\n"
"  --output-dir DIR     write each body to DIR/NAME (NAME: the path's last\n"
"                       part, index.html for \"/\"; .N added for repeats)\n"
"  --discard            do not keep bodies\n"
"                       (default: stdout, or discard with --json/--sha256)\n"
"  --sha256             print the SHA-256 of each body (\"HEX  URL\")\n"
"  --json               print one JSON object at the end instead\n"
"  --cacert FILE        trust the CAs in FILE (PEM) (default: system store)\n"
"  -k, --insecure       do not verify the server's certificate\n"
"  --sni NAME           server name for TLS and its certificate check\n"
"                       (default: the URL's host)\n"
"  --cc NAME            congestion control: cubic, bbr or reno\n"
"  --connect-timeout SEC  give up if the handshake takes longer (default 10)\n"
"  --max-time SEC       give up if everything takes longer\n"
"  -4, -6               resolve names to IPv4 or IPv6 addresses only\n"
"  --qlog-dir DIR       write a qlog file of the connection into DIR\n"
"  --keylog FILE        append TLS secrets to FILE (default $SSLKEYLOGFILE)\n"
"  --ciphersuites LIST  TLS 1.3 suites to offer, colon-separated IANA names\n"
"                       (default TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:\n"
"                       TLS_CHACHA20_POLY1305_SHA256)\n"
"  -v, --verbose        one line per fetch on stderr\n"
"  -h, --help           this text\n"
"\n"
"Exit status: 0 if every response was 2xx and complete; 1 if one was not\n"
"(or --max-time ran out); 2 bad command line; 3 name not resolved, no\n"
"answer or connection lost; 4 TLS handshake failed; 5 local file error.\n");
}

static void usage_error(const char* fmt, ...)
    __attribute__((format(printf, 1, 2), noreturn));

static void usage_error(const char* fmt, ...) {
  va_list ap;

  fprintf(stderr, "%s: ", "uvq-h3-client");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry 'uvq-h3-client --help'.\n");
  exit(TOOL_EXIT_USAGE);
}

static void* xmalloc(size_t n) {
  void* p;

  p = calloc(1, n ? n : 1);
  if (p == NULL) {
    fprintf(stderr, "uvq-h3-client: out of memory\n");
    exit(TOOL_EXIT_FAILED);
  }
  return p;
}

/* Frees the first n parsed URLs and the array. */
static void free_urls(struct url* urls, size_t n) {
  size_t i;

  for (i = 0; i < n; i++) {
    free(urls[i].host);
    free(urls[i].authority);
    free(urls[i].path);
    free(urls[i].name);
  }
  free(urls);
}

static char* xstrndup(const char* s, size_t n) {
  char* p;

  p = xmalloc(n + 1);
  memcpy(p, s, n);
  return p;
}

/* ---- URLs ----------------------------------------------------------------- */

/* Splits https://HOST[:PORT][/path][?query][#fragment]. Returns NULL or
 * what is wrong. */
static const char* parse_url(const char* text, struct url* u) {
  const char* p;
  const char* auth_end;
  const char* host;
  const char* host_end;
  const char* port;
  const char* path_end;
  const char* last;
  uint64_t portnum;
  size_t hostlen;
  char* portstr;

  memset(u, 0, sizeof(*u));
  u->text = text;
  if (strncasecmp(text, "https://", 8) != 0)
    return "only https:// URLs are supported";
  p = text + 8;
  auth_end = p + strcspn(p, "/?#");
  if (memchr(p, '@', (size_t) (auth_end - p)) != NULL)
    return "user names in URLs are not supported";
  port = NULL;
  if (*p == '[') {
    host = p + 1;
    host_end = memchr(host, ']', (size_t) (auth_end - host));
    if (host_end == NULL)
      return "unterminated [IPv6 address]";
    if (host_end + 1 < auth_end) {
      if (host_end[1] != ':')
        return "junk after ]";
      port = host_end + 2;
    }
  } else {
    host = p;
    host_end = memchr(p, ':', (size_t) (auth_end - p));
    if (host_end != NULL)
      port = host_end + 1;
    else
      host_end = auth_end;
  }
  hostlen = (size_t) (host_end - host);
  if (hostlen == 0)
    return "no host";
  u->host = xstrndup(host, hostlen);
  if (*p == '[') {
    struct sockaddr_in6 a6;
    if (uv_ip6_addr(u->host, 0, &a6) != 0)
      return "bad IPv6 address";
  }
  u->port = 443;
  if (port != NULL) {
    portstr = xstrndup(port, (size_t) (auth_end - port));
    if (tool_parse_uint(portstr, 1, 65535, &portnum) != 0) {
      free(portstr);
      return "bad port";
    }
    free(portstr);
    u->port = (int) portnum;
  }
  u->authority = xstrndup(p, (size_t) (auth_end - p));
  /* The fragment is the client's business, never sent (RFC 9110, 7.1). */
  path_end = auth_end + strcspn(auth_end, "#");
  if (*auth_end == '/') {
    u->path = xstrndup(auth_end, (size_t) (path_end - auth_end));
  } else {
    u->path = xmalloc((size_t) (path_end - auth_end) + 2);
    u->path[0] = '/';
    memcpy(u->path + 1, auth_end, (size_t) (path_end - auth_end));
  }
  /* The file name: the last path segment, without the query. */
  path_end = u->path + strcspn(u->path, "?");
  last = path_end;
  while (last > u->path && last[-1] != '/')
    last--;
  if (last == path_end || (path_end - last == 1 && last[0] == '.') ||
      (path_end - last == 2 && last[0] == '.' && last[1] == '.'))
    u->name = xstrndup("index.html", 10);
  else
    u->name = xstrndup(last, (size_t) (path_end - last));
  return NULL;
}

/* ---- output --------------------------------------------------------------- */

static void hex(const uint8_t* in, size_t len, char* out) {
  static const char digits[] = "0123456789abcdef";
  size_t i;

  for (i = 0; i < len; i++) {
    out[2 * i] = digits[in[i] >> 4];
    out[2 * i + 1] = digits[in[i] & 15];
  }
  out[2 * len] = '\0';
}

static int write_all(int fd, const uint8_t* data, size_t len) {
  ssize_t n;

  while (len > 0) {
    n = write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return errno;
    }
    data += n;
    len -= (size_t) n;
  }
  return 0;
}

/* The name fetch i's body goes to under --output-dir: .N is added when the
 * same name is fetched more than once, N counting from 1 in fetch order. */
static char* dir_path(struct client* c, size_t i) {
  const char* name;
  size_t occurrence;
  size_t total;
  size_t j;
  char* path;
  size_t len;

  name = c->urls[c->fetches[i].url].name;
  occurrence = 0;
  total = 0;
  for (j = 0; j < c->nurls; j++)
    if (strcmp(c->urls[j].name, name) == 0)
      total++;
  total *= c->repeat;
  for (j = 0; j <= i; j++)
    if (strcmp(c->urls[c->fetches[j].url].name, name) == 0)
      occurrence++;
  len = strlen(c->output) + strlen(name) + 32;
  path = xmalloc(len);
  if (total > 1)
    snprintf(path, len, "%s/%s.%zu", c->output, name, occurrence);
  else
    snprintf(path, len, "%s/%s", c->output, name);
  return path;
}

/* ---- the transfer --------------------------------------------------------- */

static void on_h3_closed(uvq_h3_t* h3);

/* Reads the counters while the connection and the socket still exist. */
static void snapshot(struct client* c) {
  uvq_quic_conn_t* qc;
  uvq_udp_t* udp;

  if (c->h3 == NULL)
    return;
  qc = uvq_h3_conn(c->h3);
  if (qc != NULL && c->connected &&
      uvq_quic_conn_get_stats(qc, &c->conn_stats) == 0)
    c->have_conn_stats = 1;
  udp = uvq_quic_endpoint_udp(uvq_h3_endpoint(c->h3));
  uvq_udp_get_stats(udp, &c->udp_stats);
  c->features = uvq_udp_features(udp);
}

/* Ends everything now: the first fatal error decides the exit status. */
static void fail(struct client* c, int code, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(struct client* c, int code, const char* fmt, ...) {
  va_list ap;

  if (c->exit_code == 0) {
    c->exit_code = code;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
  }
  if (c->h3 != NULL && !c->finishing) {
    c->finishing = 1;
    snapshot(c);
    uvq_h3_close(c->h3, on_h3_closed);
  }
}

static void finish(struct client* c) {
  if (c->finishing || c->h3 == NULL)
    return;
  c->finishing = 1;
  snapshot(c);
  uvq_h3_shutdown(c->h3, on_h3_closed);
}

static void start_fetch(struct client* c, struct fetch* f);

static void pump(struct client* c) {
  struct fetch* f;
  uvq_h3_header_t ua;
  const struct url* u;
  int err;

  while (!c->finishing && c->inflight < c->concurrency &&
         c->next < c->nfetches) {
    f = &c->fetches[c->next];
    u = &c->urls[f->url];
    start_fetch(c, f);
    if (c->finishing)
      return;
    ua.name = "user-agent";
    ua.namelen = 10;
    ua.value = c->user_agent;
    ua.valuelen = strlen(ua.value);
    err = uvq_h3_request(c->h3, "GET", "https", u->authority, u->path, &ua, 1,
                         NULL, f, NULL);
    if (err == UV_EAGAIN)
      return; /* The server's stream limit: requests_available (or a done
                 callback) starts the pump again. */
    if (err == UV_ECONNRESET) {
      /* The server sent GOAWAY: no new requests on this connection. Those
       * in progress finish first. */
      if (c->inflight > 0)
        return;
      fail(c, TOOL_EXIT_CONNECT, "the server at %s is shutting down (GOAWAY): "
           "%zu of %zu fetches were not made", u->authority,
           c->nfetches - c->done, c->nfetches);
      return;
    }
    if (err) {
      fail(c, TOOL_EXIT_CONNECT, "cannot send a request: %s",
           uv_strerror(err));
      return;
    }
    if (c->first_ns == 0)
      c->first_ns = uv_hrtime();
    f->started = 1;
    f->start_ns = uv_hrtime();
    c->next++;
    c->inflight++;
  }
  if (c->done == c->nfetches)
    finish(c);
}

/* Opens the fetch's output and hash; called again if the request had to
 * wait for a stream, so it must not redo what is done. */
static void start_fetch(struct client* c, struct fetch* f) {
  int fd;

  if (f->sha == NULL && c->sha256) {
    f->sha = xmalloc(sizeof(*f->sha));
    if (wc_InitSha256(f->sha) != 0) {
      fail(c, TOOL_EXIT_FAILED, "cannot initialize SHA-256");
      return;
    }
  }
  if (f->fd >= 0 || c->mode == OUT_DISCARD)
    return;
  if (c->mode == OUT_STDOUT || strcmp(c->output, "-") == 0) {
    f->fd = STDOUT_FILENO;
    return;
  }
  if (f->out_path == NULL)
    f->out_path = c->mode == OUT_DIR ? dir_path(c, (size_t) (f - c->fetches))
                                     : xstrndup(c->output, strlen(c->output));
  fd = open(f->out_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    fail(c, TOOL_EXIT_LOCAL, "cannot open %s: %s", f->out_path,
         strerror(errno));
    return;
  }
  f->fd = fd;
}

static void on_pump(uv_idle_t* handle) {
  uv_idle_stop(handle);
  pump(handle->data);
}

static void on_connected(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  struct client* c;
  char what[384];
  int code;

  c = uvq_h3_get_data(h3);
  if (error != NULL) {
    code = tool_describe_error(error, what, sizeof(what));
    fail(c, code, "cannot connect to %s: %s", c->urls[0].authority, what);
    return;
  }
  c->connected = 1;
  c->connected_ns = uv_hrtime();
  if (c->verbose) {
    size_t alen;
    const char* alpn = uvq_quic_conn_alpn(uvq_h3_conn(h3), &alen);
    fprintf(stderr, "uvq-h3-client: connected to %s in %.1f ms (ALPN %.*s)\n",
            c->urls[0].authority, (c->connected_ns - c->connect_ns) / 1e6,
            alpn ? (int) alen : 1, alpn ? alpn : "-");
  }
  pump(c);
}

static void on_closed(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  struct client* c;
  char what[384];
  int code;

  c = uvq_h3_get_data(h3);
  c->connected = 0;
  if (c->finishing || c->done == c->nfetches)
    return;
  /* The h3 layer closes a client connection itself, with H3_NO_ERROR,
   * only after the server's GOAWAY once the requests it allowed are done
   * (RFC 9114, 5.2). */
  if (error->kind == UVQ_QUIC_ERROR_APPLICATION && !error->remote &&
      error->code == UVQ_H3_NO_ERROR) {
    fail(c, TOOL_EXIT_CONNECT, "the server at %s is shutting down (GOAWAY): "
         "%zu of %zu fetches were not made", c->urls[0].authority,
         c->nfetches - c->done, c->nfetches);
    return;
  }
  code = tool_describe_error(error, what, sizeof(what));
  fail(c, code, "connection to %s lost: %s", c->urls[0].authority, what);
}

static void on_response(uvq_h3_req_t* req, int status) {
  struct fetch* f;
  uvq_h3_header_t h;
  uint64_t v;
  size_t i;
  char buf[24];

  f = uvq_h3_req_get_data(req);
  f->status = status;
  for (i = 0; uvq_h3_req_header(req, i, &h) == 0; i++) {
    if (h.namelen == 14 && memcmp(h.name, "content-length", 14) == 0 &&
        h.valuelen > 0 && h.valuelen < sizeof(buf)) {
      memcpy(buf, h.value, h.valuelen);
      buf[h.valuelen] = '\0';
      if (tool_parse_uint(buf, 0, INT64_MAX, &v) == 0)
        f->content_length = (int64_t) v;
    }
  }
}

static void on_body(uvq_h3_req_t* req, const uint8_t* data, size_t len) {
  struct client* c;
  struct fetch* f;
  int err;

  f = uvq_h3_req_get_data(req);
  c = uvq_h3_get_data(uvq_h3_req_h3(req));
  f->bytes += len;
  if (f->sha != NULL)
    wc_Sha256Update(f->sha, data, (word32) len);
  if (f->fd >= 0 && f->write_error == 0) {
    err = write_all(f->fd, data, len);
    if (err) {
      f->write_error = err;
      fail(c, TOOL_EXIT_LOCAL, "cannot write %s: %s",
           f->out_path ? f->out_path : "stdout", strerror(err));
    }
  }
}

static void on_end(uvq_h3_req_t* req) {
  struct fetch* f;

  f = uvq_h3_req_get_data(req);
  f->ended = 1;
}

static int fetch_ok(const struct fetch* f) {
  return f->finished && f->status >= 200 && f->status <= 299 && f->ended &&
         (f->app_error == 0 || f->app_error == UVQ_H3_NO_ERROR) &&
         (f->content_length < 0 || (uint64_t) f->content_length == f->bytes) &&
         f->write_error == 0;
}

/* The server raised its request limit: send what UV_EAGAIN held back. */
static void on_requests_available(uvq_h3_t* h3) {
  struct client* c = uvq_h3_get_data(h3);

  if (!c->finishing)
    uv_idle_start(&c->pump, on_pump);
}

static void on_done(uvq_h3_req_t* req, uint64_t app_error) {
  struct client* c;
  struct fetch* f;
  uint8_t digest[WC_SHA256_DIGEST_SIZE];

  f = uvq_h3_req_get_data(req);
  c = uvq_h3_get_data(uvq_h3_req_h3(req));
  f->finished = 1;
  f->app_error = app_error;
  f->end_ns = uv_hrtime();
  c->last_ns = f->end_ns;
  c->inflight--;
  c->done++;
  if (f->sha != NULL) {
    wc_Sha256Final(f->sha, digest);
    wc_Sha256Free(f->sha);
    free(f->sha);
    f->sha = NULL;
    hex(digest, sizeof(digest), f->sha_hex);
  }
  if (f->fd >= 0 && f->fd != STDOUT_FILENO) {
    if (close(f->fd) != 0 && f->write_error == 0) {
      f->write_error = errno;
      fail(c, TOOL_EXIT_LOCAL, "cannot write %s: %s", f->out_path,
           strerror(errno));
    }
  }
  f->fd = -1;
  if (c->verbose)
    fprintf(stderr, "uvq-h3-client: %s: %d, %llu bytes in %.1f ms%s\n",
            c->urls[f->url].text, f->status, (unsigned long long) f->bytes,
            (f->end_ns - f->start_ns) / 1e6, fetch_ok(f) ? "" : " (failed)");
  /* Requests are not sent from inside the library's callbacks: the next
   * ones go from the loop, one iteration later. */
  if (!c->finishing)
    uv_idle_start(&c->pump, on_pump);
}

static void on_max_time(uv_timer_t* handle) {
  struct client* c;
  char secs[32];

  c = handle->data;
  snprintf(secs, sizeof(secs), "%.3g", c->max_time_ms / 1000.0);
  fail(c, TOOL_EXIT_FAILED, "gave up after %s s (--max-time)", secs);
}

static void on_h3_closed(uvq_h3_t* h3) {
  struct client* c;

  c = uvq_h3_get_data(h3);
  c->h3 = NULL;
  uv_close((uv_handle_t*) &c->pump, NULL);
  uv_close((uv_handle_t*) &c->max_timer, NULL);
}

static void connect_to(struct client* c) {
  const char* sni;
  int err;

  /* The name the certificate must carry: --sni, else the URL's host. For
   * an address literal that is the address, which the certificate check
   * matches against its IP subjectAltNames. */
  sni = c->sni != NULL ? c->sni : c->urls[0].host;
  c->connect_ns = uv_hrtime();
  err = uvq_h3_connect(c->h3, (struct sockaddr*) &c->remote, sni);
  if (err)
    fail(c, TOOL_EXIT_CONNECT, "cannot connect to %s: %s",
         c->urls[0].authority, uv_strerror(err));
}

static void on_resolved(uv_getaddrinfo_t* req, int status,
                        struct addrinfo* res) {
  struct client* c;

  c = req->data;
  if (status != 0 || res == NULL) {
    fail(c, TOOL_EXIT_CONNECT, "cannot resolve %s: %s", c->urls[0].host,
         uv_strerror(status ? status : UV_EAI_NONAME));
    uv_freeaddrinfo(res);
    return;
  }
  memcpy(&c->remote, res->ai_addr, res->ai_addrlen);
  if (c->remote.ss_family == AF_INET)
    ((struct sockaddr_in*) &c->remote)->sin_port = htons(c->urls[0].port);
  else
    ((struct sockaddr_in6*) &c->remote)->sin6_port = htons(c->urls[0].port);
  uv_freeaddrinfo(res);
  if (!c->finishing)
    connect_to(c);
}

/* ---- the report ----------------------------------------------------------- */

static void json_string(FILE* f, const char* s) {
  fputc('"', f);
  for (; *s != '\0'; s++) {
    unsigned char ch = (unsigned char) *s;
    if (ch == '"' || ch == '\\')
      fprintf(f, "\\%c", ch);
    else if (ch < 0x20)
      fprintf(f, "\\u%04x", ch);
    else
      fputc(ch, f);
  }
  fputc('"', f);
}

static void json_ecn(FILE* f, const char* name, const uint64_t v[4]) {
  fprintf(f, "\"%s\": {\"not_ect\": %llu, \"ect1\": %llu, \"ect0\": %llu, "
          "\"ce\": %llu}", name, (unsigned long long) v[0],
          (unsigned long long) v[1], (unsigned long long) v[2],
          (unsigned long long) v[3]);
}

static double ratio(uint64_t a, uint64_t b) {
  return b ? (double) a / (double) b : 0.0;
}

static void print_json(struct client* c, FILE* f) {
  static const struct {
    unsigned int bit;
    const char* name;
  } features[] = {
      {UVQ_UDP_RECVECN, "recv-ecn"},     {UVQ_UDP_PMTUD, "pmtud"},
      {UVQ_UDP_RECVPKTINFO, "pktinfo"},  {UVQ_UDP_GRO, "gro"},
      {UVQ_UDP_GRO_RAW, "gro-raw"},      {UVQ_UDP_TXTIME, "txtime"},
      {UVQ_UDP_RECVERR, "recverr"},      {UVQ_UDP_RECVMMSG, "recvmmsg"},
      {UVQ_UDP_FEATURE_GSO, "gso"},      {UVQ_UDP_FEATURE_SENDMMSG, "sendmmsg"},
      {UVQ_UDP_FEATURE_ECN_SEND, "ecn-send"},
      {UVQ_UDP_FEATURE_SRCADDR, "srcaddr"}, {UVQ_UDP_FEATURE_DROPS, "drops"},
  };
  const uvq_quic_conn_stats_t* q = &c->conn_stats;
  const uvq_udp_stats_t* u = &c->udp_stats;
  size_t counts[1000];
  uint64_t bytes;
  uint64_t ok;
  double seconds;
  size_t i;
  size_t j;
  int first;

  bytes = 0;
  ok = 0;
  for (i = 0; i < c->nfetches; i++) {
    bytes += c->fetches[i].bytes;
    ok += fetch_ok(&c->fetches[i]);
  }
  seconds = c->first_ns && c->last_ns > c->first_ns
                ? (c->last_ns - c->first_ns) / 1e9
                : 0.0;
  fprintf(f, "{\n  \"urls\": [");
  for (i = 0; i < c->nurls; i++) {
    fprintf(f, i ? ", " : "");
    json_string(f, c->urls[i].text);
  }
  fprintf(f, "],\n  \"requests\": %zu,\n  \"completed\": %llu,\n"
          "  \"failed\": %llu,\n  \"bytes\": %llu,\n  \"seconds\": %.6f,\n"
          "  \"goodput_gbps\": %.3f,\n",
          c->nfetches, (unsigned long long) ok,
          (unsigned long long) (c->nfetches - ok), (unsigned long long) bytes,
          seconds, seconds > 0 ? bytes * 8 / seconds / 1e9 : 0.0);
  /* Status counts; 0 stands for fetches that got no response at all. */
  fprintf(f, "  \"status\": {");
  /* Statuses are 0 or 100..999: one count each, in one pass. */
  memset(counts, 0, sizeof(counts));
  for (i = 0; i < c->nfetches; i++)
    if (c->fetches[i].status >= 0 && c->fetches[i].status < 1000)
      counts[c->fetches[i].status]++;
  first = 1;
  for (j = 0; j < 1000; j++) {
    if (counts[j] == 0)
      continue;
    fprintf(f, "%s\"%zu\": %zu", first ? "" : ", ", j, counts[j]);
    first = 0;
  }
  fprintf(f, "},\n");
  if (c->connected_ns)
    fprintf(f, "  \"handshake_ms\": %.3f,\n",
            (c->connected_ns - c->connect_ns) / 1e6);
  else
    fprintf(f, "  \"handshake_ms\": null,\n");
  fprintf(f, "  \"error\": ");
  if (c->exit_code != 0)
    json_string(f, c->error);
  else
    fprintf(f, "null");
  fprintf(f, ",\n");
  if (c->have_conn_stats) {
    fprintf(f, "  \"quic\": {\"version\": \"0x%08x\", \"smoothed_rtt_ms\": "
            "%.3f, \"min_rtt_ms\": %.3f, \"latest_rtt_ms\": %.3f, "
            "\"cwnd\": %llu, \"bytes_in_flight\": %llu, \"bytes_sent\": %llu, "
            "\"bytes_received\": %llu, \"packets_sent\": %llu, "
            "\"packets_received\": %llu, \"sends\": %llu, ",
            q->version, q->smoothed_rtt_ns / 1e6, q->min_rtt_ns / 1e6,
            q->latest_rtt_ns / 1e6, (unsigned long long) q->cwnd,
            (unsigned long long) q->bytes_in_flight,
            (unsigned long long) q->bytes_sent,
            (unsigned long long) q->bytes_received,
            (unsigned long long) q->packets_sent,
            (unsigned long long) q->packets_received,
            (unsigned long long) q->sends);
    json_ecn(f, "ecn_sent", q->ecn_sent);
    fprintf(f, ", ");
    json_ecn(f, "ecn_received", q->ecn_received);
    fprintf(f, ", \"ecn_marking\": %d, \"path_mtu\": %zu, \"resumed\": %d, "
            "\"zero_rtt\": %d},\n", q->ecn_marking, q->path_mtu, q->resumed,
            q->zero_rtt);
  } else {
    fprintf(f, "  \"quic\": null,\n");
  }
  fprintf(f, "  \"udp\": {\"datagrams_sent\": %llu, \"bytes_sent\": %llu, "
          "\"send_syscalls\": %llu, \"datagrams_per_send_syscall\": %.2f, "
          "\"datagrams_received\": %llu, \"bytes_received\": %llu, "
          "\"recv_syscalls\": %llu, \"datagrams_per_recv_syscall\": %.2f, "
          "\"gso_sends\": %llu, \"gso_segments\": %llu, "
          "\"gso_fallbacks\": %llu, \"gro_packets\": %llu, "
          "\"gro_segments\": %llu, ",
          (unsigned long long) u->datagrams_sent,
          (unsigned long long) u->bytes_sent,
          (unsigned long long) u->send_syscalls,
          ratio(u->datagrams_sent, u->send_syscalls),
          (unsigned long long) u->datagrams_received,
          (unsigned long long) u->bytes_received,
          (unsigned long long) u->recv_syscalls,
          ratio(u->datagrams_received, u->recv_syscalls),
          (unsigned long long) u->gso_sends,
          (unsigned long long) u->gso_segments,
          (unsigned long long) u->gso_fallbacks,
          (unsigned long long) u->gro_packets,
          (unsigned long long) u->gro_segments);
  json_ecn(f, "ecn_received", u->ecn_received);
  fprintf(f, ", \"kernel_drops\": %llu, \"send_eagain\": %llu, "
          "\"truncated\": %llu, \"features\": [",
          (unsigned long long) u->kernel_drops,
          (unsigned long long) u->send_eagain,
          (unsigned long long) u->truncated);
  first = 1;
  for (i = 0; i < sizeof(features) / sizeof(features[0]); i++) {
    if (c->features & features[i].bit) {
      fprintf(f, "%s\"%s\"", first ? "" : ", ", features[i].name);
      first = 0;
    }
  }
  fprintf(f, "]},\n  \"fetches\": [");
  for (i = 0; i < c->nfetches; i++) {
    const struct fetch* ft = &c->fetches[i];
    fprintf(f, "%s\n    {\"url\": ", i ? "," : "");
    json_string(f, c->urls[ft->url].text);
    fprintf(f, ", \"status\": %d, \"bytes\": %llu, \"ok\": %s, "
            "\"app_error\": %llu",
            ft->status, (unsigned long long) ft->bytes,
            fetch_ok(ft) ? "true" : "false",
            (unsigned long long) ft->app_error);
    if (ft->content_length >= 0)
      fprintf(f, ", \"content_length\": %lld", (long long) ft->content_length);
    if (ft->finished)
      fprintf(f, ", \"ms\": %.3f", (ft->end_ns - ft->start_ns) / 1e6);
    if (ft->out_path != NULL) {
      fprintf(f, ", \"output\": ");
      json_string(f, ft->out_path);
    }
    if (ft->sha_hex[0] != '\0')
      fprintf(f, ", \"sha256\": \"%s\"", ft->sha_hex);
    fprintf(f, "}");
  }
  fprintf(f, "\n  ]\n}\n");
}

/* Says on stderr what went wrong with each failed fetch, once per kind. */
static int report_failures(struct client* c) {
  const struct fetch* f;
  size_t failed;
  size_t i;

  failed = 0;
  for (i = 0; i < c->nfetches; i++) {
    f = &c->fetches[i];
    if (fetch_ok(f))
      continue;
    failed++;
    if (!f->started)
      continue; /* Counted below: the fatal error explains them. */
    if (failed > 5)
      continue;
    if (f->status != 0 && (f->status < 200 || f->status > 299))
      fprintf(stderr, "uvq-h3-client: %s: HTTP status %d\n",
              c->urls[f->url].text, f->status);
    else if (!f->finished)
      fprintf(stderr, "uvq-h3-client: %s: not finished (%llu bytes)\n",
              c->urls[f->url].text, (unsigned long long) f->bytes);
    else if (f->app_error != 0 && f->app_error != UVQ_H3_NO_ERROR)
      fprintf(stderr, "uvq-h3-client: %s: incomplete: stream ended with "
              "HTTP/3 error 0x%llx after %llu bytes\n", c->urls[f->url].text,
              (unsigned long long) f->app_error, (unsigned long long) f->bytes);
    else if (f->content_length >= 0 &&
             (uint64_t) f->content_length != f->bytes)
      fprintf(stderr, "uvq-h3-client: %s: incomplete: %llu of %lld bytes\n",
              c->urls[f->url].text, (unsigned long long) f->bytes,
              (long long) f->content_length);
    else if (f->status == 0)
      fprintf(stderr, "uvq-h3-client: %s: no response\n",
              c->urls[f->url].text);
    else if (!f->ended)
      fprintf(stderr, "uvq-h3-client: %s: response did not end\n",
              c->urls[f->url].text);
  }
  if (failed > 5)
    fprintf(stderr, "uvq-h3-client: %zu of %zu fetches failed\n", failed,
            c->nfetches);
  return failed > 0;
}

/* ---- main ----------------------------------------------------------------- */

enum {
  OPT_REPEAT = 256,
  OPT_CONCURRENCY,
  OPT_OUTPUT_DIR,
  OPT_DISCARD,
  OPT_SHA256,
  OPT_JSON,
  OPT_CACERT,
  OPT_SNI,
  OPT_CC,
  OPT_CONNECT_TIMEOUT,
  OPT_MAX_TIME,
  OPT_QLOG_DIR,
  OPT_KEYLOG,
  OPT_CIPHERSUITES
};

int main(int argc, char** argv) {
  static const struct option options[] = {
      {"repeat", required_argument, NULL, OPT_REPEAT},
      {"concurrency", required_argument, NULL, OPT_CONCURRENCY},
      {"output", required_argument, NULL, 'o'},
      {"output-dir", required_argument, NULL, OPT_OUTPUT_DIR},
      {"discard", no_argument, NULL, OPT_DISCARD},
      {"sha256", no_argument, NULL, OPT_SHA256},
      {"json", no_argument, NULL, OPT_JSON},
      {"cacert", required_argument, NULL, OPT_CACERT},
      {"insecure", no_argument, NULL, 'k'},
      {"sni", required_argument, NULL, OPT_SNI},
      {"cc", required_argument, NULL, OPT_CC},
      {"connect-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
      {"max-time", required_argument, NULL, OPT_MAX_TIME},
      {"qlog-dir", required_argument, NULL, OPT_QLOG_DIR},
      {"keylog", required_argument, NULL, OPT_KEYLOG},
      {"ciphersuites", required_argument, NULL, OPT_CIPHERSUITES},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  uvq_h3_callbacks_t callbacks;
  struct addrinfo hints;
  struct client c;
  struct stat st;
  const char* keylog;
  const char* ciphersuites;
  const char* problem;
  size_t i;
  int mode_set;
  int failed;
  int err;
  int opt;

  memset(&c, 0, sizeof(c));
  uvq_quic_config_default(&c.config);
  c.config.alpn = "h3";
  c.config.handshake_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
  c.repeat = 1;
  snprintf(c.user_agent, sizeof(c.user_agent), "uvq-h3-client/%s",
           uvq_version_string());
  c.concurrency = 1;
  c.mode = OUT_STDOUT;
  c.family = AF_UNSPEC;
  keylog = NULL;
  ciphersuites = NULL;
  mode_set = 0;

  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":o:kv46h", options, NULL)) != -1) {
    switch (opt) {
      case OPT_REPEAT:
        if (tool_parse_uint(optarg, 1, 1000000, &c.repeat) != 0)
          usage_error("bad --repeat '%s' (1-1000000)", optarg);
        break;
      case OPT_CONCURRENCY:
        if (tool_parse_uint(optarg, 1, 1000, &c.concurrency) != 0)
          usage_error("bad --concurrency '%s' (1-1000)", optarg);
        break;
      case 'o':
      case OPT_OUTPUT_DIR:
      case OPT_DISCARD:
        if (mode_set)
          usage_error("--output, --output-dir and --discard exclude "
                            "each other");
        mode_set = 1;
        c.mode = opt == 'o' ? OUT_FILE
                 : opt == OPT_OUTPUT_DIR ? OUT_DIR : OUT_DISCARD;
        c.output = optarg;
        break;
      case OPT_SHA256: c.sha256 = 1; break;
      case OPT_JSON: c.json = 1; break;
      case OPT_CACERT: c.config.ca_file = optarg; break;
      case 'k': c.config.insecure_skip_verify = 1; break;
      case OPT_SNI: c.sni = optarg; break;
      case OPT_CC:
        if (tool_parse_cc(optarg, &c.config.cc) != 0)
          usage_error("unknown congestion control '%s' (cubic, bbr, reno)",
                      optarg);
        break;
      case OPT_CONNECT_TIMEOUT:
        if (tool_parse_seconds(optarg, &c.config.handshake_timeout_ms) != 0)
          usage_error("bad --connect-timeout '%s' (seconds)", optarg);
        break;
      case OPT_MAX_TIME:
        if (tool_parse_seconds(optarg, &c.max_time_ms) != 0)
          usage_error("bad --max-time '%s' (seconds)", optarg);
        break;
      case OPT_QLOG_DIR: c.config.qlog_dir = optarg; break;
      case OPT_KEYLOG: keylog = optarg; break;
      case OPT_CIPHERSUITES:
        if (tool_check_ciphersuites(optarg) != 0)
          usage_error("bad --ciphersuites '%s' (%s)", optarg,
                      TOOL_CIPHERSUITES_HELP);
        ciphersuites = optarg;
        break;
      case '4': c.family = AF_INET; break;
      case '6': c.family = AF_INET6; break;
      case 'v': c.verbose = 1; break;
      case 'h': usage(stdout); return TOOL_EXIT_OK;
      case ':': usage_error("option '%s' needs a value", argv[optind - 1]);
        break;
      default: usage_error("unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc)
    usage_error("no URL given");
  c.nurls = (size_t) (argc - optind);
  c.urls = xmalloc(c.nurls * sizeof(*c.urls));
  for (i = 0; i < c.nurls; i++) {
    problem = parse_url(argv[optind + (int) i], &c.urls[i]);
    if (problem != NULL) {
      fprintf(stderr, "uvq-h3-client: bad URL '%s': %s\n",
              argv[optind + (int) i], problem);
      free_urls(c.urls, i + 1);
      return TOOL_EXIT_USAGE;
    }
    if (strcasecmp(c.urls[i].host, c.urls[0].host) != 0 ||
        c.urls[i].port != c.urls[0].port) {
      fprintf(stderr, "uvq-h3-client: '%s' names another server than '%s': "
              "all URLs share one connection\n", c.urls[i].text,
              c.urls[0].text);
      free_urls(c.urls, i + 1);
      return TOOL_EXIT_USAGE;
    }
  }
  c.nfetches = c.nurls * c.repeat;
  if (!mode_set && (c.json || c.sha256))
    c.mode = OUT_DISCARD;
  if (c.mode == OUT_FILE && c.nfetches > 1 && strcmp(c.output, "-") != 0)
    usage_error("--output takes one fetch; use --output-dir for "
                      "several");
  if ((c.mode == OUT_STDOUT ||
       (c.mode == OUT_FILE && strcmp(c.output, "-") == 0)) &&
      (c.json || c.sha256))
    usage_error("bodies on stdout would mix with --json/--sha256 "
                      "output: use --output, --output-dir or --discard");
  if ((c.mode == OUT_STDOUT ||
       (c.mode == OUT_FILE && strcmp(c.output, "-") == 0)) &&
      c.nfetches > 1 && c.concurrency > 1)
    usage_error("bodies on stdout would interleave: use --concurrency "
                      "1 or --output-dir");
  if (c.mode == OUT_DIR && (stat(c.output, &st) != 0 || !S_ISDIR(st.st_mode)))
    usage_error("--output-dir '%s' is not a directory", c.output);
  if (c.config.qlog_dir != NULL &&
      (stat(c.config.qlog_dir, &st) != 0 || !S_ISDIR(st.st_mode)))
    usage_error("--qlog-dir '%s' is not a directory", c.config.qlog_dir);
  if (c.config.ca_file != NULL && access(c.config.ca_file, R_OK) != 0) {
    fprintf(stderr, "uvq-h3-client: cannot read --cacert %s: %s\n",
            c.config.ca_file, strerror(errno));
    return TOOL_EXIT_LOCAL;
  }
  c.config.keylog_file = tool_keylog_file(keylog);
  c.config.tls_ciphersuites = ciphersuites;
  c.fetches = xmalloc(c.nfetches * sizeof(*c.fetches));
  for (i = 0; i < c.nfetches; i++) {
    c.fetches[i].url = i % c.nurls;
    c.fetches[i].content_length = -1;
    c.fetches[i].fd = -1;
  }

  c.loop = uv_default_loop();
  memset(&callbacks, 0, sizeof(callbacks));
  callbacks.response = on_response;
  callbacks.body = on_body;
  callbacks.end = on_end;
  callbacks.done = on_done;
  callbacks.requests_available = on_requests_available;
  callbacks.connected = on_connected;
  callbacks.closed = on_closed;
  err = uvq_h3_client_new(c.loop, &c.config, NULL, &callbacks, &c, &c.h3);
  if (err) {
    fprintf(stderr, "uvq-h3-client: cannot set up TLS: %s%s\n",
            uv_strerror(err),
            err == UV_EIO ? " (CA file not PEM, or key log file unwritable)"
                          : "");
    return err == UV_EIO ? TOOL_EXIT_LOCAL : TOOL_EXIT_FAILED;
  }
  uv_idle_init(c.loop, &c.pump);
  c.pump.data = &c;
  uv_timer_init(c.loop, &c.max_timer);
  c.max_timer.data = &c;
  if (c.max_time_ms > 0)
    uv_timer_start(&c.max_timer, on_max_time, c.max_time_ms, 0);

  if (tool_parse_ip(c.urls[0].host, c.urls[0].port, &c.remote) == 0 &&
      strcmp(c.urls[0].host, "*") != 0) {
    connect_to(&c);
  } else {
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = c.family;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_protocol = IPPROTO_UDP;
    c.resolver.data = &c;
    err = uv_getaddrinfo(c.loop, &c.resolver, on_resolved, c.urls[0].host,
                         NULL, &hints);
    if (err)
      fail(&c, TOOL_EXIT_CONNECT, "cannot resolve %s: %s", c.urls[0].host,
           uv_strerror(err));
  }
  uv_run(c.loop, UV_RUN_DEFAULT);
  uv_loop_close(c.loop);

  if (c.json) {
    print_json(&c, stdout);
  } else if (c.sha256) {
    for (i = 0; i < c.nfetches; i++)
      if (c.fetches[i].sha_hex[0] != '\0')
        printf("%s  %s\n", c.fetches[i].sha_hex,
               c.urls[c.fetches[i].url].text);
  }
  fflush(stdout);
  if (c.exit_code != 0)
    fprintf(stderr, "uvq-h3-client: %s\n", c.error);
  failed = report_failures(&c);
  for (i = 0; i < c.nfetches; i++)
    free(c.fetches[i].out_path);
  free(c.fetches);
  free_urls(c.urls, c.nurls);
  if (c.exit_code != 0)
    return c.exit_code;
  return failed ? TOOL_EXIT_FAILED : TOOL_EXIT_OK;
}
