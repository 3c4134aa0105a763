/* libFuzzer target: datagrams into a core QUIC endpoint (no socket, no
 * loop, no clock), as a server receiving clients' packets or as a client
 * receiving a server's replies to its connection attempt.
 *
 * Input: a mode byte, then records, each [flags][aux][length, 2 octets
 * big-endian][datagram]. The mode byte:
 *   bit 0  role: 0 the endpoint is a server, 1 a client (which connects to
 *          the server's address before the first record)
 *   bit 1  0: a fresh endpoint for this input alone (time starts again,
 *          the random stream too: the input replays alone); 1: the
 *          endpoint of the role that lives across inputs, as a real one
 *          does (recreated every PERSIST_INPUTS inputs, or when it holds
 *          PERSIST_CONNS connections, so that memory stays bounded)
 *   bit 2  fresh server: Retry for every Initial without a token; fresh
 *          client: start in QUIC v2
 * A record's flags: bits 0-1 the path (fz_client_addr), bits 2-4 how
 * far the clock moves before the datagram (0, 0.1 ms, 1 ms, 10 ms, 0.1 s,
 * 1 s, 10 s; 7: to the endpoint's next expiry), bit 5 run
 * uvq_quic_endpoint_expire() after it, bits 6-7 its ECN codepoint. aux:
 * bits 0-1 how much the transmit sink takes during this record (0, 1:
 * all; 2: nothing, the socket is full; 3: one message), bit 2 no flush
 * after the record (the next record's datagram joins the batch), bit 3
 * the datagram is an Initial in the clear, which the harness protects
 * (quic-endpoint-harness.c: [DCID length][DCID][SCID length][SCID]
 * [token length][token][packet number][frames]; so that mutations reach
 * the frames, the TLS messages and the transport parameters, which a
 * protected packet's AEAD tag keeps them from). A length of 0 feeds no
 * datagram: the record only moves the clock, expires and flushes. A
 * length past the end of the input is cut.
 *
 * What the endpoint sends goes to a sink that checks it: one to sixteen
 * messages per call, each with a destination the endpoint has heard from
 * (or connected to), a source it was given as a local address, one ECN
 * codepoint, a GSO stride that fits the payload. A broken rule aborts.
 *
 * Each endpoint draws its random bytes from a fixed stream
 * (quic-endpoint-harness.c says how and why): an input with a fresh
 * endpoint replays alone. The seeds of test/fuzz/corpus/quic-endpoint are
 * made by quic-endpoint-seeds.c (fuzz-quic-endpoint-seeds CORPUS_DIR),
 * which runs a client and a server against each other and keeps what
 * each was fed.
 *
 *   fuzz-quic-endpoint -max_total_time=60 NEW_DIR \
 *     test/fuzz/corpus/quic-endpoint
 *   fuzz-quic-endpoint-seeds test/fuzz/corpus/quic-endpoint
 */
#include <stdlib.h>
#include <string.h>

#include "quic-endpoint-harness.h"

/* The persistent endpoints are made again after this many inputs, or once
 * they hold this many connections. */
#define PERSIST_INPUTS 64
#define PERSIST_CONNS 32

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static struct fz_side persistent[2];
static int ready;

static void close_persistent(void) {
  fz_side_close(&persistent[0]);
  fz_side_close(&persistent[1]);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  struct fz_side fresh;
  struct fz_side* s;
  uint8_t mode;
  int role;

  if (!ready) {
    fz_init();
    atexit(close_persistent);
    ready = 1;
  }
  if (size < 1)
    return 0;
  mode = data[0];
  data++;
  size--;
  role = mode & MODE_CLIENT ? ROLE_CLIENT : ROLE_SERVER;

  if (mode & MODE_PERSIST) {
    s = &persistent[role];
    if (s->ep != NULL && (s->inputs >= PERSIST_INPUTS ||
                          s->conns >= PERSIST_CONNS))
      fz_side_close(s);
    if (s->ep == NULL)
      fz_side_open(s, role, 0);
    s->inputs++;
  } else {
    s = &fresh;
    memset(s, 0, sizeof(*s));
    fz_side_open(s, role, mode & MODE_VARIANT);
  }
  if (role == ROLE_CLIENT)
    fz_side_connect(s, !(mode & MODE_PERSIST) && (mode & MODE_VARIANT));

  while (size >= 4) {
    uint8_t flags = data[0];
    uint8_t aux = data[1];
    size_t len = (size_t) data[2] << 8 | data[3];

    data += 4;
    size -= 4;
    if (len > size)
      len = size;
    fz_side_record(s, flags, aux, data, len);
    data += len;
    size -= len;
  }

  if (s == &fresh)
    fz_side_close(s);
  return 0;
}
