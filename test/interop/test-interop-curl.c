/* libcurl's HTTP/3 client (ngtcp2 + nghttp3 + GnuTLS) against a uvq
 * HTTP/3 server. The client is curl-h3-fetch, a program of its own (see
 * there why), spawned per test. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "interop-server.h"

#define POST_SIZE (3u << 20) /* 3 MiB: larger than the default windows */
#define POST_REQUESTS 3

#ifdef UVQ_CURL_H3_FETCH
typedef struct fetch_result_s {
  int seen;
  int curl_code;
  int status;
  char version[8];
  unsigned long long bytes;
  long connects;
} fetch_result_t;

/* Parses curl-h3-fetch's output; returns the connections line's value. */
static long parse_fetch_log(const char* log, fetch_result_t* results, int n) {
  fetch_result_t r;
  const char* line;
  uint8_t* out;
  size_t len;
  long connections = -1;
  int index;

  out = it_read_file(log, &len);
  ASSERT_NOT_NULL(out);
  for (line = (const char*) out; line != NULL; line = strchr(line, '\n')) {
    if (*line == '\n')
      line++;
    memset(&r, 0, sizeof(r));
    if (sscanf(line, "result %d %d %d %7s %llu %ld", &index, &r.curl_code,
               &r.status, r.version, &r.bytes, &r.connects) == 6) {
      ASSERT(index >= 0 && index < n);
      ASSERT_EQ(results[index].seen, 0);
      r.seen = 1;
      results[index] = r;
    } else {
      sscanf(line, "connections %ld", &connections);
    }
  }
  free(out);
  return connections;
}

/* How a server-side exchange ended: exactly once, with H3_NO_ERROR. libcurl
 * closes the connection with a transport CONNECTION_CLOSE(NO_ERROR) right
 * after its last transfer, often before it acknowledged the last response
 * packets; an exchange whose request arrived and whose response was handed
 * over in full still counts as complete then. */
static void check_server_done(const it_server_req_t* r) {
  ASSERT_EQ(r->dones, 1);
  ASSERT_UINT_EQ(r->app_error, UVQ_H3_NO_ERROR);
}

static void fetch_log_has_h3(it_proc_t* p) {
  if (p->exit_status == 77) {
    it_dump_log(p);
    RETURN_SKIP("this libcurl has no HTTP/3");
  }
}

/* The big file and every small one, ten at a time over one multiplexed
 * connection (CURLOPT_PIPEWAIT), each body compared byte for byte. */
TEST_IMPL(interop_curl_download) {
  char* argv[16 + IT_FILES];
  char urls[IT_FILES][128];
  fetch_result_t results[IT_FILES];
  char out[256];
  char log[256];
  char file[320];
  it_env_t env;
  it_fileset_t fs;
  it_server_t s;
  it_proc_t p;
  long connections;
  int argc;
  int i;

  it_env_init(&env);
  it_fileset_make(&env, &fs);
  it_path(out, sizeof(out), env.dir, "out");
  it_mkdir(out);
  it_path(log, sizeof(log), env.dir, "curl.log");
  it_server_start(&s, &env, fs.root);

  argc = 0;
  argv[argc++] = UVQ_CURL_H3_FETCH;
  argv[argc++] = "--cacert";
  argv[argc++] = env.cert;
  argv[argc++] = "--outdir";
  argv[argc++] = out;
  argv[argc++] = "--parallel";
  argv[argc++] = "10";
  for (i = 0; i < IT_FILES; i++) {
    /* The certificate names IP 127.0.0.1; "localhost" might resolve to
     * ::1 first, where nothing listens. */
    snprintf(urls[i], sizeof(urls[i]), "https://127.0.0.1:%d%s", s.port,
             fs.files[i].path);
    argv[argc++] = urls[i];
  }
  argv[argc] = NULL;
  ASSERT_OK(it_spawn(&env, &p, "curl-h3-fetch", argv, log));
  if (!it_run_until(&env, &p.exited, IT_WAIT_MS)) {
    it_dump_log(&p);
    FATAL("curl-h3-fetch did not finish");
  }
  fetch_log_has_h3(&p);
  if (p.exit_status != 0 || p.term_signal != 0)
    it_dump_log(&p);
  ASSERT_EQ(p.term_signal, 0);
  ASSERT_EQ(p.exit_status, 0);

  memset(results, 0, sizeof(results));
  connections = parse_fetch_log(log, results, IT_FILES);
  for (i = 0; i < IT_FILES; i++) {
    ASSERT_EQ(results[i].seen, 1);
    ASSERT_EQ(results[i].curl_code, 0);
    ASSERT_EQ(results[i].status, 200);
    ASSERT_STR_EQ(results[i].version, "3");
    ASSERT_UINT_EQ(results[i].bytes, fs.files[i].len);
    snprintf(file, sizeof(file), "%s/%d.body", out, i);
    it_assert_file_eq(file, &fs.files[i]);
  }
  /* One connection, reused by every transfer: libcurl counted one new
   * connection in all, and the server accepted one. */
  fprintf(stderr, "libcurl: %ld new connection(s) for %d transfers\n",
          connections, IT_FILES);
  ASSERT_EQ(connections, 1);
  ASSERT_UINT_EQ(it_server_connections(&s), 1);
  ASSERT_EQ(s.nreqs, IT_FILES);
  ASSERT_EQ(s.dones, IT_FILES);
  for (i = 0; i < IT_FILES; i++) {
    const it_server_req_t* r = it_server_find(&s, fs.files[i].path);
    ASSERT_STR_EQ(r->method, "GET");
    ASSERT_OK(r->respond_rv);
    ASSERT_EQ(r->ends, 1);
    check_server_done(r);
  }

  it_server_stop(&s);
  it_fileset_free(&fs);
  it_env_close(&env);
  return 0;
}

