/*
 * uvq-wire: a tiny userspace network emulator for the uvq tests.
 *
 * It bridges two network interfaces (normally the wire-side ends of two veth
 * pairs inside a dedicated network namespace) with AF_PACKET sockets and
 * applies, per direction, what a real path does to datagrams: propagation
 * delay with jitter, random loss (optionally only during an initial window),
 * reordering, a rate-limited tail-drop bottleneck queue with ECN CE marking,
 * ECN bleaching and a smaller MTU.  The model is the point-to-point link of
 * the ns-3 network simulator used by the QUIC interop runner, shrunk to one
 * file: frames go through
 *
 *   ingress -> MTU check -> loss -> ECN bleach -> bottleneck queue (rate,
 *   tail drop, CE marking) -> propagation delay (+jitter, +reorder hold) ->
 *   egress
 *
 * It exists because the test kernel has no netem/fq/codel/red qdiscs.
 *
 * Everything is driven by one epoll loop: the two packet sockets, a timerfd
 * armed (CLOCK_MONOTONIC, absolute) at the release time of the earliest
 * pending frame, kept in a binary min-heap, and a signalfd.  Memory is bounded
 * by the queue limits and by --max-pending / --max-pending-bytes.
 *
 * The random generators are seeded from --seed and are separate per
 * direction and per purpose (loss, jitter, reorder), and only emulated IP
 * frames draw from them, so a given packet sequence sees the same drops in
 * every run whatever ARP/ND or the other direction does.
 *
 * `uvq-wire --offloads-off IFNAME` is a helper mode that turns off checksum,
 * segmentation and GRO offloads on an interface (the ethtool ioctl), so that
 * the setup script does not need the ethtool program: with offloads on, veth
 * hands AF_PACKET GSO super-frames and frames whose checksum is not filled in.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/ethtool.h>
#include <linux/if_packet.h>
#include <linux/sockios.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif

#define MAX_FRAME (65536 + 64) /* 64 KiB IP packet + link header + slack */
#define NSEC_PER_MS 1000000ULL

/* ---- configuration ----------------------------------------------------- */

struct dirconf {
  double delay_ms, jitter_ms;
  double loss_pct, loss_init_pct, loss_init_ms, loss_burst, corrupt_pct;
  double reorder_pct, reorder_ms;
  double rate_mbit;
  double queue_pkts, queue_bytes, ce_threshold, mtu;
  int ce_all, bleach, mtu_blackhole;
};

enum { T_MS, T_PCT, T_NUM, T_FLAG };
struct dopt {
  const char *name;
  int type;
  size_t off;
  const char *help;
};
#define DO(n, t, f, h) {n, t, offsetof(struct dirconf, f), h}
static const struct dopt dopts[] = {
    DO("delay", T_MS, delay_ms, "one-way delay in ms"),
    DO("jitter", T_MS, jitter_ms, "uniform +-jitter in ms (order kept)"),
    DO("loss", T_PCT, loss_pct, "random loss in percent"),
    DO("loss-initial", T_PCT, loss_init_pct, "loss in percent during the initial window"),
    DO("loss-initial-ms", T_MS, loss_init_ms, "initial window length, from the first IP frame"),
    DO("loss-burst", T_NUM, loss_burst, "at most N random losses in a row per flow (0: no cap)"),
    DO("corrupt", T_PCT, corrupt_pct, "flip one bit in the UDP payload of N percent (checksum fixed)"),
    DO("reorder", T_PCT, reorder_pct, "percent of packets held back"),
    DO("reorder-delay", T_MS, reorder_ms, "extra hold for reordered packets (default 10)"),
    DO("rate", T_NUM, rate_mbit, "bottleneck rate in Mbit/s (frame bytes)"),
    DO("queue-pkts", T_NUM, queue_pkts, "bottleneck queue limit in packets (default 100)"),
    DO("queue-bytes", T_NUM, queue_bytes, "bottleneck queue limit in bytes"),
    DO("ce-threshold", T_NUM, ce_threshold, "mark CE when >= N packets are queued"),
    DO("ce-all", T_FLAG, ce_all, "mark every ECT packet CE"),
    DO("ecn-bleach", T_FLAG, bleach, "clear the ECN field of every IP packet"),
    DO("mtu", T_NUM, mtu, "drop IP packets larger than N bytes, send ICMP PTB"),
    DO("mtu-blackhole", T_FLAG, mtu_blackhole, "with --mtu: drop silently"),
};
#define NDOPTS (sizeof dopts / sizeof dopts[0])

/* ---- state ------------------------------------------------------------- */

struct stats {
  uint64_t rx, forwarded, bytes, control, dropped_loss, dropped_queue,
      dropped_mtu, dropped_tx, dropped_oversize, ce_marked, bleached,
      reordered, icmp_sent, max_queue, corrupted, loss_spared;
};

/* One frame waiting for its release time; data follows the header. */
struct frame {
  uint64_t release, seq;
  uint32_t len;
  int out; /* index of the socket it leaves through */
  int dir; /* direction whose counters it belongs to */
  unsigned char data[];
};

