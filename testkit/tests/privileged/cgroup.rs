//! CgroupGuard: processes in the cgroups (nested, frozen) are killed and
//! the directories removed on drop and on panic; roots and the test's own
//! cgroup are refused.

use crate::support::run_panicking;
use noderun_testkit::{
    require_privileged, unique_name_long, CgroupGuard, CgroupLayout, ChildGuard, Error,
};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One test cgroup's directories on this host: memory, pids and freezer on
/// v1 (plus the controller-less cgroup2 of a hybrid host), one dir on v2.
fn test_cgroup_dirs() -> Vec<PathBuf> {
    let layout = CgroupLayout::detect().expect("cgroup layout");
    let name = unique_name_long("noderun-testkit");
    let mut dirs = layout.cgroup_dirs(&name, &["memory", "pids", "freezer"]);
    if let CgroupLayout::Hybrid { unified, .. } = &layout {
        dirs.push(unified.join(&name));
    }
    dirs
}

fn sleeper() -> ChildGuard {
    ChildGuard::new(
        Command::new("sleep")
            .arg("1000")
            .spawn()
            .expect("spawn sleep"),
    )
}

/// Move `pid` into each of `dirs` (one per hierarchy).
fn enter(dirs: &[PathBuf], pid: i32) {
    for dir in dirs {
        std::fs::write(dir.join("cgroup.procs"), pid.to_string()).expect("enter cgroup");
    }
}

fn assert_killed(child: &mut ChildGuard) {
    let status = child.child_mut().expect("std child").wait().expect("wait");
    assert_eq!(status.signal(), Some(9), "{status:?}");
}

fn assert_removed(dirs: &[PathBuf]) {
    for dir in dirs {
        assert!(!dir.exists(), "{} is left", dir.display());
    }
}

#[test]
fn kills_members_and_removes_dirs_on_drop() {
    require_privileged!();
    let mut child = sleeper();
    let guard = CgroupGuard::create(test_cgroup_dirs()).expect("create cgroups");
    let dirs = guard.dirs().to_vec();
    enter(&dirs, child.pid());
    drop(guard);
    assert_killed(&mut child);
    assert_removed(&dirs);
}

#[test]
fn kills_through_nested_children_when_the_test_panics() {
    require_privileged!();
    let mut child = sleeper();
    let dirs = run_panicking(|out| {
        let guard = CgroupGuard::create(test_cgroup_dirs()).expect("create cgroups");
        let nested: Vec<PathBuf> = guard.dirs().iter().map(|d| d.join("a/b")).collect();
        for dir in &nested {
            std::fs::create_dir_all(dir).expect("mkdir nested");
        }
        enter(&nested, child.pid());
        *out = Some(guard.dirs().to_vec());
        panic!("test body fails");
    });
    assert_killed(&mut child);
    assert_removed(&dirs);
}

#[test]
fn kills_frozen_members() {
    require_privileged!();
    let mut child = sleeper();
    let guard = CgroupGuard::create(test_cgroup_dirs()).expect("create cgroups");
    let dirs = guard.dirs().to_vec();
    enter(&dirs, child.pid());
    let mut froze = false;
    for dir in &dirs {
        for (file, value) in [("freezer.state", "FROZEN"), ("cgroup.freeze", "1")] {
            let control = dir.join(file);
            if control.exists() {
                std::fs::write(&control, value).expect("freeze");
                froze = true;
            }
        }
    }
    assert!(froze, "no freezer on this host: {dirs:?}");
    guard.cleanup().expect("cleanup");
    assert_killed(&mut child);
    assert_removed(&dirs);
}

#[test]
fn refuses_roots_and_paths_outside_cgroupfs() {
    require_privileged!();
    let layout = CgroupLayout::detect().expect("cgroup layout");
    let mut refused: Vec<PathBuf> = layout.v1_controllers().into_values().collect();
    refused.extend(layout.unified_root().map(Path::to_path_buf));
    refused.push("/tmp/noderun-not-a-cgroup".into());
    refused.push("relative/noderun".into());
    if let Some(root) = layout.unified_root() {
        refused.push(root.join("x/../.."));
    }
    for path in refused {
        let err = CgroupGuard::adopt([&path]).expect_err("must be refused");
        assert!(
            matches!(&err, Error::NotACgroup { path: p } if *p == path),
            "{err}"
        );
    }
}

/// On v1 a single thread can be moved, which puts the test process in the
/// cgroup; the guard must refuse rather than SIGKILL the test.
#[test]
fn refuses_the_cgroup_holding_this_process() {
    require_privileged!();
    let layout = CgroupLayout::detect().expect("cgroup layout");
    let Some(mount) = layout.v1_controllers().get("pids").cloned() else {
        eprintln!("no v1 pids controller: a v2 host cannot move one thread; checked on v1 only");
        return;
    };
    let guard = CgroupGuard::create([mount.join(unique_name_long("noderun-testkit"))])
        .expect("create cgroup");
    let dir = guard.dirs()[0].clone();
    let err = with_thread_in(&mount, &dir, || guard.cleanup().expect_err("refused"));
    assert!(matches!(err, Error::OwnCgroup { pid, .. } if pid == std::process::id()));
    // The refused cleanup left the directory; remove it now the thread is out.
    CgroupGuard::adopt([&dir])
        .expect("adopt")
        .cleanup()
        .expect("cleanup");
    assert_removed(&[dir]);
}

/// Run `f` while a helper thread of this process sits in the v1 cgroup
/// `dir` (below `mount`), then move the thread back.
fn with_thread_in<T>(mount: &Path, dir: &Path, f: impl FnOnce() -> T) -> T {
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|scope| {
        scope.spawn(move || {
            let tid = std::fs::read_link("/proc/thread-self").expect("thread-self");
            let tid = tid.file_name().expect("tid").to_string_lossy().into_owned();
            let home = own_v1_cgroup(mount);
            std::fs::write(dir.join("tasks"), &tid).expect("move thread in");
            entered_tx.send(()).expect("signal");
            // Move back whether or not the main side panicked.
            let _ = done_rx.recv();
            std::fs::write(home.join("tasks"), &tid).expect("move thread back");
        });
        entered_rx.recv().expect("helper entered");
        let result = f();
        drop(done_tx);
        result
    })
}

/// This thread's cgroup directory in the v1 hierarchy mounted at `mount`.
fn own_v1_cgroup(mount: &Path) -> PathBuf {
    let text = std::fs::read_to_string("/proc/thread-self/cgroup").expect("read own cgroup");
    let controller = mount
        .file_name()
        .expect("controller")
        .to_string_lossy()
        .into_owned();
    let line = text
        .lines()
        .find(|l| {
            l.split(':')
                .nth(1)
                .is_some_and(|c| c.split(',').any(|x| x == controller))
        })
        .expect("own cgroup line");
    let relative = line
        .splitn(3, ':')
        .nth(2)
        .expect("path")
        .trim_start_matches('/');
    mount.join(relative)
}
