//! Privileged: `ipMasq`. A "node" namespace holds the bridge and netplug's
//! nftables table; a "far host" namespace sits beyond it on a veth
//! (192.168.79.1 on the node, .2 far) with no route back to the pod
//! subnet, so a pod's TCP connection can only come back if it was
//! masqueraded, and the far side must see the node's address as source.

mod common;

use common::{echo, enable_forwarding, underlay, Node};
use noderun_testkit::NetnsGuard;
use std::net::IpAddr;
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

#[test]
fn a_pod_reaches_a_far_host_as_the_node() {
    let node = Node::new();
    let far = NetnsGuard::new("nr-far").unwrap();
    underlay(&node.host, "192.168.79.1", &far, "192.168.79.2");
    enable_forwarding(&node.host);
    let mut config = node.config("10.63.0.0/24");
    config.masquerade = true;
    let network = node.network(config);
    let pod = common::pod();
    let att = network.add(pod.path(), "masq-1", "eth0").unwrap();

    let table = netplug_table(&node.host).expect("ADD made the netplug table");
    assert!(table.contains(&att.ip.to_string()), "{table}");
    assert!(table.contains("masquerade"), "{table}");

    // The echo server on the far host reports the source it saw.
    let node_ip: IpAddr = "192.168.79.1".parse().unwrap();
    echo(&far, "192.168.79.2".parse().unwrap(), &pod, node_ip);

    network.del("masq-1", "eth0").unwrap();
    let table = netplug_table(&node.host).unwrap();
    assert!(
        !table.contains(&att.ip.to_string()),
        "DEL left the pod in the set: {table}"
    );
    network.del("masq-1", "eth0").unwrap();
}
