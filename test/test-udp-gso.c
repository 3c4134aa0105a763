/* GSO and GRO on loopback.
 *
 * On Linux a UDP_SEGMENT send over loopback stays one skb up to the
 * receiving socket: a socket without UDP_GRO gets it split into datagrams
 * by the kernel, a socket with UDP_GRO gets it whole with its segment size
 * (udp_unexpected_gso()). So loopback produces real super-packets. */
#include <string.h>

#include "task.h"
#include "udp-helpers.h"

#define SEG 1200
#define NSEG 10
#define LAST 500
#define TOTAL ((NSEG - 1) * SEG + LAST)

static size_t segment_len(unsigned int i, unsigned int nseg, size_t seg,
                          size_t total) {
  return i + 1 < nseg ? seg : total - (nseg - 1) * seg;
}

/* Checks the sender's counters after one GSO message of nseg segments. */
static void assert_gso_sender_stats(test_peer_t* tx, unsigned int nseg,
                                    size_t total) {
  uvq_udp_stats_t stats;
  unsigned int features;

  features = uvq_udp_features(&tx->udp);
  peer_stats(tx, &stats);
  ASSERT_UINT_EQ(nseg, stats.datagrams_sent);
  ASSERT_UINT_EQ(total, stats.bytes_sent);
  if (features & UVQ_UDP_FEATURE_GSO) {
    ASSERT_UINT_EQ(1, stats.gso_sends);
    ASSERT_UINT_EQ(nseg, stats.gso_segments);
    ASSERT_UINT_EQ(0, stats.gso_fallbacks);
    ASSERT_UINT_EQ(1, stats.send_syscalls);
  } else {
    ASSERT_UINT_EQ(0, stats.gso_sends);
    ASSERT_UINT_EQ(0, stats.gso_segments);
    ASSERT_UINT_EQ(1, stats.gso_fallbacks);
  }
}

static void assert_gso_features(test_peer_t* tx) {
  unsigned int features = uvq_udp_features(&tx->udp);

  if (test_windows_build()) {
    /* UDP send offload where the stack has it; Wine refuses
     * UDP_SEND_MSG_SIZE, so everything goes through the software path. */
    if (test_under_wine())
      ASSERT_BITS_CLEAR(features, UVQ_UDP_FEATURE_GSO);
    ASSERT_EQ((features & UVQ_UDP_FEATURE_GSO) ? 64 : 0,
              uvq_udp_gso_max_segments(&tx->udp));
  } else if (test_portable_build()) {
    ASSERT_BITS_CLEAR(features, UVQ_UDP_FEATURE_GSO);
    ASSERT_EQ(0, uvq_udp_gso_max_segments(&tx->udp));
  } else {
    ASSERT_BITS_SET(features, UVQ_UDP_FEATURE_GSO);
    ASSERT_EQ(64, uvq_udp_gso_max_segments(&tx->udp));
  }
}

static void send_gso(test_peer_t* tx,
                     const struct sockaddr* to,
                     const unsigned char* payload,
                     size_t total,
                     unsigned int gso_size) {
  uvq_udp_mmsg_t msg;
  uv_buf_t buf;

  buf = uv_buf_init((char*) payload, (unsigned int) total);
  memset(&msg, 0, sizeof(msg));
  msg.bufs = &buf;
  msg.nbufs = 1;
  msg.addr = to;
  msg.gso_size = gso_size;
  msg.ecn = -1;
  ASSERT_EQ(1, uvq_udp_try_send_batch(&tx->udp, &msg, 1, 0));
}

static void gso_to_plain_receiver(const char* ip) {
  static unsigned char payload[TOTAL];
  struct sockaddr_storage dest;
  uvq_udp_stats_t stats;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  unsigned int i;

  fill_pattern(payload, sizeof(payload), 1);
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, ip, 0);
  peer_bind(&tx, ip, 0);
  peer_start(&rx);
  peer_addr(&rx, ip, &dest);
  assert_gso_features(&tx);

  send_gso(&tx, (const struct sockaddr*) &dest, payload, TOTAL, SEG);
  run_until_rx(&loop, &rx, NSEG);
  for (i = 0; i < NSEG; i++) {
    const rx_entry_t* e = &rx.rx[i];
    ASSERT_EQ(segment_len(i, NSEG, SEG, TOTAL), e->nread);
    ASSERT_MEM_EQ(payload + i * SEG, e->data, (size_t) e->nread);
    ASSERT_EQ(0, e->segment_size);
    ASSERT_EQ(0, e->flags & ~(unsigned int) UVQ_UDP_MMSG_CHUNK);
  }
  assert_gso_sender_stats(&tx, NSEG, TOTAL);
  peer_stats(&rx, &stats);
  ASSERT_UINT_EQ(NSEG, stats.datagrams_received);
  ASSERT_UINT_EQ(TOTAL, stats.bytes_received);
  ASSERT_UINT_EQ(0, stats.gro_packets);
  ASSERT_UINT_EQ(0, stats.gro_segments);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
}

