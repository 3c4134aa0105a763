/* Node.js binding for uvq's UDP handle.
 *
 * The handle lives on Node's own libuv loop (napi_get_uv_event_loop) and
 * every callback runs on the main JS thread from inside uv_run(); there is no
 * second loop and no thread. uvq's sources are compiled into this addon
 * against Node's uv.h and resolve uv_* symbols from the node binary, so the
 * addon never links a system libuv (two libuvs in one process would each
 * believe they own the loop structure).
 *
 * Ownership, in short:
 *  - The native socket (struct socket) is freed after uvq's close_cb, or by
 *    the wrapper's finalizer if that runs later. While the handle is open the
 *    JS owner object is held by a strong reference, so it cannot be
 *    collected with callbacks still to come.
 *  - Received datagrams are copied into new Buffers; the batch buffer from
 *    alloc_cb is one malloc per socket, reused for every batch.
 *  - The payload of a queued uvq_udp_send_batch() is copied into the
 *    request: JS code could detach, shrink or rewrite a Buffer before the
 *    socket becomes writable, and referencing the Buffer prevents none of it.
 *
 * The JS API (lib/index.js) builds on the small functions exported here; the
 * message arguments are validated here, where they are converted. Every JS
 * value is read exactly once: a getter or Proxy trap may answer differently
 * on a second read, and any read may run code that changes an array's
 * length or detaches a buffer.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <node_api.h>
#include <uv.h>

#include "uvq.h"

#define CHECK_NAPI(env, call)                                               \
  do {                                                                      \
    if ((call) != napi_ok) {                                                \
      throw_last_error(env, #call);                                         \
      return NULL;                                                          \
    }                                                                       \
  } while (0)

/* One received datagram, recorded during a batch and turned into a JS
 * object when the batch ends. data points into the batch buffer, which is
 * ours until the batch's terminal callback. */
struct recv_item {
  const char* data;
  size_t len;
  struct sockaddr_storage peer;
  struct sockaddr_storage local;
  unsigned int ifindex;
  unsigned int segment_size;
  unsigned int flags;
  int ecn;
};

struct socket {
  uvq_udp_t handle;
  napi_env env;
  /* The JS Socket (lib/index.js) whose _on* methods receive events. Strong
   * while the handle is open, then released. */
  napi_ref owner;
  napi_async_context async_context;
  int family;
  int initialized;
  int closing;
  int closed;
  /* The wrapper object was collected; free after close_cb. */
  int finalized;
  /* The environment is shutting down (worker exit, process teardown): the
   * async cleanup hook closed the handle, and JS must not be called. */
  int teardown;
  napi_async_cleanup_hook_handle cleanup_hook;
  char* recv_buf;
  size_t recv_buf_len;
  struct recv_item* items;
  size_t items_len;
  size_t items_cap;
};

/* A queued uvq_udp_send_batch() and the copy of the payloads it sends. */
struct send_req {
  uvq_udp_send_t req;
  struct socket* sock;
  double token;
  unsigned int offset;
  char payload[];
};

/* No UDP datagram carries more; a bigger message is refused by uvq. */
#define MAX_UDP_PAYLOAD 65535

/* Limits of one send call; uvq refuses more than 1024 buffers a message. */
#define MAX_BATCH 1024
#define MAX_BUFS_PER_MESSAGE 1024

static void throw_last_error(napi_env env, const char* what) {
  const napi_extended_error_info* info = NULL;
  bool pending = false;

  napi_is_exception_pending(env, &pending);
  if (pending)
    return;
  napi_get_last_error_info(env, &info);
  napi_throw_error(env, NULL,
                   info != NULL && info->error_message != NULL
                       ? info->error_message
                       : what);
}

/* An Error with .code set to the uv error name and .errno to the number. */
static napi_value make_uv_error(napi_env env, int err, const char* syscall) {
  char msg[256];
  napi_value code, message, error, num;

  snprintf(msg, sizeof(msg), "%s %s: %s", syscall, uv_err_name(err),
           uv_strerror(err));
  napi_create_string_utf8(env, uv_err_name(err), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, code, message, &error);
  napi_create_int32(env, err, &num);
  napi_set_named_property(env, error, "errno", num);
  napi_create_string_utf8(env, syscall, NAPI_AUTO_LENGTH, &message);
  napi_set_named_property(env, error, "syscall", message);
  return error;
}

static napi_value throw_uv_error(napi_env env, int err, const char* syscall) {
  napi_throw(env, make_uv_error(env, err, syscall));
  return NULL;
}

/* Calls owner[method](argv...) as a top-level callback from the loop, so
 * that process.nextTick and promise jobs run after it, and an exception
 * becomes an 'uncaughtException' instead of vanishing. The caller holds a
 * handle scope. */
static void call_owner(struct socket* s,
                       const char* method,
                       size_t argc,
                       napi_value* argv) {
  napi_env env = s->env;
  napi_value owner, fn, result;
  napi_status st;

  if (s->owner == NULL)
    return;
  if (napi_get_reference_value(env, s->owner, &owner) != napi_ok ||
      owner == NULL)
    return;
  st = napi_get_named_property(env, owner, method, &fn);
  if (st == napi_ok)
    st = napi_make_callback(env, s->async_context, owner, fn, argc, argv,
                            &result);
  if (st == napi_pending_exception) {
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    napi_fatal_exception(env, exc);
  }
}

