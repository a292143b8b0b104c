#!/usr/bin/env bash
# Start noderun on this host and run a pod.
#
# Builds the release binaries, starts `controlplane` (embedded store under
# /var/lib/noderun/controlplane) and the node daemon `noderun agent` as
# background daemons (PIDs in /run/noderun/*.pid, logs in /var/log/noderun/),
# imports the busybox image, runs `ctl create pod hello --image busybox --
# sleep 3600`, waits until it is Running and shows it with its IP.
# scripts/down.sh stops everything. Run as root.
#
# Settings (environment): NODERUN_NODE (node name, default the host name),
# NODERUN_POD_CIDR (default 10.88.0.0/24), NODERUN_BRIDGE (default nr0),
# NODERUN_EVICTION_HARD (the node's hard eviction thresholds; default
# kubelet's with the disk ones as 1Gi instead of 10%/15% free, which a
# development machine's disk often is not: the node would report
# DiskPressure and be tainted so that no pod is placed on it).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh

if [ "$(id -u)" -ne 0 ]; then
  echo "error: run scripts/up.sh as root (it makes namespaces, cgroups, mounts and a bridge)" >&2
  exit 1
fi

run=/run/noderun
data=/var/lib/noderun
cp_data=$data/controlplane
logs=/var/log/noderun
socket=$run/controlplane.sock
node=${NODERUN_NODE:-$(hostname | tr 'A-Z' 'a-z')}
pod_cidr=${NODERUN_POD_CIDR:-10.88.0.0/24}
bridge=${NODERUN_BRIDGE:-nr0}
eviction_hard=${NODERUN_EVICTION_HARD:-memory.available<100Mi,nodefs.available<1Gi,nodefs.inodesFree<5%,imagefs.available<1Gi,imagefs.inodesFree<5%}
bin=$PWD/target/release

# protobuf-compiler, libprotobuf-dev: the etcd store backend's client is
# generated at build time. busybox-static: the busybox image.
ensure_debs protobuf-compiler libprotobuf-dev busybox-static
echo "== building noderun (release)"
cargo build --release --quiet -p noderun-controlplane -p noderun-runtime --bins

running() { # running NAME: the daemon's recorded PID is alive and is that program
  local pidfile=$run/$1.pid pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$bin/$1"
}

wait_for() { # wait_for SECONDS WHAT COMMAND...: poll COMMAND until it succeeds
  local seconds=$1 what=$2 i
  shift 2
  for ((i = 0; i < seconds * 10; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  echo "error: $what did not happen within ${seconds}s; see $logs/" >&2
  exit 1
}

mkdir -p "$run" "$cp_data" "$logs"
chmod 0700 "$cp_data"

# Tokens: the admin's and the node's lines go in before the first start
# (the controlplane adds its controllers' and scheduler's own).
new_token() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
umask 077
if [ ! -f "$cp_data/tokens.csv" ]; then
  admin=$(new_token)
  printf '%s\n' "$admin" >"$cp_data/admin.token"
  printf '# token,identity\n%s,admin\n' "$admin" >"$cp_data/tokens.csv"
fi
if ! grep -q ",node:$node\$" "$cp_data/tokens.csv"; then
  node_token=$(new_token)
  printf '%s,node:%s\n' "$node_token" "$node" >>"$cp_data/tokens.csv"
  printf '%s\n' "$node_token" >"$data/node.token"
  # A running controlplane reads the tokens file at start only.
  if running controlplane; then
    kill "$(cat "$run/controlplane.pid")"
    wait_for 10 "controlplane stop" bash -c "! kill -0 $(cat "$run/controlplane.pid")"
  fi
fi
umask 022

if running controlplane; then
  echo "== controlplane already running (pid $(cat "$run/controlplane.pid"))"
else
  echo "== starting controlplane (log $logs/controlplane.log)"
  nohup "$bin/controlplane" --data-dir "$cp_data" --socket "$socket" \
    >>"$logs/controlplane.log" 2>&1 </dev/null &
  echo $! >"$run/controlplane.pid"
fi
ctl() { "$bin/ctl" --socket "$socket" --token-file "$cp_data/admin.token" "$@"; }
wait_for 30 "the apiserver answering" ctl get nodes

echo "== importing busybox"
scripts/make-busybox-image.sh target/images/busybox-oci >/dev/null
"$bin/noderun" --state-dir "$data" image import target/images/busybox-oci >/dev/null

# The node's settings, for scripts/down.sh (noderun reset must agree).
cat >"$run/node.env" <<ENV
NODE=$node
POD_CIDR=$pod_cidr
BRIDGE=$bridge
STATE_DIR=$data
ENV
if running noderun; then
  echo "== noderun already running (pid $(cat "$run/noderun.pid"))"
else
  echo "== starting noderun, node $node, pods in $pod_cidr (log $logs/noderun.log)"
  nohup "$bin/noderun" --state-dir "$data" agent --control-plane "$socket" \
    --token "$data/node.token" --node-name "$node" --pod-cidr "$pod_cidr" --bridge "$bridge" \
    --eviction-hard "$eviction_hard" \
    >>"$logs/noderun.log" 2>&1 </dev/null &
  echo $! >"$run/noderun.pid"
fi
node_ready() { ctl get nodes | awk -v n="$node" '$1 == n && $2 == "Ready" { found = 1 } END { exit !found }'; }
wait_for 30 "node $node Ready" node_ready

if ! ctl get pod hello >/dev/null 2>&1; then
  ctl create pod hello --image busybox -- sleep 3600
fi
pod_running() { ctl get pod hello | awk '$1 == "hello" && $3 == "Running" { found = 1 } END { exit !found }'; }
wait_for 60 "pod hello Running" pod_running
echo
ctl get pods -o wide
cat <<MSG

noderun is up: controlplane (pid $(cat "$run/controlplane.pid")) and noderun (pid $(cat "$run/noderun.pid")).

Use it with ctl (as root; it finds the local socket and admin token by itself):
  $bin/ctl get pods -o wide
  $bin/ctl create pod web --image busybox -- sleep 3600
  $bin/ctl apply -f pod.yaml          # kubectl-style manifests, ReplicaSets too
  $bin/ctl get nodes
  $bin/ctl delete pod web
Logs: $logs/controlplane.log, $logs/noderun.log; container output under $logs/pods/.
Stop everything: scripts/down.sh   (add --purge to also remove the store, tokens and images)
MSG
