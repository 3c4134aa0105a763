/* HTTP/3 on sockets the application owns: a uvq_h3_t server and client
 * each given a uvq_udp_t the test bound itself (as an inherited or
 * socket-activated socket would be) with uvq_quic_endpoint_open() on
 * uvq_h3_endpoint(), in place of uvq_h3_listen() and the ephemeral bind of
 * uvq_h3_connect(). A request goes through on them, and after
 * uvq_h3_close() both sockets are the application's again: open, their
 * data pointers restored, and receiving what is sent to them
 * (qt_assert_udp_given_back). */
#include <string.h>

#include "quic-helpers.h"
#include "task.h"
#include "uvq/h3.h"

#define BODY "served on the application's socket"

typedef struct h3s_s {
  uv_loop_t loop;
  uvq_h3_t* server;
  uvq_h3_t* client;
  uvq_udp_t srv_udp;
  uvq_udp_t cli_udp;
  int srv_tag;          /* what the sockets' data pointed at before */
  int cli_tag;
  int requests;
  int status;
  size_t got;
  char body[64];
  uint64_t done_code;
  int dones;
  int connected;
  int h3_closed;
} h3s_t;

static h3s_t* state;

static void on_request(uvq_h3_req_t* req) {
  uvq_h3_body_t body;
  size_t len;
  const char* path;

  path = uvq_h3_req_path(req, &len);
  ASSERT_EQ(6, len);
  ASSERT_MEM_EQ("/owned", path, 6);
  state->requests++;
  memset(&body, 0, sizeof(body));
  body.kind = UVQ_H3_BODY_MEMORY;
  body.data = BODY;
  body.len = sizeof(BODY) - 1;
  ASSERT_OK(uvq_h3_respond(req, 200, NULL, 0, &body));
}

static void on_response(uvq_h3_req_t* req, int status) {
  (void) req;
  state->status = status;
}

static void on_body(uvq_h3_req_t* req, const uint8_t* data, size_t len) {
  (void) req;
  if (uvq_h3_req_h3(req) != state->client)
    return;
  ASSERT_LE(state->got + len, sizeof(state->body));
  memcpy(state->body + state->got, data, len);
  state->got += len;
}

static void on_done(uvq_h3_req_t* req, uint64_t app_error) {
  if (uvq_h3_req_h3(req) == state->client) {
    state->done_code = app_error;
    state->dones++;
  }
}

static void on_connected(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  uvq_h3_req_t* req;

  ASSERT_NULL(error);
  state->connected = 1;
  ASSERT_OK(uvq_h3_request(h3, "GET", NULL, NULL, "/owned", NULL, 0, NULL,
                           NULL, &req));
}

static void on_h3_closed(uvq_h3_t* h3) {
  (void) h3;
  state->h3_closed++;
}

TEST_IMPL(quic_h3_on_app_sockets) {
  uvq_quic_config_t qcfg;
  uvq_h3_callbacks_t cb;
  struct sockaddr_storage saddr;
  struct sockaddr_in any;
  uvq_quic_conn_stats_t st;
  qt_certs_t certs;
  h3s_t s;
  int namelen;
  int i;

  memset(&s, 0, sizeof(s));
  state = &s;
  qt_make_certs(&certs);
  ASSERT_OK(uv_loop_init(&s.loop));
  ASSERT_OK(uv_ip4_addr("127.0.0.1", 0, &any));
  ASSERT_OK(uvq_udp_init(&s.loop, &s.srv_udp));
  ASSERT_OK(uvq_udp_bind(&s.srv_udp, (struct sockaddr*) &any, 0));
  ASSERT_OK(uvq_udp_init(&s.loop, &s.cli_udp));
  ASSERT_OK(uvq_udp_bind(&s.cli_udp, (struct sockaddr*) &any, 0));
  s.srv_udp.data = &s.srv_tag;
  s.cli_udp.data = &s.cli_tag;
  namelen = sizeof(saddr);
  ASSERT_OK(uvq_udp_getsockname(&s.srv_udp, (struct sockaddr*) &saddr,
                                &namelen));

  memset(&cb, 0, sizeof(cb));
  cb.request = on_request;
  cb.response = on_response;
  cb.body = on_body;
  cb.done = on_done;
  cb.connected = on_connected;

  uvq_quic_config_default(&qcfg);
  qcfg.cert_file = certs.cert;
  qcfg.key_file = certs.key;
  ASSERT_OK(uvq_h3_server_new(&s.loop, &qcfg, NULL, &cb, NULL, &s.server));
  ASSERT_OK(uvq_quic_endpoint_open(uvq_h3_endpoint(s.server), &s.srv_udp));
  /* The socket is in use: listening on another is refused. */
  ASSERT_ERR(UV_EALREADY, uvq_h3_listen(s.server, (struct sockaddr*) &any));

  uvq_quic_config_default(&qcfg);
  qcfg.ca_file = certs.cert;
  ASSERT_OK(uvq_h3_client_new(&s.loop, &qcfg, NULL, &cb, NULL, &s.client));
  ASSERT_OK(uvq_quic_endpoint_open(uvq_h3_endpoint(s.client), &s.cli_udp));
  ASSERT_OK(uvq_h3_connect(s.client, (struct sockaddr*) &saddr, "localhost"));

  for (i = 0; i < 5000 && s.dones == 0; i++)
    uv_run(&s.loop, UV_RUN_ONCE);
  ASSERT_EQ(1, s.connected);
  ASSERT_EQ(1, s.requests);
  ASSERT_EQ(1, s.dones);
  ASSERT_EQ(UVQ_H3_NO_ERROR, s.done_code);
  ASSERT_EQ(200, s.status);
  ASSERT_EQ(sizeof(BODY) - 1, s.got);
  ASSERT_MEM_EQ(BODY, s.body, s.got);
  /* The connection ran between the two sockets the test bound. */
  ASSERT_OK(uvq_quic_conn_get_stats(uvq_h3_conn(s.client), &st));
  ASSERT_PTR_EQ(&s.cli_udp, uvq_quic_endpoint_udp(uvq_h3_endpoint(s.client)));
  ASSERT_PTR_EQ(&s.srv_udp, uvq_quic_endpoint_udp(uvq_h3_endpoint(s.server)));
  ASSERT_GT(st.packets_received, 0);

  uvq_h3_close(s.client, on_h3_closed);
  uvq_h3_close(s.server, on_h3_closed);
  for (i = 0; i < 1000 && s.h3_closed < 2; i++)
    uv_run(&s.loop, UV_RUN_ONCE);
  ASSERT_EQ(2, s.h3_closed);

  /* Given back: data restored, and each receives with the test's own
   * callbacks. */
  qt_assert_udp_given_back(&s.loop, &s.srv_udp, &s.srv_tag);
  qt_assert_udp_given_back(&s.loop, &s.cli_udp, &s.cli_tag);

  uvq_udp_close(&s.srv_udp, NULL);
  uvq_udp_close(&s.cli_udp, NULL);
  ASSERT_OK(uv_run(&s.loop, UV_RUN_DEFAULT));
  ASSERT_OK(uv_loop_close(&s.loop));
  state = NULL;
  return 0;
}
