#!/usr/bin/env bash
# Start noderun on this host and run a pod on the embedded default store.
#
# The parts exist (runtime nrc, images and snapshotter, netplug, store and
# apiserver) but the node agent (issue 8), the scheduler and the
# controllers (issue 7) do not, so this script builds the workspace and
# says plainly that it cannot run a pod yet. See the README's status table.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh

# protobuf-compiler, libprotobuf-dev (its well-known .proto files): the etcd
# store backend's client is generated at build time.
ensure_debs protobuf-compiler libprotobuf-dev
echo "== building noderun (release)"
cargo build --release --workspace --quiet

built=()
for bin in nrc netplug controlplane ctl noderun; do
  [ -x "target/release/$bin" ] && built+=("$bin")
done
# Until the node agent runs pods (issue 8), there is no cluster to start.
cat >&2 <<MSG

noderun cannot run a pod yet: there is no node agent, scheduler or
controllers. Built: ${built[*]:-nothing}.
What works today: the OCI runtime nrc, the image store and overlay
snapshotter, pod networking (netplug, also a CNI plugin), the store and the
apiserver (controlplane), all exercised by scripts/test.sh. The README's
status table says what works now.
MSG
exit 1
