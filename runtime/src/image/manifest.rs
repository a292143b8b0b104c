//! Image metadata read from the content store: indexes, manifests and
//! configs (OCI, and docker v2 schema 2, whose JSON has the same shape),
//! the choice of one platform's manifest from an index, and [`Image`], a
//! manifest checked against the blobs it names (every blob present with
//! the size the manifest says, one diff ID per layer).

use super::content::ContentStore;
use super::digest::Digest;
use super::media::{self, Kind};
use super::ImageError;
use oci_spec::image::{Descriptor, ImageConfiguration, ImageIndex, ImageManifest, Platform};
use std::fmt;

/// An operating system and architecture (and optional CPU variant), as in
/// an index's platform fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSpec {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl PlatformSpec {
    /// `linux/amd64`.
    pub fn linux_amd64() -> PlatformSpec {
        PlatformSpec {
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
        }
    }

    /// The platform this binary runs on, in Go's GOARCH names.
    pub fn host() -> PlatformSpec {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            other => other,
        };
        PlatformSpec {
            os: std::env::consts::OS.into(),
            architecture: architecture.into(),
            variant: None,
        }
    }

    fn matches(&self, os: &str, architecture: &str, variant: Option<&str>) -> bool {
        let variant_ok = match (&self.variant, variant) {
            (Some(want), Some(have)) => want == have,
            _ => true,
        };
        self.os == os && self.architecture == architecture && variant_ok
    }

    fn describe(p: &Platform) -> String {
        let mut s = format!("{}/{}", p.os(), p.architecture());
        if let Some(v) = p.variant() {
            s.push('/');
            s.push_str(v);
        }
        s
    }
}

impl fmt::Display for PlatformSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) => write!(f, "/{v}"),
            None => Ok(()),
        }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(
    what: &'static str,
    digest: &Digest,
    bytes: &[u8],
) -> Result<T, ImageError> {
    serde_json::from_slice(bytes).map_err(|source| ImageError::Json {
        what,
        digest: *digest,
        source,
    })
}

/// Read and parse an index blob.
pub fn read_index(content: &ContentStore, digest: &Digest) -> Result<ImageIndex, ImageError> {
    parse_json("image index", digest, &content.read(digest)?)
}

/// Read and parse a manifest blob.
pub fn read_manifest(content: &ContentStore, digest: &Digest) -> Result<ImageManifest, ImageError> {
    parse_json("image manifest", digest, &content.read(digest)?)
}

/// Read and parse a config blob.
pub fn read_config(
    content: &ContentStore,
    digest: &Digest,
) -> Result<ImageConfiguration, ImageError> {
    parse_json("image config", digest, &content.read(digest)?)
}

/// The digest a descriptor names (sha256 only).
pub fn descriptor_digest(d: &Descriptor) -> Result<Digest, ImageError> {
    Ok(Digest::try_from(d.digest())?)
}

/// Pick the manifest for `platform` from an index: the entry whose
/// platform matches, else the only manifest entry that states no platform.
pub fn select_manifest<'a>(
    index: &'a ImageIndex,
    platform: &PlatformSpec,
) -> Result<&'a Descriptor, ImageError> {
    let manifests: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| media::kind(d.media_type().as_ref()) == Kind::Manifest)
        .collect();
    let exact = manifests.iter().find(|d| {
        d.platform().as_ref().is_some_and(|p| {
            platform.matches(
                &p.os().to_string(),
                &p.architecture().to_string(),
                p.variant().as_deref(),
            )
        })
    });
    if let Some(found) = exact {
        return Ok(found);
    }
    let unlabeled: Vec<&&Descriptor> = manifests
        .iter()
        .filter(|d| d.platform().is_none())
        .collect();
    if let [only] = unlabeled[..] {
        return Ok(only);
    }
    Err(ImageError::NoPlatform {
        wanted: platform.to_string(),
        available: manifests
            .iter()
            .filter_map(|d| d.platform().as_ref().map(PlatformSpec::describe))
            .collect(),
    })
}

/// One layer of an image: the blob, and the digest of its uncompressed tar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub diff_id: Digest,
}

/// An image's manifest, checked against the store: its config and every
/// layer are present with the sizes the manifest states.
#[derive(Debug, Clone)]
pub struct Image {
    pub manifest_digest: Digest,
    pub manifest: ImageManifest,
    pub config_digest: Digest,
    pub config: ImageConfiguration,
    pub layers: Vec<Layer>,
}

