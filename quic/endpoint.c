/* The QUIC endpoint: one uvq UDP handle, connection-ID routing, the
 * packets a server answers without a connection (Version Negotiation,
 * Retry, Stateless Reset, refusals), one timer for every connection, and
 * the send staging that turns packets into GSO batches. */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2_crypto.h>

/* Retry tokens are good for this long (RFC 9000, 8.1.2 leaves it to us). */
#define UVQ__RETRY_TOKEN_TIMEOUT (10 * NGTCP2_SECONDS)

/* How long a refused attempt is remembered: about as long as a client
 * keeps re-sending its first Initial (ngtcp2's and quic-go's clients give
 * up on a handshake after 10 seconds). */
#define UVQ__REFUSAL_MEMORY (10 * NGTCP2_SECONDS)

const char* uvq_quic_strerror(int library_error) {
  return ngtcp2_strerror(library_error);
}

/* Random bytes come from the kernel (getrandom(2), through uv_random
 * without a loop), but not one system call per request: a server
 * connection asks about ten times (its connection IDs, its stream table's
 * hash key, ngtcp2's own draws), and on a virtual machine those system
 * calls were a visible part of a handshake. Each thread reads 512 bytes
 * at a time and hands each byte out once. A forked child must not hand
 * out the bytes its parent also holds: the pool starts again after a
 * fork. */
#define UVQ__RAND_POOL 512

static _Thread_local struct {
  uint8_t bytes[UVQ__RAND_POOL];
  size_t left;          /* unused bytes, at the end of bytes[] */
  unsigned int forks;   /* rand_forks when it was filled */
} rand_pool;
static unsigned int rand_forks;  /* bumped in the child after fork() */
static uv_once_t rand_once = UV_ONCE_INIT;

static void rand_after_fork(void) {
  rand_forks++;
}

static void rand_init(void) {
  pthread_atfork(NULL, NULL, rand_after_fork);
}

int uvq__ep_rand(uint8_t* dest, size_t len) {
  size_t n;
  int err;

  uv_once(&rand_once, rand_init);
  if (rand_pool.forks != rand_forks) {
    rand_pool.left = 0;
    rand_pool.forks = rand_forks;
  }
  while (len > 0) {
    if (rand_pool.left == 0) {
      /* getrandom(2) fails only when the kernel has no entropy source at
       * all, or a sandbox (a seccomp filter) refuses it. The caller then
       * refuses what it was asked to do, with this error. */
      err = uv_random(NULL, NULL, rand_pool.bytes, UVQ__RAND_POOL, 0, NULL);
      if (err)
        return err;
      rand_pool.left = UVQ__RAND_POOL;
    }
    n = len < rand_pool.left ? len : rand_pool.left;
    memcpy(dest, rand_pool.bytes + UVQ__RAND_POOL - rand_pool.left, n);
    /* A byte handed out is not kept. */
    memset(rand_pool.bytes + UVQ__RAND_POOL - rand_pool.left, 0, n);
    rand_pool.left -= n;
    dest += n;
    len -= n;
  }
  return 0;
}

static char* copy_string(uvq_quic_endpoint_t* ep, int slot, const char* s) {
  if (s == NULL)
    return NULL;
  ep->strings[slot] = strdup(s);
  return ep->strings[slot];
}

void uvq__ep_free(uvq_quic_endpoint_t* ep) {
  size_t i;

  uvq__tls_endpoint_free(ep);
  uvq__cidmap_free(&ep->cids);
  uvq__cidmap_free(&ep->tokens);
  uvq__heap_free(&ep->timers);
  while (ep->socks != NULL) {
    struct uvq__quic_sock* s = ep->socks;
    ep->socks = s->next;
    free(s);
  }
  free(ep->txbuf);
  free(ep->rxbuf);
  free(ep->refused);
  free(ep->waiting);
  for (i = 0; i < sizeof(ep->strings) / sizeof(ep->strings[0]); i++)
    free(ep->strings[i]);
  free(ep);
}

/* What every endpoint has, with or without a loop: the checked config,
 * callbacks, secrets, maps, staging area and TLS contexts. */
