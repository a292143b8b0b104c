//! Container logs on the node: each instance of a container (its first
//! start, then one per restart) writes `<n>.log` in the container's log
//! directory, rotated by size into `<n>.log.1` (newest) .. `<n>.log.<k>`
//! with kubelet's defaults (containerLogMaxSize 10 MiB,
//! containerLogMaxFiles 5, the live file included).
//!
//! The writer is a logger process per container instance ([`RotatingLog`]
//! fed by [`copy_to_log`], forked by the runner): the container's stdout
//! and stderr are a pipe to it, so rotation is a rename by the only writer
//! and no line is lost, and it outlives the node daemon (a daemon restart
//! leaves the containers' output flowing). The reader side
//! ([`ContainerLogDir`]) lists instances and their files in order for
//! `ctl logs`.

use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// When a container's log is rotated and how many files are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRotation {
    /// A file is rotated before it would pass this many bytes.
    pub max_size: u64,
    /// Files kept per instance, the live one included (at least 2).
    pub max_files: u32,
}

impl Default for LogRotation {
    /// kubelet's containerLogMaxSize (10Mi) and containerLogMaxFiles (5).
    fn default() -> Self {
        LogRotation {
            max_size: 10 << 20,
            max_files: 5,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("container log rotation: max size {0} bytes is too small; give at least 1024 (kubelet's default is 10Mi)")]
    MaxSize(u64),
    #[error(
        "container log rotation: max files {0} must be at least 2 (the live file and one rotated)"
    )]
    MaxFiles(u32),
    #[error("container log {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl LogRotation {
    pub fn new(max_size: u64, max_files: u32) -> Result<LogRotation, LogError> {
        if max_size < 1024 {
            return Err(LogError::MaxSize(max_size));
        }
        if max_files < 2 {
            return Err(LogError::MaxFiles(max_files));
        }
        Ok(LogRotation {
            max_size,
            max_files,
        })
    }
}

fn io_error<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> LogError + 'a {
    move |source| LogError::Io {
        op,
        path: path.into(),
        source,
    }
}

/// `<dir>/<instance>.log`.
pub fn instance_file(dir: &Path, instance: u32) -> PathBuf {
    dir.join(format!("{instance}.log"))
}

/// `<live>.<k>`: the k-th newest rotated file of a live log file.
fn rotated(live: &Path, k: u32) -> PathBuf {
    let mut name = live.as_os_str().to_owned();
    name.push(format!(".{k}"));
    name.into()
}

/// The one writer of an instance's log: appends, and rotates so that no
/// file passes the size (a line is cut only when it alone is longer).
#[derive(Debug)]
pub struct RotatingLog {
    live: PathBuf,
    rotation: LogRotation,
    file: Option<File>,
    size: u64,
}

impl RotatingLog {
    /// Open (or create) the live file for appending.
    pub fn open(live: &Path, rotation: LogRotation) -> Result<RotatingLog, LogError> {
        let file = append(live)?;
        let size = file.metadata().map_err(io_error("stat", live))?.len();
        Ok(RotatingLog {
            live: live.into(),
            rotation,
            file: Some(file),
            size,
        })
    }

    /// Append `bytes`, rotating at line ends as the size requires.
    pub fn write(&mut self, mut bytes: &[u8]) -> Result<(), LogError> {
        while !bytes.is_empty() {
            let room = self.rotation.max_size.saturating_sub(self.size) as usize;
            if bytes.len() <= room {
                return self.append(bytes);
            }
            // Up to the last line end that fits; a line longer than a
            // whole file is cut at the size.
            let cut = match bytes[..room].iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if self.size == 0 => room,
                None => 0,
            };
            self.append(&bytes[..cut])?;
            bytes = &bytes[cut..];
            self.rotate()?;
        }
        Ok(())
    }

    fn append(&mut self, bytes: &[u8]) -> Result<(), LogError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let file = self.file.as_mut().ok_or_else(|| LogError::Io {
            op: "write",
            path: self.live.clone(),
            source: std::io::ErrorKind::NotFound.into(),
        })?;
        file.write_all(bytes)
            .map_err(io_error("write", &self.live))?;
        self.size += bytes.len() as u64;
        Ok(())
    }

    /// `.k` to `.k+1` from the oldest kept, the live file to `.1`, a new
    /// live file. The oldest beyond `max_files` goes.
    fn rotate(&mut self) -> Result<(), LogError> {
        let keep = self.rotation.max_files - 1;
        let oldest = rotated(&self.live, keep);
        match std::fs::remove_file(&oldest) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("remove", &oldest)(e)),
        }
        for k in (1..keep).rev() {
            let from = rotated(&self.live, k);
            match std::fs::rename(&from, rotated(&self.live, k + 1)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("rename", &from)(e)),
            }
        }
        self.file = None;
        std::fs::rename(&self.live, rotated(&self.live, 1))
            .map_err(io_error("rename", &self.live))?;
        self.file = Some(append(&self.live)?);
        self.size = 0;
        Ok(())
    }
}

