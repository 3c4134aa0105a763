/* White-box tests of the endpoint core (uvq_quic_endpoint_new_core): two
 * or more core endpoints joined by an in-process wire, driven with
 * explicit timestamps. No socket and no clock is involved, so every time
 * below is exact: a handshake completes at a known instant, a timeout
 * fires at its deadline, and the same run gives the same packets.
 *
 * The wire delivers each datagram one one-way delay after it was handed
 * to a sink, in order, and can drop, hold or rewrite datagrams. The last
 * tests wire endpoints to real loopback sockets: a core endpoint on a
 * socket the test owns, and a loop endpoint on a uvq_udp_t the test made
 * (uvq_quic_endpoint_open). */
#include "quic-helpers.h"
#include "uvq/h3.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2.h>

#define CW_NODES 24
#define CW_OFFSETS 64
#define CW_OWNED 64
#define CW_MS 1000000ull
#define CW_T0 (1000 * CW_MS) /* the first input's time: 1 s */
#define CW_DELAY (10 * CW_MS) /* one-way delay */

typedef struct cw_s cw_t;

typedef struct cw_dgram_s {
  struct cw_dgram_s* next;
  struct sockaddr_in from;
  struct sockaddr_in to;
  int ecn;
  uint64_t due;
  size_t len;
  uint8_t data[1];
} cw_dgram_t;

/* What one endpoint saw. */
typedef struct cw_node_s {
  cw_t* w;
  uvq_quic_endpoint_t* ep;
  struct sockaddr_in addr;
  int closed_ep;
  /* Connections (the first CW_NODES). */
  uvq_quic_conn_t* conns[CW_NODES];
  unsigned int nconns;
  unsigned int handshakes;
  uint64_t handshake_at;        /* time of the first handshake_done */
  unsigned int closed;
  uvq_quic_error_t last_error;
  uint64_t closed_at;
  uint64_t received;            /* stream bytes, all streams */
  unsigned int fins;
  uint64_t pattern_errors;
  /* Sink: messages and datagrams handed out, the largest GSO run. */
  uint64_t sink_calls;
  uint64_t msgs;
  uint64_t datagrams;
  unsigned int max_segments;
  unsigned int gso_msgs;
  unsigned int take_limit;      /* 0: take all; n: at most n per call */
  unsigned int refusals;        /* calls that took fewer than offered */
  /* The first message refused by a partial take, and whether the next
   * call offered it first again. */
  uint8_t refused_first[2048];
  size_t refused_len;
  int check_resume;
  unsigned int resumed_same;
  int wakes;
  uint64_t offsets[CW_OFFSETS];  /* per received stream */
  unsigned int noffsets;
  /* An HTTP/3 node (cw_add_h3): its object, and what it saw. */
  uvq_h3_t* h3;
  unsigned int h3_connected;
  unsigned int h3_requests;
  int h3_status;
  char h3_body[256];
  size_t h3_got;
  unsigned int h3_dones;
  uint64_t h3_done_code;
  uint64_t h3_done_at;
} cw_node_t;

struct cw_s {
  cw_node_t nodes[CW_NODES];
  unsigned int nnodes;
  cw_dgram_t* head;
  cw_dgram_t* tail;
  uint64_t now;
  /* Datagrams from this address are dropped (port 0: none). */
  struct sockaddr_in drop_from;
  /* A NAT in front of one node: datagrams from nat_inside leave as from
   * nat_outside, datagrams to nat_outside reach nat_inside (port 0:
   * none). */
  struct sockaddr_in nat_inside;
  struct sockaddr_in nat_outside;
  /* Datagrams to this node are held back in held (instead of being
   * delivered) when hold is set. */
  int hold;
  cw_dgram_t* held;
  uint64_t delivered;
  qt_certs_t certs;
  /* Payloads and write requests of write_pattern, freed by cw_done. */
  void* owned[CW_OWNED];
  unsigned int nowned;
};

/* The wire of the running test (one per test). */
static cw_t* cw_current;

/* The node of an endpoint, by its endpoint: the user data of an HTTP/3
 * node's endpoint is its uvq_h3_t. */
static cw_node_t* node_of(uvq_quic_endpoint_t* ep) {
  unsigned int i;

  for (i = 0; i < cw_current->nnodes; i++)
    if (cw_current->nodes[i].ep == ep)
      return &cw_current->nodes[i];
  ASSERT(0 && "no node for this endpoint");
  return NULL;
}

static cw_node_t* node_of_conn(uvq_quic_conn_t* c) {
  return node_of(uvq_quic_conn_endpoint(c));
}

static void sockaddr_make(struct sockaddr_in* sa, const char* ip, int port) {
  memset(sa, 0, sizeof(*sa));
  sa->sin_family = AF_INET;
  sa->sin_port = htons((uint16_t) port);
  ASSERT_EQ(1, inet_pton(AF_INET, ip, &sa->sin_addr));
}

static int same_sockaddr(const struct sockaddr_in* a,
                         const struct sockaddr_in* b) {
  return a->sin_port == b->sin_port &&
         a->sin_addr.s_addr == b->sin_addr.s_addr;
}

static void enqueue(cw_t* w, const struct sockaddr_in* from,
                    const struct sockaddr_in* to, int ecn,
                    const uint8_t* data, size_t len) {
  cw_dgram_t* d;

  d = malloc(sizeof(*d) + len);
  ASSERT_NOT_NULL(d);
  memset(d, 0, sizeof(*d));
  d->from = *from;
  d->to = *to;
  d->ecn = ecn;
  d->due = w->now + CW_DELAY;
  d->len = len;
  memcpy(d->data, data, len);
  if (w->tail != NULL)
    w->tail->next = d;
  else
    w->head = d;
  w->tail = d;
}

/* The transmit sink: splits every GSO run into its datagrams and puts
 * them on the wire, checking the run's shape. */
static int cw_send(uvq_quic_endpoint_t* ep, const uvq_udp_mmsg_t* msgs,
                   unsigned int count) {
  cw_node_t* n;
  unsigned int take;
  unsigned int i;
  size_t off;
  size_t seg;
  size_t len;
  unsigned int segs;

  n = node_of(ep);
  n->sink_calls++;
  ASSERT_GT(count, 0);
  ASSERT_UINT_LE(count, 16);
  if (n->check_resume) {
    /* The message refused last time comes first now. */
    n->check_resume = 0;
    if (msgs[0].bufs[0].len == n->refused_len &&
        memcmp(msgs[0].bufs[0].base, n->refused_first, n->refused_len) == 0)
      n->resumed_same++;
  }
  take = count;
  if (n->take_limit > 0 && take > n->take_limit)
    take = n->take_limit;
  for (i = 0; i < take; i++) {
    const uvq_udp_mmsg_t* m = &msgs[i];
    ASSERT_EQ(1, m->nbufs);
    ASSERT_NOT_NULL(m->addr);
    ASSERT_NOT_NULL(m->local);
    ASSERT_EQ(AF_INET, m->addr->sa_family);
    /* The path's local address, port included, is always given. */
    ASSERT(same_sockaddr((const struct sockaddr_in*) m->local, &n->addr));
    ASSERT_GE(m->ecn, 0);
    ASSERT_LE(m->ecn, 3);
    ASSERT_UINT_EQ(0, m->txtime);
    len = m->bufs[0].len;
    ASSERT_GT(len, 0);
    ASSERT_UINT_LE(len, 65507);
    seg = m->gso_size != 0 ? m->gso_size : len;
    /* A run has more than one segment: a single packet goes with
     * gso_size 0. */
    if (m->gso_size != 0) {
      ASSERT_GT(len, m->gso_size);
      n->gso_msgs++;
    }
    segs = 0;
    for (off = 0; off < len; off += seg) {
      size_t l = len - off < seg ? len - off : seg;
      enqueue(n->w, &n->addr, (const struct sockaddr_in*) m->addr, m->ecn,
              (const uint8_t*) m->bufs[0].base + off, l);
      segs++;
      n->datagrams++;
    }
    ASSERT_UINT_LE(segs, 64);
    if (segs > n->max_segments)
      n->max_segments = segs;
    n->msgs++;
  }
  if (take < count) {
    n->refusals++;
    n->refused_len = msgs[take].bufs[0].len;
    ASSERT_UINT_LE(n->refused_len, sizeof(n->refused_first));
    memcpy(n->refused_first, msgs[take].bufs[0].base, n->refused_len);
    n->check_resume = 1;
  }
  return (int) take;
}

static void cw_wake(uvq_quic_endpoint_t* ep) {
  node_of(ep)->wakes++;
}

static int on_accept(uvq_quic_endpoint_t* ep, uvq_quic_conn_t* c) {
  cw_node_t* n = node_of(ep);
  if (n->nconns < CW_NODES)
    n->conns[n->nconns++] = c;
  return 0;
}

