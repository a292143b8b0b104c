//! The mount that turns a snapshot into a filesystem: an overlay of the
//! layer directories (`lowerdir=` topmost first, plus `upperdir=` and
//! `workdir=` for a writable snapshot), or a bind mount when one directory
//! is enough. [`Mount`] is a description the runtime can inspect or
//! mount itself; [`Mount::mount`] mounts it.
//!
//! The kernel copies mount options from one page (4096 bytes), which
//! absolute paths to a few dozen layers already fill. When the options do
//! not fit, every path is written relative to the directory the layers
//! share, and the mount is made from a short-lived thread that has its
//! own working directory (`unshare(CLONE_FS)` + `chdir`): overlayfs
//! resolves relative paths against the mounting thread's working
//! directory, and the rest of the process never sees the change.

use super::sys::{self, SysError};
use nix::sched::CloneFlags;
use std::path::{Path, PathBuf};

/// The longest mount option string the kernel accepts (a page, less the
/// terminating NUL).
pub const MOUNT_DATA_MAX: usize = 4095;

/// What went wrong making a mount.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error(transparent)]
    Sys(#[from] SysError),
    #[error("overlay of {layers} layers needs {bytes} bytes of mount options even with relative paths; the kernel takes {MOUNT_DATA_MAX}")]
    TooManyLayers { layers: usize, bytes: usize },
    #[error(
        "path {0} cannot appear in overlay options (it must be UTF-8 without `:` `,` or `\\`)"
    )]
    BadPath(PathBuf),
    #[error("the mount helper thread for {target} failed: {reason}")]
    Helper { target: PathBuf, reason: String },
    #[error("an overlay needs at least one lower directory")]
    NoLayers,
}

/// How to mount a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// An overlay: read-only without upper and work directories.
    Overlay {
        /// Layer directories, topmost first.
        lower: Vec<PathBuf>,
        upper: Option<PathBuf>,
        work: Option<PathBuf>,
    },
    /// A bind mount of one directory.
    Bind { source: PathBuf, read_only: bool },
}

/// Overlay options ready for mount(2): `data`, to be resolved from `base`
/// when its paths are relative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayData {
    pub base: Option<PathBuf>,
    pub data: String,
}

impl Mount {
    /// The filesystem type for mount(2): `overlay` or `none` (bind).
    pub fn fs_type(&self) -> &'static str {
        match self {
            Mount::Overlay { .. } => "overlay",
            Mount::Bind { .. } => "none",
        }
    }

    /// The options with absolute paths, as an OCI runtime spec lists them
    /// (`lowerdir=...`, or `rbind`/`ro` for a bind mount).
    pub fn options(&self) -> Vec<String> {
        match self {
            Mount::Overlay { lower, upper, work } => {
                absolute_data(lower, upper.as_deref(), work.as_deref())
                    .split(',')
                    .map(String::from)
                    .collect()
            }
            Mount::Bind { read_only, .. } => {
                let mut out = vec!["rbind".to_string()];
                out.push(if *read_only { "ro" } else { "rw" }.into());
                out
            }
        }
    }

    /// Mount on `target`, an existing directory.
    pub fn mount(&self, target: &Path) -> Result<(), MountError> {
        match self {
            Mount::Bind { source, read_only } => Ok(sys::mount_bind(source, target, *read_only)?),
            Mount::Overlay { lower, upper, work } => {
                let OverlayData { base, data } =
                    overlay_data(lower, upper.as_deref(), work.as_deref())?;
                match base {
                    None => Ok(sys::mount_overlay(target, &data)?),
                    Some(base) => mount_from(&base, target, &data),
                }
            }
        }
    }
}

fn absolute_data(lower: &[PathBuf], upper: Option<&Path>, work: Option<&Path>) -> String {
    format_data(
        lower.iter().map(|p| p.display().to_string()),
        upper,
        work,
        |p| p.display().to_string(),
    )
}

fn format_data(
    lower: impl Iterator<Item = String>,
    upper: Option<&Path>,
    work: Option<&Path>,
    show: impl Fn(&Path) -> String,
) -> String {
    let mut data = String::from("lowerdir=");
    data.push_str(&lower.collect::<Vec<_>>().join(":"));
    if let (Some(upper), Some(work)) = (upper, work) {
        data.push_str(",upperdir=");
        data.push_str(&show(upper));
        data.push_str(",workdir=");
        data.push_str(&show(work));
    }
    data
}

