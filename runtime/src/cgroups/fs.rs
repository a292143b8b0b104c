//! Reading and writing cgroup control files, with errors that name the file.

use super::CgroupError;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Io {
        op: "write",
        path: path.into(),
        source,
    })
}

/// `path` opened for writing, close-on-exec.
pub fn open_write(path: &Path) -> Result<std::fs::File, CgroupError> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|source| CgroupError::Io {
            op: "open",
            path: path.into(),
            source,
        })
}

/// The directory `path` opened (O_PATH, close-on-exec), as clone3's
/// CLONE_INTO_CGROUP wants it.
pub fn open_dir(path: &Path) -> Result<std::fs::File, CgroupError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(path)
        .map_err(|source| CgroupError::Io {
            op: "open",
            path: path.into(),
            source,
        })
}

pub fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "read",
        path: path.into(),
        source,
    })
}

pub fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    let text = read(path)?;
    parse_u64(path, text.trim())
}

/// A limit file that holds a number or `max`.
pub fn read_limit(path: &Path) -> Result<Option<u64>, CgroupError> {
    let text = read(path)?;
    match text.trim() {
        "max" => Ok(None),
        n => parse_u64(path, n).map(Some),
    }
}

pub fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.parse().map_err(|_| CgroupError::Parse {
        path: path.into(),
        content: text.into(),
    })
}

/// The value of `key` in a flat keyed file (`memory.events`, `cpu.stat`).
pub fn keyed(path: &Path, key: &str) -> Result<Option<u64>, CgroupError> {
    let text = read(path)?;
    for line in text.lines() {
        if let Some((k, v)) = line.split_once(' ') {
            if k == key {
                return parse_u64(path, v.trim()).map(Some);
            }
        }
    }
    Ok(None)
}

pub fn create_dir(path: &Path) -> Result<(), CgroupError> {
    std::fs::create_dir_all(path).map_err(|source| CgroupError::Io {
        op: "create",
        path: path.into(),
        source,
    })
}

/// Remove a cgroup directory and its child cgroups, deepest first. A cgroup
/// directory can only be removed with rmdir (its control files cannot be
/// unlinked), and rmdir fails with EBUSY while processes remain.
pub fn remove_tree(path: &Path) -> Result<(), CgroupError> {
    let entries = match std::fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(CgroupError::Io {
                op: "list",
                path: path.into(),
                source,
            })
        }
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&entry.path())?;
        }
    }
    retry(Duration::from_millis(500), || {
        match std::fs::remove_dir(path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            // Processes that were just killed leave the cgroup a moment later.
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => Ok(false),
            Err(source) => Err(CgroupError::Io {
                op: "remove",
                path: path.into(),
                source,
            }),
        }
    })
    .map_err(|e| match e {
        CgroupError::Timeout { .. } => CgroupError::Timeout {
            path: path.into(),
            what: "removal (processes still inside)",
            waited_ms: 500,
        },
        other => other,
    })
}

/// Every pid in `cgroup.procs` of `path` and of its descendants.
pub fn pids_in_tree(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let mut pids = Vec::new();
    let mut stack: Vec<PathBuf> = vec![path.into()];
    while let Some(dir) = stack.pop() {
        let procs = dir.join("cgroup.procs");
        let text = match std::fs::read_to_string(&procs) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(CgroupError::Io {
                    op: "read",
                    path: procs,
                    source,
                })
            }
        };
        for line in text.lines() {
            pids.push(parse_u64(&procs, line.trim())? as i32);
        }
        if let Ok(entries) = std::fs::read_dir(&dir) {
            stack.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    Ok(pids)
}

/// Call `step` until it returns true or `limit` passes, sleeping briefly
/// (growing from 100 µs) between calls.
pub fn retry(
    limit: Duration,
    mut step: impl FnMut() -> Result<bool, CgroupError>,
) -> Result<(), CgroupError> {
    let start = Instant::now();
    let mut pause = Duration::from_micros(100);
    loop {
        if step()? {
            return Ok(());
        }
        if start.elapsed() > limit {
            return Err(CgroupError::Timeout {
                path: PathBuf::new(),
                what: "wait",
                waited_ms: limit.as_millis() as u64,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(10));
    }
}

/// SIGKILL a pid, ignoring one that is already gone.
pub fn kill(pid: i32) {
    // Best effort: ESRCH (already exited) is the expected race.
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::SIGKILL);
}
