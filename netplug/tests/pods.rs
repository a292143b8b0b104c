//! Privileged: pods attached to a bridge over real netlink, each test on
//! its own "node" namespace with its own bridge and pod namespaces (see
//! `common`), so tests run in parallel and leave nothing behind.

mod common;

use common::{echo, link_in, netlink_in, pod, Node};
use noderun_core::ipam::IpamError;
use noderun_netplug::netlink::VethSpec;
use noderun_netplug::{host_veth_name, Netns, PodNetworkError, StoreError};
use std::collections::BTreeSet;
use std::net::IpAddr;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn two_pods_reach_each_other_and_the_gateway() {
    if !noderun_testkit::privileged() {
        return;
    }
    let node = Node::new();
    let mut config = node.config("10.250.1.0/24");
    config.mtu = 1400;
    let network = node.network(config);
    let (a, b) = (pod(), pod());
    let att_a = network.add(a.path(), "pod-a", "eth0").unwrap();
    let att_b = network.add(b.path(), "pod-b", "eth0").unwrap();
    assert_eq!((att_a.ip, att_b.ip), (ip("10.250.1.2"), ip("10.250.1.3")));
    assert_eq!(att_a.gateway, Some(ip("10.250.1.1")));
    assert_eq!(att_a.host_veth, host_veth_name("pod-a", "eth0"));

    echo(&a, att_a.ip, &b, att_b.ip);
    echo(&b, att_b.ip, &a, att_a.ip);
    echo(&node.host, att_a.gateway.unwrap(), &a, att_a.ip);

    let eth0 = link_in(&a, "eth0").unwrap();
    assert_eq!(eth0.mac, Some(att_a.mac));
    assert_eq!(eth0.mtu, Some(1400));
    let bridge = link_in(&node.host, &node.bridge).unwrap();
    assert!(bridge.is_bridge() && bridge.up);
    assert_eq!(bridge.mtu, Some(1400));
    let port = link_in(&node.host, &att_a.host_veth).unwrap();
    assert_eq!(port.controller, Some(bridge.index));
    assert_eq!(network.check(a.path(), "pod-a", "eth0").unwrap(), att_a);

    network.del("pod-a", "eth0").unwrap();
    assert!(link_in(&node.host, &att_a.host_veth).is_none());
    assert!(
        link_in(&a, "eth0").is_none(),
        "the pod end goes with the host end"
    );
    let err = network.check(a.path(), "pod-a", "eth0").unwrap_err();
    assert!(err.to_string().contains("no address is allocated"), "{err}");
    network.check(b.path(), "pod-b", "eth0").unwrap();
}

#[test]
fn add_is_repeatable_and_del_is_idempotent() {
    if !noderun_testkit::privileged() {
        return;
    }
    let node = Node::new();
    let network = node.network(node.config("10.250.2.0/24"));
    let p = pod();
    let first = network.add(p.path(), "pod-1", "eth0").unwrap();
    let index = link_in(&node.host, &first.host_veth).unwrap().index;
    let again = network.add(p.path(), "pod-1", "eth0").unwrap();
    assert_eq!(again, first);
    let adopted = link_in(&node.host, &first.host_veth).unwrap();
    assert_eq!(
        adopted.index, index,
        "a whole attachment is adopted, not rebuilt"
    );

    network.del("pod-1", "eth0").unwrap();
    network.del("pod-1", "eth0").unwrap();
    network.del("never-added", "eth0").unwrap();
    assert!(network.store().state().unwrap().allocations.is_empty());
}

#[test]
fn eight_concurrent_adds_get_distinct_addresses() {
    if !noderun_testkit::privileged() {
        return;
    }
    let node = Node::new();
    let network = node.network(node.config("10.250.3.0/24"));
    let pods: Vec<_> = (0..8).map(|_| pod()).collect();
    let attachments: Vec<_> = std::thread::scope(|scope| {
        let adds: Vec<_> = pods
            .iter()
            .enumerate()
            .map(|(n, p)| {
                let network = &network;
                scope.spawn(move || network.add(p.path(), &format!("pod-{n}"), "eth0"))
            })
            .collect();
        adds.into_iter()
            .map(|a| a.join().unwrap().unwrap())
            .collect()
    });
    let ips: BTreeSet<IpAddr> = attachments.iter().map(|a| a.ip).collect();
    assert_eq!(ips.len(), 8, "{attachments:?}");
    assert_eq!(network.store().state().unwrap().allocations.len(), 8);
    for (n, p) in pods.iter().enumerate() {
        network
            .check(p.path(), &format!("pod-{n}"), "eth0")
            .unwrap();
    }
    echo(&pods[0], attachments[0].ip, &pods[7], attachments[7].ip);
}

