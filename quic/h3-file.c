/* The static-file handler: request paths confined to a root directory,
 * content types by extension, and the status codes for what cannot be
 * served. */
#include "h3-internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifdef __linux__
#include <linux/openat2.h>
#endif

static const char* content_type(const char* path) {
  static const struct {
    const char* ext;
    const char* type;
  } types[] = {
      {".html", "text/html; charset=utf-8"},
      {".htm", "text/html; charset=utf-8"},
      {".txt", "text/plain; charset=utf-8"},
      {".css", "text/css"},
      {".js", "text/javascript"},
      {".json", "application/json"},
      {".png", "image/png"},
      {".jpg", "image/jpeg"},
      {".jpeg", "image/jpeg"},
      {".gif", "image/gif"},
      {".svg", "image/svg+xml"},
      {".wasm", "application/wasm"},
      {".pdf", "application/pdf"},
  };
  const char* dot;
  size_t i;

  dot = strrchr(path, '.');
  if (dot != NULL && strchr(dot, '/') == NULL)
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
      if (strcasecmp(dot, types[i].ext) == 0)
        return types[i].type;
  return "application/octet-stream";
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Turns a request path into a relative file path under the root, or
 * fails: percent-decoding first, then refusing NUL, backslashes, and any
 * "." or ".." segment, so that no spelling can climb out of the root. */
static int sanitize_path(const char* path, size_t len, char* out, size_t cap) {
  size_t i;
  size_t o;
  size_t seg;
  int hi;
  int lo;
  char ch;

  if (len == 0 || path[0] != '/')
    return -1;
  o = 0;
  for (i = 1; i < len && path[i] != '?' && path[i] != '#'; i++) {
    ch = path[i];
    if (ch == '%') {
      if (i + 2 >= len + 0 || (hi = hexval(path[i + 1])) < 0 ||
          (lo = hexval(path[i + 2])) < 0)
        return -1;
      ch = (char) (hi * 16 + lo);
      i += 2;
    }
    if (ch == '\0' || ch == '\\')
      return -1;
    if (o + 1 >= cap)
      return -1;
    out[o++] = ch;
  }
  out[o] = '\0';
  /* Check every segment. */
  for (i = 0, seg = 0; i <= o; i++) {
    if (i == o || out[i] == '/') {
      size_t slen = i - seg;
      if ((slen == 1 && out[seg] == '.') ||
          (slen == 2 && out[seg] == '.' && out[seg + 1] == '.'))
        return -1;
      seg = i + 1;
    }
  }
  if (o == 0 || out[o - 1] == '/') {
    if (o + sizeof("index.html") >= cap)
      return -1;
    memcpy(out + o, "index.html", sizeof("index.html"));
  }
  return 0;
}

/* The root directory stays open between requests (one open and one close
 * less per request); a different root replaces it. */
static int root_fd(uvq_h3_t* h3, const char* root) {
  int fd;

  if (h3->root_fd >= 0 && h3->root_path != NULL &&
      strcmp(h3->root_path, root) == 0)
    return h3->root_fd;
  fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return -1;
  if (h3->root_fd >= 0)
    close(h3->root_fd);
  free(h3->root_path);
  h3->root_path = strdup(root);
  h3->root_fd = fd;
  return fd;
}

/* Opens rel beneath root: openat2 with RESOLVE_BENEATH also stops symbolic
 * links from leading out (Linux 5.6+); elsewhere, or on older kernels, the
 * opened file's real path must lie under the root's.
 *
 * O_NONBLOCK because the caller learns the file's type only after opening
 * it: open() of a FIFO with no writer blocks until one comes (and some
 * device files wait for a carrier), which would stall the server's only
 * loop. It changes nothing for the regular files that are served; reads of
 * those never return EAGAIN. O_NOCTTY keeps a terminal from becoming the
 * process's controlling one. */
#define OPEN_FLAGS (O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)

static int open_beneath(uvq_h3_t* h3, const char* root, const char* rel) {
  int dirfd;
  int fd;

  dirfd = root_fd(h3, root);
  if (dirfd < 0)
    return -1;
  fd = -1;
#if defined(__linux__) && defined(SYS_openat2)
  {
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = OPEN_FLAGS;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    fd = (int) syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
    if (fd < 0 && errno != ENOSYS)
      return -1;
  }
#endif
  if (fd < 0) {
    /* Without openat2 only the last component can refuse to be a link, so
     * the file's real path is checked against the root's. */
    char rootreal[PATH_MAX];
    char fullreal[PATH_MAX];
    char full[PATH_MAX * 2];
    size_t rl;

    fd = openat(dirfd, rel, OPEN_FLAGS | O_NOFOLLOW);
    snprintf(full, sizeof(full), "%s/%s", root, rel);
    if (fd >= 0 && (realpath(root, rootreal) == NULL ||
                    realpath(full, fullreal) == NULL ||
                    strncmp(fullreal, rootreal, rl = strlen(rootreal)) != 0 ||
                    (fullreal[rl] != '/' && fullreal[rl] != '\0'))) {
      close(fd);
      fd = -1;
    }
  }
  return fd;
}

/* --- The small-file cache (uvq_h3_config_t.file_cache_ms) ---------------
 *
 * Direct-mapped: a path's hash picks its one slot, and a different path
 * that maps there replaces it. Bodies are refcounted blobs, so replacing
 * or dropping an entry never frees bytes a response is still sending. */

#define FCACHE_SLOTS 256
#define FCACHE_MAX_FILE (64 * 1024)

struct uvq__h3_fentry {
  char* rel;                /* path under the root; NULL: empty slot */
  char* root;               /* the root it was found under */
  uvq__h3_blob_t* blob;
  uint64_t checked;         /* ms of the last check against the disk */
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
};

void uvq__h3_blob_unref(uvq__h3_blob_t* blob) {
  if (blob != NULL && --blob->refs == 0)
    free(blob);
}

static void fentry_clear(struct uvq__h3_fentry* e) {
  free(e->rel);
  free(e->root);
  uvq__h3_blob_unref(e->blob);
  memset(e, 0, sizeof(*e));
}

void uvq__h3_file_cache_free(uvq_h3_t* h3) {
  size_t i;

  if (h3->fcache == NULL)
    return;
  for (i = 0; i < FCACHE_SLOTS; i++)
    fentry_clear(&h3->fcache[i]);
  free(h3->fcache);
  h3->fcache = NULL;
}

static struct uvq__h3_fentry* fcache_slot(uvq_h3_t* h3, const char* rel) {
  uint32_t h = 2166136261u; /* FNV-1a */

  if (h3->fcache == NULL) {
    h3->fcache = calloc(FCACHE_SLOTS, sizeof(*h3->fcache));
    if (h3->fcache == NULL)
      return NULL;
  }
  for (; *rel != '\0'; rel++)
    h = (h ^ (uint8_t) *rel) * 16777619u;
  return &h3->fcache[h % FCACHE_SLOTS];
}

static int same_file(const struct uvq__h3_fentry* e, const struct stat* st) {
  return e->dev == st->st_dev && e->ino == st->st_ino &&
         e->size == st->st_size && e->mtime.tv_sec == st->st_mtim.tv_sec &&
         e->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Reads the whole file (st's size) into a new blob; NULL if it cannot, or
 * if the file changed size meanwhile. */
static uvq__h3_blob_t* read_blob(int fd, const struct stat* st) {
  uvq__h3_blob_t* b;
  size_t got;
  ssize_t n;

  b = malloc(sizeof(*b) + (size_t) st->st_size + 1);
  if (b == NULL)
    return NULL;
  b->refs = 1;
  b->len = (size_t) st->st_size;
  got = 0;
  /* One byte more than expected: a file that grew is not cached. */
  while (got <= b->len) {
    n = pread(fd, b->data + got, b->len + 1 - got, (off_t) got);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    got += (size_t) n;
  }
  if (got != b->len) {
    free(b);
    return NULL;
  }
  return b;
}

static void fentry_fill(struct uvq__h3_fentry* e, const char* root,
                        const char* rel, const struct stat* st,
                        uvq__h3_blob_t* blob, uint64_t now) {
  char* r1 = strdup(rel);
  char* r2 = strdup(root);

  fentry_clear(e);
  if (r1 == NULL || r2 == NULL) {
    free(r1);
    free(r2);
    return; /* not cached; the response still goes out */
  }
  blob->refs++;
  e->rel = r1;
  e->root = r2;
  e->blob = blob;
  e->checked = now;
  e->dev = st->st_dev;
  e->ino = st->st_ino;
  e->size = st->st_size;
  e->mtime = st->st_mtim;
}

/* 200 with content-type h and content-length len but no body: HEAD, and
 * empty files. */
static int respond_headers_only(uvq_h3_req_t* req, const uvq_h3_header_t* h,
                                uint64_t len) {
  char lenbuf[24];
  uvq_h3_header_t hs[2];

  snprintf(lenbuf, sizeof(lenbuf), "%llu", (unsigned long long) len);
  hs[0] = *h;
  hs[1].name = "content-length";
  hs[1].namelen = 14;
  hs[1].value = lenbuf;
  hs[1].valuelen = strlen(lenbuf);
  return uvq_h3_respond(req, 200, hs, 2, NULL);
}

/* 200 from memory: the response holds its own reference to the blob. */
static int respond_blob(uvq_h3_req_t* req, const char* rel,
                        uvq__h3_blob_t* blob, int head) {
  uvq_h3_header_t h;
  uvq_h3_body_t body;
  int err;

  h.name = "content-type";
  h.namelen = 12;
  h.value = content_type(rel);
  h.valuelen = strlen(h.value);
  if (head || blob->len == 0)
    return respond_headers_only(req, &h, (uint64_t) blob->len);
  memset(&body, 0, sizeof(body));
  body.kind = UVQ_H3_BODY_MEMORY;
  body.data = blob->data;
  body.len = blob->len;
  err = uvq_h3_respond(req, 200, &h, 1, &body);
  if (err == 0) {
    blob->refs++;
    req->blob = blob;
  }
  return err;
}

int uvq__h3_respond_text(uvq_h3_req_t* req, int status, const char* text) {
  uvq_h3_header_t h;
  uvq_h3_body_t body;

  h.name = "content-type";
  h.namelen = 12;
  h.value = "text/plain; charset=utf-8";
  h.valuelen = strlen(h.value);
  memset(&body, 0, sizeof(body));
  body.kind = UVQ_H3_BODY_MEMORY;
  body.data = text;
  body.len = strlen(text);
  return uvq_h3_respond(req, status, &h, 1, &body);
}

int uvq_h3_serve_file(uvq_h3_req_t* req, const char* root) {
  struct uvq__h3_fentry* e;
  uint64_t now;
  int hit;
  uvq_h3_header_t h;
  uvq_h3_body_t body;
  struct stat st;
  char rel[4096];
  int head;
  int fd;
  int err;

  if (req == NULL || root == NULL || !req->h3->is_server)
    return UV_EINVAL;
  head = req->methodlen == 4 && memcmp(req->method, "HEAD", 4) == 0;
  if (!head && !(req->methodlen == 3 && memcmp(req->method, "GET", 3) == 0))
    return uvq__h3_respond_text(req, 405, "method not allowed\n");
  if (req->path == NULL ||
      sanitize_path(req->path, req->pathlen, rel, sizeof(rel)) != 0)
    return uvq__h3_respond_text(req, 400, "bad path\n");
  e = NULL;
  hit = 0;
  now = 0;
  if (req->h3->cfg.file_cache_ms > 0) {
    /* Milliseconds; a core endpoint's time is the application's. */
    now = req->h3->loop != NULL
              ? uv_now(req->h3->loop)
              : uvq_quic_endpoint_now(req->h3->ep) / 1000000u;
    e = fcache_slot(req->h3, rel);
    /* The slot may hold another file: it is replaced below if this one
     * gets cached. */
    hit = e != NULL && e->rel != NULL && strcmp(e->rel, rel) == 0 &&
          strcmp(e->root, root) == 0;
    if (hit && now - e->checked < req->h3->cfg.file_cache_ms)
      return respond_blob(req, rel, e->blob, head);
  }
  fd = open_beneath(req->h3, root, rel);
  if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    if (fd >= 0)
      close(fd);
    if (hit)
      fentry_clear(e);
    return uvq__h3_respond_text(req, 404, "not found\n");
  }
  if (e != NULL && st.st_size <= FCACHE_MAX_FILE) {
    uvq__h3_blob_t* blob;
    if (hit && same_file(e, &st)) {
      /* Checked: unchanged on disk. */
      close(fd);
      e->checked = now;
      return respond_blob(req, rel, e->blob, head);
    }
    blob = read_blob(fd, &st);
    if (blob != NULL) {
      close(fd);
      fentry_fill(e, root, rel, &st, blob, now);
      err = respond_blob(req, rel, blob, head);
      uvq__h3_blob_unref(blob); /* the cache and the response hold theirs */
      return err;
    }
    /* Unreadable or changing under us: serve it from the file. */
  }
  h.name = "content-type";
  h.namelen = 12;
  h.value = content_type(rel);
  h.valuelen = strlen(h.value);
  memset(&body, 0, sizeof(body));
  if (head || st.st_size == 0) {
    close(fd);
    return respond_headers_only(req, &h, (uint64_t) st.st_size);
  }
  body.kind = UVQ_H3_BODY_FILE;
  body.fd = fd;
  body.offset = 0;
  body.len = (uint64_t) st.st_size;
  err = uvq_h3_respond(req, 200, &h, 1, &body);
  if (err) {
    close(fd);
    return err;
  }
  req->close_fd = 1;
  return 0;
}
