/* A uvq HTTP/3 client against ngtcp2's gtlsserver (GnuTLS). */
#include <string.h>

#include "interop-helpers.h"
#include "uvq/h3.h"

/* Requests in flight at once. */
#define CONCURRENCY 10
/* Every file, then one path that does not exist. */
#define NREQS (IT_FILES + 1)
#define MISSING_PATH "/small/no-such-file.bin"

static const char* const gtlsserver_paths[] = {
  "/usr/sbin/gtlsserver", "/usr/bin/gtlsserver", "/usr/local/bin/gtlsserver",
  NULL
};

typedef struct creq_s {
  const char* path;
  const it_file_t* file;  /* NULL for the missing path */
  int status;
  unsigned int responses;
  unsigned int ends;
  unsigned int dones;
  uint64_t app_error;
  uint64_t rx;
  int64_t bad_offset;     /* first byte that differs from the file, or -1 */
  uvq_quic_conn_t* conn;
} creq_t;

typedef struct client_test_s {
  it_env_t env;
  it_fileset_t fs;
  uvq_h3_t* h3;
  creq_t reqs[NREQS];
  int next;
  int inflight;
  int max_inflight;
  int finished;
  unsigned int connected_calls;
  int connect_failed;
  unsigned int closed_calls;
  uvq_quic_error_t closed_error;
  int h3_closed;
} client_test_t;

static void issue_next(client_test_t* t) {
  creq_t* r;

  while (t->inflight < CONCURRENCY && t->next < NREQS) {
    r = &t->reqs[t->next++];
    ASSERT_OK(uvq_h3_request(t->h3, "GET", NULL, NULL, r->path, NULL, 0, NULL,
                             r, NULL));
    t->inflight++;
    if (t->inflight > t->max_inflight)
      t->max_inflight = t->inflight;
  }
}

static void on_connected(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  client_test_t* t = uvq_h3_get_data(h3);

  t->connected_calls++;
  if (error != NULL) {
    t->connect_failed = 1;
    t->closed_error = *error;
    return;
  }
  issue_next(t);
}

static void on_response(uvq_h3_req_t* req, int status) {
  creq_t* r = uvq_h3_req_get_data(req);

  r->responses++;
  r->status = status;
}

static void on_body(uvq_h3_req_t* req, const uint8_t* data, size_t len) {
  creq_t* r = uvq_h3_req_get_data(req);
  size_t i;

  if (r->file != NULL && r->bad_offset < 0) {
    for (i = 0; i < len; i++) {
      if (r->rx + i >= r->file->len ||
          data[i] != r->file->data[r->rx + i]) {
        r->bad_offset = (int64_t) (r->rx + i);
        break;
      }
    }
  }
  r->rx += len;
}

static void on_end(uvq_h3_req_t* req) {
  creq_t* r = uvq_h3_req_get_data(req);

  r->ends++;
}

static void on_h3_closed(uvq_h3_t* h3) {
  client_test_t* t = uvq_h3_get_data(h3);

  t->h3_closed++;
}

static void on_done(uvq_h3_req_t* req, uint64_t app_error) {
  client_test_t* t = uvq_h3_get_data(uvq_h3_req_h3(req));
  creq_t* r = uvq_h3_req_get_data(req);

  r->dones++;
  r->app_error = app_error;
  r->conn = uvq_h3_req_conn(req);
  ASSERT_EQ(r->rx, uvq_h3_req_bytes_received(req));
  t->inflight--;
  t->finished++;
  issue_next(t);
  if (t->finished == NREQS)
    uvq_h3_shutdown(t->h3, on_h3_closed);
}

static void on_closed(uvq_h3_t* h3, const uvq_quic_error_t* error) {
  client_test_t* t = uvq_h3_get_data(h3);

  t->closed_calls++;
  if (error != NULL)
    t->closed_error = *error;
}

/* The big file and every small one, CONCURRENCY at a time on one
 * connection, then a 404; every body checked byte for byte as it comes. */
