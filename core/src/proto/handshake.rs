//! The handshake: the client's [`Hello`] names the protocol (magic), the
//! versions it speaks and its credentials; the server picks the highest
//! common version or refuses with a typed error.

use super::{ApiError, Credentials, ErrorCode, Hello};
use alloc::format;
use alloc::string::String;

/// Every connection's first frame starts with this.
pub const MAGIC: [u8; 4] = *b"NDRN";
/// The version this build speaks.
pub const PROTOCOL_VERSION: u16 = 1;
/// The oldest version this build still speaks.
pub const MIN_PROTOCOL_VERSION: u16 = 1;

impl Hello {
    /// A Hello for this build's versions.
    pub fn new(credentials: Credentials, client: impl Into<String>) -> Hello {
        Hello {
            magic: MAGIC,
            min_version: MIN_PROTOCOL_VERSION,
            max_version: PROTOCOL_VERSION,
            credentials,
            client: client.into(),
        }
    }
}

/// The version to speak with a client, or why the connection must close.
pub fn negotiate(hello: &Hello) -> Result<u16, ApiError> {
    if hello.magic != MAGIC {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "not a noderun client (bad magic in the first frame)",
        ));
    }
    if hello.min_version > hello.max_version {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "hello: min_version > max_version",
        ));
    }
    let best = hello.max_version.min(PROTOCOL_VERSION);
    if best < hello.min_version.max(MIN_PROTOCOL_VERSION) {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            format!(
                "no common protocol version: client speaks {}..={}, server {}..={}; upgrade the older side",
                hello.min_version, hello.max_version, MIN_PROTOCOL_VERSION, PROTOCOL_VERSION
            ),
        ));
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_negotiation() {
        let mut h = Hello::new(Credentials::Bearer("t".into()), "test");
        assert_eq!(negotiate(&h).unwrap(), PROTOCOL_VERSION);
        h.max_version = 9;
        assert_eq!(
            negotiate(&h).unwrap(),
            PROTOCOL_VERSION,
            "a newer client falls back"
        );
        h.min_version = 5;
        let e = negotiate(&h).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        assert!(e.message.contains("no common protocol version"), "{e}");
        h.min_version = 10;
        assert!(negotiate(&h).is_err());
        let mut bad = Hello::new(Credentials::None, "x");
        bad.magic = *b"HTTP";
        assert!(negotiate(&bad).unwrap_err().message.contains("bad magic"));
    }
}
