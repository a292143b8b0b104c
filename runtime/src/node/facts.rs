//! The host's facts, read from procfs and /etc: CPUs, memory, system
//! info, and the address other hosts reach it on.

use super::NodeError;
use noderun_core::NodeSystemInfo;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};

/// What the node has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub cpus: i64,
    pub memory_bytes: i64,
}

fn read(path: &str) -> Result<String, NodeError> {
    std::fs::read_to_string(path).map_err(|source| NodeError::Read {
        path: path.into(),
        source,
    })
}

/// CPUs (`processor` lines of /proc/cpuinfo) and memory (MemTotal of
/// /proc/meminfo).
pub fn capacity() -> Result<Capacity, NodeError> {
    let cpuinfo = read("/proc/cpuinfo")?;
    let meminfo = read("/proc/meminfo")?;
    Ok(Capacity {
        cpus: count_cpus(&cpuinfo).max(1),
        memory_bytes: mem_total(&meminfo).unwrap_or(0),
    })
}

fn count_cpus(cpuinfo: &str) -> i64 {
    cpuinfo
        .lines()
        .filter(|l| l.split(':').next().is_some_and(|k| k.trim() == "processor"))
        .count() as i64
}

/// MemTotal in bytes.
fn mem_total(meminfo: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.lines().next().unwrap_or_default().trim().to_string())
        .unwrap_or_default()
}

/// PRETTY_NAME of /etc/os-release.
fn os_image() -> String {
    let text = std::fs::read_to_string("/etc/os-release").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// The system info the Node reports.
pub fn system_info() -> NodeSystemInfo {
    let version = env!("CARGO_PKG_VERSION");
    NodeSystemInfo {
        machine_id: first_line("/etc/machine-id"),
        boot_id: first_line("/proc/sys/kernel/random/boot_id"),
        kernel_version: first_line("/proc/sys/kernel/osrelease"),
        os_image: os_image(),
        operating_system: "linux".into(),
        architecture: match std::env::consts::ARCH {
            "x86_64" => "amd64".into(),
            "aarch64" => "arm64".into(),
            other => other.into(),
        },
        container_runtime_version: format!("noderun://{version}"),
        agent_version: version.into(),
    }
}

/// The host's name (/proc/sys/kernel/hostname).
pub fn hostname() -> String {
    let name = first_line("/proc/sys/kernel/hostname");
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// The source address of the default route: a UDP socket "connected" to
/// a documentation address (no packet is sent; the kernel only picks the
/// route). Loopback when there is no default route.
pub fn default_address() -> IpAddr {
    let probe = || -> std::io::Result<IpAddr> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.connect((Ipv4Addr::new(192, 0, 2, 1), 9))?;
        Ok(socket.local_addr()?.ip())
    };
    probe().unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpus_and_memory() {
        let cpuinfo = "processor\t: 0\nmodel name\t: x\n\nprocessor\t: 1\nmodel name\t: x\n";
        assert_eq!(count_cpus(cpuinfo), 2);
        let meminfo = "MemTotal:        8136476 kB\nMemFree:  1 kB\n";
        assert_eq!(mem_total(meminfo), Some(8_136_476 * 1024));
        assert_eq!(mem_total("MemFree: 1 kB"), None);
        let here = capacity().unwrap();
        assert!(here.cpus >= 1 && here.memory_bytes > 0, "{here:?}");
    }
}
