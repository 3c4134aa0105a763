/* The fuzz targets' certificate (fuzz-cert.h). */
#include "fuzz-cert.h"

#include <stdio.h>

/* Made for the fuzz targets (its key protects nothing else), valid until
 * 2126. */
static const char cert_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBrTCCAVSgAwIBAgIUL3rToIK0AgS+tkyLQYE6UWFj994wCgYIKoZIzj0EAwIw\n"
    "FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwNDE1NDUzMVoYDzIxMjYxMTEw\n"
    "MTU0NTMxWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO\n"
    "PQMBBwNCAAS/gs3ObDxgMMbJFZf/sGLrzLBgtebVEkCOVOOU07bioplZ8lGG52Ra\n"
    "6boDsk6CsKtOw5AlOhdKgne//4TYfm8Do4GBMH8wHQYDVR0OBBYEFBn5UpOuEXp/\n"
    "kQHWZkbZfNfNUGPwMB8GA1UdIwQYMBaAFBn5UpOuEXp/kQHWZkbZfNfNUGPwMA8G\n"
    "A1UdEwEB/wQFMAMBAf8wLAYDVR0RBCUwI4IJbG9jYWxob3N0hwR/AAABhxAAAAAA\n"
    "AAAAAAAAAAAAAAABMAoGCCqGSM49BAMCA0cAMEQCIBn3j1ptGoDuTggTP8NPd2EP\n"
    "iZ0QLgrlTuBPp8b0tRWlAiBtf1IHP4UV5FsyE/jgJ43P2gTs0FTNwGHeqpD1kw3j\n"
    "ZQ==\n"
    "-----END CERTIFICATE-----\n";
static const char key_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgs6RF9olL9ZeBSYLK\n"
    "cDbz+pQjPfpcLkrO8Zd27o4GorGhRANCAAS/gs3ObDxgMMbJFZf/sGLrzLBgtebV\n"
    "EkCOVOOU07bioplZ8lGG52Ra6boDsk6CsKtOw5AlOhdKgne//4TYfm8D\n"
    "-----END PRIVATE KEY-----\n";

static int write_pem(const char* path, const char* text) {
  FILE* f = fopen(path, "w");

  if (f == NULL)
    return -1;
  if (fputs(text, f) < 0) {
    fclose(f);
    return -1;
  }
  return fclose(f) == 0 ? 0 : -1;
}

int fuzz_cert_write(const char* dir, char* cert_file, size_t cert_len,
                    char* key_file, size_t key_len) {
  if ((size_t) snprintf(cert_file, cert_len, "%s/cert.pem", dir) >= cert_len ||
      (size_t) snprintf(key_file, key_len, "%s/key.pem", dir) >= key_len)
    return -1;
  return write_pem(cert_file, cert_pem) == 0 &&
                 write_pem(key_file, key_pem) == 0
             ? 0
             : -1;
}
