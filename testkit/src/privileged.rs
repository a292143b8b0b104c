//! The root check every privileged test starts with. CI runs as root, so a
//! privileged test that finds itself without root is a broken setup and
//! fails loudly; the only way to skip is to ask for it explicitly with
//! `NODERUN_TEST_UNPRIVILEGED=1`, and even then the skip is printed.

/// The environment variable that lets privileged tests skip when not root.
pub const UNPRIVILEGED_ENV: &str = "NODERUN_TEST_UNPRIVILEGED";

const NEEDS_ROOT: &str = "this test needs root; run as root (CI is root) or set \
                          NODERUN_TEST_UNPRIVILEGED=1 to skip privileged tests";

/// What a privileged test should do on this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Effective uid 0: run the test.
    Run,
    /// Not root, and skipping was asked for: print a SKIP line and return.
    Skip,
    /// Not root, and skipping was not asked for: fail the test.
    Refuse,
}

/// Decide from the effective uid and the value of [`UNPRIVILEGED_ENV`]
/// (`None` when unset). Only the exact value `1` allows a skip.
pub fn decide(euid: u32, unprivileged_env: Option<&str>) -> Decision {
    match (euid, unprivileged_env) {
        (0, _) => Decision::Run,
        (_, Some("1")) => Decision::Skip,
        _ => Decision::Refuse,
    }
}

impl Decision {
    /// Act on the decision for the test named `test`: true to run, false
    /// after printing a SKIP line to stderr.
    ///
    /// # Panics
    /// On [`Decision::Refuse`], with a message saying how to fix the run.
    pub fn enforce(self, test: &str) -> bool {
        match self {
            Decision::Run => true,
            Decision::Skip => {
                eprintln!("SKIP {test}: not root and {UNPRIVILEGED_ENV}=1");
                false
            }
            Decision::Refuse => panic!("{test}: {NEEDS_ROOT}"),
        }
    }
}

/// True when the calling test may use root privileges; false (after a SKIP
/// line on stderr) when not root and `NODERUN_TEST_UNPRIVILEGED=1`.
///
/// # Panics
/// When not root and skipping was not asked for: a silent skip in CI, which
/// runs as root, must be impossible.
pub fn privileged() -> bool {
    let euid = nix::unistd::geteuid().as_raw();
    let env = std::env::var(UNPRIVILEGED_ENV).ok();
    decide(euid, env.as_deref()).enforce(&current_test())
}

/// The test's name: libtest names each test's thread after the test.
fn current_test() -> String {
    match std::thread::current().name() {
        Some(name) if name != "main" => name.to_string(),
        _ => "this test".to_string(),
    }
}

/// Return early from the calling test (with the given value, `()` when
/// none) unless [`privileged`] allows it to run.
#[macro_export]
macro_rules! require_privileged {
    () => {
        if !$crate::privileged() {
            return;
        }
    };
    ($skipped:expr) => {
        if !$crate::privileged() {
            return $skipped;
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decision_table() {
        let cases = [
            (0, None, Decision::Run),
            (0, Some("1"), Decision::Run),
            (0, Some("0"), Decision::Run),
            (1000, None, Decision::Refuse),
            (1000, Some("1"), Decision::Skip),
            (1000, Some("0"), Decision::Refuse),
            (1000, Some("true"), Decision::Refuse),
            (1000, Some(""), Decision::Refuse),
            (65534, Some("1"), Decision::Skip),
        ];
        for (euid, env, want) in cases {
            assert_eq!(decide(euid, env), want, "euid {euid}, env {env:?}");
        }
    }

    #[test]
    fn run_and_skip_enforce_to_bool() {
        assert!(Decision::Run.enforce("t"));
        assert!(!Decision::Skip.enforce("t"));
    }

    #[test]
    #[should_panic(expected = "some::test: this test needs root; run as root (CI is root)")]
    fn refuse_panics_naming_the_test() {
        Decision::Refuse.enforce("some::test");
    }

    #[test]
    fn current_test_is_the_libtest_thread_name() {
        assert!(current_test().ends_with("current_test_is_the_libtest_thread_name"));
    }
}
