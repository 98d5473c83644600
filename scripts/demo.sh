#!/usr/bin/env bash
# demo.sh BUILD_DIR CONFIG: what `make demo` runs, offline, from the
# repository root. It starts from an empty data/demo, then:
#   1. checks the configuration and lists the plugins;
#   2. drops the sample users and devices files and syncs the filedrop work
#      in the foreground (connrun sync): records, checkpoints, states;
#   3. drops one more file and syncs again: only the new file is read;
#   4. shows the work's state history, executions and events;
#   5. starts the daemon, which schedules and runs every work (Ctrl-C stops
#      it; CONNRUN_DEMO_SECONDS=N stops it after N seconds) and shows the
#      works and events it produced.
set -euo pipefail
build=${1:-build}
config=${2:-configs/demo.yaml}
bin="$build/bin/connrun"
samples=configs/demo-data/filedrop
drop=data/demo/drop

step() { printf '\n== %s\n' "$*"; }

rm -rf data/demo
mkdir -p "$drop"

step "connrun config check $config"
"$bin" config check "$config"
step "connrun plugins list -c $config"
"$bin" plugins list -c "$config"

step "drop users.csv and devices.jsonl into $drop, then: connrun sync -c $config files-import"
cp "$samples/users.csv" "$samples/devices.jsonl" "$drop/"
"$bin" sync -c "$config" files-import
echo "-- records written (data/demo/out/files-import):"
wc -l data/demo/out/files-import/*.jsonl
head -n 2 data/demo/out/files-import/users.jsonl

step "drop orders-2024-07.csv, sync again: only the new file is read"
sleep 1 # a distinct modification time for the new file
cp "$samples/orders-2024-07.csv" "$drop/"
"$bin" sync -c "$config" files-import
wc -l data/demo/out/files-import/*.jsonl

step "connrun state history files-import   (the committed cursors)"
"$bin" state history files-import -c "$config"
step "connrun works -c $config files-import   (executions and transitions)"
"$bin" works -c "$config" files-import
step "connrun events -c $config --subject-type work"
"$bin" events -c "$config" --subject-type work

step "connrun serve -c $config   (Ctrl-C stops it)"
rc=0
if [[ -n "${CONNRUN_DEMO_SECONDS:-}" ]]; then
  timeout --signal=INT "$CONNRUN_DEMO_SECONDS" "$bin" serve -c "$config" || rc=$?
  # 124: timeout stopped it (SIGINT), which serve handles as a clean stop.
  [[ $rc -eq 124 ]] && rc=0
else
  "$bin" serve -c "$config" || rc=$?
  [[ $rc -eq 130 ]] && rc=0
fi
step "connrun works -c $config   (after serve)"
"$bin" works -c "$config"
step "connrun events -c $config --since 1h --verb synccomplete --verb failed"
"$bin" events -c "$config" --since 1h --verb synccomplete --verb failed
exit "$rc"