/* Called once both the handle is closed and the wrapper finalized. During
 * teardown N-API objects are left to the environment, which frees them. */
static void socket_free(struct socket* s) {
  if (!s->teardown && s->async_context != NULL)
    napi_async_destroy(s->env, s->async_context);
  if (!s->teardown && s->owner != NULL)
    napi_delete_reference(s->env, s->owner);
  free(s->recv_buf);
  free(s->items);
  free(s);
}

/* Address to string, unmapping nothing: a dual-stack socket reports IPv4
 * peers as ::ffff:a.b.c.d, as node:dgram does. */
static napi_value addr_string(napi_env env, const struct sockaddr* sa) {
  char text[INET6_ADDRSTRLEN] = "";
  napi_value v;

  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in*) sa)->sin_addr, text,
              sizeof(text));
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6*) sa)->sin6_addr, text,
              sizeof(text));
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &v);
  return v;
}

static int addr_port(const struct sockaddr* sa) {
  if (sa->sa_family == AF_INET)
    return ntohs(((const struct sockaddr_in*) sa)->sin_port);
  if (sa->sa_family == AF_INET6)
    return ntohs(((const struct sockaddr_in6*) sa)->sin6_port);
  return 0;
}

static void set_int(napi_env env, napi_value obj, const char* name, double v) {
  napi_value n;
  napi_create_double(env, v, &n);
  napi_set_named_property(env, obj, name, n);
}

/* ---- receive ---------------------------------------------------------- */

static void on_alloc(uvq_udp_t* handle, size_t suggested, uv_buf_t* buf) {
  struct socket* s = handle->data;

  /* alloc_cb is never called while a buffer is out, so one buffer per
   * socket is enough; grow it when the slot layout grows (GRO). */
  if (s->recv_buf_len < suggested) {
    char* p = realloc(s->recv_buf, suggested);
    if (p == NULL) {
      *buf = uv_buf_init(NULL, 0); /* recv_cb gets UV_ENOBUFS */
      return;
    }
    s->recv_buf = p;
    s->recv_buf_len = suggested;
  }
  *buf = uv_buf_init(s->recv_buf, (unsigned int) s->recv_buf_len);
}

static void flush_items(struct socket* s) {
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_value arr;
  size_t i;

  if (s->items_len == 0)
    return;
  napi_open_handle_scope(env, &scope);
  napi_create_array_with_length(env, s->items_len, &arr);
  for (i = 0; i < s->items_len; i++) {
    const struct recv_item* it = &s->items[i];
    napi_value msg, data;
    void* copy;

    napi_create_object(env, &msg);
    napi_create_buffer_copy(env, it->len, it->data, &copy, &data);
    napi_set_named_property(env, msg, "data", data);
    napi_set_named_property(env, msg, "address",
                            addr_string(env, (const struct sockaddr*) &it->peer));
    set_int(env, msg, "port", addr_port((const struct sockaddr*) &it->peer));
    if (it->local.ss_family != 0) {
      napi_set_named_property(
          env, msg, "localAddress",
          addr_string(env, (const struct sockaddr*) &it->local));
    } else {
      napi_value undef;
      napi_get_undefined(env, &undef);
      napi_set_named_property(env, msg, "localAddress", undef);
    }
    set_int(env, msg, "ifindex", it->ifindex);
    set_int(env, msg, "ecn", it->ecn);
    set_int(env, msg, "segmentSize", it->segment_size);
    if (it->flags & UVQ_UDP_PARTIAL) {
      napi_value t;
      napi_get_boolean(env, true, &t);
      napi_set_named_property(env, msg, "truncated", t);
    }
    napi_set_element(env, arr, (uint32_t) i, msg);
  }
  s->items_len = 0;
  call_owner(s, "_onmessages", 1, &arr);
  napi_close_handle_scope(env, scope);
}

static void emit_errqueue(struct socket* s, const uvq_udp_recv_t* r) {
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_value info;

  napi_open_handle_scope(env, &scope);
  info = make_uv_error(env, r->error, "sendmsg");
  if (r->addr != NULL) {
    napi_set_named_property(env, info, "address", addr_string(env, r->addr));
    set_int(env, info, "port", addr_port(r->addr));
  }
  if (r->offender != NULL)
    napi_set_named_property(env, info, "offender",
                            addr_string(env, r->offender));
  set_int(env, info, "mtu", r->mtu);
  call_owner(s, "_onerrqueue", 1, &info);
  napi_close_handle_scope(env, scope);
}

