//! [`NodeConfig`]: what the daemon is told, and the flag syntaxes it
//! reads: `k=v,...` labels, `k=v:Effect,...` taints, the control plane's
//! address, `cpu=100m,memory=1Gi` reservations, Go-style durations
//! (`5m0s`, `10s`, `500ms`).

use super::eviction::EvictionConfig;
use super::NodeError;
use noderun_client::Endpoint;
use noderun_core::{resource, Labels, Quantity, Taint, TaintEffect};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The daemon's settings (the pod layer's are in [`crate::agent::AgentConfig`]).
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub endpoint: Endpoint,
    /// The bearer token of identity `node:<node_name>`.
    pub token: String,
    pub node_name: String,
    /// The range pod IPs come from (reported as the Node's podCIDR).
    pub pod_cidr: String,
    pub labels: Labels,
    pub taints: Vec<Taint>,
    /// The `pods` capacity.
    pub max_pods: i64,
    /// The node's address (hostIP of its pods).
    pub node_ip: IpAddr,
    /// How often the Lease is renewed.
    pub lease_renew: Duration,
    /// The Lease's declared duration (the control plane's grace period).
    pub lease_duration: Duration,
    /// How often the Node's status (Ready, capacity) is re-sent.
    pub status_every: Duration,
    /// How often a pod worker looks at its containers.
    pub pod_poll: Duration,
    /// How many pod starts (sandbox, network, containers) run at once;
    /// the others wait their turn ([`super::turns`]). 0: no limit.
    pub parallel_starts: usize,
    /// What is held back from pods for the system and for noderun
    /// (`--system-reserved` plus `--kube-reserved`).
    pub reserved: Reserved,
    /// Node pressure: thresholds, how often they are checked.
    pub eviction: EvictionConfig,
}

/// Resources held back from allocatable.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reserved {
    pub cpu_millis: i64,
    pub memory_bytes: i64,
}

impl Reserved {
    /// Both reservations together.
    pub fn plus(self, other: Reserved) -> Reserved {
        Reserved {
            cpu_millis: self.cpu_millis.saturating_add(other.cpu_millis),
            memory_bytes: self.memory_bytes.saturating_add(other.memory_bytes),
        }
    }
}

impl NodeConfig {
    /// The settings with the usual intervals (lease renewed every 10 s and
    /// declared for 40 s, node status every 60 s, containers looked at
    /// every second, as the kubelet relists its containers).
    pub fn new(
        endpoint: Endpoint,
        token: String,
        node_name: String,
        pod_cidr: String,
        node_ip: IpAddr,
    ) -> NodeConfig {
        NodeConfig {
            endpoint,
            token,
            node_name,
            pod_cidr,
            labels: Labels::new(),
            taints: Vec::new(),
            max_pods: 110,
            node_ip,
            lease_renew: Duration::from_secs(10),
            lease_duration: Duration::from_secs(40),
            status_every: Duration::from_secs(60),
            pod_poll: Duration::from_secs(1),
            parallel_starts: super::turns::default_turns(),
            reserved: Reserved::default(),
            eviction: EvictionConfig::default(),
        }
    }
}

fn flag_error(value: &str, reason: &str) -> NodeError {
    NodeError::Flag {
        value: value.into(),
        reason: reason.into(),
    }
}

/// kubelet's containerLogMaxSize (a quantity: `10Mi`) and
/// containerLogMaxFiles, checked.
pub fn parse_log_rotation(
    max_size: &str,
    max_files: u32,
) -> Result<crate::agent::logs::LogRotation, NodeError> {
    let size = noderun_core::Quantity::parse(max_size)
        .map_err(|e| flag_error(max_size, &format!("not a size such as 10Mi: {e}")))?;
    let bytes = u64::try_from(size.value())
        .map_err(|_| flag_error(max_size, "a log size cannot be negative"))?;
    crate::agent::logs::LogRotation::new(bytes, max_files)
        .map_err(|e| flag_error(&format!("{max_size}, {max_files} files"), &e.to_string()))
}

/// `/path/to.sock` or `unix:/path` (a Unix socket), or `HOST:PORT` (TLS,
/// verified with `ca_file`).
pub fn parse_endpoint(text: &str, ca_file: Option<PathBuf>) -> Result<Endpoint, NodeError> {
    if let Some(path) = text.strip_prefix("unix:") {
        return Ok(Endpoint::Unix(path.into()));
    }
    if text.starts_with('/') {
        return Ok(Endpoint::Unix(text.into()));
    }
    match ca_file {
        Some(ca_file) if text.contains(':') => Ok(Endpoint::Tls {
            addr: text.into(),
            ca_file,
        }),
        Some(_) => Err(flag_error(text, "write HOST:PORT, or a socket path")),
        None => Err(flag_error(
            text,
            "a TCP control plane needs --ca FILE (the cluster CA, <data-dir>/pki/ca.crt)",
        )),
    }
}

/// `k=v,k2=v2` (a bare `k` means an empty value).
pub fn parse_labels(text: &str) -> Result<Labels, NodeError> {
    let mut labels = Labels::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (k, v) = item.split_once('=').unwrap_or((item, ""));
        if k.is_empty() {
            return Err(flag_error(item, "a label needs a key: write key=value"));
        }
        labels.insert(k.into(), v.into());
    }
    Ok(labels)
}