static void on_handshake(uvq_quic_conn_t* c) {
  cw_node_t* n = node_of_conn(c);
  if (n->handshakes++ == 0)
    n->handshake_at = n->w->now;
}

static void on_closed(uvq_quic_conn_t* c, const uvq_quic_error_t* e) {
  cw_node_t* n = node_of_conn(c);
  unsigned int i;

  n->closed++;
  n->last_error = *e;
  n->last_error.reason = NULL;
  n->closed_at = n->w->now;
  for (i = 0; i < n->nconns; i++)
    if (n->conns[i] == c)
      n->conns[i] = NULL;
}

/* Stream data is the test pattern from offset 0 of each stream. */
static void on_data(uvq_quic_conn_t* c, int64_t id, const uint8_t* data,
                    size_t len, int fin) {
  cw_node_t* n = node_of_conn(c);
  uint64_t* off = uvq_quic_stream_get_data(c, id);
  size_t i;

  if (off == NULL) {
    /* Offsets live in the node's table until the test ends: a stream
     * still open when its connection closes gets no stream_closed. */
    ASSERT_LT(n->noffsets, CW_OFFSETS);
    off = &n->offsets[n->noffsets++];
    ASSERT_OK(uvq_quic_stream_set_data(c, id, off));
  }
  for (i = 0; i < len; i++)
    if (data[i] != (uint8_t) ((*off + i) * 7u + 3u))
      n->pattern_errors++;
  *off += len;
  n->received += len;
  if (fin)
    n->fins++;
  uvq_quic_stream_consume(c, id, len);
}


static void cw_config(cw_t* w, uvq_quic_config_t* cfg, int server) {
  uvq_quic_config_default(cfg);
  cfg->alpn = "uvq-test";
  if (server) {
    cfg->cert_file = w->certs.cert;
    cfg->key_file = w->certs.key;
  } else {
    cfg->ca_file = w->certs.cert;
  }
}

/* A new node at ip:port, and the wire's sink for its endpoint. */
static cw_node_t* cw_node_new(cw_t* w, const char* ip, int port,
                              uvq_quic_io_t* io) {
  cw_node_t* n;

  ASSERT_LT(w->nnodes, CW_NODES);
  n = &w->nodes[w->nnodes++];
  memset(n, 0, sizeof(*n));
  n->w = w;
  sockaddr_make(&n->addr, ip, port);
  memset(io, 0, sizeof(*io));
  io->version = UVQ_QUIC_IO_VERSION;
  io->send = cw_send;
  io->wake = cw_wake;
  return n;
}

static cw_node_t* cw_add(cw_t* w, const uvq_quic_config_t* cfg,
                         const char* ip, int port) {
  uvq_quic_callbacks_t cb;
  uvq_quic_io_t io;
  cw_node_t* n;

  n = cw_node_new(w, ip, port, &io);
  memset(&cb, 0, sizeof(cb));
  cb.accept = on_accept;
  cb.handshake_done = on_handshake;
  cb.closed = on_closed;
  cb.stream_data = on_data;
  ASSERT_OK(uvq_quic_endpoint_new_core(cfg, &cb, &io, n, &n->ep));
  return n;
}

/* ---- HTTP/3 nodes ---------------------------------------------------------- */

static cw_node_t* h3_node(uvq_h3_t* h3) {
  return uvq_h3_get_data(h3);
}

/* Server: serves files from the certificates' directory. */
static void h3n_request(uvq_h3_req_t* req) {
  cw_node_t* n = h3_node(uvq_h3_req_h3(req));

  n->h3_requests++;
  ASSERT_OK(uvq_h3_serve_file(req, n->w->certs.dir));
}

static void h3n_response(uvq_h3_req_t* req, int status) {
  h3_node(uvq_h3_req_h3(req))->h3_status = status;
}

static void h3n_body(uvq_h3_req_t* req, const uint8_t* data, size_t len) {
  cw_node_t* n = h3_node(uvq_h3_req_h3(req));

  if (n->h3 == NULL || uvq_h3_conn(n->h3) == NULL)
    return;  /* the server's view of a request body: none here */
  ASSERT_UINT_LE(n->h3_got + len, sizeof(n->h3_body));
  memcpy(n->h3_body + n->h3_got, data, len);
  n->h3_got += len;
}

static void h3n_done(uvq_h3_req_t* req, uint64_t app_error) {
  cw_node_t* n = h3_node(uvq_h3_req_h3(req));

  n->h3_dones++;
  n->h3_done_code = app_error;
  n->h3_done_at = n->w->now;
}

static void h3n_connected(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  ASSERT_NULL(error);
  h3_node(h3)->h3_connected++;
}

/* A node whose endpoint is an HTTP/3 server or client on the wire's
 * sink. */
static cw_node_t* cw_add_h3(cw_t* w, int server, const char* ip, int port,
                            uint64_t file_cache_ms) {
  uvq_quic_config_t cfg;
  uvq_h3_config_t h3cfg;
  uvq_h3_callbacks_t cb;
  uvq_quic_io_t io;
  cw_node_t* n;

  n = cw_node_new(w, ip, port, &io);
  uvq_quic_config_default(&cfg);
  if (server) {
    cfg.cert_file = w->certs.cert;
    cfg.key_file = w->certs.key;
  } else {
    cfg.ca_file = w->certs.cert;
  }
  uvq_h3_config_default(&h3cfg);
  h3cfg.file_cache_ms = file_cache_ms;
  memset(&cb, 0, sizeof(cb));
  cb.request = h3n_request;
  cb.response = h3n_response;
  cb.body = h3n_body;
  cb.done = h3n_done;
  cb.connected = h3n_connected;
  if (server)
    ASSERT_OK(uvq_h3_server_new_core(&cfg, &h3cfg, &cb, &io, n, &n->h3));
  else
    ASSERT_OK(uvq_h3_client_new_core(&cfg, &h3cfg, &cb, &io, n, &n->h3));
  n->ep = uvq_h3_endpoint(n->h3);
  ASSERT_PTR_EQ(n->h3, uvq_quic_endpoint_get_data(n->ep));
  return n;
}

static unsigned int h3_shut;

static void h3n_closed(uvq_h3_t* h3) {
  cw_node_t* n = h3_node(h3);

  h3_shut++;
  n->h3 = NULL;
  n->ep = NULL;
}

static int h3_server_shut(cw_t* w) {
  (void) w;
  return h3_shut > 0;
}

static int h3_dones_2(cw_t* w) {
  return w->nodes[1].h3_dones >= 2;
}

static int h3_dones_1(cw_t* w) {
  return w->nodes[1].h3_dones >= 1;
}

static void write_file(const char* dir, const char* name, const char* text) {
  char path[256];
  FILE* f;

  snprintf(path, sizeof(path), "%s/%s", dir, name);
  f = fopen(path, "w");
  ASSERT_NOT_NULL(f);
  ASSERT_EQ(1, fwrite(text, strlen(text), 1, f));
  ASSERT_OK(fclose(f));
}

static cw_node_t* cw_node_at(cw_t* w, const struct sockaddr_in* a) {
  unsigned int i;
  for (i = 0; i < w->nnodes; i++)
    if (w->nodes[i].ep != NULL && same_sockaddr(&w->nodes[i].addr, a))
      return &w->nodes[i];
  return NULL;
}

static void cw_init(cw_t* w) {
  memset(w, 0, sizeof(*w));
  cw_current = w;
  qt_make_certs(&w->certs);
  w->now = CW_T0;
}

static void cw_free_queue(cw_dgram_t* d) {
  while (d != NULL) {
    cw_dgram_t* next = d->next;
    free(d);
    d = next;
  }
}

static void cw_close_node(cw_node_t* n) {
  if (n->h3 != NULL) {
    uvq_h3_close(n->h3, NULL);
    n->h3 = NULL;
    n->ep = NULL;
  }
  if (n->ep != NULL) {
    uvq_quic_endpoint_close(n->ep, NULL);
    n->ep = NULL;
  }
}

static void cw_done(cw_t* w) {
  unsigned int i;
  for (i = 0; i < w->nnodes; i++)
    cw_close_node(&w->nodes[i]);
  cw_free_queue(w->head);
  cw_free_queue(w->held);
  w->head = w->tail = w->held = NULL;
  while (w->nowned > 0)
    free(w->owned[--w->nowned]);
}

/* Flushes every endpoint at the current time until nothing is held back
 * in a sink. */
static void cw_flush_all(cw_t* w) {
  unsigned int i;
  unsigned int rounds;

  for (i = 0; i < w->nnodes; i++) {
    if (w->nodes[i].ep == NULL)
      continue;
    /* An HTTP/3 node's endpoint may end inside its flush (shutdown). */
    for (rounds = 0; rounds < 10000 && w->nodes[i].ep != NULL; rounds++)
      if (uvq_quic_endpoint_flush(w->nodes[i].ep, w->now) == 0)
        break;
    ASSERT_LT(rounds, 10000);
  }
}

