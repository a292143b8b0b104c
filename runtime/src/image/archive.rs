//! Reading an image archive on disk, whether a directory or a tar file:
//! the small metadata files at its top (`oci-layout`, `index.json`,
//! `manifest.json`) and its blobs, copied into the content store and
//! verified on the way. Member names are archive paths: they are
//! normalized and any with a `..` component is refused, so a hostile
//! archive cannot make the importer read outside it.

use super::content::ContentStore;
use super::digest::Digest;
use super::ImageError;
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The OCI layout marker file.
pub const OCI_LAYOUT: &str = "oci-layout";
/// The OCI layout's top-level index.
pub const INDEX_JSON: &str = "index.json";
/// The `docker save` manifest.
pub const DOCKER_MANIFEST_JSON: &str = "manifest.json";
const METADATA_MAX: u64 = 16 << 20;
const ALIAS_HOPS: usize = 16;

/// An archive's top-level metadata files, those present.
#[derive(Debug, Default)]
pub struct Metadata {
    pub oci_layout: Option<Vec<u8>>,
    pub index: Option<Vec<u8>>,
    pub docker_manifest: Option<Vec<u8>>,
}

impl Metadata {
    fn slot(&mut self, name: &str) -> Option<&mut Option<Vec<u8>>> {
        match name {
            OCI_LAYOUT => Some(&mut self.oci_layout),
            INDEX_JSON => Some(&mut self.index),
            DOCKER_MANIFEST_JSON => Some(&mut self.docker_manifest),
            _ => None,
        }
    }
}

/// An image archive: a directory or a tar file.
#[derive(Debug)]
pub enum Source {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        /// Symlinks and hardlinks in the tar: member name → target name.
        aliases: BTreeMap<String, String>,
    },
}

/// The normalized form of an archive member name (`./a//b` → `a/b`), or
/// `None` when it is empty or climbs with `..`.
pub fn normalize_member(name: &str) -> Option<String> {
    let mut parts = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            p => parts.push(p),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// The digest a `blobs/sha256/<hex>` member name encodes.
pub fn blob_name_digest(name: &str) -> Option<Digest> {
    Digest::from_hex(name.strip_prefix("blobs/sha256/")?).ok()
}

fn member_error(archive: &Path, member: &str, reason: &'static str) -> ImageError {
    ImageError::Archive {
        path: archive.into(),
        member: member.into(),
        reason,
    }
}

impl Source {
    /// Open `path` as a directory archive or a tar archive.
    pub fn open(path: &Path) -> Result<Source, ImageError> {
        let meta = std::fs::metadata(path).map_err(|e| ImageError::io("stat", path, e))?;
        Ok(if meta.is_dir() {
            Source::Dir(path.into())
        } else {
            Source::Tar {
                path: path.into(),
                aliases: BTreeMap::new(),
            }
        })
    }

    /// The archive's path.
    pub fn path(&self) -> &Path {
        match self {
            Source::Dir(p) | Source::Tar { path: p, .. } => p,
        }
    }

    /// Read the metadata files. For a tar this is one pass over the whole
    /// archive, which also ingests every `blobs/sha256/<hex>` member
    /// (verified against its name) and notes links between members.
    pub fn read_metadata(&mut self, content: &ContentStore) -> Result<Metadata, ImageError> {
        match self {
            Source::Dir(dir) => {
                let mut meta = Metadata::default();
                for name in [OCI_LAYOUT, INDEX_JSON, DOCKER_MANIFEST_JSON] {
                    let path = dir.join(name);
                    if path.is_file() {
                        let mut bytes = Vec::new();
                        open_nofollow(&path)?
                            .take(METADATA_MAX)
                            .read_to_end(&mut bytes)
                            .map_err(|e| ImageError::io("read", &path, e))?;
                        *meta.slot(name).expect("known name") = Some(bytes);
                    }
                }
                Ok(meta)
            }
            Source::Tar { path, aliases } => scan_tar(path, content, aliases),
        }
    }

    /// Make sure the blob `digest` (of `size` bytes) is in the store: from
    /// `blobs/sha256/<hex>` of a directory, verified; a tar's blobs were
    /// all ingested by [`Source::read_metadata`].
    pub fn fetch_blob(
        &self,
        content: &ContentStore,
        digest: &Digest,
        size: u64,
    ) -> Result<(), ImageError> {
        match self {
            Source::Dir(dir) => {
                if content.exists(digest) {
                    return Ok(content.check(digest, size)?);
                }
                let path = dir.join("blobs/sha256").join(digest.hex());
                let file = open_nofollow(&path).map_err(|_| ImageError::MissingBlob {
                    archive: dir.clone(),
                    digest: *digest,
                })?;
                Ok(content.ingest_exact(file, digest, size)?)
            }
            Source::Tar { path, .. } => {
                if content.exists(digest) {
                    Ok(content.check(digest, size)?)
                } else {
                    Err(ImageError::MissingBlob {
                        archive: path.clone(),
                        digest: *digest,
                    })
                }
            }
        }
    }

    /// Ingest the members named in `wanted` (normalized names; with the
    /// digest each must have, when known). Returns each one's digest.
    pub fn ingest_members(
        &self,
        content: &ContentStore,
        wanted: &BTreeMap<String, Option<Digest>>,
    ) -> Result<BTreeMap<String, Digest>, ImageError> {
        let mut found = BTreeMap::new();
        match self {
            Source::Dir(dir) => {
                for (name, expected) in wanted {
                    let file = open_nofollow(&dir.join(name))?;
                    found.insert(name.clone(), content.ingest(file, expected.as_ref())?);
                }
            }
            Source::Tar { path, aliases } => {
                let mut targets: BTreeMap<String, Vec<&String>> = BTreeMap::new();
                for name in wanted.keys() {
                    targets
                        .entry(resolve_alias(path, aliases, name)?)
                        .or_default()
                        .push(name);
                }
                let file = File::open(path).map_err(|e| ImageError::io("open", path, e))?;
                let mut archive = tar::Archive::new(file);
                let entries = archive
                    .entries_with_seek()
                    .map_err(|e| ImageError::io("read tar", path, e))?;
                for entry in entries {
                    let entry = entry.map_err(|e| ImageError::io("read tar", path, e))?;
                    let Some(name) = member_name(&entry) else {
                        continue;
                    };
                    let Some(names) = targets.remove(&name) else {
                        continue;
                    };
                    let expected = names.iter().find_map(|n| wanted[*n]);
                    let digest = content.ingest(entry, expected.as_ref())?;
                    for n in names {
                        if wanted[n].is_some_and(|d| d != digest) {
                            return Err(member_error(
                                path,
                                n,
                                "links to a member with other content",
                            ));
                        }
                        found.insert(n.clone(), digest);
                    }
                }
                if let Some(missing) = targets.keys().next() {
                    return Err(member_error(
                        path,
                        missing,
                        "is named by manifest.json but not in the archive",
                    ));
                }
            }
        }
        Ok(found)
    }
}

fn open_nofollow(path: &Path) -> Result<File, ImageError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| ImageError::io("open", path, e))
}

