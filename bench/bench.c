/* The harness shared by the UDP benchmarks: options, the process pair, the
 * control channel, CPU and system call accounting, and the JSON report.
 * See bench.h for how a run is measured.
 */
#include "bench.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

const bench_mode_t bench_modes[] = {
  { "sendmsg-recvmsg", BENCH_SEND_SINGLE, BENCH_RECV_SINGLE },
  { "sendmmsg-recvmmsg", BENCH_SEND_MMSG, BENCH_RECV_MMSG },
  { "gso-recvmmsg", BENCH_SEND_GSO, BENCH_RECV_MMSG },
  { "gso-gro", BENCH_SEND_GSO, BENCH_RECV_GRO },
  { "gsommsg-gro", BENCH_SEND_GSO_MMSG, BENCH_RECV_GRO },
  { "gsommsg-groraw", BENCH_SEND_GSO_MMSG, BENCH_RECV_GRO_RAW },
};
const unsigned int bench_mode_count = sizeof(bench_modes) / sizeof(bench_modes[0]);

static const char* const send_kind_names[] = { "sendmsg", "sendmmsg", "gso",
                                               "gso+sendmmsg" };
static const char* const recv_kind_names[] = { "recvmsg", "recvmmsg", "gro",
                                               "gro-raw" };

/* Control records: a type, and a value (for RESULT, the length of the JSON
 * text that follows). */
enum { CTL_PORT = 1, CTL_ACK = 2, CTL_TRAILER_SEEN = 3, CTL_RESULT = 4 };
typedef struct ctl_record {
  uint32_t type;
  uint32_t pad;
  uint64_t value;
} ctl_record_t;

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* System call counting. Per-thread perf counters on the syscall entry
 * tracepoints count every call the process makes, including those libuv
 * makes through syscall(2), at the cost of the kernel's tracing slow path on
 * every system call of every process while they are open; bench runs of all
 * implementations pay it alike (--no-syscall-count turns it off). */
enum { SC_ALL, SC_SEND, SC_RECV, SC_POLL };
static struct {
  int leader;
  unsigned int n;
  int kind[16];
} syscount = { -1, 0, { 0 } };

static long tracepoint_id(const char* event) {
  static const char* const roots[] = { "/sys/kernel/tracing/events",
                                       "/sys/kernel/debug/tracing/events" };
  char path[256];
  unsigned int i;
  for (i = 0; i < 2; i++) {
    FILE* f;
    long id;
    snprintf(path, sizeof(path), "%s/%s/id", roots[i], event);
    f = fopen(path, "r");
    if (f == NULL)
      continue;
    if (fscanf(f, "%ld", &id) != 1)
      id = -1;
    fclose(f);
    return id;
  }
  return -1;
}

static void syscount_open(void) {
  static const struct {
    const char* event;
    int kind;
  } events[] = {
    { "raw_syscalls/sys_enter", SC_ALL },
    { "syscalls/sys_enter_sendmsg", SC_SEND },
    { "syscalls/sys_enter_sendmmsg", SC_SEND },
    { "syscalls/sys_enter_sendto", SC_SEND },
    { "syscalls/sys_enter_recvmsg", SC_RECV },
    { "syscalls/sys_enter_recvmmsg", SC_RECV },
    { "syscalls/sys_enter_recvfrom", SC_RECV },
    { "syscalls/sys_enter_epoll_wait", SC_POLL },
    { "syscalls/sys_enter_epoll_pwait", SC_POLL },
    { "syscalls/sys_enter_epoll_pwait2", SC_POLL },
    { "syscalls/sys_enter_poll", SC_POLL },
    { "syscalls/sys_enter_ppoll", SC_POLL },
  };
  unsigned int i;
  for (i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
    struct perf_event_attr attr;
    long id = tracepoint_id(events[i].event);
    int fd;
    if (id < 0) {
      if (i == 0)
        return;
      continue;
    }
    memset(&attr, 0, sizeof(attr));
    attr.type = PERF_TYPE_TRACEPOINT;
    attr.size = sizeof(attr);
    attr.config = (uint64_t) id;
    attr.read_format = PERF_FORMAT_GROUP;
    fd = (int) syscall(SYS_perf_event_open, &attr, 0, -1, syscount.leader, 0);
    if (fd < 0) {
      if (i == 0)
        return;
      continue;
    }
    if (i == 0)
      syscount.leader = fd;
    syscount.kind[syscount.n++] = events[i].kind;
  }
}