static int endpoint_create(const uvq_quic_config_t* user_config,
                           int callbacks_version,
                           const uvq_quic_callbacks_t* user_callbacks,
                           void* user_data,
                           uvq_quic_endpoint_t** out) {
  uvq_quic_callbacks_t callbacks_storage;
  uvq_quic_config_t config_storage;
  const uvq_quic_callbacks_t* callbacks;
  const uvq_quic_config_t* config;
  uvq_quic_endpoint_t* ep;
  int err;

  if (user_config == NULL || out == NULL)
    return UV_EINVAL;
  /* Both read in the layout the caller was built with (compat.c). */
  if (uvq__quic_config_load(user_config, &config_storage) != 0 ||
      uvq__quic_callbacks_load(callbacks_version, user_callbacks,
                               &callbacks_storage) != 0)
    return UV_EINVAL;
  config = &config_storage;
  callbacks = user_callbacks != NULL ? &callbacks_storage : NULL;
  if (config->cc < UVQ_QUIC_CC_CUBIC || config->cc > UVQ_QUIC_CC_RENO)
    return UV_EINVAL;
  if (config->preferred_version != 0 &&
      config->preferred_version != UVQ_QUIC_V1 &&
      config->preferred_version != UVQ_QUIC_V2)
    return UV_EINVAL;
  if (config->retry < UVQ_QUIC_RETRY_AUTO ||
      config->retry > UVQ_QUIC_RETRY_NEVER)
    return UV_EINVAL;
  /* The worker index is one octet of the connection ID. */
  if (config->worker_count > 256 || config->lb_server_id > 255 ||
      (config->worker_count > 0 &&
       config->worker_index >= config->worker_count) ||
      (config->worker_count == 0 && config->worker_index != 0))
    return UV_EINVAL;

  ep = calloc(1, sizeof(*ep));
  if (ep == NULL)
    return UV_ENOMEM;
  ep->user_data = user_data;
  ep->cfg = *config;
  ep->cfg.cert_file = copy_string(ep, 0, config->cert_file);
  ep->cfg.key_file = copy_string(ep, 1, config->key_file);
  ep->cfg.ca_file = copy_string(ep, 2, config->ca_file);
  ep->cfg.alpn = copy_string(ep, 3, config->alpn ? config->alpn : "h3");
  ep->cfg.qlog_dir = copy_string(ep, 4, config->qlog_dir);
  ep->cfg.keylog_file = copy_string(ep, 5, config->keylog_file);
  ep->cfg.tls_ciphersuites = copy_string(ep, 6, config->tls_ciphersuites);
  ep->cfg.tls_groups = copy_string(ep, 7, config->tls_groups);
  ep->cfg.static_secret = NULL;
  if (config->preferred_address_ipv4 != NULL) {
    if (config->preferred_address_ipv4->sin_family != AF_INET) {
      uvq__ep_free(ep);
      return UV_EINVAL;
    }
    ep->preferred_v4 = *config->preferred_address_ipv4;
    ep->has_preferred_v4 = 1;
  }
  if (config->preferred_address_ipv6 != NULL) {
    if (config->preferred_address_ipv6->sin6_family != AF_INET6) {
      uvq__ep_free(ep);
      return UV_EINVAL;
    }
    ep->preferred_v6 = *config->preferred_address_ipv6;
    ep->has_preferred_v6 = 1;
  }
  ep->cfg.preferred_address_ipv4 = NULL;
  ep->cfg.preferred_address_ipv6 = NULL;
  if (callbacks != NULL)
    ep->cb = *callbacks;
  if (ep->cfg.max_connections == 0)
    ep->cfg.max_connections = 10000;
  if (ep->cfg.max_handshakes == 0)
    ep->cfg.max_handshakes = 1000;
  if (ep->cfg.require_address_validation)
    ep->cfg.retry = UVQ_QUIC_RETRY_ALWAYS;
  ep->retry_threshold = ep->cfg.retry_threshold;
  /* A tenth: a flood of spoofed Initials holds at most that many
   * handshakes (and their memory) until they time out. */
  if (ep->retry_threshold == 0)
    ep->retry_threshold = ep->cfg.max_handshakes / 10;
  if (ep->retry_threshold > ep->cfg.max_handshakes)
    ep->retry_threshold = ep->cfg.max_handshakes;
  if (ep->retry_threshold == 0)
    ep->retry_threshold = 1;
  uvq__heap_init(&ep->timers);

  err = uvq__ep_rand((uint8_t*) &ep->refused_key, sizeof(ep->refused_key));
  if (err == 0 && config->static_secret != NULL)
    memcpy(ep->static_secret, config->static_secret,
           sizeof(ep->static_secret));
  else if (err == 0)
    err = uvq__ep_rand(ep->static_secret, sizeof(ep->static_secret));
  if (err == 0)
    err = uvq__cidmap_init(&ep->cids);
  if (err == 0)
    err = uvq__cidmap_init(&ep->tokens);
  if (err == 0) {
    ep->txbuf = malloc(UVQ__TX_BUF);
    if (ep->txbuf == NULL)
      err = UV_ENOMEM;
  }
  if (err == 0)
    err = uvq__tls_endpoint_init(ep);
  if (err) {
    uvq__ep_free(ep);
    return err;
  }
  *out = ep;
  return 0;
}

int uvq_quic_endpoint_new_versioned(uv_loop_t* loop,
                                    const uvq_quic_config_t* config,
                                    int callbacks_version,
                                    const uvq_quic_callbacks_t* callbacks,
                                    void* user_data,
                                    uvq_quic_endpoint_t** out) {
  uvq_quic_endpoint_t* ep;
  int err;

  if (loop == NULL || out == NULL)
    return UV_EINVAL;
  err = endpoint_create(config, callbacks_version, callbacks, user_data, &ep);
  if (err)
    return err;
  err = uvq__uv_init(ep, loop);
  if (err) {
    uvq__ep_free(ep);
    return err;
  }
  *out = ep;
  return 0;
}

int uvq_quic_endpoint_new_core_versioned(const uvq_quic_config_t* config,
                                         int callbacks_version,
                                         const uvq_quic_callbacks_t* callbacks,
                                         int io_version,
                                         const uvq_quic_io_t* io,
                                         void* user_data,
                                         uvq_quic_endpoint_t** out) {
  uvq_quic_endpoint_t* ep;
  int err;

  /* Version 1 is the only layout so far; a newer one is refused like every
   * other struct's. */
  if (io == NULL || io_version < 1 || io_version > UVQ_QUIC_IO_VERSION ||
      io->send == NULL || out == NULL)
    return UV_EINVAL;
  err = endpoint_create(config, callbacks_version, callbacks, user_data, &ep);
  if (err)
    return err;
  ep->io = *io;
  ep->io.version = UVQ_QUIC_IO_VERSION;
  *out = ep;
  return 0;
}

void* uvq_quic_endpoint_get_data(const uvq_quic_endpoint_t* ep) {
  return ep->user_data;
}

uint64_t uvq_quic_endpoint_now(const uvq_quic_endpoint_t* ep) {
  return ep != NULL ? uvq__ep_now(ep) : 0;
}

uvq_udp_t* uvq_quic_endpoint_udp(uvq_quic_endpoint_t* ep) {
  return ep->udp;
}

int uvq_quic_endpoint_get_stats(const uvq_quic_endpoint_t* ep,
                                uvq_quic_endpoint_stats_t* stats) {
  if (ep == NULL || stats == NULL)
    return UV_EINVAL;
  *stats = ep->stats;
  return 0;
}

/* ---- connection IDs --------------------------------------------------- */

