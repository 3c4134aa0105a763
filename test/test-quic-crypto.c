/* uvq's own use of TLS and its keys: packet protection as uvq installs it
 * (quic/crypto.c), checked against the sample packets of RFC 9001,
 * Appendix A: the server's Initial (AES-128-GCM with AES-CTR header
 * protection) and the ChaCha20-Poly1305 short-header packet, both through
 * uvq's callbacks; keys and packets are the RFC's. Then a server's life
 * after it has freed its TLS object. */
#include <string.h>

#include <wolfssl/options.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/quic.h>

#include "internal.h"
#include "quic-helpers.h"
#include "task.h"

static size_t unhex(const char* s, uint8_t* out, size_t cap) {
  size_t n;
  unsigned v;

  for (n = 0; s[2 * n] != '\0' && n < cap; n++) {
    if (sscanf(s + 2 * n, "%2x", &v) != 1)
      return 0;
    out[n] = (uint8_t) v;
  }
  return n;
}

static void nonce_for(uint8_t* nonce, const uint8_t* iv, uint64_t pn) {
  int i;

  memcpy(nonce, iv, 12);
  for (i = 0; i < 8; i++)
    nonce[11 - i] ^= (uint8_t) (pn >> (8 * i));
}

/* RFC 9001, A.3 (the server's Initial, packet number 1). */
static const char kServerKey[] = "cf3a5331653c364c88f0f379b6067e37";
static const char kServerIv[] = "0ac1493ca1905853b0bba03e";
static const char kServerHp[] = "c206b8d9b9f0f37644430b490eeaa314";
static const char kServerHeader[] = "c1000000010008f067a5502a4262b50040750001";
static const char kServerPayload[] =
    "02000000000600405a020000560303eefce7f7b37ba1d1632e96677825ddf73988cf"
    "c79825df566dc5430b9a045a1200130100002e00330024001d00209d3c940d89690b"
    "84d08a60993c144eca684d1081287c834d5311bcf32bb9da1a002b00020304";
static const char kServerProtected[] =
    "cf000000010008f067a5502a4262b5004075c0d95a482cd0991cd25b0aac406a5816"
    "b6394100f37a1c69797554780bb38cc5a99f5ede4cf73c3ec2493a1839b3dbcba3f6"
    "ea46c5b7684df3548e7ddeb9c3bf9c73cc3f3bded74b562bfb19fb84022f8ef4cdd9"
    "3795d77d06edbb7aaf2f58891850abbdca3d20398c276456cbc42158407dd074ee";

