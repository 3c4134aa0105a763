/* Hostile input and API misuse: random and mutated datagrams at a
 * listening server, every argument error the header promises, and
 * connection migration. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include "quic-helpers.h"
#include "task.h"

#define JUNK_DATAGRAMS 10000

static uint64_t next_rand(uint64_t* state) {
  uint64_t z;

  *state += 0x9e3779b97f4a7c15ULL;
  z = *state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void send_retrying(qt_t* t, test_peer_t* peer,
                          const struct sockaddr* to, const uint8_t* data,
                          size_t len) {
  int rc;
  int tries;

  for (tries = 0; tries < 1000; tries++) {
    rc = peer_send(peer, to, data, len, 0);
    if (rc == 1)
      return;
    ASSERT_ERR(UV_EAGAIN, rc);
    uv_run(&t->loop, UV_RUN_NOWAIT);
  }
  FATAL("the raw socket stayed full");
}

/* Captures the Initial a real client sends, by connecting it to the raw
 * socket instead of the server. */
static void capture_initial(qt_t* t, test_peer_t* peer, uint8_t* buf,
                            size_t* len) {
  qt_conn_t* c;
  struct sockaddr_storage saved;

  saved = t->server.addr;
  t->server.addr = peer->name;
  c = qt_connect(t);
  t->server.addr = saved;
  run_until_rx(&t->loop, peer, 1);
  ASSERT_EQ(1200, peer->rx[0].nread);
  ASSERT_BITS_SET(peer->rx[0].data[0], 0xc0);
  memcpy(buf, peer->rx[0].data, 1200);
  *len = 1200;
  /* UVQ_TEST_DUMP_INITIAL=file keeps it, e.g. as a fuzzing seed. */
  if (getenv("UVQ_TEST_DUMP_INITIAL") != NULL) {
    FILE* f = fopen(getenv("UVQ_TEST_DUMP_INITIAL"), "wb");
    ASSERT_NOT_NULL(f);
    ASSERT_EQ(1, fwrite(buf, 1200, 1, f));
    fclose(f);
  }
  t->in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t->in_api--;
  qt_run_until_closed(t, c);
}

