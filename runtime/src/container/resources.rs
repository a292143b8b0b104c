//! The spec's `linux.resources` translated into the cgroup drivers' terms.

use crate::cgroups::{DeviceRule, Resources};
use oci_spec::runtime::{LinuxDeviceType, LinuxResources};

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
