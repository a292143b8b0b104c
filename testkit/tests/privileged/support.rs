//! Shared helpers for the privileged tests.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// Run `body`, which must panic (standing for a failing test), and return
/// what it sent out before panicking.
pub fn run_panicking<T>(body: impl FnOnce(&mut Option<T>)) -> T {
    let mut out = None;
    let result = catch_unwind(AssertUnwindSafe(|| body(&mut out)));
    assert!(result.is_err(), "the test body was meant to panic");
    out.expect("the test body panicked before recording its resource")
}

/// Mount points at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    noderun_testkit::mount_points_under(dir).expect("read mountinfo")
}

/// True when a process with this pid exists (running or zombie).
pub fn pid_exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}