static void on_recv(uvq_udp_t* handle, const uvq_udp_recv_t* r) {
  struct socket* s = handle->data;

  if (s->teardown) {
    s->items_len = 0; /* JS is gone; the buffer is ours to drop. */
    return;
  }
  if (r->flags & UVQ_UDP_RECV_ERRQUEUE) {
    flush_items(s);
    emit_errqueue(s, r);
    return;
  }
  if (r->nread < 0) {
    flush_items(s);
    if (r->nread != UV_ECANCELED && !s->closing) {
      napi_handle_scope scope;
      napi_value err;
      napi_open_handle_scope(s->env, &scope);
      err = make_uv_error(s->env, (int) r->nread, "recvmsg");
      call_owner(s, "_onerror", 1, &err);
      napi_close_handle_scope(s->env, scope);
    }
    return;
  }
  if (r->addr != NULL) {
    struct recv_item* it;

    if (s->items_len == s->items_cap) {
      size_t cap = s->items_cap ? s->items_cap * 2 : 64;
      struct recv_item* p = realloc(s->items, cap * sizeof(*p));
      if (p == NULL)
        return; /* Dropped, like a kernel queue overflow. */
      s->items = p;
      s->items_cap = cap;
    }
    it = &s->items[s->items_len++];
    it->data = r->buf->base;
    it->len = (size_t) r->nread;
    memset(&it->peer, 0, sizeof(it->peer));
    memcpy(&it->peer, r->addr,
           r->addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                          : sizeof(struct sockaddr_in));
    it->local = r->local;
    it->ifindex = r->ifindex;
    it->segment_size = r->segment_size;
    it->flags = r->flags;
    it->ecn = r->ecn;
  }
  /* The batch buffer comes back in the first callback without
   * UVQ_UDP_MMSG_CHUNK; every recorded pointer is valid until then. */
  if (!(r->flags & UVQ_UDP_MMSG_CHUNK))
    flush_items(s);
}

/* ---- argument helpers ------------------------------------------------- */

static struct socket* get_socket(napi_env env, napi_value v) {
  struct socket* s = NULL;

  if (napi_unwrap(env, v, (void**) &s) != napi_ok || s == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "not a uvq handle");
    return NULL;
  }
  return s;
}

static struct socket* get_open_socket(napi_env env, napi_value v) {
  struct socket* s = get_socket(env, v);

  if (s != NULL && (s->closing || s->closed)) {
    napi_throw_error(env, "ERR_SOCKET_DGRAM_NOT_RUNNING",
                     "the socket is closed");
    return NULL;
  }
  return s;
}

/* Reads a string argument into buf; -1 and a TypeError if it is not one. */
static int get_string(napi_env env,
                      napi_value v,
                      char* buf,
                      size_t size,
                      const char* what) {
  napi_valuetype t;
  size_t len;
  char msg[128];

  napi_typeof(env, v, &t);
  if (t != napi_string) {
    snprintf(msg, sizeof(msg), "%s must be a string", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  napi_get_value_string_utf8(env, v, buf, size, &len);
  if (len >= size - 1) {
    snprintf(msg, sizeof(msg), "%s is too long", what);
    napi_throw_range_error(env, "ERR_INVALID_ARG_VALUE", msg);
    return -1;
  }
  return 0;
}

/* An integer argument in [min, max]; undefined gives def when allowed. */
static int get_int(napi_env env,
                   napi_value v,
                   double min,
                   double max,
                   int optional,
                   double def,
                   const char* what,
                   double* out) {
  napi_valuetype t;
  double d;
  char msg[160];

  napi_typeof(env, v, &t);
  if (optional && (t == napi_undefined || t == napi_null)) {
    *out = def;
    return 0;
  }
  if (t != napi_number) {
    snprintf(msg, sizeof(msg), "%s must be an integer", what);
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return -1;
  }
  napi_get_value_double(env, v, &d);
  if (d != d) {
    snprintf(msg, sizeof(msg), "%s must be an integer", what);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return -1;
  }
  /* The range first: converting a double outside int64_t's range (1e300,
   * Infinity) to int64_t is undefined behaviour. Every range fits. */
  if (d < min || d > max) {
    snprintf(msg, sizeof(msg), "%s must be >= %.0f and <= %.0f", what, min,
             max);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return -1;
  }
  if (d != (double) (int64_t) d) {
    snprintf(msg, sizeof(msg), "%s must be an integer", what);
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", msg);
    return -1;
  }
  *out = d;
  return 0;
}

/* Parses an IP address and port for a socket of the given family. An IPv4
 * address on an IPv6 socket becomes IPv4-mapped, as in node:dgram. */
static int make_addr(napi_env env,
                     int family,
                     const char* ip,
                     int port,
                     struct sockaddr_storage* ss,
                     const char* what) {
  char msg[200];

  memset(ss, 0, sizeof(*ss));
  if (family == AF_INET) {
    struct sockaddr_in* a = (struct sockaddr_in*) ss;
    if (inet_pton(AF_INET, ip, &a->sin_addr) == 1) {
      a->sin_family = AF_INET;
      a->sin_port = htons((uint16_t) port);
      return 0;
    }
  } else {
    struct sockaddr_in6* a = (struct sockaddr_in6*) ss;
    struct in_addr v4;
    if (inet_pton(AF_INET6, ip, &a->sin6_addr) == 1) {
      a->sin6_family = AF_INET6;
      a->sin6_port = htons((uint16_t) port);
      return 0;
    }
    if (inet_pton(AF_INET, ip, &v4) == 1) {
      a->sin6_family = AF_INET6;
      a->sin6_port = htons((uint16_t) port);
      a->sin6_addr.s6_addr[10] = 0xff;
      a->sin6_addr.s6_addr[11] = 0xff;
      memcpy(&a->sin6_addr.s6_addr[12], &v4, 4);
      return 0;
    }
  }
  snprintf(msg, sizeof(msg), "%s '%s' is not an %s address", what, ip,
           family == AF_INET ? "IPv4" : "IPv6 (or IPv4)");
  napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", msg);
  return -1;
}

/* Reads obj[name] once; -1 with the exception pending if a getter or a
 * Proxy trap threw. */
static int get_property(napi_env env,
                        napi_value obj,
                        const char* name,
                        napi_value* out) {
  if (napi_get_named_property(env, obj, name, out) != napi_ok) {
    throw_last_error(env, name);
    return -1;
  }
  return 0;
}

/* Checks that v is a Buffer or other Uint8Array. Its bytes are located
 * later, by view_bytes(). */
static int check_view(napi_env env, napi_value v) {
  bool is = false;
  napi_typedarray_type type;

  napi_is_typedarray(env, v, &is);
  if (is &&
      napi_get_typedarray_info(env, v, &type, NULL, NULL, NULL, NULL) ==
          napi_ok &&
      type == napi_uint8_array)
    return 0;
  napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                        "message data must be a Buffer, a Uint8Array or an "
                        "array of them");
  return -1;
}

/* The bytes of a view that check_view() accepted, as they are now. Called
 * only once no JS can run before the bytes are used: until then a getter
 * could detach the buffer (freeing the memory) or shrink a resizable one.
 * A detached view would read as 0 bytes; it is refused instead, since an
 * empty datagram in place of the payload would hide the caller's bug. A
 * view past the end of a shrunk resizable buffer is 0 bytes, as in JS. */
static int view_bytes(napi_env env, napi_value v, uv_buf_t* buf) {
  napi_typedarray_type type;
  size_t length, offset;
  void* data;
  napi_value arraybuffer;
  bool detached = false;

  if (napi_get_typedarray_info(env, v, &type, &length, &data, &arraybuffer,
                               &offset) != napi_ok) {
    throw_last_error(env, "message data");
    return -1;
  }
  if (length == 0) {
    napi_is_detached_arraybuffer(env, arraybuffer, &detached);
    if (detached) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE",
                            "message data is a detached buffer");
      return -1;
    }
  }
  /* Not uv_buf_init(): its length is an unsigned int, and a 4 GiB Buffer
   * would wrap to a small one. uvq refuses the real size. */
  buf->base = length ? data : NULL;
  buf->len = length;
  return 0;
}