/* The bottleneck is computed, not timed: for a FIFO served at a fixed rate
 * the departure time of each packet is known when it arrives, so the queue
 * is just the ring of departure times not yet reached. */
struct qent {
  uint64_t done;
  uint32_t len;
};

struct dir {
  struct dirconf c;
  struct stats s;
  uint64_t rng_loss, rng_jitter, rng_reorder, rng_corrupt;
  /* --loss-burst: random losses in a row, per flow hash bucket */
  unsigned char loss_run[1024];
  uint64_t last_release; /* FIFO clamp so that jitter alone never reorders */
  uint64_t tx_free;      /* when the bottleneck link becomes idle */
  struct qent *q;
  size_t qcap, qhead, qlen;
  uint64_t qbytes;
};

static struct dir dirs[2]; /* 0: a->b, 1: b->a */
static int socks[2] = {-1, -1};
static const char *ifnames[2];
static struct frame **heap;
static size_t heap_len, heap_cap;
static uint64_t seq_counter, pending_bytes;
static uint64_t max_pending = 50000, max_pending_bytes = 128ULL << 20;
static uint64_t start_ns, first_ip_ns;
static const char *stats_file, *ready_file;
static int quiet;

static void die(const char *what) {
  fprintf(stderr, "uvq-wire: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* splitmix64: tiny, statistically fine for loss decisions, trivially seeded */
static uint64_t rng_next(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
static double rng01(uint64_t *s) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* ---- min-heap of frames keyed by (release, seq) ----------------------- */

static int frame_before(const struct frame *x, const struct frame *y) {
  return x->release < y->release || (x->release == y->release && x->seq < y->seq);
}

static void heap_push(struct frame *f) {
  if (heap_len == heap_cap) {
    heap_cap = heap_cap ? heap_cap * 2 : 1024;
    heap = realloc(heap, heap_cap * sizeof *heap);
    if (!heap) die("realloc");
  }
  size_t i = heap_len++;
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!frame_before(f, heap[p])) break;
    heap[i] = heap[p];
    i = p;
  }
  heap[i] = f;
}

static struct frame *heap_pop(void) {
  struct frame *top = heap[0], *last = heap[--heap_len];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, m = i;
    if (l >= heap_len) break;
    if (frame_before(heap[l], last)) m = l;
    if (l + 1 < heap_len && frame_before(heap[l + 1], m == i ? last : heap[l])) m = l + 1;
    if (m == i) break;
    heap[i] = heap[m];
    i = m;
  }
  if (heap_len) heap[i] = last;
  return top;
}

static void schedule(int dir, int out, const unsigned char *buf, size_t len, uint64_t release) {
  struct frame *f = malloc(sizeof *f + len);
  if (!f) die("malloc");
  f->release = release;
  f->seq = seq_counter++;
  f->len = (uint32_t)len;
  f->out = out;
  f->dir = dir;
  memcpy(f->data, buf, len);
  pending_bytes += len;
  heap_push(f);
}

/* ---- packet parsing and header rewriting ------------------------------ */

struct pkt {
  size_t l3;    /* offset of the IP header */
  int ip;       /* 4, 6 or 0 for anything else */
  int control;  /* neighbour discovery / MLD: forwarded with delay only */
  size_t iplen; /* IP packet length from its header (frames may be padded) */
};

static void classify(const unsigned char *b, size_t len, struct pkt *p) {
  memset(p, 0, sizeof *p);
  if (len < 14) return;
  size_t l3 = 14;
  unsigned type = (unsigned)b[12] << 8 | b[13];
  if (type == 0x8100 && len >= 18) { /* one VLAN tag */
    type = (unsigned)b[16] << 8 | b[17];
    l3 = 18;
  }
  p->l3 = l3;
  p->iplen = len - l3;
  if (type == 0x0800 && len >= l3 + 20 && (b[l3] >> 4) == 4) {
    p->ip = 4;
    size_t tl = (size_t)b[l3 + 2] << 8 | b[l3 + 3];
    if (tl >= 20 && tl <= len - l3) p->iplen = tl;
  } else if (type == 0x86dd && len >= l3 + 40 && (b[l3] >> 4) == 6) {
    p->ip = 6;
    size_t pl = (size_t)b[l3 + 4] << 8 | b[l3 + 5];
    if (pl + 40 <= len - l3) p->iplen = pl + 40;
    /* ND and MLD keep the link working; they must not be lost or they
     * would turn packet loss into long neighbour-resolution stalls. MLD
     * comes behind a hop-by-hop header, so skip one of those. */
    unsigned nh = b[l3 + 6];
    size_t off = l3 + 40;
    if (nh == 0 && len >= off + 8) {
      nh = b[off];
      off += ((size_t)b[off + 1] + 1) * 8;
    }
    if (nh == 58 && off < len) {
      unsigned t = b[off];
      p->control = (t >= 130 && t <= 137) || t == 143;
    }
  }
}