int uvq__ep_make_cid(const uvq_quic_endpoint_t* ep, uint8_t* cid, size_t len) {
  int err;

  err = uvq__ep_rand(cid, len);
  if (err || ep->cfg.worker_count == 0 || len != UVQ__SCID_LEN)
    return err;
  cid[0] = UVQ__CID_LB_FIRST;
  cid[UVQ__CID_LB_HOST] = (uint8_t) ep->cfg.lb_server_id;
  cid[UVQ__CID_LB_WORKER] = (uint8_t) ep->cfg.worker_index;
  return 0;
}

/* Whether a connection ID has the layout of this group's and names another
 * of its workers. */
static int names_other_worker(const uvq_quic_endpoint_t* ep,
                              const uint8_t* cid,
                              size_t len) {
  return ep->cfg.worker_count > 1 && len == UVQ__SCID_LEN &&
         cid[0] == UVQ__CID_LB_FIRST &&
         cid[UVQ__CID_LB_HOST] == ep->cfg.lb_server_id &&
         cid[UVQ__CID_LB_WORKER] != ep->cfg.worker_index &&
         cid[UVQ__CID_LB_WORKER] < ep->cfg.worker_count;
}

int uvq__ep_add_cid(uvq_quic_conn_t* c, const uint8_t* cid, size_t len) {
  struct uvq__cid* grown;
  int err;

  if (c->ncids == c->cids_cap) {
    size_t cap = c->cids_cap ? c->cids_cap * 2 : 8;
    grown = realloc(c->cids, cap * sizeof(*grown));
    if (grown == NULL)
      return UV_ENOMEM;
    c->cids = grown;
    c->cids_cap = cap;
  }
  /* A CID may be mapped anew (a client picks its first DCID): the
   * remembered lookup must not keep an old owner. */
  if (c->ep->last_cid.len == len && memcmp(c->ep->last_cid.data, cid, len) == 0)
    c->ep->last_conn = NULL;
  err = uvq__cidmap_put(&c->ep->cids, cid, len, c);
  if (err)
    return err;
  c->cids[c->ncids].len = (uint8_t) len;
  memcpy(c->cids[c->ncids].data, cid, len);
  c->ncids++;
  return 0;
}

void uvq__ep_remove_cid(uvq_quic_conn_t* c, const uint8_t* cid, size_t len) {
  size_t i;

  if (c->ep->last_conn == c && c->ep->last_cid.len == len &&
      memcmp(c->ep->last_cid.data, cid, len) == 0)
    c->ep->last_conn = NULL;
  for (i = 0; i < c->ncids; i++) {
    if (c->cids[i].len == len && memcmp(c->cids[i].data, cid, len) == 0) {
      if (uvq__cidmap_get(&c->ep->cids, cid, len) == c)
        uvq__cidmap_del(&c->ep->cids, cid, len);
      c->cids[i] = c->cids[--c->ncids];
      return;
    }
  }
}

/* The same bookkeeping for stateless reset tokens (16 bytes). */
static int list_add(struct uvq__cid** list, size_t* n, size_t* cap,
                    const uint8_t* data, size_t len) {
  struct uvq__cid* grown;

  if (*n == *cap) {
    size_t ncap = *cap ? *cap * 2 : 8;
    grown = realloc(*list, ncap * sizeof(*grown));
    if (grown == NULL)
      return UV_ENOMEM;
    *list = grown;
    *cap = ncap;
  }
  (*list)[*n].len = (uint8_t) len;
  memcpy((*list)[*n].data, data, len);
  (*n)++;
  return 0;
}

int uvq__ep_add_token(uvq_quic_conn_t* c, const uint8_t* token) {
  int err;

  err = uvq__cidmap_put(&c->ep->tokens, token,
                        NGTCP2_STATELESS_RESET_TOKENLEN, c);
  if (err)
    return err;
  err = list_add(&c->tokens, &c->ntokens, &c->tokens_cap, token,
                 NGTCP2_STATELESS_RESET_TOKENLEN);
  if (err)
    uvq__cidmap_del(&c->ep->tokens, token, NGTCP2_STATELESS_RESET_TOKENLEN);
  return err;
}

void uvq__ep_remove_token(uvq_quic_conn_t* c, const uint8_t* token) {
  size_t i;

  for (i = 0; i < c->ntokens; i++) {
    if (memcmp(c->tokens[i].data, token, NGTCP2_STATELESS_RESET_TOKENLEN) ==
        0) {
      if (uvq__cidmap_get(&c->ep->tokens, token,
                          NGTCP2_STATELESS_RESET_TOKENLEN) == c)
        uvq__cidmap_del(&c->ep->tokens, token,
                        NGTCP2_STATELESS_RESET_TOKENLEN);
      c->tokens[i] = c->tokens[--c->ntokens];
      return;
    }
  }
}

static void start_waiting(uvq_quic_endpoint_t* ep, ngtcp2_tstamp ts);

/* ---- timers and the flush ----------------------------------------------- */

void uvq__ep_update_timer(uvq_quic_endpoint_t* ep) {
  struct uvq__heap_node* top;

  if (ep->closing)
    return;
  if (ep->loop != NULL) {
    uvq__uv_arm_timer(ep);
    return;
  }
  /* A core endpoint's application learns the expiry after each call
   * (uvq_quic_endpoint_next_expiry); it needs waking only when a call it
   * did not make into the endpoint (a write from elsewhere) moved the
   * expiry before the one it last read. */
  top = uvq__heap_top(&ep->timers);
  if (top != NULL && top->key < ep->timer_due && ep->depth == 0)
    uvq__ep_start_flush(ep);
}

