/* The test runner.
 *
 *   uvq-tests NAME     runs one test in this process; exit 0 on success,
 *                      TEST_SKIP_CODE when skipped, abort on failure.
 *   uvq-tests --list   prints every test name, one per line.
 *   uvq-tests          runs every test, each in a child process of its own,
 *                      and prints TAP.
 *
 * One process per test keeps a crashed or leaking test from taking the
 * others with it, and lets ctest time and register each test on its own.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _WIN32
#include <process.h>
#else
#include <sys/wait.h>
#include <unistd.h>
#endif

#include <uv.h>

#include "task.h"
/* The QUIC suite is its own binary built from this runner with
 * -DTEST_LIST_HEADER="quic-test-list.h". */
#ifndef TEST_LIST_HEADER
#define TEST_LIST_HEADER "test-list.h"
#endif
#include TEST_LIST_HEADER

/* A test that runs longer than this is killed by its own alarm, which
 * still removes its network namespaces. ctest's timeout is longer. */
#define TEST_ALARM_SECONDS 25

struct test_entry {
  const char* name;
  int (*main)(void);
};

#define TEST_ENTRY(name) {#name, run_test_##name},
static const struct test_entry test_table[] = {
  UVQ_TEST_LIST(TEST_ENTRY)
  {NULL, NULL}
};
#undef TEST_ENTRY

/* Cleanup hooks of the one test this process runs. */
#define MAX_CLEANUPS 64
struct cleanup_hook {
  void (*fn)(void* arg);
  void* arg;
};
static struct cleanup_hook cleanups[MAX_CLEANUPS];
static int cleanup_count;
static volatile sig_atomic_t cleanups_running;

void test_atexit(void (*fn)(void* arg), void* arg) {
  if (cleanup_count == MAX_CLEANUPS)
    test_fail(__FILE__, __LINE__, "too many cleanup hooks");
  cleanups[cleanup_count].fn = fn;
  cleanups[cleanup_count].arg = arg;
  cleanup_count++;
}

void test_atexit_cancel(void (*fn)(void* arg), void* arg) {
  int i;

  for (i = cleanup_count - 1; i >= 0; i--) {
    if (cleanups[i].fn != fn || cleanups[i].arg != arg)
      continue;
    memmove(&cleanups[i], &cleanups[i + 1],
            (size_t) (cleanup_count - i - 1) * sizeof(cleanups[0]));
    cleanup_count--;
    return;
  }
}

void test_run_cleanups(void) {
  if (cleanups_running)
    return;
  cleanups_running = 1;
  while (cleanup_count > 0) {
    cleanup_count--;
    cleanups[cleanup_count].fn(cleanups[cleanup_count].arg);
  }
  cleanups_running = 0;
}

void test_fail(const char* file, int line, const char* fmt, ...) {
  va_list ap;

  fflush(stdout);
  fprintf(stderr, "%s:%d: ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  test_run_cleanups();
  abort();
}

void test_skip(const char* file, int line, const char* fmt, ...) {
  va_list ap;

  fflush(stdout);
  fprintf(stderr, "SKIP (%s:%d): ", file, line);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  fflush(stderr);
  test_run_cleanups();
  exit(TEST_SKIP_CODE);
}

const char* test_err_name(intmax_t value) {
  if (value >= 0 || value < -4095)
    return "";
  return uv_err_name((int) value);
}

void test_assert_mem_eq_(const char* file,
                         int line,
                         const char* a_text,
                         const char* b_text,
                         const void* a,
                         const void* b,
                         size_t len) {
  const unsigned char* pa = a;
  const unsigned char* pb = b;
  char dump_a[64];
  char dump_b[64];
  size_t off;
  size_t i;

  if (len == 0 || memcmp(a, b, len) == 0)
    return;
  for (off = 0; pa[off] == pb[off]; off++)
    ;
  dump_a[0] = dump_b[0] = '\0';
  for (i = off; i < len && i < off + 16; i++) {
    snprintf(dump_a + 3 * (i - off), 4, "%02x ", pa[i]);
    snprintf(dump_b + 3 * (i - off), 4, "%02x ", pb[i]);
  }
  test_fail(file, line,
            "Assertion failed: memcmp(%s, %s, %zu) == 0; first difference "
            "at offset %zu:\n  %s\n  %s",
            a_text, b_text, len, off, dump_a, dump_b);
}

#ifndef _WIN32
/* The watchdog of last resort: the uv timers in the tests normally fire
 * first. Running cleanups from a signal handler is not async-signal-safe,
 * but the process is about to die and leaking namespaces is worse. */
static void on_alarm(int sig) {
  static const char msg[] = "test timed out (watchdog alarm)\n";
  (void) sig;
  if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
    /* Nothing left to report to. */
  }
  test_run_cleanups();
  abort();
}

