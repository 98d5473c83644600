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
  rc=0
  timeout --signal=INT "$CONNRUN_DEMO_SECONDS" "$bin" serve -c "$config" || rc=$?
  # 124: timeout stopped it (SIGINT), which serve handles as a clean stop.
  [[ $rc -eq 0 || $rc -eq 124 ]] && exit 0
  exit "$rc"
fi
exec "$bin" serve -c "$config"