TEST_IMPL(quic_unit_crypto_aes_gcm_rfc9001) {
  uint8_t key[16], iv[12], hpkey[16], hdr[32], payload[128], want[256];
  uint8_t buf[256], out[128], nonce[12], mask[16];
  size_t hdrlen, len, wantlen;
  ngtcp2_callbacks cb;
  ngtcp2_crypto_aead aead;
  ngtcp2_crypto_cipher hp;
  ngtcp2_crypto_aead_ctx ectx, dctx;
  ngtcp2_crypto_cipher_ctx hctx;

  /* With the wolfSSL uvq is built against, the self-test must pass: a
   * fallback here would be correct but would lose the fast path. */
  ASSERT_EQ(1, uvq__crypto_fast_path());
  uvq__crypto_fill_callbacks(&cb);
  ASSERT_EQ(0, cb.encrypt == ngtcp2_crypto_encrypt_cb);
  ASSERT_EQ(0, cb.decrypt == ngtcp2_crypto_decrypt_cb);
  ASSERT_EQ(0, cb.hp_mask == ngtcp2_crypto_hp_mask_cb);

  ASSERT_EQ(16, unhex(kServerKey, key, sizeof(key)));
  ASSERT_EQ(12, unhex(kServerIv, iv, sizeof(iv)));
  ASSERT_EQ(16, unhex(kServerHp, hpkey, sizeof(hpkey)));
  hdrlen = unhex(kServerHeader, hdr, sizeof(hdr));
  len = unhex(kServerPayload, payload, sizeof(payload));
  wantlen = unhex(kServerProtected, want, sizeof(want));
  ASSERT_EQ(hdrlen + len + 16, wantlen);

  /* What ngtcp2 uses for Initial packets. */
  aead.native_handle = (void*) wolfSSL_EVP_aes_128_gcm();
  aead.max_overhead = 16;
  hp.native_handle = (void*) wolfSSL_EVP_aes_128_ctr();
  ASSERT_OK(ngtcp2_crypto_aead_ctx_encrypt_init(&ectx, &aead, key, 12));
  ASSERT_OK(ngtcp2_crypto_aead_ctx_decrypt_init(&dctx, &aead, key, 12));
  /* As the helper makes them (its function for this is not exported). */
  hctx.native_handle = wolfSSL_quic_crypt_new(hp.native_handle, hpkey,
                                              NULL, 1);
  ASSERT_NOT_NULL(hctx.native_handle);

  /* Sealed in place, as ngtcp2 does. */
  nonce_for(nonce, iv, 1);
  memcpy(buf, payload, len);
  ASSERT_OK(cb.encrypt(buf, &aead, &ectx, buf, len, nonce, 12, hdr,
                       hdrlen));
  ASSERT_MEM_EQ(want + hdrlen, buf, len + 16);

  /* The mask, from the sample 4 bytes past the packet number's start. */
  ASSERT_OK(cb.hp_mask(mask, &hp, &hctx, buf + 4 - 2));
  ASSERT_EQ(want[0], hdr[0] ^ (mask[0] & 0x0f));
  ASSERT_EQ(want[hdrlen - 2], hdr[hdrlen - 2] ^ mask[1]);
  ASSERT_EQ(want[hdrlen - 1], hdr[hdrlen - 1] ^ mask[2]);

  /* Opened, and every corruption refused with NGTCP2_ERR_DECRYPT. */
  ASSERT_OK(cb.decrypt(out, &aead, &dctx, want + hdrlen, len + 16, nonce,
                       12, hdr, hdrlen));
  ASSERT_MEM_EQ(payload, out, len);
  buf[0] ^= 0x01;
  ASSERT_EQ(NGTCP2_ERR_DECRYPT, cb.decrypt(out, &aead, &dctx, buf,
                                           len + 16, nonce, 12, hdr, hdrlen));
  buf[0] ^= 0x01;
  buf[len + 15] ^= 0x80;  /* the tag */
  ASSERT_EQ(NGTCP2_ERR_DECRYPT, cb.decrypt(out, &aead, &dctx, buf,
                                           len + 16, nonce, 12, hdr, hdrlen));
  buf[len + 15] ^= 0x80;
  hdr[3] ^= 0x01;  /* the associated data */
  ASSERT_EQ(NGTCP2_ERR_DECRYPT, cb.decrypt(out, &aead, &dctx, buf,
                                           len + 16, nonce, 12, hdr, hdrlen));
  hdr[3] ^= 0x01;
  nonce_for(nonce, iv, 2);  /* the wrong packet number */
  ASSERT_EQ(NGTCP2_ERR_DECRYPT, cb.decrypt(out, &aead, &dctx, buf,
                                           len + 16, nonce, 12, hdr, hdrlen));
  ASSERT_EQ(NGTCP2_ERR_DECRYPT, cb.decrypt(out, &aead, &dctx, buf, 15,
                                           nonce, 12, hdr, hdrlen));
  /* An empty payload: a tag alone. */
  ASSERT_OK(cb.encrypt(buf, &aead, &ectx, buf, 0, nonce, 12, hdr,
                       hdrlen));
  ASSERT_OK(cb.decrypt(out, &aead, &dctx, buf, 16, nonce, 12, hdr,
                       hdrlen));

  ngtcp2_crypto_aead_ctx_free(&ectx);
  ngtcp2_crypto_aead_ctx_free(&dctx);
  wolfSSL_EVP_CIPHER_CTX_free(hctx.native_handle);
  return 0;
}

