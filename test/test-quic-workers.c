/* Workers: two server endpoints in one SO_REUSEPORT group on one port,
 * each issuing connection IDs that name it (uvq_quic_config_t.worker_index)
 * and uvq's reuseport BPF program steering every datagram to the worker
 * its destination ID names. Both workers run on the test's loop: steering
 * is the kernel's doing, not the loop's, and one loop lets the test read
 * both workers' records.
 *
 * A connection that reached the wrong worker cannot survive: that worker
 * knows none of its IDs, counts the packet as misrouted and answers with a
 * stateless reset. So "every connection completed, no packet misrouted, no
 * reset sent" is the proof that each was served by the worker its IDs
 * name. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"
#include "quic-helpers.h"
#include "task.h"

static const uint8_t group_secret[32] = {
    0x57, 0x6f, 0x72, 0x6b, 0x65, 0x72, 0x73, 0x20, 0x73, 0x68, 0x61,
    0x72, 0x65, 0x20, 0x6f, 0x6e, 0x65, 0x20, 0x73, 0x65, 0x63, 0x72,
    0x65, 0x74, 0x2c, 0x20, 0x6f, 0x6e, 0x65, 0x20, 0x70, 0x6f};

/* The configuration of worker index of 2 (the server side's defaults). */
static void worker_config(qt_t* t, uvq_quic_config_t* cfg, unsigned int index) {
  *cfg = t->server.cfg;
  cfg->worker_count = 2;
  cfg->worker_index = index;
  cfg->static_secret = group_secret;
}

/* Worker 1 of the group whose worker 0 is t->server, bound after it to
 * the same address and port (bind order is the group's numbering). */
static qt_side_t* start_second_worker(qt_t* t) {
  qt_side_t* w;
  int namelen;

  w = calloc(1, sizeof(*w));
  ASSERT_NOT_NULL(w);
  w->auto_consume = 1;
  w->respond_bytes = t->server.respond_bytes;
  worker_config(t, &w->cfg, 1);
  ASSERT_OK(qt_side_new(t, w, 1));
  w->addr = t->server.addr;
  ASSERT_OK(uvq_quic_endpoint_bind(w->ep, (struct sockaddr*) &w->addr));
  namelen = sizeof(w->addr);
  ASSERT_OK(uvq_udp_getsockname(uvq_quic_endpoint_udp(w->ep),
                                (struct sockaddr*) &w->addr, &namelen));
  ASSERT_ADDR_EQ(&t->server.addr, &w->addr);
  return w;
}

static void stats_of(qt_side_t* side, uvq_quic_endpoint_stats_t* st) {
  ASSERT_OK(uvq_quic_endpoint_get_stats(side->ep, st));
}

/* Closes worker w (not one of t's sides) and frees its records once the
 * loop has finished with it; every connection reported its end once. */
static void finish_worker(qt_t* t, qt_side_t* w) {
  unsigned int i;

  qt_close_side(w);
  while (w->close_cbs == 0)
    uv_run(&t->loop, UV_RUN_ONCE);
  ASSERT_EQ(1, w->close_cbs);
  ASSERT_EQ(w->writes_started, w->writes_done);
  for (i = 0; i < w->nconns; i++) {
    ASSERT_EQ(1, w->conns[i]->closed);
    free(w->conns[i]->streams);
    free(w->conns[i]);
  }
  free(w);
}

/* --- the connection ID layout -------------------------------------------- */

/* A client's first Initial, enough for the server to answer it with a
 * Retry without decrypting it (it never does before the Retry): long
 * header, v1, an 8-octet DCID, a 5-octet SCID, no token, padded to 1200
 * octets. */
static size_t make_initial(uint8_t* buf, size_t len) {
  size_t rest;
  size_t i;

  memset(buf, 0, len);
  buf[0] = 0xc3; /* long header, fixed bit, Initial, 4-octet number */
  buf[4] = 0x01; /* version 1 */
  buf[5] = 8;
  for (i = 0; i < 8; i++)
    buf[6 + i] = (uint8_t) (0x80 + 17 * i);
  buf[14] = 5;
  for (i = 0; i < 5; i++)
    buf[15 + i] = (uint8_t) (0xa1 + i);
  buf[20] = 0; /* token length */
  rest = len - 23;
  buf[21] = (uint8_t) (0x40 | (rest >> 8));
  buf[22] = (uint8_t) (rest & 0xff);
  for (i = 23; i < len; i++)
    buf[i] = (uint8_t) (i * 31);
  return len;
}

/* The IDs a worker issues carry its QUIC-LB server ID in clear: a Retry
 * shows the first (its SCID) on the wire. Out-of-range worker settings are
 * refused. */
