//! Links: look them up, create bridges and veth pairs (the peer made
//! directly inside the pod's namespace), change flags, MTU, MAC, name,
//! bridge and namespace, set bridge-port options, delete. Operations that
//! change a link take the [`Link`] read from the kernel, so errors can name
//! it.

use super::{Netlink, NetlinkError, What};
use crate::netns::Netns;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{
    InfoBridgePort, InfoData, InfoKind, InfoPortData, InfoVeth, LinkAttribute, LinkFlags, LinkInfo,
    LinkMessage,
};
use netlink_packet_route::RouteNetlinkMessage;
use nix::errno::Errno;
use std::os::fd::{AsFd, AsRawFd};

/// A link as the kernel reports it, reduced to what netplug reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The driver kind (`bridge`, `veth`), when the link has one.
    pub kind: Option<String>,
    pub mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// The index of the bridge (or other controller) it is attached to.
    pub controller: Option<u32>,
    pub up: bool,
    pub promisc: bool,
    /// The bridge port's hairpin mode, for a link attached to a bridge.
    pub hairpin: Option<bool>,
}

impl Link {
    fn from_message(message: LinkMessage) -> Link {
        let mut link = Link {
            index: message.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: None,
            controller: None,
            up: message.header.flags.contains(LinkFlags::Up),
            promisc: message.header.flags.contains(LinkFlags::Promisc),
            hairpin: None,
        };
        for attribute in message.attributes {
            match attribute {
                LinkAttribute::IfName(name) => link.name = name,
                LinkAttribute::Address(mac) => link.mac = mac.try_into().ok(),
                LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
                LinkAttribute::Controller(index) => link.controller = Some(index),
                LinkAttribute::LinkInfo(infos) => link.read_infos(infos),
                _ => {}
            }
        }
        link
    }

    fn read_infos(&mut self, infos: Vec<LinkInfo>) {
        for info in infos {
            match info {
                LinkInfo::Kind(kind) => self.kind = Some(kind.to_string()),
                LinkInfo::PortData(InfoPortData::BridgePort(options)) => {
                    self.hairpin = options.iter().find_map(|o| match o {
                        InfoBridgePort::HairpinMode(on) => Some(*on),
                        _ => None,
                    });
                }
                _ => {}
            }
        }
    }

    /// True for a Linux bridge.
    pub fn is_bridge(&self) -> bool {
        self.kind.as_deref() == Some("bridge")
    }
}

/// A veth pair to create.
#[derive(Debug, Clone, Copy)]
pub struct VethSpec<'a> {
    /// The end that stays in the socket's namespace.
    pub name: &'a str,
    /// The other end's name, in `peer_netns`.
    pub peer_name: &'a str,
    /// Where the peer is created; the socket's namespace when `None`.
    pub peer_netns: Option<&'a Netns>,
    pub peer_mac: Option<[u8; 6]>,
    pub mtu: Option<u32>,
    /// A bridge (its index) to attach the near end to.
    pub controller: Option<u32>,
    /// Bring the near end up at creation. The peer cannot be: the kernel
    /// opens it before the pair is joined, and refuses with `ENOTCONN`.
    pub up: bool,
}

/// A request message for the link `index`, flags unchanged.
fn message_for(index: u32) -> LinkMessage {
    let mut message = LinkMessage::default();
    message.header.index = index;
    message
}

fn up_flags(message: &mut LinkMessage, up: bool) {
    if up {
        message.header.flags = LinkFlags::Up;
        message.header.change_mask = LinkFlags::Up;
    }
}

