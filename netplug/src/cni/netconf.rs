//! [`NetConf`]: the network configuration a runtime writes on a plugin's
//! stdin, decoded in two steps so each failure gets the spec's code: not
//! JSON at all (6), a `cniVersion` netplug does not speak (1), then the
//! typed fields (7 when one is missing or wrong). Fields of the reference
//! `bridge` plugin are read with the same names and meanings, and the
//! `ipam` section takes `host-local`'s `subnet`/`ranges`, `rangeStart`,
//! `rangeEnd`, `gateway` and `dataDir`, so one configuration drives
//! either plugin. netplug does the IPAM itself, in-process.

use super::error::{code, CniError};
use crate::config::{NetworkConfig, DEFAULT_STATE_ROOT};
use noderun_core::net::Cidr;
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;

/// The CNI versions netplug reads and writes, oldest first.
pub const SUPPORTED_VERSIONS: &[&str] = &["1.0.0", "1.1.0"];
/// The version netplug reports when the request's is unknown.
pub const LATEST_VERSION: &str = "1.1.0";
/// The bridge used when the configuration names none (as the reference).
pub const DEFAULT_BRIDGE: &str = "cni0";

/// A decoded network configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    #[serde(rename = "type")]
    pub plugin_type: String,
    #[serde(default)]
    pub bridge: Option<String>,
    #[serde(default)]
    pub is_gateway: Option<bool>,
    #[serde(default)]
    pub is_default_gateway: Option<bool>,
    #[serde(default)]
    pub ip_masq: bool,
    #[serde(default)]
    pub hairpin_mode: bool,
    #[serde(default)]
    pub promisc_mode: bool,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub ipam: Option<IpamConf>,
    #[serde(default)]
    pub prev_result: Option<serde_json::Value>,
    /// GC: the attachments the runtime still holds.
    #[serde(default, rename = "cni.dev/valid-attachments")]
    pub valid_attachments: Option<Vec<ValidAttachment>>,
}

/// The `ipam` section, host-local's fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpamConf {
    #[serde(default, rename = "type")]
    pub ipam_type: Option<String>,
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub range_start: Option<IpAddr>,
    #[serde(default)]
    pub range_end: Option<IpAddr>,
    #[serde(default)]
    pub gateway: Option<IpAddr>,
    #[serde(default)]
    pub ranges: Option<Vec<Vec<IpamConf>>>,
    #[serde(default)]
    pub data_dir: Option<PathBuf>,
}

/// One entry of `cni.dev/valid-attachments`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// The version of a request whose stdin may not decode: the one it asked
/// for if it is readable, else [`LATEST_VERSION`]. Errors are written in it.
pub fn request_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| {
            v.get("cniVersion")
                .and_then(|v| v.as_str())
                .map(String::from)
        })
        .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| LATEST_VERSION.into())
}

