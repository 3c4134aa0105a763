/* Private declarations shared by the uvq datapath sources. Nothing here is
 * part of the public API. */
#ifndef UVQ_INTERNAL_H
#define UVQ_INTERNAL_H

#include "uvq.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* The operating system's socket API: headers, the message and buffer
 * types the datapath hands to its receive and send calls, and the few
 * socket calls the shared code makes, each returning 0 or a UV_E* code. */
#ifdef _WIN32
#include "os-win.h"
#else
#include "os-posix.h"
#endif

/* Most messages one receive syscall fills, and most one send syscall takes. */
#define UVQ__RECV_BATCH_MAX 64
#define UVQ__SEND_BATCH_MAX 64

/* Defaults for the receive slots (uvq_udp_set_recv_slots()). 2048 bytes
 * holds any datagram of a 1500-byte-MTU path with room to spare; 32 of
 * them are 64 KiB, what libuv spends on a single datagram. A GRO
 * super-packet can be up to 64 KiB, so GRO gets fewer, larger slots. */
#define UVQ__SLOT_DEFAULT 2048u
#define UVQ__BATCH_DEFAULT 32u
#define UVQ__SLOT_GRO 65536u
#define UVQ__BATCH_GRO 8u
#define UVQ__SLOT_MAX 65536u

/* libuv reads at most 32 times per readable event so one busy socket cannot
 * starve the rest of the loop; uvq keeps the same bound, in syscalls. */
#define UVQ__READS_PER_EVENT 32

/* The kernel's UDP_MAX_SEGMENTS was 64 until Linux 6.10 raised it to 128;
 * 64 is what every GSO kernel accepts. */
#define UVQ__GSO_MAX_SEGMENTS 64u
/* Largest UDP payload: 65535 minus the 8-byte UDP header, minus the 20-byte
 * IPv4 header for IPv4 (the IPv6 payload length excludes its header). */
#define UVQ__MAX_PAYLOAD_V4 65507u
#define UVQ__MAX_PAYLOAD_V6 65527u
/* Buffers in one message: IOV_MAX on Linux and the BSDs; sendmsg refuses
 * more with EMSGSIZE, so uvq_udp_try_send_batch refuses them up front. */
#define UVQ__MAX_BUFS_PER_MSG 1024u
/* UDP_SEGMENT carries the segment size in 16 bits. */
#define UVQ__GSO_SIZE_MAX 65535u

/* Control buffer room per message. Receive: TOS or TCLASS, IP_PKTINFO or
 * IPV6_PKTINFO and UDP_GRO at once, with slack for a dual-stack
 * socket that gets the IPv4 forms. Send: TOS/TCLASS, pktinfo, UDP_SEGMENT
 * and SCM_TXTIME. test-udp-recv checks that everything enabled fits. */
#define UVQ__CMSG_RECV_SPACE 256
#define UVQ__CMSG_SEND_SPACE 128

/* Internal handle flags (uvq__udp_state.flags). */
enum {
  UVQ__F_RECEIVING = 1 << 0,  /* recv_start2 is in effect */
  UVQ__F_CLOSING = 1 << 1,    /* uvq_udp_close was called */
  UVQ__F_CONNECTED = 1 << 2,  /* connect() succeeded */
  UVQ__F_BOUND = 1 << 3,      /* bind() (or an implicit bind) happened */
  UVQ__F_V6ONLY = 1 << 4,     /* AF_INET6 socket without IPv4 mapping */
  UVQ__F_UNREF = 1 << 5,      /* uvq_udp_unref was called */
  UVQ__F_PEER_V4 = 1 << 6     /* connected to an IPv4(-mapped) peer */
};

/* One message of a batch, laid out like Linux's struct mmsghdr so that
 * io-linux.c can hand arrays of it to recvmmsg/sendmmsg directly (it
 * checks the layout at compile time). */
struct uvq__mmsg {
  uvq__msghdr_t hdr;
  unsigned int len;
};

/* What a received message's control data said. */
struct uvq__recv_meta {
  struct sockaddr_storage local; /* ss_family 0 when absent */
  unsigned int ifindex;
  int ecn;                       /* -1 when absent */
  unsigned int segment_size;     /* GRO stride, 0 when absent */
};

/* What a message to send asks of its control data. */
struct uvq__send_meta {
  int level_v4;                  /* 1: IPv4 or IPv4-mapped destination */
  int tos;                       /* full TOS/TCLASS byte, -1 for none */
  const struct sockaddr* local;  /* source address or NULL */
  unsigned int gso_size;         /* 0 for none */
  uint64_t txtime;               /* 0 for none */
};

/* A batch buffer handed out by alloc_cb and the messages read into it. It
 * stays with the handle until every message has been delivered, also
 * across recv_stop/recv_start2, and goes back to the user exactly once. */