/* 10 segments of 1200 bytes, the last 500, to a socket without GRO:
 * exactly 10 datagrams with the right bytes. Without kernel GSO uvq
 * segments in software and counts a fallback. */
TEST_IMPL(udp_gso_plain_receiver_ipv4) {
  gso_to_plain_receiver("127.0.0.1");
  return 0;
}

TEST_IMPL(udp_gso_plain_receiver_ipv6) {
  gso_to_plain_receiver("::1");
  return 0;
}

/* GRO_RAW: the super-packet arrives whole, with its stride. */
TEST_IMPL(udp_gso_gro_raw) {
  static unsigned char payload[TOTAL];
  struct sockaddr_storage dest;
  uvq_udp_stats_t stats;
  unsigned int rx_features;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  unsigned int i;

  fill_pattern(payload, sizeof(payload), 2);
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "127.0.0.1", UVQ_UDP_GRO_RAW);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  assert_gso_features(&tx);
  rx_features = uvq_udp_features(&rx.udp);
  ASSERT_BITS_CLEAR(rx_features, UVQ_UDP_GRO);
  if (test_windows_build()) {
    /* Receive coalescing where the stack has it; Wine refuses it. */
    if (test_under_wine())
      ASSERT_BITS_CLEAR(rx_features, UVQ_UDP_GRO_RAW);
  } else if (test_portable_build()) {
    ASSERT_BITS_CLEAR(rx_features, UVQ_UDP_GRO_RAW);
  } else {
    ASSERT_BITS_SET(rx_features, UVQ_UDP_GRO_RAW);
  }

  send_gso(&tx, (const struct sockaddr*) &dest, payload, TOTAL, SEG);
  peer_stats(&rx, &stats);
  if ((rx_features & UVQ_UDP_GRO_RAW) &&
      (uvq_udp_features(&tx.udp) & UVQ_UDP_FEATURE_GSO)) {
    const rx_entry_t* e;

    run_until_rx(&loop, &rx, 1);
    e = &rx.rx[0];
    ASSERT_EQ(TOTAL, e->nread);
    ASSERT_EQ(SEG, e->segment_size);
    ASSERT_MEM_EQ(payload, e->data, TOTAL);
    ASSERT_EQ(0, e->flags & ~(unsigned int) UVQ_UDP_MMSG_CHUNK);
    peer_stats(&rx, &stats);
    ASSERT_UINT_EQ(1, stats.gro_packets);
    ASSERT_UINT_EQ(NSEG, stats.gro_segments);
  } else {
    /* The honest fallback: datagrams one by one, no stride. */
    run_until_rx(&loop, &rx, NSEG);
    for (i = 0; i < NSEG; i++) {
      const rx_entry_t* e = &rx.rx[i];
      ASSERT_EQ(segment_len(i, NSEG, SEG, TOTAL), e->nread);
      ASSERT_MEM_EQ(payload + i * SEG, e->data, (size_t) e->nread);
      ASSERT_EQ(0, e->segment_size);
    }
    peer_stats(&rx, &stats);
    ASSERT_UINT_EQ(0, stats.gro_packets);
    ASSERT_UINT_EQ(0, stats.gro_segments);
  }
  /* uvq.h counts GRO segments one by one. */
  ASSERT_UINT_EQ(NSEG, stats.datagrams_received);
  ASSERT_UINT_EQ(TOTAL, stats.bytes_received);
  assert_gso_sender_stats(&tx, NSEG, TOTAL);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

/* What the GRO receiver saw, callback by callback. */
struct gro_log {
  const char* base[32];
  unsigned int flags[32];
  unsigned int n;
};

static void gro_hook(test_peer_t* peer,
                     const uvq_udp_recv_t* recv,
                     const rx_entry_t* entry) {
  struct gro_log* log = peer->user;

  (void) entry;
  ASSERT_LT(log->n, 32);
  log->base[log->n] = recv->buf != NULL ? recv->buf->base : NULL;
  log->flags[log->n] = recv->flags;
  log->n++;
}

