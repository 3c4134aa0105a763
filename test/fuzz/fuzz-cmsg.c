/* libFuzzer target: received control messages (src/cmsg.c,
 * uvq__cmsg_decode), in process, without sockets.
 *
 * The first three bytes choose the socket's family and port; the rest is
 * the control buffer as recvmsg() would hand it over, copied into aligned
 * memory of exactly its size so that AddressSanitizer sees any read past
 * it. The decoded metadata must be within its documented ranges, and the
 * ECN codepoint a TOS or traffic class byte encodes (uvq__cmsg_encode)
 * must decode back unchanged.
 *
 *   fuzz-cmsg -max_total_time=20 NEW_DIR test/fuzz/corpus/cmsg
 */
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "internal.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static void check_meta(const struct uvq__recv_meta* m, uint16_t port) {
  if (m->ecn < -1 || m->ecn > 3)
    abort();
  if (m->local.ss_family == AF_INET) {
    if (((const struct sockaddr_in*) &m->local)->sin_port != htons(port))
      abort();
  } else if (m->local.ss_family == AF_INET6) {
    if (((const struct sockaddr_in6*) &m->local)->sin6_port != htons(port))
      abort();
  } else if (m->local.ss_family != 0) {
    abort();
  }
}

/* Encodes tos alone and decodes it: the ECN bits must come back. */
static void round_trip(int tos, int level_v4, int family) {
  struct uvq__send_meta sm;
  struct uvq__recv_meta rm;
  struct msghdr hdr;
  union {
    struct cmsghdr align;
    char buf[256];
  } control;
  size_t len;

  memset(&sm, 0, sizeof(sm));
  sm.level_v4 = level_v4;
  sm.tos = tos;
  if (uvq__cmsg_encode(control.buf, sizeof(control.buf), &sm, &len) != 0)
    abort();
  memset(&hdr, 0, sizeof(hdr));
  hdr.msg_control = control.buf;
  hdr.msg_controllen = len;
  uvq__cmsg_decode(&hdr, 4433, family, &rm);
  if (rm.ecn != (tos & 3))
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  struct uvq__recv_meta meta;
  struct msghdr hdr;
  uint16_t port;
  uint8_t first;
  int family;
  void* control;

  if (size < 3)
    return 0;
  first = data[0];
  family = (first & 1) ? AF_INET6 : AF_INET;
  port = (uint16_t) (data[1] << 8 | data[2]);
  data += 3;
  size -= 3;
  if (size > 4096)
    return 0;

  /* malloc's alignment suits struct cmsghdr; an empty buffer is none. */
  control = size > 0 ? malloc(size) : NULL;
  if (size > 0 && control == NULL)
    abort();
  if (size > 0)
    memcpy(control, data, size);
  memset(&hdr, 0, sizeof(hdr));
  hdr.msg_control = control;
  hdr.msg_controllen = size;
  uvq__cmsg_decode(&hdr, port, family, &meta);
  check_meta(&meta, port);
  free(control);

  /* The same byte, read as a TOS byte: the ECN bits are its low two. */
  round_trip(first, first >> 7, family);
  return 0;
}
