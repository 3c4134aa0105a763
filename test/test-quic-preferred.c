/* The server's preferred address (RFC 9000, 9.6): a uvq server offers one,
 * a uvq client validates the path to it and moves there, and the
 * connection carries on. On loopback: the server listens on 0.0.0.0 and
 * prefers 127.0.0.2, another loopback address, on the same port. */
#include <string.h>

#include "quic-helpers.h"
#include "task.h"

#define PA_BYTES 200000
#define PA_ADDR "127.0.0.2"

static int client_at_preferred(void* arg) {
  qt_conn_t* c = arg;
  struct sockaddr_storage remote;
  char name[64];

  if (uvq_quic_conn_get_path(c->conn, NULL, &remote) != 0 ||
      remote.ss_family != AF_INET)
    return 0;
  uv_ip4_name((struct sockaddr_in*) &remote, name, sizeof(name));
  return strcmp(name, PA_ADDR) == 0;
}

/* The server's view: it moves to a path when it gets the highest-numbered
 * non-probing packet on it (RFC 9000, 9.3), which under load can come
 * after the stream's last bytes were delivered from an earlier packet. */
static int server_at_preferred(void* arg) {
  qt_conn_t* s = arg;
  struct sockaddr_storage local;
  char name[64];

  if (uvq_quic_conn_get_path(s->conn, &local, NULL) != 0 ||
      local.ss_family != AF_INET)
    return 0;
  uv_ip4_name((struct sockaddr_in*) &local, name, sizeof(name));
  return strcmp(name, PA_ADDR) == 0;
}

TEST_IMPL(quic_preferred_address) {
  struct sockaddr_storage local;
  struct sockaddr_storage remote;
  struct sockaddr_in preferred;
  uint16_t port;
  char name[64];
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;

  qt_init(&t, "0.0.0.0", PA_BYTES);
  /* Port 0: the endpoint's own, known once it is bound. */
  ASSERT_OK(uv_ip4_addr(PA_ADDR, 0, &preferred));
  t.server.cfg.preferred_address_ipv4 = &preferred;
  qt_start_server(&t);
  port = ((struct sockaddr_in*) &t.server.addr)->sin_port;
  ASSERT_OK(uv_ip4_addr("127.0.0.1", ntohs(port),
                        (struct sockaddr_in*) &t.server.addr));
  t.ip = "127.0.0.1";
  qt_start_client(&t);

  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 0);
  /* The client moves once the handshake is confirmed and the new path
   * answered its PATH_CHALLENGE. */
  qt_run_until(&t, client_at_preferred, c, QT_WAIT_MS);
  ASSERT_OK(uvq_quic_conn_get_path(c->conn, NULL, &remote));
  ASSERT_EQ(port, ((struct sockaddr_in*) &remote)->sin_port);

  /* Data after the move reaches the server at the preferred address. */
  id = qt_open_bidi(c);
  qt_write(c, id, PA_BYTES, 1);
  qt_run_until_fins(&t, s, 1);
  qt_assert_stream(s, id, PA_BYTES);
  qt_run_until(&t, server_at_preferred, s, QT_WAIT_MS);
  ASSERT_OK(uvq_quic_conn_get_path(s->conn, &local, NULL));
  uv_ip4_name((struct sockaddr_in*) &local, name, sizeof(name));
  ASSERT_STR_EQ(PA_ADDR, name);
  ASSERT_EQ(0, c->closed);
  ASSERT_EQ(0, s->closed);

  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, s);
  qt_teardown(&t);
  return 0;
}

/* A preferred address the endpoint could not receive at is refused: the
 * wrong family at creation, another port at bind. */
TEST_IMPL(quic_preferred_address_invalid) {
  uvq_quic_config_t cfg;
  uvq_quic_endpoint_t* ep;
  struct sockaddr_in6 v6;
  struct sockaddr_in v4;
  struct sockaddr_in any;
  uv_loop_t loop;

  ASSERT_OK(uv_loop_init(&loop));
  uvq_quic_config_default(&cfg);
  cfg.insecure_skip_verify = 1;
  ASSERT_OK(uv_ip6_addr("::1", 0, &v6));
  cfg.preferred_address_ipv4 = (const struct sockaddr_in*) (void*) &v6;
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new(&loop, &cfg, NULL, NULL, &ep));
  cfg.preferred_address_ipv4 = NULL;
  cfg.preferred_address_ipv6 = (const struct sockaddr_in6*) (void*) &v4;
  ASSERT_OK(uv_ip4_addr("127.0.0.2", 0, &v4));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_new(&loop, &cfg, NULL, NULL, &ep));

  cfg.preferred_address_ipv6 = NULL;
  ASSERT_OK(uv_ip4_addr("127.0.0.2", 4433, &v4));
  cfg.preferred_address_ipv4 = &v4;
  ASSERT_OK(uvq_quic_endpoint_new(&loop, &cfg, NULL, NULL, &ep));
  ASSERT_OK(uv_ip4_addr("0.0.0.0", 4434, &any));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_bind(ep, (struct sockaddr*) &any));
  /* Port 0 could be any port: not necessarily 4433. */
  ASSERT_OK(uv_ip4_addr("0.0.0.0", 0, &any));
  ASSERT_ERR(UV_EINVAL, uvq_quic_endpoint_bind(ep, (struct sockaddr*) &any));
  uvq_quic_endpoint_close(ep, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  ASSERT_OK(uv_loop_close(&loop));
  return 0;
}