/* ---- exported functions ---------------------------------------------- */

static void on_close(uvq_udp_t* handle);


static void wrapper_finalize(napi_env env, void* data, void* hint) {
  struct socket* s = data;

  /* The JS handle object is gone. The owner reference was strong while
   * the socket was open, so this means the socket is closed or was never
   * usable, or the environment is shutting down. */
  s->finalized = 1;
  if (!s->initialized || s->closed) {
    socket_free(s);
    return;
  }
  if (!s->closing) {
    s->closing = 1;
    uvq_udp_close(&s->handle, on_close);
  }
}

/* Node runs the loop after this hook until the hook is removed (in
 * on_close), so the handle closes properly when a worker exits with the
 * socket open, instead of Node closing uvq's internal handles behind its
 * back. */
static void on_env_teardown(napi_async_cleanup_hook_handle hook, void* arg) {
  struct socket* s = arg;

  s->teardown = 1;
  if (!s->closing) {
    s->closing = 1;
    uvq_udp_close(&s->handle, on_close);
  }
}

/* create(family, owner) -> handle */
static napi_value js_create(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], handle, name;
  struct socket* s;
  uv_loop_t* loop;
  napi_valuetype t;
  double family;
  int err;

  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (get_int(env, argv[0], 4, 6, 0, 0, "family", &family) != 0)
    return NULL;
  napi_typeof(env, argv[1], &t);
  if (t != napi_object) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "the owner must be an object");
    return NULL;
  }
  CHECK_NAPI(env, napi_get_uv_event_loop(env, &loop));
  s = calloc(1, sizeof(*s));
  if (s == NULL)
    return throw_uv_error(env, UV_ENOMEM, "create");
  s->env = env;
  s->family = family == 6 ? AF_INET6 : AF_INET;
  err = uvq_udp_init_ex(loop, &s->handle, (unsigned int) s->family);
  if (err != 0) {
    free(s);
    return throw_uv_error(env, err, "socket");
  }
  s->initialized = 1;
  s->handle.data = s;
  napi_create_reference(env, argv[1], 1, &s->owner);
  napi_create_string_utf8(env, "UVQ_UDP", NAPI_AUTO_LENGTH, &name);
  napi_async_init(env, argv[1], name, &s->async_context);
  napi_add_async_cleanup_hook(env, on_env_teardown, s, &s->cleanup_hook);
  napi_create_object(env, &handle);
  if (napi_wrap(env, handle, s, wrapper_finalize, NULL, NULL) != napi_ok) {
    s->closing = 1;
    s->finalized = 1;
    uvq_udp_close(&s->handle, on_close);
    return throw_uv_error(env, UV_ENOMEM, "create");
  }
  return handle;
}

/* bind(handle, address, port, flags, recvSlot, recvBatch) */
static napi_value js_bind(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  struct socket* s;
  struct sockaddr_storage ss;
  char ip[INET6_ADDRSTRLEN + 8];
  double port, flags;
  int err;

  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((s = get_open_socket(env, argv[0])) == NULL)
    return NULL;
  if (get_string(env, argv[1], ip, sizeof(ip), "address") != 0 ||
      get_int(env, argv[2], 0, 65535, 0, 0, "port", &port) != 0 ||
      get_int(env, argv[3], 0, 4294967295.0, 0, 0, "flags", &flags) != 0)
    return NULL;
  if (make_addr(env, s->family, ip, (int) port, &ss, "address") != 0)
    return NULL;
  err = uvq_udp_bind(&s->handle, (const struct sockaddr*) &ss,
                     (unsigned int) flags);
  if (err != 0)
    return throw_uv_error(env, err, "bind");
  err = uvq_udp_recv_start2(&s->handle, on_alloc, on_recv);
  if (err != 0)
    return throw_uv_error(env, err, "recv_start");
  return NULL;
}

