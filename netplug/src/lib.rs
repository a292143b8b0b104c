//! `noderun-netplug` wires pods into the node's network over netlink: a
//! bridge per network, a veth pair per pod (the pod end made directly in
//! the pod's namespace), an address from the node's pod CIDR, and the
//! pod's default route. The node agent calls [`PodNetwork`] in-process;
//! a CNI binary over the same library comes in a later slice.
//!
//! - [`netlink`]: a synchronous rtnetlink client with named operations on
//!   links, addresses and routes, one socket per network namespace.
//! - [`netns`]: opening a namespace and working in it from a short-lived
//!   thread, never from the caller's.
//! - [`store`]: a network's IPAM state on disk (the allocator itself is
//!   pure, in `noderun_core::ipam`), locked and replaced atomically.
//! - [`config`] and [`pod`]: what a network is, and ADD, CHECK and DEL.
//!
//! - [`masquerade`]: outbound NAT (`ipMasq`) in netplug's own nftables
//!   table.
//! - [`routes`]: cross-node routes (host-gw), reconciled to a desired set.
//! - [`cni`]: the CNI 1.x protocol over the same library, for the
//!   `netplug` binary.
//!
//! IPv6 pod networks work like IPv4 ones (tested end to end: addresses
//! without DAD, default route, echo between pods and the gateway); ipMasq
//! for IPv6 is built but not tested against a far host.

pub mod cni;
pub mod config;
pub mod masquerade;
pub mod netlink;
pub mod netns;
pub mod pod;
pub mod routes;
pub mod store;

pub use config::{host_veth_name, mac_for, NetworkConfig};
pub use netns::Netns;
pub use pod::{Attachment, PodNetwork, PodNetworkError};
pub use store::{IpamStore, StoreError};