impl Image {
    /// Load the manifest `digest` and check it for `platform`.
    pub fn load(
        content: &ContentStore,
        digest: &Digest,
        platform: &PlatformSpec,
    ) -> Result<Image, ImageError> {
        let manifest = read_manifest(content, digest)?;
        let config_desc = manifest.config();
        let config_digest = descriptor_digest(config_desc)?;
        check_blob(content, config_desc, &config_digest, Kind::Config)?;
        let config = read_config(content, &config_digest)?;
        let (os, arch) = (config.os().to_string(), config.architecture().to_string());
        if !platform.matches(&os, &arch, config.variant().as_deref()) {
            return Err(ImageError::PlatformMismatch {
                manifest: *digest,
                wanted: platform.to_string(),
                found: format!("{os}/{arch}"),
            });
        }
        let diff_ids = config.rootfs().diff_ids();
        if diff_ids.len() != manifest.layers().len() {
            return Err(ImageError::DiffIdCount {
                manifest: *digest,
                layers: manifest.layers().len(),
                diff_ids: diff_ids.len(),
            });
        }
        let mut layers = Vec::with_capacity(diff_ids.len());
        for (desc, diff_id) in manifest.layers().iter().zip(diff_ids) {
            let layer_digest = descriptor_digest(desc)?;
            check_blob(content, desc, &layer_digest, Kind::Layer)?;
            layers.push(Layer {
                digest: layer_digest,
                size: desc.size(),
                media_type: desc.media_type().to_string(),
                diff_id: Digest::parse(diff_id)?,
            });
        }
        Ok(Image {
            manifest_digest: *digest,
            manifest,
            config_digest,
            config,
            layers,
        })
    }

    /// The blobs this image needs: manifest, config, layers.
    pub fn blobs(&self) -> Vec<Digest> {
        let mut out = vec![self.manifest_digest, self.config_digest];
        out.extend(self.layers.iter().map(|l| l.digest));
        out
    }

    /// The layers' diff IDs, base layer first.
    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id).collect()
    }
}

/// The blob a descriptor names must be present, of the right kind and size.
fn check_blob(
    content: &ContentStore,
    desc: &Descriptor,
    digest: &Digest,
    want: Kind,
) -> Result<(), ImageError> {
    let media_type = desc.media_type().to_string();
    if media::kind(&media_type) != want {
        return Err(ImageError::UnsupportedMediaType {
            digest: *digest,
            media_type,
        });
    }
    let size = content.size(digest)?;
    if size != desc.size() {
        return Err(ImageError::Content(super::ContentError::SizeMismatch {
            digest: *digest,
            expected: desc.size(),
            actual: size,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(entries: &[(&str, Option<(&str, &str)>)]) -> ImageIndex {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (media_type, platform))| {
                let mut d = serde_json::json!({
                    "mediaType": media_type,
                    "digest": format!("sha256:{:064x}", i),
                    "size": 100 + i,
                });
                if let Some((os, arch)) = platform {
                    d["platform"] = serde_json::json!({"os": os, "architecture": arch});
                }
                d
            })
            .collect();
        serde_json::from_value(serde_json::json!({"schemaVersion": 2, "manifests": manifests}))
            .unwrap()
    }

    #[test]
    fn picks_linux_amd64_from_a_multi_platform_index() {
        let idx = index(&[
            (media::OCI_MANIFEST, Some(("linux", "arm64"))),
            (media::DOCKER_MANIFEST, Some(("linux", "amd64"))),
            (media::OCI_MANIFEST, Some(("unknown", "unknown"))),
        ]);
        let d = select_manifest(&idx, &PlatformSpec::linux_amd64()).unwrap();
        assert_eq!(d.size(), 101);
    }

    #[test]
    fn an_unlabeled_single_manifest_is_chosen() {
        let idx = index(&[(media::OCI_MANIFEST, None)]);
        assert_eq!(
            select_manifest(&idx, &PlatformSpec::linux_amd64())
                .unwrap()
                .size(),
            100
        );
    }

    #[test]
    fn missing_platform_lists_what_is_there() {
        let idx = index(&[
            (media::OCI_MANIFEST, Some(("linux", "arm64"))),
            (media::OCI_MANIFEST, Some(("linux", "s390x"))),
        ]);
        let err = select_manifest(&idx, &PlatformSpec::linux_amd64()).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("linux/amd64") && text.contains("linux/arm64, linux/s390x"),
            "{text}"
        );
    }

    #[test]
    fn host_platform_uses_go_names() {
        let host = PlatformSpec::host();
        assert_eq!(host.os, "linux");
        assert_ne!(host.architecture, "x86_64");
    }
}
