//! Import of a `docker save` archive (a directory or tar holding
//! `manifest.json`, a config per image and one tar per layer). docker's
//! own manifest format is converted into OCI descriptors: an OCI manifest
//! is written for each image, its config and layers stored as blobs. Every
//! blob is verified: a config named `<hex>.json` or `blobs/sha256/<hex>`
//! must hash to that name, an uncompressed layer to its diff ID from the
//! config.

use super::archive::{blob_name_digest, normalize_member, Metadata, Source};
use super::content::ContentStore;
use super::digest::Digest;
use super::manifest::{self, Image, PlatformSpec};
use super::media::{self, Compression};
use super::records::ImageRecord;
use super::{normalize_name, ImageError};
use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};
use std::collections::BTreeMap;
use std::io::Read;

#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Entry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

/// Import every image of a docker archive for `platform`.
pub fn import(
    content: &ContentStore,
    source: &Source,
    meta: &Metadata,
    platform: &PlatformSpec,
    default_name: Option<&str>,
) -> Result<Vec<ImageRecord>, ImageError> {
    let bytes = meta.docker_manifest.as_deref().unwrap_or_default();
    let entries: Vec<Entry> = serde_json::from_slice(bytes).map_err(|e| ImageError::Layout {
        path: source.path().into(),
        reason: format!("manifest.json: {e}"),
    })?;
    let member = |name: &str| {
        normalize_member(name).ok_or_else(|| ImageError::Archive {
            path: source.path().into(),
            member: name.into(),
            reason: "is not a path inside the archive",
        })
    };
    let mut wanted_configs = BTreeMap::new();
    for entry in &entries {
        let name = member(&entry.config)?;
        let expected = blob_name_digest(&name).or_else(|| config_name_digest(&name));
        wanted_configs.insert(name, expected);
    }
    let configs = source.ingest_members(content, &wanted_configs)?;
    let mut wanted_layers = BTreeMap::new();
    for entry in &entries {
        let config = manifest::read_config(content, &configs[&member(&entry.config)?])?;
        for (i, layer) in entry.layers.iter().enumerate() {
            let name = member(layer)?;
            let diff_id = config
                .rootfs()
                .diff_ids()
                .get(i)
                .map(|d| Digest::parse(d))
                .transpose()?;
            wanted_layers.insert(name.clone(), blob_name_digest(&name).or(diff_id));
        }
    }
    let layers = source.ingest_members(content, &wanted_layers)?;
    let mut records = Vec::new();
    for entry in &entries {
        let config = configs[&member(&entry.config)?];
        let layer_digests = entry
            .layers
            .iter()
            .map(|l| Ok(layers[&member(l)?]))
            .collect::<Result<Vec<_>, ImageError>>()?;
        let (manifest_digest, size) = write_manifest(content, &config, &layer_digests)?;
        Image::load(content, &manifest_digest, platform)?;
        for name in entry_names(entry, default_name, &manifest_digest)? {
            records.push(ImageRecord {
                name,
                manifest: manifest_digest,
                media_type: media::OCI_MANIFEST.into(),
                size,
            });
        }
    }
    Ok(records)
}

/// docker names configs `<hex>.json` after their digest.
fn config_name_digest(name: &str) -> Option<Digest> {
    let file = name.rsplit('/').next()?;
    Digest::from_hex(file.strip_suffix(".json")?).ok()
}

fn entry_names(
    entry: &Entry,
    default_name: Option<&str>,
    manifest: &Digest,
) -> Result<Vec<String>, ImageError> {
    match (&entry.repo_tags, default_name) {
        (Some(tags), _) if !tags.is_empty() => tags.iter().map(|t| normalize_name(t)).collect(),
        (_, Some(name)) => Ok(vec![normalize_name(name)?]),
        _ => Err(ImageError::Unnamed {
            manifest: *manifest,
            hint: "the archive entry has no RepoTags; give a name".into(),
        }),
    }
}

/// Write an OCI manifest for `config` and `layers` (blobs already stored)
/// and return its digest and size.
fn write_manifest(
    content: &ContentStore,
    config: &Digest,
    layers: &[Digest],
) -> Result<(Digest, u64), ImageError> {
    let config_desc = Descriptor::new(MediaType::ImageConfig, content.size(config)?, *config);
    let mut layer_descs = Vec::with_capacity(layers.len());
    for layer in layers {
        let mut head = [0u8; 4];
        let n = read_head(content, layer, &mut head)?;
        let media_type = Compression::sniff(&head[..n]).oci_layer_media_type();
        layer_descs.push(Descriptor::new(
            MediaType::from(media_type),
            content.size(layer)?,
            *layer,
        ));
    }
    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config_desc)
        .layers(layer_descs)
        .build()
        .map_err(|e| ImageError::Layout {
            path: content.path(config),
            reason: format!("building the OCI manifest: {e}"),
        })?;
    let bytes = serde_json::to_vec(&manifest).map_err(|source| ImageError::Json {
        what: "image manifest",
        digest: *config,
        source,
    })?;
    let digest = content.ingest(&bytes[..], None)?;
    Ok((digest, bytes.len() as u64))
}

fn read_head(
    content: &ContentStore,
    digest: &Digest,
    head: &mut [u8],
) -> Result<usize, ImageError> {
    let path = content.path(digest);
    let mut file = content.open(digest)?;
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return Err(ImageError::io("read", &path, e)),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_encode_digests() {
        let d = Digest::of(b"{}");
        assert_eq!(config_name_digest(&format!("{}.json", d.hex())), Some(d));
        assert_eq!(config_name_digest(&format!("x/{}.json", d.hex())), Some(d));
        assert_eq!(config_name_digest("config.json"), None);
    }
}
