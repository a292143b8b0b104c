//! Images on one node: the content store (blobs named by digest), image
//! metadata (OCI and docker v2 schema 2 indexes, manifests, configs), the
//! image records (name → manifest), and import/export of image archives.
//! Registry pull is [`registry`]. Turning layers into filesystems belongs
//! to [`crate::snapshot`], which reads this store.
//!
//! The node daemon's `noderun image` verbs call [`ImageStore`]:
//! - `import PATH [--name NAME]` → [`ImageStore::import_path`]: an OCI
//!   image layout or a `docker save` archive, as a directory or a tar.
//! - `list` → [`ImageStore::list`]; `inspect NAME` → [`ImageStore::image`].
//! - `remove NAME` → [`ImageStore::remove`] (blobs go at the next
//!   collection: `snapshot::collect_garbage`, or [`ImageStore::gc`]).
//! - `export NAME... -o FILE` → [`ImageStore::export`] (an OCI layout tar).
//! - `pull REF [--username U --password-stdin]` → [`registry::pull`].
//! - `prune` → `snapshot::collect_garbage`: unneeded blobs and snapshots,
//!   and partial downloads no running pull holds.
//!
//! On disk, under the store's root:
//! ```text
//! content/blobs/sha256/<hex>   blobs, each named by the digest of its bytes
//! content/blobs/sha256/partial-<hex>  a download in progress (flock held)
//!                              or abandoned (collected)
//! images.json                  {"version":1,"images":{name: record}}
//! images.lock, gc.lock         flock(2) lock files
//! ```

mod archive;
pub mod atomic;
pub mod content;
pub mod digest;
mod docker;
mod export;
pub mod lockfile;
pub mod manifest;
pub mod media;
mod oci;
pub mod records;
pub mod registry;
mod store;

pub use content::{ContentError, ContentStore};
pub use digest::{Digest, DigestError, DigestReader, DigestWriter, Digester};
pub use lockfile::{FileLock, LockError, LockMode};
pub use manifest::{Image, Layer, PlatformSpec};
pub use oci::{CONTAINERD_NAME, REF_NAME};
pub use records::ImageRecord;
pub use store::{BlobSweep, ImageStore};

use noderun_core::image_ref::{ImageRef, ImageRefError};
use std::path::{Path, PathBuf};

/// What went wrong with an image, and on which name, blob or file.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Content(#[from] ContentError),
    #[error(transparent)]
    Digest(#[from] DigestError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error("image store: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {digest} is not valid JSON of its kind: {source}")]
    Json {
        what: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("image records {path}: {source}")]
    Records {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("the index has no manifest for {wanted} (platforms present: {})", if .available.is_empty() { "none stated".to_string() } else { .available.join(", ") })]
    NoPlatform {
        wanted: String,
        available: Vec<String>,
    },
    #[error("manifest {manifest} is for {found}, this node runs {wanted}")]
    PlatformMismatch {
        manifest: Digest,
        wanted: String,
        found: String,
    },
    #[error("manifest {manifest} has {layers} layers but its config lists {diff_ids} diff IDs")]
    DiffIdCount {
        manifest: Digest,
        layers: usize,
        diff_ids: usize,
    },
    #[error("blob {digest} has media type {media_type:?}, which is not expected there")]
    UnsupportedMediaType { digest: Digest, media_type: String },
    #[error("invalid image name {name:?}: {source}")]
    InvalidName {
        name: String,
        #[source]
        source: ImageRefError,
    },
    #[error("no image named {name}; see the image list")]
    NotFound { name: String },
    #[error("manifest {manifest} has no name: {hint}")]
    Unnamed { manifest: Digest, hint: String },
    #[error("image layout {path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    #[error("archive {path}: member {member:?} {reason}")]
    Archive {
        path: PathBuf,
        member: String,
        reason: &'static str,
    },
    #[error("archive {archive} lacks blob {digest}")]
    MissingBlob { archive: PathBuf, digest: Digest },
    #[error("{path} is neither an OCI image layout (oci-layout and index.json) nor a docker archive (manifest.json)")]
    NotAnArchive { path: PathBuf },
}

impl ImageError {
    fn io(op: &'static str, path: &Path, source: std::io::Error) -> ImageError {
        ImageError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// The normalized form of an image name (`busybox` →
/// `docker.io/library/busybox:latest`), the key of the image records.
pub fn normalize_name(name: &str) -> Result<String, ImageError> {
    ImageRef::parse(name)
        .map(|r| r.to_string())
        .map_err(|source| ImageError::InvalidName {
            name: name.into(),
            source,
        })
}
