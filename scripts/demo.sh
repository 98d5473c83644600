#!/usr/bin/env bash
# demo.sh BUILD_DIR CONFIG: what `make demo` runs, offline, from the
# repository root. It starts from an empty data/demo, then:
#   1. checks the configuration and lists the plugins;
#   2. drops the sample users and devices files and syncs the filedrop work
#      in the foreground (connrun sync): records, checkpoints, states;
#   3. drops one more file and syncs again: only the new file is read;
#   4. shows the work's state history, executions and events;
#   5. starts the daemon, which schedules and runs every work and serves the
#      REST API: shows the API answering (readyz, a work, the CLI with
#      --server, a subscription posted in the documents' format, /metrics)
#      and a remote runner (connrun runner) registering, checking in and
#      running the edge-items work, and a plugin dropped into a watched
#      directory, then upgraded, without a restart; the audit trail exported
#      into a SQLite table and in signed batches to a loopback receiver; the
#      cluster duties this instance holds;
#      Ctrl-C stops it; CONNRUN_DEMO_SECONDS=N stops it after N seconds.
#      Then shows the works and events it produced, and copies the store
#      into a private PostgreSQL server with `connrun store migrate` (what a
#      company does to run several instances on PostgreSQL).
set -euo pipefail
build=${1:-build}
config=${2:-configs/demo.yaml}
bin="$build/bin/connrun"
samples=configs/demo-data/filedrop
drop=data/demo/drop

step() { printf '\n== %s\n' "$*"; }

rm -rf data/demo
mkdir -p "$drop" data/demo/plugins.d
chmod 755 data/demo data/demo/plugins.d

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

# A loopback webhook receiver for the batched subscription audit-bulk.
python3 scripts/demo_receiver.py 8479 data/demo/receiver.log &
rxpid=$!
for _ in $(seq 1 50); do # at most 5 s for it to listen
  curl -s -o /dev/null http://127.0.0.1:8479/ && break
  sleep 0.1
