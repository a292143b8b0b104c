//! [`CgroupGuard`]: cgroup directories (one per v1 controller, or one on
//! cgroup v2) that are emptied and removed on drop. Emptying thaws frozen
//! cgroups (a frozen process cannot die), writes cgroup.kill where v2 has
//! it, and SIGKILLs every pid listed in cgroup.procs through the whole
//! subtree until none is left; then the directories are removed deepest
//! first. The guard refuses cgroup roots and any cgroup holding the test
//! process itself, so a wrong path cannot kill the host or the test.

use crate::{mountinfo, report, sys, Error};
use std::io::{ErrorKind, Write as _};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// How long processes get to leave after SIGKILL, and rmdir to stop
/// reporting EBUSY.
const EMPTY_TIMEOUT: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(10);
const EBUSY: i32 = nix::errno::Errno::EBUSY as i32;

/// Cgroup directories that are emptied and removed on drop.
#[derive(Debug)]
#[must_use = "the cgroups are removed when the guard is dropped"]
pub struct CgroupGuard {
    dirs: Vec<PathBuf>,
    armed: bool,
}

impl CgroupGuard {
    /// Create each directory (its parent must exist) and guard them all.
    /// If one cannot be made, those already made are removed.
    pub fn create<I, P>(dirs: I) -> Result<CgroupGuard, Error>
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        let mut guard = CgroupGuard::adopt(Vec::<PathBuf>::new())?;
        for dir in dirs {
            let dir = dir.into();
            check_below_cgroup_mount(&dir)?;
            std::fs::create_dir(&dir).map_err(|e| Error::io("mkdir", &dir, e))?;
            guard.dirs.push(dir);
        }
        Ok(guard)
    }

    /// Guard directories made by the code under test. Each must be strictly
    /// below a cgroup mount point; it need not exist yet.
    pub fn adopt<I, P>(dirs: I) -> Result<CgroupGuard, Error>
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        let dirs: Vec<PathBuf> = dirs.into_iter().map(Into::into).collect();
        for dir in &dirs {
            check_below_cgroup_mount(dir)?;
        }
        Ok(CgroupGuard { dirs, armed: true })
    }

    /// The guarded directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// Kill everything in the cgroups and remove them now.
    pub fn cleanup(mut self) -> Result<(), Error> {
        self.release()
    }

    /// Remove every directory, going on past failures so that one bad
    /// controller does not leave the others behind; the first error wins.
    fn release(&mut self) -> Result<(), Error> {
        if !std::mem::replace(&mut self.armed, false) {
            return Ok(());
        }
        let mut first_error = None;
        for dir in &self.dirs {
            if let Err(err) = remove_cgroup(dir) {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        if let Err(err) = self.release() {
            report::drop_failed("CgroupGuard", &err);
        }
    }
}

/// Refuse anything but an absolute, `..`-free path strictly below a cgroup
/// or cgroup2 mount point.
fn check_below_cgroup_mount(dir: &Path) -> Result<(), Error> {
    let not_a_cgroup = || Error::NotACgroup { path: dir.into() };
    let plain = dir.is_absolute() && dir.components().all(|c| c != Component::ParentDir);
    if !plain {
        return Err(not_a_cgroup());
    }
    let mounts = mountinfo::mount_points()?;
    let nearest = mounts
        .iter()
        .filter(|m| dir.starts_with(&m.mount_point))
        .max_by_key(|m| m.mount_point.components().count())
        .ok_or_else(not_a_cgroup)?;
    let is_cgroup = matches!(nearest.fstype.as_str(), "cgroup" | "cgroup2");
    if is_cgroup && nearest.mount_point != dir {
        Ok(())
    } else {
        Err(not_a_cgroup())
    }
}

fn remove_cgroup(dir: &Path) -> Result<(), Error> {
    if !dir.exists() {
        return Ok(());
    }
    let tree = subtree(dir)?;
    kill_all(dir, &tree)?;
    let deadline = Instant::now() + EMPTY_TIMEOUT;
    for path in tree.iter().rev() {
        rmdir_when_idle(path, deadline)?;
    }
    Ok(())
}

/// `dir` and every cgroup below it, parents before children.
fn subtree(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut found = vec![dir.to_path_buf()];
    let mut next = 0;
    while let Some(current) = found.get(next).cloned() {
        next += 1;
        let entries = match std::fs::read_dir(&current) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("list", &current, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("list", &current, e))?;
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                found.push(entry.path());
            }
        }
    }
    Ok(found)
}

/// Thaw, then SIGKILL every process in `tree` until none is listed.
fn kill_all(dir: &Path, tree: &[PathBuf]) -> Result<(), Error> {
    let own = std::process::id();
    for cgroup in tree {
        // A frozen process does not act on SIGKILL until thawed.
        write_if_present(&cgroup.join("freezer.state"), "THAWED")?;
        write_if_present(&cgroup.join("cgroup.freeze"), "0")?;
    }
    let deadline = Instant::now() + EMPTY_TIMEOUT;
    loop {
        let pids = pids_in(tree)?;
        if pids.iter().any(|&pid| pid as u32 == own) {
            return Err(Error::OwnCgroup {
                path: dir.into(),
                pid: own,
            });
        }
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(Error::CgroupBusy {
                path: dir.into(),
                pids,
            });
        }
        // cgroup.kill (v2, Linux 5.14+) also catches processes forking
        // faster than they can be listed and signalled one by one.
        write_if_present(&dir.join("cgroup.kill"), "1")?;
        for pid in pids {
            sys::kill(pid)?;
        }
        std::thread::sleep(POLL);
    }
}

/// Every pid listed in the cgroup.procs files of `tree`.
fn pids_in(tree: &[PathBuf]) -> Result<Vec<i32>, Error> {
    let mut pids = Vec::new();
    for cgroup in tree {
        let procs = cgroup.join("cgroup.procs");
        let text = match std::fs::read_to_string(&procs) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io("read", &procs, e)),
        };
        pids.extend(
            text.lines()
                .filter_map(|line| line.trim().parse::<i32>().ok()),
        );
    }
    Ok(pids)
}

/// Write `value` to an existing control file; a missing one is skipped.
/// (Never O_CREAT: cgroupfs answers EACCES to it, not ENOENT.)
fn write_if_present(file: &Path, value: &str) -> Result<(), Error> {
    let opened = std::fs::OpenOptions::new().write(true).open(file);
    let written = opened.and_then(|mut f| f.write_all(value.as_bytes()));
    match written {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::io("write", file, e)),
        _ => Ok(()),
    }
}

/// rmdir `path`, retrying while the kernel still reports it busy (a
/// process that was killed may take a moment to leave).
fn rmdir_when_idle(path: &Path, deadline: Instant) -> Result<(), Error> {
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(Error::io("rmdir", path, e)),
        }
    }
}
