/* QUIC across an emulated path: client in namespace A, server in B, the
 * uvq-wire emulator between them (test/wire). Loss, reordering and delay,
 * heavy loss during the handshake, CE marking of every packet, and packets
 * altered on the way under each AEAD. */
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

/* The emulator's "corrupted" counter for both directions together. */
static uint64_t wire_corrupted(const wire_t* w) {
  char out[4096];
  const char* p;
  uint64_t n;

  netns_leave();
  if (netns_sh_output(out, sizeof(out), "UVQ_WIRE='%s' '%s' stats %s",
                      UVQ_WIRE_BINARY, UVQ_WIRE_SCRIPT, w->prefix) != 0)
    test_fail(__FILE__, __LINE__, "wire-netns.sh stats failed: %s", out);
  n = 0;
  for (p = strstr(out, "\"corrupted\":"); p != NULL;
       p = strstr(p + 1, "\"corrupted\":"))
    n += strtoull(p + strlen("\"corrupted\":"), NULL, 10);
  return n;
}

/* suites: both sides' tls_ciphersuites (NULL: the default). corrupted:
 * where to put the emulator's count of altered packets (NULL: unread). */
static void transfer_across(const char* tag, const char* options,
                            uint64_t bytes, int ce_all, const char* suites,
                            uint64_t* corrupted) {
  uvq_udp_stats_t us;
  wire_t w;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;
  uint64_t t0;

  memset(&w, 0, sizeof(w));
  qt_init(&t, WIRE_ADDR_B, NETNS_BYTES);
  t.server.cfg.tls_ciphersuites = suites;
  t.client.cfg.tls_ciphersuites = suites;
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
  /* The client closes. Its CONNECTION_CLOSE is sent once and may itself
   * be lost or altered on this wire, and the server has nothing more to
   * send that would make the client repeat it, so the server is not
   * waited for: the teardown closes it. */
  t.in_api++;
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  t.in_api--;
  qt_run_until_closed(&t, c);
  qt_teardown(&t);
  if (corrupted != NULL)
    *corrupted = wire_corrupted(&w);
  wire_down(&w);
}

TEST_IMPL(quic_netns_loss_reorder) {
  transfer_across("loss", "--loss 5 --seed 11 --reorder 5 --delay 10",
                  NETNS_BYTES, 0, NULL, NULL);
  return 0;
}

TEST_IMPL(quic_netns_loss_initial) {
  transfer_across("init",
                  "--loss-initial 30 --loss-initial-ms 2000 --seed 3 "
                  "--delay 10",
                  NETNS_BYTES, 0, NULL, NULL);
  return 0;
}

TEST_IMPL(quic_netns_ce_all) {
  /* Every packet CE: the sender halves its window each round trip down to
   * the minimum, so this moves less data. */
  transfer_across("ce", "--ce-all --delay 5", 256 * 1024, 1, NULL, NULL);
  return 0;
}

/* One datagram in 50 has a bit flipped on the way, its UDP checksum fixed
 * so that the kernel delivers it: only the AEAD can tell. Every altered
 * packet must be discarded (and its data resent), so the stream arrives
 * byte for byte. Under ChaCha20-Poly1305 this is the check that failed
 * before uvq opened those packets itself: wolfSSL's EVP path accepted
 * forged tags (CVE-2026-5479) and altered data reached the stream. */
static void corrupt_across(const char* tag, const char* suite) {
  uint64_t corrupted;

  transfer_across(tag, "--corrupt 2 --seed 5 --delay 2", NETNS_BYTES, 0,
                  suite, &corrupted);
  fprintf(stderr, "%s: %" PRIu64 " packets altered on the wire\n", tag,
          corrupted);
  ASSERT_UINT_GE(corrupted, 20);
}

TEST_IMPL(quic_netns_corrupt_chacha20) {
  corrupt_across("c20", "TLS_CHACHA20_POLY1305_SHA256");
  return 0;
}

TEST_IMPL(quic_netns_corrupt_aes256gcm) {
  corrupt_across("a256", "TLS_AES_256_GCM_SHA384");
  return 0;
}
