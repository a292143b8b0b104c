//! IP address management for one pod network, as pure logic: a [`Range`]
//! (the pod CIDR, its gateway and the span addresses are handed out from)
//! and an [`Ipam`] that allocates from it into an [`IpamState`], a plain
//! serde value the caller persists (netplug keeps it in a locked file).
//!
//! The search is deterministic and, like the reference host-local plugin,
//! starts after the last address handed out, so an address freed by a
//! deleted pod is not given to the next pod at once (stale ARP entries and
//! connections aimed at the old pod then miss instead of reaching a new
//! one). The network address, the gateway and, for IPv4, the broadcast
//! address are never handed out. An owner is a container ID and an
//! interface name: a repeated allocation for the same owner returns the
//! address it already holds.
//!
//! Capacity: an IPv4 /24 spans 254 host addresses (.1 to .254); with the
//! gateway on .1 that leaves 253 for pods. An IPv6 range has no broadcast
//! address, so only the network address and the gateway are held back.

use crate::net::Cidr;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::net::IpAddr;

/// Why a range cannot be built or an address cannot be handed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    #[error("subnet {subnet} is too small to hand out addresses from: use a prefix of at most /{max} for its family")]
    SubnetTooSmall { subnet: Cidr, max: u8 },
    #[error("{what} {ip} is not a host address of subnet {subnet}")]
    OutsideSubnet {
        what: &'static str,
        ip: IpAddr,
        subnet: Cidr,
    },
    #[error("range start {start} is past range end {end} in subnet {subnet}")]
    EmptySpan {
        start: IpAddr,
        end: IpAddr,
        subnet: Cidr,
    },
    #[error("no free address in {subnet}: all {capacity} that pods can get are in use; delete pods, release addresses of pods that are gone (GC), or give the node a larger pod CIDR")]
    Exhausted { subnet: Cidr, capacity: u128 },
}

/// Where addresses come from: a subnet, its gateway, and the span of it
/// that is handed out to pods.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    subnet: Cidr,
    gateway: IpAddr,
    start: u128,
    end: u128,
}

impl Range {
    /// All host addresses of `subnet`, with the gateway on the first one.
    /// Refuses an IPv4 /31 or /32 and an IPv6 /127 or /128: they have no
    /// room for a gateway and a pod.
    pub fn new(subnet: Cidr) -> Result<Range, IpamError> {
        let max = subnet.family_bits() - 2;
        if subnet.prefix() > max {
            return Err(IpamError::SubnetTooSmall { subnet, max });
        }
        let last = subnet.last_offset();
        let end = if subnet.is_ipv4() { last - 1 } else { last };
        let gateway = subnet
            .nth(1)
            .ok_or(IpamError::SubnetTooSmall { subnet, max })?;
        Ok(Range {
            subnet,
            gateway,
            start: 1,
            end,
        })
    }

    /// The same range with the gateway on `gateway`, a host address of the
    /// subnet (it need not be inside the span).
    pub fn with_gateway(self, gateway: IpAddr) -> Result<Range, IpamError> {
        self.host_offset("gateway", gateway)?;
        Ok(Range { gateway, ..self })
    }

    /// The same range handing out only `start` to `end` (inclusive), both
    /// host addresses of the subnet.
    pub fn with_span(self, start: IpAddr, end: IpAddr) -> Result<Range, IpamError> {
        let first = self.host_offset("range start", start)?;
        let last = self.host_offset("range end", end)?;
        if first > last {
            return Err(IpamError::EmptySpan {
                start,
                end,
                subnet: self.subnet,
            });
        }
        Ok(Range {
            start: first,
            end: last,
            ..self
        })
    }

    /// The subnet, as configured.
    pub fn subnet(&self) -> Cidr {
        self.subnet
    }

    /// The gateway address pods route through.
    pub fn gateway(&self) -> IpAddr {
        self.gateway
    }

    /// The first address that may be handed out.
    pub fn start(&self) -> IpAddr {
        self.at(self.start)
    }

    /// The last address that may be handed out.
    pub fn end(&self) -> IpAddr {
        self.at(self.end)
    }

