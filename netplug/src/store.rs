//! [`IpamStore`]: one network's IPAM state on disk, safe against concurrent
//! ADDs from many processes and threads and against a crash at any point.
//!
//! Layout: `<root>/<network>/lock` (an empty file every change holds an
//! exclusive `flock` on) and `<root>/<network>/state.json` (the
//! [`IpamState`]). A change reads the state, applies the allocator, and
//! replaces the file atomically: write `state.json.tmp`, fsync it, rename
//! it over `state.json`. A crash of the process or of the machine leaves
//! either the old or the new state, never a torn one. The lock lives in its own file
//! because the state file is replaced on every change: a lock on it would
//! be a lock on a file that is no longer there. Reads that change nothing
//! write nothing.

use nix::fcntl::{Flock, FlockArg};
use noderun_core::ipam::{Ipam, IpamError, IpamState, Owner, Range};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The format version written to, and required in, the state file.
const FORMAT_VERSION: u32 = 1;
const LOCK_FILE: &str = "lock";
const STATE_FILE: &str = "state.json";
const TEMP_FILE: &str = "state.json.tmp";

/// What went wrong with a network's IPAM state, and on which file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("network name {0:?} cannot name a state directory: use letters, digits, `-`, `_` and `.`, not `.` or `..`")]
    BadNetworkName(String),
    #[error("ipam store: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ipam store: locking {path}: {errno}")]
    Lock { path: PathBuf, errno: nix::Error },
    #[error("ipam store: {path} is not a readable state file ({reason}); move it aside to start over (addresses in use may then be handed out again)")]
    Corrupt { path: PathBuf, reason: String },
    #[error("network {network}: {source}")]
    Ipam {
        network: String,
        #[source]
        source: IpamError,
    },
}

/// The state file's content.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StateFile {
    version: u32,
    #[serde(flatten)]
    state: IpamState,
}

/// The IPAM state of one network, in its own directory.
#[derive(Debug, Clone)]
pub struct IpamStore {
    network: String,
    dir: PathBuf,
    range: Range,
}

impl IpamStore {
    /// The store of `network` under `root` (created, mode 0700, if
    /// missing), allocating from `range`.
    pub fn open(root: &Path, network: &str, range: Range) -> Result<IpamStore, StoreError> {
        let safe = |b: u8| b.is_ascii_alphanumeric() || b"-_.".contains(&b);
        if network.is_empty() || network == "." || network == ".." || !network.bytes().all(safe) {
            return Err(StoreError::BadNetworkName(network.into()));
        }
        let dir = root.join(network);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| io("create", &dir, source))?;
        Ok(IpamStore {
            network: network.into(),
            dir,
            range,
        })
    }

    /// The network's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// An address for `owner` (the one it holds, if any), persisted.
    pub fn allocate(&self, owner: &Owner) -> Result<IpAddr, StoreError> {
        self.update(|ipam| ipam.allocate(owner))?
            .map_err(|source| StoreError::Ipam {
                network: self.network.clone(),
                source,
            })
    }

    /// Release what `owner` holds; `None` when it held nothing.
    pub fn release_owner(&self, owner: &Owner) -> Result<Option<IpAddr>, StoreError> {
        self.update(|ipam| ipam.release_owner(owner))
    }

    /// Release everything `container_id` holds.
    pub fn release(&self, container_id: &str) -> Result<Vec<IpAddr>, StoreError> {
        self.update(|ipam| ipam.release(container_id))
    }

    /// Release everything held by containers `is_live` says are gone.
    pub fn gc(&self, is_live: impl Fn(&str) -> bool) -> Result<Vec<IpAddr>, StoreError> {
        self.update(|ipam| ipam.gc(is_live))
    }

    /// The address `owner` holds, if any.
    pub fn lookup(&self, owner: &Owner) -> Result<Option<IpAddr>, StoreError> {
        self.update(|ipam| ipam.lookup(owner))
    }

    /// The current state.
    pub fn state(&self) -> Result<IpamState, StoreError> {
        self.update(|ipam| ipam.state().clone())
    }

    /// Under the lock: load, apply `change`, and write back if it changed.
    fn update<R>(&self, change: impl FnOnce(&mut Ipam) -> R) -> Result<R, StoreError> {
        let _lock = self.lock()?;
        let before = self.load()?;
        let mut ipam = Ipam::new(self.range, before.clone());
        let result = change(&mut ipam);
        if *ipam.state() != before {
            self.save(ipam.into_state())?;
        }
        Ok(result)
    }

    fn lock(&self) -> Result<Flock<File>, StoreError> {
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| io("open", &path, source))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| StoreError::Lock { path, errno })
    }

    fn load(&self) -> Result<IpamState, StoreError> {
        let path = self.dir.join(STATE_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(IpamState::default()),
            Err(source) => return Err(io("read", &path, source)),
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.clone(),
            reason,
        };
        let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {}, this netplug reads {FORMAT_VERSION}",
                file.version
            )));
        }
        Ok(file.state)
    }

    fn save(&self, state: IpamState) -> Result<(), StoreError> {
        let temp = self.dir.join(TEMP_FILE);
        let path = self.dir.join(STATE_FILE);
        let file = StateFile {
            version: FORMAT_VERSION,
            state,
        };
        let bytes = serde_json::to_vec(&file).map_err(|e| StoreError::Corrupt {
            path: temp.clone(),
            reason: e.to_string(),
        })?;
        let mut out = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|source| io("create", &temp, source))?;
        out.write_all(&bytes)
            .and_then(|()| out.sync_data())
            .map_err(|source| io("write", &temp, source))?;
        // No fsync of the directory: after a power loss the rename may be
        // lost, leaving the previous state, which is whole; and no pod
        // survives a reboot, so the agent's GC releases what it holds.
        fs::rename(&temp, &path).map_err(|source| io("rename into place", &path, source))
    }
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        op,
        path: path.into(),
        source,
    }
}
