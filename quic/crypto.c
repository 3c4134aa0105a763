/* Per-packet packet protection: the encrypt, decrypt and hp_mask callbacks.
 *
 * ngtcp2's wolfSSL crypto helper derives and installs every key; this file
 * only replaces what runs per packet. Two reasons:
 *
 *  - Correctness. The helper opens packets through wolfSSL's EVP layer, and
 *    in wolfSSL before the fix for CVE-2026-5479 (the 5.5.4 that Debian 12
 *    ships among them) EVP ChaCha20-Poly1305 decryption never compares the
 *    tag: a forged or altered packet is accepted. uvq opens ChaCha20-
 *    Poly1305 packets with wolfCrypt's one-shot function, which checks it.
 *  - Speed. The EVP path costs a streaming GCM init, two updates, a final
 *    and a tag query per packet, and an EVP init per header protection
 *    mask. The key schedule the helper's EVP contexts hold is all a packet
 *    needs: one-shot AES-GCM and a single AES block on it measured 288
 *    against 352 ns for a 1200-byte packet, and 17 ns for a mask.
 *
 * The EVP context's layout is wolfSSL's public struct, fixed by the
 * options.h it was built with; still nothing is taken on faith. The first
 * use runs a self-test (seal, open, forged tag and data, mask; both AES key
 * sizes and ChaCha20-Poly1305) against the helper's own results. If the
 * AES part fails, AES packets go through the helper. If the ChaCha20 part
 * fails, the helper cannot be trusted with it either, so the TLS contexts
 * stop offering ChaCha20-Poly1305 suites (uvq__crypto_chacha_ok()).
 *
 * One key derivation is replaced too: the next 1-RTT keys, which ngtcp2
 * asks for as soon as the handshake is confirmed and again after each key
 * update (the update_key callback), are derived here and their cipher
 * contexts built only when a packet first needs them (see lazy_aead). */
#include "internal.h"

#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <wolfssl/openssl/evp.h>
#include <wolfssl/quic.h>
#include <wolfssl/wolfcrypt/aes.h>
#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/error-crypt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define GCM_TAGLEN 16
#define GCM_NONCELEN 12

static uv_once_t fast_once = UV_ONCE_INIT;
static int fast_ok;    /* AES-GCM: 1 once the self-test passed */
static int chacha_ok;  /* ChaCha20-Poly1305: likewise */

static Aes* aes_of(const void* native_handle) {
  return &((WOLFSSL_EVP_CIPHER_CTX*) native_handle)->cipher.aes;
}

/* wolfSSL's cipher descriptors, looked up once (self_test) rather than
 * through five library calls per packet. */
static const void* evp_aes128_gcm;
static const void* evp_aes256_gcm;
static const void* evp_chacha20_poly1305;
static const void* evp_aes128_ctr;
static const void* evp_aes256_ctr;

static int is_gcm(const ngtcp2_crypto_aead* aead) {
  return aead->native_handle == evp_aes128_gcm ||
         aead->native_handle == evp_aes256_gcm;
}

static int is_chacha(const ngtcp2_crypto_aead* aead) {
  return aead->native_handle == evp_chacha20_poly1305;
}

static int is_ctr(const ngtcp2_crypto_cipher* hp) {
  return hp->native_handle == evp_aes128_ctr ||
         hp->native_handle == evp_aes256_ctr;
}

static int seal(uint8_t* dest, const ngtcp2_crypto_aead_ctx* ctx,
                const uint8_t* in, size_t inlen, const uint8_t* nonce,
                const uint8_t* aad, size_t aadlen) {
  if (inlen > UINT32_MAX || aadlen > UINT32_MAX)
    return -1;
  return wc_AesGcmEncrypt(aes_of(ctx->native_handle), dest, in,
                          (word32) inlen, nonce, GCM_NONCELEN,
                          dest + inlen, GCM_TAGLEN, aad, (word32) aadlen)
             == 0 ? 0 : -1;
}

