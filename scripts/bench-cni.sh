#!/usr/bin/env bash
# CNI plugin latency: the `netplug` binary vs Debian's reference `bridge` +
# `host-local` plugins (containernetworking-plugins), same configuration
# shape, same machine, one run. Each plugin gets its own "node" network
# namespace (its bridge lives there, never on the host) and N pod
# namespaces; every ADD, then every DEL, is timed as a runtime would run
# it (posix_spawn of the plugin binary with CNI_* env and the config on
# stdin, until it exits: scripts/lib/cni-bench-loop.py). Both keep their
# IPAM state (dataDir) in one temp dir under NODERUN_BENCH_DIR (default
# /run, where netplug keeps it by default).
# Reports ADD and DEL medians and p95 per plugin and netplug's ratio,
# first one call at a time, then PARALLEL at a time (as a node starting
# many pods at once).
#
#   scripts/bench-cni.sh [N] [PARALLEL]     (defaults 100 and 8)
#
# Needs root. Namespaces are created outside the timed part and removed
# on exit, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh
n=${1:-100}
parallel=${2:-8}

ensure_debs containernetworking-plugins iproute2
# netplug as it is installed: the static-pie build (scripts/build-static.sh).
netplug=$(scripts/build-static.sh | grep '/netplug$')
reference=/usr/lib/cni/bridge

work=$(mktemp -d "${NODERUN_BENCH_DIR:-/run}/noderun-bench-cni.XXXXXX")
cleanup() {
  local tag i
  for tag in np ref; do
    ip netns del "nr-bcni-node-$tag" 2>/dev/null || true
    for ((i = 0; i < n; i++)); do ip netns del "nr-bcni-pod-$tag-$i" 2>/dev/null || true; done
  done
  rm -rf "$work"
}
trap cleanup EXIT

config() { # TAG
  cat <<JSON
{"cniVersion":"1.0.0","name":"bench","type":"bridge","bridge":"nrbcni$1",
 "isGateway":true,"ipam":{"type":"host-local","subnet":"10.248.0.0/16","dataDir":"$work/state-$1"}}
JSON
}

setup() { # TAG
  local tag=$1 i
  ip netns add "nr-bcni-node-$tag"
  for ((i = 0; i < n; i++)); do ip netns add "nr-bcni-pod-$tag-$i"; done
  config "$tag" >"$work/config-$tag.json"
}

run() { # TAG PLUGIN CNI_PATH PARALLEL
  local tag=$1
  ip netns exec "nr-bcni-node-$tag" scripts/lib/cni-bench-loop.py \
    "$2" "$3" "$work/config-$tag.json" "$tag" "$n" "$4" >"$work/times-$tag"
  [ "$(wc -l <"$work/times-$tag")" -eq $((2 * n)) ] || { echo "$tag: calls failed" >&2; exit 1; }
}

stat() { # TAG VERB -> "median p95" in microseconds
  awk -v verb="$2" '$1 == verb { print $2 }' "$work/times-$1" | sort -n |
    awk '{ v[NR] = $1 } END { m = v[int((NR + 1) / 2)]; p = v[int(NR * 0.95 + 0.999)]; print m, p }'
}

setup np
setup ref
report() { # PARALLEL
  echo
  echo "CNI plugin latency, $n pods each, $1 call(s) at a time (microseconds; exec of the plugin included)"
  printf '%-28s %10s %10s %10s %10s\n' plugin "ADD med" "ADD p95" "DEL med" "DEL p95"
  local tag am ap dm dp name
  for tag in np ref; do
    read -r am ap < <(stat "$tag" ADD)
    read -r dm dp < <(stat "$tag" DEL)
    name=$([ "$tag" = np ] && echo "netplug" || echo "bridge + host-local (ref)")
    printf '%-28s %10s %10s %10s %10s\n' "$name" "$am" "$ap" "$dm" "$dp"
    eval "${tag}_add=$am ${tag}_del=$dm"
  done
  awk -v a="$np_add" -v ra="$ref_add" -v d="$np_del" -v rd="$ref_del" 'BEGIN {
    printf "netplug / reference: ADD %.2f, DEL %.2f (lower is faster)\n", a / ra, d / rd }'
}
for p in 1 "$parallel"; do
  run np "$netplug" "$(dirname "$netplug")" "$p"
  run ref "$reference" /usr/lib/cni "$p"
  report "$p"
done
