/* The seed generator of the QUIC endpoint fuzz target: a client and a
 * server core endpoint run against each other through the harness's sink,
 * and each side's records (what it was fed, exactly as the fuzz target
 * feeds it) become a seed; a few seeds are made by hand from a client's
 * Initial. Run with the corpus directory; it writes every seed again:
 *
 *   fuzz-quic-endpoint-seeds test/fuzz/corpus/quic-endpoint
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ngtcp2/ngtcp2_crypto.h>
#include <uv.h>
#include <wolfssl/options.h>
#include <wolfssl/openssl/evp.h>

#include "quic-endpoint-harness.h"

static const char* seed_dir;

static FILE* seed_open(const char* name, uint8_t mode) {
  char path[512];
  FILE* f;

  snprintf(path, sizeof(path), "%s/%s", seed_dir, name);
  f = fopen(path, "wb");
  fz_check(f != NULL, "cannot create a seed");
  fz_check(fputc(mode, f) != EOF, "cannot write a seed");
  return f;
}

static void drop_out(struct fz_side* s) {
  while (s->out != NULL) {
    struct fz_datagram* d = s->out;
    s->out = d->next;
    free(d);
  }
  s->out_tail = &s->out;
}

/* A generator side: a fresh endpoint as the fuzz target makes it, its
 * records going to the seed name (NULL: none). */
static void gen_open(struct fz_side* s, int role, uint8_t mode,
                     const char* name) {
  memset(s, 0, sizeof(*s));
  s->path = -1;
  s->out_tail = &s->out;
  s->log = name != NULL ? seed_open(name, mode) : NULL;
  fz_side_open(s, role, mode & MODE_VARIANT);
  if (role == ROLE_CLIENT)
    fz_side_connect(s, mode & MODE_VARIANT);
}

static void gen_close(struct fz_side* s) {
  /* Closing sends CONNECTION_CLOSE packets nobody reads. */
  fz_side_close(s);
  drop_out(s);
  if (s->log != NULL)
    fz_check(fclose(s->log) == 0, "cannot write a seed");
  s->log = NULL;
}

/* Hands what from sent to to, as one batch 1 ms later, on the path the
 * addresses name (or to->path). Returns how many datagrams. */
static int deliver(struct fz_side* from, struct fz_side* to) {
  const struct sockaddr_storage* peers;
  struct fz_datagram* list = from->out;
  int n = 0;

  from->out = NULL;
  from->out_tail = &from->out;
  peers = to->role == ROLE_SERVER ? fz_client_addr : fz_server_addr;
  while (list != NULL) {
    struct fz_datagram* d = list;
    int path = fz_addr_index(peers, (const struct sockaddr*) &d->from);
    uint8_t aux = to->aux;

    list = d->next;
    if (to->path >= 0)
      path = to->path;
    fz_check(path >= 0, "generator: a datagram from an unknown address");
    if (list != NULL)
      aux |= AUX_NO_FLUSH;
    fz_side_record(to, (uint8_t) (path | (n == 0 ? 2 << 2 : 0)), aux, d->data,
                   d->len);
    free(d);
    n++;
  }
  return n;
}

static uvq_quic_write_t hello_req;
static uv_buf_t hello_buf = { "hello", 5 };
static uv_buf_t dgram_buf = { "dgram", 5 };

static void hello_done(uvq_quic_write_t* req, int status) {
  (void) req;
  (void) status;
}

/* Datagrams both ways until neither side sends (at most rounds times);
 * with talk, the client writes a stream and a datagram once its handshake
 * is done. */
static void exchange(struct fz_side* c, struct fz_side* srv, int talk,
                     int rounds) {
  int wrote = 0;

  while (rounds-- > 0) {
    int n = deliver(c, srv);
    n += deliver(srv, c);
    if (talk && !wrote && c->handshakes > 0) {
      int64_t id;
      fz_check(uvq_quic_stream_open(c->conn, 1, &id) == 0, "stream_open");
      fz_check(uvq_quic_stream_write(&hello_req, c->conn, id, &hello_buf, 1, 1,
                                     hello_done) == 0, "stream_write");
      fz_check(uvq_quic_datagram_send(c->conn, &dgram_buf, 1, NULL) == 0,
               "datagram_send");
      fz_side_record(c, 0, 0, NULL, 0);
      wrote = 1;
      continue;
    }
    if (n == 0)
      break;
  }
}

