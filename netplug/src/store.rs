//! [`IpamStore`]: one network's IPAM state on disk, safe against concurrent
//! ADDs from many processes and threads and against a crash at any point.
//!
//! Layout: `<root>/<network>/lock` (an empty file every change holds an
//! exclusive `flock` on) and two slots for the state of this boot,
//! `state-<boot id>.a` and `.b`. A change reads the state, applies the
//! allocator, and writes the result into the slot that does not hold the
//! state it read, one generation higher; a read takes the valid slot of the
//! highest generation. A slot is a header line (`nrs1 <generation>
//! <length> <CRC-32 of the body>`), the body (the [`IpamState`] as JSON)
//! and padding: a slot is rewritten in place from offset 0 and never
//! shrinks, so a write that a crash cuts short leaves a slot whose checksum
//! does not match, and the other slot still holds the state before it.
//!
//! Why not a temp file renamed over the state file: on ext4 (this VM's
//! /run) a rename over an existing file makes the kernel start writing
//! the new file's data back at once (`auto_da_alloc`), which cost ~90 µs
//! of each ~130 µs allocation here and stalled for milliseconds while the
//! disk was busy; an in-place write only dirties the page cache.
//!
//! Why the boot id, and why no fsync: an allocation describes an address
//! on a veth in a network namespace, and neither outlives the boot. So the
//! state is scoped to the kernel's boot id (`/proc/sys/kernel/random/boot_id`):
//! after a reboot the files of the previous boot are not read (its pods
//! are gone, so are their addresses — the leak that host-local has after a
//! reboot cannot happen here) and are removed with the first change. That
//! is what makes fsync unnecessary: a crash of the process, mid-ADD or
//! anywhere, leaves the page cache with whole slots or a torn one that
//! the checksum exposes; only a crash of the machine could lose both, and
//! those files belong to a boot that is over.

use nix::fcntl::{Flock, FlockArg};
use noderun_core::ipam::{Ipam, IpamError, IpamState, Owner, Range};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The format version written to, and required in, the state's body.
const FORMAT_VERSION: u32 = 1;
const LOCK_FILE: &str = "lock";
const STATE_PREFIX: &str = "state-";
/// The two slots' suffixes after `state-<boot id>`.
const SLOTS: [&str; 2] = [".a", ".b"];
/// What a slot starts with.
const MAGIC: &str = "nrs1 ";
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
    /// `state-<boot id>.a` and `.b` in `dir`.
    slots: [PathBuf; 2],
    range: Range,
}

/// A loaded state, its generation and the slot it came from (None: the
/// single file of netplug versions before slots); None: nothing stored.
type Loaded = Option<(IpamState, u64, Option<usize>)>;

