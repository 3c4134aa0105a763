/* A program that uses an installed (or add_subdirectory'd) uvq the way an
 * application would: one datagram to itself over loopback through the
 * extended UDP handle, marked ECT(0) and read back with its ECN codepoint
 * and local address; with -DUVQ_CONSUMER_QUIC also a QUIC client endpoint
 * bound and closed. Exits 0 and prints "ok" only if all of that worked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uvq.h>
#ifdef UVQ_CONSUMER_QUIC
#include <uvq/quic.h>
#endif

struct state {
  uvq_udp_t udp;
  char buf[2048];
  int received;
  int ecn;
  int closed;
};

static void on_alloc(uvq_udp_t* h, size_t suggested, uv_buf_t* buf) {
  struct state* s = h->data;
  (void) suggested;
  *buf = uv_buf_init(s->buf, sizeof(s->buf));
}

static void on_recv(uvq_udp_t* h, const uvq_udp_recv_t* r) {
  struct state* s = h->data;
  if (r->nread == 5 && r->addr != NULL && memcmp(r->buf->base, "hello", 5) == 0) {
    s->received++;
    s->ecn = r->ecn;
    uvq_udp_recv_stop(h);
  }
}

static void on_close(uvq_udp_t* h) {
  struct state* s = h->data;
  s->closed = 1;
}

#ifdef UVQ_CONSUMER_QUIC
static int ep_closed;
static void on_ep_closed(uvq_quic_endpoint_t* ep) {
  (void) ep;
  ep_closed = 1;
}
#endif

#define CHECK(x)                                             \
  do {                                                       \
    if (!(x)) {                                              \
      fprintf(stderr, "%s:%d: %s failed\n", __FILE__, __LINE__, #x); \
      return 1;                                              \
    }                                                        \
  } while (0)

int main(void) {
  struct sockaddr_storage ss;
  struct sockaddr_in addr;
  struct state s;
  uvq_udp_mmsg_t msg;
  uv_buf_t payload;
  uv_loop_t loop;
  int len;

  CHECK(uvq_version() == ((UVQ_VERSION_MAJOR << 16) | (UVQ_VERSION_MINOR << 8) |
                          UVQ_VERSION_PATCH));
  CHECK(uv_loop_init(&loop) == 0);
  memset(&s, 0, sizeof(s));
  CHECK(uvq_udp_init(&loop, &s.udp) == 0);
  s.udp.data = &s;
  CHECK(uv_ip4_addr("127.0.0.1", 0, &addr) == 0);
  CHECK(uvq_udp_bind(&s.udp, (const struct sockaddr*) &addr,
                     UVQ_UDP_RECVECN | UVQ_UDP_RECVPKTINFO) == 0);
  len = sizeof(ss);
  CHECK(uvq_udp_getsockname(&s.udp, (struct sockaddr*) &ss, &len) == 0);
  CHECK(uvq_udp_recv_start2(&s.udp, on_alloc, on_recv) == 0);
  payload = uv_buf_init("hello", 5);
  memset(&msg, 0, sizeof(msg));
  msg.bufs = &payload;
  msg.nbufs = 1;
  msg.addr = (const struct sockaddr*) &ss;
  msg.ecn = UVQ_ECN_ECT0;
  CHECK(uvq_udp_try_send_batch(&s.udp, &msg, 1, 0) == 1);
  CHECK(uv_run(&loop, UV_RUN_DEFAULT) == 0 || s.received == 1);
  CHECK(s.received == 1);
  CHECK(s.ecn == UVQ_ECN_ECT0);

#ifdef UVQ_CONSUMER_QUIC
  {
    uvq_quic_config_t cfg;
    uvq_quic_endpoint_t* ep;

    uvq_quic_config_default(&cfg);
    cfg.insecure_skip_verify = 1;
    cfg.alpn = "h3";
    CHECK(uvq_quic_endpoint_new(&loop, &cfg, NULL, NULL, &ep) == 0);
    CHECK(uvq_quic_endpoint_bind(ep, (const struct sockaddr*) &addr) == 0);
    uvq_quic_endpoint_close(ep, on_ep_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(ep_closed == 1);
  }
#endif

  uvq_udp_close(&s.udp, on_close);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK(s.closed == 1);
  CHECK(uv_loop_close(&loop) == 0);
  printf("ok %s\n", uvq_version_string());
  return 0;
}
