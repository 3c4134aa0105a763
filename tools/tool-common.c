/* Helpers shared by the uvq-h3-* tools; see tool-common.h. */
#include "tool-common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int tool_parse_cc(const char* s, int* cc) {
  if (strcmp(s, "cubic") == 0)
    *cc = UVQ_QUIC_CC_CUBIC;
  else if (strcmp(s, "bbr") == 0)
    *cc = UVQ_QUIC_CC_BBR;
  else if (strcmp(s, "reno") == 0)
    *cc = UVQ_QUIC_CC_RENO;
  else
    return -1;
  return 0;
}

int tool_check_ciphersuites(const char* s) {
  static const char* const names[] = {"TLS_AES_128_GCM_SHA256",
                                      "TLS_AES_256_GCM_SHA384",
                                      "TLS_CHACHA20_POLY1305_SHA256"};
  size_t len, i;

  for (;; s += len + 1) {
    len = strcspn(s, ":");
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
      if (strlen(names[i]) == len && strncmp(s, names[i], len) == 0)
        break;
    if (i == sizeof(names) / sizeof(names[0]))
      return -1;
    if (s[len] == '\0')
      return 0;
  }
}

int tool_parse_uint(const char* s, uint64_t min, uint64_t max, uint64_t* out) {
  unsigned long long v;
  char* end;

  /* strtoull accepts a sign and leading blanks; a count must not have
   * them. */
  if (*s < '0' || *s > '9')
    return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v < min || v > max)
    return -1;
  *out = v;
  return 0;
}

int tool_parse_seconds(const char* s, uint64_t* ms) {
  double v;
  char* end;

  if ((*s < '0' || *s > '9') && *s != '.')
    return -1;
  errno = 0;
  v = strtod(s, &end);
  if (errno != 0 || *end != '\0' || v < 0.001 || v > 86400)
    return -1;
  *ms = (uint64_t) (v * 1000 + 0.5);
  return 0;
}

int tool_parse_quic_version(const char* s, uint32_t* version) {
  if (strcasecmp(s, "v1") == 0 || strcasecmp(s, "0x00000001") == 0 ||
      strcasecmp(s, "0x1") == 0 || strcasecmp(s, "1") == 0)
    *version = UVQ_QUIC_V1;
  else if (strcasecmp(s, "v2") == 0 || strcasecmp(s, "0x6b3343cf") == 0)
    *version = UVQ_QUIC_V2;
  else
    return -1;
  return 0;
}

int tool_parse_quic_versions(const char* s, uint32_t* first) {
  char item[16];
  uint32_t seen[2];
  uint32_t v;
  size_t nseen;
  size_t len;
  size_t i;

  nseen = 0;
  for (;; s += len + 1) {
    len = strcspn(s, ",");
    if (len == 0 || len >= sizeof(item))
      return -1;
    memcpy(item, s, len);
    item[len] = '\0';
    if (tool_parse_quic_version(item, &v) != 0)
      return -1;
    for (i = 0; i < nseen; i++)
      if (seen[i] == v)
        return -1;
    seen[nseen++] = v;
    if (s[len] == '\0')
      break;
    if (nseen == 2)
      return -1;
  }
  *first = seen[0];
  return 0;
}

int tool_parse_handshake_timeout(const char* s, uint64_t* ms) {
  if (strcmp(s, "none") == 0 || strcmp(s, "0") == 0) {
    *ms = UVQ_QUIC_NO_HANDSHAKE_TIMEOUT;
    return 0;
  }
  return tool_parse_seconds(s, ms);
}

int tool_parse_ip(const char* s, int port, struct sockaddr_storage* out) {
  char buf[64];
  size_t len;

  memset(out, 0, sizeof(*out));
  if (strcmp(s, "*") == 0)
    s = "::";
  len = strlen(s);
  if (len >= 2 && s[0] == '[' && s[len - 1] == ']') {
    if (len - 2 >= sizeof(buf))
      return UV_EINVAL;
    memcpy(buf, s + 1, len - 2);
    buf[len - 2] = '\0';
    return uv_ip6_addr(buf, port, (struct sockaddr_in6*) out);
  }
  if (strchr(s, ':') != NULL)
    return uv_ip6_addr(s, port, (struct sockaddr_in6*) out);
  return uv_ip4_addr(s, port, (struct sockaddr_in*) out);
}

int tool_format_addr(const struct sockaddr* addr, char* buf, size_t len) {
  if (addr->sa_family == AF_INET6) {
    const struct sockaddr_in6* a6 = (const struct sockaddr_in6*) addr;
    uv_ip6_name(a6, buf, len);
    return ntohs(a6->sin6_port);
  }
  if (addr->sa_family == AF_INET) {
    const struct sockaddr_in* a4 = (const struct sockaddr_in*) addr;
    uv_ip4_name(a4, buf, len);
    return ntohs(a4->sin_port);
  }
  snprintf(buf, len, "?");
  return 0;
}

const char* tool_keylog_file(const char* option) {
  const char* env;

  if (option != NULL)
    return option;
  env = getenv("SSLKEYLOGFILE");
  return env != NULL && *env != '\0' ? env : NULL;
}

/* TLS alerts (RFC 8446, 6) a QUIC handshake ends with, as CRYPTO_ERROR
 * 0x100 + alert (RFC 9001, 4.8). */
