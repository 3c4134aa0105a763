/* Load shedding (issue 13): a flood of real client Initials from many
 * source ports, a burst of clients larger than the handshake limit, and
 * a refused client's re-sent Initial. The flood is sent from plain UDP
 * sockets; its Initials are real ones, each captured from a uvq client
 * with its own random DCID, so every one that is accepted costs the server
 * a real handshake. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "quic-helpers.h"
#include "task.h"

#define FLOOD_INITIALS 256
#define FLOOD_SOCKETS 32
#define INITIAL_LEN 1200

typedef struct {
  int fd[FLOOD_SOCKETS];
  uint8_t (*initial)[INITIAL_LEN];
  unsigned int ninitials;
  /* Replies read back on the flood sockets, by kind. */
  unsigned int retries;
  unsigned int initials;
  unsigned int others;
} flood_t;

static int udp_socket(const char* ip) {
  struct sockaddr_in sa;
  int fd;

  fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  memset(&sa, 0, sizeof(sa));
  sa.sin_family = AF_INET;
  ASSERT_EQ(1, inet_pton(AF_INET, ip, &sa.sin_addr));
  ASSERT_OK(bind(fd, (struct sockaddr*) &sa, sizeof(sa)));
  return fd;
}

static unsigned int pending_datagrams(int fd) {
  uint8_t buf[2048];
  unsigned int n;

  n = 0;
  while (recv(fd, buf, sizeof(buf), MSG_PEEK) > 0 &&
         recv(fd, buf, sizeof(buf), 0) > 0)
    n++;
  return n;
}

/* Captures n client Initials: n uvq client connections pointed at a plain
 * socket, each Initial read from it, then the connections closed. */
static void capture_initials(qt_t* t, uint8_t (*out)[INITIAL_LEN],
                             unsigned int n) {
  struct sockaddr_storage saved;
  struct sockaddr_storage name;
  socklen_t namelen;
  qt_conn_t** conns;
  unsigned int got;
  unsigned int i;
  uint64_t deadline;
  ssize_t r;
  int fd;

  fd = udp_socket("127.0.0.1");
  namelen = sizeof(name);
  ASSERT_OK(getsockname(fd, (struct sockaddr*) &name, &namelen));
  conns = calloc(n, sizeof(*conns));
  ASSERT_NOT_NULL(conns);
  saved = t->server.addr;
  t->server.addr = name;
  got = 0;
  deadline = uv_hrtime() + 5000 * (uint64_t) 1000000;
  for (i = 0; i < n; i++) {
    conns[i] = qt_connect(t);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    /* Drain as we go: the socket's receive buffer is not unlimited. */
    while (got < n && (r = recv(fd, out[got], INITIAL_LEN + 1, 0)) > 0) {
      ASSERT_EQ(INITIAL_LEN, r);
      ASSERT_BITS_SET(out[got][0], 0xc0);
      got++;
    }
  }
  t->server.addr = saved;
  while (got < n) {
    ASSERT_LT(uv_hrtime(), deadline);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    r = recv(fd, out[got], INITIAL_LEN + 1, 0);
    if (r < 0) {
      ASSERT_EQ(EAGAIN, errno);
      continue;
    }
    ASSERT_EQ(INITIAL_LEN, r);
    got++;
  }
  t->in_api++;
  for (i = 0; i < n; i++)
    ASSERT_OK(uvq_quic_conn_close(conns[i]->conn, 0, NULL));
  t->in_api--;
  for (i = 0; i < n; i++)
    qt_run_until_closed(t, conns[i]);
  free(conns);
  close(fd);
}

static void flood_init(qt_t* t, flood_t* f, unsigned int ninitials) {
  unsigned int i;

  memset(f, 0, sizeof(*f));
  for (i = 0; i < FLOOD_SOCKETS; i++)
    f->fd[i] = udp_socket("127.0.0.1");
  f->initial = malloc(ninitials * sizeof(*f->initial));
  ASSERT_NOT_NULL(f->initial);
  f->ninitials = ninitials;
  capture_initials(t, f->initial, ninitials);
}

