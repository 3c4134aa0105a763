/* What a server sends without a connection: Version Negotiation and
 * Stateless Reset, checked on the wire from a plain UDP socket, and a
 * reset that ends a client's connection after its server restarted. */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ngtcp2/ngtcp2.h>

#include "quic-helpers.h"
#include "task.h"

static uint32_t get32(const uint8_t* p) {
  return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
         ((uint32_t) p[2] << 8) | p[3];
}

/* A 1200-byte (or len-byte) long-header packet of an unknown version. */
static size_t make_unknown_version(uint8_t* buf, size_t len) {
  size_t i;

  memset(buf, 0, len);
  buf[0] = 0xc0 | 0x0a;
  buf[1] = 0x1a;
  buf[2] = 0x2a;
  buf[3] = 0x3a;
  buf[4] = 0x4a;
  buf[5] = 8; /* DCID */
  for (i = 0; i < 8; i++)
    buf[6 + i] = (uint8_t) (0x11 + i);
  buf[14] = 5; /* SCID */
  for (i = 0; i < 5; i++)
    buf[15 + i] = (uint8_t) (0xa1 + i);
  return len;
}

TEST_IMPL(quic_version_negotiation) {
  uvq_quic_endpoint_stats_t st;
  uint8_t pkt[1200];
  test_peer_t peer;
  const rx_entry_t* r;
  const uint8_t* d;
  size_t nversions;
  size_t i;
  int has_v1;
  int has_v2;
  qt_t t;

  qt_init(&t, "127.0.0.1", 0);
  qt_start_server(&t);
  peer_init(&t.loop, &peer);
  peer_bind(&peer, "127.0.0.1", 0);
  peer_start(&peer);
  make_unknown_version(pkt, sizeof(pkt));
  peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, sizeof(pkt), 0);
  run_until_rx(&t.loop, &peer, 1);
  r = &peer.rx[0];
  d = r->data;
  /* RFC 9000, 17.2.1: long header form, version 0, the client's SCID as
   * DCID and its DCID as SCID, then the supported versions. */
  ASSERT_GE(r->nread, 7 + 5 + 8 + 4);
  ASSERT_BITS_SET(d[0], 0x80);
  ASSERT_UINT_EQ(0, get32(d + 1));
  ASSERT_EQ(5, d[5]);
  ASSERT_MEM_EQ(pkt + 15, d + 6, 5);
  ASSERT_EQ(8, d[11]);
  ASSERT_MEM_EQ(pkt + 6, d + 12, 8);
  nversions = ((size_t) r->nread - 20) / 4;
  ASSERT_UINT_EQ(0, ((size_t) r->nread - 20) % 4);
  has_v1 = has_v2 = 0;
  for (i = 0; i < nversions; i++) {
    uint32_t v = get32(d + 20 + 4 * i);
    has_v1 += v == UVQ_QUIC_V1;
    has_v2 += v == UVQ_QUIC_V2;
    ASSERT_NE(0x1a2a3a4a, v);
  }
  ASSERT_EQ(1, has_v1);
  ASSERT_EQ(1, has_v2);
  ASSERT_UINT_EQ(2, nversions);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(1, st.version_negotiations);
  ASSERT_UINT_EQ(0, st.connections_accepted);
  peer_close(&peer);
  qt_close_side(&t.server);
  finish_loop(&t.loop);
  peer_finish(&peer);
  ASSERT_EQ(1, t.server.close_cbs);
  free(t.pattern);
  return 0;
}

/* A datagram smaller than a client Initial must not be answered (an
 * amplification guard, RFC 9000, 6.1 / 14.1). */
TEST_IMPL(quic_version_negotiation_short) {
  uvq_quic_endpoint_stats_t st;
  uint8_t pkt[1200];
  test_peer_t peer;
  qt_t t;

  qt_init(&t, "127.0.0.1", 0);
  qt_start_server(&t);
  peer_init(&t.loop, &peer);
  peer_bind(&peer, "127.0.0.1", 0);
  peer_start(&peer);
  make_unknown_version(pkt, 1199);
  peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, 1199, 0);
  make_unknown_version(pkt, 100);
  peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, 100, 0);
  qt_run_for(&t, 200);
  ASSERT_EQ(0, peer.nrx);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(0, st.version_negotiations);
  peer_close(&peer);
  qt_close_side(&t.server);
  finish_loop(&t.loop);
  peer_finish(&peer);
  free(t.pattern);
  return 0;
}

/* A len-byte long-header packet of an unknown version with connection IDs
 * of any length up to 255 (RFC 8999, 5.1 allows them for versions the
 * receiver does not know). */
static void make_unknown_version_cids(uint8_t* buf, size_t len,
                                      size_t dcidlen, size_t scidlen) {
  size_t i;

  memset(buf, 0, len);
  buf[0] = 0xc0 | 0x0a;
  buf[1] = 0x1a;
  buf[2] = 0x2a;
  buf[3] = 0x3a;
  buf[4] = 0x4a;
  buf[5] = (uint8_t) dcidlen;
  for (i = 0; i < dcidlen; i++)
    buf[6 + i] = (uint8_t) (0x11 + i);
  buf[6 + dcidlen] = (uint8_t) scidlen;
  for (i = 0; i < scidlen; i++)
    buf[7 + dcidlen + i] = (uint8_t) (0xa1 + 3 * i);
}