/* A bucket for the frame's flow: FNV-1a over the addresses, the protocol
 * and, for UDP and TCP, the ports.  Two flows may share a bucket; that only
 * makes their loss runs count together. */
static unsigned flow_bucket(const unsigned char *b, size_t len, const struct pkt *p) {
  const unsigned char *h = b + p->l3;
  size_t avail = len - p->l3, l4, alen;
  unsigned proto;
  uint32_t x = 2166136261u;

  if (p->ip == 4) {
    proto = h[9];
    l4 = (size_t)(h[0] & 15) * 4;
    alen = 8;
    h += 12;
  } else {
    proto = h[6];
    l4 = 40;
    alen = 32;
    h += 8;
  }
  for (size_t i = 0; i < alen; i++) x = (x ^ h[i]) * 16777619u;
  x = (x ^ proto) * 16777619u;
  if ((proto == 17 || proto == 6) && avail >= l4 + 4)
    for (size_t i = 0; i < 4; i++) x = (x ^ b[p->l3 + l4 + i]) * 16777619u;
  return (x ^ (x >> 16)) % 1024;
}

static int get_ecn(const unsigned char *b, const struct pkt *p) {
  const unsigned char *h = b + p->l3;
  return p->ip == 4 ? (h[1] & 3) : ((h[1] >> 4) & 3);
}

/* Change the ECN codepoint.  For IPv4 the header checksum is updated
 * incrementally (RFC 1624: HC' = ~(~HC + ~m + m')) on the 16-bit word that
 * holds version/IHL and TOS.  The UDP/TCP checksums do not cover TOS or the
 * IPv6 traffic class, so nothing else needs fixing. */
static void set_ecn(unsigned char *b, const struct pkt *p, int ecn) {
  unsigned char *h = b + p->l3;
  if (p->ip == 4) {
    uint16_t old = (uint16_t)(h[0] << 8 | h[1]);
    h[1] = (unsigned char)((h[1] & ~3) | ecn);
    uint16_t new = (uint16_t)(h[0] << 8 | h[1]);
    uint32_t sum = (uint16_t) ~((uint16_t)(h[10] << 8 | h[11]));
    sum += (uint16_t)~old;
    sum += new;
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    uint16_t cs = (uint16_t)~sum;
    h[10] = (unsigned char)(cs >> 8);
    h[11] = (unsigned char)cs;
  } else {
    h[1] = (unsigned char)((h[1] & ~0x30) | (ecn << 4));
  }
}

/* Flip one random bit of a UDP datagram's payload, as a faulty or hostile
 * middlebox would, and fix the UDP checksum to match (RFC 1624, on the
 * 16-bit word that holds the bit) so that the receiver's kernel delivers
 * it: only the application's own integrity check can catch it. IPv4 UDP
 * without a checksum (0) stays without. Returns 1 if a bit was flipped. */
static int corrupt_udp(unsigned char *b, const struct pkt *p, uint64_t *rng) {
  unsigned char *h = b + p->l3;
  size_t l4, ulen;

  if (p->ip == 4) {
    if (h[9] != 17 || ((h[6] & 0x3f) | h[7])) return 0; /* UDP, unfragmented */
    l4 = (size_t)(h[0] & 15) * 4;
  } else {
    if (h[6] != 17) return 0; /* UDP right after the fixed header only */
    l4 = 40;
  }
  if (l4 + 8 >= p->iplen) return 0;
  unsigned char *u = h + l4;
  ulen = (size_t)u[4] << 8 | u[5];
  if (ulen <= 8 || l4 + ulen > p->iplen) return 0;
  size_t off = 8 + (size_t)(rng_next(rng) % (ulen - 8)); /* from the UDP header */
  unsigned char bit = (unsigned char)(1u << (rng_next(rng) % 8));
  size_t w = off & ~(size_t)1; /* the checksum's 16-bit word, from u */
  uint16_t old = (uint16_t)(u[w] << 8 | (w + 1 < ulen ? u[w + 1] : 0));
  u[off] ^= bit;
  uint16_t new = (uint16_t)(u[w] << 8 | (w + 1 < ulen ? u[w + 1] : 0));
  uint16_t hc = (uint16_t)(u[6] << 8 | u[7]);
  if (p->ip == 4 && hc == 0) return 1;
  uint32_t sum = (uint16_t)~hc;
  sum += (uint16_t)~old;
  sum += new;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t cs = (uint16_t)~sum;
  if (cs == 0) cs = 0xffff; /* 0 means "no checksum" in UDP */
  u[6] = (unsigned char)(cs >> 8);
  u[7] = (unsigned char)cs;
  return 1;
}

static uint32_t csum_add(uint32_t sum, const unsigned char *d, size_t n) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += (uint32_t)d[i] << 8 | d[i + 1];
  if (n & 1) sum += (uint32_t)d[n - 1] << 8;
  return sum;
}
static uint16_t csum_fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}
static void put16(unsigned char *d, uint16_t v) {
  d[0] = (unsigned char)(v >> 8);
  d[1] = (unsigned char)v;
}

