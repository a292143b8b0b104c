//! `noderun-runtime` owns everything that runs containers on one Linux host:
//! the OCI runtime, the image store and overlay snapshotter, and the node
//! agent. It talks to the control plane only through `noderun-core`'s
//! protocol. (Work in progress: see the README's status table.)
