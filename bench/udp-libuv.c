/* Stock libuv through its event loop: uv_udp_try_send() for one datagram
 * per system call, queued uv_udp_send() requests for its sendmmsg path, and
 * uv_udp_recv_start() with and without UV_UDP_RECVMMSG.
 *
 * libuv has no GSO or GRO, so the GSO modes are not supported here; the
 * driver compares uvq's GSO modes with libuv's best mode instead.
 * uv_udp_try_send2() (libuv 1.50) sends several datagrams in one sendmmsg
 * without queueing; it is used for the batched mode when the installed
 * libuv has it.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <uv.h>

#if UV_VERSION_HEX >= 0x013200
#define HAVE_TRY_SEND2 1
#else
#define HAVE_TRY_SEND2 0
#endif

/* libuv 1.44 reads at most 20 datagrams per recvmmsg, each into a 64 KiB
 * chunk of the buffer, whatever the datagram size (UV__MMSG_MAXWIDTH and
 * UV__UDP_DGRAM_MAXSIZE in src/unix/udp.c). */
#define LIBUV_MMSG_CHUNKS 20
#define LIBUV_MMSG_CHUNK 65536

const char* const bench_impl_name = "libuv";

static char version[64];

const char* bench_impl_version(void) {
  snprintf(version, sizeof(version), "libuv %s%s", uv_version_string(),
           HAVE_TRY_SEND2 ? " try_send2" : "");
  return version;
}

int bench_impl_supports(const bench_mode_t* mode) {
  return (mode->send == BENCH_SEND_SINGLE && mode->recv == BENCH_RECV_SINGLE) ||
         (mode->send == BENCH_SEND_MMSG && mode->recv == BENCH_RECV_MMSG);
}

/* Sender. */

typedef struct send_request {
  uv_udp_send_t req;
  int phase;
  uv_buf_t buf;
  struct send_request* next_free;
} send_request_t;

typedef struct sender {
  bench_sender_t* s;
  uv_loop_t loop;
  uv_udp_t udp;
  uv_idle_t pump;
  uv_poll_t ctl;
  send_request_t* requests;
  send_request_t* free_requests;
  unsigned int outstanding;
  char* data;
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
  if (sd->rc == 0 && uv_fileno((uv_handle_t*) &sd->udp, &fd) == 0)
    sd->rc = bench_sender_finish(sd->s, fd);
  uv_stop(&sd->loop);
}

static void sender_resume(sender_t* sd) {
  if (!sd->finished && !sd->waiting_ctl)
    uv_idle_start(&sd->pump, sender_pump);
}

