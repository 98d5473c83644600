#!/usr/bin/env bash
# bench.sh BUILD_DIR: runs every benchmark of a release build; each prints a
# table of figure, value, target and ratio to the ceiling it measured.
set -euo pipefail
build=${1:-build-release}
for b in "$build"/bench/bench_*; do
  [[ -x "$b" ]] || continue
  echo "== $(basename "$b")"
  "$b"
  echo
done
