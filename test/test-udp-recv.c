/* Receive path details: all metadata at once, truncation to the slot,
 * UV_ENOBUFS, empty datagrams and kernel drop counting. */
#include <string.h>

#include "task.h"
#include "udp-helpers.h"

/* RECVECN, RECVPKTINFO and GRO together with drop counting: every control
 * message fits, nothing is flagged UVQ_UDP_CTRUNC, every value is there. */
TEST_IMPL(udp_recv_metadata_all) {
  static unsigned char gso_payload[3500];
  unsigned char plain_payload[100];
  struct sockaddr_storage dest;
  struct sockaddr_storage local;
  uvq_udp_stats_t stats;
  uvq_udp_mmsg_t msgs[2];
  uv_buf_t bufs[2];
  unsigned int features;
  unsigned int lo_index;
  int coalesced;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  unsigned int i;

  lo_index = test_loopback_index();
  fill_pattern(gso_payload, sizeof(gso_payload), 51);
  fill_pattern(plain_payload, sizeof(plain_payload), 52);
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "0.0.0.0",
            UVQ_UDP_RECVECN | UVQ_UDP_RECVPKTINFO | UVQ_UDP_GRO);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.2", &dest);
  peer_addr(&rx, "127.0.0.2", &local);
  features = uvq_udp_features(&rx.udp);
  if (!test_portable_build())
    ASSERT_BITS_SET(features, UVQ_UDP_RECVECN | UVQ_UDP_RECVPKTINFO |
                                  UVQ_UDP_GRO | UVQ_UDP_FEATURE_DROPS);

  /* 4 segments of 1000 (the last 500) marked CE, then 100 bytes ECT(0). */
  memset(msgs, 0, sizeof(msgs));
  bufs[0] = uv_buf_init((char*) gso_payload, sizeof(gso_payload));
  bufs[1] = uv_buf_init((char*) plain_payload, sizeof(plain_payload));
  for (i = 0; i < 2; i++) {
    msgs[i].bufs = &bufs[i];
    msgs[i].nbufs = 1;
    msgs[i].addr = (const struct sockaddr*) &dest;
  }
  msgs[0].gso_size = 1000;
  msgs[0].ecn = UVQ_ECN_CE;
  msgs[1].ecn = UVQ_ECN_ECT0;
  ASSERT_EQ(2, uvq_udp_try_send_batch(&tx.udp, msgs, 2, 0));
  coalesced = (features & UVQ_UDP_GRO) &&
              (uvq_udp_features(&tx.udp) & UVQ_UDP_FEATURE_GSO);

  run_until_rx(&loop, &rx, 5);
  for (i = 0; i < 5; i++) {
    const rx_entry_t* e = &rx.rx[i];
    int last = i == 4;

    ASSERT_BITS_CLEAR(e->flags, UVQ_UDP_CTRUNC | UVQ_UDP_PARTIAL);
    if (last) {
      ASSERT_EQ(sizeof(plain_payload), e->nread);
      ASSERT_MEM_EQ(plain_payload, e->data, sizeof(plain_payload));
      ASSERT_EQ(0, e->segment_size);
    } else {
      ASSERT_EQ(i < 3 ? 1000 : 500, e->nread);
      ASSERT_MEM_EQ(gso_payload + i * 1000, e->data, (size_t) e->nread);
      ASSERT_EQ(coalesced ? 1000 : 0, e->segment_size);
    }
    if (features & UVQ_UDP_RECVECN)
      ASSERT_EQ(last ? UVQ_ECN_ECT0 : UVQ_ECN_CE, e->ecn);
    if (features & UVQ_UDP_RECVPKTINFO) {
      ASSERT_ADDR_EQ(&e->local, &local);
      ASSERT_EQ(lo_index, e->ifindex);
    }
  }
  peer_stats(&rx, &stats);
  ASSERT_UINT_EQ(0, stats.control_truncated);
  ASSERT_UINT_EQ(0, stats.truncated);
  ASSERT_UINT_EQ(0, stats.kernel_drops);
  ASSERT_UINT_EQ(5, stats.datagrams_received);
  if (features & UVQ_UDP_RECVECN) {
    ASSERT_UINT_EQ(4, stats.ecn_received[UVQ_ECN_CE]);
    ASSERT_UINT_EQ(1, stats.ecn_received[UVQ_ECN_ECT0]);
  }
  ASSERT_UINT_EQ(coalesced ? 1 : 0, stats.gro_packets);
  ASSERT_UINT_EQ(coalesced ? 4 : 0, stats.gro_segments);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

/* Slots of 512 bytes: a 1000-byte datagram arrives as its first 512 bytes
 * flagged UVQ_UDP_PARTIAL; the next, smaller one is whole. */
