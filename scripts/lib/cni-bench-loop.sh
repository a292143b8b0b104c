#!/usr/bin/env bash
# Inner loop of scripts/bench-cni.sh, run inside the benchmark's "node"
# network namespace: for one plugin, ADD then DEL each of the pod
# namespaces nr-bcni-pod-<tag>-0..N-1, timing each call with bash's
# $EPOCHREALTIME (no fork for the clock), and print "ADD <us>" / "DEL <us>"
# lines. A failed call stops the loop with the plugin's output.
#
#   cni-bench-loop.sh PLUGIN CNI_PATH CONFIG_FILE TAG N
set -euo pipefail
plugin=$1 cni_path=$2 config=$3 tag=$4 n=$5

micros() { local t=${1/./}; echo $((10#$t)); }

call() { # VERB ID NETNS
  CNI_COMMAND=$1 CNI_CONTAINERID=$2 CNI_NETNS=$3 CNI_IFNAME=eth0 \
    CNI_PATH=$cni_path CNI_ARGS=IgnoreUnknown=1 "$plugin" <"$config" >/tmp/nr-bcni-out.$$ ||
    { echo "$1 $2 failed:" >&2; cat /tmp/nr-bcni-out.$$ >&2; exit 1; }
}

for ((i = 0; i < n; i++)); do
  start=$EPOCHREALTIME
  call ADD "bench-$tag-$i" "/run/netns/nr-bcni-pod-$tag-$i"
  end=$EPOCHREALTIME
  echo "ADD $(($(micros "$end") - $(micros "$start")))"
done
for ((i = 0; i < n; i++)); do
  start=$EPOCHREALTIME
  call DEL "bench-$tag-$i" "/run/netns/nr-bcni-pod-$tag-$i"
  end=$EPOCHREALTIME
  echo "DEL $(($(micros "$end") - $(micros "$start")))"
done
rm -f /tmp/nr-bcni-out.$$
