/* Versioned public structs (ngtcp2's scheme), and the entry points kept for
 * programs built against older uvq headers.
 *
 * Every struct a program lays out and hands to uvq has a version of its
 * own: uvq_quic_config_t (its version field), uvq_quic_connect_opts_t (its
 * version field), uvq_h3_config_t (its version field), and the callback
 * structs (whose version the macros of the functions taking them pass:
 * uvq_quic_callbacks_t, uvq_quic_app_callbacks_t, uvq_h3_callbacks_t). The library
 * reads each one in the layout its version names and converts it to the
 * current one, new fields at their defaults; only a version it does not
 * know (newer than this library) is refused. Fields are only ever
 * appended, except in uvq_quic_config_t version 1, described below.
 *
 * The layouts of versions before the current one are written out here as
 * they were released, so that a later edit of the public header cannot
 * change them by accident. */
#include "internal.h"
#include "h3-internal.h"

#include <stddef.h>
#include <string.h>

/* uvq_quic_config_t version 2 (uvq 0.1.0): version 3 appended retry,
 * retry_threshold and tls_groups. */
struct uvq__quic_config_v2 {
  unsigned int version;
  const char* cert_file;
  const char* key_file;
  const char* ca_file;
  int insecure_skip_verify;
  const char* alpn;
  const char* tls_ciphersuites;
  uint64_t max_data;
  uint64_t max_stream_data;
  uint64_t max_streams_bidi;
  uint64_t max_streams_uni;
  uint64_t idle_timeout_ms;
  uint64_t handshake_timeout_ms;
  size_t max_datagram_frame_size;
  uint64_t keepalive_ms;
  int cc;
  uint32_t preferred_version;
  int zero_rtt;
  int require_address_validation;
  unsigned int max_connections;
  unsigned int max_handshakes;
  const uint8_t* static_secret;
  const char* qlog_dir;
  const char* keylog_file;
  int ecn;
  int pmtud;
  int gso;
  int gro;
  int pacing;
};

/* Version 1 is version 2 without tls_ciphersuites, which version 2
 * inserted after alpn: the one layout change that was not an append. */
struct uvq__quic_config_v1 {
  unsigned int version;
  const char* cert_file;
  const char* key_file;
  const char* ca_file;
  int insecure_skip_verify;
  const char* alpn;
  uint64_t max_data;
  uint64_t max_stream_data;
  uint64_t max_streams_bidi;
  uint64_t max_streams_uni;
  uint64_t idle_timeout_ms;
  uint64_t handshake_timeout_ms;
  size_t max_datagram_frame_size;
  uint64_t keepalive_ms;
  int cc;
  uint32_t preferred_version;
  int zero_rtt;
  int require_address_validation;
  unsigned int max_connections;
  unsigned int max_handshakes;
  const uint8_t* static_secret;
  const char* qlog_dir;
  const char* keylog_file;
  int ecn;
  int pmtud;
  int gso;
  int gro;
  int pacing;
};

/* Version 3 appended retry, retry_threshold and tls_groups to version 2;
 * version 4 appended the preferred addresses; version 5 the worker
 * fields. Each is a prefix of the next: what one copies of an older struct
 * ends with its last field. */
#define CONFIG_V3_USED \
  (offsetof(uvq_quic_config_t, tls_groups) + sizeof(const char*))
#define CONFIG_V4_USED                                        \
  (offsetof(uvq_quic_config_t, preferred_address_ipv6) +    \
   sizeof(const struct sockaddr_in6*))
_Static_assert(offsetof(uvq_quic_config_t, preferred_address_ipv4) >=
                   CONFIG_V3_USED,
               "uvq_quic_config_t version 3 must stay a prefix of the current "
               "layout: append new fields at the end");
_Static_assert(offsetof(uvq_quic_config_t, worker_index) >= CONFIG_V4_USED,
               "uvq_quic_config_t version 4 must stay a prefix of the current "
               "layout: append new fields at the end");

/* Version 2 is a prefix of every later version, up to and including
 * pacing; what follows pacing in a version 2 struct is padding, which must
 * not be read into the fields version 3 put there. */
#define CONFIG_V2_USED \
  (offsetof(struct uvq__quic_config_v2, pacing) + sizeof(int))
_Static_assert(offsetof(uvq_quic_config_t, pacing) ==
                   offsetof(struct uvq__quic_config_v2, pacing),
               "uvq_quic_config_t version 2 must stay a prefix of the current "
               "layout: append new fields at the end");

/* uvq_quic_connect_opts_t versions 1 to 3 and uvq_h3_config_t versions 1
 * to 3 are one layout each: until version 3 of uvq_quic_config_t they
 * carried its number. Connect options 4 appended quic_version. */
#define CONNECT_OPTS_OLDEST 1
#define CONNECT_OPTS_V3_USED offsetof(uvq_quic_connect_opts_t, quic_version)
#define H3_CONFIG_OLDEST 1

/* Callback structs: the size of each version; 0 for one this library does
 * not know. uvq_h3_callbacks_t version 2 appended session_ticket. */
