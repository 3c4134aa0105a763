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

/* Bodies saved to files go out in writes of this size: one system call
 * per mebibyte instead of one per received frame. */
#define WRITE_BUFFER_SIZE (1u << 20)

/* What a --session-file starts with; the rest is "key value" lines. */
#define SESSION_MAGIC "uvq-h3-client session 1"

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
  uint8_t* wbuf;         /* body bytes not yet written (files only) */
  size_t wlen;
  uint64_t writes;       /* write() calls made for the body */
  uint64_t write_ns;     /* time spent in them */
  int early;             /* requested before the handshake (0-RTT) */
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
  const char* session_file;
  uint32_t quic_version;  /* --quic-version; 0: v1, or the ticket's */
  uint64_t key_update_bytes; /* --key-update: after this many bytes ... */
  uint64_t key_update_ms;    /* ... or this many ms; 0: off */

  /* --session-file: the ticket read (if any) and the newest one the
   * server sent, to be saved. */
  uint8_t* ticket_in;
  size_t ticket_in_len;
  uint32_t ticket_version;
  uint8_t* ticket_out;
  size_t ticket_out_len;
  int ticket_saved;
  size_t early_requests;

  /* Key updates. */
  uv_idle_t key_update_idle;
  uv_timer_t key_update_timer;
  uint64_t received;        /* body bytes, all fetches */
  uint64_t key_update_next; /* --key-update in bytes: the next threshold */
  uint64_t key_updates;     /* initiated */

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
  struct sockaddr_storage path_remote; /* the server's address at the end */
  int have_path;
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
"  --handshake-timeout SEC  give up if the handshake takes longer; 0 or\n"
"                       none: no limit (default: the idle timeout alone\n"
"                       ends a handshake that hears nothing)\n"
"  --connect-timeout SEC  the same\n"
"  --idle-timeout SEC   close after SEC seconds without a packet from the\n"
"                       server, also during the handshake (default 60)\n"
"  --session-file FILE  resume from the session ticket in FILE (if it has\n"
"                       one for this server), sending the requests as 0-RTT\n"
"                       early data when the ticket allows; save the newest\n"
"                       ticket into FILE at the end\n"
"  --key-update N[K|M|G] or SECs  initiate a key update after every N body\n"
"                       bytes received, or every SEC seconds (1M, 0.5s)\n"
"  --quic-version V     version of the first Initial: v1 (default) or v2\n"
"  --preferred-versions LIST  versions in preference order, v1,v2 (default)\n"
"                       or v2,v1; both are always offered (RFC 9368)\n"
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

#define usage_error(...) tool_usage_error("uvq-h3-client", __VA_ARGS__)

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

