//! `statvfs(2)`: a filesystem's size and what is free of it (blocks and
//! inodes), for the node's disk pressure signals.

use std::path::{Path, PathBuf};

/// A filesystem's space and inodes, as an unprivileged user sees them
/// (the blocks reserved for root are not counted as free).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsUsage {
    pub bytes_total: u64,
    pub bytes_available: u64,
    pub inodes_total: u64,
    pub inodes_free: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("statvfs {path}: {source}")]
pub struct FsStatError {
    pub path: PathBuf,
    #[source]
    pub source: nix::Error,
}

/// The usage of the filesystem that holds `path`.
pub fn fs_usage(path: &Path) -> Result<FsUsage, FsStatError> {
    let v = nix::sys::statvfs::statvfs(path).map_err(|source| FsStatError {
        path: path.into(),
        source,
    })?;
    let fragment = v.fragment_size() as u64;
    Ok(FsUsage {
        bytes_total: (v.blocks() as u64).saturating_mul(fragment),
        bytes_available: (v.blocks_available() as u64).saturating_mul(fragment),
        inodes_total: v.files() as u64,
        inodes_free: v.files_available() as u64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_real_filesystem_and_names_a_missing_path() {
        let u = fs_usage(Path::new("/")).unwrap();
        assert!(
            u.bytes_total > 0 && u.bytes_available <= u.bytes_total,
            "{u:?}"
        );
        let e = fs_usage(Path::new("/no/such/noderun/dir")).unwrap_err();
        assert!(e.to_string().contains("/no/such/noderun/dir"), "{e}");
    }
}
