/* Network namespaces outside Linux (Windows, macOS, the BSDs): there are
 * none. netns_supported() says so, and every test that needs them skips with that reason through
 * NETNS_REQUIRE() before it would call anything else here; the other
 * functions fail the test if one is reached anyway. */
#include "netns.h"

#include <stdio.h>

#include "task.h"

static const char reason[] =
    "network namespaces and veth pairs are Linux-only";

int netns_supported(char* out, size_t out_len) {
  snprintf(out, out_len, "%s", reason);
  return -1;
}

#define UNREACHABLE() test_fail(__FILE__, __LINE__, "%s", reason)

int netns_create(netns_t* ns, const char* tag) {
  (void) ns;
  (void) tag;
  UNREACHABLE();
  return -1;
}

void netns_destroy(netns_t* ns) {
  (void) ns;
}

int netns_sh(const char* fmt, ...) {
  (void) fmt;
  UNREACHABLE();
  return -1;
}

int netns_sh_output(char* out, size_t out_len, const char* fmt, ...) {
  (void) out;
  (void) out_len;
  (void) fmt;
  UNREACHABLE();
  return -1;
}

int netns_exec(const netns_t* ns, const char* fmt, ...) {
  (void) ns;
  (void) fmt;
  UNREACHABLE();
  return -1;
}

int netns_veth(const netns_t* a,
               const char* a_if,
               const netns_t* b,
               const char* b_if,
               unsigned int mtu) {
  (void) a;
  (void) a_if;
  (void) b;
  (void) b_if;
  (void) mtu;
  UNREACHABLE();
  return -1;
}

int netns_addr(const netns_t* ns, const char* dev, const char* cidr) {
  (void) ns;
  (void) dev;
  (void) cidr;
  UNREACHABLE();
  return -1;
}

void netns_enter(const netns_t* ns) {
  (void) ns;
  UNREACHABLE();
}

void netns_leave(void) {
}
