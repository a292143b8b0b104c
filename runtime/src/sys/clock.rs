//! The monotonic clock as a number: CLOCK_MONOTONIC is one clock for every
//! process on the host, so a time taken here can be set against one taken
//! by another process (the pod start record the daemon logs, read by the
//! podstart benchmark). `std::time::Instant` reads the same clock but does
//! not show its value.

use nix::time::{clock_gettime, ClockId};

/// Microseconds on CLOCK_MONOTONIC.
pub fn monotonic_micros() -> u64 {
    // clock_gettime fails only on a bad clock id or pointer; CLOCK_MONOTONIC
    // and nix's own timespec are neither.
    let now = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always readable");
    now.tv_sec() as u64 * 1_000_000 + now.tv_nsec() as u64 / 1_000
}
