//! The fixture of the privileged pod tests: a "node" whose host side is a
//! namespace of its own (so the real host's links and routes are never
//! touched), a uniquely named bridge in it, IPAM state in a temporary
//! directory, and pods as further namespaces. Dropping the namespaces
//! removes every link the test made; dropping the directory removes the
//! state.

#![allow(dead_code)]

use noderun_core::net::Cidr;
use noderun_netplug::netlink::{Link, Netlink, VethSpec};
use noderun_netplug::{Netns, NetworkConfig, PodNetwork};
use noderun_testkit::{unique_name, NetnsGuard, TempDir};
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How many times the echo server polls for its connection (10 ms apart).
const ACCEPT_POLLS: u32 = 1000;

/// A node's host side: namespace, bridge name and state directory.
pub struct Node {
    pub bridge: String,
    pub state: TempDir,
    pub host: NetnsGuard,
}

impl Node {
    pub fn new() -> Node {
        Node {
            bridge: unique_name("nrbr"),
            state: TempDir::new("netplug-state").unwrap(),
            host: NetnsGuard::new("nr-host").unwrap(),
        }
    }

    /// A network on this node's bridge, state and host namespace.
    pub fn config(&self, subnet: &str) -> NetworkConfig {
        let subnet: Cidr = subnet.parse().unwrap();
        let mut config = NetworkConfig::new("pods", &self.bridge, subnet);
        config.state_root = self.state.path().into();
        config
    }

    pub fn network(&self, config: NetworkConfig) -> PodNetwork {
        PodNetwork::new(config)
            .unwrap()
            .with_host_netns(self.host.path())
            .unwrap()
    }

    /// A netlink socket in the host namespace.
    pub fn netlink(&self) -> Netlink {
        netlink_in(&self.host)
    }
}

pub fn pod() -> NetnsGuard {
    NetnsGuard::new("nr-pod").unwrap()
}

pub fn netlink_in(ns: &NetnsGuard) -> Netlink {
    Netlink::open_in(&Netns::open(ns.path()).unwrap()).unwrap()
}

/// The link `name` in `ns`, if any.
pub fn link_in(ns: &NetnsGuard, name: &str) -> Option<Link> {
    netlink_in(ns).link(name).unwrap()
}

/// Send a line over TCP from `client` to a server listening on
/// `server_ip` in `server`, and check the echo and the address it came
/// from (`client_ip`: no translation on the way).
pub fn echo(server: &NetnsGuard, server_ip: IpAddr, client: &NetnsGuard, client_ip: IpAddr) {
    let listener = server
        .run_in(|| TcpListener::bind((server_ip, 0)))
        .unwrap()
        .unwrap();
    let target = listener.local_addr().unwrap();
    listener.set_nonblocking(true).unwrap();
    std::thread::scope(|scope| {
        let serving = scope.spawn(|| serve_one(&listener));
        let reply = client
            .run_in(|| send_line(target, b"hello from a pod\n"))
            .unwrap();
        let peer = serving.join().unwrap();
        assert_eq!(reply.unwrap(), b"hello from a pod\n", "echo from {target}");
        assert_eq!(
            peer.map(|p| p.ip()),
            Some(client_ip),
            "source address seen by {target}"
        );
    });
}

/// Accept one connection (polling, so that a client that never comes
/// ends the test instead of hanging it) and echo what it sends.
fn serve_one(listener: &TcpListener) -> Option<SocketAddr> {
    for _ in 0..ACCEPT_POLLS {
        match listener.accept() {
            Ok((mut conn, peer)) => {
                conn.set_nonblocking(false).unwrap();
                conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                let mut line = [0u8; 64];
                let n = conn.read(&mut line).unwrap();
                conn.write_all(&line[..n]).unwrap();
                return Some(peer);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    None
}

fn send_line(target: SocketAddr, line: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect_timeout(&target, IO_TIMEOUT)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.write_all(line)?;
    let mut reply = vec![0; line.len()];
    stream.read_exact(&mut reply)?;
    Ok(reply)
}

/// Join `a` and `b` with a veth, `a_ip`/24 and `b_ip`/24 on its ends.
pub fn underlay(a: &NetnsGuard, a_ip: &str, b: &NetnsGuard, b_ip: &str) {
    underlay_with_prefix(a, a_ip, b, b_ip, 24);
}

/// Join `a` and `b` with a veth, `a_ip` and `b_ip` with `prefix` on its
/// ends (IPv4 or IPv6).
pub fn underlay_with_prefix(a: &NetnsGuard, a_ip: &str, b: &NetnsGuard, b_ip: &str, prefix: u8) {
    let name = unique_name("nrul");
    let b_netns = Netns::open(b.path()).unwrap();
    let mut nl_a = netlink_in(a);
    nl_a.create_veth(&VethSpec {
        name: &name,
        peer_name: "underlay",
        peer_netns: Some(&b_netns),
        peer_mac: None,
        mtu: None,
        controller: None,
        up: true,
    })
    .unwrap();
    let link = nl_a.link(&name).unwrap().unwrap();
    nl_a.add_address(&link, a_ip.parse().unwrap(), prefix)
        .unwrap();
    let mut nl_b = netlink_in(b);
    let peer = nl_b.link("underlay").unwrap().unwrap();
    nl_b.add_address(&peer, b_ip.parse().unwrap(), prefix)
        .unwrap();
    nl_b.set_up(&peer, true).unwrap();
}

/// Turn on IPv4 and IPv6 forwarding in `node`.
pub fn enable_forwarding(node: &NetnsGuard) {
    for setting in ["net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"] {
        let status = Command::new("ip")
            .args(["netns", "exec", node.name(), "sysctl", "-qw", setting])
            .status()
            .unwrap();
        assert!(status.success(), "{setting}");
    }
}

/// The text of `network`'s IPAM state file (`state-<boot id>.json`) under
/// `root`, or "" before the first allocation.
pub fn ipam_state_text(root: &std::path::Path, network: &str) -> String {
    // The newest of the two slots (`state-<boot>.a`/`.b`, each starting
    // `nrs1 <generation> `).
    let Ok(entries) = std::fs::read_dir(root.join(network)) else {
        return String::new();
    };
    entries
        .flatten()
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("state-") && (name.ends_with(".a") || name.ends_with(".b"))
        })
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .max_by_key(|text| {
            text.split(' ')
                .nth(1)
                .and_then(|g| g.parse::<u64>().ok())
                .unwrap_or(0)
        })
        .unwrap_or_default()
}
