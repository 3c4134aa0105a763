/* uvq HTTP/3: requests and responses on nghttp3 over the uvq QUIC layer.
 *
 * One type, uvq_h3_t, is either a server (it listens and answers
 * requests) or a client (it opens one connection and sends requests on
 * it). Each request/response exchange is a uvq_h3_req_t, created by uvq
 * and valid until its done callback returns.
 *
 * Bodies are pulled, never buffered whole: a response body is read from
 * memory, a file or a callback as the connection can send it, and its
 * buffers are held only until the peer acknowledges them.
 *
 * Errors: functions return 0 or a negative UV_E* code. HTTP/3 error codes
 * (RFC 9114, 8.1) arrive in the done callback and in uvq_quic_error_t.
 *
 * Reference: docs/h3.md.
 */
#ifndef UVQ_H3_H
#define UVQ_H3_H

#include "quic.h"

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct uvq_h3_s uvq_h3_t;
typedef struct uvq_h3_req_s uvq_h3_req_t;

/* HTTP/3 error codes uvq uses (RFC 9114, 8.1). */
#define UVQ_H3_NO_ERROR 0x100u
#define UVQ_H3_INTERNAL_ERROR 0x102u
#define UVQ_H3_REQUEST_REJECTED 0x10bu
#define UVQ_H3_REQUEST_CANCELLED 0x10cu
#define UVQ_H3_MESSAGE_ERROR 0x10eu

typedef struct uvq_h3_header_s {
  const char* name;   /* lower case */
  size_t namelen;
  const char* value;
  size_t valuelen;
} uvq_h3_header_t;

enum uvq_h3_body_kind {
  UVQ_H3_BODY_NONE = 0,
  /* len bytes at data, not copied: keep them until the done callback. */
  UVQ_H3_BODY_MEMORY = 1,
  /* len bytes of the open file fd from offset, read in chunks as the
   * connection can send them; fd is not closed by uvq. */
  UVQ_H3_BODY_FILE = 2,
  /* Produced by read(): it copies up to len bytes into buf and returns how
   * many, 0 at the end, UV_EAGAIN when nothing is ready yet (call
   * uvq_h3_resume() when there is), or a negative error, which resets the
   * stream. */
  UVQ_H3_BODY_CALLBACK = 3
};

typedef struct uvq_h3_body_s {
  int kind;
  const void* data;
  int fd;
  uint64_t offset;
  uint64_t len;
  ssize_t (*read)(uvq_h3_req_t* req, uint8_t* buf, size_t len);
  /* Sent after the body (RFC 9114, 4.1); NULL for none. Copied. */
  const uvq_h3_header_t* trailers;
  size_t ntrailers;
} uvq_h3_body_t;

typedef struct uvq_h3_callbacks_s {
  /* Server: the request's headers arrived (method, path ... and
   * uvq_h3_req_header() are available). Answer now with uvq_h3_respond()
   * or uvq_h3_serve_file(), or later. */
  void (*request)(uvq_h3_req_t* req);
  /* Client: the response's headers arrived; status is the :status. */
  void (*response)(uvq_h3_req_t* req, int status);
  /* Body bytes of the request (server) or the response (client), in
   * order; valid during the call. */
  void (*body)(uvq_h3_req_t* req, const uint8_t* data, size_t len);
  /* The peer's message is complete (its stream ended). */
  void (*end)(uvq_h3_req_t* req);
  /* The exchange is over: app_error is UVQ_H3_NO_ERROR (0x100) if both
   * messages went through in full (also when the peer closed the
   * connection gracefully before acknowledging the last bytes of a
   * response handed over in full), else the HTTP/3 error code that ended
   * it (UVQ_H3_REQUEST_CANCELLED when the connection failed). req is
   * freed when this returns. A server reports only requests that reached
   * request (or got uvq's 431); a malformed request is reset with
   * UVQ_H3_MESSAGE_ERROR and reaches no callback (docs/h3.md). */
  void (*done)(uvq_h3_req_t* req, uint64_t app_error);
  /* Client: the connection is ready (error NULL) or could not be made, or
   * it ended (error not NULL). */
  void (*connected)(uvq_h3_t* h3, const uvq_quic_error_t* error);
  void (*closed)(uvq_h3_t* h3, const uvq_quic_error_t* error);
  /* Client: the server raised its request limit (MAX_STREAMS); requests
   * that got UV_EAGAIN from uvq_h3_request() can be sent now. */
  void (*requests_available)(uvq_h3_t* h3);
  /* Client: the server issued a session ticket (opaque, valid during the
   * call; there may be several). Pass a copy in
   * uvq_quic_connect_opts_t.session_ticket to uvq_h3_connect_ex() to
   * resume, with 0-RTT requests where the ticket allows them. */
  void (*session_ticket)(uvq_h3_t* h3, const uint8_t* ticket, size_t len);
} uvq_h3_callbacks_t;

