/* Queued sends (uvq_udp_send_batch): completion once the socket is
 * writable again, never inside the call, and cancellation by close.
 *
 * Loopback frees a datagram's send-buffer charge at once, so a full
 * SO_SNDBUF needs a qdisc that holds packets: a namespace whose lo has a
 * slow tbf. */
#include <string.h>

#include "netns.h"
#include "task.h"
#include "udp-helpers.h"

struct send_log {
  uvq_udp_send_t* reqs[4];
  int status[4];
  unsigned int nsent[4];
  unsigned int n;
  /* Set while uvq_udp_send_batch runs, to catch a synchronous callback. */
  int in_call;
  /* The order of events: 'c' for a send callback, 'x' for close_cb. */
  char order[8];
  unsigned int norder;
};

static void log_send_cb(uvq_udp_send_t* req, int status) {
  struct send_log* log = req->data;

  if (log->in_call)
    FATAL("send callback called from inside uvq_udp_send_batch");
  ASSERT_LT(log->n, 4);
  log->reqs[log->n] = req;
  log->status[log->n] = status;
  log->nsent[log->n] = req->nsent;
  log->n++;
  log->order[log->norder++] = 'c';
}

static int send_batch(uvq_udp_send_t* req,
                      struct send_log* log,
                      test_peer_t* tx,
                      const uvq_udp_mmsg_t* msgs,
                      unsigned int count) {
  int rc;

  memset(req, 0, sizeof(*req));
  req->data = log;
  log->in_call = 1;
  rc = uvq_udp_send_batch(req, &tx->udp, msgs, count, 0, log_send_cb);
  log->in_call = 0;
  return rc;
}

static int send_done(void* arg) {
  struct send_log* log = arg;
  return log->n > 0;
}

/* On an idle socket: the callback still comes from the loop; the message
 * array and the addresses may be reused as soon as the call returns. */
