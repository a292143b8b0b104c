//! Routes in the main table: add a pod's default route through its
//! gateway, add and delete a prefix's route through a gateway under a
//! routing protocol number (cross-node routes), and list routes.

use super::{Netlink, NetlinkError, What};
use crate::netlink::Link;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use noderun_core::net::Cidr;
use std::net::IpAddr;

/// A route of the main table, reduced to what netplug reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// The destination and its prefix length; `None` for a default route.
    pub destination: Option<(IpAddr, u8)>,
    pub gateway: Option<IpAddr>,
    /// The index of the outgoing link.
    pub oif: Option<u32>,
    /// Who installed it (`RTPROT_*`, or a number of one's own).
    pub protocol: u8,
}

impl Route {
    fn from_message(message: RouteMessage) -> Option<Route> {
        let mut table = u32::from(message.header.table);
        let mut route = Route {
            destination: None,
            gateway: None,
            oif: None,
            protocol: u8::from(message.header.protocol),
        };
        for attribute in message.attributes {
            match attribute {
                RouteAttribute::Table(t) => table = t,
                RouteAttribute::Destination(d) => {
                    route.destination =
                        ip_of(d).map(|ip| (ip, message.header.destination_prefix_length));
                }
                RouteAttribute::Gateway(g) => route.gateway = ip_of(g),
                RouteAttribute::Oif(index) => route.oif = Some(index),
                _ => {}
            }
        }
        (table == u32::from(RouteHeader::RT_TABLE_MAIN)).then_some(route)
    }

    /// True for a default route (`0.0.0.0/0` or `::/0`).
    pub fn is_default(&self) -> bool {
        self.destination.is_none_or(|(_, prefix)| prefix == 0)
    }
}

fn ip_of(address: RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(v4.into()),
        RouteAddress::Inet6(v6) => Some(v6.into()),
        _ => None,
    }
}

fn family_of(ip: IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

impl Netlink {
    /// Add the default route of `gateway`'s family through `gateway` out of
    /// `link`. Fails with `EEXIST` if a default route exists.
    pub fn add_default_route(&mut self, gateway: IpAddr, link: &Link) -> Result<(), NetlinkError> {
        let mut message = RouteMessage::default();
        message.header.address_family = family_of(gateway);
        message.header.table = RouteHeader::RT_TABLE_MAIN;
        message.header.protocol = RouteProtocol::Boot;
        message.header.scope = RouteScope::Universe;
        message.header.kind = RouteType::Unicast;
        message
            .attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
        message.attributes.push(RouteAttribute::Oif(link.index));
        let target = format!("via {gateway} dev {}", link.name);
        let what = What {
            op: "add default route",
            target: &target,
        };
        self.execute(
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_EXCL,
            what,
        )
    }

    /// Route `destination` through `gateway` with protocol number
    /// `protocol`, replacing a route to the same prefix.
    pub fn replace_route(
        &mut self,
        destination: Cidr,
        gateway: IpAddr,
        protocol: u8,
    ) -> Result<(), NetlinkError> {
        let message = prefix_route(destination, Some(gateway), protocol);
        let target = format!("{destination} via {gateway}");
        let what = What {
            op: "replace route",
            target: &target,
        };
        self.execute(
            RouteNetlinkMessage::NewRoute(message),
            NLM_F_CREATE | NLM_F_REPLACE,
            what,
        )
    }

    /// Delete the route to `destination` installed with `protocol`.
    pub fn delete_route(&mut self, destination: Cidr, protocol: u8) -> Result<(), NetlinkError> {
        let message = prefix_route(destination, None, protocol);
        let target = destination.to_string();
        let what = What {
            op: "delete route",
            target: &target,
        };
        self.execute(RouteNetlinkMessage::DelRoute(message), 0, what)
    }

    /// The main table's routes of one family (IPv4 when `ipv4`).
    pub fn routes(&mut self, ipv4: bool) -> Result<Vec<Route>, NetlinkError> {
        let mut message = RouteMessage::default();
        message.header.address_family = if ipv4 {
            AddressFamily::Inet
        } else {
            AddressFamily::Inet6
        };
        let what = What {
            op: "list",
            target: &"routes",
        };
        let answers = self.dump(RouteNetlinkMessage::GetRoute(message), what)?;
        Ok(answers
            .into_iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewRoute(r) => Route::from_message(r),
                _ => None,
            })
            .collect())
    }
}

/// A main-table unicast route to `destination`, optionally via `gateway`.
fn prefix_route(destination: Cidr, gateway: Option<IpAddr>, protocol: u8) -> RouteMessage {
    let mut message = RouteMessage::default();
    message.header.address_family = family_of(destination.addr());
    message.header.destination_prefix_length = destination.prefix();
    message.header.table = RouteHeader::RT_TABLE_MAIN;
    message.header.protocol = RouteProtocol::from(protocol);
    message.header.scope = RouteScope::Universe;
    message.header.kind = RouteType::Unicast;
    message
        .attributes
        .push(RouteAttribute::Destination(RouteAddress::from(
            destination.addr(),
        )));
    if let Some(gateway) = gateway {
        message
            .attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
    }
    message
}
