/* Keys derived from the endpoint's static_secret: the session ticket key
 * and the stateless reset tokens.
 *
 * Session tickets.
 * wolfSSL's own ticket key is random per TLS context, so a ticket issued
 * by one endpoint cannot be read by another: with workers (endpoints that
 * share a port, uvq_quic_config_t.worker_count) a client that resumes
 * reaches whichever worker its new connection is steered to, and half of
 * the resumptions (and their 0-RTT) would fail over to full handshakes.
 * Deriving the key from static_secret, which the workers of a group share,
 * lets any of them read the tickets of the others, and lets a restarted
 * server given the same secret read the tickets of the one before. */
#include "internal.h"

#include <string.h>

#include <wolfssl/wolfcrypt/chacha20_poly1305.h>
#include <wolfssl/wolfcrypt/hmac.h>
#include <wolfssl/wolfcrypt/sha256.h>

/* HMAC-SHA256(static_secret, label): one key per purpose, so the ticket
 * key says nothing about the stateless reset key, nor either about the
 * Retry token keys that ngtcp2 derives from the same secret. */
static int derive(const uint8_t secret[32], const char* label,
                  uint8_t out[32]) {
  Hmac hmac;
  int rv;

  if (wc_HmacInit(&hmac, NULL, INVALID_DEVID) != 0)
    return -1;
  rv = wc_HmacSetKey(&hmac, WC_SHA256, secret, 32);
  if (rv == 0)
    rv = wc_HmacUpdate(&hmac, (const byte*) label, (word32) strlen(label));
  if (rv == 0)
    rv = wc_HmacFinal(&hmac, out);
  wc_HmacFree(&hmac);
  return rv == 0 ? 0 : -1;
}

/* wolfSSL's ticket callback: enc 1 seals the ticket in place (name, a
 * random nonce, the tag in mac); enc 0 opens one. The name and the nonce
 * are authenticated as associated data. A ticket under another name or
 * with a bad tag is rejected: the client gets a full handshake. */
static int ticket_cb(WOLFSSL* ssl,
                     unsigned char name[WOLFSSL_TICKET_NAME_SZ],
                     unsigned char iv[WOLFSSL_TICKET_IV_SZ],
                     unsigned char mac[WOLFSSL_TICKET_MAC_SZ],
                     int enc,
                     unsigned char* ticket,
                     int len,
                     int* outlen,
                     void* arg) {
  uvq_quic_endpoint_t* ep = arg;
  uint8_t aad[WOLFSSL_TICKET_NAME_SZ + WOLFSSL_TICKET_IV_SZ];

  (void) ssl;
  if (enc) {
    memcpy(name, ep->ticket_name, WOLFSSL_TICKET_NAME_SZ);
    if (uvq__ep_rand(iv, WOLFSSL_TICKET_IV_SZ) != 0)
      return WOLFSSL_TICKET_RET_FATAL;
    memset(mac, 0, WOLFSSL_TICKET_MAC_SZ);
  } else if (memcmp(name, ep->ticket_name, WOLFSSL_TICKET_NAME_SZ) != 0) {
    return WOLFSSL_TICKET_RET_REJECT;
  }
  memcpy(aad, name, WOLFSSL_TICKET_NAME_SZ);
  memcpy(aad + WOLFSSL_TICKET_NAME_SZ, iv, WOLFSSL_TICKET_IV_SZ);
  /* The nonce is the first 12 octets of iv; the tag the first 16 of mac. */
  if (enc) {
    if (wc_ChaCha20Poly1305_Encrypt(ep->ticket_key, iv, aad, sizeof(aad),
                                    ticket, (word32) len, ticket, mac) != 0)
      return WOLFSSL_TICKET_RET_FATAL;
  } else {
    if (wc_ChaCha20Poly1305_Decrypt(ep->ticket_key, iv, aad, sizeof(aad),
                                    ticket, (word32) len, mac, ticket) != 0)
      return WOLFSSL_TICKET_RET_REJECT;
  }
  *outlen = len;
  return WOLFSSL_TICKET_RET_OK;
}

