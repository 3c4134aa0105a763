/* Handshakes: ALPN, certificate verification, QUIC versions, Retry and
 * the server's connection limit. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "quic-helpers.h"
#include "task.h"

/* TLS alerts (RFC 8446, 6), carried as CRYPTO_ERROR 0x100 + alert
 * (RFC 9001, 4.8). */
#define TLS_ALERT_BAD_CERTIFICATE 42
#define TLS_ALERT_NO_APPLICATION_PROTOCOL 120
#define QUIC_CRYPTO_ERROR(alert) (0x100u + (alert))
#define QUIC_NO_ERROR 0x0u
#define QUIC_CONNECTION_REFUSED 0x2u

/* A completed handshake, then an orderly application close from the
 * client so that both sides end with exactly one closed callback. */
static void close_client_and_wait(qt_t* t, qt_conn_t* c) {
  qt_conn_t* s = qt_server_conn(t, 0);

  t->in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t->in_api--;
  qt_run_until_closed(t, c);
  qt_run_until_closed(t, s);
  qt_assert_closed(c, UVQ_QUIC_ERROR_APPLICATION, 0, 0, NULL);
  qt_assert_closed(s, UVQ_QUIC_ERROR_APPLICATION, 0, 1, NULL);
}

static int closed_or_handshake(void* arg) {
  qt_conn_t* c = arg;
  return c->closed > 0 || c->handshakes > 0;
}

static void handshake_alpn(const char* ip) {
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  uvq_quic_endpoint_stats_t st;

  qt_init(&t, ip, 0);
  /* The server prefers h3 but also speaks uvq-test; the client offers
   * only uvq-test, so uvq-test is what both must report. */
  t.server.cfg.alpn = "h3," QT_ALPN;
  qt_start(&t);
  c = qt_connect(&t);
  ASSERT_NULL(uvq_quic_conn_alpn(c->conn, NULL));
  qt_run_handshake(&t, c);
  qt_run_for(&t, 100);
  s = qt_server_conn(&t, 0);
  ASSERT_EQ(1, t.server.accepts);
  ASSERT_EQ(1, t.server.nconns);
  ASSERT_EQ(1, c->handshakes);
  ASSERT_EQ(1, s->handshakes);
  ASSERT_EQ(0, c->alpn_null);
  ASSERT_EQ(0, s->alpn_null);
  ASSERT_STR_EQ(QT_ALPN, c->alpn);
  ASSERT_STR_EQ(QT_ALPN, s->alpn);
  ASSERT_EQ(1, uvq_quic_conn_is_server(s->conn));
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(1, st.connections_accepted);
  ASSERT_UINT_EQ(0, st.connections_refused);
  ASSERT_UINT_EQ(0, st.retries);
  {
    struct sockaddr_storage local;
    struct sockaddr_storage remote;
    ASSERT_OK(uvq_quic_conn_get_path(c->conn, &local, &remote));
    ASSERT_ADDR_EQ(&remote, &t.server.addr);
    ASSERT_OK(uvq_quic_conn_get_path(s->conn, &local, &remote));
    ASSERT_ADDR_EQ(&remote, &t.client.addr);
    ASSERT_ADDR_EQ(&local, &t.server.addr);
  }
  close_client_and_wait(&t, c);
  qt_teardown(&t);
}

TEST_IMPL(quic_handshake_alpn_ipv4) {
  handshake_alpn("127.0.0.1");
  return 0;
}

TEST_IMPL(quic_handshake_alpn_ipv6) {
  handshake_alpn("::1");
  return 0;
}

/* The server has no protocol the client offers: its TLS stack answers
 * no_application_protocol (RFC 9001, 8.1), which the server sends as a
 * CONNECTION_CLOSE with CRYPTO_ERROR 0x100 + 120. */
TEST_IMPL(quic_handshake_alpn_mismatch) {
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 0);
  t.client.cfg.alpn = "not-" QT_ALPN;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_until(&t, closed_or_handshake, c, QT_WAIT_MS);
  qt_run_for(&t, 100);
  if (c->handshakes != 0)
    test_fail(__FILE__, __LINE__,
              "the handshake completed without a common ALPN: client "
              "reports \"%s\"%s, server handshakes %u reports \"%s\"%s",
              c->alpn, c->alpn_null ? " (NULL)" : "",
              qt_server_conn(&t, 0)->handshakes, qt_server_conn(&t, 0)->alpn,
              qt_server_conn(&t, 0)->alpn_null ? " (NULL)" : "");
  /* wolfSSL lets the server's handshake flight go out without an ALPN
   * when its selection fails; the client, first to see the finished
   * handshake without one, refuses it (RFC 9001, 8.1) and tells the
   * server, which never completes its side. */
  qt_assert_closed(c, UVQ_QUIC_ERROR_TRANSPORT,
                   QUIC_CRYPTO_ERROR(TLS_ALERT_NO_APPLICATION_PROTOCOL), 0,
                   NULL);
  ASSERT_EQ(1, t.server.nconns);
  ASSERT_EQ(0, qt_server_conn(&t, 0)->handshakes);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  qt_assert_closed(qt_server_conn(&t, 0), UVQ_QUIC_ERROR_TRANSPORT,
                   QUIC_CRYPTO_ERROR(TLS_ALERT_NO_APPLICATION_PROTOCOL), 1,
                   NULL);
  qt_teardown(&t);
  return 0;
}

