#!/usr/bin/env bash
# Container start benchmark: `nrc run` vs Debian's `crun run` vs `runc run`
# on the same busybox bundle running /bin/true, interleaved in one run
# (create -> start -> wait -> delete each cycle). Reports median and p95 wall
# time per runtime, the ratios to nrc, and nrc's peak RSS.
#
#   scripts/bench-runtime.sh [CYCLES]      (default 60)
#
# Debian's crun 1.8.1 refuses this host's hybrid cgroup layout ("cgroups in
# hybrid mode not supported") while hugetlb sits on the cgroup2 mount, so for
# its turns the script mounts hugetlb and net_cls,net_prio as v1 hierarchies
# and removes them at the end. nrc and runc run on the host as it boots;
# the crun workaround is in place for the whole interleaved run so that all
# three see the same host.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh
source scripts/lib/busybox-bundle.sh
cycles=${1:-60}

ensure_debs runc crun busybox-static
cargo build --release --quiet -p noderun-runtime --bin nrc
nrc=$PWD/target/release/nrc

work=$(mktemp -d /tmp/noderun-bench-runtime.XXXXXX)
mounted=()
cleanup() {
  local m
  for rt in nrc crun runc; do
    [ -d "$work/state-$rt" ] || continue
    for id in $(ls "$work/state-$rt" 2>/dev/null); do
      case $rt in
        nrc) "$nrc" --root "$work/state-$rt" delete --force "$id" >/dev/null 2>&1 || true ;;
        *) "$rt" --root "$work/state-$rt" delete --force "$id" >/dev/null 2>&1 || true ;;
      esac
    done
  done
  for m in "${mounted[@]}"; do
    umount "$m" && rmdir "$m" || echo "warning: could not remove $m" >&2
  done
  rm -rf "$work"
}
trap cleanup EXIT

make_busybox_bundle "$work/bundle" '["/bin/true"]'

# crun's hybrid-mode workaround (see above).
if grep -q hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
  for h in hugetlb net_cls,net_prio; do
    if ! grep -q " /sys/fs/cgroup/$h cgroup " /proc/mounts; then
      mkdir -p "/sys/fs/cgroup/$h"
      mount -t cgroup -o "$h" cgroup "/sys/fs/cgroup/$h"
      mounted+=("/sys/fs/cgroup/$h")
    fi
  done
fi

python3 scripts/lib/bench_runtime.py --cycles "$cycles" --bundle "$work/bundle" --work "$work" \
  --runtime "nrc=$nrc" --runtime "crun=$(command -v crun)" --runtime "runc=$(command -v runc)"
