//! The image records: which name points at which manifest, kept in one
//! small JSON file (`images.json`) replaced atomically on every change.
//! Writers take an exclusive lock file so that two processes adding images
//! at once both land; readers need no lock (they see the old file or the
//! new one). Names are normalized image references
//! (`docker.io/library/busybox:latest`).

use super::atomic;
use super::digest::Digest;
use super::lockfile::{FileLock, LockMode};
use super::ImageError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FILE: &str = "images.json";
const LOCK: &str = "images.lock";
const VERSION: u32 = 1;

/// One named image: the manifest it points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImageRecord {
    /// The normalized reference, such as `docker.io/library/busybox:latest`.
    pub name: String,
    /// The manifest's digest.
    pub manifest: Digest,
    /// The manifest's media type (OCI or docker v2 schema 2).
    pub media_type: String,
    /// The manifest's size in bytes.
    pub size: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    version: u32,
    images: BTreeMap<String, ImageRecord>,
}

/// The record file of one image store.
#[derive(Debug, Clone)]
pub struct Records {
    file: PathBuf,
    lock: PathBuf,
}

impl Records {
    /// Records kept under `root`.
    pub fn new(root: &Path) -> Records {
        Records {
            file: root.join(FILE),
            lock: root.join(LOCK),
        }
    }

    /// Every record, by name.
    pub fn load(&self) -> Result<BTreeMap<String, ImageRecord>, ImageError> {
        let bytes = match std::fs::read(&self.file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
            Err(source) => return Err(ImageError::io("read", &self.file, source)),
        };
        let parsed: RecordFile =
            serde_json::from_slice(&bytes).map_err(|source| ImageError::Records {
                path: self.file.clone(),
                source,
            })?;
        Ok(parsed.images)
    }

    /// Apply `change` to the records under the writers' lock and save the
    /// result atomically; returns what `change` returned.
    pub fn update<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, ImageRecord>) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let _lock = FileLock::acquire(&self.lock, LockMode::Exclusive)?;
        let mut images = self.load()?;
        let out = change(&mut images)?;
        let file = RecordFile {
            version: VERSION,
            images,
        };
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|source| ImageError::Records {
            path: self.file.clone(),
            source,
        })?;
        bytes.push(b'\n');
        atomic::write_file(&self.file, &bytes)
            .map_err(|source| ImageError::io("write", &self.file, source))?;
        Ok(out)
    }
}