int uvq__tls_ticket_keys(uvq_quic_endpoint_t* ep) {
  uint8_t name[32];

  if (derive(ep->static_secret, "uvq session ticket key", ep->ticket_key) !=
          0 ||
      derive(ep->static_secret, "uvq session ticket name", name) != 0)
    return UV_EIO;
  memcpy(ep->ticket_name, name, sizeof(ep->ticket_name));
  if (wolfSSL_CTX_set_TicketEncCb(ep->server_ctx, ticket_cb) !=
          WOLFSSL_SUCCESS ||
      wolfSSL_CTX_set_TicketEncCtx(ep->server_ctx, ep) != WOLFSSL_SUCCESS)
    return UV_EIO;
  return 0;
}

/* Stateless reset tokens (RFC 9000, 10.3.2): the first 16 bytes of
 * HMAC-SHA256(K, connection ID), K = HMAC-SHA256(static_secret, "uvq
 * stateless reset"). A pseudorandom function of a secret and the ID, as the
 * RFC suggests: the same for every worker of a group and for a restarted
 * server given the same secret, and not computable without the secret from
 * any number of (ID, token) pairs a peer collects.
 *
 * A server connection issues eight IDs, each with a token; ngtcp2's
 * ngtcp2_crypto_generate_stateless_reset_token() spends an HKDF (extract
 * and expand: two HMACs, each hashing its key pads again) on each, about
 * eight SHA-256 blocks. Here the key and its two padded blocks are hashed
 * once per thread and secret, and a token costs the two blocks HMAC cannot
 * do without. The cache holds the last secret used on this thread:
 * endpoints of one thread normally share it (a server's workers, a client
 * and a server of the same application may not, and then it is refilled). */
static _Thread_local struct {
  int filled;
  uint8_t secret[32];
  wc_Sha256 inner;  /* after K ^ ipad */
  wc_Sha256 outer;  /* after K ^ opad */
} sr_key;

static int sr_key_fill(const uint8_t secret[32]) {
  uint8_t k[32];
  uint8_t pad[WC_SHA256_BLOCK_SIZE];
  size_t i;
  int rv;

  sr_key.filled = 0;
  if (derive(secret, "uvq stateless reset", k) != 0)
    return -1;
  rv = wc_InitSha256(&sr_key.inner);
  if (rv == 0)
    rv = wc_InitSha256(&sr_key.outer);
  memset(pad, 0x36, sizeof(pad));
  for (i = 0; i < sizeof(k); i++)
    pad[i] ^= k[i];
  if (rv == 0)
    rv = wc_Sha256Update(&sr_key.inner, pad, sizeof(pad));
  memset(pad, 0x5c, sizeof(pad));
  for (i = 0; i < sizeof(k); i++)
    pad[i] ^= k[i];
  if (rv == 0)
    rv = wc_Sha256Update(&sr_key.outer, pad, sizeof(pad));
  memset(k, 0, sizeof(k));
  memset(pad, 0, sizeof(pad));
  if (rv != 0)
    return -1;
  memcpy(sr_key.secret, secret, sizeof(sr_key.secret));
  sr_key.filled = 1;
  return 0;
}

int uvq__sr_token(const uint8_t secret[32], const uint8_t* cid,
                  size_t cidlen, uint8_t token[16]) {
  uint8_t digest[WC_SHA256_DIGEST_SIZE];
  wc_Sha256 h;
  int rv;

  if (!sr_key.filled || memcmp(sr_key.secret, secret, 32) != 0)
    if (sr_key_fill(secret) != 0)
      return -1;
  rv = wc_Sha256Copy(&sr_key.inner, &h);
  if (rv == 0)
    rv = wc_Sha256Update(&h, cid, (word32) cidlen);
  if (rv == 0)
    rv = wc_Sha256Final(&h, digest);
  wc_Sha256Free(&h);
  if (rv == 0)
    rv = wc_Sha256Copy(&sr_key.outer, &h);
  if (rv == 0)
    rv = wc_Sha256Update(&h, digest, sizeof(digest));
  if (rv == 0)
    rv = wc_Sha256Final(&h, digest);
  wc_Sha256Free(&h);
  if (rv != 0)
    return -1;
  memcpy(token, digest, 16);
  return 0;
}
