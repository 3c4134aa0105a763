#include "heap.h"

#include <stdlib.h>
#include <uv.h>

void uvq__heap_init(struct uvq__heap* h) {
  h->nodes = NULL;
  h->len = 0;
  h->cap = 0;
}

void uvq__heap_free(struct uvq__heap* h) {
  free(h->nodes);
  uvq__heap_init(h);
}

void uvq__heap_node_init(struct uvq__heap_node* n) {
  n->key = 0;
  n->index = UVQ__HEAP_NONE;
}

static void place(struct uvq__heap* h, size_t i, struct uvq__heap_node* n) {
  h->nodes[i] = n;
  n->index = i;
}

static void sift_up(struct uvq__heap* h, size_t i) {
  struct uvq__heap_node* n;
  size_t parent;

  n = h->nodes[i];
  while (i > 0) {
    parent = (i - 1) / 2;
    if (h->nodes[parent]->key <= n->key)
      break;
    place(h, i, h->nodes[parent]);
    i = parent;
  }
  place(h, i, n);
}

static void sift_down(struct uvq__heap* h, size_t i) {
  struct uvq__heap_node* n;
  size_t child;

  n = h->nodes[i];
  for (;;) {
    child = 2 * i + 1;
    if (child >= h->len)
      break;
    if (child + 1 < h->len && h->nodes[child + 1]->key < h->nodes[child]->key)
      child++;
    if (n->key <= h->nodes[child]->key)
      break;
    place(h, i, h->nodes[child]);
    i = child;
  }
  place(h, i, n);
}

int uvq__heap_set(struct uvq__heap* h, struct uvq__heap_node* n, uint64_t key) {
  struct uvq__heap_node** grown;
  size_t cap;
  uint64_t old;

  if (n->index != UVQ__HEAP_NONE) {
    old = n->key;
    n->key = key;
    if (key < old)
      sift_up(h, n->index);
    else if (key > old)
      sift_down(h, n->index);
    return 0;
  }
  if (h->len == h->cap) {
    cap = h->cap ? h->cap * 2 : 64;
    grown = realloc(h->nodes, cap * sizeof(*grown));
    if (grown == NULL)
      return UV_ENOMEM;
    h->nodes = grown;
    h->cap = cap;
  }
  n->key = key;
  place(h, h->len++, n);
  sift_up(h, n->index);
  return 0;
}

void uvq__heap_remove(struct uvq__heap* h, struct uvq__heap_node* n) {
  struct uvq__heap_node* last;
  size_t i;

  i = n->index;
  if (i == UVQ__HEAP_NONE)
    return;
  n->index = UVQ__HEAP_NONE;
  last = h->nodes[--h->len];
  if (i == h->len)
    return;
  place(h, i, last);
  if (i > 0 && h->nodes[(i - 1) / 2]->key > last->key)
    sift_up(h, i);
  else
    sift_down(h, i);
}

struct uvq__heap_node* uvq__heap_top(const struct uvq__heap* h) {
  return h->len ? h->nodes[0] : NULL;
}
