/* Gather-list helpers for software segmentation: a message's payload is a
 * list of buffers, and a segment is a byte range of their concatenation. */
#include "internal.h"

#include <string.h>

size_t uvq__bufs_total(const uv_buf_t* bufs, unsigned int nbufs) {
  size_t total;
  unsigned int i;

  total = 0;
  for (i = 0; i < nbufs; i++)
    total += bufs[i].len;
  return total;
}

/* Describes bytes [offset, offset + len) of the concatenated buffers as up
 * to max_out iovecs. Returns how many were used, or -1 if more were
 * needed. */
int uvq__slice_iov(const uv_buf_t* bufs,
                   unsigned int nbufs,
                   size_t offset,
                   size_t len,
                   uvq__iovec_t* out,
                   unsigned int max_out) {
  unsigned int i;
  unsigned int n;
  size_t take;

  n = 0;
  for (i = 0; i < nbufs && len > 0; i++) {
    if (offset >= bufs[i].len) {
      offset -= bufs[i].len;
      continue;
    }
    if (n == max_out)
      return -1;
    take = bufs[i].len - offset;
    if (take > len)
      take = len;
    out[n].iov_base = bufs[i].base + offset;
    out[n].iov_len = take;
    n++;
    len -= take;
    offset = 0;
  }
  return (int) n;
}

/* Copies bytes [offset, offset + len) of the concatenated buffers to dst. */
void uvq__bufs_copy(const uv_buf_t* bufs,
                    unsigned int nbufs,
                    size_t offset,
                    size_t len,
                    char* dst) {
  unsigned int i;
  size_t take;

  for (i = 0; i < nbufs && len > 0; i++) {
    if (offset >= bufs[i].len) {
      offset -= bufs[i].len;
      continue;
    }
    take = bufs[i].len - offset;
    if (take > len)
      take = len;
    memcpy(dst, bufs[i].base + offset, take);
    dst += take;
    len -= take;
    offset = 0;
  }
}