static int open_(uint8_t* dest, const ngtcp2_crypto_aead_ctx* ctx,
                 const uint8_t* in, size_t inlen, const uint8_t* nonce,
                 const uint8_t* aad, size_t aadlen) {
  size_t len;

  if (inlen < GCM_TAGLEN || inlen > UINT32_MAX || aadlen > UINT32_MAX)
    return -1;
  len = inlen - GCM_TAGLEN;
  return wc_AesGcmDecrypt(aes_of(ctx->native_handle), dest, in, (word32) len,
                          nonce, GCM_NONCELEN, in + len, GCM_TAGLEN, aad,
                          (word32) aadlen) == 0 ? 0 : -1;
}

/* wolfSSL's EVP layer keeps its own copy of a ChaCha20-Poly1305 key. */
static const uint8_t* chacha_key_of(const ngtcp2_crypto_aead_ctx* ctx) {
  return ((WOLFSSL_EVP_CIPHER_CTX*) ctx->native_handle)->key;
}

static int chacha_seal(uint8_t* dest, const ngtcp2_crypto_aead_ctx* ctx,
                       const uint8_t* in, size_t inlen, const uint8_t* nonce,
                       const uint8_t* aad, size_t aadlen) {
  const uint8_t* key;

  key = chacha_key_of(ctx);
  if (key == NULL || inlen > UINT32_MAX || aadlen > UINT32_MAX)
    return -1;
  return wc_ChaCha20Poly1305_Encrypt(key, nonce, aad, (word32) aadlen, in,
                                     (word32) inlen, dest, dest + inlen)
             == 0 ? 0 : -1;
}

static int chacha_open(uint8_t* dest, const ngtcp2_crypto_aead_ctx* ctx,
                       const uint8_t* in, size_t inlen, const uint8_t* nonce,
                       const uint8_t* aad, size_t aadlen) {
  const uint8_t* key;
  size_t len;

  key = chacha_key_of(ctx);
  if (key == NULL || inlen < CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE ||
      inlen > UINT32_MAX || aadlen > UINT32_MAX)
    return -1;
  len = inlen - CHACHA20_POLY1305_AEAD_AUTHTAG_SIZE;
  return wc_ChaCha20Poly1305_Decrypt(key, nonce, aad, (word32) aadlen, in,
                                     (word32) len, in + len, dest)
             == 0 ? 0 : -1;
}

static int mask(uint8_t* dest, const ngtcp2_crypto_cipher_ctx* ctx,
                const uint8_t* sample) {
#ifdef WOLFSSL_AES_DIRECT
  uint8_t block[AES_BLOCK_SIZE];

  /* AES-CTR with the sample as counter block, over five zero bytes, is the
   * first five bytes of AES(sample): RFC 9001, 5.4.3. */
  if (wc_AesEncryptDirect(aes_of(ctx->native_handle), block, sample) != 0)
    return -1;
  memcpy(dest, block, NGTCP2_HP_MASKLEN);
  return 0;
#else
  (void) dest;
  (void) ctx;
  (void) sample;
  return -1;  /* fails the self-test: the helper does every packet */
#endif
}