static void syscount_read(bench_usage_t* u) {
  uint64_t values[1 + 16];
  unsigned int i;
  u->sc_all = u->sc_send = u->sc_recv = u->sc_poll = 0;
  if (syscount.leader < 0)
    return;
  if (read(syscount.leader, values, sizeof(values)) < (ssize_t) sizeof(uint64_t))
    return;
  for (i = 0; i < values[0] && i < syscount.n; i++) {
    switch (syscount.kind[i]) {
      case SC_ALL: u->sc_all += values[1 + i]; break;
      case SC_SEND: u->sc_send += values[1 + i]; break;
      case SC_RECV: u->sc_recv += values[1 + i]; break;
      case SC_POLL: u->sc_poll += values[1 + i]; break;
    }
  }
}

void bench_usage_take(bench_usage_t* u, bench_io_count_fn fn, void* arg) {
  struct rusage ru;
  syscount_read(u);
  getrusage(RUSAGE_SELF, &ru);
  u->cpu_user = (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  u->cpu_sys = (double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  u->self_io = fn != NULL ? fn(arg) : 0;
  u->ns = bench_now_ns();
}

static int set_buffer(int fd, int force_opt, int opt, int bytes) {
  int value = 0;
  socklen_t len = sizeof(value);
  /* SO_*BUFFORCE ignores net.core.[rw]mem_max but needs CAP_NET_ADMIN. */
  if (setsockopt(fd, SOL_SOCKET, force_opt, &bytes, sizeof(bytes)) != 0)
    setsockopt(fd, SOL_SOCKET, opt, &bytes, sizeof(bytes));
  if (getsockopt(fd, SOL_SOCKET, opt, &value, &len) != 0)
    return -errno;
  return value;
}

int bench_set_rcvbuf(int fd, int bytes) {
  return set_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, bytes);
}

int bench_set_sndbuf(int fd, int bytes) {
  return set_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, bytes);
}

static int ctl_write(int fd, uint32_t type, uint64_t value, int block) {
  ctl_record_t rec;
  ssize_t n;
  memset(&rec, 0, sizeof(rec));
  rec.type = type;
  rec.value = value;
  do
    n = send(fd, &rec, sizeof(rec), block ? 0 : MSG_DONTWAIT);
  while (n < 0 && errno == EINTR);
  return n == (ssize_t) sizeof(rec) ? 0 : -1;
}

static int write_all(int fd, const char* p, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, p, len, 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      return -errno;
    }
    p += n;
    len -= (size_t) n;
  }
  return 0;
}

static int wait_readable(int fd, int timeout_ms) {
  struct pollfd pfd;
  int r;
  pfd.fd = fd;
  pfd.events = POLLIN;
  do
    r = poll(&pfd, 1, timeout_ms);
  while (r < 0 && errno == EINTR);
  return r;
}

/* Sender side. */

int bench_sender_phase(bench_sender_t* s) {
  uint64_t now;
  if (s->phase == 2)
    return 2;
  now = bench_now_ns();
  if (s->phase == 0 && now >= s->t_measure) {
    bench_usage_take(&s->u0, s->self_io, s->self_io_arg);
    s->phase = 1;
  }
  if (s->phase == 1 && now >= s->t_stop)
    s->phase = 2;
  return s->phase;
}

static void sender_parse_ctl(bench_sender_t* s) {
  size_t off = 0;
  while (s->ctl_len - off >= sizeof(ctl_record_t)) {
    ctl_record_t rec;
    memcpy(&rec, s->ctl_buf + off, sizeof(rec));
    if (rec.type == CTL_RESULT) {
      size_t len = (size_t) rec.value;
      if (s->ctl_len - off - sizeof(rec) < len)
        break;
      free(s->peer_result);
      s->peer_result = malloc(len + 1);
      if (s->peer_result != NULL) {
        memcpy(s->peer_result, s->ctl_buf + off + sizeof(rec), len);
        s->peer_result[len] = '\0';
      }
      off += sizeof(rec) + len;
      continue;
    }
    if (rec.type == CTL_ACK && rec.value > s->acked)
      s->acked = rec.value;
    else if (rec.type == CTL_TRAILER_SEEN)
      s->trailer_seen = 1;
    off += sizeof(rec);
  }
  memmove(s->ctl_buf, s->ctl_buf + off, s->ctl_len - off);
  s->ctl_len -= off;
}

