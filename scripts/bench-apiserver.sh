#!/usr/bin/env bash
# Apiserver throughput and watch latency through its Unix socket, with the
# embedded store's own durable create rate beside it (every acknowledged
# write is one fsync'd commit, which bounds creates/s on both).
#
#   scripts/bench-apiserver.sh [CREATES] [WATCHERS] [STORED]   (defaults 2000 100 10000)
#
# Prints creates/s and gets/s with 1, 8 and 64 clients (one connection
# each), the delay from a create's start to each of WATCHERS watchers
# getting its event (p50/p99, next to the create's own ack latency), and
# RSS with STORED pods stored. Every run uses fresh data dirs under the
# temp dir and removes them. The etcd backend is not built yet, so there
# is no etcd column.
set -euo pipefail
cd "$(dirname "$0")/.."
creates=${1:-2000}
watchers=${2:-100}
stored=${3:-10000}

cargo build --release --quiet -p noderun-controlplane --example apiserver_bench --example store_bench
echo "== embedded store alone (durable creates)"
target/release/examples/store_bench 1 "$creates"
target/release/examples/store_bench 8 "$creates"
target/release/examples/store_bench 64 "$creates"
echo "== apiserver over its Unix socket"
target/release/examples/apiserver_bench "$creates" "$watchers" "$stored"
