//! [`PodNetwork`]: ADD, CHECK and DEL of a pod on a bridge network, the
//! call the node agent makes in-process (the CNI binary wraps the same).
//!
//! ADD allocates the pod's address (persisted first, so two ADDs never
//! race for it), makes sure the bridge exists with the gateway address,
//! creates a veth pair in one request with the pod end made directly in
//! the pod's namespace under its final name and MAC, then gives the pod
//! end its address, brings up `lo` and adds the default route. The host
//! end's name is derived from the container ID and interface name
//! ([`host_veth_name`]), so a leftover from a crashed ADD is found without
//! state: a healthy one is adopted, a broken one replaced. A failed ADD
//! undoes itself (veth deleted, address released).
//!
//! With `masquerade` on, ADD finally adds the pod's address to the
//! network's masquerade set ([`crate::masquerade`]) and DEL takes it out.
//!
//! DEL deletes the host end (the kernel removes the pod end with it) and
//! then releases the address; it succeeds when there is nothing to delete.
//! Its cost is the kernel's: `RTM_DELLINK` of a veth blocks in
//! `rtnl_dellink` → `netdev_run_todo` → `rcu_barrier()` (seen in the
//! blocked task's `/proc/<pid>/stack`), a wait for a full RCU grace period
//! that any device unregistration pays, about 14-20 ms on this machine.
//! The reference plugin pays it too (it deletes the pod end instead, the
//! same unregistration). Only host-wide RCU tuning (`rcu_expedited`)
//! shortens it, which a CNI plugin has no business changing.

use crate::config::{check_ifname, host_veth_name, mac_for, ConfigError, NetworkConfig};
use crate::masquerade::{Masquerade, MasqueradeError};
use crate::netlink::{Link, Netlink, NetlinkError, VethSpec};
use crate::netns::{Netns, NetnsError};
use crate::store::{IpamStore, StoreError};
use nix::errno::Errno;
use noderun_core::ipam::{Owner, Range};
use noderun_core::net::Cidr;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// What went wrong attaching, checking or detaching a pod, and where.
#[derive(Debug, thiserror::Error)]
pub enum PodNetworkError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("container {container_id}: {source}")]
    Masquerade {
        container_id: String,
        #[source]
        source: MasqueradeError,
    },
    #[error("network {network}, container {container_id}: {step}: {source}")]
    Netlink {
        network: String,
        container_id: String,
        step: &'static str,
        #[source]
        source: Box<NetlinkError>,
    },
    #[error("network {network}: a link named {bridge} exists and is {kind}, not a bridge; configure another bridge name or delete that link")]
    NotABridge {
        network: String,
        bridge: String,
        kind: String,
    },
    #[error("network {network}: the pod namespace {netns} already has an interface {ifname} that netplug did not make; use another interface name")]
    IfnameTaken {
        network: String,
        ifname: String,
        netns: PathBuf,
    },
    #[error("network {network}, container {container_id}: link {link} vanished while being set up (is something else deleting links?)")]
    Vanished {
        network: String,
        container_id: String,
        link: String,
    },
    #[error("network {network}, container {container_id} ({ifname}): {problem}")]
    Check {
        network: String,
        container_id: String,
        ifname: String,
        problem: String,
    },
}

/// A pod's attachment to the network, as ADD and CHECK report it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub container_id: String,
    /// The interface's name inside the pod.
    pub ifname: String,
    pub ip: IpAddr,
    /// The subnet `ip` belongs to (its prefix is the address's).
    pub subnet: Cidr,
    /// The pods' default gateway (the bridge), when the bridge is one.
    pub gateway: Option<IpAddr>,
    /// The MAC of the pod's interface.
    pub mac: [u8; 6],
    /// The host end of the veth pair, attached to the bridge.
    pub host_veth: String,
}

/// One bridge network that pods are attached to.
#[derive(Debug)]
pub struct PodNetwork {
    config: NetworkConfig,
    range: Range,
    store: IpamStore,
    host_netns: Option<Netns>,
    masquerade: Option<Masquerade>,
}

impl PodNetwork {
    /// The network `config` describes; host-side links (bridge, host veth
    /// ends) go in the calling thread's network namespace.
    pub fn new(config: NetworkConfig) -> Result<PodNetwork, PodNetworkError> {
        let range = config.range()?;
        let store = IpamStore::open(&config.state_root, &config.name, range)?;
        let masquerade = config
            .masquerade
            .then(|| Masquerade::new(&config.name, range.subnet(), None));
        Ok(PodNetwork {
            config,
            range,
            store,
            host_netns: None,
            masquerade,
        })
    }

