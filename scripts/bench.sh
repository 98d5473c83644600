#!/usr/bin/env bash
# bench.sh BUILD_DIR: runs every benchmark of a release build; each prints a
# table of figure, value, target and ratio to the ceiling it measured.
set -euo pipefail
build=${1:-build-release}
# wrk drives bench_api's HTTP figure; install it when missing (Debian).
if ! command -v wrk >/dev/null 2>&1; then
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get install -y -qq --no-install-recommends wrk >/dev/null 2>&1 ||
    echo "bench: wrk could not be installed; bench_api skips its wrk figure"
fi
for b in "$build"/bench/bench_*; do
  [[ -x "$b" ]] || continue
  echo "== $(basename "$b")"
  "$b"
  echo
done
