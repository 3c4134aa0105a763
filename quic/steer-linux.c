/* Workers on Linux: the classic BPF program that steers each datagram of
 * an SO_REUSEPORT group to the worker its destination connection ID names.
 *
 * For a UDP reuseport group the kernel runs the program on the datagram
 * with the UDP header pulled, so offset 0 is the first octet of the QUIC
 * packet, and takes the program's answer as an index into the group's
 * sockets, which are numbered in bind order. An answer past the last
 * socket (a worker that has gone) makes the kernel use its own hash. */
#include "internal.h"

#include <errno.h>

#include <linux/filter.h>
#include <sys/socket.h>

#ifndef SO_ATTACH_REUSEPORT_CBPF
#define SO_ATTACH_REUSEPORT_CBPF 51 /* Linux 4.5 */
#endif

/* Packet offsets (RFC 9000, 17.2 and 17.3). A short header is one octet
 * and then the destination ID, whose length only the receiver knows (ours
 * are UVQ__SCID_LEN); a long header has the version, then the ID's length
 * and the ID. */
#define SHORT_DCID 1
#define LONG_DCID_LEN 5
#define LONG_DCID 6

int uvq__ep_attach_steering(uvq_quic_endpoint_t* ep) {
  struct sock_filter prog[] = {
      /* 0 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, 0),
      /* 1 */ BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, 0x80, 2, 0),
      /* Short header: our IDs only, so the worker octet is at a fixed
       * place. */
      /* 2 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
                       SHORT_DCID + UVQ__CID_LB_WORKER),
      /* 3 */ BPF_JUMP(BPF_JMP | BPF_JA, 7, 0, 0),
      /* Long header: by the worker octet when the ID is one of ours
       * (a client's Initial after our Retry, Handshake and 0-RTT after
       * our first Initial)... */
      /* 4 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, LONG_DCID_LEN),
      /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UVQ__SCID_LEN, 0, 4),
      /* 6 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS, LONG_DCID),
      /* 7 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, UVQ__CID_LB_FIRST, 0, 2),
      /* 8 */ BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
                       LONG_DCID + UVQ__CID_LB_WORKER),
      /* 9 */ BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0),
      /* ...and otherwise by the first four octets of the client's own ID,
       * which are random (RFC 9000, 7.2: at least 8 octets of it) and stay
       * the same in every packet the client sends before our reply, even
       * from another port. */
      /* 10 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, LONG_DCID),
      /* 11 */ BPF_STMT(BPF_ALU | BPF_MOD | BPF_K, 0),
      /* 12 */ BPF_STMT(BPF_RET | BPF_A, 0),
  };
  struct sock_fprog fprog;
  uv_os_fd_t fd;
  int err;

  /* Jump offsets count from the next instruction. */
  prog[11].k = ep->cfg.worker_count;
  err = uvq_udp_fileno(ep->udp, &fd);
  if (err)
    return err;
  fprog.len = sizeof(prog) / sizeof(prog[0]);
  fprog.filter = prog;
  if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &fprog,
                 sizeof(fprog)) != 0)
    return uv_translate_sys_error(errno);
  return 0;
}
