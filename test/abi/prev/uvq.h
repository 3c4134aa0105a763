/* uvq: an extended UDP datapath for libuv event loops.
 *
 * The API follows the shape of the proposed libuv UDP extensions
 * (libuv/libuv#5116) under a uvq_ prefix, so that code ports 1:1 once libuv
 * grows them, and adds what QUIC stacks need on top: per-message ECN and
 * source address, software segmentation when GSO is refused, and an honest
 * report of the features in effect on each socket.
 *
 * Conventions, as in libuv:
 *  - Handles and requests are allocated by the caller. Their public fields
 *    come first; everything else hides behind an opaque pointer so the
 *    library can change it without breaking callers.
 *  - Functions return 0 (or a count) on success and a negative UV_E* error
 *    code on failure. A function that fails never calls its callback.
 *  - Callbacks run on the loop's thread, from inside uv_run().
 *
 * Full reference: docs/udp.md. Buffer ownership: docs/guide-buffers.md.
 */
#ifndef UVQ_H
#define UVQ_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Define UVQ_EXTERN (as empty) before including this header to build uvq
 * into another shared object with its symbols hidden; node/ reaches the
 * same end with a linker version script instead. */
#ifndef UVQ_EXTERN
#if defined(__GNUC__) && __GNUC__ >= 4
#define UVQ_EXTERN __attribute__((visibility("default")))
#else
#define UVQ_EXTERN /* nothing */
#endif
#endif

#define UVQ_VERSION_MAJOR 0
#define UVQ_VERSION_MINOR 1
#define UVQ_VERSION_PATCH 0

/* Returns the library version as (major << 16) | (minor << 8) | patch. */
UVQ_EXTERN unsigned int uvq_version(void);

/* Returns the library version as a "major.minor.patch" string. */
UVQ_EXTERN const char* uvq_version_string(void);

typedef struct uvq_udp_s uvq_udp_t;
typedef struct uvq_udp_recv_s uvq_udp_recv_t;
typedef struct uvq_udp_mmsg_s uvq_udp_mmsg_t;
typedef struct uvq_udp_send_s uvq_udp_send_t;
typedef struct uvq_udp_stats_s uvq_udp_stats_t;

/* Flags. One namespace serves binding, configuring, receiving and the
 * features report, as in libuv. Values equal libuv#5116's where that
 * proposal has the flag (UVQ_UDP_RECVERR is its UV_UDP_LINUX_RECVERR and
 * UVQ_UDP_RECV_ERRQUEUE its UV_UDP_RECV_LINUX_RECVERR).
 */
