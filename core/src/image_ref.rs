//! Image references (`busybox`, `localhost:5000/app:v1`,
//! `registry:5000/ns/app@sha256:...`) parsed and normalized the way docker
//! and containerd read them: a name without a registry domain lives on
//! `docker.io`, a one-component name there lives under `library/`, and a
//! reference with neither tag nor digest means `:latest`. Parsing only: no
//! registry is contacted and no digest is computed here.
//!
//! The grammar (from the distribution project's reference format):
//! - domain: host components `[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?`
//!   joined by `.`, or a bracketed IPv6 address, with an optional `:port`.
//!   The first path element is a domain only if it contains `.` or `:`, or
//!   is `localhost`.
//! - path: components of lowercase `[a-z0-9]+` runs joined by `.`, `_`,
//!   `__` or runs of `-`, separated by `/`; the whole name is at most 255
//!   bytes.
//! - tag: `[\w][\w.-]{0,127}`.
//! - digest: `sha256:` + 64, `sha384:` + 96 or `sha512:` + 128 lowercase
//!   hex digits.

use alloc::format;
use alloc::string::{String, ToString};
use core::fmt;
use core::str::FromStr;

/// The registry used when a reference names none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The path prefix of official images on the default registry.
pub const OFFICIAL_PREFIX: &str = "library/";
/// The tag used when a reference has neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// The longest name (domain and path) a reference may have.
pub const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;
const LEGACY_DOMAIN: &str = "index.docker.io";

/// A reference that does not parse, with the offending text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageRefError {
    #[error("image reference is empty")]
    Empty,
    #[error("image reference {input:?} has no repository name before its tag or digest")]
    MissingName { input: String },
    #[error("image reference {input:?}: repository name must be lowercase")]
    Uppercase { input: String },
    #[error("image reference {input:?}: name is {len} bytes, longer than {NAME_MAX}")]
    NameTooLong { input: String, len: usize },
    #[error("image reference {input:?}: invalid registry domain {domain:?}")]
    InvalidDomain { input: String, domain: String },
    #[error("image reference {input:?}: invalid repository path {path:?} (lowercase letters, digits and . _ __ - separators between `/`)")]
    InvalidPath { input: String, path: String },
    #[error("image reference {input:?}: invalid tag {tag:?} (letters, digits, _ . - and at most 128 characters, not starting with . or -)")]
    InvalidTag { input: String, tag: String },
    #[error("image reference {input:?}: invalid digest {digest:?}: {reason}")]
    InvalidDigest {
        input: String,
        digest: String,
        reason: &'static str,
    },
    #[error("image reference {input:?} looks like an image ID (64 hex digits); name a repository instead")]
    LooksLikeId { input: String },
}

/// A parsed, normalized image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

