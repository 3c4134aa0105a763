/* A uvq HTTP/3 server for the interop tests: it serves a document root
 * with uvq_h3_serve_file(), except for POST /echo-count, which it answers
 * with the number of body bytes it received (and checks them against the
 * expected body), and GET /slice/NAME/OFFSET/LENGTH, which it answers with
 * that part of the root's file NAME as a UVQ_H3_BODY_FILE body. Every
 * request is recorded in order.
 */
#ifndef UVQ_TEST_INTEROP_SERVER_H
#define UVQ_TEST_INTEROP_SERVER_H

#include "interop-helpers.h"
#include "uvq/h3.h"

#define IT_SERVER_MAX_REQS 128

typedef struct it_server_req_s {
  char method[16];
  char path[256];
  /* What uvq_h3_serve_file() or uvq_h3_respond() returned. */
  int respond_rv;
  unsigned int ends;
  unsigned int dones;
  uint64_t app_error;
  /* Request body bytes, and the offset of the first one that differs from
   * the expected body, or -1. */
  uint64_t body_bytes;
  int64_t bad_offset;
  char reply[32];
  int slice_fd;      /* the file a /slice answer reads, or -1 */
} it_server_req_t;

typedef struct it_server_s {
  it_env_t* env;
  uvq_h3_t* h3;
  const char* root;
  int port;
  /* The body a POST /echo-count is expected to carry. */
  const uint8_t* post_body;
  size_t post_len;
  it_server_req_t reqs[IT_SERVER_MAX_REQS];
  unsigned int nreqs;
  unsigned int dones;
  int closed;
} it_server_t;

/* Creates the server on 127.0.0.1, port 0, and reads the port back. */
void it_server_start(it_server_t* s, it_env_t* env, const char* root);

/* Shuts the server down gracefully and waits for its close callback. */
void it_server_stop(it_server_t* s);

/* The one request received for path (fails if none or several). */
const it_server_req_t* it_server_find(const it_server_t* s, const char* path);

/* Connections the server accepted. */
uint64_t it_server_connections(it_server_t* s);

#endif /* UVQ_TEST_INTEROP_SERVER_H */