static size_t quic_callbacks_size(int version) {
  return version == 1 ? sizeof(uvq_quic_callbacks_t) : 0;
}

static size_t quic_app_callbacks_size(int version) {
  return version == 1 ? sizeof(uvq_quic_app_callbacks_t) : 0;
}

static size_t h3_callbacks_size(int version) {
  if (version == 1)
    return offsetof(uvq_h3_callbacks_t, session_ticket);
  if (version == 2)
    return sizeof(uvq_h3_callbacks_t);
  return 0;
}

static void config_defaults(uvq_quic_config_t* cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->version = UVQ_QUIC_CONFIG_VERSION;
  cfg->alpn = "h3";
  cfg->cc = UVQ_QUIC_CC_CUBIC;
  cfg->ecn = 1;
  cfg->pmtud = 1;
  cfg->gso = 1;
  cfg->gro = 1;
  cfg->pacing = 1;
  cfg->zero_rtt = 1;
  cfg->retry = UVQ_QUIC_RETRY_AUTO;
}

static void v1_from_v2(struct uvq__quic_config_v1* v1,
                       const struct uvq__quic_config_v2* v2) {
  memset(v1, 0, sizeof(*v1));
  v1->cert_file = v2->cert_file;
  v1->key_file = v2->key_file;
  v1->ca_file = v2->ca_file;
  v1->insecure_skip_verify = v2->insecure_skip_verify;
  v1->alpn = v2->alpn;
  /* From max_data to the end the two layouts agree. */
  memcpy(&v1->max_data, &v2->max_data,
         sizeof(*v1) - offsetof(struct uvq__quic_config_v1, max_data));
}

static void v2_from_v1(struct uvq__quic_config_v2* v2,
                       const struct uvq__quic_config_v1* v1) {
  memset(v2, 0, sizeof(*v2));
  v2->cert_file = v1->cert_file;
  v2->key_file = v1->key_file;
  v2->ca_file = v1->ca_file;
  v2->insecure_skip_verify = v1->insecure_skip_verify;
  v2->alpn = v1->alpn;
  v2->tls_ciphersuites = NULL;
  memcpy(&v2->max_data, &v1->max_data,
         sizeof(*v1) - offsetof(struct uvq__quic_config_v1, max_data));
}

/* Writes cur into config in the layout of config_version; UV_EINVAL, and
 * nothing written but the version, for a layout this library does not
 * know (nothing it could overflow). */
static int config_store(int config_version, const uvq_quic_config_t* cur,
                        uvq_quic_config_t* config) {
  struct uvq__quic_config_v2 v2;
  struct uvq__quic_config_v1 v1;

  switch (config_version) {
    case UVQ_QUIC_CONFIG_VERSION:
      *config = *cur;
      config->version = UVQ_QUIC_CONFIG_VERSION;
      return 0;
    case 4:
      memcpy(config, cur, CONFIG_V4_USED);
      config->version = 4;
      return 0;
    case 3:
      memcpy(config, cur, CONFIG_V3_USED);
      config->version = 3;
      return 0;
    case 2:
      memset(&v2, 0, sizeof(v2));
      memcpy(&v2, cur, CONFIG_V2_USED);
      v2.version = 2;
      memcpy(config, &v2, sizeof(v2));
      return 0;
    case 1:
      memset(&v2, 0, sizeof(v2));
      memcpy(&v2, cur, CONFIG_V2_USED);
      v1_from_v2(&v1, &v2);
      v1.version = 1;
      memcpy(config, &v1, sizeof(v1));
      return 0;
    default:
      config->version = (unsigned int) config_version;
      return UV_EINVAL;
  }
}

void uvq_quic_config_default_versioned(int config_version,
                                       uvq_quic_config_t* config) {
  uvq_quic_config_t cur;

  if (config == NULL)
    return;
  config_defaults(&cur);
  /* An unknown version is written alone, and uvq_quic_endpoint_new()
   * refuses it. */
  config_store(config_version, &cur, config);
}

int uvq_quic_config_copy_versioned(int dst_version,
                                   uvq_quic_config_t* dst,
                                   const uvq_quic_config_t* src) {
  uvq_quic_config_t cur;

  if (dst == NULL || src == NULL)
    return UV_EINVAL;
  if (uvq__quic_config_load(src, &cur) != 0)
    return UV_EINVAL;
  return config_store(dst_version, &cur, dst);
}

int uvq__quic_config_load(const uvq_quic_config_t* in, uvq_quic_config_t* out) {
  struct uvq__quic_config_v2 v2;

  config_defaults(out);
  switch (in->version) {
    case UVQ_QUIC_CONFIG_VERSION:
      *out = *in;
      return 0;
    case 4:
      memcpy(out, in, CONFIG_V4_USED);
      break;
    case 3:
      memcpy(out, in, CONFIG_V3_USED);
      break;
    case 2:
      memcpy(out, in, CONFIG_V2_USED);
      break;
    case 1:
      v2_from_v1(&v2, (const struct uvq__quic_config_v1*) in);
      memcpy(out, &v2, CONFIG_V2_USED);
      break;
    default:
      return UV_EINVAL;
  }
  out->version = UVQ_QUIC_CONFIG_VERSION;
  return 0;
}