#endif /* !_WIN32 */

static void on_terminate(int sig) {
  test_run_cleanups();
  signal(sig, SIG_DFL);
  raise(sig);
}

static const struct test_entry* find_test(const char* name) {
  const struct test_entry* t;

  for (t = test_table; t->name != NULL; t++)
    if (strcmp(t->name, name) == 0)
      return t;
  return NULL;
}

static int run_one(const struct test_entry* t) {
  int rc;

  setvbuf(stdout, NULL, _IONBF, 0);
#ifndef _WIN32
  signal(SIGPIPE, SIG_IGN);
  signal(SIGALRM, on_alarm);
#endif
  signal(SIGTERM, on_terminate);
  signal(SIGINT, on_terminate);
  atexit(test_run_cleanups);
#ifndef _WIN32
  alarm(TEST_ALARM_SECONDS);
#endif
  /* Windows has no alarm(): there ctest's timeout is the watchdog, and
   * the Windows tests create nothing that outlives the process. */
  rc = t->main();
  test_run_cleanups();
#ifndef _WIN32
  alarm(0);
#endif
  return rc;
}

#ifdef _WIN32
/* Runs every test in a child process of its own and prints TAP. */
static int run_all(const char* self) {
  const struct test_entry* t;
  int total = 0;
  int failed = 0;
  int n = 0;
  intptr_t rc;

  for (t = test_table; t->name != NULL; t++)
    total++;
  printf("1..%d\n", total);
  fflush(stdout);
  for (t = test_table; t->name != NULL; t++) {
    n++;
    rc = _spawnl(_P_WAIT, self, self, t->name, (char*) NULL);
    if (rc == 0) {
      printf("ok %d - %s\n", n, t->name);
    } else if (rc == TEST_SKIP_CODE) {
      printf("ok %d - %s # SKIP\n", n, t->name);
    } else {
      failed++;
      printf("not ok %d - %s # exit code %d\n", n, t->name, (int) rc);
    }
    fflush(stdout);
  }
  return failed == 0 ? 0 : 1;
}
#else

/* Runs every test in a child process (this binary re-executed with the
 * test's name) and prints TAP. */
static int run_all(const char* self) {
  const struct test_entry* t;
  int total = 0;
  int failed = 0;
  int n = 0;
  int status;
  pid_t pid;

  for (t = test_table; t->name != NULL; t++)
    total++;
  printf("1..%d\n", total);
  fflush(stdout);
  for (t = test_table; t->name != NULL; t++) {
    n++;
    pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      execl(self, self, t->name, (char*) NULL);
      perror("execl");
      _exit(127);
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
      ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
      printf("ok %d - %s\n", n, t->name);
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == TEST_SKIP_CODE) {
      printf("ok %d - %s # SKIP\n", n, t->name);
    } else {
      failed++;
      if (WIFSIGNALED(status))
        printf("not ok %d - %s # signal %d\n", n, t->name, WTERMSIG(status));
      else
        printf("not ok %d - %s # exit code %d\n", n, t->name,
               WEXITSTATUS(status));
    }
    fflush(stdout);
  }
  return failed == 0 ? 0 : 1;
}
#endif /* _WIN32 */

int main(int argc, char** argv) {
  const struct test_entry* t;

  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (t = test_table; t->name != NULL; t++)
      printf("%s\n", t->name);
    return 0;
  }
  if (argc == 1) {
#ifdef _WIN32
    return run_all(argv[0]);
#else
    return run_all("/proc/self/exe");
#endif
  }
  if (argc != 2) {
    fprintf(stderr, "usage: %s [--list | TEST_NAME]\n", argv[0]);
    return 2;
  }
  t = find_test(argv[1]);
  if (t == NULL) {
    fprintf(stderr, "no such test: %s\n", argv[1]);
    return 2;
  }
  return run_one(t);
}