    /// How many addresses pods can get: the span less the gateway when the
    /// gateway falls inside it.
    pub fn capacity(&self) -> u128 {
        let span = self.end - self.start + 1;
        span - u128::from(self.in_span(self.gateway))
    }

    /// True when `ip` is one the range hands out to pods.
    pub fn is_assignable(&self, ip: IpAddr) -> bool {
        ip != self.gateway && self.in_span(ip)
    }

    fn in_span(&self, ip: IpAddr) -> bool {
        self.subnet
            .offset_of(ip)
            .is_some_and(|o| (self.start..=self.end).contains(&o))
    }

    /// The offset of a host address (not the network address, not the
    /// IPv4 broadcast address) of the subnet.
    fn host_offset(&self, what: &'static str, ip: IpAddr) -> Result<u128, IpamError> {
        let last_host = if self.subnet.is_ipv4() {
            self.subnet.last_offset() - 1
        } else {
            self.subnet.last_offset()
        };
        match self.subnet.offset_of(ip) {
            Some(offset) if (1..=last_host).contains(&offset) => Ok(offset),
            _ => Err(IpamError::OutsideSubnet {
                what,
                ip,
                subnet: self.subnet,
            }),
        }
    }

    /// The address at a span offset; offsets come from this range, so they
    /// are inside the subnet.
    fn at(&self, offset: u128) -> IpAddr {
        self.subnet.nth(offset).unwrap_or(self.gateway)
    }
}

/// Who holds an address: a container (the pod sandbox) and the interface
/// inside it.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Owner {
    pub container_id: String,
    pub ifname: String,
}

impl Owner {
    /// The owner `container_id`/`ifname`.
    pub fn new(container_id: impl Into<String>, ifname: impl Into<String>) -> Owner {
        Owner {
            container_id: container_id.into(),
            ifname: ifname.into(),
        }
    }
}

/// The allocations of one network: what the caller persists between calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IpamState {
    /// Every address in use and its owner.
    pub allocations: BTreeMap<IpAddr, Owner>,
    /// The last address handed out: the next search starts after it.
    pub last: Option<IpAddr>,
}

/// The allocator: a [`Range`] working on an [`IpamState`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ipam {
    range: Range,
    state: IpamState,
}

impl Ipam {
    /// An allocator over `range` continuing from `state` (which may hold
    /// addresses outside the range, from an earlier configuration: they
    /// stay allocated until released and are never handed out again).
    pub fn new(range: Range, state: IpamState) -> Ipam {
        Ipam { range, state }
    }

    /// The range addresses come from.
    pub fn range(&self) -> &Range {
        &self.range
    }

    /// The current allocations.
    pub fn state(&self) -> &IpamState {
        &self.state
    }

    /// The allocations, to persist.
    pub fn into_state(self) -> IpamState {
        self.state
    }

    /// The address `owner` holds, if any.
    pub fn lookup(&self, owner: &Owner) -> Option<IpAddr> {
        self.state
            .allocations
            .iter()
            .find_map(|(ip, held)| (held == owner).then_some(*ip))
    }

    /// An address for `owner`: the one it already holds, or the next free
    /// one after the last handed out, wrapping around the span.
    pub fn allocate(&mut self, owner: &Owner) -> Result<IpAddr, IpamError> {
        if let Some(ip) = self.lookup(owner) {
            return Ok(ip);
        }
        let ip = self.next_free().ok_or(IpamError::Exhausted {
            subnet: self.range.subnet,
            capacity: self.range.capacity(),
        })?;
        self.state.allocations.insert(ip, owner.clone());
        self.state.last = Some(ip);
        Ok(ip)
    }

    /// The first free assignable address after `last`. Each candidate is
    /// distinct, and at most `allocations + 1` of them can be taken (the
    /// allocations and the gateway), so that many plus one candidates
    /// always find a free address if the span has one.
    fn next_free(&self) -> Option<IpAddr> {
        let range = &self.range;
        let span = range.end - range.start + 1;
        let after_last = self
            .state
            .last
            .and_then(|ip| range.subnet.offset_of(ip))
            .filter(|o| (range.start..=range.end).contains(o))
            .map_or(0, |o| (o - range.start + 1) % span);
        let taken = self.state.allocations.len() as u128 + 1;
        let tries = span.min(taken + 1);
        (0..tries)
            .map(|step| range.at(range.start + (after_last + step) % span))
            .find(|ip| *ip != range.gateway && !self.state.allocations.contains_key(ip))
    }