int uvq__quic_connect_opts_load(const uvq_quic_connect_opts_t* in,
                                uvq_quic_connect_opts_t* out) {
  if (in->version < CONNECT_OPTS_OLDEST ||
      in->version > UVQ_QUIC_CONNECT_OPTS_VERSION)
    return UV_EINVAL;
  if (in->version == UVQ_QUIC_CONNECT_OPTS_VERSION) {
    *out = *in;
  } else {
    memset(out, 0, sizeof(*out));
    memcpy(out, in, CONNECT_OPTS_V3_USED);
  }
  out->version = UVQ_QUIC_CONNECT_OPTS_VERSION;
  return 0;
}

int uvq__h3_config_load(const uvq_h3_config_t* in, uvq_h3_config_t* out) {
  if (in->version < H3_CONFIG_OLDEST || in->version > UVQ_H3_CONFIG_VERSION)
    return UV_EINVAL;
  *out = *in;
  out->version = UVQ_H3_CONFIG_VERSION;
  return 0;
}

/* A callbacks struct of a version whose layout is size bytes of the
 * current one (0: a version this library does not know): the caller's
 * part copied, the callbacks it lacks NULL. in may be NULL (none). */
static int load_callbacks(void* out, size_t outsize, const void* in,
                          size_t size) {
  memset(out, 0, outsize);
  if (size == 0)
    return UV_EINVAL;
  if (in != NULL)
    memcpy(out, in, size);
  return 0;
}

int uvq__quic_callbacks_load(int version,
                             const uvq_quic_callbacks_t* in,
                             uvq_quic_callbacks_t* out) {
  return load_callbacks(out, sizeof(*out), in, quic_callbacks_size(version));
}

int uvq__quic_app_callbacks_load(int version,
                                 const uvq_quic_app_callbacks_t* in,
                                 uvq_quic_app_callbacks_t* out) {
  return load_callbacks(out, sizeof(*out), in,
                        quic_app_callbacks_size(version));
}

int uvq__h3_callbacks_load(int version,
                           const uvq_h3_callbacks_t* in,
                           uvq_h3_callbacks_t* out) {
  return load_callbacks(out, sizeof(*out), in, h3_callbacks_size(version));
}

/* ---- uvq 0.1.0's entry points ---------------------------------------------
 *
 * Its headers declared these as functions; today's make the same names
 * macros over the _versioned functions. A program built against 0.1.0
 * calls these symbols: uvq_quic_config_t and uvq_h3_config_t version 2,
 * callbacks version 1. The parentheses keep the macros from expanding. */

UVQ_EXTERN void(uvq_quic_config_default)(uvq_quic_config_t* config);
UVQ_EXTERN int(uvq_quic_endpoint_new)(uv_loop_t* loop,
                                      const uvq_quic_config_t* config,
                                      const uvq_quic_callbacks_t* callbacks,
                                      void* user_data,
                                      uvq_quic_endpoint_t** ep);
UVQ_EXTERN void(uvq_h3_config_default)(uvq_h3_config_t* config);
UVQ_EXTERN int(uvq_h3_server_new)(uv_loop_t* loop,
                                  const uvq_quic_config_t* quic,
                                  const uvq_h3_config_t* h3,
                                  const uvq_h3_callbacks_t* callbacks,
                                  void* user_data,
                                  uvq_h3_t** out);
UVQ_EXTERN int(uvq_h3_client_new)(uv_loop_t* loop,
                                  const uvq_quic_config_t* quic,
                                  const uvq_h3_config_t* h3,
                                  const uvq_h3_callbacks_t* callbacks,
                                  void* user_data,
                                  uvq_h3_t** out);

void(uvq_quic_config_default)(uvq_quic_config_t* config) {
  uvq_quic_config_default_versioned(2, config);
}

int(uvq_quic_endpoint_new)(uv_loop_t* loop,
                           const uvq_quic_config_t* config,
                           const uvq_quic_callbacks_t* callbacks,
                           void* user_data,
                           uvq_quic_endpoint_t** ep) {
  return uvq_quic_endpoint_new_versioned(loop, config, 1, callbacks, user_data,
                                         ep);
}

void(uvq_h3_config_default)(uvq_h3_config_t* config) {
  uvq_h3_config_default_versioned(2, config);
}

int(uvq_h3_server_new)(uv_loop_t* loop,
                       const uvq_quic_config_t* quic,
                       const uvq_h3_config_t* h3,
                       const uvq_h3_callbacks_t* callbacks,
                       void* user_data,
                       uvq_h3_t** out) {
  return uvq_h3_server_new_versioned(loop, quic, h3, 1, callbacks, user_data,
                                     out);
}

int(uvq_h3_client_new)(uv_loop_t* loop,
                       const uvq_quic_config_t* quic,
                       const uvq_h3_config_t* h3,
                       const uvq_h3_callbacks_t* callbacks,
                       void* user_data,
                       uvq_h3_t** out) {
  return uvq_h3_client_new_versioned(loop, quic, h3, 1, callbacks, user_data,
                                     out);
}
