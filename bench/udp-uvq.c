/* uvq through the event loop: uvq_udp_try_send_batch() (with gso_size for
 * the GSO modes, falling back to uvq_udp_send_batch() when the socket is
 * full) and uvq_udp_recv_start2() with batched slots, UVQ_UDP_GRO or
 * UVQ_UDP_GRO_RAW.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <uvq.h>

const char* const bench_impl_name = "uvq";

static char version[64];

const char* bench_impl_version(void) {
  snprintf(version, sizeof(version), "uvq %s, libuv %s", uvq_version_string(),
           uv_version_string());
  return version;
}

int bench_impl_supports(const bench_mode_t* mode) {
  (void) mode;
  return 1;
}

static uvq_udp_t* stats_handle;

static uint64_t count_send_io(void* arg) {
  uvq_udp_stats_t st;
  (void) arg;
  if (stats_handle == NULL || uvq_udp_get_stats(stats_handle, &st) != 0)
    return 0;
  return st.send_syscalls;
}

static uint64_t count_recv_io(void* arg) {
  uvq_udp_stats_t st;
  (void) arg;
  if (stats_handle == NULL || uvq_udp_get_stats(stats_handle, &st) != 0)
    return 0;
  return st.recv_syscalls;
}

/* Sender. */

#define MAX_MESSAGES 1024

typedef struct sender {
  bench_sender_t* s;
  uv_loop_t loop;
  uvq_udp_t udp;
  uv_idle_t pump;
  uv_poll_t ctl;
  uvq_udp_mmsg_t msgs[MAX_MESSAGES];
  uv_buf_t bufs[MAX_MESSAGES];
  unsigned int nmsg;
  unsigned int segs;
  char* data;
  uvq_udp_send_t req;
  int req_pending;
  int req_phase;
  int waiting_ctl;
  int finished;
  int rc;
} sender_t;

static void sender_pump(uv_idle_t* idle);

static void sender_end(sender_t* sd) {
  uv_os_fd_t fd;
  if (sd->finished)
    return;
  sd->finished = 1;
  uv_idle_stop(&sd->pump);
  uv_poll_stop(&sd->ctl);
  if (sd->rc == 0 && uvq_udp_fileno(&sd->udp, &fd) == 0)
    sd->rc = bench_sender_finish(sd->s, fd);
  uv_stop(&sd->loop);
}

static void sender_resume(sender_t* sd) {
  if (!sd->finished && !sd->waiting_ctl && !sd->req_pending)
    uv_idle_start(&sd->pump, sender_pump);
}

static void on_send(uvq_udp_send_t* req, int status) {
  sender_t* sd = req->data;
  sd->req_pending = 0;
  bench_sender_count(sd->s, sd->req_phase, (uint64_t) req->nsent * sd->segs);
  if (status != 0 && status != UV_ECANCELED && sd->rc == 0)
    sd->rc = status;
  if (sd->s->phase == 2 || sd->rc != 0) {
    sender_end(sd);
    return;
  }
  sender_resume(sd);
}

static void on_ctl(uv_poll_t* handle, int status, int events) {
  sender_t* sd = handle->data;
  int rc = bench_sender_read_ctl(sd->s, 0);
  if (rc != 0) {
    sd->rc = rc;
    sender_end(sd);
    return;
  }
  if (bench_sender_window_open(sd->s)) {
    uv_poll_stop(&sd->ctl);
    sd->waiting_ctl = 0;
    sender_resume(sd);
  }
}

static void sender_pump(uv_idle_t* idle) {
  sender_t* sd = idle->data;
  bench_sender_t* s = sd->s;
  unsigned int total = sd->nmsg * sd->segs;
  unsigned int budget = s->opt->burst;

  while (budget > 0) {
    uint64_t base = s->next_seq;
    int phase = bench_sender_phase(s);
    unsigned int i, sent;
    int r;
    if (phase == 2 || sd->rc != 0) {
      sender_end(sd);
      return;
    }
    if (!bench_sender_window_open(s)) {
      s->stalls++;
      uv_idle_stop(idle);
      sd->waiting_ctl = 1;
      uv_poll_start(&sd->ctl, UV_READABLE, on_ctl);
      return;
    }
    for (i = 0; i < total; i++)
      bench_fill(sd->data + (size_t) i * s->opt->size, base + i, phase);
    r = uvq_udp_try_send_batch(&sd->udp, sd->msgs, sd->nmsg, 0);
    if (r == (int) sd->nmsg) {
      s->next_seq = base + total;
      bench_sender_count(s, phase, total);
      budget = budget > total ? budget - total : 0;
      continue;
    }
    if (r < 0 && r != UV_EAGAIN && r != UV_ENOBUFS) {
      sd->rc = r;
      sender_end(sd);
      return;
    }
    /* The socket took only part of the batch: queue the rest and wait for
     * its callback, which is how an application meets a full socket. */
    s->eagain++;
    sent = r > 0 ? (unsigned int) r : 0;
    bench_sender_count(s, phase, (uint64_t) sent * sd->segs);
    s->next_seq = base + total;
    sd->req.data = sd;
    sd->req_phase = phase;
    r = uvq_udp_send_batch(&sd->req, &sd->udp, sd->msgs + sent, sd->nmsg - sent, 0, on_send);
    if (r != 0) {
      sd->rc = r;
      sender_end(sd);
      return;
    }
    sd->req_pending = 1;
    uv_idle_stop(idle);
    return;
  }
}