static const char* alert_name(unsigned int alert) {
  switch (alert) {
    case 10: return "unexpected_message";
    case 20: return "bad_record_mac";
    case 40: return "handshake_failure";
    case 42: return "bad_certificate";
    case 43: return "unsupported_certificate";
    case 44: return "certificate_revoked";
    case 45: return "certificate_expired";
    case 46: return "certificate_unknown";
    case 47: return "illegal_parameter";
    case 48: return "unknown_ca";
    case 49: return "access_denied";
    case 50: return "decode_error";
    case 51: return "decrypt_error";
    case 70: return "protocol_version";
    case 71: return "insufficient_security";
    case 80: return "internal_error";
    case 109: return "missing_extension";
    case 110: return "unsupported_extension";
    case 112: return "unrecognized_name";
    case 116: return "certificate_required";
    case 120: return "no_application_protocol";
    default: return "unknown alert";
  }
}

/* Transport error codes (RFC 9000, 20.1). */
static const char* transport_name(uint64_t code) {
  switch (code) {
    case 0x0: return "NO_ERROR";
    case 0x1: return "INTERNAL_ERROR";
    case 0x2: return "CONNECTION_REFUSED";
    case 0x3: return "FLOW_CONTROL_ERROR";
    case 0x4: return "STREAM_LIMIT_ERROR";
    case 0x5: return "STREAM_STATE_ERROR";
    case 0x6: return "FINAL_SIZE_ERROR";
    case 0x7: return "FRAME_ENCODING_ERROR";
    case 0x8: return "TRANSPORT_PARAMETER_ERROR";
    case 0x9: return "CONNECTION_ID_LIMIT_ERROR";
    case 0xa: return "PROTOCOL_VIOLATION";
    case 0xb: return "INVALID_TOKEN";
    case 0xc: return "APPLICATION_ERROR";
    case 0xd: return "CRYPTO_BUFFER_EXCEEDED";
    case 0xe: return "KEY_UPDATE_ERROR";
    case 0xf: return "AEAD_LIMIT_REACHED";
    case 0x10: return "NO_VIABLE_PATH";
    case 0x11: return "VERSION_NEGOTIATION_ERROR";
    default: return "transport error";
  }
}

int tool_describe_error(const uvq_quic_error_t* e, char* buf, size_t len) {
  const char* who;
  char reason[128];
  size_t n;
  int off;

  who = e->remote ? "the server" : "this side";
  reason[0] = '\0';
  if (e->reason != NULL && e->reasonlen > 0) {
    n = e->reasonlen < sizeof(reason) - 4 ? e->reasonlen : sizeof(reason) - 4;
    off = snprintf(reason, sizeof(reason), " (\"");
    memcpy(reason + off, e->reason, n);
    snprintf(reason + off + n, sizeof(reason) - off - n, "\")");
  }
  switch (e->kind) {
    case UVQ_QUIC_ERROR_TRANSPORT:
      if (e->code >= 0x100 && e->code <= 0x1ff) {
        unsigned int alert = (unsigned int) (e->code - 0x100);
        const char* hint = "";
        if (!e->remote && (alert == 42 || alert == 46 || alert == 48 ||
                           alert == 45 || alert == 80))
          hint = ": the server's certificate did not verify (wrong CA, "
                 "expired, or a name mismatch; see --cacert, --sni, "
                 "--insecure)";
        else if (alert == 120)
          hint = ": no ALPN protocol in common (the server does not speak h3)";
        snprintf(buf, len, "TLS handshake failed: alert %u (%s) sent by %s%s%s",
                 alert, alert_name(alert), who, hint, reason);
        return TOOL_EXIT_TLS;
      }
      snprintf(buf, len, "connection closed by %s: %s (0x%llx)%s%s%s", who,
               transport_name(e->code), (unsigned long long) e->code,
               e->library_error ? ": " : "",
               e->library_error ? uvq_quic_strerror(e->library_error) : "",
               reason);
      return TOOL_EXIT_CONNECT;
    case UVQ_QUIC_ERROR_APPLICATION:
      snprintf(buf, len, "connection closed by %s with HTTP/3 error 0x%llx%s",
               who, (unsigned long long) e->code, reason);
      return TOOL_EXIT_CONNECT;
    case UVQ_QUIC_ERROR_IDLE:
      snprintf(buf, len, "connection idle timeout (the server stopped "
               "answering)");
      return TOOL_EXIT_CONNECT;
    case UVQ_QUIC_ERROR_HANDSHAKE_TIMEOUT:
      snprintf(buf, len, "handshake timed out (no answer from the server)");
      return TOOL_EXIT_CONNECT;
    case UVQ_QUIC_ERROR_STATELESS_RESET:
      snprintf(buf, len, "the server reset the connection (stateless reset: "
               "it has no state for it, e.g. after a restart)");
      return TOOL_EXIT_CONNECT;
    case UVQ_QUIC_ERROR_VERSION:
      snprintf(buf, len, "no QUIC version in common with the server");
      return TOOL_EXIT_CONNECT;
    case UVQ_QUIC_ERROR_ENDPOINT_CLOSED:
      snprintf(buf, len, "the connection was closed locally");
      return TOOL_EXIT_CONNECT;
    case UVQ_QUIC_ERROR_UNREACHABLE:
      snprintf(buf, len, "%s",
               e->uv_error == UV_ECONNREFUSED
                   ? "connection refused (nothing listens on that port)"
                   : uv_strerror(e->uv_error));
      return TOOL_EXIT_CONNECT;
    default:
      snprintf(buf, len, "connection ended (kind %d, code 0x%llx)%s", e->kind,
               (unsigned long long) e->code, reason);
      return TOOL_EXIT_CONNECT;
  }
}

void tool_usage_error(const char* tool, const char* fmt, ...) {
  va_list ap;

  fprintf(stderr, "%s: ", tool);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nTry '%s --help'.\n", tool);
  exit(TOOL_EXIT_USAGE);
}
