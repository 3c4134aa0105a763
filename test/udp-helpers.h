/* Shared pieces of the UDP tests: the buffer-ownership tracker, a test
 * peer (a uvq handle that records every receive callback), addresses,
 * payload patterns and bounded loop runners.
 */
#ifndef UVQ_TEST_UDP_HELPERS_H
#define UVQ_TEST_UDP_HELPERS_H

#include <stddef.h>
#include <stdint.h>
#ifndef _WIN32
#include <netinet/in.h>
#include <sys/socket.h>
#endif /* On Windows uv.h brings Winsock. */

#include <uv.h>

#include "uvq.h"

/* How long a test waits for something that should happen at once. */
#define TEST_WAIT_MS 5000
/* How long a test keeps the loop running after the expected callbacks, so
 * that an extra, unexpected callback would still be seen. */
#define TEST_SETTLE_MS 50

/* Non-zero when the library was built with -DUVQ_PORTABLE=ON (or for a
 * platform other than Linux): the tests then expect the portable
 * datapath's features. */
int test_portable_build(void);
/* Non-zero when the library was built for Windows (io-win.c); the tests
 * then expect what the Windows datapath reports. */
int test_windows_build(void);
/* Non-zero when this Windows program runs under Wine, whose Winsock has a
 * known, smaller feature set that the tests assert exactly. */
int test_under_wine(void);
/* The index of the loopback interface ("lo" on Linux). */
unsigned int test_loopback_index(void);

/* --- Buffer ownership ---------------------------------------------------
 *
 * uvq.h: "every buffer alloc_cb hands out comes back exactly once in a
 * callback whose flags lack UVQ_UDP_MMSG_CHUNK, and that is when the
 * caller frees it". The tracker hands out buffers, checks every receive
 * callback against that sentence, and keeps the memory until
 * buf_tracker_free() so that an address is never reused within a test
 * (a late or double return cannot be mistaken for a new buffer).
 */
typedef struct test_buf_s {
  char* base;
  size_t len;
  /* Non-zero once it came back in a callback without MMSG_CHUNK. */
  int returned;
} test_buf_t;

typedef struct buf_tracker_s {
  test_buf_t* bufs;
  unsigned int count;
  unsigned int cap;
  /* Buffers handed out and not returned yet. */
  unsigned int outstanding;
} buf_tracker_t;

void buf_tracker_init(buf_tracker_t* t);
/* Hands out a buffer of size bytes (size 0: base NULL, len 0). */
void buf_tracker_alloc(buf_tracker_t* t, size_t size, uv_buf_t* buf);
/* Checks one receive callback: a CHUNK points inside an outstanding
 * buffer; any other callback with a non-NULL base returns exactly the base
 * of an outstanding buffer. Returns 1 when it returned a buffer. */
int buf_tracker_on_recv(buf_tracker_t* t, const uvq_udp_recv_t* recv);
/* Asserts that every buffer handed out came back. */
void buf_tracker_assert_all_returned(const buf_tracker_t* t);
void buf_tracker_free(buf_tracker_t* t);

/* --- Test peer ---------------------------------------------------------- */

/* One non-terminal receive callback, copied out of the callback. */
typedef struct rx_entry_s {
  /* Position among all of the peer's callbacks (0-based). */
  unsigned int seq;
  ssize_t nread;
  /* A copy of the nread bytes (NULL when nread <= 0). */
  unsigned char* data;
  unsigned int flags;
  int ecn;
  unsigned int ifindex;
  unsigned int segment_size;
  int error;
  unsigned int mtu;
  int has_addr;
  struct sockaddr_storage addr;
  struct sockaddr_storage local;
  int has_offender;
  struct sockaddr_storage offender;
} rx_entry_t;

typedef struct test_peer_s test_peer_t;

/* Called after the peer recorded a callback (entry is NULL for terminal
 * callbacks, which are counted but not recorded). */
typedef void (*test_recv_hook)(test_peer_t* peer,
                               const uvq_udp_recv_t* recv,
                               const rx_entry_t* entry);

