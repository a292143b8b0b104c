#!/usr/bin/env bash
# The netplug benchmark: ADD and DEL of netplug against Debian's reference
# bridge + host-local, as CNI binaries in one interleaved run
# (scripts/bench-cni.sh: one call at a time, then PARALLEL at a time), then
# netplug in-process through PodNetwork, as the node agent calls it
# (cargo bench --bench attach). IPAM state lives on the same filesystem for
# all of them: NODERUN_BENCH_DIR, default /run (netplug's default home for
# it; a tmpfs on most hosts, ext4 on this VM).
#
#   scripts/bench-netplug.sh [N] [PARALLEL]     (defaults 100 and 8)
#
# Needs root; everything it makes is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bench-cni.sh "${1:-100}" "${2:-8}"
echo
echo "netplug in-process (PodNetwork), 100 pods:"
NODERUN_BENCH_DIR=${NODERUN_BENCH_DIR:-/run} \
  cargo bench --quiet -p noderun-netplug --bench attach 2>/dev/null | grep -E '^(IPAM state|ADD|DEL|IPAM store)'
