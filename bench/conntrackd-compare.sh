#!/usr/bin/env bash
# ClusterSync beside conntrackd on the same two Linux firewalls, the same workload, in one run (issue 15, item 3).
#
#   sudo bench/conntrackd-compare.sh [--long N] [--short-rate R] [--short-count C] [--burst-rate R] [--burst-count C]
#                                    [--commit-entries E] [--only conntrackd|clustersync] [--keep DIR]
#
# Not a CI test. Needs root, iproute2, nftables, conntrack, conntrackd, tcpdump, curl, jq and a Release build of
# src/ClusterSync.Cli (with the conntrack data-plane plugin) and tests/ClusterSync.EndToEndTests.Traffic:
#   dotnet build -c Release src/ClusterSync.Cli && dotnet build -c Release tests/ClusterSync.EndToEndTests.Traffic
#
# For each daemon, on a fresh copy of the end-to-end tests' topology (FirewallPair.cs: client, fw1, fw2, server, a
# bridge per side, a dedicated fw1<->fw2 sync link, stateful nftables forward policy, nf_conntrack_tcp_loose=0,
# nf_conntrack_timestamp=1), with fw1 primary and fw2 backup:
#   1. replication: N long-lived connections (32 bytes echoed every 50 ms) and C short connections at R/s through fw1;
#      tcpdump on fw1's client side (SYNs) and on fw2's sync link (sync data datagrams from fw1).
#        latency = first sync data datagram at fw2 after an isolated SYN at fw1 (none other within 10 ms): the kernel
#        event on fw1 (the SYN creates the entry) to the entry reaching fw2's table (the datagram that carries it,
#        before fw2 applies it: microseconds for either daemon).
#        bytes/connection = bytes both ways on the sync link (nft counters on fw1's sync0, heartbeats and acks
#        included) during the short stream / short connections.
#   2. CPU: a burst of short connections (--burst-count at --burst-rate/s); CPU seconds (utime+stime from /proc) of
#      the daemon on fw1 and on fw2 per 10,000 kernel conntrack events on fw1 (conntrack -E counts them).
#      entries replicated = entries in fw2's replica (conntrackd external cache / ClusterSync table) vs fw1's kernel
#      table once quiet.
#   3. failover: SIGKILL the daemon on fw1, cut fw1 off (nftables netdev drop), route through fw2; conntrackd: fw2 runs
#      `conntrackd -c` (commit its external cache); ClusterSync: fw2's Standby node promotes and commits by itself.
#      survived = long-lived connections that exchange data again within 20 s.
#   4. commit of E entries (default 200,000) into an empty kernel table, on two bare namespaces joined by a sync
#      link: E established TCP entries loaded into A's kernel (conntrack -R) and replicated to B by the daemon; then
#      conntrackd — `conntrackd -c` on B, timed until B's kernel holds them; ClusterSync — A's node SIGKILLed, B's
#      node promotes and commits (the plugin sink's own last_commit_us from /status; the time from the kill until
#      B's kernel holds them, dead interval included, in the detail line); plus `clustersync bench commit --entries E --json` when the
#      CLI has that command.
# Prints a Markdown table. Everything it creates (namespaces cscmp-PID-*, processes, files) is removed on exit.
set -euo pipefail

LONG=200 SHORT_RATE=20 SHORT_COUNT=200 BURST_RATE=500 BURST_COUNT=5000 COMMIT_ENTRIES=200000 ONLY="" KEEP=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --long) LONG=$2; shift 2 ;;
    --short-rate) SHORT_RATE=$2; shift 2 ;;
    --short-count) SHORT_COUNT=$2; shift 2 ;;
    --burst-rate) BURST_RATE=$2; shift 2 ;;
    --burst-count) BURST_COUNT=$2; shift 2 ;;
    --commit-entries) COMMIT_ENTRIES=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --keep) KEEP=$2; shift 2 ;;
    *) echo "conntrackd-compare.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

# shellcheck source=lib/netns.sh
source "$(dirname "$0")/lib/netns.sh"
TRAFFIC=$ROOT/tests/ClusterSync.EndToEndTests.Traffic/bin/Release/net10.0/cse2e-traffic.dll
[[ $EUID -eq 0 ]] || { echo "conntrackd-compare.sh: needs root (network namespaces, nftables)" >&2; exit 2; }
for t in ip nft conntrack conntrackd tcpdump curl jq dotnet; do
  command -v $t >/dev/null || { echo "conntrackd-compare.sh: $t is missing (apt-get install iproute2 nftables conntrack conntrackd tcpdump curl jq; .NET 10 SDK)" >&2; exit 2; }
