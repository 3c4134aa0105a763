/* ngtcp2's gtlsclient (GnuTLS) against a uvq HTTP/3 server. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "interop-server.h"

static const char* const gtlsclient_paths[] = {
  "/usr/bin/gtlsclient", "/usr/local/bin/gtlsclient", NULL
};

/* Parts of the big file served as file bodies from offsets that are not
 * page-aligned (and one that is), saved under their length as name. */
#define IT_SLICES 3
static const struct {
  size_t off;
  size_t len;
} slices[IT_SLICES] = {{4097, 1000003}, {0, 65537}, {12288, 777}};

/* Every file of the set in one gtlsclient run (one connection, all
 * requests at once), saved with --download and compared byte for byte,
 * and the slices above of the big one. ciphers, when given, is
 * gtlsclient's --ciphers (a GnuTLS priority). */
static int download_all(const char* ciphers) {
  const char* client;
  char* argv[9 + IT_FILES + IT_SLICES];
  char slice_urls[IT_SLICES][160];
  it_file_t slice;
  char ciphers_arg[256];
  char urls[IT_FILES][128];
  char dl[256];
  char dl_arg[300];
  char log[256];
  char port[16];
  char file[320];
  it_env_t env;
  it_fileset_t fs;
  it_server_t s;
  it_proc_t p;
  int argc;
  int i;

  client = it_find_peer("ngtcp2's gtlsclient (package ngtcp2-client)",
                        gtlsclient_paths);
  it_env_init(&env);
  it_fileset_make(&env, &fs);
  it_path(dl, sizeof(dl), env.dir, "download");
  it_mkdir(dl);
  it_path(log, sizeof(log), env.dir, "gtlsclient.log");
  it_server_start(&s, &env, fs.root);

  snprintf(port, sizeof(port), "%d", s.port);
  snprintf(dl_arg, sizeof(dl_arg), "--download=%s", dl);
  argc = 0;
  argv[argc++] = (char*) client;
  argv[argc++] = "-q";
  argv[argc++] = "--exit-on-all-streams-close";
  argv[argc++] = "--timeout=15s";
  argv[argc++] = dl_arg;
  if (ciphers != NULL) {
    snprintf(ciphers_arg, sizeof(ciphers_arg), "--ciphers=%s", ciphers);
    argv[argc++] = ciphers_arg;
  }
  argv[argc++] = "127.0.0.1";
  argv[argc++] = port;
  for (i = 0; i < IT_FILES; i++) {
    snprintf(urls[i], sizeof(urls[i]), "https://localhost:%d%s", s.port,
             fs.files[i].path);
    argv[argc++] = urls[i];
  }
  for (i = 0; i < IT_SLICES; i++) {
    ASSERT_LE(slices[i].off + slices[i].len, fs.files[0].len);
    snprintf(slice_urls[i], sizeof(slice_urls[i]),
             "https://localhost:%d/slice/%s/%zu/%zu", s.port,
             fs.files[0].name, slices[i].off, slices[i].len);
    argv[argc++] = slice_urls[i];
  }
  argv[argc] = NULL;
  ASSERT_OK(it_spawn(&env, &p, "gtlsclient", argv, log));
  if (!it_run_until(&env, &p.exited, IT_WAIT_MS)) {
    it_dump_log(&p);
    FATAL("gtlsclient did not finish");
  }
  if (p.exit_status != 0 || p.term_signal != 0)
    it_dump_log(&p);
  ASSERT_EQ(p.term_signal, 0);
  ASSERT_EQ(p.exit_status, 0);

  for (i = 0; i < IT_FILES; i++) {
    it_path(file, sizeof(file), dl, fs.files[i].name);
    it_assert_file_eq(file, &fs.files[i]);
  }
  for (i = 0; i < IT_SLICES; i++) {
    memset(&slice, 0, sizeof(slice));
    snprintf(slice.name, sizeof(slice.name), "%zu", slices[i].len);
    slice.data = fs.files[0].data + slices[i].off;
    slice.len = slices[i].len;
    it_path(file, sizeof(file), dl, slice.name);
    it_assert_file_eq(file, &slice);
  }
  /* The server saw each request once, on one connection, and each
   * exchange ended cleanly. */
  ASSERT_EQ(s.nreqs, IT_FILES + IT_SLICES);
  ASSERT_EQ(s.dones, IT_FILES + IT_SLICES);
  ASSERT_UINT_EQ(it_server_connections(&s), 1);
  for (i = 0; i < IT_FILES; i++) {
    const it_server_req_t* r = it_server_find(&s, fs.files[i].path);
    ASSERT_STR_EQ(r->method, "GET");
    ASSERT_OK(r->respond_rv);
    ASSERT_EQ(r->ends, 1);
    ASSERT_EQ(r->dones, 1);
    ASSERT_UINT_EQ(r->app_error, UVQ_H3_NO_ERROR);
  }

  it_server_stop(&s);
  it_fileset_free(&fs);
  it_env_close(&env);
  return 0;
}