TEST_IMPL(udp_recv_truncated) {
  unsigned char big[1000];
  unsigned char small[300];
  struct sockaddr_storage dest;
  uvq_udp_stats_t stats;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;

  fill_pattern(big, sizeof(big), 61);
  fill_pattern(small, sizeof(small), 62);
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  ASSERT_OK(uvq_udp_set_recv_slots(&rx.udp, 512, 0));
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);

  peer_send_ok(&tx, (const struct sockaddr*) &dest, big, sizeof(big), -1);
  peer_send_ok(&tx, (const struct sockaddr*) &dest, small, sizeof(small), -1);
  run_until_rx(&loop, &rx, 2);
  /* suggested_size is the slot size times the batch (32 by default). */
  ASSERT_EQ(512 * 32, rx.last_suggested_size);
  ASSERT_EQ(512, rx.rx[0].nread);
  ASSERT_BITS_SET(rx.rx[0].flags, UVQ_UDP_PARTIAL);
  ASSERT_MEM_EQ(big, rx.rx[0].data, 512);
  ASSERT_EQ(sizeof(small), rx.rx[1].nread);
  ASSERT_BITS_CLEAR(rx.rx[1].flags, UVQ_UDP_PARTIAL);
  ASSERT_MEM_EQ(small, rx.rx[1].data, sizeof(small));
  peer_stats(&rx, &stats);
  ASSERT_UINT_EQ(1, stats.truncated);
  ASSERT_UINT_EQ(2, stats.datagrams_received);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

/* alloc_cb leaves the buffer empty once: recv_cb gets UV_ENOBUFS (addr
 * NULL), and the datagram, still queued in the kernel, comes next. */
TEST_IMPL(udp_recv_enobufs) {
  struct sockaddr_storage dest;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  rx.alloc_refuse = 1;
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  peer_send_ok(&tx, (const struct sockaddr*) &dest, "hello", 5, -1);
  run_until_rx(&loop, &rx, 2);
  ASSERT_ERR(UV_ENOBUFS, rx.rx[0].nread);
  ASSERT(!rx.rx[0].has_addr);
  ASSERT_EQ(5, rx.rx[1].nread);
  ASSERT_MEM_EQ("hello", rx.rx[1].data, 5);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

/* An empty datagram is nread 0 with the sender's address, never mistaken
 * for a terminal callback. */
TEST_IMPL(udp_recv_empty_datagram) {
  struct sockaddr_storage dest;
  struct sockaddr_storage from;
  uvq_udp_stats_t stats;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  peer_addr(&tx, "127.0.0.1", &from);
  peer_send_ok(&tx, (const struct sockaddr*) &dest, "", 0, -1);
  peer_send_ok(&tx, (const struct sockaddr*) &dest, "x", 1, -1);
  run_until_rx(&loop, &rx, 2);
  ASSERT_EQ(0, rx.rx[0].nread);
  ASSERT(rx.rx[0].has_addr);
  ASSERT_ADDR_EQ(&rx.rx[0].addr, &from);
  ASSERT_BITS_CLEAR(rx.rx[0].flags, UVQ_UDP_MMSG_FREE);
  ASSERT_EQ(1, rx.rx[1].nread);
  peer_stats(&rx, &stats);
  ASSERT_UINT_EQ(2, stats.datagrams_received);
  ASSERT_UINT_EQ(1, stats.bytes_received);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

/* A receive buffer of the kernel's minimum overflows for real; after one
 * more datagram, sent once the queue drained, proves that everything
 * queued was delivered, the kernel's drop count (read by get_stats with
 * SO_MEMINFO) must equal the datagrams that never arrived. */
TEST_IMPL(udp_recv_kernel_drops) {
  unsigned char payload[1000];
  struct sockaddr_storage dest;
  uvq_udp_stats_t stats;
  unsigned int features;
  unsigned int received;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  unsigned int i;
  int size;

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  size = 1;
  ASSERT_OK(uvq_udp_recv_buffer_size(&rx.udp, &size));
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  features = uvq_udp_features(&rx.udp);
  if (!test_portable_build())
    ASSERT_BITS_SET(features, UVQ_UDP_FEATURE_DROPS);

  for (i = 0; i < 50; i++) {
    fill_pattern(payload, sizeof(payload), i);
    peer_send_ok(&tx, (const struct sockaddr*) &dest, payload,
                 sizeof(payload), -1);
  }
  run_for(&loop, 100);
  received = rx.nrx;
  ASSERT_GT(received, 0);
  ASSERT_LT(received, 50);
  peer_send_ok(&tx, (const struct sockaddr*) &dest, "last", 4, -1);
  run_until_rx(&loop, &rx, received + 1);
  ASSERT_EQ(4, rx.rx[received].nread);
  peer_stats(&rx, &stats);
  ASSERT_UINT_EQ(received + 1, stats.datagrams_received);
  if (features & UVQ_UDP_FEATURE_DROPS)
    ASSERT_UINT_EQ(50 - received, stats.kernel_drops);
  else
    ASSERT_UINT_EQ(0, stats.kernel_drops);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}