/* Delivers the datagrams due at the earliest due time, after running the
 * timers due before it; returns 0 when there is nothing left to do before
 * limit. */
static int cw_step(cw_t* w, uint64_t limit) {
  uint64_t next;
  uint64_t e;
  unsigned int i;
  cw_dgram_t* d;

  next = UINT64_MAX;
  if (w->head != NULL)
    next = w->head->due;
  for (i = 0; i < w->nnodes; i++) {
    if (w->nodes[i].ep == NULL)
      continue;
    e = uvq_quic_endpoint_next_expiry(w->nodes[i].ep);
    if (e < next)
      next = e;
  }
  if (next == UINT64_MAX || next > limit)
    return 0;
  if (next > w->now)
    w->now = next;
  for (i = 0; i < w->nnodes; i++) {
    if (w->nodes[i].ep == NULL)
      continue;
    if (uvq_quic_endpoint_next_expiry(w->nodes[i].ep) <= w->now)
      ASSERT_OK(uvq_quic_endpoint_expire(w->nodes[i].ep, w->now));
  }
  while ((d = w->head) != NULL && d->due <= w->now) {
    cw_node_t* to;
    w->head = d->next;
    if (w->head == NULL)
      w->tail = NULL;
    if (w->nat_inside.sin_port != 0) {
      if (same_sockaddr(&d->from, &w->nat_inside))
        d->from = w->nat_outside;
      else if (same_sockaddr(&d->to, &w->nat_outside))
        d->to = w->nat_inside;
    }
    to = cw_node_at(w, &d->to);
    if (w->drop_from.sin_port != 0 && same_sockaddr(&d->from, &w->drop_from)) {
      free(d);
      continue;
    }
    if (w->hold && to != NULL) {
      d->next = w->held;
      w->held = d;
      continue;
    }
    if (to != NULL) {
      ASSERT_OK(uvq_quic_endpoint_input(to->ep, (struct sockaddr*) &d->from,
                                        (struct sockaddr*) &d->to, d->ecn,
                                        d->data, d->len, w->now));
      w->delivered++;
    }
    free(d);
  }
  cw_flush_all(w);
  return 1;
}

/* Steps until n more datagrams were delivered. */
static void cw_deliver(cw_t* w, uint64_t n) {
  uint64_t target = w->delivered + n;
  unsigned int steps;

  for (steps = 0; steps < 10000 && w->delivered < target; steps++)
    ASSERT(cw_step(w, UINT64_MAX));
  ASSERT_UINT_EQ(target, w->delivered);
}

/* Runs the wire until cond holds (or until limit). */
static void cw_run_until(cw_t* w, int (*cond)(cw_t*), uint64_t limit) {
  unsigned int steps;

  cw_flush_all(w);
  for (steps = 0; steps < 200000 && !cond(w); steps++)
    if (!cw_step(w, limit))
      break;
  ASSERT_LT(steps, 200000);
}

static int client_handshaken(cw_t* w) {
  return w->nodes[1].handshakes > 0 && w->nodes[0].handshakes > 0;
}

static int never(cw_t* w) {
  (void) w;
  return 0;
}

static uvq_quic_conn_t* cw_connect(cw_t* w, cw_node_t* client,
                                   cw_node_t* server) {
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* c;

  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  opts.local = (struct sockaddr*) &client->addr;
  ASSERT_OK(uvq_quic_connect(client->ep, (struct sockaddr*) &server->addr,
                             &opts, NULL, &c));
  if (client->nconns < CW_NODES)
    client->conns[client->nconns++] = c;
  (void) w;
  return c;
}

static void on_written(uvq_quic_write_t* req, int status) {
  (void) req;
  (void) status;
}

/* A fresh wire with a server at 192.0.2.1:443 and a client at
 * 198.51.100.7:50000, each configuration adjusted by tweak (NULL: none),
 * and the client's connection started (nothing sent yet). */
static uvq_quic_conn_t* cw_pair(cw_t* w,
                                void (*tweak)(uvq_quic_config_t*, int),
                                cw_node_t** server,
                                cw_node_t** client) {
  uvq_quic_config_t cfg;

  cw_init(w);
  cw_config(w, &cfg, 1);
  if (tweak != NULL)
    tweak(&cfg, 1);
  *server = cw_add(w, &cfg, "192.0.2.1", 443);
  cw_config(w, &cfg, 0);
  if (tweak != NULL)
    tweak(&cfg, 0);
  *client = cw_add(w, &cfg, "198.51.100.7", 50000);
  return cw_connect(w, *client, *server);
}

/* Opens a bidirectional stream on c and writes len bytes of the test
 * pattern to it, with FIN. The payload and request belong to the wire
 * until cw_done. */
static void write_pattern(cw_t* w, uvq_quic_conn_t* c, size_t len) {
  uvq_quic_write_t* req;
  int64_t id;
  uint8_t* p;
  uv_buf_t buf;
  size_t i;

  ASSERT_UINT_LE(w->nowned + 2, CW_OWNED);
  ASSERT_OK(uvq_quic_stream_open(c, 1, &id));
  p = malloc(len);
  ASSERT_NOT_NULL(p);
  for (i = 0; i < len; i++)
    p[i] = (uint8_t) (i * 7u + 3u);
  req = malloc(sizeof(*req));
  ASSERT_NOT_NULL(req);
  w->owned[w->nowned++] = p;
  w->owned[w->nowned++] = req;
  buf = uv_buf_init((char*) p, (unsigned int) len);
  ASSERT_OK(uvq_quic_stream_write(req, c, id, &buf, 1, 1, on_written));
}

/* ---- tests ------------------------------------------------------------- */

static void client_without_gso(uvq_quic_config_t* cfg, int server) {
  if (!server)
    cfg->gso = 0;
}

static void idle_3s(uvq_quic_config_t* cfg, int server) {
  (void) server;
  cfg->idle_timeout_ms = 3000;
}

static void retry_always(uvq_quic_config_t* cfg, int server) {
  if (server)
    cfg->retry = UVQ_QUIC_RETRY_ALWAYS;
}

static const uint8_t fixed_secret_bytes[32] = {
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a};

static void fixed_secret(uvq_quic_config_t* cfg, int server) {
  if (server)
    cfg->static_secret = fixed_secret_bytes;
}

/* A handshake takes exactly its round trips: the client completes when
 * the server's first flight arrives (1 RTT), the server when the client's
 * Finished arrives (1.5 RTT); then 300 KB cross on one stream. */
TEST_IMPL(quic_core_handshake_times) {
  uvq_quic_endpoint_stats_t st;
  cw_node_t* server;
  cw_node_t* client;
  uvq_quic_conn_t* c;
  cw_t w;

  c = cw_pair(&w, NULL, &server, &client);
  /* Connecting asked for a flush; nothing was sent before it. */
  ASSERT_EQ(1, client->wakes);
  ASSERT_UINT_EQ(0, client->datagrams);
  cw_run_until(&w, client_handshaken, UINT64_MAX);
  ASSERT_UINT_EQ(CW_T0 + 2 * CW_DELAY, client->handshake_at);
  ASSERT_UINT_EQ(CW_T0 + 3 * CW_DELAY, server->handshake_at);

  write_pattern(&w, c, 300000);
  w.now += CW_MS;
  cw_run_until(&w, never, w.now + 5000 * CW_MS);
  ASSERT_UINT_EQ(300000, server->received);
  ASSERT_EQ(1, server->fins);
  ASSERT_UINT_EQ(0, server->pattern_errors);
  /* Sent in GSO runs. */
  ASSERT_GT(client->gso_msgs, 0);
  ASSERT_GE(client->max_segments, 8);
  ASSERT_OK(uvq_quic_endpoint_get_stats(server->ep, &st));
  ASSERT_UINT_EQ(1, st.connections_accepted);
  ASSERT_UINT_EQ(0, st.packets_dropped);
  ASSERT_EQ(0, client->closed);
  cw_done(&w);
  return 0;
}

/* The same inputs at the same times give the same packets: nothing in the
 * core reads a clock. The random parts (connection IDs, keys) differ, so
 * this compares what does not depend on them: how many datagrams of which
 * sizes went out, in which order, at which times. */
static void run_fingerprint(uint64_t* out, size_t n) {
  cw_node_t* server;
  cw_node_t* client;
  uvq_quic_conn_t* c;
  cw_t w;

  c = cw_pair(&w, NULL, &server, &client);
  cw_run_until(&w, client_handshaken, UINT64_MAX);
  write_pattern(&w, c, 100000);
  cw_run_until(&w, never, w.now + 3000 * CW_MS);
  out[0] = client->datagrams;
  out[1] = server->datagrams;
  out[2] = client->msgs;
  out[3] = server->msgs;
  out[4] = w.now;
  out[5] = server->received;
  (void) n;
  cw_done(&w);
}

