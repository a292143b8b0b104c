//! NetnsGuard: a real, named network namespace that `run_in` enters from a
//! separate thread, gone after drop or a panic.

use crate::support::{mounts_under, run_panicking};
use noderun_testkit::{mount_points, require_privileged, NetnsGuard, NETNS_RUN_DIR};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The inode of the calling thread's network namespace.
fn current_netns() -> u64 {
    std::fs::metadata("/proc/thread-self/ns/net")
        .expect("stat own netns")
        .ino()
}

fn assert_gone(path: &Path) {
    assert!(!path.exists(), "{} is left", path.display());
    assert!(
        mounts_under(path).is_empty(),
        "{} is still mounted",
        path.display()
    );
}

#[test]
fn run_in_enters_the_namespace_and_leaves_the_caller_alone() {
    require_privileged!();
    let before = current_netns();
    let ns = NetnsGuard::new("noderun-testkit").expect("netns");
    assert_eq!(ns.path(), Path::new(NETNS_RUN_DIR).join(ns.name()));
    let pinned = std::fs::metadata(ns.path()).expect("stat pinned").ino();
    let inside = ns.run_in(current_netns).expect("run_in");
    assert_ne!(inside, before);
    assert_eq!(inside, pinned);
    assert_eq!(current_netns(), before, "the calling thread moved");
}

#[test]
fn namespaces_are_distinct_and_pinned_as_nsfs_mounts() {
    require_privileged!();
    let a = NetnsGuard::new("noderun-testkit").expect("netns a");
    let b = NetnsGuard::new("noderun-testkit").expect("netns b");
    assert_ne!(
        a.run_in(current_netns).unwrap(),
        b.run_in(current_netns).unwrap()
    );
    let mounts = mount_points().expect("mountinfo");
    let fstype_of = |p: &Path| {
        let entry = mounts.iter().rev().find(|m| m.mount_point == p);
        entry.map(|m| m.fstype.clone())
    };
    assert_eq!(fstype_of(a.path()).as_deref(), Some("nsfs"));
    assert!(
        fstype_of(Path::new(NETNS_RUN_DIR)).is_some(),
        "/run/netns is no mount point"
    );
}

#[test]
fn run_in_returns_values_and_resumes_panics() {
    require_privileged!();
    let ns = NetnsGuard::new("noderun-testkit").expect("netns");
    let borrowed = String::from("borrowed");
    assert_eq!(ns.run_in(|| borrowed.len()).unwrap(), 8);
    let caught = std::panic::catch_unwind(|| ns.run_in(|| panic!("inside the netns")));
    assert!(caught.is_err(), "the closure's panic was swallowed");
}

#[test]
fn removed_on_drop_and_by_cleanup() {
    require_privileged!();
    let ns = NetnsGuard::new("noderun-testkit").expect("netns");
    let path = ns.path().to_path_buf();
    drop(ns);
    assert_gone(&path);
    let ns = NetnsGuard::new("noderun-testkit").expect("netns");
    let path = ns.path().to_path_buf();
    ns.cleanup().expect("cleanup");
    assert_gone(&path);
}

#[test]
fn removed_when_the_test_panics() {
    require_privileged!();
    let path: PathBuf = run_panicking(|out| {
        let ns = NetnsGuard::new("noderun-testkit").expect("netns");
        *out = Some(ns.path().to_path_buf());
        panic!("test body fails");
    });
    assert_gone(&path);
}

#[test]
fn an_existing_name_is_refused_and_kept() {
    require_privileged!();
    let ns = NetnsGuard::new("noderun-testkit").expect("netns");
    let err = NetnsGuard::named(ns.name()).expect_err("duplicate name");
    assert!(err.to_string().contains(ns.name()), "{err}");
    let inode = std::fs::metadata(ns.path()).expect("still pinned").ino();
    assert_eq!(ns.run_in(current_netns).unwrap(), inode);
}
