/* The QUIC endpoint fuzz harness (see quic-endpoint-harness.h).
 *
 * An endpoint's randomness has two sources: uv_random() (quic/endpoint.c's
 * pool: connection IDs, Retry and stateless reset tokens, ngtcp2's own
 * draws) and getrandom(2) (wolfSSL seeds each TLS object's generator with
 * it: client and server random, key shares, signatures). This file defines
 * both, so that each endpoint draws from a fixed stream of its own,
 * switched in before every call into it. A fresh endpoint then draws the
 * same bytes for the same input, and behaves the same: a crash replays
 * from its input alone, and the seeds the generator records replay
 * whole, handshakes included (the same key shares make the same keys), so
 * that mutations of their later packets reach the connection after its
 * handshake. uv_random() can be replaced because the QUIC sources are
 * compiled into the program; getrandom() because libwolfssl calls it
 * through the dynamic linker, which finds the program's first. Before the
 * first endpoint (libFuzzer's own start-up), getrandom() is the kernel's. */
#include "quic-endpoint-harness.h"
#include "fuzz-cert.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <uv.h>

#include "internal.h"

#include <wolfssl/openssl/evp.h>
#include <wolfssl/quic.h>

/* How far a record moves the clock (flags bits 2-4, but 7). */
static const uint64_t advance_ns[7] = {
  0, 100000, 1000000, 10000000, 100000000, 1000000000ull, 10000000000ull
};

/* ---- the random stream --------------------------------------------------- */

static uint64_t* rand_stream;
static unsigned int rand_refills;

