//! `noderun-controlplane` holds the cluster's state and acts on it: the
//! store, the apiserver and its client library; the scheduler and the
//! controllers come next.

pub mod apiserver;
pub mod client;
pub mod ctl;
mod framing;
pub mod store;