TEST_IMPL(quic_robust_random_datagrams) {
  uvq_quic_endpoint_stats_t st;
  uint8_t initial[1200];
  uint8_t pkt[1500];
  size_t initial_len;
  size_t len;
  size_t k;
  uint64_t seed = 424242;
  test_peer_t peer;
  qt_t t;
  qt_conn_t* c;
  unsigned int i;
  unsigned int accepted_before;

  qt_init(&t, "127.0.0.1", 100000);
  qt_start(&t);
  peer_init(&t.loop, &peer);
  peer_bind(&peer, "127.0.0.1", 0);
  peer_start(&peer);
  capture_initial(&t, &peer, initial, &initial_len);

  for (i = 0; i < JUNK_DATAGRAMS; i++) {
    switch (i % 4) {
      case 0: /* Random bytes of a random length. */
        len = 1 + next_rand(&seed) % 1500;
        for (k = 0; k < len; k++)
          pkt[k] = (uint8_t) next_rand(&seed);
        break;
      case 1: /* A real Initial with a few bytes changed, maybe cut. */
        memcpy(pkt, initial, initial_len);
        len = initial_len;
        for (k = 1 + next_rand(&seed) % 8; k > 0; k--)
          pkt[next_rand(&seed) % len] ^= (uint8_t) (1 + next_rand(&seed) % 255);
        if (next_rand(&seed) % 4 == 0)
          len = 1 + next_rand(&seed) % len;
        break;
      case 2: /* A v1 long header with random CID lengths (some over 20). */
        len = 1200 + next_rand(&seed) % 301;
        for (k = 0; k < len; k++)
          pkt[k] = (uint8_t) next_rand(&seed);
        pkt[0] |= 0xc0;
        pkt[1] = 0;
        pkt[2] = 0;
        pkt[3] = 0;
        pkt[4] = 1;
        pkt[5] = (uint8_t) (next_rand(&seed) % 24);
        break;
      default: /* A short header for no connection. */
        len = 1 + next_rand(&seed) % 1500;
        for (k = 0; k < len; k++)
          pkt[k] = (uint8_t) next_rand(&seed);
        pkt[0] = (uint8_t) ((pkt[0] & 0x3f) | 0x40);
        break;
    }
    send_retrying(&t, &peer, (struct sockaddr*) &t.server.addr, pkt, len);
    if (i % 64 == 0)
      uv_run(&t.loop, UV_RUN_NOWAIT);
  }
  qt_run_for(&t, 300);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  fprintf(stderr,
          "after %d datagrams: dropped %" PRIu64 " accepted %" PRIu64
          " refused %" PRIu64 " resets %" PRIu64 " vn %" PRIu64
          " replies seen %u\n",
          JUNK_DATAGRAMS, st.packets_dropped, st.connections_accepted,
          st.connections_refused, st.stateless_resets,
          st.version_negotiations, peer.nrx);
  ASSERT_UINT_GE(st.packets_dropped, JUNK_DATAGRAMS / 4);

  /* A real client still gets through and transfers data. */
  accepted_before = t.server.nconns;
  c = qt_connect(&t);
  qt_run_until(&t, qt_conn_handshaken, c, QT_WAIT_MS);
  qt_write(c, qt_open_bidi(c), 100000, 1);
  qt_run_until_writes(&t, &t.client, 1);
  {
    /* The server connection is the one created after the junk with a
     * handshake done. */
    qt_conn_t* s = NULL;
    unsigned int n;
    for (n = accepted_before; n < t.server.nconns; n++)
      if (t.server.conns[n]->handshakes == 1)
        s = t.server.conns[n];
    ASSERT_NOT_NULL(s);
    qt_assert_stream(s, 0, 100000);
  }
  ASSERT_EQ(1, t.client.writes_ok);
  peer_close(&peer);
  qt_teardown(&t);
  peer_finish(&peer);
  return 0;
}

/* Found by fuzz-quic-endpoint: a 108-byte long-header packet with
 * version 0 (the form of a Version Negotiation packet) and a 32-byte DCID.
 * A server must drop it (a server never receives Version Negotiation, and
 * RFC 9000, 17.2 caps v1 CIDs at 20 bytes); it must neither crash nor
 * answer. */
TEST_IMPL(quic_robust_version0_long_cid) {
  uvq_quic_endpoint_stats_t st;
  uint8_t pkt[108];
  test_peer_t peer;
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 1000);
  qt_start(&t);
  peer_init(&t.loop, &peer);
  peer_bind(&peer, "127.0.0.1", 0);
  peer_start(&peer);
  memset(pkt, 0, sizeof(pkt));
  pkt[0] = 0xf5;
  pkt[5] = 0x20;
  peer_send_ok(&peer, (struct sockaddr*) &t.server.addr, pkt, sizeof(pkt), 0);
  qt_run_for(&t, 100);
  ASSERT_EQ(0, peer.nrx);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(1, st.packets_dropped);
  ASSERT_UINT_EQ(0, st.stateless_resets);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  peer_close(&peer);
  qt_teardown(&t);
  peer_finish(&peer);
  return 0;
}

static void never_write_cb(uvq_quic_write_t* req, int status) {
  FATAL("a write that failed must not call back");
}