int bench_sender_read_ctl(bench_sender_t* s, int block) {
  for (;;) {
    ssize_t n = recv(s->ctl,
                     s->ctl_buf + s->ctl_len,
                     sizeof(s->ctl_buf) - s->ctl_len,
                     MSG_DONTWAIT);
    if (n > 0) {
      s->ctl_len += (size_t) n;
      sender_parse_ctl(s);
      block = 0;
      continue;
    }
    if (n == 0)
      return -EPIPE;
    if (errno == EINTR)
      continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK)
      return -errno;
    if (!block)
      return 0;
    if (wait_readable(s->ctl, 1000) < 0)
      return -errno;
  }
}

int bench_sender_finish(bench_sender_t* s, int fd) {
  char* buf;
  uint64_t deadline;
  int r = 0;

  bench_usage_take(&s->u1, s->self_io, s->self_io_arg);
  s->phase = 2;
  buf = calloc(1, s->opt->size);
  if (buf == NULL)
    return -ENOMEM;
  /* Trailers may be lost like any datagram, so keep sending one every
   * millisecond until the receiver says it saw one. */
  deadline = bench_now_ns() + 3000000000u;
  while (!s->trailer_seen && bench_now_ns() < deadline) {
    bench_fill(buf, s->next_seq, 2);
    if (send(fd, buf, s->opt->size, MSG_DONTWAIT) == (ssize_t) s->opt->size) {
      s->next_seq++;
      bench_sender_count(s, 2, 1);
    }
    wait_readable(s->ctl, 1);
    r = bench_sender_read_ctl(s, 0);
    if (r != 0)
      break;
  }
  free(buf);
  deadline = bench_now_ns() + 3000000000u;
  while (r == 0 && s->peer_result == NULL && bench_now_ns() < deadline)
    r = bench_sender_read_ctl(s, 1);
  if (s->peer_result == NULL)
    return r != 0 ? r : -ETIMEDOUT;
  return 0;
}

/* Receiver side. */

int bench_receiver_ready(bench_receiver_t* r, unsigned short port) {
  return ctl_write(r->ctl, CTL_PORT, port, 1) == 0 ? 0 : -EPIPE;
}

void bench_receiver_start(bench_receiver_t* r) {
  bench_usage_take(&r->u0, r->self_io, r->self_io_arg);
  r->started = 1;
}

void bench_receiver_stop(bench_receiver_t* r) {
  bench_usage_take(&r->u1, r->self_io, r->self_io_arg);
  r->done = 1;
  ctl_write(r->ctl, CTL_TRAILER_SEEN, 0, 1);
}

void bench_receiver_ack(bench_receiver_t* r) {
  r->since_ack = 0;
  ctl_write(r->ctl, CTL_ACK, r->highest, 0);
}

static uint64_t receiver_deadline;

uint64_t bench_receiver_deadline(const bench_receiver_t* r) {
  (void) r;
  return receiver_deadline;
}

/* Receive buffers. */

void* bench_pool_get(bench_pool_t* pool, size_t size) {
  if (pool->size != size) {
    while (pool->count > 0)
      free(pool->free[--pool->count]);
    pool->size = size;
  }
  if (pool->count > 0)
    return pool->free[--pool->count];
  return malloc(size);
}

void bench_pool_put(bench_pool_t* pool, void* p) {
  if (pool->count < sizeof(pool->free) / sizeof(pool->free[0]))
    pool->free[pool->count++] = p;
  else
    free(p);
}

/* Reporting. */

static double ratio(double a, double b) {
  return b > 0 ? a / b : 0.0;
}