/// `k=v:Effect,k2:Effect` with Effect one of NoSchedule, PreferNoSchedule,
/// NoExecute.
pub fn parse_taints(text: &str) -> Result<Vec<Taint>, NodeError> {
    let mut taints = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (kv, effect) = item
            .rsplit_once(':')
            .ok_or_else(|| flag_error(item, "write key=value:Effect"))?;
        let effect = match effect {
            "NoSchedule" => TaintEffect::NoSchedule,
            "PreferNoSchedule" => TaintEffect::PreferNoSchedule,
            "NoExecute" => TaintEffect::NoExecute,
            _ => {
                return Err(flag_error(
                    item,
                    "the effect is one of NoSchedule, PreferNoSchedule, NoExecute",
                ))
            }
        };
        let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
        if key.is_empty() {
            return Err(flag_error(
                item,
                "a taint needs a key: write key=value:Effect",
            ));
        }
        taints.push(Taint {
            key: key.into(),
            value: value.into(),
            effect,
            time_added: None,
        });
    }
    Ok(taints)
}

/// `cpu=100m,memory=1Gi` (kubelet's `--system-reserved` syntax; cpu and
/// memory are what noderun reserves).
pub fn parse_reserved(text: &str) -> Result<Reserved, NodeError> {
    let mut reserved = Reserved::default();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, amount) = item
            .split_once('=')
            .ok_or_else(|| flag_error(item, "write cpu=100m,memory=1Gi"))?;
        let q = Quantity::parse(amount.trim()).map_err(|e| flag_error(item, &e.to_string()))?;
        if q.is_negative() {
            return Err(flag_error(item, "a reservation must not be negative"));
        }
        match name.trim() {
            resource::CPU => reserved.cpu_millis = q.millis(),
            resource::MEMORY => reserved.memory_bytes = q.value(),
            _ => return Err(flag_error(item, "noderun reserves cpu and memory only")),
        }
    }
    Ok(reserved)
}

/// A duration in Go's syntax, as the kubelet's flags take it: `5m0s`,
/// `10s`, `1h`, `500ms`, `1.5s` (a bare number is refused: say the unit).
pub fn parse_duration(text: &str) -> Result<Duration, NodeError> {
    let bad = || flag_error(text, "write a duration such as 5m0s, 10s or 500ms");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(bad()),
        };
        total += number * seconds;
        rest = &rest[unit_len..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert_eq!(
            parse_endpoint("/run/cp.sock", None).unwrap(),
            Endpoint::Unix("/run/cp.sock".into())
        );
        assert_eq!(
            parse_endpoint("unix:/x", None).unwrap(),
            Endpoint::Unix("/x".into())
        );
        assert_eq!(
            parse_endpoint("10.0.0.1:6443", Some("/ca".into())).unwrap(),
            Endpoint::Tls {
                addr: "10.0.0.1:6443".into(),
                ca_file: "/ca".into()
            }
        );
        let e = parse_endpoint("10.0.0.1:6443", None).unwrap_err();
        assert!(e.to_string().contains("--ca"), "{e}");
        assert!(parse_endpoint("nohost", Some("/ca".into())).is_err());
    }

    #[test]
    fn log_rotation() {
        let r = parse_log_rotation("10Mi", 5).unwrap();
        assert_eq!((r.max_size, r.max_files), (10 << 20, 5));
        assert_eq!(parse_log_rotation("2k", 2).unwrap().max_size, 2000);
        for (size, files, says) in [
            ("ten", 5, "not a size"),
            ("-1Mi", 5, "negative"),
            ("100", 5, "at least 1024"),
            ("1Mi", 1, "at least 2"),
        ] {
            let e = parse_log_rotation(size, files).unwrap_err().to_string();
            assert!(e.contains(size) && e.contains(says), "{size} {files}: {e}");
        }
    }

    #[test]
    fn labels() {
        let l = parse_labels("zone=a, disk=ssd,gpu").unwrap();
        assert_eq!(l.get("zone").map(String::as_str), Some("a"));
        assert_eq!(l.get("disk").map(String::as_str), Some("ssd"));
        assert_eq!(l.get("gpu").map(String::as_str), Some(""));
        assert!(parse_labels("").unwrap().is_empty());
        assert!(parse_labels("=v").is_err());
    }

    #[test]
    fn taints() {
        let t = parse_taints("dedicated=infra:NoSchedule,spot:PreferNoSchedule").unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(
            (t[0].key.as_str(), t[0].value.as_str(), t[0].effect),
            ("dedicated", "infra", TaintEffect::NoSchedule)
        );
        assert_eq!(
            (t[1].key.as_str(), t[1].value.as_str(), t[1].effect),
            ("spot", "", TaintEffect::PreferNoSchedule)
        );
        assert!(parse_taints("a=b").is_err());
        assert!(parse_taints("a=b:Never").is_err());
        assert!(parse_taints("=b:NoExecute").is_err());
    }

    #[test]
    fn reservations() {
        assert_eq!(
            parse_reserved("cpu=100m, memory=1Gi").unwrap(),
            Reserved {
                cpu_millis: 100,
                memory_bytes: 1 << 30
            }
        );
        assert_eq!(parse_reserved("").unwrap(), Reserved::default());
        let e = parse_reserved("gpu=1").unwrap_err().to_string();
        assert!(e.contains("cpu and memory only"), "{e}");
        assert!(parse_reserved("memory").is_err());
        assert!(parse_reserved("memory=lots").is_err());
        assert!(parse_reserved("memory=-1Mi").is_err());
        let both = parse_reserved("cpu=1")
            .unwrap()
            .plus(parse_reserved("cpu=500m,memory=1Mi").unwrap());
        assert_eq!((both.cpu_millis, both.memory_bytes), (1500, 1 << 20));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m0s").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "10", "5x", "m", "1..2s", "-1s"] {
            let e = parse_duration(bad).unwrap_err().to_string();
            assert!(e.contains("5m0s"), "{bad}: {e}");
        }
    }
}