impl Netlink {
    /// The link named `name`, or `None` when there is none.
    pub fn link(&mut self, name: &str) -> Result<Option<Link>, NetlinkError> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.into()));
        let what = What {
            op: "get link",
            target: &name,
        };
        self.get_link(message, what)
    }

    /// The link with index `index`, or `None` when there is none.
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>, NetlinkError> {
        let what = What {
            op: "get link with index",
            target: &index,
        };
        self.get_link(message_for(index), what)
    }

    fn get_link(
        &mut self,
        message: LinkMessage,
        what: What<'_>,
    ) -> Result<Option<Link>, NetlinkError> {
        match self.get(RouteNetlinkMessage::GetLink(message), what) {
            Ok(Some(RouteNetlinkMessage::NewLink(link))) => Ok(Some(Link::from_message(link))),
            Ok(_) => Ok(None),
            Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every link of the namespace.
    pub fn links(&mut self) -> Result<Vec<Link>, NetlinkError> {
        let what = What {
            op: "list",
            target: &"links",
        };
        let answers = self.dump(RouteNetlinkMessage::GetLink(LinkMessage::default()), what)?;
        Ok(answers
            .into_iter()
            .filter_map(|answer| match answer {
                RouteNetlinkMessage::NewLink(link) => Some(Link::from_message(link)),
                _ => None,
            })
            .collect())
    }

    /// Create the bridge `name`, up, with an MTU and a fixed MAC when
    /// given (a bridge without one takes the lowest MAC of its ports, so it
    /// would change as pods come and go). Fails with `EEXIST` if a link of
    /// that name exists.
    pub fn create_bridge(
        &mut self,
        name: &str,
        mtu: Option<u32>,
        mac: Option<[u8; 6]>,
    ) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        up_flags(&mut message, true);
        message.attributes.push(LinkAttribute::IfName(name.into()));
        message.attributes.extend(mtu.map(LinkAttribute::Mtu));
        message
            .attributes
            .extend(mac.map(|m| LinkAttribute::Address(m.to_vec())));
        message
            .attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::Kind(
                InfoKind::Bridge,
            )]));
        let what = What {
            op: "create bridge",
            target: &name,
        };
        self.execute(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
            what,
        )
    }

    /// Create a veth pair in one request. Fails with `EEXIST` if either
    /// name is taken in its namespace.
    pub fn create_veth(&mut self, spec: &VethSpec<'_>) -> Result<(), NetlinkError> {
        let mut peer = LinkMessage::default();
        peer.attributes
            .push(LinkAttribute::IfName(spec.peer_name.into()));
        peer.attributes.extend(spec.mtu.map(LinkAttribute::Mtu));
        peer.attributes
            .extend(spec.peer_mac.map(|m| LinkAttribute::Address(m.to_vec())));
        if let Some(netns) = spec.peer_netns {
            // The kernel reads the fd while handling the request; `netns`
            // outlives this call.
            peer.attributes
                .push(LinkAttribute::NetNsFd(netns.as_fd().as_raw_fd()));
        }
        let mut message = LinkMessage::default();
        up_flags(&mut message, spec.up);
        message
            .attributes
            .push(LinkAttribute::IfName(spec.name.into()));
        message.attributes.extend(spec.mtu.map(LinkAttribute::Mtu));
        message
            .attributes
            .extend(spec.controller.map(LinkAttribute::Controller));
        message.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        let what = What {
            op: "create veth",
            target: &spec.name,
        };
        self.execute(
            RouteNetlinkMessage::NewLink(message),
            NLM_F_CREATE | NLM_F_EXCL,
            what,
        )
    }

    /// Bring `link` up or down.
    pub fn set_up(&mut self, link: &Link, up: bool) -> Result<(), NetlinkError> {
        let mut message = message_for(link.index);
        message.header.change_mask = LinkFlags::Up;
        if up {
            message.header.flags = LinkFlags::Up;
        }
        self.set_link(message, if up { "set up" } else { "set down" }, link)
    }

    /// Bring the link named `name` up, found by name (one round trip: for
    /// `lo` in a fresh namespace).
    pub fn set_up_by_name(&mut self, name: &str) -> Result<(), NetlinkError> {
        let mut message = LinkMessage::default();
        up_flags(&mut message, true);
        message.attributes.push(LinkAttribute::IfName(name.into()));
        let what = What {
            op: "set up",
            target: &name,
        };
        self.execute(RouteNetlinkMessage::SetLink(message), 0, what)
    }

    /// Turn promiscuous mode on or off.
    pub fn set_promisc(&mut self, link: &Link, on: bool) -> Result<(), NetlinkError> {
        let mut message = message_for(link.index);
        message.header.change_mask = LinkFlags::Promisc;
        if on {
            message.header.flags = LinkFlags::Promisc;
        }
        self.set_link(message, "set promiscuous mode on", link)
    }

    /// Set the MTU.
    pub fn set_mtu(&mut self, link: &Link, mtu: u32) -> Result<(), NetlinkError> {
        let mut message = message_for(link.index);
        message.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(message, "set mtu of", link)
    }

    /// Set the MAC address.
    pub fn set_mac(&mut self, link: &Link, mac: [u8; 6]) -> Result<(), NetlinkError> {
        let mut message = message_for(link.index);
        message
            .attributes
            .push(LinkAttribute::Address(mac.to_vec()));
        self.set_link(message, "set mac of", link)
    }

    /// Rename a link (it must be down).
    pub fn rename(&mut self, link: &Link, name: &str) -> Result<(), NetlinkError> {
        let mut message = message_for(link.index);
        message.attributes.push(LinkAttribute::IfName(name.into()));
        self.set_link(message, "rename", link)
    }

    /// Attach `link` to the bridge with index `bridge`.
    pub fn set_controller(&mut self, link: &Link, bridge: u32) -> Result<(), NetlinkError> {
        let mut message = message_for(link.index);
        message.attributes.push(LinkAttribute::Controller(bridge));
        self.set_link(message, "attach to bridge", link)
    }

    /// Move `link` into `netns`; it disappears from this namespace.
    pub fn move_to_netns(&mut self, link: &Link, netns: &Netns) -> Result<(), NetlinkError> {
        let mut message = message_for(link.index);
        message
            .attributes
            .push(LinkAttribute::NetNsFd(netns.as_fd().as_raw_fd()));
        self.set_link(message, "move to another netns", link)
    }

    fn set_link(
        &mut self,
        message: LinkMessage,
        op: &'static str,
        link: &Link,
    ) -> Result<(), NetlinkError> {
        let what = What {
            op,
            target: &link.name,
        };
        self.execute(RouteNetlinkMessage::SetLink(message), 0, what)
    }

    /// Set hairpin mode on a bridge port, so that the bridge may send a
    /// frame back out of the port it came in on (a pod reaching itself
    /// through a service address).
    pub fn set_hairpin(&mut self, port: &Link, on: bool) -> Result<(), NetlinkError> {
        let mut message = message_for(port.index);
        let options = vec![InfoBridgePort::HairpinMode(on)];
        message
            .attributes
            .push(LinkAttribute::LinkInfo(vec![LinkInfo::PortData(
                InfoPortData::BridgePort(options),
            )]));
        let what = What {
            op: "set hairpin mode on",
            target: &port.name,
        };
        // Port options go through the change path of RTM_NEWLINK, the one
        // that hands IFLA_INFO_SLAVE_DATA to the bridge driver.
        self.execute(RouteNetlinkMessage::NewLink(message), 0, what)
    }

    /// Delete the link `name` (for a veth, both ends). Returns false when
    /// there was no such link.
    pub fn delete_link(&mut self, name: &str) -> Result<bool, NetlinkError> {
        let mut message = LinkMessage::default();
        message.attributes.push(LinkAttribute::IfName(name.into()));
        let what = What {
            op: "delete link",
            target: &name,
        };
        match self.execute(RouteNetlinkMessage::DelLink(message), 0, what) {
            Ok(()) => Ok(true),
            Err(e) if e.errno() == Some(Errno::ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }
}
