//! Cross-crate integration and end-to-end tests live in `tests/tests/`; this
//! library holds what they share.
//!
//! - [`cluster`]: a one-node cluster of the real binaries (`controlplane`,
//!   `noderun agent`) on temporary directories, driven through `ctl`.
//! - [`images`]: busybox with a layer of its own, and holds on the
//!   node's snapshotter locks (a pod start or restart caught midway).
//! - [`startrecord`]: the daemon's per-pod start records read back from
//!   its log (the podstart bench's phase breakdown).

pub mod cluster;
pub mod images;
pub mod startrecord;
