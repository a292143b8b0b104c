//! How guards report a cleanup that failed inside `Drop`: a line on stderr
//! with the whole error chain. A guard never panics in `Drop`, because a
//! panic there while the test is already unwinding aborts the process and
//! hides the test's own failure.

use std::error::Error as StdError;
use std::fmt::Write as _;

/// Log that dropping `guard` failed with `err`.
pub(crate) fn drop_failed(guard: &str, err: &crate::Error) {
    eprintln!(
        "noderun-testkit: {guard} could not clean up, the host may keep a leftover: {}",
        chain(err)
    );
}

/// `err` and its sources, joined with ": ".
pub(crate) fn chain(err: &dyn StdError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        // Writing into a String cannot fail.
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn chain_includes_every_source() {
        let err = crate::Error::Unmount {
            target: PathBuf::from("/tmp/x"),
            errno: nix::errno::Errno::EBUSY,
        };
        let text = chain(&err);
        assert!(text.starts_with("unmount /tmp/x: "), "{text}");
        assert!(text.contains("EBUSY"), "{text}");
    }
}
