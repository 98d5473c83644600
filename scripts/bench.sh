#!/usr/bin/env bash
# bench.sh BUILD_DIR: runs every benchmark of a release build (bench/bench_*,
# then the dashboard's, tests/browser/bench.mjs); each prints a
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
# The web dashboard's first paint and asset size (tests/browser/bench.mjs:
# Debian's chromium through playwright-core, installed by make deps).
if command -v node >/dev/null 2>&1; then
  echo "== bench_dashboard"
  node "$(dirname "$0")/../tests/browser/bench.mjs" --bin "$build/bin/connrun" --plugins "$build/plugins"
  echo
else
  echo "bench: node is missing (scripts/deps.sh); bench_dashboard skipped"
fi