fn member_name<R: Read>(entry: &tar::Entry<'_, R>) -> Option<String> {
    let bytes = entry.path_bytes();
    normalize_member(std::str::from_utf8(&bytes).ok()?)
}

/// One pass over a tar: metadata files kept, blobs ingested, links noted.
fn scan_tar(
    path: &Path,
    content: &ContentStore,
    aliases: &mut BTreeMap<String, String>,
) -> Result<Metadata, ImageError> {
    let file = File::open(path).map_err(|e| ImageError::io("open", path, e))?;
    let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(1 << 17, file));
    let mut meta = Metadata::default();
    let entries = archive
        .entries()
        .map_err(|e| ImageError::io("read tar", path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| ImageError::io("read tar", path, e))?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(name) = normalize_member(&raw) else {
            if raw.split('/').any(|p| p == "..") {
                return Err(member_error(
                    path,
                    &raw,
                    "climbs out of the archive with `..`",
                ));
            }
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            let target = entry
                .link_name_bytes()
                .map(|t| String::from_utf8_lossy(&t).into_owned());
            let target = target.unwrap_or_default();
            let joined = if kind.is_symlink() && !target.starts_with('/') {
                format!("{}/{target}", name.rsplit_once('/').map_or("", |(d, _)| d))
            } else {
                target
            };
            let normalized = normalize_member(&joined)
                .ok_or_else(|| member_error(path, &name, "links outside the archive"))?;
            aliases.insert(name, normalized);
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        if let Some(slot) = meta.slot(&name) {
            let mut bytes = Vec::new();
            (&mut entry)
                .take(METADATA_MAX)
                .read_to_end(&mut bytes)
                .map_err(|e| ImageError::io("read tar", path, e))?;
            *slot = Some(bytes);
        } else if let Some(digest) = blob_name_digest(&name) {
            let size = entry.size();
            content.ingest_exact(entry, &digest, size)?;
        }
    }
    Ok(meta)
}

fn resolve_alias(
    archive: &Path,
    aliases: &BTreeMap<String, String>,
    name: &str,
) -> Result<String, ImageError> {
    let mut current = name.to_string();
    for _ in 0..ALIAS_HOPS {
        match aliases.get(&current) {
            Some(next) => current = next.clone(),
            None => return Ok(current),
        }
    }
    Err(member_error(archive, name, "is a loop of links"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_names_are_normalized_and_contained() {
        assert_eq!(
            normalize_member("./index.json").as_deref(),
            Some("index.json")
        );
        assert_eq!(
            normalize_member("/blobs//sha256/x").as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(normalize_member("a/./b/").as_deref(), Some("a/b"));
        for bad in ["", ".", "./", "..", "../x", "a/../../b", "a/.."] {
            assert_eq!(normalize_member(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn blob_names_carry_their_digest() {
        let d = Digest::of(b"x");
        assert_eq!(
            blob_name_digest(&format!("blobs/sha256/{}", d.hex())),
            Some(d)
        );
        assert_eq!(blob_name_digest("blobs/sha256/zz"), None);
        assert_eq!(blob_name_digest(&format!("blobs/sha512/{}", d.hex())), None);
    }
}
