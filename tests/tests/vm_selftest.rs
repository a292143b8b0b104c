//! Self-test of `scripts/vm-test.sh`: inside its VM the host is pure cgroup
//! v2 with the controllers enabled, and a root process can make, limit, join,
//! leave and remove a cgroup.
//!
//! Ignored by a plain `cargo test` (the development host has a hybrid cgroup
//! layout); run it in the VM with
//! `scripts/vm-test.sh --cargo-test noderun-tests:vm_selftest -- --ignored`.
//! Run with `--ignored` outside the VM it checks nothing and says so.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = "/sys/fs/cgroup";

fn in_vm() -> bool {
    std::env::var_os("NODERUN_IN_VM").is_some_and(|v| v == "1")
}

fn read(path: impl AsRef<Path>) -> String {
    let path = path.as_ref();
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn write(path: impl AsRef<Path>, value: &str) {
    let path = path.as_ref();
    fs::write(path, value).unwrap_or_else(|e| panic!("write {value:?} to {}: {e}", path.display()));
}

/// This process's cgroup v2 path, from the `0::/path` line of /proc/self/cgroup.
fn own_cgroup() -> String {
    let text = read("/proc/self/cgroup");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "pure cgroup v2 has exactly one hierarchy: {text:?}"
    );
    lines[0]
        .strip_prefix("0::")
        .unwrap_or_else(|| panic!("not a cgroup v2 line: {text:?}"))
        .to_string()
}

/// Moves the process back to where it started and removes the child cgroup,
/// also when an assertion fails half-way.
struct Child {
    dir: PathBuf,
    home: PathBuf,
}

impl Drop for Child {
    fn drop(&mut self) {
        let pid = std::process::id().to_string();
        let _ = fs::write(self.home.join("cgroup.procs"), &pid);
        let _ = fs::remove_dir(&self.dir);
    }
}

#[test]
#[ignore = "needs a pure cgroup v2 host: run it in the VM (scripts/vm-test.sh)"]
fn cgroup2_is_unified_with_controllers() {
    if !in_vm() {
        println!(
            "vm_selftest: NODERUN_IN_VM is not set, so this is not the test VM: checked nothing"
        );
        return;
    }

    // 1. /sys/fs/cgroup is a cgroup2 mount, and no v1 hierarchy is mounted.
    let mountinfo = read("/proc/self/mountinfo");
    let mut fstype_at_root = None;
    for line in mountinfo.lines() {
        // "id parent major:minor root mountpoint options... - fstype source superoptions"
        let fields: Vec<&str> = line.split_whitespace().collect();
        let dash = fields
            .iter()
            .position(|f| *f == "-")
            .expect("mountinfo separator");
        let (mountpoint, fstype) = (fields[4], fields[dash + 1]);
        assert_ne!(fstype, "cgroup", "a cgroup v1 hierarchy is mounted: {line}");
        if mountpoint == ROOT {
            fstype_at_root = Some(fstype.to_string());
        }
    }
    assert_eq!(
        fstype_at_root.as_deref(),
        Some("cgroup2"),
        "{ROOT} must be cgroup2:\n{mountinfo}"
    );
    let home = own_cgroup();
    println!("vm_selftest: {ROOT} is cgroup2; this process is in {home:?}");

    // 2. The controllers exist and are enabled for the root's children.
    let controllers = read(format!("{ROOT}/cgroup.controllers"));
    let subtree = read(format!("{ROOT}/cgroup.subtree_control"));
    println!(
        "vm_selftest: controllers: {}; enabled: {}",
        controllers.trim(),
        subtree.trim()
    );
    for want in ["memory", "pids", "cpu", "io"] {
        assert!(
            controllers.split_whitespace().any(|c| c == want),
            "no {want} in cgroup.controllers: {controllers:?}"
        );
        assert!(
            subtree.split_whitespace().any(|c| c == want),
            "{want} not in cgroup.subtree_control: {subtree:?}"
        );
    }

    // 3. Make a child cgroup and set limits on it.
    let child = Child {
        dir: Path::new(ROOT).join(format!("noderun-vm-selftest-{}", std::process::id())),
        home: Path::new(ROOT).join(home.trim_start_matches('/')),
    };
    fs::create_dir(&child.dir).unwrap_or_else(|e| panic!("mkdir {}: {e}", child.dir.display()));
    let child_controllers = read(child.dir.join("cgroup.controllers"));
    assert!(
        child_controllers.contains("memory") && child_controllers.contains("pids"),
        "{child_controllers:?}"
    );
    write(child.dir.join("memory.max"), "67108864");
    assert_eq!(read(child.dir.join("memory.max")).trim(), "67108864");
    write(child.dir.join("pids.max"), "64");
    assert_eq!(read(child.dir.join("pids.max")).trim(), "64");

    // 4. Move in: the process (all its threads) is accounted there.
    write(
        child.dir.join("cgroup.procs"),
        &std::process::id().to_string(),
    );
    let name = child
        .dir
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(own_cgroup(), format!("/{name}"));
    let pids: u64 = read(child.dir.join("pids.current")).trim().parse().unwrap();
    let memory: u64 = read(child.dir.join("memory.current"))
        .trim()
        .parse()
        .unwrap();
    assert!(pids >= 1, "pids.current = {pids}");
    println!("vm_selftest: in {name}: pids.current={pids} memory.current={memory}");

    // 5. The pids limit is enforced: at pids.max, fork fails.
    write(child.dir.join("pids.max"), &pids.to_string());
    let spawn = Command::new("/bin/true").status();
    assert!(
        spawn.is_err(),
        "spawn at pids.max should fail, got {spawn:?}"
    );
    let events = read(child.dir.join("pids.events"));
    assert!(
        !events.contains("max 0"),
        "pids.events should count the refused fork: {events:?}"
    );
    write(child.dir.join("pids.max"), "max");
    let status = Command::new("/bin/true")
        .status()
        .expect("spawn after lifting pids.max");
    assert!(status.success());

    // 6. Move out and remove it.
    write(
        child.home.join("cgroup.procs"),
        &std::process::id().to_string(),
    );
    assert_eq!(own_cgroup(), home);
    fs::remove_dir(&child.dir).unwrap_or_else(|e| panic!("rmdir {}: {e}", child.dir.display()));
    assert!(!child.dir.exists());
    println!("vm_selftest: made, limited, joined, left and removed {name}");
}