/* Runs every connection's timer due at now. */
static void run_timers(uvq_quic_endpoint_t* ep, uint64_t now) {
  struct uvq__heap_node* top;
  uvq_quic_conn_t* c;
  int rounds;

  for (rounds = 0; rounds < UVQ__TIMERS_PER_TICK; rounds++) {
    top = uvq__heap_top(&ep->timers);
    if (top == NULL || top->key > now)
      break;
    c = (uvq_quic_conn_t*) ((char*) top - offsetof(uvq_quic_conn_t, timer));
    uvq__heap_remove(&ep->timers, top);
    uvq__conn_on_timer(c, now);
  }
}

/* The loop adapter's timer tick (endpoint-uv.c). */
void uvq__ep_on_timer(uvq_quic_endpoint_t* ep) {
  ep->timer_due = 0;
  uvq__ep_enter(ep);
  run_timers(ep, uvq__now());
  uvq__ep_flush(ep);
  uvq__ep_leave(ep);
  uvq__ep_update_timer(ep);
}

void uvq__ep_start_flush(uvq_quic_endpoint_t* ep) {
  if (ep->flush_active || ep->finished)
    return;
  ep->flush_active = 1;
  if (ep->io.wake != NULL)
    ep->io.wake(ep);
}

void uvq__ep_mark_dirty(uvq_quic_conn_t* c) {
  uvq_quic_endpoint_t* ep;

  ep = c->ep;
  if (c->dirty)
    return;
  c->dirty = 1;
  c->next_dirty = ep->dirty;
  ep->dirty = c;
  uvq__ep_start_flush(ep);
}

/* Every connection that has something to send writes it now, so that all
 * packets of a loop iteration (or of a core endpoint's batch) leave in as
 * few sendmmsg calls as possible. */
void uvq__ep_write_dirty(uvq_quic_endpoint_t* ep) {
  uvq_quic_conn_t* c;

  if (ep->nwaiting > 0)
    start_waiting(ep, uvq__ep_now(ep));
  while (ep->dirty != NULL && !ep->tx_blocked) {
    c = ep->dirty;
    ep->dirty = c->next_dirty;
    c->next_dirty = NULL;
    c->dirty = 0;
    /* A timestamp per connection: one made by a callback during this loop
     * starts its clock later than the loop did, and ngtcp2 requires time
     * never to go back. */
    uvq__conn_write(c, uvq__ep_now(ep));
  }
}

/* ---- packets without a connection ---------------------------------------- */

void uvq__ep_make_path(uvq_quic_endpoint_t* ep,
                       ngtcp2_path* path,
                       const struct sockaddr* local,
                       const struct sockaddr* remote) {
  path->local.addr = (ngtcp2_sockaddr*) local;
  path->local.addrlen = uvq__addr_len(local);
  path->remote.addr = (ngtcp2_sockaddr*) remote;
  path->remote.addrlen = uvq__addr_len(remote);
  path->user_data = ep;
}

static void send_version_negotiation(uvq_quic_endpoint_t* ep,
                                     const ngtcp2_path* path,
                                     const ngtcp2_version_cid* vc,
                                     size_t pktlen) {
  uint32_t versions[2] = {NGTCP2_PROTO_VER_V1, NGTCP2_PROTO_VER_V2};
  /* An unknown version may carry connection IDs of up to 255 bytes each
   * (RFC 8999, 5.1), and the answer echoes both (RFC 8999, 6). */
  uint8_t buf[1 + 4 + 1 + 255 + 1 + 255 + sizeof(versions)];
  uint8_t unused;
  ngtcp2_ssize n;

  /* Only a datagram as large as a client Initial gets an answer, so a
   * spoofed small packet cannot be amplified (RFC 9000, 6.1). */
  if (pktlen < NGTCP2_MAX_UDP_PAYLOAD_SIZE)
    return;
  if (uvq__ep_rand(&unused, 1) != 0)
    return;
  n = ngtcp2_pkt_write_version_negotiation(buf, sizeof(buf), unused,
                                           vc->scid, vc->scidlen, vc->dcid,
                                           vc->dcidlen, versions, 2);
  if (n > 0 && uvq__ep_stage(ep, path, 0, buf, (size_t) n, 0) == 0)
    ep->stats.version_negotiations++;
}

static void send_stateless_reset(uvq_quic_endpoint_t* ep,
                                 const ngtcp2_path* path,
                                 const uint8_t* dcid,
                                 size_t dcidlen,
                                 size_t pktlen) {
  uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN];
  uint8_t rand[64];
  uint8_t buf[128];
  size_t randlen;
  ngtcp2_ssize n;

  /* A reset must be shorter than what provoked it, so that two endpoints
   * cannot reset each other forever, and at least 21 bytes long so that it
   * looks like a short-header packet (RFC 9000, 10.3). */
  if (pktlen <= 22)
    return;
  randlen = pktlen - 1 - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
  if (randlen > sizeof(rand))
    randlen = sizeof(rand);
  if (randlen < NGTCP2_MIN_STATELESS_RESET_RANDLEN)
    return;
  if (uvq__sr_token(ep->static_secret, dcid, dcidlen, token) != 0)
    return;
  if (uvq__ep_rand(rand, randlen) != 0)
    return;
  n = ngtcp2_pkt_write_stateless_reset(buf, sizeof(buf), token, rand, randlen);
  if (n > 0 && uvq__ep_stage(ep, path, 0, buf, (size_t) n, 0) == 0)
    ep->stats.stateless_resets++;
}

/* A keyed hash of a client's connection attempt (its DCID and SCID), for
 * the memory of refusals. The key is random, so a client cannot aim at
 * another's slot. */
static uint64_t attempt_hash(const uvq_quic_endpoint_t* ep,
                             const ngtcp2_pkt_hd* hd) {
  uint64_t h;
  size_t i;

  h = ep->refused_key ^ 0x9e3779b97f4a7c15ull;
  for (i = 0; i < hd->dcid.datalen; i++)
    h = (h ^ hd->dcid.data[i]) * 0x100000001b3ull;
  h = (h ^ 0xff) * 0x100000001b3ull;
  for (i = 0; i < hd->scid.datalen; i++)
    h = (h ^ hd->scid.data[i]) * 0x100000001b3ull;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h | 1; /* 0 marks an empty slot */
}

