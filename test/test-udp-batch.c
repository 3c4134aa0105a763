/* Batching: many datagrams per receive system call (recvmmsg) and many
 * messages per send system call (sendmmsg), with the buffer-ownership
 * contract checked on every callback by the test peer. */
#include <string.h>

#include "task.h"
#include "udp-helpers.h"

#define NDGRAMS 40

static void queue_datagrams(test_peer_t* tx, const struct sockaddr* to,
                            unsigned int n) {
  unsigned char payload[100];
  unsigned int i;

  for (i = 0; i < n; i++) {
    fill_pattern(payload, sizeof(payload), i);
    payload[0] = (unsigned char) i;
    peer_send_ok(tx, to, payload, sizeof(payload), -1);
  }
}

static void check_datagrams(const test_peer_t* rx, unsigned int n) {
  unsigned char payload[100];
  unsigned int i;

  ASSERT_EQ(n, rx->nrx);
  for (i = 0; i < n; i++) {
    fill_pattern(payload, sizeof(payload), i);
    payload[0] = (unsigned char) i;
    ASSERT_EQ(sizeof(payload), rx->rx[i].nread);
    ASSERT_MEM_EQ(payload, rx->rx[i].data, sizeof(payload));
  }
}

/* 40 datagrams wait in the socket before the loop first runs. */
static void batch_receive(size_t alloc_size) {
  struct sockaddr_storage dest;
  uvq_udp_stats_t stats;
  unsigned int features;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  rx.alloc_size = alloc_size;
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  features = uvq_udp_features(&rx.udp);
  if (test_portable_build())
    ASSERT_BITS_CLEAR(features, UVQ_UDP_RECVMMSG);
  else
    ASSERT_BITS_SET(features, UVQ_UDP_RECVMMSG);

  queue_datagrams(&tx, (const struct sockaddr*) &dest, NDGRAMS);
  run_until_rx(&loop, &rx, NDGRAMS);
  check_datagrams(&rx, NDGRAMS);
  peer_stats(&rx, &stats);
  ASSERT_UINT_EQ(NDGRAMS, stats.datagrams_received);
  ASSERT_UINT_EQ(NDGRAMS * 100, stats.bytes_received);
  if (alloc_size == 0)
    ASSERT_EQ(2048 * 32, rx.last_suggested_size);
  if (!(features & UVQ_UDP_RECVMMSG)) {
    /* One datagram per call, plus the calls that found none. */
    ASSERT_UINT_GE(stats.recv_syscalls, NDGRAMS);
  } else if (alloc_size == 0) {
    /* Default slots are 2048 x 32: one call takes 32, the next the other
     * 8, and at most one more finds the queue empty. */
    ASSERT_UINT_GE(stats.recv_syscalls, 2);
    ASSERT_UINT_LE(stats.recv_syscalls, 3);
  } else {
    /* A buffer of alloc_size holds alloc_size / 2048 slots. */
    unsigned int slots = (unsigned int) (alloc_size / 2048);
    unsigned int calls = (NDGRAMS + slots - 1) / slots;
    ASSERT_UINT_GE(stats.recv_syscalls, calls);
    ASSERT_UINT_LE(stats.recv_syscalls, calls + 1);
  }

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
}

TEST_IMPL(udp_batch_recvmmsg) {
  batch_receive(0);
  return 0;
}

/* alloc_cb may give less than suggested: fewer datagrams per call, none
 * lost, each buffer still returned once. 5000 bytes hold two slots. */
TEST_IMPL(udp_batch_recvmmsg_small_buffer) {
  batch_receive(5000);
  return 0;
}

/* 32 messages, alternating between two receivers, in one call. */
TEST_IMPL(udp_batch_sendmmsg) {
  unsigned char payload[32][64];
  struct sockaddr_storage dest[2];
  uvq_udp_mmsg_t msgs[32];
  uv_buf_t bufs[32];
  uvq_udp_stats_t stats;
  unsigned int features;
  test_peer_t rx[2];
  test_peer_t tx;
  uv_loop_t loop;
  unsigned int i;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx[0]);
  peer_init(&loop, &rx[1]);
  peer_init(&loop, &tx);
  peer_bind(&rx[0], "127.0.0.1", 0);
  peer_bind(&rx[1], "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx[0]);
  peer_start(&rx[1]);
  peer_addr(&rx[0], "127.0.0.1", &dest[0]);
  peer_addr(&rx[1], "127.0.0.1", &dest[1]);
  features = uvq_udp_features(&tx.udp);
  if (test_portable_build())
    ASSERT_BITS_CLEAR(features, UVQ_UDP_FEATURE_SENDMMSG);
  else
    ASSERT_BITS_SET(features, UVQ_UDP_FEATURE_SENDMMSG);

  memset(msgs, 0, sizeof(msgs));
  for (i = 0; i < 32; i++) {
    fill_pattern(payload[i], sizeof(payload[i]), i);
    bufs[i] = uv_buf_init((char*) payload[i], sizeof(payload[i]));
    msgs[i].bufs = &bufs[i];
    msgs[i].nbufs = 1;
    msgs[i].addr = (const struct sockaddr*) &dest[i % 2];
    msgs[i].ecn = -1;
  }
  ASSERT_EQ(32, uvq_udp_try_send_batch(&tx.udp, msgs, 32, 0));
  peer_stats(&tx, &stats);
  ASSERT_UINT_EQ(32, stats.datagrams_sent);
  ASSERT_UINT_EQ(32 * sizeof(payload[0]), stats.bytes_sent);
  if (features & UVQ_UDP_FEATURE_SENDMMSG)
    ASSERT_UINT_EQ(1, stats.send_syscalls);
  else
    ASSERT_UINT_EQ(32, stats.send_syscalls);
  ASSERT_UINT_EQ(0, stats.send_eagain);

  run_until_rx(&loop, &rx[0], 16);
  run_until_rx(&loop, &rx[1], 16);
  for (i = 0; i < 32; i++) {
    const rx_entry_t* e = &rx[i % 2].rx[i / 2];
    ASSERT_EQ(sizeof(payload[i]), e->nread);
    ASSERT_MEM_EQ(payload[i], e->data, sizeof(payload[i]));
  }

  peer_close(&rx[0]);
  peer_close(&rx[1]);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx[0]);
  peer_finish(&rx[1]);
  peer_finish(&tx);
  return 0;
}
