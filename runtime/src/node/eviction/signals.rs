//! Reading the eviction signals from the host.
//!
//! - `memory.available`: `MemAvailable` of /proc/meminfo against
//!   `MemTotal`. The kubelet computes capacity minus the root cgroup's
//!   working set instead; on this project's hosts the root memory cgroup
//!   differs by layout (v1 `memory.usage_in_bytes`, and no
//!   `memory.current` at the root of a v2 hierarchy at all), while
//!   MemAvailable is the kernel's own estimate of what can be allocated
//!   without swapping (free memory plus reclaimable page cache and slab),
//!   the same on every layout. It counts active page cache as available,
//!   which the working set does not, so it reports pressure a little later
//!   than the kubelet would, closer to when the OOM killer would act.
//! - `nodefs.*` and `imagefs.*`: statvfs of the state dir (images and
//!   snapshots live there too, so both read the same filesystem).
//! - `pid.available`: /proc/sys/kernel/pid_max minus the tasks (threads)
//!   that exist, the last field of /proc/loadavg.

use super::thresholds::{Observation, Observations, Signal};
use crate::sys::fsstat::{fs_usage, FsStatError};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SignalError {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: no {what} in {content:?}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        content: String,
    },
    #[error(transparent)]
    Fs(#[from] FsStatError),
}

fn read(path: &str) -> Result<String, SignalError> {
    std::fs::read_to_string(path).map_err(|source| SignalError::Read {
        path: path.into(),
        source,
    })
}

fn parse_error(path: &str, what: &'static str, content: &str) -> SignalError {
    SignalError::Parse {
        path: path.into(),
        what,
        content: content.chars().take(200).collect(),
    }
}

/// A `Key: N kB` line of /proc/meminfo, in bytes.
fn meminfo_bytes(meminfo: &str, key: &str) -> Option<i64> {
    let line = meminfo.lines().find(|l| l.split(':').next() == Some(key))?;
    let kib: i64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// memory.available from /proc/meminfo.
pub fn memory(meminfo: &str) -> Option<Observation> {
    Some(Observation {
        available: meminfo_bytes(meminfo, "MemAvailable")?,
        capacity: meminfo_bytes(meminfo, "MemTotal")?,
    })
}

/// The number of tasks, the total of the `running/total` field of
/// /proc/loadavg.
fn tasks(loadavg: &str) -> Option<i64> {
    let field = loadavg.split_whitespace().nth(3)?;
    field.split_once('/')?.1.parse().ok()
}

/// pid.available from pid_max and /proc/loadavg.
pub fn pids(pid_max: &str, loadavg: &str) -> Option<Observation> {
    let max: i64 = pid_max.trim().parse().ok()?;
    Some(Observation {
        available: max - tasks(loadavg)?,
        capacity: max,
    })
}

/// Read every signal: memory and pids from procfs, the filesystems from
/// statvfs of `state_dir`.
pub fn observe(state_dir: &Path) -> Result<Observations, SignalError> {
    let mut out = Observations::new();
    const MEMINFO: &str = "/proc/meminfo";
    let meminfo = read(MEMINFO)?;
    let mem = memory(&meminfo)
        .ok_or_else(|| parse_error(MEMINFO, "MemAvailable and MemTotal", &meminfo))?;
    out.insert(Signal::MemoryAvailable, mem);
    const PID_MAX: &str = "/proc/sys/kernel/pid_max";
    const LOADAVG: &str = "/proc/loadavg";
    let (pid_max, loadavg) = (read(PID_MAX)?, read(LOADAVG)?);
    let pid = pids(&pid_max, &loadavg)
        .ok_or_else(|| parse_error(LOADAVG, "task count (with pid_max)", &loadavg))?;
    out.insert(Signal::PidAvailable, pid);
    let fs = fs_usage(state_dir)?;
    let space = Observation {
        available: i64::try_from(fs.bytes_available).unwrap_or(i64::MAX),
        capacity: i64::try_from(fs.bytes_total).unwrap_or(i64::MAX),
    };
    let inodes = Observation {
        available: i64::try_from(fs.inodes_free).unwrap_or(i64::MAX),
        capacity: i64::try_from(fs.inodes_total).unwrap_or(i64::MAX),
    };
    out.insert(Signal::NodeFsAvailable, space);
    out.insert(Signal::ImageFsAvailable, space);
    // A filesystem without inode accounting (btrfs reports 0) has no
    // inode signal.
    if inodes.capacity > 0 {
        out.insert(Signal::NodeFsInodesFree, inodes);
        out.insert(Signal::ImageFsInodesFree, inodes);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_procfs() {
        let meminfo = "MemTotal:        8136476 kB\nMemFree:  1 kB\nMemAvailable:    4000000 kB\n";
        assert_eq!(
            memory(meminfo),
            Some(Observation {
                available: 4_000_000 * 1024,
                capacity: 8_136_476 * 1024
            })
        );
        assert_eq!(memory("MemTotal: 1 kB\n"), None, "no MemAvailable");
        assert_eq!(
            pids("4194304\n", "0.52 0.58 0.59 3/1184 12345\n"),
            Some(Observation {
                available: 4_194_304 - 1184,
                capacity: 4_194_304
            })
        );
        assert_eq!(pids("x", "0.52 0.58 0.59 3/1184 12345"), None);
        assert_eq!(pids("100", "0.52 0.58"), None);
    }

    #[test]
    fn observes_this_host() {
        let seen = observe(Path::new("/")).unwrap();
        for signal in [
            Signal::MemoryAvailable,
            Signal::PidAvailable,
            Signal::NodeFsAvailable,
            Signal::ImageFsAvailable,
        ] {
            let o = seen[&signal];
            assert!(
                o.capacity > 0 && o.available <= o.capacity,
                "{signal}: {o:?}"
            );
        }
        let e = observe(Path::new("/no/such/state")).unwrap_err();
        assert!(e.to_string().contains("/no/such/state"), "{e}");
    }
}
