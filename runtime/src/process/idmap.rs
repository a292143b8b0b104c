//! uid/gid maps of a new user namespace, written by the runtime for its
//! child (a process cannot map ids for itself beyond its own).

use oci_spec::runtime::LinuxIdMapping;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum IdMapError {
    #[error("{which}: no mappings; a new user namespace needs at least one")]
    Empty { which: &'static str },
    #[error("{which}: mappings {a} and {b} overlap")]
    Overlap {
        which: &'static str,
        a: usize,
        b: usize,
    },
    #[error("write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Check a mapping list: not empty, no two ranges overlapping inside.
pub fn validate(which: &'static str, maps: &[LinuxIdMapping]) -> Result<(), IdMapError> {
    if maps.is_empty() {
        return Err(IdMapError::Empty { which });
    }
    for (i, a) in maps.iter().enumerate() {
        for (j, b) in maps.iter().enumerate().skip(i + 1) {
            let overlaps = |s1: u32, s2: u32| {
                u64::from(s1) < u64::from(s2) + u64::from(b.size())
                    && u64::from(s2) < u64::from(s1) + u64::from(a.size())
            };
            if overlaps(a.container_id(), b.container_id()) || overlaps(a.host_id(), b.host_id()) {
                return Err(IdMapError::Overlap { which, a: i, b: j });
            }
        }
    }
    Ok(())
}

fn text(maps: &[LinuxIdMapping]) -> String {
    maps.iter()
        .map(|m| format!("{} {} {}\n", m.container_id(), m.host_id(), m.size()))
        .collect()
}

/// Write /proc/<pid>/{uid_map, setgroups, gid_map}.
pub fn write_id_maps(
    pid: i32,
    uids: &[LinuxIdMapping],
    gids: &[LinuxIdMapping],
) -> Result<(), IdMapError> {
    validate("uidMappings", uids)?;
    validate("gidMappings", gids)?;
    let write = |file: &str, content: &str| {
        let path = PathBuf::from(format!("/proc/{pid}/{file}"));
        std::fs::write(&path, content).map_err(|source| IdMapError::Write { path, source })
    };
    write("uid_map", &text(uids))?;
    // An unprivileged parent must deny setgroups before mapping gids; as
    // root it may leave it allowed, which the container's setgroups needs.
    if !nix::unistd::geteuid().is_root() {
        write("setgroups", "deny")?;
    }
    write("gid_map", &text(gids))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn maps(json: &str) -> Vec<LinuxIdMapping> {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn mapping_checks() {
        validate(
            "uidMappings",
            &maps(r#"[{"containerID":0,"hostID":100000,"size":65536}]"#),
        )
        .unwrap();
        assert!(matches!(
            validate("uidMappings", &[]),
            Err(IdMapError::Empty { .. })
        ));
        let overlapping = maps(
            r#"[{"containerID":0,"hostID":1000,"size":10},{"containerID":5,"hostID":5000,"size":10}]"#,
        );
        assert!(matches!(
            validate("uidMappings", &overlapping),
            Err(IdMapError::Overlap { a: 0, b: 1, .. })
        ));
        assert_eq!(
            text(&maps(r#"[{"containerID":0,"hostID":1,"size":2}]"#)),
            "0 1 2\n"
        );
    }
}
