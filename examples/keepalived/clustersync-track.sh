#!/bin/sh
# ClusterSync state hook for a keepalived that holds the virtual addresses (VRRP) while ClusterSync decides which
# member is Active (docs/operations.md, "keepalived"). Use it for all three hooks of node.json:
#
#   "hooks": { "onActive": ["/usr/local/lib/clustersync/clustersync-track.sh"],
#              "onStandby": ["/usr/local/lib/clustersync/clustersync-track.sh"],
#              "onFault": ["/usr/local/lib/clustersync/clustersync-track.sh"] }
#
# It writes 1 into the track file while this member is Active (after its replica was committed into the data plane:
# ClusterSync runs onActive only then) and 0 otherwise. keepalived.conf on every member (keepalived 2.1 or later):
#
#   track_file clustersync_active {
#       file /run/clustersync/keepalived-track
#       weight 100
#   }
#   vrrp_instance VI_1 {
#       state BACKUP
#       nopreempt            # (optional) ClusterSync's election decides; see docs/operations.md
#       priority 100         # the same on every member: the track file's 100 makes the ClusterSync Active the MASTER
#       track_file { clustersync_active }
#       ...
#   }
#
# keepalived re-reads the file when it changes (inotify) and moves the addresses within one advertisement interval.
# The track file's path may be given as the first argument (default /run/clustersync/keepalived-track).
set -eu
track_file="${1:-/run/clustersync/keepalived-track}"
case "${CLUSTERSYNC_STATE:-}" in
  Active) value=1 ;;
  *) value=0 ;;
esac
mkdir -p "$(dirname "$track_file")"
tmp="$track_file.$$"
printf '%s\n' "$value" > "$tmp"
mv -f "$tmp" "$track_file"
echo "clustersync member ${CLUSTERSYNC_MEMBER:-?}: ${CLUSTERSYNC_STATE:-?} (${CLUSTERSYNC_REASON:-}): keepalived track file $track_file = $value"