/* A client re-sends its Initial until it reads our CONNECTION_CLOSE, and a
 * re-sent copy may arrive after the load that refused it has passed. It
 * must not become a connection: the client has given up on it, so it would
 * hold a handshake slot until the handshake timeout. The memory is a fixed
 * table (16 KiB, direct-mapped, newest wins), so a flood cannot grow it. */
static int was_refused(const uvq_quic_endpoint_t* ep,
                       const ngtcp2_pkt_hd* hd,
                       ngtcp2_tstamp ts) {
  const struct uvq__refusal* r;
  uint64_t h;

  if (ep->refused == NULL)
    return 0;
  h = attempt_hash(ep, hd);
  r = &ep->refused[h % UVQ__REFUSED_SLOTS];
  return r->hash == h && r->expiry > ts;
}

static void remember_refusal(uvq_quic_endpoint_t* ep,
                             const ngtcp2_pkt_hd* hd,
                             ngtcp2_tstamp ts) {
  struct uvq__refusal* r;
  uint64_t h;

  if (ep->refused == NULL) {
    ep->refused = calloc(UVQ__REFUSED_SLOTS, sizeof(*ep->refused));
    if (ep->refused == NULL)
      return;
  }
  h = attempt_hash(ep, hd);
  r = &ep->refused[h % UVQ__REFUSED_SLOTS];
  r->hash = h;
  r->expiry = ts + UVQ__REFUSAL_MEMORY;
}

/* A CONNECTION_CLOSE in an Initial packet, protected with the Initial keys
 * anyone can derive. */
static void send_initial_close(uvq_quic_endpoint_t* ep,
                               const ngtcp2_path* path,
                               const ngtcp2_pkt_hd* hd,
                               uint64_t code) {
  uint8_t buf[256];
  ngtcp2_ssize n;

  /* The Initial keys derive from the client's original DCID, which ngtcp2
   * takes as the SCID argument here (the server answers from it). */
  n = ngtcp2_crypto_write_connection_close(buf, sizeof(buf), hd->version,
                                           &hd->scid, &hd->dcid, code, NULL,
                                           0);
  if (n > 0)
    uvq__ep_stage(ep, path, 0, buf, (size_t) n, 0);
}

/* Refuses a new connection without keeping connection state; only the
 * attempt is remembered (was_refused). */
static void send_refusal(uvq_quic_endpoint_t* ep,
                         const ngtcp2_path* path,
                         const ngtcp2_pkt_hd* hd,
                         uint64_t code,
                         ngtcp2_tstamp ts) {
  send_initial_close(ep, path, hd, code);
  remember_refusal(ep, hd, ts);
  ep->stats.connections_refused++;
}

static void send_retry(uvq_quic_endpoint_t* ep,
                       const ngtcp2_path* path,
                       const ngtcp2_pkt_hd* hd,
                       ngtcp2_tstamp ts) {
  uint8_t token[NGTCP2_CRYPTO_MAX_RETRY_TOKENLEN2];
  uint8_t buf[256];
  ngtcp2_cid scid;
  ngtcp2_ssize tokenlen;
  ngtcp2_ssize n;

  /* The client's next Initial comes to this ID, so it names this worker:
   * the attempt stays where the hash put it. Any worker of the group would
   * accept the token (they share static_secret). */
  scid.datalen = UVQ__SCID_LEN;
  if (uvq__ep_make_cid(ep, scid.data, scid.datalen) != 0)
    return;
  /* ngtcp2 aborts on a Retry whose ID is the client's DCID (RFC 9000,
   * 17.2.5.1 wants a new one). Random IDs all but never are, but an
   * endpoint fed predictable random bytes (the fuzz target's) must not
   * abort: the Initial is dropped, its re-sending gets another ID. */
  if (ngtcp2_cid_eq(&scid, &hd->dcid)) {
    ep->stats.packets_dropped++;
    return;
  }
  tokenlen = ngtcp2_crypto_generate_retry_token2(
      token, ep->static_secret, sizeof(ep->static_secret), hd->version,
      path->remote.addr, path->remote.addrlen, &scid, &hd->dcid, ts);
  if (tokenlen < 0)
    return;
  n = ngtcp2_crypto_write_retry(buf, sizeof(buf), hd->version, &hd->scid,
                                &scid, &hd->dcid, token, (size_t) tokenlen);
  if (n > 0 && uvq__ep_stage(ep, path, 0, buf, (size_t) n, 0) == 0)
    ep->stats.retries++;
}

/* Initials with a valid Retry token that arrived while max_handshakes
 * handshakes were in progress. Their senders showed that they receive at
 * their address, so what is kept here is not a spoofer's; the line is a
 * fixed number of slots, allocated at first use, and an Initial waits at
 * most UVQ__WAIT_MAX_AGE. Without the line such an Initial was dropped
 * and the client's retransmission, after a PTO that doubles each time,
 * often came after its handshake timeout: a burst of 3,000 clients lost
 * hundreds (bench/results/quic-scale.md). */
#define UVQ__WAIT_SLOTS 1024
#define UVQ__WAIT_MAX_LEN 1500
#define UVQ__WAIT_MAX_AGE (5 * NGTCP2_SECONDS)

struct uvq__waiting {
  uint64_t hash;               /* attempt_hash(): one entry per attempt */
  ngtcp2_tstamp arrived;
  struct sockaddr_storage local;
  struct sockaddr_storage remote;
  uint8_t ecn;
  uint16_t len;
  uint8_t data[UVQ__WAIT_MAX_LEN];
};

static uint64_t attempt_hash(const uvq_quic_endpoint_t* ep,
                             const ngtcp2_pkt_hd* hd);

