//! Pulling images from a registry over the OCI distribution API.
//!
//! One file a job:
//! - [`endpoint`]: an image reference → the registry's base URL and the
//!   manifest/blob URLs, and whether plain HTTP is allowed (loopback only).
//! - [`challenge`]: parsing `WWW-Authenticate` challenges (Bearer and Basic)
//!   and building the token request they ask for.
//! - [`credentials`]: user and password, given, from `NODERUN_REGISTRY_AUTH`
//!   or from a docker `config.json` `auths` entry ([`base64`] for both).
//! - [`http`]: the client: anonymous first, then a Bearer token or Basic
//!   credentials on a 401, with the token shared by the download workers.
//! - [`blob`]: one blob into the content store, resumable with `Range`,
//!   verified before it is renamed to its digest.
//! - [`pull`]: reference → manifest (platform from an index) → config and
//!   layers in parallel → image check → record.

pub mod base64;
pub mod blob;
pub mod challenge;
pub mod credentials;
pub mod endpoint;
pub mod http;
pub mod pull;

pub use challenge::{Challenge, ChallengeError};
pub use credentials::{Credentials, CredentialsError, AUTH_ENV};
pub use endpoint::{Endpoint, EndpointError};
pub use http::Client;
pub use pull::{pull, registry_of, PullOptions, PullReport, MAX_MANIFEST};

use crate::image::{ContentError, Digest, ImageError};
use std::path::PathBuf;

/// What went wrong in a pull, naming the registry, repository, blob and
/// HTTP status where there is one.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image name {name:?}: {source}")]
    Name {
        name: String,
        #[source]
        source: noderun_core::image_ref::ImageRefError,
    },
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    #[error("registry {registry}: {source}")]
    Challenge {
        registry: String,
        #[source]
        source: ChallengeError,
    },
    #[error("unauthorized: registry {registry} wants credentials for {repository} and none were given; log in with --username and --password-stdin, {}=user:password, or an auths entry in the docker config.json", credentials::AUTH_ENV)]
    NeedsCredentials {
        registry: String,
        repository: String,
    },
    #[error("unauthorized: registry {registry} refused the credentials of user {username:?} for {repository} (GET {url}); check the user name and password")]
    Unauthorized {
        registry: String,
        repository: String,
        username: String,
        url: String,
    },
    #[error("registry {registry}: GET {url}: {source}")]
    Http {
        registry: String,
        url: String,
        #[source]
        source: Box<ureq::Error>,
    },
    #[error("registry {registry}, repository {repository}: GET {url}: HTTP {status}: {reason}")]
    Status {
        registry: String,
        repository: String,
        url: String,
        status: u16,
        reason: String,
    },
    #[error("registry {registry}: reading GET {url}: {source}")]
    Body {
        registry: String,
        url: String,
        #[source]
        source: std::io::Error,
    },
    #[error("registry {registry}, repository {repository}, blob {digest}: {source}")]
    Blob {
        registry: String,
        repository: String,
        digest: Digest,
        #[source]
        source: Box<ContentError>,
    },
    #[error("pull: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Content(Box<ContentError>),
    #[error(transparent)]
    Image(Box<ImageError>),
}

impl From<ContentError> for RegistryError {
    fn from(e: ContentError) -> Self {
        RegistryError::Content(Box::new(e))
    }
}

impl From<ImageError> for RegistryError {
    fn from(e: ImageError) -> Self {
        RegistryError::Image(Box::new(e))
    }
}