/* splitmix64 */
static void rand_fill(void* buf, size_t len) {
  uint8_t* p = buf;
  size_t i;

  for (i = 0; i < len; i++) {
    uint64_t z = (*rand_stream += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    p[i] = (uint8_t) (z ^ (z >> 31));
  }
}

/* Replaces libuv's for the QUIC sources compiled into this program (see
 * the top of the file). Called by quic/endpoint.c only, without a loop. */
int uv_random(uv_loop_t* loop, uv_random_t* req, void* buf, size_t buflen,
              unsigned int flags, uv_random_cb cb) {
  (void) loop;
  (void) req;
  (void) flags;
  (void) cb;
  fz_check(rand_stream != NULL, "uv_random before any endpoint");
  rand_fill(buf, buflen);
  rand_refills++;
  return 0;
}

/* Replaces glibc's for libwolfssl (see the top of the file). */
ssize_t getrandom(void* buf, size_t buflen, unsigned int flags) {
  if (rand_stream == NULL)
    return syscall(SYS_getrandom, buf, buflen, flags);
  rand_fill(buf, buflen);
  return (ssize_t) buflen;
}

/* The endpoint's pool holds bytes of whichever stream filled it last:
 * draw them out until it refills from this side's stream. */
void fz_rand_switch(struct fz_side* s) {
  unsigned int refills = rand_refills;
  uint8_t b;

  rand_stream = &s->rng;
  while (rand_refills == refills)
    if (uvq__ep_rand(&b, 1) != 0)
      abort();
}

/* ---- addresses ----------------------------------------------------------- */

/* Client side (index 0-3) and server side of each path. Path 0 is the
 * connection's own; 1 moves the client's port (a NAT rebinding) or
 * answers from the server's other port; 2 is another host; 3 is IPv6. */
struct sockaddr_storage fz_client_addr[4];
struct sockaddr_storage fz_server_addr[4];

static void addr_init(void) {
  uv_ip4_addr("127.0.0.1", 50000, (struct sockaddr_in*) &fz_client_addr[0]);
  uv_ip4_addr("127.0.0.1", 50001, (struct sockaddr_in*) &fz_client_addr[1]);
  uv_ip4_addr("192.0.2.1", 50000, (struct sockaddr_in*) &fz_client_addr[2]);
  uv_ip6_addr("::1", 50000, (struct sockaddr_in6*) &fz_client_addr[3]);
  uv_ip4_addr("127.0.0.1", 4433, (struct sockaddr_in*) &fz_server_addr[0]);
  uv_ip4_addr("127.0.0.1", 4434, (struct sockaddr_in*) &fz_server_addr[1]);
  uv_ip4_addr("192.0.2.2", 4433, (struct sockaddr_in*) &fz_server_addr[2]);
  uv_ip6_addr("::1", 4433, (struct sockaddr_in6*) &fz_server_addr[3]);
}

static size_t addr_len(const struct sockaddr* sa) {
  return sa->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                   : sizeof(struct sockaddr_in);
}

static int addr_eq(const struct sockaddr* a, const struct sockaddr* b) {
  if (a->sa_family != b->sa_family)
    return 0;
  if (a->sa_family == AF_INET) {
    const struct sockaddr_in* x = (const struct sockaddr_in*) a;
    const struct sockaddr_in* y = (const struct sockaddr_in*) b;
    return x->sin_port == y->sin_port &&
           x->sin_addr.s_addr == y->sin_addr.s_addr;
  }
  if (a->sa_family == AF_INET6) {
    const struct sockaddr_in6* x = (const struct sockaddr_in6*) a;
    const struct sockaddr_in6* y = (const struct sockaddr_in6*) b;
    return x->sin6_port == y->sin6_port &&
           memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
  }
  return 0;
}

/* The (remote, local) pair of a path as the side sees it. A server keeps
 * its own address on paths 1 and 2; a client keeps its own. */
static void path_of(const struct fz_side* s, int path,
                    const struct sockaddr** remote,
                    const struct sockaddr** local) {
  int mine = path == 3 ? 3 : 0;

  if (s->role == ROLE_SERVER) {
    *remote = (const struct sockaddr*) &fz_client_addr[path];
    *local = (const struct sockaddr*) &fz_server_addr[mine];
  } else {
    *remote = (const struct sockaddr*) &fz_server_addr[path];
    *local = (const struct sockaddr*) &fz_client_addr[mine];
  }
}

int fz_addr_index(const struct sockaddr_storage* table,
                  const struct sockaddr* sa) {
  int i;

  for (i = 0; i < 4; i++)
    if (addr_eq((const struct sockaddr*) &table[i], sa))
      return i;
  return -1;
}

/* ---- the transmit sink --------------------------------------------------- */

void fz_check(int ok, const char* what) {
  if (!ok) {
    fprintf(stderr, "fuzz-quic-endpoint: %s\n", what);
    abort();
  }
}

static void queue_datagram(struct fz_side* s, const uvq_udp_mmsg_t* m,
                           const uint8_t* data, size_t len) {
  struct fz_datagram* d = malloc(sizeof(*d) + len);

  fz_check(d != NULL, "out of memory");
  d->next = NULL;
  memcpy(&d->to, m->addr, addr_len(m->addr));
  memcpy(&d->from, m->local, addr_len(m->local));
  d->len = len;
  memcpy(d->data, data, len);
  *s->out_tail = d;
  s->out_tail = &d->next;
}

static int sink_send(uvq_quic_endpoint_t* ep, const uvq_udp_mmsg_t* msgs,
                     unsigned int count) {
  struct fz_side* s = uvq_quic_endpoint_get_data(ep);
  const struct sockaddr_storage* peers;
  const struct sockaddr_storage* mine;
  static uint8_t flat[65536];
  unsigned int take;
  unsigned int i;
  unsigned int j;

  fz_check(count >= 1 && count <= 16, "send: not 1 to 16 messages");
  switch (s->sink_mode) {
  case 2:
    take = 0;
    break;
  case 3:
    take = 1;
    break;
  default:
    take = count;
  }
  peers = s->role == ROLE_SERVER ? fz_client_addr : fz_server_addr;
  mine = s->role == ROLE_SERVER ? fz_server_addr : fz_client_addr;
  for (i = 0; i < take; i++) {
    const uvq_udp_mmsg_t* m = &msgs[i];
    size_t len = 0;
    size_t off;

    fz_check(m->addr != NULL && m->local != NULL, "send: no address");
    fz_check(m->addr->sa_family == m->local->sa_family,
             "send: families differ");
    fz_check(fz_addr_index(peers, m->addr) >= 0, "send: to an unknown address");
    fz_check(fz_addr_index(mine, m->local) >= 0,
             "send: from an unknown address");
    fz_check(m->ecn >= 0 && m->ecn <= 3, "send: ECN codepoint out of range");
    fz_check(m->txtime == 0, "send: txtime set");
    /* Every byte is read, so that ASan sees a buffer that is too short. */
    for (j = 0; j < m->nbufs; j++) {
      fz_check(len + m->bufs[j].len <= sizeof(flat), "send: over 64 KiB");
      memcpy(flat + len, m->bufs[j].base, m->bufs[j].len);
      len += m->bufs[j].len;
    }
    fz_check(len > 0, "send: empty message");
    /* A client's Initial keys come from the DCID of its first Initial. */
    if (s->role == ROLE_CLIENT && s->odcid_len == 0 && len > 6 &&
        (flat[0] & 0xf0) == 0xc0 && flat[5] <= 20 && 6u + flat[5] <= len) {
      memcpy(s->odcid, flat + 6, flat[5]);
      s->odcid_len = flat[5];
    }
    fz_check(len <= (m->addr->sa_family == AF_INET ? 65507u : 65527u),
             "send: larger than a UDP datagram");
    if (m->gso_size == 0) {
      if (s->out_tail != NULL)
        queue_datagram(s, m, flat, len);
      continue;
    }
    fz_check((len + m->gso_size - 1) / m->gso_size <= 64,
             "send: over 64 GSO segments");
    for (off = 0; off < len; off += m->gso_size) {
      size_t n = len - off < m->gso_size ? len - off : m->gso_size;
      if (s->out_tail != NULL)
        queue_datagram(s, m, flat + off, n);
    }
  }
  s->sent += take;
  return (int) take;
}

/* ---- Initial packets the harness protects -------------------------------- */

/* Mutating a protected packet only ever breaks its AEAD tag. A record with
 * AUX_PROTECT carries an Initial in the clear instead, and the harness
 * protects it as a peer would (RFC 9001, 5.2, QUIC v1), so that the
 * fuzzer reaches the frames, the TLS handshake messages and the transport
 * parameters: [DCID length][DCID][SCID length][SCID][token length]
 * [token][packet number][frames]. A server's keys come from the packet's
 * DCID; a client's from the DCID of its own first Initial. The packet is
 * padded to 1200 bytes. */

static const uint8_t initial_salt_v1[20] = {
  0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
  0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a
};

/* HKDF-Expand-Label with the library's own function (quic/crypto.c). */
static void expand_label(uint8_t* out, size_t outlen,
                         const ngtcp2_crypto_md* md, const uint8_t* secret,
                         const char* label) {
  fz_check(uvq__hkdf_expand_label(out, outlen, md, secret, 32, label) == 0,
           "HKDF-Expand failed");
}

/* The keys of the sender (server: 1) of Initials for a client's DCID. */
void fz_initial_keys(struct fz_keys* k, const uint8_t* dcid,
                     size_t dcid_len, int server) {
  ngtcp2_crypto_md md;
  uint8_t initial[32];
  uint8_t secret[32];

  ngtcp2_crypto_md_init(&md, (void*) wolfSSL_EVP_sha256());
  fz_check(ngtcp2_crypto_hkdf_extract(initial, &md, dcid, dcid_len,
                                      initial_salt_v1,
                                      sizeof(initial_salt_v1)) == 0,
           "HKDF-Extract failed");
  expand_label(secret, sizeof(secret), &md, initial,
               server ? "server in" : "client in");
  expand_label(k->key, sizeof(k->key), &md, secret, "quic key");
  expand_label(k->iv, sizeof(k->iv), &md, secret, "quic iv");
  expand_label(k->hp, sizeof(k->hp), &md, secret, "quic hp");
}

/* The header protection mask for a sample (AES-128-CTR over zeros, as
 * ngtcp2's wolfSSL backend computes it). */
void fz_hp_mask(uint8_t mask[16], const struct fz_keys* k,
                const uint8_t* sample) {
  ngtcp2_crypto_cipher hp = { (void*) wolfSSL_EVP_aes_128_ctr() };
  ngtcp2_crypto_cipher_ctx ctx;

  ctx.native_handle = wolfSSL_quic_crypt_new(hp.native_handle, k->hp, NULL,
                                             1);
  fz_check(ctx.native_handle != NULL, "AES context failed");
  fz_check(ngtcp2_crypto_hp_mask(mask, &hp, &ctx, sample) == 0,
           "header protection failed");
  wolfSSL_EVP_CIPHER_CTX_free(ctx.native_handle);
}

void fz_aead_nonce(uint8_t nonce[12], const struct fz_keys* k,
                   const uint8_t* pn, size_t pn_len) {
  size_t i;

  memcpy(nonce, k->iv, 12);
  for (i = 0; i < pn_len; i++)
    nonce[12 - pn_len + i] ^= pn[i];
}

/* Builds and protects the Initial a record describes; returns its size. */
static size_t protect_initial(const struct fz_side* s, const uint8_t* in,
                              size_t in_len, uint8_t** out) {
  ngtcp2_crypto_aead aead = { (void*) wolfSSL_EVP_aes_128_gcm(), 16 };
  ngtcp2_crypto_aead_ctx actx;
  struct fz_keys k;
  const uint8_t* dcid;
  uint8_t nonce[12];
  uint8_t mask[16];
  size_t dcid_len;
  size_t payload_len;
  size_t hdr;
  size_t pn_off;
  size_t n;
  uint8_t pn;
  uint8_t* p;
#define TAKE(len)                                                         \
  ((len) <= in_len ? (in += (len), in_len -= (len), in - (len))           \
                   : (in += in_len, in_len = 0, in))

  p = calloc(1, 1300 + in_len);
  fz_check(p != NULL, "out of memory");
  hdr = 0;
  p[hdr++] = 0xc1;                                /* Initial, 2-octet PN */
  memcpy(p + hdr, "\0\0\0\1", 4);
  hdr += 4;
  n = in_len > 0 ? *TAKE(1) % 21 : 0;             /* DCID */
  n = n < in_len ? n : in_len;
  dcid = in;
  dcid_len = n;
  p[hdr++] = (uint8_t) n;
  memcpy(p + hdr, TAKE(n), n);
  hdr += n;
  n = in_len > 0 ? *TAKE(1) % 21 : 0;             /* SCID */
  n = n < in_len ? n : in_len;
  p[hdr++] = (uint8_t) n;
  memcpy(p + hdr, TAKE(n), n);
  hdr += n;
  n = in_len > 0 ? *TAKE(1) % 64 : 0;             /* token */
  n = n < in_len ? n : in_len;
  p[hdr++] = (uint8_t) n;
  memcpy(p + hdr, TAKE(n), n);
  hdr += n;
  pn = in_len > 0 ? *TAKE(1) : 0;                 /* packet number */
  /* Frames, padded with PADDING so that the datagram is 1200 bytes or
   * more; at most what a 2-octet Length can say. */
  if (in_len > 16000)
    in_len = 16000;
  payload_len = hdr + 2 + 2 + in_len + 16 >= 1200 ? in_len
                                                   : 1200 - hdr - 2 - 2 - 16;
  p[hdr++] = (uint8_t) (0x40 | (2 + payload_len + 16) >> 8);
  p[hdr++] = (uint8_t) (2 + payload_len + 16);
  pn_off = hdr;
  p[hdr++] = 0;
  p[hdr++] = pn;
  memcpy(p + hdr, in, in_len);
#undef TAKE

  if (s->role == ROLE_SERVER)
    fz_initial_keys(&k, dcid, dcid_len, 0);
  else
    fz_initial_keys(&k, s->odcid, s->odcid_len, 1);
  fz_aead_nonce(nonce, &k, p + pn_off, 2);
  fz_check(ngtcp2_crypto_aead_ctx_encrypt_init(&actx, &aead, k.key, 12) == 0,
           "AEAD context failed");
  fz_check(ngtcp2_crypto_encrypt(p + hdr, &aead, &actx, p + hdr, payload_len,
                                 nonce, 12, p, hdr) == 0,
           "AEAD encryption failed");
  ngtcp2_crypto_aead_ctx_free(&actx);
  fz_hp_mask(mask, &k, p + pn_off + 4);
  p[0] ^= mask[0] & 0x0f;
  p[pn_off] ^= mask[1];
  p[pn_off + 1] ^= mask[2];
  *out = p;
  return hdr + payload_len + 16;
}

/* ---- the endpoints ------------------------------------------------------- */

/* Endpoints read the certificate from files, and are made all along: the
 * files stay for the process and go at exit. */
static char cert_dir[64];
static char cert_file[96];
static char key_file[96];

static void remove_cert_files(void) {
  unlink(cert_file);
  unlink(key_file);
  rmdir(cert_dir);
}

static void cert_init(void) {
  const char* tmp = getenv("TMPDIR");

  snprintf(cert_dir, sizeof(cert_dir), "%s/uvq-fuzz-XXXXXX",
           tmp != NULL && strlen(tmp) < 40 ? tmp : "/tmp");
  fz_check(mkdtemp(cert_dir) != NULL, "mkdtemp");
  fz_check(fuzz_cert_write(cert_dir, cert_file, sizeof(cert_file), key_file,
                           sizeof(key_file)) == 0,
           "cannot write the certificate files");
  atexit(remove_cert_files);
}

static int on_accept(uvq_quic_endpoint_t* ep, uvq_quic_conn_t* conn) {
  struct fz_side* s = uvq_quic_endpoint_get_data(ep);

  uvq_quic_conn_set_data(conn, s);
  s->conns++;
  return 0;
}

static void on_handshake_done(uvq_quic_conn_t* conn) {
  struct fz_side* s = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));

  s->handshakes++;
}

