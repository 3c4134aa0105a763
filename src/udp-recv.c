/* The receive path: reading batches with the platform's receive call and
 * delivering them under the buffer-ownership contract of uvq.h. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

void uvq__udp_slots(const struct uvq__udp_state* s,
                            unsigned int* slot,
                            unsigned int* batch) {
  int gro;

  gro = (s->features & (UVQ_UDP_GRO | UVQ_UDP_GRO_RAW)) != 0;
  *slot = s->slot_size ? s->slot_size : (gro ? UVQ__SLOT_GRO : UVQ__SLOT_DEFAULT);
  *batch = s->batch ? s->batch : (gro ? UVQ__BATCH_GRO : UVQ__BATCH_DEFAULT);
  /* A super-packet is up to 64 KiB whatever the caller asked for; a smaller
   * slot would truncate every coalesced receive. */
  if (gro && *slot < UVQ__SLOT_GRO)
    *slot = UVQ__SLOT_GRO;
}

int uvq_udp_set_recv_slots(uvq_udp_t* handle,
                           unsigned int slot_size,
                           unsigned int batch) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
  if (s == NULL)
    return UV_EINVAL;
  if (slot_size > UVQ__SLOT_MAX || batch > UVQ__RECV_BATCH_MAX)
    return UV_EINVAL;
  if (slot_size)
    s->slot_size = slot_size;
  if (batch)
    s->batch = batch;
  return 0;
}

static void call_recv(struct uvq__udp_state* s, uvq_udp_recv_t* r) {
  s->recv_cb(s->handle, r);
}

static void recv_init(uvq_udp_recv_t* r) {
  memset(r, 0, sizeof(*r));
}

/* Delivers a callback that returns a buffer with no datagram in it: an
 * error (nread < 0), or nothing to read (nread 0). */
static void deliver_empty(struct uvq__udp_state* s, uv_buf_t* buf,
                          ssize_t nread) {
  uvq_udp_recv_t r;

  recv_init(&r);
  r.nread = nread;
  r.buf = buf;
  call_recv(s, &r);
}

/* Reports a socket error that came with no buffer (POLLERR). */
void uvq__udp_deliver_error(struct uvq__udp_state* s, int err) {
  uv_buf_t buf;

  buf = uv_buf_init(NULL, 0);
  deliver_empty(s, &buf, err);
}

/* Used by the platform files to deliver a complete callback (error queue
 * entries). The callback returns its buffer. */
void uvq__udp_deliver_one(struct uvq__udp_state* s, uvq_udp_recv_t* r) {
  call_recv(s, r);
}

/* Describes message `next` once, when it is first looked at: its metadata
 * and counters. The callbacks for its segments then only change nread,
 * buf and flags (the GRO split path runs per segment, so this matters). */
static void prepare(struct uvq__udp_state* s, struct uvq__recv_batch* rb) {
  struct uvq__mmsg* m;
  uvq_udp_recv_t* r;
  size_t slot_len;
  unsigned int extra;

  m = &rb->msgs[rb->next];
  uvq__cmsg_decode(&m->hdr, s->port, s->family, &rb->meta);
  rb->meta_valid = 1;
  slot_len = rb->iov[rb->next].iov_len;
  rb->cur_len = m->len < slot_len ? m->len : slot_len;
  rb->cur_seg = rb->meta.segment_size;
  rb->cur_nseg = uvq__segments_of(rb->cur_len, rb->cur_seg);
  rb->cur_split = (s->features & UVQ_UDP_GRO) && rb->cur_nseg > 1;
  extra = 0;
  if (m->hdr.msg_flags & MSG_TRUNC)
    extra |= UVQ_UDP_PARTIAL;
  if (m->hdr.msg_flags & MSG_CTRUNC)
    extra |= UVQ_UDP_CTRUNC;
  rb->cur_extra = extra;

  r = &rb->cur;
  r->addr = m->hdr.msg_namelen > 0
                ? (const struct sockaddr*) &rb->peers[rb->next]
                : NULL;
  if (s->features & UVQ_UDP_RECVPKTINFO)
    r->local = rb->meta.local;
  else
    r->local.ss_family = 0;
  r->ifindex = rb->meta.ifindex;
  r->ecn = rb->meta.ecn < 0 ? 0 : rb->meta.ecn;
  r->segment_size = rb->cur_nseg > 1 ? rb->cur_seg : 0;
  r->error = 0;
  r->mtu = 0;
  r->offender = NULL;

  /* Counted once per message, when first seen. */
  s->stats.datagrams_received += rb->cur_nseg;
  s->stats.bytes_received += rb->cur_len;
  if (rb->cur_nseg > 1) {
    s->stats.gro_packets++;
    s->stats.gro_segments += rb->cur_nseg;
  }
  if (rb->meta.ecn >= 0 && (s->features & UVQ_UDP_RECVECN))
    s->stats.ecn_received[rb->meta.ecn] += rb->cur_nseg;
  if (extra & UVQ_UDP_PARTIAL)
    s->stats.truncated++;
  if (extra & UVQ_UDP_CTRUNC)
    s->stats.control_truncated++;
}