/* 0 when the Initial waits; an error when it is dropped (the line is
 * full, it is too long, or a copy of it already waits). */
static int wait_initial(uvq_quic_endpoint_t* ep,
                        const ngtcp2_path* path,
                        const ngtcp2_pkt_info* pi,
                        const ngtcp2_pkt_hd* hd,
                        const uint8_t* data,
                        size_t len,
                        ngtcp2_tstamp ts) {
  struct uvq__waiting* w;
  uint64_t h;
  size_t i;

  if (len > UVQ__WAIT_MAX_LEN ||
      (size_t) path->local.addrlen > sizeof(w->local) ||
      (size_t) path->remote.addrlen > sizeof(w->remote))
    return UV_E2BIG;
  h = attempt_hash(ep, hd);
  for (i = 0; i < ep->nwaiting; i++)
    if (ep->waiting[(ep->wait_head + i) % UVQ__WAIT_SLOTS].hash == h)
      return UV_EEXIST; /* a retransmission of one that waits */
  if (ep->nwaiting == UVQ__WAIT_SLOTS)
    return UV_ENOBUFS;
  if (ep->waiting == NULL) {
    ep->waiting = malloc(UVQ__WAIT_SLOTS * sizeof(*ep->waiting));
    if (ep->waiting == NULL)
      return UV_ENOMEM;
  }
  w = &ep->waiting[(ep->wait_head + ep->nwaiting) % UVQ__WAIT_SLOTS];
  w->hash = h;
  w->arrived = ts;
  memset(&w->local, 0, sizeof(w->local));
  memset(&w->remote, 0, sizeof(w->remote));
  memcpy(&w->local, path->local.addr, (size_t) path->local.addrlen);
  memcpy(&w->remote, path->remote.addr, (size_t) path->remote.addrlen);
  w->ecn = pi->ecn;
  w->len = (uint16_t) len;
  memcpy(w->data, data, len);
  ep->nwaiting++;
  ep->stats.initials_waited++;
  return 0;
}

static void dispatch(uvq_quic_endpoint_t* ep,
                     const ngtcp2_path* path,
                     const ngtcp2_pkt_info* pi,
                     const uint8_t* data,
                     size_t len,
                     ngtcp2_tstamp ts);

/* Starts the waiting Initials that slots have opened for, oldest first;
 * those that waited too long are forgotten (their clients have sent the
 * Initial again, or given up). */
static void start_waiting(uvq_quic_endpoint_t* ep, ngtcp2_tstamp ts) {
  struct uvq__waiting* w;
  ngtcp2_pkt_info pi;
  ngtcp2_path path;

  while (ep->nwaiting > 0 && !ep->closing &&
         ep->nhandshakes < ep->cfg.max_handshakes) {
    w = &ep->waiting[ep->wait_head];
    ep->wait_head = (ep->wait_head + 1) % UVQ__WAIT_SLOTS;
    ep->nwaiting--;
    if (ts > w->arrived + UVQ__WAIT_MAX_AGE) {
      ep->stats.packets_dropped++;
      continue;
    }
    uvq__ep_make_path(ep, &path, (struct sockaddr*) &w->local,
                      (struct sockaddr*) &w->remote);
    memset(&pi, 0, sizeof(pi));
    pi.ecn = w->ecn;
    dispatch(ep, &path, &pi, w->data, w->len, ts);
  }
}

static void accept_initial(uvq_quic_endpoint_t* ep,
                           const ngtcp2_path* path,
                           const ngtcp2_pkt_info* pi,
                           const uint8_t* data,
                           size_t len,
                           ngtcp2_tstamp ts) {
  ngtcp2_pkt_hd hd;
  ngtcp2_cid ocid;
  ngtcp2_cid* ocidp;
  uvq_quic_conn_t* c;

  if (ngtcp2_accept(&hd, data, len) != 0) {
    ep->stats.packets_dropped++;
    return;
  }
  /* A re-sent Initial of an attempt refused before is refused again,
   * whatever the load now, and counted once. */
  if (was_refused(ep, &hd, ts)) {
    send_initial_close(ep, path, &hd, NGTCP2_CONNECTION_REFUSED);
    ep->stats.packets_dropped++;
    return;
  }
  /* Capacity, not load: a Retry would not help. */
  if (ep->closing || ep->nconns >= ep->cfg.max_connections) {
    send_refusal(ep, path, &hd, NGTCP2_CONNECTION_REFUSED, ts);
    return;
  }

  /* A Retry token is checked whatever the policy: the client that carries
   * one checks our transport parameters against the Retry it got. Other
   * tokens (uvq issues no NEW_TOKEN) count as none. */
  ocidp = NULL;
  if (hd.tokenlen > 0 && hd.token[0] == NGTCP2_CRYPTO_TOKEN_MAGIC_RETRY2) {
    if (ngtcp2_crypto_verify_retry_token2(
            &ocid, hd.token, hd.tokenlen, ep->static_secret,
            sizeof(ep->static_secret), hd.version, path->remote.addr,
            path->remote.addrlen, &hd.dcid, UVQ__RETRY_TOKEN_TIMEOUT,
            ts) != 0) {
      /* RFC 9000, 8.1.3: an invalid Retry token closes with
       * INVALID_TOKEN. */
      send_refusal(ep, path, &hd, NGTCP2_INVALID_TOKEN, ts);
      return;
    }
    ocidp = &ocid;
  }

  /* Load shedding. Over retry_threshold handshakes in progress (AUTO), a
   * client must show that it receives at its address before it gets a
   * handshake: spoofed Initials cost a Retry each (one packet, no state)
   * instead of a handshake slot until the handshake timeout, while real
   * clients come back with the token. */
  if (ocidp == NULL &&
      (ep->cfg.retry == UVQ_QUIC_RETRY_ALWAYS ||
       (ep->cfg.retry == UVQ_QUIC_RETRY_AUTO &&
        ep->nhandshakes >= ep->retry_threshold))) {
    send_retry(ep, path, &hd, ts);
    return;
  }
  if (ep->nhandshakes >= ep->cfg.max_handshakes) {
    if (ocidp == NULL) {
      /* UVQ_QUIC_RETRY_NEVER: there is nothing else to do. */
      send_refusal(ep, path, &hd, NGTCP2_CONNECTION_REFUSED, ts);
      return;
    }
    /* A client with a valid token is real: refusing it would turn a burst
     * into failures. Its Initial waits for a handshake slot instead
     * (wait_initial); if the line is full it is dropped, and the client
     * sends it again after its PTO. */
    if (wait_initial(ep, path, pi, &hd, data, len, ts) != 0)
      ep->stats.packets_dropped++;
    return;
  }

  if (uvq__conn_new_server(ep, path, &hd, ocidp, ts, &c) != 0) {
    ep->stats.packets_dropped++;
    return;
  }
  if (ep->cb.accept != NULL && ep->cb.accept(ep, c) != 0) {
    uvq__conn_discard(c);
    send_refusal(ep, path, &hd, NGTCP2_CONNECTION_REFUSED, ts);
    return;
  }
  ep->stats.connections_accepted++;
  uvq__conn_read(c, path, pi, data, len, ts);
}

