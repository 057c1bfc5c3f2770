#!/usr/bin/env bash
# How long does the failover commit of N kernel conntrack entries take, end to end?
#
#   sudo bench/conntrack-failover-commit.sh [--entries N] [--runs R]
#
# Two bare namespaces joined by a sync link, a clustersync node in each (dataPlane.plugin: conntrack, encrypted, the
# sync link ignored); A Active, B Standby; N established TCP entries (default 200,000) loaded into A's kernel
# (conntrack -R) and replicated to B; then A's node is killed (SIGKILL) and the script times, from the kill: B Active
# (/status), B's kernel holding all N entries (conntrack -C, polled every 20 ms), and B's /readyz answering "serving"
# (the plugin's commit finished). Prints per run those times and B's dataPlane.plugin commit fields (sinkLastCommitMs,
# sinkCommitTimeouts) and source counters. Not a CI test. Needs root, iproute2, nftables, conntrack, curl, jq and a
# Release build of src/ClusterSync.Cli.
set -euo pipefail

ENTRIES=200000 RUNS=3
while [[ $# -gt 0 ]]; do
  case "$1" in
    --entries) ENTRIES=$2; shift 2 ;;
    --runs) RUNS=$2; shift 2 ;;
    *) echo "conntrack-failover-commit.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
# shellcheck source=lib/netns.sh
source "$(dirname "$0")/lib/netns.sh"
bare_pair_init conntrack-failover-commit.sh focommit

SETTINGS=', "settings": { "ignore": ["10.201.3.0/24"] }'
write_pair_configs "$SETTINGS"
write_entries "$ENTRIES" "$WORK/entries.txt"

ms() { date +%s%3N; }
for run in $(seq "$RUNS"); do
  bare_pair_up "$P"
  start_pair_nodes "$run"
  ip netns exec "$P-fw1" conntrack -R "$WORK/entries.txt" 2>/dev/null || true
  wait_replica "$ENTRIES"
  (( replica >= ENTRIES )) || { echo "run $run: B's replica holds $replica of $ENTRIES; skipped" >&2; continue; }
  sleep 1   # let A's source and the sync settle before the failure
  t0=$(ms); kill -KILL "$A"
  active= kernel= ready=
  deadline=$(( t0 + 60000 ))
  while [[ -z $kernel || -z $ready || -z $active ]] && (( $(ms) < deadline )); do
    [[ -n $active ]] || { [[ $(status 2 | jq -r '.membership.state // empty' 2>/dev/null) == Active ]] && active=$(( $(ms) - t0 )); }
    [[ -n $kernel ]] || { (( $(ip netns exec "$P-fw2" conntrack -C) >= ENTRIES )) && kernel=$(( $(ms) - t0 )); }
    [[ -n $ready || -z $active ]] || { ip netns exec "$P-fw2" curl -sf -m 1 http://127.0.0.1:9116/readyz >/dev/null 2>&1 && ready=$(( $(ms) - t0 )); }
    sleep 0.02
  done
  plugin=$(status 2 | jq -c '.dataPlane.plugin | {sinkLastCommitMs, sinkCommitTimeouts, serving, sinkCommitting, c: (.sourceCounters | {dumps, echo_suppressed, enobufs, ignored})}' 2>/dev/null)
  echo "run $run: after the kill: B Active ${active:-never} ms, B's kernel holds all $ENTRIES ${kernel:-never} ms, /readyz serving ${ready:-never} ms; B's plugin $plugin; load $(cut -d' ' -f1 /proc/loadavg)"
  grep -h "becomes Active\|committed into its sink" "$WORK/fw2-$run.log" | sed 's/^/    /' | cut -c1-220 || true
  kill_nodes
  bare_pair_down "$P"
done
