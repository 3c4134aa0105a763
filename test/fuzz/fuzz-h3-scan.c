/* libFuzzer target: the count of field lines in an HTTP/3 request's header
 * section, read from the stream's bytes before nghttp3 sees them
 * (quic/h3-scan.c), in process, without sockets.
 *
 * The first byte chooses where the input is cut; the rest is a request
 * stream's bytes. Fed in one piece and fed in pieces, the scan must reach
 * the same state, as QUIC may deliver a stream in any split; once done it
 * must stay done, and a complete section cannot count more field lines
 * than it has bytes.
 *
 *   fuzz-h3-scan -max_total_time=20 NEW_DIR test/fuzz/corpus/h3-scan
 */
#include <stdlib.h>
#include <string.h>

#include "h3-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static void feed(struct uvq__h3_scan* s, const uint8_t* data, size_t len) {
  if (!uvq__h3_scan_done(s))
    uvq__h3_scan_feed(s, data, len);
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  struct uvq__h3_scan whole;
  struct uvq__h3_scan split;
  size_t step;
  size_t off;
  size_t n;

  if (size < 1)
    return 0;
  step = (size_t) data[0] % 7 + 1;
  data++;
  size--;

  memset(&whole, 0, sizeof(whole));
  feed(&whole, data, size);

  memset(&split, 0, sizeof(split));
  for (off = 0; off < size; off += n) {
    n = size - off < step ? size - off : step;
    feed(&split, data + off, n);
    /* One byte at a time for part of the input, larger pieces after. */
    step = step % 7 + 1;
  }
  feed(&split, data, 0);

  if (uvq__h3_scan_done(&whole) != uvq__h3_scan_done(&split) ||
      whole.complete != split.complete || whole.lines != split.lines)
    abort();
  if (whole.complete && whole.lines > size)
    abort();
  return 0;
}
