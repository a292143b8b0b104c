//! Privileged snapshotter tests: real layer unpacking (owners, devices,
//! xattrs), real overlay mounts, hostile layers, concurrency, and cleanup.
//! Each test works in its own temporary directory; mounts are guarded and
//! the directory's guard unmounts whatever is left, even on panic.

use noderun_runtime::image::{Digest, ImageStore, PlatformSpec};
use noderun_runtime::snapshot::apply::{self, ApplyError, PathError};
use noderun_runtime::snapshot::{
    chain_ids, collect_garbage, unpack_image, ChainId, Mount, SnapshotError, Snapshotter, Unpacked,
};
use noderun_testkit::{privileged, MountGuard, TempDir};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use tar::EntryType;

/// One tar entry, with any name and link bytes (hostile ones included).
struct Raw<'a> {
    kind: EntryType,
    name: &'a str,
    link: &'a str,
    body: &'a [u8],
    mode: u32,
    pax: &'a [(&'a str, &'a [u8])],
}

fn raw(kind: EntryType, name: &str) -> Raw<'_> {
    let mode = if kind == EntryType::Directory {
        0o755
    } else {
        0o644
    };
    Raw {
        kind,
        name,
        link: "",
        body: b"",
        mode,
        pax: &[],
    }
}

fn file<'a>(name: &'a str, body: &'a [u8]) -> Raw<'a> {
    Raw {
        body,
        ..raw(EntryType::Regular, name)
    }
}

fn dir(name: &str) -> Raw<'_> {
    raw(EntryType::Directory, name)
}

fn link<'a>(kind: EntryType, name: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        link: target,
        ..raw(kind, name)
    }
}

/// A tar of `entries`, names written raw into the header (tar's own
/// builder would refuse the hostile ones).
fn layer(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    for e in entries {
        if !e.pax.is_empty() {
            tar.append_pax_extensions(e.pax.iter().copied()).unwrap();
        }
        let mut h = tar::Header::new_gnu();
        h.as_old_mut().name[..e.name.len()].copy_from_slice(e.name.as_bytes());
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(e.link.as_bytes());
        h.set_entry_type(e.kind);
        h.set_size(e.body.len() as u64);
        h.set_mode(e.mode);
        h.set_mtime(1_000_000);
        h.set_uid(0);
        h.set_gid(0);
        h.set_cksum();
        tar.append(&h, e.body).unwrap();
    }
    tar.into_inner().unwrap()
}

use noderun_testkit::busybox_layout;

struct Node {
    tmp: TempDir,
    images: ImageStore,
    snaps: Snapshotter,
}

fn node(prefix: &str) -> Node {
    let tmp = TempDir::new(prefix).unwrap();
    let images = ImageStore::open(&tmp.join("images"))
        .unwrap()
        .with_platform(PlatformSpec::linux_amd64());
    let snaps = Snapshotter::new(&tmp.join("snapshots")).unwrap();
    Node { tmp, images, snaps }
}

impl Node {
    /// Unpack `tars` as a layer stack; returns the chain IDs.
    fn stack(&self, tars: &[Vec<u8>]) -> Vec<ChainId> {
        let diffs: Vec<Digest> = tars.iter().map(|t| Digest::of(t)).collect();
        let chains = chain_ids(&diffs);
        for (i, tar) in tars.iter().enumerate() {
            let parent = i.checked_sub(1).map(|p| &chains[p]);
            self.snaps
                .unpack_layer(&chains[i], parent, &diffs[i], &tar[..])
                .unwrap();
        }
        chains
    }

    fn mount(&self, mount: &Mount, name: &str) -> MountGuard {
        let target = self.tmp.join(name);
        std::fs::create_dir_all(&target).unwrap();
        mount.mount(&target).unwrap();
        MountGuard::adopt(target)
    }
}

fn lowers(mount: &Mount) -> Vec<PathBuf> {
    match mount {
        Mount::Overlay { lower, .. } => lower.clone(),
        other => panic!("expected an overlay, got {other:?}"),
    }
}