static napi_value js_address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj, fam;
  struct socket* s;
  struct sockaddr_storage ss;
  int len = sizeof(ss);
  int err;

  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((s = get_open_socket(env, argv[0])) == NULL)
    return NULL;
  err = uvq_udp_getsockname(&s->handle, (struct sockaddr*) &ss, &len);
  if (err != 0)
    return throw_uv_error(env, err, "getsockname");
  napi_create_object(env, &obj);
  napi_set_named_property(env, obj, "address",
                          addr_string(env, (struct sockaddr*) &ss));
  napi_create_string_utf8(env, ss.ss_family == AF_INET6 ? "IPv6" : "IPv4",
                          NAPI_AUTO_LENGTH, &fam);
  napi_set_named_property(env, obj, "family", fam);
  set_int(env, obj, "port", addr_port((struct sockaddr*) &ss));
  return obj;
}

static napi_value js_features(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], v;
  struct socket* s;

  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((s = get_open_socket(env, argv[0])) == NULL)
    return NULL;
  napi_create_uint32(env, uvq_udp_features(&s->handle), &v);
  return v;
}

static napi_value js_stats(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], obj, ecn;
  struct socket* s;
  uvq_udp_stats_t st;
  int err, i;

  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((s = get_open_socket(env, argv[0])) == NULL)
    return NULL;
  err = uvq_udp_get_stats(&s->handle, &st);
  if (err != 0)
    return throw_uv_error(env, err, "stats");
  napi_create_object(env, &obj);
  /* Numbers are exact up to 2^53, far beyond any counter's reach. */
#define STAT(js, field) set_int(env, obj, js, (double) st.field)
  STAT("datagramsReceived", datagrams_received);
  STAT("bytesReceived", bytes_received);
  STAT("datagramsSent", datagrams_sent);
  STAT("bytesSent", bytes_sent);
  STAT("recvSyscalls", recv_syscalls);
  STAT("sendSyscalls", send_syscalls);
  STAT("gsoSends", gso_sends);
  STAT("gsoSegments", gso_segments);
  STAT("groPackets", gro_packets);
  STAT("groSegments", gro_segments);
  STAT("gsoFallbacks", gso_fallbacks);
  STAT("truncated", truncated);
  STAT("controlTruncated", control_truncated);
  STAT("kernelDrops", kernel_drops);
  STAT("errqueueEntries", errqueue_entries);
  STAT("sendEagain", send_eagain);
  STAT("segmentsDropped", segments_dropped);
#undef STAT
  napi_create_array_with_length(env, 4, &ecn);
  for (i = 0; i < 4; i++) {
    napi_value n;
    napi_create_double(env, (double) st.ecn_received[i], &n);
    napi_set_element(env, ecn, (uint32_t) i, n);
  }
  napi_set_named_property(env, obj, "ecnReceived", ecn);
  return obj;
}

/* setOption(handle, name, value): "ecn", "pmtud", "sndbuf", "rcvbuf",
 * "configure", "slots" (value = [slot, batch]). Returns a number for the
 * buffer sizes (value 0 reads). */
static napi_value js_set(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], out;
  struct socket* s;
  char name[16];
  double v, w;
  int err, size;

  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((s = get_open_socket(env, argv[0])) == NULL)
    return NULL;
  if (get_string(env, argv[1], name, sizeof(name), "option") != 0)
    return NULL;
  if (strcmp(name, "ecn") == 0) {
    if (get_int(env, argv[2], 0, 3, 0, 0, "ecn", &v) != 0)
      return NULL;
    err = uvq_udp_set_ecn(&s->handle, (int) v);
  } else if (strcmp(name, "pmtud") == 0) {
    if (get_int(env, argv[2], 0, 2, 0, 0, "pmtud", &v) != 0)
      return NULL;
    err = uvq_udp_set_pmtud(&s->handle, (int) v);
  } else if (strcmp(name, "sndbuf") == 0 || strcmp(name, "rcvbuf") == 0) {
    if (get_int(env, argv[2], 0, 2147483647.0, 0, 0, "size", &v) != 0)
      return NULL;
    size = (int) v;
    err = name[0] == 's' ? uvq_udp_send_buffer_size(&s->handle, &size)
                         : uvq_udp_recv_buffer_size(&s->handle, &size);
    if (err == 0) {
      napi_create_int32(env, size, &out);
      return out;
    }
  } else if (strcmp(name, "configure") == 0) {
    if (get_int(env, argv[2], 0, 4294967295.0, 0, 0, "flags", &v) != 0)
      return NULL;
    err = uvq_udp_configure(&s->handle, (unsigned int) v);
  } else if (strcmp(name, "slots") == 0) {
    if (get_int(env, argv[2], 0, 65536, 0, 0, "slot size", &v) != 0 ||
        get_int(env, argv[3], 0, 64, 0, 0, "batch", &w) != 0)
      return NULL;
    err = uvq_udp_set_recv_slots(&s->handle, (unsigned int) v,
                                 (unsigned int) w);
  } else {
    napi_throw_type_error(env, "ERR_INVALID_ARG_VALUE", "unknown option");
    return NULL;
  }
  if (err != 0)
    return throw_uv_error(env, err, name);
  return NULL;
}

