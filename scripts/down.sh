#!/usr/bin/env bash
# Stop what scripts/up.sh started: the node daemon and the controlplane (by
# the PIDs up.sh recorded under /run/noderun), then `noderun reset`: every
# pod torn down (containers, rootfs mounts, snapshots, network namespaces,
# veths and IPs, cgroups, logs), the pods' bridge and the node's cgroups
# removed; the run dir goes too. The store, tokens and images under
# /var/lib/noderun stay for the next up.sh (its pods start again) unless
# --purge is given, which removes them and the logs as well. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

purge=0
case "${1:-}" in
  --purge) purge=1 ;;
  "") ;;
  *) echo "usage: scripts/down.sh [--purge]" >&2; exit 2 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "error: run scripts/down.sh as root" >&2
  exit 1
fi

run=/run/noderun
data=/var/lib/noderun
logs=/var/log/noderun
bin=$PWD/target/release

stop() { # stop NAME: SIGTERM to the recorded PID if it is that program, then SIGKILL after 10 s
  local pidfile=$run/$1.pid pid i
  [ -f "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "/$1 "; then
    echo "== stopping $1 (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

stop noderun
stop controlplane

if [ -f "$run/node.env" ]; then
  # shellcheck disable=SC1091
  source "$run/node.env"
  echo "== tearing down the node's pods, bridge $BRIDGE and cgroups"
  "$bin/noderun" --state-dir "$STATE_DIR" reset --pod-cidr "$POD_CIDR" --bridge "$BRIDGE"
fi
rm -rf "$run"
if [ "$purge" = 1 ]; then
  echo "== removing $data and $logs"
  rm -rf "$data" "$logs"
else
  echo "kept $data (store, tokens, images); scripts/down.sh --purge removes it"
fi
