//! Crash-safe file placement shared by the image store and the
//! snapshotter: temporary names that no other writer (thread or process)
//! picks, and "write a temp file, fsync it, rename it over the target,
//! fsync the directory" so a reader sees the old file or the new one,
//! never a torn one. Temporary names carry the writer's pid so a later
//! sweep can tell an abandoned temp file from one still being written.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The prefix of every temporary name made here.
pub const TEMP_PREFIX: &str = ".tmp-";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh name `.tmp-<pid>-<n>-<tag>` in `dir`, unique across the threads
/// of this process and across live processes.
pub fn temp_path(dir: &Path, tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    dir.join(format!("{TEMP_PREFIX}{}-{n}-{tag}", std::process::id()))
}

/// The pid in a name made by [`temp_path`], if `name` is one.
pub fn temp_owner(name: &str) -> Option<u32> {
    name.strip_prefix(TEMP_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()
}

/// True when `name` is a temporary name whose writer has exited, so the
/// file is garbage.
pub fn is_abandoned_temp(name: &str) -> bool {
    match temp_owner(name) {
        Some(pid) => !Path::new("/proc").join(pid.to_string()).exists(),
        None => false,
    }
}

/// Create a new file at a temporary name in `dir`, mode 0644.
pub fn create_temp(dir: &Path, tag: &str) -> io::Result<(File, PathBuf)> {
    let path = temp_path(dir, tag);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(&path)?;
    Ok((file, path))
}

/// fsync the directory `dir`, making renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replace `target` with `bytes` atomically and durably.
pub fn write_file(target: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let (mut file, temp) = create_temp(dir, "write")?;
    let result = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&temp, target));
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_unique_and_carry_the_pid() {
        let a = temp_path(Path::new("/x"), "blob");
        let b = temp_path(Path::new("/x"), "blob");
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap();
        assert_eq!(temp_owner(name), Some(std::process::id()));
        assert!(!is_abandoned_temp(name), "our own temp file is live");
        assert_eq!(temp_owner("sha256"), None);
        assert!(!is_abandoned_temp("0123abcd"));
        // pid_max is at most 2^22, so this pid cannot be running.
        assert!(is_abandoned_temp(".tmp-99999999-0-blob"));
    }
}
