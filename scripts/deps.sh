#!/usr/bin/env bash
# Installs the Debian packages connrun builds and tests with. Idempotent: when
# everything is present it only runs dpkg-query once and exits.
set -euo pipefail

PKGS=(build-essential cmake pkg-config
      libuv1-dev libcurl4-openssl-dev libyaml-dev libjansson-dev libsqlite3-dev
      libjsonnet-dev libmicrohttpd-dev libcmocka-dev
      json-schema-test-suite tzdata curl python3 sqlite3
      libssl-dev openssl python3-aiosmtpd)

missing=()
for p in "${PKGS[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "deps: installing ${missing[*]}"
SUDO=""
[[ $(id -u) -eq 0 ]] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