static void on_closed(uvq_quic_conn_t* conn, const uvq_quic_error_t* error) {
  struct fz_side* s = uvq_quic_endpoint_get_data(uvq_quic_conn_endpoint(conn));

  (void) error;
  fz_check(s->conns > 0, "closed: more connections closed than opened");
  s->conns--;
}

static void answer_done(uvq_quic_write_t* req, int status) {
  (void) status;
  free(req);
}

/* A server answers each stream the client finishes, and each datagram,
 * so that what it sends after the handshake is within reach too. */
static void on_stream_data(uvq_quic_conn_t* conn, int64_t id,
                           const uint8_t* data, size_t len, int fin) {
  static const uv_buf_t answer = { "answer", 6 };
  uvq_quic_write_t* req;

  (void) data;
  uvq_quic_stream_consume(conn, id, len);
  if (!fin || !uvq_quic_conn_is_server(conn) || (id & 3) != 0)
    return;
  req = malloc(sizeof(*req));
  fz_check(req != NULL, "out of memory");
  if (uvq_quic_stream_write(req, conn, id, &answer, 1, 1, answer_done) != 0)
    free(req);
}

static void on_datagram(uvq_quic_conn_t* conn, const uint8_t* data,
                        size_t len) {
  uv_buf_t buf = uv_buf_init((char*) data, (unsigned int) len);

  if (uvq_quic_conn_is_server(conn))
    uvq_quic_datagram_send(conn, &buf, 1, NULL);
}