/* One key size: the helper's contexts, used both ways, must agree. */
static int self_test_one(const WOLFSSL_EVP_CIPHER* gcm,
                         const WOLFSSL_EVP_CIPHER* ctr, size_t keylen) {
  static const uint8_t nonce[GCM_NONCELEN] = {0xa5, 1, 2, 3, 4, 5,
                                              6, 7, 8, 9, 10, 0x5a};
  uint8_t key[32], aad[21], plain[1337], a[sizeof(plain) + GCM_TAGLEN];
  uint8_t b[sizeof(a)], out[sizeof(plain)], sample[16], m1[16], m2[16];
  ngtcp2_crypto_aead aead;
  ngtcp2_crypto_cipher hp;
  ngtcp2_crypto_aead_ctx ectx, dctx;
  ngtcp2_crypto_cipher_ctx hctx;
  size_t i;
  int ok;

  for (i = 0; i < sizeof(key); i++)
    key[i] = (uint8_t) (i * 29 + 3);
  for (i = 0; i < sizeof(aad); i++)
    aad[i] = (uint8_t) (i * 7 + 1);
  for (i = 0; i < sizeof(plain); i++)
    plain[i] = (uint8_t) (i * 131 + 17);
  for (i = 0; i < sizeof(sample); i++)
    sample[i] = (uint8_t) (0xf0 - i * 3);
  aead.native_handle = (void*) gcm;
  aead.max_overhead = GCM_TAGLEN;
  hp.native_handle = (void*) ctr;
  if (keylen != ngtcp2_crypto_aead_keylen(&aead))
    return 0;
  if (ngtcp2_crypto_aead_ctx_encrypt_init(&ectx, &aead, key, GCM_NONCELEN))
    return 0;
  if (ngtcp2_crypto_aead_ctx_decrypt_init(&dctx, &aead, key, GCM_NONCELEN)) {
    ngtcp2_crypto_aead_ctx_free(&ectx);
    return 0;
  }
  /* The helper makes header protection contexts this way (its function
   * for it is not exported). */
  hctx.native_handle = wolfSSL_quic_crypt_new(ctr, key, NULL, 1);
  if (hctx.native_handle == NULL) {
    ngtcp2_crypto_aead_ctx_free(&ectx);
    ngtcp2_crypto_aead_ctx_free(&dctx);
    return 0;
  }
  memset(m1, 0, sizeof(m1));
  memset(m2, 0, sizeof(m2));
  ok = ngtcp2_crypto_encrypt(a, &aead, &ectx, plain, sizeof(plain), nonce,
                             sizeof(nonce), aad, sizeof(aad)) == 0 &&
       seal(b, &ectx, plain, sizeof(plain), nonce, aad, sizeof(aad)) == 0 &&
       memcmp(a, b, sizeof(a)) == 0 &&
       /* in place, as ngtcp2 seals */
       (memcpy(b, plain, sizeof(plain)),
        seal(b, &ectx, b, sizeof(plain), nonce, aad, sizeof(aad)) == 0) &&
       memcmp(a, b, sizeof(a)) == 0 &&
       open_(out, &dctx, a, sizeof(a), nonce, aad, sizeof(aad)) == 0 &&
       memcmp(out, plain, sizeof(plain)) == 0 &&
       (a[sizeof(a) - 1] ^= 1,
        open_(out, &dctx, a, sizeof(a), nonce, aad, sizeof(aad)) != 0) &&
       ngtcp2_crypto_decrypt(out, &aead, &dctx, a, sizeof(a), nonce,
                             sizeof(nonce), aad, sizeof(aad)) != 0 &&
       open_(out, &dctx, a, GCM_TAGLEN - 1, nonce, aad, sizeof(aad)) != 0 &&
       ngtcp2_crypto_hp_mask(m1, &hp, &hctx, sample) == 0 &&
       mask(m2, &hctx, sample) == 0 &&
       memcmp(m1, m2, NGTCP2_HP_MASKLEN) == 0;
  ngtcp2_crypto_aead_ctx_free(&ectx);
  ngtcp2_crypto_aead_ctx_free(&dctx);
  wolfSSL_EVP_CIPHER_CTX_free(hctx.native_handle);
  return ok;
}

/* ChaCha20-Poly1305: uvq's seal must match the helper's, and uvq's open
 * must take what was sealed and refuse any change to it. The helper's
 * open is not consulted: it is what this exists to avoid. */
