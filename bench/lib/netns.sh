# Shared by the bench scripts (sourced, not run): two bare namespaces joined by a sync link, the clustersync node
# configuration for them, the established TCP entries file, and the /status helpers.
# The helpers that take no prefix use the caller's $P (namespace prefix), $WORK, $CLI and PIDS.

# The repository and the Release build of the CLI the scripts run.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
CLI=$ROOT/src/ClusterSync.Cli/bin/Release/net10.0/clustersync.dll

# bare_pair_init SCRIPT TAG: the start of a script that runs nodes on a bare pair: exits 2 (naming SCRIPT) unless
# root with the CLI built; sets $WORK (/tmp/csTAG.XXXXXX), $P (namespace prefix ending in TAG) and PIDS, and traps EXIT
# (bare_pair_cleanup), INT and TERM.
bare_pair_init() {
  [[ $EUID -eq 0 ]] || { echo "$1: needs root" >&2; exit 2; }
  [[ -f $CLI ]] || { echo "$1: build src/ClusterSync.Cli -c Release first" >&2; exit 2; }
  WORK=$(mktemp -d "/tmp/cs$2.XXXXXX")
  P="cscmp-$$-$(printf %04x $((RANDOM)))-$2"
  PIDS=()
  trap bare_pair_cleanup EXIT
  trap 'exit 130' INT TERM
}

# bare_pair_up PREFIX: namespaces PREFIX-fw1 and PREFIX-fw2 (lo up) joined by sync0 (10.201.3.1/24, 10.201.3.2/24),
# conntrack active in both (a forward chain accepting established).
bare_pair_up() {
  local P=$1 f
  for f in 1 2; do ip netns add "$P-fw$f"; ip -n "$P-fw$f" link set lo up; done
  ip -n "$P-fw1" link add sync0 type veth peer name sync0 netns "$P-fw2"
  for f in 1 2; do
    ip -n "$P-fw$f" addr add "10.201.3.$f/24" dev sync0; ip -n "$P-fw$f" link set sync0 up
    printf 'table inet t {\n chain f {\n  type filter hook forward priority 0;\n  ct state established accept\n }\n}\n' | ip netns exec "$P-fw$f" nft -f -
  done
}

# bare_pair_down PREFIX: deletes the two namespaces.
bare_pair_down() { local f; for f in 1 2; do ip netns del "$1-fw$f"; done; }

# bare_pair_cleanup: the EXIT trap of a script that runs nodes ($PIDS) on the pair $P with files in $WORK.
bare_pair_cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for f in 1 2; do ip netns del "$P-fw$f" 2>/dev/null; done
  rm -rf "$WORK"
}

# kill_nodes: SIGKILLs the nodes started so far ($PIDS) and forgets them.
kill_nodes() {
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  PIDS=()
}

# write_entries N FILE: N established TCP entries for `conntrack -R`.
write_entries() {
  awk -v n="$1" 'BEGIN { for (i = 0; i < n; i++) printf "-I -p tcp -s 10.%d.%d.%d -d 10.99.0.1 --sport %d --dport 443 --state ESTABLISHED -t 3600 -u ASSURED\n", 50 + int(i / 62500), int(i / 250) % 250, i % 250 + 1, 1024 + i % 60000 }' > "$2"
}

# write_pair_configs SETTINGS: a cluster key and $WORK/fw1.json, fw2.json for the pair (member 1 priority 100,
# member 2 priority 90, control port 9116, dataPlane.plugin conntrack); SETTINGS is appended to the dataPlane object.
write_pair_configs() {
  local f
  dotnet "$CLI" keygen --out "$WORK/cluster.key" >/dev/null
  for f in 1 2; do
    cat > "$WORK/fw$f.json" <<EOF
{
  "cluster": { "keyFile": "cluster.key", "mode": "high-availability", "members": [
    { "id": 1, "address": "10.201.3.1:8116", "priority": 100, "fullSyncPort": 256 },
    { "id": 2, "address": "10.201.3.2:8116", "priority": 90, "fullSyncPort": 256 } ] },
  "node": { "memberId": $f, "control": { "port": 9116 } },
  "policy": { "classes": [ { "name": "default", "policy": "full" } ], "rules": [] },
  "dataPlane": { "source": "plugin", "plugin": "conntrack"$1 }
}
EOF
  done
}

# start_pair_nodes RUN: member 1's node in $P-fw1 until it is Active, then member 2's in $P-fw2 until it is Standby
# (logs $WORK/fwN-RUN.log); member 1's node pid in $A.
start_pair_nodes() {
  ip netns exec "$P-fw1" dotnet "$CLI" node --config "$WORK/fw1.json" > "$WORK/fw1-$1.log" 2>&1 &
  A=$!
  PIDS+=("$A"); disown "$A"
  wait_state 1 Active 60
  ip netns exec "$P-fw2" dotnet "$CLI" node --config "$WORK/fw2.json" > "$WORK/fw2-$1.log" 2>&1 &
  PIDS+=($!); disown $!
  wait_state 2 Standby 60
}

# status MEMBER: the node's /status in namespace $P-fwMEMBER.
status() { ip netns exec "$P-fw$1" curl -s -m 2 http://127.0.0.1:9116/status 2>/dev/null; }

# wait_state MEMBER STATE TIMEOUT_S
wait_state() {
  local deadline=$(( $(date +%s) + $3 ))
  until [[ $(status "$1" | jq -r '.membership.state // empty' 2>/dev/null) == "$2" ]]; do
    (( $(date +%s) < deadline )) || { echo "member $1 not $2 within $3 s" >&2; return 1; }
    sleep 0.1
  done
}

# wait_replica N: polls B's (member 2) table size every 100 ms for up to 60 s until it holds N; leaves it in $replica.
wait_replica() {
  replica=0
  for _ in $(seq 600); do
    replica=$(status 2 | jq -r '.tableSize // 0' 2>/dev/null); replica=${replica:-0}
    (( replica >= $1 )) && break
    sleep 0.1
  done
}