/* GRO: uvq splits the super-packet; exactly 10 MMSG_CHUNK callbacks, each
 * with its segment and the stride, then exactly one MMSG_FREE callback
 * returning the buffer the chunks pointed into. */
TEST_IMPL(udp_gso_gro_split) {
  static unsigned char payload[TOTAL];
  struct sockaddr_storage dest;
  uvq_udp_stats_t stats;
  struct gro_log log;
  unsigned int rx_features;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  unsigned int i;

  fill_pattern(payload, sizeof(payload), 3);
  memset(&log, 0, sizeof(log));
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  rx.user = &log;
  rx.hook = gro_hook;
  peer_bind(&rx, "127.0.0.1", UVQ_UDP_GRO);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  assert_gso_features(&tx);
  rx_features = uvq_udp_features(&rx.udp);
  ASSERT_BITS_CLEAR(rx_features, UVQ_UDP_GRO_RAW);
  if (test_windows_build()) {
    /* Receive coalescing where the stack has it; Wine refuses it. */
    if (test_under_wine())
      ASSERT_BITS_CLEAR(rx_features, UVQ_UDP_GRO);
  } else if (test_portable_build()) {
    ASSERT_BITS_CLEAR(rx_features, UVQ_UDP_GRO);
  } else {
    ASSERT_BITS_SET(rx_features, UVQ_UDP_GRO);
  }

  send_gso(&tx, (const struct sockaddr*) &dest, payload, TOTAL, SEG);
  run_until_rx(&loop, &rx, NSEG);
  if ((rx_features & UVQ_UDP_GRO) &&
      (uvq_udp_features(&tx.udp) & UVQ_UDP_FEATURE_GSO)) {
    ASSERT_EQ(NSEG + 1, rx.callbacks);
    ASSERT_EQ(NSEG, rx.chunk_cbs);
    ASSERT_EQ(1, rx.terminal_cbs);
    ASSERT_EQ(1, rx.free_cbs);
    ASSERT_EQ(NSEG + 1, log.n);
    for (i = 0; i < NSEG; i++) {
      const rx_entry_t* e = &rx.rx[i];
      ASSERT_EQ(i, e->seq);
      ASSERT_EQ(UVQ_UDP_MMSG_CHUNK, e->flags);
      ASSERT_EQ(SEG, e->segment_size);
      ASSERT_EQ(segment_len(i, NSEG, SEG, TOTAL), e->nread);
      ASSERT_MEM_EQ(payload + i * SEG, e->data, (size_t) e->nread);
      /* Every chunk lies in the buffer the FREE callback returns. */
      ASSERT(log.base[i] >= log.base[NSEG]);
    }
    ASSERT_BITS_SET(log.flags[NSEG], UVQ_UDP_MMSG_FREE);
    ASSERT_BITS_CLEAR(log.flags[NSEG], UVQ_UDP_MMSG_CHUNK);
    peer_stats(&rx, &stats);
    ASSERT_UINT_EQ(1, stats.gro_packets);
    ASSERT_UINT_EQ(NSEG, stats.gro_segments);
  } else {
    for (i = 0; i < NSEG; i++) {
      const rx_entry_t* e = &rx.rx[i];
      ASSERT_EQ(0, e->segment_size);
      ASSERT_EQ(segment_len(i, NSEG, SEG, TOTAL), e->nread);
      ASSERT_MEM_EQ(payload + i * SEG, e->data, (size_t) e->nread);
    }
    peer_stats(&rx, &stats);
    ASSERT_UINT_EQ(0, stats.gro_packets);
    ASSERT_UINT_EQ(0, stats.gro_segments);
  }
  ASSERT_UINT_EQ(NSEG, stats.datagrams_received);
  ASSERT_UINT_EQ(TOTAL, stats.bytes_received);
  assert_gso_sender_stats(&tx, NSEG, TOTAL);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

/* The payload of a GSO message is gathered from several buffers whose
 * edges do not line up with the segments. */
TEST_IMPL(udp_gso_gather) {
  static const size_t sizes[] = {700, 1, 2599, 3000};
  static unsigned char payload[6300];
  struct sockaddr_storage dest;
  uvq_udp_mmsg_t msg;
  uv_buf_t bufs[4];
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  size_t off;
  unsigned int i;

  fill_pattern(payload, sizeof(payload), 4);
  for (i = 0, off = 0; i < 4; off += sizes[i], i++)
    bufs[i] = uv_buf_init((char*) payload + off, (unsigned int) sizes[i]);
  ASSERT_EQ(sizeof(payload), off);

  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  memset(&msg, 0, sizeof(msg));
  msg.bufs = bufs;
  msg.nbufs = 4;
  msg.addr = (const struct sockaddr*) &dest;
  msg.gso_size = 1000;
  msg.ecn = -1;
  ASSERT_EQ(1, uvq_udp_try_send_batch(&tx.udp, &msg, 1, 0));
  run_until_rx(&loop, &rx, 7);
  for (i = 0; i < 7; i++) {
    ASSERT_EQ(i < 6 ? 1000 : 300, rx.rx[i].nread);
    ASSERT_MEM_EQ(payload + i * 1000, rx.rx[i].data, (size_t) rx.rx[i].nread);
  }
  assert_gso_sender_stats(&tx, 7, sizeof(payload));

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}

/* 64 segments is the documented maximum and goes through; 65 is refused
 * before anything is sent. A message that fits in one segment is one
 * datagram. GSO and plain messages mix in one batch. */
TEST_IMPL(udp_gso_limits_and_mix) {
  static unsigned char big[64 * 100];
  unsigned char small[3][50];
  struct sockaddr_storage dest;
  uvq_udp_stats_t stats;
  uvq_udp_mmsg_t msgs[4];
  uv_buf_t bufs[4];
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  unsigned int i;

  fill_pattern(big, sizeof(big), 5);
  for (i = 0; i < 3; i++)
    fill_pattern(small[i], sizeof(small[i]), 10 + i);
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  peer_bind(&rx, "127.0.0.1", 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);

  /* 6400 bytes in segments of 99: 65 segments (the last 64 bytes). */
  memset(msgs, 0, sizeof(msgs));
  bufs[0] = uv_buf_init((char*) big, sizeof(big));
  msgs[0].bufs = &bufs[0];
  msgs[0].nbufs = 1;
  msgs[0].addr = (const struct sockaddr*) &dest;
  msgs[0].gso_size = 99;
  msgs[0].ecn = -1;
  ASSERT_ERR(UV_EMSGSIZE, uvq_udp_try_send_batch(&tx.udp, msgs, 1, 0));
  peer_stats(&tx, &stats);
  ASSERT_UINT_EQ(0, stats.datagrams_sent);

  /* plain 50, 64 x 100 with GSO, 50 bytes with gso_size 1200 (one
   * segment), plain 50. */
  msgs[0].gso_size = 0;
  bufs[0] = uv_buf_init((char*) small[0], 50);
  msgs[1] = msgs[0];
  bufs[1] = uv_buf_init((char*) big, sizeof(big));
  msgs[1].bufs = &bufs[1];
  msgs[1].gso_size = 100;
  msgs[2] = msgs[0];
  bufs[2] = uv_buf_init((char*) small[1], 50);
  msgs[2].bufs = &bufs[2];
  msgs[2].gso_size = 1200;
  msgs[3] = msgs[0];
  bufs[3] = uv_buf_init((char*) small[2], 50);
  msgs[3].bufs = &bufs[3];
  ASSERT_EQ(4, uvq_udp_try_send_batch(&tx.udp, msgs, 4, 0));

  run_until_rx(&loop, &rx, 1 + 64 + 1 + 1);
  ASSERT_EQ(50, rx.rx[0].nread);
  ASSERT_MEM_EQ(small[0], rx.rx[0].data, 50);
  for (i = 0; i < 64; i++) {
    ASSERT_EQ(100, rx.rx[1 + i].nread);
    ASSERT_MEM_EQ(big + i * 100, rx.rx[1 + i].data, 100);
  }
  ASSERT_EQ(50, rx.rx[65].nread);
  ASSERT_MEM_EQ(small[1], rx.rx[65].data, 50);
  ASSERT_EQ(50, rx.rx[66].nread);
  ASSERT_MEM_EQ(small[2], rx.rx[66].data, 50);
  peer_stats(&tx, &stats);
  ASSERT_UINT_EQ(67, stats.datagrams_sent);
  ASSERT_UINT_EQ(50 * 3 + sizeof(big), stats.bytes_sent);
  if (uvq_udp_features(&tx.udp) & UVQ_UDP_FEATURE_GSO) {
    /* Whether the one-segment message counts as a GSO send is left open
     * by uvq.h; either way the 64-segment one carried 64. */
    ASSERT_UINT_EQ(64, stats.gso_segments - (stats.gso_sends - 1));
    ASSERT_UINT_EQ(0, stats.gso_fallbacks);
  }

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
  return 0;
}