/* RFC 8999, 6: a Version Negotiation packet answers connection IDs of any
 * length, swapped: its DCID is the packet's SCID, its SCID the packet's
 * DCID. Checked byte for byte for IDs longer than QUIC v1's 20 bytes; a
 * datagram under 1200 bytes with the same IDs still gets nothing. */
TEST_IMPL(quic_version_negotiation_long_cid) {
  static const struct {
    size_t dcidlen;
    size_t scidlen;
  } cases[] = {{21, 0}, {0, 21}, {255, 255}, {40, 200}, {255, 1}};
  uvq_quic_endpoint_stats_t st;
  uint8_t pkt[1200];
  test_peer_t peer;
  const rx_entry_t* r;
  const uint8_t* d;
  size_t dl;
  size_t sl;
  size_t i;
  qt_t t;

  qt_init(&t, "127.0.0.1", 0);
  qt_start_server(&t);
  peer_init(&t.loop, &peer);
  peer_bind(&peer, "127.0.0.1", 0);
  peer_start(&peer);
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    dl = cases[i].dcidlen;
    sl = cases[i].scidlen;
    make_unknown_version_cids(pkt, sizeof(pkt), dl, sl);
    peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, sizeof(pkt),
                 0);
    run_until_rx(&t.loop, &peer, (unsigned int) i + 1);
    r = &peer.rx[i];
    d = r->data;
    /* Long header form, version 0, DCID = the packet's SCID, SCID = its
     * DCID, then v1 and v2 in uvq's order and nothing else (uvq lists no
     * reserved version). */
    ASSERT_EQ(1 + 4 + 1 + sl + 1 + dl + 8, r->nread);
    ASSERT_BITS_SET(d[0], 0x80);
    ASSERT_UINT_EQ(0, get32(d + 1));
    ASSERT_UINT_EQ(sl, d[5]);
    ASSERT_MEM_EQ(pkt + 7 + dl, d + 6, sl);
    ASSERT_UINT_EQ(dl, d[6 + sl]);
    ASSERT_MEM_EQ(pkt + 6, d + 7 + sl, dl);
    ASSERT_UINT_EQ(UVQ_QUIC_V1, get32(d + 7 + sl + dl));
    ASSERT_UINT_EQ(UVQ_QUIC_V2, get32(d + 7 + sl + dl + 4));
  }
  /* The same IDs in a datagram one byte short of 1200: no answer. */
  make_unknown_version_cids(pkt, 1199, 255, 255);
  peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, 1199, 0);
  qt_run_for(&t, 200);
  ASSERT_UINT_EQ(sizeof(cases) / sizeof(cases[0]), peer.nrx);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(sizeof(cases) / sizeof(cases[0]), st.version_negotiations);
  ASSERT_UINT_EQ(0, st.connections_accepted);
  peer_close(&peer);
  qt_close_side(&t.server);
  finish_loop(&t.loop);
  peer_finish(&peer);
  ASSERT_EQ(1, t.server.close_cbs);
  free(t.pattern);
  return 0;
}

static const uint8_t test_secret[32] = {
  1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32,
};

/* A short-header packet for a connection the server does not know gets a
 * Stateless Reset (RFC 9000, 10.3): shorter than the trigger, at least 21
 * bytes, short-header form, ending in the token the server derives from
 * its static secret and the DCID, the same token each time. */
TEST_IMPL(quic_stateless_reset_reply) {
  uvq_quic_endpoint_stats_t st;
  uint8_t want[NGTCP2_STATELESS_RESET_TOKENLEN];
  uint8_t pkt[60];
  test_peer_t peer;
  unsigned int i;
  qt_t t;

  qt_init(&t, "127.0.0.1", 0);
  t.server.cfg.static_secret = test_secret;
  qt_start_server(&t);
  peer_init(&t.loop, &peer);
  peer_bind(&peer, "127.0.0.1", 0);
  peer_start(&peer);
  fill_pattern(pkt, sizeof(pkt), 3);
  pkt[0] = 0x40 | 0x17;
  peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, sizeof(pkt), 0);
  run_until_rx(&t.loop, &peer, 1);
  peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, sizeof(pkt), 0);
  run_until_rx(&t.loop, &peer, 2);
  qt_reset_token(test_secret, pkt + 1, 18, want);
  for (i = 0; i < 2; i++) {
    const rx_entry_t* r = &peer.rx[i];
    ASSERT_LT(r->nread, (ssize_t) sizeof(pkt));
    ASSERT_GE(r->nread, 21);
    ASSERT_BITS_SET(r->data[0], 0x40);
    ASSERT_BITS_CLEAR(r->data[0], 0x80);
    ASSERT_MEM_EQ(want, r->data + r->nread - 16, 16);
  }
  /* Too short to be answered without risking a reset loop. */
  peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, 21, 0);
  qt_run_for(&t, 100);
  ASSERT_EQ(2, peer.nrx);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(2, st.stateless_resets);
  peer_close(&peer);
  qt_close_side(&t.server);
  finish_loop(&t.loop);
  peer_finish(&peer);
  free(t.pattern);
  return 0;
}