static int self_test_chacha(void) {
  static const uint8_t nonce[12] = {0x3c, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xc3};
  uint8_t key[32], aad[19], plain[777], a[sizeof(plain) + 16];
  uint8_t b[sizeof(a)], out[sizeof(plain)];
  ngtcp2_crypto_aead aead;
  ngtcp2_crypto_aead_ctx ectx, dctx;
  size_t i;
  int ok;

  for (i = 0; i < sizeof(key); i++)
    key[i] = (uint8_t) (i * 13 + 5);
  for (i = 0; i < sizeof(aad); i++)
    aad[i] = (uint8_t) (i * 11 + 2);
  for (i = 0; i < sizeof(plain); i++)
    plain[i] = (uint8_t) (i * 97 + 31);
  aead.native_handle = (void*) wolfSSL_EVP_chacha20_poly1305();
  aead.max_overhead = 16;
  if (ngtcp2_crypto_aead_ctx_encrypt_init(&ectx, &aead, key, sizeof(nonce)))
    return 0;
  if (ngtcp2_crypto_aead_ctx_decrypt_init(&dctx, &aead, key, sizeof(nonce))) {
    ngtcp2_crypto_aead_ctx_free(&ectx);
    return 0;
  }
  ok = ngtcp2_crypto_encrypt(a, &aead, &ectx, plain, sizeof(plain), nonce,
                             sizeof(nonce), aad, sizeof(aad)) == 0 &&
       (memcpy(b, plain, sizeof(plain)),
        chacha_seal(b, &ectx, b, sizeof(plain), nonce, aad, sizeof(aad))
            == 0) &&
       memcmp(a, b, sizeof(a)) == 0 &&
       chacha_open(out, &dctx, a, sizeof(a), nonce, aad, sizeof(aad)) == 0 &&
       memcmp(out, plain, sizeof(plain)) == 0 &&
       (a[sizeof(a) - 1] ^= 1,
        chacha_open(out, &dctx, a, sizeof(a), nonce, aad, sizeof(aad))
            != 0) &&
       (a[sizeof(a) - 1] ^= 1, a[5] ^= 0x40,
        chacha_open(out, &dctx, a, sizeof(a), nonce, aad, sizeof(aad))
            != 0) &&
       (a[5] ^= 0x40, aad[0] ^= 1,
        chacha_open(out, &dctx, a, sizeof(a), nonce, aad, sizeof(aad))
            != 0) &&
       chacha_open(out, &dctx, a, 15, nonce, aad, sizeof(aad)) != 0;
  ngtcp2_crypto_aead_ctx_free(&ectx);
  ngtcp2_crypto_aead_ctx_free(&dctx);
  return ok;
}

static void self_test(void) {
  evp_aes128_gcm = wolfSSL_EVP_aes_128_gcm();
  evp_aes256_gcm = wolfSSL_EVP_aes_256_gcm();
  evp_chacha20_poly1305 = wolfSSL_EVP_chacha20_poly1305();
  evp_aes128_ctr = wolfSSL_EVP_aes_128_ctr();
  evp_aes256_ctr = wolfSSL_EVP_aes_256_ctr();
  fast_ok = self_test_one(wolfSSL_EVP_aes_128_gcm(),
                          wolfSSL_EVP_aes_128_ctr(), 16) &&
            self_test_one(wolfSSL_EVP_aes_256_gcm(),
                          wolfSSL_EVP_aes_256_ctr(), 32);
  chacha_ok = self_test_chacha();
}

int uvq__crypto_fast_path(void) {
  uv_once(&fast_once, self_test);
  return fast_ok;
}

int uvq__crypto_chacha_ok(void) {
  uv_once(&fast_once, self_test);
  return chacha_ok;
}

/* ---- the next 1-RTT keys, built at first use ---------------------------- */

/* ngtcp2 keeps the keys of the next key phase ready so that it can open a
 * peer's first packet after a key update at once. The helper builds a
 * wolfSSL cipher context for each of the two (AES key schedule and GHASH
 * table: about 1.3 KB with its allocation), and most connections never
 * update their keys. uvq keeps the key instead and builds the context when
 * the first packet in the new phase is sealed or opened.
 *
 * Such a context's native_handle is the address of its lazy_aead with the
 * low bit set (malloc'd records are at least 2-aligned); the helper's own
 * contexts are wolfSSL objects with the bit clear. ngtcp2 hands these
 * handles only to the encrypt, decrypt and delete_crypto_aead_ctx
 * callbacks, all three of which are uvq's. */
struct lazy_aead {
  ngtcp2_crypto_aead_ctx real;  /* native_handle NULL until first use */
  ngtcp2_crypto_aead aead;
  size_t ivlen;
  int encrypt;
  uint8_t key[32];
};

static void wipe(void* p, size_t n) {
  volatile uint8_t* v = p;

  while (n-- > 0)
    *v++ = 0;
}

static struct lazy_aead* lazy_of(const ngtcp2_crypto_aead_ctx* ctx) {
  uintptr_t h = (uintptr_t) ctx->native_handle;

  return (h & 1) ? (struct lazy_aead*) (h - 1) : NULL;
}

/* The context to use for ctx: ctx itself, or a lazy context's real one,
 * built now if this is its first packet. NULL if it cannot be built. */
