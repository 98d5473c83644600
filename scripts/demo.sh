#!/usr/bin/env bash
# demo.sh BUILD_DIR CONFIG: what `make demo` runs. Validates the demo
# configuration, lists the plugins, then starts the daemon in the foreground
# (Ctrl-C to stop). CONNRUN_DEMO_SECONDS=N stops it after N seconds.
set -euo pipefail
build=${1:-build}
config=${2:-configs/demo.yaml}
bin="$build/bin/connrun"

echo "== connrun config check $config"
"$bin" config check "$config"
echo
echo "== connrun plugins list -c $config"
"$bin" plugins list -c "$config"
echo
echo "== connrun serve -c $config   (Ctrl-C stops it)"
if [[ -n "${CONNRUN_DEMO_SECONDS:-}" ]]; then
  exec timeout --signal=INT --preserve-status "$CONNRUN_DEMO_SECONDS" "$bin" serve -c "$config"
fi
exec "$bin" serve -c "$config"