static void on_send(uv_udp_send_t* req, int status) {
  send_request_t* sr = (send_request_t*) req;
  sender_t* sd = req->handle->data;
  sd->outstanding--;
  if (status == 0)
    bench_sender_count(sd->s, sr->phase, 1);
  else if (sd->rc == 0 && status != UV_ECANCELED)
    sd->rc = status;
  sr->next_free = sd->free_requests;
  sd->free_requests = sr;
  if (sd->s->phase == 2 || sd->rc != 0) {
    if (sd->outstanding == 0)
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

/* Queues one datagram; returns 0 when no request is free. */
static int sender_queue(sender_t* sd, int phase, const char* copy_from) {
  send_request_t* sr = sd->free_requests;
  int r;
  if (sr == NULL)
    return 0;
  sd->free_requests = sr->next_free;
  if (copy_from != NULL)
    memcpy(sr->buf.base, copy_from, sr->buf.len);
  else
    bench_fill(sr->buf.base, sd->s->next_seq++, phase);
  sr->phase = phase;
  r = uv_udp_send(&sr->req, &sd->udp, &sr->buf, 1, NULL, on_send);
  if (r != 0) {
    sd->rc = r;
    sr->next_free = sd->free_requests;
    sd->free_requests = sr;
    return 0;
  }
  sd->outstanding++;
  return 1;
}

static void sender_pump(uv_idle_t* idle) {
  sender_t* sd = idle->data;
  bench_sender_t* s = sd->s;
  int queued_mode = s->opt->mode->send == BENCH_SEND_MMSG && !HAVE_TRY_SEND2;
  unsigned int budget = s->opt->burst;

  while (budget > 0) {
    int phase = bench_sender_phase(s);
    if (phase == 2 || sd->rc != 0) {
      uv_idle_stop(idle);
      if (sd->outstanding == 0)
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
    if (queued_mode) {
      /* libuv sends the first request of an empty queue at once and the
       * rest with sendmmsg when the socket reports writable, so queueing a
       * window of requests per loop iteration is its batched send path. */
      if (!sender_queue(sd, phase, NULL)) {
        uv_idle_stop(idle);
        return;
      }
      budget--;
      continue;
    }
#if HAVE_TRY_SEND2
    if (s->opt->mode->send == BENCH_SEND_MMSG) {
      uv_buf_t bufs[1024];
      uv_buf_t* bufp[1024];
      unsigned int nbufs[1024];
      struct sockaddr* addrs[1024];
      unsigned int i, n = s->opt->batch;
      uint64_t base = s->next_seq;
      int r;
      for (i = 0; i < n; i++) {
        bufs[i] = uv_buf_init(sd->data + (size_t) i * s->opt->size, s->opt->size);
        bench_fill(bufs[i].base, base + i, phase);
        bufp[i] = &bufs[i];
        nbufs[i] = 1;
        addrs[i] = NULL;
      }
      r = uv_udp_try_send2(&sd->udp, n, bufp, nbufs, addrs, 0);
      if (r == UV_EAGAIN) {
        s->eagain++;
        uv_idle_stop(idle);
        s->next_seq = base;
        if (sender_queue(sd, phase, NULL) == 0)
          return;
        return;
      }
      if (r < 0) {
        sd->rc = r;
        continue;
      }
      s->next_seq = base + (unsigned int) r;
      bench_sender_count(s, phase, (unsigned int) r);
      budget = budget > n ? budget - n : 0;
      continue;
    }
#endif
    {
      uv_buf_t buf = uv_buf_init(sd->data, s->opt->size);
      int r;
      bench_fill(sd->data, s->next_seq, phase);
      r = uv_udp_try_send(&sd->udp, &buf, 1, NULL);
      if (r == UV_EAGAIN || r == UV_ENOBUFS) {
        /* The socket is full: hand this datagram to libuv's queue and
         * wait for its callback, as an application would. */
        s->eagain++;
        uv_idle_stop(idle);
        s->next_seq++;
        sender_queue(sd, phase, sd->data);
        return;
      }
      if (r < 0) {
        sd->rc = r;
        continue;
      }
      s->next_seq++;
      bench_sender_count(s, phase, 1);
      budget--;
    }
  }
}

int bench_impl_send(bench_sender_t* s, const struct sockaddr_in* dst) {
  static sender_t sd;
  unsigned int i, nreq = 4 * s->opt->batch;
  uv_os_fd_t fd;
  int r;

  sd.s = s;
  sd.requests = calloc(nreq, sizeof(*sd.requests));
  sd.data = malloc((size_t) (nreq + 1024) * s->opt->size);
  if (sd.requests == NULL || sd.data == NULL)
    return -ENOMEM;
  memset(sd.data, 'x', (size_t) (nreq + 1024) * s->opt->size);
  for (i = 0; i < nreq; i++) {
    sd.requests[i].buf =
        uv_buf_init(sd.data + (size_t) (1024 + i) * s->opt->size, s->opt->size);
    sd.requests[i].next_free = sd.free_requests;
    sd.free_requests = &sd.requests[i];
  }
  if ((r = uv_loop_init(&sd.loop)) != 0 ||
      (r = uv_udp_init(&sd.loop, &sd.udp)) != 0 ||
      (r = uv_udp_connect(&sd.udp, (const struct sockaddr*) dst)) != 0 ||
      (r = uv_fileno((uv_handle_t*) &sd.udp, &fd)) != 0 ||
      (r = uv_idle_init(&sd.loop, &sd.pump)) != 0 ||
      (r = uv_poll_init(&sd.loop, &sd.ctl, s->ctl)) != 0)
    return r;
  bench_set_sndbuf(fd, s->opt->sndbuf);
  sd.udp.data = &sd;
  sd.pump.data = &sd;
  sd.ctl.data = &sd;
  uv_idle_start(&sd.pump, sender_pump);
  uv_run(&sd.loop, UV_RUN_DEFAULT);
  return sd.rc;
}

/* Receiver. */

typedef struct receiver {
  bench_receiver_t* r;
  uv_loop_t loop;
  uv_udp_t udp;
  uv_timer_t deadline;
  bench_pool_t pool;
  size_t buffer_size;
  uint64_t errors;
} receiver_t;

static void on_alloc(uv_handle_t* handle, size_t suggested, uv_buf_t* buf) {
  receiver_t* rv = handle->data;
  buf->base = bench_pool_get(&rv->pool, rv->buffer_size);
  buf->len = buf->base != NULL ? rv->buffer_size : 0;
}

static void on_recv(uv_udp_t* handle,
                    ssize_t nread,
                    const uv_buf_t* buf,
                    const struct sockaddr* addr,
                    unsigned flags) {
  receiver_t* rv = handle->data;
  if (nread > 0)
    bench_receiver_datagram(rv->r, buf->base, (size_t) nread);
  else if (nread < 0)
    rv->errors++;
  if (!(flags & UV_UDP_MMSG_CHUNK) && buf->base != NULL)
    bench_pool_put(&rv->pool, buf->base);
  if (rv->r->done) {
    uv_udp_recv_stop(handle);
    uv_stop(&rv->loop);
  }
}

static void on_deadline(uv_timer_t* timer) {
  receiver_t* rv = timer->data;
  uv_udp_recv_stop(&rv->udp);
  uv_stop(&rv->loop);
}

int bench_impl_receive(bench_receiver_t* r) {
  static receiver_t rv;
  int mmsg = r->opt->mode->recv == BENCH_RECV_MMSG;
  struct sockaddr_in addr;
  int namelen = sizeof(addr);
  uint64_t now = bench_now_ns(), deadline = bench_receiver_deadline(r);
  uv_os_fd_t fd;
  int rc;

  rv.r = r;
  rv.buffer_size = mmsg ? LIBUV_MMSG_CHUNKS * LIBUV_MMSG_CHUNK : 2048;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  if ((rc = uv_loop_init(&rv.loop)) != 0 ||
      (rc = uv_udp_init_ex(&rv.loop, &rv.udp, AF_INET | (mmsg ? UV_UDP_RECVMMSG : 0))) != 0 ||
      (rc = uv_udp_bind(&rv.udp, (const struct sockaddr*) &addr, 0)) != 0 ||
      (rc = uv_udp_getsockname(&rv.udp, (struct sockaddr*) &addr, &namelen)) != 0 ||
      (rc = uv_fileno((uv_handle_t*) &rv.udp, &fd)) != 0 ||
      (rc = uv_timer_init(&rv.loop, &rv.deadline)) != 0)
    return rc;
  r->rcvbuf = bench_set_rcvbuf(fd, r->opt->rcvbuf);
  rv.udp.data = &rv;
  rv.deadline.data = &rv;
  uv_timer_start(&rv.deadline, on_deadline, deadline > now ? (deadline - now) / 1000000 : 0, 0);
  if ((rc = uv_udp_recv_start(&rv.udp, on_alloc, on_recv)) != 0)
    return rc;
  rc = bench_receiver_ready(r, ntohs(addr.sin_port));
  if (rc != 0)
    return rc;
  uv_run(&rv.loop, UV_RUN_DEFAULT);
  snprintf(r->extra, sizeof(r->extra),
           "\"using_recvmmsg\":%d,\"recv_errors\":%llu",
           uv_udp_using_recvmmsg(&rv.udp),
           (unsigned long long) rv.errors);
  return 0;
}
