//! Support for noderun's privileged tests: the root check that refuses to
//! skip silently, names unique across threads and processes, and drop guards
//! that remove what a test made (directories, mounts, network namespaces,
//! cgroups, child processes, local docker-registry servers) even when the
//! test panics. It also tells tests which cgroup layout the host has and can
//! snapshot the host to catch leaks.
//!
//! This crate is for tests only: it owns no production logic, and the
//! runtime keeps its own cgroup detection and syscall wrappers.

mod cgroup;
mod child;
mod cleanup;
mod error;
mod images;
mod layout;
mod mount;
mod mountinfo;
mod names;
mod netns;
mod privileged;
mod registry;
mod report;
mod snapshot;
mod sys;
mod tempdir;

pub use cgroup::CgroupGuard;
pub use child::ChildGuard;
pub use cleanup::Cleanup;
pub use error::Error;
pub use images::{blob_files, busybox_layout};
pub use layout::CgroupLayout;
pub use mount::MountGuard;
pub use mountinfo::{mount_points, mount_points_under, MountEntry};
pub use names::{unique_name, unique_name_long, IFNAMSIZ_MAX, MAX_SHORT_PREFIX};
pub use netns::{NetnsGuard, NETNS_RUN_DIR};
pub use privileged::{decide, privileged, Decision, UNPRIVILEGED_ENV};
pub use registry::{ensure_registry_tools, Registry};
pub use snapshot::{assert_no_leaks_since, HostSnapshot, Leaks};
pub use tempdir::TempDir;
