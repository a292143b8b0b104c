//! Privileged: `ipMasq`. A "node" namespace holds the bridge and netplug's
//! nftables table; a "far host" namespace sits beyond it on a veth
//! (192.168.79.1 on the node, .2 far) with no route back to the pod
//! subnet, so a pod's TCP connection can only come back if it was
//! masqueraded, and the far side must see the node's address as source.
//! The same again over IPv6 (fd00:79::1 and ::2, pods in fd00:63::/64).

mod common;

use common::{echo, enable_forwarding, underlay_with_prefix, Node};
use noderun_testkit::NetnsGuard;
use std::process::Command;

/// `nft list table inet netplug` in `node`, or `None` if there is none.
fn netplug_table(node: &NetnsGuard) -> Option<String> {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            node.name(),
            "nft",
            "list",
            "table",
            "inet",
            "netplug",
        ])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A pod of `subnet` with ipMasq reaches `far_ip` on a far host that has
/// no route back to the pod subnet, and the far host sees `node_ip`.
fn pod_reaches_far_host_as_node(subnet: &str, node_ip: &str, far_ip: &str, prefix: u8) {
    let node = Node::new();
    let far = NetnsGuard::new("nr-far").unwrap();
    underlay_with_prefix(&node.host, node_ip, &far, far_ip, prefix);
    enable_forwarding(&node.host);
    let mut config = node.config(subnet);
    config.masquerade = true;
    let network = node.network(config);
    let pod = common::pod();
    let att = network.add(pod.path(), "masq-1", "eth0").unwrap();

    let table = netplug_table(&node.host).expect("ADD made the netplug table");
    assert!(table.contains(&att.ip.to_string()), "{table}");
    assert!(table.contains("masquerade"), "{table}");
    let set_type = if att.ip.is_ipv6() {
        "ipv6_addr"
    } else {
        "ipv4_addr"
    };
    assert!(table.contains(set_type), "{table}");

    // The echo server on the far host reports the source it saw.
    echo(
        &far,
        far_ip.parse().unwrap(),
        &pod,
        node_ip.parse().unwrap(),
    );

    network.del("masq-1", "eth0").unwrap();
    let table = netplug_table(&node.host).unwrap();
    assert!(
        !table.contains(&att.ip.to_string()),
        "DEL left the pod in the set: {table}"
    );
    network.del("masq-1", "eth0").unwrap();
}

#[test]
fn a_pod_reaches_a_far_host_as_the_node() {
    pod_reaches_far_host_as_node("10.63.0.0/24", "192.168.79.1", "192.168.79.2", 24);
}

#[test]
fn an_ipv6_pod_reaches_a_far_host_as_the_node() {
    pod_reaches_far_host_as_node("fd00:63::/64", "fd00:79::1", "fd00:79::2", 64);
}
