//! [`ImageStore`]: named images over the content store, the library behind
//! `noderun image list|import|remove|export`. Import reads an OCI layout
//! or a `docker save` archive (directory or tar), verifies every blob and
//! records one name per image; remove drops only the name (the blobs go at
//! the next garbage collection, when no image needs them).
//!
//! A shared "pin" lock is held while an import or an unpack reads blobs,
//! and garbage collection takes it exclusively, so a collection never
//! removes a blob that an import has stored but not yet named.

use super::archive::Source;
use super::content::ContentStore;
use super::digest::Digest;
use super::lockfile::{FileLock, LockMode};
use super::manifest::{Image, PlatformSpec};
use super::records::{ImageRecord, Records};
use super::{docker, export, normalize_name, oci, ImageError};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

const PIN_LOCK: &str = "gc.lock";

/// The image store at one state directory:
/// `<root>/content/blobs/sha256/<hex>`, `<root>/images.json`, lock files.
#[derive(Debug, Clone)]
pub struct ImageStore {
    root: PathBuf,
    content: ContentStore,
    records: Records,
    platform: PlatformSpec,
}

/// What a blob collection removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BlobSweep {
    pub blobs_removed: usize,
    pub bytes_removed: u64,
    pub temps_removed: usize,
    /// Partial downloads removed (no pull held them); their bytes are in
    /// `bytes_removed`.
    pub partials_removed: usize,
}

impl ImageStore {
    /// Open (creating if needed) the store at `root`, for the host's
    /// platform.
    pub fn open(root: &Path) -> Result<ImageStore, ImageError> {
        std::fs::create_dir_all(root).map_err(|e| ImageError::io("create", root, e))?;
        Ok(ImageStore {
            root: root.into(),
            content: ContentStore::new(&root.join("content"))?,
            records: Records::new(root),
            platform: PlatformSpec::host(),
        })
    }

    /// The same store choosing `platform` from multi-platform images.
    pub fn with_platform(mut self, platform: PlatformSpec) -> ImageStore {
        self.platform = platform;
        self
    }

    /// The blobs.
    pub fn content(&self) -> &ContentStore {
        &self.content
    }

    /// The platform chosen from indexes.
    pub fn platform(&self) -> &PlatformSpec {
        &self.platform
    }

    /// Hold off garbage collection while blobs are being stored or read.
    pub fn pin(&self) -> Result<FileLock, ImageError> {
        Ok(FileLock::acquire(
            &self.root.join(PIN_LOCK),
            LockMode::Shared,
        )?)
    }

    /// Exclude imports, unpacks and other collections (for garbage
    /// collection).
    pub fn lock_for_gc(&self) -> Result<FileLock, ImageError> {
        Ok(FileLock::acquire(
            &self.root.join(PIN_LOCK),
            LockMode::Exclusive,
        )?)
    }

    /// Import the OCI layout or docker archive at `path` (a directory or a
    /// tar file). `name` names images the archive leaves unnamed, and is
    /// the repository for entries named by a bare tag. Returns the records
    /// written; an existing record of the same name is replaced.
    pub fn import_path(
        &self,
        path: &Path,
        name: Option<&str>,
    ) -> Result<Vec<ImageRecord>, ImageError> {
        let _pin = self.pin()?;
        let mut source = Source::open(path)?;
        let meta = source.read_metadata(&self.content)?;
        let records = if meta.oci_layout.is_some() && meta.index.is_some() {
            oci::import(&self.content, &source, &meta, &self.platform, name)?
        } else if meta.docker_manifest.is_some() {
            docker::import(&self.content, &source, &meta, &self.platform, name)?
        } else {
            return Err(ImageError::NotAnArchive { path: path.into() });
        };
        self.records.update(|all| {
            for record in &records {
                all.insert(record.name.clone(), record.clone());
            }
            Ok(())
        })?;
        Ok(records)
    }

    /// Record images whose blobs are already in the content store (a
    /// registry pull); an existing record of the same name is replaced.
    pub(crate) fn insert_records(&self, records: &[ImageRecord]) -> Result<(), ImageError> {
        self.records.update(|all| {
            for record in records {
                all.insert(record.name.clone(), record.clone());
            }
            Ok(())
        })
    }

    /// Every image record, by name.
    pub fn list(&self) -> Result<Vec<ImageRecord>, ImageError> {
        Ok(self.records.load()?.into_values().collect())
    }

    /// The record named `name` (any reference form: `busybox` finds
    /// `docker.io/library/busybox:latest`).
    pub fn get(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let key = normalize_name(name)?;
        self.records
            .load()?
            .remove(&key)
            .ok_or(ImageError::NotFound { name: key })
    }

    /// The image named `name`, loaded and checked against the store.
    pub fn image(&self, name: &str) -> Result<Image, ImageError> {
        let record = self.get(name)?;
        Image::load(&self.content, &record.manifest, &self.platform)
    }

    /// Remove the name; the blobs stay until garbage collection.
    pub fn remove(&self, name: &str) -> Result<ImageRecord, ImageError> {
        let key = normalize_name(name)?;
        self.records.update(|all| {
            all.remove(&key)
                .ok_or(ImageError::NotFound { name: key.clone() })
        })
    }

    /// Write the named images as an OCI layout tar to `out`.
    pub fn export(&self, names: &[&str], out: impl Write) -> Result<(), ImageError> {
        let _pin = self.pin()?;
        let mut images = Vec::with_capacity(names.len());
        for name in names {
            let record = self.get(name)?;
            let image = Image::load(&self.content, &record.manifest, &self.platform)?;
            images.push((record, image));
        }
        export::export(&self.content, &images, out)
    }

    /// Every named image, loaded (the roots of garbage collection).
    pub fn images(&self) -> Result<Vec<(ImageRecord, Image)>, ImageError> {
        self.list()?
            .into_iter()
            .map(|record| {
                let image = Image::load(&self.content, &record.manifest, &self.platform)?;
                Ok((record, image))
            })
            .collect()
    }

    /// Delete every blob not in `keep`, abandoned temporary files and the
    /// partial downloads no pull holds. The caller holds
    /// [`ImageStore::lock_for_gc`].
    pub fn sweep_blobs(&self, keep: &BTreeSet<Digest>) -> Result<BlobSweep, ImageError> {
        let (partials_removed, partial_bytes) = self.content.remove_abandoned_partials()?;
        let mut sweep = BlobSweep {
            temps_removed: self.content.remove_abandoned_temps()?,
            partials_removed,
            bytes_removed: partial_bytes,
            ..BlobSweep::default()
        };
        for digest in self.content.list()? {
            if keep.contains(&digest) {
                continue;
            }
            let size = self.content.size(&digest).unwrap_or(0);
            if self.content.delete(&digest)? {
                sweep.blobs_removed += 1;
                sweep.bytes_removed += size;
            }
        }
        Ok(sweep)
    }

    /// Collect the blobs no image needs (images only; snapshots are
    /// collected by `snapshot::collect_garbage`, which calls this too).
    pub fn gc(&self) -> Result<BlobSweep, ImageError> {
        let _lock = self.lock_for_gc()?;
        let keep = self
            .images()?
            .iter()
            .flat_map(|(_, image)| image.blobs())
            .collect();
        self.sweep_blobs(&keep)
    }
}