static const ngtcp2_crypto_aead_ctx* resolve(
    const ngtcp2_crypto_aead_ctx* ctx) {
  struct lazy_aead* l;
  int rv;

  l = lazy_of(ctx);
  if (l == NULL)
    return ctx;
  if (l->real.native_handle == NULL) {
    rv = l->encrypt ? ngtcp2_crypto_aead_ctx_encrypt_init(&l->real, &l->aead,
                                                          l->key, l->ivlen)
                    : ngtcp2_crypto_aead_ctx_decrypt_init(&l->real, &l->aead,
                                                          l->key, l->ivlen);
    if (rv != 0) {
      l->real.native_handle = NULL;
      return NULL;
    }
    wipe(l->key, sizeof(l->key));
  }
  return &l->real;
}

int uvq__hkdf_expand_label(uint8_t* dest, size_t destlen,
                           const ngtcp2_crypto_md* md, const uint8_t* secret,
                           size_t secretlen, const char* label) {
  uint8_t info[2 + 1 + 6 + 16 + 1];
  size_t n, i;

  n = strlen(label);
  if (n > 16 || destlen > UINT16_MAX)
    return -1;
  i = 0;
  info[i++] = (uint8_t) (destlen >> 8);
  info[i++] = (uint8_t) destlen;
  info[i++] = (uint8_t) (6 + n);
  memcpy(info + i, "tls13 ", 6);
  i += 6;
  memcpy(info + i, label, n);
  i += n;
  info[i++] = 0;
  return ngtcp2_crypto_hkdf_expand(dest, destlen, md, secret, secretlen, info,
                                   i);
}

/* One direction of a key update (RFC 9001, 6; RFC 9369, 3.3.2 for the
 * version 2 labels): the next secret from the current one, then its key
 * and IV. The key goes into a new lazy_aead installed in ctx. */
static int next_key(ngtcp2_crypto_aead_ctx* ctx, uint8_t* secret,
                    uint8_t* iv, const uint8_t* current, size_t secretlen,
                    const ngtcp2_crypto_ctx* cc, int v2, int encrypt) {
  struct lazy_aead* l;
  size_t keylen;

  keylen = ngtcp2_crypto_aead_keylen(&cc->aead);
  l = calloc(1, sizeof(*l));
  if (l == NULL)
    return -1;
  l->aead = cc->aead;
  l->ivlen = ngtcp2_crypto_packet_protection_ivlen(&cc->aead);
  l->encrypt = encrypt;
  if (keylen > sizeof(l->key) ||
      uvq__hkdf_expand_label(secret, secretlen, &cc->md, current, secretlen,
                   v2 ? "quicv2 ku" : "quic ku") != 0 ||
      uvq__hkdf_expand_label(l->key, keylen, &cc->md, secret, secretlen,
                   v2 ? "quicv2 key" : "quic key") != 0 ||
      uvq__hkdf_expand_label(iv, l->ivlen, &cc->md, secret, secretlen,
                   v2 ? "quicv2 iv" : "quic iv") != 0) {
    wipe(l->key, sizeof(l->key));
    free(l);
    return -1;
  }
  ctx->native_handle = (void*) ((uintptr_t) l | 1);
  return 0;
}

static void lazy_free(struct lazy_aead* l) {
  if (l->real.native_handle != NULL)
    ngtcp2_crypto_aead_ctx_free(&l->real);
  wipe(l->key, sizeof(l->key));
  free(l);
}

static int cb_update_key(ngtcp2_conn* conn, uint8_t* rx_secret,
                         uint8_t* tx_secret,
                         ngtcp2_crypto_aead_ctx* rx_aead_ctx, uint8_t* rx_iv,
                         ngtcp2_crypto_aead_ctx* tx_aead_ctx, uint8_t* tx_iv,
                         const uint8_t* current_rx_secret,
                         const uint8_t* current_tx_secret, size_t secretlen,
                         void* user_data) {
  const ngtcp2_crypto_ctx* cc;
  int v2;

  (void) user_data;
  cc = ngtcp2_conn_get_crypto_ctx(conn);
  v2 = ngtcp2_conn_get_negotiated_version(conn) == NGTCP2_PROTO_VER_V2;
  if (next_key(rx_aead_ctx, rx_secret, rx_iv, current_rx_secret, secretlen,
               cc, v2, 0) != 0)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (next_key(tx_aead_ctx, tx_secret, tx_iv, current_tx_secret, secretlen,
               cc, v2, 1) != 0) {
    lazy_free(lazy_of(rx_aead_ctx));
    rx_aead_ctx->native_handle = NULL;
    return NGTCP2_ERR_CALLBACK_FAILURE;
  }
  return 0;
}

