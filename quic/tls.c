/* TLS 1.3 for QUIC through wolfSSL and ngtcp2's wolfSSL crypto helper:
 * the contexts an endpoint shares, and the session each connection owns. */
#include "internal.h"

#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <string.h>

/* Turns "h3,uvq-test" into the TLS wire format: length-prefixed names. */
static int alpn_to_wire(const char* list, uint8_t* out, size_t cap,
                        size_t* outlen) {
  const char* p;
  const char* comma;
  size_t len;
  size_t off;

  off = 0;
  for (p = list; *p != '\0'; p = comma + 1) {
    comma = strchr(p, ',');
    if (comma == NULL)
      comma = p + strlen(p);
    len = (size_t) (comma - p);
    if (len == 0 || len > 255 || off + 1 + len > cap)
      return UV_EINVAL;
    out[off++] = (uint8_t) len;
    memcpy(out + off, p, len);
    off += len;
    if (*comma == '\0')
      break;
  }
  if (off == 0)
    return UV_EINVAL;
  *outlen = off;
  return 0;
}

/* Server: the first of our protocols, in our order, that the client
 * offers. QUIC requires ALPN: with no match the handshake fails with
 * no_application_protocol (RFC 9001, 8.1). */
static int alpn_select(WOLFSSL* ssl,
                       const unsigned char** out,
                       unsigned char* outlen,
                       const unsigned char* in,
                       unsigned int inlen,
                       void* arg) {
  uvq_quic_endpoint_t* ep;
  size_t i;
  unsigned int j;

  (void) ssl;
  ep = arg;
  for (i = 0; i < ep->alpn_wirelen; i += 1 + ep->alpn_wire[i]) {
    for (j = 0; j < inlen; j += 1u + in[j]) {
      if (j + 1u + in[j] > inlen)
        break;
      if (in[j] == ep->alpn_wire[i] &&
          memcmp(in + j + 1, ep->alpn_wire + i + 1, in[j]) == 0) {
        *out = in + j + 1;
        *outlen = in[j];
        return SSL_TLSEXT_ERR_OK;
      }
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void keylog_line(const WOLFSSL* ssl, const char* line) {
  ngtcp2_crypto_conn_ref* ref;
  uvq_quic_conn_t* c;

  ref = wolfSSL_get_app_data(ssl);
  if (ref == NULL)
    return;
  c = ref->user_data;
  if (c->ep->keylog != NULL) {
    fprintf(c->ep->keylog, "%s\n", line);
    fflush(c->ep->keylog);
  }
}

int uvq__tls_endpoint_init(uvq_quic_endpoint_t* ep) {
  const uvq_quic_config_t* cfg;
  int err;

  cfg = &ep->cfg;
  err = alpn_to_wire(cfg->alpn ? cfg->alpn : "h3", ep->alpn_wire,
                     sizeof(ep->alpn_wire), &ep->alpn_wirelen);
  if (err)
    return err;

  if (cfg->keylog_file != NULL) {
    ep->keylog = fopen(cfg->keylog_file, "a");
    if (ep->keylog == NULL)
      return UV_EIO;
  }

  if (cfg->cert_file != NULL || cfg->key_file != NULL) {
    if (cfg->cert_file == NULL || cfg->key_file == NULL)
      return UV_EINVAL;
    ep->server_ctx = wolfSSL_CTX_new(wolfTLSv1_3_server_method());
    if (ep->server_ctx == NULL)
      return UV_ENOMEM;
    if (ngtcp2_crypto_wolfssl_configure_server_context(ep->server_ctx) != 0)
      return UV_EIO;
    if (wolfSSL_CTX_use_certificate_chain_file(ep->server_ctx,
                                               cfg->cert_file) !=
            WOLFSSL_SUCCESS ||
        wolfSSL_CTX_use_PrivateKey_file(ep->server_ctx, cfg->key_file,
                                        WOLFSSL_FILETYPE_PEM) !=
            WOLFSSL_SUCCESS ||
        wolfSSL_CTX_check_private_key(ep->server_ctx) != WOLFSSL_SUCCESS)
      return UV_EIO;
    wolfSSL_CTX_set_alpn_select_cb(ep->server_ctx, alpn_select, ep);
    if (ep->keylog != NULL)
      wolfSSL_CTX_set_keylog_callback(ep->server_ctx, keylog_line);
  }

  ep->client_ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
  if (ep->client_ctx == NULL)
    return UV_ENOMEM;
  if (ngtcp2_crypto_wolfssl_configure_client_context(ep->client_ctx) != 0)
    return UV_EIO;
  if (cfg->insecure_skip_verify) {
    wolfSSL_CTX_set_verify(ep->client_ctx, WOLFSSL_VERIFY_NONE, NULL);
  } else {
    /* Without a CA file, the system's trust store. */
    if (wolfSSL_CTX_load_verify_locations(
            ep->client_ctx, cfg->ca_file,
            cfg->ca_file ? NULL : "/etc/ssl/certs") != WOLFSSL_SUCCESS &&
        cfg->ca_file != NULL)
      return UV_EIO;
    wolfSSL_CTX_set_verify(ep->client_ctx, WOLFSSL_VERIFY_PEER, NULL);
  }
  if (ep->keylog != NULL)
    wolfSSL_CTX_set_keylog_callback(ep->client_ctx, keylog_line);
  return 0;
}

void uvq__tls_endpoint_free(uvq_quic_endpoint_t* ep) {
  if (ep->server_ctx != NULL)
    wolfSSL_CTX_free(ep->server_ctx);
  if (ep->client_ctx != NULL)
    wolfSSL_CTX_free(ep->client_ctx);
  ep->server_ctx = NULL;
  ep->client_ctx = NULL;
  if (ep->keylog != NULL)
    fclose(ep->keylog);
  ep->keylog = NULL;
}

int uvq__tls_conn_init(uvq_quic_conn_t* c, const char* server_name) {
  uvq_quic_endpoint_t* ep;

  ep = c->ep;
  c->ssl = wolfSSL_new(c->is_server ? ep->server_ctx : ep->client_ctx);
  if (c->ssl == NULL)
    return UV_ENOMEM;
  wolfSSL_set_app_data(c->ssl, &c->conn_ref);
  /* RFC 9001's transport parameters codepoint, not the draft one. */
  wolfSSL_set_quic_use_legacy_codepoint(c->ssl, 0);
  if (c->is_server) {
    wolfSSL_set_accept_state(c->ssl);
  } else {
    wolfSSL_set_connect_state(c->ssl);
    /* OpenSSL convention: 0 is success. */
    if (wolfSSL_set_alpn_protos(c->ssl, ep->alpn_wire,
                                (unsigned int) ep->alpn_wirelen) != 0)
      return UV_EINVAL;
    if (server_name != NULL && *server_name != '\0') {
      if (wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, server_name,
                         (unsigned short) strlen(server_name)) !=
          WOLFSSL_SUCCESS)
        return UV_EINVAL;
      if (!ep->cfg.insecure_skip_verify &&
          wolfSSL_check_domain_name(c->ssl, server_name) != WOLFSSL_SUCCESS)
        return UV_EINVAL;
    }
  }
  ngtcp2_conn_set_tls_native_handle(c->conn, c->ssl);
  return 0;
}

void uvq__tls_conn_free(uvq_quic_conn_t* c) {
  if (c->ssl != NULL) {
    wolfSSL_set_app_data(c->ssl, NULL);
    wolfSSL_free(c->ssl);
  }
  c->ssl = NULL;
}
