/* Connection-ID routing table: maps the destination connection ID of an
 * incoming packet to its connection. Clients pick the DCID of their first
 * Initial, so the hash is keyed with a per-table random secret (SipHash)
 * and an attacker cannot aim many IDs at one bucket. Open addressing with
 * linear probing and backward-shift deletion: no tombstones to decay. */
#ifndef UVQ_QUIC_CIDMAP_H
#define UVQ_QUIC_CIDMAP_H

#include <stddef.h>
#include <stdint.h>

#define UVQ__CID_MAX 20 /* RFC 9000, section 17.2 */

struct uvq__cid {
  uint8_t len;
  uint8_t data[UVQ__CID_MAX];
};

struct uvq__cidmap_slot {
  struct uvq__cid cid;
  void* value; /* NULL: empty slot */
};

struct uvq__cidmap {
  struct uvq__cidmap_slot* slots;
  size_t cap;  /* a power of two */
  size_t len;
  uint64_t k0;
  uint64_t k1;
};

/* Random bytes from the kernel, through a per-thread pool (endpoint.c).
 * Returns 0, or uv_random()'s error when the kernel gives none. */
int uvq__ep_rand(uint8_t* dest, size_t len);

/* Initializes an empty map keyed with 16 random bytes. 0 or a UV_E* error. */
int uvq__cidmap_init(struct uvq__cidmap* m);
void uvq__cidmap_free(struct uvq__cidmap* m);
/* Maps cid to value (not NULL), replacing any previous value. 0 or
 * UV_ENOMEM; UV_EINVAL for a CID longer than 20 bytes. */
int uvq__cidmap_put(struct uvq__cidmap* m, const uint8_t* cid, size_t len,
                    void* value);
/* The value for cid, or NULL. */
void* uvq__cidmap_get(const struct uvq__cidmap* m, const uint8_t* cid,
                      size_t len);
/* Removes cid if present; returns its value or NULL. */
void* uvq__cidmap_del(struct uvq__cidmap* m, const uint8_t* cid, size_t len);

/* SipHash-2-4 of data under the key (k0, k1); exposed for tests. */
uint64_t uvq__siphash(uint64_t k0, uint64_t k1, const uint8_t* data,
                      size_t len);

#endif /* UVQ_QUIC_CIDMAP_H */
