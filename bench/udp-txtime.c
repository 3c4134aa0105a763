/* SO_TXTIME pacing check: uvq sends --count datagrams in one go with
 * release times --spacing-us apart (uvq_udp_mmsg_t.txtime, UVQ_UDP_TXTIME)
 * to a receiver in the same process that timestamps arrivals with
 * SO_TIMESTAMPNS. The error of each arrival against its requested release
 * time, and of each gap against the requested spacing, is reported as
 * median and 99th percentile.
 *
 * Release times are honoured only by an fq or etf qdisc on the egress
 * device, so the numbers mean something only when run in a network
 * namespace whose loopback has one; bench/udp-matrix.py sets that up and
 * reports the check as skipped when the kernel has no fq qdisc. Without
 * one this program still runs (as its smoke test does) and reports
 * "paced": false.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <uvq.h>

static int64_t timespec_ns(const struct timespec* ts) {
  return (int64_t) ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int compare_i64(const void* a, const void* b) {
  int64_t x = *(const int64_t*) a, y = *(const int64_t*) b;
  return x < y ? -1 : x > y;
}

/* Sorts v and returns its q-quantile (0 <= q <= 1), nearest rank. */
static int64_t quantile(int64_t* v, size_t n, double q) {
  size_t i;
  if (n == 0)
    return 0;
  qsort(v, n, sizeof(*v), compare_i64);
  i = (size_t) (q * (double) (n - 1) + 0.5);
  return v[i];
}

