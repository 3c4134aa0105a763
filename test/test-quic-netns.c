/* QUIC across an emulated path: client in namespace A, server in B, the
 * uvq-wire emulator between them (test/wire). Loss, reordering and delay,
 * heavy loss during the handshake, and CE marking of every packet. */
#include <string.h>
#include <unistd.h>

#include "netns.h"
#include "quic-helpers.h"
#include "task.h"

#define NETNS_BYTES (4u * 1024u * 1024u)
#define WIRE_ADDR_A "10.77.0.1"
#define WIRE_ADDR_B "10.77.0.2"

typedef struct wire_s {
  char prefix[32];
  int up;
} wire_t;

static void wire_down(void* arg) {
  wire_t* w = arg;
  char out[2048];

  test_atexit_cancel(wire_down, w);
  if (!w->up)
    return;
  netns_leave();
  netns_sh_output(out, sizeof(out), "UVQ_WIRE='%s' '%s' down %s",
                  UVQ_WIRE_BINARY, UVQ_WIRE_SCRIPT, w->prefix);
  fprintf(stderr, "wire counters: %s\n", out);
  w->up = 0;
}

static void wire_up(wire_t* w, const char* tag, const char* options) {
  char out[4096];

  NETNS_REQUIRE();
  if (access(UVQ_WIRE_BINARY, X_OK) != 0)
    RETURN_SKIP("the emulator %s is not built", UVQ_WIRE_BINARY);
  snprintf(w->prefix, sizeof(w->prefix), "uvqt-%d-%s", (int) getpid(), tag);
  test_atexit(wire_down, w);
  w->up = 1;
  if (netns_sh_output(out, sizeof(out), "UVQ_WIRE='%s' '%s' up %s -- %s",
                      UVQ_WIRE_BINARY, UVQ_WIRE_SCRIPT, w->prefix,
                      options) != 0)
    test_fail(__FILE__, __LINE__, "wire-netns.sh up failed: %s", out);
}

static void enter(const wire_t* w, const char* side) {
  netns_t ns;

  memset(&ns, 0, sizeof(ns));
  snprintf(ns.name, sizeof(ns.name), "%s-%s", w->prefix, side);
  netns_enter(&ns);
}

/* Server endpoint created and bound in B, client in A. */
static void start_across(qt_t* t, const wire_t* w) {
  enter(w, "B");
  t->ip = WIRE_ADDR_B;
  qt_start_server(t);
  netns_leave();
  enter(w, "A");
  t->ip = WIRE_ADDR_A;
  qt_start_client(t);
  netns_leave();
}

static void transfer_across(const char* tag, const char* options,
                            uint64_t bytes, int ce_all) {
  uvq_udp_stats_t us;
  wire_t w;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;
  uint64_t t0;

  memset(&w, 0, sizeof(w));
  qt_init(&t, WIRE_ADDR_B, NETNS_BYTES);
  wire_up(&w, tag, options);
  start_across(&t, &w);
  t0 = uv_hrtime();
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  id = qt_open_bidi(c);
  qt_write(c, id, bytes, 1);
  s = qt_server_conn(&t, 0);
  qt_run_until_fins(&t, s, 1);
  qt_run_until_writes(&t, &t.client, 1);
  fprintf(stderr, "%s: %" PRIu64 " bytes in %.0f ms\n", tag, bytes,
          QT_MS(t0, uv_hrtime()));
  qt_assert_stream(s, id, bytes);
  ASSERT_EQ(1, t.client.writes_ok);
  ASSERT_OK(uvq_udp_get_stats(uvq_quic_endpoint_udp(t.server.ep), &us));
  if (ce_all) {
    /* Every ECT packet the client sent arrived CE. */
    ASSERT_UINT_GE(us.ecn_received[UVQ_ECN_CE], 1);
    ASSERT_UINT_EQ(0, us.ecn_received[UVQ_ECN_ECT0]);
  }
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, s);
  qt_teardown(&t);
  wire_down(&w);
}

TEST_IMPL(quic_netns_loss_reorder) {
  transfer_across("loss", "--loss 5 --seed 11 --reorder 5 --delay 10",
                  NETNS_BYTES, 0);
  return 0;
}

TEST_IMPL(quic_netns_loss_initial) {
  transfer_across("init",
                  "--loss-initial 30 --loss-initial-ms 2000 --seed 3 "
                  "--delay 10",
                  NETNS_BYTES, 0);
  return 0;
}

TEST_IMPL(quic_netns_ce_all) {
  /* Every packet CE: the sender halves its window each round trip down to
   * the minimum, so this moves less data. */
  transfer_across("ce", "--ce-all --delay 5", 256 * 1024, 1);
  return 0;
}
