/* Shared pieces of the HTTP/3 interop tests: a temporary directory with a
 * certificate made at run time, pseudo-random files, peer processes
 * (ngtcp2's gtlsserver/gtlsclient, the libcurl client) run under the
 * test's own loop, and bounded loop runners.
 *
 * One it_env_t per test holds the loop, the directory and the certificate;
 * nothing is kept in statics. Every peer process and the directory are
 * removed when the test ends, however it ends (test_atexit).
 */
#ifndef UVQ_TEST_INTEROP_HELPERS_H
#define UVQ_TEST_INTEROP_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "task.h"

/* How long a test waits for a whole transfer; run-tests.c's watchdog
 * (25 s) is the last resort behind it. */
#define IT_WAIT_MS 20000

typedef struct it_env_s {
  uv_loop_t loop;
  /* The test's temporary directory (removed at the end), and in it a
   * self-signed P-256 certificate for CN=localhost with the subject
   * alternative names DNS:localhost and IP:127.0.0.1; it is its own CA,
   * so a client verifies the server with ca_file = cert. */
  char dir[128];
  char cert[192];
  char key[192];
} it_env_t;

/* Initializes the loop and makes the directory and certificate. Skips the
 * test without the openssl command. */
void it_env_init(it_env_t* env);

/* Closes every handle left on the loop, runs it dry and asserts that
 * uv_loop_close() succeeds. */
void it_env_close(it_env_t* env);

/* Joins dir and name into out (asserting it fits). */
void it_path(char* out, size_t size, const char* dir, const char* name);

/* Creates the directory path (one level). */
void it_mkdir(const char* path);

/* Writes len pseudo-random bytes (seeded by seed) to path and returns a
 * malloc'ed copy of them, which the caller frees. */
uint8_t* it_make_file(const char* path, size_t len, uint32_t seed);

/* Writes exactly len bytes of data to path. */
void it_write_file(const char* path, const void* data, size_t len);

/* Reads a whole file: a malloc'ed buffer (NUL-terminated, not counted in
 * *len), or NULL when the file does not exist. */
uint8_t* it_read_file(const char* path, size_t* len);

/* The first of candidates that is an executable file, or skips the test
 * naming what is missing. */
const char* it_find_peer(const char* what, const char* const* candidates);

/* A UDP port on 127.0.0.1 that was free a moment ago (bound to port 0 and
 * closed): for peers that must be told their port. */
int it_free_udp_port(void);

/* 1 if a UDP socket is bound to 127.0.0.1:port (a bind without
 * SO_REUSEADDR fails with EADDRINUSE). */
int it_udp_port_in_use(int port);

/* A peer process on the test's loop; stdout and stderr go to log. */
typedef struct it_proc_s {
  uv_process_t proc;
  char name[64];
  char log[256];
  int running;
  int exited;
  int64_t exit_status;
  int term_signal;
  /* What the end-of-test hook needs to kill it (owned by the hook). */
  struct it_child* child;
} it_proc_t;

/* Spawns argv[0] with argv (NULL-terminated). The process is killed when
 * the test ends if it is still running. Returns 0 or a UV_E* code. */
int it_spawn(it_env_t* env, it_proc_t* p, const char* name, char** argv,
             const char* log);

/* Sends SIGTERM and waits (bounded) for the exit. */
void it_stop(it_env_t* env, it_proc_t* p);

/* Runs the loop until *flag is non-zero or ms have passed; returns *flag.
 */
int it_run_until(it_env_t* env, const int* flag, uint64_t ms);

/* Runs the loop for ms milliseconds. */
void it_run_for(it_env_t* env, uint64_t ms);

/* Prints the last lines of a peer's log to stderr (for failures). */
void it_dump_log(const it_proc_t* p);

/* Starts a server peer on a free port: argv has the string "@PORT@" where
 * the port goes. Retries with another port when the peer exits early (its
 * port was taken meanwhile), and returns once the port is bound. */
int it_spawn_server(it_env_t* env, it_proc_t* p, const char* name,
                    char** argv, const char* log);

/* ---- The files every transfer test moves ------------------------------ */

/* One multi-megabyte file and many small ones (0 bytes, 1 byte, and sizes
 * around packet and flow-control boundaries), pseudo-random. */
#define IT_BIG_SIZE (8u << 20)
#define IT_SMALL_FILES 50
#define IT_FILES (1 + IT_SMALL_FILES)

typedef struct it_file_s {
  char name[32];     /* the file name (what a downloader saves it as) */
  char path[64];     /* the URL path, e.g. /small/small-07.bin */
  uint8_t* data;
  size_t len;
} it_file_t;

typedef struct it_fileset_s {
  char root[192];    /* the document root: env->dir/www */
  it_file_t files[IT_FILES];  /* files[0] is the big one */
} it_fileset_t;

void it_fileset_make(it_env_t* env, it_fileset_t* fs);
void it_fileset_free(it_fileset_t* fs);

/* Asserts that the file at path holds exactly f's bytes. */
void it_assert_file_eq(const char* path, const it_file_t* f);

#endif /* UVQ_TEST_INTEROP_HELPERS_H */
