/* curl-h3-fetch: the libcurl HTTP/3 client of the interop tests.
 *
 *   curl-h3-fetch --cacert FILE --outdir DIR [--parallel N] [--post FILE]
 *                 URL...
 *
 * Fetches every URL over HTTP/3 only (CURL_HTTP_VERSION_3ONLY), at most N
 * at a time on one multi handle with multiplexing, and saves the body of
 * the i-th URL to DIR/<i>.body. With --post, each request is a POST whose
 * body is the contents of FILE. Prints one line per transfer and a
 * summary:
 *
 *   result <i> <curl code> <status> <http version> <bytes> <new connections>
 *   connections <sum of CURLINFO_NUM_CONNECTS>
 *
 * Exit status: 0 when every transfer ended with CURLE_OK, 1 otherwise, 2
 * on a usage error, 77 when this libcurl has no HTTP/3.
 *
 * It is a program of its own, not part of the test binary: Debian's
 * libcurl pulls in libngtcp2_crypto_gnutls, which exports the same
 * ngtcp2_crypto_* symbols as the wolfSSL helper uvq_quic links.
 */
#include <curl/curl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_URLS 256

struct transfer {
  CURL* easy;
  FILE* out;
  int index;
};

static int usage(void) {
  fprintf(stderr,
          "usage: curl-h3-fetch --cacert FILE --outdir DIR [--parallel N] "
          "[--post FILE] URL...\n");
  return 2;
}

static char* read_whole(const char* path, long* len) {
  FILE* f;
  char* data;

  f = fopen(path, "rb");
  if (f == NULL)
    return NULL;
  fseek(f, 0, SEEK_END);
  *len = ftell(f);
  fseek(f, 0, SEEK_SET);
  data = malloc((size_t) *len + 1);
  if (data == NULL || fread(data, 1, (size_t) *len, f) != (size_t) *len) {
    fclose(f);
    free(data);
    return NULL;
  }
  fclose(f);
  return data;
}

int main(int argc, char** argv) {
  static struct transfer transfers[MAX_URLS];
  const char* cacert = NULL;
  const char* outdir = NULL;
  const char* post_file = NULL;
  const char* urls[MAX_URLS];
  curl_version_info_data* info;
  char* post_data = NULL;
  long post_len = 0;
  long connects_total = 0;
  int parallel = 1;
  int nurls = 0;
  int started = 0;
  int running = 0;
  int failed = 0;
  CURLM* multi;
  int i;

  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--cacert") == 0 && i + 1 < argc)
      cacert = argv[++i];
    else if (strcmp(argv[i], "--outdir") == 0 && i + 1 < argc)
      outdir = argv[++i];
    else if (strcmp(argv[i], "--parallel") == 0 && i + 1 < argc)
      parallel = atoi(argv[++i]);
    else if (strcmp(argv[i], "--post") == 0 && i + 1 < argc)
      post_file = argv[++i];
    else if (argv[i][0] == '-')
      return usage();
    else if (nurls < MAX_URLS)
      urls[nurls++] = argv[i];
    else
      return usage();
  }
  if (cacert == NULL || outdir == NULL || nurls == 0 || parallel < 1)
    return usage();

  curl_global_init(CURL_GLOBAL_ALL);
  info = curl_version_info(CURLVERSION_NOW);
  if (!(info->features & CURL_VERSION_HTTP3)) {
    fprintf(stderr, "libcurl %s has no HTTP/3\n", info->version);
    return 77;
  }
  printf("libcurl %s %s\n", info->version,
         info->quic_version != NULL ? info->quic_version : "?");
  if (post_file != NULL) {
    post_data = read_whole(post_file, &post_len);
    if (post_data == NULL) {
      perror(post_file);
      return 2;
    }
  }

  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long) CURLPIPE_MULTIPLEX);

  do {
    CURLMsg* msg;
    int left;

    /* Keep up to `parallel` transfers going. */
    while (started < nurls && running < parallel) {
      struct transfer* t = &transfers[started];
      char path[4096];

      snprintf(path, sizeof(path), "%s/%d.body", outdir, started);
      t->index = started;
      t->out = fopen(path, "wb");
      if (t->out == NULL) {
        perror(path);
        return 1;
      }
      t->easy = curl_easy_init();
      curl_easy_setopt(t->easy, CURLOPT_URL, urls[started]);
      curl_easy_setopt(t->easy, CURLOPT_HTTP_VERSION,
                       (long) CURL_HTTP_VERSION_3ONLY);
      curl_easy_setopt(t->easy, CURLOPT_CAINFO, cacert);
      curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t->out);
      curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
      /* Wait for the first connection to learn it can multiplex rather
       * than open one per transfer. */
      curl_easy_setopt(t->easy, CURLOPT_PIPEWAIT, 1L);
      curl_easy_setopt(t->easy, CURLOPT_TIMEOUT, 20L);
      if (post_data != NULL) {
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDS, post_data);
        curl_easy_setopt(t->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t) post_len);
      }
      curl_multi_add_handle(multi, t->easy);
      started++;
      running++;
    }

    curl_multi_perform(multi, &left);
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
      struct transfer* t;
      curl_off_t bytes = 0;
      long status = 0;
      long version = 0;
      long connects = 0;

      if (msg->msg != CURLMSG_DONE)
        continue;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char**) &t);
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      curl_easy_getinfo(t->easy, CURLINFO_HTTP_VERSION, &version);
      curl_easy_getinfo(t->easy, CURLINFO_SIZE_DOWNLOAD_T, &bytes);
      curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
      connects_total += connects;
      printf("result %d %d %ld %s %" CURL_FORMAT_CURL_OFF_T " %ld\n",
             t->index, (int) msg->data.result, status,
             version == CURL_HTTP_VERSION_3 ? "3" : "other", bytes, connects);
      if (msg->data.result != CURLE_OK) {
        fprintf(stderr, "transfer %d (%s): %s\n", t->index, urls[t->index],
                curl_easy_strerror(msg->data.result));
        failed = 1;
      }
      curl_multi_remove_handle(multi, t->easy);
      curl_easy_cleanup(t->easy);
      fclose(t->out);
      running--;
    }
    if (running > 0 || started < nurls)
      curl_multi_poll(multi, NULL, 0, 100, NULL);
  } while (running > 0 || started < nurls);

  printf("connections %ld\n", connects_total);
  curl_multi_cleanup(multi);
  free(post_data);
  curl_global_cleanup();
  return failed;
}