static void on_send(uvq_udp_send_t* req, int status) {
  struct send_req* r = req->data;
  struct socket* s = r->sock;
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_value argv[3];

  if (s->teardown) {
    free(r);
    return;
  }
  napi_open_handle_scope(env, &scope);
  napi_create_double(env, r->token, &argv[0]);
  if (status == 0)
    napi_get_null(env, &argv[1]);
  else
    argv[1] = make_uv_error(env, status, "sendmmsg");
  napi_create_double(env, (double) (r->offset + req->nsent), &argv[2]);
  free(r);
  call_owner(s, "_onsent", 3, argv);
  napi_close_handle_scope(env, scope);
}

/* The messages of one send() call, converted. read_messages() reads every
 * JS value once, running whatever getters and Proxy traps it meets;
 * take_payloads() then locates the bytes of every payload view, after
 * which no JS runs until uvq has been called. */
struct send_args {
  uint32_t count;
  uvq_udp_mmsg_t* msgs;
  /* Two per message: destination, then source (localAddress). */
  struct sockaddr_storage* addrs;
  /* msgs[i]'s first entry in views and bufs. */
  uint32_t* first;
  /* Every payload view, in message order, and then their bytes. */
  napi_value* views;
  uv_buf_t* bufs;
  uint32_t nviews;
  uint32_t views_cap;
};

static void send_args_free(struct send_args* a) {
  free(a->msgs);
  free(a->addrs);
  free(a->first);
  free(a->views);
  free(a->bufs);
}

static int push_view(napi_env env, struct send_args* a, napi_value v) {
  if (check_view(env, v) != 0)
    return -1;
  if (a->nviews == a->views_cap) {
    /* At most MAX_BATCH * MAX_BUFS_PER_MESSAGE views: no overflow. */
    uint32_t cap = a->views_cap ? a->views_cap * 2 : 64;
    napi_value* p = realloc(a->views, cap * sizeof(*p));
    if (p == NULL) {
      throw_uv_error(env, UV_ENOMEM, "send");
      return -1;
    }
    a->views = p;
    a->views_cap = cap;
  }
  a->views[a->nviews++] = v;
  return 0;
}

/* Converts message i from the JS object m, reading each field once. */
static int read_message(napi_env env,
                        struct socket* s,
                        napi_value m,
                        struct send_args* a,
                        uint32_t i) {
  uvq_udp_mmsg_t* msg = &a->msgs[i];
  napi_value data, v;
  char ip[INET6_ADDRSTRLEN + 8];
  double port, ecn, gso, txtime;
  napi_valuetype t;
  bool is_array = false;

  if (get_property(env, m, "data", &data) != 0)
    return -1;
  a->first[i] = a->nviews;
  napi_is_array(env, data, &is_array);
  if (is_array) {
    uint32_t k, nb;

    /* An Array's length is a plain data property: reading it runs no JS.
     * The elements' getters may change it; nb stays what was read. */
    napi_get_array_length(env, data, &nb);
    if (nb > MAX_BUFS_PER_MESSAGE) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                             "at most 1024 buffers per message");
      return -1;
    }
    for (k = 0; k < nb; k++) {
      napi_value b;
      if (napi_get_element(env, data, k, &b) != napi_ok) {
        throw_last_error(env, "message data");
        return -1;
      }
      if (push_view(env, a, b) != 0)
        return -1;
    }
    msg->nbufs = nb;
  } else {
    if (push_view(env, a, data) != 0)
      return -1;
    msg->nbufs = 1;
  }

  if (get_property(env, m, "address", &v) != 0 ||
      get_string(env, v, ip, sizeof(ip), "address") != 0 ||
      get_property(env, m, "port", &v) != 0 ||
      get_int(env, v, 1, 65535, 0, 0, "port", &port) != 0 ||
      make_addr(env, s->family, ip, (int) port, &a->addrs[2 * i],
                "address") != 0)
    return -1;
  msg->addr = (const struct sockaddr*) &a->addrs[2 * i];

  if (get_property(env, m, "localAddress", &v) != 0)
    return -1;
  napi_typeof(env, v, &t);
  if (t != napi_undefined && t != napi_null) {
    if (get_string(env, v, ip, sizeof(ip), "localAddress") != 0 ||
        make_addr(env, s->family, ip, 0, &a->addrs[2 * i + 1],
                  "localAddress") != 0)
      return -1;
    msg->local = (const struct sockaddr*) &a->addrs[2 * i + 1];
  }

  if (get_property(env, m, "ecn", &v) != 0 ||
      get_int(env, v, 0, 3, 1, -1, "ecn", &ecn) != 0)
    return -1;
  msg->ecn = (int) ecn;
  if (get_property(env, m, "gsoSize", &v) != 0 ||
      get_int(env, v, 0, 65535, 1, 0, "gsoSize", &gso) != 0)
    return -1;
  msg->gso_size = (unsigned int) gso;

  if (get_property(env, m, "txtime", &v) != 0)
    return -1;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) {
    uint64_t u;
    bool lossless;
    int sign;
    size_t words = 1;
    napi_get_value_bigint_words(env, v, &sign, &words, &u);
    napi_get_value_bigint_uint64(env, v, &u, &lossless);
    if (sign || !lossless) {
      napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                             "txtime must fit in 64 unsigned bits");
      return -1;
    }
    msg->txtime = u;
  } else {
    if (get_int(env, v, 0, 9007199254740991.0, 1, 0, "txtime", &txtime) != 0)
      return -1;
    msg->txtime = (uint64_t) txtime;
  }
  return 0;
}

