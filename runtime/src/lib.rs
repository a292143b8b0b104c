//! `noderun-runtime` owns everything that runs containers on one Linux host:
//! the OCI runtime, the image store and overlay snapshotter, and the node
//! agent. It talks to the control plane through `noderun-client`, over
//! `noderun-core`'s protocol; it never depends on `noderun-controlplane`.
//!
//! - [`sys`]: thin, named wrappers around the raw syscalls; nothing else
//!   calls `libc` for them.
//! - [`cgroups`]: one `Cgroups` interface, a v1 and a v2 driver.
//! - [`rootfs`]: the container's filesystem: mounts, devices, pivot_root,
//!   masked and read-only paths.
//! - [`process`]: the container process's identity and confinement:
//!   namespaces joined, user, capabilities, rlimits.
//! - [`seccomp`]: the spec's seccomp profile compiled to BPF and loaded.
//! - [`agent`]: the node agent's pod layer: pods into running, networked
//!   containers and back, through a pre-forked container runner.
//! - [`node`]: the node daemon: registration, heartbeat, the pods bound to
//!   the node through the pod layer, status back to the apiserver.

pub mod agent;
pub mod cgroups;
pub mod container;
pub mod image;
pub mod init;
pub mod node;
pub mod process;
pub mod rootfs;
pub mod seccomp;
pub mod snapshot;
pub mod sys;
