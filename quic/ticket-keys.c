/* Session ticket protection keyed by the endpoint's static_secret.
 *
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

/* HMAC-SHA256(static_secret, label): one key per purpose, so the ticket key
 * says nothing about the stateless reset and Retry token keys that ngtcp2
 * derives from the same secret. */
static int derive(const uvq_quic_endpoint_t* ep, const char* label,
                  uint8_t out[32]) {
  Hmac hmac;
  int rv;

  if (wc_HmacInit(&hmac, NULL, INVALID_DEVID) != 0)
    return -1;
  rv = wc_HmacSetKey(&hmac, WC_SHA256, ep->static_secret,
                     sizeof(ep->static_secret));
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

  if (derive(ep, "uvq session ticket key", ep->ticket_key) != 0 ||
      derive(ep, "uvq session ticket name", name) != 0)
    return UV_EIO;
  memcpy(ep->ticket_name, name, sizeof(ep->ticket_name));
  if (wolfSSL_CTX_set_TicketEncCb(ep->server_ctx, ticket_cb) !=
          WOLFSSL_SUCCESS ||
      wolfSSL_CTX_set_TicketEncCtx(ep->server_ctx, ep) != WOLFSSL_SUCCESS)
    return UV_EIO;
  return 0;
}