struct uvq__recv_batch {
  uv_buf_t buf;                  /* as alloc_cb returned it */
  int held;                      /* buf is ours until returned */
  unsigned int count;            /* messages read into buf */
  unsigned int next;             /* next message to deliver */
  size_t seg_offset;             /* GRO split: offset in message `next` */
  int meta_valid;                /* meta and cur describe message `next` */
  struct uvq__recv_meta meta;
  uvq_udp_recv_t cur;            /* the callback argument for `next` */
  uv_buf_t cur_buf;
  size_t cur_len;                /* its bytes (clamped to the slot) */
  unsigned int cur_seg;          /* GRO stride, 0 if none */
  unsigned int cur_nseg;         /* datagrams it carries */
  unsigned int cur_extra;        /* UVQ_UDP_PARTIAL / UVQ_UDP_CTRUNC */
  int cur_split;
  struct uvq__mmsg msgs[UVQ__RECV_BATCH_MAX];
  uvq__iovec_t iov[UVQ__RECV_BATCH_MAX];
  struct sockaddr_storage peers[UVQ__RECV_BATCH_MAX];
  _Alignas(uvq__cmsghdr_t) char control[UVQ__RECV_BATCH_MAX]
                                        [UVQ__CMSG_RECV_SPACE];
};

/* Scratch space for one send syscall. A message segmented in software
 * becomes several entries, so entries map back to message indices. */
struct uvq__send_scratch {
  struct uvq__mmsg msgs[UVQ__SEND_BATCH_MAX];
  unsigned int msg_index[UVQ__SEND_BATCH_MAX];
  unsigned int last_of_msg[UVQ__SEND_BATCH_MAX]; /* entry ends a message */
  /* iovecs for software segments: each segment may straddle buffers. */
  uvq__iovec_t iov[UVQ__SEND_BATCH_MAX * 4];
  _Alignas(uvq__cmsghdr_t) char control[UVQ__SEND_BATCH_MAX]
                                        [UVQ__CMSG_SEND_SPACE];
};

/* Segments of a software-segmented message that the kernel had no room for
 * yet. uvq owns a copy and sends it before anything newer, so a try_send
 * that segmented in software never loses or duplicates a segment. */
struct uvq__carry {
  char* data;
  size_t len;                    /* bytes still to send */
  size_t cap;
  unsigned int seg;              /* segment size */
  struct sockaddr_storage addr;  /* destination (ss_family 0: connected) */
  struct sockaddr_storage local; /* source (ss_family 0: none) */
  int tos;
  int level_v4;
  uint64_t txtime;
  size_t sent;                   /* bytes of data already sent */
};

struct uvq__udp_state {
  uvq_udp_t* handle;
  int fd;
  int family;                    /* AF_INET or AF_INET6, 0 before socket */
  unsigned int flags;            /* UVQ__F_* */
  unsigned int features;         /* in effect; see uvq_udp_features() */
  unsigned int requested;        /* feature flags asked for */
  int tos;                       /* TOS/TCLASS of the socket's family */
  int tos4;                      /* dual-stack: TOS of IPv4-mapped traffic */
  uint16_t port;                 /* bound port, host order */

  uv_poll_t poll;
  int poll_ready;                /* poll initialized */
  int poll_events;               /* events currently polled */
  uv_timer_t kick;               /* delivers parked datagrams; close aid */
  int pending_closes;

  uvq_udp_alloc_cb alloc_cb;
  uvq_udp_recv_cb recv_cb;
  unsigned int slot_size;        /* 0: default for the features */
  unsigned int batch;            /* 0: default for the features */

  struct uvq__recv_batch* rb;
  struct uvq__send_scratch* sb;
  struct uvq__carry carry;

  /* Queued uvq_udp_send_batch requests, oldest first. */
  struct uvq__udp_send_state* queue_head;
  struct uvq__udp_send_state* queue_tail;

  uvq_udp_stats_t stats;
  uvq_udp_close_cb close_cb;
};

struct uvq__udp_send_state {
  uvq_udp_send_t* req;
  struct uvq__udp_send_state* next;
  uvq_udp_send_cb cb;
  uvq_udp_mmsg_t* msgs;          /* copies, pointing into this allocation */
  unsigned int count;
  unsigned int done;             /* messages sent */
  int status;
};

/* cmsg.c (cmsg-win.c on Windows): control-message encoding and decoding,
 * length-checked. */
void uvq__cmsg_decode(uvq__msghdr_t* hdr,
                      uint16_t port,
                      int family,
                      struct uvq__recv_meta* meta);
int uvq__cmsg_encode(char* buf,
                     size_t cap,
                     const struct uvq__send_meta* meta,
                     size_t* len);
int uvq__ecn_from_tos(int tos);

/* sockopt.c: options set the same way on every POSIX platform. */
int uvq__sockopt_unsupported(int err);
int uvq__sockopt_set_int(int fd, int level, int name, int value);
int uvq__wants_v4(const struct uvq__udp_state* s);
int uvq__sockopt_enable_pair(struct uvq__udp_state* s,
                             int v4name,
                             int v6name,
                             unsigned int feature);

/* segment.c: slicing a gather list into segments. */
size_t uvq__bufs_total(const uv_buf_t* bufs, unsigned int nbufs);
int uvq__slice_iov(const uv_buf_t* bufs,
                   unsigned int nbufs,
                   size_t offset,
                   size_t len,
                   uvq__iovec_t* out,
                   unsigned int max_out);
