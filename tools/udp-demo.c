/* uvq-udp-demo: a loopback send/receive that shows what the datapath did.
 *
 * A receiver bound to 127.0.0.1 with ECN, pktinfo and GRO, and a sender
 * that pushes GSO batches marked ECT(0) through uvq_udp_try_send_batch.
 * Both run on one libuv loop. It prints the features in effect on each
 * socket, datagrams per syscall on both sides, the GSO and GRO counts and
 * the ECN codepoints seen, and exits non-zero if anything was lost. */
#include "uvq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DATAGRAM 1200
#define SEGMENTS 16
#define MESSAGES 8 /* per try_send_batch call */

struct demo {
  uv_loop_t* loop;
  uvq_udp_t rx;
  uvq_udp_t tx;
  uv_timer_t pump;
  struct sockaddr_storage rx_addr;
  char* payload;
  uint64_t want;          /* datagrams to send */
  uint64_t queued;        /* datagrams accepted by the sender */
  uint64_t received;      /* datagrams delivered to the receiver */
  uint64_t bad;           /* datagrams with unexpected content */
  unsigned int local_seen;
  char* rxbuf;
  size_t rxbuf_len;
  int rxbuf_out;
};

static void on_alloc(uvq_udp_t* h, size_t suggested, uv_buf_t* buf) {
  struct demo* d = h->data;

  /* One reusable buffer: every buffer comes back before the next alloc. */
  if (d->rxbuf_len < suggested) {
    free(d->rxbuf);
    d->rxbuf = malloc(suggested);
    d->rxbuf_len = d->rxbuf ? suggested : 0;
  }
  d->rxbuf_out = 1;
  *buf = uv_buf_init(d->rxbuf, (unsigned int) d->rxbuf_len);
}

static void print_features(const char* who, unsigned int f) {
  static const struct {
    unsigned int bit;
    const char* name;
  } names[] = {
      {UVQ_UDP_RECVECN, "recv-ecn"},       {UVQ_UDP_PMTUD, "pmtud"},
      {UVQ_UDP_RECVPKTINFO, "pktinfo"},    {UVQ_UDP_GRO, "gro"},
      {UVQ_UDP_GRO_RAW, "gro-raw"},        {UVQ_UDP_TXTIME, "txtime"},
      {UVQ_UDP_RECVERR, "recverr"},        {UVQ_UDP_RECVMMSG, "recvmmsg"},
      {UVQ_UDP_FEATURE_SENDMMSG, "sendmmsg"},
      {UVQ_UDP_FEATURE_GSO, "gso"},        {UVQ_UDP_FEATURE_ECN_SEND, "ecn-send"},
      {UVQ_UDP_FEATURE_SRCADDR, "srcaddr"}, {UVQ_UDP_FEATURE_DROPS, "drops"},
  };
  size_t i;

  printf("%-9s features in effect:", who);
  for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
    if (f & names[i].bit)
      printf(" %s", names[i].name);
  printf("\n");
}

static void on_recv(uvq_udp_t* h, const uvq_udp_recv_t* r) {
  struct demo* d = h->data;

  if (!(r->flags & UVQ_UDP_MMSG_CHUNK))
    d->rxbuf_out = 0; /* the buffer is back */
  if (r->nread < 0) {
    fprintf(stderr, "receive error: %s\n", uv_strerror((int) r->nread));
    return;
  }
  if (r->nread == 0 || r->addr == NULL)
    return;
  d->received++;
  if (r->nread != DATAGRAM || r->buf->base[0] != 'q')
    d->bad++;
  if (r->local.ss_family == AF_INET)
    d->local_seen++;
  if (d->received >= d->want)
    uvq_udp_recv_stop(h);
}

static void pump(uv_timer_t* t) {
  struct demo* d = t->data;
  uvq_udp_mmsg_t msgs[MESSAGES];
  uv_buf_t buf;
  int i;
  int r;

  buf = uv_buf_init(d->payload, DATAGRAM * SEGMENTS);
  for (i = 0; i < MESSAGES; i++) {
    memset(&msgs[i], 0, sizeof(msgs[i]));
    msgs[i].bufs = &buf;
    msgs[i].nbufs = 1;
    msgs[i].addr = (const struct sockaddr*) &d->rx_addr;
    msgs[i].gso_size = DATAGRAM;
    msgs[i].ecn = UVQ_ECN_ECT0;
  }
  /* Send while the receiver keeps up; the receiver's socket buffer bounds
   * how far ahead the sender may run without loss. */
  while (d->queued < d->want && d->queued - d->received < 2048) {
    r = uvq_udp_try_send_batch(&d->tx, msgs, MESSAGES, 0);
    if (r == UV_EAGAIN)
      break;
    if (r < 0) {
      fprintf(stderr, "send error: %s\n", uv_strerror(r));
      exit(1);
    }
    d->queued += (uint64_t) r * SEGMENTS;
  }
  if (d->queued >= d->want)
    uv_timer_stop(t);
}