TEST_IMPL(udp_send_queue_idle) {
  unsigned char payloads[3][100];
  struct sockaddr_storage dest;
  struct sockaddr_storage dest_copy;
  uvq_udp_mmsg_t msgs[3];
  uv_buf_t bufs[3];
  struct send_log log;
  uvq_udp_send_t req;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  unsigned int i;

  memset(&log, 0, sizeof(log));
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  dest_copy = dest;

  memset(msgs, 0, sizeof(msgs));
  for (i = 0; i < 3; i++) {
    fill_pattern(payloads[i], sizeof(payloads[i]), 90 + i);
    bufs[i] = uv_buf_init((char*) payloads[i], sizeof(payloads[i]));
    msgs[i].bufs = &bufs[i];
    msgs[i].nbufs = 1;
    msgs[i].addr = (const struct sockaddr*) &dest_copy;
    msgs[i].ecn = -1;
  }
  ASSERT_OK(send_batch(&req, &log, &tx, msgs, 3));
  ASSERT_PTR_EQ(&tx.udp, req.handle);
  ASSERT_EQ(0, log.n);
  memset(msgs, 0, sizeof(msgs));
  memset(&dest_copy, 0, sizeof(dest_copy));

  run_until(&loop, send_done, &log, TEST_WAIT_MS);
  run_until_rx(&loop, &rx, 3);
  ASSERT_EQ(1, log.n);
  ASSERT_PTR_EQ(&req, log.reqs[0]);
  ASSERT_OK(log.status[0]);
  ASSERT_EQ(3, log.nsent[0]);
  for (i = 0; i < 3; i++)
    ASSERT_MEM_EQ(payloads[i], rx.rx[i].data, sizeof(payloads[i]));

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

struct slow_net {
  netns_t ns;
  uv_loop_t loop;
  test_peer_t rx;
  test_peer_t tx;
  struct sockaddr_storage dest;
  /* Datagrams try_send_batch got out before the send buffer filled. */
  unsigned int prefilled;
  unsigned char payload[1000];
};

/* A namespace whose lo sends at the given rate, a sender with the
 * smallest send buffer, filled until the kernel says EAGAIN. */
static void slow_net_setup(struct slow_net* n, const char* rate) {
  uvq_udp_stats_t stats;
  char out[512];
  int size;
  int rc;

  NETNS_REQUIRE();
  ASSERT_OK(netns_create(&n->ns, "sndq"));
  if (netns_sh_output(out, sizeof(out),
                      "ip netns exec %s tc qdisc add dev lo root tbf "
                      "rate %s burst 1600 latency 60s",
                      n->ns.name, rate) != 0) {
    out[strcspn(out, "\n")] = '\0';
    RETURN_SKIP("cannot add a tbf qdisc to hold packets: %s", out);
  }
  ASSERT_OK(uv_loop_init(&n->loop));
  peer_init(&n->loop, &n->rx);
  peer_init(&n->loop, &n->tx);
  netns_enter(&n->ns);
  peer_bind(&n->rx, "127.0.0.1", 0);
  peer_bind(&n->tx, "127.0.0.1", 0);
  netns_leave();
  peer_start(&n->rx);
  peer_addr(&n->rx, "127.0.0.1", &n->dest);
  size = 1;
  ASSERT_OK(uvq_udp_send_buffer_size(&n->tx.udp, &size));

  fill_pattern(n->payload, sizeof(n->payload), 99);
  for (n->prefilled = 0; n->prefilled < 1000; n->prefilled++) {
    rc = peer_send(&n->tx, (const struct sockaddr*) &n->dest, n->payload,
                   sizeof(n->payload), -1);
    if (rc == UV_EAGAIN)
      break;
    ASSERT_EQ(1, rc);
  }
  ASSERT_GT(n->prefilled, 0);
  ASSERT_LT(n->prefilled, 1000);
  peer_stats(&n->tx, &stats);
  ASSERT_UINT_EQ(1, stats.send_eagain);
  ASSERT_UINT_EQ(n->prefilled, stats.datagrams_sent);
}

static void slow_net_teardown(struct slow_net* n) {
  finish_loop(&n->loop);
  peer_finish(&n->rx);
  peer_finish(&n->tx);
  netns_destroy(&n->ns);
}

static void make_msgs(struct slow_net* n,
                      uvq_udp_mmsg_t* msgs,
                      uv_buf_t* buf,
                      unsigned int count) {
  unsigned int i;

  *buf = uv_buf_init((char*) n->payload, sizeof(n->payload));
  memset(msgs, 0, count * sizeof(*msgs));
  for (i = 0; i < count; i++) {
    msgs[i].bufs = buf;
    msgs[i].nbufs = 1;
    msgs[i].addr = (const struct sockaddr*) &n->dest;
    msgs[i].ecn = -1;
  }
}

/* A batch queued behind a full send buffer completes once, with status 0
 * and all 16 sent, after the qdisc drained; until then try_send_batch
 * does not jump the queue. */
TEST_IMPL(udp_send_queue_full_sndbuf) {
  static struct slow_net n;
  uvq_udp_mmsg_t msgs[16];
  uvq_udp_stats_t stats;
  struct send_log log;
  uvq_udp_send_t req;
  uv_buf_t buf;

  memset(&log, 0, sizeof(log));
  slow_net_setup(&n, "2mbit");
  make_msgs(&n, msgs, &buf, 16);
  ASSERT_OK(send_batch(&req, &log, &n.tx, msgs, 16));
  ASSERT_EQ(0, log.n);
  ASSERT_NE(0, uvq_udp_is_active(&n.tx.udp));
  ASSERT_ERR(UV_EAGAIN, uvq_udp_try_send_batch(&n.tx.udp, msgs, 1, 0));

  run_until(&n.loop, send_done, &log, TEST_WAIT_MS);
  run_for(&n.loop, TEST_SETTLE_MS);
  ASSERT_EQ(1, log.n);
  ASSERT_OK(log.status[0]);
  ASSERT_EQ(16, log.nsent[0]);
  ASSERT_EQ(16, req.nsent);
  ASSERT_EQ(0, uvq_udp_is_active(&n.tx.udp));
  peer_stats(&n.tx, &stats);
  ASSERT_UINT_EQ(n.prefilled + 16, stats.datagrams_sent);

  run_until_rx(&n.loop, &n.rx, n.prefilled + 16);
  peer_close(&n.rx);
  peer_close(&n.tx);
  slow_net_teardown(&n);
  return 0;
}

static void log_close_cb(uvq_udp_t* handle) {
  struct send_log* log = ((test_peer_t*) handle->data)->user;
  test_peer_t* peer = handle->data;

  log->order[log->norder++] = 'x';
  peer->close_cbs++;
  peer->callbacks_at_close = peer->callbacks;
}

/* Two batches queued behind a full send buffer, then close: each callback
 * once, in order, with UV_ECANCELED and nothing sent, before close_cb.
 * What the qdisc still holds is dropped with the namespace. */
TEST_IMPL(udp_send_queue_cancel_on_close) {
  static struct slow_net n;
  uvq_udp_mmsg_t msgs[4];
  struct send_log log;
  uvq_udp_send_t req[2];
  uv_buf_t buf;

  memset(&log, 0, sizeof(log));
  /* 8 kbit/s: the next 1000-byte datagram leaves a second after the
   * buffer filled, long after this test closed the handle. */
  slow_net_setup(&n, "8kbit");
  n.tx.user = &log;
  make_msgs(&n, msgs, &buf, 4);
  ASSERT_OK(send_batch(&req[0], &log, &n.tx, msgs, 4));
  ASSERT_OK(send_batch(&req[1], &log, &n.tx, msgs, 4));
  ASSERT_EQ(0, log.n);
  uvq_udp_close(&n.tx.udp, log_close_cb);
  ASSERT_EQ(0, log.n);

  run_until(&n.loop, send_done, &log, TEST_WAIT_MS);
  run_for(&n.loop, TEST_SETTLE_MS);
  ASSERT_EQ(1, n.tx.close_cbs);
  ASSERT_EQ(2, log.n);
  ASSERT_PTR_EQ(&req[0], log.reqs[0]);
  ASSERT_PTR_EQ(&req[1], log.reqs[1]);
  ASSERT_ERR(UV_ECANCELED, log.status[0]);
  ASSERT_ERR(UV_ECANCELED, log.status[1]);
  ASSERT_EQ(0, log.nsent[0]);
  ASSERT_EQ(0, log.nsent[1]);
  ASSERT_EQ(3, log.norder);
  ASSERT_MEM_EQ("ccx", log.order, 3);

  peer_close(&n.rx);
  slow_net_teardown(&n);
  return 0;
}

static int three_done(void* arg) {
  struct send_log* log = arg;
  return log->n >= 3;
}

/* A batch of no messages asks only to be told when the socket is writable:
 * on an idle socket, once, from the loop; behind a queued batch, only after
 * that batch's callback. */
TEST_IMPL(udp_send_queue_writable_signal) {
  unsigned char payload[100];
  struct sockaddr_storage dest;
  struct send_log log;
  uvq_udp_mmsg_t msg;
  uvq_udp_send_t first;
  uvq_udp_send_t wait;
  uv_buf_t buf;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;

  memset(&log, 0, sizeof(log));
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);

  ASSERT_OK(send_batch(&wait, &log, &tx, NULL, 0));
  ASSERT_EQ(0, log.n);
  run_until(&loop, send_done, &log, TEST_WAIT_MS);
  ASSERT_EQ(1, log.n);
  ASSERT_PTR_EQ(&wait, log.reqs[0]);
  ASSERT_OK(log.status[0]);
  ASSERT_EQ(0, log.nsent[0]);

  fill_pattern(payload, sizeof(payload), 7);
  buf = uv_buf_init((char*) payload, sizeof(payload));
  memset(&msg, 0, sizeof(msg));
  msg.bufs = &buf;
  msg.nbufs = 1;
  msg.addr = (const struct sockaddr*) &dest;
  msg.ecn = -1;
  ASSERT_OK(send_batch(&first, &log, &tx, &msg, 1));
  ASSERT_OK(send_batch(&wait, &log, &tx, NULL, 0));
  run_until(&loop, three_done, &log, TEST_WAIT_MS);
  ASSERT_EQ(3, log.n);
  ASSERT_PTR_EQ(&first, log.reqs[1]);
  ASSERT_PTR_EQ(&wait, log.reqs[2]);
  ASSERT_OK(log.status[1]);
  ASSERT_EQ(1, log.nsent[1]);
  ASSERT_OK(log.status[2]);
  run_until_rx(&loop, &rx, 1);

  /* NULL messages with a count are still an error. */
  ASSERT_EQ(UV_EINVAL, uvq_udp_send_batch(&wait, &tx.udp, NULL, 1, 0,
                                          log_send_cb));
  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}
