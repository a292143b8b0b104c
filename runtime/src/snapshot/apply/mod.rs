//! Applying a layer (a tar diff, plain, gzip or zstd) to a directory the
//! way overlayfs wants its layers: files, directories, symlinks,
//! hardlinks, device nodes and fifos with owner, mode, mtime and extended
//! attributes; an OCI whiteout `.wh.<name>` becomes a 0/0 character
//! device and `.wh..wh..opq` sets `trusted.overlay.opaque=y` on its
//! directory, so that overlay hides the lower layers' entries.
//!
//! Safe against hostile layers: a path with `..` is refused, an absolute
//! path is taken relative to the layer root, and every directory is
//! looked up by [`resolve::Root`], whose walk cannot leave the root
//! through a symlink; the last component is never followed. A hardlink's
//! target is resolved the same way. Whatever the layer holds, nothing
//! outside the destination directory is created, changed or linked to.
//! The bytes of the tar are hashed on the way and must match the diff ID.

mod entry;
mod meta;
pub mod path;
mod resolve;

pub use entry::OPAQUE_XATTR;
pub use path::PathError;
pub use resolve::ResolveError;

use crate::image::{media, Digest, DigestReader};
use entry::{EntryError, Replaced};
use meta::EntryMeta;
use nix::sys::stat::{utimensat, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use path::Whiteout;
use resolve::Root;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

/// What went wrong applying a layer, and at which entry.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("reading the layer stream: {0}")]
    Read(#[source] io::Error),
    #[error("layer entry {path:?} {reason}")]
    Path { path: String, reason: PathError },
    #[error("layer entry {path:?}: looking up its directory: {source}")]
    Resolve {
        path: String,
        #[source]
        source: ResolveError,
    },
    #[error("layer entry {path:?}: hardlink target {target:?}: {source}")]
    LinkTarget {
        path: String,
        target: String,
        #[source]
        source: ResolveError,
    },
    #[error("layer entry {path:?}: {source}")]
    Entry {
        path: String,
        #[source]
        source: EntryError,
    },
    #[error("layer entry {path:?} has unsupported type {kind:?}")]
    Unsupported { path: String, kind: u8 },
    #[error("layer entry {path:?} would replace the layer root with a non-directory")]
    RootNotDir { path: String },
    #[error("opening the layer directory {path}: {source}")]
    Dest {
        path: PathBuf,
        #[source]
        source: ResolveError,
    },
    #[error("layer content does not match its diff ID: expected {expected}, got {actual}")]
    DiffId { expected: Digest, actual: Digest },
}

/// What applying a layer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyStats {
    /// The digest of the uncompressed tar (the diff ID).
    pub diff_id: Option<Digest>,
    /// Bytes of uncompressed tar read.
    pub tar_bytes: u64,
    /// Entries applied.
    pub entries: u64,
    /// Bytes of regular file content written.
    pub file_bytes: u64,
    /// Entries not applied, each with the reason (device nodes this host
    /// may not make, tool metadata, refused attributes).
    pub skipped: Vec<String>,
}

/// Apply the layer `blob` (any supported compression) to `dest`, which
/// must exist. With `expected_diff_id`, the uncompressed tar must hash to
/// it (the directory is then left half-written: callers apply into a
/// temporary directory and discard it on error).
pub fn apply_layer(
    blob: impl Read,
    dest: &Path,
    expected_diff_id: Option<&Digest>,
) -> Result<ApplyStats, ApplyError> {
    let (_, stream) = media::decompress(blob).map_err(ApplyError::Read)?;
    let mut archive = tar::Archive::new(DigestReader::new(stream));
    let mut applier = Applier::new(dest)?;
    for entry in archive.entries().map_err(ApplyError::Read)? {
        let mut entry = entry.map_err(ApplyError::Read)?;
        applier.apply(&mut entry)?;
    }
    applier.set_dir_times()?;
    let (diff_id, tar_bytes) = archive.into_inner().finish().map_err(ApplyError::Read)?;
    if let Some(expected) = expected_diff_id {
        if *expected != diff_id {
            return Err(ApplyError::DiffId {
                expected: *expected,
                actual: diff_id,
            });
        }
    }
    let mut stats = applier.stats;
    stats.diff_id = Some(diff_id);
    stats.tar_bytes = tar_bytes;
    Ok(stats)
}