static void stats_json(char* out, size_t cap, const uvq_udp_t* udp) {
  uvq_udp_stats_t st;
  memset(&st, 0, sizeof(st));
  uvq_udp_get_stats(udp, &st);
  snprintf(out,
           cap,
           "\"uvq_features\":%u,\"uvq_stats\":{\"datagrams_received\":%llu,"
           "\"datagrams_sent\":%llu,\"recv_syscalls\":%llu,\"send_syscalls\":%llu,"
           "\"gso_sends\":%llu,\"gso_segments\":%llu,\"gro_packets\":%llu,"
           "\"gro_segments\":%llu,\"gso_fallbacks\":%llu,\"truncated\":%llu,"
           "\"control_truncated\":%llu,\"kernel_drops\":%llu,\"send_eagain\":%llu}",
           uvq_udp_features(udp),
           (unsigned long long) st.datagrams_received,
           (unsigned long long) st.datagrams_sent,
           (unsigned long long) st.recv_syscalls,
           (unsigned long long) st.send_syscalls,
           (unsigned long long) st.gso_sends,
           (unsigned long long) st.gso_segments,
           (unsigned long long) st.gro_packets,
           (unsigned long long) st.gro_segments,
           (unsigned long long) st.gso_fallbacks,
           (unsigned long long) st.truncated,
           (unsigned long long) st.control_truncated,
           (unsigned long long) st.kernel_drops,
           (unsigned long long) st.send_eagain);
}

int bench_impl_send(bench_sender_t* s, const struct sockaddr_in* dst) {
  static sender_t sd;
  const bench_options_t* opt = s->opt;
  enum bench_send_kind kind = opt->mode->send;
  int gso = kind == BENCH_SEND_GSO || kind == BENCH_SEND_GSO_MMSG;
  struct sockaddr_in local;
  uv_os_fd_t fd;
  unsigned int i;
  int r;

  sd.s = s;
  sd.nmsg = kind == BENCH_SEND_MMSG ? opt->batch
            : kind == BENCH_SEND_GSO_MMSG ? opt->gso_batch : 1;
  sd.segs = gso ? opt->gso_segments : 1;
  if (sd.nmsg > MAX_MESSAGES)
    return -EINVAL;
  sd.data = malloc((size_t) sd.nmsg * sd.segs * opt->size);
  if (sd.data == NULL)
    return -ENOMEM;
  memset(sd.data, 'x', (size_t) sd.nmsg * sd.segs * opt->size);
  for (i = 0; i < sd.nmsg; i++) {
    sd.bufs[i] = uv_buf_init(sd.data + (size_t) i * sd.segs * opt->size,
                             sd.segs * opt->size);
    memset(&sd.msgs[i], 0, sizeof(sd.msgs[i]));
    sd.msgs[i].bufs = &sd.bufs[i];
    sd.msgs[i].nbufs = 1;
    sd.msgs[i].gso_size = gso ? opt->size : 0;
    sd.msgs[i].ecn = -1;
  }

  uv_ip4_addr("127.0.0.1", 0, &local);
  if ((r = uv_loop_init(&sd.loop)) != 0 ||
      (r = uvq_udp_init(&sd.loop, &sd.udp)) != 0 ||
      (r = uvq_udp_bind(&sd.udp, (const struct sockaddr*) &local, 0)) != 0 ||
      (r = uvq_udp_connect(&sd.udp, (const struct sockaddr*) dst)) != 0 ||
      (r = uvq_udp_fileno(&sd.udp, &fd)) != 0 ||
      (r = uv_idle_init(&sd.loop, &sd.pump)) != 0 ||
      (r = uv_poll_init(&sd.loop, &sd.ctl, s->ctl)) != 0)
    return r;
  bench_set_sndbuf(fd, opt->sndbuf);
  stats_handle = &sd.udp;
  s->self_io = count_send_io;
  sd.udp.data = &sd;
  sd.pump.data = &sd;
  sd.ctl.data = &sd;
  uv_idle_start(&sd.pump, sender_pump);
  uv_run(&sd.loop, UV_RUN_DEFAULT);
  stats_json(s->extra, sizeof(s->extra), &sd.udp);
  {
    size_t len = strlen(s->extra);
    snprintf(s->extra + len, sizeof(s->extra) - len, ",\"gso_max_segments\":%u",
             uvq_udp_gso_max_segments(&sd.udp));
  }
  return sd.rc;
}