TEST_IMPL(quic_workers_cid_layout) {
  uvq_quic_endpoint_stats_t st;
  uvq_quic_endpoint_t* ep;
  uvq_quic_config_t cfg;
  const rx_entry_t* r;
  const uint8_t* d;
  uint8_t pkt[1200];
  test_peer_t peer;
  unsigned int i;
  qt_t t;

  qt_init(&t, "127.0.0.1", 0);
  worker_config(&t, &cfg, 0);
  cfg.worker_count = 257;
  ASSERT_EQ(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, &cfg, NULL, NULL, &ep));
  cfg.worker_count = 2;
  cfg.worker_index = 2;
  ASSERT_EQ(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, &cfg, NULL, NULL, &ep));
  cfg.worker_count = 0;
  cfg.worker_index = 1;
  ASSERT_EQ(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, &cfg, NULL, NULL, &ep));
  cfg.worker_count = 2;
  cfg.worker_index = 1;
  cfg.lb_server_id = 256;
  ASSERT_EQ(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, &cfg, NULL, NULL, &ep));

  worker_config(&t, &t.server.cfg, 1);
  t.server.cfg.lb_server_id = 0xa7;
  t.server.cfg.retry = UVQ_QUIC_RETRY_ALWAYS;
  qt_start_server(&t);
  peer_init(&t.loop, &peer);
  peer_bind(&peer, "127.0.0.1", 0);
  peer_start(&peer);
  for (i = 0; i < 2; i++) {
    make_initial(pkt, sizeof(pkt));
    peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, sizeof(pkt),
                 0);
    run_until_rx(&t.loop, &peer, i + 1);
    r = &peer.rx[i];
    d = r->data;
    /* RFC 9000, 17.2.5: Retry, v1, the client's SCID as DCID, then the
     * server's new ID. */
    ASSERT_GE(r->nread, 6 + 5 + 1 + 18);
    ASSERT_EQ(0xf0, d[0] & 0xf0);
    ASSERT_EQ(5, d[5]);
    ASSERT_MEM_EQ(pkt + 15, d + 6, 5);
    ASSERT_EQ(18, d[11]);
    ASSERT_EQ(0x11, d[12]);  /* rotation 0, length 17 */
    ASSERT_EQ(0xa7, d[13]);  /* lb_server_id */
    ASSERT_EQ(1, d[14]);     /* worker_index */
  }
  /* The 15 nonce octets differ from one ID to the next. */
  ASSERT_NE(0, memcmp(peer.rx[0].data + 15, peer.rx[1].data + 15, 15));
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(2, st.retries);
  /* A group of one socket: the program is attached all the same. */
  ASSERT_UINT_EQ(UVQ_QUIC_STEERING_BPF, st.steering);
  peer_close(&peer);
  qt_close_side(&t.server);
  finish_loop(&t.loop);
  peer_finish(&peer);
  free(t.pattern);
  return 0;
}

/* --- 400 connections over two workers ----------------------------------- */

#define SPREAD_CONNS 400
#define SPREAD_REQUEST 100
#define SPREAD_RESPONSE 1000

static void spread_handshake_done(qt_conn_t* c) {
  int64_t id;

  if (c->is_server)
    return;
  id = qt_open_bidi(c);
  c->user = (void*) (intptr_t) id;
  qt_write(c, id, SPREAD_REQUEST, 1);
}

static int all_answered(void* arg) {
  qt_t* t = arg;
  unsigned int i;
  unsigned int n;

  n = 0;
  for (i = 0; i < t->client.nconns; i++)
    n += t->client.conns[i]->fins;
  return n == SPREAD_CONNS;
}

TEST_IMPL(quic_workers_spread) {
  uvq_quic_endpoint_stats_t st0;
  uvq_quic_endpoint_stats_t st1;
  qt_side_t* w1;
  unsigned int i;
  qt_t t;

  qt_init(&t, "127.0.0.1", SPREAD_RESPONSE);
  worker_config(&t, &t.server.cfg, 0);
  t.server.respond_bytes = SPREAD_RESPONSE;
  t.server.hooks.handshake_done = spread_handshake_done;
  t.client.hooks.handshake_done = spread_handshake_done;
  qt_start_server(&t);
  w1 = start_second_worker(&t);
  stats_of(&t.server, &st0);
  stats_of(w1, &st1);
  ASSERT_UINT_EQ(UVQ_QUIC_STEERING_BPF, st0.steering);
  ASSERT_UINT_EQ(UVQ_QUIC_STEERING_BPF, st1.steering);
  ASSERT_EQ(0, st1.steering_error);
  qt_start_client(&t);

  for (i = 0; i < SPREAD_CONNS; i++)
    qt_connect(&t);
  qt_run_until(&t, all_answered, &t, 20000);

  for (i = 0; i < SPREAD_CONNS; i++) {
    qt_conn_t* c = t.client.conns[i];
    ASSERT_EQ(0, c->closed);
    qt_assert_stream(c, (int64_t) (intptr_t) c->user, SPREAD_RESPONSE);
  }
  stats_of(&t.server, &st0);
  stats_of(w1, &st1);
  /* Every connection is on exactly one worker, and each got a fair share
   * (binomial, 400 draws: 140 is six standard deviations below 200). */
  ASSERT_UINT_EQ(SPREAD_CONNS, t.server.nconns + w1->nconns);
  ASSERT_UINT_EQ(t.server.nconns, st0.connections_accepted);
  ASSERT_UINT_EQ(w1->nconns, st1.connections_accepted);
  ASSERT_GE(t.server.nconns, 140);
  ASSERT_GE(w1->nconns, 140);
  ASSERT_UINT_EQ(0, st0.packets_misrouted);
  ASSERT_UINT_EQ(0, st1.packets_misrouted);
  ASSERT_UINT_EQ(0, st0.stateless_resets);
  ASSERT_UINT_EQ(0, st1.stateless_resets);
  ASSERT_UINT_EQ(0, st0.connections_refused + st1.connections_refused);
  for (i = 0; i < t.server.nconns; i++)
    ASSERT_EQ(1, t.server.conns[i]->fins);
  for (i = 0; i < w1->nconns; i++)
    ASSERT_EQ(1, w1->conns[i]->fins);

  finish_worker(&t, w1);
  qt_teardown(&t);
  return 0;
}

