//! `noderun-netplug` wires pods into the node's network over netlink: the
//! bridge, veth pairs, IPAM, addresses and routes. (Work in progress: see
//! the README's status table.)
