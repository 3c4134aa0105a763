#include "interop-helpers.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- Cleanup hooks ---------------------------------------------------------
 * The hooks outlive the test function's stack frame (run-tests.c runs them
 * after it returns), so what they need is copied to the heap. */

static int remove_entry(const char* path, const struct stat* st, int flag,
                        struct FTW* ftw) {
  (void) st;
  (void) flag;
  (void) ftw;
  remove(path);
  return 0;
}

static void remove_dir_hook(void* arg) {
  char* dir = arg;

  /* UVQ_INTEROP_KEEP=1 keeps the directory (peer logs) for a post-mortem. */
  if (getenv("UVQ_INTEROP_KEEP") != NULL)
    fprintf(stderr, "kept %s\n", dir);
  else
    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  free(dir);
}

/* A peer process: killed at the end unless it was seen to exit. */
struct it_child {
  pid_t pid;
  int alive;
};

static void kill_child_hook(void* arg) {
  struct it_child* c = arg;

  if (c->alive) {
    kill(c->pid, SIGKILL);
    waitpid(c->pid, NULL, 0);
  }
  free(c);
}

/* ---- Environment ----------------------------------------------------------- */

static void run_openssl(const char* cmd) {
  int rc;

  rc = system(cmd);
  if (rc != 0)
    test_fail(__FILE__, __LINE__, "certificate command failed (%d): %s", rc,
              cmd);
}

void it_env_init(it_env_t* env) {
  char cmd[1024];

  memset(env, 0, sizeof(*env));
  ASSERT_OK(uv_loop_init(&env->loop));
  if (system("command -v openssl >/dev/null 2>&1") != 0)
    RETURN_SKIP("the openssl command is needed to make certificates");
  snprintf(env->dir, sizeof(env->dir), "%s/uvq-interop-XXXXXX",
           getenv("TMPDIR") != NULL ? getenv("TMPDIR") : "/tmp");
  ASSERT_NOT_NULL(mkdtemp(env->dir));
  test_atexit(remove_dir_hook, strdup(env->dir));
  it_path(env->cert, sizeof(env->cert), env->dir, "cert.pem");
  it_path(env->key, sizeof(env->key), env->dir, "key.pem");
  snprintf(cmd, sizeof(cmd),
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
           "-nodes -days 2 -subj /CN=localhost "
           "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 "
           "-addext basicConstraints=critical,CA:TRUE "
           "-keyout '%s' -out '%s' >/dev/null 2>&1",
           env->key, env->cert);
  run_openssl(cmd);
}

static void close_walk_cb(uv_handle_t* handle, void* arg) {
  (void) arg;
  if (!uv_is_closing(handle))
    uv_close(handle, NULL);
}

void it_env_close(it_env_t* env) {
  /* A clean test leaves nothing behind; closing stragglers here would
   * hide a leak, so only count them. */
  int rc;

  uv_run(&env->loop, UV_RUN_NOWAIT);
  rc = uv_loop_close(&env->loop);
  if (rc != 0) {
    uv_print_all_handles(&env->loop, stderr);
    uv_walk(&env->loop, close_walk_cb, NULL);
    uv_run(&env->loop, UV_RUN_DEFAULT);
  }
  ASSERT_OK(rc);
}

void it_path(char* out, size_t size, const char* dir, const char* name) {
  int n;

  n = snprintf(out, size, "%s/%s", dir, name);
  ASSERT(n > 0 && (size_t) n < size);
}

void it_mkdir(const char* path) {
  if (mkdir(path, 0755) != 0)
    test_fail(__FILE__, __LINE__, "mkdir %s: %s", path, strerror(errno));
}

/* ---- Files ------------------------------------------------------------------ */

void it_write_file(const char* path, const void* data, size_t len) {
  const uint8_t* p = data;
  ssize_t n;
  int fd;

  fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    test_fail(__FILE__, __LINE__, "open %s: %s", path, strerror(errno));
  while (len > 0) {
    n = write(fd, p, len);
    if (n < 0 && errno == EINTR)
      continue;
    ASSERT_GT(n, 0);
    p += n;
    len -= (size_t) n;
  }
  ASSERT_OK(close(fd));
}

uint8_t* it_make_file(const char* path, size_t len, uint32_t seed) {
  uint8_t* data;
  uint64_t x;
  size_t i;

  data = malloc(len > 0 ? len : 1);
  ASSERT_NOT_NULL(data);
  /* xorshift64*: cheap, and no two seeds share a prefix. */
  x = 0x9e3779b97f4a7c15ull ^ ((uint64_t) seed << 17) ^ seed;
  for (i = 0; i < len; i++) {
    if (i % 8 == 0) {
      x ^= x >> 12;
      x ^= x << 25;
      x ^= x >> 27;
    }
    data[i] = (uint8_t) ((x * 0x2545f4914f6cdd1dull) >> (8 * (i % 8)));
  }
  it_write_file(path, data, len);
  return data;
}