/* --- a connection ID change --------------------------------------------- */

#define MIGRATE_CONNS 16
#define MIGRATE_BYTES 50000

static int handshakes_done(void* arg) {
  qt_t* t = arg;
  unsigned int i;

  for (i = 0; i < t->client.nconns; i++)
    if (t->client.conns[i]->handshakes == 0)
      return 0;
  return 1;
}

static unsigned int side_fins(const qt_side_t* side) {
  unsigned int i;
  unsigned int n;

  n = 0;
  for (i = 0; i < side->nconns; i++)
    n += side->conns[i]->fins;
  return n;
}

typedef struct {
  qt_side_t* a;
  qt_side_t* b;
  unsigned int want;
} fins_wait_t;

static int both_fins(void* arg) {
  fins_wait_t* f = arg;

  return side_fins(f->a) + side_fins(f->b) == f->want;
}

/* Each client moves to a new local port, which makes it use a new
 * connection ID the server gave in NEW_CONNECTION_ID and retire the old one
 * (RFC 9000, 9.5). The new ID names the same worker, so the packets from
 * the new 4-tuple still reach it. */
TEST_IMPL(quic_workers_migration) {
  uvq_quic_endpoint_stats_t st0;
  uvq_quic_endpoint_stats_t st1;
  struct sockaddr_storage local;
  struct sockaddr_storage before[MIGRATE_CONNS];
  struct sockaddr_storage after;
  fins_wait_t f;
  qt_side_t* w1;
  unsigned int i;
  int64_t id;
  qt_t t;
  int err;

  qt_init(&t, "127.0.0.1", 2 * MIGRATE_BYTES);
  worker_config(&t, &t.server.cfg, 0);
  qt_start_server(&t);
  w1 = start_second_worker(&t);
  qt_start_client(&t);
  for (i = 0; i < MIGRATE_CONNS; i++)
    qt_connect(&t);
  qt_run_until(&t, handshakes_done, &t, QT_WAIT_MS);
  /* Both workers have connections (P = 1 - 2^-15). */
  ASSERT_UINT_EQ(MIGRATE_CONNS, t.server.nconns + w1->nconns);
  ASSERT_GE(t.server.nconns, 1);
  ASSERT_GE(w1->nconns, 1);

  for (i = 0; i < MIGRATE_CONNS; i++) {
    qt_conn_t* c = t.client.conns[i];
    id = qt_open_bidi(c);
    qt_write(c, id, MIGRATE_BYTES, 0);
  }
  qt_run_until_writes(&t, &t.client, MIGRATE_CONNS);
  make_addr(&local, "127.0.0.1", 0);
  for (i = 0; i < MIGRATE_CONNS; i++) {
    qt_conn_t* c = t.client.conns[i];
    ASSERT_OK(uvq_quic_conn_get_path(c->conn, &before[i], NULL));
    /* UV_EAGAIN until the server's NEW_CONNECTION_ID has arrived. */
    while ((err = uvq_quic_conn_migrate(c->conn, (struct sockaddr*) &local)) ==
           UV_EAGAIN)
      qt_run_for(&t, 5);
    ASSERT_OK(err);
  }
  for (i = 0; i < MIGRATE_CONNS; i++) {
    qt_conn_t* c = t.client.conns[i];
    qt_write(c, 0, MIGRATE_BYTES, 1);
  }
  f.a = &t.server;
  f.b = w1;
  f.want = MIGRATE_CONNS;
  qt_run_until(&t, both_fins, &f, QT_WAIT_MS);
  /* As in quic_migration: the server moves to the new path on the first
   * non-probing packet there, so every client sends once more on it. */
  for (i = 0; i < MIGRATE_CONNS; i++) {
    qt_conn_t* c = t.client.conns[i];
    id = qt_open_bidi(c);
    qt_write(c, id, 10, 1);
  }
  f.want = 2 * MIGRATE_CONNS;
  qt_run_until(&t, both_fins, &f, QT_WAIT_MS);

  for (i = 0; i < MIGRATE_CONNS; i++) {
    qt_conn_t* c = t.client.conns[i];
    ASSERT_EQ(0, c->closed);
    ASSERT_OK(uvq_quic_conn_get_path(c->conn, &after, NULL));
    ASSERT_NE(addr_port((struct sockaddr*) &before[i]),
              addr_port((struct sockaddr*) &after));
  }
  for (i = 0; i < t.server.nconns; i++) {
    qt_assert_stream(t.server.conns[i], 0, 2 * MIGRATE_BYTES);
    ASSERT_EQ(0, t.server.conns[i]->closed);
  }
  for (i = 0; i < w1->nconns; i++) {
    qt_assert_stream(w1->conns[i], 0, 2 * MIGRATE_BYTES);
    ASSERT_EQ(0, w1->conns[i]->closed);
  }
  stats_of(&t.server, &st0);
  stats_of(w1, &st1);
  ASSERT_UINT_EQ(0, st0.packets_misrouted + st1.packets_misrouted);
  ASSERT_UINT_EQ(0, st0.stateless_resets + st1.stateless_resets);
  ASSERT_UINT_EQ(MIGRATE_CONNS,
                 st0.connections_accepted + st1.connections_accepted);

  finish_worker(&t, w1);
  qt_teardown(&t);
  return 0;
}

