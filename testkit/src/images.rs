//! Test images shared by the crates' integration tests.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The busybox OCI image layout that scripts/make-busybox-image.sh builds,
/// made once per test process under the workspace's `target/images/`.
pub fn busybox_layout() -> PathBuf {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT
        .get_or_init(|| {
            let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            let dir = repo.join("target/images/busybox-oci");
            if !dir.join("index.json").exists() {
                let status = std::process::Command::new(repo.join("scripts/make-busybox-image.sh"))
                    .arg(&dir)
                    .status()
                    .expect("run scripts/make-busybox-image.sh");
                assert!(status.success(), "make-busybox-image.sh failed");
            }
            dir
        })
        .clone()
}

/// The file names in an image store's blob directory
/// (`<root>/content/blobs/sha256`), sorted; empty when it does not exist.
/// Comparing them before and after shows whether a refused command left
/// blobs or partial files behind.
pub fn blob_files(store_root: &Path) -> Vec<String> {
    let dir = store_root.join("content/blobs/sha256");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.map(|e| {
                e.expect("read the blob directory")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
