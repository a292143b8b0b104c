//! Store failures as the protocol's typed errors. The semantic ones keep
//! their meaning (NotFound, AlreadyExists, Conflict, Expired); faults of
//! the server are logged here with what was being done and answered as
//! `Internal` or `Unavailable` without the server's paths.

use crate::store::StoreError;
use noderun_core::proto::{ApiError, ErrorCode};

/// `err` as the client should see it; `doing` names the operation for the
/// server's log (`create Pod default/web by admin`).
pub fn from_store(err: StoreError, doing: &dyn std::fmt::Display) -> ApiError {
    let code = match &err {
        StoreError::NotFound { .. } => ErrorCode::NotFound,
        StoreError::AlreadyExists { .. } => ErrorCode::AlreadyExists,
        StoreError::Conflict { .. } => ErrorCode::Conflict,
        StoreError::Compacted { .. } => ErrorCode::Expired,
        StoreError::FutureRevision { .. } => ErrorCode::BadRequest,
        StoreError::InvalidKey { .. } => ErrorCode::Invalid,
        StoreError::Closed { .. } => {
            tracing::warn!(error = %err, %doing, "store unavailable");
            return ApiError::new(
                ErrorCode::Unavailable,
                "the store is shutting down; retry against a running controlplane",
            );
        }
        StoreError::Encode { .. } | StoreError::Corrupt { .. } | StoreError::Backend { .. } => {
            tracing::error!(error = %ErrorChain(&err), %doing, "store failure");
            return ApiError::new(
                ErrorCode::Internal,
                format!("{doing}: internal store error (see the controlplane's log)"),
            );
        }
    };
    ApiError::new(code, err.to_string())
}

/// An error with its sources, `a: b: c`, for logs.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Mismatch, ObjectKey};
    use noderun_core::Kind;

    #[test]
    fn semantic_errors_keep_their_meaning() {
        let key = ObjectKey::new(Kind::Pod, "default", "web").unwrap();
        let conflict = StoreError::Conflict {
            key: key.clone(),
            mismatch: Mismatch::ResourceVersion {
                expected: 1,
                stored: 2,
            },
        };
        let e = from_store(conflict, &"update");
        assert_eq!(e.code, ErrorCode::Conflict);
        assert!(e.message.contains("Pod default/web"), "{e}");
        let gone = from_store(StoreError::NotFound { key }, &"get");
        assert_eq!(gone.code, ErrorCode::NotFound);
        let old = StoreError::Compacted {
            requested: 1,
            compacted: 5,
        };
        assert_eq!(from_store(old, &"watch").code, ErrorCode::Expired);
    }
}
