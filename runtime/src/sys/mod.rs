//! Thin wrappers around raw syscalls, one file per concern. Each returns a
//! typed error carrying the arguments (path, flags, pid); callers never see
//! `libc` or a bare errno.

pub mod clock;
pub mod fsstat;
pub mod mount;
pub mod ns;
pub mod selfexe;
pub mod spawn;
pub mod trampoline;