/* The same for every fresh endpoint of a role, so that inputs replay. */
static const uint8_t static_secret[32] = "uvq fuzz static secret, 32 oct.";

void fz_side_open(struct fz_side* s, int role, int variant) {
  uvq_quic_callbacks_t cb;
  uvq_quic_config_t cfg;
  uvq_quic_io_t io;
  int err;

  s->ep = NULL;
  s->role = role;
  s->now = 1000000000ull;
  s->rng = role == ROLE_SERVER ? 0x5eed5e7e5eed5e7eull : 0xc11e575eedc11e57ull;
  s->conns = 0;
  s->inputs = 0;
  s->sink_mode = 0;
  s->handshakes = 0;

  uvq_quic_config_default(&cfg);
  cfg.alpn = "uvq-test";
  cfg.max_datagram_frame_size = 1200;
  cfg.idle_timeout_ms = 3000;
  cfg.handshake_timeout_ms = 2000;
  cfg.static_secret = static_secret;
  /* Every endpoint has a client TLS context, which would otherwise load
   * the system's trust store (tens of milliseconds per endpoint); the
   * server never connects, the client talks to the fuzzer. */
  cfg.insecure_skip_verify = 1;
  if (role == ROLE_SERVER) {
    cfg.cert_file = cert_file;
    cfg.key_file = key_file;
    /* Few enough that refusals are within an input's reach. */
    cfg.max_connections = 8;
    cfg.max_handshakes = 4;
    if (variant)
      cfg.retry = UVQ_QUIC_RETRY_ALWAYS;
  }
  memset(&cb, 0, sizeof(cb));
  cb.accept = on_accept;
  cb.handshake_done = on_handshake_done;
  cb.closed = on_closed;
  cb.stream_data = on_stream_data;
  cb.datagram = on_datagram;
  memset(&io, 0, sizeof(io));
  io.version = UVQ_QUIC_IO_VERSION;
  io.send = sink_send;
  fz_rand_switch(s);
  err = uvq_quic_endpoint_new_core(&cfg, &cb, &io, s, &s->ep);
  fz_check(err == 0, "uvq_quic_endpoint_new_core failed");
}

