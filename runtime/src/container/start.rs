//! `start`: release a created container's init, which waits on the exec
//! fifo, so that it execs the user's process; then run poststart hooks.

use super::hooks::{self, Phase};
use super::{Container, ContainerError, Status, EXEC_FIFO};
use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub fn start(c: &Container) -> Result<(), ContainerError> {
    let status = c.status();
    if status != Status::Created {
        return Err(c.wrong_state(status, "only a created container can be started"));
    }
    let fifo = c.dir().join(EXEC_FIFO);
    let released = wait_for_init(c, &fifo);
    let _ = std::fs::remove_file(&fifo);
    if !released? {
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

/// Open the exec fifo for reading and wait for the init's one byte, which
/// says it is past the wait and about to exec. Returns false when the init
/// died instead (it is checked between waits, so a dead init never leaves
/// `start` blocked on a fifo no one will write).
fn wait_for_init(c: &Container, fifo: &Path) -> Result<bool, ContainerError> {
    let io = |op: &'static str| {
        let path = fifo.to_path_buf();
        move |source| ContainerError::Io { op, path, source }
    };
    // Non-blocking, so the open itself does not wait for a writer.
    let mut f = std::fs::File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(fifo)
        .map_err(io("open"))?;
    loop {
        let mut fds = [PollFd::new(f.as_fd(), PollFlags::POLLIN)];
        let ready = match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(n) => n > 0,
            Err(Errno::EINTR) => false,
            Err(e) => return Err(io("poll")(e.into())),
        };
        if ready {
            let mut byte = [0u8; 1];
            match f.read(&mut byte) {
                Ok(1) => return Ok(true),
                // The writer closed without a byte: the init failed.
                Ok(_) => return Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(io("read")(e)),
            }
        } else if !c.record.init_alive() {
            return Ok(false);
        }
    }
}
