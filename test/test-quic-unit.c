/* White-box tests of the QUIC layer's data structures, without sockets:
 * the timer min-heap (quic/heap.c) and the connection-ID map with its
 * SipHash-2-4 (quic/cidmap.c). Randomized operations run against a simple
 * reference with a fixed seed, so a failure reproduces exactly. */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "cidmap.h"
#include "heap.h"
#include "task.h"

/* splitmix64: small, seedable and the same everywhere. */
static uint64_t next_rand(uint64_t* state) {
  uint64_t z;

  *state += 0x9e3779b97f4a7c15ULL;
  z = *state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* --- heap --------------------------------------------------------------- */

#define HEAP_NODES 512
#define HEAP_OPS 200000

/* Checks the heap property and that every node knows its position. */
static void check_heap(const struct uvq__heap* h) {
  size_t i;

  for (i = 0; i < h->len; i++) {
    ASSERT_UINT_EQ(i, h->nodes[i]->index);
    if (i > 0)
      ASSERT_UINT_LE(h->nodes[(i - 1) / 2]->key, h->nodes[i]->key);
  }
}

TEST_IMPL(quic_unit_heap_random) {
  struct uvq__heap_node nodes[HEAP_NODES];
  int in_ref[HEAP_NODES];
  uint64_t seed = 20240601;
  struct uvq__heap h;
  struct uvq__heap_node* top;
  uint64_t min;
  size_t count;
  size_t i;
  size_t k;
  int op;

  uvq__heap_init(&h);
  ASSERT_NULL(uvq__heap_top(&h));
  for (i = 0; i < HEAP_NODES; i++) {
    uvq__heap_node_init(&nodes[i]);
    ASSERT_UINT_EQ(UVQ__HEAP_NONE, nodes[i].index);
    in_ref[i] = 0;
  }
  count = 0;
  for (k = 0; k < HEAP_OPS; k++) {
    i = (size_t) (next_rand(&seed) % HEAP_NODES);
    op = (int) (next_rand(&seed) % 4);
    if (op < 2) {
      /* Insert, or move an existing node up or down. Small keys make
       * duplicates common. */
      ASSERT_OK(uvq__heap_set(&h, &nodes[i], next_rand(&seed) % 1000));
      if (!in_ref[i])
        count++;
      in_ref[i] = 1;
    } else if (op == 2) {
      uvq__heap_remove(&h, &nodes[i]);
      if (in_ref[i])
        count--;
      in_ref[i] = 0;
      ASSERT_UINT_EQ(UVQ__HEAP_NONE, nodes[i].index);
    } else if (count > 0) {
      /* Pop the minimum, as the endpoint's timer does. */
      top = uvq__heap_top(&h);
      ASSERT_NOT_NULL(top);
      min = UINT64_MAX;
      for (i = 0; i < HEAP_NODES; i++)
        if (in_ref[i] && nodes[i].key < min)
          min = nodes[i].key;
      ASSERT_UINT_EQ(min, top->key);
      uvq__heap_remove(&h, top);
      in_ref[top - nodes] = 0;
      count--;
    }
    ASSERT_UINT_EQ(count, h.len);
    if (k % 97 == 0)
      check_heap(&h);
  }
  check_heap(&h);
  /* Draining yields the keys in order. */
  min = 0;
  while ((top = uvq__heap_top(&h)) != NULL) {
    ASSERT_UINT_LE(min, top->key);
    min = top->key;
    uvq__heap_remove(&h, top);
  }
  ASSERT_UINT_EQ(0, h.len);
  uvq__heap_free(&h);
  return 0;
}

/* --- cidmap ------------------------------------------------------------- */

#define CID_KEYS 3000
#define CID_OPS 300000

struct ref_entry {
  uint8_t cid[UVQ__CID_MAX];
  size_t len;
  void* value; /* NULL: absent */
};

TEST_IMPL(quic_unit_cidmap_random) {
  static struct ref_entry ref[CID_KEYS];
  uint64_t seed = 77;
  struct uvq__cidmap m;
  uint8_t toolong[UVQ__CID_MAX + 1];
  size_t present;
  size_t i;
  size_t j;
  size_t k;
  void* v;
  int op;

  ASSERT_OK(uvq__cidmap_init(&m));
  /* Empty map. */
  ASSERT_NULL(uvq__cidmap_get(&m, (const uint8_t*) "x", 1));
  ASSERT_NULL(uvq__cidmap_del(&m, (const uint8_t*) "x", 1));
  /* Distinct keys of every length 0..20, some sharing prefixes (a key and
   * its prefix must stay distinct). */
  for (i = 0; i < CID_KEYS; i++) {
    ref[i].len = i % (UVQ__CID_MAX + 1);
    for (j = 0; j < ref[i].len; j++)
      ref[i].cid[j] = (uint8_t) next_rand(&seed);
    if (ref[i].len > 0)
      ref[i].cid[0] = (uint8_t) (i & 0xff);
    if (ref[i].len > 1)
      ref[i].cid[1] = (uint8_t) (i >> 8);
    ref[i].value = NULL;
  }
  /* Only one key may be empty; the other multiples of 21 get 3 bytes. */
  for (i = 1; i < CID_KEYS; i++) {
    if (ref[i].len == 0) {
      ref[i].len = 3;
      ref[i].cid[0] = (uint8_t) (i & 0xff);
      ref[i].cid[1] = (uint8_t) (i >> 8);
      ref[i].cid[2] = 0xee;
    }
  }
  /* Prefixes: key 1 (1 byte) is a prefix of a 2-byte key with the same
   * first byte, which must stay a different key. */
  ref[2].cid[0] = ref[1].cid[0];
  present = 0;
  for (k = 0; k < CID_OPS; k++) {
    i = (size_t) (next_rand(&seed) % CID_KEYS);
    op = (int) (next_rand(&seed) % 3);
    if (op == 0) {
      v = (void*) (uintptr_t) (next_rand(&seed) | 1);
      ASSERT_OK(uvq__cidmap_put(&m, ref[i].cid, ref[i].len, v));
      if (ref[i].value == NULL)
        present++;
      ref[i].value = v;
    } else if (op == 1) {
      v = uvq__cidmap_del(&m, ref[i].cid, ref[i].len);
      ASSERT_PTR_EQ(ref[i].value, v);
      if (v != NULL)
        present--;
      ref[i].value = NULL;
    } else {
      ASSERT_PTR_EQ(ref[i].value, uvq__cidmap_get(&m, ref[i].cid, ref[i].len));
    }
    ASSERT_UINT_EQ(present, m.len);
    if (k % 10007 == 0) {
      for (j = 0; j < CID_KEYS; j++)
        ASSERT_PTR_EQ(ref[j].value,
                      uvq__cidmap_get(&m, ref[j].cid, ref[j].len));
    }
  }
  for (j = 0; j < CID_KEYS; j++)
    ASSERT_PTR_EQ(ref[j].value, uvq__cidmap_get(&m, ref[j].cid, ref[j].len));
  /* Load stays at most one half. */
  ASSERT_UINT_LE(2 * m.len, m.cap);

  /* Argument checks. */
  memset(toolong, 1, sizeof(toolong));
  ASSERT_ERR(UV_EINVAL, uvq__cidmap_put(&m, toolong, sizeof(toolong),
                                        (void*) 1));
  ASSERT_ERR(UV_EINVAL, uvq__cidmap_put(&m, toolong, 4, NULL));
  ASSERT_NULL(uvq__cidmap_get(&m, toolong, sizeof(toolong)));
  ASSERT_NULL(uvq__cidmap_del(&m, toolong, sizeof(toolong)));

  /* Delete everything; the map is empty afterwards. */
  for (j = 0; j < CID_KEYS; j++) {
    v = uvq__cidmap_del(&m, ref[j].cid, ref[j].len);
    ASSERT_PTR_EQ(ref[j].value, v);
    ref[j].value = NULL;
  }
  ASSERT_UINT_EQ(0, m.len);
  for (j = 0; j < m.cap; j++)
    ASSERT_NULL(m.slots[j].value);
  uvq__cidmap_free(&m);
  return 0;
}

/* Many keys forced into one probe run: with a map of 64 slots, backward
 * shift deletion must keep every survivor reachable. Built by choosing
 * keys whose home slot is the same under the map's own key. */
TEST_IMPL(quic_unit_cidmap_collisions) {
  struct uvq__cidmap m;
  uint8_t keys[24][8];
  size_t nkeys;
  uint64_t seed = 5;
  uint64_t want;
  size_t i;
  size_t j;
  int round;

  ASSERT_OK(uvq__cidmap_init(&m));
  /* Fix the table at 64 slots: it starts at 8 and doubles whenever it
   * would be half full, so 17 keys take it to 64; deleting them leaves it
   * there (it never shrinks). */
  for (i = 0; i < 17; i++) {
    uint8_t fill[2] = {'f', (uint8_t) i};
    ASSERT_OK(uvq__cidmap_put(&m, fill, 2, (void*) 1));
  }
  ASSERT_UINT_EQ(64, m.cap);
  for (i = 0; i < 17; i++) {
    uint8_t fill[2] = {'f', (uint8_t) i};
    ASSERT_PTR_EQ((void*) 1, uvq__cidmap_del(&m, fill, 2));
  }
  /* Two homes, 63 and 0, so runs wrap around the end of the table. */
  nkeys = 0;
  while (nkeys < 24) {
    uint8_t k[8];
    for (j = 0; j < 8; j++)
      k[j] = (uint8_t) next_rand(&seed);
    want = uvq__siphash(m.k0, m.k1, k, 8) & 63;
    if (want == (nkeys % 2 ? 0u : 63u)) {
      memcpy(keys[nkeys], k, 8);
      nkeys++;
    }
  }
  for (i = 0; i < nkeys; i++)
    ASSERT_OK(uvq__cidmap_put(&m, keys[i], 8, (void*) (uintptr_t) (i + 1)));
  ASSERT_UINT_EQ(64, m.cap);
  for (round = 0; round < 2; round++) {
    /* Delete every other key (first the even, then the odd ones), then
     * check each survivor. */
    for (i = (size_t) round; i < nkeys; i += 2) {
      ASSERT_PTR_EQ((void*) (uintptr_t) (i + 1),
                    uvq__cidmap_del(&m, keys[i], 8));
    }
    for (j = 0; j < nkeys; j++) {
      int expect_present = round == 0 ? (j % 2 == 1) : 0;
      ASSERT_PTR_EQ(expect_present ? (void*) (uintptr_t) (j + 1) : NULL,
                    uvq__cidmap_get(&m, keys[j], 8));
    }
  }
  ASSERT_UINT_EQ(0, m.len);
  uvq__cidmap_free(&m);
  return 0;
}

static uint64_t load_le64(const uint8_t* p) {
  uint64_t x = 0;
  int i;

  for (i = 7; i >= 0; i--)
    x = (x << 8) | p[i];
  return x;
}

/* The SipHash-2-4 reference vectors (the paper's appendix and the
 * reference implementation's vectors.h): key 00 01 .. 0f, message
 * 00 01 .. (n-1); the 8 output bytes are read little-endian. */
TEST_IMPL(quic_unit_siphash_vectors) {
  static const struct {
    size_t n;
    uint64_t want;
  } vectors[] = {
    {0, 0x726fdb47dd0e0e31ULL},
    {1, 0x74f839c593dc67fdULL},
    {7, 0xab0200f58b01d137ULL},
    {8, 0x93f5f5799a932462ULL},
    {15, 0xa129ca6149be45e5ULL},
    {16, 0x3f2acc7f57c29bdbULL},
    {63, 0x958a324ceb064572ULL},
  };
  uint8_t key[16];
  uint8_t msg[64];
  uint64_t k0;
  uint64_t k1;
  size_t i;

  for (i = 0; i < sizeof(key); i++)
    key[i] = (uint8_t) i;
  for (i = 0; i < sizeof(msg); i++)
    msg[i] = (uint8_t) i;
  k0 = load_le64(key);
  k1 = load_le64(key + 8);
  for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
    uint64_t got = uvq__siphash(k0, k1, msg, vectors[i].n);
    if (got != vectors[i].want)
      test_fail(__FILE__, __LINE__,
                "siphash of %zu bytes: got 0x%016" PRIx64
                ", want 0x%016" PRIx64,
                vectors[i].n, got, vectors[i].want);
  }
  return 0;
}
