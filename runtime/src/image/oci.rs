//! Import of an OCI image layout (a directory or a tar of one):
//! `oci-layout`, `index.json` and `blobs/sha256/<hex>`. Each top-level
//! index entry is named by its `io.containerd.image.name` or
//! `org.opencontainers.image.ref.name` annotation (a bare tag there is
//! joined to the repository the caller gives); entries of one name are the
//! platforms of one image, of which the store's platform is chosen, and
//! nested indexes are followed. Every blob an image needs is fetched and
//! verified; the result is one record per name.

use super::archive::{Metadata, Source};
use super::content::ContentStore;
use super::manifest::{self, descriptor_digest, Image, PlatformSpec};
use super::media::{self, Kind};
use super::records::ImageRecord;
use super::{normalize_name, ImageError};
use oci_spec::image::{Descriptor, ImageIndex, ImageIndexBuilder};
use std::collections::BTreeMap;

/// The OCI annotation naming an index entry (often just a tag).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
/// containerd's annotation carrying the full image name.
pub const CONTAINERD_NAME: &str = "io.containerd.image.name";

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LayoutFile {
    image_layout_version: String,
}

/// Import every image of an OCI layout for `platform`.
pub fn import(
    content: &ContentStore,
    source: &Source,
    meta: &Metadata,
    platform: &PlatformSpec,
    default_name: Option<&str>,
) -> Result<Vec<ImageRecord>, ImageError> {
    let layout_err = |reason: String| ImageError::Layout {
        path: source.path().into(),
        reason,
    };
    let layout: LayoutFile = serde_json::from_slice(meta.oci_layout.as_deref().unwrap_or_default())
        .map_err(|e| layout_err(format!("oci-layout: {e}")))?;
    if !layout.image_layout_version.starts_with("1.") {
        return Err(layout_err(format!(
            "unsupported imageLayoutVersion {:?}",
            layout.image_layout_version
        )));
    }
    let index: ImageIndex = serde_json::from_slice(meta.index.as_deref().unwrap_or_default())
        .map_err(|e| layout_err(format!("index.json: {e}")))?;
    let mut groups: BTreeMap<String, Vec<Descriptor>> = BTreeMap::new();
    for entry in index.manifests() {
        if matches!(
            media::kind(entry.media_type().as_ref()),
            Kind::Index | Kind::Manifest
        ) {
            groups
                .entry(entry_name(entry, default_name)?)
                .or_default()
                .push(entry.clone());
        }
    }
    if groups.is_empty() {
        return Err(layout_err("index.json lists no image manifest".into()));
    }
    let mut records = Vec::with_capacity(groups.len());
    for (name, entries) in groups {
        let chosen = choose(content, source, &entries, platform)?;
        records.push(fetch_image(content, source, &chosen, platform, name)?);
    }
    Ok(records)
}

/// The name an index entry is imported under.
fn entry_name(entry: &Descriptor, default_name: Option<&str>) -> Result<String, ImageError> {
    let annotations = entry.annotations().as_ref();
    let get = |key| annotations.and_then(|a| a.get(key)).map(String::as_str);
    if let Some(full) = get(CONTAINERD_NAME) {
        return normalize_name(full);
    }
    match (get(REF_NAME), default_name) {
        (Some(r), _) if r.contains(['/', ':', '@']) => normalize_name(r),
        (Some(tag), Some(repo)) => {
            let repo = noderun_core::image_ref::ImageRef::parse(repo)
                .map_err(|source| ImageError::InvalidName {
                    name: repo.into(),
                    source,
                })?
                .repository();
            normalize_name(&format!("{repo}:{tag}"))
        }
        (None, Some(name)) => normalize_name(name),
        (Some(tag), None) => Err(ImageError::Unnamed {
            manifest: descriptor_digest(entry)?,
            hint: format!("the layout names only the tag {tag:?}; give a repository name"),
        }),
        (None, None) => Err(ImageError::Unnamed {
            manifest: descriptor_digest(entry)?,
            hint: "the layout has no org.opencontainers.image.ref.name; give a name".into(),
        }),
    }
}

/// The manifest for `platform` among the entries of one name, following
/// nested indexes.
fn choose(
    content: &ContentStore,
    source: &Source,
    entries: &[Descriptor],
    platform: &PlatformSpec,
) -> Result<Descriptor, ImageError> {
    let mut candidates = Vec::new();
    for entry in entries {
        if media::kind(entry.media_type().as_ref()) == Kind::Index {
            let digest = descriptor_digest(entry)?;
            source.fetch_blob(content, &digest, entry.size())?;
            let nested = manifest::read_index(content, &digest)?;
            candidates.push(manifest::select_manifest(&nested, platform)?.clone());
        } else {
            candidates.push(entry.clone());
        }
    }
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .manifests(candidates)
        .build()
        .map_err(|e| ImageError::Layout {
            path: source.path().into(),
            reason: e.to_string(),
        })?;
    manifest::select_manifest(&index, platform).cloned()
}

/// Fetch the manifest, its config and its layers, and check the image.
fn fetch_image(
    content: &ContentStore,
    source: &Source,
    desc: &Descriptor,
    platform: &PlatformSpec,
    name: String,
) -> Result<ImageRecord, ImageError> {
    let digest = descriptor_digest(desc)?;
    source.fetch_blob(content, &digest, desc.size())?;
    let parsed = manifest::read_manifest(content, &digest)?;
    for blob in std::iter::once(parsed.config()).chain(parsed.layers()) {
        source.fetch_blob(content, &descriptor_digest(blob)?, blob.size())?;
    }
    Image::load(content, &digest, platform)?;
    Ok(ImageRecord {
        name,
        manifest: digest,
        media_type: desc.media_type().to_string(),
        size: desc.size(),
    })
}
