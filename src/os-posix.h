/* The POSIX socket API as the shared datapath code uses it. Included by
 * internal.h only. */
#ifndef UVQ_OS_POSIX_H
#define UVQ_OS_POSIX_H

#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

typedef struct msghdr uvq__msghdr_t;
typedef struct iovec uvq__iovec_t;
typedef struct cmsghdr uvq__cmsghdr_t;

/* The error of the last failed socket call, as a UV_E* code. */
static inline int uvq__errno(void) {
  return -errno;
}

/* An error number the kernel stored (SO_ERROR), as a UV_E* code. */
static inline int uvq__sys_error(int code) {
  return -code;
}

static inline int uvq__sock_getopt(int fd, int level, int name, void* value,
                                   socklen_t* len) {
  return getsockopt(fd, level, name, value, len) ? uvq__errno() : 0;
}

static inline int uvq__sock_setopt(int fd, int level, int name,
                                   const void* value, socklen_t len) {
  return setsockopt(fd, level, name, value, len) ? uvq__errno() : 0;
}

/* getsockname, or getpeername when peer is set. */
static inline int uvq__sock_name(int fd, struct sockaddr* sa, socklen_t* len,
                                 int peer) {
  int r;

  r = peer ? getpeername(fd, sa, len) : getsockname(fd, sa, len);
  return r ? uvq__errno() : 0;
}

static inline int uvq__sock_bind(int fd, const struct sockaddr* sa,
                                 socklen_t len) {
  return bind(fd, sa, len) ? uvq__errno() : 0;
}

static inline int uvq__sock_connect(int fd, const struct sockaddr* sa,
                                    socklen_t len) {
  int r;

  do
    r = connect(fd, sa, len);
  while (r == -1 && errno == EINTR);
  return r ? uvq__errno() : 0;
}

/* uv_os_sock_t and uv_os_fd_t are the descriptor itself on POSIX. */
static inline int uvq__sock_to_fd(uv_os_sock_t sock) {
  return sock < 0 ? -1 : sock;
}

static inline uv_os_fd_t uvq__fd_to_os(int fd) {
  return fd;
}

#endif /* UVQ_OS_POSIX_H */