struct test_peer_s {
  uvq_udp_t udp;
  uv_loop_t* loop;
  buf_tracker_t tracker;
  /* The bound address, read back with uvq_udp_getsockname(). */
  struct sockaddr_storage name;
  /* Non-terminal callbacks: datagrams, errors, error-queue entries. */
  rx_entry_t* rx;
  unsigned int nrx;
  unsigned int rx_cap;
  /* Every receive callback, and those with MMSG_CHUNK. */
  unsigned int callbacks;
  unsigned int chunk_cbs;
  /* Callbacks that only return a buffer (nread 0, addr NULL), and how many
   * of them had UVQ_UDP_MMSG_FREE. */
  unsigned int terminal_cbs;
  unsigned int free_cbs;
  unsigned int close_cbs;
  /* Callbacks seen before close_cb ran (to check ordering). */
  unsigned int callbacks_at_close;
  /* Size handed to alloc_cb callers; 0 uses suggested_size. */
  size_t alloc_size;
  /* The next this many allocations hand out no buffer (UV_ENOBUFS). */
  unsigned int alloc_refuse;
  unsigned int alloc_calls;
  size_t last_suggested_size;
  test_recv_hook hook;
  /* For the test; the helpers never touch it. */
  void* user;
};

/* Initializes with uvq_udp_init() and asserts success. */
void peer_init(uv_loop_t* loop, test_peer_t* peer);
/* Binds to ip, port 0, with flags; returns the bind() result and on
 * success reads the name back. */
int peer_try_bind(test_peer_t* peer, const char* ip, unsigned int flags);
void peer_bind(test_peer_t* peer, const char* ip, unsigned int flags);
void peer_start(test_peer_t* peer);
unsigned short peer_port(const test_peer_t* peer);
/* Stores ip with the peer's port in out. */
void peer_addr(const test_peer_t* peer,
               const char* ip,
               struct sockaddr_storage* out);
/* Sends one datagram with try_send_batch; returns its result. */
int peer_send(test_peer_t* peer,
              const struct sockaddr* to,
              const void* data,
              size_t len,
              int ecn);
/* The same, asserting that it returned 1. */
void peer_send_ok(test_peer_t* peer,
                  const struct sockaddr* to,
                  const void* data,
                  size_t len,
                  int ecn);
void peer_stats(const test_peer_t* peer, uvq_udp_stats_t* stats);
uv_os_sock_t peer_fd(const test_peer_t* peer);

/* Plain sockets for the tests that make their own: created (the test
 * fails otherwise), asked for their address family, and closed, on POSIX
 * and Winsock alike. */
uv_os_sock_t test_socket(int family, int type);
int test_socket_family(uv_os_sock_t sock);
void test_close_socket(uv_os_sock_t sock);
void peer_close(test_peer_t* peer);
/* After the loop finished: asserts close_cb ran once, after every receive
 * callback, and that every buffer came back; frees what the peer holds. */
void peer_finish(test_peer_t* peer);

/* --- Loop -------------------------------------------------------------- */

/* Runs the loop until cond(arg) is true; fails the test after timeout_ms. */
void run_until(uv_loop_t* loop,
               int (*cond)(void* arg),
               void* arg,
               unsigned int timeout_ms);
/* Runs the loop for ms milliseconds. */
void run_for(uv_loop_t* loop, unsigned int ms);
/* Runs until peer recorded n entries, then TEST_SETTLE_MS longer, and
 * asserts it recorded exactly n. */
void run_until_rx(uv_loop_t* loop, test_peer_t* peer, unsigned int n);
/* Runs the loop to completion (the test closed everything) and asserts
 * uv_loop_close() returns 0; fails with the list of live handles if the
 * loop does not finish within TEST_WAIT_MS. */
void finish_loop(uv_loop_t* loop);

/* --- Addresses and payloads -------------------------------------------- */

void make_addr(struct sockaddr_storage* out, const char* ip,
               unsigned short port);
socklen_t addr_len(const struct sockaddr* addr);
unsigned short addr_port(const struct sockaddr* addr);
/* "1.2.3.4:5" or "[::1]:5". */
const char* addr_str(const struct sockaddr* addr, char* out, size_t len);

/* Asserts same family, address and (when with_port) port. */
#define ASSERT_ADDR_EQ(a, b)                                                  \
  test_assert_addr_eq_(__FILE__, __LINE__, #a, #b,                            \
                       (const struct sockaddr*) (a),                          \
                       (const struct sockaddr*) (b), 1)
#define ASSERT_ADDR_IP_EQ(a, b)                                               \
  test_assert_addr_eq_(__FILE__, __LINE__, #a, #b,                            \
                       (const struct sockaddr*) (a),                          \
                       (const struct sockaddr*) (b), 0)
void test_assert_addr_eq_(const char* file,
                          int line,
                          const char* a_text,
                          const char* b_text,
                          const struct sockaddr* a,
                          const struct sockaddr* b,
                          int with_port);

/* Fills len bytes with a pattern that depends on seed and the offset. */
void fill_pattern(void* buf, size_t len, unsigned int seed);

#endif /* UVQ_TEST_UDP_HELPERS_H */