enum uvq_udp_flags {
  /* Bind: disable dual-stack mode (AF_INET6 addresses only). Features:
   * the socket is IPv6-only (Linux also makes a socket bound to a specific
   * IPv6 address IPv6-only). */
  UVQ_UDP_IPV6ONLY = 1,
  /* Receive: the datagram did not fit its buffer slot and was truncated. */
  UVQ_UDP_PARTIAL = 2,
  /* Bind: set SO_REUSEADDR. Features: the socket has it. */
  UVQ_UDP_REUSEADDR = 4,
  /* Receive: buf points into a larger buffer that will come back later in a
   * callback without this flag; do not free it now. */
  UVQ_UDP_MMSG_CHUNK = 8,
  /* Receive: the last callback for a batch buffer; free buf->base now.
   * nread is 0 and addr is NULL. */
  UVQ_UDP_MMSG_FREE = 16,
  /* Bind/configure (Linux): IP_RECVERR/IPV6_RECVERR. ICMP errors (packet too
   * big with its MTU, unreachable) and local send errors are read from the
   * socket's error queue and delivered to recv_cb with
   * UVQ_UDP_RECV_ERRQUEUE. */
  UVQ_UDP_RECVERR = 32,
  /* Bind: set SO_REUSEPORT (load-balanced sharing of the port).
   * Features: the socket has it. */
  UVQ_UDP_REUSEPORT = 64,
  /* Bind/init_ex: accepted for compatibility. uvq always batches receives
   * where the platform can; the features report says whether it does. */
  UVQ_UDP_RECVMMSG = 256,
  /* Bind/configure: report the ECN codepoint of every received datagram. */
  UVQ_UDP_RECVECN = 512,
  /* Bind/configure: Path-MTU discovery; set DF on every datagram. Same as
   * uvq_udp_set_pmtud(handle, UVQ_UDP_PMTUD_PROBE). */
  UVQ_UDP_PMTUD = 1024,
  /* Bind/configure: report the local address and interface index each
   * datagram arrived on. */
  UVQ_UDP_RECVPKTINFO = 2048,
  /* Bind/configure (Linux 5.0+): UDP GRO; uvq splits each coalesced
   * super-packet and calls recv_cb once per segment. */
  UVQ_UDP_GRO = 4096,
  /* Bind/configure (Linux 5.0+): UDP GRO; recv_cb gets each super-packet
   * whole, with segment_size set, and splits it itself. */
  UVQ_UDP_GRO_RAW = 8192,
  /* Bind/configure (Linux 4.19+): SO_TXTIME with CLOCK_MONOTONIC, so that
   * uvq_udp_mmsg_t.txtime releases are honoured by an fq or etf qdisc. */
  UVQ_UDP_TXTIME = 16384,
  /* Receive: this callback reports an entry of the socket's error queue
   * (see UVQ_UDP_RECVERR and uvq_udp_recv_t.error). */
  UVQ_UDP_RECV_ERRQUEUE = 32768,
  /* Receive: the kernel truncated this datagram's control data, so some of
   * ecn, local, ifindex and segment_size may be missing. */
  UVQ_UDP_CTRUNC = 65536,

  /* Features report only: these describe the send and receive paths and
   * have no bind flag; uvq uses them whenever they are in effect. */

  /* Kernel GSO (UDP_SEGMENT) is used for uvq_udp_mmsg_t.gso_size; without
   * it uvq segments in software. */
  UVQ_UDP_FEATURE_GSO = 1 << 17,
  /* Several messages per send syscall (sendmmsg). */
  UVQ_UDP_FEATURE_SENDMMSG = 1 << 18,
  /* Per-message ECN marking (uvq_udp_mmsg_t.ecn) by control message. */
  UVQ_UDP_FEATURE_ECN_SEND = 1 << 19,
  /* Per-message source address (uvq_udp_mmsg_t.local). */
  UVQ_UDP_FEATURE_SRCADDR = 1 << 20,
  /* The kernel's receive-queue drop count is readable (SO_MEMINFO). */
  UVQ_UDP_FEATURE_DROPS = 1 << 21
};

/* Path-MTU discovery modes for uvq_udp_set_pmtud(). */
enum uvq_udp_pmtud {
  /* Let the kernel fragment; DF is clear. */
  UVQ_UDP_PMTUD_OFF = 0,
  /* Set DF and enforce the kernel's cached path MTU: sends larger than it
   * fail with UV_EMSGSIZE. */
  UVQ_UDP_PMTUD_DO = 1,
  /* Set DF but ignore the cached path MTU (only the interface MTU is
   * enforced). This is what a QUIC stack doing its own DPLPMTUD wants. */
  UVQ_UDP_PMTUD_PROBE = 2
};

/* ECN codepoints (RFC 3168), the two low bits of the TOS/traffic class. */
enum uvq_ecn {
  UVQ_ECN_NOT_ECT = 0,
  UVQ_ECN_ECT1 = 1,
  UVQ_ECN_ECT0 = 2,
  UVQ_ECN_CE = 3
};

/* Called for a buffer to receive into (a batch of datagrams, or one
 * error-queue entry). suggested_size is the handle's slot size times its
 * batch size (see uvq_udp_set_recv_slots()); a smaller buffer means fewer
 * datagrams per syscall, and a buffer smaller than one slot truncates
 * larger datagrams (UVQ_UDP_PARTIAL). Leaving buf->base NULL or buf->len 0
 * reports UV_ENOBUFS to recv_cb. alloc_cb is never called while another
 * buffer is still out, so one reusable buffer per handle is enough. */
