//! The limits a container's cgroup enforces, independent of cgroup version.
//! The OCI spec's `linux.resources` is translated into this; each driver
//! writes it in its own files.

/// Limits to apply; `None` leaves a setting as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    /// Bytes of memory (v2 memory.max, v1 memory.limit_in_bytes).
    pub memory_limit: Option<i64>,
    /// Memory plus swap, in bytes, the OCI way (v1 memsw); v2 writes the swap
    /// part (`memory_swap - memory_limit`) to memory.swap.max. -1: unlimited.
    pub memory_swap: Option<i64>,
    /// Soft limit / protection (v2 memory.low, v1 soft_limit_in_bytes).
    pub memory_reservation: Option<i64>,
    /// Relative CPU weight in v1 shares (2..=262144); v2 converts to cpu.weight.
    pub cpu_shares: Option<u64>,
    /// CFS quota in microseconds per period; -1: unlimited.
    pub cpu_quota: Option<i64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// CPUs the container may run on (`0-1,3`).
    pub cpuset_cpus: Option<String>,
    /// Memory nodes (`0`).
    pub cpuset_mems: Option<String>,
    /// Process limit; -1 or 0: unlimited.
    pub pids_limit: Option<i64>,
    /// Block I/O weight, 10..=1000 (v1 blkio.weight; v2 io.weight scaled).
    pub blkio_weight: Option<u16>,
    /// Device access rules (v1 devices controller).
    pub devices: Vec<DeviceRule>,
}

/// One device cgroup rule: allow or deny access to a device class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRule {
    pub allow: bool,
    /// 'a' (all), 'c' (char) or 'b' (block).
    pub kind: char,
    /// None matches any major/minor.
    pub major: Option<i64>,
    pub minor: Option<i64>,
    /// Some of "rwm".
    pub access: String,
}

impl DeviceRule {
    /// The v1 devices.allow / devices.deny line: `c 1:3 rwm`, `a *:* rwm`.
    pub fn v1_line(&self) -> String {
        let num = |n: Option<i64>| n.map_or_else(|| "*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            num(self.major),
            num(self.minor),
            self.access
        )
    }
}

/// v1 cpu.shares to v2 cpu.weight: the linear map of [2, 262144] onto
/// [1, 10000] that runc and crun use, so a spec means the same on both.
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9_999) / 262_142
}

/// v1 blkio.weight (10..=1000) to v2 io.weight (1..=10000).
pub fn blkio_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + ((w - 10) * 9_999) / 990
}

/// The usage a cgroup reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub memory_usage: u64,
    /// Page cache not recently used (the first to be reclaimed).
    pub memory_inactive_file: u64,
    pub memory_max_usage: u64,
    pub memory_limit: Option<u64>,
    /// How many times the OOM killer killed a process in this cgroup.
    pub oom_kills: u64,
    pub cpu_usage_ns: u64,
    pub cpu_throttled_periods: u64,
    pub pids_current: u64,
    pub pids_limit: Option<u64>,
}

impl Stats {
    /// The working set, as the kubelet and cAdvisor count it: usage less
    /// the inactive page cache.
    pub fn memory_working_set(&self) -> u64 {
        self.memory_usage.saturating_sub(self.memory_inactive_file)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weight_conversions_cover_the_ranges() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(1024), 39);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(0), 1);
        assert_eq!(blkio_to_io_weight(10), 1);
        assert_eq!(blkio_to_io_weight(1000), 10_000);
    }

    #[test]
    fn device_lines() {
        let r = DeviceRule {
            allow: true,
            kind: 'c',
            major: Some(1),
            minor: Some(3),
            access: "rwm".into(),
        };
        assert_eq!(r.v1_line(), "c 1:3 rwm");
        let all = DeviceRule {
            allow: false,
            kind: 'a',
            major: None,
            minor: None,
            access: "rwm".into(),
        };
        assert_eq!(all.v1_line(), "a *:* rwm");
    }
}
