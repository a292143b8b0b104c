//! [`CniError`]: the error a CNI plugin prints on stdout (`code`, `msg`,
//! `details`) before exiting non-zero, with the spec's well-known codes
//! (0-99 are the spec's; 100 and up are netplug's own).

use serde::Serialize;

/// The spec's well-known error codes, and netplug's own from 100 up.
pub mod code {
    /// The request's `cniVersion` is not one netplug speaks.
    pub const INCOMPATIBLE_VERSION: u32 = 1;
    /// A field of the network configuration asks for something netplug
    /// does not do.
    pub const UNSUPPORTED_FIELD: u32 = 2;
    /// The container (its network namespace) does not exist.
    pub const UNKNOWN_CONTAINER: u32 = 3;
    /// A `CNI_*` environment variable is missing or invalid.
    pub const INVALID_ENVIRONMENT: u32 = 4;
    /// Reading or writing state failed.
    pub const IO_FAILURE: u32 = 5;
    /// stdin is not the JSON the spec describes.
    pub const DECODING_FAILURE: u32 = 6;
    /// The network configuration is well-formed but cannot work.
    pub const INVALID_NETWORK_CONFIG: u32 = 7;
    /// A transient condition: the runtime should retry.
    pub const TRY_AGAIN_LATER: u32 = 11;
    /// STATUS: the plugin cannot take ADDs now.
    pub const NOT_AVAILABLE: u32 = 50;
    /// IPAM: every address of the range is in use.
    pub const NO_ADDRESSES: u32 = 100;
    /// A netlink operation on the node or in the pod failed.
    pub const NETWORK_SETUP: u32 = 101;
    /// CHECK found the attachment not as ADD left it.
    pub const CHECK_FAILED: u32 = 102;
}

/// A CNI error result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("CNI error {code}: {msg}{}", if details.is_empty() { String::new() } else { format!(" ({details})") })]
pub struct CniError {
    pub code: u32,
    pub msg: String,
    pub details: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorJson<'a> {
    cni_version: &'a str,
    code: u32,
    msg: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    details: &'a str,
}

impl CniError {
    pub fn new(code: u32, msg: impl Into<String>) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: String::new(),
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> CniError {
        self.details = details.into();
        self
    }

    /// The error as the spec's JSON, in `cni_version`.
    pub fn to_json(&self, cni_version: &str) -> String {
        let json = ErrorJson {
            cni_version,
            code: self.code,
            msg: &self.msg,
            details: &self.details,
        };
        serde_json::to_string(&json).expect("an error of strings and numbers serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_has_the_spec_fields() {
        let err = CniError::new(code::TRY_AGAIN_LATER, "busy").with_details("lock held");
        let v: serde_json::Value = serde_json::from_str(&err.to_json("1.0.0")).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["code"], 11);
        assert_eq!(v["msg"], "busy");
        assert_eq!(v["details"], "lock held");
        let bare = CniError::new(code::IO_FAILURE, "x").to_json("1.1.0");
        assert!(!bare.contains("details"), "{bare}");
    }
}
