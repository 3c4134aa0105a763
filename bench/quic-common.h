/* Shared harness of the QUIC benchmark helpers (bench-quic-handshake,
 * bench-quic-idle); bench/run-quic.sh drives them through quic-matrix.py.
 *
 * Each program forks: the child runs a uvq server (HTTP/3, or a bare QUIC
 * endpoint with a one-stream request protocol) pinned to its own CPU, the
 * parent runs the clients. They talk over a socketpair, off the QUIC path:
 * the child announces its port, and answers "R" (report: CPU time, RSS,
 * heap in use, connections) and "Q" (quit) requests. */
#ifndef UVQ_BENCH_QUIC_COMMON_H
#define UVQ_BENCH_QUIC_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* What the server child runs. */
enum qb_server_kind {
  QB_SERVER_H3 = 0,   /* uvq_h3 server: every request gets a 200 with a
                       * memory body of response_bytes */
  QB_SERVER_QUIC = 1  /* uvq_quic endpoint, ALPN "uvq-bench": every client
                       * bidirectional stream that ends gets response_bytes
                       * back, then FIN */
};

#define QB_ALPN_QUIC "uvq-bench"

typedef struct qb_server_opts {
  int kind;                 /* enum qb_server_kind */
  const char* cert;
  const char* key;
  int cpu;                  /* -1: not pinned */
  size_t response_bytes;
  unsigned int max_connections;  /* 0: uvq's default */
  unsigned int max_handshakes;   /* 0: uvq's default */
  uint64_t idle_timeout_ms;      /* 0: uvq's default */
} qb_server_opts_t;

/* The server child's answer to "R". */
typedef struct qb_report {
  double cpu_user_s;
  double cpu_sys_s;
  long rss_kb;              /* VmRSS */
  long long heap_bytes;     /* mallinfo2().uordblks: malloc'ed, in use */
  unsigned long long accepted;  /* connections accepted so far */
  unsigned long long live;      /* connections open now */
  unsigned long long requests;  /* requests answered */
} qb_report_t;

typedef struct qb_server {
  pid_t pid;
  int ctl;                  /* parent's end of the socketpair */
  int port;
} qb_server_t;

/* Certificates: the given files, or a self-signed P-256 pair made with the
 * openssl command line in a temporary directory (removed by
 * qb_certs_cleanup). Returns 0 or -1 with a message on stderr. */
typedef struct qb_certs {
  char dir[128];
  char cert[192];
  char key[192];
} qb_certs_t;
int qb_certs_make(qb_certs_t* certs);
void qb_certs_cleanup(qb_certs_t* certs);

/* Pins the calling process to cpu (-1: no-op). Returns 0 or -1. */
int qb_pin(int cpu);

/* Forks the server child and waits for its port. 0 or -1. */
int qb_server_start(qb_server_t* s, const qb_server_opts_t* opts);
/* Asks the child for a report. 0 or -1. */
int qb_server_report(qb_server_t* s, qb_report_t* r);
/* Stops the child and reaps it; returns its exit status (0 is clean). */
int qb_server_stop(qb_server_t* s);

/* Monotonic clock in nanoseconds. */
uint64_t qb_now_ns(void);
/* This process's user+system CPU seconds. */
double qb_cpu_self(void);
/* Own VmRSS in kB, and malloc'ed bytes in use. */
long qb_rss_kb(void);
long long qb_heap_bytes(void);

/* The value of the option argv[*ai], which *ai then indexes. -h and
 * --help print usage and exit 0; an option without a value prints usage
 * and exits 2. */
const char* qb_option_value(int argc, char** argv, int* ai,
                            void (*usage)(void));

/* Parses "--name value" numeric options; exits with a message on error. */
uint64_t qb_parse_uint(const char* name, const char* value, uint64_t max);

/* --mode: 1 for "h3", 0 for "quic"; anything else exits 2 with a message. */
int qb_parse_mode(const char* value);

/* Sorts n values ascending, for qb_quantile(). */
void qb_sort_doubles(double* v, size_t n);
/* The q-quantile (0..1) of n sorted values, nearest rank; 0 when n is 0. */
double qb_quantile(const double* v, size_t n, double q);

#endif /* UVQ_BENCH_QUIC_COMMON_H */
