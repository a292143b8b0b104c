//! The content store: immutable blobs (layers, configs, manifests) named by
//! their digest, at `<root>/blobs/sha256/<hex>`. A blob is written to a
//! temporary name in the same directory while it is hashed, verified against
//! the digest the caller expected, fsynced and only then renamed to its
//! digest, so a blob never exists under a name that does not match its
//! bytes. Which blobs are still needed is decided elsewhere (garbage
//! collection marks from the image records); this store only keeps bytes.
//!
//! A registry download writes `partial-<hex>` while holding an exclusive
//! flock on it ([`ContentStore::lock_partial`]); a partial file nobody
//! holds was left by an abandoned pull, and
//! [`ContentStore::remove_abandoned_partials`] removes it.

use super::atomic;
use super::digest::{Digest, DigestWriter};
use super::lockfile::{FileLock, LockMode};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The name prefix of resumable downloads in the blob directory.
const PARTIAL_PREFIX: &str = "partial-";

/// What went wrong in the content store, and on which blob or path.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    #[error("content store: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} is not in the content store")]
    NotFound { digest: Digest },
    #[error("content does not match its digest: expected {expected}, got {actual} ({size} bytes); the source is corrupt or was tampered with")]
    DigestMismatch {
        expected: Digest,
        actual: Digest,
        size: u64,
    },
    #[error("blob {digest}: expected {expected} bytes, the source has {actual}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> ContentError + 'a {
    move |source| ContentError::Io {
        op,
        path: path.into(),
        source,
    }
}

/// Blobs under one directory, named by digest.
#[derive(Debug, Clone)]
pub struct ContentStore {
    blobs: PathBuf,
}

impl ContentStore {
    /// Open (creating if needed) the store rooted at `root`.
    pub fn new(root: &Path) -> Result<ContentStore, ContentError> {
        let blobs = root.join("blobs").join("sha256");
        std::fs::create_dir_all(&blobs).map_err(io_err("create", &blobs))?;
        Ok(ContentStore { blobs })
    }

