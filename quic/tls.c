/* TLS 1.3 for QUIC through wolfSSL and ngtcp2's wolfSSL crypto helper:
 * the contexts an endpoint shares, and the session each connection owns. */
#include "internal.h"

#include <ngtcp2/ngtcp2_crypto_wolfssl.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
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

/* Session tickets, as uvq hands them to the application: the TLS session
 * and the server's transport parameters that 0-RTT must respect
 * (RFC 9000, 7.4.1), in one opaque blob:
 *   "uvq1" | u32 session length | session | u32 params length | params. */
#define UVQ__TICKET_MAGIC "uvq1"

static void put32(uint8_t* p, uint32_t v) {
  p[0] = (uint8_t) (v >> 24);
  p[1] = (uint8_t) (v >> 16);
  p[2] = (uint8_t) (v >> 8);
  p[3] = (uint8_t) v;
}

static uint32_t get32(const uint8_t* p) {
  return ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) |
         ((uint32_t) p[2] << 8) | p[3];
}

static int new_session(WOLFSSL* ssl, WOLFSSL_SESSION* session) {
  ngtcp2_crypto_conn_ref* ref;
  uvq_quic_conn_t* c;
  uint8_t params[256];
  uint8_t* blob;
  uint8_t* p;
  ngtcp2_ssize plen;
  int slen;
  size_t len;

  ref = wolfSSL_get_app_data(ssl);
  if (ref == NULL)
    return 0;
  c = ref->user_data;
  if (c->ep->cb.session_ticket == NULL)
    return 0;
  slen = wolfSSL_i2d_SSL_SESSION(session, NULL);
  plen = ngtcp2_conn_encode_0rtt_transport_params(c->conn, params,
                                                  sizeof(params));
  if (slen <= 0 || plen < 0)
    return 0;
  len = 4 + 4 + (size_t) slen + 4 + (size_t) plen;
  blob = malloc(len);
  if (blob == NULL)
    return 0;
  memcpy(blob, UVQ__TICKET_MAGIC, 4);
  put32(blob + 4, (uint32_t) slen);
  p = blob + 8;
  wolfSSL_i2d_SSL_SESSION(session, &p);
  put32(blob + 8 + slen, (uint32_t) plen);
  memcpy(blob + 12 + slen, params, (size_t) plen);
  c->ep->cb.session_ticket(c, blob, len);
  free(blob);
  c->ticket_seen = 1;
  return 0; /* the session was not kept */
}

/* Resumes from a ticket blob: the TLS session for the handshake, and the
 * remembered transport parameters so that 0-RTT data can be sent at once.
 * A blob that does not parse is ignored: the handshake is then a full one,
 * which is always safe. */
