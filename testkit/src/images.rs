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
