//! Where a reference lives: the registry's base URL and the URLs of its
//! manifests and blobs. Plain HTTP is used only for loopback hosts
//! (127.0.0.0/8, `localhost`, `::1`); every other host is reached over HTTPS.

use crate::image::Digest;
use noderun_core::image_ref::ImageRef;
use std::net::IpAddr;

/// The registry docker means by `docker.io`.
const DOCKER_HUB_API: &str = "registry-1.docker.io";

/// A reference that cannot be turned into registry URLs.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("registry {registry}: {reason}")]
    BadHost {
        registry: String,
        reason: &'static str,
    },
}

/// One repository on one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The registry as the reference names it (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// The repository path inside it (`library/busybox`).
    pub repository: String,
    /// `http://host[:port]` or `https://host[:port]`, no trailing slash.
    pub base: String,
}

impl Endpoint {
    /// The endpoint of `reference`'s repository.
    pub fn of(reference: &ImageRef) -> Result<Endpoint, EndpointError> {
        let registry = reference.domain().to_string();
        let host_port = if registry == "docker.io" {
            DOCKER_HUB_API
        } else {
            registry.as_str()
        };
        let scheme = if is_loopback(host_of(host_port)) {
            "http"
        } else {
            "https"
        };
        if host_port.contains(['/', '?', '#', '@']) {
            return Err(EndpointError::BadHost {
                registry,
                reason: "the host contains a character not allowed in a host",
            });
        }
        Ok(Endpoint {
            base: format!("{scheme}://{host_port}"),
            repository: reference.path().to_string(),
            registry,
        })
    }

    /// Whether the endpoint is spoken to in plain HTTP.
    pub fn is_plain_http(&self) -> bool {
        self.base.starts_with("http://")
    }

    /// `GET /v2/` — the API version check that also yields the auth challenge.
    pub fn ping_url(&self) -> String {
        format!("{}/v2/", self.base)
    }

    /// The manifest named by a tag or a digest (`algorithm:hex`).
    pub fn manifest_url(&self, tag_or_digest: &str) -> String {
        format!(
            "{}/v2/{}/manifests/{}",
            self.base, self.repository, tag_or_digest
        )
    }

    /// The blob `digest`.
    pub fn blob_url(&self, digest: &Digest) -> String {
        format!("{}/v2/{}/blobs/{}", self.base, self.repository, digest)
    }
}

/// The host part of `host[:port]`, `[v6]:port` or a bare `v6` address.
fn host_of(host_port: &str) -> &str {
    if let Some(rest) = host_port.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    if host_port.matches(':').count() > 1 {
        return host_port;
    }
    host_port.split(':').next().unwrap_or(host_port)
}

/// Loopback: `localhost`, 127.0.0.0/8, `::1`.
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(name: &str) -> Endpoint {
        Endpoint::of(&ImageRef::parse(name).unwrap()).unwrap()
    }

    #[test]
    fn docker_hub_is_https_on_its_api_host() {
        let e = endpoint("busybox");
        assert_eq!(e.base, "https://registry-1.docker.io");
        assert_eq!(e.repository, "library/busybox");
        assert_eq!(e.registry, "docker.io");
        assert_eq!(
            e.manifest_url("latest"),
            "https://registry-1.docker.io/v2/library/busybox/manifests/latest"
        );
    }

    #[test]
    fn loopback_hosts_are_plain_http_others_https() {
        assert_eq!(
            endpoint("127.0.0.1:5000/ns/app:v1").base,
            "http://127.0.0.1:5000"
        );
        assert_eq!(endpoint("127.8.9.1:5000/app").base, "http://127.8.9.1:5000");
        assert_eq!(endpoint("localhost:5000/app").base, "http://localhost:5000");
        assert_eq!(endpoint("localhost/app").base, "http://localhost");
        assert_eq!(endpoint("[::1]:5000/app").base, "http://[::1]:5000");
        assert!(endpoint("[::1]:5000/app").is_plain_http());
        assert_eq!(
            endpoint("registry:5000/ns/app").base,
            "https://registry:5000"
        );
        assert_eq!(endpoint("10.0.0.1:5000/app").base, "https://10.0.0.1:5000");
        assert_eq!(
            endpoint("localhost.evil.com/app").base,
            "https://localhost.evil.com"
        );
        assert!(!endpoint("quay.io/app").is_plain_http());
    }

    #[test]
    fn blob_and_digest_urls() {
        let e = endpoint("127.0.0.1:5000/ns/app:v1");
        let d = Digest::of(b"x");
        assert_eq!(
            e.blob_url(&d),
            format!("http://127.0.0.1:5000/v2/ns/app/blobs/sha256:{}", d.hex())
        );
        assert_eq!(
            e.manifest_url(&d.to_string()),
            format!(
                "http://127.0.0.1:5000/v2/ns/app/manifests/sha256:{}",
                d.hex()
            )
        );
        assert_eq!(e.ping_url(), "http://127.0.0.1:5000/v2/");
    }
}