static void resume(uvq_quic_conn_t* c, const uint8_t* blob, size_t len) {
  WOLFSSL_SESSION* session;
  const unsigned char* p;
  uint32_t slen;
  uint32_t plen;

  if (len < 12 || memcmp(blob, UVQ__TICKET_MAGIC, 4) != 0)
    return;
  slen = get32(blob + 4);
  if (slen > len - 12)
    return;
  plen = get32(blob + 8 + slen);
  if (plen != len - 12 - slen)
    return;
  p = blob + 8;
  session = wolfSSL_d2i_SSL_SESSION(NULL, &p, (long) slen);
  if (session == NULL)
    return;
  /* A QUIC ticket allows 0-RTT only with max_early_data_size 0xffffffff
   * (RFC 9001, 4.6.1); anything else resumes without it. */
  if (wolfSSL_set_session(c->ssl, session) == WOLFSSL_SUCCESS &&
      wolfSSL_SESSION_get_max_early_data(session) == UINT32_MAX &&
      ngtcp2_conn_decode_and_set_0rtt_transport_params(
          c->conn, blob + 12 + slen, plen) == 0) {
    wolfSSL_set_quic_early_data_enabled(c->ssl, 1);
    c->zero_rtt = UVQ_QUIC_0RTT_SENT;
  }
  wolfSSL_SESSION_free(session);
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

/* The TLS 1.3 suites uvq can protect packets with: IANA name, wolfSSL's
 * name for it. */
static const struct {
  const char* iana;
  const char* wolfssl;
  int chacha;
} suites[] = {
  {"TLS_AES_128_GCM_SHA256", "TLS13-AES128-GCM-SHA256", 0},
  {"TLS_AES_256_GCM_SHA384", "TLS13-AES256-GCM-SHA384", 0},
  {"TLS_CHACHA20_POLY1305_SHA256", "TLS13-CHACHA20-POLY1305-SHA256", 1},
};

/* Appends suite i's wolfSSL name to the list in out. */
static int append_suite(char* out, size_t cap, size_t* used, size_t i) {
  size_t n;

  n = strlen(suites[i].wolfssl);
  if (*used + n + 2 > cap)
    return UV_EINVAL;
  if (*used > 0)
    out[(*used)++] = ':';
  memcpy(out + *used, suites[i].wolfssl, n + 1);
  *used += n;
  return 0;
}

/* Turns the configured list (NULL: all of them) into wolfSSL's form.
 * ChaCha20-Poly1305 is left out of the default, and refused when asked
 * for, if uvq has no path for it that checks tags (crypto.c). */
static int suites_to_wolfssl(const char* list, char* out, size_t cap) {
  const char* p;
  size_t len, i, used;
  int err;

  out[0] = '\0';
  used = 0;
  if (list == NULL) {
    for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
      if (!suites[i].chacha || uvq__crypto_chacha_ok())
        if ((err = append_suite(out, cap, &used, i)) != 0)
          return err;
    return 0;
  }
  for (p = list;; p += len + 1) {
    len = strcspn(p, ":");
    for (i = 0; i < sizeof(suites) / sizeof(suites[0]); i++)
      if (strlen(suites[i].iana) == len && memcmp(p, suites[i].iana, len) == 0)
        break;
    if (i == sizeof(suites) / sizeof(suites[0]))
      return UV_EINVAL;  /* unknown, empty, or not TLS 1.3 */
    if (suites[i].chacha && !uvq__crypto_chacha_ok())
      return UV_ENOTSUP;
    if ((err = append_suite(out, cap, &used, i)) != 0)
      return err;
    if (p[len] == '\0')
      return 0;
  }
}

/* Key exchange groups by name (uvq_quic_config_t.tls_groups). */
static const struct {
  const char* name;
  int group;
} groups[] = {
  {"X25519", WOLFSSL_ECC_X25519},
  {"P-256", WOLFSSL_ECC_SECP256R1},
  {"P-384", WOLFSSL_ECC_SECP384R1},
  {"P-521", WOLFSSL_ECC_SECP521R1},
};

/* Parses the configured list (NULL: all, in table order) into wolfSSL's
 * group numbers. X25519 comes first by default: a client sends one key
 * share, for its first group, and X25519 costs the least on both sides. */
static int groups_parse(const char* list, int* out, int* count) {
  const char* p;
  size_t len, i;
  int n;

  n = 0;
  if (list == NULL) {
    for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
      out[n++] = groups[i].group;
    *count = n;
    return 0;
  }
  for (p = list;; p += len + 1) {
    len = strcspn(p, ":");
    for (i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
      if (strlen(groups[i].name) == len && memcmp(p, groups[i].name, len) == 0)
        break;
    if (i == sizeof(groups) / sizeof(groups[0]) ||
        n == (int) (sizeof(groups) / sizeof(groups[0])))
      return UV_EINVAL;  /* unknown, empty or repeated too often */
    out[n++] = groups[i].group;
    if (p[len] == '\0')
      break;
  }
  *count = n;
  return 0;
}

static int set_groups(WOLFSSL_CTX* ctx, int* list, int count) {
  return wolfSSL_CTX_set_groups(ctx, list, count) == WOLFSSL_SUCCESS ? 0
                                                                     : UV_EIO;
}

static int set_suites(WOLFSSL_CTX* ctx, const char* list) {
  return wolfSSL_CTX_set_cipher_list(ctx, list) == WOLFSSL_SUCCESS ? 0
                                                                   : UV_EIO;
}

/* One random generator per TLS context rather than one per connection.
 * wolfSSL_new() otherwise instantiates a Hash_DRBG for every connection
 * (a getrandom() call, the DRBG's known-answer health test, a few dozen
 * SHA-256 blocks: about 5% of a server handshake's instructions). A
 * context and its connections are only ever used from the endpoint's loop
 * thread, which is what sharing needs. Only with a wolfSSL that
 * tools/deps-quic.sh patched (tools/patches/wolfssl-ctx-shared-rng.patch);
 * any other keeps its generator per connection.
 *
 * A forked child must not draw the bytes its parent draws from the same
 * state (key shares, nonces): each context records the fork generation it
 * was seeded in (its ex_data), and the first connection after a fork
 * reseeds it from the OS. */
#ifdef WOLFSSL_CTX_SHARED_RNG
static unsigned int tls_forks;  /* bumped in the child after fork() */
static int rng_gen_index = -1;  /* the contexts' ex_data slot */
static uv_once_t rng_once = UV_ONCE_INIT;

static void rng_after_fork(void) {
  tls_forks++;
}

static void rng_init(void) {
  pthread_atfork(NULL, NULL, rng_after_fork);
  rng_gen_index = wolfSSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

/* (Re)seeds ctx's shared generator unless it was seeded since the last
 * fork. The generation is stored plus one: a fresh context holds NULL. */
static int ctx_rng(WOLFSSL_CTX* ctx) {
  uintptr_t gen;

  uv_once(&rng_once, rng_init);
  if (rng_gen_index < 0)
    return UV_EIO;
  gen = (uintptr_t) tls_forks + 1;
  if ((uintptr_t) wolfSSL_CTX_get_ex_data(ctx, rng_gen_index) == gen)
    return 0;
  if (wolfSSL_CTX_new_rng(ctx) != WOLFSSL_SUCCESS ||
      wolfSSL_CTX_set_ex_data(ctx, rng_gen_index, (void*) gen) !=
          WOLFSSL_SUCCESS)
    return UV_EIO;
  return 0;
}
#else
static int ctx_rng(WOLFSSL_CTX* ctx) {
  (void) ctx;
  return 0;
}
#endif

/* The endpoint's client TLS context: suites, groups, the peer check against
 * ca_file or the system's trust store, session tickets. 0, UV_EINVAL,
 * UV_ENOMEM or UV_EIO (ca_file unreadable). */
static int client_ctx_new(uvq_quic_endpoint_t* ep) {
  char suite_list[128];
  int group_list[sizeof(groups) / sizeof(groups[0])];
  int ngroups;
  const uvq_quic_config_t* cfg;
  WOLFSSL_CTX* ctx;
  int err;

  cfg = &ep->cfg;
  err = suites_to_wolfssl(cfg->tls_ciphersuites, suite_list,
                          sizeof(suite_list));
  if (err == 0)
    err = groups_parse(cfg->tls_groups, group_list, &ngroups);
  if (err)
    return err;
  ctx = wolfSSL_CTX_new(wolfTLSv1_3_client_method());
  if (ctx == NULL)
    return UV_ENOMEM;
  if (ngtcp2_crypto_wolfssl_configure_client_context(ctx) != 0 ||
      set_suites(ctx, suite_list) != 0 ||
      set_groups(ctx, group_list, ngroups) != 0) {
    wolfSSL_CTX_free(ctx);
    return UV_EIO;
  }
  if (cfg->insecure_skip_verify) {
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_NONE, NULL);
  } else {
    /* Without a CA file, the system's trust store. */
    if (wolfSSL_CTX_load_verify_locations(
            ctx, cfg->ca_file, cfg->ca_file ? NULL : "/etc/ssl/certs") !=
            WOLFSSL_SUCCESS &&
        cfg->ca_file != NULL) {
      wolfSSL_CTX_free(ctx);
      return UV_EIO;
    }
    wolfSSL_CTX_set_verify(ctx, WOLFSSL_VERIFY_PEER, NULL);
  }
  if (ep->keylog != NULL)
    wolfSSL_CTX_set_keylog_callback(ctx, keylog_line);
  wolfSSL_CTX_UseSessionTicket(ctx);
  wolfSSL_CTX_sess_set_new_cb(ctx, new_session);
  ep->client_ctx = ctx;
  return 0;
}

int uvq__tls_endpoint_init(uvq_quic_endpoint_t* ep) {
  char suite_list[128];
  int group_list[sizeof(groups) / sizeof(groups[0])];
  int ngroups;
  const uvq_quic_config_t* cfg;
  int err;

  cfg = &ep->cfg;
  err = alpn_to_wire(cfg->alpn ? cfg->alpn : "h3", ep->alpn_wire,
                     sizeof(ep->alpn_wire), &ep->alpn_wirelen);
  if (err)
    return err;
  err = suites_to_wolfssl(cfg->tls_ciphersuites, suite_list,
                          sizeof(suite_list));
  if (err)
    return err;
  err = groups_parse(cfg->tls_groups, group_list, &ngroups);
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
    if (ngtcp2_crypto_wolfssl_configure_server_context(ep->server_ctx) != 0 ||
        set_suites(ep->server_ctx, suite_list) != 0 ||
        set_groups(ep->server_ctx, group_list, ngroups) != 0)
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
    /* Session tickets for resumption; QUIC allows 0-RTT only with
     * max_early_data_size 0xffffffff (RFC 9001, 4.6.1). */
    wolfSSL_CTX_set_session_id_context(ep->server_ctx,
                                       (const unsigned char*) "uvq", 3);
    wolfSSL_CTX_set_max_early_data(ep->server_ctx,
                                   cfg->zero_rtt ? UINT32_MAX : 0);
    if (uvq__tls_ticket_keys(ep) != 0)
      return UV_EIO;
    /* A resumption needs nothing but the ticket, which carries the sealed
     * session: wolfSSL's internal session cache (process-wide, a copy of
     * every session under a lock shared by all threads) would only cost
     * each handshake the copy. This wolfSSL build caches sessions even
     * with the cache off when tickets are used (FORCE_CACHE_ON_TICKET);
     * NO_INTERNAL skips the internal store and lookup either way. */
    wolfSSL_CTX_set_session_cache_mode(ep->server_ctx,
                                       WOLFSSL_SESS_CACHE_NO_INTERNAL);
    if (ep->keylog != NULL)
      wolfSSL_CTX_set_keylog_callback(ep->server_ctx, keylog_line);
  }

  /* A server endpoint that would verify against the system's trust store
   * makes its client context at its first connect (uvq_quic_connect): the
   * store costs about 250 KB of heap and 15 ms to load, for endpoints that
   * mostly never connect out. With ca_file the context is made now, so an
   * unreadable file is still an error of uvq_quic_endpoint_new. */
  if (ep->server_ctx == NULL || cfg->ca_file != NULL ||
      cfg->insecure_skip_verify)
    return client_ctx_new(ep);
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

static int is_ip_literal(const char* s) {
  struct in6_addr a6;
  struct in_addr a4;

  return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

int uvq__tls_conn_init(uvq_quic_conn_t* c,
                       const char* server_name,
                       const uint8_t* ticket,
                       size_t ticketlen) {
  uvq_quic_endpoint_t* ep;
  WOLFSSL_CTX* ctx;
  int err;

  ep = c->ep;
  if (!c->is_server && ep->client_ctx == NULL) {
    err = client_ctx_new(ep);
    if (err)
      return err;
  }
  ctx = c->is_server ? ep->server_ctx : ep->client_ctx;
  err = ctx_rng(ctx);
  if (err)
    return err;
  c->ssl = wolfSSL_new(ctx);
  if (c->ssl == NULL)
    return UV_ENOMEM;
  wolfSSL_set_app_data(c->ssl, &c->conn_ref);
  /* RFC 9001's transport parameters codepoint, not the draft one. */
  wolfSSL_set_quic_use_legacy_codepoint(c->ssl, 0);
  if (c->is_server) {
    wolfSSL_set_accept_state(c->ssl);
    if (ep->cfg.zero_rtt)
      wolfSSL_set_quic_early_data_enabled(c->ssl, 1);
  } else {
    wolfSSL_set_connect_state(c->ssl);
    /* OpenSSL convention: 0 is success. */
    if (wolfSSL_set_alpn_protos(c->ssl, ep->alpn_wire,
                                (unsigned int) ep->alpn_wirelen) != 0)
      return UV_EINVAL;
    if (server_name != NULL && *server_name != '\0') {
      if (is_ip_literal(server_name)) {
        /* An address is never sent as SNI (RFC 6066, 3), and is checked
         * against the certificate's IP address entries. */
        if (!ep->cfg.insecure_skip_verify &&
            wolfSSL_X509_VERIFY_PARAM_set1_ip_asc(wolfSSL_get0_param(c->ssl),
                                                  server_name) !=
                WOLFSSL_SUCCESS)
          return UV_EINVAL;
      } else {
        if (wolfSSL_UseSNI(c->ssl, WOLFSSL_SNI_HOST_NAME, server_name,
                           (unsigned short) strlen(server_name)) !=
            WOLFSSL_SUCCESS)
          return UV_EINVAL;
        if (!ep->cfg.insecure_skip_verify &&
            wolfSSL_check_domain_name(c->ssl, server_name) != WOLFSSL_SUCCESS)
          return UV_EINVAL;
      }
    }
    wolfSSL_UseSessionTicket(c->ssl);
  }
  ngtcp2_conn_set_tls_native_handle(c->conn, c->ssl);
  if (!c->is_server && ticket != NULL && ticketlen > 0)
    resume(c, ticket, ticketlen);
  return 0;
}

void uvq__tls_handshake_done(uvq_quic_conn_t* c) {
  const uvq_quic_endpoint_t* ep;
  char* proto;
  unsigned short plen;
  size_t i;

  if (c->ssl == NULL || c->alpn != NULL)
    return;
  c->resumed = wolfSSL_session_reused(c->ssl) ? 1 : 0;
  if (wolfSSL_ALPN_GetProtocol(c->ssl, &proto, &plen) != WOLFSSL_SUCCESS)
    return;
  /* Whichever side chose it, it is one of the endpoint's own names. */
  ep = c->ep;
  for (i = 0; i < ep->alpn_wirelen; i += 1 + ep->alpn_wire[i]) {
    if (ep->alpn_wire[i] == plen &&
        memcmp(ep->alpn_wire + i + 1, proto, plen) == 0) {
      c->alpn = (const char*) ep->alpn_wire + i + 1;
      c->alpnlen = (uint8_t) plen;
      return;
    }
  }
}

/* Follows the TLS handshake messages (type, 24-bit length, body) in 1-RTT
 * CRYPTO data. With check set, as after the TLS object is gone, only a
 * client may receive anything, and only NewSessionTicket (type 4), which
 * is then dropped; anything else is unexpected_message (alert 10): a
 * client sends no TLS message after its Finished, and KeyUpdate is
 * forbidden in QUIC (RFC 9001, 6). */
static int follow_messages(uvq_quic_conn_t* c, const uint8_t* data,
                           size_t len, int check) {
  size_t n;

  while (len > 0) {
    if (c->hs_body_left > 0) {
      n = len < c->hs_body_left ? len : c->hs_body_left;
      c->hs_body_left -= (uint32_t) n;
      data += n;
      len -= n;
      continue;
    }
    c->hs_hdr[c->hs_hdrlen++] = *data++;
    len--;
    if (c->hs_hdrlen < sizeof(c->hs_hdr))
      continue;
    if (check && (c->is_server || c->hs_hdr[0] != 4))
      return -1;
    c->hs_body_left = (uint32_t) c->hs_hdr[1] << 16 |
                      (uint32_t) c->hs_hdr[2] << 8 | c->hs_hdr[3];
    c->hs_hdrlen = 0;
  }
  return 0;
}

int uvq__tls_recv_crypto_data(ngtcp2_conn* conn,
                              ngtcp2_encryption_level level,
                              uint64_t offset,
                              const uint8_t* data,
                              size_t datalen,
                              void* user_data) {
  uvq_quic_conn_t* c = user_data;
  int rv;

  if (c->ssl == NULL) {
    /* Earlier levels are complete by now; ngtcp2 does not pass their
     * retransmissions on again. */
    if (level != NGTCP2_ENCRYPTION_LEVEL_1RTT ||
        follow_messages(c, data, datalen, 1) != 0) {
      c->tls_alert = 10;
      return NGTCP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }
  rv = ngtcp2_crypto_recv_crypto_data_cb(conn, level, offset, data, datalen,
                                         user_data);
  if (rv != 0 || level != NGTCP2_ENCRYPTION_LEVEL_1RTT)
    return rv;
  follow_messages(c, data, datalen, 0);
  /* A client that has passed a ticket on frees its TLS object between two
   * messages: later tickets are dropped. The helper's call is over, so
   * nothing of the object is in use. */
  if (c->ticket_seen && c->hs_hdrlen == 0 && c->hs_body_left == 0 &&
      ngtcp2_conn_get_handshake_completed(conn))
    uvq__tls_conn_free(c);
  return 0;
}

void uvq__tls_conn_free(uvq_quic_conn_t* c) {
  if (c->ssl != NULL) {
    wolfSSL_set_app_data(c->ssl, NULL);
    wolfSSL_free(c->ssl);
    if (c->conn != NULL)
      ngtcp2_conn_set_tls_native_handle(c->conn, NULL);
  }
  c->ssl = NULL;
}
