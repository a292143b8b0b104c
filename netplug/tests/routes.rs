//! Privileged: cross-node routes. Two "nodes" (namespaces joined by a
//! veth underlay, 192.168.77.1 and .2), each with a pod network of its
//! own; `reconcile_routes` on each makes the pods reach each other with
//! their own addresses, and brings netplug's routes to each desired set
//! without touching routes of other protocols.

mod common;

use common::{echo, enable_forwarding, netlink_in, underlay, Node};
use noderun_core::net::Cidr;
use noderun_netplug::routes::{installed, reconcile_routes, NodeRoute, ROUTE_PROTOCOL};
use noderun_testkit::NetnsGuard;
use std::net::IpAddr;
use std::process::Command;

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn cidr(text: &str) -> Cidr {
    text.parse().unwrap()
}

fn route(pod_cidr: &str, node_ip: &str) -> NodeRoute {
    NodeRoute {
        pod_cidr: cidr(pod_cidr),
        node_ip: ip(node_ip),
    }
}

#[test]
fn pods_on_two_nodes_reach_each_other_through_reconciled_routes() {
    let (node_a, node_b) = (Node::new(), Node::new());
    underlay(&node_a.host, "192.168.77.1", &node_b.host, "192.168.77.2");
    enable_forwarding(&node_a.host);
    enable_forwarding(&node_b.host);
    let net_a = node_a.network(node_a.config("10.61.0.0/24"));
    let net_b = node_b.network(node_b.config("10.62.0.0/24"));
    let (pod_a, pod_b) = (common::pod(), common::pod());
    let att_a = net_a.add(pod_a.path(), "x-a", "eth0").unwrap();
    let att_b = net_b.add(pod_b.path(), "x-b", "eth0").unwrap();

    let changes = reconcile_routes(
        &mut node_a.netlink(),
        &[route("10.62.0.0/24", "192.168.77.2")],
    )
    .unwrap();
    assert_eq!(changes.installed.len(), 1);
    reconcile_routes(
        &mut node_b.netlink(),
        &[route("10.61.0.0/24", "192.168.77.1")],
    )
    .unwrap();
    echo(&pod_b, att_b.ip, &pod_a, att_a.ip);

    // Reconciling to an empty set removes what netplug installed.
    let changes = reconcile_routes(&mut node_a.netlink(), &[]).unwrap();
    assert_eq!(changes.removed, vec![cidr("10.62.0.0/24")]);
    assert!(installed(&mut node_a.netlink()).unwrap().is_empty());
}

#[test]
fn reconcile_adds_replaces_removes_and_leaves_other_routes_alone() {
    let (node, peer) = (
        NetnsGuard::new("nr-rt").unwrap(),
        NetnsGuard::new("nr-rtpeer").unwrap(),
    );
    underlay(&node, "192.168.78.1", &peer, "192.168.78.2");
    // A route of another protocol (static) to a prefix netplug never
    // manages, and one to a prefix it is later told about.
    let foreign = Command::new("ip")
        .args([
            "-n",
            node.name(),
            "route",
            "add",
            "10.99.0.0/24",
            "via",
            "192.168.78.3",
            "proto",
            "static",
        ])
        .status()
        .unwrap();
    assert!(foreign.success());
    let mut nl = netlink_in(&node);

    let first = [
        route("10.1.0.0/24", "192.168.78.2"),
        route("10.2.0.0/24", "192.168.78.3"),
    ];
    let changes = reconcile_routes(&mut nl, &first).unwrap();
    assert_eq!(changes.installed.len(), 2);
    assert!(changes.removed.is_empty());
    let again = reconcile_routes(&mut nl, &first).unwrap();
    assert_eq!(
        again,
        Default::default(),
        "a second reconcile changes nothing"
    );

    let second = [
        route("10.2.0.0/24", "192.168.78.4"),
        route("10.3.0.0/24", "192.168.78.2"),
    ];
    let changes = reconcile_routes(&mut nl, &second).unwrap();
    assert_eq!(changes.removed, vec![cidr("10.1.0.0/24")]);
    assert_eq!(changes.installed, second.to_vec());
    let table = installed(&mut nl).unwrap();
    assert_eq!(table.len(), 2);
    assert_eq!(table[&cidr("10.2.0.0/24")], Some(ip("192.168.78.4")));
    assert_eq!(table[&cidr("10.3.0.0/24")], Some(ip("192.168.78.2")));

    reconcile_routes(&mut nl, &[]).unwrap();
    let routes = nl.routes(true).unwrap();
    assert!(routes.iter().all(|r| r.protocol != ROUTE_PROTOCOL));
    assert!(
        routes
            .iter()
            .any(|r| r.destination == Some((ip("10.99.0.0"), 24))),
        "the static route survived: {routes:?}"
    );

    let conflict = reconcile_routes(
        &mut nl,
        &[
            route("10.5.0.0/24", "192.168.78.2"),
            route("10.5.0.0/24", "192.168.78.3"),
        ],
    );
    assert!(conflict
        .unwrap_err()
        .to_string()
        .contains("wanted via both"));
}
