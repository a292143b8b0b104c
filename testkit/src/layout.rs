//! [`CgroupLayout`]: which cgroup hierarchies the host has, read from
//! /proc/self/mountinfo, so a test can pick its expectations and the
//! directories it creates. The runtime has its own detection; this one only
//! serves tests and must not be used to check the runtime's answer against
//! itself.

use crate::mountinfo::{self, MountEntry};
use crate::Error;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The v1 controllers a cgroup v1 mount may carry.
const V1_CONTROLLERS: [&str; 14] = [
    "blkio",
    "cpu",
    "cpuacct",
    "cpuset",
    "devices",
    "freezer",
    "hugetlb",
    "memory",
    "misc",
    "net_cls",
    "net_prio",
    "perf_event",
    "pids",
    "rdma",
];

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CgroupLayout {
    /// Only cgroup v2 (normally at /sys/fs/cgroup).
    Unified { root: PathBuf },
    /// v1 controllers beside a cgroup2 mount (normally
    /// /sys/fs/cgroup/unified) that holds no controllers.
    Hybrid {
        controllers: BTreeMap<String, PathBuf>,
        unified: PathBuf,
    },
    /// v1 controllers only.
    Legacy {
        controllers: BTreeMap<String, PathBuf>,
    },
}

impl CgroupLayout {
    /// Detect the running host's layout.
    pub fn detect() -> Result<CgroupLayout, Error> {
        CgroupLayout::from_mounts(&mountinfo::mount_points()?)
    }

    /// Detect the layout from parsed mountinfo entries.
    pub fn from_mounts(mounts: &[MountEntry]) -> Result<CgroupLayout, Error> {
        let mut controllers = BTreeMap::new();
        let mut unified = None;
        for m in mounts {
            match m.fstype.as_str() {
                "cgroup2" => {
                    unified.get_or_insert_with(|| m.mount_point.clone());
                }
                "cgroup" => {
                    let names = m.super_options.split(',');
                    for name in names.filter(|o| V1_CONTROLLERS.contains(o)) {
                        controllers
                            .entry(name.to_string())
                            .or_insert_with(|| m.mount_point.clone());
                    }
                }
                _ => {}
            }
        }
        match (controllers.is_empty(), unified) {
            (true, Some(root)) => Ok(CgroupLayout::Unified { root }),
            (false, Some(unified)) => Ok(CgroupLayout::Hybrid {
                controllers,
                unified,
            }),
            (false, None) => Ok(CgroupLayout::Legacy { controllers }),
            (true, None) => Err(Error::NoCgroups {
                path: PathBuf::from("/proc/self/mountinfo"),
            }),
        }
    }

    /// True when cgroup v2 carries the controllers (a pure v2 host).
    pub fn is_unified(&self) -> bool {
        matches!(self, CgroupLayout::Unified { .. })
    }

    /// The v1 controllers and their mount points; empty on a unified host.
    pub fn v1_controllers(&self) -> BTreeMap<String, PathBuf> {
        match self {
            CgroupLayout::Unified { .. } => BTreeMap::new(),
            CgroupLayout::Hybrid { controllers, .. } | CgroupLayout::Legacy { controllers } => {
                controllers.clone()
            }
        }
    }

    /// The cgroup2 mount point, if the host has one.
    pub fn unified_root(&self) -> Option<&Path> {
        match self {
            CgroupLayout::Unified { root } => Some(root),
            CgroupLayout::Hybrid { unified, .. } => Some(unified),
            CgroupLayout::Legacy { .. } => None,
        }
    }

    /// The directories a cgroup at `relative` (such as "noderun-test-1-2")
    /// has: one on a unified host, one per distinct mount of the given v1
    /// `controllers` otherwise (co-mounted controllers share one).
    /// Controllers the host lacks are left out.
    pub fn cgroup_dirs(&self, relative: &str, controllers: &[&str]) -> Vec<PathBuf> {
        if let CgroupLayout::Unified { root } = self {
            return vec![root.join(relative)];
        }
        let mounts = self.v1_controllers();
        let mut dirs: Vec<PathBuf> = controllers
            .iter()
            .filter_map(|c| mounts.get(*c))
            .map(|mount| mount.join(relative))
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mountinfo::parse_all;

    const ROOT: &str = "23 1 0:21 / /sys rw - sysfs sysfs rw\n";
    const V2: &str = "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
    const V2_ROOT: &str = "41 23 0:38 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
    const V1: &str = "\
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
";

    fn layout(text: &str) -> Result<CgroupLayout, Error> {
        CgroupLayout::from_mounts(&parse_all(text))
    }

    fn v1_map() -> BTreeMap<String, PathBuf> {
        [
            ("cpu", "/sys/fs/cgroup/cpu,cpuacct"),
            ("cpuacct", "/sys/fs/cgroup/cpu,cpuacct"),
            ("memory", "/sys/fs/cgroup/memory"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), PathBuf::from(v)))
        .collect()
    }

    #[test]
    fn detects_each_layout() {
        let unified = CgroupLayout::Unified {
            root: "/sys/fs/cgroup".into(),
        };
        assert_eq!(layout(&format!("{ROOT}{V2_ROOT}")).unwrap(), unified);
        let hybrid = CgroupLayout::Hybrid {
            controllers: v1_map(),
            unified: "/sys/fs/cgroup/unified".into(),
        };
        assert_eq!(layout(&format!("{ROOT}{V1}{V2}")).unwrap(), hybrid);
        let legacy = CgroupLayout::Legacy {
            controllers: v1_map(),
        };
        assert_eq!(layout(&format!("{ROOT}{V1}")).unwrap(), legacy);
        assert!(matches!(layout(ROOT), Err(Error::NoCgroups { .. })));
    }

    #[test]
    fn cgroup_dirs_dedups_comounted_controllers() {
        let hybrid = layout(&format!("{V1}{V2}")).unwrap();
        let dirs = hybrid.cgroup_dirs("t", &["cpu", "cpuacct", "memory", "pids"]);
        let want: Vec<PathBuf> = vec![
            "/sys/fs/cgroup/cpu,cpuacct/t".into(),
            "/sys/fs/cgroup/memory/t".into(),
        ];
        assert_eq!(dirs, want);
        let unified = layout(V2_ROOT).unwrap();
        assert_eq!(
            unified.cgroup_dirs("t", &["memory"]),
            vec![PathBuf::from("/sys/fs/cgroup/t")]
        );
    }

    #[test]
    fn detects_this_host() {
        let here = CgroupLayout::detect().unwrap();
        assert!(here.is_unified() || !here.v1_controllers().is_empty());
    }
}
