//! The snapshotter's directories and metadata. Each snapshot lives in
//! `snapshots/<id>/` under a short random id (eight hex digits, so that
//! overlay options stay short): `fs/` (the layer contents, or the upper
//! directory of a writable snapshot), `work/` (overlay's work directory)
//! and `meta.json`. A snapshot is reachable by name through a symlink
//! `names/c-<hex>` (committed, by chain ID) or `names/a-<key>` (active or
//! view) pointing at its id; creating that link is what publishes it, so
//! a snapshot directory without a name is unfinished or abandoned.

use super::chain::ChainId;
use super::SnapshotError;
use crate::image::atomic;
use serde::{Deserialize, Serialize};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::path::{Path, PathBuf};

/// What a snapshot is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// An unpacked layer stack, read-only, shared, named by chain ID.
    Committed,
    /// A writable snapshot (a container's rootfs), named by its key.
    Active,
    /// A read-only snapshot of a committed one, named by its key.
    View,
}

/// A snapshot's `meta.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Meta {
    pub kind: Kind,
    /// The chain ID (committed) or key (active, view).
    pub name: String,
    /// The committed snapshot this one is stacked on.
    pub parent: Option<ChainId>,
    /// The ids of the committed snapshots below this one, nearest first.
    pub parents: Vec<String>,
}

/// How a snapshot is found by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Name {
    Committed(ChainId),
    Key(String),
}

impl Name {
    fn file_name(&self) -> String {
        match self {
            Name::Committed(chain) => format!("c-{}", chain.digest().hex()),
            Name::Key(key) => format!("a-{key}"),
        }
    }

    /// Parse a `names/` entry back into a name.
    pub fn from_file_name(file: &str) -> Option<Name> {
        if let Some(hex) = file.strip_prefix("c-") {
            return crate::image::Digest::from_hex(hex)
                .ok()
                .map(|d| Name::Committed(ChainId(d)));
        }
        file.strip_prefix("a-").map(|k| Name::Key(k.into()))
    }
}

impl std::fmt::Display for Name {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Name::Committed(chain) => chain.fmt(f),
            Name::Key(key) => f.write_str(key),
        }
    }
}

/// The directory tree of one snapshotter.
#[derive(Debug, Clone)]
pub struct Storage {
    pub root: PathBuf,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.into(),
        source,
    }
}

impl Storage {
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub fn names(&self) -> PathBuf {
        self.root.join("names")
    }

    pub fn locks(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub fn dir(&self, id: &str) -> PathBuf {
        self.snapshots().join(id)
    }

    pub fn fs(&self, id: &str) -> PathBuf {
        self.dir(id).join("fs")
    }

    pub fn work(&self, id: &str) -> PathBuf {
        self.dir(id).join("work")
    }

    /// Create the top-level directories.
    pub fn create(&self) -> Result<(), SnapshotError> {
        for dir in [self.snapshots(), self.names(), self.locks()] {
            std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(())
    }

    /// Make a new, empty snapshot directory and return its id.
    pub fn new_dir(&self) -> Result<String, SnapshotError> {
        let state = RandomState::new();
        for attempt in 0u64.. {
            let mut hasher = state.build_hasher();
            hasher.write_u64(attempt);
            let id = format!("{:08x}", hasher.finish() as u32);
            let path = self.dir(&id);
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(id),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => continue,
                Err(e) => return Err(io_err("create", &path)(e)),
            }
        }
        unreachable!("the loop returns")
    }

    /// The id a name points at, if the name exists.
    pub fn lookup(&self, name: &Name) -> Result<Option<String>, SnapshotError> {
        let link = self.names().join(name.file_name());
        match std::fs::read_link(&link) {
            Ok(target) => Ok(target.to_str().map(String::from)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err("read name", &link)(e)),
        }
    }

    /// Like [`Storage::lookup`], but a missing name is an error.
    pub fn require(&self, name: &Name) -> Result<String, SnapshotError> {
        self.lookup(name)?.ok_or_else(|| SnapshotError::NotFound {
            key: name.to_string(),
        })
    }

    /// Publish `id` under `name`; fails if the name is taken.
    pub fn link(&self, name: &Name, id: &str) -> Result<(), SnapshotError> {
        let link = self.names().join(name.file_name());
        match std::os::unix::fs::symlink(id, &link) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                Err(SnapshotError::AlreadyExists {
                    key: name.to_string(),
                })
            }
            Err(e) => Err(io_err("create name", &link)(e)),
        }
    }

    /// Remove a name (not an error when absent).
    pub fn unlink(&self, name: &Name) -> Result<(), SnapshotError> {
        let link = self.names().join(name.file_name());
        match std::fs::remove_file(&link) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove name", &link)(e)),
            _ => Ok(()),
        }
    }

    /// Every name and the id it points at.
    pub fn all_names(&self) -> Result<Vec<(Name, String)>, SnapshotError> {
        let dir = self.names();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            let file = entry.file_name();
            let Some(name) = file.to_str().and_then(Name::from_file_name) else {
                continue;
            };
            if let Some(id) = self.lookup(&name)? {
                out.push((name, id));
            }
        }
        Ok(out)
    }

    /// Every snapshot directory id (named or not).
    pub fn all_ids(&self) -> Result<Vec<String>, SnapshotError> {
        let dir = self.snapshots();
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err("list", &dir))? {
            let entry = entry.map_err(io_err("list", &dir))?;
            if let Ok(id) = entry.file_name().into_string() {
                out.push(id);
            }
        }
        Ok(out)
    }

    pub fn read_meta(&self, id: &str) -> Result<Meta, SnapshotError> {
        let path = self.dir(id).join("meta.json");
        let bytes = std::fs::read(&path).map_err(io_err("read", &path))?;
        serde_json::from_slice(&bytes).map_err(|source| SnapshotError::Meta { path, source })
    }

    /// Write `meta.json`; `durable` fsyncs it (committed snapshots, which
    /// outlive a crash; an active snapshot's container does not).
    pub fn write_meta(&self, id: &str, meta: &Meta, durable: bool) -> Result<(), SnapshotError> {
        let path = self.dir(id).join("meta.json");
        let bytes = serde_json::to_vec(meta).map_err(|source| SnapshotError::Meta {
            path: path.clone(),
            source,
        })?;
        let result = if durable {
            atomic::write_file(&path, &bytes)
        } else {
            std::fs::write(&path, &bytes)
        };
        result.map_err(io_err("write", &path))
    }

    /// Remove a snapshot directory and everything in it.
    pub fn remove_dir(&self, id: &str) -> Result<(), SnapshotError> {
        let dir = self.dir(id);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err("remove", &dir)(e)),
            _ => Ok(()),
        }
    }
}
