//! Image store tests on archives built here: the content store's
//! verification, OCI layout import (directory and tar, multi-platform,
//! names from annotations), `docker save` import, export round trips, and
//! removal with garbage collection (partial downloads included). No mounts: these need no root, but
//! run under the same rules (unique temp dirs removed on drop).

use noderun_runtime::image::{ContentError, Digest, ImageError, ImageStore, PlatformSpec};
use noderun_testkit::TempDir;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// A single-file layer tar (uncompressed) and its digest.
fn layer(file: &str, body: &[u8]) -> Vec<u8> {
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    tar.append_data(&mut h, file, body).unwrap();
    tar.into_inner().unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn config(arch: &str, diff_ids: &[Digest]) -> Vec<u8> {
    let ids: Vec<String> = diff_ids.iter().map(ToString::to_string).collect();
    serde_json::to_vec(&json!({
        "architecture": arch, "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": ids},
    }))
    .unwrap()
}

/// An OCI image layout being assembled in memory.
#[derive(Default)]
struct Layout {
    blobs: BTreeMap<String, Vec<u8>>,
    entries: Vec<Value>,
}

impl Layout {
    fn blob(&mut self, bytes: Vec<u8>) -> (String, usize) {
        let digest = Digest::of(&bytes);
        let size = bytes.len();
        self.blobs.insert(digest.hex(), bytes);
        (digest.to_string(), size)
    }

    /// Add a one-layer image for `arch`; returns the manifest digest.
    fn image(&mut self, arch: &str, file_body: &[u8], annotations: Value) -> Digest {
        let tar = layer("hello.txt", file_body);
        let diff_id = Digest::of(&tar);
        let (layer_digest, layer_size) = self.blob(gzip(&tar));
        let (config_digest, config_size) = self.blob(config(arch, &[diff_id]));
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest, "size": layer_size}],
        }))
        .unwrap();
        let (digest, size) = self.blob(manifest);
        self.entries.push(json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": size,
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": annotations,
        }));
        Digest::parse(&digest).unwrap()
    }

    fn files(&self) -> Vec<(String, Vec<u8>)> {
        let index = json!({"schemaVersion": 2, "manifests": self.entries});
        let mut files = vec![
            (
                "oci-layout".to_string(),
                br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
            ),
            (
                "index.json".to_string(),
                serde_json::to_vec(&index).unwrap(),
            ),
        ];
        for (hex, bytes) in &self.blobs {
            files.push((format!("blobs/sha256/{hex}"), bytes.clone()));
        }
        files
    }
}

fn write_dir(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

fn write_tar(path: &Path, files: &[(String, Vec<u8>)]) {
    let mut tar = tar::Builder::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, &bytes[..]).unwrap();
    }
    tar.finish().unwrap();
}

fn store(tmp: &TempDir) -> ImageStore {
    ImageStore::open(&tmp.join("state"))
        .unwrap()
        .with_platform(PlatformSpec::linux_amd64())
}

#[test]
fn content_store_keeps_only_verified_blobs() {
    let tmp = TempDir::new("nr-content").unwrap();
    let images = store(&tmp);
    let content = images.content();
    let d = content.ingest(&b"hello"[..], None).unwrap();
    assert_eq!(d, Digest::of(b"hello"));
    assert!(content.exists(&d));
    assert_eq!(content.size(&d).unwrap(), 5);
    assert_eq!(content.read(&d).unwrap(), b"hello");
    assert_eq!(
        content
            .ingest(&b"ignored: already present"[..], Some(&d))
            .unwrap(),
        d
    );

    let claimed = Digest::of(b"what the sender promised");
    let err = content
        .ingest(&b"what arrived"[..], Some(&claimed))
        .unwrap_err();
    assert!(matches!(err, ContentError::DigestMismatch { .. }), "{err}");
    assert!(!content.exists(&claimed) && !content.exists(&Digest::of(b"what arrived")));
    let err = content
        .ingest_exact(&b"12345"[..], &Digest::of(b"12345"), 4)
        .unwrap_err();
    assert!(matches!(err, ContentError::SizeMismatch { .. }), "{err}");
    assert_eq!(
        content.list().unwrap(),
        vec![d],
        "nothing but the good blob, no temp files"
    );
    let names = std::fs::read_dir(content.path(&d).parent().unwrap())
        .unwrap()
        .count();
    assert_eq!(names, 1);

    assert!(content.delete(&d).unwrap());
    assert!(!content.delete(&d).unwrap());
    assert!(matches!(
        content.open(&d),
        Err(ContentError::NotFound { .. })
    ));
}

