/* Shared harness of the UDP datapath benchmarks (bench-udp-raw,
 * bench-udp-libuv, bench-udp-uvq).
 *
 * One run is one process pair on loopback: the program forks, the child
 * receives and the parent sends, each pinned to its own CPU. The two talk
 * over a small control socket (a socketpair) that carries the receiver's
 * port, the receiver's acknowledgements in flow-controlled runs, the
 * end-of-run handshake and the receiver's results. Nothing on that channel
 * is on the per-datagram path.
 *
 * A run has three phases, stamped into every datagram by the sender:
 * warm-up (0), measurement (1) and trailer (2). The receiver starts its
 * clock and its CPU and syscall counters at the first measurement datagram
 * and stops them at the first trailer, so goodput is measured where it
 * arrives, not where it was sent. Loss is the sender's count of measurement
 * datagrams the kernel accepted minus the receiver's count of those that
 * arrived.
 *
 * Each implementation file provides bench_impl_name, bench_impl_supports(),
 * bench_impl_send() and bench_impl_receive(); bench.c has main().
 */
#ifndef UVQ_BENCH_H
#define UVQ_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>

/* How the sender hands datagrams to the kernel. */
enum bench_send_kind {
  BENCH_SEND_SINGLE,   /* one datagram per system call */
  BENCH_SEND_MMSG,     /* sendmmsg, batch datagrams per call */
  BENCH_SEND_GSO,      /* one UDP_SEGMENT message per call */
  BENCH_SEND_GSO_MMSG  /* sendmmsg of gso_batch UDP_SEGMENT messages */
};

/* How the receiver takes them from the kernel. */
enum bench_recv_kind {
  BENCH_RECV_SINGLE,   /* one recvmsg per datagram */
  BENCH_RECV_MMSG,     /* recvmmsg, batch datagrams per call */
  BENCH_RECV_GRO,      /* UDP_GRO, super-packets split per segment */
  BENCH_RECV_GRO_RAW   /* UDP_GRO, super-packets handed over whole */
};

/* A send mode paired with the receive mode that makes sense for it. */
typedef struct bench_mode {
  const char* name;
  enum bench_send_kind send;
  enum bench_recv_kind recv;
} bench_mode_t;

extern const bench_mode_t bench_modes[];
extern const unsigned int bench_mode_count;

typedef struct bench_options {
  const bench_mode_t* mode;
  /* Payload bytes of every datagram. */
  unsigned int size;
  unsigned int warmup_ms;
  unsigned int duration_ms;
  /* Non-zero: the sender keeps at most window datagrams beyond the
   * receiver's last acknowledgement. Zero: the sender never waits. */
  int flow;
  /* Datagrams in flight in flow-controlled runs. */
  unsigned int window;
  /* The receiver acknowledges every ack_every datagrams. */
  unsigned int ack_every;
  /* Datagrams per sendmmsg/recvmmsg call in the non-GSO modes. */
  unsigned int batch;
  /* UDP_SEGMENT messages per sendmmsg, and GRO slots per recvmmsg. */
  unsigned int gso_batch;
  /* Segments per UDP_SEGMENT message (at most 64 and 65507 bytes). */
  unsigned int gso_segments;
  /* Datagrams an event-loop sender sends per loop iteration before it
   * yields to the loop. */
  unsigned int burst;
  int send_cpu;
  int recv_cpu;
  /* Requested SO_RCVBUF / SO_SNDBUF (SO_*BUFFORCE when permitted). */
  int rcvbuf;
  int sndbuf;
  /* Count system calls with per-thread tracepoint counters. */
  int count_syscalls;
  /* Give up when the run takes this much longer than planned. */
  unsigned int timeout_ms;
} bench_options_t;

/* Datagrams start with this header; the rest of the payload is filler. */
#define BENCH_MAGIC 0x75767142u /* "Bqvu" */
typedef struct bench_header {
  uint32_t magic;
  uint32_t phase;
  uint64_t seq;
} bench_header_t;

/* A snapshot of the clock, the CPU time and the system call counters. */
typedef struct bench_usage {
  uint64_t ns;
  double cpu_user;
  double cpu_sys;
  /* From the tracepoint counters; all zero when they are unavailable. */
  uint64_t sc_all;
  uint64_t sc_send;
  uint64_t sc_recv;
  uint64_t sc_poll;
  /* From the implementation's own count (bench_*_t.self_io). */
  uint64_t self_io;
} bench_usage_t;

/* Returns the implementation's own count of datagram system calls. */
typedef uint64_t (*bench_io_count_fn)(void* arg);

typedef struct bench_sender {
  const bench_options_t* opt;
  int ctl;
  /* Sequence number of the next datagram to fill. */
  uint64_t next_seq;
  /* Phase that newly filled datagrams get. */
  int phase;
  uint64_t t_measure;
  uint64_t t_stop;
  /* Highest sequence number the receiver reported, plus one. */
  uint64_t acked;
  /* Datagrams and bytes the kernel accepted, per phase. */
  uint64_t sent[3];
  uint64_t sent_bytes[3];
  /* Times the sender found its flow-control window full. */
  uint64_t stalls;
  /* Sends that failed with EAGAIN/ENOBUFS. */
  uint64_t eagain;
  bench_io_count_fn self_io;
  void* self_io_arg;
  bench_usage_t u0;
  bench_usage_t u1;
  /* Implementation-specific JSON members ("\"k\":v,..."), may be empty. */
  char extra[1024];
  /* Control bytes read but not yet parsed. */
  unsigned char ctl_buf[16384];
  size_t ctl_len;
  int trailer_seen;
  char* peer_result;
} bench_sender_t;