/* Build an ICMP "fragmentation needed" / ICMPv6 "packet too big" for a frame
 * that exceeded --mtu and queue it back towards its sender through the
 * reverse direction (delay only, like ARP).  A router would use its own
 * address as source; the wire has none, so the packet's destination address
 * is used, which Linux accepts (it matches the quoted header to a socket). */
static void send_ptb(int dir, const unsigned char *b, const struct pkt *p, uint64_t now) {
  unsigned char out[14 + 40 + 8 + 1280];
  const unsigned char *ih = b + p->l3;
  size_t quote, n;
  int mtu = (int)dirs[dir].c.mtu;

  if (p->ip == 4) {
    if (!(ih[6] & 0x40)) return; /* no DF: a router would fragment; we drop */
    if (ih[6] & 0x1f || ih[7]) return; /* not the first fragment */
    size_t ihl = (size_t)(ih[0] & 15) * 4;
    if (ih[9] == 1 && p->iplen > ihl && ih[ihl] != 0 && ih[ihl] != 8) return; /* ICMP error */
    quote = p->iplen < 548 ? p->iplen : 548; /* RFC 1812: up to 576 total */
    unsigned char *o = out + 14;
    memset(o, 0, 28);
    o[0] = 0x45;
    o[1] = 0xc0;
    put16(o + 2, (uint16_t)(28 + quote));
    o[8] = 64;
    o[9] = 1;
    memcpy(o + 12, ih + 16, 4); /* src = original destination */
    memcpy(o + 16, ih + 12, 4);
    put16(o + 10, csum_fold(csum_add(0, o, 20)));
    o[20] = 3; /* destination unreachable */
    o[21] = 4; /* fragmentation needed and DF set */
    put16(o + 26, (uint16_t)mtu);
    memcpy(o + 28, ih, quote);
    put16(o + 22, csum_fold(csum_add(0, o + 20, 8 + quote)));
    n = 14 + 28 + quote;
    put16(out + 12, 0x0800);
  } else {
    if (ih[24] == 0xff) return; /* multicast destination */
    size_t off = 40;
    if (ih[6] == 58 && p->iplen > off && ih[off] < 128) return; /* ICMPv6 error */
    quote = p->iplen < 1280 - 48 ? p->iplen : 1280 - 48;
    unsigned char *o = out + 14;
    memset(o, 0, 48);
    o[0] = 0x60;
    put16(o + 4, (uint16_t)(8 + quote));
    o[6] = 58;
    o[7] = 64;
    memcpy(o + 8, ih + 24, 16);
    memcpy(o + 24, ih + 8, 16);
    o[40] = 2; /* packet too big */
    o[44] = (unsigned char)(mtu >> 24);
    o[45] = (unsigned char)(mtu >> 16);
    o[46] = (unsigned char)(mtu >> 8);
    o[47] = (unsigned char)mtu;
    memcpy(o + 48, ih, quote);
    /* pseudo-header: addresses, upper-layer length, next header */
    uint32_t sum = csum_add(0, o + 8, 32);
    sum += (uint32_t)(8 + quote);
    sum += 58;
    put16(o + 42, csum_fold(csum_add(sum, o + 40, 8 + quote)));
    n = 14 + 48 + quote;
    put16(out + 12, 0x86dd);
  }
  memcpy(out, b + 6, 6); /* back to the sender's MAC */
  memcpy(out + 6, b, 6);
  int rev = 1 - dir;
  dirs[dir].s.icmp_sent++;
  schedule(rev, dir, out, n, now + (uint64_t)(dirs[rev].c.delay_ms * NSEC_PER_MS));
}

/* ---- the emulation pipeline ------------------------------------------- */

static void bottleneck_drain(struct dir *d, uint64_t now) {
  while (d->qlen && d->q[d->qhead].done <= now) {
    d->qbytes -= d->q[d->qhead].len;
    d->qhead = (d->qhead + 1) % d->qcap;
    d->qlen--;
  }
}

static void bottleneck_push(struct dir *d, uint64_t done, uint32_t len) {
  if (d->qlen == d->qcap) { /* grow and unwrap the ring */
    size_t ncap = d->qcap ? d->qcap * 2 : 256;
    struct qent *nq = malloc(ncap * sizeof *nq);
    if (!nq) die("malloc");
    for (size_t i = 0; i < d->qlen; i++) nq[i] = d->q[(d->qhead + i) % d->qcap];
    free(d->q);
    d->q = nq;
    d->qcap = ncap;
    d->qhead = 0;
  }
  d->q[(d->qhead + d->qlen) % d->qcap] = (struct qent){done, len};
  d->qlen++;
  d->qbytes += len;
}