TEST_IMPL(quic_core_deterministic) {
  uint64_t a[6];
  uint64_t b[6];
  int i;

  run_fingerprint(a, 6);
  run_fingerprint(b, 6);
  for (i = 0; i < 6; i++)
    ASSERT_UINT_EQ(a[i], b[i]);
  ASSERT_UINT_EQ(100000, a[5]);
  return 0;
}

/* A sink that takes one message per call: flush reports UV_EAGAIN, the
 * refused message is offered first at the next flush, and the transfer
 * arrives whole. Without GSO every message is one datagram. */
TEST_IMPL(quic_core_sink_partial) {
  cw_node_t* server;
  cw_node_t* client;
  uvq_quic_conn_t* c;
  cw_t w;

  c = cw_pair(&w, client_without_gso, &server, &client);
  cw_run_until(&w, client_handshaken, UINT64_MAX);
  client->take_limit = 1;
  write_pattern(&w, c, 200000);
  /* One flush by hand: the sink takes one message of several. */
  ASSERT_ERR(UV_EAGAIN, uvq_quic_endpoint_flush(client->ep, w.now));
  ASSERT_EQ(1, client->refusals);
  ASSERT_EQ(0, client->resumed_same);
  /* The next flush offers the refused message first (it may again take
   * only one). */
  (void) uvq_quic_endpoint_flush(client->ep, w.now);
  ASSERT_EQ(1, client->resumed_same);
  cw_run_until(&w, never, w.now + 5000 * CW_MS);
  ASSERT_UINT_EQ(200000, server->received);
  ASSERT_UINT_EQ(0, server->pattern_errors);
  ASSERT_EQ(1, server->fins);
  /* Every refused message came first in the next call. */
  ASSERT_GT(client->refusals, 10);
  ASSERT_UINT_GE(client->resumed_same + 1, client->refusals);
  ASSERT_UINT_EQ(0, client->gso_msgs);
  ASSERT_UINT_EQ(client->msgs, client->datagrams);
  cw_done(&w);
  return 0;
}

/* Idle timeout: both sides close at the deadline, with no packet. */
TEST_IMPL(quic_core_idle_timeout) {
  cw_node_t* server;
  cw_node_t* client;
  uint64_t client_dgrams;
  uint64_t server_dgrams;
  uint64_t quiet_from;
  cw_t w;

  cw_pair(&w, idle_3s, &server, &client);
  cw_run_until(&w, client_handshaken, UINT64_MAX);
  /* Let the handshake's last ACKs settle. */
  cw_run_until(&w, never, w.now + 500 * CW_MS);
  ASSERT_EQ(0, client->closed);
  quiet_from = w.now;
  client_dgrams = client->datagrams;
  server_dgrams = server->datagrams;
  cw_run_until(&w, never, UINT64_MAX);
  ASSERT_EQ(1, client->closed);
  ASSERT_EQ(1, server->closed);
  ASSERT_EQ(UVQ_QUIC_ERROR_IDLE, client->last_error.kind);
  ASSERT_EQ(UVQ_QUIC_ERROR_IDLE, server->last_error.kind);
  /* No packet in the quiet time; both closed within 3 s of the last
   * packet each received (which was before quiet_from). */
  ASSERT_UINT_EQ(client_dgrams, client->datagrams);
  ASSERT_UINT_EQ(server_dgrams, server->datagrams);
  ASSERT_UINT_LE(client->closed_at, quiet_from + 3000 * CW_MS);
  ASSERT_UINT_GE(client->closed_at, quiet_from + 2000 * CW_MS);
  ASSERT_UINT_LE(server->closed_at, quiet_from + 3000 * CW_MS);
  /* Nothing left to time. */
  ASSERT_UINT_EQ(UINT64_MAX, uvq_quic_endpoint_next_expiry(client->ep));
  ASSERT_UINT_EQ(UINT64_MAX, uvq_quic_endpoint_next_expiry(server->ep));
  cw_done(&w);
  return 0;
}

/* Handshake timeout: a client whose server never answers gives up at
 * exactly handshake_timeout_ms after it started, after retransmitting its
 * Initial on each PTO. */
TEST_IMPL(quic_core_handshake_timeout) {
  uvq_quic_config_t cfg;
  struct sockaddr_in nowhere;
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* c;
  cw_node_t* client;
  cw_t w;

  cw_init(&w);
  cw_config(&w, &cfg, 0);
  cfg.handshake_timeout_ms = 2000;
  client = cw_add(&w, &cfg, "198.51.100.7", 50000);
  sockaddr_make(&nowhere, "203.0.113.9", 443);
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  opts.local = (struct sockaddr*) &client->addr;
  /* The clock starts where the application says. */
  ASSERT_OK(uvq_quic_endpoint_flush(client->ep, w.now));
  ASSERT_OK(uvq_quic_connect(client->ep, (struct sockaddr*) &nowhere, &opts,
                             NULL, &c));
  cw_run_until(&w, never, UINT64_MAX);
  ASSERT_EQ(1, client->closed);
  ASSERT_EQ(UVQ_QUIC_ERROR_HANDSHAKE_TIMEOUT, client->last_error.kind);
  ASSERT_UINT_EQ(CW_T0 + 2000 * CW_MS, client->closed_at);
  /* The first Initial and at least one PTO retransmission. */
  ASSERT_UINT_GE(client->datagrams, 2);
  cw_done(&w);
  return 0;
}

/* Retry with explicit time: a token is accepted within its lifetime from
 * the address it was issued to, and refused with INVALID_TOKEN from
 * another address or after 10 s. */
static int retry_case(int which) {
  uvq_quic_endpoint_stats_t st;
  cw_node_t* server;
  cw_node_t* client;
  cw_dgram_t* d;
  cw_dgram_t* tokened;
  uint64_t before;
  cw_t w;

  cw_pair(&w, retry_always, &server, &client);
  cw_flush_all(&w);
  /* Client Initial out, Retry back, client's Initial with the token out:
   * hold what reaches the server from then on. */
  cw_deliver(&w, 1);                     /* Initial reaches the server */
  ASSERT_OK(uvq_quic_endpoint_get_stats(server->ep, &st));
  ASSERT_UINT_EQ(1, st.retries);
  ASSERT_UINT_EQ(0, st.connections_accepted);
  w.hold = 1;
  while (w.held == NULL)
    ASSERT(cw_step(&w, UINT64_MAX));     /* the Retry reaches the client */
  w.hold = 0;
  /* The Retry was held too: deliver it by hand. */
  d = w.held;
  ASSERT_NOT_NULL(d);
  ASSERT_NULL(d->next);
  w.held = NULL;
  ASSERT_EQ(0xf0, d->data[0] & 0xf0);   /* long header, type Retry (v1) */
  ASSERT_OK(uvq_quic_endpoint_input(client->ep, (struct sockaddr*) &d->from,
                                    (struct sockaddr*) &d->to, 0, d->data,
                                    d->len, w.now));
  free(d);
  cw_flush_all(&w);
  /* The client's Initial with the token is on the wire. */
  tokened = w.head;
  ASSERT_NOT_NULL(tokened);
  w.head = tokened->next;
  if (w.head == NULL)
    w.tail = NULL;
  tokened->next = NULL;
  ASSERT_EQ(0xc0, tokened->data[0] & 0xf0); /* long header Initial */

  if (which == 1)
    tokened->from.sin_port = htons(50001);   /* another address */
  if (which == 2)
    w.now += 10001 * CW_MS;                  /* past the token's life */
  before = server->datagrams;
  ASSERT_OK(uvq_quic_endpoint_input(server->ep,
                                    (struct sockaddr*) &tokened->from,
                                    (struct sockaddr*) &tokened->to, 0,
                                    tokened->data, tokened->len, w.now));
  ASSERT_OK(uvq_quic_endpoint_flush(server->ep, w.now));
  ASSERT_OK(uvq_quic_endpoint_get_stats(server->ep, &st));
  free(tokened);
  if (which == 0) {
    ASSERT_UINT_EQ(1, st.connections_accepted);
    ASSERT_UINT_EQ(0, st.connections_refused);
    cw_run_until(&w, client_handshaken, UINT64_MAX);
    ASSERT_EQ(1, client->handshakes);
  } else {
    ASSERT_UINT_EQ(0, st.connections_accepted);
    ASSERT_UINT_EQ(1, st.connections_refused);
    /* One answer: an Initial carrying CONNECTION_CLOSE. */
    ASSERT_UINT_EQ(before + 1, server->datagrams);
    ASSERT_EQ(0xc0, w.tail->data[0] & 0xf0);
  }
  cw_done(&w);
  return 0;
}

TEST_IMPL(quic_core_retry_token) {
  retry_case(0);
  retry_case(1);
  retry_case(2);
  return 0;
}

