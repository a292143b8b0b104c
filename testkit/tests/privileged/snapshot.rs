//! HostSnapshot: additions are seen, and gone once their guards drop.
//! Other tests (here and in other processes) change the host at the same
//! time, so these tests only look at their own resources.

use noderun_testkit::{
    assert_no_leaks_since, require_privileged, unique_name_long, CgroupGuard, CgroupLayout,
    HostSnapshot, NetnsGuard,
};
use std::path::PathBuf;

#[test]
fn sees_a_new_netns_and_its_mount_until_removed() {
    require_privileged!();
    let before = HostSnapshot::capture().expect("snapshot");
    let ns = NetnsGuard::new("noderun-testkit").expect("netns");
    let path = ns.path().to_path_buf();
    let leaks = HostSnapshot::capture().unwrap().additions_since(&before);
    assert!(leaks.netns.iter().any(|n| n == ns.name()), "{leaks}");
    assert!(leaks.mounts.contains(&path), "{leaks}");
    assert!(leaks.to_string().contains(ns.name()));
    let name = ns.name().to_string();
    drop(ns);
    let leaks = HostSnapshot::capture().unwrap().additions_since(&before);
    assert!(!leaks.netns.contains(&name), "{leaks}");
    assert!(!leaks.mounts.contains(&path), "{leaks}");
}

#[test]
fn assert_no_leaks_names_a_leaked_cgroup() {
    require_privileged!();
    let before = HostSnapshot::capture().expect("snapshot");
    let layout = CgroupLayout::detect().expect("cgroup layout");
    let dirs = layout.cgroup_dirs(&unique_name_long("noderun-testkit"), &["pids", "memory"]);
    let guard = CgroupGuard::create(dirs).expect("create cgroup");
    let leaked: PathBuf = guard.dirs()[0].clone();
    let caught = std::panic::catch_unwind(|| assert_no_leaks_since(&before));
    let payload = caught.expect_err("a leaked cgroup must fail the check");
    let message = payload.downcast_ref::<String>().expect("panic message");
    assert!(message.contains(&leaked.display().to_string()), "{message}");
    drop(guard);
    let leaks = HostSnapshot::capture().unwrap().additions_since(&before);
    assert!(!leaks.cgroups.contains(&leaked), "{leaks}");
}