/* Every error the header promises for misuse, with no side effects. */
TEST_IMPL(quic_api_errors) {
  uvq_quic_endpoint_stats_t est;
  uvq_quic_conn_stats_t cst;
  uvq_quic_callbacks_t cb;
  uvq_quic_config_t cfg;
  uvq_quic_connect_opts_t opts;
  uvq_quic_endpoint_t* ep;
  uvq_quic_conn_t* conn;
  uvq_quic_write_t req;
  struct sockaddr_storage addr;
  struct sockaddr_storage v6;
  uint8_t byte = 1;
  uv_buf_t buf;
  qt_t t;
  qt_conn_t* c;
  int64_t id;

  qt_init(&t, "127.0.0.1", 1000);
  memset(&cb, 0, sizeof(cb));
  uvq_quic_config_default(&cfg);
  ASSERT_EQ(UVQ_QUIC_CONFIG_VERSION, cfg.version);
  ASSERT_EQ(1, cfg.ecn);
  ASSERT_EQ(1, cfg.gso);

  /* uvq_quic_endpoint_new. */
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new(NULL, &cfg, &cb, NULL, &ep));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, NULL, &cb, NULL, &ep));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, &cfg, &cb, NULL, NULL));
  /* Struct versions newer than the library's are refused, whichever. */
  cfg.version = UVQ_QUIC_CONFIG_VERSION + 1;
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, &cfg, &cb, NULL, &ep));
  cfg.version = 0;
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, &cfg, &cb, NULL, &ep));
  uvq_quic_config_default(&cfg);
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_endpoint_new_versioned(&t.loop, &cfg,
                                             UVQ_QUIC_CALLBACKS_VERSION + 1,
                                             &cb, NULL, &ep));
  /* A version 1 layout (no tls_ciphersuites after alpn) is read as such. */
  {
    uvq_quic_config_t* v1 = malloc(sizeof(*v1));
    ASSERT_NOT_NULL(v1);
    uvq_quic_config_default_versioned(1, v1);
    ASSERT_EQ(1, v1->version);
    ASSERT_OK(uvq_quic_endpoint_new(&t.loop, v1, &cb, NULL, &ep));
    uvq_quic_endpoint_close(ep, NULL);
    free(v1);
  }
  /* A version 4 struct ends before the worker fields: the library writes
   * and reads no further (the sanitizer build would catch it), and the
   * workers come out at their defaults. */
  {
    size_t v4size = offsetof(uvq_quic_config_t, worker_index);
    unsigned char* v4 = malloc(v4size);
    unsigned int version;
    ASSERT_NOT_NULL(v4);
    uvq_quic_config_default_versioned(4, (uvq_quic_config_t*) (void*) v4);
    memcpy(&version, v4, sizeof(version));
    ASSERT_EQ(4, version);
    ASSERT_OK(uvq_quic_endpoint_new(&t.loop, (uvq_quic_config_t*) (void*) v4,
                                    &cb, NULL, &ep));
    uvq_quic_endpoint_close(ep, NULL);
    free(v4);
  }
  cfg.cert_file = t.certs.cert; /* a certificate without its key */
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, &cfg, &cb, NULL, &ep));
  cfg.key_file = "/nonexistent/key.pem";
  ASSERT_ERR(UV_EIO, uvq_quic_endpoint_new(&t.loop, &cfg, &cb, NULL, &ep));
  uvq_quic_config_default(&cfg);
  cfg.ca_file = "/nonexistent/ca.pem";
  ASSERT_ERR(UV_EIO, uvq_quic_endpoint_new(&t.loop, &cfg, &cb, NULL, &ep));
  uvq_quic_config_default(&cfg);
  cfg.alpn = ",";
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new(&t.loop, &cfg, &cb, NULL, &ep));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_get_stats(NULL, &est));

  /* uvq_quic_connect before bind, then bind errors. */
  ASSERT_OK(qt_side_new(&t, &t.client, 0));
  make_addr(&addr, "127.0.0.1", 4433);
  conn = NULL;
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  ASSERT_ERR(UV_EBADF,
             uvq_quic_connect(t.client.ep, (struct sockaddr*) &addr, &opts,
                              NULL, &conn));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION + 1;
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_connect(t.client.ep, (struct sockaddr*) &addr, &opts,
                              NULL, &conn));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  /* Verifying certificates needs a name to check them against. */
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_connect(t.client.ep, (struct sockaddr*) &addr, NULL,
                              NULL, &conn));
  opts.server_name = NULL;
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_connect(t.client.ep, (struct sockaddr*) &addr, &opts,
                              NULL, &conn));
  opts.server_name = "localhost";
  ASSERT_NULL(conn);
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_bind(NULL, (struct sockaddr*) &addr));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_bind(t.client.ep, NULL));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_get_stats(t.client.ep, NULL));
  qt_close_side(&t.client);
  finish_loop(&t.loop);
  ASSERT_EQ(1, t.client.close_cbs);
  ASSERT_OK(uv_loop_init(&t.loop));
  t.client.ep = NULL;
  t.client.closing = 0;
  t.client.close_cbs = 0;

  qt_start(&t);
  ASSERT_ERR(UV_EALREADY,
             uvq_quic_endpoint_bind(t.client.ep,
                                    (struct sockaddr*) &t.client.addr));
  /* Family mismatch: an IPv4 endpoint cannot reach ::1. */
  make_addr(&v6, "::1", addr_port((struct sockaddr*) &t.server.addr));
  ASSERT_ERR(UV_EAFNOSUPPORT,
             uvq_quic_connect(t.client.ep, (struct sockaddr*) &v6, &opts, NULL,
                              &conn));
  ASSERT_ERR(UV_EINVAL, uvq_quic_connect(NULL, (struct sockaddr*) &t.server.addr,
                                         NULL, NULL, &conn));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_connect(t.client.ep, NULL, NULL, NULL, &conn));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_connect(t.client.ep, (struct sockaddr*) &t.server.addr,
                              NULL, NULL, NULL));
  memset(&opts, 0, sizeof(opts));
  opts.version = 99;
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_connect(t.client.ep, (struct sockaddr*) &t.server.addr,
                              &opts, NULL, &conn));

  c = qt_connect(&t);
  qt_run_handshake(&t, c);

  /* Connection calls with NULL. */
  ASSERT_ERR(UV_EINVAL, uvq_quic_conn_close(NULL, 0, NULL));
  ASSERT_ERR(UV_EINVAL, uvq_quic_conn_get_stats(NULL, &cst));
  ASSERT_ERR(UV_EINVAL, uvq_quic_conn_get_stats(c->conn, NULL));
  ASSERT_ERR(UV_EINVAL, uvq_quic_conn_get_path(NULL, &addr, &addr));
  ASSERT_ERR(UV_EINVAL, uvq_quic_conn_update_key(NULL));
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_open(NULL, 1, &id));
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_open(c->conn, 1, NULL));
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_consume(NULL, 0, 1));
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_shutdown(NULL, 0, 1, 0));
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_set_data(NULL, 0, NULL));
  ASSERT_NULL(uvq_quic_stream_get_data(NULL, 0));
  ASSERT_ERR(UV_EINVAL, uvq_quic_datagram_send(NULL, NULL, 0, NULL));
  ASSERT_ERR(UV_EINVAL, uvq_quic_datagram_send(c->conn, NULL, 1, NULL));

  /* Writes. */
  buf = uv_buf_init((char*) &byte, 1);
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_write(NULL, c->conn, 0, &buf, 1, 0,
                                              never_write_cb));
  ASSERT_ERR(UV_EINVAL,
             uvq_quic_stream_write(&req, NULL, 0, &buf, 1, 0, never_write_cb));
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_write(&req, c->conn, 0, &buf, 1, 0,
                                              NULL));
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_write(&req, c->conn, 0, NULL, 1, 0,
                                              never_write_cb));
  /* Nothing to write and no FIN. */
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_write(&req, c->conn, 0, &buf, 0, 0,
                                              never_write_cb));
  /* Unknown streams: never opened, and a server-initiated one. */
  ASSERT_ERR(UV_ENOENT, uvq_quic_stream_write(&req, c->conn, 8, &buf, 1, 0,
                                              never_write_cb));
  ASSERT_ERR(UV_ENOENT, uvq_quic_stream_write(&req, c->conn, 1, &buf, 1, 0,
                                              never_write_cb));
  ASSERT_ERR(UV_ENOENT, uvq_quic_stream_shutdown(c->conn, 8, 1, 0));
  ASSERT_ERR(UV_ENOENT, uvq_quic_stream_set_data(c->conn, 8, &byte));
  ASSERT_NULL(uvq_quic_stream_get_data(c->conn, 8));
  /* Stream user data round trip. */
  id = qt_open_bidi(c);
  ASSERT_EQ(0, id);
  ASSERT_OK(uvq_quic_stream_set_data(c->conn, id, &byte));
  ASSERT_PTR_EQ(&byte, uvq_quic_stream_get_data(c->conn, id));
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_shutdown(c->conn, id, 0, 0));
  ASSERT_ERR(UV_EINVAL, uvq_quic_stream_shutdown(c->conn, id, 4, 0));
  /* Write after FIN. */
  qt_write(c, id, 10, 1);
  ASSERT_ERR(UV_EPIPE, uvq_quic_stream_write(&req, c->conn, id, &buf, 1, 0,
                                             never_write_cb));
  ASSERT_ERR(UV_EPIPE, uvq_quic_stream_write(&req, c->conn, id, NULL, 0, 1,
                                             never_write_cb));
  /* Write after a reset of the sending side. */
  id = qt_open_bidi(c);
  ASSERT_OK(uvq_quic_stream_shutdown(c->conn, id, UVQ_QUIC_SHUT_WRITE, 9));
  ASSERT_ERR(UV_EPIPE, uvq_quic_stream_write(&req, c->conn, id, &buf, 1, 0,
                                             never_write_cb));
  qt_run_until_fins(&t, qt_server_conn(&t, 0), 1);
  qt_run_until_writes(&t, &t.client, 1);
  ASSERT_EQ(1, t.client.writes_ok);
  qt_run_for(&t, 50);
  ASSERT_EQ(1, qt_stream(qt_server_conn(&t, 0), id)->resets);
  ASSERT_UINT_EQ(9, qt_stream(qt_server_conn(&t, 0), id)->reset_code);

  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  /* After close, before the callback: no new work. */
  ASSERT_ERR(UV_EPIPE, uvq_quic_stream_write(&req, c->conn, 0, &buf, 1, 0,
                                             never_write_cb));
  ASSERT_ERR(UV_EPIPE, uvq_quic_datagram_send(c->conn, &buf, 1, NULL));
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  qt_teardown(&t);
  return 0;
}

