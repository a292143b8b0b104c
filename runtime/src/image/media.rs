//! Media types the store understands (OCI and docker v2 schema 2) and layer
//! compression: which blobs are indexes, manifests, configs and layers, and
//! how to decompress a layer. Compression is read from the blob's magic
//! bytes, not from its media type: docker archives label uncompressed and
//! gzipped layers alike, and the bytes cannot lie.

use std::io::{self, BufRead, BufReader, Read};

/// Docker's manifest list (the index equivalent).
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker's v2 schema 2 image manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker's image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker's gzipped layer.
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Docker's uncompressed layer (found in `docker save` archives).
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
/// Docker's non-distributable (foreign) layer.
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// OCI index.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI uncompressed layer.
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
/// OCI gzipped layer.
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI zstd layer.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// What a descriptor points at, by its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Index,
    Manifest,
    Config,
    Layer,
    Other,
}

/// Classify a media type string.
pub fn kind(media_type: &str) -> Kind {
    match media_type {
        OCI_INDEX | DOCKER_MANIFEST_LIST => Kind::Index,
        OCI_MANIFEST | DOCKER_MANIFEST => Kind::Manifest,
        OCI_CONFIG | DOCKER_CONFIG => Kind::Config,
        DOCKER_LAYER_GZIP | DOCKER_LAYER | DOCKER_FOREIGN_LAYER => Kind::Layer,
        m if m.starts_with("application/vnd.oci.image.layer.") => Kind::Layer,
        _ => Kind::Other,
    }
}

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

impl Compression {
    /// Recognize the compression from the first bytes of a blob.
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The OCI layer media type for a layer compressed this way.
    pub fn oci_layer_media_type(self) -> &'static str {
        match self {
            Compression::None => OCI_LAYER,
            Compression::Gzip => OCI_LAYER_GZIP,
            Compression::Zstd => OCI_LAYER_ZSTD,
        }
    }
}

/// Buffer size for layer reads: large enough that decompression and
/// hashing work on big chunks.
const READ_BUFFER: usize = 1 << 17;

/// The uncompressed tar stream of a layer blob, whatever its compression.
pub fn decompress<'a, R: Read + 'a>(blob: R) -> io::Result<(Compression, Box<dyn Read + 'a>)> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, blob);
    let compression = Compression::sniff(reader.fill_buf()?);
    let stream: Box<dyn Read + 'a> = match compression {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            flate2::bufread::MultiGzDecoder::new(reader),
        )),
        Compression::Zstd => Box::new(BufReader::with_capacity(
            READ_BUFFER,
            zstd::stream::read::Decoder::with_buffer(reader)?,
        )),
    };
    Ok((compression, stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn media_types_are_classified() {
        assert_eq!(kind(DOCKER_MANIFEST), Kind::Manifest);
        assert_eq!(kind(OCI_INDEX), Kind::Index);
        assert_eq!(kind(DOCKER_MANIFEST_LIST), Kind::Index);
        assert_eq!(kind(DOCKER_CONFIG), Kind::Config);
        assert_eq!(kind(OCI_LAYER_ZSTD), Kind::Layer);
        assert_eq!(
            kind("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"),
            Kind::Layer
        );
        assert_eq!(kind("text/plain"), Kind::Other);
    }

    fn roundtrip(compressed: Vec<u8>, want: Compression, plain: &[u8]) {
        let (found, mut stream) = decompress(&compressed[..]).unwrap();
        assert_eq!(found, want);
        let mut out = Vec::new();
        stream.read_to_end(&mut out).unwrap();
        assert_eq!(out, plain);
    }

    #[test]
    fn compression_is_read_from_magic_bytes() {
        let plain = b"not really a tar, but bytes are bytes".repeat(100);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        roundtrip(gz.finish().unwrap(), Compression::Gzip, &plain);
        roundtrip(
            zstd::encode_all(&plain[..], 3).unwrap(),
            Compression::Zstd,
            &plain,
        );
        roundtrip(plain.clone(), Compression::None, &plain);
        roundtrip(Vec::new(), Compression::None, b"");
    }
}
