/* Every test, one per line. CMake reads the TEST_ENTRY lines to register
 * each as its own ctest test, and run-tests.c expands the same list into
 * declarations and its table: add a test here and nowhere else. */
#ifndef UVQ_TEST_LIST_H
#define UVQ_TEST_LIST_H

#include "task.h"

#define UVQ_TEST_LIST(TEST_ENTRY) \
  TEST_ENTRY(udp_batch_recvmmsg) \
  TEST_ENTRY(udp_batch_recvmmsg_small_buffer) \
  TEST_ENTRY(udp_batch_sendmmsg) \
  TEST_ENTRY(udp_cb_stop_in_batch_chunk) \
  TEST_ENTRY(udp_cb_stop_in_gro_chunk) \
  TEST_ENTRY(udp_cb_close_in_batch_chunk) \
  TEST_ENTRY(udp_cb_close_in_gro_chunk) \
  TEST_ENTRY(udp_ecn_ipv4_handle) \
  TEST_ENTRY(udp_ecn_ipv4_message) \
  TEST_ENTRY(udp_ecn_ipv6_handle) \
  TEST_ENTRY(udp_ecn_ipv6_message) \
  TEST_ENTRY(udp_ecn_mapped_send_handle) \
  TEST_ENTRY(udp_ecn_mapped_send_message) \
  TEST_ENTRY(udp_ecn_mapped_recv_handle) \
  TEST_ENTRY(udp_ecn_mapped_recv_message) \
  TEST_ENTRY(udp_ecn_keeps_dscp_ipv4) \
  TEST_ENTRY(udp_ecn_keeps_dscp_ipv6) \
  TEST_ENTRY(udp_error_null_args) \
  TEST_ENTRY(udp_error_no_socket) \
  TEST_ENTRY(udp_error_init_ex_creates_socket) \
  TEST_ENTRY(udp_error_flags) \
  TEST_ENTRY(udp_error_ipv6only) \
  TEST_ENTRY(udp_error_ecn_range) \
  TEST_ENTRY(udp_error_emsgsize_ipv4) \
  TEST_ENTRY(udp_error_emsgsize_ipv6) \
  TEST_ENTRY(udp_error_send_args) \
  TEST_ENTRY(udp_error_connect) \
  TEST_ENTRY(udp_error_recv_start_stop) \
  TEST_ENTRY(udp_error_misc_ranges) \
  TEST_ENTRY(udp_features_version) \
  TEST_ENTRY(udp_features_default_ipv4) \
  TEST_ENTRY(udp_features_default_ipv6) \
  TEST_ENTRY(udp_features_all_requested) \
  TEST_ENTRY(udp_features_configure_additive) \
  TEST_ENTRY(udp_features_reuseport_effect) \
  TEST_ENTRY(udp_gso_refused_einval_no_check) \
  TEST_ENTRY(udp_gso_refused_eio_udplite) \
  TEST_ENTRY(udp_gso_refused_eio_veth) \
  TEST_ENTRY(udp_gso_plain_receiver_ipv4) \
  TEST_ENTRY(udp_gso_plain_receiver_ipv6) \
  TEST_ENTRY(udp_gso_gro_raw) \
  TEST_ENTRY(udp_gso_gro_split) \
  TEST_ENTRY(udp_gso_gather) \
  TEST_ENTRY(udp_gso_limits_and_mix) \
  TEST_ENTRY(udp_pktinfo_ipv4) \
  TEST_ENTRY(udp_pktinfo_mapped) \
  TEST_ENTRY(udp_pktinfo_ipv6) \
  TEST_ENTRY(udp_pmtud_veth_ipv4) \
  TEST_ENTRY(udp_pmtud_veth_ipv6) \
  TEST_ENTRY(udp_pmtud_router_ipv4) \
  TEST_ENTRY(udp_pmtud_router_ipv6) \
  TEST_ENTRY(udp_recv_metadata_all) \
  TEST_ENTRY(udp_recv_truncated) \
  TEST_ENTRY(udp_recv_enobufs) \
  TEST_ENTRY(udp_recv_empty_datagram) \
  TEST_ENTRY(udp_recv_kernel_drops) \
  TEST_ENTRY(udp_send_queue_idle) \
  TEST_ENTRY(udp_send_queue_full_sndbuf) \
  TEST_ENTRY(udp_send_queue_cancel_on_close) \
  TEST_ENTRY(udp_send_queue_writable_signal) \
  TEST_ENTRY(udp_txtime_delivery) \
  TEST_ENTRY(udp_txtime_fq_spacing) \
  /* end of list */

UVQ_TEST_LIST(TEST_DECLARE)

#endif /* UVQ_TEST_LIST_H */