typedef void (*uvq_udp_alloc_cb)(uvq_udp_t* handle,
                                 size_t suggested_size,
                                 uv_buf_t* buf);

/* Per-datagram receive metadata, valid only during the callback. */
struct uvq_udp_recv_s {
  /* Bytes received (> 0), 0 for an empty datagram or a terminal callback
   * that returns the buffer, or a negative UV_E* error. */
  ssize_t nread;
  /* The data. Points into the buffer from alloc_cb. */
  const uv_buf_t* buf;
  /* The sender's address; NULL on terminal callbacks and errors. For an
   * error-queue entry, the destination the failed datagram was sent to. */
  const struct sockaddr* addr;
  /* The local address (with the socket's port) the datagram arrived on,
   * with UVQ_UDP_RECVPKTINFO; ss_family is 0 when unknown. On a dual-stack
   * socket IPv4 arrivals are reported as IPv4-mapped IPv6 addresses. */
  struct sockaddr_storage local;
  /* The interface the datagram arrived on, with UVQ_UDP_RECVPKTINFO; 0 when
   * unknown. */
  unsigned int ifindex;
  /* The datagram's ECN codepoint (enum uvq_ecn), with UVQ_UDP_RECVECN;
   * 0 when unknown. */
  int ecn;
  /* UVQ_UDP_PARTIAL, UVQ_UDP_MMSG_CHUNK, UVQ_UDP_MMSG_FREE,
   * UVQ_UDP_RECV_ERRQUEUE, UVQ_UDP_CTRUNC. */
  unsigned int flags;
  /* GRO segment stride when the datagram was a coalesced super-packet
   * (UVQ_UDP_GRO_RAW: the whole super-packet is in buf; UVQ_UDP_GRO: this
   * is one of its segments); 0 otherwise. */
  unsigned int segment_size;

  /* Fields below are uvq additions to the libuv#5116 layout. */

  /* With UVQ_UDP_RECV_ERRQUEUE: the error the kernel reported for a
   * datagram this socket sent (UV_EMSGSIZE for "packet too big",
   * UV_EHOSTUNREACH, UV_ECONNREFUSED, ...). buf holds as much of that
   * datagram's payload as the kernel returned, nread its length.
   * 0 on every other callback. */
  int error;
  /* With UVQ_UDP_RECV_ERRQUEUE and error == UV_EMSGSIZE: the MTU the kernel
   * or the ICMP message reported. 0 otherwise. */
  unsigned int mtu;
  /* With UVQ_UDP_RECV_ERRQUEUE: the node that reported the error (the
   * router that sent the ICMP message); NULL when the error is local. */
  const struct sockaddr* offender;
};

/* Receive callback. Ownership in one sentence: every buffer alloc_cb hands
 * out comes back exactly once in a callback whose flags lack
 * UVQ_UDP_MMSG_CHUNK, and that is when the caller frees it. */
typedef void (*uvq_udp_recv_cb)(uvq_udp_t* handle, const uvq_udp_recv_t* recv);

typedef void (*uvq_udp_close_cb)(uvq_udp_t* handle);

/* The UDP handle. Allocate it yourself, keep it alive until close_cb. */
struct uvq_udp_s {
  /* For the user; uvq never touches it. */
  void* data;
  /* The loop the handle belongs to (read-only). */
  uv_loop_t* loop;
  /* Private state; do not touch. */
  struct uvq__udp_state* state_;
};

/* The layout of uvq_udp_mmsg_t in this header. The batch-send macros pass
 * it to the library, which reads arrays laid out for an older header as
 * such (fields are only ever appended), so a program keeps working with a
 * newer library without being rebuilt. */
#define UVQ_UDP_MMSG_VERSION 1