    /// Keep the host-side links in the namespace at `path` instead: a node
    /// whose pods hang off a dedicated namespace, and tests that must not
    /// touch the real host.
    pub fn with_host_netns(mut self, path: &Path) -> Result<PodNetwork, PodNetworkError> {
        self.host_netns = Some(Netns::open(path)?);
        if let Some(masquerade) = &mut self.masquerade {
            *masquerade =
                Masquerade::new(&self.config.name, self.range.subnet(), Some(path.into()));
        }
        Ok(self)
    }

    /// The namespace the host-side links are in, when not the caller's
    /// (where the node reaches its pods from).
    pub fn host_netns(&self) -> Option<&Netns> {
        self.host_netns.as_ref()
    }

    /// The network's configuration.
    pub fn config(&self) -> &NetworkConfig {
        &self.config
    }

    /// The network's IPAM store (for GC and inspection).
    pub fn store(&self) -> &IpamStore {
        &self.store
    }

    /// Attach the pod whose network namespace is at `netns` as
    /// `container_id`, with interface `ifname`. Repeating it for an
    /// attached pod returns the same attachment.
    pub fn add(
        &self,
        netns: &Path,
        container_id: &str,
        ifname: &str,
    ) -> Result<Attachment, PodNetworkError> {
        check_ifname("interface name", ifname)?;
        let pod_netns = Netns::open(netns)?;
        let owner = Owner::new(container_id, ifname);
        let ip = self.store.allocate(&owner)?;
        let attachment = self.attachment(&owner, ip);
        let wired = self
            .wire(&pod_netns, &attachment)
            .and_then(|()| self.masquerade_add(&attachment));
        match wired {
            Ok(()) => Ok(attachment),
            Err(err) => {
                // Best effort: the error that stopped ADD is the one to
                // report, and DEL can finish what this leaves.
                let _ = self.del(container_id, ifname);
                Err(err)
            }
        }
    }

    /// Detach `container_id`'s interface `ifname`: delete its veth pair and
    /// release its address. Succeeds when there is nothing to remove.
    pub fn del(&self, container_id: &str, ifname: &str) -> Result<(), PodNetworkError> {
        let host_veth = host_veth_name(container_id, ifname);
        let owner = Owner::new(container_id, ifname);
        if let (Some(masquerade), Some(ip)) = (&self.masquerade, self.store.lookup(&owner)?) {
            masquerade
                .remove(ip)
                .map_err(|source| PodNetworkError::Masquerade {
                    container_id: container_id.into(),
                    source,
                })?;
        }
        let mut host = self.host_netlink(container_id)?;
        host.delete_link(&host_veth)
            .map_err(|e| self.netlink_error(container_id, "delete host veth", e))?;
        self.store.release_owner(&owner)?;
        Ok(())
    }

    /// Garbage-collect every attachment `is_valid` rejects (the CNI GC
    /// verb, for pods a crashed runtime forgot): its veth, its masquerade
    /// entry and its address, as DEL would. Returns what was collected.
    pub fn gc(&self, is_valid: impl Fn(&Owner) -> bool) -> Result<Vec<Owner>, PodNetworkError> {
        let state = self.store.state()?;
        let mut collected = Vec::new();
        for owner in state.allocations.into_values() {
            if !is_valid(&owner) {
                self.del(&owner.container_id, &owner.ifname)?;
                collected.push(owner);
            }
        }
        Ok(collected)
    }

    /// Verify that `container_id`'s interface `ifname` is attached as ADD
    /// left it: address allocated, host veth on the bridge and up, pod
    /// interface up with its MAC, address and default route.
    pub fn check(
        &self,
        netns: &Path,
        container_id: &str,
        ifname: &str,
    ) -> Result<Attachment, PodNetworkError> {
        let owner = Owner::new(container_id, ifname);
        let problem = |problem: String| self.check_error(&owner, problem);
        let ip = self
            .store
            .lookup(&owner)?
            .ok_or_else(|| problem("no address is allocated to it".into()))?;
        let attachment = self.attachment(&owner, ip);
        let pod_netns = Netns::open(netns)?;
        let mut host = self.host_netlink(container_id)?;
        let mut pod = self.pod_netlink(&pod_netns, container_id)?;
        let bridge = host
            .link(&self.config.bridge)
            .map_err(|e| self.netlink_error(container_id, "look up bridge", e))?
            .filter(Link::is_bridge)
            .ok_or_else(|| problem(format!("bridge {} is missing", self.config.bridge)))?;
        match self.inspect(&mut host, &mut pod, &attachment, bridge.index)? {
            None => Ok(attachment),
            Some(found) => Err(problem(found)),
        }
    }

    fn masquerade_add(&self, att: &Attachment) -> Result<(), PodNetworkError> {
        match &self.masquerade {
            Some(masquerade) => {
                masquerade
                    .add(att.ip)
                    .map_err(|source| PodNetworkError::Masquerade {
                        container_id: att.container_id.clone(),
                        source,
                    })
            }
            None => Ok(()),
        }
    }