#[test]
fn a_full_range_refuses_the_next_pod_until_one_leaves() {
    if !noderun_testkit::privileged() {
        return;
    }
    let node = Node::new();
    let network = node.network(node.config("10.250.4.0/28"));
    // A /28 has 14 host addresses; the gateway takes one.
    let pods: Vec<_> = (0..14).map(|_| pod()).collect();
    for (n, p) in pods.iter().take(13).enumerate() {
        network.add(p.path(), &format!("pod-{n}"), "eth0").unwrap();
    }
    let last = &pods[13];
    let err = network.add(last.path(), "pod-13", "eth0").unwrap_err();
    assert!(
        matches!(
            err,
            PodNetworkError::Store(StoreError::Ipam {
                source: IpamError::Exhausted { capacity: 13, .. },
                ..
            })
        ),
        "{err}"
    );
    assert!(
        link_in(last, "eth0").is_none(),
        "a refused ADD leaves nothing"
    );
    assert!(link_in(&node.host, &host_veth_name("pod-13", "eth0")).is_none());

    network.del("pod-5", "eth0").unwrap();
    let att = network.add(last.path(), "pod-13", "eth0").unwrap();
    assert_eq!(att.ip, ip("10.250.4.7"), "the only free address");
    for n in 0..14 {
        network.del(&format!("pod-{n}"), "eth0").unwrap();
    }
    assert!(network.store().state().unwrap().allocations.is_empty());
    let left: Vec<String> = node
        .netlink()
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| n.starts_with("nr") && *n != node.bridge)
        .collect();
    assert!(left.is_empty(), "host veths left: {left:?}");
}

#[test]
fn leftover_veths_are_replaced_never_duplicated() {
    if !noderun_testkit::privileged() {
        return;
    }
    let node = Node::new();
    let network = node.network(node.config("10.250.5.0/24"));
    let mut host = node.netlink();

    // Crash 1: the pair exists, both ends in the host namespace.
    let p1 = pod();
    let name1 = host_veth_name("crashed-1", "eth0");
    host.create_veth(&veth(&name1, "leftover1", None)).unwrap();
    let att1 = network.add(p1.path(), "crashed-1", "eth0").unwrap();
    assert!(
        host.link("leftover1").unwrap().is_none(),
        "the old pair is gone"
    );
    network.check(p1.path(), "crashed-1", "eth0").unwrap();
    echo(&node.host, att1.gateway.unwrap(), &p1, att1.ip);

    // Crash 2: the pod end is in the pod as eth0, not configured yet.
    let p2 = pod();
    let name2 = host_veth_name("crashed-2", "eth0");
    let p2_ns = Netns::open(p2.path()).unwrap();
    host.create_veth(&veth(&name2, "eth0", Some(&p2_ns)))
        .unwrap();
    let stale_index = host.link(&name2).unwrap().unwrap().index;
    let att2 = network.add(p2.path(), "crashed-2", "eth0").unwrap();
    assert_ne!(
        host.link(&name2).unwrap().unwrap().index,
        stale_index,
        "replaced"
    );
    network.check(p2.path(), "crashed-2", "eth0").unwrap();
    echo(&p1, att1.ip, &p2, att2.ip);

    let veths: Vec<String> = host
        .links()
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .filter(|n| *n == name1 || *n == name2)
        .collect();
    assert_eq!(veths.len(), 2, "{veths:?}");
    let pod_links = netlink_in(&p2).links().unwrap();
    assert_eq!(pod_links.iter().filter(|l| l.name == "eth0").count(), 1);
}

fn veth<'a>(name: &'a str, peer: &'a str, netns: Option<&'a Netns>) -> VethSpec<'a> {
    VethSpec {
        name,
        peer_name: peer,
        peer_netns: netns,
        peer_mac: None,
        mtu: None,
        controller: None,
        up: false,
    }
}