/* The client trusts another CA only: its TLS stack rejects the server's
 * certificate and the client closes with CRYPTO_ERROR 0x100 + alert. The
 * alert is bad_certificate (42): wolfSSL sends it for any failed chain
 * verification (it does not distinguish unknown_ca). */
TEST_IMPL(quic_handshake_wrong_ca) {
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;

  qt_init(&t, "127.0.0.1", 0);
  t.client.cfg.ca_file = t.certs.other_cert;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_until_closed(&t, c);
  ASSERT_EQ(0, c->handshakes);
  qt_assert_closed(c, UVQ_QUIC_ERROR_TRANSPORT,
                   QUIC_CRYPTO_ERROR(TLS_ALERT_BAD_CERTIFICATE), 0, NULL);
  ASSERT_EQ(1, t.server.nconns);
  s = qt_server_conn(&t, 0);
  qt_run_until_closed(&t, s);
  ASSERT_EQ(0, s->handshakes);
  qt_assert_closed(s, UVQ_QUIC_ERROR_TRANSPORT,
                   QUIC_CRYPTO_ERROR(TLS_ALERT_BAD_CERTIFICATE), 1, NULL);
  qt_teardown(&t);
  return 0;
}

/* An endpoint with a certificate (a server) that also connects out makes
 * its client TLS context at its first connect. Without ca_file that
 * context verifies against the system's trust store, which does not hold
 * the test CA: the server's certificate is refused with bad_certificate,
 * as with a wrong CA, so the check is in force. With ca_file the context
 * is made with the endpoint and the handshake completes. */
TEST_IMPL(quic_handshake_server_endpoint_connects) {
  qt_t t;
  qt_conn_t* c;
  int round;

  for (round = 0; round < 2; round++) {
    qt_init(&t, "127.0.0.1", 0);
    t.client.cfg.cert_file = t.certs.cert;
    t.client.cfg.key_file = t.certs.key;
    if (round == 0)
      t.client.cfg.ca_file = NULL;
    qt_start(&t);
    c = qt_connect(&t);
    if (round == 0) {
      qt_run_until_closed(&t, c);
      ASSERT_EQ(0, c->handshakes);
      qt_assert_closed(c, UVQ_QUIC_ERROR_TRANSPORT,
                       QUIC_CRYPTO_ERROR(TLS_ALERT_BAD_CERTIFICATE), 0, NULL);
    } else {
      qt_run_handshake(&t, c);
      ASSERT_EQ(1, c->handshakes);
      close_client_and_wait(&t, c);
    }
    qt_teardown(&t);
  }
  return 0;
}

/* The same wrong CA with insecure_skip_verify: the handshake completes. */
TEST_IMPL(quic_handshake_insecure_skip_verify) {
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 0);
  t.client.cfg.ca_file = t.certs.other_cert;
  t.client.cfg.insecure_skip_verify = 1;
  qt_start(&t);
  c = qt_connect_name(&t, "name-not-in-the-certificate");
  qt_run_handshake(&t, c);
  ASSERT_EQ(1, c->handshakes);
  ASSERT_STR_EQ(QT_ALPN, c->alpn);
  close_client_and_wait(&t, c);
  qt_teardown(&t);
  return 0;
}

/* The certificate is valid for localhost and 127.0.0.1 only; a client
 * that asks for another name must refuse it. */
TEST_IMPL(quic_handshake_server_name_mismatch) {
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 0);
  qt_start(&t);
  c = qt_connect_name(&t, "name-not-in-the-certificate");
  qt_run_until_closed(&t, c);
  ASSERT_EQ(0, c->handshakes);
  ASSERT_EQ(UVQ_QUIC_ERROR_TRANSPORT, c->error.kind);
  ASSERT_EQ(0, c->error.remote);
  ASSERT_UINT_EQ(QUIC_CRYPTO_ERROR(TLS_ALERT_BAD_CERTIFICATE),
                 c->error.code);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  ASSERT_EQ(0, qt_server_conn(&t, 0)->handshakes);
  qt_teardown(&t);
  return 0;
}

