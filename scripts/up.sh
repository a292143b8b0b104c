#!/usr/bin/env bash
# Start noderun on this host and run a pod on the embedded default store.
#
# Today only the foundation (object model, manifests, wire protocol) exists:
# the control plane (issue 6) and the node agent (issue 8) are not built yet,
# so this script builds the workspace, checks a sample manifest, and says
# plainly that it cannot start a cluster. See the README's status table.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== building noderun (release)"
cargo build --release --workspace --quiet

missing=()
for bin in controlplane noderun ctl; do
  [ -x "target/release/$bin" ] || missing+=("$bin")
done
if [ ${#missing[@]} -gt 0 ]; then
  cat >&2 <<MSG

noderun cannot start a cluster yet: the binaries ${missing[*]} do not exist.
What works today is the foundation: the API object model, YAML/JSON
manifests, validation and the binary wire protocol, all exercised by
scripts/test.sh. The control plane and the node agent arrive with later
work; the README's status table says what works now.
MSG
  exit 1
fi