/* Sends Initials [from, to) round-robin over the sockets, running the loop
 * now and then so that the server reads them as they come. */
static void flood_send(qt_t* t, flood_t* f, unsigned int from,
                       unsigned int to) {
  unsigned int i;
  ssize_t r;

  for (i = from; i < to; i++) {
    for (;;) {
      r = sendto(f->fd[i % FLOOD_SOCKETS], f->initial[i], INITIAL_LEN, 0,
                 (struct sockaddr*) &t->server.addr,
                 sizeof(struct sockaddr_in));
      if (r == INITIAL_LEN)
        break;
      ASSERT_EQ(EAGAIN, errno);
      uv_run(&t->loop, UV_RUN_NOWAIT);
    }
    if (i % 8 == 7)
      uv_run(&t->loop, UV_RUN_NOWAIT);
  }
}

/* Reads what the server sent to the flood sockets: Retry packets (RFC
 * 9000, 17.2.5: long header, type 3), Initials (its handshakes and
 * refusals, type 0) and anything else. Coalesced Handshake packets ride in
 * the Initial's datagram. */
static void flood_collect(flood_t* f) {
  uint8_t buf[2048];
  unsigned int i;
  ssize_t r;

  for (i = 0; i < FLOOD_SOCKETS; i++) {
    while ((r = recv(f->fd[i], buf, sizeof(buf), 0)) > 0) {
      if ((buf[0] & 0xf0) == 0xf0)
        f->retries++;
      else if ((buf[0] & 0xf0) == 0xc0)
        f->initials++;
      else
        f->others++;
    }
  }
}

/* The server has answered every Initial of a first flood: a Retry for
 * each flood Initial after the first 8, and one for the normal client. */
static int flood_answered(void* arg) {
  uvq_quic_endpoint_stats_t st;
  qt_t* t = arg;

  ASSERT_OK(uvq_quic_endpoint_get_stats(t->server.ep, &st));
  return st.retries >= FLOOD_INITIALS - 8 + 1;
}

/* Collects until retries Retry packets have arrived, for at most
 * QT_WAIT_MS (a datagram on loopback is in the socket once sendmmsg
 * returns; the loop runs so that the server sends what it staged). */
static void flood_collect_all(qt_t* t, flood_t* f, unsigned int retries) {
  uint64_t start = uv_hrtime();

  flood_collect(f);
  while (f->retries < retries &&
         QT_MS(start, uv_hrtime()) < (double) QT_WAIT_MS) {
    uv_run(&t->loop, UV_RUN_NOWAIT);
    flood_collect(f);
  }
}

static void flood_close(flood_t* f) {
  unsigned int i;

  for (i = 0; i < FLOOD_SOCKETS; i++)
    close(f->fd[i]);
  free(f->initial);
}

static int handshaken_and_answered(void* arg) {
  qt_conn_t* c = arg;
  return c->handshakes == 1 && c->fins == 1;
}

/* Connects, sends 1000 bytes, reads the 100000-byte answer; returns the
 * time that took in milliseconds and leaves the connection open. */
static double fetch(qt_t* t, qt_conn_t** out) {
  qt_conn_t* c;
  uint64_t start;

  start = uv_hrtime();
  c = qt_connect(t);
  qt_run_until(t, qt_conn_handshaken, c, QT_WAIT_MS);
  qt_write(c, qt_open_bidi(c), 1000, 1);
  qt_run_until(t, handshaken_and_answered, c, QT_WAIT_MS);
  qt_assert_stream(c, 0, 100000);
  *out = c;
  return QT_MS(start, uv_hrtime());
}

/* 256 real Initials from 32 source ports that never finish their
 * handshakes, sent before and while a normal client connects and fetches.
 * With the default policy (Retry under load), the first retry_threshold
 * Initials get handshakes, every later one a Retry and nothing else; the
 * normal client answers its Retry, gets a handshake and its data. The
 * server holds threshold + 1 connections however long the flood. */