fn append(path: &Path) -> Result<File, LogError> {
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(io_error("open", path))
}

/// The logger's loop: copy `input` (the container's stdout and stderr)
/// into `log` until every writer has closed it. A log that cannot be
/// written any more (its directory removed with the pod) is dropped, but
/// the pipe is still drained so the container never blocks on it.
pub fn copy_to_log(input: OwnedFd, mut log: Option<RotatingLog>) {
    let mut input = File::from(input);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        if let Some(l) = log.as_mut() {
            if l.write(&buf[..n]).is_err() {
                log = None;
            }
        }
    }
}

/// One container's log directory, read side.
#[derive(Debug, Clone)]
pub struct ContainerLogDir {
    pub dir: PathBuf,
}

impl ContainerLogDir {
    pub fn new(dir: PathBuf) -> ContainerLogDir {
        ContainerLogDir { dir }
    }

    /// The instances that have a live file, oldest first.
    pub fn instances(&self) -> Result<Vec<u32>, LogError> {
        let entries = std::fs::read_dir(&self.dir).map_err(io_error("list", &self.dir))?;
        let mut found: Vec<u32> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name();
                name.to_str()?.strip_suffix(".log")?.parse().ok()
            })
            .collect();
        found.sort_unstable();
        Ok(found)
    }

    /// The live file of `instance`.
    pub fn live(&self, instance: u32) -> PathBuf {
        instance_file(&self.dir, instance)
    }

    /// The files of `instance`, oldest first, the live one last.
    pub fn files(&self, instance: u32) -> Vec<PathBuf> {
        let live = self.live(instance);
        let mut out: Vec<PathBuf> = (1..)
            .map(|k| rotated(&live, k))
            .take_while(|p| p.exists())
            .collect();
        out.reverse();
        out.push(live);
        out
    }

    /// Everything `instance` wrote that is still kept, in order.
    pub fn read(&self, instance: u32) -> Result<Vec<u8>, LogError> {
        let mut all = Vec::new();
        for f in self.files(instance) {
            match std::fs::read(&f) {
                Ok(bytes) => all.extend_from_slice(&bytes),
                // Rotated away between the listing and the read.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("read", &f)(e)),
            }
        }
        Ok(all)
    }

    /// Remove the files of every instance older than `keep_from`
    /// (kubelet keeps the last dead instance's log for `--previous`).
    pub fn prune_before(&self, keep_from: u32) -> Result<(), LogError> {
        for instance in self.instances()? {
            if instance >= keep_from {
                continue;
            }
            for f in self.files(instance) {
                match std::fs::remove_file(&f) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("remove", &f)(e)),
                }
            }
        }
        Ok(())
    }
}

