/* libFuzzer target: uvq's HTTP/3 (uvq_h3_t on a core endpoint) against a
 * hostile peer, as a server facing a client or as a client facing a
 * server. The peer is a core QUIC endpoint that speaks ALPN h3 but has no
 * HTTP/3 of its own: it completes a real handshake, then writes whatever
 * the input says on its streams, byte for byte: frames, varints, QPACK
 * field lines, stream types, resets. Both endpoints are in this process,
 * joined by an in-memory wire, with a clock the harness moves: no socket,
 * no loop.
 *
 * Input: a mode byte, then a script, each operation [op] followed by its
 * operands. Mode bit 0: 0 uvq is the server, 1 uvq is the client (which
 * sends two GET requests once connected; the peer's first current stream
 * is the first of them, whose response it then writes). The script:
 *   op & 7
 *     0  open a bidirectional stream; it becomes the current one
 *     1  open a unidirectional stream (its first bytes are its type)
 *     2  [len hi][len lo][bytes]: write len bytes (cut at the input's end)
 *        on the current stream; op & 0x80 ends the stream after them
 *     3  [i]: stream i % (streams known) becomes the current one (those
 *        the peer opened and those uvq opened towards it)
 *     4  end the current stream (FIN)
 *     5  [code]: RESET_STREAM on the current stream
 *     6  [code]: STOP_SENDING on the current stream
 *     7  [ms]: let ms milliseconds pass (timers run)
 * After every operation the wire is drained. At the end the peer closes
 * the connection and both endpoints are closed: every input starts from
 * fresh endpoints, so that a failure replays from its input alone.
 *
 * uvq's server answers a path starting with /m from memory and any other
 * with uvq_h3_serve_file() from a directory holding a file, a
 * subdirectory, a FIFO and a symbolic link to a canary file next to the
 * directory. Checked, beyond ASan, UBSan and LeakSanitizer: the canary's
 * bytes never reach the peer (path escapes, links), no request makes the
 * server block (the FIFO: libFuzzer's -timeout), the wire drains within a
 * bounded number of rounds, uvq's endpoint has forgotten the connection
 * once it is closed and drained, and uvq's client reports each of its
 * requests done exactly once.
 *
 * With UVQ_FUZZ_VERBOSE set in the environment, it prints each request's
 * path, each response's status and what the peer received on each
 * stream.
 *
 * Seeds: test/fuzz/corpus/h3, made by h3-seeds.py (for the server: valid
 * requests, the settings and QPACK streams, a body, a reset, traversal
 * attempts; for the client: valid responses, a GOAWAY, a push stream, a
 * reset), and inputs that found bugs (regress-*).
 *
 *   fuzz-h3 -max_total_time=60 NEW_DIR test/fuzz/corpus/h3 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz-cert.h"
#include "uvq/h3.h"
#include "uvq/quic.h"

/* The QUIC sources are compiled into this program: the endpoint's count
 * of connections is read from its struct. */
#include "internal.h"

#define CANARY_BYTE 'Z'
#define CANARY_RUN 16
#define MAX_STREAMS 64
#define MAX_ROUNDS 2000
#define MS 1000000ull

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

/* UVQ_FUZZ_VERBOSE set: what the server was asked and what came back. */
static int verbose;

static void check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "fuzz-h3-server: %s\n", what);
    abort();
  }
}

/* ---- files --------------------------------------------------------------- */

static char dir[64];
static char cert_file[96];
static char key_file[96];
static char root[96];

static void write_file(const char* path, const char* text, size_t len) {
  FILE* f = fopen(path, "w");

  check(f != NULL && fwrite(text, 1, len, f) == len && fclose(f) == 0,
        "cannot write the test files");
}

static void remove_files(void) {
  char path[160];
  static const char* const names[] = {"www/index.html", "www/sub/a.txt",
                                      "www/fifo", "www/link", "secret",
                                      "cert.pem", "key.pem"};
  size_t i;

  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
    snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
    unlink(path);
  }
  snprintf(path, sizeof(path), "%s/www/sub", dir);
  rmdir(path);
  rmdir(root);
  rmdir(dir);
}