/* RFC 9001, A.5: ChaCha20-Poly1305, not on uvq's fast path, must still be
 * handled (by the helper) through the same callbacks. */
TEST_IMPL(quic_unit_crypto_chacha_rfc9001) {
  static const char kKey[] =
      "c6d98ff3441c3fe1b2182094f69caa2ed4b716b65488960a7a984979fb23e1c8";
  static const char kHp[] =
      "25a282b9e82f06f21f488917a4fc8f1b73573685608597d0efcb076b0ab7a7a4";
  static const char kIv[] = "e0459b3474bdd0e44a41c144";
  static const char kProtected[] = "4cfe4189655e5cd55c41f69080575d7999c25a5bfb";
  uint8_t key[32], hpkey[32], iv[12], want[32], hdr[4], buf[32], out[8];
  uint8_t nonce[12], mask[16];
  ngtcp2_callbacks cb;
  ngtcp2_crypto_aead aead;
  ngtcp2_crypto_cipher hp;
  ngtcp2_crypto_aead_ctx ectx, dctx;
  ngtcp2_crypto_cipher_ctx hctx;

  /* uvq opens these itself: the helper's path through wolfSSL's EVP layer
   * does not check the tag in this wolfSSL (CVE-2026-5479). */
  ASSERT_EQ(1, uvq__crypto_chacha_ok());
  uvq__crypto_fill_callbacks(&cb);
  ASSERT_EQ(32, unhex(kKey, key, sizeof(key)));
  ASSERT_EQ(32, unhex(kHp, hpkey, sizeof(hpkey)));
  ASSERT_EQ(12, unhex(kIv, iv, sizeof(iv)));
  ASSERT_EQ(21, unhex(kProtected, want, sizeof(want)));
  hdr[0] = 0x42;
  hdr[1] = 0x00;
  hdr[2] = 0xbf;
  hdr[3] = 0xf4;

  aead.native_handle = (void*) wolfSSL_EVP_chacha20_poly1305();
  aead.max_overhead = 16;
  hp.native_handle = (void*) wolfSSL_EVP_chacha20();
  ASSERT_OK(ngtcp2_crypto_aead_ctx_encrypt_init(&ectx, &aead, key, 12));
  ASSERT_OK(ngtcp2_crypto_aead_ctx_decrypt_init(&dctx, &aead, key, 12));
  hctx.native_handle = wolfSSL_quic_crypt_new(hp.native_handle, hpkey, NULL, 1);
  ASSERT_NOT_NULL(hctx.native_handle);

  nonce_for(nonce, iv, 654360564);
  buf[0] = 0x01;
  ASSERT_OK(cb.encrypt(buf, &aead, &ectx, buf, 1, nonce, 12, hdr, 4));
  ASSERT_MEM_EQ(want + 4, buf, 17);
  ASSERT_OK(cb.hp_mask(mask, &hp, &hctx, buf + 1));
  ASSERT_EQ(want[0], hdr[0] ^ (mask[0] & 0x1f));
  ASSERT_EQ(want[1], hdr[1] ^ mask[1]);
  ASSERT_EQ(want[3], hdr[3] ^ mask[3]);
  ASSERT_OK(cb.decrypt(out, &aead, &dctx, want + 4, 17, nonce, 12, hdr, 4));
  ASSERT_EQ(0x01, out[0]);
  buf[16] ^= 0x01;
  ASSERT_EQ(NGTCP2_ERR_DECRYPT,
            cb.decrypt(out, &aead, &dctx, buf, 17, nonce, 12, hdr, 4));

  ngtcp2_crypto_aead_ctx_free(&ectx);
  ngtcp2_crypto_aead_ctx_free(&dctx);
  wolfSSL_EVP_CIPHER_CTX_free(hctx.native_handle);
  return 0;
}