/* The first datagram a side sent, kept aside. */
static struct fz_datagram* take_first(struct fz_side* s) {
  struct fz_datagram* d = s->out;

  fz_check(d != NULL, "generator: nothing sent");
  s->out = d->next;
  if (s->out == NULL)
    s->out_tail = &s->out;
  d->next = NULL;
  return d;
}

/* Writes a seed of one fresh endpoint fed the given datagrams, each a
 * record with flags and aux. */
struct rec {
  uint8_t flags;
  uint8_t aux;
  const uint8_t* data;
  size_t len;
};

static void seed_records(const char* name, uint8_t mode,
                         const struct rec* recs, int n) {
  FILE* f = seed_open(name, mode);
  int i;

  for (i = 0; i < n; i++) {
    uint8_t hdr[4] = { recs[i].flags, recs[i].aux,
                       (uint8_t) (recs[i].len >> 8), (uint8_t) recs[i].len };
    fz_check(fwrite(hdr, 1, 4, f) == 4 &&
             (recs[i].len == 0 ||
              fwrite(recs[i].data, 1, recs[i].len, f) == recs[i].len),
          "cannot write a seed");
  }
  fz_check(fclose(f) == 0, "cannot write a seed");
}

/* The client's connection IDs, from its first Initial (RFC 9000, 17.2). */
static void initial_cids(const struct fz_datagram* d, const uint8_t** dcid,
                         size_t* dcid_len, const uint8_t** scid,
                         size_t* scid_len) {
  fz_check(d->len > 7 && (d->data[0] & 0x80), "generator: not a long header");
  *dcid_len = d->data[5];
  *dcid = d->data + 6;
  fz_check(6 + *dcid_len + 1 < d->len, "generator: short Initial");
  *scid_len = d->data[6 + *dcid_len];
  *scid = d->data + 7 + *dcid_len;
}

/* A Version Negotiation packet to the client (RFC 9000, 17.2.1). */
static size_t make_vn(uint8_t* p, const struct fz_datagram* initial,
                      const uint32_t* versions, int n) {
  const uint8_t* dcid;
  const uint8_t* scid;
  size_t dcid_len;
  size_t scid_len;
  size_t len = 0;
  int i;

  initial_cids(initial, &dcid, &dcid_len, &scid, &scid_len);
  p[len++] = 0x80 | 0x2a;
  memset(p + len, 0, 4);
  len += 4;
  p[len++] = (uint8_t) scid_len;
  memcpy(p + len, scid, scid_len);
  len += scid_len;
  p[len++] = (uint8_t) dcid_len;
  memcpy(p + len, dcid, dcid_len);
  len += dcid_len;
  for (i = 0; i < n; i++) {
    uint32_t v = htonl(versions[i]);
    memcpy(p + len, &v, 4);
    len += 4;
  }
  return len;
}

/* A QUIC variable-length integer (RFC 9000, 16). */
static uint64_t get_varint(const uint8_t** p) {
  size_t n = (size_t) 1 << (**p >> 6);
  uint64_t v = **p & 0x3f;
  size_t i;

  for (i = 1; i < n; i++)
    v = v << 8 | (*p)[i];
  *p += n;
  return v;
}

/* The record (AUX_PROTECT) that makes the first packet of d again: its
 * header fields and its frames in the clear, the padding left out. keys:
 * the sender's. Returns its length. */