/* Writes one side's measurements as JSON members. */
static int side_json(char* out,
                     size_t cap,
                     int io_kind,
                     uint64_t datagrams,
                     uint64_t bytes,
                     uint64_t warmup,
                     const bench_usage_t* u0,
                     const bench_usage_t* u1,
                     const char* extra) {
  double seconds = (double) (u1->ns - u0->ns) / 1e9;
  double user = u1->cpu_user - u0->cpu_user;
  double sys = u1->cpu_sys - u0->cpu_sys;
  uint64_t self_io = u1->self_io - u0->self_io;
  uint64_t io = io_kind == SC_SEND ? u1->sc_send - u0->sc_send
                                   : u1->sc_recv - u0->sc_recv;
  int counted = syscount.leader >= 0;
  char sc[512];
  if (counted)
    snprintf(sc,
             sizeof(sc),
             "\"io_syscalls\":%" PRIu64 ",\"io_syscalls_per_datagram\":%.5f,"
             "\"poll_syscalls\":%" PRIu64 ",\"all_syscalls\":%" PRIu64 ","
             "\"all_syscalls_per_datagram\":%.5f,\"syscalls_source\":\"tracepoints\"",
             io,
             ratio((double) io, (double) datagrams),
             u1->sc_poll - u0->sc_poll,
             u1->sc_all - u0->sc_all,
             ratio((double) (u1->sc_all - u0->sc_all), (double) datagrams));
  else
    snprintf(sc,
             sizeof(sc),
             "\"io_syscalls\":%" PRIu64 ",\"io_syscalls_per_datagram\":%.5f,"
             "\"poll_syscalls\":null,\"all_syscalls\":null,"
             "\"all_syscalls_per_datagram\":null,\"syscalls_source\":\"self\"",
             self_io,
             ratio((double) self_io, (double) datagrams));
  return snprintf(out,
                  cap,
                  "{\"datagrams\":%" PRIu64 ",\"bytes\":%" PRIu64 ","
                  "\"warmup_datagrams\":%" PRIu64 ",\"seconds\":%.6f,"
                  "\"cpu_user_s\":%.6f,\"cpu_sys_s\":%.6f,\"cpu_s\":%.6f,"
                  "\"cpu_s_per_gb\":%.5f,\"cpu_util\":%.4f,%s,"
                  "\"self_io_syscalls\":%" PRIu64 "%s%s}",
                  datagrams,
                  bytes,
                  warmup,
                  seconds,
                  user,
                  sys,
                  user + sys,
                  ratio(user + sys, (double) bytes / 1e9),
                  ratio(user + sys, seconds),
                  sc,
                  self_io,
                  extra[0] != '\0' ? "," : "",
                  extra);
}

static int receiver_result(bench_receiver_t* r, char* out, size_t cap) {
  char extra[1400];
  if (!r->started || !r->done) {
    r->u0.ns = r->u1.ns = 0;
  }
  snprintf(extra,
           sizeof(extra),
           "\"reordered\":%" PRIu64 ",\"bad\":%" PRIu64 ",\"rcvbuf\":%d%s%s",
           r->reordered,
           r->bad,
           r->rcvbuf,
           r->extra[0] != '\0' ? "," : "",
           r->extra);
  return side_json(out,
                   cap,
                   SC_RECV,
                   r->received[1],
                   r->received_bytes[1],
                   r->received[0],
                   &r->u0,
                   &r->u1,
                   extra);
}

/* The kernel's count of UDP datagrams dropped for a full receive buffer
 * (system-wide; the benchmark is the only UDP traffic of note). */
static long long udp_rcvbuf_errors(void) {
  char head[1024], vals[1024];
  long long result = -1;
  FILE* f = fopen("/proc/net/snmp", "r");
  if (f == NULL)
    return -1;
  while (fgets(head, sizeof(head), f) != NULL) {
    char *hs, *vs, *h, *v;
    if (strncmp(head, "Udp:", 4) != 0)
      continue;
    if (fgets(vals, sizeof(vals), f) == NULL)
      break;
    h = strtok_r(head, " \n", &hs);
    v = strtok_r(vals, " \n", &vs);
    while (h != NULL && v != NULL) {
      if (strcmp(h, "RcvbufErrors") == 0)
        result = atoll(v);
      h = strtok_r(NULL, " \n", &hs);
      v = strtok_r(NULL, " \n", &vs);
    }
    break;
  }
  fclose(f);
  return result;
}

static void pin(int cpu) {
  cpu_set_t set;
  if (cpu < 0)
    return;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (sched_setaffinity(0, sizeof(set), &set) != 0)
    fprintf(stderr, "warning: cannot pin to CPU %d: %s\n", cpu, strerror(errno));
}