/* Receiver. */

typedef struct receiver {
  bench_receiver_t* r;
  uv_loop_t loop;
  uvq_udp_t udp;
  uv_timer_t deadline;
  bench_pool_t pool;
  int split_self;
  uint64_t errors;
  uint64_t callbacks;
} receiver_t;

static void on_alloc(uvq_udp_t* handle, size_t suggested, uv_buf_t* buf) {
  receiver_t* rv = handle->data;
  buf->base = bench_pool_get(&rv->pool, suggested);
  buf->len = buf->base != NULL ? suggested : 0;
}

static void on_recv(uvq_udp_t* handle, const uvq_udp_recv_t* recv) {
  receiver_t* rv = handle->data;
  rv->callbacks++;
  if (recv->nread > 0 && !(recv->flags & UVQ_UDP_RECV_ERRQUEUE)) {
    if (rv->split_self)
      bench_receiver_super(rv->r, recv->buf->base, (size_t) recv->nread,
                           recv->segment_size);
    else
      bench_receiver_datagram(rv->r, recv->buf->base, (size_t) recv->nread);
  } else if (recv->nread < 0) {
    rv->errors++;
  }
  if (!(recv->flags & UVQ_UDP_MMSG_CHUNK) && recv->buf != NULL &&
      recv->buf->base != NULL)
    bench_pool_put(&rv->pool, recv->buf->base);
  if (rv->r->done) {
    uvq_udp_recv_stop(handle);
    uv_stop(&rv->loop);
  }
}

static void on_deadline(uv_timer_t* timer) {
  receiver_t* rv = timer->data;
  uvq_udp_recv_stop(&rv->udp);
  uv_stop(&rv->loop);
}

int bench_impl_receive(bench_receiver_t* r) {
  static receiver_t rv;
  const bench_options_t* opt = r->opt;
  enum bench_recv_kind kind = opt->mode->recv;
  unsigned int flags = UVQ_UDP_RECVMMSG, slot = 2048, batch;
  struct sockaddr_in addr;
  int namelen = sizeof(addr);
  uint64_t now = bench_now_ns(), deadline = bench_receiver_deadline(r);
  uv_os_fd_t fd;
  size_t len;
  int rc;

  rv.r = r;
  batch = kind == BENCH_RECV_SINGLE ? 1 : opt->batch;
  if (kind == BENCH_RECV_GRO || kind == BENCH_RECV_GRO_RAW) {
    flags |= kind == BENCH_RECV_GRO ? UVQ_UDP_GRO : UVQ_UDP_GRO_RAW;
    slot = 65536;
    batch = opt->gso_batch;
  }
  if (slot < opt->size)
    slot = opt->size;
  rv.split_self = kind == BENCH_RECV_GRO_RAW;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if ((rc = uv_loop_init(&rv.loop)) != 0 ||
      (rc = uvq_udp_init(&rv.loop, &rv.udp)) != 0 ||
      (rc = uvq_udp_bind(&rv.udp, (const struct sockaddr*) &addr, flags)) != 0 ||
      (rc = uvq_udp_set_recv_slots(&rv.udp, slot, batch)) != 0 ||
      (rc = uvq_udp_getsockname(&rv.udp, (struct sockaddr*) &addr, &namelen)) != 0 ||
      (rc = uvq_udp_fileno(&rv.udp, &fd)) != 0 ||
      (rc = uv_timer_init(&rv.loop, &rv.deadline)) != 0)
    return rc;
  r->rcvbuf = bench_set_rcvbuf(fd, opt->rcvbuf);
  stats_handle = &rv.udp;
  r->self_io = count_recv_io;
  rv.udp.data = &rv;
  rv.deadline.data = &rv;
  uv_timer_start(&rv.deadline, on_deadline, deadline > now ? (deadline - now) / 1000000 : 0, 0);
  if ((rc = uvq_udp_recv_start2(&rv.udp, on_alloc, on_recv)) != 0)
    return rc;
  rc = bench_receiver_ready(r, ntohs(addr.sin_port));
  if (rc != 0)
    return rc;
  uv_run(&rv.loop, UV_RUN_DEFAULT);
  stats_json(r->extra, sizeof(r->extra), &rv.udp);
  len = strlen(r->extra);
  snprintf(r->extra + len, sizeof(r->extra) - len,
           ",\"recv_errors\":%llu,\"callbacks\":%llu,\"slot\":%u,\"slots\":%u",
           (unsigned long long) rv.errors, (unsigned long long) rv.callbacks,
           slot, batch);
  return 0;
}