TEST_IMPL(quic_load_initial_flood) {
  uvq_quic_endpoint_stats_t st;
  flood_t f;
  qt_t t;
  qt_conn_t* quiet;
  qt_conn_t* c;
  double quiet_ms;
  uint64_t start;

  qt_init(&t, "127.0.0.1", 100000);
  t.server.cfg.max_handshakes = 32;
  t.server.cfg.retry_threshold = 8;
  t.server.respond_bytes = 100000;
  qt_start(&t);
  flood_init(&t, &f, FLOOD_INITIALS);
  /* The same fetch without a flood, for comparison (printed only: on a
   * shared machine a timing bound would fail for reasons of its own). */
  quiet_ms = fetch(&t, &quiet);

  flood_send(&t, &f, 0, FLOOD_INITIALS / 2);
  qt_run_for(&t, 50);
  start = uv_hrtime();
  c = qt_connect(&t);
  flood_send(&t, &f, FLOOD_INITIALS / 2, FLOOD_INITIALS);
  qt_run_until(&t, qt_conn_handshaken, c, QT_WAIT_MS);
  qt_write(c, qt_open_bidi(c), 1000, 1);
  qt_run_until(&t, handshaken_and_answered, c, QT_WAIT_MS);
  fprintf(stderr, "fetch: %.1f ms quiet, %.1f ms during the flood\n",
          quiet_ms, QT_MS(start, uv_hrtime()));
  qt_assert_stream(c, 0, 100000);
  /* Until the server has read the whole flood (a loaded machine, or the
   * sanitizer build, takes longer than any fixed wait), then until its
   * answers are in the flood sockets. */
  qt_run_until(&t, flood_answered, &t, QT_WAIT_MS);
  flood_collect_all(&t, &f, FLOOD_INITIALS - 8);

  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  fprintf(stderr, "accepted %" PRIu64 " refused %" PRIu64 " retries %" PRIu64
          " dropped %" PRIu64 "; flood sockets got %u Retry, %u Initial, "
          "%u other\n", st.connections_accepted, st.connections_refused,
          st.retries, st.packets_dropped, f.retries, f.initials, f.others);
  /* The quiet fetch, 8 flood handshakes and the normal client, nothing
   * else, ever. */
  ASSERT_UINT_EQ(1 + 8 + 1, st.connections_accepted);
  ASSERT_EQ(1 + 8 + 1, t.server.nconns);
  ASSERT_UINT_EQ(0, st.connections_refused);
  /* Every other flood Initial, and the normal client once. */
  ASSERT_UINT_EQ(FLOOD_INITIALS - 8 + 1, st.retries);
  ASSERT_EQ(FLOOD_INITIALS - 8, f.retries);
  ASSERT_EQ(0, f.others);
  ASSERT_UINT_GE(f.initials, 8);

  /* A second wave changes nothing: still 10 connections. */
  flood_send(&t, &f, 0, FLOOD_INITIALS);
  qt_run_for(&t, 100);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(1 + 8 + 1, st.connections_accepted);
  ASSERT_UINT_EQ(0, st.connections_refused);

  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  ASSERT_OK(uvq_quic_conn_close(quiet->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, quiet);
  flood_close(&f);
  qt_teardown(&t);
  return 0;
}

typedef struct {
  unsigned int answered;
} burst_t;

static void burst_handshake_done(qt_conn_t* c) {
  if (!c->is_server)
    qt_write(c, qt_open_bidi(c), 10, 1);
}

static void burst_fin(qt_conn_t* c, int64_t id) {
  burst_t* b = c->side->t->user;
  (void) id;
  if (!c->is_server)
    b->answered++;
}

static int all_answered(void* arg) {
  qt_t* t = arg;
  burst_t* b = t->user;
  return b->answered == 200;
}

/* 200 clients at once against max_handshakes 100 and a Retry threshold of
 * 10: the first few get handshakes at once, the rest a Retry; of those
 * that come back with a token, the ones over the limit are not answered
 * and come back again after their PTO. Every client is served, none is
 * refused. */
TEST_IMPL(quic_load_burst_retry) {
  uvq_quic_endpoint_stats_t st;
  burst_t b;
  qt_t t;
  unsigned int i;
  uint64_t start;

  qt_init(&t, "127.0.0.1", 1000);
  t.server.cfg.max_handshakes = 100;
  t.server.cfg.retry_threshold = 10;
  t.server.respond_bytes = 100;
  t.client.hooks.handshake_done = burst_handshake_done;
  t.client.hooks.fin = burst_fin;
  t.server.hooks.fin = burst_fin;
  memset(&b, 0, sizeof(b));
  t.user = &b;
  qt_start(&t);
  start = uv_hrtime();
  for (i = 0; i < 200; i++)
    qt_connect(&t);
  qt_run_until(&t, all_answered, &t, 3 * QT_WAIT_MS);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  fprintf(stderr, "200 clients served in %.0f ms: accepted %" PRIu64
          " retries %" PRIu64 " refused %" PRIu64 " dropped %" PRIu64 "\n",
          QT_MS(start, uv_hrtime()), st.connections_accepted, st.retries,
          st.connections_refused, st.packets_dropped);
  ASSERT_UINT_EQ(200, st.connections_accepted);
  ASSERT_UINT_EQ(0, st.connections_refused);
  /* At least every client after the first 100 got a Retry: no more than
   * max_handshakes can have been accepted before one completed. */
  ASSERT_UINT_GE(st.retries, 100);
  ASSERT_EQ(200, t.server.nconns);
  for (i = 0; i < 200; i++) {
    ASSERT_EQ(1, t.client.conns[i]->handshakes);
    ASSERT_EQ(0, t.client.conns[i]->closed);
  }
  qt_teardown(&t);
  return 0;
}

/* UVQ_QUIC_RETRY_NEVER, max_handshakes 1: a client over the limit is
 * refused, and its Initial re-sent after the limit has room again is
 * refused again (counted once), not made into a connection the client has
 * given up on; a new attempt is accepted. */
TEST_IMPL(quic_load_refused_resend) {
  uvq_quic_endpoint_stats_t st;
  flood_t f;
  qt_t t;

  qt_init(&t, "127.0.0.1", 1000);
  t.server.cfg.retry = UVQ_QUIC_RETRY_NEVER;
  t.server.cfg.max_handshakes = 1;
  t.server.cfg.handshake_timeout_ms = 300;
  qt_start(&t);
  flood_init(&t, &f, 3);

  /* A: a handshake that never completes holds the only slot. */
  flood_send(&t, &f, 0, 1);
  qt_run_for(&t, 50);
  ASSERT_EQ(1, t.server.nconns);
  /* B: refused with an Initial CONNECTION_CLOSE. */
  flood_send(&t, &f, 1, 2);
  qt_run_for(&t, 50);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(1, st.connections_accepted);
  ASSERT_UINT_EQ(1, st.connections_refused);
  ASSERT_UINT_EQ(0, st.retries);
  ASSERT_EQ(1, pending_datagrams(f.fd[1]));

  /* A's handshake times out: the slot is free. */
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  ASSERT_EQ(0, qt_server_conn(&t, 0)->handshakes);

  /* B again, the same bytes: refused again, no connection. */
  flood_send(&t, &f, 1, 2);
  qt_run_for(&t, 50);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(1, st.connections_accepted);
  ASSERT_UINT_EQ(1, st.connections_refused);
  ASSERT_EQ(1, t.server.nconns);
  ASSERT_EQ(1, pending_datagrams(f.fd[1]));

  /* C, a new attempt: accepted. */
  flood_send(&t, &f, 2, 3);
  qt_run_for(&t, 50);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(2, st.connections_accepted);
  ASSERT_EQ(2, t.server.nconns);

  flood_close(&f);
  qt_teardown(&t);
  return 0;
}