/* uvq_quic_conn_update_key before the handshake is confirmed: UV_EAGAIN,
 * and again right after the handshake completed on the client (the
 * server's HANDSHAKE_DONE confirms it a moment later). */
TEST_IMPL(quic_api_key_update_early) {
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 0);
  qt_start(&t);
  c = qt_connect(&t);
  ASSERT_ERR(UV_EAGAIN, uvq_quic_conn_update_key(c->conn));
  qt_run_handshake(&t, c);
  qt_run_for(&t, 50);
  ASSERT_OK(uvq_quic_conn_update_key(c->conn));
  ASSERT_ERR(UV_EAGAIN, uvq_quic_conn_update_key(c->conn));
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  qt_teardown(&t);
  return 0;
}

/* The client moves to a new local port mid-connection; the transfer
 * continues on the new path. */
TEST_IMPL(quic_migrate) {
  struct sockaddr_storage before;
  struct sockaddr_storage after;
  struct sockaddr_storage local;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;
  int64_t id2;

  qt_init(&t, "127.0.0.1", 200000);
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 0);
  id = qt_open_bidi(c);
  qt_write(c, id, 100000, 0);
  qt_run_until_writes(&t, &t.client, 1);
  ASSERT_OK(uvq_quic_conn_get_path(c->conn, &before, NULL));
  make_addr(&local, "127.0.0.1", 0);
  ASSERT_OK(uvq_quic_conn_migrate(c->conn, (struct sockaddr*) &local));
  qt_write(c, id, 100000, 1);
  qt_run_until_fins(&t, s, 1);
  qt_assert_stream(s, id, 200000);
  ASSERT_OK(uvq_quic_conn_get_path(c->conn, &after, NULL));
  ASSERT_NE(addr_port((struct sockaddr*) &before),
            addr_port((struct sockaddr*) &after));
  /* The server moves to the client's new path when a non-probing packet
   * arrives on it (RFC 9000, 9.3); the data may all have gone before the
   * path was validated, so the client sends once more. */
  id2 = qt_open_bidi(c);
  qt_write(c, id2, 10, 1);
  qt_run_until_fins(&t, s, 2);
  qt_assert_stream(s, id2, 10);
  ASSERT_OK(uvq_quic_conn_get_path(s->conn, NULL, &local));
  ASSERT_ADDR_EQ(&local, &after);
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, s);
  qt_teardown(&t);
  return 0;
}

