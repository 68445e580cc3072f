#!/usr/bin/env bash
# Installs the Debian packages kiln builds, tests and runs with. Idempotent:
# apt runs only when something is missing.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  libjansson-dev libyaml-dev liblua5.4-dev libssl-dev libcurl4-openssl-dev libmicrohttpd-dev
  libcmocka-dev
  clang libclang-rt-14-dev clang-format
  lua5.1 python3 python3-kubernetes python3-yaml
  nghttp2-server openssl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
