#!/usr/bin/env bash
# Installs the Debian packages connrun builds and tests with. Idempotent: when
# everything is present it only runs dpkg-query once and exits.
set -euo pipefail

PKGS=(build-essential cmake pkg-config
      libuv1-dev libcurl4-openssl-dev libyaml-dev libjansson-dev libsqlite3-dev
      libjsonnet-dev libmicrohttpd-dev libcmocka-dev
      json-schema-test-suite tzdata curl python3 sqlite3
      libssl-dev openssl python3-aiosmtpd
      libpq-dev postgresql  # table export into PostgreSQL; tests start a private server
      prometheus    # promtool checks /metrics in test_api
      chromium)     # the dashboard's browser test (tests/browser, playwright-core)
# The API contract test and the OpenAPI lint run on Node (tests/api, whose
# npm packages scripts/npm-deps.sh installs). A machine with a node of its
# own (e.g. a nodesource build, which ships npm inside) keeps it; otherwise
# Debian's nodejs and npm.
if ! command -v node >/dev/null 2>&1; then
  PKGS+=(nodejs npm)
fi

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