/* Version Negotiation: a 1200-byte Initial of an unknown version gets one
 * VN packet echoing both connection IDs and listing v1 and v2; a shorter
 * one gets nothing. A client that reads a VN without a version it speaks
 * closes with UVQ_QUIC_ERROR_VERSION. */
TEST_IMPL(quic_core_version_negotiation) {
  uvq_quic_endpoint_stats_t st;
  uvq_quic_config_t cfg;
  struct sockaddr_in from;
  cw_node_t* server;
  cw_node_t* client;
  uvq_quic_conn_t* c;
  uint8_t pkt[1200];
  uint8_t vn[64];
  cw_dgram_t* d;
  uint8_t* p;
  cw_t w;

  cw_init(&w);
  cw_config(&w, &cfg, 1);
  server = cw_add(&w, &cfg, "192.0.2.1", 443);
  sockaddr_make(&from, "198.51.100.9", 40000);
  memset(pkt, 0xaa, sizeof(pkt));
  pkt[0] = 0xc0;
  pkt[1] = 0x1a; pkt[2] = 0x2a; pkt[3] = 0x3a; pkt[4] = 0x4a;
  pkt[5] = 8;
  memcpy(pkt + 6, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  pkt[14] = 5;
  memcpy(pkt + 15, "\x11\x12\x13\x14\x15", 5);
  ASSERT_OK(uvq_quic_endpoint_input(server->ep, (struct sockaddr*) &from,
                                    (struct sockaddr*) &server->addr, 0, pkt,
                                    1199, w.now));
  ASSERT_OK(uvq_quic_endpoint_flush(server->ep, w.now));
  ASSERT_UINT_EQ(0, server->datagrams);
  ASSERT_OK(uvq_quic_endpoint_input(server->ep, (struct sockaddr*) &from,
                                    (struct sockaddr*) &server->addr, 0, pkt,
                                    1200, w.now));
  ASSERT_OK(uvq_quic_endpoint_flush(server->ep, w.now));
  ASSERT_UINT_EQ(1, server->datagrams);
  ASSERT_OK(uvq_quic_endpoint_get_stats(server->ep, &st));
  ASSERT_UINT_EQ(1, st.version_negotiations);
  d = w.head;
  ASSERT_NOT_NULL(d);
  ASSERT(same_sockaddr(&d->to, &from));
  /* 1 + version 0 + DCID (their SCID) + SCID (their DCID) + 2 versions. */
  ASSERT_UINT_EQ(1 + 4 + 1 + 5 + 1 + 8 + 8, d->len);
  p = d->data;
  ASSERT_EQ(0x80, p[0] & 0x80);
  ASSERT_MEM_EQ(p + 1, "\0\0\0\0", 4);
  ASSERT_EQ(5, p[5]);
  ASSERT_MEM_EQ(p + 6, "\x11\x12\x13\x14\x15", 5);
  ASSERT_EQ(8, p[11]);
  ASSERT_MEM_EQ(p + 12, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
  ASSERT_MEM_EQ(p + 20, "\x00\x00\x00\x01", 4);
  ASSERT_MEM_EQ(p + 24, "\x6b\x33\x43\xcf", 4);
  cw_free_queue(w.head);
  w.head = w.tail = NULL;

  /* A client told only of a version it does not speak gives up. */
  cw_config(&w, &cfg, 0);
  client = cw_add(&w, &cfg, "198.51.100.7", 50000);
  c = cw_connect(&w, client, server);
  (void) c;
  cw_flush_all(&w);
  d = w.head;
  ASSERT_NOT_NULL(d);
  ASSERT_EQ(0xc0, d->data[0] & 0xf0);
  /* The client's Initial: DCID at 6, SCID after it. */
  {
    size_t dcidlen = d->data[5];
    size_t scidlen = d->data[6 + dcidlen];
    size_t n = 0;
    vn[n++] = 0x80;
    memset(vn + n, 0, 4);
    n += 4;
    vn[n++] = (uint8_t) scidlen;
    memcpy(vn + n, d->data + 7 + dcidlen, scidlen);
    n += scidlen;
    vn[n++] = (uint8_t) dcidlen;
    memcpy(vn + n, d->data + 6, dcidlen);
    n += dcidlen;
    memcpy(vn + n, "\x1a\x2a\x3a\x4a", 4);
    n += 4;
    cw_free_queue(w.head);
    w.head = w.tail = NULL;
    w.now += CW_DELAY;
    ASSERT_OK(uvq_quic_endpoint_input(client->ep,
                                      (struct sockaddr*) &server->addr,
                                      (struct sockaddr*) &client->addr, 0, vn,
                                      n, w.now));
  }
  ASSERT_EQ(1, client->closed);
  ASSERT_EQ(UVQ_QUIC_ERROR_VERSION, client->last_error.kind);
  cw_done(&w);
  return 0;
}

/* Stateless reset, both ways: a server restarted with the same
 * static_secret answers the client's next packet with a reset whose
 * token is the one it issued before (derived from the secret and the
 * connection ID), shorter than the packet that provoked it; the client
 * recognises it and closes with UVQ_QUIC_ERROR_STATELESS_RESET. */
TEST_IMPL(quic_core_stateless_reset) {
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
  uvq_quic_endpoint_stats_t st;
  uvq_quic_config_t cfg;
  cw_node_t* server;
  cw_node_t* server2;
  cw_node_t* client;
  uvq_quic_conn_t* c;
  cw_dgram_t* d;
  size_t provoked;
  cw_t w;

  c = cw_pair(&w, fixed_secret, &server, &client);
  cw_run_until(&w, client_handshaken, UINT64_MAX);
  cw_run_until(&w, never, w.now + 200 * CW_MS);

  /* The server goes away; another comes up at its address with the same
   * secret and no connections. */
  cw_close_node(server);
  cw_free_queue(w.head);
  w.head = w.tail = NULL;
  cw_config(&w, &cfg, 1);
  fixed_secret(&cfg, 1);
  server2 = cw_add(&w, &cfg, "192.0.2.1", 443);

  write_pattern(&w, c, 1000);
  cw_flush_all(&w);
  d = w.head;
  ASSERT_NOT_NULL(d);
  ASSERT_EQ(0, d->data[0] & 0x80);      /* short header */
  provoked = d->len;
  /* The DCID is an 18-byte ID the first server issued. */
  qt_reset_token(fixed_secret_bytes, d->data + 1, 18, token);
  /* The client's packet reaches the new server: a reset comes back. */
  cw_deliver(&w, 1);
  ASSERT_OK(uvq_quic_endpoint_get_stats(server2->ep, &st));
  ASSERT_UINT_EQ(1, st.stateless_resets);
  ASSERT_UINT_EQ(1, st.packets_dropped);
  ASSERT_UINT_EQ(0, st.connections_accepted);
  d = w.head;
  ASSERT_NOT_NULL(d);
  ASSERT_NULL(d->next);
  ASSERT(same_sockaddr(&d->to, &client->addr));
  ASSERT(d->len < provoked);
  ASSERT_UINT_GE(d->len, 21);
  ASSERT_EQ(0x40, d->data[0] & 0xc0);    /* looks like a short header */
  ASSERT_MEM_EQ(d->data + d->len - sizeof(token), token, sizeof(token));
  ASSERT_EQ(0, client->closed);
  cw_deliver(&w, 1);                     /* the reset reaches the client */
  ASSERT_EQ(1, client->closed);
  ASSERT_EQ(UVQ_QUIC_ERROR_STATELESS_RESET, client->last_error.kind);
  ASSERT_EQ(1, client->last_error.remote);
  cw_done(&w);
  return 0;
}

/* Routing by connection ID: twenty clients behind one address share the
 * server's port; each connection's stream reaches only its own
 * connection, and a client whose address and port change mid-connection
 * (a NAT rebinding) is still found by its ID. */
TEST_IMPL(quic_core_cid_routing) {
  uvq_quic_endpoint_stats_t st;
  uvq_quic_config_t cfg;
  uvq_quic_conn_t* conns[20];
  struct sockaddr_storage remote;
  cw_node_t* server;
  cw_node_t* clients[20];
  struct sockaddr_in* sin;
  unsigned int i;
  cw_t w;

  cw_init(&w);
  cw_config(&w, &cfg, 1);
  server = cw_add(&w, &cfg, "192.0.2.1", 443);
  for (i = 0; i < 20; i++) {
    cw_config(&w, &cfg, 0);
    clients[i] = cw_add(&w, &cfg, "198.51.100.7", (int) (50000 + i));
    conns[i] = cw_connect(&w, clients[i], server);
  }
  cw_run_until(&w, never, w.now + 300 * CW_MS);
  ASSERT_EQ(20, server->handshakes);
  for (i = 0; i < 20; i++) {
    ASSERT_EQ(1, clients[i]->handshakes);
    write_pattern(&w, conns[i], 1000 * (i + 1));
  }
  cw_run_until(&w, never, w.now + 1000 * CW_MS);
  /* Each server connection got exactly its client's bytes: the server
   * connections' streams total 1000 * (1 + ... + 20). */
  ASSERT_UINT_EQ(210000, server->received);
  ASSERT_EQ(20, server->fins);
  ASSERT_UINT_EQ(0, server->pattern_errors);

  /* Client 3 moves behind a NAT: its datagrams now come from another
   * address and port; the server routes them by ID and moves the path. */
  w.nat_inside = clients[3]->addr;
  sockaddr_make(&w.nat_outside, "198.51.100.200", 61000);
  write_pattern(&w, conns[3], 5000);
  cw_run_until(&w, never, w.now + 1000 * CW_MS);
  ASSERT_UINT_EQ(215000, server->received);
  ASSERT_OK(uvq_quic_endpoint_get_stats(server->ep, &st));
  ASSERT_UINT_EQ(20, st.connections_accepted);
  ASSERT_UINT_EQ(0, st.stateless_resets);
  /* The server's connection for client 3 now answers the new address. */
  for (i = 0; i < server->nconns; i++) {
    if (server->conns[i] == NULL)
      continue;
    ASSERT_OK(uvq_quic_conn_get_path(server->conns[i], NULL, &remote));
    sin = (struct sockaddr_in*) &remote;
    if (ntohs(sin->sin_port) == 61000)
      break;
  }
  ASSERT_LT(i, server->nconns);
  for (i = 0; i < 20; i++)
    ASSERT_EQ(0, clients[i]->closed);
  cw_done(&w);
  return 0;
}

/* Argument errors, and what a core endpoint refuses. */
TEST_IMPL(quic_core_api_errors) {
  uvq_quic_config_t cfg;
  uvq_quic_connect_opts_t opts;
  uvq_quic_callbacks_t cb;
  uvq_quic_io_t io;
  struct sockaddr_in a;
  struct sockaddr_in6 a6;
  uvq_quic_endpoint_t* ep;
  uvq_quic_endpoint_t* loop_ep;
  uvq_quic_conn_t* c;
  uv_loop_t loop;
  uvq_udp_t u;
  uint8_t byte = 0;
  cw_t w;

  cw_init(&w);
  cw_config(&w, &cfg, 0);
  memset(&cb, 0, sizeof(cb));
  memset(&io, 0, sizeof(io));
  io.version = UVQ_QUIC_IO_VERSION;
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new_core(&cfg, &cb, NULL, NULL, &ep));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new_core(&cfg, &cb, &io, NULL, &ep));
  io.send = cw_send;
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new_core(&cfg, &cb, &io, NULL, NULL));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new_core(NULL, &cb, &io, NULL, &ep));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_new_core_versioned(&cfg, 1, &cb,
                                                  UVQ_QUIC_IO_VERSION + 1,
                                                  &io, NULL, &ep));
  ASSERT_OK(uvq_quic_endpoint_new_core(&cfg, &cb, &io, NULL, &ep));
  ASSERT_NULL(uvq_quic_endpoint_udp(ep));
  sockaddr_make(&a, "192.0.2.1", 443);
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_bind(ep, (struct sockaddr*) &a));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_input(ep, NULL, (struct sockaddr*) &a, 0,
                                     &byte, 1, 1));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_input(ep, (struct sockaddr*) &a, NULL, 0,
                                     &byte, 1, 1));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_input(ep, (struct sockaddr*) &a,
                                     (struct sockaddr*) &a, 4, &byte, 1, 1));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_input(ep, (struct sockaddr*) &a,
                                     (struct sockaddr*) &a, -1, &byte, 1, 1));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_input(ep, (struct sockaddr*) &a,
                                     (struct sockaddr*) &a, 0, NULL, 1, 1));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_input(ep, (struct sockaddr*) &a,
                                     (struct sockaddr*) &a, 0, &byte, 0, 1));
  memset(&a6, 0, sizeof(a6));
  a6.sin6_family = AF_INET6;
  a6.sin6_port = htons(443);
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_input(ep, (struct sockaddr*) &a,
                                     (struct sockaddr*) &a6, 0, &byte, 1, 1));
  /* A one-byte datagram is dropped, not an error. */
  ASSERT_OK(uvq_quic_endpoint_input(ep, (struct sockaddr*) &a,
                                    (struct sockaddr*) &a, 0, &byte, 1, 1));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_flush(NULL, 1));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_expire(NULL, 1));
  ASSERT_UINT_EQ(UINT64_MAX, uvq_quic_endpoint_next_expiry(NULL));
  ASSERT_UINT_EQ(UINT64_MAX, uvq_quic_endpoint_next_expiry(ep));
  /* connect needs the path's source, with a port. */
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_connect(ep, (struct sockaddr*) &a, &opts, NULL, &c));
  {
    struct sockaddr_in local;
    sockaddr_make(&local, "198.51.100.7", 0);
    opts.local = (struct sockaddr*) &local;
    ASSERT_ERR(UV_EINVAL,
               uvq_quic_connect(ep, (struct sockaddr*) &a, &opts, NULL, &c));
    opts.local = (struct sockaddr*) &a6;
    ASSERT_ERR(UV_EAFNOSUPPORT,
               uvq_quic_connect(ep, (struct sockaddr*) &a, &opts, NULL, &c));
  }
  uvq_quic_endpoint_close(ep, NULL);

  /* The core entry points refuse a loop endpoint, and open refuses a core
   * endpoint. */
  ASSERT_OK(uv_loop_init(&loop));
  ASSERT_OK(uvq_quic_endpoint_new(&loop, &cfg, &cb, NULL, &loop_ep));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_input(loop_ep, (struct sockaddr*) &a,
                                     (struct sockaddr*) &a, 0, &byte, 1, 1));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_flush(loop_ep, 1));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_expire(loop_ep, 1));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_open(loop_ep, NULL));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_open(loop_ep, uvq_quic_endpoint_udp(loop_ep)));
  {
    ASSERT_OK(uvq_udp_init(&loop, &u));
    /* No socket yet. */
    ASSERT_ERR(UV_EBADF, uvq_quic_endpoint_open(loop_ep, &u));
    uvq_udp_close(&u, NULL);
  }
  uvq_quic_endpoint_close(loop_ep, NULL);
  ASSERT_OK(uv_run(&loop, UV_RUN_DEFAULT));
  ASSERT_OK(uv_loop_close(&loop));
  cw_done(&w);
  return 0;
}