/* The certificate (fuzz-cert.c), the directory served and the canary. */
static void files_init(void) {
  char path[160];
  char canary[4096];

  snprintf(dir, sizeof(dir), "%s/uvq-fuzz-h3-XXXXXX",
           getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  check(mkdtemp(dir) != NULL, "mkdtemp");
  atexit(remove_files);
  check(fuzz_cert_write(dir, cert_file, sizeof(cert_file), key_file,
                        sizeof(key_file)) == 0,
        "cannot write the certificate files");
  snprintf(root, sizeof(root), "%s/www", dir);
  check(mkdir(root, 0700) == 0, "mkdir www");
  snprintf(path, sizeof(path), "%s/sub", root);
  check(mkdir(path, 0700) == 0, "mkdir www/sub");
  snprintf(path, sizeof(path), "%s/index.html", root);
  write_file(path, "<p>index</p>\n", 13);
  snprintf(path, sizeof(path), "%s/sub/a.txt", root);
  write_file(path, "a file in a subdirectory\n", 25);
  snprintf(path, sizeof(path), "%s/fifo", root);
  check(mkfifo(path, 0600) == 0, "mkfifo");
  memset(canary, CANARY_BYTE, sizeof(canary));
  snprintf(path, sizeof(path), "%s/secret", dir);
  write_file(path, canary, sizeof(canary));
  snprintf(path, sizeof(path), "%s/link", root);
  check(symlink("../secret", path) == 0, "symlink");
}

/* ---- the wire ------------------------------------------------------------ */

struct dgram {
  struct dgram* next;
  int to_server;
  int ecn;
  size_t len;
  uint8_t data[];
};

static struct dgram* head;
static struct dgram** tail = &head;
static struct sockaddr_in server_addr;
static struct sockaddr_in client_addr;
static uint64_t now;

/* uvq's side (server or client) and the peer's. */
static int uvq_is_client;
static uvq_h3_t* h3;
static uvq_quic_endpoint_t* server_ep;
static uvq_quic_endpoint_t* client_ep;
static uvq_quic_endpoint_t* uvq_ep;
static uvq_quic_endpoint_t* peer_ep;
/* The peer's connection, which the script acts on. */
static uvq_quic_conn_t* conn;
static int handshaken;
static int connected;     /* uvq's client: connected was called */
static unsigned int requests_made;
static unsigned int requests_done;

static int sink(uvq_quic_endpoint_t* ep, const uvq_udp_mmsg_t* msgs,
                unsigned int count) {
  unsigned int i;
  size_t off;
  size_t seg;
  size_t len;
  struct dgram* d;

  for (i = 0; i < count; i++) {
    check(msgs[i].nbufs == 1, "one buffer per message");
    len = msgs[i].bufs[0].len;
    seg = msgs[i].gso_size != 0 ? msgs[i].gso_size : len;
    for (off = 0; off < len; off += seg) {
      size_t l = len - off < seg ? len - off : seg;
      d = malloc(sizeof(*d) + l);
      check(d != NULL, "out of memory");
      d->next = NULL;
      d->to_server = ep == client_ep;
      d->ecn = msgs[i].ecn;
      d->len = l;
      memcpy(d->data, (const uint8_t*) msgs[i].bufs[0].base + off, l);
      *tail = d;
      tail = &d->next;
    }
  }
  return (int) count;
}

static void wire_free(void) {
  struct dgram* d;

  while ((d = head) != NULL) {
    head = d->next;
    free(d);
  }
  tail = &head;
}

static void flush_both(void) {
  if (server_ep != NULL)
    check(uvq_quic_endpoint_flush(server_ep, now) == 0, "server flush");
  if (client_ep != NULL)
    check(uvq_quic_endpoint_flush(client_ep, now) == 0, "client flush");
}

static void expire_due(uvq_quic_endpoint_t* ep) {
  if (ep != NULL && uvq_quic_endpoint_next_expiry(ep) <= now)
    check(uvq_quic_endpoint_expire(ep, now) == 0, "expire");
}

/* Delivers until nothing is in flight; every delivery takes 1 ms. */
static void drain(void) {
  struct dgram* d;
  int rounds;

  flush_both();
  for (rounds = 0; head != NULL; rounds++) {
    check(rounds < MAX_ROUNDS, "the wire does not drain");
    now += MS;
    while ((d = head) != NULL) {
      head = d->next;
      if (head == NULL)
        tail = &head;
      if (d->to_server && server_ep != NULL)
        check(uvq_quic_endpoint_input(server_ep,
                                      (struct sockaddr*) &client_addr,
                                      (struct sockaddr*) &server_addr,
                                      d->ecn, d->data, d->len, now) == 0,
              "server input");
      else if (!d->to_server && client_ep != NULL)
        check(uvq_quic_endpoint_input(client_ep,
                                      (struct sockaddr*) &server_addr,
                                      (struct sockaddr*) &client_addr,
                                      d->ecn, d->data, d->len, now) == 0,
              "client input");
      free(d);
    }
    expire_due(server_ep);
    expire_due(client_ep);
    flush_both();
  }
}

/* Lets ms pass, with the timers due on the way. */
static void wait_ms(uint64_t ms) {
  uint64_t end = now + ms * MS;
  uint64_t next;
  int rounds;

  for (rounds = 0; rounds < MAX_ROUNDS; rounds++) {
    next = uvq_quic_endpoint_next_expiry(server_ep);
    if (client_ep != NULL && uvq_quic_endpoint_next_expiry(client_ep) < next)
      next = uvq_quic_endpoint_next_expiry(client_ep);
    if (next > end)
      break;
    if (next > now)
      now = next;
    expire_due(server_ep);
    expire_due(client_ep);
    drain();
  }
  if (now < end)
    now = end;
}

/* ---- uvq's side ---------------------------------------------------------- */

static void on_request(uvq_h3_req_t* req) {
  static const char body[] = "from memory\n";
  uvq_h3_body_t b;
  const char* path;
  size_t len;

  path = uvq_h3_req_path(req, &len);
  if (verbose)
    fprintf(stderr, "request %.*s\n", (int) len, path ? path : "");
  if (path != NULL && len >= 2 && path[1] == 'm') {
    memset(&b, 0, sizeof(b));
    b.kind = UVQ_H3_BODY_MEMORY;
    b.data = body;
    b.len = sizeof(body) - 1;
    check(uvq_h3_respond(req, 200, NULL, 0, &b) == 0, "respond");
    return;
  }
  check(uvq_h3_serve_file(req, root) == 0, "serve_file");
}

static void on_response(uvq_h3_req_t* req, int status) {
  (void) req;
  if (verbose)
    fprintf(stderr, "response %d\n", status);
}

static void on_done(uvq_h3_req_t* req, uint64_t app_error) {
  unsigned int* seen;

  if (!uvq_is_client)
    return;
  seen = uvq_h3_req_get_data(req);
  check(seen != NULL && *seen == 0, "a request reported done twice");
  (*seen)++;
  requests_done++;
  if (verbose)
    fprintf(stderr, "done 0x%llx\n", (unsigned long long) app_error);
}

static void on_connected(uvq_h3_t* h, const uvq_quic_error_t* error) {
  (void) h;
  if (error == NULL)
    connected = 1;
}

static void on_h3_closed(uvq_h3_t* h, const uvq_quic_error_t* error) {
  (void) h;
  if (verbose && error != NULL)
    fprintf(stderr, "closed: kind %d remote %d code 0x%llx %.*s\n",
            (int) error->kind, error->remote,
            (unsigned long long) error->code, (int) error->reasonlen,
            error->reason ? error->reason : "");
}

/* ---- the peer ------------------------------------------------------------ */

static int64_t streams[MAX_STREAMS];
static unsigned int nstreams;
static int64_t current = -1;

struct write {
  uvq_quic_write_t req;
  uint8_t data[];
};

static void on_written(uvq_quic_write_t* req, int status) {
  (void) status;
  free(req->data);
}

static void on_handshake(uvq_quic_conn_t* c) {
  conn = c;
  handshaken = 1;
}

/* Streams uvq opened towards the peer can be written on too (a response
 * on a request stream, or what HTTP/3 forbids). */
static void on_stream_open(uvq_quic_conn_t* c, int64_t id) {
  (void) c;
  if (nstreams < MAX_STREAMS)
    streams[nstreams++] = id;
  if (current < 0 && (id & 3) == 0)
    current = id;  /* uvq's first request */
}

static void on_closed(uvq_quic_conn_t* c, const uvq_quic_error_t* e) {
  (void) e;
  if (c == conn)
    conn = NULL;
}

static void on_stream_data(uvq_quic_conn_t* c, int64_t id,
                           const uint8_t* data, size_t len, int fin) {
  static const uint8_t run[CANARY_RUN] = {
    CANARY_BYTE, CANARY_BYTE, CANARY_BYTE, CANARY_BYTE,
    CANARY_BYTE, CANARY_BYTE, CANARY_BYTE, CANARY_BYTE,
    CANARY_BYTE, CANARY_BYTE, CANARY_BYTE, CANARY_BYTE,
    CANARY_BYTE, CANARY_BYTE, CANARY_BYTE, CANARY_BYTE};

  if (verbose)
    fprintf(stderr, "stream %lld: %zu bytes%s\n", (long long) id, len,
            fin ? ", fin" : "");
  check(len < CANARY_RUN || memmem(data, len, run, sizeof(run)) == NULL,
        "uvq's server sent the canary file: a path escaped its directory");
  uvq_quic_stream_consume(c, id, len);
}

static void write_bytes(const uint8_t* p, size_t len, int fin) {
  struct write* w;
  uv_buf_t buf;

  if (conn == NULL || current < 0)
    return;
  w = malloc(sizeof(*w) + (len ? len : 1));
  check(w != NULL, "out of memory");
  if (len > 0)
    memcpy(w->data, p, len);
  w->req.data = w;
  buf = uv_buf_init((char*) w->data, (unsigned int) len);
  if (verbose)
    fprintf(stderr, "peer writes %zu bytes%s on stream %lld\n", len,
            fin ? " and FIN" : "", (long long) current);
  if (uvq_quic_stream_write(&w->req, conn, current, &buf, 1, fin,
                            on_written) != 0)
    free(w);
}

static void open_stream(int bidi) {
  int64_t id;

  if (conn == NULL || nstreams == MAX_STREAMS ||
      uvq_quic_stream_open(conn, bidi, &id) != 0)
    return;
  streams[nstreams++] = id;
  current = id;
}

/* ---- one input ----------------------------------------------------------- */

static unsigned int request_seen[2];

static void endpoints_open(void) {
  uvq_quic_config_t cfg;
  uvq_h3_callbacks_t h3cb;
  uvq_quic_callbacks_t cb;
  uvq_quic_connect_opts_t opts;
  uvq_quic_io_t io;
  uvq_h3_req_t* req;
  unsigned int i;

  memset(&io, 0, sizeof(io));
  io.version = UVQ_QUIC_IO_VERSION;
  io.send = sink;
  handshaken = 0;
  connected = 0;
  requests_made = 0;
  requests_done = 0;
  nstreams = 0;
  current = -1;
  conn = NULL;

  /* uvq's HTTP/3 object. */
  uvq_quic_config_default(&cfg);
  memset(&h3cb, 0, sizeof(h3cb));
  h3cb.request = on_request;
  h3cb.response = on_response;
  h3cb.done = on_done;
  h3cb.connected = on_connected;
  h3cb.closed = on_h3_closed;
  if (uvq_is_client) {
    cfg.ca_file = cert_file;
    check(uvq_h3_client_new_core(&cfg, NULL, &h3cb, &io, NULL, &h3) == 0,
          "uvq's client");
  } else {
    cfg.cert_file = cert_file;
    cfg.key_file = key_file;
    check(uvq_h3_server_new_core(&cfg, NULL, &h3cb, &io, NULL, &h3) == 0,
          "uvq's server");
  }
  uvq_ep = uvq_h3_endpoint(h3);

  /* The peer: raw QUIC with ALPN h3. */
  uvq_quic_config_default(&cfg);
  cfg.alpn = "h3";
  if (uvq_is_client) {
    cfg.cert_file = cert_file;
    cfg.key_file = key_file;
  } else {
    cfg.ca_file = cert_file;
  }
  memset(&cb, 0, sizeof(cb));
  cb.handshake_done = on_handshake;
  cb.closed = on_closed;
  cb.stream_open = on_stream_open;
  cb.stream_data = on_stream_data;
  check(uvq_quic_endpoint_new_core(&cfg, &cb, &io, NULL, &peer_ep) == 0,
        "peer");
  server_ep = uvq_is_client ? peer_ep : uvq_ep;
  client_ep = uvq_is_client ? uvq_ep : peer_ep;

  check(uvq_quic_endpoint_flush(client_ep, now) == 0, "clock");
  check(uvq_quic_endpoint_flush(server_ep, now) == 0, "clock");
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  opts.local = (struct sockaddr*) &client_addr;
  if (uvq_is_client)
    check(uvq_h3_connect_ex(h3, (struct sockaddr*) &server_addr, &opts) == 0,
          "uvq's connect");
  else
    check(uvq_quic_connect(client_ep, (struct sockaddr*) &server_addr, &opts,
                           NULL, &conn) == 0,
          "connect");
  drain();
  check(handshaken && conn != NULL, "no handshake on a perfect wire");
  if (uvq_is_client) {
    check(connected, "uvq's client did not connect on a perfect wire");
    for (i = 0; i < 2; i++) {
      request_seen[i] = 0;
      check(uvq_h3_request(h3, "GET", NULL, NULL, i ? "/second" : "/first",
                           NULL, 0, NULL, &request_seen[i], &req) == 0,
            "request");
      requests_made++;
    }
    drain();
  }
}

static void endpoints_close(void) {
  if (conn != NULL)
    uvq_quic_conn_close(conn, 0x100, NULL);
  drain();
  /* Each side drains the closed connection for three PTOs, then forgets
   * it. */
  wait_ms(10000);
  check(uvq_ep->nconns == 0,
        "uvq still holds the connection after it closed");
  check(requests_done == requests_made,
        "a request of uvq's client was never reported done");
  uvq_quic_endpoint_close(peer_ep, NULL);
  peer_ep = NULL;
  conn = NULL;
  uvq_h3_close(h3, NULL);
  h3 = NULL;
  uvq_ep = NULL;
  server_ep = NULL;
  client_ep = NULL;
  wire_free();
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static int ready;
  size_t i;
  uint8_t op;
  size_t len;

  if (!ready) {
    files_init();
    memset(&server_addr, 0, sizeof(server_addr));
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons(443);
    server_addr.sin_addr.s_addr = htonl(0xc0000201);  /* 192.0.2.1 */
    client_addr = server_addr;
    client_addr.sin_port = htons(50000);
    client_addr.sin_addr.s_addr = htonl(0xc6336407);  /* 198.51.100.7 */
    verbose = getenv("UVQ_FUZZ_VERBOSE") != NULL;
    ready = 1;
  }
  if (size == 0)
    return 0;
  uvq_is_client = data[0] & 1;
  now = 1000 * MS;
  endpoints_open();
  for (i = 1; i < size && conn != NULL;) {
    op = data[i++];
    switch (op & 7) {
      case 0:
      case 1:
        open_stream((op & 7) == 0);
        break;
      case 2:
        if (i + 2 > size) {
          i = size;
          break;
        }
        len = (size_t) data[i] << 8 | data[i + 1];
        i += 2;
        if (len > size - i)
          len = size - i;
        write_bytes(data + i, len, (op & 0x80) != 0);
        i += len;
        break;
      case 3:
        if (i < size && nstreams > 0)
          current = streams[data[i] % nstreams];
        i++;
        break;
      case 4:
        write_bytes(NULL, 0, 1);
        break;
      case 5:
      case 6:
        if (conn != NULL && current >= 0)
          uvq_quic_stream_shutdown(
              conn, current,
              (op & 7) == 5 ? UVQ_QUIC_SHUT_WRITE : UVQ_QUIC_SHUT_READ,
              i < size ? 0x100 + data[i] : 0x100);
        i++;
        break;
      default:
        wait_ms(i < size ? data[i] : 1);
        i++;
        break;
    }
    drain();
  }
  endpoints_close();
  return 0;
}
