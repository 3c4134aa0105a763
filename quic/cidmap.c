#include "cidmap.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void sip_round(uint64_t v[4]) {
  v[0] += v[1];
  v[1] = ROTL(v[1], 13);
  v[1] ^= v[0];
  v[0] = ROTL(v[0], 32);
  v[2] += v[3];
  v[3] = ROTL(v[3], 16);
  v[3] ^= v[2];
  v[0] += v[3];
  v[3] = ROTL(v[3], 21);
  v[3] ^= v[0];
  v[2] += v[1];
  v[1] = ROTL(v[1], 17);
  v[1] ^= v[2];
  v[2] = ROTL(v[2], 32);
}

static uint64_t load_le64(const uint8_t* p) {
  uint64_t x;
  int i;

  x = 0;
  for (i = 7; i >= 0; i--)
    x = (x << 8) | p[i];
  return x;
}

/* SipHash-2-4, as specified by Aumasson and Bernstein (2012). */
uint64_t uvq__siphash(uint64_t k0, uint64_t k1, const uint8_t* data,
                      size_t len) {
  uint64_t v[4];
  uint64_t m;
  uint64_t last;
  size_t i;
  size_t tail;

  v[0] = k0 ^ 0x736f6d6570736575ULL;
  v[1] = k1 ^ 0x646f72616e646f6dULL;
  v[2] = k0 ^ 0x6c7967656e657261ULL;
  v[3] = k1 ^ 0x7465646279746573ULL;

  for (i = 0; i + 8 <= len; i += 8) {
    m = load_le64(data + i);
    v[3] ^= m;
    sip_round(v);
    sip_round(v);
    v[0] ^= m;
  }
  last = (uint64_t) (len & 0xff) << 56;
  tail = len - i;
  while (tail > 0) {
    tail--;
    last |= (uint64_t) data[i + tail] << (8 * tail);
  }
  v[3] ^= last;
  sip_round(v);
  sip_round(v);
  v[0] ^= last;

  v[2] ^= 0xff;
  sip_round(v);
  sip_round(v);
  sip_round(v);
  sip_round(v);
  return v[0] ^ v[1] ^ v[2] ^ v[3];
}

int uvq__cidmap_init(struct uvq__cidmap* m) {
  uint8_t key[16];
  int err;

  memset(m, 0, sizeof(*m));
  /* Every connection has a table (its streams): the endpoint's pool of
   * random bytes saves a getrandom() call for each. */
  err = uvq__ep_rand(key, sizeof(key));
  if (err)
    return err;
  m->k0 = load_le64(key);
  m->k1 = load_le64(key + 8);
  return 0;
}

void uvq__cidmap_free(struct uvq__cidmap* m) {
  free(m->slots);
  m->slots = NULL;
  m->cap = 0;
  m->len = 0;
}

static size_t home(const struct uvq__cidmap* m, const uint8_t* cid,
                   size_t len) {
  return (size_t) uvq__siphash(m->k0, m->k1, cid, len) & (m->cap - 1);
}

static int same(const struct uvq__cid* a, const uint8_t* cid, size_t len) {
  return a->len == len && memcmp(a->data, cid, len) == 0;
}

static size_t find(const struct uvq__cidmap* m, const uint8_t* cid,
                   size_t len) {
  size_t i;

  if (m->cap == 0)
    return (size_t) -1;
  for (i = home(m, cid, len);; i = (i + 1) & (m->cap - 1)) {
    if (m->slots[i].value == NULL)
      return (size_t) -1;
    if (same(&m->slots[i].cid, cid, len))
      return i;
  }
}

static int grow(struct uvq__cidmap* m) {
  struct uvq__cidmap_slot* old;
  size_t oldcap;
  size_t i;
  size_t j;

  old = m->slots;
  oldcap = m->cap;
  /* Small first: every connection has a map of its streams, and most
   * hold a few; 8 slots of 32 bytes instead of 64 saved 1.75 KB per idle
   * HTTP/3 connection (bench/results/quic-scale.md). */
  m->cap = oldcap ? oldcap * 2 : 8;
  m->slots = calloc(m->cap, sizeof(*m->slots));
  if (m->slots == NULL) {
    m->slots = old;
    m->cap = oldcap;
    return UV_ENOMEM;
  }
  for (i = 0; i < oldcap; i++) {
    if (old[i].value == NULL)
      continue;
    j = home(m, old[i].cid.data, old[i].cid.len);
    while (m->slots[j].value != NULL)
      j = (j + 1) & (m->cap - 1);
    m->slots[j] = old[i];
  }
  free(old);
  return 0;
}

int uvq__cidmap_put(struct uvq__cidmap* m, const uint8_t* cid, size_t len,
                    void* value) {
  size_t i;
  int err;

  if (len > UVQ__CID_MAX || value == NULL)
    return UV_EINVAL;
  i = find(m, cid, len);
  if (i != (size_t) -1) {
    m->slots[i].value = value;
    return 0;
  }
  /* Keep the load under 1/2 so probe sequences stay short. */
  if ((m->len + 1) * 2 > m->cap) {
    err = grow(m);
    if (err)
      return err;
  }
  i = home(m, cid, len);
  while (m->slots[i].value != NULL)
    i = (i + 1) & (m->cap - 1);
  m->slots[i].cid.len = (uint8_t) len;
  memcpy(m->slots[i].cid.data, cid, len);
  m->slots[i].value = value;
  m->len++;
  return 0;
}

void* uvq__cidmap_get(const struct uvq__cidmap* m, const uint8_t* cid,
                      size_t len) {
  size_t i;

  if (len > UVQ__CID_MAX)
    return NULL;
  i = find(m, cid, len);
  return i == (size_t) -1 ? NULL : m->slots[i].value;
}

void* uvq__cidmap_del(struct uvq__cidmap* m, const uint8_t* cid, size_t len) {
  size_t i;
  size_t j;
  size_t h;
  void* value;

  if (len > UVQ__CID_MAX)
    return NULL;
  i = find(m, cid, len);
  if (i == (size_t) -1)
    return NULL;
  value = m->slots[i].value;
  m->slots[i].value = NULL;
  m->len--;
  /* Backward shift: move later members of the probe run into the hole when
   * the hole lies between their home slot and where they sit. */
  for (j = (i + 1) & (m->cap - 1); m->slots[j].value != NULL;
       j = (j + 1) & (m->cap - 1)) {
    h = home(m, m->slots[j].cid.data, m->slots[j].cid.len);
    if (((j - h) & (m->cap - 1)) >= ((j - i) & (m->cap - 1))) {
      m->slots[i] = m->slots[j];
      m->slots[j].value = NULL;
      i = j;
    }
  }
  return value;
}