#[test]
fn two_rootfs_from_busybox_share_every_layer() {
    if !privileged() {
        return;
    }
    let n = node("nr-snap-bb");
    let records = n.images.import_path(&busybox_layout(), None).unwrap();
    assert_eq!(records[0].name, "docker.io/library/busybox:latest");
    let top = unpack_image(&n.images, &n.snaps, "busybox").unwrap();
    assert_eq!(
        unpack_image(&n.images, &n.snaps, "busybox").unwrap(),
        top,
        "second unpack is a no-op"
    );

    let a = n.snaps.prepare("pod-a", Some(&top)).unwrap();
    let b = n.snaps.prepare("pod-b", Some(&top)).unwrap();
    assert_eq!(
        lowers(&a),
        lowers(&b),
        "both rootfs stand on the same layer directories"
    );
    assert_eq!(lowers(&a), vec![n.snaps.layer_dir(&top).unwrap()]);
    let ga = n.mount(&a, "rootfs-a");
    let gb = n.mount(&b, "rootfs-b");
    for root in [ga.path(), gb.path()] {
        let busybox = std::fs::metadata(root.join("bin/busybox")).unwrap();
        assert!(busybox.permissions().mode() & 0o111 != 0);
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("busybox")
        );
        assert_eq!(
            std::fs::metadata(root.join("tmp"))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777,
            0o1777
        );
    }
    std::fs::write(ga.path().join("tmp/only-in-a"), b"a").unwrap();
    std::fs::remove_file(ga.path().join("bin/ls")).unwrap();
    assert!(
        !gb.path().join("tmp/only-in-a").exists(),
        "b sees a's write"
    );
    assert!(
        gb.path().join("bin/ls").symlink_metadata().is_ok(),
        "b lost a file a removed"
    );
    assert!(n
        .snaps
        .layer_dir(&top)
        .unwrap()
        .join("bin/ls")
        .symlink_metadata()
        .is_ok());
    let usage = n.snaps.usage("pod-a").unwrap();
    assert!(
        usage.inodes >= 4,
        "upper holds /, tmp, the new file and a whiteout: {usage:?}"
    );
    drop((ga, gb));
    n.snaps.remove("pod-a").unwrap();
    n.snaps.remove("pod-b").unwrap();
}

#[test]
fn a_view_is_read_only() {
    if !privileged() {
        return;
    }
    let n = node("nr-snap-view");
    let chains = n.stack(&[layer(&[file("etc/hostname", b"base\n")])]);
    let view = n.snaps.view("look", &chains[0]).unwrap();
    assert!(
        matches!(
            view,
            Mount::Bind {
                read_only: true,
                ..
            }
        ),
        "{view:?}"
    );
    let g = n.mount(&view, "view");
    assert_eq!(
        std::fs::read(g.path().join("etc/hostname")).unwrap(),
        b"base\n"
    );
    let err = std::fs::write(g.path().join("etc/new"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    drop(g);
    n.snaps.remove("look").unwrap();
}

/// A directory outside the layer with a file in it, to check untouched.
fn outside(tmp: &TempDir) -> PathBuf {
    let out = tmp.join("outside");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("secret"), b"host secret").unwrap();
    out
}

fn assert_untouched(out: &Path) {
    let names: Vec<_> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["secret"], "something was written outside the layer");
    let meta = std::fs::symlink_metadata(out.join("secret")).unwrap();
    assert_eq!(
        meta.nlink(),
        1,
        "the outside file was hardlinked into the layer"
    );
    assert_eq!(std::fs::read(out.join("secret")).unwrap(), b"host secret");
}

fn apply_fresh(
    tmp: &TempDir,
    name: &str,
    tar: &[u8],
) -> (PathBuf, Result<apply::ApplyStats, ApplyError>) {
    let dest = tmp.join(name);
    std::fs::create_dir(&dest).unwrap();
    let result = apply::apply_layer(tar, &dest, None);
    (dest, result)
}