static void ingress(int di, unsigned char *b, size_t len, uint64_t now) {
  struct dir *d = &dirs[di];
  struct stats *s = &d->s;
  int out = 1 - di;
  struct pkt p;
  uint64_t delay = (uint64_t)(d->c.delay_ms * NSEC_PER_MS);

  s->rx++;
  classify(b, len, &p);
  if (d->c.mtu > 0 && p.iplen > d->c.mtu) {
    s->dropped_mtu++;
    if (p.ip && !d->c.mtu_blackhole) send_ptb(di, b, &p, now);
    return;
  }
  if (heap_len >= max_pending || pending_bytes + len > max_pending_bytes) {
    s->dropped_queue++; /* global memory bound: behave like a full queue */
    return;
  }
  if (!p.ip || p.control) { /* ARP, ND, MLD, anything else: delay only */
    s->control++;
    schedule(di, out, b, len, now + delay);
    return;
  }

  /* random loss, with the initial window measured from the first emulated
   * IP frame in either direction (the start of the connection under test) */
  double loss = d->c.loss_pct;
  if (!first_ip_ns) first_ip_ns = now;
  if (d->c.loss_init_ms > 0 && now - first_ip_ns < (uint64_t)(d->c.loss_init_ms * NSEC_PER_MS))
    loss = d->c.loss_init_pct;
  if (loss > 0 && rng01(&d->rng_loss) * 100.0 < loss) {
    unsigned char *run = NULL;
    if (d->c.loss_burst > 0) run = &d->loss_run[flow_bucket(b, len, &p)];
    if (run == NULL || *run < d->c.loss_burst) {
      if (run != NULL) (*run)++;
      s->dropped_loss++;
      return;
    }
    *run = 0; /* the cap spares this one */
    s->loss_spared++;
  } else if (d->c.loss_burst > 0) {
    d->loss_run[flow_bucket(b, len, &p)] = 0;
  }

  if (d->c.corrupt_pct > 0 && rng01(&d->rng_corrupt) * 100.0 < d->c.corrupt_pct &&
      corrupt_udp(b, &p, &d->rng_corrupt))
    s->corrupted++;

  int ecn = get_ecn(b, &p), mark = 0;
  if (d->c.bleach && ecn) {
    set_ecn(b, &p, 0);
    s->bleached++;
    ecn = 0;
  }

  uint64_t t = now;
  if (d->c.rate_mbit > 0) {
    bottleneck_drain(d, now);
    if ((d->c.queue_pkts > 0 && d->qlen >= d->c.queue_pkts) ||
        (d->c.queue_bytes > 0 && d->qbytes + len > d->c.queue_bytes)) {
      s->dropped_queue++;
      return;
    }
    /* marking at enqueue on the instantaneous queue, as a step-threshold
     * AQM (DCTCP/L4S style) would */
    if (d->c.ce_threshold > 0 && d->qlen >= d->c.ce_threshold) mark = 1;
    uint64_t start = d->tx_free > now ? d->tx_free : now;
    uint64_t done = start + (uint64_t)((double)len * 8.0 * 1000.0 / d->c.rate_mbit);
    bottleneck_push(d, done, (uint32_t)len);
    if (d->qlen > s->max_queue) s->max_queue = d->qlen;
    d->tx_free = done;
    t = done;
  }
  if (d->c.ce_all) mark = 1;
  if (mark && ecn && ecn != 3) {
    set_ecn(b, &p, 3);
    s->ce_marked++;
  }

  t += delay;
  if (d->c.jitter_ms > 0) {
    double j = (rng01(&d->rng_jitter) * 2.0 - 1.0) * d->c.jitter_ms * NSEC_PER_MS;
    t = j < 0 && (uint64_t)-j > t - now ? now : (uint64_t)((double)t + j);
  }
  if (d->c.reorder_pct > 0 && rng01(&d->rng_reorder) * 100.0 < d->c.reorder_pct) {
    /* held back outside the FIFO clamp, so later packets overtake it */
    s->reordered++;
    schedule(di, out, b, len, t + (uint64_t)(d->c.reorder_ms * NSEC_PER_MS));
    return;
  }
  if (t < d->last_release) t = d->last_release;
  d->last_release = t;
  schedule(di, out, b, len, t);
}

static void release_due(uint64_t now) {
  while (heap_len && heap[0]->release <= now) {
    struct frame *f = heap_pop();
    struct stats *s = &dirs[f->dir].s;
    pending_bytes -= f->len;
    if (send(socks[f->out], f->data, f->len, MSG_DONTWAIT) < 0) {
      s->dropped_tx++;
    } else {
      s->forwarded++;
      s->bytes += f->len;
    }
    free(f);
  }
}

static void read_socket(int i) {
  static unsigned char buf[MAX_FRAME];
  for (int n = 0; n < 64; n++) { /* bounded batch: stay fair to the other side */
    struct sockaddr_ll sll;
    socklen_t sl = sizeof sll;
    ssize_t r = recvfrom(socks[i], buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC,
                         (struct sockaddr *)&sll, &sl);
    if (r < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      if (errno == ENETDOWN) continue;
      die("recvfrom");
    }
    if (sll.sll_pkttype == PACKET_OUTGOING) continue; /* kernels without IGNORE_OUTGOING */
    if ((size_t)r > sizeof buf) {
      dirs[i].s.rx++;
      dirs[i].s.dropped_oversize++;
      continue;
    }
    ingress(i, buf, (size_t)r, now_ns());
  }
}