    /// Where the blob `digest` lives (whether or not it exists).
    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(digest.hex())
    }

    /// Copy `reader` into the store and return its digest. With `expected`,
    /// the bytes must hash to it (else nothing is kept); when that blob is
    /// already present the reader is not read at all.
    pub fn ingest(
        &self,
        reader: impl Read,
        expected: Option<&Digest>,
    ) -> Result<Digest, ContentError> {
        self.ingest_checked(reader, expected, None)
    }

    /// Like [`ContentStore::ingest`] with a required digest and size, as a
    /// descriptor gives them. Reads at most one byte past `size`.
    pub fn ingest_exact(
        &self,
        reader: impl Read,
        digest: &Digest,
        size: u64,
    ) -> Result<(), ContentError> {
        self.ingest_checked(
            reader.take(size.saturating_add(1)),
            Some(digest),
            Some(size),
        )
        .map(drop)
    }

    fn ingest_checked(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Digest, ContentError> {
        if let Some(digest) = expected {
            if self.exists(digest) {
                return match size {
                    Some(size) => self.check(digest, size).map(|()| *digest),
                    None => Ok(*digest),
                };
            }
        }
        let (file, temp) =
            atomic::create_temp(&self.blobs, "ingest").map_err(io_err("create", &self.blobs))?;
        let result = self.write_and_place(file, &temp, &mut reader, expected, size);
        if result.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    fn write_and_place(
        &self,
        file: File,
        temp: &Path,
        reader: &mut impl Read,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<Digest, ContentError> {
        let mut writer = DigestWriter::new(io::BufWriter::with_capacity(1 << 17, file));
        io::copy(reader, &mut writer).map_err(io_err("write", temp))?;
        let (buffered, actual, len) = writer.into_parts();
        if let Some(expected) = expected {
            if *expected != actual {
                return Err(ContentError::DigestMismatch {
                    expected: *expected,
                    actual,
                    size: len,
                });
            }
        }
        if let Some(size) = size {
            if size != len {
                return Err(ContentError::SizeMismatch {
                    digest: actual,
                    expected: size,
                    actual: len,
                });
            }
        }
        let mut file = buffered
            .into_inner()
            .map_err(|e| io_err("write", temp)(e.into_error()))?;
        file.flush().map_err(io_err("write", temp))?;
        file.sync_all().map_err(io_err("fsync", temp))?;
        let target = self.path(&actual);
        std::fs::rename(temp, &target).map_err(io_err("rename into place", &target))?;
        atomic::sync_dir(&self.blobs).map_err(io_err("fsync", &self.blobs))?;
        Ok(actual)
    }

    /// Where a resumable download of `digest` keeps its bytes so far. The
    /// name is not a digest, so the blob list never shows it.
    pub fn partial_path(&self, digest: &Digest) -> PathBuf {
        self.blobs.join(format!("{PARTIAL_PREFIX}{}", digest.hex()))
    }

    /// Open (creating if needed) the partial file of `digest` and hold an
    /// exclusive lock on it, waiting for another download of the same blob
    /// to finish first. Write through [`FileLock::file`]; the lock goes
    /// with the guard. The file locked is the one at the path (a collector
    /// may unlink it between our open and our lock: then it is reopened).
    pub fn lock_partial(&self, digest: &Digest) -> Result<FileLock, ContentError> {
        let path = self.partial_path(digest);
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err("open", &path))?;
            let lock = FileLock::lock_file(file, &path, LockMode::Exclusive, true)
                .map_err(|e| io_err("lock", &path)(e.source))?
                .ok_or_else(|| io_err("lock", &path)(io::ErrorKind::WouldBlock.into()))?;
            if still_at(&lock, &path)? {
                return Ok(lock);
            }
        }
    }

    /// Remove the partial files no running download holds (left by pulls
    /// that were interrupted); returns how many and their bytes.
    pub fn remove_abandoned_partials(&self) -> Result<(usize, u64), ContentError> {
        let (mut removed, mut bytes) = (0, 0);
        for name in self.names()? {
            if !name.starts_with(PARTIAL_PREFIX) {
                continue;
            }
            let path = self.blobs.join(&name);
            let file = match File::open(&path) {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("open", &path)(e)),
            };
            let Some(lock) = FileLock::lock_file(file, &path, LockMode::Exclusive, false)
                .map_err(|e| io_err("lock", &path)(e.source))?
            else {
                continue;
            };
            if !still_at(&lock, &path)? {
                continue;
            }
            let size = lock.file().metadata().map_err(io_err("stat", &path))?.len();
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    removed += 1;
                    bytes += size;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
        }
        Ok((removed, bytes))
    }

    /// Verify the finished partial download of `digest` (digest and size),
    /// fsync it and rename it to its digest. On a mismatch the partial file
    /// is removed, so the next attempt starts afresh.
    pub fn commit_partial(&self, digest: &Digest, size: u64) -> Result<(), ContentError> {
        let temp = self.partial_path(digest);
        let result = self.verify_and_place(&temp, digest, size);
        if matches!(
            result,
            Err(ContentError::DigestMismatch { .. } | ContentError::SizeMismatch { .. })
        ) {
            let _ = std::fs::remove_file(&temp);
        }
        result
    }

    fn verify_and_place(
        &self,
        temp: &Path,
        digest: &Digest,
        size: u64,
    ) -> Result<(), ContentError> {
        let file = File::open(temp).map_err(io_err("open", temp))?;
        let reader = super::digest::DigestReader::new(io::BufReader::with_capacity(1 << 17, &file));
        let (actual, len) = reader.finish().map_err(io_err("read", temp))?;
        if len != size {
            return Err(ContentError::SizeMismatch {
                digest: *digest,
                expected: size,
                actual: len,
            });
        }
        if actual != *digest {
            return Err(ContentError::DigestMismatch {
                expected: *digest,
                actual,
                size: len,
            });
        }
        file.sync_all().map_err(io_err("fsync", temp))?;
        let target = self.path(digest);
        std::fs::rename(temp, &target).map_err(io_err("rename into place", &target))?;
        atomic::sync_dir(&self.blobs).map_err(io_err("fsync", &self.blobs))
    }

    /// The blob must be present with exactly `size` bytes.
    pub fn check(&self, digest: &Digest, size: u64) -> Result<(), ContentError> {
        let actual = self.size(digest)?;
        if actual == size {
            Ok(())
        } else {
            Err(ContentError::SizeMismatch {
                digest: *digest,
                expected: size,
                actual,
            })
        }
    }

    /// Open a blob for reading.
    pub fn open(&self, digest: &Digest) -> Result<File, ContentError> {
        let path = self.path(digest);
        File::open(&path).map_err(|e| self.not_found_or(digest, "open", &path, e))
    }

    /// Read a whole (small) blob: manifests, configs, indexes.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, ContentError> {
        let path = self.path(digest);
        std::fs::read(&path).map_err(|e| self.not_found_or(digest, "read", &path, e))
    }

    /// Whether the blob is present.
    pub fn exists(&self, digest: &Digest) -> bool {
        self.path(digest).is_file()
    }

    /// The blob's size in bytes.
    pub fn size(&self, digest: &Digest) -> Result<u64, ContentError> {
        let path = self.path(digest);
        std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| self.not_found_or(digest, "stat", &path, e))
    }

    /// Delete the blob; returns false when it was not there.
    pub fn delete(&self, digest: &Digest) -> Result<bool, ContentError> {
        let path = self.path(digest);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err("delete", &path)(e)),
        }
    }

    /// Every blob present, in digest order.
    pub fn list(&self) -> Result<Vec<Digest>, ContentError> {
        let mut out: Vec<Digest> = self
            .names()?
            .iter()
            .filter_map(|name| Digest::from_hex(name).ok())
            .collect();
        out.sort();
        Ok(out)
    }

    /// Remove temporary files left by writers that have exited; returns
    /// how many were removed.
    pub fn remove_abandoned_temps(&self) -> Result<usize, ContentError> {
        let mut removed = 0;
        for name in self.names()? {
            if atomic::is_abandoned_temp(&name) {
                let path = self.blobs.join(&name);
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err("remove", &path)(e)),
                }
            }
        }
        Ok(removed)
    }

    fn names(&self) -> Result<Vec<String>, ContentError> {
        let entries = std::fs::read_dir(&self.blobs).map_err(io_err("list", &self.blobs))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err("list", &self.blobs))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn not_found_or(
        &self,
        digest: &Digest,
        op: &'static str,
        path: &Path,
        e: io::Error,
    ) -> ContentError {
        if e.kind() == io::ErrorKind::NotFound {
            ContentError::NotFound { digest: *digest }
        } else {
            io_err(op, path)(e)
        }
    }
}

/// Whether the file `lock` holds is still the one named `path` (not
/// unlinked or replaced since it was opened).
fn still_at(lock: &FileLock, path: &Path) -> Result<bool, ContentError> {
    let held = lock.file().metadata().map_err(io_err("stat", path))?;
    match std::fs::metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err("stat", path)(e)),
    }
}
