#!/usr/bin/env bash
# Pod start latency (the Kubernetes SLI): from the create request to the
# watch event that shows the pod Running, through the real `controlplane`
# and `noderun agent` (release builds, busybox already imported): 100 pods
# one after another, then bursts of 10 and 100 created at once. After each
# of those, in the same run, the same work done by Debian's crun and the
# containernetworking-plugins bridge + host-local (a netns, CNI ADD, crun
# create + start of a busybox bundle) as the floor to beat
# (tests/benches/podstart/). Prints one table, ours against the floor
# (p50, p99, a burst's time until all were Running, ratios), then each
# side's phases: for noderun schedule, dispatch, queue, sandbox, network,
# rootfs, container create and start (timed inside the daemon, logged as
# one record per pod) and status; then noderun's RSS and idle CPU.
#
#   scripts/bench-podstart.sh [N]      (N sequential pods, default 100)
#
# Needs root. Everything it makes (cluster, pods, the floor's namespaces,
# bridge, containers and files) is removed on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh
source scripts/lib/busybox-bundle.sh
source scripts/lib/cleanup.sh
source scripts/lib/crun-hybrid.sh
n=${1:-100}

ensure_debs crun runc containernetworking-plugins busybox-static

work=$(mktemp -d /tmp/noderun-bench-podstart.XXXXXX)
remove_on_exit "$work"
call_on_exit crun_hybrid_undo
crun_hybrid_workaround

# The floor's bundle: Debian's busybox-static, config from `runc spec`.
make_busybox_bundle "$work/bundle" '["sleep", "3600"]'

echo "== building (release)"
cargo build --release --bins --quiet
echo "== load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
NODERUN_FLOOR_CRUN=$(command -v crun) \
NODERUN_FLOOR_CNI=/usr/lib/cni \
NODERUN_FLOOR_BUNDLE=$work/bundle \
  cargo bench --quiet -p noderun-tests --bench podstart -- "$n"
echo "== load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