done
[[ -f $TRAFFIC ]] || { echo "conntrackd-compare.sh: build tests/ClusterSync.EndToEndTests.Traffic -c Release first ($TRAFFIC)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/cscmp.XXXXXX)
PREFIX_BASE="cscmp-$$-$(printf %04x $((RANDOM)))"
PIDS=()
NAMESPACES=()
log() { printf '%(%H:%M:%S)T  %s\n' -1 "$*" >&2; }
now_ms() { date +%s%3N; }

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
  for ns in "${NAMESPACES[@]}"; do
    for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  if [[ -n $KEEP ]]; then mkdir -p "$KEEP" && cp -r "$WORK"/. "$KEEP"/; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until TIMEOUT_S DESCRIPTION COMMAND...: polls COMMAND every 50 ms; fails the run at the timeout.
wait_until() {
  local timeout=$1 what=$2; shift 2
  local deadline=$(( $(now_ms) + timeout * 1000 ))
  until "$@"; do
    if (( $(now_ms) > deadline )); then echo "conntrackd-compare.sh: timed out after ${timeout} s waiting for $what" >&2; return 1; fi
    sleep 0.05
  done
}

# ---------------------------------------------------------------- topology (as tests/ClusterSync.EndToEndTests/Netns/FirewallPair.cs)
build_topology() {   # $1 prefix
  local P=$1 f
  CLI_NS=$P-cli SRV_NS=$P-srv FW1=$P-fw1 FW2=$P-fw2 SW=$P-sw
  for ns in $CLI_NS $SRV_NS $FW1 $FW2 $SW; do ip netns add "$ns"; NAMESPACES+=("$ns"); ip -n "$ns" link set lo up; done
  for br in brc brs; do ip -n $SW link add $br type bridge stp_state 0 forward_delay 0; ip -n $SW link set $br up; done
  plug() { ip -n "$1" link add "$2" type veth peer name "$3" netns $SW; ip -n $SW link set "$3" master "$4" up; ip -n "$1" link set "$2" up; }
  plug $CLI_NS eth0 cli brc; plug $SRV_NS eth0 srv brs
  for f in 1 2; do plug $P-fw$f c0 fw${f}c brc; plug $P-fw$f s0 fw${f}s brs; done
  ip -n $FW1 link add sync0 type veth peer name sync0 netns $FW2
  ip -n $CLI_NS addr add 10.201.1.10/24 dev eth0; ip -n $SRV_NS addr add 10.201.2.10/24 dev eth0
  for f in 1 2; do
    local F=$P-fw$f
    ip -n $F addr add 10.201.1.$f/24 dev c0; ip -n $F addr add 10.201.2.$f/24 dev s0; ip -n $F addr add 10.201.3.$f/24 dev sync0
    ip -n $F link set sync0 up
    ip netns exec $F sysctl -qw net.ipv4.ip_forward=1
    ip netns exec $F nft -f "$ROOT/tests/ClusterSync.EndToEndTests/Netns/forward.nft"
    ip netns exec $F sysctl -qw net.netfilter.nf_conntrack_tcp_loose=0 net.netfilter.nf_conntrack_timestamp=1
  done
  # Bytes on the sync link, both directions, counted on fw1.
  ip netns exec $FW1 nft -f - <<'NFT'
table netdev cscmp_count {
  chain in_sync { type filter hook ingress device "sync0" priority 0; counter; }
  chain out_sync { type filter hook egress device "sync0" priority 0; counter; }
}
NFT
  ip -n $CLI_NS route add default via 10.201.1.1
  ip -n $SRV_NS route add default via 10.201.2.1
}

sync_bytes() { ip netns exec $FW1 nft list table netdev cscmp_count | awk '/counter packets/ { for (i = 1; i <= NF; i++) if ($i == "bytes") s += $(i+1) } END { print s + 0 }'; }

cut_off_fw1() {
  local chains="" d
  for d in c0 s0 sync0; do
    chains+="  chain in_$d { type filter hook ingress device \"$d\" priority -500; policy drop; }"$'\n'
    chains+="  chain out_$d { type filter hook egress device \"$d\" priority -500; policy drop; }"$'\n'
  done
  printf 'table netdev cse2e_cut {\n%s}\n' "$chains" | ip netns exec $FW1 nft -f -
}

route_through_fw2() {
  ip -n $CLI_NS route replace default via 10.201.1.2
  ip -n $SRV_NS route replace default via 10.201.2.2
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime, in clock ticks
HZ=$(getconf CLK_TCK)

# ---------------------------------------------------------------- workload
start_echo() {
  ip netns exec $SRV_NS dotnet "$TRAFFIC" echo --port 7000 --stdin ignore > "$1/echo.log" 2>&1 &
  PIDS+=($!); disown $!
  wait_until 30 "the echo server" grep -q LISTENING "$1/echo.log"
}

# start_clients DIR NAME LONG SHORT_RATE SHORT_COUNT
start_clients() {
  ip netns exec $CLI_NS dotnet "$TRAFFIC" clients --server 10.201.2.10:7000 --long "$3" --short-rate "$4" --short-count "$5" \
    --report-ms 100 --stdin ignore > "$1/$2.log" 2>&1 &
  PIDS+=($!); disown $!
  LAST_CLIENTS_PID=$!
  wait_until 60 "$2: $3 long-lived connections" grep -q '^ESTABLISHED' "$1/$2.log"
}

# last_progress FILE: the last "P unixMs ok fail c0 c1 ..." line
last_progress() { grep '^P ' "$1" | tail -n 1; }
short_done() { last_progress "$1" | awk -v n="$2" '{ exit !($3 + $4 >= n) }'; }

# survivors FILE SWITCH_MS LONG WINDOW_S: long-lived connections whose count grew after the switch within the window
survivors() {
  local file=$1 switched=$2 n=$3 window=$4 base deadline
  wait_until 5 "a progress report after the switch" sh -c "grep '^P ' '$file' | awk -v t=$switched '\$2 >= t { f = 1 } END { exit !f }'"
  base=$(grep '^P ' "$file" | awk -v t="$switched" '$2 >= t { print; exit }')
  deadline=$(( $(now_ms) + window * 1000 ))
  local alive=0
  while (( $(now_ms) < deadline )); do
    alive=$(last_progress "$file" | awk -v base="$base" -v n="$n" 'BEGIN { split(base, b, " ") } { c = 0; for (i = 5; i < 5 + n; i++) if ($i > b[i]) c++; print c }')
    (( alive >= n )) && break
    sleep 0.2
  done
  echo "$alive"
}

# latency_stats SYN_PCAP SYNC_PCAP: "count p50_ms p99_ms" over isolated SYNs (no other SYN within 10 ms)
latency_stats() {
  local syn=$WORK/syn.txt data=$WORK/data.txt
  tcpdump -tt -n -r "$1" 2>/dev/null | awk '{ print $1 }' > "$syn"
  tcpdump -tt -n -r "$2" 2>/dev/null | awk '{ print $1 }' > "$data"
  awk -v synf="$syn" -v dataf="$data" 'BEGIN {
      n = 0; while ((getline t < synf) > 0) s[n++] = t
      m = 0; while ((getline t < dataf) > 0) d[m++] = t
      j = 0
      for (i = 0; i < n; i++) {
        if ((i > 0 && s[i] - s[i-1] < 0.010) || (i < n - 1 && s[i+1] - s[i] < 0.010)) continue
        while (j < m && d[j] < s[i]) j++
        if (j < m && d[j] - s[i] < 0.010) printf "%.4f\n", (d[j] - s[i]) * 1000
      }
    }' | sort -n | awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "0 - -"; exit }
      p50 = int(NR * 0.5) + 1; p99 = int(NR * 0.99) + 1; if (p99 > NR) p99 = NR
      printf "%d %.3f %.3f\n", NR, v[p50], v[p99]
    }'
}