/* --- secrets shared across workers -------------------------------------- */

/* A relay between the client and two workers on two ports, standing in
 * for steering that changes its mind: it forwards the client's first
 * datagram to one worker and every later one to another, and passes back
 * what either worker sends. Both workers see the client at the relay's
 * address, so an address-bound Retry token issued by one is valid at the
 * other. */
typedef struct relay_s {
  uv_udp_t front;                   /* the client talks to this */
  uv_udp_t back;                    /* the workers see this */
  struct sockaddr_storage front_addr;
  struct sockaddr_storage client;   /* learnt from the first datagram */
  struct sockaddr_storage first_to; /* the first datagram goes here */
  struct sockaddr_storage then_to;  /* every later one here */
  struct sockaddr_storage drop_from; /* datagrams from here are dropped */
  unsigned int forwarded;
  unsigned int dropped;
  char buf[65536];
} relay_t;

static void relay_alloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf) {
  relay_t* r = h->data;

  (void) suggested;
  buf->base = r->buf;
  buf->len = sizeof(r->buf);
}

static void relay_sent(uv_udp_send_t* req, int status) {
  ASSERT_OK(status);
  free(req);
}

static void relay_send(uv_udp_t* via, const struct sockaddr* to,
                       const char* data, ssize_t len) {
  uv_udp_send_t* req;
  uv_buf_t b;

  /* The payload is copied behind the request: the receive buffer is
   * reused by the next read. */
  req = malloc(sizeof(*req) + (size_t) len);
  ASSERT_NOT_NULL(req);
  memcpy(req + 1, data, (size_t) len);
  b = uv_buf_init((char*) (req + 1), (unsigned int) len);
  ASSERT_OK(uv_udp_send(req, via, &b, 1, to, relay_sent));
}

static void relay_front_recv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf,
                             const struct sockaddr* from, unsigned flags) {
  relay_t* r = h->data;

  (void) flags;
  if (nread <= 0 || from == NULL)
    return;
  memcpy(&r->client, from, sizeof(struct sockaddr_in));
  relay_send(&r->back,
             (struct sockaddr*) (r->forwarded == 0 ? &r->first_to
                                                   : &r->then_to),
             buf->base, nread);
  r->forwarded++;
}

static void relay_back_recv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf,
                            const struct sockaddr* from, unsigned flags) {
  relay_t* r = h->data;

  (void) flags;
  if (nread <= 0 || from == NULL)
    return;
  if (addr_port(from) == addr_port((struct sockaddr*) &r->drop_from)) {
    r->dropped++;
    return;
  }
  relay_send(&r->front, (struct sockaddr*) &r->client, buf->base, nread);
}

static void relay_start(qt_t* t, relay_t* r) {
  struct sockaddr_storage any;
  int namelen;

  make_addr(&any, "127.0.0.1", 0);
  ASSERT_OK(uv_udp_init(&t->loop, &r->front));
  ASSERT_OK(uv_udp_init(&t->loop, &r->back));
  r->front.data = r;
  r->back.data = r;
  ASSERT_OK(uv_udp_bind(&r->front, (struct sockaddr*) &any, 0));
  ASSERT_OK(uv_udp_bind(&r->back, (struct sockaddr*) &any, 0));
  namelen = sizeof(r->front_addr);
  ASSERT_OK(uv_udp_getsockname(&r->front, (struct sockaddr*) &r->front_addr,
                               &namelen));
  ASSERT_OK(uv_udp_recv_start(&r->front, relay_alloc, relay_front_recv));
  ASSERT_OK(uv_udp_recv_start(&r->back, relay_alloc, relay_back_recv));
}

static void relay_stop(relay_t* r) {
  uv_close((uv_handle_t*) &r->front, NULL);
  uv_close((uv_handle_t*) &r->back, NULL);
}

static int relay_dropped(void* arg) {
  return ((relay_t*) arg)->dropped >= 1;
}

/* Worker 0 answers the client's first Initial with a Retry; the Initial
 * that carries the token reaches worker 1, which accepts it. Then worker 1
 * goes away without a word (the relay drops its CONNECTION_CLOSE, as if
 * its process had died) and the client's next packet reaches worker 0,
 * which knows nothing of the connection but, from the shared secret,
 * sends the stateless reset whose token worker 1 had given the client. */
