/* Private declarations of the HTTP/3 layer (h3.c, h3-send.c, h3-file.c). */
#ifndef UVQ_QUIC_H3_INTERNAL_H
#define UVQ_QUIC_H3_INTERNAL_H

/* HTTP/3 is an application protocol on the QUIC layer's public interface
 * (uvq_quic_conn_set_app): it includes none of quic/'s private headers
 * and no ngtcp2 header. */
#include "uvq/h3.h"
#include "uvq/quic.h"

#include <nghttp3/nghttp3.h>

/* File and callback bodies are read in chunks of this size and kept until
 * acknowledged; at most this many bytes of them are in flight per
 * response, which bounds memory while covering the congestion window. */
#define UVQ__H3_CHUNK (64 * 1024)
#define UVQ__H3_MAX_INFLIGHT (8u << 20)

/* A stream reset both ways (RESET_STREAM and STOP_SENDING). */
#define UVQ__H3_SHUT_BOTH (UVQ_QUIC_SHUT_WRITE | UVQ_QUIC_SHUT_READ)

struct uvq__h3_chunk {
  struct uvq__h3_chunk* next;
  size_t len;
  uint8_t data[UVQ__H3_CHUNK];
};

/* The count of field lines in a request's header section, read from the
 * stream's bytes before nghttp3 reads them (h3-scan.c). */
struct uvq__h3_scan {
  uint8_t frame_state;
  uint8_t field_state;
  uint8_t after;          /* field state after the integer or string */
  uint8_t int_is_len;     /* the integer is a string length */
  uint8_t int_shift;
  uint8_t varint_left;    /* bytes of the QUIC varint still to come */
  uint8_t complete;       /* the section was read whole and well formed */
  uint64_t varint;
  uint64_t frame_type;
  uint64_t frame_left;    /* bytes of the current frame still to come */
  uint64_t int_value;
  uint64_t skip;          /* string bytes still to skip */
  uint32_t lines;         /* field lines counted so far */
};

struct uvq__h3_conn {
  uvq_h3_t* h3;
  uvq_quic_conn_t* qc;
  nghttp3_conn* hconn;
  struct uvq__h3_conn* next;
  struct uvq__h3_conn* prev;
  size_t nreqs;
  struct uvq_h3_req_s* reqs;   /* open exchanges */
  int going_away;
};

struct uvq_h3_s {
  uv_loop_t* loop;
  int is_server;
  uvq_quic_endpoint_t* ep;
  uvq_h3_callbacks_t cb;
  uvq_h3_config_t cfg;
  void* user_data;
  /* Bidirectional streams a client may open at first: the QUIC
   * configuration's max_streams_bidi, as HTTP/3 set it. */
  uint64_t max_streams_bidi;
  struct uvq__h3_conn* conns;
  /* Client. */
  struct uvq__h3_conn* client;
  char* sni;
  int connected;
  /* 0-RTT: requests may go before the handshake completes. */
  int early;
  /* Shutdown. */
  int shutting_down;
  int closing;
  void (*close_cb)(uvq_h3_t*);
  /* uvq_h3_serve_file's root, kept open, and its small-file cache
   * (cfg.file_cache_ms; NULL until first used). */
  char* root_path;
  int root_fd;
  struct uvq__h3_fentry* fcache;
};

/* An immutable file body shared by the cache and the responses that send
 * it: freed when the last of them lets go. */
typedef struct uvq__h3_blob {
  unsigned int refs;
  size_t len;
  char data[];
} uvq__h3_blob_t;

void uvq__h3_blob_unref(uvq__h3_blob_t* blob);
void uvq__h3_file_cache_free(uvq_h3_t* h3);

struct uvq_h3_req_s {
  uvq_h3_t* h3;
  struct uvq__h3_conn* hc;
  int64_t stream_id;
  void* user_data;
  /* The peer's header section. */
  char* method;
  size_t methodlen;
  char* path;
  size_t pathlen;
  char* authority;
  size_t authoritylen;
  char* scheme;
  size_t schemelen;
  uvq_h3_header_t* headers;
  size_t nheaders;
  size_t headers_cap;
  int in_trailers;
  int status;
  uint64_t bytes_received;
  /* What this side sends. */
  int responded;
  uvq_h3_body_t body;
  int close_fd;           /* uvq opened body.fd (serve_file) */
  uvq__h3_blob_t* blob;   /* body.data lives here (serve_file's cache) */
  uint64_t produced;      /* body bytes handed to nghttp3 */
  uint64_t acked;         /* of those, acknowledged */
  uint64_t chunks_start;  /* body offset of the first unacknowledged chunk */
  int eof;
  int would_block;
  int window_blocked;     /* would_block because of the in-flight limit */
  size_t header_bytes;    /* the peer's header section, as RFC 9114 4.2.2 counts */
  int too_large;
  struct uvq__h3_chunk* chunks;      /* unacknowledged, oldest first */
  struct uvq__h3_chunk* chunks_tail;
  struct uvq__h3_chunk* spare;
  int done;
  int peer_ended;         /* the peer's message arrived in full */
  /* Server: the request's header section, counted two ways, and what
   * became of it. A request is created when its stream's first bytes
   * arrive; nghttp3 knows it (bound) from its first HEADERS frame on; the
   * application sees it (announced: request, body, end, done) only once
   * its header section arrived well formed. */
  struct uvq__h3_scan scan;
  uint32_t nfields;       /* fields nghttp3 passed to recv_header */
  int bound;
  int announced;
  struct uvq_h3_req_s* next;
  struct uvq_h3_req_s* prev;
};

/* h3.c */
uvq_h3_req_t* uvq__h3_req_new(struct uvq__h3_conn* hc, int64_t stream_id);
void uvq__h3_req_free(uvq_h3_req_t* req);

/* h3-scan.c: feeds a request stream's bytes in order; the scan ends by
 * itself after the first HEADERS frame (uvq__h3_scan_done). */
void uvq__h3_scan_feed(struct uvq__h3_scan* s, const uint8_t* data,
                       size_t len);
int uvq__h3_scan_done(const struct uvq__h3_scan* s);

/* h3-file.c */
int uvq__h3_respond_text(uvq_h3_req_t* req, int status, const char* text);

/* compat.c: read in the layout of the caller's version. */
int uvq__h3_config_load(const uvq_h3_config_t* in, uvq_h3_config_t* out);
int uvq__h3_callbacks_load(int version,
                           const uvq_h3_callbacks_t* in,
                           uvq_h3_callbacks_t* out);

#endif /* UVQ_QUIC_H3_INTERNAL_H */
