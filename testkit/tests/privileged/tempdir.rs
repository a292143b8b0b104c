//! TempDir: removed with whatever is mounted inside, and never through a
//! mount into someone else's files.

use crate::support::{mounts_under, run_panicking};
use noderun_testkit::{require_privileged, MountGuard, TempDir};
use std::path::PathBuf;

#[test]
fn removed_with_contents_on_drop() {
    let dir = TempDir::new("noderun-testkit").expect("tempdir");
    let path = dir.path().to_path_buf();
    assert!(path.starts_with("/tmp"), "{}", path.display());
    std::fs::create_dir_all(dir.join("a/b")).expect("mkdir");
    std::fs::write(dir.join("a/b/f"), "x").expect("write");
    drop(dir);
    assert!(!path.exists());
}

#[test]
fn new_in_uses_the_parent_and_cleanup_reports_success() {
    let parent = TempDir::new("noderun-testkit").expect("parent");
    let child = TempDir::new_in(parent.path(), "inner").expect("child");
    let path = child.path().to_path_buf();
    assert_eq!(path.parent(), Some(parent.path()));
    child.cleanup().expect("cleanup");
    assert!(!path.exists());
}

/// A panicking test that left stacked and nested mounts inside its
/// directory, the guards for them forgotten.
fn leave_mounts_and_panic(out: &mut Option<PathBuf>) {
    let dir = TempDir::new("noderun-testkit").expect("tempdir");
    *out = Some(dir.path().to_path_buf());
    std::fs::create_dir(dir.join("a")).expect("mkdir a");
    std::mem::forget(MountGuard::tmpfs(dir.join("a")).expect("tmpfs a"));
    std::mem::forget(MountGuard::tmpfs(dir.join("a")).expect("tmpfs a again"));
    std::fs::create_dir(dir.join("a/b")).expect("mkdir a/b");
    std::mem::forget(MountGuard::tmpfs(dir.join("a/b")).expect("tmpfs a/b"));
    std::mem::forget(MountGuard::tmpfs(dir.path()).expect("tmpfs on the dir"));
    assert_eq!(mounts_under(dir.path()).len(), 4);
    panic!("test body fails with mounts inside");
}

#[test]
fn unmounts_then_removes_when_the_test_panics() {
    require_privileged!();
    let path = run_panicking(leave_mounts_and_panic);
    assert_eq!(mounts_under(&path), Vec::<PathBuf>::new());
    assert!(!path.exists(), "{} is left", path.display());
}

#[test]
fn does_not_delete_through_a_bind_mount() {
    require_privileged!();
    let outside = TempDir::new("noderun-testkit").expect("outside");
    let keep = outside.join("keep");
    std::fs::write(&keep, "precious").expect("write");
    let inside = TempDir::new("noderun-testkit").expect("inside");
    std::fs::create_dir(inside.join("bind")).expect("mkdir");
    std::mem::forget(MountGuard::bind(outside.path(), inside.join("bind")).expect("bind"));
    inside.cleanup().expect("cleanup");
    assert_eq!(std::fs::read_to_string(&keep).expect("read"), "precious");
}
