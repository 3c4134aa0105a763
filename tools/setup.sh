#!/usr/bin/env bash
# Installs what uvq needs to build and test on Debian 12 (bookworm), as
# root, and nothing that is already there. Safe to run again: with
# everything present it only checks, in well under a second.
set -euo pipefail

# Debian packages: build tools, libuv, the sanitizer runtimes (clang), and
# the network tools the namespace tests drive.
packages=(
  cmake make gcc clang pkg-config libuv1-dev
  iproute2 ethtool nftables conntrack iputils-ping openssl
  python3
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing+=("$p")
  fi
done

# Node.js with its headers, for the N-API addon (node/): the machine's own
# if it has one, else Debian's (nodejs, and libnode-dev for the headers).
if ! command -v node >/dev/null 2>&1; then
  missing+=(nodejs libnode-dev)
elif [ ! -f /usr/include/node/node_api.h ] &&
     ! dpkg-query -W -f='${Status}' libnode-dev 2>/dev/null | grep -q "ok installed"; then
  missing+=(libnode-dev)
fi

if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages: ${missing[*]} (run as root to install them)" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