static size_t unprotect_initial(const struct fz_datagram* d,
                                const struct fz_keys* k, uint8_t* rec) {
  ngtcp2_crypto_aead aead = { (void*) wolfSSL_EVP_aes_128_gcm(), 16 };
  ngtcp2_crypto_aead_ctx actx;
  uint8_t aad[256];
  uint8_t nonce[12];
  uint8_t mask[16];
  uint8_t plain[1500];
  const uint8_t* p = d->data + 5;
  size_t pn_off;
  size_t pn_len;
  size_t ct_len;
  size_t n = 0;
  size_t i;
  uint64_t length;

  fz_check(d->len <= sizeof(plain) && (d->data[0] & 0xf0) == 0xc0,
           "generator: not an Initial");
  rec[n++] = *p;                                    /* DCID */
  memcpy(rec + n, p + 1, *p);
  n += *p;
  p += 1 + *p;
  rec[n++] = *p;                                    /* SCID */
  memcpy(rec + n, p + 1, *p);
  n += *p;
  p += 1 + *p;
  length = get_varint(&p);                          /* token */
  fz_check(length < 64, "generator: token too long for a record");
  rec[n++] = (uint8_t) length;
  memcpy(rec + n, p, length);
  n += length;
  p += length;
  length = get_varint(&p);
  pn_off = (size_t) (p - d->data);
  fz_hp_mask(mask, k, d->data + pn_off + 4);
  memcpy(aad, d->data, pn_off + 4);
  aad[0] ^= mask[0] & 0x0f;
  pn_len = (aad[0] & 3) + 1;
  for (i = 0; i < pn_len; i++)
    aad[pn_off + i] ^= mask[1 + i];
  for (i = 0; i + 1 < pn_len; i++)
    fz_check(aad[pn_off + i] == 0, "generator: packet number over 255");
  rec[n++] = aad[pn_off + pn_len - 1];
  fz_aead_nonce(nonce, k, aad + pn_off, pn_len);
  ct_len = length - pn_len;
  fz_check(ngtcp2_crypto_aead_ctx_decrypt_init(&actx, &aead, k->key, 12) == 0,
           "AEAD context failed");
  fz_check(ngtcp2_crypto_decrypt(plain, &aead, &actx, d->data + pn_off + pn_len,
                                 ct_len, nonce, 12, aad, pn_off + pn_len) == 0,
        "generator: the Initial does not decrypt");
  ngtcp2_crypto_aead_ctx_free(&actx);
  ct_len -= 16;
  while (ct_len > 0 && plain[ct_len - 1] == 0)
    ct_len--;
  memcpy(rec + n, plain, ct_len);
  return n + ct_len;
}

#define T(advance) ((uint8_t) ((advance) << 2))