done
step "connrun serve -c $config   (Ctrl-C stops it)"
"$bin" serve -c "$config" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null || true' INT TERM
# Whatever happens below, the daemon does not outlive the demo.
rpid=
trap 'kill -INT "$pid" ${rpid:+"$rpid"} 2>/dev/null || true; kill "$rxpid" 2>/dev/null || true' EXIT
api=http://127.0.0.1:8470
token=$(cat configs/demo-secrets/api_token)
for _ in $(seq 1 100); do # at most 10 s for the API to come up
  curl -sf "$api/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if curl -sf "$api/readyz" >/dev/null 2>&1; then
  step "the REST API answers at $api (token: configs/demo-secrets/api_token)"
  echo "The dashboard: open $api/ in a browser and sign in with that token."
  echo "\$ curl $api/readyz"
  curl -s "$api/readyz"; echo
  echo "\$ curl -H 'Authorization: Bearer ...' $api/v1/works/files-import"
  curl -s -H "Authorization: Bearer $token" "$api/v1/works/files-import"; echo
  step "CONNRUN_SERVER=$api CONNRUN_TOKEN=... connrun auth list   (the CLI against the server)"
  CONNRUN_SERVER=$api CONNRUN_TOKEN=$token "$bin" auth list
  step "connrun auth show example-good --server $api"
  CONNRUN_TOKEN=$token "$bin" auth show example-good --server "$api"
  step "POST /v1/subscriptions with the audit-log document's example body"
  curl -s -X POST -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
    "$api/v1/subscriptions" -d '{"config": {"system_event_multiple_types": ["updated", "created", "failed"], "webhook_url": "http://127.0.0.1:9/demo-receiver", "headers": {"custom-header": "header-value"}}, "workflow": "webhook_system_events"}'
  echo
  step "curl $api/metrics   (Prometheus; first lines)"
  # (head closes the pipe early: SIGPIPE upstream is expected, not a failure)
  { curl -s -H "Authorization: Bearer $token" "$api/metrics" | grep -v '^#' | head -n 8; } || true
  echo
  step "connrun runner --server $api   (a remote runner in the background; the registration token gives it the label edge)"
  CONNRUN_REGISTRATION_TOKEN=$(cat configs/demo-secrets/runner_registration_token) \
    "$bin" runner --server "$api" --name demo-edge --plugin-dir "$build/plugins" \
    --data-dir data/demo/runner --slots 2 > >(sed 's/^/  [runner] /') 2>&1 &
  rpid=$!
  for _ in $(seq 1 50); do # at most 5 s for it to run the edge-items work
    curl -s -H "Authorization: Bearer $token" "$api/v1/works/edge-items/executions" |
      grep -q '"state":"Completed"' && break
    sleep 0.1
  done
  echo "\$ curl -H 'Authorization: Bearer ...' $api/v1/runners"
  curl -s -H "Authorization: Bearer $token" "$api/v1/runners"; echo
  echo "\$ curl -H 'Authorization: Bearer ...' $api/v1/works/edge-items/executions"
  curl -s -H "Authorization: Bearer $token" "$api/v1/works/edge-items/executions"; echo
  echo "-- records stay on the runner's host (its --data-dir):"
  wc -l data/demo/runner/out/edge-items/*.jsonl 2>/dev/null || echo "  (not yet)"
  step "table export: every event, continuously, into data/demo/audit.db (subscription audit-table)"
  sleep 0.3
  echo "\$ sqlite3 data/demo/audit.db 'SELECT subject_type, verb, count(*) FROM system_events GROUP BY 1, 2'"
  sqlite3 data/demo/audit.db "SELECT subject_type, verb, count(*) FROM system_events GROUP BY 1, 2" || true
  echo "\$ curl -H 'Authorization: Bearer ...' $api/v1/subscriptions/audit-table"
  curl -s -H "Authorization: Bearer $token" "$api/v1/subscriptions/audit-table"; echo
  echo "\$ connrun events export -c $config --to sqlite:data/demo/problems.db --verb unhealthy --verb failed   (one-time)"
  "$bin" events export -c "$config" --to sqlite:data/demo/problems.db --verb unhealthy --verb failed || true
  dropin="$build/test-plugins/dropin"
  if [[ -f "$dropin/dropin_v1.so" ]]; then
    step "drop-in plugins: a new plugin renamed into data/demo/plugins.d while serve runs, then v2 over it"
    echo "\$ cp $dropin/dropin_v1.so data/demo/plugins.d/.dropin.part && mv data/demo/plugins.d/.dropin.part data/demo/plugins.d/dropin.so"
    cp "$dropin/dropin_v1.so" data/demo/plugins.d/.dropin.part
    mv data/demo/plugins.d/.dropin.part data/demo/plugins.d/dropin.so
    sleep 0.5
    cp "$dropin/dropin_v2.so" data/demo/plugins.d/.dropin.part
    mv data/demo/plugins.d/.dropin.part data/demo/plugins.d/dropin.so
    sleep 0.5
    echo "\$ connrun plugins list --server $api"
    CONNRUN_TOKEN=$token "$bin" plugins list --server "$api" || true
    echo "\$ connrun events --server $api --subject-type provider"
    CONNRUN_TOKEN=$token "$bin" events --server "$api" --subject-type provider || true
  fi
  step "batched webhook delivery: the audit trail in signed batches (subscription audit-bulk)"
  sleep 0.5 # a partial batch waits max_wait (200ms) for more events
  echo "-- what the loopback receiver got (data/demo/receiver.log):"
  cat data/demo/receiver.log 2>/dev/null || echo "  (not yet)"
  step "several instances: the duties this serve holds (connrun cluster --server)"
  echo "\$ connrun cluster --server $api"
  CONNRUN_TOKEN=$token "$bin" cluster --server "$api" || true
  echo
  echo "The dashboard is at $api/ (sign in with configs/demo-secrets/api_token)."
  echo "The API stays up while the daemon runs: try"
  echo "  CONNRUN_SERVER=$api CONNRUN_TOKEN=\$(cat configs/demo-secrets/api_token) build/bin/connrun works"
else
  echo "the API did not come up on $api (is the port in use?)" >&2
fi
rc=0
if [[ -n "${CONNRUN_DEMO_SECONDS:-}" ]]; then
  ( sleep "$CONNRUN_DEMO_SECONDS"; kill -INT "$pid" 2>/dev/null || true ) &
fi
wait "$pid" || rc=$?
if [[ -n "$rpid" ]]; then # the runner stops with the daemon
  kill -TERM "$rpid" 2>/dev/null || true
  wait "$rpid" 2>/dev/null || true
fi
# 130: stopped by Ctrl-C (SIGINT), which serve handles as a clean stop.
[[ $rc -eq 130 ]] && rc=0
step "connrun works -c $config   (after serve)"
"$bin" works -c "$config"
step "connrun events -c $config --since 1h --verb synccomplete --verb failed"
"$bin" events -c "$config" --since 1h --verb synccomplete --verb failed

# The same store moved to PostgreSQL: a throw-away server on loopback
# (initdb in /tmp, as nobody when root, since PostgreSQL refuses root).
pg_demo() {
  local pgbin d port url as=()
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [[ -z "$pgbin" || ! -x "$pgbin/initdb" ]]; then
    echo "(PostgreSQL is not installed: scripts/deps.sh installs it)"
    return 0
  fi
  d=$(mktemp -d /tmp/connrun-demo-pg.XXXXXX)
  chmod 755 "$d"
  if [[ $(id -u) -eq 0 ]]; then
    chown nobody "$d"
    as=(runuser -u nobody --)
  fi
  port=$((40000 + RANDOM % 20000))
  url="postgresql://connrun@127.0.0.1:$port/connrun"
  if "${as[@]}" "$pgbin/initdb" -D "$d/data" -U connrun -A trust >"$d/init.log" 2>&1 &&
    "${as[@]}" "$pgbin/pg_ctl" -D "$d/data" -l "$d/log" -w \
      -o "-p $port -k $d -c listen_addresses=127.0.0.1" start >/dev/null &&
    "${as[@]}" "$pgbin/createdb" -h 127.0.0.1 -p "$port" -U connrun connrun; then
    step "connrun store migrate --from data/demo/connrun.db --to $url"
    "$bin" store migrate --from data/demo/connrun.db --to "$url" || true
    step "again: a target that holds data is refused and left as it is"
    "$bin" store migrate --from data/demo/connrun.db --to "$url" || true
    echo "(set host.store to that URL and start as many connrun serve as needed)"
  else
    echo "(could not start a private PostgreSQL server: see $d)"
  fi
  "${as[@]}" "$pgbin/pg_ctl" -D "$d/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$d"
}
pg_demo
exit "$rc"
