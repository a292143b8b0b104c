//! `nrc run` in the foreground with `process.terminal`: as runc does, nrc
//! itself takes the pty's master (over a private console socket) and
//! copies between its own stdio and the container's terminal until the
//! container's side closes. The caller's terminal, if stdin is one, is put
//! in raw mode for the duration and its size given to the container.

use anyhow::{Context, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use nix::sys::termios::{self, SetArg, Termios};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, RawFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// Whether the bundle's process asks for a terminal.
pub fn wants_terminal(bundle: &Path) -> bool {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|c| c["process"]["terminal"] == true)
}

/// A console socket of nrc's own, in a private temporary directory.
pub struct ConsoleSocket {
    dir: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    pub fn new(id: &str) -> Result<ConsoleSocket> {
        let dir = std::env::temp_dir().join(format!("nrc-console-{}-{id}", std::process::id()));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let listener = UnixListener::bind(dir.join("sock"))
            .with_context(|| format!("binding a console socket in {}", dir.display()));
        match listener {
            Ok(listener) => Ok(ConsoleSocket { dir, listener }),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(e)
            }
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("sock")
    }

    /// The pty master the container's init sent (during create).
    pub fn receive(&self) -> Result<File> {
        let (conn, _) = self.listener.accept().context("accepting the console")?;
        let mut name = [0u8; 256];
        let mut iov = [std::io::IoSliceMut::new(&mut name)];
        let mut space = nix::cmsg_space!([RawFd; 1]);
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::empty(),
        )
        .context("receiving the terminal")?;
        for cmsg in msg.cmsgs().context("reading the terminal message")? {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                if let Some(&fd) = fds.first() {
                    // SAFETY: SCM_RIGHTS gave this process the fd; it is ours.
                    return Ok(unsafe { File::from_raw_fd(fd) });
                }
            }
        }
        anyhow::bail!("the container sent no terminal")
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copy stdin to the master and the master to stdout until the container's
/// side of the terminal is gone.
pub fn proxy(master: File) -> Result<()> {
    let stdin = std::io::stdin();
    let raw = RawMode::enter(&stdin);
    if let Ok(size) = window_size(stdin.as_raw_fd()) {
        // SAFETY: TIOCSWINSZ reads a winsize struct we own.
        unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    }
    let mut to_container = master.try_clone().context("duplicating the terminal")?;
    // The input side ends with the process (it may block in read).
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut input = std::io::stdin();
        while let Ok(n) = input.read(&mut buf) {
            if n == 0 || to_container.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut from_container = master;
    let mut out = std::io::stdout();
    let mut buf = [0u8; 4096];
    loop {
        match from_container.read(&mut buf) {
            // EIO: every slave fd is closed (the container exited).
            Ok(0) | Err(_) => break,
            Ok(n) => {
                out.write_all(&buf[..n])?;
                out.flush()?;
            }
        }
    }
    drop(raw);
    Ok(())
}

fn window_size(fd: RawFd) -> std::io::Result<libc::winsize> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize struct we own; fails on non-ttys.
    if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) } == 0 {
        Ok(size)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The caller's terminal in raw mode, restored on drop.
struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    fn enter(stdin: &std::io::Stdin) -> RawMode {
        let saved = termios::tcgetattr(stdin.as_fd()).ok();
        if let Some(t) = &saved {
            let mut raw = t.clone();
            termios::cfmakeraw(&mut raw);
            let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw);
        }
        RawMode { saved }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, t);
        }
    }
}
