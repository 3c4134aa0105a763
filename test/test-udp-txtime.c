/* SO_TXTIME: release times on datagrams. Delivery with txtime set works
 * with any qdisc (it is ignored without fq/etf); the spacing itself can
 * only be measured through an fq qdisc. */
#include <string.h>

#include "netns.h"
#include "task.h"
#include "udp-helpers.h"

static void send_timed(test_peer_t* tx,
                       const struct sockaddr* to,
                       unsigned char* payloads,
                       size_t len,
                       const uint64_t* txtimes,
                       unsigned int n) {
  uvq_udp_mmsg_t msgs[8];
  uv_buf_t bufs[8];
  unsigned int i;

  ASSERT_LE(n, 8);
  memset(msgs, 0, sizeof(msgs));
  for (i = 0; i < n; i++) {
    bufs[i] = uv_buf_init((char*) payloads + i * len, (unsigned int) len);
    msgs[i].bufs = &bufs[i];
    msgs[i].nbufs = 1;
    msgs[i].addr = to;
    msgs[i].ecn = -1;
    msgs[i].txtime = txtimes[i];
  }
  ASSERT_EQ(n, uvq_udp_try_send_batch(&tx->udp, msgs, n, 0));
}

/* A handle bound with UVQ_UDP_TXTIME (reported on Linux), and one without
 * it, both send datagrams with release times a few milliseconds ahead and
 * one with txtime 0: every datagram arrives exactly once. */
TEST_IMPL(udp_txtime_delivery) {
  unsigned char payloads[2][6][64];
  struct sockaddr_storage dest;
  uint64_t txtimes[6];
  unsigned int features;
  test_peer_t rx;
  test_peer_t tx;
  test_peer_t plain;
  uv_loop_t loop;
  unsigned int i;
  unsigned int k;
  uint64_t now;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_init(&loop, &plain);
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", UVQ_UDP_TXTIME);
  peer_bind(&plain, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  features = uvq_udp_features(&tx.udp);
  if (test_portable_build())
    ASSERT_BITS_CLEAR(features, UVQ_UDP_TXTIME);
  else
    ASSERT_BITS_SET(features, UVQ_UDP_TXTIME);
  ASSERT_BITS_CLEAR(uvq_udp_features(&plain.udp), UVQ_UDP_TXTIME);
  /* Enabling it later is additive and equally reported. */
  ASSERT_OK(uvq_udp_configure(&plain.udp, UVQ_UDP_TXTIME));
  ASSERT_EQ(features & UVQ_UDP_TXTIME,
            uvq_udp_features(&plain.udp) & UVQ_UDP_TXTIME);

  for (k = 0; k < 2; k++)
    for (i = 0; i < 6; i++) {
      fill_pattern(payloads[k][i], sizeof(payloads[k][i]), 10 * k + i);
      payloads[k][i][0] = (unsigned char) (10 * k + i);
    }
  now = uv_hrtime();
  for (i = 0; i < 5; i++)
    txtimes[i] = now + (i + 1) * 2000000ull;
  txtimes[5] = 0;
  send_timed(&tx, (const struct sockaddr*) &dest, &payloads[0][0][0], 64,
             txtimes, 6);
  send_timed(&plain, (const struct sockaddr*) &dest, &payloads[1][0][0], 64,
             txtimes, 6);

  run_until_rx(&loop, &rx, 12);
  for (k = 0; k < 2; k++)
    for (i = 0; i < 6; i++) {
      unsigned int j;
      unsigned int found = 0;
      for (j = 0; j < rx.nrx; j++)
        if (rx.rx[j].nread == 64 &&
            memcmp(rx.rx[j].data, payloads[k][i], 64) == 0)
          found++;
      ASSERT_EQ(1, found);
    }

  peer_close(&rx);
  peer_close(&tx);
  peer_close(&plain);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  peer_finish(&plain);
  return 0;
}

struct arrival_log {
  uint64_t at[8];
  unsigned int n;
};

static void arrival_hook(test_peer_t* peer,
                         const uvq_udp_recv_t* recv,
                         const rx_entry_t* entry) {
  struct arrival_log* log = peer->user;

  (void) recv;
  if (entry != NULL && log->n < 8)
    log->at[log->n++] = uv_hrtime();
}

/* Five datagrams released 20 ms apart through an fq qdisc on a veth
 * arrive at least 15 ms apart. */
TEST_IMPL(udp_txtime_fq_spacing) {
  unsigned char payloads[5][64];
  struct sockaddr_storage dest;
  struct arrival_log log;
  uint64_t txtimes[5];
  char out[512];
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  netns_t a;
  netns_t b;
  unsigned int i;
  uint64_t now;

  if (test_portable_build())
    RETURN_SKIP("the portable datapath has no SO_TXTIME");
  NETNS_REQUIRE();
  ASSERT_OK(netns_create(&a, "txa"));
  ASSERT_OK(netns_create(&b, "txb"));
  ASSERT_OK(netns_veth(&a, "va", &b, "vb", 0));
  ASSERT_OK(netns_addr(&a, "va", "10.75.5.1/24"));
  ASSERT_OK(netns_addr(&b, "vb", "10.75.5.2/24"));
  if (netns_sh_output(out, sizeof(out), "ip netns exec %s tc qdisc add dev va "
                      "root fq", a.name) != 0) {
    out[strcspn(out, "\n")] = '\0';
    RETURN_SKIP("cannot add an fq qdisc, so release times cannot be "
                "measured: %s", out);
  }

  memset(&log, 0, sizeof(log));
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  rx.user = &log;
  rx.hook = arrival_hook;
  netns_enter(&b);
  peer_bind(&rx, "10.75.5.2", 0);
  netns_enter(&a);
  peer_bind(&tx, "10.75.5.1", UVQ_UDP_TXTIME);
  netns_leave();
  peer_start(&rx);
  peer_addr(&rx, "10.75.5.2", &dest);
  ASSERT_BITS_SET(uvq_udp_features(&tx.udp), UVQ_UDP_TXTIME);

  for (i = 0; i < 5; i++)
    fill_pattern(payloads[i], sizeof(payloads[i]), i);
  now = uv_hrtime();
  for (i = 0; i < 5; i++)
    txtimes[i] = now + 10000000ull + i * 20000000ull;
  send_timed(&tx, (const struct sockaddr*) &dest, &payloads[0][0], 64,
             txtimes, 5);
  run_until_rx(&loop, &rx, 5);
  ASSERT_EQ(5, log.n);
  for (i = 1; i < 5; i++)
    ASSERT_UINT_GE(log.at[i] - log.at[i - 1], 15000000ull);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  netns_destroy(&a);
  netns_destroy(&b);
  return 0;
}