/* One message for uvq_udp_try_send_batch() and uvq_udp_send_batch(). */
struct uvq_udp_mmsg_s {
  /* The payload, gathered from nbufs buffers. */
  const uv_buf_t* bufs;
  unsigned int nbufs;
  /* Destination; NULL on a connected handle (UV_EISCONN otherwise),
   * required on an unconnected one (UV_EDESTADDRREQ otherwise). */
  const struct sockaddr* addr;
  /* Source address to send from (IP_PKTINFO/IPV6_PKTINFO); its port is
   * ignored. NULL lets the kernel choose. */
  const struct sockaddr* local;
  /* 0: the payload is one datagram. Otherwise the payload is split into
   * datagrams of gso_size bytes, the last one possibly shorter: by the
   * kernel (UDP GSO) where it is in effect, in software otherwise. At most
   * 64 segments and 65507 (IPv4) / 65527 (IPv6) bytes in all. */
  unsigned int gso_size;
  /* -1: the handle's default codepoint (uvq_udp_set_ecn()); 0..3: this
   * message's codepoint, keeping the handle's DSCP bits. */
  int ecn;
  /* 0: send now. Otherwise a release time in uv_hrtime() nanoseconds
   * (CLOCK_MONOTONIC), honoured when UVQ_UDP_TXTIME is in effect and the
   * egress qdisc supports it (fq, etf); ignored otherwise. */
  uint64_t txtime;
};

typedef void (*uvq_udp_send_cb)(uvq_udp_send_t* req, int status);

/* A queued batch send. Allocate it yourself, keep it (and the payload
 * buffers, but not the uvq_udp_mmsg_t array or addresses, which are
 * copied) alive until its callback. */
struct uvq_udp_send_s {
  /* For the user; uvq never touches it. */
  void* data;
  /* The handle the request was made on (read-only). */
  uvq_udp_t* handle;
  /* Messages sent in full when the callback runs (read-only). */
  unsigned int nsent;
  /* Private state; do not touch. */
  struct uvq__udp_send_state* state_;
};

/* Counters since the handle was initialized. The struct only grows into
 * its reserved tail, so its size never changes. */
struct uvq_udp_stats_s {
  /* Datagrams and payload bytes delivered to recv_cb (GRO segments counted
   * one by one; error-queue entries not counted). */
  uint64_t datagrams_received;
  uint64_t bytes_received;
  /* Datagrams and payload bytes handed to the kernel (a GSO message counts
   * as its number of segments). */
  uint64_t datagrams_sent;
  uint64_t bytes_sent;
  /* Receive and send system calls made, including ones that returned
   * EAGAIN. */
  uint64_t recv_syscalls;
  uint64_t send_syscalls;
  /* Messages sent with kernel GSO, and the segments they carried. */
  uint64_t gso_sends;
  uint64_t gso_segments;
  /* GRO super-packets received (more than one segment), and their
   * segments. */
  uint64_t gro_packets;
  uint64_t gro_segments;
  /* Messages with gso_size that were segmented in software, because kernel
   * GSO is unavailable or was refused. */
  uint64_t gso_fallbacks;
  /* Received datagrams by ECN codepoint, when UVQ_UDP_RECVECN is in
   * effect. */
  uint64_t ecn_received[4];
  /* Datagrams truncated to their buffer slot (UVQ_UDP_PARTIAL). */
  uint64_t truncated;
  /* Datagrams whose control data was truncated (UVQ_UDP_CTRUNC). */
  uint64_t control_truncated;
  /* Datagrams the kernel dropped because the receive queue was full, read
   * from the socket when the counters are (SO_MEMINFO;
   * UVQ_UDP_FEATURE_DROPS), counted since the socket was created. */
  uint64_t kernel_drops;
  /* Error-queue entries read (UVQ_UDP_RECVERR). */
  uint64_t errqueue_entries;
  /* Sends that failed with EAGAIN or ENOBUFS. */
  uint64_t send_eagain;
  /* Segments of a software-segmented message that never went although
   * the message was accepted (its first segment had gone out): the kernel
   * rejected them later (the route disappeared), or the handle was closed
   * first. */
  uint64_t segments_dropped;
  uint64_t reserved[15];
};

/* Initializes a handle; the socket is created lazily by bind or open.
 * Returns UV_EINVAL for NULL arguments, UV_ENOMEM. */
UVQ_EXTERN int uvq_udp_init(uv_loop_t* loop, uvq_udp_t* handle);

