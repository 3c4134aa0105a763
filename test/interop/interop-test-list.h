/* The HTTP/3 interop tests, one per line: CMake registers each TEST_ENTRY
 * as its own ctest test, and run-tests.c (built with
 * -DTEST_LIST_HEADER="interop-test-list.h") expands the same list. */
#ifndef UVQ_INTEROP_TEST_LIST_H
#define UVQ_INTEROP_TEST_LIST_H

#include "task.h"

#define UVQ_TEST_LIST(TEST_ENTRY) \
  TEST_ENTRY(interop_gtlsserver_fetch) \
  TEST_ENTRY(interop_gtlsclient_download) \
  TEST_ENTRY(interop_gtlsclient_chacha20) \
  TEST_ENTRY(interop_gtlsclient_path_escape) \
  TEST_ENTRY(interop_gtlsclient_special_files) \
  TEST_ENTRY(interop_curl_download) \
  TEST_ENTRY(interop_curl_post)

UVQ_TEST_LIST(TEST_DECLARE)

#endif /* UVQ_INTEROP_TEST_LIST_H */