impl NetConf {
    /// Decode stdin.
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        let value: serde_json::Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                code::DECODING_FAILURE,
                "the network configuration on stdin is not JSON",
            )
            .with_details(e.to_string())
        })?;
        let version = value
            .get("cniVersion")
            .and_then(|v| v.as_str())
            .ok_or_else(|| {
                CniError::new(
                    code::INVALID_NETWORK_CONFIG,
                    "the network configuration has no cniVersion string",
                )
            })?;
        if !SUPPORTED_VERSIONS.contains(&version) {
            return Err(CniError::new(
                code::INCOMPATIBLE_VERSION,
                format!("cniVersion {version:?} is not supported"),
            )
            .with_details(format!("supported: {}", SUPPORTED_VERSIONS.join(", "))));
        }
        serde_json::from_value(value).map_err(|e| {
            CniError::new(
                code::INVALID_NETWORK_CONFIG,
                "the network configuration is invalid",
            )
            .with_details(e.to_string())
        })
    }

    /// The bridge network this configuration describes, with state under
    /// `ipam.dataDir` (or [`DEFAULT_STATE_ROOT`]).
    pub fn network_config(&self) -> Result<NetworkConfig, CniError> {
        // isDefaultGateway implies isGateway, as for the reference plugin.
        // Unlike it, netplug's bridge is the gateway unless told otherwise.
        let bridge_is_gateway =
            self.is_gateway != Some(false) || self.is_default_gateway == Some(true);
        let ipam = self.ipam.clone().unwrap_or_default();
        let first = ipam
            .ranges
            .as_ref()
            .and_then(|r| r.first())
            .and_then(|set| set.first());
        let range = first.unwrap_or(&ipam);
        let subnet_text = range.subnet.as_deref().ok_or_else(|| {
            CniError::new(
                code::INVALID_NETWORK_CONFIG,
                format!(
                    "network {}: ipam has no subnet (ipam.subnet or ipam.ranges[0][0].subnet)",
                    self.name
                ),
            )
        })?;
        let subnet: Cidr = subnet_text.parse().map_err(|e| {
            CniError::new(
                code::INVALID_NETWORK_CONFIG,
                format!("network {}: ipam subnet {subnet_text:?}: {e}", self.name),
            )
        })?;
        let bridge = self.bridge.clone().unwrap_or_else(|| DEFAULT_BRIDGE.into());
        let mut config = NetworkConfig::new(&self.name, bridge, subnet);
        config.gateway = range.gateway;
        config.range_start = range.range_start;
        config.range_end = range.range_end;
        config.mtu = self.mtu.unwrap_or(config.mtu);
        config.hairpin = self.hairpin_mode;
        config.promisc = self.promisc_mode;
        config.masquerade = self.ip_masq;
        config.bridge_is_gateway = bridge_is_gateway;
        config.state_root = ipam
            .data_dir
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_ROOT));
        config
            .range()
            .map_err(|e| CniError::new(code::INVALID_NETWORK_CONFIG, e.to_string()))?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"cniVersion":"1.0.0","name":"pods","type":"netplug","bridge":"nr0",
        "isGateway":true,"ipMasq":true,"hairpinMode":true,"mtu":1400,
        "ipam":{"type":"host-local","subnet":"10.22.0.0/24","rangeStart":"10.22.0.10","dataDir":"/tmp/x"}}"#;

    #[test]
    fn is_gateway_false_makes_the_bridge_a_plain_switch() {
        let conf = |extra: &str| {
            let text = format!(
                r#"{{"cniVersion":"1.0.0","name":"n","type":"netplug"{extra},"ipam":{{"subnet":"10.0.0.0/24"}}}}"#
            );
            NetConf::parse(text.as_bytes())
                .unwrap()
                .network_config()
                .unwrap()
        };
        assert!(conf("").bridge_is_gateway);
        assert!(!conf(r#","isGateway":false"#).bridge_is_gateway);
        assert!(conf(r#","isGateway":false,"isDefaultGateway":true"#).bridge_is_gateway);
    }

    #[test]
    fn reads_the_reference_bridge_fields() {
        let conf = NetConf::parse(GOOD.as_bytes()).unwrap();
        let net = conf.network_config().unwrap();
        assert_eq!(net.bridge, "nr0");
        assert_eq!(net.mtu, 1400);
        assert!(net.hairpin && net.masquerade && !net.promisc);
        assert_eq!(net.range_start, Some("10.22.0.10".parse().unwrap()));
        assert_eq!(net.state_root, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn ranges_form_is_read_too() {
        let text = r#"{"cniVersion":"1.1.0","name":"n","type":"netplug",
            "ipam":{"ranges":[[{"subnet":"10.9.0.0/16","gateway":"10.9.0.254"}]]}}"#;
        let net = NetConf::parse(text.as_bytes())
            .unwrap()
            .network_config()
            .unwrap();
        assert_eq!(net.gateway, Some("10.9.0.254".parse().unwrap()));
        assert_eq!(net.bridge, DEFAULT_BRIDGE);
    }

    #[test]
    fn malformed_input_gets_the_spec_codes() {
        let cases: &[(&str, u32)] = &[
            ("", code::DECODING_FAILURE),
            ("{not json", code::DECODING_FAILURE),
            (
                r#"{"name":"n","type":"netplug"}"#,
                code::INVALID_NETWORK_CONFIG,
            ),
            (
                r#"{"cniVersion":"0.2.0","name":"n","type":"netplug"}"#,
                code::INCOMPATIBLE_VERSION,
            ),
            (
                r#"{"cniVersion":"9.9.9","name":"n","type":"netplug"}"#,
                code::INCOMPATIBLE_VERSION,
            ),
            (
                r#"{"cniVersion":"1.0.0","type":"netplug"}"#,
                code::INVALID_NETWORK_CONFIG,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"netplug","mtu":"big"}"#,
                code::INVALID_NETWORK_CONFIG,
            ),
        ];
        for (text, want) in cases {
            let err = NetConf::parse(text.as_bytes()).unwrap_err();
            assert_eq!(err.code, *want, "{text}: {err}");
        }
    }

    #[test]
    fn unusable_networks_are_config_errors() {
        let cases: &[(&str, u32)] = &[
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"netplug"}"#,
                code::INVALID_NETWORK_CONFIG,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"netplug","ipam":{"subnet":"10.0.0.0/33"}}"#,
                code::INVALID_NETWORK_CONFIG,
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"netplug","mtu":9,"ipam":{"subnet":"10.0.0.0/24"}}"#,
                code::INVALID_NETWORK_CONFIG,
            ),
        ];
        for (text, want) in cases {
            let err = NetConf::parse(text.as_bytes())
                .unwrap()
                .network_config()
                .unwrap_err();
            assert_eq!(err.code, *want, "{text}: {err}");
        }
    }

    #[test]
    fn request_version_falls_back_to_latest() {
        assert_eq!(request_version(b"{\"cniVersion\":\"1.0.0\"}"), "1.0.0");
        assert_eq!(
            request_version(b"{\"cniVersion\":\"0.1.0\"}"),
            LATEST_VERSION
        );
        assert_eq!(request_version(b"garbage"), LATEST_VERSION);
    }
}