/* Struct versions, as in quic.h. uvq_h3_config_t: versions 1 to 3 are one
 * layout (programs built against uvq 0.1.0 put UVQ_QUIC_CONFIG_VERSION
 * there). uvq_h3_callbacks_t: passed by the creating macros; 2 appended
 * session_ticket. */
#define UVQ_H3_CONFIG_VERSION 3
#define UVQ_H3_CALLBACKS_VERSION 2

/* HTTP/3 settings (RFC 9114, 7.2.4); 0 picks the default. */
typedef struct uvq_h3_config_s {
  unsigned int version;             /* UVQ_H3_CONFIG_VERSION */
  uint64_t max_field_section_size;  /* largest header block accepted: 64 KiB */
  uint64_t max_concurrent_requests; /* per connection (server): 100 */
  /* Server: uvq_h3_serve_file() keeps files of up to 64 KiB in memory
   * (256 of them at most) and checks them against the disk (open + fstat:
   * inode, size, mtime) at most once per file_cache_ms milliseconds, so a
   * file changed on disk may be served as it was for up to that long.
   * 0 (the default) turns the cache off: every request opens the file. */
  uint64_t file_cache_ms;
} uvq_h3_config_t;

/* uvq_h3_config_default(config): the defaults, in this header's layout
 * (a macro passing UVQ_H3_CONFIG_VERSION). */
UVQ_EXTERN void uvq_h3_config_default_versioned(int config_version,
                                                uvq_h3_config_t* config);
#define uvq_h3_config_default(config)                                       \
  uvq_h3_config_default_versioned(UVQ_H3_CONFIG_VERSION, (config))

/* uvq_h3_server_new(loop, quic, h3, callbacks, user_data, out) and
 * uvq_h3_client_new(...): macros passing UVQ_H3_CALLBACKS_VERSION to the
 * _versioned functions. Create a server or a client. quic is the QUIC
 * configuration (its alpn should be "h3"; NULL alpn becomes "h3"); h3 may
 * be NULL for defaults. UV_EINVAL (also: a struct version newer than the
 * library), UV_ENOMEM, UV_EIO (certificate or key unreadable). */
UVQ_EXTERN int uvq_h3_server_new_versioned(uv_loop_t* loop,
                                           const uvq_quic_config_t* quic,
                                           const uvq_h3_config_t* h3,
                                           int callbacks_version,
                                           const uvq_h3_callbacks_t* callbacks,
                                           void* user_data,
                                           uvq_h3_t** out);
UVQ_EXTERN int uvq_h3_client_new_versioned(uv_loop_t* loop,
                                           const uvq_quic_config_t* quic,
                                           const uvq_h3_config_t* h3,
                                           int callbacks_version,
                                           const uvq_h3_callbacks_t* callbacks,
                                           void* user_data,
                                           uvq_h3_t** out);
#define uvq_h3_server_new(loop, quic, h3, callbacks, user_data, out)        \
  uvq_h3_server_new_versioned((loop), (quic), (h3),                         \
                              UVQ_H3_CALLBACKS_VERSION, (callbacks),        \
                              (user_data), (out))
