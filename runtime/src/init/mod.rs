//! The container's init process and the setup protocol between it and the
//! runtime. The runtime computes an [`InitPlan`] before cloning, so the
//! child has everything it needs; the child ([`child_main`]) then joins
//! namespaces, builds its root filesystem, takes on the process's identity,
//! reports `Ready`, waits on the exec fifo for `start`, and execs.
//!
//! Message order over the [`Channel`]:
//! runtime `Go` → init `NamespacesReady` → runtime `HooksDone` → init
//! `Ready` (or `Failed` at any point).

mod channel;
mod child;
mod plan;

pub use channel::{Channel, Message};
pub use child::child_main;
pub use plan::InitPlan;