/// Build the overlay option string, falling back to paths relative to the
/// layers' common directory when absolute ones do not fit in a page.
pub fn overlay_data(
    lower: &[PathBuf],
    upper: Option<&Path>,
    work: Option<&Path>,
) -> Result<OverlayData, MountError> {
    if lower.is_empty() {
        return Err(MountError::NoLayers);
    }
    let all: Vec<&Path> = lower
        .iter()
        .map(PathBuf::as_path)
        .chain(upper)
        .chain(work)
        .collect();
    for path in &all {
        let ok = path.to_str().is_some_and(|s| !s.contains([':', ',', '\\']));
        if !ok {
            return Err(MountError::BadPath(path.to_path_buf()));
        }
    }
    let data = absolute_data(lower, upper, work);
    if data.len() <= MOUNT_DATA_MAX {
        return Ok(OverlayData { base: None, data });
    }
    let base = common_dir(&all);
    let rel = |p: &Path| p.strip_prefix(&base).unwrap_or(p).display().to_string();
    let data = format_data(lower.iter().map(|p| rel(p)), upper, work, rel);
    if data.len() > MOUNT_DATA_MAX {
        return Err(MountError::TooManyLayers {
            layers: lower.len(),
            bytes: data.len(),
        });
    }
    Ok(OverlayData {
        base: Some(base),
        data,
    })
}

/// The deepest directory that contains every path (each path's parent at
/// most, so no relative path is empty).
fn common_dir(paths: &[&Path]) -> PathBuf {
    let mut base: PathBuf = paths[0].parent().unwrap_or(Path::new("/")).into();
    for path in &paths[1..] {
        while !path.starts_with(&base) || *path == base {
            if !base.pop() {
                break;
            }
        }
    }
    base
}

/// Mount from a thread whose working directory is `base`.
fn mount_from(base: &Path, target: &Path, data: &str) -> Result<(), MountError> {
    let target = std::path::absolute(target).map_err(|e| MountError::Helper {
        target: target.into(),
        reason: e.to_string(),
    })?;
    let helper = |reason: String| MountError::Helper {
        target: target.clone(),
        reason,
    };
    std::thread::scope(|scope| {
        scope
            .spawn(|| -> Result<(), MountError> {
                nix::sched::unshare(CloneFlags::CLONE_FS)
                    .map_err(|e| helper(format!("unshare(CLONE_FS): {e}")))?;
                nix::unistd::chdir(base)
                    .map_err(|e| helper(format!("chdir {}: {e}", base.display())))?;
                Ok(sys::mount_overlay(&target, data)?)
            })
            .join()
            .unwrap_or_else(|_| Err(helper("panicked".into())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layers(n: usize) -> Vec<PathBuf> {
        (0..n)
            .map(|i| PathBuf::from(format!("/var/lib/noderun/snapshots/snapshots/{i:08x}/fs")))
            .collect()
    }

    #[test]
    fn few_layers_use_absolute_paths() {
        let upper = Path::new("/s/snapshots/up/fs");
        let work = Path::new("/s/snapshots/up/work");
        let d = overlay_data(&layers(2), Some(upper), Some(work)).unwrap();
        assert_eq!(d.base, None);
        assert_eq!(
            d.data,
            "lowerdir=/var/lib/noderun/snapshots/snapshots/00000000/fs:/var/lib/noderun/snapshots/snapshots/00000001/fs,upperdir=/s/snapshots/up/fs,workdir=/s/snapshots/up/work"
        );
        let ro = overlay_data(&layers(2), None, None).unwrap();
        assert!(!ro.data.contains("upperdir"));
    }

    #[test]
    fn many_layers_fall_back_to_relative_paths() {
        let lower = layers(150);
        let upper = PathBuf::from("/var/lib/noderun/snapshots/snapshots/ffffffff/fs");
        let work = PathBuf::from("/var/lib/noderun/snapshots/snapshots/ffffffff/work");
        assert!(absolute_data(&lower, Some(&upper), Some(&work)).len() > MOUNT_DATA_MAX);
        let d = overlay_data(&lower, Some(&upper), Some(&work)).unwrap();
        assert_eq!(
            d.base.as_deref(),
            Some(Path::new("/var/lib/noderun/snapshots/snapshots"))
        );
        assert!(
            d.data.starts_with("lowerdir=00000000/fs:00000001/fs:"),
            "{}",
            &d.data[..40]
        );
        assert!(d
            .data
            .ends_with(",upperdir=ffffffff/fs,workdir=ffffffff/work"));
        assert!(d.data.len() <= MOUNT_DATA_MAX);
    }

    #[test]
    fn too_many_layers_is_an_error_not_a_truncation() {
        let err = overlay_data(&layers(400), None, None).unwrap_err();
        assert!(
            matches!(err, MountError::TooManyLayers { layers: 400, .. }),
            "{err}"
        );
    }

    #[test]
    fn separators_in_paths_are_refused() {
        let bad = vec![PathBuf::from("/a:b/fs")];
        assert!(matches!(
            overlay_data(&bad, None, None),
            Err(MountError::BadPath(_))
        ));
        assert!(matches!(
            overlay_data(&[], None, None),
            Err(MountError::NoLayers)
        ));
    }

    #[test]
    fn common_dir_is_a_proper_ancestor() {
        let a = Path::new("/x/y/1/fs");
        let b = Path::new("/x/y/2/fs");
        assert_eq!(common_dir(&[a, b]), Path::new("/x/y"));
        assert_eq!(common_dir(&[a]), Path::new("/x/y/1"));
        assert_eq!(common_dir(&[a, Path::new("/z")]), Path::new("/"));
    }
}
