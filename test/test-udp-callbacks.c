/* Callbacks that stop or close the handle in the middle of a batch. */
#include <string.h>

#include "task.h"
#include "udp-helpers.h"

#define NDGRAMS 10
#define ACT_AT 3

enum action { ACT_STOP, ACT_CLOSE };

struct cb_state {
  enum action action;
  /* Flags of the callback that acted, and the callbacks seen by then. */
  unsigned int acted_flags;
  unsigned int callbacks_at_action;
  int acted;
};

static void act_hook(test_peer_t* peer,
                     const uvq_udp_recv_t* recv,
                     const rx_entry_t* entry) {
  struct cb_state* s = peer->user;

  if (entry == NULL || s->acted || peer->nrx != ACT_AT)
    return;
  s->acted = 1;
  s->acted_flags = recv->flags;
  s->callbacks_at_action = peer->callbacks;
  if (s->action == ACT_STOP)
    ASSERT_OK(uvq_udp_recv_stop(&peer->udp));
  else
    peer_close(peer);
}

/* Ten datagrams wait in the socket before the loop runs, so they come in
 * one batch (recvmmsg), or, with gro, as one GRO super-packet. */
static void queue_input(test_peer_t* tx,
                        const struct sockaddr* dest,
                        unsigned char (*payloads)[200],
                        int gro) {
  uvq_udp_mmsg_t msg;
  uv_buf_t buf;
  unsigned int i;

  for (i = 0; i < NDGRAMS; i++)
    fill_pattern(payloads[i], 200, 80 + i);
  if (!gro) {
    for (i = 0; i < NDGRAMS; i++)
      peer_send_ok(tx, dest, payloads[i], 200, -1);
    return;
  }
  buf = uv_buf_init((char*) payloads, NDGRAMS * 200);
  memset(&msg, 0, sizeof(msg));
  msg.bufs = &buf;
  msg.nbufs = 1;
  msg.addr = dest;
  msg.gso_size = 200;
  msg.ecn = -1;
  ASSERT_EQ(1, uvq_udp_try_send_batch(&tx->udp, &msg, 1, 0));
}

/* Whether the third callback must have been a chunk of a larger buffer. */
static int expect_chunks(test_peer_t* rx, test_peer_t* tx, int gro) {
  if (gro)
    return (uvq_udp_features(&rx->udp) & UVQ_UDP_GRO) &&
           (uvq_udp_features(&tx->udp) & UVQ_UDP_FEATURE_GSO);
  return (uvq_udp_features(&rx->udp) & UVQ_UDP_RECVMMSG) != 0;
}

/* recv_stop inside the third callback: nothing more until recv_start2,
 * then the other seven, in order, nothing lost or repeated, every buffer
 * back exactly once. */
static void stop_and_restart(int gro) {
  unsigned char payloads[NDGRAMS][200];
  struct sockaddr_storage dest;
  struct cb_state state;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  unsigned int i;
  int chunked;

  memset(&state, 0, sizeof(state));
  state.action = ACT_STOP;
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  rx.user = &state;
  rx.hook = act_hook;
  peer_bind(&rx, "127.0.0.1", gro ? UVQ_UDP_GRO : 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  chunked = expect_chunks(&rx, &tx, gro);
  queue_input(&tx, (const struct sockaddr*) &dest, payloads, gro);

  run_until_rx(&loop, &rx, ACT_AT);
  ASSERT(state.acted);
  if (chunked)
    ASSERT_BITS_SET(state.acted_flags, UVQ_UDP_MMSG_CHUNK);
  /* Stopping takes effect after the current callback: no other callback
   * (not even a FREE: the buffer is kept for the restart). */
  ASSERT_EQ(state.callbacks_at_action, rx.callbacks);
  ASSERT_EQ(0, uvq_udp_is_active(&rx.udp));

  peer_start(&rx);
  run_until_rx(&loop, &rx, NDGRAMS);
  for (i = 0; i < NDGRAMS; i++) {
    ASSERT_EQ(200, rx.rx[i].nread);
    ASSERT_MEM_EQ(payloads[i], rx.rx[i].data, 200);
    if (chunked && gro)
      ASSERT_EQ(200, rx.rx[i].segment_size);
  }
  if (chunked && gro) {
    ASSERT_EQ(NDGRAMS, rx.chunk_cbs);
    ASSERT_EQ(1, rx.free_cbs);
  }
  buf_tracker_assert_all_returned(&rx.tracker);

  peer_close(&rx);
  peer_close(&tx);
  finish_loop(&loop);
  peer_finish(&rx);
  peer_finish(&tx);
}

TEST_IMPL(udp_cb_stop_in_batch_chunk) {
  stop_and_restart(0);
  return 0;
}

TEST_IMPL(udp_cb_stop_in_gro_chunk) {
  stop_and_restart(1);
  return 0;
}

/* uvq_udp_close inside the third callback: no further datagram; a chunked
 * buffer comes back in exactly one MMSG_FREE callback, before close_cb;
 * close_cb once; the loop ends with nothing left. */
static void close_in_callback(int gro) {
  unsigned char payloads[NDGRAMS][200];
  struct sockaddr_storage dest;
  struct cb_state state;
  test_peer_t rx;
  test_peer_t tx;
  uv_loop_t loop;
  int chunked;

  memset(&state, 0, sizeof(state));
  state.action = ACT_CLOSE;
  ASSERT_OK(uv_loop_init(&loop));
  peer_init(&loop, &rx);
  peer_init(&loop, &tx);
  rx.user = &state;
  rx.hook = act_hook;
  peer_bind(&rx, "127.0.0.1", gro ? UVQ_UDP_GRO : 0);
  peer_bind(&tx, "127.0.0.1", 0);
  peer_start(&rx);
  peer_addr(&rx, "127.0.0.1", &dest);
  chunked = expect_chunks(&rx, &tx, gro);
  queue_input(&tx, (const struct sockaddr*) &dest, payloads, gro);

  run_until_rx(&loop, &rx, ACT_AT);
  ASSERT(state.acted);
  peer_close(&tx);
  finish_loop(&loop);

  ASSERT_EQ(ACT_AT, rx.nrx);
  if (chunked) {
    ASSERT_BITS_SET(state.acted_flags, UVQ_UDP_MMSG_CHUNK);
    ASSERT_EQ(state.callbacks_at_action + 1, rx.callbacks);
    ASSERT_EQ(1, rx.free_cbs);
  } else if (!(state.acted_flags & UVQ_UDP_MMSG_CHUNK)) {
    /* The acting callback returned its own buffer; nothing follows. */
    ASSERT_EQ(state.callbacks_at_action, rx.callbacks);
  }
  /* close_cb ran once, after every receive callback, and every buffer
   * came back exactly once. */
  peer_finish(&rx);
  peer_finish(&tx);
}

TEST_IMPL(udp_cb_close_in_batch_chunk) {
  close_in_callback(0);
  return 0;
}

TEST_IMPL(udp_cb_close_in_gro_chunk) {
  close_in_callback(1);
  return 0;
}
