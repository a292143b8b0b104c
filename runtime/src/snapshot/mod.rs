//! The overlay snapshotter: image layers unpacked once into committed
//! snapshots keyed by chain ID (shared by every image with that layer
//! stack), and per-container snapshots on top of them: [`Snapshotter::prepare`]
//! makes a writable one (fresh upper and work directories over the
//! chain's layers), [`Snapshotter::view`] a read-only one. Both return a
//! [`Mount`] the runtime mounts as the container's rootfs. Garbage
//! collection ([`collect_garbage`]) removes the snapshots and blobs no
//! image or container refers to. Unpacking a layer's tar is [`apply`].
//!
//! Concurrency: creators (unpack, prepare, view, commit) hold the root
//! lock shared, removers (remove, garbage collection) exclusive; two
//! unpacks of one layer serialize on a per-chain lock file, and the second
//! finds the layer present. On disk, under the snapshotter's root:
//! ```text
//! snapshots/<id>/fs, work, meta.json   one per snapshot (see storage)
//! names/c-<chain hex> -> <id>          committed snapshots
//! names/a-<key> -> <id>                active and view snapshots
//! locks/<chain hex>.lock, lock         flock(2) lock files
//! ```

pub mod apply;
pub mod chain;
mod gc;
pub mod mounts;
mod storage;
pub mod sys;
mod unpack;
mod usage;

pub use chain::{chain_ids, ChainId};
pub use gc::{collect_garbage, GcReport};
pub use mounts::{Mount, MountError};
pub use storage::Kind;
pub use unpack::{unpack_and_load, unpack_image, Unpacked};
pub use usage::{measure, Usage};

use crate::image::{FileLock, ImageError, LockError, LockMode};
use std::path::{Path, PathBuf};
use storage::{Meta, Name, Storage};

/// What went wrong with a snapshot, and on which key, layer or path.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshotter: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("snapshot metadata {path}: {source}")]
    Meta {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Mount(#[from] MountError),
    #[error("unpacking layer {chain}: {source}")]
    Apply {
        chain: ChainId,
        #[source]
        source: Box<apply::ApplyError>,
    },
    #[error("no snapshot {key}")]
    NotFound { key: String },
    #[error("snapshot {key} already exists")]
    AlreadyExists { key: String },
    #[error("invalid snapshot key {key:?}: use 1-128 of [A-Za-z0-9_.-], starting with a letter or digit")]
    InvalidKey { key: String },
    #[error("snapshot {key} is the parent of {children:?}; remove those first")]
    HasChildren { key: String, children: Vec<String> },
    #[error("snapshot {key} is {actual:?}, not {wanted}")]
    WrongKind {
        key: String,
        actual: Kind,
        wanted: &'static str,
    },
    #[error("the layer and parent given have chain ID {expected}, not {chain}")]
    ChainMismatch { chain: ChainId, expected: ChainId },
    #[error("snapshotter root {0} must be an absolute UTF-8 path without `:` `,` or `\\` (it appears in overlay options)")]
    BadRoot(PathBuf),
    #[error("image {name} has no layers")]
    EmptyImage { name: String },
}

/// One snapshot, as [`Snapshotter::list`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// The chain ID (committed) or key (active, view).
    pub name: String,
    pub kind: Kind,
    pub parent: Option<ChainId>,
    /// The snapshot's own directory (`fs`).
    pub path: PathBuf,
}

/// The overlay snapshotter at one root directory.
#[derive(Debug, Clone)]
pub struct Snapshotter {
    storage: Storage,
}

fn check_key(key: &str) -> Result<(), SnapshotError> {
    let b = key.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(SnapshotError::InvalidKey { key: key.into() })
    }
}

impl Snapshotter {
    /// Open (creating if needed) the snapshotter at `root`.
    pub fn new(root: &Path) -> Result<Snapshotter, SnapshotError> {
        let ok = root.is_absolute() && root.to_str().is_some_and(|s| !s.contains([':', ',', '\\']));
        if !ok {
            return Err(SnapshotError::BadRoot(root.into()));
        }
        let storage = Storage { root: root.into() };
        storage.create()?;
        Ok(Snapshotter { storage })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.storage.root
    }

    fn lock(&self, mode: LockMode) -> Result<FileLock, SnapshotError> {
        Ok(FileLock::acquire(&self.storage.root.join("lock"), mode)?)
    }

    /// Whether the layer stack `chain` is unpacked.
    pub fn exists(&self, chain: &ChainId) -> Result<bool, SnapshotError> {
        Ok(self.storage.lookup(&Name::Committed(*chain))?.is_some())
    }

    /// The directory holding the top layer of `chain` (shared by every
    /// snapshot stacked on it).
    pub fn layer_dir(&self, chain: &ChainId) -> Result<PathBuf, SnapshotError> {
        Ok(self
            .storage
            .fs(&self.storage.require(&Name::Committed(*chain))?))
    }

    /// The committed snapshot ids from `parent` down to the base layer.
    fn parent_ids(&self, parent: Option<&ChainId>) -> Result<Vec<String>, SnapshotError> {
        let Some(parent) = parent else {
            return Ok(Vec::new());
        };
        let id = self.storage.require(&Name::Committed(*parent))?;
        let mut ids = vec![id.clone()];
        ids.extend(self.storage.read_meta(&id)?.parents);
        Ok(ids)
    }

    /// A writable snapshot `key` on top of `parent` (empty without one).
    pub fn prepare(&self, key: &str, parent: Option<&ChainId>) -> Result<Mount, SnapshotError> {
        self.create(key, parent, Kind::Active)
    }

