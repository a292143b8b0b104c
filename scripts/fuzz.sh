#!/usr/bin/env bash
# Fuzz the protocol's frame decoder with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh [SECONDS]     run for SECONDS (default 60)
#
# cargo-fuzz needs nightly compiler flags; this machine has the stable
# toolchain only, so RUSTC_BOOTSTRAP=1 unlocks them. AddressSanitizer is
# kept (the default) when it works; set NODERUN_FUZZ_SANITIZER=none to
# build without it.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/packages.sh
seconds=${1:-60}
ensure_cargo_tool cargo-fuzz cargo-fuzz
export RUSTC_BOOTSTRAP=1
sanitizer=${NODERUN_FUZZ_SANITIZER:-address}
corpus=fuzz/corpus/frame_decoder
mkdir -p "$corpus"
cd fuzz
cargo fuzz run --sanitizer "$sanitizer" frame_decoder "corpus/frame_decoder" -- \
  -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1 | tail -25
