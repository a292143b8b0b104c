//! `noderun-controlplane` holds the cluster's state and acts on it: the
//! store, the apiserver and its client library, and the controllers; the
//! scheduler comes next.

pub mod apiserver;
pub mod client;
pub mod controllers;
pub mod ctl;
mod framing;
pub mod store;