TEST_IMPL(quic_workers_shared_secrets) {
  uvq_quic_endpoint_stats_t st0;
  uvq_quic_endpoint_stats_t st1;
  relay_t* r;
  qt_side_t* w1;
  qt_conn_t* c;
  int namelen;
  int64_t id;
  qt_t t;

  r = calloc(1, sizeof(*r));
  ASSERT_NOT_NULL(r);
  qt_init(&t, "127.0.0.1", 11000);
  worker_config(&t, &t.server.cfg, 0);
  t.server.cfg.retry = UVQ_QUIC_RETRY_ALWAYS;
  qt_start_server(&t);
  /* Worker 1 on a port of its own: the relay does the steering here. */
  w1 = calloc(1, sizeof(*w1));
  ASSERT_NOT_NULL(w1);
  w1->auto_consume = 1;
  worker_config(&t, &w1->cfg, 1);
  w1->cfg.retry = UVQ_QUIC_RETRY_ALWAYS;
  ASSERT_OK(qt_side_new(&t, w1, 1));
  make_addr(&w1->addr, "127.0.0.1", 0);
  ASSERT_OK(uvq_quic_endpoint_bind(w1->ep, (struct sockaddr*) &w1->addr));
  namelen = sizeof(w1->addr);
  ASSERT_OK(uvq_udp_getsockname(uvq_quic_endpoint_udp(w1->ep),
                                (struct sockaddr*) &w1->addr, &namelen));
  relay_start(&t, r);
  r->first_to = t.server.addr;
  r->then_to = w1->addr;
  qt_start_client(&t);
  /* The client connects to the relay. */
  t.server.addr = r->front_addr;
  c = qt_connect(&t);
  qt_run_until(&t, qt_conn_handshaken, c, QT_WAIT_MS);
  ASSERT_EQ(1, w1->nconns);
  ASSERT_EQ(0, t.server.nconns);
  stats_of(&t.server, &st0);
  stats_of(w1, &st1);
  ASSERT_UINT_EQ(1, st0.retries);
  ASSERT_UINT_EQ(0, st0.connections_accepted);
  ASSERT_UINT_EQ(0, st1.retries);
  ASSERT_UINT_EQ(1, st1.connections_accepted);
  ASSERT_UINT_EQ(0, st1.connections_refused);

  id = qt_open_bidi(c);
  qt_write(c, id, 10000, 0);
  qt_run_until_writes(&t, &t.client, 1);
  ASSERT_EQ(1, t.client.writes_ok);

  /* Worker 1 is gone: nothing more from it reaches the client, and the
   * client's packets go to worker 0. */
  r->drop_from = w1->addr;
  r->then_to = r->first_to;
  finish_worker(&t, w1);
  qt_run_until(&t, relay_dropped, r, QT_WAIT_MS); /* its CONNECTION_CLOSE */
  ASSERT_EQ(0, c->closed);
  qt_write(c, id, 1000, 1);
  qt_run_until_closed(&t, c);
  qt_assert_closed(c, UVQ_QUIC_ERROR_STATELESS_RESET, 0, 1, NULL);
  ASSERT_EQ(1, t.client.writes_canceled);
  stats_of(&t.server, &st0);
  /* Every packet worker 0 reset named worker 1. */
  ASSERT_GE(st0.stateless_resets, 1);
  ASSERT_UINT_EQ(st0.stateless_resets, st0.packets_misrouted);
  ASSERT_UINT_EQ(0, st0.connections_accepted);

  relay_stop(r);
  qt_teardown(&t);
  free(r);
  return 0;
}

/* --- NAT rebinding across the kernel's hash -------------------------------- */

/* The set-up of test-quic-nat.c (client, masquerading router, server, each
 * in its own namespace), with the server run as two workers. */
#define WNAT_BYTES (4u * 1024u * 1024u)
#define WNAT_NET "10.79"
#define WNAT_CLIENT WNAT_NET ".1.2"
#define WNAT_ROUTER_OUT WNAT_NET ".2.1"
#define WNAT_SERVER WNAT_NET ".2.2"
#define WNAT_FIRST_PORT 41000
/* Router source ports whose 4-tuple the kernel's hash is asked about. */
#define WNAT_CANDIDATES 32
#define WNAT_CANDIDATE_BASE 42000

typedef struct wnat_s {
  qt_nat_t net;
  qt_conn_t* server_conn;
  uint64_t switch_at;
  unsigned int want_port;
  /* The socket index of the probe group each candidate port reached. */
  int hashed_to[WNAT_CANDIDATES];
} wnat_t;

static int plain_socket(const char* ip, unsigned short port, int reuseport) {
  struct sockaddr_storage addr;
  int one;
  int fd;

  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(fd, 0);
  one = 1;
  if (reuseport)
    ASSERT_OK(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)));
  make_addr(&addr, ip, port);
  ASSERT_OK(bind(fd, (struct sockaddr*) &addr, sizeof(struct sockaddr_in)));
  return fd;
}

/* Asks the kernel which socket of a two-socket reuseport group without a
 * steering program (its 4-tuple hash alone) each candidate source port of
 * the router reaches, on the port the workers will use. The hash depends
 * on the 4-tuple, the namespace and a boot-time secret, not on the
 * sockets, so the workers' group, bound in the same order on the same
 * port, would get the same answer without their program. Returns the
 * port. */
