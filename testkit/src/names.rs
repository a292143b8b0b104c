//! Names for test resources that are unique across the threads of one test
//! binary and across test processes running at the same time: the pid tells
//! processes apart, a process-wide atomic counter tells calls apart.
//!
//! [`unique_name`] fits a Linux interface name (at most 15 bytes), so it
//! encodes both numbers in fixed-width base 36: 5 characters for the pid
//! (enough for the largest `pid_max`, 2^22) and 3 for the counter. Fixed
//! widths keep names from different prefixes from ever colliding.
//! [`unique_name_long`] is for paths, cgroups and namespaces, where length
//! is free and readability wins.

use std::sync::atomic::{AtomicU32, Ordering};

/// The longest interface name Linux accepts (IFNAMSIZ - 1).
pub const IFNAMSIZ_MAX: usize = 15;

const PID_DIGITS: usize = 5;
const COUNTER_DIGITS: usize = 3;
const COUNTER_LIMIT: u32 = 36 * 36 * 36;
const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// The longest prefix [`unique_name`] accepts.
pub const MAX_SHORT_PREFIX: usize = IFNAMSIZ_MAX - PID_DIGITS - COUNTER_DIGITS;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name of at most 15 bytes that starts with `prefix` and no other call,
/// in this or a concurrently running process, returns.
///
/// # Panics
/// If `prefix` is longer than [`MAX_SHORT_PREFIX`] bytes or holds a byte an
/// interface name cannot (`/`, `:`, whitespace, NUL), or after 46656 calls
/// in one process: all are bugs in the calling test.
pub fn unique_name(prefix: &str) -> String {
    assert!(
        prefix.len() <= MAX_SHORT_PREFIX,
        "unique_name prefix {prefix:?} is longer than {MAX_SHORT_PREFIX} bytes"
    );
    assert!(
        prefix.bytes().all(is_ifname_byte),
        "unique_name prefix {prefix:?} holds a byte not allowed in an interface name"
    );
    let count = next_count();
    assert!(
        count < COUNTER_LIMIT,
        "unique_name ran out of names after {COUNTER_LIMIT} in this process"
    );
    let mut name = String::with_capacity(IFNAMSIZ_MAX);
    name.push_str(prefix);
    push_base36(&mut name, std::process::id(), PID_DIGITS);
    push_base36(&mut name, count, COUNTER_DIGITS);
    name
}

/// A readable unique name, `<prefix>-<pid>-<counter>`, for resources whose
/// names are not length-limited (directories, cgroups, network namespaces).
pub fn unique_name_long(prefix: &str) -> String {
    format!("{prefix}-{}-{}", std::process::id(), next_count())
}

fn next_count() -> u32 {
    COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn is_ifname_byte(b: u8) -> bool {
    b != b'/' && b != b':' && b != 0 && !b.is_ascii_whitespace()
}

/// Append `value` in base 36, zero-padded to `width` digits.
///
/// # Panics
/// If `value` needs more than `width` digits.
fn push_base36(out: &mut String, mut value: u32, width: usize) {
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        *slot = DIGITS[(value % 36) as usize];
        value /= 36;
    }
    assert_eq!(value, 0, "value does not fit in {width} base-36 digits");
    out.extend(digits.into_iter().map(char::from));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base36(value: u32, width: usize) -> String {
        let mut out = String::new();
        push_base36(&mut out, value, width);
        out
    }

    #[test]
    fn base36_is_fixed_width() {
        let cases = [
            (0, 3, "000"),
            (35, 3, "00z"),
            (36, 3, "010"),
            (46655, 3, "zzz"),
            (4_194_304, 5, "2hwcg"),
        ];
        for (value, width, want) in cases {
            assert_eq!(base36(value, width), want, "value {value}");
        }
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn base36_refuses_overflow() {
        base36(46656, 3);
    }

    #[test]
    fn largest_pid_fits_the_pid_width() {
        // pid_max can be at most 2^22 (PID_MAX_LIMIT on 64-bit kernels).
        assert!(36u32.pow(PID_DIGITS as u32) > 1 << 22);
    }

    #[test]
    fn short_name_at_max_prefix_fits_ifnamsiz() {
        let prefix = "p".repeat(MAX_SHORT_PREFIX);
        let name = unique_name(&prefix);
        assert_eq!(name.len(), IFNAMSIZ_MAX, "{name}");
        assert!(name.starts_with(&prefix));
    }

    #[test]
    #[should_panic(expected = "longer than")]
    fn short_name_refuses_long_prefix() {
        unique_name(&"p".repeat(MAX_SHORT_PREFIX + 1));
    }

    #[test]
    #[should_panic(expected = "not allowed")]
    fn short_name_refuses_slash() {
        unique_name("a/b");
    }

    #[test]
    fn long_name_carries_pid() {
        let name = unique_name_long("noderun-test");
        let pid = std::process::id().to_string();
        assert!(name.starts_with("noderun-test-"), "{name}");
        assert_eq!(name.split('-').nth(2), Some(pid.as_str()), "{name}");
    }
}