uint8_t* it_read_file(const char* path, size_t* len) {
  struct stat st;
  uint8_t* data;
  size_t off;
  ssize_t n;
  int fd;

  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT)
      return NULL;
    test_fail(__FILE__, __LINE__, "open %s: %s", path, strerror(errno));
  }
  ASSERT_OK(fstat(fd, &st));
  data = malloc((size_t) st.st_size + 1);
  ASSERT_NOT_NULL(data);
  off = 0;
  while (off < (size_t) st.st_size) {
    n = read(fd, data + off, (size_t) st.st_size - off);
    if (n < 0 && errno == EINTR)
      continue;
    ASSERT_GT(n, 0);
    off += (size_t) n;
  }
  data[off] = '\0';
  ASSERT_OK(close(fd));
  *len = off;
  return data;
}

const char* it_find_peer(const char* what, const char* const* candidates) {
  const char* const* c;

  for (c = candidates; *c != NULL; c++)
    if (access(*c, X_OK) == 0)
      return *c;
  RETURN_SKIP("%s is not installed (looked for %s)", what, candidates[0]);
}

/* ---- Ports --------------------------------------------------------------------- */

static int bind_udp(int port, int* fd_out) {
  struct sockaddr_in sin;
  int fd;
  int rc;

  fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_port = htons((uint16_t) port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  rc = bind(fd, (struct sockaddr*) &sin, sizeof(sin));
  if (rc != 0) {
    rc = -errno;
    close(fd);
    return rc;
  }
  *fd_out = fd;
  return 0;
}

int it_free_udp_port(void) {
  struct sockaddr_in sin;
  socklen_t len;
  int fd = -1;

  ASSERT_OK(bind_udp(0, &fd));
  len = sizeof(sin);
  ASSERT_OK(getsockname(fd, (struct sockaddr*) &sin, &len));
  close(fd);
  return ntohs(sin.sin_port);
}

int it_udp_port_in_use(int port) {
  int fd = -1;
  int rc;

  rc = bind_udp(port, &fd);
  if (rc == 0) {
    close(fd);
    return 0;
  }
  ASSERT_EQ(rc, -EADDRINUSE);
  return 1;
}

/* ---- Processes ---------------------------------------------------------------- */

static void on_exit_cb(uv_process_t* proc, int64_t status, int term_signal) {
  it_proc_t* p = proc->data;

  /* libuv has reaped it: its pid may be reused, so the hook leaves it. */
  p->child->alive = 0;
  p->exited = 1;
  p->running = 0;
  p->exit_status = status;
  p->term_signal = term_signal;
  uv_close((uv_handle_t*) proc, NULL);
}

int it_spawn(it_env_t* env, it_proc_t* p, const char* name, char** argv,
             const char* log) {
  uv_process_options_t opts;
  uv_stdio_container_t stdio[3];
  struct it_child* child;
  int fd;
  int rc;

  memset(p, 0, sizeof(*p));
  snprintf(p->name, sizeof(p->name), "%s", name);
  snprintf(p->log, sizeof(p->log), "%s", log);
  fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  memset(&opts, 0, sizeof(opts));
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = fd;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = fd;
  opts.file = argv[0];
  opts.args = argv;
  opts.stdio = stdio;
  opts.stdio_count = 3;
  opts.exit_cb = on_exit_cb;
  p->proc.data = p;
  rc = uv_spawn(&env->loop, &p->proc, &opts);
  close(fd);
  if (rc != 0)
    return rc;
  p->running = 1;
  child = malloc(sizeof(*child));
  ASSERT_NOT_NULL(child);
  child->pid = p->proc.pid;
  child->alive = 1;
  p->child = child;
  test_atexit(kill_child_hook, child);
  return 0;
}

void it_stop(it_env_t* env, it_proc_t* p) {
  if (!p->running)
    return;
  uv_process_kill(&p->proc, SIGTERM);
  if (!it_run_until(env, &p->exited, 5000)) {
    uv_process_kill(&p->proc, SIGKILL);
    ASSERT(it_run_until(env, &p->exited, 5000));
  }
}

static void on_deadline(uv_timer_t* timer) {
  int* expired = timer->data;

  *expired = 1;
  /* uv_run(UV_RUN_ONCE) runs due timers before it polls: without the stop
   * it would then block in the poll with no timer left to wake it. */
  uv_stop(timer->loop);
}

int it_run_until(it_env_t* env, const int* flag, uint64_t ms) {
  uv_timer_t timer;
  int expired;

  expired = 0;
  ASSERT_OK(uv_timer_init(&env->loop, &timer));
  timer.data = &expired;
  /* The loop's clock is as old as its last iteration. */
  uv_update_time(&env->loop);
  ASSERT_OK(uv_timer_start(&timer, on_deadline, ms, 0));
  while (!*flag && !expired)
    uv_run(&env->loop, UV_RUN_ONCE);
  uv_close((uv_handle_t*) &timer, NULL);
  uv_run(&env->loop, UV_RUN_NOWAIT);
  return *flag;
}

void it_run_for(it_env_t* env, uint64_t ms) {
  int never = 0;

  it_run_until(env, &never, ms);
}

void it_dump_log(const it_proc_t* p) {
  uint8_t* text;
  size_t len;
  size_t start;

  text = it_read_file(p->log, &len);
  if (text == NULL)
    return;
  start = len > 4000 ? len - 4000 : 0;
  fprintf(stderr, "---- last %zu bytes of %s's log (%s) ----\n%s\n----\n",
          len - start, p->name, p->log, (const char*) text + start);
  free(text);
}

int it_spawn_server(it_env_t* env, it_proc_t* p, const char* name,
                    char** argv, const char* log) {
  char port_text[16];
  char* saved[32];
  int attempt;
  int port;
  int i;
  int n;

  for (n = 0; argv[n] != NULL; n++) {
    ASSERT_LT(n, 32);
    saved[n] = argv[n];
  }
  for (attempt = 0; attempt < 5; attempt++) {
    port = it_free_udp_port();
    snprintf(port_text, sizeof(port_text), "%d", port);
    for (i = 0; i < n; i++)
      argv[i] = strcmp(saved[i], "@PORT@") == 0 ? port_text : saved[i];
    ASSERT_OK(it_spawn(env, p, name, argv, log));
    /* Ready once the port is bound; gone early means the port was taken
     * between our probe and its bind. */
    for (i = 0; i < 500 && p->running && !it_udp_port_in_use(port); i++)
      it_run_for(env, 10);
    if (p->running && i < 500) {
      for (i = 0; i < n; i++)
        argv[i] = saved[i];
      return port;
    }
    it_stop(env, p);
    it_dump_log(p);
  }
  test_fail(__FILE__, __LINE__, "%s did not start (see %s)", name, log);
}

/* ---- File sets ------------------------------------------------------------------ */

static size_t small_size(int i) {
  static const size_t edges[] = {0, 1, 1199, 1200, 1201, 16383, 16384, 65536,
                                 65537, 262144};
  if (i < (int) (sizeof(edges) / sizeof(edges[0])))
    return edges[i];
  return ((size_t) i * 7919u * 31u) % 100000u + (size_t) i;
}

void it_fileset_make(it_env_t* env, it_fileset_t* fs) {
  char dir[256];
  char file[320];
  it_file_t* f;
  int i;

  memset(fs, 0, sizeof(*fs));
  it_path(fs->root, sizeof(fs->root), env->dir, "www");
  it_mkdir(fs->root);
  it_path(dir, sizeof(dir), fs->root, "small");
  it_mkdir(dir);
  for (i = 0; i < IT_FILES; i++) {
    f = &fs->files[i];
    if (i == 0) {
      snprintf(f->name, sizeof(f->name), "big.bin");
      snprintf(f->path, sizeof(f->path), "/big.bin");
      f->len = IT_BIG_SIZE;
      it_path(file, sizeof(file), fs->root, f->name);
    } else {
      snprintf(f->name, sizeof(f->name), "small-%02d.bin", i - 1);
      snprintf(f->path, sizeof(f->path), "/small/small-%02d.bin", i - 1);
      f->len = small_size(i - 1);
      it_path(file, sizeof(file), dir, f->name);
    }
    f->data = it_make_file(file, f->len, (uint32_t) i + 1);
  }
}

void it_fileset_free(it_fileset_t* fs) {
  int i;

  for (i = 0; i < IT_FILES; i++) {
    free(fs->files[i].data);
    fs->files[i].data = NULL;
  }
}

void it_assert_file_eq(const char* path, const it_file_t* f) {
  uint8_t* got;
  size_t len;

  got = it_read_file(path, &len);
  if (got == NULL)
    test_fail(__FILE__, __LINE__, "%s (%zu bytes expected) does not exist",
              path, f->len);
  if (len != f->len)
    test_fail(__FILE__, __LINE__, "%s: %zu bytes, expected %zu (%s)", path,
              len, f->len, f->path);
  ASSERT_MEM_EQ(got, f->data, len);
  free(got);
}
