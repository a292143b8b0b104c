//! Cgroups for containers: one [`Cgroups`] interface with a driver per
//! cgroup version, chosen by detecting the host ([`Layout`]). The v2 driver
//! serves pure cgroup v2 hosts; the v1 driver serves v1-only and hybrid
//! hosts (v1 controllers beside an empty cgroup2 mount). Files are written
//! directly: no D-Bus, no systemd.

mod detect;
mod fs;
mod resources;
mod v1;
mod v2;

pub use detect::{Layout, V1_CONTROLLERS};
pub use resources::{blkio_to_io_weight, shares_to_weight, DeviceRule, Resources, Stats};
pub use v1::V1Cgroup;
pub use v2::V2Cgroup;

use std::path::{Path, PathBuf};

/// What went wrong with a cgroup, and on which file.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("no cgroup hierarchy is mounted (neither cgroup2 nor v1 controllers in /proc/self/mountinfo)")]
    NoHierarchy,
    #[error("cgroup: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cgroup: unexpected content in {path}: {content:?}")]
    Parse { path: PathBuf, content: String },
    #[error("cgroup path {0:?} must be relative and must not contain `..`")]
    BadPath(PathBuf),
    #[error("cgroup {path}: the {controller} controller is not available on this host")]
    MissingController {
        path: PathBuf,
        controller: &'static str,
    },
    #[error("cgroup {path}: {what} did not take effect within {waited_ms} ms")]
    Timeout {
        path: PathBuf,
        what: &'static str,
        waited_ms: u64,
    },
}

/// One container's (or pod's) cgroup, whatever the version.
pub trait Cgroups: std::fmt::Debug + Send + Sync {
    /// Create the cgroup (and missing parents); succeeds if it exists.
    fn create(&self) -> Result<(), CgroupError>;
    /// Write the limits in `resources`.
    fn apply(&self, resources: &Resources) -> Result<(), CgroupError>;
    /// Move a process into the cgroup.
    fn add_process(&self, pid: i32) -> Result<(), CgroupError>;
    /// Where the layout allows it, a [`SelfJoin`]: files a single-threaded
    /// process writes to move itself in, much faster than [`add_process`]
    /// (see [`SelfJoin`]). `None`: use `add_process`.
    ///
    /// [`add_process`]: Cgroups::add_process
    fn self_join(&self) -> Result<Option<SelfJoin>, CgroupError> {
        Ok(None)
    }
    /// Where the layout allows it, the cgroup's directory open for a
    /// clone3 with CLONE_INTO_CGROUP (cgroup v2): the child is created
    /// inside, with no move at all. `None`: use [`Cgroups::self_join`] or
    /// [`Cgroups::add_process`].
    fn clone_into(&self) -> Result<Option<std::fs::File>, CgroupError> {
        Ok(None)
    }
    /// The processes in the cgroup and its descendants.
    fn pids(&self) -> Result<Vec<i32>, CgroupError>;
    /// Stop every process (pause); returns once they are frozen.
    fn freeze(&self) -> Result<(), CgroupError>;
    /// Let frozen processes run again (resume).
    fn thaw(&self) -> Result<(), CgroupError>;
    /// Whether the cgroup is frozen: one read of the freezer's state (a
    /// container's status is read often; no look into the hierarchies
    /// without a freezer).
    fn is_frozen(&self) -> bool;
    /// SIGKILL every process in the cgroup, including ones forked meanwhile,
    /// and wait until it is empty.
    fn kill_all(&self) -> Result<(), CgroupError>;
    /// Current usage and counters.
    fn stats(&self) -> Result<Stats, CgroupError>;
    /// Remove the cgroup (it must be empty: call `kill_all` first); succeeds
    /// if it is already gone.
    fn delete(&self) -> Result<(), CgroupError>;
    /// The directories backing this cgroup (one for v2, one per controller
    /// for v1): for the state file and for cleanup.
    fn paths(&self) -> Vec<PathBuf>;
}

/// The v1 `tasks` files of a cgroup, open for writing, for a process to
/// move itself in by writing `0` to each (a single-threaded process: `0`
/// names the calling thread, which is then the whole process).
///
/// Why: moving a process by writing its pid to `cgroup.procs` takes the
/// kernel's global threadgroup lock for writing, which waits for an RCU
/// grace period — about 8 ms on this VM, the largest single cost of
/// starting a container here. A thread moving itself through `tasks`
/// skips that lock (it cannot exit or exec meanwhile), and takes about
/// 0.1 ms for all hierarchies. The files are opened by the runtime and
/// inherited by the init across the clone, so the init needs no path
/// into the host's cgroupfs.
#[derive(Debug)]
pub struct SelfJoin {
    files: Vec<(PathBuf, std::fs::File)>,
}

impl SelfJoin {
    /// Move the calling thread (the whole process, when it has one
    /// thread) into the cgroup.
    pub fn join(&self) -> Result<(), CgroupError> {
        use std::io::Write;
        for (path, file) in &self.files {
            (&*file).write_all(b"0").map_err(|source| CgroupError::Io {
                op: "write 0 to",
                path: path.clone(),
                source,
            })?;
        }
        Ok(())
    }
}

/// A cgroup at `relative` (such as `noderun/ctr-1`) under every hierarchy
/// the host has, with the driver for its layout.
pub fn open(layout: &Layout, relative: &Path) -> Result<Box<dyn Cgroups>, CgroupError> {
    check_relative(relative)?;
    Ok(match layout {
        Layout::Unified { root } => Box::new(V2Cgroup::new(root, relative)),
        Layout::Legacy { controllers, .. } => Box::new(V1Cgroup::new(controllers, relative)),
    })
}

fn check_relative(relative: &Path) -> Result<(), CgroupError> {
    use std::path::Component;
    let ok = relative
        .components()
        .all(|c| matches!(c, Component::Normal(_)))
        && relative.components().next().is_some();
    if ok {
        Ok(())
    } else {
        Err(CgroupError::BadPath(relative.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths_stay_inside_the_hierarchy() {
        for bad in ["", "/abs", "../up", "a/../../b", "./a"] {
            assert!(check_relative(Path::new(bad)).is_err(), "{bad:?} accepted");
        }
        check_relative(Path::new("noderun/pod-1/ctr")).unwrap();
    }
}
