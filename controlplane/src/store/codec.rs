//! How the backends turn objects into stored bytes and back: postcard,
//! the same encoding in the embedded store's redb file and in etcd values,
//! with errors naming the key (and the file or endpoint) that failed.

use super::{ObjectKey, StoreError};
use noderun_core::Object;
use serde::Serialize;
use std::path::Path;

/// The stored bytes of `value`, written under `key`.
pub(crate) fn encode<T: Serialize>(value: &T, key: &ObjectKey) -> Result<Vec<u8>, StoreError> {
    postcard::to_stdvec(value).map_err(|source| StoreError::Encode {
        key: key.clone(),
        source,
    })
}

/// The object stored as `bytes` under the storage key `key` in `path` (a
/// file, or an etcd endpoint and key).
pub(crate) fn decode_object(bytes: &[u8], key: &str, path: &Path) -> Result<Object, StoreError> {
    postcard::from_bytes(bytes).map_err(|source| StoreError::Corrupt {
        what: format!("object {key}"),
        path: path.to_owned(),
        source,
    })
}
