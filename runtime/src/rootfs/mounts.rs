//! One spec mount, placed inside the rootfs: its destination is created and
//! opened with RESOLVE_IN_ROOT, and the mount goes through the resulting fd
//! (/proc/self/fd/N), never through a path that could be swapped.

use super::options::{self, MountOptions};
use crate::cgroups::Layout;
use crate::sys::mount::{self as sys, MountError};
use nix::errno::Errno;
use nix::mount::MsFlags;
use nix::sys::stat::Mode;
use oci_spec::runtime::Mount;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

pub fn mount_one(root_fd: &OwnedFd, rootfs: &Path, m: &Mount) -> Result<(), String> {
    let opts = options::parse(m.options().as_deref().unwrap_or_default());
    let typ = m
        .typ()
        .as_deref()
        .unwrap_or(if opts.is_bind() { "bind" } else { "none" });
    let source = m.source().clone();
    if typ == "cgroup" || typ == "cgroup2" {
        return mount_cgroup(root_fd, rootfs, m.destination(), &opts).map_err(|e| e.to_string());
    }
    let is_file = opts.is_bind() && source.as_deref().is_some_and(|s| !s.is_dir());
    let target_fd =
        ensure_path(root_fd, rootfs, m.destination(), is_file).map_err(|e| e.to_string())?;
    let target = sys::fd_path(&target_fd);
    let data = (!opts.data.is_empty()).then_some(opts.data.as_str());
    let extra = opts.flags - (MsFlags::MS_BIND | MsFlags::MS_REC);
    if opts.is_bind() {
        let src = source.ok_or("a bind mount needs a source")?;
        sys::mount(
            Some(&src),
            &target,
            None,
            opts.flags & (MsFlags::MS_BIND | MsFlags::MS_REC),
            None,
        )
        .map_err(|e| e.to_string())?;
    } else {
        let src = source.unwrap_or_else(|| PathBuf::from(typ));
        sys::mount(Some(&src), &target, Some(typ), opts.flags, data).map_err(|e| e.to_string())?;
    }
    let bind_remount = opts.is_bind() && !extra.is_empty();
    if !bind_remount && opts.propagation.is_empty() {
        return Ok(());
    }
    // The fd opened before the mount names what lies under it; the remount
    // and the propagation change are for the new mount: open it again.
    let mounted = sys::open_in_root(root_fd, rootfs, m.destination()).map_err(|e| e.to_string())?;
    let mounted = sys::fd_path(&mounted);
    if bind_remount {
        // Flags other than bind/rec only apply to a bind through a remount.
        sys::mount(
            None,
            &mounted,
            None,
            MsFlags::MS_BIND | MsFlags::MS_REMOUNT | extra,
            None,
        )
        .map_err(|e| e.to_string())?;
    }
    if !opts.propagation.is_empty() {
        sys::set_propagation(&mounted, opts.propagation).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Open `dest` inside the rootfs, creating missing directories (and, when
/// `is_file`, the last component as an empty file) relative to verified
/// parents.
pub fn ensure_path(
    root_fd: &OwnedFd,
    rootfs: &Path,
    dest: &Path,
    is_file: bool,
) -> Result<OwnedFd, MountError> {
    let comps: Vec<&std::ffi::OsStr> = dest
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n),
            _ => None,
        })
        .collect();
    let mut sofar = PathBuf::from("/");
    for (i, name) in comps.iter().enumerate() {
        let parent = sys::open_in_root(root_fd, rootfs, &sofar)?;
        sofar.push(name);
        match sys::open_in_root(root_fd, rootfs, &sofar) {
            Ok(fd) if i + 1 == comps.len() => return Ok(fd),
            Ok(_) => continue,
            Err(MountError::OpenInRoot {
                errno: Errno::ENOENT,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        let last = i + 1 == comps.len();
        let err = |errno| MountError::Path {
            op: "create",
            path: rootfs.join(sofar.strip_prefix("/").unwrap_or(&sofar)),
            errno,
        };
        if last && is_file {
            let flags = nix::fcntl::OFlag::O_CREAT
                | nix::fcntl::OFlag::O_EXCL
                | nix::fcntl::OFlag::O_CLOEXEC;
            nix::fcntl::openat(&parent, *name, flags, Mode::from_bits_truncate(0o644))
                .map_err(err)?;
        } else {
            match nix::sys::stat::mkdirat(&parent, *name, Mode::from_bits_truncate(0o755)) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(errno) => return Err(err(errno)),
            }
        }
        if last {
            return sys::open_in_root(root_fd, rootfs, &sofar);
        }
    }
    sys::open_in_root(root_fd, rootfs, &sofar)
}

/// cgroup2 on a unified host; on a v1 (or hybrid) host a tmpfs holding one
/// mount per v1 hierarchy, with links for co-mounted controller names.
fn mount_cgroup(
    root_fd: &OwnedFd,
    rootfs: &Path,
    dest: &Path,
    opts: &MountOptions,
) -> Result<(), MountError> {
    let target_fd = ensure_path(root_fd, rootfs, dest, false)?;
    let target = sys::fd_path(&target_fd);
    let flags = opts.flags | MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let layout = Layout::host().map_err(|_| MountError::Path {
        op: "detect the host's cgroup layout for",
        path: dest.into(),
        errno: Errno::EINVAL,
    })?;
    let controllers = match layout {
        Layout::Unified { .. } => {
            return sys::mount(
                Some(Path::new("cgroup2")),
                &target,
                Some("cgroup2"),
                flags,
                None,
            )
        }
        Layout::Legacy { controllers, .. } => controllers,
    };
    sys::mount(
        Some(Path::new("tmpfs")),
        &target,
        Some("tmpfs"),
        flags - MsFlags::MS_RDONLY,
        Some("mode=755"),
    )?;
    // The old fd still names the directory under the new tmpfs: reopen.
    let target_fd = ensure_path(root_fd, rootfs, dest, false)?;
    let target = sys::fd_path(&target_fd);
    // Group controllers by hierarchy: cpu and cpuacct share "cpu,cpuacct".
    let mut hierarchies: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, mount_point) in controllers {
        let dir = mount_point
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        hierarchies.entry(dir).or_default().push(name.clone());
    }
    for (dir, names) in &hierarchies {
        let sub = target.join(dir);
        std::fs::create_dir_all(&sub).map_err(|e| io_err("mkdir", &sub, e))?;
        sys::mount(
            Some(Path::new("cgroup")),
            &sub,
            Some("cgroup"),
            flags,
            Some(&names.join(",")),
        )?;
        for name in names.iter().filter(|n| *n != dir) {
            sys::symlink(Path::new(dir), &target.join(name))?;
        }
    }
    if flags.contains(MsFlags::MS_RDONLY) {
        sys::mount(
            None,
            &target,
            None,
            MsFlags::MS_REMOUNT | flags,
            Some("mode=755"),
        )?;
    }
    Ok(())
}

fn io_err(op: &'static str, path: &Path, e: std::io::Error) -> MountError {
    MountError::Path {
        op,
        path: path.into(),
        errno: Errno::from_raw(e.raw_os_error().unwrap_or(0)),
    }
}