/* Initializes a handle. The low 8 bits of flags are the address family
 * (AF_UNSPEC creates no socket, AF_INET or AF_INET6 create one now); the
 * other bits may be UVQ_UDP_RECVMMSG. Returns UV_EINVAL for other
 * families or flags, UV_ENOMEM, or a socket() error. */
UVQ_EXTERN int uvq_udp_init_ex(uv_loop_t* loop,
                               uvq_udp_t* handle,
                               unsigned int flags);

/* Adopts an existing UDP socket (set to non-blocking). The handle takes
 * ownership and closes it in uvq_udp_close(). Returns UV_EBUSY if the
 * handle already has a socket, UV_EINVAL if sock is not an AF_INET or
 * AF_INET6 datagram socket. */
UVQ_EXTERN int uvq_udp_open(uvq_udp_t* handle, uv_os_sock_t sock);

/* Binds to addr (port 0 picks a free port) and enables the features in
 * flags. Accepted flags: UVQ_UDP_IPV6ONLY, REUSEADDR, REUSEPORT, RECVMMSG
 * and every flag uvq_udp_configure() accepts. Returns UV_EINVAL for unknown
 * flags, GRO together with GRO_RAW, IPV6ONLY on an IPv4 address, or an
 * address family that differs from the socket's; UV_ENOTSUP for REUSEPORT
 * where the platform lacks SO_REUSEPORT; bind() errors such as
 * UV_EADDRINUSE. Other features the platform cannot provide are not an
 * error: check uvq_udp_features(). */
UVQ_EXTERN int uvq_udp_bind(uvq_udp_t* handle,
                            const struct sockaddr* addr,
                            unsigned int flags);

/* Enables features on a handle that has a socket: UVQ_UDP_RECVECN, PMTUD,
 * RECVPKTINFO, GRO, GRO_RAW, TXTIME, RECVERR. Enabling is additive.
 * Returns UV_EBADF without a socket, UV_EINVAL for other flags or for GRO
 * with GRO_RAW (checked before any socket option is touched). */
UVQ_EXTERN int uvq_udp_configure(uvq_udp_t* handle, unsigned int flags);

/* Connects the handle to addr, or disconnects it when addr is NULL.
 * Binds to the wildcard address first if the handle has no socket.
 * Returns UV_EISCONN / UV_ENOTCONN like uv_udp_connect(). */
UVQ_EXTERN int uvq_udp_connect(uvq_udp_t* handle, const struct sockaddr* addr);

/* Like uv_udp_getsockname() and uv_udp_getpeername(); UV_EBADF without a
 * socket, UV_ENOTCONN for the peer of an unconnected handle. */
UVQ_EXTERN int uvq_udp_getsockname(const uvq_udp_t* handle,
                                   struct sockaddr* name,
                                   int* namelen);
UVQ_EXTERN int uvq_udp_getpeername(const uvq_udp_t* handle,
                                   struct sockaddr* name,
                                   int* namelen);

/* Stores the socket's descriptor in *fd; UV_EBADF without a socket. Use it
 * for options uvq does not wrap; changing options uvq manages makes
 * uvq_udp_features() wrong. */
UVQ_EXTERN int uvq_udp_fileno(const uvq_udp_t* handle, uv_os_fd_t* fd);

/* Starts receiving. Both callbacks are required (UV_EINVAL); UV_EBADF
 * without a socket; UV_EALREADY if already receiving. Datagrams that were
 * read but not yet delivered when recv_stop was called are delivered first,
 * so stopping and restarting loses nothing. */
UVQ_EXTERN int uvq_udp_recv_start2(uvq_udp_t* handle,
                                   uvq_udp_alloc_cb alloc_cb,
                                   uvq_udp_recv_cb recv_cb);

/* Stops receiving; safe to call from inside recv_cb, where it takes effect
 * after the current callback. A batch buffer that still holds undelivered
 * datagrams is kept for the next recv_start2 (or returned by close). */
UVQ_EXTERN int uvq_udp_recv_stop(uvq_udp_t* handle);

