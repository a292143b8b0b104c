//! [`IpamStore`]: one network's IPAM state on disk, safe against concurrent
//! ADDs from many processes and threads and against a crash at any point.
//!
//! Layout: `<root>/<network>/lock` (an empty file every change holds an
//! exclusive `flock` on) and `<root>/<network>/state-<boot id>.json` (the
//! [`IpamState`] of this boot). A change reads the state, applies the
//! allocator, and replaces the file atomically: write `state.json.tmp`,
//! rename it over the state file. The lock lives in its own file because
//! the state file is replaced on every change: a lock on it would be a lock
//! on a file that is no longer there. Reads that change nothing write
//! nothing.
//!
//! Why the boot id, and why no fsync: an allocation describes an address
//! on a veth in a network namespace, and neither outlives the boot. So the
//! state is scoped to the kernel's boot id (`/proc/sys/kernel/random/boot_id`):
//! after a reboot the file of the previous boot is not read (its pods are
//! gone, so are their addresses — the leak that host-local has after a
//! reboot cannot happen here) and is removed with the first change. That
//! is what makes fsync unnecessary: a crash of the process, mid-ADD or
//! anywhere, leaves the old or the new file whole (rename is atomic and
//! the page cache keeps what was written); only a crash of the machine
//! could leave a torn or empty file, and that file belongs to a boot that
//! is over. Each ADD saves 1–3 ms of fsync on this VM's disk for it.

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
const STATE_PREFIX: &str = "state-";
const STATE_SUFFIX: &str = ".json";
const TEMP_FILE: &str = "state.json.tmp";
/// The kernel's id of the running boot, a UUID.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

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
    #[error("ipam store: {path} does not hold a boot id (got {got:?})")]
    BadBootId { path: PathBuf, got: String },
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
    /// `state-<boot id>.json` in `dir`.
    state_file: PathBuf,
    range: Range,
}

impl IpamStore {
    /// The store of `network` under `root` (created, mode 0700, if
    /// missing), allocating from `range`.
    pub fn open(root: &Path, network: &str, range: Range) -> Result<IpamStore, StoreError> {
        IpamStore::open_for_boot(root, network, range, &current_boot_id()?)
    }

    /// As [`IpamStore::open`], for the boot `boot_id` rather than the
    /// running one (tests play a reboot with it).
    pub fn open_for_boot(
        root: &Path,
        network: &str,
        range: Range,
        boot_id: &str,
    ) -> Result<IpamStore, StoreError> {
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
        let state_file = dir.join(format!("{STATE_PREFIX}{boot_id}{STATE_SUFFIX}"));
        Ok(IpamStore {
            network: network.into(),
            dir,
            state_file,
            range,
        })
    }

    /// The network's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding this boot's state (absent until the first change).
    pub fn state_path(&self) -> &Path {
        &self.state_file
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
        let (before, existed) = match self.load()? {
            Some(state) => (state, true),
            None => (IpamState::default(), false),
        };
        let mut ipam = Ipam::new(self.range, before.clone());
        let result = change(&mut ipam);
        if *ipam.state() != before {
            self.save(ipam.into_state())?;
            if !existed {
                self.remove_other_boots()?;
            }
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

    /// This boot's state; `None` before its first change.
    fn load(&self) -> Result<Option<IpamState>, StoreError> {
        let path = &self.state_file;
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io("read", path, source)),
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        if file.version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {}, this netplug reads {FORMAT_VERSION}",
                file.version
            )));
        }
        Ok(Some(file.state))
    }

    fn save(&self, state: IpamState) -> Result<(), StoreError> {
        let temp = self.dir.join(TEMP_FILE);
        let path = &self.state_file;
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
        // No fsync: see the module documentation.
        out.write_all(&bytes)
            .map_err(|source| io("write", &temp, source))?;
        fs::rename(&temp, path).map_err(|source| io("rename into place", path, source))
    }

    /// Remove the state files of earlier boots (and the `state.json` of
    /// netplug versions before boot-scoped state): their pods are gone.
    fn remove_other_boots(&self) -> Result<(), StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| io("list", &self.dir, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| io("list", &self.dir, source))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stale = name == "state.json"
                || (name.starts_with(STATE_PREFIX) && name.ends_with(STATE_SUFFIX));
            let path = entry.path();
            if stale && path != self.state_file {
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(source) => return Err(io("remove", &path, source)),
                }
            }
        }
        Ok(())
    }
}

/// The running boot's id, checked to be what the kernel writes (hex digits
/// and dashes) since it becomes part of a file name.
fn current_boot_id() -> Result<String, StoreError> {
    let path = Path::new(BOOT_ID);
    let text = fs::read_to_string(path).map_err(|source| io("read", path, source))?;
    let id = text.trim();
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(StoreError::BadBootId {
            path: path.into(),
            got: id.into(),
        });
    }
    Ok(id.into())
}

fn io(op: &'static str, path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Io {
        op,
        path: path.into(),
        source,
    }
}