/* ---- statistics ------------------------------------------------------- */

static void format_dir(FILE *f, const struct dir *d) {
  const struct stats *s = &d->s;
  fprintf(f,
          "{\"rx\":%llu,\"forwarded\":%llu,\"bytes\":%llu,\"control\":%llu,"
          "\"dropped_loss\":%llu,\"dropped_queue\":%llu,\"dropped_mtu\":%llu,"
          "\"dropped_tx\":%llu,\"dropped_oversize\":%llu,\"ce_marked\":%llu,"
          "\"bleached\":%llu,\"reordered\":%llu,\"icmp_sent\":%llu,\"max_queue\":%llu,"
          "\"corrupted\":%llu,\"loss_spared\":%llu}",
          (unsigned long long)s->rx, (unsigned long long)s->forwarded,
          (unsigned long long)s->bytes, (unsigned long long)s->control,
          (unsigned long long)s->dropped_loss, (unsigned long long)s->dropped_queue,
          (unsigned long long)s->dropped_mtu, (unsigned long long)s->dropped_tx,
          (unsigned long long)s->dropped_oversize, (unsigned long long)s->ce_marked,
          (unsigned long long)s->bleached, (unsigned long long)s->reordered,
          (unsigned long long)s->icmp_sent, (unsigned long long)s->max_queue,
          (unsigned long long)s->corrupted, (unsigned long long)s->loss_spared);
}

static void format_stats(FILE *f) {
  fprintf(f, "{\"uptime_ms\":%llu,\"pending\":%zu,\"ab\":",
          (unsigned long long)((now_ns() - start_ns) / NSEC_PER_MS), heap_len);
  format_dir(f, &dirs[0]);
  fprintf(f, ",\"ba\":");
  format_dir(f, &dirs[1]);
  fprintf(f, "}\n");
}

/* Written to a temporary name and renamed, so readers never see half a file. */
static void write_stats_file(void) {
  if (!stats_file) return;
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp", stats_file);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    perror("uvq-wire: stats file");
    return;
  }
  format_stats(f);
  if (fclose(f) == 0) rename(tmp, stats_file);
}

static void report(void) {
  format_stats(stdout);
  fflush(stdout);
  write_stats_file();
}

/* ---- offload helper ----------------------------------------------------- */

static int offload_wanted_off(const char *n) {
  size_t l = strlen(n);
  return !strncmp(n, "tx-checksum", 11) || !strncmp(n, "tx-scatter-gather", 17) ||
         !strncmp(n, "rx-gro", 6) || !strcmp(n, "rx-lro") || !strncmp(n, "tx-gso", 6) ||
         (l > 12 && !strcmp(n + l - 12, "segmentation"));
}

static int ethtool(int fd, const char *ifname, void *data) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  ifr.ifr_data = data;
  return ioctl(fd, SIOCETHTOOL, &ifr);
}

static int offloads_off(const char *ifname) {
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) die("socket");
  struct ethtool_sset_info *si = calloc(1, sizeof *si + sizeof(uint32_t));
  si->cmd = ETHTOOL_GSSET_INFO;
  si->sset_mask = 1ULL << ETH_SS_FEATURES;
  if (ethtool(fd, ifname, si) < 0 || !si->sset_mask) die("ETHTOOL_GSSET_INFO");
  uint32_t n = si->data[0], nb = (n + 31) / 32;
  struct ethtool_gstrings *gs = calloc(1, sizeof *gs + (size_t)n * ETH_GSTRING_LEN);
  gs->cmd = ETHTOOL_GSTRINGS;
  gs->string_set = ETH_SS_FEATURES;
  gs->len = n;
  if (ethtool(fd, ifname, gs) < 0) die("ETHTOOL_GSTRINGS");
  struct ethtool_gfeatures *gf = calloc(1, sizeof *gf + nb * sizeof gf->features[0]);
  struct ethtool_sfeatures *sf = calloc(1, sizeof *sf + nb * sizeof sf->features[0]);
  gf->cmd = ETHTOOL_GFEATURES;
  gf->size = nb;
  if (ethtool(fd, ifname, gf) < 0) die("ETHTOOL_GFEATURES");
  sf->cmd = ETHTOOL_SFEATURES;
  sf->size = nb;
  for (uint32_t i = 0; i < n; i++) {
    const char *name = (const char *)gs->data + (size_t)i * ETH_GSTRING_LEN;
    uint32_t bit = 1U << (i % 32);
    const struct ethtool_get_features_block *g = &gf->features[i / 32];
    if (offload_wanted_off(name) && (g->available & bit) && !(g->never_changed & bit))
      sf->features[i / 32].valid |= bit; /* requested bit stays 0: off */
  }
  if (ethtool(fd, ifname, sf) < 0) die("ETHTOOL_SFEATURES");
  if (ethtool(fd, ifname, gf) < 0) die("ETHTOOL_GFEATURES");
  /* Fail only if a feature we asked to change stayed on; a fixed one is
   * reported but may be harmless (the self-test checks the effect). */
  int bad = 0;
  for (uint32_t i = 0; i < n; i++) {
    const char *name = (const char *)gs->data + (size_t)i * ETH_GSTRING_LEN;
    uint32_t bit = 1U << (i % 32);
    if (offload_wanted_off(name) && (gf->features[i / 32].active & bit)) {
      int tried = (sf->features[i / 32].valid & bit) != 0;
      fprintf(stderr, "uvq-wire: %s: %s is still on%s\n", ifname, name,
              tried ? "" : " (fixed)");
      bad |= tried;
    }
  }
  free(si);
  free(gs);
  free(gf);
  free(sf);
  close(fd);
  return bad;
}