/* Closing a core endpoint ends it at once: the CONNECTION_CLOSE goes to
 * the sink, closed runs, then close_cb, before the call returns. */
static int close_cb_ran;

static void on_core_closed(uvq_quic_endpoint_t* ep) {
  (void) ep;
  close_cb_ran++;
}

TEST_IMPL(quic_core_close) {
  cw_node_t* server;
  cw_node_t* client;
  uint64_t before;
  cw_t w;

  cw_pair(&w, NULL, &server, &client);
  cw_run_until(&w, client_handshaken, UINT64_MAX);
  cw_run_until(&w, never, w.now + 100 * CW_MS);
  before = client->datagrams;
  close_cb_ran = 0;
  uvq_quic_endpoint_close(client->ep, on_core_closed);
  client->ep = NULL;
  ASSERT_EQ(1, close_cb_ran);
  ASSERT_EQ(1, client->closed);
  ASSERT_EQ(UVQ_QUIC_ERROR_ENDPOINT_CLOSED, client->last_error.kind);
  ASSERT_UINT_EQ(before + 1, client->datagrams);
  /* The server reads the CONNECTION_CLOSE and closes too. */
  cw_run_until(&w, never, w.now + 1000 * CW_MS);
  ASSERT_EQ(1, server->closed);
  ASSERT_EQ(UVQ_QUIC_ERROR_TRANSPORT, server->last_error.kind);
  ASSERT_EQ(1, server->last_error.remote);
  cw_done(&w);
  return 0;
}

/* ---- on real sockets ------------------------------------------------------ */

/* An application that owns its socket and drives a core endpoint from the
 * loop: this is the example of docs/guide-quic-embedding.md. */
typedef struct app_s {
  uv_loop_t* loop;
  uvq_udp_t udp;
  uv_timer_t timer;
  uv_idle_t flush;      /* runs a flush on the next loop turn after wake */
  uvq_quic_endpoint_t* ep;
  uint8_t rxbuf[65536];
  int rx_in_use;
  struct sockaddr_storage local;
} app_t;

static void app_arm(app_t* a);

static int app_send(uvq_quic_endpoint_t* ep, const uvq_udp_mmsg_t* msgs,
                    unsigned int count) {
  app_t* a = uvq_quic_endpoint_get_data(ep);
  int r;

  r = uvq_udp_try_send_batch(&a->udp, (uvq_udp_mmsg_t*) msgs, count, 0);
  if (r == UV_EAGAIN)
    return 0;   /* full: flush again later; a real program would wait for
                   writability, this one retries from its idle handle */
  if (r < 0)
    return 1;   /* this message cannot go: lost, as on the path */
  return r;
}

