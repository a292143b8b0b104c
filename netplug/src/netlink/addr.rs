//! Interface addresses: add one (an IPv4 address with its broadcast
//! address, as `ip addr add a/n brd +` would) and list them, for CHECK and
//! for tests.

use super::{Netlink, NetlinkError, What};
use crate::netlink::Link;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use nix::errno::Errno;
use noderun_core::net::Cidr;
use std::net::IpAddr;

/// An address on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// The link's index.
    pub index: u32,
    pub ip: IpAddr,
    pub prefix: u8,
}

impl Address {
    fn from_message(message: AddressMessage) -> Option<Address> {
        let ip = message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })?;
        Some(Address {
            index: message.header.index,
            ip,
            prefix: message.header.prefix_len,
        })
    }
}

/// Shows `ip/prefix`, the address as `ip addr` shows it.
struct Shown(IpAddr, u8, String);

impl std::fmt::Display for Shown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} on {}", self.0, self.1, self.2)
    }
}

impl Netlink {
    /// Add `ip/prefix` to `link`. An IPv6 address skips duplicate address
    /// detection: IPAM already made it unique, and DAD would keep it
    /// unusable for a second. Fails with `EEXIST` if the link has it.
    pub fn add_address(&mut self, link: &Link, ip: IpAddr, prefix: u8) -> Result<(), NetlinkError> {
        let mut message = AddressMessage::default();
        message.header.index = link.index;
        message.header.prefix_len = prefix;
        match ip {
            IpAddr::V4(_) => {
                message.header.family = AddressFamily::Inet;
                message.attributes.push(AddressAttribute::Local(ip));
                message.attributes.push(AddressAttribute::Address(ip));
                let subnet = Cidr::containing(ip, prefix).ok().filter(|_| prefix < 31);
                if let Some(IpAddr::V4(broadcast)) = subnet.map(|c| c.last()) {
                    message
                        .attributes
                        .push(AddressAttribute::Broadcast(broadcast));
                }
            }
            IpAddr::V6(_) => {
                message.header.family = AddressFamily::Inet6;
                message.header.flags = AddressHeaderFlags::Nodad;
                message.attributes.push(AddressAttribute::Address(ip));
                message
                    .attributes
                    .push(AddressAttribute::Flags(AddressFlags::Nodad));
            }
        }
        let shown = Shown(ip, prefix, link.name.clone());
        let what = What {
            op: "add address",
            target: &shown,
        };
        self.execute(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_CREATE | NLM_F_EXCL,
            what,
        )
    }

    /// Add `ip/prefix` to `link` unless it is there already.
    pub fn ensure_address(
        &mut self,
        link: &Link,
        ip: IpAddr,
        prefix: u8,
    ) -> Result<(), NetlinkError> {
        match self.add_address(link, ip, prefix) {
            Err(e) if e.errno() == Some(Errno::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// The addresses of the namespace, of one link when `index` is given.
    pub fn addresses(&mut self, index: Option<u32>) -> Result<Vec<Address>, NetlinkError> {
        let what = What {
            op: "list",
            target: &"addresses",
        };
        let answers = self.dump(
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
            what,
        )?;
        Ok(answers
            .into_iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewAddress(a) => Address::from_message(a),
                _ => None,
            })
            .filter(|a| index.is_none_or(|i| a.index == i))
            .collect())
    }
}
