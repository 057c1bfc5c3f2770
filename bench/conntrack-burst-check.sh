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
# shellcheck source=lib/netns.sh
source "$(dirname "$0")/lib/netns.sh"
bare_pair_init conntrack-burst-check.sh burst

SETTINGS=
[[ -z $RCVBUF ]] || SETTINGS=", \"settings\": { \"receiveBufferBytes\": $RCVBUF }"
write_pair_configs "$SETTINGS"
write_entries "$ENTRIES" "$WORK/entries.txt"

short=0
for run in $(seq "$RUNS"); do
  bare_pair_up "$P"
  start_pair_nodes "$run"
  ip netns exec "$P-fw1" conntrack -R "$WORK/entries.txt" 2>/dev/null || true
  kernel=$(ip netns exec "$P-fw1" conntrack -C)
  wait_replica "$ENTRIES"
  counters=$(status 1 | jq -c '.dataPlane.plugin.sourceCounters | {enobufs, resyncs, resubscribes, dumps, dump_entries, events_new, tracked}' 2>/dev/null)
  verdict=ok
  (( replica >= ENTRIES )) || { verdict=SHORT; short=$((short + 1)); }
  echo "run $run: $verdict — A's kernel $kernel entries, B's replica $replica; A's source $counters; load $(cut -d' ' -f1 /proc/loadavg)"
  kill_nodes
  bare_pair_down "$P"
done
echo "$short of $RUNS runs fell short"
(( short == 0 ))