static void app_on_flush(uv_idle_t* idle) {
  app_t* a = idle->data;
  if (uvq_quic_endpoint_flush(a->ep, uv_hrtime()) == 0)
    uv_idle_stop(&a->flush);
  app_arm(a);
}

static void app_wake(uvq_quic_endpoint_t* ep) {
  app_t* a = uvq_quic_endpoint_get_data(ep);
  uv_idle_start(&a->flush, app_on_flush);
}

static void app_on_timer(uv_timer_t* t) {
  app_t* a = t->data;
  uvq_quic_endpoint_expire(a->ep, uv_hrtime());
  app_arm(a);
}

/* The timer follows the endpoint's next expiry. */
static void app_arm(app_t* a) {
  uint64_t due = uvq_quic_endpoint_next_expiry(a->ep);
  uint64_t now = uv_hrtime();

  if (due == UINT64_MAX) {
    uv_timer_stop(&a->timer);
    return;
  }
  uv_timer_start(&a->timer, app_on_timer,
                 due > now ? (due - now + 999999) / 1000000 : 0, 0);
}

static void app_alloc(uvq_udp_t* u, size_t suggested, uv_buf_t* buf) {
  app_t* a = u->data;
  (void) suggested;
  *buf = uv_buf_init((char*) a->rxbuf, sizeof(a->rxbuf));
}

static void app_recv(uvq_udp_t* u, const uvq_udp_recv_t* r) {
  app_t* a = u->data;
  const struct sockaddr* local;

  if (r->nread > 0 && r->addr != NULL && !(r->flags & UVQ_UDP_PARTIAL)) {
    local = r->local.ss_family != 0 ? (const struct sockaddr*) &r->local
                                    : (const struct sockaddr*) &a->local;
    uvq_quic_endpoint_input(a->ep, r->addr, local, r->ecn, r->buf->base,
                            (size_t) r->nread, uv_hrtime());
  }
  /* The last callback of a receive batch: answer the whole batch. */
  if (!(r->flags & UVQ_UDP_MMSG_CHUNK)) {
    uvq_quic_endpoint_flush(a->ep, uv_hrtime());
    app_arm(a);
  }
}

static int srv_handshakes;
static uint64_t srv_bytes;
static int srv_fins;

static void srv_on_handshake(uvq_quic_conn_t* c) {
  (void) c;
  srv_handshakes++;
}

static void srv_on_data(uvq_quic_conn_t* c, int64_t id, const uint8_t* data,
                        size_t len, int fin) {
  size_t i;
  for (i = 0; i < len; i++)
    ASSERT_EQ((uint8_t) ((srv_bytes + i) * 7u + 3u), data[i]);
  srv_bytes += len;
  srv_fins += fin;
  uvq_quic_stream_consume(c, id, len);
}

static int app_client_done;

static void app_on_handshake(uvq_quic_conn_t* c) {
  (void) c;
  app_client_done = 1;
}

TEST_IMPL(quic_core_on_app_socket) {
  uvq_quic_config_t cfg;
  uvq_quic_callbacks_t scb;
  uvq_quic_callbacks_t ccb;
  uvq_quic_connect_opts_t opts;
  uvq_quic_endpoint_t* server;
  struct sockaddr_in any;
  struct sockaddr_storage saddr;
  uvq_quic_conn_t* c;
  uvq_quic_io_t io;
  uv_loop_t loop;
  int namelen;
  app_t a;
  cw_t w;
  int i;

  cw_init(&w);
  ASSERT_OK(uv_loop_init(&loop));
  srv_handshakes = 0;
  srv_bytes = 0;
  srv_fins = 0;
  app_client_done = 0;
  /* A loop endpoint serves; the client is a core endpoint on the test's
   * own socket. */
  cw_config(&w, &cfg, 1);
  memset(&scb, 0, sizeof(scb));
  scb.handshake_done = srv_on_handshake;
  scb.stream_data = srv_on_data;
  ASSERT_OK(uvq_quic_endpoint_new(&loop, &cfg, &scb, NULL, &server));
  sockaddr_make(&any, "127.0.0.1", 0);
  ASSERT_OK(uvq_quic_endpoint_bind(server, (struct sockaddr*) &any));
  namelen = sizeof(saddr);
  ASSERT_OK(uvq_udp_getsockname(uvq_quic_endpoint_udp(server),
                                (struct sockaddr*) &saddr, &namelen));

  memset(&a, 0, sizeof(a));
  a.loop = &loop;
  ASSERT_OK(uvq_udp_init(&loop, &a.udp));
  a.udp.data = &a;
  ASSERT_OK(uvq_udp_bind(&a.udp, (struct sockaddr*) &any,
                         UVQ_UDP_RECVPKTINFO | UVQ_UDP_RECVECN));
  namelen = sizeof(a.local);
  ASSERT_OK(uvq_udp_getsockname(&a.udp, (struct sockaddr*) &a.local,
                                &namelen));
  uv_timer_init(&loop, &a.timer);
  a.timer.data = &a;
  uv_idle_init(&loop, &a.flush);
  a.flush.data = &a;
  cw_config(&w, &cfg, 0);
  memset(&ccb, 0, sizeof(ccb));
  ccb.handshake_done = app_on_handshake;
  memset(&io, 0, sizeof(io));
  io.version = UVQ_QUIC_IO_VERSION;
  io.send = app_send;
  io.wake = app_wake;
  ASSERT_OK(uvq_quic_endpoint_new_core(&cfg, &ccb, &io, &a, &a.ep));
  ASSERT_OK(uvq_udp_recv_start2(&a.udp, app_alloc, app_recv));
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  opts.local = (struct sockaddr*) &a.local;
  ASSERT_OK(uvq_quic_endpoint_flush(a.ep, uv_hrtime()));
  ASSERT_OK(uvq_quic_connect(a.ep, (struct sockaddr*) &saddr, &opts, NULL,
                             &c));
  for (i = 0; i < 5000 && !(app_client_done && srv_handshakes); i++)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(1, app_client_done);
  ASSERT_EQ(1, srv_handshakes);
  write_pattern(&w, c, 2000000);
  for (i = 0; i < 100000 && srv_fins == 0; i++)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_UINT_EQ(2000000, srv_bytes);
  ASSERT_EQ(1, srv_fins);

  uvq_quic_endpoint_close(a.ep, NULL);
  uvq_udp_close(&a.udp, NULL);
  uv_close((uv_handle_t*) &a.timer, NULL);
  uv_close((uv_handle_t*) &a.flush, NULL);
  uvq_quic_endpoint_close(server, NULL);
  ASSERT_OK(uv_run(&loop, UV_RUN_DEFAULT));
  ASSERT_OK(uv_loop_close(&loop));
  cw_done(&w);
  return 0;
}

/* A loop endpoint on a socket the application made and keeps: the
 * endpoint serves on it, and after close the handle is the
 * application's again, open, with its data back, and receives with the
 * application's callbacks. */
static int lent_closed;
static int lent_tag;  /* what the application's data pointer points at */

static void lent_on_close(uvq_quic_endpoint_t* ep) {
  (void) ep;
  lent_closed = 1;
}