static unsigned short wnat_probe_hash(wnat_t* n) {
  struct sockaddr_storage to;
  struct sockaddr_storage a;
  socklen_t alen;
  unsigned short port;
  uint16_t got;
  int group[2];
  int fd;
  int i;
  int k;
  int seen;

  netns_enter(&n->net.srv);
  group[0] = plain_socket(WNAT_SERVER, 0, 1);
  alen = sizeof(a);
  ASSERT_OK(getsockname(group[0], (struct sockaddr*) &a, &alen));
  port = addr_port((struct sockaddr*) &a);
  group[1] = plain_socket(WNAT_SERVER, port, 1);
  netns_leave();
  make_addr(&to, WNAT_SERVER, port);
  netns_enter(&n->net.rtr);
  for (i = 0; i < WNAT_CANDIDATES; i++) {
    got = (uint16_t) (WNAT_CANDIDATE_BASE + i);
    fd = plain_socket(WNAT_ROUTER_OUT, got, 0);
    ASSERT_EQ(sizeof(got), sendto(fd, &got, sizeof(got), 0,
                                  (struct sockaddr*) &to,
                                  sizeof(struct sockaddr_in)));
    close(fd);
  }
  netns_leave();
  for (i = 0; i < WNAT_CANDIDATES; i++)
    n->hashed_to[i] = -1;
  seen = 0;
  for (k = 0; k < 1000 && seen < WNAT_CANDIDATES; k++) {
    for (i = 0; i < 2; i++) {
      while (recv(group[i], &got, sizeof(got), 0) == sizeof(got)) {
        ASSERT_GE(got, WNAT_CANDIDATE_BASE);
        ASSERT_LT(got, WNAT_CANDIDATE_BASE + WNAT_CANDIDATES);
        ASSERT_EQ(-1, n->hashed_to[got - WNAT_CANDIDATE_BASE]);
        n->hashed_to[got - WNAT_CANDIDATE_BASE] = i;
        seen++;
      }
    }
    if (seen < WNAT_CANDIDATES)
      usleep(1000);
  }
  ASSERT_EQ(WNAT_CANDIDATES, seen);
  close(group[0]);
  close(group[1]);
  return port;
}

/* A candidate port the kernel's hash sends to worker index, after skip
 * others. */
static unsigned int wnat_port_for(const wnat_t* n, int index, int skip) {
  int i;

  for (i = 0; i < WNAT_CANDIDATES; i++)
    if (n->hashed_to[i] == index && skip-- == 0)
      return WNAT_CANDIDATE_BASE + (unsigned int) i;
  FATAL("no candidate port hashes to that worker");
  return 0;
}

static unsigned int wnat_remote_port(qt_conn_t* c) {
  struct sockaddr_storage remote;

  ASSERT_OK(uvq_quic_conn_get_path(c->conn, NULL, &remote));
  return addr_port((struct sockaddr*) &remote);
}

static int wnat_got_enough(void* arg) {
  wnat_t* n = arg;

  return n->server_conn->rx_total >= n->switch_at;
}

static int wnat_server_moved(void* arg) {
  wnat_t* n = arg;

  return wnat_remote_port(n->server_conn) == n->want_port;
}

/* The router maps the client to port from now on. A short stream sent
 * after the change makes sure that packets come from the new mapping even
 * when the transfer has nothing left to send; the server takes the new
 * address once its path is validated (RFC 9000, 9.3). The server's receive
 * buffer may still hold megabytes from the old port, so the wait is for
 * the move, not for a byte count. */
static void wnat_move(qt_t* t, wnat_t* n, qt_conn_t* c, unsigned int port) {
  qt_nat_map(&n->net, port);
  qt_write(c, qt_open_bidi(c), 10, 1);
  n->want_port = port;
  qt_run_until(t, wnat_server_moved, n, QT_WAIT_MS);
}

/* Either worker completed its handshake (arg: both sides). */
static int wnat_server_handshaken(void* arg) {
  qt_side_t** sides = arg;
  int i;

  for (i = 0; i < 2; i++)
    if (sides[i]->nconns == 1 && sides[i]->conns[0]->handshakes == 1)
      return 1;
  return 0;
}

/* The client's NAT mapping changes twice mid-transfer: first to a port
 * whose 4-tuple the kernel's hash gives the serving worker, then to one it
 * gives the other worker. The steering program follows the connection ID,
 * so the same worker keeps serving and the transfer completes. */