#[test]
fn hostile_layers_are_refused_or_contained() {
    if !privileged() {
        return;
    }
    let tmp = TempDir::new("nr-snap-hostile").unwrap();
    let out = outside(&tmp);
    let out_s = out.to_str().unwrap();
    let secret = format!("{out_s}/secret");
    let climb = "../outside/secret";

    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("dotdot", layer(&[file("../outside/pwned", b"x")])),
        (
            "dotdot-deep",
            layer(&[file("a/b/../../../outside/pwned", b"x")]),
        ),
        (
            "hardlink-climb",
            layer(&[link(EntryType::Link, "hl", climb)]),
        ),
        ("whiteout-dotdot", layer(&[file(".wh...", b"")])),
        ("whiteout-dot", layer(&[file("sub/.wh..", b"")])),
    ];
    for (name, tar) in &refused {
        let (_, result) = apply_fresh(&tmp, name, tar);
        let err = result.expect_err(name);
        assert!(
            matches!(
                err,
                ApplyError::Path {
                    reason: PathError::DotDot | PathError::BadWhiteout,
                    ..
                }
            ),
            "{name}: {err}"
        );
        assert_untouched(&out);
    }

    // Symlinks resolve inside the layer: writing through one lands inside.
    let through = layer(&[
        link(EntryType::Symlink, "abs", out_s),
        file("abs/pwned", b"x"),
        link(EntryType::Symlink, "up", "../../../../.."),
        file("up/pwned2", b"y"),
    ]);
    let (dest, result) = apply_fresh(&tmp, "symlink-out", &through);
    result.unwrap();
    assert_untouched(&out);
    assert_eq!(
        std::fs::read(dest.join(out_s.trim_start_matches('/')).join("pwned")).unwrap(),
        b"x"
    );
    assert_eq!(std::fs::read(dest.join("pwned2")).unwrap(), b"y");
    assert_eq!(
        std::fs::read_link(dest.join("abs")).unwrap(),
        out,
        "the symlink itself is kept"
    );

    // A hardlink to an outside file finds nothing of that name inside.
    for (name, tar) in [
        (
            "hardlink-abs",
            layer(&[link(EntryType::Link, "hl", &secret)]),
        ),
        (
            "hardlink-via-symlink",
            layer(&[
                link(EntryType::Symlink, "s", out_s),
                link(EntryType::Link, "hl", "s/secret"),
            ]),
        ),
    ] {
        let (_, result) = apply_fresh(&tmp, name, &tar);
        assert!(
            matches!(result, Err(ApplyError::LinkTarget { .. })),
            "{name}: {result:?}"
        );
        assert_untouched(&out);
    }

    // A file entry replaces a symlink of the same name, never writes through it.
    let replace = layer(&[link(EntryType::Symlink, "f", &secret), file("f", b"mine")]);
    let (dest, result) = apply_fresh(&tmp, "replace-symlink", &replace);
    result.unwrap();
    assert_untouched(&out);
    assert!(std::fs::symlink_metadata(dest.join("f")).unwrap().is_file());

    // An absolute entry path is taken relative to the layer root.
    let absolute = layer(&[file("/etc/noderun-absolute-test", b"z")]);
    let (dest, result) = apply_fresh(&tmp, "absolute", &absolute);
    result.unwrap();
    assert!(dest.join("etc/noderun-absolute-test").is_file());
    assert!(!Path::new("/etc/noderun-absolute-test").exists());
}

