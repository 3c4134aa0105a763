/* What the QUIC endpoint fuzz target (fuzz-quic-endpoint.c) and its seed
 * generator (quic-endpoint-seeds.c) share: core endpoints fed record by
 * record, a transmit sink that checks what they send, a random stream per
 * endpoint, and Initial packet protection. fuzz-quic-endpoint.c describes
 * the input format. */
#ifndef UVQ_TEST_FUZZ_QUIC_ENDPOINT_HARNESS_H
#define UVQ_TEST_FUZZ_QUIC_ENDPOINT_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "uvq/quic.h"

enum { ROLE_SERVER = 0, ROLE_CLIENT = 1 };

/* The input's first byte. */
#define MODE_CLIENT 1
#define MODE_PERSIST 2
#define MODE_VARIANT 4

/* A record's flags and aux bytes. */
#define REC_EXPIRE 0x20
#define ADVANCE_TO_EXPIRY 7     /* flags bits 2-4 */
#define AUX_NO_FLUSH 4
#define AUX_PROTECT 8

/* A datagram an endpoint sent (kept by the generator only). */
struct fz_datagram {
  struct fz_datagram* next;
  struct sockaddr_storage to;
  struct sockaddr_storage from;
  size_t len;
  uint8_t data[];
};

/* One endpoint the harness drives. */
struct fz_side {
  uvq_quic_endpoint_t* ep;
  int role;
  uint64_t now;
  uint64_t rng;                /* its random stream (splitmix64 state) */
  unsigned int conns;          /* connections not yet closed */
  unsigned int inputs;         /* inputs it has lived through */
  int sink_mode;               /* aux bits 0-1 of the current record */
  unsigned int sent;           /* messages the sink took */
  int handshakes;              /* handshake_done calls */
  uvq_quic_conn_t* conn;       /* the client's latest connection */
  uint8_t odcid[20];           /* the client's first DCID, from its Initial */
  size_t odcid_len;
  /* The generator's: sent datagrams not yet delivered (the sink keeps
   * them when out_tail is set), the seed file the records go to, the path
   * to deliver on (-1: the one the addresses name), the records' aux. */
  struct fz_datagram* out;
  struct fz_datagram** out_tail;
  FILE* log;
  int path;
  uint8_t aux;
};

/* Initial packet protection keys of one sender (RFC 9001, 5.2). */
struct fz_keys {
  uint8_t key[16];
  uint8_t iv[12];
  uint8_t hp[16];
};

/* Each path's client side and server side: 0 the connection's own, 1 the
 * client's other port (a NAT rebinding) or the server's other port, 2
 * another host, 3 IPv6. */
extern struct sockaddr_storage fz_client_addr[4];
extern struct sockaddr_storage fz_server_addr[4];

/* Once per process: the addresses, and the certificate files (removed at
 * exit). */
void fz_init(void);
/* Aborts with what, unless ok. */
void fz_check(int ok, const char* what);
/* The index of sa in a table of four, or -1. */
int fz_addr_index(const struct sockaddr_storage* table,
                  const struct sockaddr* sa);
/* The next random bytes the endpoints draw come from s's stream. */
void fz_rand_switch(struct fz_side* s);

/* A fresh endpoint of a role (variant: MODE_VARIANT's meaning), and its
 * end. s's generator fields must be set (or zero) before. */
void fz_side_open(struct fz_side* s, int role, int variant);
void fz_side_close(struct fz_side* s);
/* A client's connection to the server's path-0 address (v2: start in
 * QUIC v2), flushed. */
void fz_side_connect(struct fz_side* s, int v2);
/* One record: the clock moves, the datagram goes in, expire, flush. Also
 * written to s->log when set. */
void fz_side_record(struct fz_side* s, uint8_t flags, uint8_t aux,
                    const uint8_t* data, size_t len);

/* The Initial keys of the sender (server: 1) for a client's first DCID. */
void fz_initial_keys(struct fz_keys* k, const uint8_t* dcid, size_t dcid_len,
                     int server);
void fz_hp_mask(uint8_t mask[16], const struct fz_keys* k,
                const uint8_t* sample);
void fz_aead_nonce(uint8_t nonce[12], const struct fz_keys* k,
                   const uint8_t* pn, size_t pn_len);

#endif