#[test]
fn oci_layout_dir_picks_the_platform_and_names() {
    let tmp = TempDir::new("nr-ocidir").unwrap();
    let mut layout = Layout::default();
    let name = json!({"org.opencontainers.image.ref.name": "example.com/app:1.0"});
    layout.image("arm64", b"arm", name.clone());
    let amd = layout.image("amd64", b"amd", name);
    layout.image(
        "amd64",
        b"tagged",
        json!({"org.opencontainers.image.ref.name": "edge"}),
    );
    let dir = tmp.join("layout");
    write_dir(&dir, &layout.files());

    let images = store(&tmp);
    let records = images.import_path(&dir, Some("example.com/app")).unwrap();
    let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["example.com/app:1.0", "example.com/app:edge"]);
    assert_eq!(
        records[0].manifest, amd,
        "linux/amd64 chosen from the index"
    );
    let image = images.image("example.com/app:1.0").unwrap();
    assert_eq!(image.layers.len(), 1);
    assert_eq!(
        image.layers[0].diff_id,
        Digest::of(&layer("hello.txt", b"amd"))
    );
    assert_eq!(images.list().unwrap().len(), 2);

    let arm_only = store(&tmp).with_platform(PlatformSpec {
        os: "linux".into(),
        architecture: "riscv64".into(),
        variant: None,
    });
    let err = arm_only
        .import_path(&dir, Some("example.com/app"))
        .unwrap_err();
    assert!(
        err.to_string().contains("linux/arm64, linux/amd64"),
        "{err}"
    );
}

#[test]
fn oci_layout_tar_refuses_a_corrupted_blob() {
    let tmp = TempDir::new("nr-ocitar").unwrap();
    let mut layout = Layout::default();
    layout.image(
        "amd64",
        b"good",
        json!({"org.opencontainers.image.ref.name": "busybox:good"}),
    );
    let good = tmp.join("good.tar");
    write_tar(&good, &layout.files());
    let images = store(&tmp);
    let records = images.import_path(&good, None).unwrap();
    assert_eq!(records[0].name, "docker.io/library/busybox:good");

    let mut files = layout.files();
    let (name, bytes) = files
        .iter_mut()
        .find(|(n, b)| n.starts_with("blobs/") && b.len() > 100)
        .unwrap();
    let victim = Digest::from_hex(name.trim_start_matches("blobs/sha256/")).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    let bad = tmp.join("bad.tar");
    write_tar(&bad, &files);
    let fresh = ImageStore::open(&tmp.join("fresh"))
        .unwrap()
        .with_platform(PlatformSpec::linux_amd64());
    let err = fresh.import_path(&bad, None).unwrap_err();
    assert!(
        matches!(err, ImageError::Content(ContentError::DigestMismatch { expected, .. }) if expected == victim),
        "{err}"
    );
    assert!(
        !fresh.content().exists(&victim),
        "the corrupted blob is not stored"
    );
    assert!(
        fresh.list().unwrap().is_empty(),
        "no record for a failed import"
    );
    let sweep = fresh.gc().unwrap();
    assert_eq!(sweep.temps_removed, 0, "no temp file was left behind");
    assert!(fresh.content().list().unwrap().is_empty());
}

#[test]
fn docker_save_archives_become_oci_images() {
    let tmp = TempDir::new("nr-docker").unwrap();
    let tar = layer("etc/motd", b"from docker");
    let diff_id = Digest::of(&tar);
    let cfg = config("amd64", &[diff_id]);
    let cfg_name = format!("{}.json", Digest::of(&cfg).hex());
    let manifest = json!([{"Config": cfg_name, "RepoTags": ["myapp:v1", "localhost:5000/myapp:v1"], "Layers": ["0123abcd/layer.tar"]}]);
    let files = vec![
        (
            "manifest.json".to_string(),
            serde_json::to_vec(&manifest).unwrap(),
        ),
        (cfg_name.clone(), cfg.clone()),
        ("0123abcd/layer.tar".to_string(), tar.clone()),
    ];
    let as_tar = tmp.join("docker.tar");
    write_tar(&as_tar, &files);
    let as_dir = tmp.join("docker-dir");
    write_dir(&as_dir, &files);

    for (i, source) in [&as_tar, &as_dir].into_iter().enumerate() {
        let images = ImageStore::open(&tmp.join(format!("store-{i}")))
            .unwrap()
            .with_platform(PlatformSpec::linux_amd64());
        let records = images.import_path(source, None).unwrap();
        let names: Vec<&str> = records.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            ["docker.io/library/myapp:v1", "localhost:5000/myapp:v1"]
        );
        let image = images.image("myapp:v1").unwrap();
        assert_eq!(
            image
                .manifest
                .media_type()
                .as_ref()
                .map(|m| m.to_string())
                .as_deref(),
            Some("application/vnd.oci.image.manifest.v1+json")
        );
        assert_eq!(
            image.layers[0].digest, diff_id,
            "an uncompressed layer's digest is its diff ID"
        );
        assert_eq!(
            image.layers[0].media_type,
            "application/vnd.oci.image.layer.v1.tar"
        );
        assert_eq!(image.config_digest, Digest::of(&cfg));
    }

    let mut bad = files.clone();
    bad[2].1 = layer("etc/motd", b"tampered");
    let bad_tar = tmp.join("bad-docker.tar");
    write_tar(&bad_tar, &bad);
    let images = ImageStore::open(&tmp.join("s-bad"))
        .unwrap()
        .with_platform(PlatformSpec::linux_amd64());
    let err = images.import_path(&bad_tar, None).unwrap_err();
    assert!(
        matches!(
            err,
            ImageError::Content(ContentError::DigestMismatch { .. })
        ),
        "{err}"
    );

    let escape = vec![(
        "manifest.json".to_string(),
        serde_json::to_vec(&json!([{"Config": "../../etc/passwd", "Layers": []}])).unwrap(),
    )];
    let escape_dir = tmp.join("escape");
    write_dir(&escape_dir, &escape);
    let err = images.import_path(&escape_dir, Some("x")).unwrap_err();
    assert!(matches!(err, ImageError::Archive { .. }), "{err}");
}