TEST_IMPL(quic_workers_nat_rebinding) {
  uvq_quic_endpoint_stats_t st[2];
  qt_side_t* sides[2];
  unsigned int same_port;
  unsigned int other_port;
  unsigned short port;
  qt_side_t* w1;
  qt_conn_t* c;
  qt_conn_t* s;
  wnat_t n;
  int serving;
  int64_t id;
  qt_t t;
  int i;

  memset(&n, 0, sizeof(n));
  qt_init(&t, WNAT_SERVER, WNAT_BYTES);
  qt_nat_up(&n.net, "wk", WNAT_NET);
  port = wnat_probe_hash(&n);

  netns_enter(&n.net.srv);
  t.ip = WNAT_SERVER;
  worker_config(&t, &t.server.cfg, 0);
  ASSERT_OK(qt_side_new(&t, &t.server, 1));
  make_addr(&t.server.addr, WNAT_SERVER, port);
  ASSERT_OK(uvq_quic_endpoint_bind(t.server.ep,
                                   (struct sockaddr*) &t.server.addr));
  w1 = start_second_worker(&t);
  netns_leave();
  netns_enter(&n.net.cli);
  t.ip = WNAT_CLIENT;
  qt_start_client(&t);
  netns_leave();
  qt_nat_map(&n.net, WNAT_FIRST_PORT);

  c = qt_connect(&t);
  sides[0] = &t.server;
  sides[1] = w1;
  qt_run_until(&t, qt_conn_handshaken, c, QT_WAIT_MS);
  qt_run_until(&t, wnat_server_handshaken, sides, QT_WAIT_MS);
  ASSERT_EQ(1, t.server.nconns + w1->nconns);
  serving = w1->nconns;
  s = sides[serving]->conns[0];
  ASSERT_EQ(WNAT_FIRST_PORT, wnat_remote_port(s));
  same_port = wnat_port_for(&n, serving, 0);
  other_port = wnat_port_for(&n, 1 - serving, 0);

  id = qt_open_bidi(c);
  qt_write(c, id, WNAT_BYTES, 1);
  n.server_conn = s;
  n.switch_at = WNAT_BYTES / 4;
  qt_run_until(&t, wnat_got_enough, &n, QT_WAIT_MS);
  wnat_move(&t, &n, c, same_port);
  /* Without the steering program this 4-tuple would reach the other
   * worker (wnat_probe_hash). */
  wnat_move(&t, &n, c, other_port);

  qt_run_until_fins(&t, s, 3);
  qt_run_until_writes(&t, &t.client, 3);
  qt_assert_stream(s, id, WNAT_BYTES);
  ASSERT_EQ(3, t.client.writes_ok);
  ASSERT_EQ(other_port, wnat_remote_port(s));
  ASSERT_EQ(0, c->closed);
  ASSERT_EQ(0, s->closed);
  for (i = 0; i < 2; i++) {
    stats_of(sides[i], &st[i]);
    ASSERT_UINT_EQ(UVQ_QUIC_STEERING_BPF, st[i].steering);
    ASSERT_UINT_EQ(0, st[i].packets_misrouted);
    ASSERT_UINT_EQ(0, st[i].stateless_resets);
    ASSERT_UINT_EQ(i == serving ? 1 : 0, st[i].connections_accepted);
  }

  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, s);
  finish_worker(&t, w1);
  qt_teardown(&t);
  qt_nat_down(&n.net);
  return 0;
}

/* --- a worker that dies ---------------------------------------------------- */

static void child_data(uvq_quic_conn_t* conn, int64_t id, const uint8_t* data,
                       size_t len, int fin) {
  uvq_quic_stream_consume(conn, id, len);
}

/* Runs worker 1 of the group in a child process, bound to addr after the
 * parent's worker 0; returns its pid once it is bound. */
