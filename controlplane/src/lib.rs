//! `noderun-controlplane` holds the cluster's state and acts on it: the
//! store, the apiserver and its client library, the controllers and the
//! scheduler.

pub mod apiserver;
pub use noderun_client as client;
pub mod controllers;
pub mod ctl;
pub mod scheduler;
pub mod store;
