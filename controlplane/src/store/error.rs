//! [`StoreError`]: every way a store operation fails, each naming the key,
//! revision or file it failed on. The apiserver maps the semantic variants
//! (NotFound, AlreadyExists, Conflict, Compacted) to protocol error codes;
//! the rest are server faults.

use super::ObjectKey;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// A store operation that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("{key} not found")]
    NotFound { key: ObjectKey },

    #[error("{key} already exists")]
    AlreadyExists { key: ObjectKey },

    #[error("conflict on {key}: {mismatch}; read the object again and retry")]
    Conflict { key: ObjectKey, mismatch: Mismatch },

    #[error(
        "revision {requested} has been compacted (history kept after {compacted}); list again"
    )]
    Compacted { requested: u64, compacted: u64 },

    #[error("revision {requested} is in the future (current revision {current})")]
    FutureRevision { requested: u64, current: u64 },

    #[error("cannot store {key}: {reason}")]
    InvalidKey {
        key: ObjectKey,
        reason: &'static str,
    },

    #[error("cannot encode {key} for the store")]
    Encode {
        key: ObjectKey,
        #[source]
        source: postcard::Error,
    },

    #[error("corrupt {what} in {path}")]
    Corrupt {
        /// What did not decode: `object pods/default/web`, `change log
        /// entry 42`, `metadata revision`.
        what: String,
        path: PathBuf,
        #[source]
        source: postcard::Error,
    },

    #[error("{op} on {path} failed")]
    Backend {
        /// What the store was doing: `open`, `begin write`, `commit`, ...
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<dyn std::error::Error + Send + Sync>,
    },

    #[error("store at {path} is shut down")]
    Closed { path: PathBuf },
}

impl StoreError {
    /// Whether the caller should relist: its revision is no longer kept.
    pub fn is_compacted(&self) -> bool {
        matches!(self, StoreError::Compacted { .. })
    }
}

/// Which check of a compare-and-swap failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    ResourceVersion { expected: u64, stored: u64 },
    Uid { expected: String, stored: String },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::ResourceVersion { expected, stored } => write!(
                f,
                "resourceVersion {expected} was given but the stored object is at {stored}"
            ),
            Mismatch::Uid { expected, stored } => write!(
                f,
                "uid {expected:?} was given but the stored object has uid {stored:?}"
            ),
        }
    }
}