    /// A read-only snapshot `key` of `parent`.
    pub fn view(&self, key: &str, parent: &ChainId) -> Result<Mount, SnapshotError> {
        self.create(key, Some(parent), Kind::View)
    }

    fn create(
        &self,
        key: &str,
        parent: Option<&ChainId>,
        kind: Kind,
    ) -> Result<Mount, SnapshotError> {
        check_key(key)?;
        let _lock = self.lock(LockMode::Shared)?;
        let parents = self.parent_ids(parent)?;
        let id = self.storage.new_dir()?;
        let made = (|| {
            if kind == Kind::Active {
                for dir in [self.storage.fs(&id), self.storage.work(&id)] {
                    std::fs::create_dir(&dir).map_err(|source| SnapshotError::Io {
                        op: "create",
                        path: dir,
                        source,
                    })?;
                }
            }
            let meta = Meta {
                kind,
                name: key.into(),
                parent: parent.copied(),
                parents,
            };
            self.storage.write_meta(&id, &meta, false)?;
            self.storage.link(&Name::Key(key.into()), &id)?;
            Ok(self.mount_for(&id, &meta))
        })();
        if made.is_err() {
            let _ = self.storage.remove_dir(&id);
        }
        made
    }

    fn mount_for(&self, id: &str, meta: &Meta) -> Mount {
        let lower: Vec<PathBuf> = meta.parents.iter().map(|p| self.storage.fs(p)).collect();
        match (meta.kind, lower.len()) {
            (Kind::Active, 0) => Mount::Bind {
                source: self.storage.fs(id),
                read_only: false,
            },
            (Kind::Active, _) => Mount::Overlay {
                lower,
                upper: Some(self.storage.fs(id)),
                work: Some(self.storage.work(id)),
            },
            (_, 1) => Mount::Bind {
                source: lower.into_iter().next().expect("one layer"),
                read_only: true,
            },
            (Kind::Committed, 0) => Mount::Bind {
                source: self.storage.fs(id),
                read_only: true,
            },
            (_, _) => Mount::Overlay {
                lower,
                upper: None,
                work: None,
            },
        }
    }

    /// The mount of an existing active or view snapshot.
    pub fn mounts(&self, key: &str) -> Result<Mount, SnapshotError> {
        check_key(key)?;
        let id = self.storage.require(&Name::Key(key.into()))?;
        Ok(self.mount_for(&id, &self.storage.read_meta(&id)?))
    }

    /// Turn the active snapshot `key` (unmounted) into the committed
    /// snapshot `chain`, on the same parent.
    pub fn commit(&self, key: &str, chain: &ChainId) -> Result<(), SnapshotError> {
        check_key(key)?;
        let _lock = self.lock(LockMode::Exclusive)?;
        let name = Name::Key(key.into());
        let id = self.storage.require(&name)?;
        let mut meta = self.storage.read_meta(&id)?;
        if meta.kind != Kind::Active {
            return Err(SnapshotError::WrongKind {
                key: key.into(),
                actual: meta.kind,
                wanted: "active",
            });
        }
        let work = self.storage.work(&id);
        std::fs::remove_dir_all(&work).map_err(|source| SnapshotError::Io {
            op: "remove",
            path: work,
            source,
        })?;
        meta.kind = Kind::Committed;
        meta.name = chain.to_string();
        self.storage.write_meta(&id, &meta, true)?;
        self.storage.link(&Name::Committed(*chain), &id)?;
        self.storage.unlink(&name)
    }

    /// Remove a snapshot: an active or view `key`, or a committed chain ID
    /// (`sha256:...`), which is refused while snapshots are stacked on it.
    /// Unmount it first.
    pub fn remove(&self, key: &str) -> Result<(), SnapshotError> {
        let name = match ChainId::parse(key) {
            Ok(chain) => Name::Committed(chain),
            Err(_) => {
                check_key(key)?;
                Name::Key(key.into())
            }
        };
        let _lock = self.lock(LockMode::Exclusive)?;
        let id = self.storage.require(&name)?;
        if matches!(name, Name::Committed(_)) {
            let children = self.children_of(&id)?;
            if !children.is_empty() {
                return Err(SnapshotError::HasChildren {
                    key: key.into(),
                    children,
                });
            }
        }
        self.storage.unlink(&name)?;
        self.storage.remove_dir(&id)
    }

    /// Names of the snapshots stacked directly or indirectly on `id`.
    fn children_of(&self, id: &str) -> Result<Vec<String>, SnapshotError> {
        let mut out = Vec::new();
        for (name, other) in self.storage.all_names()? {
            if self
                .storage
                .read_meta(&other)?
                .parents
                .iter()
                .any(|p| p == id)
            {
                out.push(name.to_string());
            }
        }
        Ok(out)
    }

    /// Disk usage of a snapshot's own directory (an active snapshot's
    /// upper directory; a committed snapshot's layer).
    pub fn usage(&self, key: &str) -> Result<Usage, SnapshotError> {
        let name = match ChainId::parse(key) {
            Ok(chain) => Name::Committed(chain),
            Err(_) => Name::Key(key.into()),
        };
        let id = self.storage.require(&name)?;
        usage::measure(&self.storage.fs(&id))
    }

    /// Every named snapshot.
    pub fn list(&self) -> Result<Vec<SnapshotInfo>, SnapshotError> {
        let mut out = Vec::new();
        for (name, id) in self.storage.all_names()? {
            let meta = self.storage.read_meta(&id)?;
            out.push(SnapshotInfo {
                name: name.to_string(),
                kind: meta.kind,
                parent: meta.parent,
                path: self.storage.fs(&id),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}
