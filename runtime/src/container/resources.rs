//! The spec's `linux.resources` translated into the cgroup drivers' terms.

use crate::cgroups::{DeviceRule, Resources};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType, LinuxResources};

/// What every container may do with devices, whatever its spec's device
/// rules deny (as runc allows it): make device nodes (mknod; opening one
/// is still checked), and use the devices the runtime itself puts in
/// /dev — null, zero, full, random, urandom, tty, console, ptmx and the
/// pseudo-terminals. Without these a spec that denies all devices (as
/// `nrc spec`'s does) leaves a container unable to write to /dev/null.
const DEFAULT_DEVICES: &[(char, Option<i64>, Option<i64>, &str)] = &[
    ('c', None, None, "m"),
    ('b', None, None, "m"),
    ('c', Some(1), Some(3), "rwm"),
    ('c', Some(1), Some(5), "rwm"),
    ('c', Some(1), Some(7), "rwm"),
    ('c', Some(1), Some(8), "rwm"),
    ('c', Some(1), Some(9), "rwm"),
    ('c', Some(5), Some(0), "rwm"),
    ('c', Some(5), Some(1), "rwm"),
    ('c', Some(5), Some(2), "rwm"),
    ('c', Some(136), None, "rwm"),
];

/// The cgroup settings of a container: its spec's `linux.resources`, and
/// when those restrict devices, the [`DEFAULT_DEVICES`] and the spec's own
/// `linux.devices` allowed after them.
pub fn for_container(r: &LinuxResources, devices: &[LinuxDevice]) -> Resources {
    let mut out = from_spec(r);
    if out.devices.is_empty() {
        return out;
    }
    let rule = |kind, major, minor, access: &str| DeviceRule {
        allow: true,
        kind,
        major,
        minor,
        access: access.into(),
    };
    for &(kind, major, minor, access) in DEFAULT_DEVICES {
        out.devices.push(rule(kind, major, minor, access));
    }
    for d in devices {
        let kind = if d.typ() == LinuxDeviceType::B {
            'b'
        } else {
            'c'
        };
        out.devices
            .push(rule(kind, Some(d.major()), Some(d.minor()), "rwm"));
    }
    out
}

/// The spec's `linux.resources` alone (what `nrc update` applies).
pub fn from_spec(r: &LinuxResources) -> Resources {
    let mut out = Resources::default();
    if let Some(m) = r.memory() {
        out.memory_limit = m.limit();
        out.memory_swap = m.swap();
        out.memory_reservation = m.reservation();
    }
    if let Some(c) = r.cpu() {
        out.cpu_shares = c.shares();
        out.cpu_quota = c.quota();
        out.cpu_period = c.period();
        out.cpuset_cpus = c.cpus().clone();
        out.cpuset_mems = c.mems().clone();
    }
    if let Some(p) = r.pids() {
        out.pids_limit = Some(p.limit());
    }
    if let Some(b) = r.block_io() {
        out.blkio_weight = b.weight();
    }
    for d in r.devices().iter().flatten() {
        let kind = match d.typ() {
            Some(LinuxDeviceType::C) | Some(LinuxDeviceType::U) => 'c',
            Some(LinuxDeviceType::B) => 'b',
            _ => 'a',
        };
        out.devices.push(DeviceRule {
            allow: d.allow(),
            kind,
            major: d.major(),
            minor: d.minor(),
            access: d.access().clone().unwrap_or_else(|| "rwm".into()),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_deny_all_still_allows_the_default_devices() {
        let r: LinuxResources =
            serde_json::from_str(r#"{"devices":[{"allow":false,"access":"rwm"}]}"#).unwrap();
        let extra: Vec<LinuxDevice> =
            serde_json::from_str(r#"[{"path":"/dev/fuse","type":"c","major":10,"minor":229}]"#)
                .unwrap();
        let lines: Vec<(bool, String)> = for_container(&r, &extra)
            .devices
            .iter()
            .map(|d| (d.allow, d.v1_line()))
            .collect();
        assert_eq!(lines[0], (false, "a *:* rwm".to_string()));
        for want in [
            "c 1:3 rwm",
            "c 1:9 rwm",
            "c 136:* rwm",
            "c *:* m",
            "c 10:229 rwm",
        ] {
            assert!(
                lines.iter().skip(1).any(|(allow, l)| *allow && l == want),
                "{want} not allowed after the deny: {lines:?}"
            );
        }
        // No device rules in the spec: no restriction, nothing added.
        let open: LinuxResources = serde_json::from_str(r#"{"pids":{"limit":5}}"#).unwrap();
        assert!(for_container(&open, &extra).devices.is_empty());
    }

    #[test]
    fn spec_resources_map_to_cgroup_settings() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"memory":{"limit":67108864,"swap":67108864},"cpu":{"shares":512,"quota":50000,"period":100000,"cpus":"0"},
                "pids":{"limit":32},"devices":[{"allow":false,"access":"rwm"},{"allow":true,"type":"c","major":1,"minor":3,"access":"rwm"}]}"#,
        )
        .unwrap();
        let out = from_spec(&r);
        assert_eq!(out.memory_limit, Some(64 << 20));
        assert_eq!(out.cpu_quota, Some(50_000));
        assert_eq!(out.cpuset_cpus.as_deref(), Some("0"));
        assert_eq!(out.pids_limit, Some(32));
        assert_eq!(out.devices[0].v1_line(), "a *:* rwm");
        assert!(!out.devices[0].allow);
        assert_eq!(out.devices[1].v1_line(), "c 1:3 rwm");
    }
}
