//! [`NetworkConfig`]: what a pod network is (its bridge, subnet, gateway,
//! MTU and port options, where its IPAM state lives), and the names netplug
//! derives from a container: the host end of its veth and its MAC.

use noderun_core::ipam::{IpamError, Range};
use noderun_core::net::Cidr;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::path::PathBuf;

/// Where networks keep their IPAM state unless told otherwise: under
/// `/run`, as the allocations last only as long as the boot (see
/// [`crate::store`]); on most hosts `/run` is a tmpfs.
pub const DEFAULT_STATE_ROOT: &str = "/run/noderun/netplug";
/// The longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAME_MAX: usize = 15;
/// The prefix of every host-side veth netplug makes.
pub const HOST_VETH_PREFIX: &str = "nr";

/// A configuration that cannot work, and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{what} {name:?} is not a valid interface name: 1 to 15 bytes, no `/`, `:`, whitespace or NUL, not `.` or `..`")]
    BadIfname { what: &'static str, name: String },
    #[error("network {network}: mtu {mtu} is outside 68..=65535")]
    BadMtu { network: String, mtu: u32 },
    #[error("network {network}: {source}")]
    Range {
        network: String,
        #[source]
        source: IpamError,
    },
}

/// A bridge network for pods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The network's name: its state directory under `state_root`.
    pub name: String,
    /// The bridge pods attach to, created if missing.
    pub bridge: String,
    /// The pod subnet addresses come from.
    pub subnet: Cidr,
    /// The bridge's address and the pods' default gateway; the subnet's
    /// first host address when `None`.
    pub gateway: Option<IpAddr>,
    /// The part of the subnet handed out, when not all of it.
    pub range_start: Option<IpAddr>,
    pub range_end: Option<IpAddr>,
    /// MTU of the bridge and of both veth ends.
    pub mtu: u32,
    /// Let a pod reach itself through the bridge (service hairpin).
    pub hairpin: bool,
    /// Put the bridge in promiscuous mode.
    pub promisc: bool,
    /// Masquerade pods' traffic leaving the subnet (`ipMasq`).
    pub masquerade: bool,
    /// Put the gateway address on the bridge and give pods a default
    /// route through it (CNI `isGateway`). Without it the bridge is a
    /// plain switch: pods reach only their subnet.
    pub bridge_is_gateway: bool,
    /// The parent of the network's state directory.
    pub state_root: PathBuf,
}

impl NetworkConfig {
    /// A network with the defaults: gateway on the bridge, at the first address, the
    /// whole subnet handed out, MTU 1500, no hairpin, no promiscuous mode,
    /// state under [`DEFAULT_STATE_ROOT`].
    pub fn new(name: impl Into<String>, bridge: impl Into<String>, subnet: Cidr) -> Self {
        NetworkConfig {
            name: name.into(),
            bridge: bridge.into(),
            subnet,
            gateway: None,
            range_start: None,
            range_end: None,
            mtu: 1500,
            hairpin: false,
            promisc: false,
            masquerade: false,
            bridge_is_gateway: true,
            state_root: PathBuf::from(DEFAULT_STATE_ROOT),
        }
    }

    /// Check the names and MTU and build the address range.
    pub fn range(&self) -> Result<Range, ConfigError> {
        check_ifname("bridge name", &self.bridge)?;
        if !(68..=65535).contains(&self.mtu) {
            return Err(ConfigError::BadMtu {
                network: self.name.clone(),
                mtu: self.mtu,
            });
        }
        let build = || {
            let mut range = Range::new(self.subnet)?;
            if let Some(gateway) = self.gateway {
                range = range.with_gateway(gateway)?;
            }
            let start = self.range_start.unwrap_or(range.start());
            let end = self.range_end.unwrap_or(range.end());
            range.with_span(start, end)
        };
        build().map_err(|source| ConfigError::Range {
            network: self.name.clone(),
            source,
        })
    }
}