#define uvq_h3_client_new(loop, quic, h3, callbacks, user_data, out)        \
  uvq_h3_client_new_versioned((loop), (quic), (h3),                         \
                              UVQ_H3_CALLBACKS_VERSION, (callbacks),        \
                              (user_data), (out))

/* Sans-I/O HTTP/3: a server or client on a core endpoint
 * (uvq_quic_endpoint_new_core), with no loop and no socket. The application
 * moves datagrams and time through uvq_h3_endpoint(h3) with
 * uvq_quic_endpoint_input(), uvq_quic_endpoint_expire() and
 * uvq_quic_endpoint_flush(), and io.send gets what to send; io is copied.
 * In io's callbacks uvq_quic_endpoint_get_data(ep) is the uvq_h3_t (its
 * user_data: uvq_h3_get_data()). A server answers what input brings it,
 * without uvq_h3_listen() (UV_EINVAL); a client connects with
 * uvq_h3_connect_ex() and opts->local with a port. uvq_h3_close() ends at
 * once: close_cb runs before it returns (or, from inside a callback,
 * before the call into the endpoint that ran it returns). Errors as the
 * loop versions, and UV_EINVAL for a NULL io or io->send. */
UVQ_EXTERN int uvq_h3_server_new_core_versioned(
    const uvq_quic_config_t* quic,
    const uvq_h3_config_t* h3,
    int callbacks_version,
    const uvq_h3_callbacks_t* callbacks,
    int io_version,
    const uvq_quic_io_t* io,
    void* user_data,
    uvq_h3_t** out);
UVQ_EXTERN int uvq_h3_client_new_core_versioned(
    const uvq_quic_config_t* quic,
    const uvq_h3_config_t* h3,
    int callbacks_version,
    const uvq_h3_callbacks_t* callbacks,
    int io_version,
    const uvq_quic_io_t* io,
    void* user_data,
    uvq_h3_t** out);
#define uvq_h3_server_new_core(quic, h3, callbacks, io, user_data, out)     \
  uvq_h3_server_new_core_versioned((quic), (h3), UVQ_H3_CALLBACKS_VERSION,  \
                                   (callbacks), UVQ_QUIC_IO_VERSION, (io),  \
                                   (user_data), (out))
#define uvq_h3_client_new_core(quic, h3, callbacks, io, user_data, out)     \
  uvq_h3_client_new_core_versioned((quic), (h3), UVQ_H3_CALLBACKS_VERSION,  \
                                   (callbacks), UVQ_QUIC_IO_VERSION, (io),  \
                                   (user_data), (out))

/* Server: binds and starts answering. To answer on a socket the
 * application owns instead, pass it to uvq_quic_endpoint_open() on
 * uvq_h3_endpoint(h3); it is given back once close_cb has run. */
UVQ_EXTERN int uvq_h3_listen(uvq_h3_t* h3, const struct sockaddr* addr);

/* Client: binds an ephemeral port (unless uvq_quic_endpoint_open() gave
 * the endpoint a socket) and connects; connected follows. sni
 * names the server (certificate check and :authority default). */
UVQ_EXTERN int uvq_h3_connect(uvq_h3_t* h3,
                              const struct sockaddr* remote,
                              const char* sni);

/* Client: uvq_h3_connect with the options of uvq_quic_connect():
 * server_name (as sni above), a session ticket, a local address, the
 * first Initial's QUIC version. When the ticket allows 0-RTT,
 * uvq_h3_request() works at once, before connected: those requests go as
 * early data (uvq_quic_conn_stats_t.zero_rtt tells whether the server took
 * them; if not, they are sent again after the handshake). */
UVQ_EXTERN int uvq_h3_connect_ex(uvq_h3_t* h3,
                                 const struct sockaddr* remote,
                                 const uvq_quic_connect_opts_t* opts);

/* Client: sends a request on the connection. authority and scheme may be
 * NULL (the SNI and "https"). body may be NULL. req_data is readable with
 * uvq_h3_req_get_data(). UV_ENOTCONN before connected (unless 0-RTT is
 * possible: uvq_h3_connect_ex), UV_EAGAIN when the
 * server's stream limit is reached (try again from requests_available). */