/* POSTs with a 3 MiB body: a uvq request handler counts (and checks)
 * the body and answers with the count. */
TEST_IMPL(interop_curl_post) {
  char* argv[16 + POST_REQUESTS];
  char urls[POST_REQUESTS][128];
  fetch_result_t results[POST_REQUESTS];
  char expect[32];
  char body_path[256];
  char out[256];
  char log[256];
  char file[320];
  it_env_t env;
  it_server_t s;
  it_proc_t p;
  uint8_t* body;
  uint8_t* reply;
  size_t len;
  unsigned int j;
  int argc;
  int i;

  it_env_init(&env);
  it_path(body_path, sizeof(body_path), env.dir, "post.bin");
  body = it_make_file(body_path, POST_SIZE, 77);
  it_path(out, sizeof(out), env.dir, "out");
  it_mkdir(out);
  it_path(log, sizeof(log), env.dir, "curl.log");
  it_server_start(&s, &env, env.dir);
  s.post_body = body;
  s.post_len = POST_SIZE;

  argc = 0;
  argv[argc++] = UVQ_CURL_H3_FETCH;
  argv[argc++] = "--cacert";
  argv[argc++] = env.cert;
  argv[argc++] = "--outdir";
  argv[argc++] = out;
  argv[argc++] = "--parallel";
  argv[argc++] = "3";
  argv[argc++] = "--post";
  argv[argc++] = body_path;
  for (i = 0; i < POST_REQUESTS; i++) {
    snprintf(urls[i], sizeof(urls[i]), "https://127.0.0.1:%d/echo-count",
             s.port);
    argv[argc++] = urls[i];
  }
  argv[argc] = NULL;
  ASSERT_OK(it_spawn(&env, &p, "curl-h3-fetch", argv, log));
  if (!it_run_until(&env, &p.exited, IT_WAIT_MS)) {
    it_dump_log(&p);
    FATAL("curl-h3-fetch did not finish");
  }
  fetch_log_has_h3(&p);
  if (p.exit_status != 0 || p.term_signal != 0)
    it_dump_log(&p);
  ASSERT_EQ(p.term_signal, 0);
  ASSERT_EQ(p.exit_status, 0);

  memset(results, 0, sizeof(results));
  parse_fetch_log(log, results, POST_REQUESTS);
  snprintf(expect, sizeof(expect), "%u\n", POST_SIZE);
  for (i = 0; i < POST_REQUESTS; i++) {
    ASSERT_EQ(results[i].seen, 1);
    ASSERT_EQ(results[i].curl_code, 0);
    ASSERT_EQ(results[i].status, 200);
    ASSERT_STR_EQ(results[i].version, "3");
    snprintf(file, sizeof(file), "%s/%d.body", out, i);
    reply = it_read_file(file, &len);
    ASSERT_NOT_NULL(reply);
    ASSERT_STR_EQ((const char*) reply, expect);
    free(reply);
  }
  ASSERT_EQ(s.nreqs, POST_REQUESTS);
  ASSERT_EQ(s.dones, POST_REQUESTS);
  for (j = 0; j < s.nreqs; j++) {
    ASSERT_STR_EQ(s.reqs[j].method, "POST");
    ASSERT_STR_EQ(s.reqs[j].path, "/echo-count");
    ASSERT_UINT_EQ(s.reqs[j].body_bytes, POST_SIZE);
    ASSERT_EQ(s.reqs[j].bad_offset, -1);
    ASSERT_EQ(s.reqs[j].ends, 1);
    ASSERT_OK(s.reqs[j].respond_rv);
    check_server_done(&s.reqs[j]);
  }

  it_server_stop(&s);
  free(body);
  it_env_close(&env);
  return 0;
}

#else /* !UVQ_CURL_H3_FETCH */

#define SKIP_NO_CURL                                                          \
  RETURN_SKIP("libcurl (libcurl4-gnutls-dev with HTTP/3) was not found at "  \
              "build time: run tools/deps-quic.sh")

TEST_IMPL(interop_curl_download) {
  SKIP_NO_CURL;
}

TEST_IMPL(interop_curl_post) {
  SKIP_NO_CURL;
}

#endif /* UVQ_CURL_H3_FETCH */