/* Packets come in runs for one connection (a GRO batch is one flow), so
 * the last lookup is remembered: hashing every packet's DCID showed as 6%
 * of a receiver's time. */
static uvq_quic_conn_t* lookup_cid(uvq_quic_endpoint_t* ep,
                                   const uint8_t* cid,
                                   size_t len) {
  uvq_quic_conn_t* c;

  if (ep->last_conn != NULL && ep->last_cid.len == len &&
      memcmp(ep->last_cid.data, cid, len) == 0)
    return ep->last_conn;
  c = uvq__cidmap_get(&ep->cids, cid, len);
  if (c != NULL && len <= UVQ__CID_MAX) {
    ep->last_conn = c;
    ep->last_cid.len = (uint8_t) len;
    memcpy(ep->last_cid.data, cid, len);
  }
  return c;
}

static void dispatch(uvq_quic_endpoint_t* ep,
                     const ngtcp2_path* path,
                     const ngtcp2_pkt_info* pi,
                     const uint8_t* data,
                     size_t len,
                     ngtcp2_tstamp ts) {
  ngtcp2_version_cid vc;
  uvq_quic_conn_t* c;
  int rv;

  rv = ngtcp2_pkt_decode_version_cid(&vc, data, len, UVQ__SCID_LEN);
  if (rv == NGTCP2_ERR_VERSION_NEGOTIATION) {
    if (ep->server_ctx != NULL)
      send_version_negotiation(ep, path, &vc, len);
    return;
  }
  if (rv != 0) {
    ep->stats.packets_dropped++;
    return;
  }
  c = lookup_cid(ep, vc.dcid, vc.dcidlen);
  if (c != NULL) {
    uvq__conn_read(c, path, pi, data, len, ts);
    return;
  }
  if (data[0] & 0x80) {
    /* Long header. Version 0 is a Version Negotiation packet, which only
     * means something to the connection it names. */
    if (vc.version == 0) {
      ep->stats.packets_dropped++;
      return;
    }
    /* Long header: only a server makes connections from it. */
    if (ep->server_ctx != NULL)
      accept_initial(ep, path, pi, data, len, ts);
    else
      ep->stats.packets_dropped++;
    return;
  }
  /* A short-header packet for no known connection ID may be a stateless
   * reset for one of ours: its last 16 bytes would be the token the peer
   * gave for the ID it has stopped knowing (RFC 9000, 10.3.1). ngtcp2
   * checks the token when the connection reads it. */
  if (len >= NGTCP2_STATELESS_RESET_TOKENLEN + 5) {
    c = uvq__cidmap_get(&ep->tokens, data + len - NGTCP2_STATELESS_RESET_TOKENLEN,
                        NGTCP2_STATELESS_RESET_TOKENLEN);
    if (c != NULL) {
      uvq__conn_read(c, path, pi, data, len, ts);
      return;
    }
  }
  ep->stats.packets_dropped++;
  /* With the steering program this means the worker the ID names is gone
   * (the kernel falls back to its hash when the program answers an index
   * the group no longer has); the reset, made from the shared secret,
   * tells the client at once. With the kernel's hash it is a client whose
   * address changed. */
  if (names_other_worker(ep, vc.dcid, vc.dcidlen))
    ep->stats.packets_misrouted++;
  if (vc.dcidlen <= NGTCP2_MAX_CIDLEN)
    send_stateless_reset(ep, path, vc.dcid, vc.dcidlen, len);
}

/* ---- entry points ---------------------------------------------------------- */

/* One datagram into the core, from the adapter or the application. */
void uvq__ep_input(uvq_quic_endpoint_t* ep,
                   const ngtcp2_path* path,
                   const ngtcp2_pkt_info* pi,
                   const uint8_t* data,
                   size_t len,
                   ngtcp2_tstamp ts) {
  uvq__ep_enter(ep);
  dispatch(ep, path, pi, data, len, ts);
  ep->rx_since_flush++;
  uvq__ep_leave(ep);
}

void uvq__ep_enter(uvq_quic_endpoint_t* ep) {
  ep->depth++;
}

static void finish_close(uvq_quic_endpoint_t* ep);

int uvq__ep_leave(uvq_quic_endpoint_t* ep) {
  uvq_quic_conn_t* c;
  int core;

  if (--ep->depth > 0)
    return 0;
  /* No callback is running: connections that ended can go. */
  while ((c = ep->dead) != NULL) {
    ep->dead = c->next_dead;
    uvq__conn_free(c);
  }
  if (ep->closing && !ep->finished) {
    /* A core endpoint is gone when finish_close returns; a loop endpoint
     * once its handles are closed. */
    core = ep->loop == NULL;
    finish_close(ep);
    return core;
  }
  return 0;
}

