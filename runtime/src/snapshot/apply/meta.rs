//! The attributes a tar entry carries for the file it makes: owner, mode,
//! mtime and extended attributes, from the ustar header overridden by PAX
//! records (`uid`, `gid`, `mtime` with its fraction, `SCHILY.xattr.*`).
//! Overlay's own `trusted.overlay.*` attributes are never taken from a
//! layer: only the applier's whiteout handling may set them.

use std::io::{self, Read};
use std::time::{Duration, SystemTime};

const XATTR_PREFIX: &str = "SCHILY.xattr.";
const OVERLAY_XATTR_PREFIX: &str = "trusted.overlay.";

/// An entry's ownership, permissions, time and extended attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryMeta {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits, including setuid, setgid and sticky.
    pub mode: u32,
    pub mtime: SystemTime,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// Attributes the layer asked for that are never applied.
    pub refused_xattrs: Vec<String>,
}

impl EntryMeta {
    /// Read the header and PAX records of `entry`.
    pub fn read<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<EntryMeta> {
        let header = entry.header();
        let mut meta = EntryMeta {
            uid: clamp_id(header.uid()?),
            gid: clamp_id(header.gid()?),
            mode: header.mode()? & 0o7777,
            mtime: SystemTime::UNIX_EPOCH + Duration::from_secs(header.mtime()?),
            xattrs: Vec::new(),
            refused_xattrs: Vec::new(),
        };
        if let Some(pax) = entry.pax_extensions()? {
            for ext in pax {
                let ext = ext?;
                let Ok(key) = ext.key() else { continue };
                meta.apply_pax(key, ext.value_bytes());
            }
        }
        Ok(meta)
    }

    fn apply_pax(&mut self, key: &str, value: &[u8]) {
        let text = std::str::from_utf8(value).ok();
        match key {
            "uid" => {
                if let Some(id) = text.and_then(|t| t.parse().ok()) {
                    self.uid = clamp_id(id);
                }
            }
            "gid" => {
                if let Some(id) = text.and_then(|t| t.parse().ok()) {
                    self.gid = clamp_id(id);
                }
            }
            "mtime" => {
                if let Some(t) = text.and_then(parse_pax_time) {
                    self.mtime = t;
                }
            }
            _ => {
                if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                    if name.starts_with(OVERLAY_XATTR_PREFIX) {
                        self.refused_xattrs.push(name.into());
                    } else {
                        self.xattrs.push((name.into(), value.to_vec()));
                    }
                }
            }
        }
    }
}

fn clamp_id(id: u64) -> u32 {
    u32::try_from(id).unwrap_or(u32::MAX - 1)
}

/// A PAX time: decimal seconds since the epoch with an optional fraction.
/// Times before the epoch are clamped to it.
pub fn parse_pax_time(text: &str) -> Option<SystemTime> {
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    if secs.starts_with('-') {
        return Some(SystemTime::UNIX_EPOCH);
    }
    let secs: u64 = secs.parse().ok()?;
    let digits: String = frac.chars().take(9).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if digits.is_empty() {
        0
    } else {
        digits.parse::<u32>().ok()? * 10u32.pow(9 - digits.len() as u32)
    };
    Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times_keep_their_fraction() {
        let t = |s| parse_pax_time(s).map(|t| t.duration_since(SystemTime::UNIX_EPOCH).unwrap());
        assert_eq!(t("1700000000"), Some(Duration::new(1_700_000_000, 0)));
        assert_eq!(
            t("1700000000.5"),
            Some(Duration::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(t("12.123456789123"), Some(Duration::new(12, 123_456_789)));
        assert_eq!(t("-5.25"), Some(Duration::ZERO));
        assert_eq!(t("abc"), None);
        assert_eq!(t("1.2x"), None);
    }

    #[test]
    fn overlay_xattrs_from_a_layer_are_refused() {
        let mut meta = EntryMeta {
            uid: 0,
            gid: 0,
            mode: 0o644,
            mtime: SystemTime::UNIX_EPOCH,
            xattrs: Vec::new(),
            refused_xattrs: Vec::new(),
        };
        meta.apply_pax("SCHILY.xattr.user.note", b"hi");
        meta.apply_pax("SCHILY.xattr.trusted.overlay.redirect", b"/etc");
        meta.apply_pax("uid", b"1000");
        meta.apply_pax("gid", b"99999999999");
        assert_eq!(meta.xattrs, [("user.note".to_string(), b"hi".to_vec())]);
        assert_eq!(meta.refused_xattrs, ["trusted.overlay.redirect"]);
        assert_eq!((meta.uid, meta.gid), (1000, u32::MAX - 1));
    }
}
