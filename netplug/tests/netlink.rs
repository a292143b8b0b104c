//! Privileged: the netlink wrappers one by one, in namespaces the test
//! makes, read back through the same socket.

mod common;

use common::{link_in, netlink_in};
use nix::errno::Errno;
use noderun_netplug::netlink::VethSpec;
use noderun_netplug::Netns;
use noderun_testkit::NetnsGuard;
use std::net::IpAddr;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn link_changes_read_back() {
    if !noderun_testkit::privileged() {
        return;
    }
    let ns = NetnsGuard::new("nr-nl").unwrap();
    let mut nl = netlink_in(&ns);
    nl.create_bridge("br-t", None, None).unwrap();
    let err = nl.create_bridge("br-t", None, None).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EEXIST), "{err}");
    assert!(err.to_string().contains("create bridge br-t"), "{err}");
    let bridge = nl.link("br-t").unwrap().unwrap();
    assert!(bridge.is_bridge() && bridge.up);

    let spec = VethSpec {
        name: "va",
        peer_name: "vb",
        peer_netns: None,
        peer_mac: None,
        mtu: None,
        controller: None,
        up: false,
    };
    nl.create_veth(&spec).unwrap();
    let va = nl.link("va").unwrap().unwrap();
    assert_eq!(va.kind.as_deref(), Some("veth"));
    assert!(!va.up);
    nl.set_mac(&va, [0x0a, 0x58, 0, 0, 0, 9]).unwrap();
    nl.set_mtu(&va, 1280).unwrap();
    nl.set_controller(&va, bridge.index).unwrap();
    nl.set_up(&va, true).unwrap();
    let va = nl.link_by_index(va.index).unwrap().unwrap();
    assert_eq!(va.mac, Some([0x0a, 0x58, 0, 0, 0, 9]));
    assert_eq!(va.mtu, Some(1280));
    assert_eq!(va.controller, Some(bridge.index));
    assert!(va.up);
    nl.set_hairpin(&va, true).unwrap();
    assert_eq!(nl.link("va").unwrap().unwrap().hairpin, Some(true));
    nl.set_promisc(&bridge, true).unwrap();
    assert!(nl.link("br-t").unwrap().unwrap().promisc);

    let vb = nl.link("vb").unwrap().unwrap();
    nl.rename(&vb, "vb-renamed").unwrap();
    assert!(nl.link("vb").unwrap().is_none());
    let vb = nl.link("vb-renamed").unwrap().unwrap();

    let other = NetnsGuard::new("nr-nl").unwrap();
    nl.move_to_netns(&vb, &Netns::open(other.path()).unwrap())
        .unwrap();
    assert!(nl.link("vb-renamed").unwrap().is_none());
    assert!(link_in(&other, "vb-renamed").is_some());

    assert!(nl.delete_link("va").unwrap());
    assert!(
        !nl.delete_link("va").unwrap(),
        "a second delete finds nothing"
    );
    assert!(
        link_in(&other, "vb-renamed").is_none(),
        "the peer goes with it"
    );
    assert!(nl.link_by_index(va.index).unwrap().is_none());
    assert!(nl.links().unwrap().iter().any(|l| l.name == "lo"));
}

#[test]
fn addresses_and_routes_read_back() {
    if !noderun_testkit::privileged() {
        return;
    }
    let ns = NetnsGuard::new("nr-nl").unwrap();
    let mut nl = netlink_in(&ns);
    nl.create_bridge("br-a", Some(1450), None).unwrap();
    let bridge = nl.link("br-a").unwrap().unwrap();
    assert_eq!(bridge.mtu, Some(1450));
    nl.add_address(&bridge, ip("10.250.9.1"), 24).unwrap();
    let err = nl.add_address(&bridge, ip("10.250.9.1"), 24).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EEXIST));
    assert!(err.to_string().contains("10.250.9.1/24 on br-a"), "{err}");
    nl.ensure_address(&bridge, ip("10.250.9.1"), 24).unwrap();
    nl.add_address(&bridge, ip("fd00:9::1"), 64).unwrap();
    let addresses = nl.addresses(Some(bridge.index)).unwrap();
    let mut found: Vec<(IpAddr, u8)> = addresses.iter().map(|a| (a.ip, a.prefix)).collect();
    found.retain(|(a, _)| !a.to_string().starts_with("fe80"));
    found.sort();
    assert_eq!(found, [(ip("10.250.9.1"), 24), (ip("fd00:9::1"), 64)]);

    // A gateway route needs the link up and the gateway on-link.
    nl.set_up(&bridge, true).unwrap();
    nl.add_default_route(ip("10.250.9.254"), &bridge).unwrap();
    let err = nl
        .add_default_route(ip("10.250.9.253"), &bridge)
        .unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EEXIST), "{err}");
    let routes = nl.routes(true).unwrap();
    let default = routes.iter().find(|r| r.is_default()).unwrap();
    assert_eq!(default.gateway, Some(ip("10.250.9.254")));
    assert_eq!(default.oif, Some(bridge.index));
    assert!(routes
        .iter()
        .any(|r| r.destination == Some((ip("10.250.9.0"), 24))));
    assert!(nl
        .routes(false)
        .unwrap()
        .iter()
        .any(|r| r.destination == Some((ip("fd00:9::"), 64))));
}

/// The inode of the calling thread's network namespace.
fn thread_netns() -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net").unwrap().ino()
}

#[test]
fn entering_a_namespace_puts_the_thread_back_even_on_panic() {
    if !noderun_testkit::privileged() {
        return;
    }
    let ns = NetnsGuard::new("nr-nl-enter").unwrap();
    let target = Netns::open(ns.path()).unwrap();
    let home = thread_netns();
    let inside = target.enter(thread_netns).unwrap();
    assert_ne!(inside, home, "the closure did not run in the namespace");
    assert_eq!(thread_netns(), home, "the thread was not put back");

    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        target.enter(|| panic!("inside")).ok();
    }));
    assert!(unwound.is_err());
    assert_eq!(thread_netns(), home, "a panic left the thread inside");

    // A socket opened inside stays there: the pod's lo is what it sees.
    let mut nl = noderun_netplug::netlink::Netlink::open_in(&target).unwrap();
    assert_eq!(thread_netns(), home);
    assert!(nl.link("lo").unwrap().is_some());
    assert!(nl.link("eth0").unwrap().is_none());
}