/* UVQ_FUZZ_VERBOSE set in the environment: what each endpoint saw, to
 * check that a seed reaches what it was made for. */
static void side_report(const struct fz_side* s) {
  uvq_quic_endpoint_stats_t st;

  if (getenv("UVQ_FUZZ_VERBOSE") == NULL)
    return;
  uvq_quic_endpoint_get_stats(s->ep, &st);
  fprintf(stderr,
          "%s: accepted %llu refused %llu dropped %llu vn %llu retry %llu "
          "reset %llu handshakes %d open %u sent %u\n",
          s->role == ROLE_SERVER ? "server" : "client",
          (unsigned long long) st.connections_accepted,
          (unsigned long long) st.connections_refused,
          (unsigned long long) st.packets_dropped,
          (unsigned long long) st.version_negotiations,
          (unsigned long long) st.retries,
          (unsigned long long) st.stateless_resets, s->handshakes, s->conns,
          s->sent);
}

void fz_side_close(struct fz_side* s) {
  if (s->ep == NULL)
    return;
  side_report(s);
  s->sink_mode = 0;
  fz_rand_switch(s);
  uvq_quic_endpoint_close(s->ep, NULL);
  s->ep = NULL;
  fz_check(s->conns == 0, "close: a connection was not reported closed");
}

