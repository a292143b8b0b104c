//! `process.terminal` with `--console-socket`, as runc does it: the runtime
//! connects to the caller's Unix socket before the clone (its path is gone
//! after pivot_root); the init, inside the container, opens a pty on the
//! container's own devpts instance, sends the master to the caller with
//! SCM_RIGHTS (the payload is the slave's name, as runc sends it), and
//! makes the slave its controlling terminal and stdio.

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use std::io::IoSlice;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("connect to console socket {path}: {source}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("terminal: {op}: {errno}")]
    Pty { op: &'static str, errno: Errno },
}

/// Connect to the caller's console socket (in the runtime, before the
/// clone; the init inherits the connection).
pub fn connect(path: &Path) -> Result<UnixStream, ConsoleError> {
    UnixStream::connect(path).map_err(|source| ConsoleError::Connect {
        path: path.into(),
        source,
    })
}

/// In the init, after pivot_root: make the pty, hand the master over
/// `socket`, and take the slave as controlling terminal and fds 0-2, owned
/// by the process's user.
pub fn attach_terminal(socket: &UnixStream, uid: u32, gid: u32) -> Result<(), ConsoleError> {
    let err = |op| move |errno| ConsoleError::Pty { op, errno };
    let master = nix::pty::posix_openpt(OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC)
        .map_err(err("open /dev/ptmx"))?;
    nix::pty::grantpt(&master).map_err(err("grantpt"))?;
    nix::pty::unlockpt(&master).map_err(err("unlockpt"))?;
    let name = nix::pty::ptsname_r(&master).map_err(err("ptsname"))?;
    // The slave through the master (TIOCGPTPEER), not by path: the name
    // cannot be swapped for something else in between.
    // SAFETY: TIOCGPTPEER on a pty master returns a new fd for its slave
    // or -1; it takes the open flags as its argument.
    let slave = Errno::result(unsafe {
        libc::ioctl(
            master.as_raw_fd(),
            libc::TIOCGPTPEER,
            libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC,
        )
    })
    .map_err(err("TIOCGPTPEER"))?;
    // SAFETY: the ioctl returned a new fd that nothing else owns.
    let slave = unsafe { OwnedFd::from_raw_fd(slave) };
    nix::unistd::fchown(
        &slave,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(gid)),
    )
    .map_err(err("chown the pty to the process's user"))?;

    let fds = [master.as_raw_fd()];
    let payload = [IoSlice::new(name.as_bytes())];
    sendmsg::<()>(
        socket.as_raw_fd(),
        &payload,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(err("send the pty master to the console socket"))?;
    drop(master);

    nix::unistd::setsid().map_err(err("setsid"))?;
    // SAFETY: TIOCSCTTY with 0 on a terminal fd, from a session leader
    // without a controlling terminal.
    Errno::result(unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) })
        .map_err(err("TIOCSCTTY"))?;
    for target in 0..=2 {
        // SAFETY: dup2 onto the standard fds, which this process owns and
        // replaces on purpose; no Rust object holds them.
        Errno::result(unsafe { libc::dup2(slave.as_raw_fd(), target) })
            .map_err(err("dup2 the pty to stdio"))?;
    }
    Ok(())
}
