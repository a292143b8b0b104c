//! [`CniResult`]: the success result of ADD (and the `prevResult` a chain
//! hands the next plugin): interfaces, IP configurations, routes, DNS.
//! netplug appends its own entries to a chained `prevResult`, keeping
//! what earlier plugins reported and re-numbering its `interface`
//! indices past theirs.

use super::error::{code, CniError};
use crate::config::format_mac;
use crate::pod::Attachment;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CniResult {
    pub cni_version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interfaces: Vec<Interface>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<IpConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<RouteEntry>,
    #[serde(default)]
    pub dns: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// `ip/prefix`.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteEntry {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

impl CniResult {
    /// Decode a chained `prevResult`.
    pub fn from_prev(value: &serde_json::Value) -> Result<CniResult, CniError> {
        serde_json::from_value(value.clone()).map_err(|e| {
            CniError::new(code::DECODING_FAILURE, "prevResult is not a CNI result")
                .with_details(e.to_string())
        })
    }

    /// `prev` (or an empty result) with `att` appended: the bridge, the
    /// host veth, the pod interface, its address and default route.
    pub fn with_attachment(
        prev: Option<CniResult>,
        version: &str,
        bridge: &str,
        att: &Attachment,
        sandbox: &Path,
    ) -> CniResult {
        let mut result = prev.unwrap_or_default();
        result.cni_version = version.into();
        if result.dns.is_null() {
            result.dns = serde_json::json!({});
        }
        result.interfaces.push(Interface {
            name: bridge.into(),
            mac: None,
            sandbox: None,
        });
        result.interfaces.push(Interface {
            name: att.host_veth.clone(),
            mac: None,
            sandbox: None,
        });
        result.interfaces.push(Interface {
            name: att.ifname.clone(),
            mac: Some(format_mac(&att.mac)),
            sandbox: Some(sandbox.display().to_string()),
        });
        result.ips.push(IpConfig {
            address: format!("{}/{}", att.ip, att.subnet.prefix()),
            gateway: att.gateway,
            interface: Some(result.interfaces.len() - 1),
        });
        if let Some(gateway) = att.gateway {
            let default = if att.ip.is_ipv4() {
                "0.0.0.0/0"
            } else {
                "::/0"
            };
            result.routes.push(RouteEntry {
                dst: default.into(),
                gw: Some(gateway),
            });
        }
        result
    }

    /// Whether the result lists `att`'s address on its interface.
    pub fn has_attachment(&self, att: &Attachment) -> bool {
        let address = format!("{}/{}", att.ip, att.subnet.prefix());
        self.ips.iter().any(|ip| {
            ip.address == address
                && ip
                    .interface
                    .and_then(|i| self.interfaces.get(i))
                    .is_some_and(|i| i.name == att.ifname)
        })
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a result of strings and numbers serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attachment() -> Attachment {
        Attachment {
            container_id: "c1".into(),
            ifname: "eth0".into(),
            ip: "10.1.0.5".parse().unwrap(),
            subnet: "10.1.0.0/24".parse().unwrap(),
            gateway: Some("10.1.0.1".parse().unwrap()),
            mac: [0x0a, 0x58, 10, 1, 0, 5],
            host_veth: "nr0011223344".into(),
        }
    }

    #[test]
    fn add_result_has_the_spec_shape() {
        let r = CniResult::with_attachment(
            None,
            "1.0.0",
            "nr0",
            &attachment(),
            Path::new("/run/netns/p"),
        );
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["cniVersion"], "1.0.0");
        assert_eq!(v["interfaces"][2]["sandbox"], "/run/netns/p");
        assert_eq!(v["interfaces"][2]["mac"], "0a:58:0a:01:00:05");
        assert_eq!(v["ips"][0]["address"], "10.1.0.5/24");
        assert_eq!(v["ips"][0]["interface"], 2);
        assert_eq!(v["routes"][0]["dst"], "0.0.0.0/0");
        assert!(r.has_attachment(&attachment()));
    }

    #[test]
    fn chained_prev_result_is_kept_and_indices_move_past_it() {
        let prev = serde_json::json!({"cniVersion":"1.0.0",
            "interfaces":[{"name":"lo","sandbox":"/x"}],
            "ips":[{"address":"192.168.0.2/24","interface":0}]});
        let prev = CniResult::from_prev(&prev).unwrap();
        let r =
            CniResult::with_attachment(Some(prev), "1.0.0", "nr0", &attachment(), Path::new("/x"));
        assert_eq!(r.interfaces[0].name, "lo");
        assert_eq!(r.ips.len(), 2);
        assert_eq!(r.ips[1].interface, Some(3));
        let bad = CniResult::from_prev(&serde_json::json!({"ips": "nope"})).unwrap_err();
        assert_eq!(bad.code, code::DECODING_FAILURE);
    }
}
