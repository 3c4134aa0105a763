/* ngtcp2's gtlsclient (GnuTLS) against a uvq HTTP/3 server. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
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

/* One gtlsclient run that asks for each case's :path on one connection
 * and checks the status and body of every answer: nothing from outside
 * the root (dir/secret.txt next to it, or /etc/passwd) ever comes back,
 * and the 200s carry ok.txt exactly. gtlsclient sends each :path exactly
 * as given, so what uvq receives is what is listed. */
struct fetch_case {
  const char* path;
  int status;
};

#define IT_MAX_CASES 32

static const char secret_text[] = "UVQ-INTEROP-SECRET-OUTSIDE-THE-ROOT\n";
static const char ok_text[] = "UVQ-INTEROP-OK-INSIDE-THE-ROOT\n";

/* env.dir/www is the root, with ok.txt in it and env.dir/secret.txt next
 * to it. */
static void make_root(it_env_t* env, char* root, size_t size) {
  char file[320];

  it_path(root, size, env->dir, "www");
  it_mkdir(root);
  it_path(file, sizeof(file), env->dir, "secret.txt");
  it_write_file(file, secret_text, strlen(secret_text));
  it_path(file, sizeof(file), root, "ok.txt");
  it_write_file(file, ok_text, strlen(ok_text));
}

static void fetch_cases(it_env_t* env, const char* root,
                        const struct fetch_case* cases, int ncases) {
  const char* client;
  char* argv[8 + IT_MAX_CASES];
  char urls[IT_MAX_CASES][160];
  char log[256];
  char port[16];
  int status[IT_MAX_CASES];
  struct {
    char data[512];
    size_t len;
  } bodies[IT_MAX_CASES];
  int body;
  it_server_t s;
  it_proc_t p;
  uint8_t* out;
  size_t outlen;
  const char* line;
  unsigned int stream;
  int code;
  int argc;
  int i;

  ASSERT_LE(ncases, IT_MAX_CASES);
  client = it_find_peer("ngtcp2's gtlsclient (package ngtcp2-client)",
                        gtlsclient_paths);
  it_path(log, sizeof(log), env->dir, "gtlsclient.log");
  it_server_start(&s, env, root);

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
  for (i = 0; i < ncases; i++) {
    snprintf(urls[i], sizeof(urls[i]), "https://localhost:%d%s", s.port,
             cases[i].path);
    argv[argc++] = urls[i];
  }
  argv[argc] = NULL;
  ASSERT_OK(it_spawn(env, &p, "gtlsclient", argv, log));
  if (!it_run_until(env, &p.exited, IT_WAIT_MS)) {
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
  for (i = 0; i < ncases; i++)
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
      ASSERT_LT(stream / 4, ncases);
      ASSERT_EQ(status[stream / 4], -1);
      status[stream / 4] = code;
      continue;
    }
    if (sscanf(line, "http: stream 0x%x body %u bytes", &stream, &nbytes) ==
        2) {
      ASSERT_LT(stream / 4, ncases);
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
  for (i = 0; i < ncases; i++) {
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
      ASSERT_EQ(bodies[i].len, strlen(ok_text));
      ASSERT_MEM_EQ(bodies[i].data, ok_text, strlen(ok_text));
    }
  }

  /* uvq received every :path byte for byte and answered each one. */
  ASSERT_EQ(s.nreqs, ncases);
  ASSERT_EQ(s.dones, ncases);
  for (i = 0; i < ncases; i++) {
    const it_server_req_t* r = it_server_find(&s, cases[i].path);
    ASSERT_STR_EQ(r->method, "GET");
    ASSERT_OK(r->respond_rv);
    ASSERT_EQ(r->dones, 1);
    ASSERT_UINT_EQ(r->app_error, UVQ_H3_NO_ERROR);
  }
  it_server_stop(&s);
}

/* Paths that try to leave the document root get 400 and nothing from
 * outside it; ordinary paths next to them still work. */
TEST_IMPL(interop_gtlsclient_path_escape) {
  static const struct fetch_case cases[] = {
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
  char root[256];
  char file[320];
  it_env_t env;

  it_env_init(&env);
  make_root(&env, root, sizeof(root));
  it_path(file, sizeof(file), root, "link-to-secret.txt");
  ASSERT_OK(symlink("../secret.txt", file));
  it_path(file, sizeof(file), root, "link-to-parent");
  ASSERT_OK(symlink("..", file));
  fetch_cases(&env, root, cases, (int) (sizeof(cases) / sizeof(cases[0])));
  it_env_close(&env);
  return 0;
}

/* Files in the root that are not regular files get 404 without the
 * server ever blocking on them. A FIFO is the sharp one: open(O_RDONLY)
 * of a FIFO without a writer blocks until one comes, which froze the
 * server's only loop (no response, no handshake for anyone) before the
 * static-file handler opened with O_NONBLOCK. The FIFO is asked for
 * first, directly and through a link, and the control after it must
 * still be answered; the test runner's watchdog fails the test if the
 * loop blocks. */
TEST_IMPL(interop_gtlsclient_special_files) {
  static const struct fetch_case cases[] = {
    {"/fifo", 404},
    {"/socket", 404},
    {"/null-device", 404},
    {"/link-to-dev-zero", 404},
    {"/link-to-fifo", 404},
    {"/dir", 404},
    {"/ok.txt", 200},
  };
  struct sockaddr_un sun;
  char root[256];
  char file[320];
  it_env_t env;
  int fd;

  it_env_init(&env);
  make_root(&env, root, sizeof(root));
  it_path(file, sizeof(file), root, "fifo");
  ASSERT_OK(mkfifo(file, 0644));
  it_path(file, sizeof(file), root, "link-to-fifo");
  ASSERT_OK(symlink("fifo", file));
  /* A listening Unix socket's file: open() of it fails with ENXIO. */
  it_path(file, sizeof(file), root, "socket");
  memset(&sun, 0, sizeof(sun));
  sun.sun_family = AF_UNIX;
  ASSERT_LT(strlen(file), sizeof(sun.sun_path));
  memcpy(sun.sun_path, file, strlen(file) + 1);
  fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  ASSERT_OK(bind(fd, (struct sockaddr*) &sun, sizeof(sun)));
  ASSERT_OK(listen(fd, 1));
  /* A character device node in the root (the same device as /dev/null),
   * and a symbolic link to one outside it. */
  it_path(file, sizeof(file), root, "null-device");
  if (mknod(file, S_IFCHR | 0644, makedev(1, 3)) != 0) {
    close(fd);
    it_env_close(&env);
    RETURN_SKIP("mknod of a character device is not permitted here");
  }
  it_path(file, sizeof(file), root, "link-to-dev-zero");
  ASSERT_OK(symlink("/dev/zero", file));
  it_path(file, sizeof(file), root, "dir");
  it_mkdir(file);
  fetch_cases(&env, root, cases, (int) (sizeof(cases) / sizeof(cases[0])));
  close(fd);
  it_env_close(&env);
  return 0;
}
