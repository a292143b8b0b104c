//! Export of images as an OCI image layout in a tar stream: `oci-layout`,
//! an `index.json` with one entry per image (named by both the OCI
//! `ref.name` and containerd's name annotation, so any importer finds the
//! full name), and every blob the images need, each once. The tar is
//! deterministic (sorted blobs, zero mtimes and owners): exporting the
//! same images twice gives the same bytes.

use super::content::ContentStore;
use super::digest::Digest;
use super::manifest::Image;
use super::media;
use super::oci::{CONTAINERD_NAME, REF_NAME};
use super::records::ImageRecord;
use super::ImageError;
use serde_json::json;
use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::Path;

/// Write `images` (each with its record) as an OCI layout tar to `out`.
pub fn export(
    content: &ContentStore,
    images: &[(ImageRecord, Image)],
    out: impl Write,
) -> Result<(), ImageError> {
    // Built as JSON values rather than oci-spec types: their annotations
    // are a HashMap, whose order would change the bytes from run to run.
    let mut descriptors = Vec::with_capacity(images.len());
    let mut blobs = BTreeSet::new();
    for (record, image) in images {
        descriptors.push(json!({
            "mediaType": record.media_type,
            "digest": record.manifest.to_string(),
            "size": record.size,
            "annotations": {CONTAINERD_NAME: record.name, REF_NAME: record.name},
        }));
        blobs.extend(image.blobs());
    }
    let index =
        json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": descriptors});
    let index_json = serde_json::to_vec(&index).map_err(|source| ImageError::Records {
        path: "index.json".into(),
        source,
    })?;
    let tar_err = |e: io::Error| ImageError::io("write export tar", Path::new("-"), e);
    let mut tar = tar::Builder::new(out);
    append_dir(&mut tar, "blobs/").map_err(tar_err)?;
    append_dir(&mut tar, "blobs/sha256/").map_err(tar_err)?;
    for digest in &blobs {
        append_blob(&mut tar, content, digest)?;
    }
    append_file(&mut tar, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(tar_err)?;
    append_file(&mut tar, "index.json", &index_json).map_err(tar_err)?;
    tar.into_inner()
        .and_then(|mut w| w.flush())
        .map_err(tar_err)
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

fn append_dir<W: Write>(tar: &mut tar::Builder<W>, name: &str) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0o755, 0);
    tar.append_data(&mut h, name, io::empty())
}

fn append_file<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
    tar.append_data(&mut h, name, bytes)
}

fn append_blob<W: Write>(
    tar: &mut tar::Builder<W>,
    content: &ContentStore,
    digest: &Digest,
) -> Result<(), ImageError> {
    let path = content.path(digest);
    let file = content.open(digest)?;
    let size = file
        .metadata()
        .map_err(|e| ImageError::io("stat", &path, e))?
        .len();
    let mut h = header(tar::EntryType::Regular, 0o644, size);
    tar.append_data(&mut h, format!("blobs/sha256/{}", digest.hex()), file)
        .map_err(|e| ImageError::io("export", &path, e))
}