UVQ_EXTERN int uvq_h3_request(uvq_h3_t* h3,
                              const char* method,
                              const char* scheme,
                              const char* authority,
                              const char* path,
                              const uvq_h3_header_t* headers,
                              size_t nheaders,
                              const uvq_h3_body_t* body,
                              void* req_data,
                              uvq_h3_req_t** out);

/* Server: answers req with status, headers and body (NULL: none). Headers
 * are copied; a content-length is added for memory and file bodies.
 * UV_EALREADY if already answered. */
UVQ_EXTERN int uvq_h3_respond(uvq_h3_req_t* req,
                              int status,
                              const uvq_h3_header_t* headers,
                              size_t nheaders,
                              const uvq_h3_body_t* body);

/* Server: answers a GET or HEAD for req's path from the directory root:
 * 200 with content-type and content-length, 404 for what is not there
 * (or not a regular file), 400 for a path that tries to leave root
 * ("..", NUL, backslash), 405 for other methods. "/" serves index.html. */
UVQ_EXTERN int uvq_h3_serve_file(uvq_h3_req_t* req, const char* root);

/* A callback body that returned UV_EAGAIN has data again. */
UVQ_EXTERN int uvq_h3_resume(uvq_h3_req_t* req);

/* Cancels an exchange: resets the stream with app_error. */
UVQ_EXTERN int uvq_h3_cancel(uvq_h3_req_t* req, uint64_t app_error);

/* Request fields (server: of the request; client: of the response, with
 * method/path/authority/scheme NULL). Not NUL-terminated. */
UVQ_EXTERN const char* uvq_h3_req_method(const uvq_h3_req_t* req, size_t* len);
UVQ_EXTERN const char* uvq_h3_req_path(const uvq_h3_req_t* req, size_t* len);
UVQ_EXTERN const char* uvq_h3_req_authority(const uvq_h3_req_t* req,
                                            size_t* len);
UVQ_EXTERN const char* uvq_h3_req_scheme(const uvq_h3_req_t* req, size_t* len);
/* The i-th regular header (pseudo-headers excluded); UV_ENOENT past the
 * end. */
UVQ_EXTERN int uvq_h3_req_header(const uvq_h3_req_t* req,
                                 size_t i,
                                 uvq_h3_header_t* header);
UVQ_EXTERN void* uvq_h3_req_get_data(const uvq_h3_req_t* req);
UVQ_EXTERN void uvq_h3_req_set_data(uvq_h3_req_t* req, void* data);
UVQ_EXTERN uvq_h3_t* uvq_h3_req_h3(const uvq_h3_req_t* req);
UVQ_EXTERN uvq_quic_conn_t* uvq_h3_req_conn(const uvq_h3_req_t* req);
/* Body bytes received so far. */
UVQ_EXTERN uint64_t uvq_h3_req_bytes_received(const uvq_h3_req_t* req);

UVQ_EXTERN void* uvq_h3_get_data(const uvq_h3_t* h3);
UVQ_EXTERN uvq_quic_endpoint_t* uvq_h3_endpoint(uvq_h3_t* h3);
/* Client: the connection, NULL before uvq_h3_connect. */
UVQ_EXTERN uvq_quic_conn_t* uvq_h3_conn(uvq_h3_t* h3);

/* Graceful shutdown: a server sends GOAWAY on every connection (RFC 9114,
 * 5.2), lets requests in progress finish, then closes; a client closes
 * once its requests are done. close_cb runs last. */
UVQ_EXTERN void uvq_h3_shutdown(uvq_h3_t* h3, void (*close_cb)(uvq_h3_t*));

/* Closes at once: exchanges in progress end with H3_REQUEST_CANCELLED. */
UVQ_EXTERN void uvq_h3_close(uvq_h3_t* h3, void (*close_cb)(uvq_h3_t*));

#ifdef __cplusplus
}
#endif

#endif /* UVQ_H3_H */
