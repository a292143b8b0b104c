//! The on-disk record of a container under the runtime's root directory
//! (`<root>/<id>/state.json`), written atomically, and the status derived
//! from it and from the live process.

use super::ContainerError;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What the runtime remembers about a container between commands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    pub id: String,
    pub oci_version: String,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    /// The init process as seen from the runtime's pid namespace.
    pub pid: i32,
    /// The init's start time (field 22 of /proc/<pid>/stat), so a recycled
    /// pid is never mistaken for the container.
    pub pid_start_time: u64,
    /// RFC 3339.
    pub created: String,
    /// The cgroup, relative to each hierarchy's root.
    pub cgroup_path: PathBuf,
    #[serde(default)]
    pub annotations: HashMap<String, String>,
    /// Hooks to run after start and after delete (from config.json).
    #[serde(default)]
    pub hooks: Option<oci_spec::runtime::Hooks>,
    /// The container's process, the template for `exec`.
    #[serde(default)]
    pub process: Option<oci_spec::runtime::Process>,
    /// The spec's `linux` section (seccomp and capabilities for `exec`).
    #[serde(default)]
    pub linux: Option<oci_spec::runtime::Linux>,
}

/// The runtime spec's container states, plus `Paused`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Init waits for `start` on the exec fifo.
    Created,
    Running,
    /// Frozen by `pause`.
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

pub const STATE_FILE: &str = "state.json";
pub const EXEC_FIFO: &str = "exec.fifo";

/// A container ID: runc's rule (letters, digits, `_`, `-`, `.`; not
/// starting with `.` or `-`), which also keeps it a safe path component.
pub fn validate_id(id: &str) -> Result<(), ContainerError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        && !id.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(ContainerError::InvalidId(id.into()))
    }
}

impl Record {
    pub fn dir(root: &Path, id: &str) -> PathBuf {
        root.join(id)
    }

    pub fn load(root: &Path, id: &str) -> Result<Record, ContainerError> {
        validate_id(id)?;
        let path = Record::dir(root, id).join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ContainerError::NotFound(id.into()))
            }
            Err(source) => {
                return Err(ContainerError::Io {
                    op: "read",
                    path,
                    source,
                })
            }
        };
        serde_json::from_str(&text).map_err(|e| ContainerError::CorruptState {
            path,
            message: e.to_string(),
        })
    }

    /// Write the record: to a temporary file, then rename over the old one,
    /// so a reader never sees half a record.
    pub fn save(&self, root: &Path) -> Result<(), ContainerError> {
        let dir = Record::dir(root, &self.id);
        let tmp = dir.join(".state.json.tmp");
        let path = dir.join(STATE_FILE);
        let text = serde_json::to_vec_pretty(self).expect("records always serialize");
        std::fs::write(&tmp, text).map_err(|source| ContainerError::Io {
            op: "write",
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| ContainerError::Io {
            op: "rename",
            path,
            source,
        })
    }

    /// IDs of every container under `root`.
    pub fn list_ids(root: &Path) -> Result<Vec<String>, ContainerError> {
        let entries = match std::fs::read_dir(root) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(ContainerError::Io {
                    op: "list",
                    path: root.into(),
                    source,
                })
            }
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().join(STATE_FILE).exists())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Whether the init process recorded here is still alive (and is still
    /// the same process, not a recycled pid).
    pub fn init_alive(&self) -> bool {
        process_start_time(self.pid).is_some_and(|t| t == self.pid_start_time)
            && !is_zombie(self.pid)
    }

    /// The OCI state document (`nrc state`).
    pub fn oci_state(&self, status: Status) -> serde_json::Value {
        let mut v = serde_json::json!({
            "ociVersion": self.oci_version,
            "id": self.id,
            "status": status.as_str(),
            "bundle": self.bundle,
            "rootfs": self.rootfs,
            "created": self.created,
        });
        if status != Status::Stopped {
            v["pid"] = self.pid.into();
        }
        if !self.annotations.is_empty() {
            v["annotations"] = serde_json::to_value(&self.annotations).expect("string map");
        }
        v
    }
}

/// Field 22 of /proc/<pid>/stat (start time in clock ticks since boot).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: the
    // fields after it start behind the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_ids() {
        for good in ["a", "abc-123", "x_y.z", "A1"] {
            validate_id(good).unwrap();
        }
        for bad in ["", ".hidden", "-x", "a/b", "..", "a b", "é"] {
            assert!(validate_id(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn our_own_start_time_is_readable() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert!(!is_zombie(me));
        assert!(process_start_time(i32::MAX).is_none());
    }
}
