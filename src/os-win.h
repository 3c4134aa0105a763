/* The Winsock API as the shared datapath code uses it. Included by
 * internal.h only; nothing outside io-win.c and cmsg-win.c sees a Windows
 * type except through the typedefs here. */
#ifndef UVQ_OS_WIN_H
#define UVQ_OS_WIN_H

#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>

#include <stdint.h>
#include <uv.h>

/* A buffer as WSASendMsg and WSARecvMsg take it. WSABUF is {ULONG len;
 * CHAR* buf}, and libuv's Windows uv_buf_t has the same layout (udp.c
 * checks it), so the caller's buffers are sent without copying, as on
 * POSIX. The POSIX field names keep the shared code unchanged. */
typedef struct {
  ULONG iov_len;
  char* iov_base;
} uvq__iovec_t;

/* A message in the POSIX shape; io-win.c translates it to a WSAMSG for
 * each call, which costs a few stores. */
typedef struct {
  void* msg_name;
  int msg_namelen;
  uvq__iovec_t* msg_iov;
  size_t msg_iovlen;
  void* msg_control;
  size_t msg_controllen;
  int msg_flags;
} uvq__msghdr_t;

typedef WSACMSGHDR uvq__cmsghdr_t;

/* A Winsock or Windows error code as a UV_E* code (io-win.c). */
int uvq__win_error(int code);

/* The error of the last failed Winsock call, as a UV_E* code. */
static inline int uvq__errno(void) {
  return uvq__win_error(WSAGetLastError());
}

/* An error Winsock stored (SO_ERROR), as a UV_E* code. */
static inline int uvq__sys_error(int code) {
  return uvq__win_error(code);
}

/* uvq keeps a SOCKET in an int. A SOCKET is a kernel handle, and Windows
 * guarantees that handles carry only 32 significant bits (sign-extended
 * on 64-bit Windows, so that 32-bit and 64-bit processes can share them);
 * the conversion back is exact, and INVALID_SOCKET becomes -1. */
static inline SOCKET uvq__fd_to_sock(int fd) {
  return (SOCKET) (intptr_t) fd;
}

static inline int uvq__sock_to_fd(uv_os_sock_t sock) {
  return sock == INVALID_SOCKET ? -1 : (int) (intptr_t) sock;
}

/* libuv's uv_fileno() reports a Windows socket as a HANDLE. */
static inline uv_os_fd_t uvq__fd_to_os(int fd) {
  return (uv_os_fd_t) uvq__fd_to_sock(fd);
}

static inline int uvq__sock_getopt(int fd, int level, int name, void* value,
                                   socklen_t* len) {
  return getsockopt(uvq__fd_to_sock(fd), level, name, value, len)
             ? uvq__errno()
             : 0;
}

static inline int uvq__sock_setopt(int fd, int level, int name,
                                   const void* value, socklen_t len) {
  return setsockopt(uvq__fd_to_sock(fd), level, name, value, len)
             ? uvq__errno()
             : 0;
}

static inline int uvq__sock_name(int fd, struct sockaddr* sa, socklen_t* len,
                                 int peer) {
  int r;

  if (peer)
    r = getpeername(uvq__fd_to_sock(fd), sa, len);
  else
    r = getsockname(uvq__fd_to_sock(fd), sa, len);
  return r ? uvq__errno() : 0;
}

static inline int uvq__sock_bind(int fd, const struct sockaddr* sa,
                                 socklen_t len) {
  return bind(uvq__fd_to_sock(fd), sa, len) ? uvq__errno() : 0;
}

static inline int uvq__sock_connect(int fd, const struct sockaddr* sa,
                                    socklen_t len) {
  return connect(uvq__fd_to_sock(fd), sa, len) ? uvq__errno() : 0;
}

#endif /* UVQ_OS_WIN_H */