/* Delivers the datagrams read into the batch buffer, in order, until all
 * are delivered, the caller stops receiving, or the handle closes. Then,
 * unless a sole datagram already took it back, returns the buffer with one
 * UVQ_UDP_MMSG_FREE callback. State is updated before each callback so the
 * callback may stop, restart or close the handle. */
void uvq__udp_deliver(struct uvq__udp_state* s) {
  struct uvq__recv_batch* rb;
  uvq_udp_recv_t* r;
  uvq_udp_recv_t fr;
  uv_buf_t* chunk;
  size_t left;

  rb = s->rb;
  r = &rb->cur;
  chunk = &rb->cur_buf;
  while (rb->held && rb->next < rb->count) {
    if (!(s->flags & UVQ__F_RECEIVING) || (s->flags & UVQ__F_CLOSING))
      break;
    if (!rb->meta_valid)
      prepare(s, rb);

    if (rb->cur_split) {
      left = rb->cur_len - rb->seg_offset;
      chunk->base = (char*) rb->iov[rb->next].iov_base + rb->seg_offset;
      chunk->len = left < rb->cur_seg ? left : rb->cur_seg;
      r->nread = (ssize_t) chunk->len;
      r->buf = chunk;
      r->flags = UVQ_UDP_MMSG_CHUNK | (rb->cur_extra & UVQ_UDP_CTRUNC);
      rb->seg_offset += chunk->len;
      if (rb->seg_offset >= rb->cur_len) {
        /* A truncated super-packet lost its tail: say so on its last
         * segment, the one that was cut. */
        r->flags |= rb->cur_extra & UVQ_UDP_PARTIAL;
        rb->next++;
        rb->seg_offset = 0;
        rb->meta_valid = 0;
      }
      call_recv(s, r);
      continue;
    }

    r->nread = (ssize_t) rb->cur_len;
    r->flags = rb->cur_extra;
    if (rb->count == 1) {
      /* The buffer held just this datagram: hand it back with it and save
       * the caller a FREE callback. Slot 0 starts at the buffer's base. */
      rb->held = 0;
      *chunk = rb->buf;
    } else {
      chunk->base = rb->iov[rb->next].iov_base;
      chunk->len = rb->cur_len;
      r->flags |= UVQ_UDP_MMSG_CHUNK;
    }
    r->buf = chunk;
    rb->next++;
    rb->seg_offset = 0;
    rb->meta_valid = 0;
    call_recv(s, r);
  }

  /* Return the buffer once everything in it was delivered, or when the
   * handle closes (closing discards what was read but not delivered, as
   * closing a socket discards its receive queue). */
  if (rb->held &&
      (rb->next >= rb->count || (s->flags & UVQ__F_CLOSING))) {
    rb->held = 0;
    recv_init(&fr);
    fr.nread = 0;
    fr.buf = &rb->buf;
    fr.flags = UVQ_UDP_MMSG_FREE;
    call_recv(s, &fr);
  }
}

/* Reads and delivers datagrams: a bounded number of syscalls per readable
 * event, so one busy socket cannot starve the loop. */