typedef struct bench_receiver {
  const bench_options_t* opt;
  int ctl;
  /* Datagrams and bytes that arrived, per phase. */
  uint64_t received[3];
  uint64_t received_bytes[3];
  /* Highest sequence number seen, plus one. */
  uint64_t highest;
  /* Datagrams that arrived after a higher sequence number. */
  uint64_t reordered;
  /* Datagrams with a wrong size or header. */
  uint64_t bad;
  uint64_t since_ack;
  int started;
  int done;
  bench_io_count_fn self_io;
  void* self_io_arg;
  bench_usage_t u0;
  bench_usage_t u1;
  int rcvbuf;
  char extra[1024];
} bench_receiver_t;

/* Provided by each implementation. */
extern const char* const bench_impl_name;
int bench_impl_supports(const bench_mode_t* mode);
/* Sends until bench_sender_phase() returns 2, waits for its queued sends,
 * then calls bench_sender_finish() with its socket. Returns 0 or -errno. */
int bench_impl_send(bench_sender_t* s, const struct sockaddr_in* dst);
/* Binds, calls bench_receiver_ready(), and receives until r->done. */
int bench_impl_receive(bench_receiver_t* r);
/* A version string for the JSON ("libuv 1.44.2", ...). */
const char* bench_impl_version(void);

uint64_t bench_now_ns(void);
void bench_usage_take(bench_usage_t* u, bench_io_count_fn fn, void* arg);

/* Sets SO_RCVBUF/SO_SNDBUF, with the FORCE variant when allowed; returns
 * the value the kernel reports back. */
int bench_set_rcvbuf(int fd, int bytes);
int bench_set_sndbuf(int fd, int bytes);

/* Sender side. */
int bench_sender_phase(bench_sender_t* s);
static inline int bench_sender_window_open(const bench_sender_t* s) {
  return !s->opt->flow || s->next_seq - s->acked < s->opt->window;
}
/* Reads acknowledgements; blocks for one when block is set. Returns 0 or
 * -errno (-EPIPE when the receiver went away). */
int bench_sender_read_ctl(bench_sender_t* s, int block);
static inline void bench_fill(char* p, uint64_t seq, int phase) {
  bench_header_t h;
  h.magic = BENCH_MAGIC;
  h.phase = (uint32_t) phase;
  h.seq = seq;
  memcpy(p, &h, sizeof(h));
}
static inline void bench_sender_count(bench_sender_t* s,
                                      int phase,
                                      uint64_t datagrams) {
  s->sent[phase] += datagrams;
  s->sent_bytes[phase] += datagrams * s->opt->size;
}
/* Stops the sender's counters, sends trailer datagrams on fd until the
 * receiver has seen one, and collects the receiver's results. */
int bench_sender_finish(bench_sender_t* s, int fd);

/* Receiver side. */
int bench_receiver_ready(bench_receiver_t* r, unsigned short port);
void bench_receiver_start(bench_receiver_t* r);
void bench_receiver_stop(bench_receiver_t* r);
void bench_receiver_ack(bench_receiver_t* r);
/* Deadline (bench_now_ns() clock) after which a receiver gives up. */
uint64_t bench_receiver_deadline(const bench_receiver_t* r);

static inline void bench_receiver_datagram(bench_receiver_t* r,
                                           const char* p,
                                           size_t len) {
  bench_header_t h;
  if (len != r->opt->size) {
    r->bad++;
    return;
  }
  memcpy(&h, p, sizeof(h));
  if (h.magic != BENCH_MAGIC || h.phase > 2) {
    r->bad++;
    return;
  }
  if (h.seq >= r->highest)
    r->highest = h.seq + 1;
  else
    r->reordered++;
  r->received[h.phase]++;
  r->received_bytes[h.phase] += len;
  if (h.phase == 1 && !r->started)
    bench_receiver_start(r);
  else if (h.phase == 2 && !r->done)
    bench_receiver_stop(r);
  if (r->opt->flow && ++r->since_ack >= r->opt->ack_every)
    bench_receiver_ack(r);
}

/* Splits a GRO super-packet of len bytes with the given stride. */
static inline void bench_receiver_super(bench_receiver_t* r,
                                        const char* p,
                                        size_t len,
                                        size_t stride) {
  if (stride == 0)
    stride = len;
  while (len > 0) {
    size_t n = len < stride ? len : stride;
    bench_receiver_datagram(r, p, n);
    p += n;
    len -= n;
  }
}

/* A small free list of equally sized receive buffers, so that event-loop
 * receivers do not call malloc (or mmap, for batch buffers) per batch. */
typedef struct bench_pool {
  size_t size;
  unsigned int count;
  void* free[64];
} bench_pool_t;
void* bench_pool_get(bench_pool_t* pool, size_t size);
void bench_pool_put(bench_pool_t* pool, void* p);

#endif /* UVQ_BENCH_H */
