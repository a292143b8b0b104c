//! MountGuard: the mount is gone after drop, after a panic, and after an
//! explicit cleanup.

use crate::support::{mounts_under, run_panicking};
use noderun_testkit::{require_privileged, MountGuard, TempDir};
use std::path::PathBuf;

fn mount_dir(dir: &TempDir) -> PathBuf {
    let target = dir.join("m");
    std::fs::create_dir(&target).expect("mkdir");
    target
}

#[test]
fn unmounted_on_drop() {
    require_privileged!();
    let dir = TempDir::new("noderun-testkit").expect("tempdir");
    let target = mount_dir(&dir);
    let guard = MountGuard::tmpfs(&target).expect("tmpfs");
    assert_eq!(guard.path(), target);
    assert_eq!(mounts_under(&target), vec![target.clone()]);
    drop(guard);
    assert!(mounts_under(&target).is_empty());
}

#[test]
fn unmounted_when_the_test_panics() {
    require_privileged!();
    let dir = TempDir::new("noderun-testkit").expect("tempdir");
    let target = mount_dir(&dir);
    run_panicking(|out| {
        let _guard = MountGuard::tmpfs(&target).expect("tmpfs");
        *out = Some(());
        panic!("test body fails");
    });
    assert!(mounts_under(&target).is_empty());
}

#[test]
fn bind_cleanup_reports_success_and_tolerates_a_gone_mount() {
    require_privileged!();
    let dir = TempDir::new("noderun-testkit").expect("tempdir");
    let target = mount_dir(&dir);
    let guard = MountGuard::bind(dir.path(), &target).expect("bind");
    assert_eq!(mounts_under(&target), vec![target.clone()]);
    guard.cleanup().expect("cleanup");
    assert!(mounts_under(&target).is_empty());
    // Nothing is mounted there any more: adopting and cleaning is a no-op.
    MountGuard::adopt(&target)
        .cleanup()
        .expect("cleanup of nothing");
}

#[test]
fn mount_failure_names_the_target() {
    require_privileged!();
    let err = MountGuard::bind(
        "/nonexistent-noderun".as_ref(),
        "/nonexistent-noderun-target",
    )
    .expect_err("nothing to bind");
    let text = err.to_string();
    assert!(text.contains("/nonexistent-noderun-target"), "{text}");
}
