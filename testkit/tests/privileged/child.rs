//! ChildGuard: the process is killed and reaped (no zombie left) on drop,
//! on panic, and for a raw pid.

use crate::support::{pid_exists, run_panicking};
use noderun_testkit::ChildGuard;
use std::process::Command;

fn sleeper() -> std::process::Child {
    Command::new("sleep")
        .arg("1000")
        .spawn()
        .expect("spawn sleep")
}

#[test]
fn killed_and_reaped_on_drop() {
    let guard = ChildGuard::new(sleeper());
    let pid = guard.pid();
    assert!(pid_exists(pid));
    drop(guard);
    assert!(
        !pid_exists(pid),
        "pid {pid} is still there (running or zombie)"
    );
}

#[test]
fn killed_and_reaped_when_the_test_panics() {
    let pid = run_panicking(|out| {
        let guard = ChildGuard::new(sleeper());
        *out = Some(guard.pid());
        panic!("test body fails");
    });
    assert!(!pid_exists(pid), "pid {pid} is still there");
}

#[test]
fn raw_pid_is_killed_and_reaped() {
    let child = sleeper();
    let pid = child.id() as i32;
    // Dropping a std Child neither kills nor reaps it: the pid is ours.
    drop(child);
    ChildGuard::from_pid(pid).cleanup().expect("cleanup");
    assert!(!pid_exists(pid), "pid {pid} is still there");
}

#[test]
fn a_child_already_waited_for_is_fine() {
    let mut guard = ChildGuard::new(Command::new("true").spawn().expect("spawn true"));
    let status = guard.child_mut().expect("std child").wait().expect("wait");
    assert!(status.success());
    guard.cleanup().expect("cleanup after wait");
}

#[test]
fn a_raw_pid_that_is_gone_is_fine() {
    // pid_max is at most 2^22, so no process can have this pid.
    let mut raw = ChildGuard::from_pid(1 << 22);
    assert!(raw.child_mut().is_none());
    raw.cleanup().expect("cleanup of a gone pid");
}
