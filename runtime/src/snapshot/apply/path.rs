//! Archive paths and OCI whiteout names, checked before anything touches
//! the disk. An entry's path is split into components; a leading `/` and
//! `.` components are dropped (the path is taken relative to the layer
//! root) and a `..` component is refused outright. A whiteout file
//! `.wh.<name>` deletes `<name>` from the layers below, `.wh..wh..opq`
//! hides everything below its directory, and other `.wh..wh.` names are
//! metadata of older tools, ignored.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

/// The prefix of whiteout entries.
pub const WHITEOUT_PREFIX: &[u8] = b".wh.";
/// The prefix of whiteout metadata entries.
const WHITEOUT_META_PREFIX: &[u8] = b".wh..wh.";
/// The name that marks its directory opaque.
pub const OPAQUE: &[u8] = b".wh..wh..opq";

/// Why an archive path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("has a `..` component, which could climb out of the layer")]
    DotDot,
    #[error("holds a NUL byte")]
    Nul,
    #[error("is a whiteout of an invalid name (empty, `.` or `..`)")]
    BadWhiteout,
}

/// What an entry's last component says about whiteouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// A normal name.
    None,
    /// `.wh..wh..opq`: the directory hides what the layers below have in it.
    Opaque,
    /// `.wh.<name>`: `<name>` is deleted.
    Remove(&'a OsStr),
    /// Another `.wh..wh.` name: tool metadata, ignored.
    Meta,
}

/// The components of an archive path, relative to the layer root; empty
/// for the root itself.
pub fn components(raw: &[u8]) -> Result<Vec<&OsStr>, PathError> {
    if raw.contains(&0) {
        return Err(PathError::Nul);
    }
    let mut out = Vec::new();
    for part in raw.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => return Err(PathError::DotDot),
            p => out.push(OsStr::from_bytes(p)),
        }
    }
    Ok(out)
}

/// Classify the last component of an entry's path.
pub fn whiteout(name: &OsStr) -> Result<Whiteout<'_>, PathError> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE {
        return Ok(Whiteout::Opaque);
    }
    if bytes.starts_with(WHITEOUT_META_PREFIX) {
        return Ok(Whiteout::Meta);
    }
    match bytes.strip_prefix(WHITEOUT_PREFIX) {
        None => Ok(Whiteout::None),
        Some(b"" | b"." | b"..") => Err(PathError::BadWhiteout),
        Some(target) => Ok(Whiteout::Remove(OsStr::from_bytes(target))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(raw: &str) -> Result<Vec<&str>, PathError> {
        components(raw.as_bytes()).map(|v| v.iter().map(|c| c.to_str().unwrap()).collect())
    }

    #[test]
    fn paths_are_relative_to_the_layer_root() {
        assert_eq!(parts("usr/bin/sh").unwrap(), ["usr", "bin", "sh"]);
        assert_eq!(parts("./usr//bin/").unwrap(), ["usr", "bin"]);
        assert_eq!(
            parts("/etc/passwd").unwrap(),
            ["etc", "passwd"],
            "absolute paths stay inside"
        );
        assert!(parts("./").unwrap().is_empty());
        assert!(parts("/").unwrap().is_empty());
        for bad in ["..", "../x", "a/../b", "a/b/..", "/../etc"] {
            assert_eq!(parts(bad), Err(PathError::DotDot), "{bad}");
        }
        assert_eq!(components(b"a\0b"), Err(PathError::Nul));
    }

    #[test]
    fn whiteout_names_are_classified() {
        fn w(s: &str) -> Result<Whiteout<'_>, PathError> {
            whiteout(OsStr::new(s))
        }
        assert_eq!(w("file"), Ok(Whiteout::None));
        assert_eq!(w(".whatever"), Ok(Whiteout::None));
        assert_eq!(w(".wh.file"), Ok(Whiteout::Remove(OsStr::new("file"))));
        assert_eq!(
            w(".wh..hidden"),
            Ok(Whiteout::Remove(OsStr::new(".hidden")))
        );
        assert_eq!(w(".wh..wh..opq"), Ok(Whiteout::Opaque));
        assert_eq!(w(".wh..wh.plnk"), Ok(Whiteout::Meta));
        assert_eq!(w(".wh..wh.aufs"), Ok(Whiteout::Meta));
        for bad in [".wh.", ".wh..", ".wh..."] {
            assert_eq!(w(bad), Err(PathError::BadWhiteout), "{bad}");
        }
    }
}