impl ImageRef {
    /// Parse `input`, filling in the default domain, `library/` and the
    /// `latest` tag where docker would.
    pub fn parse(input: &str) -> Result<ImageRef, ImageRefError> {
        if input.is_empty() {
            return Err(ImageRefError::Empty);
        }
        let (name_tag, digest) = match input.split_once('@') {
            Some((n, d)) => (n, Some(check_digest(input, d)?)),
            None => (input, None),
        };
        let (name, tag) = split_tag(name_tag);
        if name.is_empty() {
            return Err(ImageRefError::MissingName {
                input: input.into(),
            });
        }
        if let Some(tag) = tag {
            check_tag(input, tag)?;
        }
        let (domain, path) = split_domain(input, name)?;
        check_path(input, &path)?;
        let len = domain.len() + 1 + path.len();
        if len > NAME_MAX {
            return Err(ImageRefError::NameTooLong {
                input: input.into(),
                len,
            });
        }
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            (tag, _) => tag.map(String::from),
        };
        Ok(ImageRef {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The registry domain, such as `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry, such as `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Domain and path: `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The tag, if any (`latest` when the input had neither tag nor digest).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any, as `algorithm:hex`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }

    /// The short form docker prints: without `docker.io/` and `library/`,
    /// with tag and digest (`busybox:latest`, `ns/app:v1`,
    /// `localhost:5000/app:v1`).
    pub fn familiar(&self) -> String {
        let mut out = String::new();
        if self.domain != DEFAULT_DOMAIN {
            out.push_str(&self.domain);
            out.push('/');
        }
        let path = match self.path.strip_prefix(OFFICIAL_PREFIX) {
            Some(short) if self.domain == DEFAULT_DOMAIN && !short.contains('/') => short,
            _ => &self.path,
        };
        out.push_str(path);
        self.push_suffix(&mut out);
        out
    }

    fn push_suffix(&self, out: &mut String) {
        if let Some(tag) = &self.tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            out.push('@');
            out.push_str(digest);
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = self.repository();
        self.push_suffix(&mut out);
        f.write_str(&out)
    }
}

impl FromStr for ImageRef {
    type Err = ImageRefError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageRef::parse(s)
    }
}

/// Split `name[:tag]`: a `:` after the last `/` starts the tag (an earlier
/// one is a registry port).
fn split_tag(name_tag: &str) -> (&str, Option<&str>) {
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    match name_tag[last_slash..].rfind(':') {
        Some(i) => {
            let at = last_slash + i;
            (&name_tag[..at], Some(&name_tag[at + 1..]))
        }
        None => (name_tag, None),
    }
}

/// Separate the registry domain from the path, normalizing docker's.
fn split_domain(input: &str, name: &str) -> Result<(String, String), ImageRefError> {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain_like(first) => {
            check_domain(input, first)?;
            (first, rest)
        }
        _ => (DEFAULT_DOMAIN, name),
    };
    let domain = if domain == LEGACY_DOMAIN {
        DEFAULT_DOMAIN
    } else {
        domain
    };
    if domain == DEFAULT_DOMAIN && !path.contains('/') {
        if is_hex_id(path) && !name.contains('/') {
            return Err(ImageRefError::LooksLikeId {
                input: input.into(),
            });
        }
        return Ok((domain.into(), format!("{OFFICIAL_PREFIX}{path}")));
    }
    Ok((domain.into(), path.into()))
}

/// docker's rule: the first element is a domain when it has `.` or `:`,
/// is `localhost`, or has an uppercase letter (paths never do).
fn is_domain_like(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

fn is_hex_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn check_domain(input: &str, domain: &str) -> Result<(), ImageRefError> {
    let bad = || ImageRefError::InvalidDomain {
        input: input.into(),
        domain: domain.into(),
    };
    let (host, port) = if let Some(rest) = domain.strip_prefix('[') {
        let (v6, after) = rest.split_once(']').ok_or_else(bad)?;
        let v6_ok = !v6.is_empty() && v6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        if !v6_ok {
            return Err(bad());
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(bad)?),
        };
        (None, port)
    } else {
        match domain.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() || !host.split('.').all(is_host_component) {
            return Err(bad());
        }
    }
    match port {
        Some(p) if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) => Err(bad()),
        _ => Ok(()),
    }
}

fn is_host_component(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
}

fn check_path(input: &str, path: &str) -> Result<(), ImageRefError> {
    if path.split('/').all(is_path_component) {
        return Ok(());
    }
    let lower = path.to_ascii_lowercase();
    if lower != path && lower.split('/').all(is_path_component) {
        return Err(ImageRefError::Uppercase {
            input: input.into(),
        });
    }
    Err(ImageRefError::InvalidPath {
        input: input.into(),
        path: path.into(),
    })
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or one or more `-`.
fn is_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn check_tag(input: &str, tag: &str) -> Result<(), ImageRefError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-');
    if ok {
        Ok(())
    } else {
        Err(ImageRefError::InvalidTag {
            input: input.into(),
            tag: tag.into(),
        })
    }
}

fn check_digest(input: &str, digest: &str) -> Result<String, ImageRefError> {
    let bad = |reason| ImageRefError::InvalidDigest {
        input: input.into(),
        digest: digest.into(),
        reason,
    };
    let (algorithm, hex) = digest
        .split_once(':')
        .ok_or_else(|| bad("expected algorithm:hex"))?;
    let want = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(bad("algorithm must be sha256, sha384 or sha512")),
    };
    if hex.len() != want {
        return Err(bad("wrong number of hex digits for the algorithm"));
    }
    if !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(bad("the hex part must be lowercase hexadecimal"));
    }
    Ok(digest.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn normalizes_like_docker() {
        let d = format!("sha256:{HEX}");
        let cases: Vec<(String, String, String)> = [
            (
                "busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36",
                "busybox:1.36",
            ),
            (
                "library/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("ns/app:tag", "docker.io/ns/app:tag", "ns/app:tag"),
            (
                "localhost/app",
                "localhost/app:latest",
                "localhost/app:latest",
            ),
            (
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
                "localhost:5000/app:v1",
            ),
            (
                "quay.io/a/b/c:1.0-rc_1",
                "quay.io/a/b/c:1.0-rc_1",
                "quay.io/a/b/c:1.0-rc_1",
            ),
            (
                "[::1]:5000/app",
                "[::1]:5000/app:latest",
                "[::1]:5000/app:latest",
            ),
            (
                "a__b/c-d--e.f",
                "docker.io/a__b/c-d--e.f:latest",
                "a__b/c-d--e.f:latest",
            ),
            (
                "localhost:5000",
                "docker.io/library/localhost:5000",
                "localhost:5000",
            ),
        ]
        .into_iter()
        .map(|(a, b, c)| (a.into(), b.into(), c.into()))
        .chain([
            (
                format!("registry:5000/ns/app@{d}"),
                format!("registry:5000/ns/app@{d}"),
                format!("registry:5000/ns/app@{d}"),
            ),
            (
                format!("ns/app:tag@{d}"),
                format!("docker.io/ns/app:tag@{d}"),
                format!("ns/app:tag@{d}"),
            ),
            (
                format!("busybox@{d}"),
                format!("docker.io/library/busybox@{d}"),
                format!("busybox@{d}"),
            ),
        ])
        .collect();
        for (input, normal, familiar) in cases {
            let r = ImageRef::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), normal, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
            assert_eq!(ImageRef::parse(&normal).unwrap(), r, "{input} round trip");
        }
    }

    #[test]
    fn parts_are_exposed() {
        let r = ImageRef::parse(&format!("registry:5000/ns/app:v2@sha256:{HEX}")).unwrap();
        assert_eq!(r.domain(), "registry:5000");
        assert_eq!(r.path(), "ns/app");
        assert_eq!(r.repository(), "registry:5000/ns/app");
        assert_eq!(r.tag(), Some("v2"));
        assert_eq!(r.digest(), Some(format!("sha256:{HEX}").as_str()));
        let no_tag = ImageRef::parse(&format!("app@sha256:{HEX}")).unwrap();
        assert_eq!(no_tag.tag(), None, "a digest alone adds no default tag");
    }

    #[test]
    fn refuses_invalid_references() {
        use ImageRefError as E;
        type Check = fn(&E) -> bool;
        let is_empty: fn(&E) -> bool = |e| matches!(e, E::Empty);
        let no_name: fn(&E) -> bool = |e| matches!(e, E::MissingName { .. });
        let upper: fn(&E) -> bool = |e| matches!(e, E::Uppercase { .. });
        let tag: fn(&E) -> bool = |e| matches!(e, E::InvalidTag { .. });
        let path: fn(&E) -> bool = |e| matches!(e, E::InvalidPath { .. });
        let domain: fn(&E) -> bool = |e| matches!(e, E::InvalidDomain { .. });
        let digest: fn(&E) -> bool = |e| matches!(e, E::InvalidDigest { .. });
        let too_long: fn(&E) -> bool = |e| matches!(e, E::NameTooLong { .. });
        let id: fn(&E) -> bool = |e| matches!(e, E::LooksLikeId { .. });
        let cases: Vec<(String, Check)> = [
            ("", is_empty),
            (":tag", no_name),
            ("@sha256:00", digest),
            ("Busybox", upper),
            ("ns/MyApp:v1", upper),
            ("app:", tag),
            ("app:-x", tag),
            ("app:.x", tag),
            ("app@sha1:abc", digest),
            ("app@sha256", digest),
            ("a//b", path),
            ("a/b/", path),
            ("-a/b", path),
            ("a/b_-c", path),
            ("a/b___c", path),
            ("a/.b", path),
            ("a b", path),
            ("[zz]/app", path),
            ("app:a/b", domain),
            ("reg-.io/app", domain),
            ("reg.io:/app", domain),
            ("reg.io:50a/app", domain),
            ("[zz:1]/app", domain),
            ("[::1]x/app", domain),
            (HEX, id),
        ]
        .into_iter()
        .map(|(input, want)| (input.to_string(), want))
        .chain([
            (format!("app:{}", "t".repeat(129)), tag),
            (format!("a/{}", "b".repeat(260)), too_long),
            (format!("app@sha256:{}", HEX.to_ascii_uppercase()), digest),
            (format!("app@sha256:{}", &HEX[..63]), digest),
        ])
        .collect();
        for (input, want) in cases {
            let err = ImageRef::parse(&input).expect_err(&input);
            assert!(want(&err), "{input:?}: unexpected error {err:?}");
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let err = ImageRef::parse("Busybox").unwrap_err();
        assert_eq!(
            err.to_string(),
            "image reference \"Busybox\": repository name must be lowercase"
        );
    }
}
