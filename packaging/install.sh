#!/usr/bin/env bash
# Installs a published clustersync as a systemd service (docs/install.md).
#
#   packaging/install.sh [--root DIR] [--from PUBLISH_DIR]
#
#   --from DIR  a published clustersync (the directory holding the clustersync binary, plugins/ and models/). Without
#               it the script publishes one first: dotnet publish with the self-contained linux-x64 profile into
#               artifacts/publish/linux-x64.
#   --root DIR  install under DIR instead of / (a staging root, like DESTDIR): every path below is prefixed with DIR,
#               no user is created, no file changes owner and systemd is not told.
#
# Places:
#   /usr/lib/clustersync/                    the published files (replaced as a whole on each install)
#   /usr/bin/clustersync                     a relative symlink to ../lib/clustersync/clustersync
#   /usr/lib/systemd/system/clustersync.service
#   /etc/clustersync/node.json               from packaging/node.example.json, only if there is none (never overwritten)
#   /etc/clustersync/node.example.json       the example, always refreshed
#   /etc/clustersync/cluster.key             a new cluster key (0600), only if there is none: copy ONE key to every member
#   /etc/clustersync/control.token           a new control endpoint token (0600), only if there is none
#   /var/lib/clustersync/                    state: the epoch file, telemetry (0750)
# Installing into / as root also creates the system user and group `clustersync` (if missing), gives it the key, the
# token and /var/lib/clustersync, and runs `systemctl daemon-reload` when systemd runs. It never starts the service.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
root=""
from=""

usage() { sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; }
fail() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] && [ -n "$2" ] || fail "--root: expected a directory"; root="$2"; shift 2 ;;
    --root=*) root="${1#--root=}"; [ -n "$root" ] || fail "--root: expected a directory"; shift ;;
    --from) [ $# -ge 2 ] && [ -n "$2" ] || fail "--from: expected a published clustersync directory"; from="$2"; shift 2 ;;
    --from=*) from="${1#--from=}"; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage; fail "unknown argument '$1'" ;;
  esac
done

if [ -n "$root" ]; then
  mkdir -p "$root" || fail "--root: cannot create '$root'"
  root="$(cd "$root" && pwd)"
  [ "$root" = "/" ] && root=""
fi

if [ -z "$from" ]; then
  from="$repo/artifacts/publish/linux-x64"
  echo "publishing clustersync (self-contained, linux-x64) into $from"
  dotnet publish "$repo/src/ClusterSync.Cli/ClusterSync.Cli.csproj" -c Release -p:PublishProfile=linux-x64 -o "$from" -nologo -v q
fi

[ -d "$from" ] || fail "--from: no such directory '$from'"
from="$(cd "$from" && pwd)"
[ -x "$from/clustersync" ] || fail "--from: '$from' holds no clustersync executable (publish src/ClusterSync.Cli first; docs/install.md)"
[ -d "$from/plugins" ] || fail "--from: '$from' has no plugins/ directory (the shipped plugins are published with the CLI)"
[ -f "$from/models/lifetime.zip" ] || fail "--from: '$from' has no models/lifetime.zip (the shipped model)"

lib="$root/usr/lib/clustersync"
bin="$root/usr/bin"
units="$root/usr/lib/systemd/system"
etc="$root/etc/clustersync"
state="$root/var/lib/clustersync"
as_system=0
if [ -z "$root" ] && [ "$(id -u)" -eq 0 ]; then
  as_system=1
fi

# The program: a fresh copy next to the old one, then swapped in (a running node keeps its open files).
mkdir -p "$(dirname "$lib")" "$bin" "$units"
rm -rf "$lib.new"
mkdir -p "$lib.new"
cp -a "$from/." "$lib.new/"
mkdir -p "$lib.new/docs"
cp "$repo/docs/install.md" "$lib.new/docs/install.md"
chmod -R u=rwX,go=rX "$lib.new"
rm -rf "$lib.old"
if [ -e "$lib" ]; then mv "$lib" "$lib.old"; fi
mv "$lib.new" "$lib"
rm -rf "$lib.old"
ln -sfn ../lib/clustersync/clustersync "$bin/clustersync"
install -m 0644 "$here/clustersync.service" "$units/clustersync.service"

# Configuration: the operator's files are never replaced.
install -d -m 0750 "$etc"
install -m 0644 "$here/node.example.json" "$etc/node.example.json"
if [ ! -e "$etc/node.json" ]; then
  install -m 0640 "$here/node.example.json" "$etc/node.json"
  echo "wrote $etc/node.json (from the example: edit the member addresses before production)"
fi
if [ ! -e "$etc/cluster.key" ]; then
  "$lib/clustersync" keygen --out "$etc/cluster.key" >/dev/null
  echo "wrote $etc/cluster.key (a new cluster key: copy this one file to every member)"
fi
if [ ! -e "$etc/control.token" ]; then
  (umask 077; head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '=' > "$etc/control.token"; echo >> "$etc/control.token")
  echo "wrote $etc/control.token (the control endpoint's bearer token)"
fi
chmod 0600 "$etc/cluster.key" "$etc/control.token"
install -d -m 0750 "$state"

if [ "$as_system" -eq 1 ]; then
  if ! getent group clustersync >/dev/null; then
    groupadd --system clustersync
  fi
  if ! getent passwd clustersync >/dev/null; then
    useradd --system --gid clustersync --home-dir /var/lib/clustersync --no-create-home --shell /usr/sbin/nologin \
      --comment "ClusterSync node" clustersync
    echo "created the system user clustersync"
  fi
  chown clustersync:clustersync "$etc/cluster.key" "$etc/control.token" "$state"
  chgrp clustersync "$etc" "$etc/node.json"
  if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
  fi
else
  echo "staging root $root: no user created, owners unchanged (run as root without --root to install for real)"
fi

echo "installed clustersync into ${root:-/}: $lib, $bin/clustersync, $units/clustersync.service, $etc, $state"
if [ "$as_system" -eq 1 ]; then
  echo "next: edit /etc/clustersync/node.json, then: systemctl enable --now clustersync; clustersync status --token-file /etc/clustersync/control.token"
fi