/* Reads the message array: its length once, each element once. */
static int read_messages(napi_env env,
                         struct socket* s,
                         napi_value list,
                         struct send_args* a) {
  uint32_t i;

  a->msgs = calloc(a->count, sizeof(*a->msgs));
  a->addrs = calloc(2 * (size_t) a->count, sizeof(*a->addrs));
  a->first = calloc(a->count, sizeof(*a->first));
  if (a->msgs == NULL || a->addrs == NULL || a->first == NULL) {
    throw_uv_error(env, UV_ENOMEM, "send");
    return -1;
  }
  for (i = 0; i < a->count; i++) {
    napi_value m;
    napi_valuetype t;

    if (napi_get_element(env, list, i, &m) != napi_ok) {
      throw_last_error(env, "messages");
      return -1;
    }
    napi_typeof(env, m, &t);
    if (t != napi_object) {
      napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                            "each message must be an object");
      return -1;
    }
    if (read_message(env, s, m, a, i) != 0)
      return -1;
  }
  return 0;
}

/* Locates every payload's bytes. No JS runs in here, nor between here and
 * the uvq calls that use the bytes. */
static int take_payloads(napi_env env, struct send_args* a) {
  uint32_t i;

  a->bufs = calloc(a->nviews ? a->nviews : 1, sizeof(*a->bufs));
  if (a->bufs == NULL) {
    throw_uv_error(env, UV_ENOMEM, "send");
    return -1;
  }
  for (i = 0; i < a->nviews; i++)
    if (view_bytes(env, a->views[i], &a->bufs[i]) != 0)
      return -1;
  for (i = 0; i < a->count; i++)
    a->msgs[i].bufs = &a->bufs[a->first[i]];
  return 0;
}

static size_t payload_size(const uvq_udp_mmsg_t* m) {
  size_t total = 0;
  unsigned int k;

  for (k = 0; k < m->nbufs; k++)
    total += m->bufs[k].len;
  return total;
}

/* Queues msgs[n..count) with their payloads copied into the request. Once
 * this call returns, JS may detach, shrink or rewrite those Buffers, and
 * holding a reference to them prevents none of it. A message too large
 * for any datagram is not copied: uvq checks every message before it
 * queues any and refuses that one (UV_EMSGSIZE), so its bytes are never
 * kept. Throws (with .sent = n) when uvq refuses. */
static int queue_rest(napi_env env,
                      struct socket* s,
                      struct send_args* a,
                      uint32_t n,
                      double token) {
  struct send_req* r;
  size_t total = 0;
  char* p;
  uint32_t i;
  unsigned int k;
  int err;

  for (i = n; i < a->count; i++) {
    size_t size = payload_size(&a->msgs[i]);
    if (size <= MAX_UDP_PAYLOAD)
      total += size;
  }
  r = malloc(sizeof(*r) + total);
  if (r == NULL) {
    err = UV_ENOMEM;
    goto fail;
  }
  p = r->payload;
  for (i = n; i < a->count; i++) {
    uvq_udp_mmsg_t* m = &a->msgs[i];
    if (payload_size(m) > MAX_UDP_PAYLOAD)
      continue;
    for (k = 0; k < m->nbufs; k++) {
      uv_buf_t* b = &a->bufs[a->first[i] + k];
      if (b->len > 0)
        memcpy(p, b->base, b->len);
      b->base = p;
      p += b->len;
    }
  }
  r->sock = s;
  r->token = token;
  r->offset = n;
  r->req.data = r;
  err = uvq_udp_send_batch(&r->req, &s->handle, a->msgs + n, a->count - n, 0,
                           on_send);
  if (err == 0)
    return 0;
  free(r);
fail:
  {
    napi_value e = make_uv_error(env, err, err == UV_ENOMEM ? "send"
                                                            : "sendmmsg");
    set_int(env, e, "sent", n);
    napi_throw(env, e);
  }
  return -1;
}

/* send(handle, msgs, token) -> messages sent now. The rest, if any, are
 * queued with uvq_udp_send_batch() and _onsent(token, err, nsent) reports
 * them. Throws on a first-message error, and (with .sent) when queueing the
 * rest fails at once. */
