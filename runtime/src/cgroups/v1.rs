//! The cgroup v1 driver: one directory per controller hierarchy (co-mounted
//! controllers such as `cpu,cpuacct` share one). Used on v1-only and hybrid
//! hosts.

use super::fs::{self, retry};
use super::{CgroupError, Cgroups, Resources, Stats};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug)]
pub struct V1Cgroup {
    /// Controller name → this cgroup's directory in its hierarchy.
    dirs: BTreeMap<String, PathBuf>,
}

impl V1Cgroup {
    pub fn new(controllers: &BTreeMap<String, PathBuf>, relative: &Path) -> V1Cgroup {
        V1Cgroup {
            dirs: controllers
                .iter()
                .map(|(name, mount)| (name.clone(), mount.join(relative)))
                .collect(),
        }
    }

    fn dir(&self, controller: &'static str) -> Result<&Path, CgroupError> {
        self.dirs
            .get(controller)
            .map(PathBuf::as_path)
            .ok_or_else(|| CgroupError::MissingController {
                path: self.paths().first().cloned().unwrap_or_default(),
                controller,
            })
    }

    /// A new v1 cpuset cgroup starts with no CPUs and no memory nodes, and
    /// refuses tasks until both are set: inherit them from the parent,
    /// filling empty ancestors on the way down.
    fn init_cpuset(&self) -> Result<(), CgroupError> {
        let Some(dir) = self.dirs.get("cpuset") else {
            return Ok(());
        };
        for file in ["cpuset.cpus", "cpuset.mems"] {
            inherit_from_parent(dir, file)?;
        }
        Ok(())
    }

    fn apply_memory(&self, r: &Resources) -> Result<(), CgroupError> {
        if r.memory_limit.is_none() && r.memory_swap.is_none() && r.memory_reservation.is_none() {
            return Ok(());
        }
        let dir = self.dir("memory")?;
        if let Some(v) = r.memory_reservation {
            fs::write(&dir.join("memory.soft_limit_in_bytes"), &v.to_string())?;
        }
        let limit = dir.join("memory.limit_in_bytes");
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        let swap = r.memory_swap.filter(|_| memsw.exists());
        match (r.memory_limit, swap) {
            (Some(l), Some(s)) => {
                // memsw must stay >= limit at every step: raise it first
                // when growing, lower it last when shrinking.
                if fs::write(&limit, &l.to_string()).is_err() {
                    fs::write(&memsw, &s.to_string())?;
                    fs::write(&limit, &l.to_string())?;
                } else {
                    fs::write(&memsw, &s.to_string())?;
                }
            }
            (Some(l), None) => fs::write(&limit, &l.to_string())?,
            (None, Some(s)) => fs::write(&memsw, &s.to_string())?,
            (None, None) => {}
        }
        Ok(())
    }

    fn apply_cpu(&self, r: &Resources) -> Result<(), CgroupError> {
        if r.cpu_shares.is_some() || r.cpu_quota.is_some() || r.cpu_period.is_some() {
            let dir = self.dir("cpu")?;
            if let Some(s) = r.cpu_shares {
                fs::write(&dir.join("cpu.shares"), &s.to_string())?;
            }
            if let Some(p) = r.cpu_period {
                fs::write(&dir.join("cpu.cfs_period_us"), &p.to_string())?;
            }
            if let Some(q) = r.cpu_quota {
                fs::write(&dir.join("cpu.cfs_quota_us"), &q.to_string())?;
            }
        }
        if r.cpuset_cpus.is_some() || r.cpuset_mems.is_some() {
            let dir = self.dir("cpuset")?;
            if let Some(c) = &r.cpuset_cpus {
                fs::write(&dir.join("cpuset.cpus"), c)?;
            }
            if let Some(m) = &r.cpuset_mems {
                fs::write(&dir.join("cpuset.mems"), m)?;
            }
        }
        Ok(())
    }

    fn apply_others(&self, r: &Resources) -> Result<(), CgroupError> {
        if let Some(p) = r.pids_limit {
            let value = if p > 0 { p.to_string() } else { "max".into() };
            fs::write(&self.dir("pids")?.join("pids.max"), &value)?;
        }
        if let Some(w) = r.blkio_weight {
            let dir = self.dir("blkio")?;
            let file = ["blkio.weight", "blkio.bfq.weight"]
                .iter()
                .map(|f| dir.join(f))
                .find(|p| p.exists())
                .ok_or(CgroupError::MissingController {
                    path: dir.into(),
                    controller: "blkio weight",
                })?;
            fs::write(&file, &w.to_string())?;
        }
        if !r.devices.is_empty() {
            let dir = self.dir("devices")?;
            for rule in &r.devices {
                let file = if rule.allow {
                    "devices.allow"
                } else {
                    "devices.deny"
                };
                fs::write(&dir.join(file), &rule.v1_line())?;
            }
        }
        Ok(())
    }

