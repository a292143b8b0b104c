//! Test images beyond busybox, and holds on the node's snapshotter locks.
//!
//! [`LayeredImage`]: busybox with one more layer, written as an OCI layout
//! (busybox's own blobs, a new layer holding one small file, a config and
//! manifest that name it), so a pod of it needs a layer unpacked that no
//! other image shares. [`SnapshotLockHold`]: a snapshotter lock file held
//! by the test as another user of the snapshotter holds it. The lock of
//! that layer held exclusively (a concurrent unpack of it: `noderun
//! image` or another pod of the image) keeps a pod start of the image
//! waiting in its rootfs phase, its sandbox and network made; the root
//! lock held shared (an unpack or a prepare) keeps a container's restart
//! waiting in the removal of its old writable layer. That is how a test
//! puts a pod deterministically half-made when the node daemon is killed.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::path::{Path, PathBuf};

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// `sha256:<hex>` of `bytes`.
fn digest(bytes: &[u8]) -> String {
    let hex: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// Read a JSON blob of an OCI layout by its digest.
fn read_blob(layout: &Path, digest: &str) -> serde_json::Value {
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let path = layout.join("blobs/sha256").join(hex);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A layer's uncompressed tar holding one file, `name`, with `content`.
fn one_file_layer(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    builder
        .append_data(&mut header, name, content)
        .expect("a tar entry in memory");
    builder.into_inner().expect("the tar in memory")
}

/// Busybox with one more layer, as an OCI layout on disk.
#[derive(Debug, Clone)]
pub struct LayeredImage {
    /// The layout directory (`noderun image import` takes it).
    pub layout: PathBuf,
    /// The full name the layout gives it (`docker.io/library/<name>:latest`).
    pub name: String,
    /// The chain ID of its top layer, the one no other image has.
    pub top_chain: String,
}

impl LayeredImage {
    /// Write busybox (`base`, an OCI layout of one image) plus a layer
    /// holding `/<name>.txt` as image `name` into `dir/<name>-oci`.
    pub fn write(base: &Path, dir: &Path, name: &str) -> LayeredImage {
        let layout = dir.join(format!("{name}-oci"));
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        for entry in std::fs::read_dir(base.join("blobs/sha256")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), blobs.join(entry.file_name())).unwrap();
        }
        let put = |bytes: &[u8]| -> (String, usize) {
            let d = digest(bytes);
            std::fs::write(blobs.join(&d["sha256:".len()..]), bytes).unwrap();
            (d, bytes.len())
        };
        let base_index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(base.join("index.json")).unwrap()).unwrap();
        let base_manifest = read_blob(base, base_index["manifests"][0]["digest"].as_str().unwrap());
        let mut config = read_blob(base, base_manifest["config"]["digest"].as_str().unwrap());

        let layer = one_file_layer(&format!("{name}.txt"), name.as_bytes());
        let (layer_digest, layer_size) = put(&layer);
        let diff_ids = config["rootfs"]["diff_ids"]
            .as_array_mut()
            .expect("the config's diff_ids");
        let parent_chain = chain_id(diff_ids.iter().map(|d| d.as_str().unwrap()));
        diff_ids.push(layer_digest.clone().into());
        let top_chain = digest(format!("{parent_chain} {layer_digest}").as_bytes());
        let (config_digest, config_size) = put(&serde_json::to_vec(&config).unwrap());

        let mut manifest = base_manifest.clone();
        manifest["config"]["digest"] = config_digest.into();
        manifest["config"]["size"] = config_size.into();
        manifest["layers"]
            .as_array_mut()
            .expect("the manifest's layers")
            .push(serde_json::json!({
                "mediaType": OCI_LAYER, "digest": layer_digest, "size": layer_size,
            }));
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
        let (manifest_digest, manifest_size) = put(&manifest_bytes);
        let full_name = format!("docker.io/library/{name}:latest");
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": manifest_size,
                "platform": {"architecture": "amd64", "os": "linux"},
                "annotations": {REF_NAME: full_name},
            }],
        });
        std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
        std::fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        LayeredImage {
            layout,
            name: full_name,
            top_chain,
        }
    }
}

/// The chain ID of a stack of layers (by their diff IDs, bottom first):
/// the first layer's diff ID, then `sha256("<chain below> <diff ID>")`.
fn chain_id<'a>(diff_ids: impl Iterator<Item = &'a str>) -> String {
    diff_ids
        .fold(None, |below: Option<String>, diff| {
            Some(match below {
                None => diff.to_string(),
                Some(below) => digest(format!("{below} {diff}").as_bytes()),
            })
        })
        .expect("an image has layers")
}

/// A lock file of the node's snapshotter held by this process until
/// dropped, as another user of the snapshotter holds it.
#[derive(Debug)]
pub struct SnapshotLockHold {
    _lock: nix::fcntl::Flock<File>,
}

impl SnapshotLockHold {
    /// Hold the lock of chain `chain` (`sha256:<hex>`) exclusively, as
    /// its unpacker does (`<state>/snapshots/locks/<hex>.lock`): another
    /// unpack of that layer stack waits.
    pub fn unpack(state_dir: &Path, chain: &str) -> SnapshotLockHold {
        let hex = chain.strip_prefix("sha256:").expect("a sha256 chain ID");
        let path = state_dir
            .join("snapshots/locks")
            .join(format!("{hex}.lock"));
        SnapshotLockHold::hold(&path, nix::fcntl::FlockArg::LockExclusiveNonblock)
    }

    /// Hold the snapshotter's root lock shared, as an unpack or a rootfs
    /// prepare does (`<state>/snapshots/lock`): creating goes on, every
    /// removal (a container's writable layer) waits.
    pub fn removals(state_dir: &Path) -> SnapshotLockHold {
        let path = state_dir.join("snapshots/lock");
        SnapshotLockHold::hold(&path, nix::fcntl::FlockArg::LockSharedNonblock)
    }

    fn hold(path: &Path, how: nix::fcntl::FlockArg) -> SnapshotLockHold {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let lock = nix::fcntl::Flock::lock(file, how)
            .unwrap_or_else(|(_, e)| panic!("lock {}: {e}", path.display()));
        SnapshotLockHold { _lock: lock }
    }
}