static pid_t spawn_worker(qt_t* t, const struct sockaddr_storage* addr) {
  uvq_quic_callbacks_t cb;
  uvq_quic_endpoint_t* ep;
  uvq_quic_config_t cfg;
  uv_loop_t loop;
  char ok;
  int fds[2];
  pid_t pid;

  worker_config(t, &cfg, 1);
  ASSERT_OK(pipe(fds));
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    /* The child: never runs the test's cleanups, dies with its parent. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(20);
    close(fds[0]);
    memset(&cb, 0, sizeof(cb));
    cb.stream_data = child_data;
    if (uv_loop_init(&loop) != 0 ||
        uvq_quic_endpoint_new(&loop, &cfg, &cb, NULL, &ep) != 0 ||
        uvq_quic_endpoint_bind(ep, (const struct sockaddr*) addr) != 0)
      _exit(3);
    ok = 1;
    if (write(fds[1], &ok, 1) != 1)
      _exit(4);
    close(fds[1]);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  close(fds[1]);
  ASSERT_EQ(1, read(fds[0], &ok, 1));
  close(fds[0]);
  return pid;
}

static pid_t worker_pid = -1;

static void kill_worker_at_exit(void* arg) {
  pid_t* pid = arg;

  if (*pid > 0) {
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = -1;
  }
}

#define DEATH_MAX_TRIES 32

/* Worker 1 (a child process) is killed. The steering program still
 * answers index 1 for its connections' packets, which the group no longer
 * has, so the kernel hands them to worker 0 by its hash: worker 0 counts
 * them misrouted and resets the connection with the token worker 1 gave
 * (the shared secret). Worker 0's own connection lives on. */
TEST_IMPL(quic_workers_dead_worker_reset) {
  uvq_quic_endpoint_stats_t st;
  qt_conn_t* mine;
  qt_conn_t* theirs;
  qt_conn_t* c;
  unsigned int i;
  int64_t id;
  qt_t t;
  int status;

  qt_init(&t, "127.0.0.1", 1000);
  worker_config(&t, &t.server.cfg, 0);
  qt_start_server(&t);
  test_atexit(kill_worker_at_exit, &worker_pid);
  worker_pid = spawn_worker(&t, &t.server.addr);
  qt_start_client(&t);
  /* One connection on each worker: connect until both have one (each
   * attempt lands on either with probability 1/2). */
  mine = theirs = NULL;
  for (i = 0; i < DEATH_MAX_TRIES && (mine == NULL || theirs == NULL); i++) {
    unsigned int before = t.server.nconns;
    c = qt_connect(&t);
    qt_run_until(&t, qt_conn_handshaken, c, QT_WAIT_MS);
    if (t.server.nconns > before) {
      if (mine == NULL)
        mine = c;
    } else if (theirs == NULL) {
      theirs = c;
    }
  }
  ASSERT_NOT_NULL(mine);
  ASSERT_NOT_NULL(theirs);

  ASSERT_OK(kill(worker_pid, SIGKILL));
  ASSERT_EQ(worker_pid, waitpid(worker_pid, &status, 0));
  worker_pid = -1;
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(0, st.stateless_resets);

  id = qt_open_bidi(theirs);
  qt_write(theirs, id, 100, 1);
  qt_run_until_closed(&t, theirs);
  qt_assert_closed(theirs, UVQ_QUIC_ERROR_STATELESS_RESET, 0, 1, NULL);
  id = qt_open_bidi(mine);
  qt_write(mine, id, 1000, 1);
  qt_run_until_fins(&t, t.server.conns[0], 1);
  ASSERT_EQ(0, mine->closed);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_GE(st.packets_misrouted, 1);
  ASSERT_UINT_EQ(st.packets_misrouted, st.stateless_resets);
  qt_teardown(&t);
  return 0;
}

/* --- resumption across workers --------------------------------------------- */

#define RESUME_EARLY_BYTES 3000

static int got_ticket(void* arg) {
  return ((qt_t*) arg)->client.tickets > 0;
}

static int server_fin(void* arg) {
  qt_side_t* w = arg;

  return w->nconns == 1 && w->conns[0]->fins == 1 &&
         w->conns[0]->handshakes == 1;
}

/* A ticket worker 0 issued resumes a connection at worker 1, with 0-RTT:
 * the ticket key derives from the shared static_secret. Through the relay,
 * so that each connection goes to the worker the test names. */
TEST_IMPL(quic_workers_resume) {
  uvq_quic_conn_stats_t cst;
  uvq_quic_conn_stats_t sst;
  relay_t* r;
  qt_side_t* w1;
  qt_conn_t* c;
  int namelen;
  int64_t id;
  qt_t t;

  r = calloc(1, sizeof(*r));
  ASSERT_NOT_NULL(r);
  qt_init(&t, "127.0.0.1", RESUME_EARLY_BYTES);
  worker_config(&t, &t.server.cfg, 0);
  qt_start_server(&t);
  w1 = calloc(1, sizeof(*w1));
  ASSERT_NOT_NULL(w1);
  w1->auto_consume = 1;
  worker_config(&t, &w1->cfg, 1);
  ASSERT_OK(qt_side_new(&t, w1, 1));
  make_addr(&w1->addr, "127.0.0.1", 0);
  ASSERT_OK(uvq_quic_endpoint_bind(w1->ep, (struct sockaddr*) &w1->addr));
  namelen = sizeof(w1->addr);
  ASSERT_OK(uvq_udp_getsockname(uvq_quic_endpoint_udp(w1->ep),
                                (struct sockaddr*) &w1->addr, &namelen));
  relay_start(&t, r);
  r->first_to = t.server.addr;
  r->then_to = t.server.addr;
  qt_start_client(&t);
  t.server.addr = r->front_addr;

  c = qt_connect(&t);
  qt_run_until(&t, qt_conn_handshaken, c, QT_WAIT_MS);
  qt_run_until(&t, got_ticket, &t, QT_WAIT_MS);
  ASSERT_EQ(1, t.server.nconns);
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);

  /* Everything from now on goes to worker 1. */
  r->first_to = w1->addr;
  r->then_to = w1->addr;
  c = qt_connect_ticket(&t, t.client.ticket, t.client.ticketlen);
  id = qt_open_bidi(c);
  qt_write(c, id, RESUME_EARLY_BYTES, 1);
  qt_run_until(&t, server_fin, w1, QT_WAIT_MS);
  qt_assert_stream(w1->conns[0], id, RESUME_EARLY_BYTES);
  qt_run_until(&t, qt_conn_handshaken, c, QT_WAIT_MS);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &cst));
  ASSERT_OK(uvq_quic_conn_get_stats(w1->conns[0]->conn, &sst));
  ASSERT_EQ(1, cst.resumed);
  ASSERT_EQ(1, sst.resumed);
  ASSERT_EQ(UVQ_QUIC_0RTT_ACCEPTED, cst.zero_rtt);
  ASSERT_EQ(UVQ_QUIC_0RTT_ACCEPTED, sst.zero_rtt);
  ASSERT_EQ(1, t.server.nconns);

  finish_worker(&t, w1);
  relay_stop(r);
  qt_teardown(&t);
  free(r);
  return 0;
}