static void handshake_version(uint32_t server_pref, uint32_t client_pref,
                              uint32_t want) {
  uvq_quic_conn_stats_t st;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;

  qt_init(&t, "127.0.0.1", 100000);
  t.server.cfg.preferred_version = server_pref;
  t.client.cfg.preferred_version = client_pref;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 0);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &st));
  ASSERT_UINT_EQ(want, st.version);
  ASSERT_OK(uvq_quic_conn_get_stats(s->conn, &st));
  ASSERT_UINT_EQ(want, st.version);
  /* Data still flows under the negotiated version. */
  qt_write(c, qt_open_bidi(c), 100000, 1);
  qt_run_until_fins(&t, s, 1);
  qt_assert_stream(s, 0, 100000);
  close_client_and_wait(&t, c);
  qt_teardown(&t);
}

TEST_IMPL(quic_handshake_v2) {
  handshake_version(UVQ_QUIC_V2, UVQ_QUIC_V2, UVQ_QUIC_V2);
  return 0;
}

TEST_IMPL(quic_handshake_v1_default) {
  handshake_version(0, 0, UVQ_QUIC_V1);
  return 0;
}

/* A client whose first Initial is v2 (uvq_quic_connect_opts_t.quic_version)
 * ends on the server's preferred version: v2 as it started, or switched
 * to v1 by a server that prefers v1 (RFC 9368, 4). */
static void initial_version(uint32_t server_pref, uint32_t want) {
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_stats_t st;
  uvq_quic_conn_t* conn;
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 20000);
  t.server.cfg.preferred_version = server_pref;
  qt_start(&t);
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  /* Neither version: refused before anything is sent. */
  opts.quic_version = 0xff00001d;
  t.in_api++;
  ASSERT_ERR(UV_EINVAL, uvq_quic_connect(t.client.ep,
                                         (struct sockaddr*) &t.server.addr,
                                         &opts, NULL, &conn));
  t.in_api--;
  opts.quic_version = UVQ_QUIC_V2;
  c = qt_connect_opts(&t, &opts);
  qt_run_handshake(&t, c);
  ASSERT_OK(uvq_quic_conn_get_stats(c->conn, &st));
  ASSERT_UINT_EQ(want, st.version);
  ASSERT_OK(uvq_quic_conn_get_stats(qt_server_conn(&t, 0)->conn, &st));
  ASSERT_UINT_EQ(want, st.version);
  qt_write(c, qt_open_bidi(c), 20000, 1);
  qt_run_until_fins(&t, qt_server_conn(&t, 0), 1);
  qt_assert_stream(qt_server_conn(&t, 0), 0, 20000);
  close_client_and_wait(&t, c);
  qt_teardown(&t);
}

TEST_IMPL(quic_handshake_initial_v2) {
  initial_version(UVQ_QUIC_V2, UVQ_QUIC_V2);
  initial_version(UVQ_QUIC_V1, UVQ_QUIC_V1);
  return 0;
}

/* The server requires address validation: exactly one Retry, then the
 * handshake completes with the token. */
TEST_IMPL(quic_handshake_retry) {
  uvq_quic_endpoint_stats_t st;
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 5000);
  t.server.cfg.require_address_validation = 1;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(1, st.retries);
  ASSERT_UINT_EQ(1, st.connections_accepted);
  ASSERT_EQ(1, t.server.accepts);
  qt_write(c, qt_open_bidi(c), 5000, 1);
  qt_run_until_fins(&t, qt_server_conn(&t, 0), 1);
  qt_assert_stream(qt_server_conn(&t, 0), 0, 5000);
  close_client_and_wait(&t, c);
  qt_teardown(&t);
  return 0;
}

static int two_handshakes(void* arg) {
  qt_t* t = arg;
  return t->client.nconns >= 2 && t->client.conns[0]->handshakes == 1 &&
         t->client.conns[1]->handshakes == 1;
}

/* max_connections 2: a third client is refused statelessly with
 * CONNECTION_REFUSED; the first two are unaffected. */
