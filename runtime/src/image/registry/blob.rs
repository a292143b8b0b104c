//! Downloading one blob into the content store, resumably: bytes go to the
//! store's partial file for that digest, held under an exclusive flock for
//! the whole download (a second pull of the same blob waits, then finds it
//! present; garbage collection leaves a held partial file alone); a
//! partial file left by an interrupted pull is continued with a `Range`
//! request, and the whole file is verified (size and sha256) before it is
//! renamed to its digest.

use super::http::Client;
use super::RegistryError;
use crate::image::{ContentStore, Digest};
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Make blob `digest` of `size` bytes present in `content`. Returns the
/// number of bytes transferred (0 when the blob was already there).
pub fn fetch(
    client: &Client,
    content: &ContentStore,
    digest: &Digest,
    size: u64,
) -> Result<u64, RegistryError> {
    if content.exists(digest) {
        content.check(digest, size)?;
        return Ok(0);
    }
    let partial = content.partial_path(digest);
    let io_err = |op: &'static str| {
        let partial = partial.clone();
        move |source: io::Error| RegistryError::Io {
            op,
            path: partial,
            source,
        }
    };
    let lock = content.lock_partial(digest)?;
    if content.exists(digest) {
        // Another pull finished it while this one waited for the lock.
        let _ = std::fs::remove_file(&partial);
        content.check(digest, size)?;
        return Ok(0);
    }
    let mut file = lock.file();
    let mut have = file.metadata().map_err(io_err("stat"))?.len();
    if have > size {
        file.set_len(0).map_err(io_err("truncate"))?;
        have = 0;
    }
    let url = client.endpoint().blob_url(digest);
    let mut transferred = 0;
    if have < size {
        let range = (have > 0).then_some(have);
        let response = client.get(&url, &[], range)?;
        let status = response.status().as_u16();
        let start = match status {
            206 if range.is_some() => have,
            200 => 0,
            _ => return Err(client.status_error(&url, status, "blob download failed")),
        };
        file.set_len(start).map_err(io_err("truncate"))?;
        file.seek(SeekFrom::Start(start)).map_err(io_err("seek"))?;
        let mut body = response.into_body().into_reader().take(size - start + 1);
        transferred = io::copy(&mut body, &mut file).map_err(|source| RegistryError::Body {
            registry: client.endpoint().registry.clone(),
            url: url.clone(),
            source,
        })?;
        file.flush().map_err(io_err("write"))?;
    }
    content
        .commit_partial(digest, size)
        .map_err(|source| RegistryError::Blob {
            registry: client.endpoint().registry.clone(),
            repository: client.endpoint().repository.clone(),
            digest: *digest,
            source: Box::new(source),
        })?;
    drop(lock);
    Ok(transferred)
}
