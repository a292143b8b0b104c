//! Reading /proc/self/mountinfo: the mount points of this process's mount
//! namespace, with their file system types, for the temporary directory's
//! unmount-before-remove, the cgroup layout and the host snapshot.

use crate::Error;
use std::path::{Path, PathBuf};

const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of mountinfo, reduced to what the testkit needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Where it is mounted, with mountinfo's octal escapes decoded.
    pub mount_point: PathBuf,
    /// The file system type ("cgroup2", "tmpfs", "nsfs", ...).
    pub fstype: String,
    /// The per-superblock options ("rw,memory", ...).
    pub super_options: String,
}

impl MountEntry {
    /// Parse one mountinfo line; `None` when it is malformed.
    pub fn parse(line: &str) -> Option<MountEntry> {
        let (before, after) = line.split_once(" - ")?;
        let mount_point = before.split(' ').nth(4)?;
        let mut after = after.split(' ');
        let fstype = after.next()?;
        let _source = after.next()?;
        let super_options = after.next()?;
        Some(MountEntry {
            mount_point: PathBuf::from(unescape(mount_point)),
            fstype: fstype.to_string(),
            super_options: super_options.to_string(),
        })
    }
}

/// Every mount of this mount namespace, in mountinfo order (parents before
/// the mounts stacked on or below them).
pub fn mount_points() -> Result<Vec<MountEntry>, Error> {
    let text = std::fs::read_to_string(MOUNTINFO).map_err(|e| Error::io("read", MOUNTINFO, e))?;
    Ok(parse_all(&text))
}

/// The mount points at or below `dir`, deepest (and latest stacked) first:
/// the order in which to unmount them. A point mounted twice is listed twice.
pub fn mount_points_under(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    Ok(under(&mount_points()?, dir))
}

pub(crate) fn parse_all(text: &str) -> Vec<MountEntry> {
    text.lines().filter_map(MountEntry::parse).collect()
}

pub(crate) fn under(entries: &[MountEntry], dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = entries
        .iter()
        .filter(|e| e.mount_point.starts_with(dir))
        .map(|e| e.mount_point.clone())
        .collect();
    // Later lines are stacked on earlier ones, so reverse before the stable
    // sort by depth keeps the top of each stack first.
    found.reverse();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found
}

/// Decode the `\ooo` octal escapes the kernel writes for space, tab,
/// newline and backslash.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match octal {
            Some(d) => {
                let value = d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0'));
                out.push(value as u8);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
90 23 0:50 / /tmp/t\\040dir rw - tmpfs tmpfs rw
91 90 0:51 / /tmp/t\\040dir/a rw - tmpfs tmpfs rw
92 91 0:52 / /tmp/t\\040dir/a/b rw - tmpfs tmpfs rw
93 91 0:53 / /tmp/t\\040dir/a rw - tmpfs tmpfs rw
94 23 0:54 / /tmp/t\\040dirx rw - tmpfs tmpfs rw
garbage line
";

    #[test]
    fn parses_fields_and_skips_garbage() {
        let all = parse_all(SAMPLE);
        assert_eq!(all.len(), 8);
        assert_eq!(
            all[1],
            MountEntry {
                mount_point: PathBuf::from("/sys/fs/cgroup/memory"),
                fstype: "cgroup".into(),
                super_options: "rw,memory".into(),
            }
        );
    }

    #[test]
    fn unescapes_octal() {
        let cases = [
            ("/a\\040b", "/a b"),
            ("/tab\\011x", "/tab\tx"),
            ("/back\\134slash", "/back\\slash"),
            ("/not\\09escape", "/not\\09escape"),
            ("/end\\04", "/end\\04"),
        ];
        for (raw, want) in cases {
            assert_eq!(unescape(raw), want, "{raw}");
        }
    }

    #[test]
    fn under_is_deepest_first_and_respects_component_boundaries() {
        let got = under(&parse_all(SAMPLE), Path::new("/tmp/t dir"));
        let want: Vec<PathBuf> = [
            "/tmp/t dir/a/b",
            "/tmp/t dir/a",
            "/tmp/t dir/a",
            "/tmp/t dir",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn reads_this_process_mounts() {
        let all = mount_points().unwrap();
        assert!(all.iter().any(|e| e.mount_point == Path::new("/")));
    }
}
