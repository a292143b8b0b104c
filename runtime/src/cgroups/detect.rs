//! Which cgroup hierarchies the host has, read from /proc/self/mountinfo:
//! pure cgroup v2 (the norm today), hybrid (v1 controllers beside an empty
//! cgroup2 mount, as on this project's development hosts), or v1 only.

use super::CgroupError;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The layout [`Layout::host`] read, once per process.
static HOST: OnceLock<Layout> = OnceLock::new();

/// The v1 controllers the runtime drives.
pub const V1_CONTROLLERS: [&str; 8] = [
    "cpu", "cpuacct", "cpuset", "memory", "pids", "freezer", "devices", "blkio",
];

/// The host's cgroup layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// cgroup2 mounted at `root`, with controllers: use the v2 driver.
    Unified { root: PathBuf },
    /// v1 controllers (name → mount point); a cgroup2 mount may exist beside
    /// them (`unified`) but holds no controllers: use the v1 driver.
    Legacy {
        controllers: BTreeMap<String, PathBuf>,
        unified: Option<PathBuf>,
    },
}

impl Layout {
    /// The host's layout, read from mountinfo the first time and
    /// remembered: the hierarchies a host mounts do not change under a
    /// running process, while mountinfo grows with every pod (a rootfs and
    /// three pinned namespaces each) and reading it costs the kernel a
    /// walk over every mount: the node's runner, which loads a container
    /// for every create, start and state call, spent most of its time
    /// there with a few hundred pods. A failed read is not remembered.
    pub fn host() -> Result<&'static Layout, CgroupError> {
        if let Some(layout) = HOST.get() {
            return Ok(layout);
        }
        let layout = Layout::detect()?;
        Ok(HOST.get_or_init(|| layout))
    }

    /// Detect the layout of the running host (read now; see
    /// [`Layout::host`]).
    pub fn detect() -> Result<Layout, CgroupError> {
        let path = Path::new("/proc/self/mountinfo");
        let text = std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
            op: "read",
            path: path.into(),
            source,
        })?;
        Layout::from_mountinfo(&text)
    }

    /// Detect the layout from the text of a mountinfo file.
    pub fn from_mountinfo(text: &str) -> Result<Layout, CgroupError> {
        let mut controllers = BTreeMap::new();
        let mut unified = None;
        for line in text.lines() {
            let Some(m) = MountLine::parse(line) else {
                continue;
            };
            match m.fstype {
                "cgroup2" if unified.is_none() => unified = Some(PathBuf::from(m.mount_point)),
                "cgroup" => {
                    for opt in m.super_options.split(',') {
                        if V1_CONTROLLERS.contains(&opt) {
                            controllers
                                .entry(opt.to_string())
                                .or_insert_with(|| PathBuf::from(m.mount_point));
                        }
                    }
                }
                _ => {}
            }
        }
        if controllers.is_empty() {
            return match unified {
                Some(root) => Ok(Layout::Unified { root }),
                None => Err(CgroupError::NoHierarchy),
            };
        }
        Ok(Layout::Legacy {
            controllers,
            unified,
        })
    }

    pub fn is_unified(&self) -> bool {
        matches!(self, Layout::Unified { .. })
    }
}

/// The fields of one mountinfo line that matter here.
struct MountLine<'a> {
    mount_point: &'a str,
    fstype: &'a str,
    super_options: &'a str,
}

impl<'a> MountLine<'a> {
    /// `36 35 98:0 / /mnt rw,noatime master:1 - ext3 /dev/root rw,errors=continue`
    fn parse(line: &'a str) -> Option<MountLine<'a>> {
        let (left, right) = line.split_once(" - ")?;
        let mount_point = left.split(' ').nth(4)?;
        let mut right = right.split(' ');
        let fstype = right.next()?;
        let _source = right.next()?;
        let super_options = right.next().unwrap_or("");
        Some(MountLine {
            mount_point,
            fstype,
            super_options,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:24 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
27 26 0:25 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
28 26 0:26 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
31 26 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
32 26 0:30 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,memory
33 26 0:31 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,pids
";

    #[test]
    fn hybrid_hosts_use_v1_controllers() {
        let Layout::Legacy {
            controllers,
            unified,
        } = Layout::from_mountinfo(HYBRID).unwrap()
        else {
            panic!("hybrid detected as unified");
        };
        assert_eq!(
            unified.as_deref(),
            Some(Path::new("/sys/fs/cgroup/unified"))
        );
        assert_eq!(controllers["cpu"], Path::new("/sys/fs/cgroup/cpu,cpuacct"));
        assert_eq!(
            controllers["cpuacct"],
            Path::new("/sys/fs/cgroup/cpu,cpuacct")
        );
        assert_eq!(controllers["memory"], Path::new("/sys/fs/cgroup/memory"));
        assert!(!controllers.contains_key("systemd") && !controllers.contains_key("name=systemd"));
    }

    #[test]
    fn pure_v2_and_nothing() {
        let v2 = "30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot\n";
        assert_eq!(
            Layout::from_mountinfo(v2).unwrap(),
            Layout::Unified {
                root: "/sys/fs/cgroup".into()
            }
        );
        assert!(matches!(
            Layout::from_mountinfo("garbage\n"),
            Err(CgroupError::NoHierarchy)
        ));
    }

    #[test]
    fn this_host_has_a_layout() {
        Layout::detect().unwrap();
        assert_eq!(Layout::host().unwrap(), &Layout::detect().unwrap());
        assert!(std::ptr::eq(
            Layout::host().unwrap(),
            Layout::host().unwrap()
        ));
    }
}