/// The state of one layer application.
struct Applier {
    root: Root,
    /// The last directory looked up, by components: most entries share
    /// their parent with the previous one. Dropped whenever something is
    /// removed, since a removal can change what a path resolves to.
    cache: Option<(Vec<OsString>, Rc<OwnedFd>)>,
    /// Directory mtimes, set last (creating entries changes them).
    dir_times: Vec<(Vec<OsString>, SystemTime)>,
    stats: ApplyStats,
    /// The buffer file contents are copied through.
    buf: Vec<u8>,
}

/// Size of the file copy buffer.
const COPY_BUFFER: usize = 1 << 17;

impl Applier {
    fn new(dest: &Path) -> Result<Applier, ApplyError> {
        let root = Root::open(dest).map_err(|source| ApplyError::Dest {
            path: dest.into(),
            source,
        })?;
        Ok(Applier {
            root,
            cache: None,
            dir_times: Vec::new(),
            stats: ApplyStats::default(),
            buf: vec![0; COPY_BUFFER],
        })
    }

    fn dir(&mut self, components: &[&OsStr], create: bool) -> Result<Rc<OwnedFd>, ResolveError> {
        if let Some((cached, fd)) = &self.cache {
            if cached
                .iter()
                .map(OsString::as_os_str)
                .eq(components.iter().copied())
            {
                return Ok(fd.clone());
            }
        }
        let fd = Rc::new(self.root.dir(components, create)?);
        self.cache = Some((
            components.iter().map(|c| c.to_os_string()).collect(),
            fd.clone(),
        ));
        Ok(fd)
    }

    fn note(&mut self, replaced: Replaced) {
        if replaced == Replaced::Something {
            self.cache = None;
        }
    }

