#!/usr/bin/env bash
# Builds the node's exec'd binaries, `nrc` (the OCI runtime) and `netplug`
# (the CNI plugin), as static executables: no dynamic loader, no shared
# libraries to map and relocate at every start. Container runtimes and CNI
# plugins are exec'd once per container or pod, so this is the build to
# install. Prints the two paths.
#
#   scripts/build-static.sh            (NODERUN_STATIC_LIBC=musl|glibc for netplug)
#   scripts/build-static.sh --test     runs netplug's CNI tests against its
#                                      static build (scripts/test.sh does)
#
# nrc: glibc, static-pie. netplug: musl when the toolchain can target it
# (the rust-std of x86_64-unknown-linux-musl, added with rustup here), else
# glibc. Why musl: a glibc program, static or dynamic, runs glibc's CPU
# feature and cache detection before main — dozens of CPUID instructions
# (leaf 4 once per cache level, for three queries) — and in a VM every CPUID
# traps to the hypervisor: on this nested VM that was ~0.3 ms of a 1.65 ms
# netplug ADD (perf: intel_check_word, handle_intel, update_active). musl
# asks the CPU nothing at start. The musl build is also position-dependent
# (as Go's default executables, e.g. the reference CNI plugins are):
# nothing to relocate at start. nrc stays on glibc: its musl build hangs in
# `create` (not investigated yet).
set -euo pipefail
cd "$(dirname "$0")/.."
host=$(rustc -vV | sed -n 's/^host: //p')
musl_target="${host%%-*}-unknown-linux-musl"

musl_ready() {
  [ -d "$(rustc --print sysroot)/lib/rustlib/$musl_target" ] ||
    { command -v rustup >/dev/null && rustup target add "$musl_target" >&2; }
}

libc=${NODERUN_STATIC_LIBC:-}
if [ -z "$libc" ]; then
  if musl_ready; then libc=musl; else
    echo "build-static: no rust-std for $musl_target; netplug is built on glibc" >&2
    libc=glibc
  fi
elif [ "$libc" = musl ]; then
  musl_ready || { echo "build-static: NODERUN_STATIC_LIBC=musl, but $musl_target is not installable" >&2; exit 1; }
fi

# static_cargo TARGET FLAGS CARGO-ARGS...: flags given for an explicit
# --target reach only the target's artifacts, not build scripts or proc
# macros (which must stay dynamic host programs).
static_cargo() {
  local target=$1 flags=$2
  env "CARGO_TARGET_$(echo "$target" | tr 'a-z.-' 'A-Z__')_RUSTFLAGS=$flags" \
    cargo "${@:3}" --release --target "$target"
}
glibc_flags="-C target-feature=+crt-static"
case $libc in
  musl) np_target=$musl_target; np_flags="-C relocation-model=static" ;;
  glibc) np_target=$host; np_flags=$glibc_flags ;;
  *) echo "build-static: NODERUN_STATIC_LIBC must be musl or glibc, not '$libc'" >&2; exit 1 ;;
esac

if [ "${1:-}" = --test ]; then
  echo "build-static: netplug's CNI tests against its $libc build ($np_target)"
  static_cargo "$np_target" "$np_flags" test -p noderun-netplug --test cni
  exit 0
fi
static_cargo "$host" "$glibc_flags" build --quiet -p noderun-runtime --bin nrc
static_cargo "$np_target" "$np_flags" build --quiet -p noderun-netplug --bin netplug
for path in "$PWD/target/$host/release/nrc" "$PWD/target/$np_target/release/netplug"; do
  # A static executable has no program interpreter (PT_INTERP).
  ! readelf -lW "$path" | grep -q 'INTERP' ||
    { echo "build-static: $path is not a static executable" >&2; exit 1; }
  echo "$path"
done