    /// Release what `container_id` holds, on any interface; returns the
    /// freed addresses (none when it held nothing).
    pub fn release(&mut self, container_id: &str) -> Vec<IpAddr> {
        self.release_where(|owner| owner.container_id == container_id)
    }

    /// Release the address `owner` holds, if any.
    pub fn release_owner(&mut self, owner: &Owner) -> Option<IpAddr> {
        self.release_where(|held| held == owner).pop()
    }

    /// Release every address whose container `is_live` says is gone; returns
    /// the freed addresses.
    pub fn gc(&mut self, is_live: impl Fn(&str) -> bool) -> Vec<IpAddr> {
        self.release_where(|owner| !is_live(&owner.container_id))
    }

    fn release_where(&mut self, mut gone: impl FnMut(&Owner) -> bool) -> Vec<IpAddr> {
        let mut freed = Vec::new();
        self.state.allocations.retain(|ip, owner| {
            let keep = !gone(owner);
            if !keep {
                freed.push(*ip);
            }
            keep
        });
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use alloc::format;
    use proptest::prelude::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn range(subnet: &str) -> Range {
        Range::new(subnet.parse().unwrap()).unwrap()
    }

    fn owner(n: usize) -> Owner {
        Owner::new(format!("ctr-{n}"), "eth0")
    }

    #[test]
    fn a_slash_24_hands_out_253_then_is_exhausted() {
        let mut ipam = Ipam::new(range("10.88.1.0/24"), IpamState::default());
        assert_eq!(ipam.range().capacity(), 253);
        let mut seen = BTreeSet::new();
        for n in 0..253 {
            let got = ipam.allocate(&owner(n)).unwrap();
            assert!(seen.insert(got), "{got} handed out twice");
        }
        for never in ["10.88.1.0", "10.88.1.1", "10.88.1.255"] {
            assert!(!seen.contains(&ip(never)), "{never} was handed out");
        }
        assert_eq!(seen.first(), Some(&ip("10.88.1.2")));
        assert_eq!(seen.last(), Some(&ip("10.88.1.254")));
        let err = ipam.allocate(&owner(253)).unwrap_err();
        assert!(
            matches!(err, IpamError::Exhausted { capacity: 253, .. }),
            "{err}"
        );
        // A holder asking again still gets its address when full.
        assert_eq!(ipam.allocate(&owner(7)).unwrap(), ip("10.88.1.9"));
    }

    #[test]
    fn repeated_allocation_returns_the_same_address() {
        let mut ipam = Ipam::new(range("10.88.0.0/16"), IpamState::default());
        let first = ipam.allocate(&owner(1)).unwrap();
        assert_eq!(ipam.allocate(&owner(1)).unwrap(), first);
        let other_if = Owner::new("ctr-1", "net1");
        assert_ne!(ipam.allocate(&other_if).unwrap(), first);
        assert_eq!(ipam.lookup(&owner(1)), Some(first));
    }

    #[test]
    fn freed_addresses_wait_until_the_search_wraps() {
        let mut ipam = Ipam::new(range("10.0.0.0/29"), IpamState::default());
        // Assignable: .2 to .6 (.1 is the gateway, .7 the broadcast).
        let a = ipam.allocate(&owner(0)).unwrap();
        let b = ipam.allocate(&owner(1)).unwrap();
        assert_eq!((a, b), (ip("10.0.0.2"), ip("10.0.0.3")));
        assert_eq!(ipam.release("ctr-0"), [a]);
        assert_eq!(ipam.allocate(&owner(2)).unwrap(), ip("10.0.0.4"));
        assert_eq!(ipam.allocate(&owner(3)).unwrap(), ip("10.0.0.5"));
        assert_eq!(ipam.allocate(&owner(4)).unwrap(), ip("10.0.0.6"));
        // Past the end the search wraps, skips the gateway, finds .2 again.
        assert_eq!(ipam.allocate(&owner(5)).unwrap(), a);
        assert!(ipam.allocate(&owner(6)).is_err());
    }

    #[test]
    fn gateway_and_span_are_configurable() {
        let subnet: Cidr = "10.9.0.0/24".parse().unwrap();
        let mid = Range::new(subnet)
            .unwrap()
            .with_gateway(ip("10.9.0.100"))
            .unwrap();
        assert_eq!(mid.capacity(), 253);
        assert!(mid.is_assignable(ip("10.9.0.1")));
        assert!(!mid.is_assignable(ip("10.9.0.100")));

        let span = Range::new(subnet)
            .unwrap()
            .with_span(ip("10.9.0.10"), ip("10.9.0.19"))
            .unwrap();
        assert_eq!(span.capacity(), 10, "the gateway .1 is outside the span");
        let mut ipam = Ipam::new(span, IpamState::default());
        let got: Vec<IpAddr> = (0..10).map(|n| ipam.allocate(&owner(n)).unwrap()).collect();
        assert_eq!(got.first(), Some(&ip("10.9.0.10")));
        assert_eq!(got.last(), Some(&ip("10.9.0.19")));
        assert!(ipam.allocate(&owner(10)).is_err());
    }

    #[test]
    fn ranges_that_cannot_work_are_refused() {
        let subnet: Cidr = "10.9.0.0/24".parse().unwrap();
        for tiny in ["10.9.0.0/31", "10.9.0.1/32", "fd00::/127", "fd00::/128"] {
            let err = Range::new(tiny.parse().unwrap()).unwrap_err();
            assert!(
                matches!(err, IpamError::SubnetTooSmall { .. }),
                "{tiny}: {err}"
            );
        }
        let base = Range::new(subnet).unwrap();
        for bad in ["10.9.0.0", "10.9.0.255", "10.9.1.1", "fd00::1"] {
            let err = base.with_gateway(ip(bad)).unwrap_err();
            assert!(
                matches!(
                    err,
                    IpamError::OutsideSubnet {
                        what: "gateway",
                        ..
                    }
                ),
                "{bad}"
            );
        }
        let err = base
            .with_span(ip("10.9.0.20"), ip("10.9.0.10"))
            .unwrap_err();
        assert!(matches!(err, IpamError::EmptySpan { .. }), "{err}");
        let err = base.with_span(ip("10.9.0.0"), ip("10.9.0.10")).unwrap_err();
        assert!(matches!(
            err,
            IpamError::OutsideSubnet {
                what: "range start",
                ..
            }
        ));
    }

    #[test]
    fn ipv6_has_no_broadcast_address() {
        let r = range("fd00:88::/120");
        assert_eq!(r.gateway(), ip("fd00:88::1"));
        assert_eq!(r.capacity(), 254);
        assert_eq!(r.end(), ip("fd00:88::ff"));
        let mut ipam = Ipam::new(r, IpamState::default());
        let all: BTreeSet<IpAddr> = (0..254)
            .map(|n| ipam.allocate(&owner(n)).unwrap())
            .collect();
        assert_eq!(all.len(), 254);
        assert!(all.contains(&ip("fd00:88::ff")));
        assert!(!all.contains(&ip("fd00:88::")) && !all.contains(&ip("fd00:88::1")));
        // A /64 is far too large to walk; the search still ends at once.
        let mut big = Ipam::new(range("fd00::/64"), IpamState::default());
        assert_eq!(big.allocate(&owner(0)).unwrap(), ip("fd00::2"));
    }

    #[test]
    fn release_gc_and_foreign_state() {
        let mut state = IpamState::default();
        // Left by an earlier configuration: outside today's range.
        state.allocations.insert(ip("192.168.5.5"), owner(99));
        state.last = Some(ip("192.168.5.5"));
        let mut ipam = Ipam::new(range("10.1.0.0/28"), state);
        assert_eq!(ipam.allocate(&owner(0)).unwrap(), ip("10.1.0.2"));
        let pod1 = Owner::new("ctr-1", "eth0");
        let pod1_extra = Owner::new("ctr-1", "net1");
        ipam.allocate(&pod1).unwrap();
        ipam.allocate(&pod1_extra).unwrap();
        assert_eq!(ipam.release("ctr-1").len(), 2);
        assert!(ipam.release("ctr-1").is_empty());
        assert_eq!(ipam.release_owner(&owner(42)), None);

        ipam.allocate(&owner(2)).unwrap();
        ipam.allocate(&owner(3)).unwrap();
        let live = ["ctr-2"];
        let mut freed = ipam.gc(|id| live.contains(&id));
        freed.sort();
        assert_eq!(freed, [ip("10.1.0.2"), ip("10.1.0.6"), ip("192.168.5.5")]);
        let left: Vec<&Owner> = ipam.state().allocations.values().collect();
        assert_eq!(left, [&owner(2)]);
    }

    #[test]
    fn state_round_trips_through_json() {
        let mut ipam = Ipam::new(range("10.2.0.0/24"), IpamState::default());
        ipam.allocate(&owner(0)).unwrap();
        ipam.allocate(&owner(1)).unwrap();
        let json = serde_json::to_string(ipam.state()).unwrap();
        assert!(
            json.contains("\"10.2.0.3\":{\"container_id\":\"ctr-1\""),
            "{json}"
        );
        let back: IpamState = serde_json::from_str(&json).unwrap();
        assert_eq!(&back, ipam.state());
        let mut again = Ipam::new(*ipam.range(), back);
        assert_eq!(again.allocate(&owner(2)).unwrap(), ip("10.2.0.4"));
    }

    #[derive(Debug, Clone)]
    enum Op {
        Allocate(usize),
        Release(usize),
        Gc(Vec<usize>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..24usize).prop_map(Op::Allocate),
            2 => (0..24usize).prop_map(Op::Release),
            1 => proptest::collection::vec(0..24usize, 0..12).prop_map(Op::Gc),
        ]
    }

