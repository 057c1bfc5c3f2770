#!/usr/bin/env bash
# Does a burst of kernel conntrack entries reach the Standby's replica in full?
#
#   sudo bench/conntrack-burst-check.sh [--entries N] [--runs R] [--receive-buffer BYTES]
#
# Two bare namespaces joined by a sync link, a clustersync node in each (dataPlane.plugin: conntrack, encrypted);
# A Active, B Standby; then N established TCP entries (default 200,000) are loaded into A's kernel in one go
# (conntrack -R, ~1-2 s: faster than the plugin reads events on a loaded machine, so the event socket may overrun)
# and the script waits up to 60 s for B's replica to hold them. Prints per run the replica size and A's plugin
# source counters (enobufs, resyncs, resubscribes, dumps, dump_entries, events_new, tracked); exit 1 if any run fell
# short. --receive-buffer sets the plugin's receiveBufferBytes (default: the plugin's 16 MiB); a small one (1048576)
# makes every run overrun, so every run exercises the resync.
# Not a CI test. Needs root, iproute2, nftables, conntrack, curl, jq and a Release build of src/ClusterSync.Cli.
set -euo pipefail

ENTRIES=200000 RUNS=3 RCVBUF=
while [[ $# -gt 0 ]]; do
  case "$1" in
    --entries) ENTRIES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    --receive-buffer) RCVBUF=$2; shift 2 ;;
    *) echo "conntrack-burst-check.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CLI=$ROOT/src/ClusterSync.Cli/bin/Release/net10.0/clustersync.dll
[[ $EUID -eq 0 ]] || { echo "conntrack-burst-check.sh: needs root" >&2; exit 2; }
[[ -f $CLI ]] || { echo "conntrack-burst-check.sh: build src/ClusterSync.Cli -c Release first" >&2; exit 2; }

WORK=$(mktemp -d /tmp/csburst.XXXXXX)
P="cscmp-$$-$(printf %04x $((RANDOM)))-burst"
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for f in 1 2; do ip netns del "$P-fw$f" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SETTINGS=
[[ -z $RCVBUF ]] || SETTINGS=", \"settings\": { \"receiveBufferBytes\": $RCVBUF }"
dotnet "$CLI" keygen --out "$WORK/cluster.key" >/dev/null
for f in 1 2; do
  cat > "$WORK/fw$f.json" <<EOF
{
  "cluster": { "keyFile": "cluster.key", "mode": "high-availability", "members": [
    { "id": 1, "address": "10.201.3.1:8116", "priority": 100, "fullSyncPort": 256 },
    { "id": 2, "address": "10.201.3.2:8116", "priority": 90, "fullSyncPort": 256 } ] },
  "node": { "memberId": $f, "control": { "port": 9116 } },
  "policy": { "classes": [ { "name": "default", "policy": "full" } ], "rules": [] },
  "dataPlane": { "source": "plugin", "plugin": "conntrack"$SETTINGS }
}
EOF
done
awk -v n="$ENTRIES" 'BEGIN { for (i = 0; i < n; i++) printf "-I -p tcp -s 10.%d.%d.%d -d 10.99.0.1 --sport %d --dport 443 --state ESTABLISHED -t 3600 -u ASSURED\n", 50 + int(i / 62500), int(i / 250) % 250, i % 250 + 1, 1024 + i % 60000 }' > "$WORK/entries.txt"

status() { ip netns exec "$P-fw$1" curl -s -m 2 http://127.0.0.1:9116/status 2>/dev/null; }
wait_state() {   # member state timeout_s
  local deadline=$(( $(date +%s) + $3 ))
  until [[ $(status "$1" | jq -r '.membership.state // empty' 2>/dev/null) == "$2" ]]; do
    (( $(date +%s) < deadline )) || { echo "member $1 not $2 within $3 s" >&2; return 1; }
    sleep 0.1
  done
}

short=0
for run in $(seq "$RUNS"); do
  for f in 1 2; do ip netns add "$P-fw$f"; ip -n "$P-fw$f" link set lo up; done
  ip -n "$P-fw1" link add sync0 type veth peer name sync0 netns "$P-fw2"
  for f in 1 2; do
    ip -n "$P-fw$f" addr add "10.201.3.$f/24" dev sync0; ip -n "$P-fw$f" link set sync0 up
    printf 'table inet t {\n chain f {\n  type filter hook forward priority 0;\n  ct state established accept\n }\n}\n' | ip netns exec "$P-fw$f" nft -f -
  done
  ip netns exec "$P-fw1" dotnet "$CLI" node --config "$WORK/fw1.json" > "$WORK/fw1-$run.log" 2>&1 &
  PIDS+=($!); disown $!
  wait_state 1 Active 60
  ip netns exec "$P-fw2" dotnet "$CLI" node --config "$WORK/fw2.json" > "$WORK/fw2-$run.log" 2>&1 &
  PIDS+=($!); disown $!
  wait_state 2 Standby 60
  ip netns exec "$P-fw1" conntrack -R "$WORK/entries.txt" 2>/dev/null || true
  kernel=$(ip netns exec "$P-fw1" conntrack -C)
  replica=0
  for _ in $(seq 600); do
    replica=$(status 2 | jq -r '.tableSize // 0' 2>/dev/null); replica=${replica:-0}
    (( replica >= ENTRIES )) && break
    sleep 0.1
  done
  counters=$(status 1 | jq -c '.dataPlane.plugin.sourceCounters | {enobufs, resyncs, resubscribes, dumps, dump_entries, events_new, tracked}' 2>/dev/null)
  verdict=ok
  (( replica >= ENTRIES )) || { verdict=SHORT; short=$((short + 1)); }
  echo "run $run: $verdict — A's kernel $kernel entries, B's replica $replica; A's source $counters; load $(cut -d' ' -f1 /proc/loadavg)"
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  PIDS=()
  for f in 1 2; do ip netns del "$P-fw$f"; done
done
echo "$short of $RUNS runs fell short"
(( short == 0 ))