/// The last `n` lines of `bytes` (a last line without its newline counts).
pub fn tail_lines(bytes: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &bytes[bytes.len()..];
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &bytes[i + 1..];
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> noderun_testkit::TempDir {
        noderun_testkit::TempDir::new("nr-logs-unit").unwrap()
    }

    #[test]
    fn rotation_keeps_every_line_in_order_within_the_bounds() {
        let d = dir();
        let rotation = LogRotation::new(1024, 3).unwrap();
        let live = instance_file(d.path(), 0);
        let mut log = RotatingLog::open(&live, rotation).unwrap();
        let lines: Vec<String> = (0..60)
            .map(|i| format!("line {i:04} {}\n", "x".repeat(i % 7 * 10)))
            .collect();
        // Written in uneven chunks, as a pipe delivers them.
        let all = lines.concat();
        for chunk in all.as_bytes().chunks(97) {
            log.write(chunk).unwrap();
        }
        let logs = ContainerLogDir::new(d.path().into());
        let files = logs.files(0);
        assert_eq!(files.len(), 3, "{files:?}");
        for f in &files {
            let len = std::fs::metadata(f).unwrap().len();
            assert!(len <= 1024, "{f:?} has {len}");
        }
        // What is kept is the end of what was written: a line is split
        // between two files only where a write ended mid-line.
        let kept = String::from_utf8(logs.read(0).unwrap()).unwrap();
        assert!(all.ends_with(&kept));
        assert!(kept.len() > 1024 * 2 - 100);

        // Writes of whole lines (as a shell's echo) stay whole per file.
        let d = dir();
        let live = instance_file(d.path(), 0);
        let mut log = RotatingLog::open(&live, rotation).unwrap();
        for l in &lines {
            log.write(l.as_bytes()).unwrap();
        }
        for f in ContainerLogDir::new(d.path().into()).files(0) {
            let text = std::fs::read_to_string(&f).unwrap();
            assert!(
                text.len() <= 1024 && text.starts_with("line ") && text.ends_with('\n'),
                "{f:?}"
            );
        }
    }

    #[test]
    fn a_line_longer_than_a_file_is_cut_at_the_size() {
        let d = dir();
        let live = instance_file(d.path(), 0);
        let mut log = RotatingLog::open(&live, LogRotation::new(1024, 5).unwrap()).unwrap();
        let long = vec![b'y'; 3000];
        log.write(&long).unwrap();
        log.write(b"\nend\n").unwrap();
        let logs = ContainerLogDir::new(d.path().into());
        let mut expected = long.clone();
        expected.extend_from_slice(b"\nend\n");
        assert_eq!(logs.read(0).unwrap(), expected);
        assert!(logs
            .files(0)
            .iter()
            .all(|f| std::fs::metadata(f).unwrap().len() <= 1024));
    }

    #[test]
    fn instances_are_listed_and_old_ones_pruned() {
        let d = dir();
        for (name, text) in [
            ("0.log", "a"),
            ("0.log.1", "b"),
            ("1.log", "c"),
            ("2.log", "d"),
            ("x.log", ""),
        ] {
            std::fs::write(d.path().join(name), text).unwrap();
        }
        let logs = ContainerLogDir::new(d.path().into());
        assert_eq!(logs.instances().unwrap(), vec![0, 1, 2]);
        assert_eq!(logs.read(0).unwrap(), b"ba");
        logs.prune_before(1).unwrap();
        assert_eq!(logs.instances().unwrap(), vec![1, 2]);
        assert!(!d.path().join("0.log.1").exists());
        let missing = ContainerLogDir::new(d.path().join("nope"))
            .instances()
            .unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }

    #[test]
    fn tail_counts_lines_from_the_end() {
        let cases: [(&[u8], usize, &[u8]); 7] = [
            (b"a\nb\nc\n", 2, b"b\nc\n"),
            (b"a\nb\nc\n", 3, b"a\nb\nc\n"),
            (b"a\nb\nc\n", 10, b"a\nb\nc\n"),
            (b"a\nb\nc", 1, b"c"),
            (b"a\nb\nc", 2, b"b\nc"),
            (b"a\nb\n", 0, b""),
            (b"", 3, b""),
        ];
        for (bytes, n, want) in cases {
            assert_eq!(
                tail_lines(bytes, n),
                want,
                "{:?} tail {n}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(matches!(
            LogRotation::new(10, 5),
            Err(LogError::MaxSize(10))
        ));
        assert!(matches!(
            LogRotation::new(4096, 1),
            Err(LogError::MaxFiles(1))
        ));
        assert_eq!(
            LogRotation::default(),
            LogRotation::new(10 << 20, 5).unwrap()
        );
    }
}
