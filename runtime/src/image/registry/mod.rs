//! Pulling images from a registry over the OCI distribution API.
//!
//! One file a job:
//! - [`endpoint`]: an image reference → the registry's base URL and the
//!   manifest/blob URLs, and whether plain HTTP is allowed (loopback only).
//! - [`challenge`]: parsing `WWW-Authenticate` challenges (Bearer and Basic)
//!   and building the token request they ask for.
//!
//! The HTTP client, blob download and pull orchestration are not written yet.

pub mod challenge;
pub mod endpoint;

pub use challenge::{Challenge, ChallengeError};
pub use endpoint::{Endpoint, EndpointError};