int main(int argc, char** argv) {
  struct fz_side c;
  struct fz_side srv;
  struct fz_datagram* initial;
  uint8_t buf[1500];
  size_t len;
  int i;

  if (argc != 2) {
    fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  seed_dir = argv[1];
  fz_init();

  /* A whole connection: handshake, a stream, a datagram, timers to the
   * end. The server's seed replays its Initials; the client's, the
   * server's Initial flight. */
  gen_open(&c, ROLE_CLIENT, MODE_CLIENT, "client-handshake");
  gen_open(&srv, ROLE_SERVER, 0, "server-handshake");
  exchange(&c, &srv, 1, 32);
  fz_check(c.handshakes == 1 && srv.handshakes == 1,
           "generator: the handshake did not complete");
  fz_check(uvq_quic_conn_close(c.conn, 0, "bye") == 0, "conn_close");
  fz_side_record(&c, 0, 0, NULL, 0);
  exchange(&c, &srv, 0, 8);
  for (i = 0; i < 3; i++) {
    fz_side_record(&c, T(ADVANCE_TO_EXPIRY) | REC_EXPIRE, 0, NULL, 0);
    fz_side_record(&srv, T(ADVANCE_TO_EXPIRY) | REC_EXPIRE, 0, NULL, 0);
    exchange(&c, &srv, 0, 8);
  }
  gen_close(&c);
  gen_close(&srv);

  /* The same, the server's transmit sink taking one message a flush. */
  gen_open(&c, ROLE_CLIENT, MODE_CLIENT, NULL);
  gen_open(&srv, ROLE_SERVER, 0, "server-sink-one");
  srv.aux = 3;
  exchange(&c, &srv, 1, 32);
  srv.aux = 0;
  exchange(&c, &srv, 0, 8);
  gen_close(&c);
  gen_close(&srv);

  /* Retry: the server asks for a token, the client comes back with it. */
  gen_open(&c, ROLE_CLIENT, MODE_CLIENT, "client-retry");
  gen_open(&srv, ROLE_SERVER, MODE_VARIANT, "server-retry");
  exchange(&c, &srv, 1, 32);
  gen_close(&c);
  gen_close(&srv);

  /* The client's Initial after the Retry, its token spoilt, to a fresh
   * server: a Retry with a new ID, which is the one it was sent to (the
   * server's random stream is where it was for the first Retry). ngtcp2
   * aborted on it before quic/endpoint.c's send_retry checked. */
  gen_open(&c, ROLE_CLIENT, MODE_CLIENT, NULL);
  gen_open(&srv, ROLE_SERVER, MODE_VARIANT, NULL);
  deliver(&c, &srv);
  deliver(&srv, &c);
  {
    struct fz_datagram* d = take_first(&c);
    const uint8_t* dcid;
    const uint8_t* scid;
    const uint8_t* p;
    size_t dcid_len;
    size_t scid_len;
    struct rec rec;

    initial_cids(d, &dcid, &dcid_len, &scid, &scid_len);
    p = scid + scid_len;
    fz_check(get_varint(&p) > 0, "generator: no token after the Retry");
    d->data[p - d->data] ^= 0xff;
    rec = (struct rec) { T(2), 0, d->data, d->len };
    seed_records("server-retry-id-collision", MODE_VARIANT, &rec, 1);
    free(d);
  }
  gen_close(&c);
  gen_close(&srv);

  /* The client starts in QUIC v2. */
  gen_open(&c, ROLE_CLIENT, MODE_CLIENT | MODE_VARIANT, "client-v2");
  gen_open(&srv, ROLE_SERVER, 0, "server-v2");
  exchange(&c, &srv, 1, 32);
  gen_close(&c);
  gen_close(&srv);

  /* The client's address changes once the connection is up (a NAT
   * rebinding): the server sees its next datagrams from another port. */
  gen_open(&c, ROLE_CLIENT, MODE_CLIENT, NULL);
  gen_open(&srv, ROLE_SERVER, 0, "server-rebind");
  exchange(&c, &srv, 1, 32);
  fz_check(srv.handshakes == 1, "generator: the handshake did not complete");
  fz_check(uvq_quic_datagram_send(c.conn, &dgram_buf, 1, NULL) == 0,
           "datagram_send");
  fz_side_record(&c, 0, 0, NULL, 0);
  srv.path = 1;
  exchange(&c, &srv, 0, 8);
  gen_close(&c);
  gen_close(&srv);

  /* Nobody answers: the client retransmits until its handshake times
   * out; the server hears one Initial, answers into the void and times
   * out too. */
  gen_open(&c, ROLE_CLIENT, MODE_CLIENT, "client-timeout");
  gen_open(&srv, ROLE_SERVER, 0, "server-timeout");
  deliver(&c, &srv);
  for (i = 0; i < 6; i++) {
    fz_side_record(&c, T(ADVANCE_TO_EXPIRY) | REC_EXPIRE, 0, NULL, 0);
    fz_side_record(&srv, T(ADVANCE_TO_EXPIRY) | REC_EXPIRE, 0, NULL, 0);
  }
  drop_out(&srv);
  gen_close(&c);
  gen_close(&srv);

  /* A client's first Initial, kept for the hand-made seeds below. */
  gen_open(&c, ROLE_CLIENT, MODE_CLIENT, NULL);
  initial = take_first(&c);
  gen_close(&c);

  /* An Initial in the clear, protected by the harness: the client's
   * first to a server, and a server's first answer to a client. */
  {
    struct fz_keys k;
    struct rec rec;
    size_t dcid_len = initial->data[5];

    fz_initial_keys(&k, initial->data + 6, dcid_len, 0);
    len = unprotect_initial(initial, &k, buf);
    rec = (struct rec) { T(2), AUX_PROTECT, buf, len };
    seed_records("server-initial-clear", 0, &rec, 1);
    gen_open(&c, ROLE_CLIENT, MODE_CLIENT, NULL);
    gen_open(&srv, ROLE_SERVER, 0, NULL);
    deliver(&c, &srv);
    fz_initial_keys(&k, c.odcid, c.odcid_len, 1);
    len = unprotect_initial(srv.out, &k, buf);
    rec = (struct rec) { T(2), AUX_PROTECT, buf, len };
    seed_records("client-initial-clear", MODE_CLIENT, &rec, 1);
    gen_close(&c);
    gen_close(&srv);
  }

  /* Server: one Initial; the same on IPv6; cut short of 1200 bytes; the
   * same twice from two ports; with ECN CE, and a persistent endpoint. */
  {
    struct rec one[] = { { T(2), 0, initial->data, initial->len } };
    struct rec v6[] = { { T(2) | 3, 0, initial->data, initial->len } };
    struct rec cut[] = { { T(2), 0, initial->data, 1100 } };
    struct rec twice[] = { { T(2), 0, initial->data, initial->len },
                           { T(1) | 1, 0, initial->data, initial->len },
                           { T(ADVANCE_TO_EXPIRY) | REC_EXPIRE, 0, NULL, 0 } };
    struct rec ce[] = { { T(2) | 0xc0, 0, initial->data, initial->len } };
    struct rec full[] = { { T(2), 2, initial->data, initial->len },
                          { T(3), 0, NULL, 0 } };
    seed_records("server-initial", 0, one, 1);
    seed_records("server-initial-ipv6", 0, v6, 1);
    seed_records("server-initial-short", 0, cut, 1);
    seed_records("server-initial-twice", 0, twice, 3);
    seed_records("server-initial-ce", 0, ce, 1);
    seed_records("server-initial-socket-full", 0, full, 2);
    seed_records("server-persistent-initial", MODE_PERSIST, one, 1);
  }

  /* Server: an Initial of a version it does not speak (Version
   * Negotiation); a short-header packet for no connection (stateless
   * reset); more new clients than max_handshakes (refusals). */
  {
    uint8_t vn[1200];
    uint8_t shorthdr[64];
    struct rec recs[8];

    memcpy(vn, initial->data, sizeof(vn));
    vn[1] = 0x1a;
    vn[2] = 0x2a;
    vn[3] = 0x3a;
    vn[4] = 0x4a;
    recs[0] = (struct rec) { T(2), 0, vn, sizeof(vn) };
    seed_records("server-unknown-version", 0, recs, 1);
    for (i = 0; i < (int) sizeof(shorthdr); i++)
      shorthdr[i] = (uint8_t) (i * 37 + 11);
    shorthdr[0] = 0x41;
    recs[0] = (struct rec) { T(2), 0, shorthdr, sizeof(shorthdr) };
    recs[1] = (struct rec) { T(2), 0, shorthdr, 21 };
    seed_records("server-short-header", 0, recs, 2);
  }
  {
    struct fz_datagram* inits[6];
    struct rec recs[6];

    for (i = 0; i < 6; i++) {
      memset(&c, 0, sizeof(c));
      c.path = -1;
      c.out_tail = &c.out;
      fz_side_open(&c, ROLE_CLIENT, 0);
      /* Another client: another random stream, other connection IDs. */
      c.rng ^= (uint64_t) (i + 1) << 32;
      fz_side_connect(&c, 0);
      inits[i] = take_first(&c);
      gen_close(&c);
      recs[i] = (struct rec) { (uint8_t) (T(1) | (i % 3)), 0, inits[i]->data,
                               inits[i]->len };
    }
    seed_records("server-many-clients", 0, recs, 6);
    for (i = 0; i < 6; i++)
      free(inits[i]);
  }

  /* Client: Version Negotiation listing only versions it does not speak,
   * and one offering v2; a stateless reset; the server's reply from
   * another host; a persistent client. */
  {
    static const uint32_t unknown[] = { 0x1a2a3a4a, 0xff00001d };
    static const uint32_t v2[] = { 0x0a0a0a0a, UVQ_QUIC_V2 };
    uint8_t reset[43];
    struct rec rec;

    len = make_vn(buf, initial, unknown, 2);
    rec = (struct rec) { T(2), 0, buf, len };
    seed_records("client-vn", MODE_CLIENT, &rec, 1);
    len = make_vn(buf, initial, v2, 2);
    rec = (struct rec) { T(2), 0, buf, len };
    seed_records("client-vn-v2", MODE_CLIENT, &rec, 1);
    for (i = 0; i < (int) sizeof(reset); i++)
      reset[i] = (uint8_t) (i * 53 + 7);
    reset[0] = 0x45;
    rec = (struct rec) { T(2), 0, reset, sizeof(reset) };
    seed_records("client-stateless-reset", MODE_CLIENT, &rec, 1);
  }
  gen_open(&c, ROLE_CLIENT, MODE_CLIENT, NULL);
  gen_open(&srv, ROLE_SERVER, 0, NULL);
  deliver(&c, &srv);
  {
    struct rec recs[4];
    struct fz_datagram* d;
    int n = 0;
    for (d = srv.out; d != NULL && n < 4; d = d->next)
      recs[n++] = (struct rec) { (uint8_t) (T(2) | 2), 0, d->data, d->len };
    seed_records("client-reply-other-host", MODE_CLIENT, recs, n);
    for (i = 0; i < n; i++)
      recs[i].flags = T(2);
    seed_records("client-persistent-reply", MODE_CLIENT | MODE_PERSIST, recs,
                 n);
  }
  gen_close(&c);
  gen_close(&srv);
  free(initial);
  return 0;
}
