//! Cross-crate integration and end-to-end tests live in `tests/tests/`; this
//! library holds what they share.
//!
//! - [`cluster`]: a one-node cluster of the real binaries (`controlplane`,
//!   `noderun agent`) on temporary directories, driven through `ctl`.

pub mod cluster;
