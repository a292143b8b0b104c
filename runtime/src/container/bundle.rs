//! Reading an OCI bundle: `config.json` parsed with oci-spec, checked
//! before anything is created, so a bad bundle fails with a clear error and
//! leaves nothing behind.

use super::ContainerError;
use oci_spec::runtime::{LinuxNamespaceType, Spec};
use std::path::{Component, Path, PathBuf};

/// A bundle whose config has been read and checked.
#[derive(Debug)]
pub struct Bundle {
    pub dir: PathBuf,
    pub spec: Spec,
    /// Absolute path of the root filesystem.
    pub rootfs: PathBuf,
}

impl Bundle {
    pub fn load(dir: &Path) -> Result<Bundle, ContainerError> {
        let dir = std::fs::canonicalize(dir).map_err(|source| ContainerError::Io {
            op: "open bundle",
            path: dir.into(),
            source,
        })?;
        let config = dir.join("config.json");
        let text = std::fs::read_to_string(&config).map_err(|source| ContainerError::Io {
            op: "read",
            path: config.clone(),
            source,
        })?;
        let spec: Spec = serde_json::from_str(&text).map_err(|e| ContainerError::BadConfig {
            path: config.clone(),
            message: e.to_string(),
        })?;
        let rootfs = check(&spec, &dir).map_err(|message| ContainerError::BadConfig {
            path: config,
            message,
        })?;
        Ok(Bundle { dir, spec, rootfs })
    }
}

/// Everything that can be known to be wrong before creating anything.
fn check(spec: &Spec, dir: &Path) -> Result<PathBuf, String> {
    check_version(spec.version())?;
    let root = spec
        .root()
        .as_ref()
        .ok_or("root: missing (the rootfs path)")?;
    let rootfs = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    if !rootfs.is_dir() {
        return Err(format!(
            "root.path: {} is not a directory",
            rootfs.display()
        ));
    }
    let process = spec
        .process()
        .as_ref()
        .ok_or("process: missing (what to run)")?;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err("process.args: must name the program to run".into());
    }
    if !process.cwd().is_absolute() {
        return Err(format!(
            "process.cwd: {} must be absolute",
            process.cwd().display()
        ));
    }
    for (i, m) in spec.mounts().iter().flatten().enumerate() {
        check_destination(m.destination())
            .map_err(|why| format!("mounts[{i}].destination: {why}"))?;
    }
    if let Some(linux) = spec.linux() {
        let mut seen = Vec::new();
        for ns in linux.namespaces().iter().flatten() {
            if seen.contains(&ns.typ()) {
                return Err(format!("linux.namespaces: {:?} listed twice", ns.typ()));
            }
            seen.push(ns.typ());
            if ns.typ() == LinuxNamespaceType::Time && ns.path().is_some() {
                return Err("linux.namespaces: joining a time namespace is not supported".into());
            }
        }
    }
    Ok(rootfs)
}

/// ociVersion 1.0.x through 1.2.x (with optional `-rc`/`-dev` suffixes).
fn check_version(v: &str) -> Result<(), String> {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let mut parts = core.split('.').map(|p| p.parse::<u32>());
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(Ok(1)), Some(Ok(0..=2)), Some(Ok(_)), None) => Ok(()),
        _ => Err(format!(
            "ociVersion: {v:?} is not supported (supported: 1.0.x to 1.2.x)"
        )),
    }
}

/// A mount destination must be absolute and may not climb with `..`
/// (symlinks are resolved safely at mount time, inside the rootfs).
fn check_destination(dest: &Path) -> Result<(), String> {
    if !dest.is_absolute() {
        return Err(format!("{} must be absolute", dest.display()));
    }
    if dest.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{} must not contain `..`", dest.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for ok in [
            "1.0.0",
            "1.0.2",
            "1.1.0",
            "1.2.0",
            "1.2.1",
            "1.0.0-rc5",
            "1.2.0+dev",
        ] {
            check_version(ok).unwrap();
        }
        for bad in ["", "1.3.0", "2.0.0", "0.9.0", "1.0", "x", "1.0.0.0"] {
            assert!(check_version(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn destinations() {
        check_destination(Path::new("/proc")).unwrap();
        for bad in ["proc", "/../../etc", "/a/../../b"] {
            assert!(
                check_destination(Path::new(bad)).is_err(),
                "{bad:?} accepted"
            );
        }
    }
}
