#!/bin/sh
# Runs an ABI program (test/abi/program-*.c) with a fresh
# certificate for "localhost".
set -eu
program=$1
dir=$(mktemp -d /tmp/uvq-abi.XXXXXX)
trap 'rm -rf "$dir"' EXIT
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost >/dev/null 2>&1
out=$("$program" "$dir/cert.pem" "$dir/key.pem")
[ "$out" = ok ]