    fn attachment(&self, owner: &Owner, ip: IpAddr) -> Attachment {
        Attachment {
            container_id: owner.container_id.clone(),
            ifname: owner.ifname.clone(),
            ip,
            subnet: self.range.subnet(),
            gateway: self.config.bridge_is_gateway.then(|| self.range.gateway()),
            mac: mac_for(ip),
            host_veth: host_veth_name(&owner.container_id, &owner.ifname),
        }
    }

    /// Everything of ADD after the address is allocated.
    fn wire(&self, pod_netns: &Netns, att: &Attachment) -> Result<(), PodNetworkError> {
        let id = att.container_id.as_str();
        let mut host = self.host_netlink(id)?;
        let bridge = self.ensure_bridge(&mut host, id)?;
        let mut pod = self.pod_netlink(pod_netns, id)?;
        let spec = VethSpec {
            name: &att.host_veth,
            peer_name: &att.ifname,
            peer_netns: Some(pod_netns),
            peer_mac: Some(att.mac),
            mtu: Some(self.config.mtu),
            controller: Some(bridge.index),
            up: true,
        };
        match host.create_veth(&spec) {
            Ok(()) => {}
            Err(e) if e.errno() == Some(Errno::EEXIST) => {
                if self
                    .inspect(&mut host, &mut pod, att, bridge.index)?
                    .is_none()
                {
                    return Ok(()); // a whole attachment from an earlier ADD: adopt it
                }
                self.replace_veth(&mut host, &spec, pod_netns, id)?;
            }
            Err(e) => return Err(self.netlink_error(id, "create veth pair", e)),
        }
        if self.config.hairpin {
            let port = self.link_or_vanished(&mut host, &att.host_veth, id)?;
            host.set_hairpin(&port, true)
                .map_err(|e| self.netlink_error(id, "set hairpin mode", e))?;
        }
        self.configure_pod(&mut pod, att)
    }

    /// Replace a leftover veth of the same host name (its pod end goes
    /// with it) by a new pair; if the name was free, the pod interface name
    /// is what is taken.
    fn replace_veth(
        &self,
        host: &mut Netlink,
        spec: &VethSpec<'_>,
        pod_netns: &Netns,
        id: &str,
    ) -> Result<(), PodNetworkError> {
        host.delete_link(spec.name)
            .map_err(|e| self.netlink_error(id, "delete leftover host veth", e))?;
        match host.create_veth(spec) {
            Err(e) if e.errno() == Some(Errno::EEXIST) => Err(PodNetworkError::IfnameTaken {
                network: self.config.name.clone(),
                ifname: spec.peer_name.into(),
                netns: pod_netns.path().into(),
            }),
            other => other.map_err(|e| self.netlink_error(id, "create veth pair", e)),
        }
    }

    /// Inside the pod: address, `lo` up, default route.
    fn configure_pod(&self, pod: &mut Netlink, att: &Attachment) -> Result<(), PodNetworkError> {
        let id = att.container_id.as_str();
        let link = self.link_or_vanished(pod, &att.ifname, id)?;
        pod.ensure_address(&link, att.ip, att.subnet.prefix())
            .map_err(|e| self.netlink_error(id, "add pod address", e))?;
        pod.set_up(&link, true)
            .map_err(|e| self.netlink_error(id, "bring up pod interface", e))?;
        pod.set_up_by_name("lo")
            .map_err(|e| self.netlink_error(id, "bring up lo", e))?;
        match att.gateway {
            Some(gateway) => pod
                .add_default_route(gateway, &link)
                .map_err(|e| self.netlink_error(id, "add default route", e)),
            None => Ok(()),
        }
    }

    /// The bridge, created if missing, with the network's MTU, up, with
    /// the gateway address; an existing bridge is adopted as it is.
    fn ensure_bridge(&self, host: &mut Netlink, id: &str) -> Result<Link, PodNetworkError> {
        let name = self.config.bridge.as_str();
        let lookup = |host: &mut Netlink| {
            host.link(name)
                .map_err(|e| self.netlink_error(id, "look up bridge", e))
        };
        let bridge = match lookup(host)? {
            Some(link) => link,
            None => {
                let mac = mac_for(self.range.gateway());
                match host.create_bridge(name, Some(self.config.mtu), Some(mac)) {
                    Err(e) if e.errno() != Some(Errno::EEXIST) => {
                        return Err(self.netlink_error(id, "create bridge", e))
                    }
                    _ => self.link_or_vanished(host, name, id)?,
                }
            }
        };
        if !bridge.is_bridge() {
            return Err(PodNetworkError::NotABridge {
                network: self.config.name.clone(),
                bridge: name.into(),
                kind: bridge
                    .kind
                    .map_or("a link without a kind".into(), |k| format!("a {k}")),
            });
        }
        self.tune_bridge(host, &bridge, id)?;
        Ok(bridge)
    }

