/* Network namespaces for tests: create them, wire them with veth pairs,
 * run commands in them and create sockets inside them.
 *
 * A socket belongs to the namespace its creator was in when it was made,
 * and keeps working from any namespace afterwards. So a test enters a
 * namespace (netns_enter), creates or binds its handles there, and goes
 * back (netns_leave); one process and one event loop can then drive
 * sockets in several namespaces at once. The process must be
 * single-threaded when it switches, which a libuv test without the thread
 * pool is.
 *
 * Every namespace is named "uvqt-<pid>-<tag>" and registered with
 * test_atexit(), so it is removed however the test ends. Namespaces left
 * by a test process that was killed outright are removed by the next
 * netns_create().
 */
#ifndef UVQ_TEST_NETNS_H
#define UVQ_TEST_NETNS_H

#include <stddef.h>

#include "task.h" /* TEST_ATTRIBUTE */

#define NETNS_NAME_MAX 64

typedef struct netns_s {
  /* The name under /var/run/netns. */
  char name[NETNS_NAME_MAX];
  /* Non-zero while the namespace exists and is owned by this process. */
  int created;
} netns_t;

/* Returns 0 when namespaces can be created here; otherwise stores why not
 * in reason and returns -1. Probes once by creating and removing one. */
int netns_supported(char* reason, size_t reason_len);

/* Creates namespace "uvqt-<pid>-<tag>" with its loopback up. Returns 0,
 * or -1 with the command's output in the test log. */
int netns_create(netns_t* ns, const char* tag);

/* Removes the namespace (and the veth ends inside it). Idempotent. */
void netns_destroy(netns_t* ns);

/* Runs a shell command on the host, output to the test log. Returns the
 * command's exit status (0 on success). */
int netns_sh(const char* fmt, ...) TEST_ATTRIBUTE((format(TEST_PRINTF_FORMAT, 1, 2)));

/* Like netns_sh but stores the command's combined output in out (which may
 * be NULL) instead of logging it. */
int netns_sh_output(char* out, size_t out_len, const char* fmt, ...)
    TEST_ATTRIBUTE((format(TEST_PRINTF_FORMAT, 3, 4)));

/* Runs a shell command inside ns ("ip netns exec NAME sh -c ..."). */
int netns_exec(const netns_t* ns, const char* fmt, ...)
    TEST_ATTRIBUTE((format(TEST_PRINTF_FORMAT, 2, 3)));

/* Creates a veth pair: end a_if in namespace a, end b_if in namespace b,
 * both up with the given MTU (0 keeps the default). */
int netns_veth(const netns_t* a,
               const char* a_if,
               const netns_t* b,
               const char* b_if,
               unsigned int mtu);

/* Adds an address (CIDR notation, IPv4 or IPv6; IPv6 ones get nodad so
 * they are usable at once) to dev inside ns. */
int netns_addr(const netns_t* ns, const char* dev, const char* cidr);

/* Moves this thread into ns. Aborts the test on failure. */
void netns_enter(const netns_t* ns);

/* Moves this thread back to the namespace it started in. */
void netns_leave(void);

/* Fails the test with a skip when namespaces cannot be used. */
#define NETNS_REQUIRE()                                                       \
  do {                                                                        \
    char netns_reason_[256];                                                  \
    if (netns_supported(netns_reason_, sizeof(netns_reason_)) != 0)           \
      RETURN_SKIP("network namespaces unavailable: %s", netns_reason_);       \
  } while (0)

#endif /* UVQ_TEST_NETNS_H */