/* ---- setup and main loop ---------------------------------------------- */

static int open_if(const char *name) {
  int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) die("socket(AF_PACKET)");
  int idx = (int)if_nametoindex(name);
  if (!idx) {
    fprintf(stderr, "uvq-wire: no interface %s\n", name);
    exit(1);
  }
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL),
                            .sll_ifindex = idx};
  if (bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) die("bind");
  int one = 1, big = 8 << 20;
  /* Not seeing our own transmissions saves a copy per frame; where the option
   * is missing read_socket() filters PACKET_OUTGOING instead. */
  setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one);
  /* veth has noqueue anyway; skipping the qdisc layer keeps our timing */
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big) < 0)
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  /* A bridge must accept frames for the other side's MAC address. */
  struct packet_mreq mr = {.mr_ifindex = idx, .mr_type = PACKET_MR_PROMISC};
  if (setsockopt(fd, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof mr) < 0)
    die("PACKET_MR_PROMISC");
  /* Drop whatever was queued between socket() and bind() from any device. */
  unsigned char junk[64];
  while (recv(fd, junk, sizeof junk, MSG_DONTWAIT | MSG_TRUNC) >= 0) {
  }
  return fd;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: uvq-wire --a IF --b IF [options]\n"
          "       uvq-wire --offloads-off IF\n"
          "Per-direction options: --NAME applies to both directions, --NAME-ab to\n"
          "frames from --a to --b, --NAME-ba to the reverse.\n");
  for (size_t i = 0; i < NDOPTS; i++)
    fprintf(f, "  --%-16s %s%s\n", dopts[i].name, dopts[i].type == T_FLAG ? "   " : "V  ",
            dopts[i].help);
  fprintf(f,
          "Global options:\n"
          "  --seed N              PRNG seed (default 1)\n"
          "  --stats-file PATH     write the JSON counters there at exit and on SIGUSR1\n"
          "  --ready-file PATH     write our pid there once the sockets are bound\n"
          "  --max-pending N       frames held at once (default 50000)\n"
          "  --max-pending-bytes N bytes held at once (default 128 MiB)\n"
          "  --quiet               no messages on stderr\n"
          "Counters are printed as one JSON line on stdout on SIGUSR1 and at exit.\n");
}

static double parse_num(const char *opt, const char *v) {
  char *end;
  errno = 0;
  double x = strtod(v ? v : "", &end);
  if (!v || end == v || *end || errno || x < 0) {
    fprintf(stderr, "uvq-wire: bad value for --%s\n", opt);
    exit(2);
  }
  return x;
}