static void cb_delete_aead_ctx(ngtcp2_conn* conn,
                               ngtcp2_crypto_aead_ctx* aead_ctx,
                               void* user_data) {
  struct lazy_aead* l;

  (void) conn;
  (void) user_data;
  l = lazy_of(aead_ctx);
  if (l != NULL) {
    lazy_free(l);
    aead_ctx->native_handle = NULL;
  } else {
    ngtcp2_crypto_aead_ctx_free(aead_ctx);
  }
}

static int cb_encrypt(uint8_t* dest, const ngtcp2_crypto_aead* aead,
                      const ngtcp2_crypto_aead_ctx* aead_ctx,
                      const uint8_t* plaintext, size_t plaintextlen,
                      const uint8_t* nonce, size_t noncelen,
                      const uint8_t* aad, size_t aadlen) {
  int rv;

  if (noncelen != GCM_NONCELEN)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  aead_ctx = resolve(aead_ctx);
  if (aead_ctx == NULL)
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (fast_ok && is_gcm(aead))
    rv = seal(dest, aead_ctx, plaintext, plaintextlen, nonce, aad, aadlen);
  else if (chacha_ok && is_chacha(aead))
    rv = chacha_seal(dest, aead_ctx, plaintext, plaintextlen, nonce, aad,
                     aadlen);
  else if (!is_chacha(aead))
    return ngtcp2_crypto_encrypt_cb(dest, aead, aead_ctx, plaintext,
                                    plaintextlen, nonce, noncelen, aad,
                                    aadlen);
  else
    rv = -1;  /* never offered without chacha_ok (tls.c) */
  return rv == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int cb_decrypt(uint8_t* dest, const ngtcp2_crypto_aead* aead,
                      const ngtcp2_crypto_aead_ctx* aead_ctx,
                      const uint8_t* ciphertext, size_t ciphertextlen,
                      const uint8_t* nonce, size_t noncelen,
                      const uint8_t* aad, size_t aadlen) {
  int rv;

  if (noncelen != GCM_NONCELEN)
    return NGTCP2_ERR_DECRYPT;
  aead_ctx = resolve(aead_ctx);
  if (aead_ctx == NULL)  /* out of memory: not the packet's fault */
    return NGTCP2_ERR_CALLBACK_FAILURE;
  if (fast_ok && is_gcm(aead))
    rv = open_(dest, aead_ctx, ciphertext, ciphertextlen, nonce, aad, aadlen);
  else if (chacha_ok && is_chacha(aead))
    rv = chacha_open(dest, aead_ctx, ciphertext, ciphertextlen, nonce, aad,
                     aadlen);
  else if (!is_chacha(aead))  /* the helper checks AES-GCM tags */
    return ngtcp2_crypto_decrypt_cb(dest, aead, aead_ctx, ciphertext,
                                    ciphertextlen, nonce, noncelen, aad,
                                    aadlen);
  else
    rv = -1;  /* the helper would not check the tag */
  return rv == 0 ? 0 : NGTCP2_ERR_DECRYPT;
}

static int cb_hp_mask(uint8_t* dest, const ngtcp2_crypto_cipher* hp,
                      const ngtcp2_crypto_cipher_ctx* hp_ctx,
                      const uint8_t* sample) {
  if (!fast_ok || !is_ctr(hp))
    return ngtcp2_crypto_hp_mask_cb(dest, hp, hp_ctx, sample);
  if (mask(dest, hp_ctx, sample))
    return NGTCP2_ERR_CALLBACK_FAILURE;
  return 0;
}

void uvq__crypto_fill_callbacks(ngtcp2_callbacks* cb) {
  uv_once(&fast_once, self_test);
  cb->encrypt = cb_encrypt;
  cb->decrypt = cb_decrypt;
  cb->hp_mask = cb_hp_mask;
  cb->update_key = cb_update_key;
  cb->delete_crypto_aead_ctx = cb_delete_aead_ctx;
}