/* --- a server in a child process --------------------------------------- */

static void child_data(uvq_quic_conn_t* conn, int64_t id, const uint8_t* data,
                       size_t len, int fin) {
  uvq_quic_stream_consume(conn, id, len);
}

/* Runs a server on 127.0.0.1:port (0: any) in a child process until it is
 * killed; returns its pid and stores the port it bound. */
static pid_t spawn_server(qt_t* t, unsigned short* port) {
  uvq_quic_callbacks_t cb;
  struct sockaddr_storage addr;
  uvq_quic_endpoint_t* ep;
  uv_loop_t loop;
  unsigned short bound;
  int namelen;
  int fds[2];
  int tries;
  int err;
  pid_t pid;

  ASSERT_OK(pipe(fds));
  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    /* The child: never runs the test's cleanups, dies with its parent. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    alarm(20);
    close(fds[0]);
    if (uv_loop_init(&loop) != 0)
      _exit(2);
    memset(&cb, 0, sizeof(cb));
    cb.stream_data = child_data;
    if ((err = uvq_quic_endpoint_new(&loop, &t->server.cfg, &cb, NULL,
                                     &ep)) != 0) {
      fprintf(stderr, "server child: endpoint_new: %s\n", uv_strerror(err));
      _exit(3);
    }
    make_addr(&addr, "127.0.0.1", *port);
    /* The killed server's port is free once it is reaped; a bounded retry
     * covers a kernel that is slower to let go of it. */
    for (tries = 0; tries < 100; tries++) {
      err = uvq_quic_endpoint_bind(ep, (struct sockaddr*) &addr);
      if (err != UV_EADDRINUSE)
        break;
      usleep(10000);
    }
    if (err != 0) {
      fprintf(stderr, "server child: bind: %s\n", uv_strerror(err));
      _exit(4);
    }
    namelen = sizeof(addr);
    uvq_udp_getsockname(uvq_quic_endpoint_udp(ep), (struct sockaddr*) &addr,
                        &namelen);
    bound = addr_port((struct sockaddr*) &addr);
    if (write(fds[1], &bound, sizeof(bound)) != sizeof(bound))
      _exit(5);
    close(fds[1]);
    uv_run(&loop, UV_RUN_DEFAULT);
    _exit(0);
  }
  close(fds[1]);
  if (read(fds[0], &bound, sizeof(bound)) != sizeof(bound)) {
    int status = 0;
    waitpid(pid, &status, 0);
    test_fail(__FILE__, __LINE__,
              "the server child did not report its port (exit status %d)",
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  }
  close(fds[0]);
  *port = bound;
  return pid;
}

static void kill_child(pid_t pid) {
  int status;

  ASSERT_OK(kill(pid, SIGKILL));
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  ASSERT(WIFSIGNALED(status));
  ASSERT_EQ(SIGKILL, WTERMSIG(status));
}

static pid_t child_pid = -1;

static void kill_child_at_exit(void* arg) {
  pid_t* pid = arg;
  if (*pid > 0) {
    kill(*pid, SIGKILL);
    waitpid(*pid, NULL, 0);
    *pid = -1;
  }
}

/* The server process dies (SIGKILL) mid-connection and a new one starts
 * on the same port with the same static secret. The next packet the
 * client sends reaches a server without the connection, which answers
 * with a Stateless Reset whose token the client learned from the first
 * server: the client's connection ends with STATELESS_RESET. */
TEST_IMPL(quic_stateless_reset_restart) {
  unsigned short port;
  qt_t t;
  qt_conn_t* c;
  int64_t id;

  qt_init(&t, "127.0.0.1", 100000);
  t.server.cfg.static_secret = test_secret;
  test_atexit(kill_child_at_exit, &child_pid);
  port = 0;
  child_pid = spawn_server(&t, &port);
  /* The client connects to the child's port. */
  make_addr(&t.server.addr, "127.0.0.1", port);
  qt_start_client(&t);
  c = qt_connect(&t);
  qt_run_until(&t, qt_conn_handshaken, c, QT_WAIT_MS);
  id = qt_open_bidi(c);
  qt_write(c, id, 50000, 0);
  qt_run_until_writes(&t, &t.client, 1);
  ASSERT_EQ(1, t.client.writes_ok);

  kill_child(child_pid);
  child_pid = spawn_server(&t, &port);
  ASSERT_EQ(addr_port((struct sockaddr*) &t.server.addr), port);
  ASSERT_EQ(0, c->closed);
  qt_write(c, id, 1000, 1);
  qt_run_until_closed(&t, c);
  qt_assert_closed(c, UVQ_QUIC_ERROR_STATELESS_RESET, 0, 1, NULL);
  ASSERT_EQ(1, t.client.writes_canceled);
  kill_child_at_exit(&child_pid);
  qt_teardown(&t);
  return 0;
}