TEST_IMPL(quic_handshake_conn_limit) {
  uvq_quic_endpoint_stats_t st;
  qt_t t;
  qt_conn_t* c[3];
  int i;

  qt_init(&t, "127.0.0.1", 0);
  t.server.cfg.max_connections = 2;
  qt_start(&t);
  c[0] = qt_connect(&t);
  c[1] = qt_connect(&t);
  qt_run_until(&t, two_handshakes, &t, QT_WAIT_MS);
  c[2] = qt_connect(&t);
  qt_run_until_closed(&t, c[2]);
  ASSERT_EQ(0, c[2]->handshakes);
  qt_assert_closed(c[2], UVQ_QUIC_ERROR_TRANSPORT, QUIC_CONNECTION_REFUSED, 1,
                   NULL);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(1, st.connections_refused);
  ASSERT_UINT_EQ(2, st.connections_accepted);
  ASSERT_EQ(2, t.server.accepts);
  ASSERT_EQ(2, t.server.nconns);
  for (i = 0; i < 2; i++) {
    ASSERT_EQ(0, c[i]->closed);
    t.in_api++;
    ASSERT_OK(uvq_quic_conn_close(c[i]->conn, 7, NULL));
    t.in_api--;
  }
  for (i = 0; i < 2; i++) {
    qt_run_until_closed(&t, c[i]);
    qt_run_until_closed(&t, qt_server_conn(&t, (unsigned int) i));
    qt_assert_closed(qt_server_conn(&t, (unsigned int) i),
                     UVQ_QUIC_ERROR_APPLICATION, 7, 1, NULL);
  }
  qt_teardown(&t);
  return 0;
}

/* The accept callback refuses: the client is told CONNECTION_REFUSED and
 * the server never reports the connection again. */
TEST_IMPL(quic_handshake_accept_refused) {
  uvq_quic_endpoint_stats_t st;
  qt_t t;
  qt_conn_t* c;

  qt_init(&t, "127.0.0.1", 0);
  qt_start(&t);
  t.server.refuse = 1;
  c = qt_connect(&t);
  qt_run_until_closed(&t, c);
  qt_assert_closed(c, UVQ_QUIC_ERROR_TRANSPORT, QUIC_CONNECTION_REFUSED, 1,
                   NULL);
  ASSERT_EQ(1, t.server.accepts);
  ASSERT_EQ(0, t.server.nconns);
  ASSERT_OK(uvq_quic_endpoint_get_stats(t.server.ep, &st));
  ASSERT_UINT_EQ(1, st.connections_refused);
  ASSERT_UINT_EQ(0, st.connections_accepted);
  qt_teardown(&t);
  return 0;
}

/* The client random of each CLIENT_HANDSHAKE_TRAFFIC_SECRET line of an
 * NSS key log file (64 hex digits each, in order); returns the count. */
static unsigned int keylog_randoms(const char* path, char out[][65],
                                   unsigned int max) {
  static const char label[] = "CLIENT_HANDSHAKE_TRAFFIC_SECRET ";
  char line[512];
  unsigned int n;
  FILE* f;

  f = fopen(path, "r");
  ASSERT_NOT_NULL(f);
  n = 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (strncmp(line, label, sizeof(label) - 1) != 0)
      continue;
    ASSERT_LT(n, max);
    memcpy(out[n], line + sizeof(label) - 1, 64);
    out[n][64] = '\0';
    n++;
  }
  fclose(f);
  return n;
}

/* A forked child and its parent must not draw the same random bytes from
 * an endpoint's TLS context they both hold (with a wolfSSL that shares one
 * generator per context, quic/tls.c reseeds it after a fork): the first
 * handshake seeds the client's context, then the child and the parent make
 * one handshake each, one after the other, and all three ClientHello
 * randoms (from the client's key log) differ. */
TEST_IMPL(quic_handshake_fork_random) {
  char randoms[4][65];
  char keylog[256];
  qt_conn_t* c;
  int status;
  pid_t pid;
  qt_t t;

  qt_init(&t, "127.0.0.1", 0);
  snprintf(keylog, sizeof(keylog), "%s/keylog", t.certs.dir);
  t.client.cfg.keylog_file = keylog;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);

  pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    /* The child has both endpoints' sockets to itself while the parent
     * waits; it leaves without closing anything. */
    alarm(20);
    if (uv_loop_fork(&t.loop) != 0)
      _exit(2);
    c = qt_connect(&t);
    qt_run_handshake(&t, c);
    _exit(0);
  }
  ASSERT_EQ(pid, waitpid(pid, &status, 0));
  ASSERT(WIFEXITED(status));
  ASSERT_EQ(0, WEXITSTATUS(status));
  c = qt_connect(&t);
  qt_run_handshake(&t, c);

  ASSERT_UINT_EQ(3, keylog_randoms(keylog, randoms, 4));
  ASSERT_NE(0, strcmp(randoms[0], randoms[1]));
  ASSERT_NE(0, strcmp(randoms[0], randoms[2]));
  ASSERT_NE(0, strcmp(randoms[1], randoms[2]));
  qt_teardown(&t);
  return 0;
}
