//! Disk usage of a snapshot directory: the blocks its files occupy and
//! the number of inodes, each hardlinked inode counted once. The walk
//! never follows symlinks and stays on the directory's filesystem.

use super::SnapshotError;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Space a snapshot takes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of disk blocks allocated.
    pub bytes: u64,
    /// Inodes (files, directories, links, nodes), the root included.
    pub inodes: u64,
}

/// Measure the tree at `root`.
pub fn measure(root: &Path) -> Result<Usage, SnapshotError> {
    let io_err = |path: &Path, source| SnapshotError::Io {
        op: "measure",
        path: path.into(),
        source,
    };
    let root_meta = std::fs::symlink_metadata(root).map_err(|e| io_err(root, e))?;
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    let mut todo: Vec<(PathBuf, std::fs::Metadata)> = vec![(root.into(), root_meta.clone())];
    while let Some((path, meta)) = todo.pop() {
        if meta.dev() != root_meta.dev() || !seen.insert(meta.ino()) {
            continue;
        }
        usage.inodes += 1;
        usage.bytes += meta.blocks() * 512;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(|e| io_err(&path, e))? {
                let entry = entry.map_err(|e| io_err(&path, e))?;
                let child = entry.path();
                let child_meta =
                    std::fs::symlink_metadata(&child).map_err(|e| io_err(&child, e))?;
                todo.push((child, child_meta));
            }
        }
    }
    Ok(usage)
}