/* Sets how received datagrams are laid out: slot_size bytes per datagram
 * (GRO super-packet) and up to batch datagrams per system call; 0 keeps
 * the current value. Defaults: 2048 x 32 without GRO, 65536 x 8 with GRO
 * (slot_size is raised to 65536 when GRO is in effect). Datagrams larger
 * than a slot are truncated and flagged UVQ_UDP_PARTIAL. Returns UV_EINVAL
 * for slot_size > 65536 or batch > 64. */
UVQ_EXTERN int uvq_udp_set_recv_slots(uvq_udp_t* handle,
                                      unsigned int slot_size,
                                      unsigned int batch);

/* uvq_udp_try_send_batch(handle, msgs, count, flags): a macro that passes
 * this header's UVQ_UDP_MMSG_VERSION to uvq_udp_try_send_batch_versioned(),
 * the function behind it. flags must be 0 (UV_EINVAL otherwise); it is
 * there for options that later releases add.
 * Sends as many messages as the kernel takes now, without queueing.
 * Returns the number of messages sent in full (a prefix of msgs),
 * UV_EAGAIN when none could go (socket buffer full, or a queued send is
 * still pending), or a negative UV_E* error of the first message (for
 * example UV_EMSGSIZE, which leaves the socket usable). A message that
 * fails its checks after the first ends the call early: the count of the
 * ones before it comes back, and the next call reports its error.
 * Argument errors, checked before UV_EBADF (no socket; then only msgs[0]
 * is checked): UV_EINVAL (NULL msgs, count 0, flags not 0, an
 * mmsg_version this library does not know, bufs NULL with nbufs > 0,
 * nbufs over 1024, ecn outside -1..3, gso_size over 65535). Then:
 * UV_EMSGSIZE (more than 64 segments or bytes over the datagram limit),
 * UV_EAFNOSUPPORT (addr or local of the wrong family), UV_EISCONN /
 * UV_EDESTADDRREQ, UV_ENOTSUP (local without UVQ_UDP_FEATURE_SRCADDR),
 * UV_ENOMEM, and the kernel's own errors (ENOBUFS from a full qdisc is
 * UV_EAGAIN). nbufs 0 sends an empty datagram.
 * Recovery, each proven before anything lasting changes: a message with
 * gso_size that the kernel refuses to segment (EIO, EINVAL) is re-sent at
 * once as separate datagrams, and GSO is switched off on this socket only
 * if that works; an EINVAL with an ECN control message is re-sent without
 * it, and per-message ECN is switched off only if that works; with
 * UVQ_UDP_RECVERR on an unconnected socket, an ICMP error left pending by
 * an earlier datagram (ECONNREFUSED, EHOSTUNREACH, ...) makes the kernel
 * fail the next send once, so that message is sent again, once. Nothing is
 * lost in any of these cases. After UV_EAGAIN, uvq_udp_send_batch() with
 * the rest, or with count 0, calls back when the socket is writable. */
UVQ_EXTERN int uvq_udp_try_send_batch_versioned(uvq_udp_t* handle,
                                                int mmsg_version,
                                                const uvq_udp_mmsg_t* msgs,
                                                unsigned int count,
                                                unsigned int flags);
#define uvq_udp_try_send_batch(handle, msgs, count, flags)                   \
  uvq_udp_try_send_batch_versioned((handle), UVQ_UDP_MMSG_VERSION, (msgs),  \
                                   (count), (flags))

/* uvq_udp_send_batch(req, handle, msgs, count, flags, cb): a macro over
 * uvq_udp_send_batch_versioned(), as for try_send_batch; flags must be 0.
 * Queues msgs and sends them as the socket becomes writable, calling cb
 * once, from the loop, never from inside this call. status is 0 when all
 * were sent; otherwise the error of message req->nsent, after which the
 * rest were not sent; UV_ECANCELED when the handle was closed first.
 * Argument errors are returned at once (every message is checked before
 * any is queued). With count 0 (msgs may be NULL) nothing is sent: cb
 * says when the socket is writable and everything queued before has
 * gone, which is the signal to wait for after UV_EAGAIN from
 * try_send_batch. */