/* A client connects to the server's path-0 address from its own. */
void fz_side_connect(struct fz_side* s, int v2) {
  uvq_quic_connect_opts_t opts;
  uvq_quic_conn_t* conn;
  int err;

  memset(&opts, 0, sizeof(opts));
  opts.version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  opts.server_name = "localhost";
  opts.local = (const struct sockaddr*) &fz_client_addr[0];
  opts.quic_version = v2 ? UVQ_QUIC_V2 : UVQ_QUIC_V1;
  s->sink_mode = 0;
  s->odcid_len = 0;
  fz_rand_switch(s);
  err = uvq_quic_connect(s->ep, (const struct sockaddr*) &fz_server_addr[0],
                         &opts, s, &conn);
  fz_check(err == 0, "uvq_quic_connect failed");
  s->conn = conn;
  s->conns++;
  fz_rand_switch(s);
  err = uvq_quic_endpoint_flush(s->ep, s->now);
  fz_check(err == 0, "flush after connect failed");
}

/* One record: move the clock, feed the datagram, expire, flush. */
void fz_side_record(struct fz_side* s, uint8_t flags, uint8_t aux,
                    const uint8_t* data, size_t len) {
  const struct sockaddr* remote;
  const struct sockaddr* local;
  unsigned int advance = (flags >> 2) & 7;
  int err;

  if (advance == ADVANCE_TO_EXPIRY) {
    uint64_t e = uvq_quic_endpoint_next_expiry(s->ep);
    s->now = e != UINT64_MAX && e > s->now ? e : s->now + 1000000;
  } else {
    s->now += advance_ns[advance];
  }
  s->sink_mode = aux & 3;
  if (s->log != NULL) {
    uint8_t hdr[4] = { flags, aux, (uint8_t) (len >> 8), (uint8_t) len };
    fz_check(fwrite(hdr, 1, 4, s->log) == 4 &&
             (len == 0 || fwrite(data, 1, len, s->log) == len),
             "cannot write a seed");
  }
  path_of(s, flags & 3, &remote, &local);
  if (aux & AUX_PROTECT) {
    uint8_t* packet;
    size_t n = protect_initial(s, data, len, &packet);
    /* In a buffer of its exact size, as below. */
    uint8_t* copy = malloc(n);
    fz_check(copy != NULL, "out of memory");
    memcpy(copy, packet, n);
    free(packet);
    fz_rand_switch(s);
    err = uvq_quic_endpoint_input(s->ep, remote, local, flags >> 6, copy, n,
                                  s->now);
    free(copy);
    fz_check(err == 0, "uvq_quic_endpoint_input refused a valid call");
  } else if (len > 0) {
    /* A copy of exactly len bytes, so that ASan sees any read past it. */
    uint8_t* copy = malloc(len);
    fz_check(copy != NULL, "out of memory");
    memcpy(copy, data, len);
    fz_rand_switch(s);
    err = uvq_quic_endpoint_input(s->ep, remote, local, flags >> 6, copy,
                                  len, s->now);
    free(copy);
    fz_check(err == 0, "uvq_quic_endpoint_input refused a valid call");
  }
  if (flags & REC_EXPIRE) {
    fz_rand_switch(s);
    err = uvq_quic_endpoint_expire(s->ep, s->now);
    fz_check(err == 0 || (err == UV_EAGAIN && s->sink_mode >= 2),
             "uvq_quic_endpoint_expire failed");
  }
  if (!(aux & AUX_NO_FLUSH)) {
    fz_rand_switch(s);
    err = uvq_quic_endpoint_flush(s->ep, s->now);
    fz_check(err == 0 || (err == UV_EAGAIN && s->sink_mode >= 2),
             "uvq_quic_endpoint_flush failed");
  }
}

void fz_init(void) {
  addr_init();
  cert_init();
  /* wolfSSL seeds a global generator when it is first initialised, which
   * would take bytes from the stream of whichever endpoint comes first in
   * the process. Done here, from the kernel, it leaves every stream
   * alone; the reference is kept, so it is never done again. */
  fz_check(wolfSSL_Init() == WOLFSSL_SUCCESS, "wolfSSL_Init failed");
}