#[test]
fn taken_names_are_refused_and_undone() {
    if !noderun_testkit::privileged() {
        return;
    }
    let node = Node::new();
    let network = node.network(node.config("10.250.6.0/24"));
    // The bridge name belongs to a link that is not a bridge.
    node.netlink()
        .create_veth(&veth(&node.bridge, "notabr0", None))
        .unwrap();
    let p = pod();
    let err = network.add(p.path(), "pod-1", "eth0").unwrap_err();
    assert!(matches!(err, PodNetworkError::NotABridge { .. }), "{err}");
    assert!(err.to_string().contains("is a veth, not a bridge"), "{err}");
    assert!(network.store().state().unwrap().allocations.is_empty());

    // The pod already has an eth0 that netplug did not make.
    let other = Node::new();
    let network = other.network(other.config("10.250.6.0/24"));
    netlink_in(&p)
        .create_veth(&veth("eth0", "other0", None))
        .unwrap();
    let err = network.add(p.path(), "pod-1", "eth0").unwrap_err();
    assert!(matches!(err, PodNetworkError::IfnameTaken { .. }), "{err}");
    assert!(network.store().state().unwrap().allocations.is_empty());
    assert!(link_in(&other.host, &host_veth_name("pod-1", "eth0")).is_none());
    assert!(
        link_in(&p, "other0").is_some(),
        "the pod's own link is left alone"
    );
}

#[test]
fn hairpin_and_promiscuous_options_are_applied() {
    if !noderun_testkit::privileged() {
        return;
    }
    let node = Node::new();
    let mut config = node.config("10.250.7.0/24");
    config.hairpin = true;
    config.promisc = true;
    let network = node.network(config);
    let p = pod();
    let att = network.add(p.path(), "pod-1", "eth0").unwrap();
    let port = link_in(&node.host, &att.host_veth).unwrap();
    assert_eq!(port.hairpin, Some(true));
    assert!(link_in(&node.host, &node.bridge).unwrap().promisc);
    // The bridge keeps the MAC it was made with as ports come and go.
    let mac = link_in(&node.host, &node.bridge).unwrap().mac;
    network.del("pod-1", "eth0").unwrap();
    assert_eq!(link_in(&node.host, &node.bridge).unwrap().mac, mac);
}

#[test]
fn without_is_gateway_the_bridge_only_switches() {
    if !noderun_testkit::privileged() {
        return;
    }
    let node = Node::new();
    let mut config = node.config("10.250.7.0/24");
    config.bridge_is_gateway = false;
    let network = node.network(config);
    let (a, b) = (pod(), pod());
    let att_a = network.add(a.path(), "pod-a", "eth0").unwrap();
    let att_b = network.add(b.path(), "pod-b", "eth0").unwrap();
    assert_eq!(att_a.gateway, None);
    // Pods on the bridge still reach each other.
    echo(&a, att_a.ip, &b, att_b.ip);
    // The bridge has no address, the pods no default route.
    let mut host = netlink_in(&node.host);
    let bridge = link_in(&node.host, &node.bridge).unwrap();
    let addresses = host.addresses(Some(bridge.index)).unwrap();
    assert!(!addresses.iter().any(|a| a.ip.is_ipv4()), "{addresses:?}");
    let mut inside = netlink_in(&a);
    let routes = inside.routes(true).unwrap();
    assert!(!routes.iter().any(|r| r.is_default()), "{routes:?}");
    assert_eq!(network.check(a.path(), "pod-a", "eth0").unwrap(), att_a);
    network.del("pod-a", "eth0").unwrap();
    network.del("pod-b", "eth0").unwrap();
}

#[test]
fn ipv6_pods_reach_each_other_and_the_gateway() {
    if !noderun_testkit::privileged() {
        return;
    }
    let node = Node::new();
    let network = node.network(node.config("fd00:250:8::/64"));
    let (a, b) = (pod(), pod());
    let att_a = network.add(a.path(), "pod-a", "eth0").unwrap();
    let att_b = network.add(b.path(), "pod-b", "eth0").unwrap();
    assert_eq!(att_a.gateway, Some(ip("fd00:250:8::1")));
    assert_eq!(
        (att_a.ip, att_b.ip),
        (ip("fd00:250:8::2"), ip("fd00:250:8::3"))
    );
    echo(&a, att_a.ip, &b, att_b.ip);
    echo(&node.host, att_a.gateway.unwrap(), &a, att_a.ip);
    let mut inside = netlink_in(&a);
    let routes = inside.routes(false).unwrap();
    assert!(
        routes
            .iter()
            .any(|r| r.is_default() && r.gateway == att_a.gateway),
        "{routes:?}"
    );
    assert_eq!(network.check(a.path(), "pod-a", "eth0").unwrap(), att_a);
    network.del("pod-a", "eth0").unwrap();
    network.del("pod-b", "eth0").unwrap();
}
