/* libFuzzer target: every input is one UDP datagram to a listening QUIC
 * server endpoint.
 *
 * The endpoint reads only from its socket, so the input travels over
 * loopback from a plain UDP socket to the endpoint's port, and the loop
 * runs a few non-blocking turns to read and answer it. The endpoint (and
 * whatever connections the inputs create) lives across inputs, as a real
 * server does. A self-signed certificate is made once, in a temporary
 * directory, with the openssl command.
 *
 *   fuzz-quic-endpoint -max_total_time=60 -max_len=1500 CORPUS_DIR
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "uvq/quic.h"

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static uv_loop_t loop;
static uvq_quic_endpoint_t* server;
static struct sockaddr_in server_addr;
static int sender = -1;
static char cert_dir[64];

static void on_data(uvq_quic_conn_t* conn, int64_t id, const uint8_t* data,
                    size_t len, int fin) {
  (void) data;
  (void) fin;
  uvq_quic_stream_consume(conn, id, len);
}

static void die(const char* what) {
  fprintf(stderr, "fuzz-quic-endpoint: %s\n", what);
  abort();
}

static void setup(void) {
  uvq_quic_callbacks_t cb;
  uvq_quic_config_t cfg;
  char cert[128];
  char key[128];
  char cmd[512];
  int namelen;

  snprintf(cert_dir, sizeof(cert_dir), "/tmp/uvq-fuzz-XXXXXX");
  if (mkdtemp(cert_dir) == NULL)
    die("mkdtemp");
  snprintf(cert, sizeof(cert), "%s/cert.pem", cert_dir);
  snprintf(key, sizeof(key), "%s/key.pem", cert_dir);
  snprintf(cmd, sizeof(cmd),
           "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
           "-nodes -keyout %s -out %s -days 30 -subj /CN=localhost "
           ">/dev/null 2>&1",
           key, cert);
  if (system(cmd) != 0)
    die("openssl failed");

  if (uv_loop_init(&loop) != 0)
    die("uv_loop_init");
  uvq_quic_config_default(&cfg);
  cfg.cert_file = cert;
  cfg.key_file = key;
  cfg.alpn = "uvq-test";
  cfg.max_datagram_frame_size = 1200;
  /* Short timeouts so that connections made by inputs do not pile up. */
  cfg.idle_timeout_ms = 500;
  cfg.handshake_timeout_ms = 500;
  memset(&cb, 0, sizeof(cb));
  cb.stream_data = on_data;
  if (uvq_quic_endpoint_new(&loop, &cfg, &cb, NULL, &server) != 0)
    die("uvq_quic_endpoint_new");
  uv_ip4_addr("127.0.0.1", 0, &server_addr);
  if (uvq_quic_endpoint_bind(server, (struct sockaddr*) &server_addr) != 0)
    die("uvq_quic_endpoint_bind");
  namelen = sizeof(server_addr);
  if (uvq_udp_getsockname(uvq_quic_endpoint_udp(server),
                          (struct sockaddr*) &server_addr, &namelen) != 0)
    die("getsockname");

  sender = socket(AF_INET, SOCK_DGRAM, 0);
  if (sender < 0)
    die("socket");
  /* The certificate files were read by endpoint_new; they can go. */
  snprintf(cmd, sizeof(cmd), "rm -rf %s", cert_dir);
  if (system(cmd) != 0)
    die("rm");
}

int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  int i;

  if (server == NULL)
    setup();
  /* Empty datagrams are legal UDP but carry nothing for QUIC; sizes over
   * 65507 cannot be sent. */
  if (size > 65507)
    return 0;
  if (sendto(sender, data, size, 0, (struct sockaddr*) &server_addr,
             sizeof(server_addr)) < 0)
    return 0;
  /* Read it, answer it, and run timers that are due. */
  for (i = 0; i < 4; i++)
    uv_run(&loop, UV_RUN_NOWAIT);
  return 0;
}
