//! The disk check: two pods of the same image share every layer.
//! A three-layer image (3 MiB, 64 KiB and 1000 bytes of incompressible
//! data) is imported and unpacked once; two active snapshots prepared on
//! it stand on the very same committed layer directories (same paths,
//! same inodes, and a file read through either overlay is the layer's own
//! inode), and the second pod costs the disk only its own upper
//! directory. The numbers are printed (`--nocapture`), never timed.

mod common;

use common::{build_image, write_layout};
use noderun_runtime::image::{ImageStore, PlatformSpec};
use noderun_runtime::snapshot::{chain_ids, unpack_image, Mount, Snapshotter};
use noderun_testkit::{privileged, MountGuard, TempDir};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

fn lowers(mount: &Mount) -> Vec<PathBuf> {
    match mount {
        Mount::Overlay { lower, .. } => lower.clone(),
        other => panic!("expected an overlay, got {other:?}"),
    }
}

fn dev_ino(path: &Path) -> (u64, u64) {
    let m = std::fs::metadata(path).unwrap();
    (m.dev(), m.ino())
}

/// Bytes of disk the tree at `path` occupies (`du`: each inode once).
fn du(path: &Path) -> u64 {
    let out = Command::new("du")
        .arg("-s")
        .arg("-B1")
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "du {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn mount(tmp: &TempDir, m: &Mount, name: &str) -> MountGuard {
    let target = tmp.join(name);
    std::fs::create_dir_all(&target).unwrap();
    m.mount(&target).unwrap();
    MountGuard::adopt(target)
}

#[test]
fn two_pods_of_one_image_share_every_layer_on_disk() {
    if !privileged() {
        return;
    }
    let tmp = TempDir::new("nr-shared-layers").unwrap();
    let built = build_image();
    write_layout(&tmp.join("layout"), &built);
    let images = ImageStore::open(&tmp.join("images"))
        .unwrap()
        .with_platform(PlatformSpec::linux_amd64());
    let snaps = Snapshotter::new(&tmp.join("snapshots")).unwrap();
    let name = images
        .import_path(&tmp.join("layout"), Some("app"))
        .unwrap()[0]
        .name
        .clone();
    let top = unpack_image(&images, &snaps, &name).unwrap();
    let chains = chain_ids(&images.image(&name).unwrap().diff_ids());
    assert_eq!(chains.len(), 3);
    let layer_dirs: Vec<PathBuf> = chains
        .iter()
        .rev()
        .map(|c| snaps.layer_dir(c).unwrap())
        .collect();
    let layers_bytes: u64 = chains
        .iter()
        .map(|c| snaps.usage(&c.to_string()).unwrap().bytes)
        .sum();

    let a = snaps.prepare("pod-a", Some(&top)).unwrap();
    let ga = mount(&tmp, &a, "rootfs-a");
    std::fs::write(ga.path().join("written-by-a"), vec![1u8; 4096]).unwrap();
    let before_b = du(snaps.root());
    let b = snaps.prepare("pod-b", Some(&top)).unwrap();
    let gb = mount(&tmp, &b, "rootfs-b");
    std::fs::write(gb.path().join("written-by-b"), vec![2u8; 4096]).unwrap();
    let after_b = du(snaps.root());

    // The same committed layers, top first, by path and by inode.
    assert_eq!(lowers(&a), layer_dirs, "pod-a stands on the image's layers");
    assert_eq!(lowers(&b), layer_dirs, "pod-b stands on the same layers");
    for (la, lb) in lowers(&a).iter().zip(&lowers(&b)) {
        assert_eq!(dev_ino(la), dev_ino(lb));
    }
    // A file read through either rootfs is the layer's own inode: its
    // data is on disk once.
    for (i, dir) in layer_dirs.iter().rev().enumerate() {
        let file = format!("file{i}");
        let in_layer = std::fs::metadata(dir.join(&file)).unwrap().ino();
        assert_eq!(
            std::fs::metadata(ga.path().join(&file)).unwrap().ino(),
            in_layer,
            "{file}"
        );
        assert_eq!(
            std::fs::metadata(gb.path().join(&file)).unwrap().ino(),
            in_layer,
            "{file}"
        );
    }

    // The second pod costs its upper directory and nothing of the layers.
    let usage_b = snaps.usage("pod-b").unwrap();
    let growth = after_b - before_b;
    println!(
        "layers {layers_bytes} bytes on disk (3 layers); pod-b upper {} bytes in {} inodes; \
         snapshotter grew {growth} bytes when pod-b was prepared and written ({before_b} -> {after_b})",
        usage_b.bytes, usage_b.inodes
    );
    assert!(layers_bytes > 3 << 20, "{layers_bytes}");
    assert!(usage_b.bytes < 64 << 10, "pod-b's upper: {usage_b:?}");
    assert!(
        usage_b.inodes <= 3,
        "pod-b's upper holds its root and its one file: {usage_b:?}"
    );
    assert!(
        growth < layers_bytes / 20,
        "preparing pod-b grew the snapshotter by {growth} bytes (layers: {layers_bytes})"
    );

    drop((ga, gb));
    snaps.remove("pod-a").unwrap();
    snaps.remove("pod-b").unwrap();
}
