//! `start`: release a created container's init, which waits on the exec
//! fifo, so that it execs the user's process; then run poststart hooks.

use super::hooks::{self, Phase};
use super::{Container, ContainerError, Status, EXEC_FIFO};
use std::io::Read;

pub fn start(c: &Container) -> Result<(), ContainerError> {
    let status = c.status();
    if status != Status::Created {
        return Err(c.wrong_state(status, "only a created container can be started"));
    }
    let fifo = c.dir().join(EXEC_FIFO);
    // Opening for reading pairs with the init's open for writing; its one
    // byte says it is past the wait and about to exec.
    let mut f = std::fs::File::open(&fifo).map_err(|source| ContainerError::Io {
        op: "open",
        path: fifo.clone(),
        source,
    })?;
    let mut byte = [0u8; 1];
    let n = f.read(&mut byte).map_err(|source| ContainerError::Io {
        op: "read",
        path: fifo.clone(),
        source,
    })?;
    let _ = std::fs::remove_file(&fifo);
    if n == 0 {
        return Err(ContainerError::Init {
            id: c.record.id.clone(),
            message: "the init exited before it could start the process".into(),
        });
    }
    if let Some(h) = c.record.hooks.as_ref().and_then(|h| h.poststart().clone()) {
        // Poststart failures are reported, not undone (runtime spec).
        if let Err(e) = hooks::run(Phase::Poststart, &h, &c.state()) {
            eprintln!("warning: {e}");
        }
    }
    Ok(())
}
