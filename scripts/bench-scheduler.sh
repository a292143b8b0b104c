#!/usr/bin/env bash
# Scheduler throughput: 10,000 pods onto 5,000 nodes, as kube-scheduler's
# scheduler_perf measures it, for three workloads (plain; required pod
# anti-affinity by hostname; node affinity + tolerations).
#
#   scripts/bench-scheduler.sh [RUNS]   (default 3)
#
# (a) The algorithm alone (noderun-core's `schedule` bench: no apiserver,
#     no binds, one thread).
# (b) End to end: a release `controlplane --no-scheduler --no-controllers`
#     on a fresh temp data dir per run; the bench program creates the
#     Node objects and the unbound pods through it, then starts the
#     scheduler (in its own process, as system:scheduler) and times until a
#     watch has seen every pod bound. RUNS runs per workload; the median is
#     printed.
#
# Every controlplane is stopped by its PID (also on failure or Ctrl-C) and
# the temp dir removed.
#
# The reference: kube-scheduler's scheduler_perf thresholds on 5,000
# nodes, about 700-800 pods/s plain and about 35 pods/s with required pod
# (anti-)affinity.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
pods=${SCHED_BENCH_PODS:-10000}
nodes=${SCHED_BENCH_NODES:-5000}

echo "== (a) the algorithm alone"
SCHED_BENCH_PODS=$pods SCHED_BENCH_NODES=$nodes \
  cargo bench --quiet -p noderun-core --bench schedule 2>/dev/null

cargo build --release --quiet -p noderun-controlplane --bin controlplane \
  --example scheduler_bench

# shellcheck source=lib/cleanup.sh
source scripts/lib/cleanup.sh
tmp=$(mktemp -d "${TMPDIR:-/tmp}/noderun-bench-scheduler.XXXXXX")
remove_on_exit "$tmp"

# Start a controlplane without scheduler and controllers on a fresh data
# dir ($1); wait until it serves.
start_controlplane() {
  local dir=$1
  mkdir -p "$dir"
  RUST_LOG=warn target/release/controlplane --data-dir "$dir" --socket "$dir/cp.sock" \
    --no-scheduler --no-controllers >"$dir/out.log" 2>&1 &
  cp_pid=$!
  stop_on_exit "$cp_pid"
  for _ in $(seq 200); do
    grep -q '^serving on' "$dir/out.log" 2>/dev/null && return 0
    if ! kill -0 "$cp_pid" 2>/dev/null; then
      echo "controlplane exited at start:" >&2
      cat "$dir/out.log" >&2
      exit 1
    fi
    sleep 0.05
  done
  echo "controlplane did not start serving; its log:" >&2
  cat "$dir/out.log" >&2
  exit 1
}

echo
echo "== (b) end to end: $pods pods onto $nodes nodes through the apiserver, binds included ($(nproc) cores)"
for workload in plain anti node; do
  rates=()
  for run in $(seq "$runs"); do
    dir=$tmp/$workload-$run
    start_controlplane "$dir"
    line=$(target/release/examples/scheduler_bench --data-dir "$dir" --pods "$pods" \
      --nodes "$nodes" "$workload" | grep ' run 1:')
    stop_now "$cp_pid"
    rm -rf "$dir"
    echo "${line/run 1:/run $run:}"
    label=${line%% run 1:*}
    rates+=("$(echo "$line" | awk '{for (i = 1; i <= NF; i++) if ($(i+1) == "pods/s") {print $i; exit}}')")
  done
  median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
  printf '%-28s median %7s pods/s over %s runs\n' "$label" "$median" "$runs"
done

echo
echo "reference: kube-scheduler scheduler_perf thresholds on 5,000 nodes:" \
  "~700-800 pods/s plain, ~35 pods/s with required pod affinity"