TEST_IMPL(quic_endpoint_open_app_socket) {
  uvq_quic_config_t cfg;
  uvq_quic_callbacks_t cb;
  uvq_quic_endpoint_t* server;
  uvq_quic_endpoint_t* client;
  uvq_quic_connect_opts_t opts;
  struct sockaddr_in any;
  struct sockaddr_storage saddr;
  uvq_quic_conn_t* c;
  uvq_udp_t mine;
  uv_loop_t loop;
  int namelen;
  cw_t w;
  int i;

  cw_init(&w);
  ASSERT_OK(uv_loop_init(&loop));
  ASSERT_OK(uvq_udp_init(&loop, &mine));
  sockaddr_make(&any, "127.0.0.1", 0);
  ASSERT_OK(uvq_udp_bind(&mine, (struct sockaddr*) &any, 0));
  mine.data = &lent_tag;
  namelen = sizeof(saddr);
  ASSERT_OK(uvq_udp_getsockname(&mine, (struct sockaddr*) &saddr, &namelen));

  srv_handshakes = 0;
  cw_config(&w, &cfg, 1);
  memset(&cb, 0, sizeof(cb));
  cb.handshake_done = srv_on_handshake;
  ASSERT_OK(uvq_quic_endpoint_new(&loop, &cfg, &cb, NULL, &server));
  ASSERT_OK(uvq_quic_endpoint_open(server, &mine));
  ASSERT_PTR_EQ(&mine, uvq_quic_endpoint_udp(server));
  ASSERT_ERR(UV_EALREADY, uvq_quic_endpoint_open(server, &mine));
  ASSERT_ERR(UV_EALREADY,
             uvq_quic_endpoint_bind(server, (struct sockaddr*) &any));
  /* The endpoint enabled what it reads on the application's socket. */
  ASSERT_BITS_SET(uvq_udp_features(&mine),
                  UVQ_UDP_RECVPKTINFO | UVQ_UDP_RECVECN);

  cw_config(&w, &cfg, 0);
  app_client_done = 0;
  memset(&cb, 0, sizeof(cb));
  cb.handshake_done = app_on_handshake;
  ASSERT_OK(uvq_quic_endpoint_new(&loop, &cfg, &cb, NULL, &client));
  ASSERT_OK(uvq_quic_endpoint_bind(client, (struct sockaddr*) &any));
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  ASSERT_OK(uvq_quic_connect(client, (struct sockaddr*) &saddr, &opts, NULL,
                             &c));
  for (i = 0; i < 5000 && !(app_client_done && srv_handshakes); i++)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(1, app_client_done);
  ASSERT_EQ(1, srv_handshakes);

  lent_closed = 0;
  uvq_quic_endpoint_close(server, lent_on_close);
  for (i = 0; i < 1000 && !lent_closed; i++)
    uv_run(&loop, UV_RUN_ONCE);
  ASSERT_EQ(1, lent_closed);
  /* Given back: open, data restored, receiving is the application's. */
  qt_assert_udp_given_back(&loop, &mine, &lent_tag);

  uvq_quic_endpoint_close(client, NULL);
  uvq_udp_close(&mine, NULL);
  ASSERT_OK(uv_run(&loop, UV_RUN_DEFAULT));
  ASSERT_OK(uv_loop_close(&loop));
  cw_done(&w);
  return 0;
}

/* Over max_handshakes, an Initial with a valid Retry token waits for a
 * slot and starts as soon as one frees: five clients at once against a
 * limit of two all complete within a few round trips, none of them
 * having to retransmit its Initial after a PTO (about 1 s here). */
TEST_IMPL(quic_core_initials_wait) {
  uvq_quic_endpoint_stats_t st;
  uvq_quic_config_t cfg;
  cw_node_t* server;
  cw_node_t* clients[5];
  uint64_t last;
  unsigned int i;
  cw_t w;

  cw_init(&w);
  cw_config(&w, &cfg, 1);
  cfg.retry = UVQ_QUIC_RETRY_ALWAYS;
  cfg.max_handshakes = 2;
  server = cw_add(&w, &cfg, "192.0.2.1", 443);
  for (i = 0; i < 5; i++) {
    cw_config(&w, &cfg, 0);
    clients[i] = cw_add(&w, &cfg, "198.51.100.7", (int) (50000 + i));
    cw_connect(&w, clients[i], server);
  }
  cw_run_until(&w, never, w.now + 400 * CW_MS);
  last = 0;
  for (i = 0; i < 5; i++) {
    ASSERT_EQ(1, clients[i]->handshakes);
    if (clients[i]->handshake_at > last)
      last = clients[i]->handshake_at;
  }
  ASSERT_EQ(5, server->handshakes);
  /* Waves of two, each finishing 1.5 RTT after it started: the last
   * client is done well before its first PTO. */
  ASSERT_UINT_LE(last, CW_T0 + 200 * CW_MS);
  ASSERT_OK(uvq_quic_endpoint_get_stats(server->ep, &st));
  ASSERT_UINT_EQ(5, st.retries);
  ASSERT_UINT_EQ(5, st.connections_accepted);
  ASSERT_UINT_EQ(3, st.initials_waited);
  ASSERT_UINT_EQ(0, st.connections_refused);
  ASSERT_UINT_EQ(0, st.packets_dropped);
  cw_done(&w);
  return 0;
}

/* HTTP/3 with no loop and no socket: a uvq_h3_t server and client made
 * with uvq_h3_server_new_core and uvq_h3_client_new_core, joined by the
 * wire. The client is connected at exactly 2 one-way delays (1 RTT); its
 * GET, made then, is answered in full within the next round trip and one
 * more delay (the packets after the handshake are paced: here the request
 * left 3.2 ms after the handshake and the body 2.5 ms after the headers),
 * with no timer-driven retransmission, whose first would come later. The
 * server's file cache (file_cache_ms 1000) runs on the endpoint's time,
 * not the wall clock: the file changed on disk is still served from the
 * cache 500 ms later and read again 1500 ms later, although the whole
 * test takes a few milliseconds of real time. */
TEST_IMPL(quic_core_h3) {
  uvq_quic_connect_opts_t opts;
  struct sockaddr_in any;
  uvq_h3_req_t* req;
  cw_node_t* server;
  cw_node_t* client;
  cw_t w;

  cw_init(&w);
  write_file(w.certs.dir, "page.txt", "first version\n");
  server = cw_add_h3(&w, 1, "192.0.2.1", 443, 1000);
  client = cw_add_h3(&w, 0, "198.51.100.7", 50000, 0);
  /* No socket to listen on or bind. */
  sockaddr_make(&any, "0.0.0.0", 0);
  ASSERT_ERR(UV_EINVAL, uvq_h3_listen(server->h3, (struct sockaddr*) &any));
  ASSERT_NULL(uvq_quic_endpoint_udp(server->ep));
  /* A core client needs the path's local address. */
  ASSERT_ERR(UV_EINVAL, uvq_h3_connect(client->h3,
                                       (struct sockaddr*) &server->addr,
                                       "localhost"));

  ASSERT_OK(uvq_quic_endpoint_flush(client->ep, w.now));
  ASSERT_UINT_EQ(w.now, uvq_quic_endpoint_now(client->ep));
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  opts.local = (struct sockaddr*) &client->addr;
  ASSERT_OK(uvq_h3_connect_ex(client->h3, (struct sockaddr*) &server->addr,
                              &opts));
  /* The request is queued now and goes with the handshake's end. */
  ASSERT_ERR(UV_ENOTCONN, uvq_h3_request(client->h3, "GET", NULL, NULL,
                                         "/page.txt", NULL, 0, NULL, NULL,
                                         &req));
  cw_flush_all(&w);
  while (client->h3_connected == 0)
    ASSERT(cw_step(&w, UINT64_MAX));
  ASSERT_UINT_EQ(CW_T0 + 2 * CW_DELAY, w.now);
  ASSERT_OK(uvq_h3_request(client->h3, "GET", NULL, NULL, "/page.txt", NULL,
                           0, NULL, NULL, &req));
  cw_run_until(&w, h3_dones_1, UINT64_MAX);
  ASSERT_EQ(200, client->h3_status);
  ASSERT_EQ(UVQ_H3_NO_ERROR, client->h3_done_code);
  ASSERT_UINT_GE(client->h3_done_at, CW_T0 + 4 * CW_DELAY);
  ASSERT_UINT_LE(client->h3_done_at, CW_T0 + 5 * CW_DELAY);
  ASSERT_UINT_EQ(14, client->h3_got);
  ASSERT_MEM_EQ("first version\n", client->h3_body, 14);
  ASSERT_EQ(1, server->h3_requests);

  /* Changed on disk; asked again 500 ms later: the cached copy. */
  write_file(w.certs.dir, "page.txt", "second version\n");
  w.now += 500 * CW_MS;
  client->h3_got = 0;
  ASSERT_OK(uvq_h3_request(client->h3, "GET", NULL, NULL, "/page.txt", NULL,
                           0, NULL, NULL, &req));
  cw_run_until(&w, h3_dones_2, UINT64_MAX);
  ASSERT_UINT_EQ(14, client->h3_got);
  ASSERT_MEM_EQ("first version\n", client->h3_body, 14);

  /* 1500 ms after the first read: checked against the disk again. */
  w.now = CW_T0 + 5 * CW_DELAY + 1500 * CW_MS;
  client->h3_got = 0;
  client->h3_dones = 1;
  ASSERT_OK(uvq_h3_request(client->h3, "GET", NULL, NULL, "/page.txt", NULL,
                           0, NULL, NULL, &req));
  cw_run_until(&w, h3_dones_2, UINT64_MAX);
  ASSERT_UINT_EQ(15, client->h3_got);
  ASSERT_MEM_EQ("second version\n", client->h3_body, 15);
  ASSERT_EQ(3, server->h3_requests);
  ASSERT_EQ(0, client->pattern_errors);

  /* A graceful shutdown of the server: GOAWAY, the idle connection
   * closed, then the object ends within a flush, without a loop. */
  h3_shut = 0;
  uvq_h3_shutdown(server->h3, h3n_closed);
  cw_run_until(&w, h3_server_shut, w.now + 1000 * CW_MS);
  ASSERT_EQ(1, h3_shut);
  ASSERT_NULL(server->ep);
  cw_done(&w);
  return 0;
}