int main(int argc, char** argv) {
  static const struct option longopts[] = {
    { "count", required_argument, NULL, 'c' },
    { "spacing-us", required_argument, NULL, 's' },
    { "size", required_argument, NULL, 'z' },
    { NULL, 0, NULL, 0 }
  };
  unsigned int count = 200, spacing_us = 100, size = 1200, i, received = 0;
  uv_loop_t loop;
  uvq_udp_t udp;
  uvq_udp_mmsg_t* msgs;
  uv_buf_t* bufs;
  char* data;
  int64_t *arrival, *release_err, *gap_err;
  struct sockaddr_in addr;
  socklen_t addrlen = sizeof(addr);
  struct timespec rt, mono;
  int64_t realtime_offset;
  uint64_t start, deadline;
  unsigned int features;
  int rfd, one = 1, r, c;
  size_t ngaps = 0;

  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
      case 'c': count = (unsigned int) atoi(optarg); break;
      case 's': spacing_us = (unsigned int) atoi(optarg); break;
      case 'z': size = (unsigned int) atoi(optarg); break;
      default:
        fprintf(stderr, "usage: %s [--count N] [--spacing-us US] [--size BYTES]\n", argv[0]);
        return 2;
    }
  }
  if (count < 2 || count > 100000 || size < 16 || size > 65507) {
    fprintf(stderr, "invalid option value\n");
    return 2;
  }

  rfd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  memset(&addr, 0, sizeof(addr));
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (rfd < 0 || setsockopt(rfd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one)) != 0 ||
      bind(rfd, (struct sockaddr*) &addr, sizeof(addr)) != 0 ||
      getsockname(rfd, (struct sockaddr*) &addr, &addrlen) != 0) {
    perror("receiver socket");
    return 1;
  }
  {
    int rcvbuf = 8 << 20;
    setsockopt(rfd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf));
  }

  msgs = calloc(count, sizeof(*msgs));
  bufs = calloc(count, sizeof(*bufs));
  data = calloc(count, size);
  arrival = calloc(count, sizeof(*arrival));
  release_err = calloc(count, sizeof(*release_err));
  gap_err = calloc(count, sizeof(*gap_err));
  if (msgs == NULL || bufs == NULL || data == NULL || arrival == NULL ||
      release_err == NULL || gap_err == NULL)
    return 1;

  uv_loop_init(&loop);
  {
    struct sockaddr_in local;
    uv_ip4_addr("127.0.0.1", 0, &local);
    if ((r = uvq_udp_init(&loop, &udp)) != 0 ||
        (r = uvq_udp_bind(&udp, (const struct sockaddr*) &local, UVQ_UDP_TXTIME)) != 0 ||
        (r = uvq_udp_connect(&udp, (const struct sockaddr*) &addr)) != 0) {
      fprintf(stderr, "uvq: %s\n", uv_strerror(r));
      return 1;
    }
  }
  features = uvq_udp_features(&udp);

  /* uv_hrtime() is CLOCK_MONOTONIC; SO_TIMESTAMPNS is CLOCK_REALTIME. */
  clock_gettime(CLOCK_REALTIME, &rt);
  clock_gettime(CLOCK_MONOTONIC, &mono);
  realtime_offset = timespec_ns(&rt) - timespec_ns(&mono);

  start = uv_hrtime() + 5000000;
  for (i = 0; i < count; i++) {
    uint32_t seq = i;
    memcpy(data + (size_t) i * size, &seq, sizeof(seq));
    bufs[i] = uv_buf_init(data + (size_t) i * size, size);
    msgs[i].bufs = &bufs[i];
    msgs[i].nbufs = 1;
    msgs[i].ecn = -1;
    msgs[i].txtime = start + (uint64_t) i * spacing_us * 1000;
  }
  for (i = 0; i < count;) {
    unsigned int n = count - i > 64 ? 64 : count - i;
    r = uvq_udp_try_send_batch(&udp, msgs + i, n, 0);
    if (r == UV_EAGAIN) {
      struct timespec ts = { 0, 100000 };
      nanosleep(&ts, NULL);
      continue;
    }
    if (r < 0) {
      fprintf(stderr, "send: %s\n", uv_strerror(r));
      return 1;
    }
    i += (unsigned int) r;
  }

  deadline = start + (uint64_t) count * spacing_us * 1000 + 1000000000u;
  for (i = 0; i < count; i++)
    arrival[i] = -1;
  while (received < count && uv_hrtime() < deadline) {
    char buf[65536];
    union {
      char buf[CMSG_SPACE(sizeof(struct timespec))];
      struct cmsghdr align;
    } control;
    struct iovec iov = { buf, sizeof(buf) };
    struct msghdr msg;
    struct cmsghdr* cm;
    struct pollfd pfd = { rfd, POLLIN, 0 };
    ssize_t n;
    uint32_t seq;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    n = recvmsg(rfd, &msg, 0);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) {
        poll(&pfd, 1, 10);
        continue;
      }
      perror("recvmsg");
      return 1;
    }
    if (n < (ssize_t) sizeof(seq))
      continue;
    memcpy(&seq, buf, sizeof(seq));
    for (cm = CMSG_FIRSTHDR(&msg); cm != NULL; cm = CMSG_NXTHDR(&msg, cm))
      if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SO_TIMESTAMPNS && seq < count &&
          arrival[seq] < 0) {
        struct timespec ts;
        memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
        arrival[seq] = timespec_ns(&ts) - realtime_offset;
        received++;
      }
  }

  for (i = 0; i < count; i++) {
    release_err[i] = arrival[i] >= 0 ? llabs(arrival[i] - (int64_t) msgs[i].txtime) : 0;
    if (i > 0 && arrival[i] >= 0 && arrival[i - 1] >= 0)
      gap_err[ngaps++] = llabs(arrival[i] - arrival[i - 1] - (int64_t) spacing_us * 1000);
  }
  {
    int64_t rel_median = quantile(release_err, count, 0.5);
    int64_t rel_p99 = quantile(release_err, count, 0.99);
    int64_t gap_median = quantile(gap_err, ngaps, 0.5);
    int64_t gap_p99 = quantile(gap_err, ngaps, 0.99);
    int paced = received == count && gap_median < (int64_t) spacing_us * 500;
    printf("{\"check\":\"txtime\",\"txtime_in_effect\":%s,\"count\":%u,\"received\":%u,"
           "\"spacing_ns\":%llu,\"release_error_ns\":{\"median\":%lld,\"p99\":%lld},"
           "\"spacing_error_ns\":{\"median\":%lld,\"p99\":%lld},\"paced\":%s}\n",
           (features & UVQ_UDP_TXTIME) ? "true" : "false",
           count,
           received,
           (unsigned long long) spacing_us * 1000,
           (long long) rel_median,
           (long long) rel_p99,
           (long long) gap_median,
           (long long) gap_p99,
           paced ? "true" : "false");
  }
  uvq_udp_close(&udp, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  close(rfd);
  free(msgs);
  free(bufs);
  free(data);
  free(arrival);
  free(release_err);
  free(gap_err);
  return received == count ? 0 : 1;
}