/* A seccomp filter that makes getrandom(2) fail with EIO, the way a
 * sandbox that forbids it (or a kernel without an entropy source) does;
 * everything else is allowed. The test process is the test's own, so the
 * filter dies with it. */
static int refuse_getrandom(void) {
#if defined(__linux__) && defined(__x86_64__) && defined(__NR_getrandom)
  struct sock_filter code[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_getrandom, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EIO & SECCOMP_RET_DATA)),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  struct sock_fprog prog = {(unsigned short) (sizeof(code) / sizeof(code[0])),
                            code};

  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
    return -1;
  return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
#else
  return -1;
#endif
}

static void on_ep_closed_count(uvq_quic_endpoint_t* ep) {
  (*(int*) uvq_quic_endpoint_get_data(ep))++;
}

/* Without random bytes from the kernel the library returns uv_random's
 * error instead of aborting the process. The thread's pool of random bytes
 * (filled before the filter, by the first endpoint) still serves a few new
 * endpoints; once it is used up, a new endpoint fails with the error, and
 * so does a new connection; the endpoints made before still close
 * normally. */
#define NO_RANDOM_MAX_EPS 64

TEST_IMPL(quic_api_no_random) {
  struct sockaddr_in addr;
  uvq_quic_config_t cfg;
  uvq_quic_connect_opts_t opts;
  uvq_quic_endpoint_t* eps[NO_RANDOM_MAX_EPS];
  uvq_quic_conn_t* conn;
  uv_loop_t loop;
  uint8_t buf[16];
  int rand_err;
  int closed;
  int neps;
  int err;

  ASSERT_OK(uv_loop_init(&loop));
  uvq_quic_config_default(&cfg);
  cfg.insecure_skip_verify = 1;
  cfg.alpn = "uvq-test";
  closed = 0;
  neps = 0;
  ASSERT_OK(uvq_quic_endpoint_new(&loop, &cfg, NULL, &closed, &eps[neps++]));
  ASSERT_OK(uv_ip4_addr("127.0.0.1", 0, &addr));
  ASSERT_OK(uvq_quic_endpoint_bind(eps[0], (const struct sockaddr*) &addr));

  if (refuse_getrandom() != 0) {
    uvq_quic_endpoint_close(eps[0], on_ep_closed_count);
    uv_run(&loop, UV_RUN_DEFAULT);
    RETURN_SKIP("no seccomp filter here (x86_64 Linux only)");
  }
  /* The condition is real: uv_random fails. (libuv 1.44 reports the
   * refused getrandom as UV_ENOSYS; whichever error it is, uvq passes it
   * on.) */
  rand_err = uv_random(NULL, NULL, buf, sizeof(buf), 0, NULL);
  ASSERT_LT(rand_err, 0);

  do {
    err = uvq_quic_endpoint_new(&loop, &cfg, NULL, &closed, &eps[neps]);
    if (err == 0)
      neps++;
  } while (err == 0 && neps < NO_RANDOM_MAX_EPS);
  ASSERT_ERR(rand_err, err);
  ASSERT_GT(neps, 1);

  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  ASSERT_OK(uv_ip4_addr("127.0.0.1", 9, &addr));
  ASSERT_ERR(rand_err, uvq_quic_connect(eps[0], (const struct sockaddr*) &addr,
                                        &opts, NULL, &conn));

  for (err = 0; err < neps; err++)
    uvq_quic_endpoint_close(eps[err], on_ep_closed_count);
  ASSERT_OK(uv_run(&loop, UV_RUN_DEFAULT));
  ASSERT_EQ(neps, closed);
  ASSERT_OK(uv_loop_close(&loop));
  return 0;
}