#[test]
fn whiteouts_and_opaque_dirs_hide_lower_entries_through_overlay() {
    if !privileged() {
        return;
    }
    let n = node("nr-snap-wh");
    let base = layer(&[
        dir("a"),
        file("a/x", b"x"),
        file("a/y", b"y"),
        file("keep", b"k"),
        file("gone", b"g"),
        dir("opq"),
        file("opq/old", b"o"),
    ]);
    let top = layer(&[
        file(".wh.gone", b""),
        file("a/.wh.x", b""),
        file("opq/.wh..wh..opq", b""),
        file("opq/new", b"n"),
    ]);
    let chains = n.stack(&[base, top]);

    let upper_layer = n.snaps.layer_dir(&chains[1]).unwrap();
    let wh = std::fs::symlink_metadata(upper_layer.join("gone")).unwrap();
    assert!(
        wh.file_type().is_char_device() && wh.rdev() == 0,
        "whiteout is a 0/0 char device"
    );
    assert_eq!((wh.uid(), wh.gid()), (0, 0));
    assert_eq!(
        xattr(&upper_layer.join("opq"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );

    let mount = n.snaps.prepare("ctr", Some(&chains[1])).unwrap();
    assert_eq!(lowers(&mount).len(), 2);
    let g = n.mount(&mount, "rootfs");
    let root = g.path();
    assert!(
        root.join("keep").exists() && root.join("a/y").exists() && root.join("opq/new").exists()
    );
    for hidden in ["gone", "a/x", "opq/old"] {
        assert!(
            root.join(hidden).symlink_metadata().is_err(),
            "{hidden} is visible"
        );
    }
}

/// An extended attribute of `path` itself (not followed).
fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let p = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let n = std::ffi::CString::new(name).unwrap();
    let mut buf = vec![0u8; 256];
    // SAFETY: NUL-terminated strings and a buffer of the length passed.
    let len =
        unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    (len >= 0).then(|| {
        buf.truncate(len as usize);
        buf
    })
}

#[test]
fn entry_metadata_devices_links_and_xattrs_are_applied() {
    if !privileged() {
        return;
    }
    let tmp = TempDir::new("nr-snap-meta").unwrap();
    let xattrs: &[(&str, &[u8])] = &[
        ("SCHILY.xattr.user.origin", b"layer"),
        ("SCHILY.xattr.trusted.overlay.redirect", b"/etc"),
        ("uid", b"1234"),
        ("gid", b"5678"),
        ("mtime", b"1600000000.25"),
    ];
    let tar = layer(&[
        Raw {
            mode: 0o4755,
            pax: xattrs,
            ..file("bin/tool", b"#!/bin/sh\n")
        },
        link(EntryType::Link, "bin/tool-again", "bin/tool"),
        Raw {
            mode: 0o666,
            ..raw(EntryType::Fifo, "run/pipe")
        },
        Raw {
            mode: 0o666,
            ..raw(EntryType::Char, "dev/null")
        },
    ]);
    let (dest, result) = apply_fresh(&tmp, "meta", &tar);
    let stats = result.unwrap();
    assert!(
        stats
            .skipped
            .iter()
            .any(|s| s.contains("trusted.overlay.redirect")),
        "{:?}",
        stats.skipped
    );
    let tool = std::fs::metadata(dest.join("bin/tool")).unwrap();
    assert_eq!((tool.uid(), tool.gid()), (1234, 5678));
    assert_eq!(
        tool.permissions().mode() & 0o7777,
        0o4755,
        "setuid kept after chown"
    );
    assert_eq!(
        (tool.mtime(), tool.mtime_nsec()),
        (1_600_000_000, 250_000_000)
    );
    assert_eq!(tool.nlink(), 2);
    assert_eq!(
        std::fs::metadata(dest.join("bin/tool-again"))
            .unwrap()
            .ino(),
        tool.ino()
    );
    assert_eq!(
        xattr(&dest.join("bin/tool"), "user.origin").as_deref(),
        Some(&b"layer"[..])
    );
    assert_eq!(
        xattr(&dest.join("bin/tool"), "trusted.overlay.redirect"),
        None
    );
    assert!(std::fs::metadata(dest.join("run/pipe"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::metadata(dest.join("dev/null"))
        .unwrap()
        .file_type()
        .is_char_device());
    assert_eq!(stats.diff_id, Some(Digest::of(&tar)));
}

#[test]
fn concurrent_unpacks_of_one_layer_apply_it_once() {
    if !privileged() {
        return;
    }
    let n = node("nr-snap-race");
    let tar = Arc::new(layer(&[dir("data"), file("data/blob", &[7u8; 1 << 20])]));
    let diff = Digest::of(&tar);
    let chain = ChainId::extend(None, &diff);
    let barrier = Arc::new(Barrier::new(4));
    let outcomes: Vec<Unpacked> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (tar, barrier, snaps) = (tar.clone(), barrier.clone(), n.snaps.clone());
                s.spawn(move || {
                    barrier.wait();
                    snaps.unpack_layer(&chain, None, &diff, &tar[..]).unwrap()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o, Unpacked::Applied(_)))
        .count();
    assert_eq!(applied, 1, "{outcomes:?}");
    let listed = n.snaps.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        std::fs::read_dir(n.tmp.join("snapshots/snapshots"))
            .unwrap()
            .count(),
        1,
        "one directory"
    );
}

#[test]
fn a_hundred_and_twenty_layers_mount_through_short_paths() {
    if !privileged() {
        return;
    }
    let n = node("nr-snap-deep");
    let tars: Vec<Vec<u8>> = (0..120)
        .map(|i| layer(&[file(&format!("f{i:03}"), format!("{i}").as_bytes())]))
        .collect();
    let chains = n.stack(&tars);
    let mount = n.snaps.prepare("deep", chains.last()).unwrap();
    assert_eq!(lowers(&mount).len(), 120);
    let absolute: usize = mount.options().iter().map(|o| o.len() + 1).sum();
    assert!(
        absolute > 4096,
        "absolute options ({absolute} bytes) would fit a page: not a fallback test"
    );
    let g = n.mount(&mount, "rootfs");
    for i in [0, 59, 119] {
        assert_eq!(
            std::fs::read_to_string(g.path().join(format!("f{i:03}"))).unwrap(),
            i.to_string()
        );
    }
    std::fs::write(g.path().join("written"), b"w").unwrap();
    assert!(n.snaps.root().join("snapshots").exists());
    assert_eq!(
        std::env::current_dir().unwrap(),
        Path::new(env!("CARGO_MANIFEST_DIR")),
        "our cwd never moved"
    );
}

#[test]
fn a_layer_that_does_not_match_its_diff_id_leaves_nothing() {
    if !privileged() {
        return;
    }
    let n = node("nr-snap-bad");
    let tar = layer(&[file("x", b"real")]);
    let claimed = Digest::of(b"something else");
    let chain = ChainId::extend(None, &claimed);
    let err = n
        .snaps
        .unpack_layer(&chain, None, &claimed, &tar[..])
        .unwrap_err();
    assert!(
        matches!(&err, SnapshotError::Apply { .. }) && err.to_string().contains("diff ID"),
        "{err}"
    );
    assert!(!n.snaps.exists(&chain).unwrap());
    assert_eq!(
        std::fs::read_dir(n.tmp.join("snapshots/snapshots"))
            .unwrap()
            .count(),
        0
    );
    let wrong_chain = ChainId::extend(Some(&chain), &claimed);
    let err = n
        .snaps
        .unpack_layer(&wrong_chain, None, &claimed, &tar[..])
        .unwrap_err();
    assert!(matches!(err, SnapshotError::ChainMismatch { .. }), "{err}");
}

#[test]
fn commit_turns_an_upper_into_a_shared_layer() {
    if !privileged() {
        return;
    }
    let n = node("nr-snap-commit");
    let chains = n.stack(&[layer(&[file("base", b"b")])]);
    let mount = n.snaps.prepare("build", Some(&chains[0])).unwrap();
    let g = n.mount(&mount, "build");
    std::fs::write(g.path().join("added"), b"a").unwrap();
    drop(g);
    let committed = ChainId::extend(Some(&chains[0]), &Digest::of(b"the diff of build"));
    n.snaps.commit("build", &committed).unwrap();
    let on_top = n.snaps.prepare("run", Some(&committed)).unwrap();
    assert_eq!(lowers(&on_top).len(), 2);
    let g = n.mount(&on_top, "run");
    assert!(g.path().join("added").exists() && g.path().join("base").exists());
    drop(g);
    let err = n.snaps.remove(&chains[0].to_string()).unwrap_err();
    assert!(matches!(err, SnapshotError::HasChildren { .. }), "{err}");
    n.snaps.remove("run").unwrap();
    n.snaps.remove(&committed.to_string()).unwrap();
    n.snaps.remove(&chains[0].to_string()).unwrap();
    assert!(n.snaps.list().unwrap().is_empty());
}

#[test]
fn gc_keeps_what_images_and_containers_use_and_removes_the_rest() {
    if !privileged() {
        return;
    }
    let n = node("nr-snap-gc");
    n.images.import_path(&busybox_layout(), None).unwrap();
    let top = unpack_image(&n.images, &n.snaps, "busybox").unwrap();
    let stray = n.stack(&[layer(&[file("stray", b"s")])]);
    n.snaps.prepare("ctr", Some(&top)).unwrap();

    let report = collect_garbage(&n.images, &n.snaps).unwrap();
    assert_eq!(
        report.snapshots_removed, 1,
        "only the stray layer goes: {report:?}"
    );
    assert!(!n.snaps.exists(&stray[0]).unwrap());
    assert_eq!(report.blobs.blobs_removed, 0);

    n.images.remove("busybox").unwrap();
    let report = collect_garbage(&n.images, &n.snaps).unwrap();
    assert_eq!(
        report.blobs.blobs_removed, 3,
        "manifest, config, layer: {report:?}"
    );
    assert!(
        n.snaps.exists(&top).unwrap(),
        "the running container's layers stay"
    );

    n.snaps.remove("ctr").unwrap();
    collect_garbage(&n.images, &n.snaps).unwrap();
    assert!(n.snaps.list().unwrap().is_empty());
    assert!(n.images.content().list().unwrap().is_empty());
    for sub in [
        "snapshots/snapshots",
        "snapshots/names",
        "snapshots/locks",
        "images/content/blobs/sha256",
    ] {
        let left: Vec<_> = std::fs::read_dir(n.tmp.join(sub))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert!(left.is_empty(), "{sub} still holds {left:?}");
    }
}

#[test]
fn abandoned_snapshot_directories_go_and_named_ones_stay() {
    if !privileged() {
        return;
    }
    let n = node("nr-snap-abandoned");
    let chains = n.stack(&[layer(&[file("base", b"b")])]);
    n.snaps.prepare("ctr", Some(&chains[0])).unwrap();
    let listed = n.snaps.list().unwrap();
    // What a crash leaves: an unpack's directory half filled, a prepare's
    // directory made but never named.
    let dirs = n.tmp.join("snapshots/snapshots");
    std::fs::create_dir_all(dirs.join("0badc0de/fs/usr/bin")).unwrap();
    std::fs::write(dirs.join("0badc0de/fs/usr/bin/half"), b"cut short").unwrap();
    std::fs::create_dir_all(dirs.join("0badf00d/work")).unwrap();

    assert_eq!(n.snaps.remove_abandoned().unwrap(), 2);
    assert!(!dirs.join("0badc0de").exists() && !dirs.join("0badf00d").exists());
    assert_eq!(n.snaps.list().unwrap(), listed);
    let mount = n.snaps.mounts("ctr").unwrap();
    let g = n.mount(&mount, "ctr");
    assert_eq!(std::fs::read(g.path().join("base")).unwrap(), b"b");
    drop(g);
    assert_eq!(n.snaps.remove_abandoned().unwrap(), 0, "nothing more");
}