void uvq__bufs_copy(const uv_buf_t* bufs,
                    unsigned int nbufs,
                    size_t offset,
                    size_t len,
                    char* dst);

/* The platform datapath: io-linux.c or io-posix.c (with sockopt.c), or
 * io-win.c. Errors are UV_E* codes (-errno on POSIX). */

/* Creates a non-blocking socket of the family; fd or an error. */
int uvq__io_socket(int family);
/* Prepares a socket handed to uvq_udp_open as uvq__io_socket prepares its
 * own (non-blocking, ...); 0 or an error. */
int uvq__io_adopt(int fd);
void uvq__io_close(int fd);
/* Dissolves a connected socket's association with its peer. */
int uvq__io_disconnect(struct uvq__udp_state* s);
/* Reads and clears the socket's pending error: 0 when there is none. */
int uvq__io_pending_error(struct uvq__udp_state* s);
/* Features that come with any socket on this platform (sendmmsg, GSO ...),
 * probed on fd. */
unsigned int uvq__io_base_features(struct uvq__udp_state* s);
/* Enables the UVQ_UDP_* feature flags; updates s->features. Returns 0, or
 * -errno for a failure that is not "the platform cannot". */
int uvq__io_configure(struct uvq__udp_state* s, unsigned int flags);
/* Sets the DF mode; -errno. */
int uvq__io_set_pmtud(struct uvq__udp_state* s, int mode);
int uvq__io_getmtu(const struct uvq__udp_state* s, size_t* mtu);
/* Reads the socket's TOS/TCLASS byte (the IPv6 one on AF_INET6). */
int uvq__io_get_tos(const struct uvq__udp_state* s, int* tos);
/* Sets the ECN bits of the socket's TOS/TCLASS, keeping each option's own
 * DSCP bits (IPv4 and IPv6 on a dual-stack socket). */
int uvq__io_set_ecn(struct uvq__udp_state* s, int ecn);
/* Reads up to n messages into msgs; count, or -errno (-EAGAIN when none). */
int uvq__io_recv(struct uvq__udp_state* s, struct uvq__mmsg* msgs,
                 unsigned int n);
/* Sends up to n messages; count sent, or -errno of the first. */
int uvq__io_send(struct uvq__udp_state* s, struct uvq__mmsg* msgs,
                 unsigned int n);
/* The kernel's count of datagrams dropped for lack of room; UV_ENOTSUP
 * where the platform cannot tell. */
int uvq__io_drops(const struct uvq__udp_state* s, uint64_t* drops);
/* Reads one error-queue entry and delivers it; 1 if one was delivered,
 * 0 when the queue is empty, -errno. Linux only (0 elsewhere). */
int uvq__io_errqueue(struct uvq__udp_state* s);

/* udp.c: the handle core. */
void uvq__udp_update_poll(struct uvq__udp_state* s);

/* udp-recv.c: reading and delivering. */
/* The receive layout in effect: slot size and datagrams per syscall. */
void uvq__udp_slots(const struct uvq__udp_state* s,
                    unsigned int* slot,
                    unsigned int* batch);
void uvq__udp_read(struct uvq__udp_state* s);
void uvq__udp_deliver(struct uvq__udp_state* s);
void uvq__udp_deliver_one(struct uvq__udp_state* s, uvq_udp_recv_t* r);
void uvq__udp_deliver_error(struct uvq__udp_state* s, int err);
void uvq__udp_on_kick(uv_timer_t* timer);

/* udp-send.c: planning, sending and the queue. */
void uvq__udp_flush_queue(struct uvq__udp_state* s);
void uvq__udp_complete_req(struct uvq__udp_state* s,
                           struct uvq__udp_send_state* q,
                           int status);

/* The handle's state while it is usable: from init until uvq_udp_close. */
static inline struct uvq__udp_state* uvq__live_state(const uvq_udp_t* h) {
  if (h == NULL || h->state_ == NULL)
    return NULL;
  if (h->state_->flags & UVQ__F_CLOSING)
    return NULL;
  return h->state_;
}

/* Datagrams a payload of len bytes makes in segments of seg bytes. */
static inline unsigned int uvq__segments_of(size_t len, unsigned int seg) {
  if (seg == 0 || len <= seg)
    return 1;
  return (unsigned int) ((len + seg - 1) / seg);
}

static inline int uvq__sockaddr_len(const struct sockaddr* sa) {
  if (sa->sa_family == AF_INET)
    return (int) sizeof(struct sockaddr_in);
  if (sa->sa_family == AF_INET6)
    return (int) sizeof(struct sockaddr_in6);
  return 0;
}

static inline int uvq__is_v4mapped(const struct sockaddr* sa) {
  return sa->sa_family == AF_INET6 &&
         IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6*) sa)->sin6_addr);
}

static inline int uvq__tos_for_ecn(int tos, int ecn) {
  return (tos & ~3) | (ecn & 3);
}

#endif /* UVQ_INTERNAL_H */
