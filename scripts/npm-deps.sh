#!/usr/bin/env bash
# npm-deps.sh [BUILD_DIR]: installs the pinned npm packages (package.json +
# package-lock.json) of tests/api (ajv, ajv-formats, @redocly/cli: the API
# contract test and the OpenAPI lint) and of tests/browser (playwright-core,
# axe-core: the dashboard's browser test and bench), with `npm ci` and its
# download cache in BUILD_DIR/npm-cache (default: build). Idempotent: when a
# folder's node_modules already matches its lock file it does nothing, so
# the tests never need the network once installed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build}
case "$build" in /*) ;; *) build="$root/$build" ;; esac

if ! command -v npm >/dev/null 2>&1; then
  echo "npm-deps: npm is missing: run scripts/deps.sh first" >&2
  exit 3
fi
for sub in tests/api tests/browser; do
  dir="$root/$sub"
  stamp="$dir/node_modules/.connrun-lock"
  # node_modules is current when it was installed from this very lock file.
  if [[ -f "$stamp" ]] && cmp -s "$stamp" "$dir/package-lock.json"; then
    continue
  fi
  echo "npm-deps: npm ci in $sub (cache: $build/npm-cache)"
  mkdir -p "$build/npm-cache"
  (cd "$dir" && npm ci --cache "$build/npm-cache" --no-audit --no-fund \
    --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
done