void uvq__udp_read(struct uvq__udp_state* s) {
  struct uvq__recv_batch* rb;
  unsigned int slot;
  unsigned int batch;
  unsigned int n;
  unsigned int i;
  size_t slot_len;
  uv_buf_t buf;
  uint64_t start;
  int r;

  rb = s->rb;
  /* Bounded in syscalls, not in rounds: on the portable path one round
   * can be a whole batch of recvmsg calls. */
  start = s->stats.recv_syscalls;
  for (;;) {
    if (s->stats.recv_syscalls - start >= UVQ__READS_PER_EVENT)
      return;
    if (!(s->flags & UVQ__F_RECEIVING) || (s->flags & UVQ__F_CLOSING))
      return;
    if (rb->held) {
      uvq__udp_deliver(s);
      if (rb->held)
        return;
      continue;
    }

    uvq__udp_slots(s, &slot, &batch);
    buf = uv_buf_init(NULL, 0);
    s->alloc_cb(s->handle, (size_t) slot * batch, &buf);
    if (s->flags & UVQ__F_CLOSING) {
      /* alloc_cb closed the handle; give the buffer straight back. */
      deliver_empty(s, &buf, UV_ECANCELED);
      return;
    }
    if (buf.base == NULL || buf.len == 0) {
      deliver_empty(s, &buf, UV_ENOBUFS);
      return;
    }

    n = (unsigned int) (buf.len / slot);
    if (n > batch)
      n = batch;
    /* Without recvmmsg each datagram is a syscall: keep within the bound. */
    if (!(s->features & UVQ_UDP_RECVMMSG) &&
        n > UVQ__READS_PER_EVENT - (s->stats.recv_syscalls - start))
      n = (unsigned int) (UVQ__READS_PER_EVENT -
                          (s->stats.recv_syscalls - start));
    slot_len = slot;
    if (n == 0) {
      n = 1;
      slot_len = buf.len;
    }
    for (i = 0; i < n; i++) {
      rb->iov[i].iov_base = buf.base + i * slot_len;
      rb->iov[i].iov_len = slot_len;
      memset(&rb->msgs[i].hdr, 0, sizeof(rb->msgs[i].hdr));
      rb->msgs[i].hdr.msg_name = &rb->peers[i];
      rb->msgs[i].hdr.msg_namelen = sizeof(rb->peers[i]);
      rb->msgs[i].hdr.msg_iov = &rb->iov[i];
      rb->msgs[i].hdr.msg_iovlen = 1;
      rb->msgs[i].hdr.msg_control = rb->control[i];
      rb->msgs[i].hdr.msg_controllen = sizeof(rb->control[i]);
      rb->msgs[i].len = 0;
    }

    r = uvq__io_recv(s, rb->msgs, n);
    if (r == UV_EAGAIN) {
      /* As in libuv: nread 0 with addr NULL means nothing was read. */
      deliver_empty(s, &buf, 0);
      return;
    }
    if (r < 0) {
      deliver_empty(s, &buf, r);
      return;
    }

    rb->buf = buf;
    rb->held = 1;
    rb->count = (unsigned int) r;
    rb->next = 0;
    rb->seg_offset = 0;
    rb->meta_valid = 0;
    uvq__udp_deliver(s);
    if (rb->held)
      return;
    /* A short batch means the socket is drained: save the EAGAIN call.
     * The loop polls level-triggered, so anything newer wakes it again. */
    if ((unsigned int) r < n)
      return;
  }
}

int uvq_udp_recv_start2(uvq_udp_t* handle,
                        uvq_udp_alloc_cb alloc_cb,
                        uvq_udp_recv_cb recv_cb) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
  if (s == NULL || alloc_cb == NULL || recv_cb == NULL)
    return UV_EINVAL;
  if (s->fd == -1)
    return UV_EBADF;
  if (s->flags & UVQ__F_RECEIVING)
    return UV_EALREADY;
  if (s->rb == NULL) {
    s->rb = calloc(1, sizeof(*s->rb));
    if (s->rb == NULL)
      return UV_ENOMEM;
  }
  s->alloc_cb = alloc_cb;
  s->recv_cb = recv_cb;
  s->flags |= UVQ__F_RECEIVING;
  uvq__udp_update_poll(s);
  /* Datagrams parked by an earlier recv_stop are delivered from the loop,
   * never from inside this call. */
  if (s->rb->held)
    uv_timer_start(&s->kick, uvq__udp_on_kick, 0, 0);
  return 0;
}

int uvq_udp_recv_stop(uvq_udp_t* handle) {
  struct uvq__udp_state* s;

  s = uvq__live_state(handle);
  if (s == NULL)
    return UV_EINVAL;
  if (!(s->flags & UVQ__F_RECEIVING))
    return 0;
  s->flags &= ~UVQ__F_RECEIVING;
  uv_timer_stop(&s->kick);
  uvq__udp_update_poll(s);
  return 0;
}

void uvq__udp_on_kick(uv_timer_t* timer) {
  struct uvq__udp_state* s;

  s = timer->data;
  if ((s->flags & UVQ__F_RECEIVING) && s->rb != NULL && s->rb->held)
    uvq__udp_read(s);
}