TEST_IMPL(interop_gtlsclient_download) {
  return download_all(NULL);
}

/* The client offers nothing but TLS_CHACHA20_POLY1305_SHA256, so every
 * packet both ways is sealed and opened by uvq's own ChaCha20-Poly1305
 * path (quic/crypto.c), which GnuTLS's must agree with byte for byte. */
TEST_IMPL(interop_gtlsclient_chacha20) {
  return download_all("NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:"
                      "+CHACHA20-POLY1305");
}

/* Paths that try to leave the document root get 400 and nothing from
 * outside it; ordinary paths next to them still work. gtlsclient sends
 * each :path exactly as given, so what uvq receives is what is listed. */
struct escape_case {
  const char* path;
  int status;
};

TEST_IMPL(interop_gtlsclient_path_escape) {
  static const struct escape_case cases[] = {
    {"/../etc/passwd", 400},
    {"/%2e%2e/etc/passwd", 400},
    {"/%2E%2E/etc/passwd", 400},
    {"/a/../../x", 400},
    {"/../secret.txt", 400},
    {"/%2e%2e/secret.txt", 400},
    {"/.%2e/secret.txt", 400},
    {"/a/..%2f..%2fsecret.txt", 400},
    {"/..%5csecret.txt", 400},
    {"/ok.txt%00.png", 400},
    {"/..", 400},
    /* Symbolic links inside the root that lead out of it: not regular
     * files of the root, so 404. */
    {"/link-to-secret.txt", 404},
    {"/link-to-parent/secret.txt", 404},
    /* Controls: the root itself still serves, and a missing file is 404. */
    {"/ok.txt", 200},
    {"/%6fk.txt", 200},
    {"/missing.txt", 404},
  };
  enum { NCASES = sizeof(cases) / sizeof(cases[0]) };
  static const char secret[] = "UVQ-INTEROP-SECRET-OUTSIDE-THE-ROOT\n";
  static const char ok[] = "UVQ-INTEROP-OK-INSIDE-THE-ROOT\n";
  const char* client;
  char* argv[16 + NCASES];
  char urls[NCASES][160];
  char root[256];
  char file[320];
  char log[256];
  char port[16];
  int status[NCASES];
  struct {
    char data[512];
    size_t len;
  } bodies[NCASES];
  int body;
  it_env_t env;
  it_server_t s;
  it_proc_t p;
  uint8_t* out;
  size_t outlen;
  const char* line;
  unsigned int stream;
  int code;
  int argc;
  int i;

  client = it_find_peer("ngtcp2's gtlsclient (package ngtcp2-client)",
                        gtlsclient_paths);
  it_env_init(&env);
  /* dir/secret.txt sits next to the root dir/www. */
  it_path(root, sizeof(root), env.dir, "www");
  it_mkdir(root);
  it_path(file, sizeof(file), env.dir, "secret.txt");
  it_write_file(file, secret, strlen(secret));
  it_path(file, sizeof(file), root, "ok.txt");
  it_write_file(file, ok, strlen(ok));
  it_path(file, sizeof(file), root, "link-to-secret.txt");
  ASSERT_OK(symlink("../secret.txt", file));
  it_path(file, sizeof(file), root, "link-to-parent");
  ASSERT_OK(symlink("..", file));
  it_path(log, sizeof(log), env.dir, "gtlsclient.log");
  it_server_start(&s, &env, root);

  /* Without -q gtlsclient prints each response's :status; the bodies go
   * to the same log as hex dumps (--no-http-dump is not given), so
   * anything served from outside the root would show up there. */
  snprintf(port, sizeof(port), "%d", s.port);
  argc = 0;
  argv[argc++] = (char*) client;
  argv[argc++] = "--no-quic-dump";
  argv[argc++] = "--exit-on-all-streams-close";
  argv[argc++] = "--timeout=15s";
  argv[argc++] = "127.0.0.1";
  argv[argc++] = port;
  for (i = 0; i < NCASES; i++) {
    snprintf(urls[i], sizeof(urls[i]), "https://localhost:%d%s", s.port,
             cases[i].path);
    argv[argc++] = urls[i];
  }
  argv[argc] = NULL;
  ASSERT_OK(it_spawn(&env, &p, "gtlsclient", argv, log));
  if (!it_run_until(&env, &p.exited, IT_WAIT_MS)) {
    it_dump_log(&p);
    FATAL("gtlsclient did not finish");
  }
  if (p.exit_status != 0 || p.term_signal != 0)
    it_dump_log(&p);
  ASSERT_EQ(p.term_signal, 0);
  ASSERT_EQ(p.exit_status, 0);

  /* Request i is stream 4 * i. gtlsclient prints "http: stream 0x8
   * [:status: 400]", then "http: stream 0x8 body 9 bytes" followed by a
   * hex dump of the body ("00000000  62 61 64 ...  |bad...|"). */
  out = it_read_file(log, &outlen);
  ASSERT_NOT_NULL(out);
  memset(bodies, 0, sizeof(bodies));
  for (i = 0; i < NCASES; i++)
    status[i] = -1;
  body = -1;
  for (line = (const char*) out; line != NULL; line = strchr(line, '\n')) {
    unsigned int offset;
    unsigned int nbytes;
    const char* q;
    unsigned int byte;
    int used;

    if (*line == '\n')
      line++;
    if (sscanf(line, "http: stream 0x%x [:status: %d]", &stream, &code) == 2) {
      ASSERT_EQ(stream % 4, 0);
      ASSERT_LT(stream / 4, NCASES);
      ASSERT_EQ(status[stream / 4], -1);
      status[stream / 4] = code;
      continue;
    }
    if (sscanf(line, "http: stream 0x%x body %u bytes", &stream, &nbytes) ==
        2) {
      ASSERT_LT(stream / 4, NCASES);
      body = (int) (stream / 4);
      continue;
    }
    if (body < 0 || sscanf(line, "%8x  %n", &offset, &used) != 1 ||
        used != 10) {
      body = -1;
      continue;
    }
    /* Up to 16 "xx " groups (with an extra space after the 8th), then
     * "|...|". */
    for (q = line + used; *q != '|' && *q != '\n' && *q != '\0';) {
      if (*q == ' ') {
        q++;
        continue;
      }
      ASSERT_EQ(sscanf(q, "%2x", &byte), 1);
      ASSERT_LT(bodies[body].len, sizeof(bodies[body].data));
      bodies[body].data[bodies[body].len++] = (char) byte;
      q += 2;
    }
  }
  free(out);
  for (i = 0; i < NCASES; i++) {
    if (status[i] != cases[i].status ||
        memmem(bodies[i].data, bodies[i].len, "UVQ-INTEROP-SECRET", 18) !=
            NULL ||
        memmem(bodies[i].data, bodies[i].len, "root:", 5) != NULL) {
      it_dump_log(&p);
      test_fail(__FILE__, __LINE__, "%s: status %d, expected %d; body %.*s",
                cases[i].path, status[i], cases[i].status,
                (int) bodies[i].len, bodies[i].data);
    }
    /* The controls carry ok.txt, exactly. */
    if (cases[i].status == 200) {
      ASSERT_EQ(bodies[i].len, strlen(ok));
      ASSERT_MEM_EQ(bodies[i].data, ok, strlen(ok));
    }
  }

  /* uvq received every :path byte for byte and answered each one. */
  ASSERT_EQ(s.nreqs, NCASES);
  ASSERT_EQ(s.dones, NCASES);
  for (i = 0; i < NCASES; i++) {
    const it_server_req_t* r = it_server_find(&s, cases[i].path);
    ASSERT_STR_EQ(r->method, "GET");
    ASSERT_OK(r->respond_rv);
    ASSERT_EQ(r->dones, 1);
    ASSERT_UINT_EQ(r->app_error, UVQ_H3_NO_ERROR);
  }

  it_server_stop(&s);
  it_env_close(&env);
  return 0;
}
