//! `noderun-controlplane` holds the cluster's state and acts on it: the
//! store, the apiserver and its client library, the controllers and the
//! scheduler.

pub mod apiserver;
pub mod client;
pub mod controllers;
pub mod ctl;
mod framing;
pub mod scheduler;
pub mod store;
