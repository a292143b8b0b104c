#!/usr/bin/env bash
# The one test command: installs what the tests need (idempotently), then
# runs the format check, clippy, the no_std build of noderun-core, the whole
# test suite (privileged tests included: run it as root), the cgroup v2 tests
# inside a qemu VM, and a short fuzz run of the protocol decoder.
#
#   scripts/test.sh            everything
#   NODERUN_SKIP_VM=1 ...      skip the qemu VM stage (it takes a few minutes)
#   NODERUN_FUZZ_SECONDS=N     length of the fuzz run (default 15; 0 skips it)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh

stage() { printf '\n== %s\n' "$*"; }
started=$(date +%s)

stage "dependencies"
# iproute2: tests inspect links and namespaces; busybox-static: the test
# image; qemu-system-x86 + cpio: the cgroup v2 VM stage.
ensure_debs iproute2 busybox-static cpio qemu-system-x86 xz-utils zstd containernetworking-plugins nftables docker-registry skopeo apache2-utils protobuf-compiler libprotobuf-dev etcd-server etcd-client

stage "cargo fmt --check"
cargo fmt --all -- --check

stage "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features --quiet -- -D warnings

stage "noderun-core without std (no_std + alloc)"
cargo build -p noderun-core --no-default-features --quiet

stage "cargo test"
cargo test --workspace --all-features

stage "netplug's CNI tests against its installed (static, musl) build"
scripts/build-static.sh --test

if [ "${NODERUN_SKIP_VM:-0}" != 1 ] && [ -x scripts/vm-test.sh ]; then
  stage "cgroup v2 tests in a qemu VM"
  # The harness self-test (ignored outside the VM), the runtime's cgroup
  # tests and nrc's container tests, on a pure cgroup v2 kernel (the root
  # moved into a tmpfs so that pivot_root works), one test at a time; a
  # test binary still running after 300 s has its tasks' kernel stacks
  # printed and is killed.
  scripts/vm-test.sh --quiet --switch-root --test-timeout 300 --timeout 900 --test-threads 1 \
    --cargo-test noderun-tests:vm_selftest \
    --cargo-test noderun-runtime:cgroups \
    --cargo-test noderun-runtime:nrc \
    -- --include-ignored
fi

fuzz_seconds=${NODERUN_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ] && [ -x scripts/fuzz.sh ]; then
  stage "fuzz the frame decoder for ${fuzz_seconds}s"
  scripts/fuzz.sh "$fuzz_seconds"
fi

stage "all passed in $(( $(date +%s) - started ))s"
