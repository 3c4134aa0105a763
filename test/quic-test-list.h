/* Every QUIC test, one per line (see test-list.h for how the list is
 * used). The QUIC suite is its own binary, uvq-quic-tests, built only
 * with the QUIC layer. */
#ifndef UVQ_TEST_QUIC_LIST_H
#define UVQ_TEST_QUIC_LIST_H

#include "task.h"

#define UVQ_TEST_LIST(TEST_ENTRY) \
  TEST_ENTRY(quic_unit_heap_random) \
  TEST_ENTRY(quic_core_handshake_times) \
  TEST_ENTRY(quic_core_deterministic) \
  TEST_ENTRY(quic_core_sink_partial) \
  TEST_ENTRY(quic_core_idle_timeout) \
  TEST_ENTRY(quic_core_handshake_timeout) \
  TEST_ENTRY(quic_core_retry_token) \
  TEST_ENTRY(quic_core_version_negotiation) \
  TEST_ENTRY(quic_core_stateless_reset) \
  TEST_ENTRY(quic_core_cid_routing) \
  TEST_ENTRY(quic_core_api_errors) \
  TEST_ENTRY(quic_core_close) \
  TEST_ENTRY(quic_core_initials_wait) \
  TEST_ENTRY(quic_core_h3) \
  TEST_ENTRY(quic_core_on_app_socket) \
  TEST_ENTRY(quic_endpoint_open_app_socket) \
  TEST_ENTRY(quic_unit_cidmap_random) \
  TEST_ENTRY(quic_unit_cidmap_collisions) \
  TEST_ENTRY(quic_unit_siphash_vectors) \
  TEST_ENTRY(quic_unit_crypto_aes_gcm_rfc9001) \
  TEST_ENTRY(quic_unit_crypto_chacha_rfc9001) \
  TEST_ENTRY(quic_handshake_alpn_ipv4) \
  TEST_ENTRY(quic_handshake_server_frees_tls) \
  TEST_ENTRY(quic_handshake_client_frees_tls) \
  TEST_ENTRY(quic_handshake_client_frees_tls_at_once) \
  TEST_ENTRY(quic_handshake_ciphersuites) \
  TEST_ENTRY(quic_handshake_groups) \
  TEST_ENTRY(quic_handshake_fork_random) \
  TEST_ENTRY(quic_handshake_alpn_ipv6) \
  TEST_ENTRY(quic_handshake_alpn_mismatch) \
  TEST_ENTRY(quic_handshake_wrong_ca) \
  TEST_ENTRY(quic_handshake_server_endpoint_connects) \
  TEST_ENTRY(quic_handshake_insecure_skip_verify) \
  TEST_ENTRY(quic_handshake_server_name_mismatch) \
  TEST_ENTRY(quic_handshake_v2) \
  TEST_ENTRY(quic_handshake_v1_default) \
  TEST_ENTRY(quic_handshake_initial_v2) \
  TEST_ENTRY(quic_preferred_address) \
  TEST_ENTRY(quic_preferred_address_invalid) \
  TEST_ENTRY(quic_handshake_retry) \
  TEST_ENTRY(quic_handshake_conn_limit) \
  TEST_ENTRY(quic_handshake_accept_refused) \
  TEST_ENTRY(quic_transfer_upload_16m) \
  TEST_ENTRY(quic_transfer_download_16m) \
  TEST_ENTRY(quic_transfer_many_streams) \
  TEST_ENTRY(quic_transfer_stream_limit) \
  TEST_ENTRY(quic_transfer_flow_control) \
  TEST_ENTRY(quic_transfer_key_update) \
  TEST_ENTRY(quic_stream_shutdown_read_keeps_writing) \
  TEST_ENTRY(quic_datagram_exchange) \
  TEST_ENTRY(quic_datagram_not_allowed) \
  TEST_ENTRY(quic_datagram_too_large) \
  TEST_ENTRY(quic_close_application) \
  TEST_ENTRY(quic_close_twice) \
  TEST_ENTRY(quic_close_twice_outside_callback) \
  TEST_ENTRY(quic_close_endpoint_with_conns) \
  TEST_ENTRY(quic_close_client_endpoint) \
  TEST_ENTRY(quic_idle_timeout) \
  TEST_ENTRY(quic_idle_keepalive) \
  TEST_ENTRY(quic_version_negotiation) \
  TEST_ENTRY(quic_version_negotiation_short) \
  TEST_ENTRY(quic_version_negotiation_long_cid) \
  TEST_ENTRY(quic_stateless_reset_reply) \
  TEST_ENTRY(quic_stateless_reset_restart) \
  TEST_ENTRY(quic_ecn_ipv4) \
  TEST_ENTRY(quic_ecn_ipv6) \
  TEST_ENTRY(quic_ecn_off) \
  TEST_ENTRY(quic_netns_loss_reorder) \
  TEST_ENTRY(quic_netns_loss_initial) \
  TEST_ENTRY(quic_netns_ce_all) \
  TEST_ENTRY(quic_netns_corrupt_chacha20) \
  TEST_ENTRY(quic_netns_corrupt_aes256gcm) \
  TEST_ENTRY(quic_nat_rebinding) \
  TEST_ENTRY(quic_resume_0rtt) \
  TEST_ENTRY(quic_resume_server_refuses_0rtt) \
  TEST_ENTRY(quic_resume_bad_ticket) \
  TEST_ENTRY(quic_robust_random_datagrams) \
  TEST_ENTRY(quic_robust_version0_long_cid) \
  TEST_ENTRY(quic_api_errors) \
  TEST_ENTRY(quic_api_no_random) \
  TEST_ENTRY(quic_api_key_update_early) \
  TEST_ENTRY(quic_migrate) \
  TEST_ENTRY(quic_h3_conn_errors_server) \
  TEST_ENTRY(quic_h3_conn_errors_client) \
  TEST_ENTRY(quic_h3_malformed_requests) \
  TEST_ENTRY(quic_h3_on_app_sockets) \
  TEST_ENTRY(quic_app_request_response) \
  TEST_ENTRY(quic_app_failure_codes) \
  TEST_ENTRY(quic_app_config_copy) \
  TEST_ENTRY(quic_load_initial_flood) \
  TEST_ENTRY(quic_load_burst_retry) \
  TEST_ENTRY(quic_load_refused_resend) \
  TEST_ENTRY(quic_workers_cid_layout) \
  TEST_ENTRY(quic_workers_spread) \
  TEST_ENTRY(quic_workers_migration) \
  TEST_ENTRY(quic_workers_shared_secrets) \
  TEST_ENTRY(quic_workers_dead_worker_reset) \
  TEST_ENTRY(quic_workers_resume) \
  TEST_ENTRY(quic_workers_nat_rebinding) \
  /* end of list */

UVQ_TEST_LIST(TEST_DECLARE)

#endif /* UVQ_TEST_QUIC_LIST_H */
