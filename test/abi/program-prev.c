/* A program compiled against the headers of the previous landing
 * (test/abi/prev/, copied unchanged from commit f10495d; replace them with
 * the landed headers when a change to include/ lands), run against the
 * library of this tree: what the ABI promised last time still holds.
 *
 * It uses that header's layouts: uvq_udp_try_send_batch() and
 * uvq_udp_send_batch() with flags; uvq_quic_config_t at version 5 (retry
 * and the worker fields), uvq_h3_config_t at version 3, the connect
 * options at version 4 (quic_version). It moves datagrams over loopback,
 * serves one HTTP/3 request through a Retry, and makes a raw QUIC
 * handshake that starts in QUIC v2; every step is checked, and it prints
 * "ok" at the end. argv[1] and argv[2]: a certificate and key for
 * "localhost". */

#include "uvq/h3.h"
#include "program-common.h"

static void on_raw_handshake(uvq_quic_conn_t* conn) {
  uvq_quic_conn_stats_t cs;

  CHECK(uvq_quic_conn_get_stats(conn, &cs) == 0);
  CHECK(cs.version == UVQ_QUIC_V2);
  st.raw_handshakes++;
  CHECK(uvq_quic_conn_close(conn, 0, NULL) == 0);
}

int main(int argc, char** argv) {
  struct sockaddr_storage to;
  struct sockaddr_storage srv;
  struct sockaddr_in any;
  uvq_quic_config_t cfg;
  uvq_quic_config_t ccfg;
  uvq_h3_config_t h3cfg;
  uvq_h3_callbacks_t cb;
  uvq_quic_callbacks_t qcb;
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* conn;
  uvq_udp_mmsg_t msg;
  uvq_udp_send_t req;
  uv_buf_t payload;
  int len;

  CHECK(argc == 3);
  CHECK(uv_loop_init(&st.loop) == 0);
  CHECK(uv_ip4_addr("127.0.0.1", 0, &any) == 0);

  /* UDP: both batch-send calls, with flags. */
  CHECK(uvq_udp_init(&st.loop, &st.rx) == 0);
  CHECK(uvq_udp_init(&st.loop, &st.tx) == 0);
  CHECK(uvq_udp_bind(&st.rx, (const struct sockaddr*) &any, 0) == 0);
  CHECK(uvq_udp_bind(&st.tx, (const struct sockaddr*) &any, 0) == 0);
  len = sizeof(to);
  CHECK(uvq_udp_getsockname(&st.rx, (struct sockaddr*) &to, &len) == 0);
  CHECK(uvq_udp_recv_start2(&st.rx, on_alloc, on_recv) == 0);
  payload = uv_buf_init("abc", 3);
  memset(&msg, 0, sizeof(msg));
  msg.bufs = &payload;
  msg.nbufs = 1;
  msg.addr = (const struct sockaddr*) &to;
  msg.ecn = -1;
  CHECK(uvq_udp_try_send_batch(&st.tx, &msg, 1, 0) == 1);
  CHECK(uvq_udp_send_batch(&req, &st.tx, &msg, 1, 0, on_sent) == 0);
  run_until(&st.datagrams, 2);
  run_until(&st.send_cbs, 1);
  CHECK(st.send_cb_status == 0);

  /* HTTP/3 with version 5 and 3 configurations, through a Retry. */
  uvq_quic_config_default(&cfg);
  CHECK(cfg.version == 5);
  cfg.cert_file = argv[1];
  cfg.key_file = argv[2];
  cfg.retry = UVQ_QUIC_RETRY_ALWAYS;
  cfg.preferred_version = UVQ_QUIC_V2;
  cfg.worker_count = 1;
  cfg.lb_server_id = 7;
  uvq_h3_config_default(&h3cfg);
  CHECK(h3cfg.version == 3);
  memset(&cb, 0, sizeof(cb));
  cb.request = on_request;
  cb.response = on_response;
  cb.body = on_body;
  cb.done = on_done;
  cb.connected = on_connected;
  CHECK(uvq_h3_server_new(&st.loop, &cfg, &h3cfg, &cb, NULL, &st.server) == 0);
  CHECK(uvq_h3_listen(st.server, (const struct sockaddr*) &any) == 0);
  len = sizeof(srv);
  CHECK(uvq_udp_getsockname(uvq_quic_endpoint_udp(uvq_h3_endpoint(st.server)),
                            (struct sockaddr*) &srv, &len) == 0);
  uvq_quic_config_default(&ccfg);
  ccfg.ca_file = argv[1];
  CHECK(uvq_h3_client_new(&st.loop, &ccfg, &h3cfg, &cb, NULL, &st.client) == 0);
  CHECK(uvq_h3_connect(st.client, (const struct sockaddr*) &srv,
                       "localhost") == 0);
  run_until(&st.dones, 1);
  CHECK(st.requests == 1);
  CHECK(st.status == 200);
  CHECK(st.bodylen == strlen(body_text));
  CHECK(memcmp(st.body, body_text, st.bodylen) == 0);
  CHECK(st.done_code == UVQ_H3_NO_ERROR);
  {
    uvq_quic_endpoint_stats_t es;
    CHECK(uvq_quic_endpoint_get_stats(uvq_h3_endpoint(st.server), &es) == 0);
    CHECK(es.retries == 1);
  }

  /* A raw QUIC client with version 4 connect options, starting in v2. */
  memset(&qcb, 0, sizeof(qcb));
  qcb.handshake_done = on_raw_handshake;
  CHECK(uvq_quic_endpoint_new(&st.loop, &ccfg, &qcb, NULL, &st.raw) == 0);
  CHECK(uvq_quic_endpoint_bind(st.raw, (const struct sockaddr*) &any) == 0);
  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  CHECK(opts.version == 4);
  opts.server_name = "localhost";
  opts.quic_version = UVQ_QUIC_V2;
  CHECK(uvq_quic_connect(st.raw, (const struct sockaddr*) &srv, &opts, NULL,
                         &conn) == 0);
  run_until(&st.raw_handshakes, 1);

  uvq_quic_endpoint_close(st.raw, on_raw_closed);
  uvq_h3_close(st.client, on_h3_closed);
  uvq_h3_close(st.server, on_h3_closed);
  uvq_udp_close(&st.rx, on_udp_closed);
  uvq_udp_close(&st.tx, on_udp_closed);
  CHECK(uv_run(&st.loop, UV_RUN_DEFAULT) == 0);
  CHECK(st.closes == 5);
  CHECK(uv_loop_close(&st.loop) == 0);
  printf("ok\n");
  return 0;
}