#[test]
fn export_round_trips_and_is_deterministic() {
    let tmp = TempDir::new("nr-export").unwrap();
    let mut layout = Layout::default();
    layout.image(
        "amd64",
        b"one",
        json!({"io.containerd.image.name": "docker.io/library/one:latest"}),
    );
    layout.image(
        "amd64",
        b"two",
        json!({"org.opencontainers.image.ref.name": "quay.io/two:2"}),
    );
    let dir = tmp.join("layout");
    write_dir(&dir, &layout.files());
    let images = store(&tmp);
    images.import_path(&dir, None).unwrap();

    let mut first = Vec::new();
    images
        .export(&["one", "quay.io/two:2"], &mut first)
        .unwrap();
    let mut second = Vec::new();
    images
        .export(&["one", "quay.io/two:2"], &mut second)
        .unwrap();
    assert!(first == second, "the same images export to different bytes");

    let exported = tmp.join("export.tar");
    std::fs::write(&exported, &first).unwrap();
    let other = ImageStore::open(&tmp.join("other"))
        .unwrap()
        .with_platform(PlatformSpec::linux_amd64());
    let records = other.import_path(&exported, None).unwrap();
    assert_eq!(records, images.list().unwrap());
    assert_eq!(
        other.content().list().unwrap(),
        images.content().list().unwrap()
    );
}

#[test]
fn remove_then_gc_leaves_an_empty_store() {
    let tmp = TempDir::new("nr-imggc").unwrap();
    let mut layout = Layout::default();
    layout.image(
        "amd64",
        b"a",
        json!({"org.opencontainers.image.ref.name": "a:1"}),
    );
    layout.image(
        "amd64",
        b"b",
        json!({"org.opencontainers.image.ref.name": "b:1"}),
    );
    let dir = tmp.join("layout");
    write_dir(&dir, &layout.files());
    let images = store(&tmp);
    images.import_path(&dir, None).unwrap();
    assert_eq!(images.content().list().unwrap().len(), 6);

    images.remove("a:1").unwrap();
    assert!(matches!(
        images.remove("a:1"),
        Err(ImageError::NotFound { .. })
    ));
    let sweep = images.gc().unwrap();
    assert_eq!(sweep.blobs_removed, 3, "manifest, config and layer of a:1");
    assert!(images.image("b:1").is_ok(), "b:1 is intact");

    images.remove("docker.io/library/b:1").unwrap();
    images.gc().unwrap();
    assert!(images.list().unwrap().is_empty());
    assert!(images.content().list().unwrap().is_empty());
    assert!(matches!(
        images.get("Bad Name"),
        Err(ImageError::InvalidName { .. })
    ));
}

#[test]
fn gc_removes_partial_downloads_no_pull_holds() {
    let tmp = TempDir::new("nr-imggc-partial").unwrap();
    let images = store(&tmp);
    let abandoned = Digest::of(b"abandoned");
    let running = Digest::of(b"running");
    std::fs::write(images.content().partial_path(&abandoned), b"half a layer").unwrap();
    // A pull in progress holds its partial file locked.
    let held = images.content().lock_partial(&running).unwrap();
    held.file().write_all(b"still downloading").unwrap();

    let sweep = images.gc().unwrap();
    assert_eq!(sweep.partials_removed, 1, "{sweep:?}");
    assert_eq!(sweep.bytes_removed, b"half a layer".len() as u64);
    assert!(!images.content().partial_path(&abandoned).exists());
    assert_eq!(
        std::fs::read(images.content().partial_path(&running)).unwrap(),
        b"still downloading",
        "a held partial file is left alone"
    );

    // Once the pull is gone (its lock with it), the file is collected.
    drop(held);
    assert_eq!(images.gc().unwrap().partials_removed, 1);
    assert!(!images.content().partial_path(&running).exists());
    assert!(images.content().list().unwrap().is_empty());
}
