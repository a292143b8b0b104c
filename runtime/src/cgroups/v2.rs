//! The cgroup v2 driver: one directory in the unified hierarchy. Controllers
//! are enabled in every ancestor's `cgroup.subtree_control` on create. Device
//! rules need an eBPF program on v2 and are not applied by this driver.

use super::fs::{self, retry};
use super::{blkio_to_io_weight, shares_to_weight, CgroupError, Cgroups, Resources, Stats};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Controllers delegated to container cgroups when the host offers them.
const WANTED: [&str; 6] = ["cpu", "cpuset", "memory", "pids", "io", "hugetlb"];
const DEFAULT_CFS_PERIOD: u64 = 100_000;

#[derive(Debug)]
pub struct V2Cgroup {
    root: PathBuf,
    dir: PathBuf,
}

impl V2Cgroup {
    pub fn new(root: &Path, relative: &Path) -> V2Cgroup {
        V2Cgroup {
            root: root.into(),
            dir: root.join(relative),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Enable the wanted controllers from the root down to our parent, so
    /// that our directory gets their control files.
    fn enable_controllers(&self) -> Result<(), CgroupError> {
        let mut ancestors: Vec<&Path> = self
            .dir
            .ancestors()
            .skip(1)
            .take_while(|p| p.starts_with(&self.root))
            .collect();
        ancestors.reverse();
        for dir in ancestors {
            let available = fs::read(&dir.join("cgroup.controllers"))?;
            let enabled = fs::read(&dir.join("cgroup.subtree_control"))?;
            let missing: Vec<String> = WANTED
                .iter()
                .filter(|c| available.split_whitespace().any(|a| a == **c))
                .filter(|c| !enabled.split_whitespace().any(|e| e == **c))
                .map(|c| format!("+{c}"))
                .collect();
            if !missing.is_empty() {
                fs::write(&dir.join("cgroup.subtree_control"), &missing.join(" "))?;
            }
        }
        Ok(())
    }

    fn apply_memory(&self, r: &Resources) -> Result<(), CgroupError> {
        if let Some(l) = r.memory_limit {
            fs::write(&self.file("memory.max"), &limit_text(l))?;
        }
        if let Some(s) = r.memory_swap {
            // OCI's swap is memory+swap; v2's swap.max is the swap alone.
            let swap_only = match (s, r.memory_limit) {
                (s, _) if s < 0 => "max".to_string(),
                (s, Some(l)) if l > 0 => (s - l).max(0).to_string(),
                (s, _) => s.to_string(),
            };
            let file = self.file("memory.swap.max");
            if file.exists() {
                fs::write(&file, &swap_only)?;
            }
        }
        if let Some(v) = r.memory_reservation {
            fs::write(&self.file("memory.low"), &limit_text(v))?;
        }
        Ok(())
    }

    fn apply_cpu(&self, r: &Resources) -> Result<(), CgroupError> {
        if let Some(s) = r.cpu_shares {
            fs::write(&self.file("cpu.weight"), &shares_to_weight(s).to_string())?;
        }
        if r.cpu_quota.is_some() || r.cpu_period.is_some() {
            let current = fs::read(&self.file("cpu.max"))?;
            let mut parts = current.split_whitespace();
            let cur_quota = parts.next().unwrap_or("max").to_string();
            let cur_period = parts
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or(DEFAULT_CFS_PERIOD);
            let quota =
                r.cpu_quota.map_or(
                    cur_quota,
                    |q| if q > 0 { q.to_string() } else { "max".into() },
                );
            let period = r.cpu_period.unwrap_or(cur_period);
            fs::write(&self.file("cpu.max"), &format!("{quota} {period}"))?;
        }
        if let Some(c) = &r.cpuset_cpus {
            fs::write(&self.file("cpuset.cpus"), c)?;
        }
        if let Some(m) = &r.cpuset_mems {
            fs::write(&self.file("cpuset.mems"), m)?;
        }
        Ok(())
    }

    fn apply_others(&self, r: &Resources) -> Result<(), CgroupError> {
        if let Some(p) = r.pids_limit {
            let value = if p > 0 { p.to_string() } else { "max".into() };
            fs::write(&self.file("pids.max"), &value)?;
        }
        if let Some(w) = r.blkio_weight {
            let io = self.file("io.weight");
            let bfq = self.file("io.bfq.weight");
            if io.exists() {
                fs::write(&io, &format!("default {}", blkio_to_io_weight(w)))?;
            } else if bfq.exists() {
                fs::write(&bfq, &w.to_string())?;
            } else {
                return Err(CgroupError::MissingController {
                    path: self.dir.clone(),
                    controller: "io weight",
                });
            }
        }
        Ok(())
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let want = if frozen { "1" } else { "0" };
        fs::write(&self.file("cgroup.freeze"), want)?;
        let events = self.file("cgroup.events");
        retry(Duration::from_secs(5), || {
            Ok(fs::keyed(&events, "frozen")?.map(|v| v.to_string()) == Some(want.into()))
        })
        .map_err(|_| CgroupError::Timeout {
            path: events.clone(),
            what: "freeze state change",
            waited_ms: 5000,
        })
    }
}

fn limit_text(v: i64) -> String {
    if v < 0 {
        "max".into()
    } else {
        v.to_string()
    }
}

impl Cgroups for V2Cgroup {
    fn create(&self) -> Result<(), CgroupError> {
        fs::create_dir(&self.dir)?;
        self.enable_controllers()
    }

    fn apply(&self, r: &Resources) -> Result<(), CgroupError> {
        self.apply_memory(r)?;
        self.apply_cpu(r)?;
        self.apply_others(r)
    }

    fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        fs::write(&self.file("cgroup.procs"), &pid.to_string())
    }

    fn clone_into(&self) -> Result<Option<std::fs::File>, CgroupError> {
        fs::open_dir(&self.dir).map(Some)
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        fs::pids_in_tree(&self.dir)
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn is_frozen(&self) -> bool {
        std::fs::read_to_string(self.file("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        if self.pids()?.is_empty() {
            return Ok(());
        }
        let kill_file = self.file("cgroup.kill");
        if kill_file.exists() {
            // The kernel kills the whole subtree atomically (Linux 5.14+).
            fs::write(&kill_file, "1")?;
        } else {
            self.set_frozen(true)?;
            for pid in self.pids()? {
                fs::kill(pid);
            }
            self.set_frozen(false)?;
        }
        retry(Duration::from_secs(5), || Ok(self.pids()?.is_empty())).map_err(|_| {
            CgroupError::Timeout {
                path: self.dir.clone(),
                what: "kill of every process",
                waited_ms: 5000,
            }
        })
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        let has = |f: &str| self.file(f).exists();
        if has("memory.current") {
            s.memory_usage = fs::read_u64(&self.file("memory.current"))?;
            s.memory_inactive_file =
                fs::keyed(&self.file("memory.stat"), "inactive_file")?.unwrap_or(0);
            if has("memory.peak") {
                s.memory_max_usage = fs::read_u64(&self.file("memory.peak"))?;
            }
            s.memory_limit = fs::read_limit(&self.file("memory.max"))?;
            s.oom_kills = fs::keyed(&self.file("memory.events"), "oom_kill")?.unwrap_or(0);
        }
        if has("cpu.stat") {
            let stat = self.file("cpu.stat");
            s.cpu_usage_ns = fs::keyed(&stat, "usage_usec")?.unwrap_or(0) * 1000;
            s.cpu_throttled_periods = fs::keyed(&stat, "nr_throttled")?.unwrap_or(0);
        }
        if has("pids.current") {
            s.pids_current = fs::read_u64(&self.file("pids.current"))?;
            s.pids_limit = fs::read_limit(&self.file("pids.max"))?;
        }
        Ok(s)
    }

    fn delete(&self) -> Result<(), CgroupError> {
        fs::remove_tree(&self.dir)
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }
}
