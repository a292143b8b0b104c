//! A container's exit file, `<root>/<id>/exit` next to its state: how
//! its init ended and when, written by the runner that reaped it. It is
//! what lets a new daemon know the exit of a container that ended while
//! the old daemon was gone (its runner lingered as the init's parent,
//! see `super::server`), as conmon's exit files do for CRI-O.
//!
//! The runner writes it before it reaps the init (the exit is read with
//! WNOWAIT first), so once the init is no longer even a zombie, either
//! the file is there or nobody recorded the exit (the runner was killed,
//! the host rebooted). Written to a temporary file of the writer's own,
//! then renamed (`crate::image::atomic`): a reader never sees half a
//! record. The file names the init (pid and start
//! time), so a record that lands late in the directory of a newer
//! instance of the same container is never taken for its exit. It goes
//! with the container's state directory on delete.

use super::protocol::Exit;
use crate::container::Record;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file's name in the container's state directory.
pub const EXIT_FILE: &str = "exit";

/// How one init ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    /// The init, as in the container's record.
    pub pid: i32,
    pub pid_start_time: u64,
    pub exit: Exit,
    /// RFC 3339; `started` when the writer started the container.
    pub started: Option<String>,
    pub finished: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ExitFileError {
    #[error("{op} the exit file {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("exit file {path} is corrupt: {message}")]
    Corrupt { path: PathBuf, message: String },
}

impl ExitFileError {
    /// The container's directory is gone (deleted before its init was
    /// reaped): there is nobody to tell.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ExitFileError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Record `record` in the container directory `dir` (which must exist:
/// it is never made here).
pub fn write(dir: &Path, record: &ExitRecord) -> Result<(), ExitFileError> {
    let path = dir.join(EXIT_FILE);
    let text = serde_json::to_vec(record).expect("exit records always serialize");
    crate::image::atomic::write_file(&path, &text).map_err(|source| ExitFileError::Io {
        op: "write",
        path,
        source,
    })
}

/// The exit of the init `record` names, from the file in `dir`; `None`
/// when there is no file or it is another instance's.
pub fn read(dir: &Path, record: &Record) -> Result<Option<ExitRecord>, ExitFileError> {
    let path = dir.join(EXIT_FILE);
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ExitFileError::Io {
                op: "read",
                path,
                source,
            })
        }
    };
    let exit: ExitRecord = serde_json::from_slice(&text).map_err(|e| ExitFileError::Corrupt {
        path,
        message: e.to_string(),
    })?;
    Ok((exit.pid == record.pid && exit.pid_start_time == record.pid_start_time).then_some(exit))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: i32, start: u64) -> Record {
        serde_json::from_value(serde_json::json!({
            "id": "u_c", "ociVersion": "1.2.0", "bundle": "/b", "rootfs": "/b/rootfs",
            "pid": pid, "pidStartTime": start, "created": "2026-12-02T10:00:00Z",
            "cgroupPath": "noderun/u/c",
        }))
        .unwrap()
    }

    fn exit(pid: i32, start: u64, exit: Exit) -> ExitRecord {
        ExitRecord {
            pid,
            pid_start_time: start,
            exit,
            started: Some("2026-12-02T10:00:01Z".into()),
            finished: "2026-12-02T10:00:09Z".into(),
        }
    }

    #[test]
    fn written_records_read_back_for_their_init_only() {
        let dir = noderun_testkit::TempDir::new("nr-exitfile").unwrap();
        assert_eq!(read(dir.path(), &record(42, 7)).unwrap(), None);
        let code = exit(42, 7, Exit::Code(7));
        write(dir.path(), &code).unwrap();
        assert_eq!(read(dir.path(), &record(42, 7)).unwrap(), Some(code));
        // A newer instance (same pid recycled, or another pid) is not it.
        assert_eq!(read(dir.path(), &record(42, 8)).unwrap(), None);
        assert_eq!(read(dir.path(), &record(43, 7)).unwrap(), None);
        // Overwritten whole; no temporary left behind.
        let signal = exit(43, 9, Exit::Signal(9));
        write(dir.path(), &signal).unwrap();
        assert_eq!(read(dir.path(), &record(43, 9)).unwrap(), Some(signal));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(EXIT_FILE)]);
        let text = std::fs::read_to_string(dir.path().join(EXIT_FILE)).unwrap();
        assert!(text.contains("\"signal\":9"), "{text}");
    }

    #[test]
    fn a_missing_directory_or_a_corrupt_file_is_a_clear_error() {
        let dir = noderun_testkit::TempDir::new("nr-exitfile").unwrap();
        let gone = dir.path().join("deleted");
        let err = write(&gone, &exit(1, 1, Exit::Code(0))).unwrap_err();
        assert!(err.is_not_found(), "{err}");
        assert!(!gone.exists(), "the directory is not made");
        std::fs::write(dir.path().join(EXIT_FILE), "{\"pid\": 1, ").unwrap();
        let err = read(dir.path(), &record(1, 1)).unwrap_err();
        assert!(!err.is_not_found());
        let text = err.to_string();
        assert!(
            text.contains("corrupt") && text.contains(&dir.path().display().to_string()),
            "{text}"
        );
        // Left as it was: nothing is removed or rewritten by a read.
        assert_eq!(
            std::fs::read_to_string(dir.path().join(EXIT_FILE)).unwrap(),
            "{\"pid\": 1, "
        );
    }
}
