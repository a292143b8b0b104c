//! `noderun-core` is the pure half of noderun: the API object model, its
//! validation and defaulting, the binary wire protocol, and algorithms that
//! need no I/O. Nothing in here makes a syscall, opens a socket or starts a
//! task; every other crate of the workspace builds on it.
//!
//! The crate is `#![no_std]` with `alloc`. The default `std` feature adds
//! blocking I/O helpers for the protocol; `manifest` adds YAML/JSON manifests
//! in the Kubernetes style; `arbitrary` derives structured random values for
//! fuzzing.
#![cfg_attr(not(any(feature = "std", test)), no_std)]

extern crate alloc;

pub mod defaults;
pub mod image_ref;
pub mod ipam;
pub mod model;
pub mod net;
pub mod proto;
pub mod sched;
pub mod validate;

#[cfg(feature = "manifest")]
pub mod manifest;

pub use model::*;
