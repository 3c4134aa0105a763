/* Workers where no reuseport steering program exists (everything but
 * Linux): the platform's own spreading, if any, picks the worker, and the
 * endpoint reports UVQ_QUIC_STEERING_KERNEL_HASH with UV_ENOTSUP. */
#include "internal.h"

int uvq__ep_attach_steering(uvq_quic_endpoint_t* ep) {
  (void) ep;
  return UV_ENOTSUP;
}