/* A server frees its TLS object once the handshake is complete (about
 * half an idle connection's memory). What it reported from TLS stays;
 * key updates from either side and data both ways still work; and a TLS
 * message the client sends afterwards, which QUIC never allows (RFC 9001,
 * 6), ends the connection with unexpected_message: CRYPTO_ERROR 0x10a. */
#define KB64 (64 * 1024)

static int client_has_ticket(void* arg) {
  return ((qt_t*) arg)->client.tickets > 0;
}

TEST_IMPL(quic_handshake_server_frees_tls) {
  /* Looks like a TLS KeyUpdate (type 24, length 1, update_requested). */
  static const uint8_t key_update[] = {24, 0, 0, 1, 1};
  const char* alpn;
  size_t alpnlen;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  uvq_quic_conn_stats_t st;
  int64_t id;

  qt_init(&t, "127.0.0.1", 4 * KB64);
  t.server.respond_bytes = 4 * KB64;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  s = qt_server_conn(&t, 0);
  ASSERT_NULL(s->conn->ssl);
  alpn = uvq_quic_conn_alpn(s->conn, &alpnlen);
  ASSERT_NOT_NULL(alpn);
  ASSERT_UINT_EQ(strlen(QT_ALPN), alpnlen);
  ASSERT_OK(memcmp(alpn, QT_ALPN, alpnlen));
  ASSERT_OK(uvq_quic_conn_get_stats(s->conn, &st));
  ASSERT_EQ(0, st.resumed);

  /* A request and its answer, a key update started by the server, then
   * another exchange under the new keys. (Updates started by the client,
   * answered by this server without TLS, are quic_transfer_key_update.) */
  id = qt_open_bidi(c);
  qt_write(c, id, KB64, 1);
  qt_run_until_fins(&t, c, 1);
  qt_assert_stream(c, id, 4 * KB64);
  ASSERT_OK(uvq_quic_conn_update_key(s->conn));
  id = qt_open_bidi(c);
  qt_write(c, id, KB64, 1);
  qt_run_until_fins(&t, c, 2);
  qt_assert_stream(c, id, 4 * KB64);
  qt_assert_stream(s, id, KB64);

  /* Now TLS data from the client, sent for real in a 1-RTT CRYPTO frame
   * (with a stream write to get a packet out). */
  ASSERT_OK(ngtcp2_conn_submit_crypto_data(c->conn->conn,
                                           NGTCP2_ENCRYPTION_LEVEL_1RTT,
                                           key_update, sizeof(key_update)));
  id = qt_open_bidi(c);
  qt_write(c, id, 100, 1);
  qt_run_until_closed(&t, s);
  qt_assert_closed(s, UVQ_QUIC_ERROR_TRANSPORT, 0x100u + 10, 0, NULL);
  qt_run_until_closed(&t, c);
  qt_assert_closed(c, UVQ_QUIC_ERROR_TRANSPORT, 0x100u + 10, 1, NULL);
  qt_teardown(&t);
  return 0;
}

/* tls_ciphersuites: malformed lists are refused; a server limited to one
 * suite still meets a default client; with nothing in common the server's
 * TLS stack fails the handshake with handshake_failure (alert 40), which
 * both sides report as CRYPTO_ERROR 0x128. */
