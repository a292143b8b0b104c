//! The generic closure guard.

use crate::support::run_panicking;
use noderun_testkit::{Cleanup, Error};
use std::cell::Cell;
use std::rc::Rc;

fn counting_guard(runs: &Rc<Cell<u32>>) -> Cleanup {
    let runs = Rc::clone(runs);
    Cleanup::new("counter", move || {
        runs.set(runs.get() + 1);
        Ok::<(), std::io::Error>(())
    })
}

#[test]
fn runs_once_on_drop() {
    let runs = Rc::new(Cell::new(0));
    drop(counting_guard(&runs));
    assert_eq!(runs.get(), 1);
}

#[test]
fn runs_when_the_test_panics() {
    let runs = Rc::new(Cell::new(0));
    run_panicking(|out| {
        let _guard = counting_guard(&runs);
        *out = Some(());
        panic!("test body fails");
    });
    assert_eq!(runs.get(), 1);
}

#[test]
fn explicit_cleanup_runs_once_and_disarm_never() {
    let runs = Rc::new(Cell::new(0));
    counting_guard(&runs).cleanup().expect("cleanup");
    assert_eq!(runs.get(), 1);
    counting_guard(&runs).disarm();
    assert_eq!(runs.get(), 1);
}

#[test]
fn explicit_cleanup_returns_the_closure_error() {
    let guard = Cleanup::new("veth nrt-x", || Err("link busy"));
    let err = guard.cleanup().expect_err("closure failed");
    assert!(matches!(&err, Error::Cleanup { what, .. } if what == "veth nrt-x"));
    assert_eq!(err.to_string(), "cleanup veth nrt-x");
    let source = std::error::Error::source(&err).expect("source");
    assert_eq!(source.to_string(), "link busy");
}

#[test]
fn panicking_closure_is_reported_not_raised() {
    let guard = Cleanup::new("panicky", || -> Result<(), std::io::Error> {
        panic!("oops")
    });
    let err = guard.cleanup().expect_err("closure panicked");
    let source = std::error::Error::source(&err).expect("source");
    assert!(source.to_string().contains("oops"), "{source}");
    // Dropped while the test body unwinds: a second panic escaping Drop
    // would abort the whole test binary.
    run_panicking(|out| {
        let _guard = Cleanup::new("panicky", || -> Result<(), std::io::Error> {
            panic!("oops")
        });
        *out = Some(());
        panic!("test body fails");
    });
}
