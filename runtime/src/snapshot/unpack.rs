//! Unpacking layers into committed snapshots, once per layer stack. The
//! unpacker takes the chain's lock file, looks again (another process or
//! thread may have finished meanwhile), applies the layer into a fresh,
//! unnamed snapshot directory, makes it durable (syncfs), and only then
//! publishes it by creating its name. A failure removes the directory;
//! a crash leaves an unnamed one that garbage collection removes.

use super::apply::{self, ApplyStats};
use super::chain::{chain_ids, ChainId};
use super::storage::{Kind, Meta, Name};
use super::{SnapshotError, Snapshotter};
use crate::image::{Digest, FileLock, Image, ImageStore, LockMode};
use std::io::Read;

/// The outcome of [`Snapshotter::unpack_layer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unpacked {
    /// This call unpacked the layer.
    Applied(ApplyStats),
    /// The layer was there already (maybe unpacked by a concurrent call).
    AlreadyPresent,
}

impl Snapshotter {
    /// Make the committed snapshot `chain`: the layer `blob` (whose
    /// uncompressed tar must hash to `diff_id`) on top of the committed
    /// snapshot `parent`. Safe to call concurrently: one caller unpacks,
    /// the others wait and find it present; the blob is read only by the
    /// caller that unpacks.
    pub fn unpack_layer(
        &self,
        chain: &ChainId,
        parent: Option<&ChainId>,
        diff_id: &Digest,
        blob: impl Read,
    ) -> Result<Unpacked, SnapshotError> {
        let expected = ChainId::extend(parent, diff_id);
        if expected != *chain {
            return Err(SnapshotError::ChainMismatch {
                chain: *chain,
                expected,
            });
        }
        let _shared = self.lock(LockMode::Shared)?;
        if self.exists(chain)? {
            return Ok(Unpacked::AlreadyPresent);
        }
        let lock_path = self
            .storage
            .locks()
            .join(format!("{}.lock", chain.digest().hex()));
        let _chain_lock = FileLock::acquire(&lock_path, LockMode::Exclusive)?;
        if self.exists(chain)? {
            return Ok(Unpacked::AlreadyPresent);
        }
        let parents = self.parent_ids(parent)?;
        let id = self.storage.new_dir()?;
        let result = self.fill(&id, chain, parent, parents, diff_id, blob);
        if result.is_err() {
            let _ = self.storage.remove_dir(&id);
        }
        result.map(Unpacked::Applied)
    }

    fn fill(
        &self,
        id: &str,
        chain: &ChainId,
        parent: Option<&ChainId>,
        parents: Vec<String>,
        diff_id: &Digest,
        blob: impl Read,
    ) -> Result<ApplyStats, SnapshotError> {
        let fs = self.storage.fs(id);
        let io_err = |op, source| SnapshotError::Io {
            op,
            path: fs.clone(),
            source,
        };
        std::fs::create_dir(&fs).map_err(|e| io_err("create", e))?;
        let stats = apply::apply_layer(blob, &fs, Some(diff_id)).map_err(|source| {
            SnapshotError::Apply {
                chain: *chain,
                source: Box::new(source),
            }
        })?;
        let meta = Meta {
            kind: Kind::Committed,
            name: chain.to_string(),
            parent: parent.copied(),
            parents,
        };
        self.storage.write_meta(id, &meta, true)?;
        let dir = std::fs::File::open(&fs).map_err(|e| io_err("open", e))?;
        nix::unistd::syncfs(&dir).map_err(|e| io_err("syncfs", e.into()))?;
        self.storage.link(&Name::Committed(*chain), id)?;
        Ok(stats)
    }
}

/// Unpack every layer of the image `name` that is not unpacked yet and
/// return the chain ID of its top layer (the parent to prepare a rootfs
/// on).
pub fn unpack_image(
    images: &ImageStore,
    snapshots: &Snapshotter,
    name: &str,
) -> Result<ChainId, SnapshotError> {
    unpack_and_load(images, snapshots, name).map(|(_, top)| top)
}

/// As [`unpack_image`], also returning the image as loaded for it (its
/// config is what a container's spec is made from), so that a container
/// start reads the image's record, manifest and config once.
pub fn unpack_and_load(
    images: &ImageStore,
    snapshots: &Snapshotter,
    name: &str,
) -> Result<(Image, ChainId), SnapshotError> {
    let _pin = images.pin()?;
    let image = images.image(name)?;
    let chains = chain_ids(&image.diff_ids());
    for (i, layer) in image.layers.iter().enumerate() {
        if snapshots.exists(&chains[i])? {
            continue;
        }
        let blob = images
            .content()
            .open(&layer.digest)
            .map_err(crate::image::ImageError::from)?;
        let parent = i.checked_sub(1).map(|p| &chains[p]);
        snapshots.unpack_layer(&chains[i], parent, &layer.diff_id, blob)?;
    }
    let top = chains
        .last()
        .copied()
        .ok_or_else(|| SnapshotError::EmptyImage { name: name.into() })?;
    Ok((image, top))
}
