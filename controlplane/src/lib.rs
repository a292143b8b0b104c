//! `noderun-controlplane` holds the cluster's state and acts on it: the
//! store, the apiserver, the scheduler and the controllers. (Work in
//! progress: see the README's status table.)

pub mod store;
