//! Directory lookup inside a layer root that cannot leave it. A path is
//! walked one component at a time with `openat(O_PATH | O_NOFOLLOW)`,
//! keeping the descriptors of the directories walked so far; `..` pops
//! that stack (never below the root), and a symlink met on the way is
//! read and its target walked the same way, an absolute target starting
//! again at the root: the layer root acts as `/`, as it will for the
//! container. No path string is ever handed to the kernel whole, so no
//! symlink can lead the walk outside, whatever the layer put there.

use nix::errno::Errno;
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Symlinks followed in one lookup before giving up (as the kernel's
/// MAXSYMLINKS).
const MAX_LINKS: usize = 40;

/// Why a lookup failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("{component:?} is not a directory")]
    NotADirectory { component: OsString },
    #[error("{component:?} does not exist")]
    Missing { component: OsString },
    #[error("more than {MAX_LINKS} symlinks")]
    TooManyLinks,
    #[error("{call} {component:?}: {errno}")]
    Sys {
        call: &'static str,
        component: OsString,
        errno: Errno,
    },
}

/// A layer root, open as a directory.
#[derive(Debug)]
pub struct Root {
    fd: OwnedFd,
}

enum Step {
    Dir(OwnedFd),
    Link(OsString),
    Missing,
}

impl Root {
    /// Open `path` (a directory) as the root.
    pub fn open(path: &Path) -> Result<Root, ResolveError> {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
        let fd = openat(nix::fcntl::AT_FDCWD, path, flags, Mode::empty()).map_err(|errno| {
            ResolveError::Sys {
                call: "open",
                component: path.as_os_str().into(),
                errno,
            }
        })?;
        Ok(Root { fd })
    }

    /// The root directory itself.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The directory at `components` below the root, an `O_PATH`
    /// descriptor usable with the `*at` calls. With `create`, missing
    /// directories are made (mode 0755, as tar makes implied parents).
    pub fn dir(&self, components: &[&OsStr], create: bool) -> Result<OwnedFd, ResolveError> {
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut todo: VecDeque<OsString> = components.iter().map(|c| c.to_os_string()).collect();
        let mut links = 0;
        while let Some(component) = todo.pop_front() {
            match component.as_bytes() {
                b"" | b"." => continue,
                b".." => {
                    stack.pop();
                    continue;
                }
                _ => {}
            }
            let here = stack.last().map_or(self.fd.as_fd(), |fd| fd.as_fd());
            match step(here, &component, create)? {
                Step::Dir(fd) => stack.push(fd),
                Step::Link(target) => {
                    links += 1;
                    if links > MAX_LINKS {
                        return Err(ResolveError::TooManyLinks);
                    }
                    if target.as_bytes().starts_with(b"/") {
                        stack.clear();
                    }
                    for part in target.as_bytes().rsplit(|&b| b == b'/') {
                        todo.push_front(OsStr::from_bytes(part).into());
                    }
                }
                Step::Missing => return Err(ResolveError::Missing { component }),
            }
        }
        match stack.pop() {
            Some(fd) => Ok(fd),
            None => self.fd.try_clone().map_err(|e| ResolveError::Sys {
                call: "dup",
                component: ".".into(),
                errno: Errno::from_raw(e.raw_os_error().unwrap_or(libc::EBADF)),
            }),
        }
    }
}

/// One component: a directory to descend into, a symlink to follow, or
/// nothing (after creating it, when asked, it is a directory).
fn step(here: BorrowedFd<'_>, component: &OsStr, create: bool) -> Result<Step, ResolveError> {
    let sys = |call, errno| ResolveError::Sys {
        call,
        component: component.into(),
        errno,
    };
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    for _ in 0..2 {
        match openat(here, component, flags, Mode::empty()) {
            Ok(fd) => return Ok(Step::Dir(fd)),
            Err(Errno::ENOENT) if create => {
                match mkdirat(here, component, Mode::from_bits_truncate(0o755)) {
                    Ok(()) | Err(Errno::EEXIST) => continue,
                    Err(errno) => return Err(sys("mkdirat", errno)),
                }
            }
            Err(Errno::ENOENT) => return Ok(Step::Missing),
            Err(Errno::ENOTDIR | Errno::ELOOP) => {
                let stat = fstatat(here, component, AtFlags::AT_SYMLINK_NOFOLLOW)
                    .map_err(|e| sys("fstatat", e))?;
                if SFlag::from_bits_truncate(stat.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFLNK
                {
                    let target = readlinkat(here, component).map_err(|e| sys("readlinkat", e))?;
                    return Ok(Step::Link(target));
                }
                return Err(ResolveError::NotADirectory {
                    component: component.into(),
                });
            }
            Err(errno) => return Err(sys("openat", errno)),
        }
    }
    Err(sys("openat", Errno::ENOENT))
}
