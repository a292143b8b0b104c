#!/usr/bin/env bash
# Container start benchmark: `nrc run` vs Debian's `crun run` vs `runc run`
# on the same busybox bundle running /bin/true, interleaved in one run
# (create -> start -> wait -> delete each cycle). Reports median and p95 wall
# time per runtime, the ratios to nrc, and each runtime's peak RSS.
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
source scripts/lib/crun-hybrid.sh
cycles=${1:-60}

ensure_debs runc crun busybox-static
# nrc as it is installed: the static-pie build (scripts/build-static.sh).
nrc=$(scripts/build-static.sh | grep '/nrc$')

work=$(mktemp -d /tmp/noderun-bench-runtime.XXXXXX)
ro_mount=""
cleanup() {
  for rt in nrc nrc-ro crun runc; do
    [ -d "$work/state-$rt" ] || continue
    for id in $(ls "$work/state-$rt" 2>/dev/null); do
      case $rt in
        nrc|nrc-ro) "$nrc" --root "$work/state-$rt" delete --force "$id" >/dev/null 2>&1 || true ;;
        *) "$rt" --root "$work/state-$rt" delete --force "$id" >/dev/null 2>&1 || true ;;
      esac
    done
  done
  crun_hybrid_undo
  if [ -n "$ro_mount" ]; then
    umount "$ro_mount" || echo "warning: could not unmount $ro_mount" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT

make_busybox_bundle "$work/bundle" '["/bin/true"]'
make_busybox_bundle "$work/rss-bundle" '["/bin/sleep", "1"]'

# crun's hybrid-mode workaround (see above).
crun_hybrid_workaround

# nrc re-executes itself from a read-only view of its binary before it
# starts a container (the /proc/self/exe defence) unless the binary already
# sits on a read-only mount; "nrc-ro" is the same binary installed that way.
mkdir "$work/ro"
cp "$nrc" "$work/ro/nrc"
mount --bind "$work/ro" "$work/ro"
ro_mount=$work/ro
mount -o remount,bind,ro "$work/ro"

python3 scripts/lib/bench_runtime.py --cycles "$cycles" --bundle "$work/bundle" \
  --rss-bundle "$work/rss-bundle" --work "$work" \
  --runtime "nrc=$nrc" --runtime "nrc-ro=$work/ro/nrc" --runtime "crun=$(command -v crun)" --runtime "runc=$(command -v runc)"
