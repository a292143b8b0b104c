//! Cross-node routes, host-gw style: every other node's pod CIDR is
//! routed through that node's address, which must be on a link this node
//! shares with it. The routes netplug installs carry its own routing
//! protocol number ([`ROUTE_PROTOCOL`]), so [`reconcile_routes`] can tell
//! them from everyone else's and bring exactly those to the desired set
//! in one call (add the missing, replace the changed, delete the stale),
//! with no state of its own: the kernel's table is the record. Routes of
//! other protocols are never touched.

use crate::netlink::{Netlink, NetlinkError};
use noderun_core::net::Cidr;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// The routing protocol number of netplug's routes (unassigned in
/// `/etc/iproute2/rt_protos`; `ip route show proto 211` lists them).
pub const ROUTE_PROTOCOL: u8 = 211;

/// Another node: its pod CIDR and the address its pods are reached by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeRoute {
    pub pod_cidr: Cidr,
    pub node_ip: IpAddr,
}

/// What a reconcile changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteChanges {
    /// Routes added or re-pointed at another node.
    pub installed: Vec<NodeRoute>,
    /// Pod CIDRs whose routes were deleted.
    pub removed: Vec<Cidr>,
}

/// A reconcile that failed, on which route.
#[derive(Debug, thiserror::Error)]
pub enum RoutesError {
    #[error("cross-node routes: listing the route table: {0}")]
    List(#[source] Box<NetlinkError>),
    #[error("cross-node routes: {pod_cidr} via {node_ip}: {source}")]
    Install {
        pod_cidr: Cidr,
        node_ip: IpAddr,
        #[source]
        source: Box<NetlinkError>,
    },
    #[error("cross-node routes: deleting the stale route to {pod_cidr}: {source}")]
    Remove {
        pod_cidr: Cidr,
        #[source]
        source: Box<NetlinkError>,
    },
    #[error("cross-node routes: {pod_cidr} is wanted via both {first} and {second}")]
    Conflict {
        pod_cidr: Cidr,
        first: IpAddr,
        second: IpAddr,
    },
}

/// Make netplug's routes in `netlink`'s namespace exactly `desired`.
pub fn reconcile_routes(
    netlink: &mut Netlink,
    desired: &[NodeRoute],
) -> Result<RouteChanges, RoutesError> {
    let mut wanted: BTreeMap<Cidr, IpAddr> = BTreeMap::new();
    for route in desired {
        if let Some(first) = wanted.insert(route.pod_cidr, route.node_ip) {
            if first != route.node_ip {
                return Err(RoutesError::Conflict {
                    pod_cidr: route.pod_cidr,
                    first,
                    second: route.node_ip,
                });
            }
        }
    }
    let current = installed(netlink)?;
    let mut changes = RouteChanges::default();
    for (&pod_cidr, _) in current.iter().filter(|(c, _)| !wanted.contains_key(c)) {
        netlink
            .delete_route(pod_cidr, ROUTE_PROTOCOL)
            .map_err(|e| RoutesError::Remove {
                pod_cidr,
                source: Box::new(e),
            })?;
        changes.removed.push(pod_cidr);
    }
    for (&pod_cidr, &node_ip) in &wanted {
        if current.get(&pod_cidr) == Some(&Some(node_ip)) {
            continue;
        }
        netlink
            .replace_route(pod_cidr, node_ip, ROUTE_PROTOCOL)
            .map_err(|e| RoutesError::Install {
                pod_cidr,
                node_ip,
                source: Box::new(e),
            })?;
        changes.installed.push(NodeRoute { pod_cidr, node_ip });
    }
    Ok(changes)
}

/// netplug's routes now in the table, both families: prefix → gateway.
pub fn installed(netlink: &mut Netlink) -> Result<BTreeMap<Cidr, Option<IpAddr>>, RoutesError> {
    let mut found = BTreeMap::new();
    for ipv4 in [true, false] {
        let routes = netlink
            .routes(ipv4)
            .map_err(|e| RoutesError::List(Box::new(e)))?;
        for route in routes.into_iter().filter(|r| r.protocol == ROUTE_PROTOCOL) {
            let Some((ip, prefix)) = route.destination else {
                continue;
            };
            if let Ok(cidr) = Cidr::new(ip, prefix) {
                found.insert(cidr, route.gateway);
            }
        }
    }
    Ok(found)
}
