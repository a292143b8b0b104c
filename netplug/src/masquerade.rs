//! Outbound NAT for pods (`ipMasq`): traffic from a pod to anywhere
//! outside its subnet leaves with the node's address.
//!
//! Layout, all in one nftables table netplug owns (`inet netplug`), so
//! nothing of anyone else's ruleset is read or changed: per network a set
//! of its pods' addresses (`pods_<network>`) and a NAT base chain on the
//! postrouting hook (`masq_<network>`) holding one rule, "source in the
//! set, destination outside the subnet: masquerade". ADD adds the pod's
//! address to the set, DEL removes it: a set lookup per packet instead of
//! a rule per pod, and no rule handles to remember.
//!
//! Why `nft -j -f -` and not the nf_tables netlink API: the rule is
//! kernel bytecode (payload loads, a set lookup, a prefix compare, the NAT
//! expression) whose encoding differs by kernel version and which the
//! kernel rejects with a bare errno; `nft` is the reference compiler for
//! it, shipped with the `nftables` package. JSON input (built with
//! `serde_json`) avoids string escaping and parsing nft's text. Each
//! change is one transaction (one `nft` run): the table, chain and set
//! are declared idempotently (`add`), the chain flushed and its rule
//! re-added, and the element added or removed, so a change is atomic and
//! repeating it is harmless. DEL adds then deletes the element in the
//! same transaction, which succeeds whether or not it was there (nft 1.0.6
//! has no `destroy`). The cost is one exec per ADD and DEL, paid only by
//! networks that ask for `ipMasq`.

use crate::netns::{Netns, NetnsError};
use noderun_core::net::Cidr;
use serde_json::{json, Value};
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The nftables table netplug owns.
pub const TABLE: &str = "netplug";
/// The `nft` binary (package `nftables`).
pub const NFT: &str = "nft";

/// What went wrong changing the masquerade rules.
#[derive(Debug, thiserror::Error)]
pub enum MasqueradeError {
    #[error("masquerade for network {network}: running {NFT}: {source}; is the nftables package installed?")]
    Spawn {
        network: String,
        #[source]
        source: std::io::Error,
    },
    #[error("masquerade for network {network}: {NFT} refused to {op} {ip}: {stderr}")]
    Nft {
        network: String,
        op: &'static str,
        ip: IpAddr,
        stderr: String,
    },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// The masquerade of one network's pods, in one namespace.
#[derive(Debug, Clone)]
pub struct Masquerade {
    network: String,
    subnet: Cidr,
    netns: Option<PathBuf>,
}

impl Masquerade {
    /// Rules for `network`'s `subnet`, in the namespace at `netns` (the
    /// caller's when `None`).
    pub fn new(network: &str, subnet: Cidr, netns: Option<PathBuf>) -> Masquerade {
        Masquerade {
            network: network.into(),
            subnet,
            netns,
        }
    }

    /// Masquerade `ip`'s outbound traffic.
    pub fn add(&self, ip: IpAddr) -> Result<(), MasqueradeError> {
        let mut commands = self.declarations();
        commands.push(json!({"add": {"element": self.element(ip)}}));
        self.apply("add", ip, commands)
    }

    /// Stop masquerading `ip`; succeeds when it was not masqueraded.
    pub fn remove(&self, ip: IpAddr) -> Result<(), MasqueradeError> {
        let mut commands = self.declarations();
        commands.push(json!({"add": {"element": self.element(ip)}}));
        commands.push(json!({"delete": {"element": self.element(ip)}}));
        self.apply("remove", ip, commands)
    }

    fn suffix(&self) -> String {
        let clean = |c: char| if c.is_ascii_alphanumeric() { c } else { '_' };
        self.network.chars().map(clean).collect()
    }

    fn set_name(&self) -> String {
        format!("pods_{}", self.suffix())
    }

    fn chain_name(&self) -> String {
        format!("masq_{}", self.suffix())
    }

    fn element(&self, ip: IpAddr) -> Value {
        json!({"family": "inet", "table": TABLE, "name": self.set_name(), "elem": [ip.to_string()]})
    }

    /// The table, set, chain and its one rule, declared idempotently.
    fn declarations(&self) -> Vec<Value> {
        let (proto, set_type) = if self.subnet.is_ipv4() {
            ("ip", "ipv4_addr")
        } else {
            ("ip6", "ipv6_addr")
        };
        let chain = json!({"family": "inet", "table": TABLE, "name": self.chain_name()});
        let payload = |field: &str| json!({"payload": {"protocol": proto, "field": field}});
        let subnet = json!({"prefix": {"addr": self.subnet.addr().to_string(), "len": self.subnet.prefix()}});
        vec![
            json!({"add": {"table": {"family": "inet", "name": TABLE}}}),
            json!({"add": {"set": {"family": "inet", "table": TABLE, "name": self.set_name(), "type": set_type}}}),
            json!({"add": {"chain": {"family": "inet", "table": TABLE, "name": self.chain_name(),
                "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"}}}),
            json!({"flush": {"chain": chain}}),
            json!({"add": {"rule": {"family": "inet", "table": TABLE, "chain": self.chain_name(), "expr": [
                {"match": {"op": "==", "left": payload("saddr"), "right": format!("@{}", self.set_name())}},
                {"match": {"op": "!=", "left": payload("daddr"), "right": subnet}},
                {"masquerade": null},
            ]}}}),
        ]
    }

    /// Run one transaction, in the namespace if one is set.
    fn apply(
        &self,
        op: &'static str,
        ip: IpAddr,
        commands: Vec<Value>,
    ) -> Result<(), MasqueradeError> {
        let input = json!({"nftables": commands}).to_string();
        let run = || run_nft(&input);
        let outcome = match &self.netns {
            Some(path) => Netns::open(path)?.run(run)?,
            None => run(),
        };
        match outcome {
            Ok(None) => Ok(()),
            Ok(Some(stderr)) => Err(MasqueradeError::Nft {
                network: self.network.clone(),
                op,
                ip,
                stderr,
            }),
            Err(source) => Err(MasqueradeError::Spawn {
                network: self.network.clone(),
                source,
            }),
        }
    }
}

/// `nft -j -f -` with `input` on stdin: `None` on success, else its
/// stderr. A child forked from a thread inherits that thread's network
/// namespace, so this runs where the calling thread is.
fn run_nft(input: &str) -> std::io::Result<Option<String>> {
    let mut child = Command::new(NFT)
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    Ok((!out.status.success()).then(|| String::from_utf8_lossy(&out.stderr).trim().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_transaction_declares_table_set_chain_and_rule() {
        let m = Masquerade::new("pods-a", "10.5.0.0/16".parse().unwrap(), None);
        let commands = m.declarations();
        let text = serde_json::to_string(&commands).unwrap();
        assert!(text.contains(r#""name":"pods_pods_a""#), "{text}");
        assert!(text.contains(r#""hook":"postrouting""#), "{text}");
        assert!(text.contains(r#""right":"@pods_pods_a""#), "{text}");
        assert!(text.contains(r#""len":16"#), "{text}");
        let v6 = Masquerade::new("v6", "fd00::/64".parse().unwrap(), None);
        assert!(serde_json::to_string(&v6.declarations())
            .unwrap()
            .contains("ipv6_addr"));
    }
}