TEST_IMPL(interop_gtlsserver_fetch) {
  const char* server;
  client_test_t* t;
  char* argv[16];
  char log[256];
  uvq_h3_callbacks_t cb;
  uvq_quic_config_t config;
  struct sockaddr_in sin;
  it_proc_t p;
  creq_t* r;
  int port;
  int i;

  server = it_find_peer("ngtcp2's gtlsserver (package ngtcp2-server)",
                        gtlsserver_paths);
  t = calloc(1, sizeof(*t));
  ASSERT_NOT_NULL(t);
  it_env_init(&t->env);
  it_fileset_make(&t->env, &t->fs);
  for (i = 0; i < NREQS; i++) {
    r = &t->reqs[i];
    r->bad_offset = -1;
    if (i < IT_FILES) {
      r->file = &t->fs.files[i];
      r->path = r->file->path;
    } else {
      r->path = MISSING_PATH;
    }
  }

  it_path(log, sizeof(log), t->env.dir, "gtlsserver.log");
  i = 0;
  argv[i++] = (char*) server;
  argv[i++] = "-q";
  argv[i++] = "-d";
  argv[i++] = t->fs.root;
  argv[i++] = "127.0.0.1";
  argv[i++] = "@PORT@";
  argv[i++] = t->env.key;
  argv[i++] = t->env.cert;
  argv[i] = NULL;
  port = it_spawn_server(&t->env, &p, "gtlsserver", argv, log);

  memset(&cb, 0, sizeof(cb));
  cb.connected = on_connected;
  cb.response = on_response;
  cb.body = on_body;
  cb.end = on_end;
  cb.done = on_done;
  cb.closed = on_closed;
  uvq_quic_config_default(&config);
  config.ca_file = t->env.cert;
  config.alpn = "h3";
  ASSERT_OK(uvq_h3_client_new(&t->env.loop, &config, NULL, &cb, t, &t->h3));
  ASSERT_OK(uv_ip4_addr("127.0.0.1", port, &sin));
  ASSERT_OK(uvq_h3_connect(t->h3, (const struct sockaddr*) &sin, "localhost"));

  if (!it_run_until(&t->env, &t->h3_closed, IT_WAIT_MS) ||
      t->connect_failed) {
    it_dump_log(&p);
    test_fail(__FILE__, __LINE__,
              "connected %u (failed %d), finished %d of %d, error kind %d "
              "code 0x%llx library %d",
              t->connected_calls, t->connect_failed, t->finished, NREQS,
              t->closed_error.kind,
              (unsigned long long) t->closed_error.code,
              t->closed_error.library_error);
  }
  ASSERT_EQ(t->h3_closed, 1);
  ASSERT_EQ(t->connected_calls, 1);
  ASSERT_EQ(t->finished, NREQS);
  ASSERT_EQ(t->max_inflight, CONCURRENCY);

  for (i = 0; i < NREQS; i++) {
    r = &t->reqs[i];
    if (r->status != (r->file != NULL ? 200 : 404) || r->dones != 1 ||
        r->responses != 1 || r->ends != 1 ||
        r->app_error != UVQ_H3_NO_ERROR || r->bad_offset != -1 ||
        (r->file != NULL && r->rx != r->file->len)) {
      test_fail(__FILE__, __LINE__,
                "%s: status %d, responses %u, ends %u, dones %u, app_error "
                "0x%llx, %llu bytes of %zu, first bad byte at %lld",
                r->path, r->status, r->responses, r->ends, r->dones,
                (unsigned long long) r->app_error,
                (unsigned long long) r->rx,
                r->file != NULL ? r->file->len : 0, (long long) r->bad_offset);
    }
    /* One connection carried everything. */
    ASSERT_NOT_NULL(r->conn);
    ASSERT_PTR_EQ(r->conn, t->reqs[0].conn);
  }
  /* The shutdown closed the connection from this side with H3_NO_ERROR,
   * and the closed callback said so, once. */
  ASSERT_EQ(t->closed_calls, 1);
  ASSERT_EQ(t->closed_error.kind, UVQ_QUIC_ERROR_APPLICATION);
  ASSERT_EQ(t->closed_error.remote, 0);
  ASSERT_UINT_EQ(t->closed_error.code, UVQ_H3_NO_ERROR);

  it_stop(&t->env, &p);
  it_fileset_free(&t->fs);
  it_env_close(&t->env);
  free(t);
  return 0;
}
