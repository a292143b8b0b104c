#!/usr/bin/env bash
# Apiserver throughput and watch latency through its Unix socket on the
# embedded store and on the etcd backend in the same run, each store's own
# durable create rate beside it, and etcd's own put rate from etcdctl.
#
#   scripts/bench-apiserver.sh [CREATES] [WATCHERS] [STORED]   (defaults 2000 100 10000)
#
# For each store: creates/s and gets/s with 1, 8 and 64 clients (one
# connection each), the delay from a create's start to each of WATCHERS
# watchers getting its event (p50/p99, next to the create's own ack
# latency), and RSS with STORED pods stored (etcd's own RSS is printed
# apart). Every acknowledged write is durable on both: the embedded store
# fsyncs each group commit, etcd its raft log.
#
# etcd: Debian's etcd-server, started here on free 127.0.0.1 ports with a
# data dir under the temp dir, and stopped by its PID at the end, also on
# failure or Ctrl-C (trap). Each bench program writes under a key prefix
# of its own, so they all start from an empty keyspace.
#
# etcd's own put rate: `etcdctl check perf --load=l`, which runs for 60 s
# with 500 clients putting keys under /etcdctl-check-perf/ (removed after),
# rate-limited at 8,000 puts/s: below that, its "Throughput" is what etcd
# sustains on this host. A loop of `etcdctl put` would measure etcdctl's
# process start, not etcd. Skip it with NODERUN_BENCH_NO_ETCDCTL=1.
set -euo pipefail
cd "$(dirname "$0")/.."
creates=${1:-2000}
watchers=${2:-100}
stored=${3:-10000}

# shellcheck source=lib/packages.sh
source scripts/lib/packages.sh
ensure_debs protobuf-compiler libprotobuf-dev etcd-server etcd-client

cargo build --release --quiet -p noderun-controlplane --features etcd \
  --example apiserver_bench --example store_bench

# shellcheck source=lib/cleanup.sh
source scripts/lib/cleanup.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/noderun-bench-apiserver.XXXXXX")
remove_on_exit "$tmp"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
client_port=$(free_port)
peer_port=$(free_port)
endpoint=127.0.0.1:$client_port
/usr/bin/etcd --name bench --data-dir "$tmp/etcd" \
  --listen-client-urls "http://$endpoint" --advertise-client-urls "http://$endpoint" \
  --listen-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
  --initial-cluster "bench=http://127.0.0.1:$peer_port" \
  --logger zap --log-level warn >"$tmp/etcd.log" 2>&1 &
etcd_pid=$!
stop_on_exit "$etcd_pid"
export ETCDCTL_API=3
for _ in $(seq 100); do
  etcdctl --endpoints="$endpoint" endpoint health >/dev/null 2>&1 && break
  if ! kill -0 "$etcd_pid" 2>/dev/null; then
    echo "etcd exited at start:" >&2
    cat "$tmp/etcd.log" >&2
    exit 1
  fi
  sleep 0.2
done
etcdctl --endpoints="$endpoint" endpoint health >/dev/null 2>&1 || {
  echo "etcd on $endpoint does not answer; its log:" >&2
  cat "$tmp/etcd.log" >&2
  exit 1
}
echo "etcd $(etcd --version | head -1 | awk '{print $3}') on $endpoint (pid $etcd_pid)"

echo "== each store alone (durable creates)"
for writers in 1 8 64; do
  target/release/examples/store_bench "$writers" "$creates"
  target/release/examples/store_bench --store "etcd://$endpoint/store-bench-$writers" "$writers" "$creates"
done
echo "== apiserver over its Unix socket, embedded store"
target/release/examples/apiserver_bench "$creates" "$watchers" "$stored"
echo "== apiserver over its Unix socket, etcd store"
target/release/examples/apiserver_bench --store "etcd://$endpoint/apiserver-bench" \
  "$creates" "$watchers" "$stored"
echo "etcd RSS (all of the above stored): $(awk '/^VmRSS:/ {printf "%d MiB", $2 / 1024}' "/proc/$etcd_pid/status")"
if [ -z "${NODERUN_BENCH_NO_ETCDCTL:-}" ]; then
  echo "== etcd's own put rate: etcdctl check perf --load=l (60 s, 500 clients, capped at 8000/s)"
  # Its verdict lines only (PASS/FAIL against the 8000/s target), not its
  # progress bar.
  etcdctl --endpoints="$endpoint" check perf --load=l 2>&1 | tr '\r' '\n' |
    grep -E 'Throughput|Slowest|Stddev' || true
fi