# ---------------------------------------------------------------- daemons
conntrackd_conf() {   # $1 fw number, $2 dir
  local me=$1 peer=$(( 3 - $1 ))
  cat > "$2/conntrackd-fw$me.conf" <<EOF
Sync {
  Mode FTFW {
    ResendQueueSize 131072
  }
  UDP {
    IPv4_address 10.201.3.$me
    IPv4_Destination_Address 10.201.3.$peer
    Port 3780
    Interface sync0
    SndSocketBuffer 24985600
    RcvSocketBuffer 24985600
    Checksum on
  }
}
General {
  HashSize 262144
  HashLimit 1048576
  LogFile $2/conntrackd-fw$me.log
  Syslog off
  LockFile $2/conntrackd-fw$me.lock
  UNIX {
    Path $2/conntrackd-fw$me.ctl
  }
  NetlinkBufferSize 2097152
  NetlinkBufferSizeMaxGrowth 134217728
  NetlinkOverrunResync On
  NetlinkEventsReliable Off
  Filter From Userspace {
    Protocol Accept {
      TCP
    }
    Address Ignore {
      IPv4_address 127.0.0.1
      IPv4_address 10.201.3.1
      IPv4_address 10.201.3.2
    }
  }
}
EOF
}

start_conntrackd() {   # $1 fw number, $2 dir
  conntrackd_conf "$1" "$2"
  ip netns exec "$PFX-fw$1" conntrackd -C "$2/conntrackd-fw$1.conf" > "$2/conntrackd-fw$1.out" 2>&1 &
  PIDS+=($!); disown $!
  eval "DAEMON$1=$!"
  wait_until 10 "conntrackd on fw$1" test -S "$2/conntrackd-fw$1.ctl"
}