static napi_value js_send(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  struct socket* s;
  struct send_args a;
  bool is_array = false;
  napi_valuetype t;
  double token;
  int n;
  napi_value result = NULL;

  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((s = get_open_socket(env, argv[0])) == NULL)
    return NULL;
  napi_typeof(env, argv[2], &t);
  if (t != napi_number) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "the token must be a number");
    return NULL;
  }
  napi_get_value_double(env, argv[2], &token);
  /* Not true for a Proxy: lib/index.js passes a copy of the caller's list,
   * so that it counts the same messages as this function. */
  napi_is_array(env, argv[1], &is_array);
  if (!is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "messages must be an array");
    return NULL;
  }
  memset(&a, 0, sizeof(a));
  napi_get_array_length(env, argv[1], &a.count);
  if (a.count == 0) {
    napi_create_uint32(env, 0, &out);
    return out;
  }
  if (a.count > MAX_BATCH) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE",
                           "at most 1024 messages per batch");
    return NULL;
  }

  if (read_messages(env, s, argv[1], &a) != 0)
    goto done;
  /* A getter may have closed the socket. */
  if (s->closing || s->closed) {
    napi_throw_error(env, "ERR_SOCKET_DGRAM_NOT_RUNNING",
                     "the socket is closed");
    goto done;
  }
  if (take_payloads(env, &a) != 0)
    goto done;

  n = uvq_udp_try_send_batch(&s->handle, a.msgs, a.count, 0);
  if (n == UV_EAGAIN)
    n = 0;
  if (n < 0) {
    throw_uv_error(env, n, "sendmmsg");
    goto done;
  }
  /* Queue the rest; its callback is the writability signal. */
  if ((uint32_t) n < a.count &&
      queue_rest(env, s, &a, (uint32_t) n, token) != 0)
    goto done;
  napi_create_uint32(env, (uint32_t) n, &result);

done:
  send_args_free(&a);
  return result;
}

static void on_close(uvq_udp_t* handle) {
  struct socket* s = handle->data;
  napi_env env = s->env;
  napi_handle_scope scope;

  s->closed = 1;
  if (s->cleanup_hook != NULL) {
    napi_remove_async_cleanup_hook(s->cleanup_hook);
    s->cleanup_hook = NULL;
  }
  if (s->finalized) {
    socket_free(s);
    return;
  }
  if (s->teardown)
    return; /* The finalizer frees s; JS is gone. */
  napi_open_handle_scope(env, &scope);
  call_owner(s, "_onclose", 0, NULL);
  napi_close_handle_scope(env, scope);
  /* Nothing more will call into JS: let the owner be collected. The
   * struct itself goes with the handle object's finalizer. */
  napi_delete_reference(env, s->owner);
  s->owner = NULL;
  free(s->recv_buf);
  s->recv_buf = NULL;
  s->recv_buf_len = 0;
}

static napi_value js_close(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  struct socket* s;

  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((s = get_socket(env, argv[0])) == NULL)
    return NULL;
  if (!s->closing) {
    s->closing = 1;
    uvq_udp_close(&s->handle, on_close);
  }
  return NULL;
}

static napi_value js_ref(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  struct socket* s;
  bool on;

  CHECK_NAPI(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if ((s = get_socket(env, argv[0])) == NULL)
    return NULL;
  if (napi_get_value_bool(env, argv[1], &on) != napi_ok) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                          "ref takes a boolean");
    return NULL;
  }
  if (s->closed)
    return NULL;
  if (on)
    uvq_udp_ref(&s->handle);
  else
    uvq_udp_unref(&s->handle);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  static const struct {
    const char* name;
    unsigned int value;
  } flags[] = {
      {"IPV6ONLY", UVQ_UDP_IPV6ONLY},
      {"REUSEADDR", UVQ_UDP_REUSEADDR},
      {"RECVERR", UVQ_UDP_RECVERR},
      {"REUSEPORT", UVQ_UDP_REUSEPORT},
      {"RECVMMSG", UVQ_UDP_RECVMMSG},
      {"RECVECN", UVQ_UDP_RECVECN},
      {"PMTUD", UVQ_UDP_PMTUD},
      {"RECVPKTINFO", UVQ_UDP_RECVPKTINFO},
      {"GRO", UVQ_UDP_GRO},
      {"GRO_RAW", UVQ_UDP_GRO_RAW},
      {"TXTIME", UVQ_UDP_TXTIME},
      {"FEATURE_GSO", UVQ_UDP_FEATURE_GSO},
      {"FEATURE_SENDMMSG", UVQ_UDP_FEATURE_SENDMMSG},
      {"FEATURE_ECN_SEND", UVQ_UDP_FEATURE_ECN_SEND},
      {"FEATURE_SRCADDR", UVQ_UDP_FEATURE_SRCADDR},
      {"FEATURE_DROPS", UVQ_UDP_FEATURE_DROPS},
  };
  napi_property_descriptor fns[] = {
      {"create", NULL, js_create, NULL, NULL, NULL, napi_default, NULL},
      {"bind", NULL, js_bind, NULL, NULL, NULL, napi_default, NULL},
      {"address", NULL, js_address, NULL, NULL, NULL, napi_default, NULL},
      {"features", NULL, js_features, NULL, NULL, NULL, napi_default, NULL},
      {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, NULL},
      {"set", NULL, js_set, NULL, NULL, NULL, napi_default, NULL},
      {"send", NULL, js_send, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, js_close, NULL, NULL, NULL, napi_default, NULL},
      {"ref", NULL, js_ref, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_value obj, v;
  size_t i;

  napi_define_properties(env, exports, sizeof(fns) / sizeof(fns[0]), fns);
  napi_create_object(env, &obj);
  for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
    napi_create_uint32(env, flags[i].value, &v);
    napi_set_named_property(env, obj, flags[i].name, v);
  }
  napi_set_named_property(env, exports, "flags", obj);
  napi_create_string_utf8(env, uvq_version_string(), NAPI_AUTO_LENGTH, &v);
  napi_set_named_property(env, exports, "version", v);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