static int write_all(int fd, const uint8_t* data, size_t len,
                     uint64_t* writes, uint64_t* write_ns) {
  uint64_t t0;
  ssize_t n;

  while (len > 0) {
    (*writes)++;
    t0 = uv_hrtime();
    n = write(fd, data, len);
    *write_ns += uv_hrtime() - t0;
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

/* ---- the session file ----------------------------------------------------- */

/* A --session-file is text: SESSION_MAGIC, then "server HOST:PORT" (whose
 * ticket it is), "version 0x..." (the QUIC version the connection ended
 * on) and "ticket HEX" (the library's opaque ticket, which carries the TLS
 * session and the transport parameters 0-RTT must respect). */

/* The server a ticket belongs to, as the session file names it. */
static void session_server(const struct client* c, char* buf, size_t len) {
  snprintf(buf, len, "%s:%d", c->urls[0].host, c->urls[0].port);
}

static int unhex(const char* s, size_t n, uint8_t* out) {
  size_t i;
  int hi;
  int lo;

  for (i = 0; i < n / 2; i++) {
    hi = s[2 * i] >= 'a' ? s[2 * i] - 'a' + 10 : s[2 * i] - '0';
    lo = s[2 * i + 1] >= 'a' ? s[2 * i + 1] - 'a' + 10 : s[2 * i + 1] - '0';
    if (hi < 0 || hi > 15 || lo < 0 || lo > 15)
      return -1;
    out[i] = (uint8_t) (hi << 4 | lo);
  }
  return 0;
}

/* Reads the ticket for this server, if the file has one. A missing file is
 * the first run; one that does not parse, or names another server, is
 * ignored with a warning: the handshake is then a full one. */
static void session_load(struct client* c) {
  char server[300];
  char* line;
  size_t cap;
  ssize_t n;
  FILE* f;
  int magic;
  int server_ok;
  uint64_t v;
  char* end;

  f = fopen(c->session_file, "r");
  if (f == NULL) {
    if (errno != ENOENT)
      fprintf(stderr, "uvq-h3-client: cannot read --session-file %s: %s "
              "(full handshake)\n", c->session_file, strerror(errno));
    return;
  }
  session_server(c, server, sizeof(server));
  line = NULL;
  cap = 0;
  magic = 0;
  server_ok = 0;
  while ((n = getline(&line, &cap, f)) > 0) {
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
      line[--n] = '\0';
    if (!magic) {
      if (strcmp(line, SESSION_MAGIC) != 0)
        break;
      magic = 1;
    } else if (strncmp(line, "server ", 7) == 0) {
      server_ok = strcasecmp(line + 7, server) == 0;
    } else if (strncmp(line, "version ", 8) == 0) {
      errno = 0;
      v = strtoull(line + 8, &end, 16);
      if (errno == 0 && *end == '\0' &&
          (v == UVQ_QUIC_V1 || v == UVQ_QUIC_V2))
        c->ticket_version = (uint32_t) v;
    } else if (strncmp(line, "ticket ", 7) == 0 && c->ticket_in == NULL &&
               (n - 7) % 2 == 0 && n > 7) {
      c->ticket_in_len = (size_t) (n - 7) / 2;
      c->ticket_in = xmalloc(c->ticket_in_len);
      if (unhex(line + 7, (size_t) (n - 7), c->ticket_in) != 0) {
        free(c->ticket_in);
        c->ticket_in = NULL;
      }
    }
  }
  free(line);
  fclose(f);
  if (!magic || c->ticket_in == NULL || c->ticket_version == 0 ||
      !server_ok) {
    fprintf(stderr, "uvq-h3-client: --session-file %s %s (full "
            "handshake)\n", c->session_file,
            magic && c->ticket_in != NULL && c->ticket_version != 0
                ? "holds a ticket for another server"
                : "is not a session file");
    free(c->ticket_in);
    c->ticket_in = NULL;
    c->ticket_in_len = 0;
  }
}

/* Keeps the newest ticket: the last one a server sends is the one it
 * issued with the most recent state. */
static void on_session_ticket(uvq_h3_t* h3, const uint8_t* ticket,
                              size_t len) {
  struct client* c = uvq_h3_get_data(h3);

  free(c->ticket_out);
  c->ticket_out = xmalloc(len);
  memcpy(c->ticket_out, ticket, len);
  c->ticket_out_len = len;
}

/* Replaces the session file with the newest ticket, atomically (a
 * temporary file renamed over it) and readable by the user only: a ticket
 * resumes a session. Returns 0 or an errno. */
static int session_save(struct client* c) {
  char server[300];
  char* tmp;
  char* hexbuf;
  size_t len;
  uint32_t version;
  FILE* f;
  int fd;
  int err;

  len = strlen(c->session_file) + 32;
  tmp = xmalloc(len);
  snprintf(tmp, len, "%s.tmp.%ld", c->session_file, (long) getpid());
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    err = errno;
    free(tmp);
    return err;
  }
  f = fdopen(fd, "w");
  if (f == NULL) {
    err = errno;
    close(fd);
    unlink(tmp);
    free(tmp);
    return err;
  }
  session_server(c, server, sizeof(server));
  version = c->have_conn_stats ? c->conn_stats.version : UVQ_QUIC_V1;
  hexbuf = xmalloc(2 * c->ticket_out_len + 1);
  hex(c->ticket_out, c->ticket_out_len, hexbuf);
  fprintf(f, "%s\nserver %s\nversion 0x%08x\nticket %s\n", SESSION_MAGIC,
          server, version, hexbuf);
  free(hexbuf);
  err = 0;
  if (fflush(f) != 0 || ferror(f))
    err = errno ? errno : EIO;
  if (fclose(f) != 0 && err == 0)
    err = errno;
  if (err == 0 && rename(tmp, c->session_file) != 0)
    err = errno;
  if (err != 0)
    unlink(tmp);
  free(tmp);
  return err;
}

static const char* zero_rtt_name(int zero_rtt) {
  switch (zero_rtt) {
    case UVQ_QUIC_0RTT_SENT: return "sent";
    case UVQ_QUIC_0RTT_ACCEPTED: return "accepted";
    case UVQ_QUIC_0RTT_REJECTED: return "rejected";
    default: return "none";
  }
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
  if (qc != NULL && c->connected) {
    struct sockaddr_storage local;
    if (uvq_quic_conn_get_path(qc, &local, &c->path_remote) == 0)
      c->have_path = 1;
  }
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
    if (err == UV_ENOTCONN && !c->connected)
      return; /* No 0-RTT after all (the ticket allowed none, or too few
                 streams): the handshake's end starts the pump again. */
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
    if (!c->connected) {
      f->early = 1;
      c->early_requests++;
    }
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
  f->wbuf = xmalloc(WRITE_BUFFER_SIZE);
}

static void on_pump(uv_idle_t* handle) {
  uv_idle_stop(handle);
  pump(handle->data);
}

/* ---- key updates ------------------------------------------------------------ */

/* Initiates a key update if the connection can take one now: ngtcp2 allows
 * it once the handshake is confirmed and the previous update was
 * acknowledged in the new keys (RFC 9001, 6.1), so a count of N means the
 * server answered N - 1 updates before the last was started. Returns 0 or
 * UV_EAGAIN. */
static int key_update_try(struct client* c) {
  uvq_quic_conn_t* qc;
  int err;

  if (c->finishing || c->h3 == NULL || !c->connected)
    return UV_EAGAIN;
  qc = uvq_h3_conn(c->h3);
  if (qc == NULL)
    return UV_EAGAIN;
  err = uvq_quic_conn_update_key(qc);
  if (err == 0) {
    c->key_updates++;
    if (c->verbose)
      fprintf(stderr, "uvq-h3-client: key update %llu after %llu bytes\n",
              (unsigned long long) c->key_updates,
              (unsigned long long) c->received);
  }
  return err;
}

/* The library refuses a key update from inside its callbacks: the body
 * callback asks for one, the loop makes it. */
static void on_key_update_idle(uv_idle_t* handle) {
  struct client* c = handle->data;

  uv_idle_stop(handle);
  if (c->received >= c->key_update_next && key_update_try(c) == 0)
    c->key_update_next = c->received + c->key_update_bytes;
  /* UV_EAGAIN: the next body bytes ask again. */
}

static void key_update_check(struct client* c) {
  if (c->received >= c->key_update_next && !c->finishing)
    uv_idle_start(&c->key_update_idle, on_key_update_idle);
}

static void on_key_update_timer(uv_timer_t* handle) {
  struct client* c = handle->data;

  if (c->finishing)
    return;
  /* Not possible yet (handshake not confirmed, the last update not yet
   * acknowledged): try again shortly rather than a whole period later. */
  uv_timer_start(handle, on_key_update_timer,
                 key_update_try(c) == 0 ? c->key_update_ms : 10, 0);
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
  if (c->key_update_ms != 0)
    uv_timer_start(&c->key_update_timer, on_key_update_timer,
                   c->key_update_ms, 0);
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

/* Writes len bytes of the body, counting the system calls; reports the
 * first failure. */
static void body_write(struct client* c, struct fetch* f, const uint8_t* data,
                       size_t len) {
  int err;

  if (f->write_error != 0 || len == 0)
    return;
  err = write_all(f->fd, data, len, &f->writes, &f->write_ns);
  if (err) {
    f->write_error = err;
    fail(c, TOOL_EXIT_LOCAL, "cannot write %s: %s",
         f->out_path ? f->out_path : "stdout", strerror(err));
  }
}

/* Writes out what the fetch's buffer holds. */
static void body_flush(struct client* c, struct fetch* f) {
  if (f->wlen > 0 && f->fd >= 0)
    body_write(c, f, f->wbuf, f->wlen);
  f->wlen = 0;
}

static void key_update_check(struct client* c);

static void on_body(uvq_h3_req_t* req, const uint8_t* data, size_t len) {
  struct client* c;
  struct fetch* f;
  size_t n;

  f = uvq_h3_req_get_data(req);
  c = uvq_h3_get_data(uvq_h3_req_h3(req));
  f->bytes += len;
  c->received += len;
  if (f->sha != NULL)
    wc_Sha256Update(f->sha, data, (word32) len);
  if (c->key_update_bytes != 0)
    key_update_check(c);
  if (f->fd < 0 || f->write_error != 0)
    return;
  /* Stdout stays unbuffered, so that a reader sees bytes as they come. A
   * file gets whole mebibytes: the frames are a few kilobytes each, and a
   * system call per frame costs more than the copy into the buffer. */
  if (f->wbuf == NULL) {
    body_write(c, f, data, len);
    return;
  }
  while (len > 0) {
    if (f->wlen == 0 && len >= WRITE_BUFFER_SIZE) {
      n = len - len % WRITE_BUFFER_SIZE;
      body_write(c, f, data, n);
    } else {
      n = WRITE_BUFFER_SIZE - f->wlen;
      if (n > len)
        n = len;
      memcpy(f->wbuf + f->wlen, data, n);
      f->wlen += n;
      if (f->wlen == WRITE_BUFFER_SIZE)
        body_flush(c, f);
    }
    data += n;
    len -= n;
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
  if (f->fd >= 0)
    body_flush(c, f);
  free(f->wbuf);
  f->wbuf = NULL;
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
  uv_close((uv_handle_t*) &c->key_update_idle, NULL);
  uv_close((uv_handle_t*) &c->key_update_timer, NULL);
}

static void connect_to(struct client* c) {
  uvq_quic_connect_opts_t opts;
  const char* sni;
  int err;

  /* The name the certificate must carry: --sni, else the URL's host. For
   * an address literal that is the address, which the certificate check
   * matches against its IP subjectAltNames. */
  sni = c->sni != NULL ? c->sni : c->urls[0].host;
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = sni;
  opts.session_ticket = c->ticket_in;
  opts.session_ticket_len = c->ticket_in_len;
  /* 0-RTT packets are protected for the version the ticket's connection
   * ended on; starting in another would have the server discard them. */
  opts.quic_version = c->quic_version != 0     ? c->quic_version
                      : c->ticket_in != NULL ? c->ticket_version
                                             : 0;
  c->connect_ns = uv_hrtime();
  err = uvq_h3_connect_ex(c->h3, (struct sockaddr*) &c->remote, &opts);
  if (err) {
    fail(c, TOOL_EXIT_CONNECT, "cannot connect to %s: %s",
         c->urls[0].authority, uv_strerror(err));
    return;
  }
  /* With a ticket that allows 0-RTT the requests can go now, as early
   * data; without, the pump finds the connection not ready and waits. */
  if (c->ticket_in != NULL)
    uv_idle_start(&c->pump, on_pump);
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
  if (c->session_file != NULL) {
    fprintf(f, "  \"session\": {\"file\": ");
    json_string(f, c->session_file);
    fprintf(f, ", \"ticket_loaded\": %s, \"resumed\": %s, "
            "\"zero_rtt\": \"%s\", \"early_requests\": %zu, "
            "\"ticket_saved\": %s},\n",
            c->ticket_in != NULL ? "true" : "false",
            c->have_conn_stats && q->resumed ? "true" : "false",
            c->have_conn_stats ? zero_rtt_name(q->zero_rtt) : "none",
            c->early_requests, c->ticket_saved ? "true" : "false");
  } else {
    fprintf(f, "  \"session\": null,\n");
  }
  fprintf(f, "  \"key_updates\": %llu,\n",
          (unsigned long long) c->key_updates);
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
            "\"zero_rtt\": %d", q->ecn_marking, q->path_mtu, q->resumed,
            q->zero_rtt);
    /* Where the connection ended up: the URL's address, or the server's
     * preferred address after a migration (RFC 9000, 9.6). */
    if (c->have_path) {
      char name[64];
      int p = tool_format_addr((struct sockaddr*) &c->path_remote, name,
                               sizeof(name));
      fprintf(f, ", \"remote\": \"%s%s%s:%d\"",
              c->path_remote.ss_family == AF_INET6 ? "[" : "", name,
              c->path_remote.ss_family == AF_INET6 ? "]" : "", p);
    }
    fprintf(f, "},\n");
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
    if (ft->out_path != NULL || ft->writes > 0)
      fprintf(f, ", \"writes\": %llu, \"write_ms\": %.3f",
              (unsigned long long) ft->writes, ft->write_ns / 1e6);
    if (ft->early)
      fprintf(f, ", \"early\": true");
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
  OPT_CIPHERSUITES,
  OPT_SESSION_FILE,
  OPT_KEY_UPDATE,
  OPT_QUIC_VERSION,
  OPT_PREFERRED_VERSIONS,
  OPT_IDLE_TIMEOUT
};

/* Parses --key-update: "SECs" (fractions allowed), or a byte count with an
 * optional K, M or G (binary) suffix. Returns 0 or -1. */
static int parse_key_update(const char* s, uint64_t* bytes, uint64_t* ms) {
  char num[32];
  uint64_t v;
  uint64_t unit;
  size_t len;

  len = strlen(s);
  if (len == 0 || len >= sizeof(num))
    return -1;
  memcpy(num, s, len + 1);
  *bytes = 0;
  *ms = 0;
  if (num[len - 1] == 's') {
    num[len - 1] = '\0';
    return tool_parse_seconds(num, ms);
  }
  unit = 1;
  switch (num[len - 1]) {
    case 'K': case 'k': unit = 1u << 10; break;
    case 'M': case 'm': unit = 1u << 20; break;
    case 'G': case 'g': unit = 1u << 30; break;
    default: break;
  }
  if (unit != 1)
    num[len - 1] = '\0';
  if (tool_parse_uint(num, 1, UINT64_MAX / unit, &v) != 0)
    return -1;
  *bytes = v * unit;
  return 0;
}

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
      {"handshake-timeout", required_argument, NULL, OPT_CONNECT_TIMEOUT},
      {"session-file", required_argument, NULL, OPT_SESSION_FILE},
      {"key-update", required_argument, NULL, OPT_KEY_UPDATE},
      {"idle-timeout", required_argument, NULL, OPT_IDLE_TIMEOUT},
      {"quic-version", required_argument, NULL, OPT_QUIC_VERSION},
      {"preferred-versions", required_argument, NULL, OPT_PREFERRED_VERSIONS},
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
  /* Like ngtcp2's own client: no handshake timeout, only the idle timeout.
   * A handshake through heavy loss needs many Initial retransmissions,
   * spaced by a PTO that doubles from about 1 s (the 333 ms initial RTT):
   * sent at 0, 1, 3, 7, 15, 31 s, so a 10 s limit allowed four tries, a
   * 30 s idle timeout five, and 60 s (curl's HTTP/3 idle timeout) six. */
  c.config.handshake_timeout_ms = UVQ_QUIC_NO_HANDSHAKE_TIMEOUT;
  c.config.idle_timeout_ms = 60000;
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
        if (tool_parse_handshake_timeout(optarg,
                                         &c.config.handshake_timeout_ms) != 0)
          usage_error("bad %s '%s' (seconds, or 0 or none)",
                      argv[optind - 1], optarg);
        break;
      case OPT_SESSION_FILE: c.session_file = optarg; break;
      case OPT_IDLE_TIMEOUT:
        if (tool_parse_seconds(optarg, &c.config.idle_timeout_ms) != 0)
          usage_error("bad --idle-timeout '%s' (seconds)", optarg);
        break;
      case OPT_KEY_UPDATE:
        if (parse_key_update(optarg, &c.key_update_bytes,
                             &c.key_update_ms) != 0)
          usage_error("bad --key-update '%s' (bytes, e.g. 1M, or seconds, "
                      "e.g. 0.5s)", optarg);
        break;
      case OPT_QUIC_VERSION:
        if (tool_parse_quic_version(optarg, &c.quic_version) != 0)
          usage_error("bad --quic-version '%s' (%s)", optarg,
                      TOOL_VERSIONS_HELP);
        break;
      case OPT_PREFERRED_VERSIONS:
        if (tool_parse_quic_versions(optarg, &c.config.preferred_version) != 0)
          usage_error("bad --preferred-versions '%s' (%s)", optarg,
                      TOOL_VERSIONS_HELP);
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
  if (c.session_file != NULL) {
    callbacks.session_ticket = on_session_ticket;
    session_load(&c);
  }
  c.key_update_next = c.key_update_bytes;
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
  uv_idle_init(c.loop, &c.key_update_idle);
  c.key_update_idle.data = &c;
  uv_timer_init(c.loop, &c.key_update_timer);
  c.key_update_timer.data = &c;
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

  if (c.session_file != NULL && c.ticket_out != NULL) {
    err = session_save(&c);
    if (err == 0) {
      c.ticket_saved = 1;
    } else if (c.exit_code == 0) {
      c.exit_code = TOOL_EXIT_LOCAL;
      snprintf(c.error, sizeof(c.error), "cannot write --session-file %s: %s",
               c.session_file, strerror(err));
    }
  }

  if (c.json) {
    print_json(&c, stdout);
  } else if (c.sha256) {
    for (i = 0; i < c.nfetches; i++)
      if (c.fetches[i].sha_hex[0] != '\0')
        printf("%s  %s\n", c.fetches[i].sha_hex,
               c.urls[c.fetches[i].url].text);
  }
  fflush(stdout);
  if (!c.json && c.session_file != NULL)
    fprintf(stderr, "uvq-h3-client: session: %s, 0-RTT %s, %zu request(s) as "
            "early data, ticket %s\n",
            c.have_conn_stats && c.conn_stats.resumed ? "resumed"
                                                      : "not resumed",
            c.have_conn_stats ? zero_rtt_name(c.conn_stats.zero_rtt) : "none",
            c.early_requests, c.ticket_saved ? "saved" : "not saved");
  if (!c.json && (c.key_update_bytes != 0 || c.key_update_ms != 0))
    fprintf(stderr, "uvq-h3-client: key updates: %llu\n",
            (unsigned long long) c.key_updates);
  if (c.exit_code != 0)
    fprintf(stderr, "uvq-h3-client: %s\n", c.error);
  failed = report_failures(&c);
  for (i = 0; i < c.nfetches; i++) {
    free(c.fetches[i].out_path);
    free(c.fetches[i].wbuf);
  }
  free(c.ticket_in);
  free(c.ticket_out);
  free(c.fetches);
  free_urls(c.urls, c.nurls);
  if (c.exit_code != 0)
    return c.exit_code;
  return failed ? TOOL_EXIT_FAILED : TOOL_EXIT_OK;
}