conntrackd_external() {   # $1 dir: entries in fw2's external cache
  ip netns exec $FW2 conntrackd -C "$1/conntrackd-fw2.conf" -s cache 2>/dev/null \
    | awk '/^cache:external/ { print $NF; exit }'
}

cs_conf() {   # $1 fw number, $2 dir
  cat > "$2/cs-fw$1.json" <<EOF
{
  "cluster": { "keyFile": "cluster.key", "mode": "high-availability", "members": [
    { "id": 1, "address": "10.201.3.1:8116", "priority": 100, "fullSyncPort": 256 },
    { "id": 2, "address": "10.201.3.2:8116", "priority": 90, "fullSyncPort": 256 } ] },
  "node": { "memberId": $1, "control": { "port": 9116 } },
  "policy": { "classes": [ { "name": "default", "policy": "full" } ], "rules": [] },
  "dataPlane": { "source": "plugin", "plugin": "conntrack" }
}
EOF
}

cs_status() { ip netns exec "$PFX-fw$1" curl -s -m 2 http://127.0.0.1:9116/status 2>/dev/null; }
cs_state() { cs_status "$1" | jq -r '.membership.state // empty' 2>/dev/null; }
cs_is() { [[ $(cs_state "$1") == "$2" ]]; }
cs_table_at_least() { local n; n=$(cs_status "$1" | jq -r '.tableSize // 0' 2>/dev/null); CS_LAST_TABLE=${n:-0}; [[ ${n:-0} -ge $2 ]]; }

start_clustersync() {   # $1 fw number, $2 dir
  cs_conf "$1" "$2"
  ip netns exec "$PFX-fw$1" dotnet "$CLI" node --config "$2/cs-fw$1.json" > "$2/cs-fw$1.log" 2>&1 &
  PIDS+=($!); disown $!
  eval "DAEMON$1=$!"
}

# ---------------------------------------------------------------- one daemon, one fresh topology
declare -A R
run_side() {   # $1 conntrackd|clustersync
  local side=$1 dir=$WORK/$1
  mkdir -p "$dir"
  PFX="$PREFIX_BASE-${side:0:2}"
  build_topology "$PFX"
  log "$side: topology $PFX-*"
  if [[ $side == conntrackd ]]; then
    start_conntrackd 1 "$dir"; start_conntrackd 2 "$dir"
  else
    dotnet "$CLI" keygen --out "$dir/cluster.key" >/dev/null
    start_clustersync 1 "$dir"
    wait_until 60 "fw1's node Active" cs_is 1 Active
    start_clustersync 2 "$dir"
    wait_until 60 "fw2's node Standby" cs_is 2 Standby
  fi

  # 1. replication: long-lived connections, then an isolated stream of short ones; captures on both ends.
  ip netns exec $FW1 tcpdump -i c0 -n -w "$dir/syn.pcap" -U 'tcp dst port 7000 and (tcp[tcpflags] & (tcp-syn|tcp-ack)) == tcp-syn' > "$dir/tcpdump1.log" 2>&1 &
  PIDS+=($!); disown $!; local td1=$!
  local datafilter='src host 10.201.3.1 and udp[11] == 1'          # ClusterSync: header byte 3 = message type Data
  [[ $side == conntrackd ]] && datafilter='src host 10.201.3.1 and (udp[8] & 0x0f) != 10'   # conntrackd: not a control message
  ip netns exec $FW2 tcpdump -i sync0 -n -w "$dir/sync.pcap" -U "udp and $datafilter" > "$dir/tcpdump2.log" 2>&1 &
  PIDS+=($!); disown $!; local td2=$!
  wait_until 10 "tcpdump" sh -c "grep -qs listening '$dir/tcpdump1.log' && grep -qs listening '$dir/tcpdump2.log'"
  ip netns exec $FW1 conntrack -E > "$dir/events.txt" 2>/dev/null &
  PIDS+=($!); disown $!; local events_pid=$!
  start_echo "$dir"
  local b0; b0=$(sync_bytes)
  start_clients "$dir" long "$LONG" "$SHORT_RATE" "$SHORT_COUNT"
  local b1; b1=$(sync_bytes)
  wait_until $(( SHORT_COUNT / SHORT_RATE + 30 )) "$SHORT_COUNT short connections" short_done "$dir/long.log" "$SHORT_COUNT"
  local b2; b2=$(sync_bytes)
  kill -INT "$td1" "$td2" 2>/dev/null || true
  wait_until 10 "tcpdump to finish" sh -c "! kill -0 $td1 2>/dev/null && ! kill -0 $td2 2>/dev/null"
  read -r R[$side.lat_n] R[$side.lat_p50] R[$side.lat_p99] < <(latency_stats "$dir/syn.pcap" "$dir/sync.pcap")
  R[$side.bytes_long]=$(( (b1 - b0) / LONG ))
  R[$side.bytes_short]=$(( (b2 - b1) / SHORT_COUNT ))
  log "$side: latency over ${R[$side.lat_n]} isolated connections p50 ${R[$side.lat_p50]} ms p99 ${R[$side.lat_p99]} ms; sync bytes/conn long ${R[$side.bytes_long]} short ${R[$side.bytes_short]}"

  # Idle cost: 5 s with only the long-lived connections running (they cause no conntrack events): heartbeats,
  # keepalives, timers. Subtracted in the "net" rows.
  local i0 i1 i10 i20 i11 i21 it0 it1; i0=$(sync_bytes); i10=$(cpu_ticks "$DAEMON1"); i20=$(cpu_ticks "$DAEMON2"); it0=$(now_ms)
  sleep 5
  i1=$(sync_bytes); i11=$(cpu_ticks "$DAEMON1"); i21=$(cpu_ticks "$DAEMON2"); it1=$(now_ms)
  local idle_s; idle_s=$(awk -v a="$it0" -v b="$it1" 'BEGIN { print (b - a) / 1000 }')
  R[$side.idle_bytes]=$(awk -v b=$(( i1 - i0 )) -v s="$idle_s" 'BEGIN { printf "%.0f", b / s }')
  R[$side.idle_cpu1]=$(awk -v c=$(( i11 - i10 )) -v hz="$HZ" -v s="$idle_s" 'BEGIN { printf "%.4f", c / hz / s }')
  R[$side.idle_cpu2]=$(awk -v c=$(( i21 - i20 )) -v hz="$HZ" -v s="$idle_s" 'BEGIN { printf "%.4f", c / hz / s }')
  local short_s; short_s=$(awk -v n="$SHORT_COUNT" -v r="$SHORT_RATE" 'BEGIN { print n / r }')
  R[$side.bytes_short_net]=$(awk -v b=$(( b2 - b1 )) -v idle="${R[$side.idle_bytes]}" -v s="$short_s" -v n="$SHORT_COUNT" 'BEGIN { v = (b - idle * s) / n; printf "%.0f", v < 0 ? 0 : v }')
  R[$side.idle_cpu]="${R[$side.idle_cpu1]} / ${R[$side.idle_cpu2]}"
  log "$side: idle: ${R[$side.idle_bytes]} sync-link bytes/s, CPU s/s fw1 ${R[$side.idle_cpu1]} fw2 ${R[$side.idle_cpu2]}"

  # 2. CPU per kernel event: a burst of short connections.
  local e0 c10 c20 bt0 bt1; e0=$(wc -l < "$dir/events.txt"); c10=$(cpu_ticks "$DAEMON1"); c20=$(cpu_ticks "$DAEMON2"); bt0=$(now_ms)
  start_clients "$dir" burst 0 "$BURST_RATE" "$BURST_COUNT"
  wait_until $(( BURST_COUNT / BURST_RATE + 60 )) "$BURST_COUNT burst connections" short_done "$dir/burst.log" "$BURST_COUNT"
  local bdone; bdone=$(now_ms)
  # Quiet: no new kernel event for 0.6 s (without asking the daemons anything: that would cost them CPU) ...
  local prev=-1 cur=0 stable=0
  for _ in $(seq 100); do
    cur=$(wc -l < "$dir/events.txt")
    if [[ $cur == "$prev" ]]; then stable=$((stable + 1)); (( stable >= 3 )) && break; else stable=0; fi
    prev=$cur; sleep 0.2
  done
  local e1 c11 c21; e1=$(wc -l < "$dir/events.txt"); c11=$(cpu_ticks "$DAEMON1"); c21=$(cpu_ticks "$DAEMON2"); bt1=$(now_ms)
  # ... then the replica stops changing.
  prev=-1 stable=0
  for _ in $(seq 100); do
    if [[ $side == conntrackd ]]; then cur=$(conntrackd_external "$dir"); else cur=$(cs_status 2 | jq -r .tableSize); fi
    if [[ $cur == "$prev" ]]; then stable=$((stable + 1)); (( stable >= 3 )) && break; else stable=0; fi
    prev=$cur; sleep 0.2
  done
  local kernel; kernel=$(ip netns exec $FW1 conntrack -C)
  local burst_s; burst_s=$(awk -v a="$bt0" -v b="$bt1" 'BEGIN { print (b - a) / 1000 }')
  R[$side.events]=$(( e1 - e0 ))
  R[$side.burst]=$(awk -v a="$bt0" -v b="$bdone" -v n="$BURST_COUNT" -v e=$(( e1 - e0 )) 'BEGIN { s = (b - a) / 1000; printf "%.0f conn/s, %.0f events/s", n / s, e / s }')
  R[$side.cpu1]=$(awk -v c=$(( c11 - c10 )) -v hz="$HZ" -v e=$(( e1 - e0 )) 'BEGIN { printf "%.3f", c / hz / e * 10000 }')
  R[$side.cpu2]=$(awk -v c=$(( c21 - c20 )) -v hz="$HZ" -v e=$(( e1 - e0 )) 'BEGIN { printf "%.3f", c / hz / e * 10000 }')
  R[$side.cpu1_net]=$(awk -v c=$(( c11 - c10 )) -v hz="$HZ" -v e=$(( e1 - e0 )) -v idle="${R[$side.idle_cpu1]}" -v s="$burst_s" 'BEGIN { printf "%.3f", (c / hz - idle * s) / e * 10000 }')
  R[$side.cpu2_net]=$(awk -v c=$(( c21 - c20 )) -v hz="$HZ" -v e=$(( e1 - e0 )) -v idle="${R[$side.idle_cpu2]}" -v s="$burst_s" 'BEGIN { printf "%.3f", (c / hz - idle * s) / e * 10000 }')
  R[$side.replicated]="$cur / $kernel"
  log "$side: ${R[$side.events]} kernel events; CPU s per 10k events fw1 ${R[$side.cpu1]} fw2 ${R[$side.cpu2]}; replica ${cur} of fw1's ${kernel} entries"

  # 3. failover.
  kill -KILL "$DAEMON1"
  cut_off_fw1
  route_through_fw2
  local switched; switched=$(now_ms)
  if [[ $side == conntrackd ]]; then
    ip netns exec $FW2 conntrackd -C "$dir/conntrackd-fw2.conf" -c > "$dir/commit.out" 2>&1
  else
    wait_until 10 "fw2's node Active" cs_is 2 Active
  fi
  R[$side.takeover_ms]=$(( $(now_ms) - switched ))
  R[$side.survived]=$(survivors "$dir/long.log" "$switched" "$LONG" 20)
  log "$side: ${R[$side.survived]} of $LONG long-lived connections survived (fw2 serving after ${R[$side.takeover_ms]} ms)"
  kill "$events_pid" 2>/dev/null || true

  # 4. commit of COMMIT_ENTRIES.
  if [[ $side == conntrackd ]]; then
    commit_conntrackd "$dir"
  else
    commit_clustersync "$dir"
  fi
  log "$side: ${R[$side.commit]}"

  for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  PIDS=()
  for ns in "${NAMESPACES[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  NAMESPACES=()
}

# Two bare namespaces joined by a sync link, conntrackd on both; E entries loaded into A's kernel, replicated to B,
# then `conntrackd -c` on B timed until B's kernel holds them.
setup_commit_pair() {   # two bare namespaces joined by a sync link, conntrack active in both
  PFX="$PREFIX_BASE-cc"
  FW1=$PFX-fw1 FW2=$PFX-fw2
  NAMESPACES+=($FW1 $FW2)
  bare_pair_up "$PFX"
}

load_entries() {   # COMMIT_ENTRIES established TCP entries into A's kernel (conntrack -R: one process, ctnetlink)
  write_entries "$COMMIT_ENTRIES" "$1/entries.txt"
  ip netns exec $FW1 conntrack -R "$1/entries.txt" 2>/dev/null || true
}

commit_conntrackd() {
  local dir=$1/commit
  mkdir -p "$dir"
  setup_commit_pair "$dir"
  start_conntrackd 1 "$dir"; start_conntrackd 2 "$dir"
  load_entries "$dir"
  local loaded; loaded=$(ip netns exec $FW1 conntrack -C)
  local got=0
  for _ in $(seq 600); do
    got=$(conntrackd_external "$dir"); [[ -n $got ]] || got=0
    (( got >= COMMIT_ENTRIES )) && break
    sleep 0.1
  done
  local t0 t1 k0 k1; k0=$(cpu_ticks "$DAEMON2"); t0=$(date +%s%N)
  ip netns exec $FW2 conntrackd -C "$dir/conntrackd-fw2.conf" -c > "$dir/commit.out" 2>&1
  t1=$(date +%s%N)
  local deadline=$(( $(now_ms) + 60000 )) count=0
  while (( $(now_ms) < deadline )); do
    count=$(ip netns exec $FW2 conntrack -C); (( count >= got )) && break; sleep 0.01
  done
  local t2; t2=$(date +%s%N); k1=$(cpu_ticks "$DAEMON2")
  R[conntrackd.commit]=$(awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$count" -v r="$got" -v l="$loaded" -v cpu=$(( k1 - k0 )) -v hz="$HZ" 'BEGIN { printf "%d of %d replicated (%d loaded) committed: conntrackd -c returned after %.2f s, kernel held %d after %.2f s (%.0f entries/s); conntrackd CPU meanwhile %.2f s", n, r, l, (b - a) / 1e9, n, (c - a) / 1e9, n / ((c - a) / 1e9), cpu / hz }')
  R[conntrackd.commit_s]=$(awk -v a="$t0" -v c="$t2" 'BEGIN { printf "%.2f", (c - a) / 1e9 }')
}

# The same for ClusterSync: E entries loaded into A's kernel, replicated by A's node (conntrack plugin) to B's, then
# A's node SIGKILLed; B's node detects it (dead interval), promotes and commits; timed from the kill until B's
# kernel holds them, with the node's own commit time from its log. Also `clustersync bench commit` when the CLI has it.
commit_clustersync() {
  local dir=$1/commit out
  mkdir -p "$dir"
  setup_commit_pair "$dir"
  dotnet "$CLI" keygen --out "$dir/cluster.key" >/dev/null
  start_clustersync 1 "$dir"
  wait_until 60 "commit pair: A's node Active" cs_is 1 Active
  start_clustersync 2 "$dir"
  wait_until 60 "commit pair: B's node Standby" cs_is 2 Standby
  load_entries "$dir"
  local loaded; loaded=$(ip netns exec $FW1 conntrack -C)
  if ! wait_until 120 "B's replica holding $COMMIT_ENTRIES entries" cs_table_at_least 2 "$COMMIT_ENTRIES"; then
    # Not a silent failure: say what each side held, and go on with what B has.
    log "clustersync: B's replica stopped at $CS_LAST_TABLE; A: $(cs_status 1 | jq -c '{tableSize, pending, lastDataSequence, counters: (.counters | {resync_needed, retransmissions, nack_ranges_received}), source: .dataPlane.plugin.sourceCounters | {events_new, announced_new, submitted, enobufs, resyncs, tracked}}' 2>&1 | head -c 800)"
    log "clustersync: B: $(cs_status 2 | jq -c '{tableSize, pending, peers: [.peers[] | {receivedThrough, alive, memberState}], counters: (.counters | {resync_needed, nack_ranges_sent, updates_applied})}' 2>&1 | head -c 800)"
    cp "$dir"/cs-fw*.log "$WORK/" 2>/dev/null || true
  fi
  local got; got=$(cs_status 2 | jq -r .tableSize)
  local t0 t2 count=0; t0=$(date +%s%N)
  kill -KILL "$DAEMON1"
  local deadline=$(( $(now_ms) + 60000 ))
  while (( $(now_ms) < deadline )); do
    count=$(ip netns exec $FW2 conntrack -C); (( count >= COMMIT_ENTRIES )) && break; sleep 0.01
  done
  t2=$(date +%s%N)
  # The node logs its promotion ("becomes Active ... committed N connections ... in X ms": the in-process table
  # handed over) and, separately, when the plugin's sink has committed the replica into the kernel.
  local promoted sunk
  promoted=$(grep -m1 'becomes Active' "$dir/cs-fw2.log" | awk '{ print $1 }')
  sunk=$(grep 'Data-plane plugin conntrack: replica of [0-9]* connections committed into its sink' "$dir/cs-fw2.log" | tail -n 1 | awk '{ print $1 }')
  local line; line=$(grep -o 'committed [0-9]* connections into the [^ ]* data plane in [0-9.]* ms' "$dir/cs-fw2.log" | tail -n 1)
  # The plugin sink's own measure of its last commit (/status dataPlane.plugin.sinkCounters).
  local sink; sink=$(cs_status 2 | jq -c '.dataPlane.plugin.sinkCounters | {last_commit_entries, last_commit_us, last_commit_entries_per_second, refused}' 2>/dev/null)
  R[clustersync.commit_s]=$(echo "$sink" | jq -r '.last_commit_us // empty' | awk '{ printf "%.2f", $1 / 1e6 }')
  [[ -n ${R[clustersync.commit_s]} ]] || R[clustersync.commit_s]=$(awk -v a="$promoted" -v b="$sunk" 'function s(t,  p) { split(t, p, ":"); return p[1] * 3600 + p[2] * 60 + p[3] } BEGIN { if (a == "" || b == "") print "n/a"; else printf "%.2f", s(b) - s(a) }')
  R[clustersync.commit]=$(awk -v a="$t0" -v c="$t2" -v n="$count" -v r="$got" -v l="$loaded" -v line="$line" -v p="$promoted" -v k="$sunk" -v sink="$sink" 'BEGIN { printf "%d of %d replicated (%d loaded): kernel held %d %.2f s after the SIGKILL (dead interval 0.3 s included); promoted at %s (%s), the plugin sink done at %s: %s", n, r, l, n, (c - a) / 1e9, p, line, k, sink }')
  # bench commit makes a namespace of its own.
  if out=$(dotnet "$CLI" bench commit --entries "$COMMIT_ENTRIES" --json 2>"$dir/bench.err"); then
    echo "$out" > "$dir/bench.json"
    R[clustersync.commit]+="; bench commit: $(jq -c . < "$dir/bench.json" 2>/dev/null || echo "$out")"
  else
    R[clustersync.commit]+="; clustersync bench commit failed: $(head -c 300 "$dir/bench.err")"
  fi
}

SIDES=(conntrackd clustersync)
[[ -n $ONLY ]] && SIDES=("$ONLY")
for side in "${SIDES[@]}"; do
  if [[ $side == clustersync && ! -f $CLI ]]; then
    log "clustersync: $CLI not built; skipped"
    continue
  fi
  run_side "$side"
done

echo
echo "ClusterSync beside conntrackd: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) vCPU, kernel $(uname -r), conntrackd $(conntrackd -v 2>&1 | grep -o 'v[0-9.]*[0-9]' | head -n 1)"
echo "workload: $LONG long-lived + $SHORT_COUNT short connections at $SHORT_RATE/s, then $BURST_COUNT at $BURST_RATE/s; failover by SIGKILL + cut-off of fw1"
echo
printf '| measure | %s |\n' "$(IFS='|'; echo "${SIDES[*]}" | sed 's/|/ | /g')"
printf '|---|%s\n' "$(for _ in "${SIDES[@]}"; do printf -- '---|'; done)"
row() { local label=$1 key=$2 s; local line="| $label |"; for s in "${SIDES[@]}"; do line+=" ${R[$s.$key]:-n/a} |"; done; echo "$line"; }
row "entries replicated (fw2 replica / fw1 kernel, quiet)" replicated
row "replication latency p50 (ms; SYN at fw1 → sync datagram at fw2)" lat_p50
row "replication latency p99 (ms)" lat_p99
row "isolated connections measured" lat_n
row "kernel events on fw1 (burst)" events
row "burst achieved (connections through fw1, kernel events on fw1)" burst
row "CPU s / 10,000 kernel events, fw1 (sender)" cpu1
row "CPU s / 10,000 kernel events, fw2 (receiver)" cpu2
row "  same, net of idle cost, fw1" cpu1_net
row "  same, net of idle cost, fw2" cpu2_net
row "idle CPU s per s, fw1 / fw2" idle_cpu
row "sync-link bytes per short connection (both ways, incl. heartbeats)" bytes_short
row "  same, net of idle traffic" bytes_short_net
row "idle sync-link bytes/s (heartbeats, keepalives)" idle_bytes
row "sync-link bytes per long-lived connection set-up" bytes_long
row "fw2 serving after switch (ms; conntrackd -c returned / node Active)" takeover_ms
row "long-lived connections surviving the failover (of $LONG)" survived
row "commit of $COMMIT_ENTRIES entries (s)" commit_s
echo
for s in "${SIDES[@]}"; do echo "- $s commit: ${R[$s.commit]:-n/a}"; done
