//! What the agent and its runner say to each other: one postcard-encoded
//! [`Request`] per SOCK_SEQPACKET packet, answered by one [`Response`].
//! Errors cross as text (the whole error chain, with the container and
//! path it names), since the runner's error types stay in the runner.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The largest packet either side sends or accepts.
pub const MAX_PACKET: usize = 256 * 1024;

/// Where the container's init gets its stdio: stdin is /dev/null, stdout
/// and stderr are appended to these files (created if missing). With
/// `rotation`, both go through a pipe to a logger process that writes
/// `stdout` (which must then be `stderr` too) and rotates it by size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stdio {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    pub rotation: Option<crate::agent::logs::LogRotation>,
}

/// One lifecycle verb on the container `id` under the runtime root `root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    Create {
        root: PathBuf,
        id: String,
        bundle: PathBuf,
        stdio: Option<Stdio>,
    },
    Start {
        root: PathBuf,
        id: String,
    },
    Kill {
        root: PathBuf,
        id: String,
        signal: i32,
        /// Every process of the container's cgroup, not only the init.
        all: bool,
    },
    Delete {
        root: PathBuf,
        id: String,
        force: bool,
    },
    State {
        root: PathBuf,
        id: String,
    },
    /// Run `args` in the running container, as its own process (user,
    /// capabilities, env with `env` on top, cwd, no_new_privs, seccomp).
    /// Without `tty` the packet carries the process's stdin, stdout and
    /// stderr (SCM_RIGHTS); with it, none: the process gets a pty.
    Exec {
        root: PathBuf,
        id: String,
        args: Vec<String>,
        env: Vec<String>,
        tty: bool,
    },
    /// The agent is done with this runner (it stops, or drops a handle):
    /// answered with [`Response::Closing`], then the runner serves no
    /// more. It exits at once when none of its inits runs; else it stays
    /// their parent until they have all ended, to record their exits.
    Close,
}

impl Request {
    /// The container the request is about (for error context).
    pub fn id(&self) -> &str {
        match self {
            Request::Create { id, .. }
            | Request::Start { id, .. }
            | Request::Kill { id, .. }
            | Request::Delete { id, .. }
            | Request::State { id, .. }
            | Request::Exec { id, .. } => id,
            Request::Close => "",
        }
    }

    /// The verb's name, as runc spells it.
    pub fn verb(&self) -> &'static str {
        match self {
            Request::Create { .. } => "create",
            Request::Start { .. } => "start",
            Request::Kill { .. } => "kill",
            Request::Delete { .. } => "delete",
            Request::State { .. } => "state",
            Request::Exec { .. } => "exec",
            Request::Close => "close",
        }
    }
}

/// A container's lifecycle status, as the runtime reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

/// How the container's init ended, seen by the runner (its parent).
/// (Also the exit file's `exit`: `{"code": 7}`, `{"signal": 9}`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// A container's state: its status, its init, and when it ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerState {
    pub id: String,
    pub status: Status,
    /// The init's pid in the runner's pid namespace.
    pub pid: i32,
    /// The cgroup, relative to each hierarchy's root.
    pub cgroup_path: PathBuf,
    /// RFC 3339 times; `started` once `start` succeeded through this
    /// runner, `finished` once the runner reaped the init.
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// Known when the runner reaped the init; `None` for a stopped
    /// container whose init was not this runner's child.
    pub exit: Option<Exit>,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// create: the init's pid.
    Created {
        pid: i32,
    },
    /// start, kill, delete.
    Done,
    State(ContainerState),
    /// exec: the process runs. The packet carries a pidfd of it, the read
    /// end of a pipe on which its [`Exit`] is written (postcard) when the
    /// runner reaps it, and with a tty the pty's master.
    Executing {
        pid: i32,
    },
    /// close: the runner stops serving; it stays to reap `inits` inits
    /// that still run (exits at once when 0).
    Closing {
        inits: u32,
    },
    /// The verb failed; the text is the whole error chain.
    Failed {
        kind: FailureKind,
        message: String,
    },
}

/// The kind of a failure, for the agent to act on without reading text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// No container of that id under that root.
    NotFound,
    /// The container exists already.
    AlreadyExists,
    /// The container is in a state the verb does not apply to.
    WrongState,
    Other,
}

pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_allocvec(value).expect("protocol messages always serialize")
}

pub fn decode<'a, T: Deserialize<'a>>(packet: &'a [u8]) -> Result<T, postcard::Error> {
    postcard::from_bytes(packet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_responses_round_trip() {
        let requests = [
            Request::Create {
                root: "/run/noderun/containers".into(),
                id: "uid_web".into(),
                bundle: "/run/noderun/pods/uid/web".into(),
                stdio: Some(Stdio {
                    stdout: "/var/log/x/0.log".into(),
                    stderr: "/var/log/x/0.log".into(),
                    rotation: Some(Default::default()),
                }),
            },
            Request::Start {
                root: "/r".into(),
                id: "a".into(),
            },
            Request::Kill {
                root: "/r".into(),
                id: "a".into(),
                signal: 15,
                all: true,
            },
            Request::Delete {
                root: "/r".into(),
                id: "a".into(),
                force: false,
            },
            Request::State {
                root: "/r".into(),
                id: "a".into(),
            },
            Request::Exec {
                root: "/r".into(),
                id: "a".into(),
                args: vec!["cat".into(), "/etc/hostname".into()],
                env: vec!["TERM=xterm".into()],
                tty: true,
            },
            Request::Close,
        ];
        for r in &requests {
            assert_eq!(&decode::<Request>(&encode(r)).unwrap(), r);
        }
        let responses = [
            Response::Created { pid: 42 },
            Response::Executing { pid: 43 },
            Response::Closing { inits: 2 },
            Response::Done,
            Response::Failed {
                kind: FailureKind::NotFound,
                message: "container \"a\" does not exist".into(),
            },
            Response::State(ContainerState {
                id: "a".into(),
                status: Status::Stopped,
                pid: 42,
                cgroup_path: "noderun/besteffort/podx/a".into(),
                created: "2026-12-02T10:00:00Z".into(),
                started: Some("2026-12-02T10:00:01Z".into()),
                finished: None,
                exit: Some(Exit::Signal(9)),
            }),
        ];
        for r in &responses {
            assert_eq!(&decode::<Response>(&encode(r)).unwrap(), r);
        }
        assert!(decode::<Request>(&[200, 1, 2]).is_err());
        assert!(decode::<Response>(&[]).is_err());
    }
}
