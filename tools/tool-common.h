/* Helpers shared by the uvq-h3-server and uvq-h3-client command-line tools:
 * option values, addresses, and words for QUIC and TLS errors. Not part of
 * the library. */
#ifndef UVQ_TOOL_COMMON_H
#define UVQ_TOOL_COMMON_H

#include "uvq/quic.h"

#include <stddef.h>
#include <stdint.h>

/* Exit codes both tools use. */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_FAILED 1   /* a request failed, or the server could not run */
#define TOOL_EXIT_USAGE 2    /* bad command line */
#define TOOL_EXIT_CONNECT 3  /* name not resolved, no answer, connection lost */
#define TOOL_EXIT_TLS 4      /* the TLS handshake failed */
#define TOOL_EXIT_LOCAL 5    /* a local file could not be read or written */

/* Parses "cubic", "bbr" or "reno" into *cc (enum uvq_quic_cc). Returns 0 or
 * -1. */
/* Prints "TOOL: message" and a hint to --help on stderr, and exits with
 * TOOL_EXIT_USAGE. */
void tool_usage_error(const char* tool, const char* fmt, ...)
    __attribute__((format(printf, 2, 3), noreturn));

int tool_parse_cc(const char* s, int* cc);

/* Checks a --ciphersuites list: colon-separated TLS 1.3 suite names uvq
 * supports. Returns 0 or -1 (the library would refuse it: UV_EINVAL). */
int tool_check_ciphersuites(const char* s);
#define TOOL_CIPHERSUITES_HELP                                    \
  "TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "                \
  "TLS_CHACHA20_POLY1305_SHA256, separated by ':'"

/* Parses a decimal integer in [min, max]. Returns 0 or -1. */
int tool_parse_uint(const char* s, uint64_t min, uint64_t max, uint64_t* out);

/* Parses seconds, possibly fractional ("2", "0.5"), into milliseconds;
 * at least 1 ms, at most a day. Returns 0 or -1. */
int tool_parse_seconds(const char* s, uint64_t* ms);

/* Parses a QUIC version: "v1", "v2", or the number in hex ("0x00000001",
 * "0x6b3343cf"); only the two uvq speaks. Returns 0 or -1. */
int tool_parse_quic_version(const char* s, uint32_t* version);

/* Parses a --preferred-versions list, comma-separated versions as above in
 * preference order, each at most once; *first is the most preferred.
 * Returns 0 or -1. */
int tool_parse_quic_versions(const char* s, uint32_t* first);
#define TOOL_VERSIONS_HELP "v1, v2 (or 0x00000001, 0x6b3343cf), separated by ','"

/* Parses a handshake timeout in seconds ("0" or "none": no timeout,
 * UVQ_QUIC_NO_HANDSHAKE_TIMEOUT) into milliseconds. Returns 0 or -1. */
int tool_parse_handshake_timeout(const char* s, uint64_t* ms);

/* Parses a numeric IPv4 or IPv6 address (brackets allowed around IPv6),
 * or "*" for the IPv6 wildcard, with port. Returns 0 or a UV_E* code. */
int tool_parse_ip(const char* s, int port, struct sockaddr_storage* out);

/* Formats addr's address (no brackets) into buf and returns its port. */
int tool_format_addr(const struct sockaddr* addr, char* buf, size_t len);

/* The key log file: the option's value, else $SSLKEYLOGFILE, else NULL. */
const char* tool_keylog_file(const char* option);

/* Writes one line describing why a connection ended into buf, and returns
 * TOOL_EXIT_TLS for TLS failures, TOOL_EXIT_CONNECT otherwise. */
int tool_describe_error(const uvq_quic_error_t* error, char* buf, size_t len);

#endif /* UVQ_TOOL_COMMON_H */
