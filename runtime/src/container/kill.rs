//! `kill`: send a signal to the container's init, or with `all` to every
//! process in its cgroup.

use super::{Container, ContainerError, Status};
use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// `TERM`, `SIGTERM`, `term` or `15`.
pub fn parse_signal(text: &str) -> Result<Signal, ContainerError> {
    let bad = || ContainerError::BadSignal(text.into());
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

pub fn kill(c: &Container, signal: Signal, all: bool) -> Result<(), ContainerError> {
    let status = c.status();
    if status == Status::Stopped {
        return Err(c.wrong_state(status, "there is no process to signal"));
    }
    let pids = if all {
        c.cgroup.pids()?
    } else {
        vec![c.record.pid]
    };
    for pid in pids {
        match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(errno) => {
                return Err(ContainerError::Signal {
                    pid,
                    signal: signal as i32,
                    errno,
                })
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_spellings() {
        for (text, sig) in [
            ("TERM", Signal::SIGTERM),
            ("SIGKILL", Signal::SIGKILL),
            ("hup", Signal::SIGHUP),
            ("9", Signal::SIGKILL),
        ] {
            assert_eq!(parse_signal(text).unwrap(), sig, "{text}");
        }
        for bad in ["", "NOPE", "999", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad:?} accepted");
        }
    }
}
