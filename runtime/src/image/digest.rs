//! Content digests: [`Digest`] (`sha256:<64 lowercase hex>`, the only
//! algorithm the store accepts) and [`Digester`], which computes one while
//! bytes pass through a reader or writer. Everything the image store keeps
//! is named by the digest of its bytes.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

const PREFIX: &str = "sha256:";
const HEX_LEN: usize = 64;

/// A digest string that is not `sha256:<64 lowercase hex>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid digest {input:?}: {reason} (expected sha256:<64 lowercase hex digits>)")]
pub struct DigestError {
    pub input: String,
    pub reason: &'static str,
}

/// A SHA-256 content digest.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

impl Digest {
    /// Parse `sha256:<64 lowercase hex>`; refuse any other algorithm, case
    /// or length.
    pub fn parse(input: &str) -> Result<Digest, DigestError> {
        let bad = |reason| DigestError {
            input: input.chars().take(200).collect(),
            reason,
        };
        let Some((algorithm, hex)) = input.split_once(':') else {
            return Err(bad("no `algorithm:` prefix"));
        };
        if algorithm != "sha256" {
            return Err(bad("only sha256 is supported"));
        }
        Digest::from_hex(hex).map_err(|_| {
            bad(if hex.len() != HEX_LEN {
                "wrong length"
            } else {
                "not lowercase hex"
            })
        })
    }

    /// A digest from its 64 lowercase hex digits (no prefix), as found in
    /// blob file names.
    pub fn from_hex(hex: &str) -> Result<Digest, DigestError> {
        let lower = hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let mut raw = [0u8; 32];
        if hex.len() != HEX_LEN || !lower || hex::decode_to_slice(hex, &mut raw).is_err() {
            return Err(DigestError {
                input: hex.chars().take(200).collect(),
                reason: "not 64 lowercase hex digits",
            });
        }
        Ok(Digest(raw))
    }

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(Sha256::digest(bytes).into())
    }

    /// The 64 hex digits, without the `sha256:` prefix.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PREFIX}{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl TryFrom<&oci_spec::image::Digest> for Digest {
    type Error = DigestError;
    fn try_from(d: &oci_spec::image::Digest) -> Result<Self, Self::Error> {
        Digest::parse(d.as_ref())
    }
}

impl From<Digest> for oci_spec::image::Digest {
    fn from(d: Digest) -> Self {
        // A sha256 digest always satisfies oci-spec's digest grammar.
        oci_spec::image::Digest::from_str(&d.to_string()).expect("sha256 digest is valid")
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Digest::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A running SHA-256 over bytes fed to it, counting them too.
#[derive(Clone, Default)]
pub struct Digester {
    hasher: Sha256,
    len: u64,
}

impl fmt::Debug for Digester {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Digester").field("len", &self.len).finish()
    }
}

impl Digester {
    /// Start an empty digest.
    pub fn new() -> Digester {
        Digester::default()
    }

    /// Feed bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True before any byte was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The digest of everything fed.
    pub fn finish(self) -> Digest {
        Digest(self.hasher.finalize().into())
    }
}

/// A reader that digests every byte read through it.
#[derive(Debug)]
pub struct DigestReader<R> {
    inner: R,
    digester: Digester,
}

impl<R: Read> DigestReader<R> {
    /// Wrap `inner`.
    pub fn new(inner: R) -> Self {
        DigestReader {
            inner,
            digester: Digester::new(),
        }
    }

    /// Read `inner` to its end (digesting the rest), then return the digest
    /// and the total length.
    pub fn finish(mut self) -> io::Result<(Digest, u64)> {
        io::copy(&mut self, &mut io::sink())?;
        let len = self.digester.len();
        Ok((self.digester.finish(), len))
    }
}

impl<R: Read> Read for DigestReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }
}

/// A writer that digests every byte written through it.
#[derive(Debug)]
pub struct DigestWriter<W> {
    inner: W,
    digester: Digester,
}

impl<W: Write> DigestWriter<W> {
    /// Wrap `inner`.
    pub fn new(inner: W) -> Self {
        DigestWriter {
            inner,
            digester: Digester::new(),
        }
    }

    /// The inner writer, the digest and the length of what was written.
    pub fn into_parts(self) -> (W, Digest, u64) {
        let len = self.digester.len();
        (self.inner, self.digester.finish(), len)
    }
}

impl<W: Write> Write for DigestWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.digester.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn digest_of_known_inputs() {
        assert_eq!(Digest::of(b"").to_string(), EMPTY);
        assert_eq!(
            Digest::of(b"abc").to_string(),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parse_round_trips_and_refuses_the_rest() {
        let d = Digest::parse(EMPTY).unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::from_hex(&d.hex()).unwrap(), d);
        let upper = EMPTY.to_ascii_uppercase().replacen("SHA256", "sha256", 1);
        for bad in [
            "",
            "sha256",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha512:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
            "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "sha256:../../../../etc/passwd",
            &upper,
        ] {
            let err = Digest::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("expected sha256:"), "{err}");
        }
    }

    #[test]
    fn digest_reader_and_writer_agree_with_one_shot() {
        let data = vec![7u8; 100_000];
        let (d, len) = DigestReader::new(&data[..]).finish().unwrap();
        assert_eq!((d, len), (Digest::of(&data), 100_000));
        let mut w = DigestWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let (out, d2, len2) = w.into_parts();
        assert_eq!((d2, len2, out.len()), (d, len, data.len()));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let d = Digest::of(b"");
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY}\""));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        assert!(serde_json::from_str::<Digest>("\"sha256:xyz\"").is_err());
    }
}