/// What a slot holds.
#[derive(Debug)]
enum Slot {
    Absent,
    /// Empty, or what an interrupted write leaves: our header, a body
    /// whose length or checksum does not match.
    Torn,
    Valid {
        generation: u64,
        state: IpamState,
    },
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
        let slots = SLOTS.map(|suffix| dir.join(format!("{STATE_PREFIX}{boot_id}{suffix}")));
        Ok(IpamStore {
            network: network.into(),
            dir,
            slots,
            range,
        })
    }

    /// The network's state directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The two slot files of this boot's state (absent until the first
    /// changes).
    pub fn state_paths(&self) -> [&Path; 2] {
        [&self.slots[0], &self.slots[1]]
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
        let current = self.load()?;
        let (before, generation, target, from_slot) = match current {
            Some((state, generation, Some(from))) => (state, generation, 1 - from, true),
            Some((state, generation, None)) => (state, generation, 0, false),
            None => (IpamState::default(), 0, 0, false),
        };
        let mut ipam = Ipam::new(self.range, before.clone());
        let result = change(&mut ipam);
        if *ipam.state() != before {
            self.save(target, generation + 1, ipam.into_state())?;
            if !from_slot {
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

    /// This boot's state, its generation and the slot it came from (None:
    /// the single file of netplug versions before slots); `None` before
    /// the first change (or when that change was cut short).
    fn load(&self) -> Result<Loaded, StoreError> {
        let slots = [self.read_slot(0)?, self.read_slot(1)?];
        let newest = slots
            .iter()
            .enumerate()
            .filter_map(|(i, slot)| match slot {
                Slot::Valid { generation, state } => Some((state, *generation, i)),
                _ => None,
            })
            .max_by_key(|(_, generation, _)| *generation);
        match (newest, &slots) {
            (Some((state, generation, i)), _) => Ok(Some((state.clone(), generation, Some(i)))),
            (None, [Slot::Absent, Slot::Absent]) => self.load_legacy(),
            // The first change is written into the first slot; a crash
            // cut it short, so nothing was ever stored.
            (None, [Slot::Torn, Slot::Absent]) => Ok(None),
            (None, _) => Err(StoreError::Corrupt {
                path: self.slots[0].clone(),
                reason: format!(
                    "neither it nor {} holds a whole state",
                    self.slots[1].display()
                ),
            }),
        }
    }

    /// The state of this boot as netplug versions before slots kept it
    /// (`state-<boot id>.json`, replaced by rename), so an upgrade in the
    /// middle of a boot keeps the addresses in use.
    fn load_legacy(&self) -> Result<Loaded, StoreError> {
        let path = self.slots[0].with_extension("json");
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(io("read", &path, source)),
        };
        let file: StateFile = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        Ok(Some((file.state, 0, None)))
    }

    /// Read slot `i`: absent, torn or valid; anything not written by this
    /// store is an error naming the file.
    fn read_slot(&self, i: usize) -> Result<Slot, StoreError> {
        let path = &self.slots[i];
        let bytes = match fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Slot::Absent),
            Err(source) => return Err(io("read", path, source)),
        };
        let corrupt = |reason: String| StoreError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        // An interrupted write leaves a prefix of what it wrote, at least
        // a prefix of the magic.
        if bytes.len() < MAGIC.len() {
            return if MAGIC.as_bytes().starts_with(&bytes) {
                Ok(Slot::Torn)
            } else {
                Err(corrupt("not an IPAM state slot".into()))
            };
        }
        if !bytes.starts_with(MAGIC.as_bytes()) {
            return Err(corrupt(format!(
                "not an IPAM state slot (no {MAGIC:?} header)"
            )));
        }
        let Some((generation, body)) = parse_slot(&bytes) else {
            return Ok(Slot::Torn);
        };
        let file: StateFile = serde_json::from_slice(body).map_err(|e| corrupt(e.to_string()))?;
        if file.version != FORMAT_VERSION {
            return Err(corrupt(format!(
                "format version {}, this netplug reads {FORMAT_VERSION}",
                file.version
            )));
        }
        Ok(Slot::Valid {
            generation,
            state: file.state,
        })
    }

    /// Write `state` as `generation` into slot `i`, in place.
    fn save(&self, i: usize, generation: u64, state: IpamState) -> Result<(), StoreError> {
        let path = &self.slots[i];
        let file = StateFile {
            version: FORMAT_VERSION,
            state,
        };
        let body = serde_json::to_vec(&file).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let out = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| io("open", path, source))?;
        let old_len = out
            .metadata()
            .map_err(|source| io("stat", path, source))?
            .len();
        let mut bytes = slot_bytes(generation, &body);
        // Never shrink: padding over the old content instead of a truncate.
        if (bytes.len() as u64) < old_len {
            bytes.resize(old_len as usize, b'\n');
        }
        // No fsync: see the module documentation.
        out.write_all_at(&bytes, 0)
            .map_err(|source| io("write", path, source))
    }

    /// Remove the state files of earlier boots (and the `state.json` of
    /// netplug versions before boot-scoped state): their pods are gone.
    fn remove_other_boots(&self) -> Result<(), StoreError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| io("list", &self.dir, source))?;
        for entry in entries {
            let entry = entry.map_err(|source| io("list", &self.dir, source))?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            // Also the files of netplug versions before slots: state.json,
            // state-<boot>.json and the temp file they renamed.
            let stale = name.starts_with("state");
            let path = entry.path();
            if stale && !self.slots.contains(&path) {
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

/// The slots' checksum, CRC-32/ISO-HDLC (zlib's), computed from a table:
/// a CRC crate that picks a SIMD version at run time asks the CPU for its
/// features first (CPUID), and each CPUID is a VM exit, tens of µs on a
/// nested VM, for a checksum over a few hundred bytes once per call.
const SLOT_CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// A slot's content: header line, then the body.
fn slot_bytes(generation: u64, body: &[u8]) -> Vec<u8> {
    let crc = SLOT_CRC.checksum(body);
    let mut bytes = format!("{MAGIC}{generation} {} {crc:08x}\n", body.len()).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The generation and body of a whole slot; None when the header, the
/// length or the checksum does not hold up (a torn write).
fn parse_slot(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[MAGIC.len()..newline]).ok()?;
    let mut fields = header.split(' ');
    let generation: u64 = fields.next()?.parse().ok()?;
    let len: usize = fields.next()?.parse().ok()?;
    let crc = u32::from_str_radix(fields.next()?, 16).ok()?;
    let body = bytes.get(newline + 1..)?.get(..len)?;
    (fields.next().is_none() && SLOT_CRC.checksum(body) == crc).then_some((generation, body))
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
