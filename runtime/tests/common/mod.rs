//! An image built in the test: a few layers of pseudo-random
//! (incompressible) bytes, gzip-compressed, with config and OCI manifest,
//! and its OCI image layout on disk (tag `v1`). Shared by the pull and
//! snapshot tests (each test crate uses part of it).
#![allow(dead_code)]

use noderun_runtime::image::Digest;
use serde_json::json;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A layer tar with one file of `size` pseudo-random (incompressible) bytes.
pub fn layer(name: &str, size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let body: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    tar.append_data(&mut h, name, &body[..]).unwrap();
    tar.into_inner().unwrap()
}

/// An image's blobs: manifest bytes and every blob by digest.
pub struct Built {
    pub manifest: Vec<u8>,
    pub config: Digest,
    pub layers: Vec<Digest>,
    pub blobs: BTreeMap<Digest, Vec<u8>>,
}

pub fn build_image() -> Built {
    let mut blobs = BTreeMap::new();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut descs = Vec::new();
    for (i, size) in [3 << 20, 64 << 10, 1000].into_iter().enumerate() {
        let tar = layer(&format!("file{i}"), size, i as u64 + 7);
        diff_ids.push(Digest::of(&tar).to_string());
        let gz = gzip(&tar);
        let d = Digest::of(&gz);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": gz.len()}));
        layers.push(d);
        blobs.insert(d, gz);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = Digest::of(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    blobs.insert(config_digest, config);
    blobs.insert(Digest::of(&manifest), manifest.clone());
    Built {
        manifest,
        config: config_digest,
        layers,
        blobs,
    }
}

/// Write `built` as an OCI layout with the tag `v1`.
pub fn write_layout(dir: &Path, built: &Built) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for (d, bytes) in &built.blobs {
        std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    }
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": Digest::of(&built.manifest).to_string(), "size": built.manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    }]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}