static int run_receiver(const bench_options_t* opt, int ctl) {
  static bench_receiver_t r;
  static char out[8192];
  int rc, len;
  pin(opt->recv_cpu);
  if (opt->count_syscalls)
    syscount_open();
  r.opt = opt;
  r.ctl = ctl;
  receiver_deadline = bench_now_ns() +
      (uint64_t) (opt->warmup_ms + opt->duration_ms + opt->timeout_ms) * 1000000u;
  rc = bench_impl_receive(&r);
  if (rc != 0)
    fprintf(stderr, "receiver: %s\n", strerror(-rc));
  if (!r.done)
    fprintf(stderr, "receiver: no trailer before the deadline\n");
  len = receiver_result(&r, out, sizeof(out));
  if (len <= 0 || (size_t) len >= sizeof(out))
    return 1;
  ctl_write(ctl, CTL_RESULT, (uint64_t) len, 1);
  write_all(ctl, out, (size_t) len);
  return rc != 0 || !r.done;
}

static void usage(FILE* f, const char* argv0) {
  fprintf(f,
          "usage: %s [options]\n"
          "  --mode NAME         send/receive pairing (--list-modes)\n"
          "  --size BYTES        datagram payload size (1200)\n"
          "  --duration-ms MS    measured part of the run (1500)\n"
          "  --warmup-ms MS      unmeasured start of the run (250)\n"
          "  --pacing flow|blast flow: sender waits when --window datagrams\n"
          "                      are unacknowledged; blast: it never waits (flow)\n"
          "  --window N          flow-control window in datagrams (4 MiB worth)\n"
          "  --batch N           datagrams per sendmmsg/recvmmsg (32)\n"
          "  --gso-batch N       GSO messages per sendmmsg, GRO slots (8)\n"
          "  --gso-segments N    segments per GSO message (max that fits)\n"
          "  --burst N           datagrams per loop iteration (4096)\n"
          "  --send-cpu N        pin the sender (0; -1 = no pinning)\n"
          "  --recv-cpu N        pin the receiver (1; -1 = no pinning)\n"
          "  --rcvbuf BYTES      receive buffer (16 MiB)\n"
          "  --sndbuf BYTES      send buffer (4 MiB)\n"
          "  --no-syscall-count  do not count system calls with tracepoints\n"
          "  --list-modes        print the modes this program supports\n",
          argv0);
}

static const bench_mode_t* find_mode(const char* name) {
  unsigned int i;
  for (i = 0; i < bench_mode_count; i++)
    if (strcmp(bench_modes[i].name, name) == 0)
      return &bench_modes[i];
  return NULL;
}

