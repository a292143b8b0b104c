//! [`Cleanup`]: run a closure when the guard goes out of scope, for test
//! resources that have no dedicated guard. A failing or panicking closure is
//! logged from `Drop`, never re-raised there.

use crate::error::BoxError;
use crate::{report, Error};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};

type Action = Box<dyn FnOnce() -> Result<(), BoxError>>;

/// Runs its closure once: on [`Cleanup::cleanup`] or on drop.
#[must_use = "the closure runs when the guard is dropped"]
pub struct Cleanup {
    what: String,
    action: Option<Action>,
}

impl Cleanup {
    /// A guard that runs `action` to remove `what` (a short description for
    /// error messages, such as "veth nrt0001a0003").
    pub fn new<F, E>(what: impl Into<String>, action: F) -> Cleanup
    where
        F: FnOnce() -> Result<(), E> + 'static,
        E: Into<BoxError>,
    {
        Cleanup {
            what: what.into(),
            action: Some(Box::new(move || action().map_err(Into::into))),
        }
    }

    /// Run the closure now and return its result.
    pub fn cleanup(mut self) -> Result<(), Error> {
        self.release()
    }

    /// Drop the guard without running the closure.
    pub fn disarm(mut self) {
        self.action = None;
    }

    fn release(&mut self) -> Result<(), Error> {
        let Some(action) = self.action.take() else {
            return Ok(());
        };
        let outcome = catch_unwind(AssertUnwindSafe(action)).unwrap_or_else(|payload| {
            Err(format!("the cleanup closure panicked: {}", panic_text(&*payload)).into())
        });
        outcome.map_err(|source| Error::Cleanup {
            what: self.what.clone(),
            source,
        })
    }
}

/// The message of a panic payload, when it has one.
pub(crate) fn panic_text(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "(no message)"
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Err(err) = self.release() {
            report::drop_failed("Cleanup", &err);
        }
    }
}

impl fmt::Debug for Cleanup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cleanup")
            .field("what", &self.what)
            .field("armed", &self.action.is_some())
            .finish()
    }
}
