/* What the ABI programs (program-*.c) share: a checking macro, their
 * state and the callbacks whose types every header version they are
 * built against has alike. Included by each program after the uvq header
 * of its version, so each copy compiles against that version. */
#ifndef UVQ_ABI_PROGRAM_COMMON_H
#define UVQ_ABI_PROGRAM_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x)                                                        \
  do {                                                                  \
    if (!(x)) {                                                         \
      fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #x);    \
      exit(1);                                                          \
    }                                                                   \
  } while (0)

static const char body_text[] = "served to an older program\n";

struct state {
  uv_loop_t loop;
  /* UDP */
  uvq_udp_t rx;
  uvq_udp_t tx;
  char rxbuf[2048];
  int datagrams;
  int send_cb_status;
  int send_cbs;
  /* HTTP/3 */
  uvq_h3_t* server;
  uvq_h3_t* client;
  int requests;
  int status;
  char body[256];
  size_t bodylen;
  int dones;
  uint64_t done_code;
  /* QUIC */
  uvq_quic_endpoint_t* raw;
  int raw_handshakes;
  int closes;
};

static struct state st;

static void on_alloc(uvq_udp_t* h, size_t suggested, uv_buf_t* buf) {
  (void) h;
  (void) suggested;
  *buf = uv_buf_init(st.rxbuf, sizeof(st.rxbuf));
}

static void on_recv(uvq_udp_t* h, const uvq_udp_recv_t* r) {
  (void) h;
  if (r->nread == 3 && memcmp(r->buf->base, "abc", 3) == 0)
    st.datagrams++;
}

static void on_sent(uvq_udp_send_t* req, int status) {
  (void) req;
  st.send_cbs++;
  st.send_cb_status = status;
}

static void on_udp_closed(uvq_udp_t* h) {
  (void) h;
  st.closes++;
}

static void on_request(uvq_h3_req_t* req) {
  uvq_h3_body_t body;

  st.requests++;
  memset(&body, 0, sizeof(body));
  body.kind = UVQ_H3_BODY_MEMORY;
  body.data = body_text;
  body.len = strlen(body_text);
  CHECK(uvq_h3_respond(req, 200, NULL, 0, &body) == 0);
}

static void on_response(uvq_h3_req_t* req, int status) {
  (void) req;
  st.status = status;
}

static void on_body(uvq_h3_req_t* req, const uint8_t* data, size_t len) {
  (void) req;
  CHECK(st.bodylen + len <= sizeof(st.body));
  memcpy(st.body + st.bodylen, data, len);
  st.bodylen += len;
}

static void on_done(uvq_h3_req_t* req, uint64_t code) {
  if (uvq_h3_req_h3(req) == st.client) {
    st.dones++;
    st.done_code = code;
  }
}

static void on_connected(uvq_h3_t* h3, const uvq_quic_error_t* err) {
  uvq_h3_req_t* req;

  CHECK(err == NULL);
  CHECK(uvq_h3_request(h3, "GET", NULL, NULL, "/x", NULL, 0, NULL, NULL,
                       &req) == 0);
}

static void on_h3_closed(uvq_h3_t* h3) {
  (void) h3;
  st.closes++;
}

static void on_raw_closed(uvq_quic_endpoint_t* ep) {
  (void) ep;
  st.closes++;
}

static void run_until(int* counter, int n) {
  int i;

  for (i = 0; i < 100000 && *counter < n; i++)
    uv_run(&st.loop, UV_RUN_ONCE);
  CHECK(*counter >= n);
}

#endif /* UVQ_ABI_PROGRAM_COMMON_H */