static int parse_options(int argc, char** argv, bench_options_t* opt) {
  enum {
    O_MODE = 256, O_SIZE, O_DURATION, O_WARMUP, O_PACING, O_WINDOW, O_BATCH,
    O_GSO_BATCH, O_GSO_SEGMENTS, O_BURST, O_SEND_CPU, O_RECV_CPU, O_RCVBUF,
    O_SNDBUF, O_NO_SYSCALL_COUNT, O_LIST, O_HELP
  };
  static const struct option longopts[] = {
    { "mode", required_argument, NULL, O_MODE },
    { "size", required_argument, NULL, O_SIZE },
    { "duration-ms", required_argument, NULL, O_DURATION },
    { "warmup-ms", required_argument, NULL, O_WARMUP },
    { "pacing", required_argument, NULL, O_PACING },
    { "window", required_argument, NULL, O_WINDOW },
    { "batch", required_argument, NULL, O_BATCH },
    { "gso-batch", required_argument, NULL, O_GSO_BATCH },
    { "gso-segments", required_argument, NULL, O_GSO_SEGMENTS },
    { "burst", required_argument, NULL, O_BURST },
    { "send-cpu", required_argument, NULL, O_SEND_CPU },
    { "recv-cpu", required_argument, NULL, O_RECV_CPU },
    { "rcvbuf", required_argument, NULL, O_RCVBUF },
    { "sndbuf", required_argument, NULL, O_SNDBUF },
    { "no-syscall-count", no_argument, NULL, O_NO_SYSCALL_COUNT },
    { "list-modes", no_argument, NULL, O_LIST },
    { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 }
  };
  unsigned int max_segments;
  int c;

  memset(opt, 0, sizeof(*opt));
  opt->mode = &bench_modes[0];
  opt->size = 1200;
  opt->warmup_ms = 250;
  opt->duration_ms = 1500;
  opt->flow = 1;
  opt->batch = 32;
  opt->gso_batch = 8;
  opt->burst = 4096;
  opt->send_cpu = 0;
  opt->recv_cpu = 1;
  opt->rcvbuf = 16 << 20;
  opt->sndbuf = 4 << 20;
  opt->count_syscalls = 1;
  opt->timeout_ms = 5000;

  while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (c) {
      case O_MODE:
        opt->mode = find_mode(optarg);
        if (opt->mode == NULL) {
          fprintf(stderr, "unknown mode %s\n", optarg);
          return -1;
        }
        break;
      case O_SIZE: opt->size = (unsigned int) atoi(optarg); break;
      case O_DURATION: opt->duration_ms = (unsigned int) atoi(optarg); break;
      case O_WARMUP: opt->warmup_ms = (unsigned int) atoi(optarg); break;
      case O_PACING:
        if (strcmp(optarg, "flow") == 0)
          opt->flow = 1;
        else if (strcmp(optarg, "blast") == 0)
          opt->flow = 0;
        else
          return -1;
        break;
      case O_WINDOW: opt->window = (unsigned int) atoi(optarg); break;
      case O_BATCH: opt->batch = (unsigned int) atoi(optarg); break;
      case O_GSO_BATCH: opt->gso_batch = (unsigned int) atoi(optarg); break;
      case O_GSO_SEGMENTS: opt->gso_segments = (unsigned int) atoi(optarg); break;
      case O_BURST: opt->burst = (unsigned int) atoi(optarg); break;
      case O_SEND_CPU: opt->send_cpu = atoi(optarg); break;
      case O_RECV_CPU: opt->recv_cpu = atoi(optarg); break;
      case O_RCVBUF: opt->rcvbuf = atoi(optarg); break;
      case O_SNDBUF: opt->sndbuf = atoi(optarg); break;
      case O_NO_SYSCALL_COUNT: opt->count_syscalls = 0; break;
      case O_LIST: return 1;
      case O_HELP: usage(stdout, argv[0]); exit(0);
      default: return -1;
    }
  }
  if (opt->size < sizeof(bench_header_t) || opt->size > 65507 ||
      opt->batch < 1 || opt->batch > 1024 || opt->gso_batch < 1 ||
      opt->gso_batch > 64 || opt->duration_ms < 1 || opt->burst < 1) {
    fprintf(stderr, "invalid option value\n");
    return -1;
  }
  max_segments = 65507 / opt->size;
  if (max_segments > 64)
    max_segments = 64;
  if (opt->gso_segments == 0 || opt->gso_segments > max_segments)
    opt->gso_segments = max_segments;
  if (opt->window == 0)
    opt->window = (4u << 20) / opt->size;
  if (opt->window < 2 * opt->gso_batch * opt->gso_segments)
    opt->window = 2 * opt->gso_batch * opt->gso_segments;
  opt->ack_every = opt->window / 8;
  if (opt->ack_every == 0)
    opt->ack_every = 1;
  return 0;
}