static void parse_args(int argc, char **argv) {
  uint64_t seed = 1;
  for (int i = 1; i < argc; i++) {
    char name[64];
    const char *a = argv[i], *val = NULL, *eq;
    if (strncmp(a, "--", 2)) {
      fprintf(stderr, "uvq-wire: unexpected argument %s\n", a);
      exit(2);
    }
    a += 2;
    eq = strchr(a, '=');
    size_t nl = eq ? (size_t)(eq - a) : strlen(a);
    if (nl >= sizeof name) nl = sizeof name - 1;
    memcpy(name, a, nl);
    name[nl] = 0;
    if (eq) val = eq + 1;

    /* per-direction option, optionally suffixed -ab / -ba */
    int mask = 3;
    const struct dopt *o = NULL;
    for (int pass = 0; pass < 2 && !o; pass++) {
      char base[64];
      snprintf(base, sizeof base, "%s", name);
      size_t bl = strlen(base);
      if (pass == 1) {
        if (bl < 4) break;
        if (!strcmp(base + bl - 3, "-ab")) mask = 1;
        else if (!strcmp(base + bl - 3, "-ba")) mask = 2;
        else break;
        base[bl - 3] = 0;
      }
      for (size_t k = 0; k < NDOPTS; k++)
        if (!strcmp(dopts[k].name, base)) o = &dopts[k];
    }
    int is_flag = o ? o->type == T_FLAG
                    : !strcmp(name, "quiet") || !strcmp(name, "help");
    if (!is_flag && !val) val = ++i < argc ? argv[i] : NULL;
    if (o) {
      for (int d = 0; d < 2; d++) {
        if (!(mask & (1 << d))) continue;
        char *field = (char *)&dirs[d].c + o->off;
        if (o->type == T_FLAG) {
          *(int *)field = 1;
        } else {
          double x = parse_num(name, val);
          if (o->type == T_PCT && x > 100) {
            fprintf(stderr, "uvq-wire: --%s is a percentage\n", name);
            exit(2);
          }
          if (o->off == offsetof(struct dirconf, loss_burst) &&
              (x > 255 || x != (double)(int)x)) {
            fprintf(stderr, "uvq-wire: --%s takes a whole number up to 255\n", name);
            exit(2);
          }
          *(double *)field = x;
        }
      }
    } else if (!strcmp(name, "a")) {
      ifnames[0] = val;
    } else if (!strcmp(name, "b")) {
      ifnames[1] = val;
    } else if (!strcmp(name, "seed")) {
      char *end;
      seed = strtoull(val ? val : "", &end, 0);
      if (!val || !*val || *end) {
        fprintf(stderr, "uvq-wire: bad value for --seed\n");
        exit(2);
      }
    } else if (!strcmp(name, "stats-file")) {
      stats_file = val;
    } else if (!strcmp(name, "ready-file")) {
      ready_file = val;
    } else if (!strcmp(name, "max-pending")) {
      max_pending = (uint64_t)parse_num(name, val);
    } else if (!strcmp(name, "max-pending-bytes")) {
      max_pending_bytes = (uint64_t)parse_num(name, val);
    } else if (!strcmp(name, "offloads-off")) {
      if (!val) exit(2);
      exit(offloads_off(val));
    } else if (!strcmp(name, "quiet")) {
      quiet = 1;
    } else if (!strcmp(name, "help")) {
      usage(stdout);
      exit(0);
    } else {
      fprintf(stderr, "uvq-wire: unknown option --%s\n", name);
      usage(stderr);
      exit(2);
    }
  }
  if (!ifnames[0] || !ifnames[1]) {
    usage(stderr);
    exit(2);
  }
  for (int d = 0; d < 2; d++) {
    struct dirconf *c = &dirs[d].c;
    if (c->reorder_ms == 0) c->reorder_ms = 10;
    if (c->rate_mbit > 0 && c->queue_pkts == 0 && c->queue_bytes == 0) c->queue_pkts = 100;
    uint64_t base = seed * 0x100 + (uint64_t)d * 0x10;
    dirs[d].rng_loss = base + 1;
    dirs[d].rng_jitter = base + 2;
    dirs[d].rng_reorder = base + 3;
    dirs[d].rng_corrupt = base + 4;
    /* decorrelate the neighbouring seeds */
    rng_next(&dirs[d].rng_loss);
    rng_next(&dirs[d].rng_jitter);
    rng_next(&dirs[d].rng_corrupt);
    rng_next(&dirs[d].rng_reorder);
  }
}

int main(int argc, char **argv) {
  parse_args(argc, argv);
  start_ns = now_ns();
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0); /* release frames on time */

  sigset_t ss;
  sigemptyset(&ss);
  sigaddset(&ss, SIGINT);
  sigaddset(&ss, SIGTERM);
  sigaddset(&ss, SIGHUP);
  sigaddset(&ss, SIGUSR1);
  sigprocmask(SIG_BLOCK, &ss, NULL);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &ss, SFD_NONBLOCK | SFD_CLOEXEC);
  int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  int ep = epoll_create1(EPOLL_CLOEXEC);
  if (sfd < 0 || tfd < 0 || ep < 0) die("signalfd/timerfd/epoll");
  for (int i = 0; i < 2; i++) socks[i] = open_if(ifnames[i]);

  int fds[4] = {socks[0], socks[1], tfd, sfd};
  for (int i = 0; i < 4; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0) die("epoll_ctl");
  }

  if (ready_file) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", ready_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", (int)getpid()) < 0 || fclose(f) || rename(tmp, ready_file))
      die("ready file");
  }
  if (!quiet) fprintf(stderr, "uvq-wire: READY %s <-> %s\n", ifnames[0], ifnames[1]);

  uint64_t armed = 0;
  for (int running = 1; running;) {
    /* Re-arm the timer only when the earliest release changed. */
    uint64_t next = heap_len ? heap[0]->release : 0;
    if (next != armed) {
      struct itimerspec its = {0};
      if (next) { /* absolute time; 0 would disarm */
        its.it_value.tv_sec = (time_t)(next / 1000000000ULL);
        its.it_value.tv_nsec = (long)(next % 1000000000ULL);
      }
      timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
      armed = next;
    }
    struct epoll_event evs[4];
    int n = epoll_wait(ep, evs, 4, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    for (int i = 0; i < n; i++) {
      uint32_t w = evs[i].data.u32;
      if (w < 2) {
        read_socket((int)w);
      } else if (w == 2) {
        uint64_t exp;
        if (read(tfd, &exp, sizeof exp) < 0 && errno != EAGAIN) die("timerfd");
        armed = 0; /* expired: must be re-armed even for the same time */
      } else {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
          if (si.ssi_signo == SIGUSR1) report();
          else running = 0;
        }
      }
    }
    release_due(now_ns());
  }
  report();
  return 0;
}