UVQ_EXTERN int uvq_udp_send_batch_versioned(uvq_udp_send_t* req,
                                            uvq_udp_t* handle,
                                            int mmsg_version,
                                            const uvq_udp_mmsg_t* msgs,
                                            unsigned int count,
                                            unsigned int flags,
                                            uvq_udp_send_cb cb);
#define uvq_udp_send_batch(req, handle, msgs, count, flags, cb)              \
  uvq_udp_send_batch_versioned((req), (handle), UVQ_UDP_MMSG_VERSION,       \
                               (msgs), (count), (flags), (cb))

/* Sets the handle's default ECN codepoint (0..3) on every datagram it
 * sends, keeping the DSCP bits. UV_EINVAL outside 0..3; UV_EBADF without a
 * socket. */
UVQ_EXTERN int uvq_udp_set_ecn(uvq_udp_t* handle, int ecn);

/* Sets the Path-MTU discovery mode (enum uvq_udp_pmtud). UV_EINVAL for an
 * unknown mode, UV_EBADF without a socket, UV_ENOTSUP where the platform
 * cannot set DF. */
UVQ_EXTERN int uvq_udp_set_pmtud(uvq_udp_t* handle, int mode);

/* Stores the kernel's path MTU towards the connected peer in *mtu.
 * UV_ENOTCONN on an unconnected handle, UV_EBADF without a socket,
 * UV_ENOTSUP where the platform cannot tell. */
UVQ_EXTERN int uvq_udp_getmtu(const uvq_udp_t* handle, size_t* mtu);

/* Returns the most segments one message may carry with kernel GSO on this
 * socket now (64), or 0 when GSO is not in effect (gso_size still works,
 * segmented in software). */
UVQ_EXTERN unsigned int uvq_udp_gso_max_segments(const uvq_udp_t* handle);

/* Gets (*value == 0) or sets (*value > 0) SO_SNDBUF / SO_RCVBUF, like
 * uv_send_buffer_size(). On Linux the value read back is twice the value
 * set. UV_EBADF without a socket, UV_EINVAL for NULL or a negative value. */
UVQ_EXTERN int uvq_udp_send_buffer_size(uvq_udp_t* handle, int* value);
UVQ_EXTERN int uvq_udp_recv_buffer_size(uvq_udp_t* handle, int* value);

/* Returns the features in effect on this socket now: the UVQ_UDP_* bind
 * flags that really took effect, plus UVQ_UDP_FEATURE_* bits. A feature
 * the platform lacks, that failed to enable, or that was switched off at
 * run time (GSO after the kernel refused it) is not reported. 0 without a
 * socket. */
UVQ_EXTERN unsigned int uvq_udp_features(const uvq_udp_t* handle);

/* Copies the handle's counters into *stats. UV_EINVAL for NULL. */
UVQ_EXTERN int uvq_udp_get_stats(const uvq_udp_t* handle,
                                 uvq_udp_stats_t* stats);

/* Returns non-zero while the handle is receiving or has sends queued. */
UVQ_EXTERN int uvq_udp_is_active(const uvq_udp_t* handle);

/* Like uv_ref()/uv_unref(): an unreferenced handle does not keep uv_run()
 * alive. */
UVQ_EXTERN void uvq_udp_ref(uvq_udp_t* handle);
UVQ_EXTERN void uvq_udp_unref(uvq_udp_t* handle);

/* Closes the handle and its socket. Queued sends complete (with their own
 * result if they were sent in full, UV_ECANCELED otherwise) and a buffer
 * with undelivered datagrams comes back through recv_cb
 * (UVQ_UDP_MMSG_FREE), all before close_cb, which runs on a later loop
 * iteration. The counters cannot be read in close_cb: read them first.
 * close_cb may be NULL. A second call is ignored. */
UVQ_EXTERN void uvq_udp_close(uvq_udp_t* handle, uvq_udp_close_cb close_cb);

/* Returns non-zero if uvq_udp_close() was called on the handle. */
UVQ_EXTERN int uvq_udp_is_closing(const uvq_udp_t* handle);

#ifdef __cplusplus
}
#endif

#endif /* UVQ_H */
