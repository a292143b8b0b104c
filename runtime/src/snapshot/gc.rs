//! Garbage collection of images' leftovers: mark from the image records
//! (each image's blobs and the chain IDs of its layer stacks) and from the
//! active and view snapshots (the committed snapshots they stand on),
//! then sweep every blob, committed snapshot, unnamed snapshot directory
//! and lock file that is not marked. It holds the image store's GC lock
//! and the snapshotter's root lock exclusively, so no import, unpack or
//! prepare is half done while it runs.

use super::chain::{chain_ids, ChainId};
use super::storage::{Kind, Name};
use super::{SnapshotError, Snapshotter};
use crate::image::{BlobSweep, ImageStore, LockMode};
use std::collections::BTreeSet;

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub blobs: BlobSweep,
    /// Committed snapshots removed.
    pub snapshots_removed: usize,
    /// Snapshot directories removed that had no name (interrupted work).
    pub orphans_removed: usize,
}

/// Remove the blobs and snapshots that no image and no active snapshot
/// needs.
pub fn collect_garbage(
    images: &ImageStore,
    snapshots: &Snapshotter,
) -> Result<GcReport, SnapshotError> {
    let _images_lock = images.lock_for_gc()?;
    let _snap_lock = snapshots.lock(LockMode::Exclusive)?;
    let mut blobs = BTreeSet::new();
    let mut chains: BTreeSet<ChainId> = BTreeSet::new();
    for (_, image) in images.images()? {
        blobs.extend(image.blobs());
        chains.extend(chain_ids(&image.diff_ids()));
    }
    let mut report = GcReport {
        blobs: images.sweep_blobs(&blobs)?,
        ..GcReport::default()
    };
    let storage = &snapshots.storage;
    let names = storage.all_names()?;
    let mut keep_ids: BTreeSet<String> = BTreeSet::new();
    for (name, id) in &names {
        let meta = storage.read_meta(id)?;
        let wanted = match name {
            Name::Committed(chain) => chains.contains(chain),
            Name::Key(_) => meta.kind != Kind::Committed,
        };
        if wanted {
            keep_ids.insert(id.clone());
            keep_ids.extend(meta.parents);
        }
    }
    for (name, id) in &names {
        if !keep_ids.contains(id) {
            storage.unlink(name)?;
            storage.remove_dir(id)?;
            report.snapshots_removed += 1;
        }
    }
    report.orphans_removed = remove_unnamed(snapshots, &names)?;
    remove_lock_files(snapshots)?;
    Ok(report)
}

impl Snapshotter {
    /// Remove the snapshot directories no name points at: an unpack or
    /// prepare a crash cut short (a creator holds the root lock shared
    /// until it has named its directory; this takes it exclusively, so
    /// nothing unnamed is still being made). Returns how many. The node
    /// daemon runs it at every start.
    pub fn remove_abandoned(&self) -> Result<usize, SnapshotError> {
        let _lock = self.lock(LockMode::Exclusive)?;
        remove_unnamed(self, &self.storage.all_names()?)
    }
}

/// Remove every snapshot directory not in `names`; the caller holds the
/// root lock exclusively.
fn remove_unnamed(
    snapshots: &Snapshotter,
    names: &[(Name, String)],
) -> Result<usize, SnapshotError> {
    let storage = &snapshots.storage;
    let named: BTreeSet<&String> = names.iter().map(|(_, id)| id).collect();
    let mut removed = 0;
    for id in storage.all_ids()? {
        if !named.contains(&id) {
            storage.remove_dir(&id)?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Per-chain lock files are only held under the root lock, which this
/// collection holds exclusively: none is in use.
fn remove_lock_files(snapshots: &Snapshotter) -> Result<(), SnapshotError> {
    let dir = snapshots.storage.locks();
    let io_err = |source| SnapshotError::Io {
        op: "clean locks",
        path: dir.clone(),
        source,
    };
    for entry in std::fs::read_dir(&dir).map_err(io_err)? {
        let path = entry.map_err(io_err)?.path();
        std::fs::remove_file(&path).map_err(io_err)?;
    }
    Ok(())
}
