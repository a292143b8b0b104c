//! Where the CPU went while pods started: the machine's busy time against
//! all its cores (is the start CPU-bound, or does it wait?), and the part
//! of it spent in the node daemon, its container runners, the containers
//! (their inits' setup before exec, from the pods' cgroups), the control
//! plane and this bench; the rest is the kernel's threads and other
//! processes (the machine may be shared). In clock ticks (USER_HZ,
//! 1/100 s), so a value is good to about 10 ms.

use noderun_tests::cluster::{cpu_ticks, Cluster};

/// CPU time counters at one moment, in clock ticks.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTicks {
    /// Every core's time (idle included), summed.
    pub machine: u64,
    /// Every core's time not idle (nor waiting for I/O).
    pub busy: u64,
    pub noderun: u64,
    pub runners: u64,
    pub controlplane: u64,
    pub bench: u64,
    /// The node's pods' cgroups (the containers' own setup before their
    /// exec, and what they run).
    pub containers: u64,
}

impl CpuTicks {
    pub fn now(cluster: &Cluster) -> CpuTicks {
        let (machine, busy) = machine_ticks().unwrap_or_default();
        let pid_ticks = |pid: Option<i32>| pid.and_then(cpu_ticks).unwrap_or_default();
        CpuTicks {
            machine,
            busy,
            noderun: pid_ticks(cluster.noderun_pid()),
            runners: cluster
                .noderun_runners()
                .into_iter()
                .filter_map(cpu_ticks)
                .sum(),
            controlplane: pid_ticks(cluster.controlplane_pid()),
            bench: pid_ticks(Some(std::process::id() as i32)),
            containers: cgroup_ticks(&cluster.cgroup_parent).unwrap_or_default(),
        }
    }

    /// What was spent from `before` to `self`.
    pub fn since(&self, before: &CpuTicks) -> CpuTicks {
        CpuTicks {
            machine: self.machine.saturating_sub(before.machine),
            busy: self.busy.saturating_sub(before.busy),
            noderun: self.noderun.saturating_sub(before.noderun),
            runners: self.runners.saturating_sub(before.runners),
            controlplane: self.controlplane.saturating_sub(before.controlplane),
            bench: self.bench.saturating_sub(before.bench),
            containers: self.containers.saturating_sub(before.containers),
        }
    }

    /// One line: busy share of the machine, then each part in ms of CPU.
    pub fn describe(&self) -> String {
        let ms = |ticks: u64| ticks * 10;
        let known = self.noderun + self.runners + self.controlplane + self.bench + self.containers;
        let busy_pct = if self.machine == 0 {
            0.0
        } else {
            100.0 * self.busy as f64 / self.machine as f64
        };
        format!(
            "busy {busy_pct:>5.1}% of all cores ({} ms CPU): noderun {}, runners {}, containers {}, controlplane {}, bench {}, rest (kernel threads, other processes) {}",
            ms(self.busy),
            ms(self.noderun),
            ms(self.runners),
            ms(self.containers),
            ms(self.controlplane),
            ms(self.bench),
            ms(self.busy.saturating_sub(known)),
        )
    }
}

/// The `cpu` line of /proc/stat: all time and busy time (everything but
/// idle and iowait).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are
    // inside user and nice already).
    let all: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4)?;
    Some((all, all - idle))
}

/// The CPU time of cgroup `parent` and everything below it, in clock
/// ticks: cgroup v1's cpuacct (nanoseconds) or v2's cpu.stat (µs).
fn cgroup_ticks(parent: &str) -> Option<u64> {
    for dir in ["cpuacct", "cpu,cpuacct"] {
        let path = format!("/sys/fs/cgroup/{dir}/{parent}/cpuacct.usage");
        if let Ok(text) = std::fs::read_to_string(path) {
            return Some(text.trim().parse::<u64>().ok()? / 10_000_000);
        }
    }
    let stat = std::fs::read_to_string(format!("/sys/fs/cgroup/{parent}/cpu.stat")).ok()?;
    let usec = stat.lines().find_map(|l| l.strip_prefix("usage_usec "))?;
    Some(usec.trim().parse::<u64>().ok()? / 10_000)
}