/* With no callback running: report every connection closed and free them;
 * then a loop endpoint closes its handles (close_cb comes last), a core
 * endpoint calls close_cb and is freed. */
static void finish_close(uvq_quic_endpoint_t* ep) {
  uvq_quic_conn_t* c;

  ep->depth++;
  while ((c = ep->conns) != NULL) {
    uvq__conn_report_closed(c);
    c->state = UVQ__CONN_DEAD;
    uvq__conn_release(c);
  }
  ep->depth--;
  while ((c = ep->dead) != NULL) {
    ep->dead = c->next_dead;
    uvq__conn_free(c);
  }
  ep->finished = 1;
  if (ep->loop != NULL) {
    uvq__uv_close(ep);
    return;
  }
  if (ep->close_cb != NULL)
    ep->close_cb(ep);
  uvq__ep_free(ep);
}

void uvq_quic_endpoint_close(uvq_quic_endpoint_t* ep,
                             void (*close_cb)(uvq_quic_endpoint_t*)) {
  uvq_quic_conn_t* c;

  if (ep == NULL || ep->closing)
    return;
  ep->close_cb = close_cb;
  /* Every open connection says goodbye (NO_ERROR) at once; its closed
   * callback, reporting UVQ_QUIC_ERROR_ENDPOINT_CLOSED, and close_cb
   * follow (from the loop, for a loop endpoint). */
  for (c = ep->conns; c != NULL; c = c->next)
    uvq__conn_close_local(c, UVQ_QUIC_ERROR_ENDPOINT_CLOSED, NGTCP2_NO_ERROR,
                          0);
  uvq__ep_flush(ep);
  ep->closing = 1;
  if (ep->loop != NULL) {
    uvq__ep_start_flush(ep);
    return;
  }
  /* A core endpoint ends now, or when the outermost call running a
   * callback returns. */
  uvq__ep_enter(ep);
  uvq__ep_leave(ep);
}

/* ---- the core's entry points ------------------------------------------------ */

static int is_ip(const struct sockaddr* sa) {
  return sa != NULL && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6);
}

/* Time given by the application: never earlier than before (ngtcp2 needs
 * monotonic time; an application's clock that steps back is held). */
static void set_clock(uvq_quic_endpoint_t* ep, uint64_t now) {
  if (now > ep->clock)
    ep->clock = now;
}

int uvq_quic_endpoint_input(uvq_quic_endpoint_t* ep,
                            const struct sockaddr* remote,
                            const struct sockaddr* local,
                            int ecn,
                            const void* data,
                            size_t len,
                            uint64_t now) {
  struct sockaddr_storage rs;
  struct sockaddr_storage ls;
  ngtcp2_pkt_info pi;
  ngtcp2_path path;

  if (ep == NULL || ep->loop != NULL || data == NULL || len == 0 ||
      !is_ip(remote) || !is_ip(local) ||
      remote->sa_family != local->sa_family || ecn < 0 || ecn > 3)
    return UV_EINVAL;
  if (ep->closing)
    return 0;
  set_clock(ep, now);
  /* Copies: ngtcp2 keeps the path's addresses only for the call, but the
   * caller's may not be aligned or may be shorter than a sockaddr_in6. */
  memset(&rs, 0, sizeof(rs));
  memset(&ls, 0, sizeof(ls));
  memcpy(&rs, remote, uvq__addr_len(remote));
  memcpy(&ls, local, uvq__addr_len(local));
  uvq__ep_make_path(ep, &path, (struct sockaddr*) &ls, (struct sockaddr*) &rs);
  memset(&pi, 0, sizeof(pi));
  pi.ecn = (uint8_t) ecn;
  uvq__ep_input(ep, &path, &pi, data, len, ep->clock);
  return 0;
}

uint64_t uvq_quic_endpoint_next_expiry(const uvq_quic_endpoint_t* ep) {
  struct uvq__heap_node* top;
  uvq_quic_endpoint_t* mut;

  if (ep == NULL)
    return UINT64_MAX;
  top = uvq__heap_top((struct uvq__heap*) &ep->timers);
  /* Remembered, so that a later change that moves it earlier wakes the
   * application (uvq__ep_update_timer). */
  mut = (uvq_quic_endpoint_t*) ep;
  mut->timer_due = top != NULL ? top->key : UINT64_MAX;
  return mut->timer_due;
}

/* The rest of what a core endpoint's sink did not take, then the
 * connections' writes. 0 when every staged message was taken. */
static int core_flush(uvq_quic_endpoint_t* ep) {
  ep->flush_active = 0;
  if (ep->tx_blocked && uvq__ep_flush(ep) != 0)
    return UV_EAGAIN;
  uvq__ep_write_dirty(ep);
  return uvq__ep_flush(ep) == 0 && !ep->tx_blocked ? 0 : UV_EAGAIN;
}

int uvq_quic_endpoint_expire(uvq_quic_endpoint_t* ep, uint64_t now) {
  if (ep == NULL || ep->loop != NULL)
    return UV_EINVAL;
  if (ep->closing)
    return 0;
  set_clock(ep, now);
  uvq__ep_enter(ep);
  run_timers(ep, ep->clock);
  core_flush(ep);
  uvq__ep_leave(ep);
  return 0;
}

int uvq_quic_endpoint_flush(uvq_quic_endpoint_t* ep, uint64_t now) {
  int err;

  if (ep == NULL || ep->loop != NULL)
    return UV_EINVAL;
  if (ep->closing)
    return 0;
  set_clock(ep, now);
  uvq__ep_enter(ep);
  ep->rx_since_flush = 0;
  err = core_flush(ep);
  if (uvq__ep_leave(ep))
    return 0;
  return err;
}
