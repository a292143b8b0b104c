//! [`ChildGuard`]: a child process that is killed with SIGKILL and reaped
//! when the guard goes out of scope, so a failing test leaves neither a
//! running process nor a zombie.

use crate::{report, sys, Error};
use std::process::Child;

#[derive(Debug)]
enum Owned {
    Std(Child),
    Raw(i32),
}

/// Kills (SIGKILL) and reaps its process on drop.
#[derive(Debug)]
#[must_use = "the process is killed when the guard is dropped"]
pub struct ChildGuard {
    owned: Owned,
    armed: bool,
}

impl ChildGuard {
    /// Guard a child started with `std::process::Command`.
    pub fn new(child: Child) -> ChildGuard {
        ChildGuard {
            owned: Owned::Std(child),
            armed: true,
        }
    }

    /// Guard a process started some other way (fork, clone). It must be a
    /// child of this process that nothing else reaps, or the pid could be
    /// reused by an unrelated process before the guard kills it.
    pub fn from_pid(pid: i32) -> ChildGuard {
        ChildGuard {
            owned: Owned::Raw(pid),
            armed: true,
        }
    }

    /// The guarded pid.
    pub fn pid(&self) -> i32 {
        match &self.owned {
            // Linux pids fit in an i32 (pid_max is at most 2^22).
            Owned::Std(child) => child.id() as i32,
            Owned::Raw(pid) => *pid,
        }
    }

    /// The std child, for reading its pipes or waiting on it; `None` for a
    /// guard made from a raw pid. Waiting through it is fine: the guard
    /// then finds nothing left to kill.
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        match &mut self.owned {
            Owned::Std(child) => Some(child),
            Owned::Raw(_) => None,
        }
    }

    /// Kill and reap the process now.
    pub fn cleanup(mut self) -> Result<(), Error> {
        self.release()
    }

    fn release(&mut self) -> Result<(), Error> {
        if !std::mem::replace(&mut self.armed, false) {
            return Ok(());
        }
        let pid = self.pid();
        match &mut self.owned {
            Owned::Std(child) => {
                // Both are no-ops returning Ok once std has reaped the child.
                child.kill().map_err(|e| kill_error(pid, e))?;
                child.wait().map(drop).map_err(|e| wait_error(pid, e))
            }
            Owned::Raw(pid) => {
                sys::kill(*pid)?;
                sys::reap(*pid)
            }
        }
    }
}

fn errno_of(e: &std::io::Error) -> nix::errno::Errno {
    nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))
}

fn kill_error(pid: i32, e: std::io::Error) -> Error {
    Error::Kill {
        pid,
        signal: "SIGKILL",
        errno: errno_of(&e),
    }
}

fn wait_error(pid: i32, e: std::io::Error) -> Error {
    Error::Wait {
        pid,
        errno: errno_of(&e),
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Err(err) = self.release() {
            report::drop_failed("ChildGuard", &err);
        }
    }
}
