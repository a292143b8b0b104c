//! [`HostSnapshot`]: a cheap record of what tests tend to leak — named
//! network namespaces, network links, mount points and noderun cgroups — so
//! the end of an end-to-end test can check that it left nothing new. Only
//! additions are flagged: what vanished was someone else's business.
//!
//! Other tests running at the same time add things too, so compare
//! snapshots in a test that runs alone, or filter [`Leaks`] by name.

use crate::netns::NETNS_RUN_DIR;
use crate::{mountinfo, Error};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const SYS_CLASS_NET: &str = "/sys/class/net";
/// A cgroup directory is "noderun's" when a component of its path below the
/// cgroup mount contains this.
const CGROUP_MARKER: &str = "noderun";
/// Teardown the kernel finishes asynchronously (a veth whose peer's
/// namespace was just freed) gets this long before it counts as a leak.
const SETTLE: Duration = Duration::from_secs(2);

/// What the host had at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSnapshot {
    /// Names under /run/netns.
    pub netns: BTreeSet<String>,
    /// Names under /sys/class/net (the links of the host's namespace).
    pub links: BTreeSet<String>,
    /// Mount points, with how many mounts are stacked on each.
    pub mounts: BTreeMap<PathBuf, usize>,
    /// Cgroup directories with "noderun" in their path below the mount.
    pub cgroups: BTreeSet<PathBuf>,
}

/// What a later snapshot has that an earlier one did not.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leaks {
    pub netns: Vec<String>,
    pub links: Vec<String>,
    /// A point appears once per extra mount stacked on it.
    pub mounts: Vec<PathBuf>,
    pub cgroups: Vec<PathBuf>,
}

impl HostSnapshot {
    /// Record the host now.
    pub fn capture() -> Result<HostSnapshot, Error> {
        let mounts = mountinfo::mount_points()?;
        let mut snapshot = HostSnapshot {
            netns: dir_names(Path::new(NETNS_RUN_DIR))?,
            links: dir_names(Path::new(SYS_CLASS_NET))?,
            ..HostSnapshot::default()
        };
        for m in &mounts {
            *snapshot.mounts.entry(m.mount_point.clone()).or_default() += 1;
        }
        let cgroup_mounts = mounts
            .iter()
            .filter(|m| matches!(m.fstype.as_str(), "cgroup" | "cgroup2"));
        for m in cgroup_mounts {
            collect_marked_cgroups(&m.mount_point, false, &mut snapshot.cgroups)?;
        }
        Ok(snapshot)
    }

    /// What this snapshot has that `before` did not. /run/netns becoming a
    /// mount point is not a leak: `ip netns add` does that once per boot.
    pub fn additions_since(&self, before: &HostSnapshot) -> Leaks {
        let mut mounts = Vec::new();
        for (point, &count) in &self.mounts {
            let mut had = before.mounts.get(point).copied().unwrap_or(0);
            if had == 0 && point == Path::new(NETNS_RUN_DIR) {
                had = 1;
            }
            mounts.extend(std::iter::repeat_n(
                point.clone(),
                count.saturating_sub(had),
            ));
        }
        Leaks {
            netns: self.netns.difference(&before.netns).cloned().collect(),
            links: self.links.difference(&before.links).cloned().collect(),
            mounts,
            cgroups: self.cgroups.difference(&before.cgroups).cloned().collect(),
        }
    }
}

impl Leaks {
    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.netns.is_empty()
            && self.links.is_empty()
            && self.mounts.is_empty()
            && self.cgroups.is_empty()
    }
}

impl fmt::Display for Leaks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for name in &self.netns {
            writeln!(f, "  netns {name}")?;
        }
        for name in &self.links {
            writeln!(f, "  link {name}")?;
        }
        for point in &self.mounts {
            writeln!(f, "  mount {}", point.display())?;
        }
        for dir in &self.cgroups {
            writeln!(f, "  cgroup {}", dir.display())?;
        }
        Ok(())
    }
}

/// Panic, listing them, if the host has namespaces, links, mounts or
/// noderun cgroups it did not have at `before` (after giving asynchronous
/// kernel teardown a moment to finish).
pub fn assert_no_leaks_since(before: &HostSnapshot) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let now = HostSnapshot::capture()
            .unwrap_or_else(|e| panic!("cannot snapshot the host: {}", crate::report::chain(&e)));
        let leaks = now.additions_since(before);
        if leaks.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!("the test left these on the host:\n{leaks}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The names in `dir`; empty when it does not exist.
fn dir_names(dir: &Path) -> Result<BTreeSet<String>, Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    let mut names = BTreeSet::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list", dir, e))?;
        names.insert(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

/// Add to `out` the directories below `dir` whose path (from the walk's
/// start) has a component containing the marker; `marked` says whether
/// `dir` itself already does.
fn collect_marked_cgroups(
    dir: &Path,
    marked: bool,
    out: &mut BTreeSet<PathBuf>,
) -> Result<(), Error> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        // Removed while we walked: not a leak.
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(Error::io("list", dir, e)),
    };
    for entry in entries.flatten() {
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let child = entry.path();
        let child_marked = marked || entry.file_name().to_string_lossy().contains(CGROUP_MARKER);
        if child_marked {
            out.insert(child.clone());
        }
        collect_marked_cgroups(&child, child_marked, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(netns: &[&str], links: &[&str], mounts: &[(&str, usize)]) -> HostSnapshot {
        HostSnapshot {
            netns: netns.iter().map(|s| s.to_string()).collect(),
            links: links.iter().map(|s| s.to_string()).collect(),
            mounts: mounts.iter().map(|(p, n)| (PathBuf::from(p), *n)).collect(),
            cgroups: BTreeSet::new(),
        }
    }

    #[test]
    fn only_additions_are_flagged() {
        let before = snapshot(&["a", "gone"], &["lo", "eth0"], &[("/", 1), ("/x", 1)]);
        let mut after = snapshot(&["a", "new"], &["lo", "veth1"], &[("/", 1), ("/x", 3)]);
        after
            .cgroups
            .insert("/sys/fs/cgroup/memory/noderun-1".into());
        let leaks = after.additions_since(&before);
        assert_eq!(leaks.netns, vec!["new"]);
        assert_eq!(leaks.links, vec!["veth1"]);
        assert_eq!(leaks.mounts, vec![PathBuf::from("/x"), PathBuf::from("/x")]);
        assert_eq!(
            leaks.cgroups,
            vec![PathBuf::from("/sys/fs/cgroup/memory/noderun-1")]
        );
        let text = leaks.to_string();
        assert!(
            text.contains("netns new") && text.contains("link veth1"),
            "{text}"
        );
        assert!(before.additions_since(&before).is_empty());
    }

    #[test]
    fn netns_run_dir_becoming_a_mount_point_is_not_a_leak() {
        let before = snapshot(&[], &[], &[("/", 1)]);
        let once = snapshot(&[], &[], &[("/", 1), (NETNS_RUN_DIR, 1)]);
        assert!(once.additions_since(&before).is_empty());
        let twice = snapshot(&[], &[], &[("/", 1), (NETNS_RUN_DIR, 2)]);
        assert_eq!(
            twice.additions_since(&before).mounts,
            vec![PathBuf::from(NETNS_RUN_DIR)]
        );
    }

    #[test]
    fn capture_sees_loopback_and_root() {
        let now = HostSnapshot::capture().unwrap();
        assert!(now.links.contains("lo"));
        assert!(now.mounts.contains_key(Path::new("/")));
    }
}
