/* Network namespace helpers for tests; see netns.h. */
#include "netns.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "task.h"

#define NETNS_DIR "/var/run/netns"
#define NETNS_PREFIX "uvqt-"
#define NETNS_MAX 16

/* Process-wide bookkeeping, deliberately: the cleanup hook must find the
 * namespaces after the test function's frame is gone, and the original
 * namespace is a fact about this process. One test runs per process. */
static char owned_names[NETNS_MAX][NETNS_NAME_MAX];
static int cleanup_registered;
static int original_ns_fd = -1;
static int entered;

static int run_command(char* out, size_t out_len, const char* cmd) {
  char line[512];
  size_t used = 0;
  FILE* f;
  int status;

  if (out != NULL && out_len > 0)
    out[0] = '\0';
  fflush(stdout);
  fflush(stderr);
  f = popen(cmd, "r");
  if (f == NULL)
    return -1;
  while (fgets(line, sizeof(line), f) != NULL) {
    if (out == NULL) {
      fprintf(stderr, "  [%s] %s", cmd, line);
      continue;
    }
    if (used + 1 < out_len) {
      snprintf(out + used, out_len - used, "%s", line);
      used += strlen(out + used);
    }
  }
  status = pclose(f);
  if (status == -1)
    return -1;
  if (!WIFEXITED(status))
    return -1;
  return WEXITSTATUS(status);
}

static int vrun(char* out, size_t out_len, const char* fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static int vrun(char* out, size_t out_len, const char* fmt, va_list ap) {
  char cmd[1024];
  char full[1100];

  vsnprintf(cmd, sizeof(cmd), fmt, ap);
  snprintf(full, sizeof(full), "%s 2>&1", cmd);
  return run_command(out, out_len, full);
}

int netns_sh(const char* fmt, ...) {
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = vrun(NULL, 0, fmt, ap);
  va_end(ap);
  return rc;
}

int netns_sh_output(char* out, size_t out_len, const char* fmt, ...) {
  va_list ap;
  int rc;

  va_start(ap, fmt);
  rc = vrun(out, out_len, fmt, ap);
  va_end(ap);
  return rc;
}

int netns_exec(const netns_t* ns, const char* fmt, ...) {
  char inner[900];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(inner, sizeof(inner), fmt, ap);
  va_end(ap);
  return netns_sh("ip netns exec %s sh -c '%s'", ns->name, inner);
}

static void forget(const char* name) {
  int i;

  for (i = 0; i < NETNS_MAX; i++)
    if (strcmp(owned_names[i], name) == 0)
      owned_names[i][0] = '\0';
}

static void cleanup_all(void* arg) {
  int i;

  (void) arg;
  if (entered)
    netns_leave();
  for (i = 0; i < NETNS_MAX; i++) {
    if (owned_names[i][0] == '\0')
      continue;
    netns_sh("ip netns del %s", owned_names[i]);
    owned_names[i][0] = '\0';
  }
}

/* Removes namespaces of earlier test processes that were killed before
 * their cleanup ran (for example by ctest's own timeout). */
static void sweep_stale(void) {
  struct dirent* e;
  DIR* d;
  long pid;
  char* end;

  d = opendir(NETNS_DIR);
  if (d == NULL)
    return;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, NETNS_PREFIX, strlen(NETNS_PREFIX)) != 0)
      continue;
    pid = strtol(e->d_name + strlen(NETNS_PREFIX), &end, 10);
    if (pid <= 0 || *end != '-')
      continue;
    if (kill((pid_t) pid, 0) == 0 || errno != ESRCH)
      continue;
    netns_sh("ip netns del %s", e->d_name);
  }
  closedir(d);
}

int netns_supported(char* reason, size_t reason_len) {
  char name[NETNS_NAME_MAX];
  char out[512];

  if (geteuid() != 0) {
    snprintf(reason, reason_len, "not running as root");
    return -1;
  }
  snprintf(name, sizeof(name), NETNS_PREFIX "%d-probe", (int) getpid());
  if (netns_sh_output(out, sizeof(out), "ip netns add %s", name) != 0) {
    snprintf(reason, reason_len, "'ip netns add' failed: %s", out);
    return -1;
  }
  netns_sh("ip netns del %s", name);
  return 0;
}

int netns_create(netns_t* ns, const char* tag) {
  int slot;

  memset(ns, 0, sizeof(*ns));
  snprintf(ns->name, sizeof(ns->name), NETNS_PREFIX "%d-%s", (int) getpid(),
           tag);
  for (slot = 0; slot < NETNS_MAX; slot++)
    if (owned_names[slot][0] == '\0')
      break;
  if (slot == NETNS_MAX)
    FATAL("too many network namespaces");
  if (!cleanup_registered) {
    sweep_stale();
    test_atexit(cleanup_all, NULL);
    cleanup_registered = 1;
  }
  if (netns_sh("ip netns add %s", ns->name) != 0)
    return -1;
  snprintf(owned_names[slot], NETNS_NAME_MAX, "%s", ns->name);
  ns->created = 1;
  if (netns_sh("ip -n %s link set lo up", ns->name) != 0)
    return -1;
  /* Duplicate address detection would hold new IPv6 addresses (the
   * link-local ones too) tentative for a second or more. */
  if (netns_exec(ns, "sysctl -qw net.ipv6.conf.all.accept_dad=0 "
                     "net.ipv6.conf.default.accept_dad=0") != 0)
    return -1;
  return 0;
}

void netns_destroy(netns_t* ns) {
  if (!ns->created)
    return;
  netns_sh("ip netns del %s", ns->name);
  forget(ns->name);
  ns->created = 0;
}

int netns_veth(const netns_t* a,
               const char* a_if,
               const netns_t* b,
               const char* b_if,
               unsigned int mtu) {
  if (netns_sh("ip -n %s link add %s type veth peer name %s netns %s",
               a->name, a_if, b_if, b->name) != 0)
    return -1;
  if (mtu != 0) {
    if (netns_sh("ip -n %s link set %s mtu %u", a->name, a_if, mtu) != 0 ||
        netns_sh("ip -n %s link set %s mtu %u", b->name, b_if, mtu) != 0)
      return -1;
  }
  if (netns_sh("ip -n %s link set %s up", a->name, a_if) != 0 ||
      netns_sh("ip -n %s link set %s up", b->name, b_if) != 0)
    return -1;
  return 0;
}

int netns_addr(const netns_t* ns, const char* dev, const char* cidr) {
  if (strchr(cidr, ':') != NULL)
    return netns_sh("ip -n %s addr add %s dev %s nodad", ns->name, cidr, dev);
  return netns_sh("ip -n %s addr add %s dev %s", ns->name, cidr, dev);
}

void netns_enter(const netns_t* ns) {
  char path[256];
  int fd;

  if (original_ns_fd < 0) {
    original_ns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (original_ns_fd < 0)
      FATAL("open(/proc/self/ns/net) failed");
  }
  snprintf(path, sizeof(path), NETNS_DIR "/%s", ns->name);
  fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    test_fail(__FILE__, __LINE__, "open(%s): %s", path, strerror(errno));
  if (setns(fd, CLONE_NEWNET) != 0)
    test_fail(__FILE__, __LINE__, "setns(%s): %s", path, strerror(errno));
  close(fd);
  entered = 1;
}

void netns_leave(void) {
  if (original_ns_fd < 0)
    return;
  if (setns(original_ns_fd, CLONE_NEWNET) != 0)
    test_fail(__FILE__, __LINE__, "setns(original): %s", strerror(errno));
  entered = 0;
}