    fn apply<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> Result<(), ApplyError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path_err = |reason| ApplyError::Path {
            path: shown.clone(),
            reason,
        };
        let components = path::components(&raw).map_err(path_err)?;
        let kind = entry.header().entry_type();
        if matches!(
            kind,
            tar::EntryType::XGlobalHeader
                | tar::EntryType::XHeader
                | tar::EntryType::GNULongName
                | tar::EntryType::GNULongLink
        ) {
            return Ok(());
        }
        self.stats.entries += 1;
        let entry_err = |source| ApplyError::Entry {
            path: shown.clone(),
            source,
        };
        let Some((name, parent)) = components.split_last() else {
            return self.apply_root(entry, &shown);
        };
        let resolve_err = |source| ApplyError::Resolve {
            path: shown.clone(),
            source,
        };
        match path::whiteout(name).map_err(path_err)? {
            Whiteout::None => {}
            Whiteout::Opaque => {
                let dir = self.dir(parent, true).map_err(resolve_err)?;
                return entry::opaque(&*dir).map_err(entry_err);
            }
            Whiteout::Remove(target) => {
                let dir = self.dir(parent, true).map_err(resolve_err)?;
                let replaced = entry::whiteout(dir.as_fd(), target).map_err(entry_err)?;
                self.note(replaced);
                return Ok(());
            }
            Whiteout::Meta => {
                self.stats
                    .skipped
                    .push(format!("{shown}: whiteout metadata of another tool"));
                return Ok(());
            }
        }
        let meta = EntryMeta::read(entry).map_err(ApplyError::Read)?;
        for refused in &meta.refused_xattrs {
            self.stats.skipped.push(format!(
                "{shown}: xattr {refused} is never taken from a layer"
            ));
        }
        let dir = self.dir(parent, true).map_err(resolve_err)?;
        let replaced = self.make(entry, kind, dir.as_fd(), name, &meta, &shown)?;
        self.note(replaced);
        if kind == tar::EntryType::Directory {
            let owned = components.iter().map(|c| c.to_os_string()).collect();
            self.dir_times.push((owned, meta.mtime));
        }
        Ok(())
    }

    fn make<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        kind: tar::EntryType,
        dir: std::os::fd::BorrowedFd<'_>,
        name: &OsStr,
        meta: &EntryMeta,
        shown: &str,
    ) -> Result<Replaced, ApplyError> {
        let entry_err = |source| ApplyError::Entry {
            path: shown.into(),
            source,
        };
        use tar::EntryType as T;
        let node = |kind: SFlag| -> Result<(SFlag, libc::dev_t), ApplyError> {
            let major = entry.header().device_major().ok().flatten().unwrap_or(0);
            let minor = entry.header().device_minor().ok().flatten().unwrap_or(0);
            Ok((kind, libc::makedev(major, minor)))
        };
        let (node_kind, dev) = match kind {
            T::Char => node(SFlag::S_IFCHR)?,
            T::Block => node(SFlag::S_IFBLK)?,
            T::Fifo => node(SFlag::S_IFIFO)?,
            T::Regular | T::Continuous | T::GNUSparse => {
                let (written, replaced) =
                    entry::file(dir, name, meta, entry, &mut self.buf).map_err(entry_err)?;
                self.stats.file_bytes += written;
                return Ok(replaced);
            }
            T::Directory => return entry::directory(dir, name, meta).map_err(entry_err),
            T::Symlink => {
                let target = entry.link_name_bytes().unwrap_or_default().into_owned();
                let target: OsString = std::os::unix::ffi::OsStringExt::from_vec(target);
                return entry::symlink(dir, name, &target, meta).map_err(entry_err);
            }
            T::Link => return self.hardlink(entry, dir, name, shown),
            other => {
                return Err(ApplyError::Unsupported {
                    path: shown.into(),
                    kind: other.as_byte(),
                })
            }
        };
        match entry::node(dir, name, node_kind, dev, meta).map_err(entry_err)? {
            Some(replaced) => Ok(replaced),
            None => {
                self.stats
                    .skipped
                    .push(format!("{shown}: not permitted to make device nodes here"));
                Ok(Replaced::Nothing)
            }
        }
    }

    fn hardlink<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        dir: std::os::fd::BorrowedFd<'_>,
        name: &OsStr,
        shown: &str,
    ) -> Result<Replaced, ApplyError> {
        let raw = entry.link_name_bytes().unwrap_or_default().into_owned();
        let target = String::from_utf8_lossy(&raw).into_owned();
        let link_err = |source| ApplyError::LinkTarget {
            path: shown.into(),
            target: target.clone(),
            source,
        };
        let components = path::components(&raw).map_err(|reason| ApplyError::Path {
            path: target.clone(),
            reason,
        })?;
        let Some((src_name, src_parent)) = components.split_last() else {
            return Err(link_err(ResolveError::NotADirectory {
                component: ".".into(),
            }));
        };
        let src_dir = self.root.dir(src_parent, false).map_err(link_err)?;
        entry::hardlink(dir, name, src_dir.as_fd(), src_name).map_err(|source| ApplyError::Entry {
            path: shown.into(),
            source,
        })
    }

    fn apply_root<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<(), ApplyError> {
        if entry.header().entry_type() != tar::EntryType::Directory {
            return Err(ApplyError::RootNotDir { path: shown.into() });
        }
        let meta = EntryMeta::read(entry).map_err(ApplyError::Read)?;
        let root = self.root.fd();
        entry::directory(root, OsStr::new("."), &meta).map_err(|source| ApplyError::Entry {
            path: shown.into(),
            source,
        })?;
        self.dir_times.push((Vec::new(), meta.mtime));
        Ok(())
    }

    /// Set each directory's mtime now that nothing more is created in it.
    /// A directory a later entry removed is skipped.
    fn set_dir_times(&mut self) -> Result<(), ApplyError> {
        let times = std::mem::take(&mut self.dir_times);
        for (components, mtime) in times.iter().rev() {
            let parts: Vec<&OsStr> = components.iter().map(OsString::as_os_str).collect();
            let t = TimeSpec::from_duration(
                mtime
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default(),
            );
            let (name, parent) = parts
                .split_last()
                .map_or((OsStr::new("."), &[][..]), |(n, p)| (*n, p));
            let shown = || {
                String::from_utf8_lossy(&components.join(OsStr::new("/")).into_vec()).into_owned()
            };
            let dir = match self.root.dir(parent, false) {
                Ok(dir) => dir,
                Err(ResolveError::Missing { .. }) => continue,
                Err(source) => {
                    return Err(ApplyError::Resolve {
                        path: shown(),
                        source,
                    })
                }
            };
            match utimensat(&dir, name, &t, &t, UtimensatFlags::NoFollowSymlink) {
                Ok(()) | Err(nix::errno::Errno::ENOENT) => {}
                Err(errno) => {
                    return Err(ApplyError::Entry {
                        path: shown(),
                        source: EntryError {
                            op: "set directory times",
                            source: errno.into(),
                        },
                    })
                }
            }
        }
        Ok(())
    }
}
