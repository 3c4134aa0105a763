#include "interop-server.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void copy_field(char* out, size_t size, const char* p, size_t len) {
  if (p == NULL)
    len = 0;
  if (len >= size)
    len = size - 1;
  memcpy(out, p != NULL ? p : "", len);
  out[len] = '\0';
}

static int is_echo(const it_server_req_t* r) {
  return strcmp(r->method, "POST") == 0 && strcmp(r->path, "/echo-count") == 0;
}

/* GET /slice/NAME/OFFSET/LENGTH: that part of the root's file NAME, sent
 * as a file body from an offset that need not be page-aligned. */
static int respond_slice(it_server_t* s, uvq_h3_req_t* req,
                         it_server_req_t* r) {
  char name[64];
  char file[512];
  unsigned long long off;
  unsigned long long len;
  uvq_h3_body_t body;

  if (sscanf(r->path, "/slice/%63[^/]/%llu/%llu", name, &off, &len) != 3)
    return -1;
  snprintf(file, sizeof(file), "%s/%s", s->root, name);
  r->slice_fd = open(file, O_RDONLY | O_CLOEXEC);
  ASSERT_GE(r->slice_fd, 0);
  memset(&body, 0, sizeof(body));
  body.kind = UVQ_H3_BODY_FILE;
  body.fd = r->slice_fd;
  body.offset = off;
  body.len = len;
  return uvq_h3_respond(req, 200, NULL, 0, &body);
}

static void on_request(uvq_h3_req_t* req) {
  it_server_t* s = uvq_h3_get_data(uvq_h3_req_h3(req));
  it_server_req_t* r;
  const char* p;
  size_t len;

  ASSERT_LT(s->nreqs, IT_SERVER_MAX_REQS);
  r = &s->reqs[s->nreqs++];
  memset(r, 0, sizeof(*r));
  r->bad_offset = -1;
  r->slice_fd = -1;
  p = uvq_h3_req_method(req, &len);
  copy_field(r->method, sizeof(r->method), p, len);
  p = uvq_h3_req_path(req, &len);
  copy_field(r->path, sizeof(r->path), p, len);
  uvq_h3_req_set_data(req, r);
  /* The echo answers at the end of the request body. */
  if (strncmp(r->path, "/slice/", 7) == 0)
    r->respond_rv = respond_slice(s, req, r);
  else if (!is_echo(r))
    r->respond_rv = uvq_h3_serve_file(req, s->root);
}

static void on_body(uvq_h3_req_t* req, const uint8_t* data, size_t len) {
  it_server_t* s = uvq_h3_get_data(uvq_h3_req_h3(req));
  it_server_req_t* r = uvq_h3_req_get_data(req);
  size_t i;

  for (i = 0; i < len && r->bad_offset < 0; i++) {
    uint64_t off = r->body_bytes + i;
    if (off >= s->post_len || data[i] != s->post_body[off])
      r->bad_offset = (int64_t) off;
  }
  r->body_bytes += len;
}

static void on_end(uvq_h3_req_t* req) {
  it_server_req_t* r = uvq_h3_req_get_data(req);
  uvq_h3_body_t body;
  uvq_h3_header_t header;

  r->ends++;
  if (!is_echo(r))
    return;
  snprintf(r->reply, sizeof(r->reply), "%llu\n",
           (unsigned long long) r->body_bytes);
  memset(&body, 0, sizeof(body));
  body.kind = UVQ_H3_BODY_MEMORY;
  body.data = r->reply;
  body.len = strlen(r->reply);
  header.name = "content-type";
  header.namelen = strlen(header.name);
  header.value = "text/plain";
  header.valuelen = strlen(header.value);
  r->respond_rv = uvq_h3_respond(req, 200, &header, 1, &body);
}

static void on_done(uvq_h3_req_t* req, uint64_t app_error) {
  it_server_t* s = uvq_h3_get_data(uvq_h3_req_h3(req));
  it_server_req_t* r = uvq_h3_req_get_data(req);

  s->dones++;
  ASSERT_NOT_NULL(r);
  r->dones++;
  if (r->slice_fd >= 0) {
    close(r->slice_fd);  /* a file body's fd stays the application's */
    r->slice_fd = -1;
  }
  r->app_error = app_error;
}

void it_server_start(it_server_t* s, it_env_t* env, const char* root) {
  uvq_h3_callbacks_t cb;
  uvq_quic_config_t config;
  struct sockaddr_storage ss;
  struct sockaddr_in sin;
  int len;

  memset(s, 0, sizeof(*s));
  s->env = env;
  s->root = root;
  memset(&cb, 0, sizeof(cb));
  cb.request = on_request;
  cb.body = on_body;
  cb.end = on_end;
  cb.done = on_done;
  uvq_quic_config_default(&config);
  config.cert_file = env->cert;
  config.key_file = env->key;
  config.alpn = "h3";
  /* UVQ_INTEROP_QLOG=DIR writes the server's qlog there (post-mortems). */
  config.qlog_dir = getenv("UVQ_INTEROP_QLOG");
  ASSERT_OK(uvq_h3_server_new(&env->loop, &config, NULL, &cb, s, &s->h3));
  ASSERT_OK(uv_ip4_addr("127.0.0.1", 0, &sin));
  ASSERT_OK(uvq_h3_listen(s->h3, (const struct sockaddr*) &sin));
  len = sizeof(ss);
  ASSERT_OK(uvq_udp_getsockname(uvq_quic_endpoint_udp(uvq_h3_endpoint(s->h3)),
                                (struct sockaddr*) &ss, &len));
  ASSERT_EQ(ss.ss_family, AF_INET);
  s->port = ntohs(((struct sockaddr_in*) &ss)->sin_port);
  ASSERT_GT(s->port, 0);
}

static void on_server_closed(uvq_h3_t* h3) {
  it_server_t* s = uvq_h3_get_data(h3);

  s->closed++;
}

void it_server_stop(it_server_t* s) {
  uvq_h3_shutdown(s->h3, on_server_closed);
  ASSERT(it_run_until(s->env, &s->closed, 5000));
  ASSERT_EQ(s->closed, 1);
}

uint64_t it_server_connections(it_server_t* s) {
  uvq_quic_endpoint_stats_t stats;

  ASSERT_OK(uvq_quic_endpoint_get_stats(uvq_h3_endpoint(s->h3), &stats));
  return stats.connections_accepted;
}

const it_server_req_t* it_server_find(const it_server_t* s, const char* path) {
  const it_server_req_t* found = NULL;
  unsigned int i;

  for (i = 0; i < s->nreqs; i++) {
    if (strcmp(s->reqs[i].path, path) != 0)
      continue;
    if (found != NULL)
      test_fail(__FILE__, __LINE__, "%s was requested twice", path);
    found = &s->reqs[i];
  }
  if (found == NULL)
    test_fail(__FILE__, __LINE__, "the server never saw %s", path);
  return found;
}
