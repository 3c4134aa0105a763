/* The limit: plain system calls in a tight loop on blocking sockets, with
 * no event loop. Every other implementation is compared against this one.
 */
#include "bench.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <unistd.h>
#include <netinet/udp.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

#define GRO_SLOT 65536

const char* const bench_impl_name = "raw";

const char* bench_impl_version(void) {
  return "syscalls";
}

int bench_impl_supports(const bench_mode_t* mode) {
  (void) mode;
  return 1;
}

static uint64_t io_calls;

static uint64_t count_io(void* arg) {
  (void) arg;
  return io_calls;
}

/* One outgoing message: its buffer, and the UDP_SEGMENT control message
 * when it carries several segments. */
typedef struct out_message {
  struct iovec iov;
  union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
  } control;
} out_message_t;

int bench_impl_send(bench_sender_t* s, const struct sockaddr_in* dst) {
  const bench_options_t* opt = s->opt;
  enum bench_send_kind kind = opt->mode->send;
  unsigned int nmsg, segs, i;
  out_message_t* out;
  struct mmsghdr* hdrs;
  char* data;
  int fd, rc = 0;

  s->self_io = count_io;
  nmsg = kind == BENCH_SEND_MMSG ? opt->batch
         : kind == BENCH_SEND_GSO_MMSG ? opt->gso_batch : 1;
  segs = kind == BENCH_SEND_GSO || kind == BENCH_SEND_GSO_MMSG ? opt->gso_segments : 1;

  fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0)
    return -errno;
  bench_set_sndbuf(fd, opt->sndbuf);
  if (connect(fd, (const struct sockaddr*) dst, sizeof(*dst)) != 0) {
    rc = -errno;
    close(fd);
    return rc;
  }

  data = malloc((size_t) nmsg * segs * opt->size);
  out = calloc(nmsg, sizeof(*out));
  hdrs = calloc(nmsg, sizeof(*hdrs));
  if (data == NULL || out == NULL || hdrs == NULL) {
    rc = -ENOMEM;
    goto done;
  }
  memset(data, 'x', (size_t) nmsg * segs * opt->size);
  for (i = 0; i < nmsg; i++) {
    struct msghdr* m = &hdrs[i].msg_hdr;
    out[i].iov.iov_base = data + (size_t) i * segs * opt->size;
    out[i].iov.iov_len = (size_t) segs * opt->size;
    m->msg_iov = &out[i].iov;
    m->msg_iovlen = 1;
    if (segs > 1) {
      struct cmsghdr* cm = (struct cmsghdr*) out[i].control.buf;
      uint16_t gso = (uint16_t) opt->size;
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(gso));
      memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
      m->msg_control = out[i].control.buf;
      m->msg_controllen = sizeof(out[i].control.buf);
    }
  }

  for (;;) {
    uint64_t base = s->next_seq;
    unsigned int total = nmsg * segs, sent_msgs;
    int phase = bench_sender_phase(s);
    ssize_t n;
    if (phase == 2)
      break;
    if (!bench_sender_window_open(s)) {
      s->stalls++;
      rc = bench_sender_read_ctl(s, 1);
      if (rc != 0)
        goto done;
      continue;
    }
    for (i = 0; i < total; i++)
      bench_fill(data + (size_t) i * opt->size, base + i, phase);
    io_calls++;
    if (nmsg == 1) {
      n = sendmsg(fd, &hdrs[0].msg_hdr, 0);
      sent_msgs = n >= 0 ? 1 : 0;
    } else {
      n = sendmmsg(fd, hdrs, nmsg, 0);
      sent_msgs = n >= 0 ? (unsigned int) n : 0;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
        s->eagain++;
        continue;
      }
      rc = -errno;
      goto done;
    }
    s->next_seq = base + (uint64_t) sent_msgs * segs;
    bench_sender_count(s, phase, (uint64_t) sent_msgs * segs);
  }
  rc = bench_sender_finish(s, fd);

done:
  free(data);
  free(out);
  free(hdrs);
  close(fd);
  return rc;
}

int bench_impl_receive(bench_receiver_t* r) {
  const bench_options_t* opt = r->opt;
  enum bench_recv_kind kind = opt->mode->recv;
  int gro = kind == BENCH_RECV_GRO || kind == BENCH_RECV_GRO_RAW;
  unsigned int nslots, slot, i;
  struct sockaddr_in addr;
  socklen_t addrlen = sizeof(addr);
  struct timeval tv = { 0, 100000 };
  struct mmsghdr* hdrs;
  struct iovec* iov;
  char* data;
  char* control;
  const size_t control_space = CMSG_SPACE(sizeof(int));
  int fd, one = 1, rc = 0;
  uint64_t deadline = bench_receiver_deadline(r);

  r->self_io = count_io;
  nslots = kind == BENCH_RECV_SINGLE ? 1 : gro ? opt->gso_batch : opt->batch;
  slot = gro ? GRO_SLOT : 2048;
  if (slot < opt->size)
    slot = opt->size;

  fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0)
    return -errno;
  r->rcvbuf = bench_set_rcvbuf(fd, opt->rcvbuf);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (gro && setsockopt(fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) != 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, (struct sockaddr*) &addr, sizeof(addr)) != 0 ||
      getsockname(fd, (struct sockaddr*) &addr, &addrlen) != 0) {
    rc = -errno;
    close(fd);
    return rc;
  }

  data = malloc((size_t) nslots * slot);
  control = calloc(nslots, control_space);
  iov = calloc(nslots, sizeof(*iov));
  hdrs = calloc(nslots, sizeof(*hdrs));
  if (data == NULL || control == NULL || iov == NULL || hdrs == NULL) {
    rc = -ENOMEM;
    goto done;
  }
  for (i = 0; i < nslots; i++) {
    iov[i].iov_base = data + (size_t) i * slot;
    iov[i].iov_len = slot;
    hdrs[i].msg_hdr.msg_iov = &iov[i];
    hdrs[i].msg_hdr.msg_iovlen = 1;
  }
  rc = bench_receiver_ready(r, ntohs(addr.sin_port));
  if (rc != 0)
    goto done;

  while (!r->done) {
    int n;
    io_calls++;
    if (gro)
      for (i = 0; i < nslots; i++) {
        hdrs[i].msg_hdr.msg_control = control + i * control_space;
        hdrs[i].msg_hdr.msg_controllen = control_space;
      }
    if (nslots == 1) {
      ssize_t len = recvmsg(fd, &hdrs[0].msg_hdr, 0);
      n = len >= 0 ? 1 : -1;
      if (len >= 0)
        hdrs[0].msg_len = (unsigned int) len;
    } else {
      n = recvmmsg(fd, hdrs, nslots, MSG_WAITFORONE, NULL);
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        rc = -errno;
        break;
      }
      if (bench_now_ns() > deadline)
        break;
      continue;
    }
    for (i = 0; i < (unsigned int) n; i++) {
      const char* p = iov[i].iov_base;
      size_t len = hdrs[i].msg_len;
      size_t stride = 0;
      if (gro) {
        struct cmsghdr* cm;
        for (cm = CMSG_FIRSTHDR(&hdrs[i].msg_hdr); cm != NULL;
             cm = CMSG_NXTHDR(&hdrs[i].msg_hdr, cm))
          if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
            int gso;
            memcpy(&gso, CMSG_DATA(cm), sizeof(gso));
            stride = (size_t) gso;
          }
        bench_receiver_super(r, p, len, stride);
      } else {
        bench_receiver_datagram(r, p, len);
      }
    }
  }

done:
  free(data);
  free(control);
  free(iov);
  free(hdrs);
  close(fd);
  return rc;
}
