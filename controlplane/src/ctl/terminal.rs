//! `ctl exec -t`'s local terminal: raw mode while the command runs (keys
//! go to the remote terminal as typed; put back on drop, also on error),
//! and its size, sent at the start and on every SIGWINCH.

use nix::sys::termios::{self, SetArg, Termios};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error("stdin is not a terminal; run without -t, or from a terminal")]
    NotATerminal,
    #[error("{op} on stdin: {errno}")]
    Termios { op: &'static str, errno: nix::Error },
}

/// Stdin in raw mode until dropped.
#[derive(Debug)]
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enter() -> Result<RawMode, TerminalError> {
        let stdin = std::io::stdin();
        if !std::io::IsTerminal::is_terminal(&stdin) {
            return Err(TerminalError::NotATerminal);
        }
        let saved = termios::tcgetattr(&stdin).map_err(|errno| TerminalError::Termios {
            op: "tcgetattr",
            errno,
        })?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(&stdin, SetArg::TCSANOW, &raw).map_err(|errno| {
            TerminalError::Termios {
                op: "tcsetattr",
                errno,
            }
        })?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.saved);
    }
}

/// The terminal's rows and columns (of stdout), when it is one.
pub fn size() -> Option<(u16, u16)> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the pointer, which points
    // at a live local for the whole call; fd 1 is only read from.
    let r = unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) };
    (r == 0 && ws.ws_row > 0).then_some((ws.ws_row, ws.ws_col))
}

/// The size now, then again on each change (SIGWINCH).
pub fn resizes() -> mpsc::Receiver<(u16, u16)> {
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        if let Some(s) = size() {
            if tx.send(s).await.is_err() {
                return;
            }
        }
        let kind = tokio::signal::unix::SignalKind::window_change();
        let Ok(mut changes) = tokio::signal::unix::signal(kind) else {
            return;
        };
        while changes.recv().await.is_some() {
            if let Some(s) = size() {
                if tx.send(s).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}
