/* An intrusive binary min-heap of expiry times. One heap per endpoint holds
 * every connection's next deadline, so ten thousand idle connections cost
 * one libuv timer armed for the earliest of them. Each node remembers its
 * position, so a connection's deadline moves in O(log n). */
#ifndef UVQ_QUIC_HEAP_H
#define UVQ_QUIC_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define UVQ__HEAP_NONE ((size_t) -1)

struct uvq__heap_node {
  uint64_t key;  /* expiry, in uv_hrtime() nanoseconds */
  size_t index;  /* position in the heap, UVQ__HEAP_NONE when not in it */
};

struct uvq__heap {
  struct uvq__heap_node** nodes;
  size_t len;
  size_t cap;
};

void uvq__heap_init(struct uvq__heap* h);
void uvq__heap_free(struct uvq__heap* h);
void uvq__heap_node_init(struct uvq__heap_node* n);
/* Inserts n with key, or moves it there if it is already in the heap.
 * Returns 0 or UV_ENOMEM. */
int uvq__heap_set(struct uvq__heap* h, struct uvq__heap_node* n, uint64_t key);
/* Removes n if it is in the heap. */
void uvq__heap_remove(struct uvq__heap* h, struct uvq__heap_node* n);
/* The node with the smallest key, or NULL. */
struct uvq__heap_node* uvq__heap_top(const struct uvq__heap* h);

#endif /* UVQ_QUIC_HEAP_H */
