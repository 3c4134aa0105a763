/* Entry points kept for programs built against older uvq headers, so that
 * they run against this library without being rebuilt (the soname stays
 * libuvq.so.1).
 *
 * uvq 0.1.0's headers declared uvq_udp_try_send_batch() and
 * uvq_udp_send_batch() as functions without a flags argument, and its
 * programs call those symbols; today's headers make the same names macros
 * over the _versioned functions. The parentheses around the names below
 * keep the macros from expanding. */
#include "internal.h"

UVQ_EXTERN int(uvq_udp_try_send_batch)(uvq_udp_t* handle,
                                       const uvq_udp_mmsg_t* msgs,
                                       unsigned int count);
UVQ_EXTERN int(uvq_udp_send_batch)(uvq_udp_send_t* req,
                                   uvq_udp_t* handle,
                                   const uvq_udp_mmsg_t* msgs,
                                   unsigned int count,
                                   uvq_udp_send_cb cb);

/* 0.1.0 had uvq_udp_mmsg_t version 1 and no flags. */
int(uvq_udp_try_send_batch)(uvq_udp_t* handle,
                            const uvq_udp_mmsg_t* msgs,
                            unsigned int count) {
  return uvq_udp_try_send_batch_versioned(handle, 1, msgs, count, 0);
}

int(uvq_udp_send_batch)(uvq_udp_send_t* req,
                        uvq_udp_t* handle,
                        const uvq_udp_mmsg_t* msgs,
                        unsigned int count,
                        uvq_udp_send_cb cb) {
  return uvq_udp_send_batch_versioned(req, handle, 1, msgs, count, 0, cb);
}
