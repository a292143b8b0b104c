#!/usr/bin/env bash
# Inner loop of scripts/bench-cni.sh, run inside the benchmark's "node"
# network namespace: for one plugin, ADD then DEL each of the pod
# namespaces nr-bcni-pod-<tag>-0..N-1, PARALLEL calls at a time, timing
# each call with bash's $EPOCHREALTIME (no fork for the clock), and print
# "ADD <us>" / "DEL <us>" lines. A failed call prints the plugin's output
# on stderr and the whole loop fails.
#
#   cni-bench-loop.sh PLUGIN CNI_PATH CONFIG_FILE TAG N PARALLEL
set -euo pipefail
plugin=$1 cni_path=$2 config=$3 tag=$4 n=$5 parallel=$6

micros() { local t=${1/./}; echo $((10#$t)); }

timed() { # VERB INDEX
  local id="bench-$tag-$2" out start end
  out=$(mktemp /tmp/nr-bcni-out.XXXXXX)
  start=$EPOCHREALTIME
  if ! CNI_COMMAND=$1 CNI_CONTAINERID=$id CNI_NETNS=/run/netns/nr-bcni-pod-$tag-$2 \
    CNI_IFNAME=eth0 CNI_PATH=$cni_path CNI_ARGS=IgnoreUnknown=1 "$plugin" <"$config" >"$out"; then
    echo "$1 $id failed: $(cat "$out")" >&2
    rm -f "$out"
    return 1
  fi
  end=$EPOCHREALTIME
  rm -f "$out"
  echo "$1 $(($(micros "$end") - $(micros "$start")))"
}

for verb in ADD DEL; do
  pids=()
  for ((i = 0; i < n; i++)); do
    timed "$verb" "$i" &
    pids+=($!)
    if ((${#pids[@]} == parallel)); then
      for pid in "${pids[@]}"; do wait "$pid"; done
      pids=()
    fi
  done
  for pid in "${pids[@]}"; do wait "$pid"; done
done