int main(int argc, char** argv) {
  static bench_options_t opt;
  static bench_sender_t s;
  static char send_json[4096];
  const char* recv_json;
  struct sockaddr_in dst;
  ctl_record_t rec;
  long long drops0, drops1;
  int sv[2], status = 0, rc, ok;
  uint64_t sent, received, t0;
  double recv_seconds;
  pid_t pid;
  ssize_t n;

  rc = parse_options(argc, argv, &opt);
  if (rc < 0) {
    usage(stderr, argv[0]);
    return 2;
  }
  if (rc == 1) {
    unsigned int i;
    for (i = 0; i < bench_mode_count; i++)
      if (bench_impl_supports(&bench_modes[i]))
        printf("%s\n", bench_modes[i].name);
    return 0;
  }
  if (!bench_impl_supports(opt.mode)) {
    fprintf(stderr, "%s does not support mode %s\n", bench_impl_name, opt.mode->name);
    return 3;
  }
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    perror("socketpair");
    return 1;
  }
  drops0 = udp_rcvbuf_errors();
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    close(sv[0]);
    _exit(run_receiver(&opt, sv[1]));
  }
  close(sv[1]);
  pin(opt.send_cpu);
  if (opt.count_syscalls)
    syscount_open();

  if (wait_readable(sv[0], 5000) <= 0 ||
      recv(sv[0], &rec, sizeof(rec), MSG_WAITALL) != (ssize_t) sizeof(rec) ||
      rec.type != CTL_PORT) {
    fprintf(stderr, "sender: the receiver did not start\n");
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    return 1;
  }
  memset(&dst, 0, sizeof(dst));
  dst.sin_family = AF_INET;
  dst.sin_port = htons((uint16_t) rec.value);
  dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

  s.opt = &opt;
  s.ctl = sv[0];
  t0 = bench_now_ns();
  s.t_measure = t0 + (uint64_t) opt.warmup_ms * 1000000u;
  s.t_stop = s.t_measure + (uint64_t) opt.duration_ms * 1000000u;
  rc = bench_impl_send(&s, &dst);
  if (rc != 0) {
    fprintf(stderr, "sender: %s\n", strerror(-rc));
    kill(pid, SIGTERM);
  }
  while ((n = waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  drops1 = udp_rcvbuf_errors();
  if (rc != 0)
    return 1;

  side_json(send_json,
            sizeof(send_json),
            SC_SEND,
            s.sent[1],
            s.sent_bytes[1],
            s.sent[0],
            &s.u0,
            &s.u1,
            s.extra);
  /* Pull the few numbers the summary needs back out of the receiver's
   * JSON rather than shipping a second format over the channel. */
  recv_json = s.peer_result;
  received = 0;
  recv_seconds = 0;
  {
    const char* p = strstr(recv_json, "\"datagrams\":");
    const char* q = strstr(recv_json, "\"seconds\":");
    if (p != NULL)
      received = strtoull(p + 12, NULL, 10);
    if (q != NULL)
      recv_seconds = strtod(q + 10, NULL);
  }
  sent = s.sent[1];
  ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && received > 0 &&
       received <= sent && recv_seconds > 0;
  printf("{\"impl\":\"%s\",\"version\":\"%s\",\"mode\":\"%s\",\"send_kind\":\"%s\","
         "\"recv_kind\":\"%s\",\"size\":%u,\"pacing\":\"%s\",\"warmup_ms\":%u,"
         "\"duration_ms\":%u,\"batch\":%u,\"gso_batch\":%u,\"gso_segments\":%u,"
         "\"window\":%u,\"send_cpu\":%d,\"recv_cpu\":%d,"
         "\"sent\":%" PRIu64 ",\"received\":%" PRIu64 ",\"lost\":%" PRId64 ","
         "\"loss_ratio\":%.6f,\"goodput_gbps\":%.4f,\"goodput_dps\":%.0f,"
         "\"udp_rcvbuf_errors\":%lld,\"flow_stalls\":%" PRIu64 ",\"send_eagain\":%" PRIu64 ","
         "\"send\":%s,\"recv\":%s,\"ok\":%s}\n",
         bench_impl_name,
         bench_impl_version(),
         opt.mode->name,
         send_kind_names[opt.mode->send],
         recv_kind_names[opt.mode->recv],
         opt.size,
         opt.flow ? "flow" : "blast",
         opt.warmup_ms,
         opt.duration_ms,
         opt.batch,
         opt.gso_batch,
         opt.gso_segments,
         opt.window,
         opt.send_cpu,
         opt.recv_cpu,
         sent,
         received,
         (int64_t) (sent - received),
         ratio((double) (sent - received), (double) sent),
         ratio((double) received * opt.size * 8 / 1e9, recv_seconds),
         ratio((double) received, recv_seconds),
         drops0 >= 0 && drops1 >= 0 ? drops1 - drops0 : -1,
         s.stalls,
         s.eagain,
         send_json,
         recv_json,
         ok ? "true" : "false");
  if (!ok)
    fprintf(stderr, "run failed sanity checks (receiver status %d)\n", status);
  return ok ? 0 : 1;
}