/// Refuse a name the kernel would refuse as an interface name.
pub fn check_ifname(what: &'static str, name: &str) -> Result<(), ConfigError> {
    let byte_ok = |b: u8| b != b'/' && b != b':' && b != 0 && !b.is_ascii_whitespace();
    if name.is_empty()
        || name.len() > IFNAME_MAX
        || name == "."
        || name == ".."
        || !name.bytes().all(byte_ok)
    {
        return Err(ConfigError::BadIfname {
            what,
            name: name.into(),
        });
    }
    Ok(())
}

/// The host end of the veth for `container_id`'s interface `ifname`:
/// `nr` and 10 hex digits of a SHA-256 of both, so DEL and crash cleanup
/// find it from the IDs alone, with no state.
pub fn host_veth_name(container_id: &str, ifname: &str) -> String {
    let digest = Sha256::new()
        .chain_update(container_id.as_bytes())
        .chain_update([0])
        .chain_update(ifname.as_bytes())
        .finalize();
    let mut name = String::from(HOST_VETH_PREFIX);
    for byte in &digest[..5] {
        name.push_str(&format!("{byte:02x}"));
    }
    name
}

/// The MAC of a pod interface with address `ip`: `0a:58` and the last
/// four bytes of the address. Locally administered and unicast; the same
/// address always gets the same MAC, so neighbours' ARP entries for a
/// reused address stay right.
pub fn mac_for(ip: IpAddr) -> [u8; 6] {
    let tail = match ip {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let o = v6.octets();
            [o[12], o[13], o[14], o[15]]
        }
    };
    [0x0a, 0x58, tail[0], tail[1], tail[2], tail[3]]
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_veth_names_are_short_stable_and_distinct() {
        let a = host_veth_name("0123456789abcdef", "eth0");
        assert_eq!(a.len(), 12);
        assert!(a.starts_with("nr") && a[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(a, host_veth_name("0123456789abcdef", "eth0"));
        assert_ne!(a, host_veth_name("0123456789abcdef", "net1"));
        assert_ne!(a, host_veth_name("0123456789abcdeg", "eth0"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(host_veth_name("ab", "c"), host_veth_name("a", "bc"));
        check_ifname("veth", &a).unwrap();
    }

    #[test]
    fn macs_follow_the_address() {
        let v4 = mac_for("10.88.1.7".parse().unwrap());
        assert_eq!(format_mac(&v4), "0a:58:0a:58:01:07");
        let v6 = mac_for("fd00::a:b0c".parse().unwrap());
        assert_eq!(format_mac(&v6), "0a:58:00:0a:0b:0c");
        assert_eq!(v4[0] & 0b11, 0b10, "locally administered unicast");
    }

    #[test]
    fn config_checks() {
        let subnet: Cidr = "10.88.1.0/24".parse().unwrap();
        let mut config = NetworkConfig::new("pods", "nr-br0", subnet);
        let range = config.range().unwrap();
        assert_eq!(range.gateway(), "10.88.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(range.capacity(), 253);

        config.range_start = Some("10.88.1.100".parse().unwrap());
        assert_eq!(config.range().unwrap().capacity(), 155);

        config.gateway = Some("10.88.2.1".parse().unwrap());
        let err = config.range().unwrap_err().to_string();
        assert!(
            err.contains("gateway 10.88.2.1 is not a host address of subnet 10.88.1.0/24"),
            "{err}"
        );

        for bad in ["", "a-very-long-bridge", "br/0", "br 0", ".."] {
            let config = NetworkConfig::new("pods", bad, subnet);
            assert!(
                matches!(config.range(), Err(ConfigError::BadIfname { .. })),
                "{bad:?}"
            );
        }
        let mut config = NetworkConfig::new("pods", "br0", subnet);
        config.mtu = 20;
        assert!(matches!(
            config.range(),
            Err(ConfigError::BadMtu { mtu: 20, .. })
        ));
    }
}
