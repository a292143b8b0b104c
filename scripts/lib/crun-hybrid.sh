# shellcheck shell=bash
# crun_hybrid_workaround: Debian's crun 1.8.1 refuses this host's hybrid
# cgroup layout ("cgroups in hybrid mode not supported") while hugetlb sits
# on the cgroup2 mount. Mount hugetlb and net_cls,net_prio as v1
# hierarchies when that is the case, and remember them in the array
# `crun_hybrid_mounts` (the caller unmounts them at exit with
# crun_hybrid_undo). nrc and noderun cope with either layout.
crun_hybrid_mounts=()

crun_hybrid_workaround() {
  local h
  grep -q hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null || return 0
  for h in hugetlb net_cls,net_prio; do
    if ! grep -q " /sys/fs/cgroup/$h cgroup " /proc/mounts; then
      mkdir -p "/sys/fs/cgroup/$h"
      mount -t cgroup -o "$h" cgroup "/sys/fs/cgroup/$h"
      crun_hybrid_mounts+=("/sys/fs/cgroup/$h")
    fi
  done
}

crun_hybrid_undo() {
  local m
  for m in "${crun_hybrid_mounts[@]}"; do
    umount "$m" && rmdir "$m" || echo "warning: could not remove $m" >&2
  done
  crun_hybrid_mounts=()
}