TEST_IMPL(quic_handshake_ciphersuites) {
  static const char* const bad[] = {
    "", ":", "TLS_AES_128_GCM_SHA256:", ":TLS_AES_128_GCM_SHA256",
    "TLS_AES_128_CCM_SHA256", "tls_aes_128_gcm_sha256",
    "TLS_AES_128_GCM_SHA256,TLS_AES_256_GCM_SHA384",
    "ECDHE-RSA-AES128-GCM-SHA256", "TLS13-AES128-GCM-SHA256",
  };
  uvq_quic_endpoint_t* ep;
  uvq_quic_config_t cfg;
  size_t i;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;

  qt_init(&t, "127.0.0.1", 0);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uvq_quic_config_default(&cfg);
    cfg.tls_ciphersuites = bad[i];
    ep = NULL;
    if (uvq_quic_endpoint_new(&t.loop, &cfg, NULL, NULL, &ep) != UV_EINVAL)
      test_fail(__FILE__, __LINE__, "tls_ciphersuites \"%s\" was not refused",
                bad[i]);
    ASSERT_NULL(ep);
  }

  /* The server takes ChaCha20-Poly1305 only; the default client offers it
   * among others. */
  t.server.cfg.tls_ciphersuites = "TLS_CHACHA20_POLY1305_SHA256";
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  qt_teardown(&t);

  qt_init(&t, "127.0.0.1", 0);
  t.server.cfg.tls_ciphersuites = "TLS_AES_256_GCM_SHA384";
  t.client.cfg.tls_ciphersuites =
      "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256";
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_until_closed(&t, c);
  ASSERT_EQ(0, c->handshakes);
  qt_assert_closed(c, UVQ_QUIC_ERROR_TRANSPORT, 0x100u + 40, 1, NULL);
  s = qt_server_conn(&t, 0);
  qt_run_until_closed(&t, s);
  qt_assert_closed(s, UVQ_QUIC_ERROR_TRANSPORT, 0x100u + 40, 0, NULL);
  qt_teardown(&t);
  return 0;
}

/* tls_groups: malformed lists are refused; a server limited to P-256 meets
 * a default client (whose key share is X25519: the server asks for P-256
 * with a HelloRetryRequest); with no group in common the server fails the
 * handshake. wolfSSL 5.5.4 sets no TLS alert for that failure, so both
 * sides report CRYPTO_ERROR 0x100 (alert 0), not handshake_failure. */
TEST_IMPL(quic_handshake_groups) {
  static const char* const bad[] = {
    "", ":", "X25519:", ":P-256", "x25519", "P256", "secp256r1",
    "X25519,P-256", "X448", "FFDHE2048",
  };
  uvq_quic_endpoint_t* ep;
  uvq_quic_config_t cfg;
  size_t i;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;

  qt_init(&t, "127.0.0.1", 0);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    uvq_quic_config_default(&cfg);
    cfg.tls_groups = bad[i];
    ep = NULL;
    if (uvq_quic_endpoint_new(&t.loop, &cfg, NULL, NULL, &ep) != UV_EINVAL)
      test_fail(__FILE__, __LINE__, "tls_groups \"%s\" was not refused",
                bad[i]);
    ASSERT_NULL(ep);
  }

  t.server.cfg.tls_groups = "P-256";
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  ASSERT_OK(uvq_quic_conn_close(c->conn, 0, NULL));
  qt_run_until_closed(&t, c);
  qt_run_until_closed(&t, qt_server_conn(&t, 0));
  qt_teardown(&t);

  qt_init(&t, "127.0.0.1", 0);
  t.server.cfg.tls_groups = "X25519:P-384";
  t.client.cfg.tls_groups = "P-256";
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_until_closed(&t, c);
  ASSERT_EQ(0, c->handshakes);
  qt_assert_closed(c, UVQ_QUIC_ERROR_TRANSPORT, 0x100u, 1, NULL);
  s = qt_server_conn(&t, 0);
  qt_run_until_closed(&t, s);
  qt_assert_closed(s, UVQ_QUIC_ERROR_TRANSPORT, 0x100u, 0, NULL);
  qt_teardown(&t);
  return 0;
}

/* A client endpoint that does not collect session tickets frees its TLS
 * object as soon as the handshake is complete; the ticket the server sends
 * afterwards is dropped, and the connection works as before. */