static void report(struct demo* d, double secs) {
  uvq_udp_stats_t tx;
  uvq_udp_stats_t rx;

  uvq_udp_get_stats(&d->tx, &tx);
  uvq_udp_get_stats(&d->rx, &rx);
  print_features("sender", uvq_udp_features(&d->tx));
  print_features("receiver", uvq_udp_features(&d->rx));
  printf("sent      %llu datagrams in %llu syscalls (%.1f per syscall), "
         "%llu GSO sends carrying %llu segments, %llu software fallbacks\n",
         (unsigned long long) tx.datagrams_sent,
         (unsigned long long) tx.send_syscalls,
         tx.send_syscalls ? (double) tx.datagrams_sent / tx.send_syscalls : 0.0,
         (unsigned long long) tx.gso_sends,
         (unsigned long long) tx.gso_segments,
         (unsigned long long) tx.gso_fallbacks);
  printf("received  %llu datagrams in %llu syscalls (%.1f per syscall), "
         "%llu GRO super-packets carrying %llu segments\n",
         (unsigned long long) rx.datagrams_received,
         (unsigned long long) rx.recv_syscalls,
         rx.recv_syscalls ? (double) rx.datagrams_received / rx.recv_syscalls
                          : 0.0,
         (unsigned long long) rx.gro_packets,
         (unsigned long long) rx.gro_segments);
  printf("ECN seen  not-ECT %llu, ECT(1) %llu, ECT(0) %llu, CE %llu\n",
         (unsigned long long) rx.ecn_received[0],
         (unsigned long long) rx.ecn_received[1],
         (unsigned long long) rx.ecn_received[2],
         (unsigned long long) rx.ecn_received[3]);
  printf("pktinfo   local address reported on %u of %llu datagrams\n",
         d->local_seen, (unsigned long long) d->received);
  printf("kernel    receive-queue drops %llu\n",
         (unsigned long long) rx.kernel_drops);
  printf("goodput   %.2f Gbit/s (%llu x %d bytes in %.3f s)\n",
         secs > 0 ? (double) d->received * DATAGRAM * 8 / secs / 1e9 : 0.0,
         (unsigned long long) d->received, DATAGRAM, secs);
}

int main(int argc, char** argv) {
  struct demo d;
  struct sockaddr_in any;
  int namelen;
  int rcvbuf;
  uint64_t t0;
  double secs;
  int i;

  memset(&d, 0, sizeof(d));
  d.want = argc > 1 ? strtoull(argv[1], NULL, 10) : 200000;
  d.loop = uv_default_loop();
  d.payload = malloc(DATAGRAM * SEGMENTS);
  if (d.payload == NULL)
    return 1;
  for (i = 0; i < DATAGRAM * SEGMENTS; i++)
    d.payload[i] = (i % DATAGRAM) == 0 ? 'q' : (char) i;

  uv_ip4_addr("127.0.0.1", 0, &any);
  if (uvq_udp_init(d.loop, &d.rx) || uvq_udp_init(d.loop, &d.tx))
    return 1;
  d.rx.data = &d;
  d.tx.data = &d;
  if (uvq_udp_bind(&d.rx, (struct sockaddr*) &any,
                   UVQ_UDP_RECVECN | UVQ_UDP_RECVPKTINFO | UVQ_UDP_GRO)) {
    fprintf(stderr, "bind failed\n");
    return 1;
  }
  rcvbuf = 4 << 20;
  uvq_udp_recv_buffer_size(&d.rx, &rcvbuf);
  namelen = sizeof(d.rx_addr);
  uvq_udp_getsockname(&d.rx, (struct sockaddr*) &d.rx_addr, &namelen);
  if (uvq_udp_bind(&d.tx, (struct sockaddr*) &any, UVQ_UDP_PMTUD))
    return 1;

  uvq_udp_recv_start2(&d.rx, on_alloc, on_recv);
  uv_timer_init(d.loop, &d.pump);
  d.pump.data = &d;
  uv_timer_start(&d.pump, pump, 0, 1);

  printf("uvq %s: %llu datagrams of %d bytes over loopback, GSO batches of "
         "%d, ECT(0)\n",
         uvq_version_string(), (unsigned long long) d.want, DATAGRAM,
         SEGMENTS);
  t0 = uv_hrtime();
  while (d.received < d.want && uv_hrtime() - t0 < 20 * (uint64_t) 1000000000)
    uv_run(d.loop, UV_RUN_ONCE);
  secs = (double) (uv_hrtime() - t0) / 1e9;
  report(&d, secs);

  uv_close((uv_handle_t*) &d.pump, NULL);
  uvq_udp_close(&d.rx, NULL);
  uvq_udp_close(&d.tx, NULL);
  uv_run(d.loop, UV_RUN_DEFAULT);
  free(d.rxbuf);
  free(d.payload);
  if (d.received != d.want || d.bad != 0) {
    fprintf(stderr, "FAILED: received %llu of %llu, %llu malformed\n",
            (unsigned long long) d.received, (unsigned long long) d.want,
            (unsigned long long) d.bad);
    return 1;
  }
  return uv_loop_close(d.loop) == 0 ? 0 : 1;
}
