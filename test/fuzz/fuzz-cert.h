/* The certificate the in-process fuzz targets serve: a self-signed P-256
 * certificate for localhost, 127.0.0.1 and ::1 with its key, built in, so
 * that no target needs the openssl command or a clock that agrees. */
#ifndef UVQ_TEST_FUZZ_CERT_H
#define UVQ_TEST_FUZZ_CERT_H

#include <stddef.h>

/* Writes cert.pem and key.pem into dir and their paths into cert_file and
 * key_file: 0, or -1 (a path too long, a write failed). */
int fuzz_cert_write(const char* dir, char* cert_file, size_t cert_len,
                    char* key_file, size_t key_len);

#endif