    fn set_freezer(&self, state: &'static str) -> Result<(), CgroupError> {
        let dir = self.dir("freezer")?;
        let file = dir.join("freezer.state");
        fs::write(&file, state)?;
        // FREEZING is the transition; wait for the state we asked for.
        retry(Duration::from_secs(5), || {
            Ok(fs::read(&file)?.trim() == state)
        })
        .map_err(|_| CgroupError::Timeout {
            path: file.clone(),
            what: "freezer state change",
            waited_ms: 5000,
        })
    }

    /// Distinct directories (co-mounted controllers share one).
    fn unique_dirs(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = self.dirs.values().cloned().collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

fn inherit_from_parent(dir: &Path, file: &str) -> Result<(), CgroupError> {
    let own = dir.join(file);
    if !fs::read(&own)?.trim().is_empty() {
        return Ok(());
    }
    let parent = dir
        .parent()
        .ok_or_else(|| CgroupError::BadPath(dir.into()))?;
    inherit_from_parent(parent, file)?;
    let value = fs::read(&parent.join(file))?;
    fs::write(&own, value.trim())
}

impl Cgroups for V1Cgroup {
    fn create(&self) -> Result<(), CgroupError> {
        for dir in self.unique_dirs() {
            fs::create_dir(&dir)?;
        }
        self.init_cpuset()
    }

    fn apply(&self, r: &Resources) -> Result<(), CgroupError> {
        self.apply_memory(r)?;
        self.apply_cpu(r)?;
        self.apply_others(r)
    }

    fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for dir in self.unique_dirs() {
            fs::write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn self_join(&self) -> Result<Option<super::SelfJoin>, CgroupError> {
        let files = self
            .unique_dirs()
            .into_iter()
            .map(|dir| {
                let path = dir.join("tasks");
                fs::open_write(&path).map(|file| (path, file))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(super::SelfJoin { files }))
    }

    fn pids(&self) -> Result<Vec<i32>, CgroupError> {
        // Every process is in every hierarchy; one is enough.
        let dir = self.dirs.get("pids").or_else(|| self.dirs.values().next());
        match dir {
            Some(d) => fs::pids_in_tree(d),
            None => Ok(Vec::new()),
        }
    }

    fn freeze(&self) -> Result<(), CgroupError> {
        self.set_freezer("FROZEN")
    }

    fn thaw(&self) -> Result<(), CgroupError> {
        self.set_freezer("THAWED")
    }

    fn is_frozen(&self) -> bool {
        self.dirs.get("freezer").is_some_and(|dir| {
            std::fs::read_to_string(dir.join("freezer.state")).is_ok_and(|s| s.trim() == "FROZEN")
        })
    }

    fn kill_all(&self) -> Result<(), CgroupError> {
        if self.pids()?.is_empty() {
            return Ok(());
        }
        // Freeze first so nothing forks between reading the list and the
        // kill; SIGKILL is delivered to frozen tasks once they thaw.
        let frozen = self.dirs.contains_key("freezer") && self.freeze().is_ok();
        for pid in self.pids()? {
            fs::kill(pid);
        }
        if frozen {
            self.thaw()?;
        }
        retry(Duration::from_secs(5), || Ok(self.pids()?.is_empty())).map_err(|_| {
            CgroupError::Timeout {
                path: self.paths().first().cloned().unwrap_or_default(),
                what: "kill of every process",
                waited_ms: 5000,
            }
        })
    }

    fn stats(&self) -> Result<Stats, CgroupError> {
        let mut s = Stats::default();
        if let Some(d) = self.dirs.get("memory") {
            s.memory_usage = fs::read_u64(&d.join("memory.usage_in_bytes"))?;
            s.memory_inactive_file =
                fs::keyed(&d.join("memory.stat"), "total_inactive_file")?.unwrap_or(0);
            s.memory_max_usage = fs::read_u64(&d.join("memory.max_usage_in_bytes"))?;
            let limit = fs::read_u64(&d.join("memory.limit_in_bytes"))?;
            // v1 reports "unlimited" as a huge page-aligned number.
            s.memory_limit = (limit < i64::MAX as u64 / 2).then_some(limit);
            s.oom_kills = fs::keyed(&d.join("memory.oom_control"), "oom_kill")?.unwrap_or(0);
        }
        if let Some(d) = self.dirs.get("cpuacct") {
            s.cpu_usage_ns = fs::read_u64(&d.join("cpuacct.usage"))?;
        }
        if let Some(d) = self.dirs.get("cpu") {
            s.cpu_throttled_periods = fs::keyed(&d.join("cpu.stat"), "nr_throttled")?.unwrap_or(0);
        }
        if let Some(d) = self.dirs.get("pids") {
            s.pids_current = fs::read_u64(&d.join("pids.current"))?;
            s.pids_limit = fs::read_limit(&d.join("pids.max"))?;
        }
        Ok(s)
    }

    fn delete(&self) -> Result<(), CgroupError> {
        for dir in self.unique_dirs() {
            fs::remove_tree(&dir)?;
        }
        Ok(())
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.unique_dirs()
    }
}