TEST_IMPL(quic_handshake_client_frees_tls_at_once) {
  qt_t t;
  qt_conn_t* c;
  int64_t id;

  qt_init(&t, "127.0.0.1", 4 * KB64);
  t.server.respond_bytes = 4 * KB64;
  t.client.no_tickets = 1;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  ASSERT_NULL(c->conn->ssl);
  id = qt_open_bidi(c);
  qt_write(c, id, KB64, 1);
  qt_run_until_fins(&t, c, 1);
  qt_assert_stream(c, id, 4 * KB64);
  qt_assert_stream(qt_server_conn(&t, 0), id, KB64);
  ASSERT_EQ(0, t.client.tickets);
  ASSERT_EQ(0, c->closed);
  qt_teardown(&t);
  return 0;
}

/* A client that collects session tickets frees its TLS object after the
 * first one. A later NewSessionTicket (here split across two CRYPTO
 * frames) is dropped without harm; any other TLS message from the server,
 * such as a KeyUpdate, which QUIC forbids, ends the connection with
 * unexpected_message (0x10a). */
TEST_IMPL(quic_handshake_client_frees_tls) {
  /* NewSessionTicket: type 4, 12-byte body (lifetime, age_add, nonce,
   * ticket, extensions: not a usable one, it is never parsed). */
  static const uint8_t ticket[] = {4, 0, 0, 12, 0, 0, 0, 60, 1, 2, 3, 4,
                                   0, 0, 1, 0x77};
  static const uint8_t key_update[] = {24, 0, 0, 1, 0};
  const char* alpn;
  size_t alpnlen;
  qt_t t;
  qt_conn_t* c;
  qt_conn_t* s;
  int64_t id;

  qt_init(&t, "127.0.0.1", 4 * KB64);
  t.server.respond_bytes = KB64;
  qt_start(&t);
  c = qt_connect(&t);
  qt_run_handshake(&t, c);
  qt_run_until(&t, client_has_ticket, &t, QT_WAIT_MS);
  ASSERT_EQ(1, t.client.tickets);
  ASSERT_NULL(c->conn->ssl);
  alpn = uvq_quic_conn_alpn(c->conn, &alpnlen);
  ASSERT_NOT_NULL(alpn);
  ASSERT_UINT_EQ(strlen(QT_ALPN), alpnlen);
  s = qt_server_conn(&t, 0);

  /* A second ticket, in two pieces, with a request and its answer. */
  ASSERT_OK(ngtcp2_conn_submit_crypto_data(s->conn->conn,
                                           NGTCP2_ENCRYPTION_LEVEL_1RTT,
                                           ticket, 6));
  ASSERT_OK(ngtcp2_conn_submit_crypto_data(s->conn->conn,
                                           NGTCP2_ENCRYPTION_LEVEL_1RTT,
                                           ticket + 6, sizeof(ticket) - 6));
  id = qt_open_bidi(c);
  qt_write(c, id, 1000, 1);
  qt_run_until_fins(&t, c, 1);
  qt_assert_stream(c, id, KB64);
  ASSERT_EQ(1, t.client.tickets);
  ASSERT_EQ(0, c->closed);

  /* Then a KeyUpdate. */
  ASSERT_OK(ngtcp2_conn_submit_crypto_data(s->conn->conn,
                                           NGTCP2_ENCRYPTION_LEVEL_1RTT,
                                           key_update, sizeof(key_update)));
  id = qt_open_bidi(c);
  qt_write(c, id, 1000, 1);
  qt_run_until_closed(&t, c);
  qt_assert_closed(c, UVQ_QUIC_ERROR_TRANSPORT, 0x100u + 10, 0, NULL);
  qt_run_until_closed(&t, s);
  qt_assert_closed(s, UVQ_QUIC_ERROR_TRANSPORT, 0x100u + 10, 1, NULL);
  qt_teardown(&t);
  return 0;
}