    fn tune_bridge(
        &self,
        host: &mut Netlink,
        bridge: &Link,
        id: &str,
    ) -> Result<(), PodNetworkError> {
        let fail = |step| move |e| self.netlink_error(id, step, e);
        if bridge.mtu != Some(self.config.mtu) {
            host.set_mtu(bridge, self.config.mtu)
                .map_err(fail("set bridge mtu"))?;
        }
        if self.config.promisc && !bridge.promisc {
            host.set_promisc(bridge, true)
                .map_err(fail("set bridge promiscuous"))?;
        }
        if !bridge.up {
            host.set_up(bridge, true).map_err(fail("bring up bridge"))?;
        }
        if !self.config.bridge_is_gateway {
            return Ok(());
        }
        host.ensure_address(bridge, self.range.gateway(), self.range.subnet().prefix())
            .map_err(fail("add gateway address to bridge"))
    }

    /// `None` when the attachment is whole, else the first thing wrong.
    fn inspect(
        &self,
        host: &mut Netlink,
        pod: &mut Netlink,
        att: &Attachment,
        bridge: u32,
    ) -> Result<Option<String>, PodNetworkError> {
        let id = att.container_id.as_str();
        let fail = |step| move |e| self.netlink_error(id, step, e);
        let Some(port) = host
            .link(&att.host_veth)
            .map_err(fail("look up host veth"))?
        else {
            return Ok(Some(format!("host veth {} is missing", att.host_veth)));
        };
        if port.controller != Some(bridge) || !port.up {
            return Ok(Some(format!(
                "host veth {} is not up on bridge {}",
                att.host_veth, self.config.bridge
            )));
        }
        let Some(link) = pod
            .link(&att.ifname)
            .map_err(fail("look up pod interface"))?
        else {
            return Ok(Some(format!("the pod has no interface {}", att.ifname)));
        };
        if link.mac != Some(att.mac) || !link.up {
            return Ok(Some(format!(
                "pod interface {} is down or has another MAC",
                att.ifname
            )));
        }
        let addresses = pod
            .addresses(Some(link.index))
            .map_err(fail("list pod addresses"))?;
        if !addresses
            .iter()
            .any(|a| a.ip == att.ip && a.prefix == att.subnet.prefix())
        {
            return Ok(Some(format!(
                "pod interface {} lacks {}/{}",
                att.ifname,
                att.ip,
                att.subnet.prefix()
            )));
        }
        let Some(gateway) = att.gateway else {
            return Ok(None);
        };
        let routes = pod
            .routes(att.ip.is_ipv4())
            .map_err(fail("list pod routes"))?;
        let via_gateway = |r: &crate::netlink::Route| {
            r.is_default() && r.gateway == Some(gateway) && r.oif == Some(link.index)
        };
        if !routes.iter().any(via_gateway) {
            return Ok(Some(format!("the pod has no default route via {gateway}")));
        }
        Ok(None)
    }

    fn link_or_vanished(
        &self,
        netlink: &mut Netlink,
        name: &str,
        id: &str,
    ) -> Result<Link, PodNetworkError> {
        netlink
            .link(name)
            .map_err(|e| self.netlink_error(id, "look up link", e))?
            .ok_or_else(|| PodNetworkError::Vanished {
                network: self.config.name.clone(),
                container_id: id.into(),
                link: name.into(),
            })
    }

    fn host_netlink(&self, id: &str) -> Result<Netlink, PodNetworkError> {
        match &self.host_netns {
            Some(netns) => Netlink::open_in(netns),
            None => Netlink::open(),
        }
        .map_err(|e| self.netlink_error(id, "open host netlink socket", e))
    }

    fn pod_netlink(&self, netns: &Netns, id: &str) -> Result<Netlink, PodNetworkError> {
        Netlink::open_in(netns).map_err(|e| self.netlink_error(id, "open pod netlink socket", e))
    }

    fn netlink_error(&self, id: &str, step: &'static str, source: NetlinkError) -> PodNetworkError {
        PodNetworkError::Netlink {
            network: self.config.name.clone(),
            container_id: id.into(),
            step,
            source: Box::new(source),
        }
    }

    fn check_error(&self, owner: &Owner, problem: String) -> PodNetworkError {
        PodNetworkError::Check {
            network: self.config.name.clone(),
            container_id: owner.container_id.clone(),
            ifname: owner.ifname.clone(),
            problem,
        }
    }
}
