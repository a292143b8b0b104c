//! Pulling an image: resolve the reference to a manifest (choosing the
//! host platform from an index), then fetch config and layers in parallel
//! into the content store, check the image and record its name.

use super::blob;
use super::credentials::Credentials;
use super::endpoint::Endpoint;
use super::http::Client;
use super::RegistryError;
use crate::image::manifest::{self, descriptor_digest};
use crate::image::media::{self, Kind};
use crate::image::{Digest, Image, ImageRecord, ImageStore};
use noderun_core::image_ref::ImageRef;
use oci_spec::image::Descriptor;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The largest manifest or index accepted (containerd allows 4 MiB too).
pub const MAX_MANIFEST: u64 = 4 << 20;

/// Every manifest kind this node understands, for the `Accept` header.
const ACCEPT: [&str; 4] = [
    media::OCI_INDEX,
    media::OCI_MANIFEST,
    media::DOCKER_MANIFEST_LIST,
    media::DOCKER_MANIFEST,
];

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Credentials for Basic auth or the token endpoint.
    pub credentials: Option<Credentials>,
    /// How many blobs download at once.
    pub parallel: usize,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            credentials: None,
            parallel: 3,
        }
    }
}

/// What a pull did.
#[derive(Debug, Clone)]
pub struct PullReport {
    pub record: ImageRecord,
    /// Blob bytes transferred over the network (0: all were present).
    pub bytes: u64,
    /// Blobs downloaded (not already present).
    pub blobs_fetched: usize,
}

/// The registry `name` is pulled from, as credentials are keyed
/// (`docker.io`, `127.0.0.1:5000`).
pub fn registry_of(name: &str) -> Result<String, RegistryError> {
    let reference = parse(name)?;
    Ok(reference.domain().to_string())
}

fn parse(name: &str) -> Result<ImageRef, RegistryError> {
    ImageRef::parse(name).map_err(|source| RegistryError::Name {
        name: name.into(),
        source,
    })
}

/// Pull `name` (parsed like docker) into `store` and record it under its
/// normalized name.
pub fn pull(
    store: &ImageStore,
    name: &str,
    options: &PullOptions,
) -> Result<PullReport, RegistryError> {
    let reference = parse(name)?;
    let endpoint = Endpoint::of(&reference)?;
    let client = Client::new(endpoint, options.credentials.clone());
    let _pin = store.pin()?;
    let wanted = match reference.digest() {
        Some(d) => Some(Digest::parse(d).map_err(crate::image::ImageError::from)?),
        None => None,
    };
    let tag_or_digest = reference
        .digest()
        .or(reference.tag())
        .unwrap_or("latest")
        .to_string();
    let (top_digest, top_type, top_size) =
        fetch_manifest(&client, store, &tag_or_digest, wanted.as_ref())?;
    let (manifest_digest, media_type, size) = if media::kind(&top_type) == Kind::Index {
        let index = manifest::read_index(store.content(), &top_digest)?;
        let chosen: Descriptor = manifest::select_manifest(&index, store.platform())?.clone();
        let digest = descriptor_digest(&chosen)?;
        let (digest, media_type, size) =
            fetch_manifest(&client, store, &digest.to_string(), Some(&digest))?;
        (digest, media_type, size)
    } else {
        (top_digest, top_type, top_size)
    };
    let parsed = manifest::read_manifest(store.content(), &manifest_digest)?;
    let mut wanted_blobs = Vec::new();
    for d in std::iter::once(parsed.config()).chain(parsed.layers()) {
        wanted_blobs.push((descriptor_digest(d)?, d.size()));
    }
    let bytes = AtomicU64::new(0);
    let fetched = AtomicUsize::new(0);
    let next = AtomicUsize::new(0);
    let first_error: Mutex<Option<RegistryError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..options.parallel.clamp(1, 8).min(wanted_blobs.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some((digest, size)) = wanted_blobs.get(i) else {
                    return;
                };
                if first_error
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .is_some()
                {
                    return;
                }
                match blob::fetch(&client, store.content(), digest, *size) {
                    Ok(0) => {}
                    Ok(n) => {
                        bytes.fetch_add(n, Ordering::Relaxed);
                        fetched.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        first_error
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = first_error
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        return Err(e);
    }
    Image::load(store.content(), &manifest_digest, store.platform())?;
    let record = ImageRecord {
        name: reference.to_string(),
        manifest: manifest_digest,
        media_type,
        size,
    };
    store.insert_records(std::slice::from_ref(&record))?;
    Ok(PullReport {
        record,
        bytes: bytes.into_inner(),
        blobs_fetched: fetched.into_inner(),
    })
}

/// GET a manifest or index by tag or digest, verify it (against `wanted`
/// when pulled by digest; its size against [`MAX_MANIFEST`]), and store it.
/// Returns its digest, media type and size.
fn fetch_manifest(
    client: &Client,
    store: &ImageStore,
    tag_or_digest: &str,
    wanted: Option<&Digest>,
) -> Result<(Digest, String, u64), RegistryError> {
    let url = client.endpoint().manifest_url(tag_or_digest);
    let response = client.get(&url, &ACCEPT, None)?;
    let status = response.status().as_u16();
    if status == 404 {
        return Err(client.status_error(
            &url,
            status,
            &format!(
                "the repository has no manifest {tag_or_digest}; check the image name and tag"
            ),
        ));
    }
    if status != 200 {
        return Err(client.status_error(&url, status, "manifest request failed"));
    }
    let header_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_string());
    let bytes = response
        .into_body()
        .with_config()
        .limit(MAX_MANIFEST)
        .read_to_vec()
        .map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => client.status_error(
                &url,
                status,
                &format!("the manifest is larger than {MAX_MANIFEST} bytes"),
            ),
            other => RegistryError::Http {
                registry: client.endpoint().registry.clone(),
                url: url.clone(),
                source: Box::new(other),
            },
        })?;
    let actual = Digest::of(&bytes);
    if let Some(wanted) = wanted {
        if *wanted != actual {
            return Err(RegistryError::Blob {
                registry: client.endpoint().registry.clone(),
                repository: client.endpoint().repository.clone(),
                digest: *wanted,
                source: Box::new(crate::image::ContentError::DigestMismatch {
                    expected: *wanted,
                    actual,
                    size: bytes.len() as u64,
                }),
            });
        }
    }
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    let probe: Probe = serde_json::from_slice(&bytes).map_err(|e| {
        client.status_error(&url, status, &format!("the manifest is not JSON: {e}"))
    })?;
    let media_type = probe
        .media_type
        .or(header_type)
        .ok_or_else(|| client.status_error(&url, status, "the manifest states no media type"))?;
    if !matches!(media::kind(&media_type), Kind::Index | Kind::Manifest) {
        return Err(client.status_error(
            &url,
            status,
            &format!("media type {media_type:?} is neither a manifest nor an index"),
        ));
    }
    store.content().ingest(&bytes[..], Some(&actual))?;
    Ok((actual, media_type, bytes.len() as u64))
}