    fn subnet_and_gateway() -> impl Strategy<Value = Range> {
        prop_oneof![
            (27u8..=30, 1u128..3).prop_map(|(p, g)| (format!("10.7.0.0/{p}"), g)),
            (122u8..=126, 1u128..3).prop_map(|(p, g)| (format!("fd00:7::/{p}"), g)),
        ]
        .prop_map(|(subnet, gw)| {
            let subnet: Cidr = subnet.parse().unwrap();
            let range = Range::new(subnet).unwrap();
            range.with_gateway(subnet.nth(gw).unwrap()).unwrap_or(range)
        })
    }

    proptest! {
        #[test]
        fn never_hands_out_an_address_twice_or_a_reserved_one(
            range in subnet_and_gateway(),
            ops in proptest::collection::vec(op(), 1..120),
        ) {
            let mut ipam = Ipam::new(range, IpamState::default());
            let mut held: BTreeMap<usize, IpAddr> = BTreeMap::new();
            let subnet = range.subnet();
            for op in ops {
                match op {
                    Op::Allocate(n) => match ipam.allocate(&owner(n)) {
                        Ok(got) => {
                            if let Some(before) = held.get(&n) {
                                prop_assert_eq!(*before, got);
                            }
                            for (other, addr) in &held {
                                prop_assert!(*other == n || *addr != got, "{} given to {} and {}", got, other, n);
                            }
                            prop_assert!(got != subnet.addr() && got != range.gateway());
                            prop_assert!(!subnet.is_ipv4() || got != subnet.last());
                            prop_assert!(range.is_assignable(got));
                            held.insert(n, got);
                        }
                        Err(IpamError::Exhausted { capacity, .. }) => {
                            prop_assert!(!held.contains_key(&n));
                            prop_assert_eq!(held.len() as u128, capacity);
                        }
                        Err(other) => prop_assert!(false, "unexpected {}", other),
                    },
                    Op::Release(n) => {
                        let freed = ipam.release(&owner(n).container_id);
                        prop_assert_eq!(freed, held.remove(&n).into_iter().collect::<Vec<_>>());
                    }
                    Op::Gc(live) => {
                        ipam.gc(|id| live.iter().any(|n| owner(*n).container_id == id));
                        held.retain(|n, _| live.contains(n));
                    }
                }
                prop_assert_eq!(ipam.state().allocations.len(), held.len());
            }
        }
    }
}
