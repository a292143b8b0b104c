//! `exec`: run another process in a running container, as runc does: in
//! every namespace the container's init is in (where it differs from the
//! runtime's own), in its cgroup, with the container's seccomp profile, and
//! with its own args, env, cwd and user (the container's process is the
//! template for what the caller leaves out).
//!
//! The runtime enters the container's pid namespace itself (which only
//! affects the children it makes), clones the process, puts it in the
//! cgroup, and lets it join the other namespaces (user first, mount last),
//! take its identity and exec. Failures before the exec come back over the
//! same channel the init uses.

use super::{Container, ContainerError, Status};
use crate::init::{Channel, Message};
use crate::process;
use crate::sys::ns::NsFile;
use crate::sys::spawn::{self, Exit};
use nix::sched::CloneFlags;
use oci_spec::runtime::{Linux, Process};
use std::path::{Path, PathBuf};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    pub process: Process,
    /// Return once the process runs instead of waiting for it.
    pub detach: bool,
    pub pid_file: Option<PathBuf>,
    /// Where to send the terminal's master when `process.terminal` is set.
    pub console_socket: Option<ConsoleSocket>,
}

/// The console socket a terminal's master is sent over.
#[derive(Debug, Clone)]
pub enum ConsoleSocket {
    /// A listening socket's path (runc's `--console-socket`), connected
    /// before the clone.
    Path(PathBuf),
    /// One end of a pair the caller made (the node's runner receives the
    /// master on the other end).
    Connected(std::sync::Arc<std::os::unix::net::UnixStream>),
}

impl ExecOptions {
    /// The container's own process (user, capabilities, env, cwd,
    /// no_new_privs, rlimits) running `args` instead, with `extra_env`
    /// (`NAME=VALUE`) over its env and a terminal when `tty`.
    pub fn for_command(
        c: &Container,
        args: Vec<String>,
        extra_env: &[String],
        tty: bool,
    ) -> Process {
        let mut p = c.record.process.clone().unwrap_or_default();
        p.set_args(Some(args));
        p.set_terminal(Some(tty));
        let mut env = p.env().clone().unwrap_or_default();
        for kv in extra_env {
            let name = kv.split_once('=').map_or(kv.as_str(), |(n, _)| n);
            env.retain(|e| e.split_once('=').map(|(n, _)| n) != Some(name));
            env.push(kv.clone());
        }
        p.set_env(Some(env));
        p
    }
}

/// How an exec went: the process's pid (runtime's view), and its exit when
/// the caller waited.
#[derive(Debug, Clone, Copy)]
pub struct Executed {
    pub pid: i32,
    pub exit: Option<Exit>,
}

/// Namespace types in the order they are entered: user first (it decides
/// what the others allow), mount last (after it, host paths are gone).
/// The pid namespace is entered by the runtime before the clone.
const JOIN_ORDER: [(&str, CloneFlags); 6] = [
    ("user", CloneFlags::CLONE_NEWUSER),
    ("cgroup", CloneFlags::CLONE_NEWCGROUP),
    ("ipc", CloneFlags::CLONE_NEWIPC),
    ("uts", CloneFlags::CLONE_NEWUTS),
    ("net", CloneFlags::CLONE_NEWNET),
    ("mnt", CloneFlags::CLONE_NEWNS),
];

pub fn exec(c: &Container, opts: &ExecOptions) -> Result<Executed, ContainerError> {
    let status = c.status();
    if status != Status::Running {
        return Err(c.wrong_state(status, "exec needs a running container"));
    }
    let init = c.record.pid;
    let pid_ns = differing_namespace(init, "pid", CloneFlags::CLONE_NEWPID)?;
    let joins = JOIN_ORDER
        .iter()
        .filter_map(|(name, flag)| differing_namespace(init, name, *flag).transpose())
        .collect::<Result<Vec<NsFile>, _>>()?;
    let enters_user = joins.iter().any(|n| n.nstype == CloneFlags::CLONE_NEWUSER);
    let linux = c.record.linux.clone().unwrap_or_default();
    let seccomp = linux
        .seccomp()
        .as_ref()
        .map(crate::seccomp::compile)
        .transpose()
        .map_err(|e| init_error(c, e.to_string()))?;
    let trampoline = super::exe_guard::choose(&c.record.id, linux.seccomp().as_ref())?;
    let process = &opts.process;
    if process.args().as_ref().is_none_or(|a| a.is_empty()) {
        return Err(init_error(c, "exec: no command given".into()));
    }

    let console = match (&opts.console_socket, process.terminal().unwrap_or(false)) {
        (Some(ConsoleSocket::Path(path)), true) => Some(std::sync::Arc::new(
            process::console::connect(path).map_err(|e| init_error(c, e.to_string()))?,
        )),
        (Some(ConsoleSocket::Connected(stream)), true) => Some(stream.clone()),
        (None, false) => None,
        (None, true) => {
            return Err(init_error(
                c,
                "exec: a terminal needs --console-socket to receive it".into(),
            ))
        }
        (Some(_), false) => {
            return Err(init_error(
                c,
                "exec: --console-socket needs a terminal (-t or process.terminal)".into(),
            ))
        }
    };

    // v1: the process moves itself into the cgroup (fast, see
    // cgroups::SelfJoin); v2: it is cloned into it; else we move it.
    let self_join = c.cgroup.self_join()?;
    let setup = Setup {
        joins: &joins,
        enters_user,
        console: console.as_deref(),
        linux: &linux,
        seccomp: seccomp.as_ref(),
        cgroup: self_join.as_ref(),
        trampoline,
    };
    // Entering the pid namespace changes where the caller's next children
    // go: put it back once the process is cloned, so a long-lived caller
    // (the node's runner) creates its next container from its own.
    let restore_pid_ns = match &pid_ns {
        Some(ns) => {
            let ours = NsFile::open(
                Path::new("/proc/self/ns/pid_for_children"),
                CloneFlags::CLONE_NEWPID,
            )
            .map_err(|e| init_error(c, e.to_string()))?;
            ns.enter().map_err(|e| init_error(c, e.to_string()))?;
            Some(ours)
        }
        None => None,
    };
    let cloned = clone_exec_child(c, &setup, process);
    if let Some(ours) = restore_pid_ns {
        if let Err(e) = ours.enter() {
            if let Ok((pid, ..)) = &cloned {
                let _ = nix::sys::signal::kill(*pid, nix::sys::signal::Signal::SIGKILL);
                let _ = spawn::wait_exit(*pid);
            }
            return Err(init_error(
                c,
                format!("back to the runtime's pid namespace: {e}"),
            ));
        }
    }
    let (pid, placed, channel) = cloned?;

    let started = (|| {
        if !placed {
            c.cgroup.add_process(pid.as_raw())?;
        }
        channel
            .send(&Message::Go {
                host_pid: pid.as_raw(),
            })
            .map_err(|e| init_error(c, format!("exec channel: {e}")))?;
        // End of file: the process exec'd (its end is close-on-exec).
        match channel.recv() {
            Ok(None) => Ok(()),
            Ok(Some(Message::Failed(m))) => Err(init_error(c, format!("exec: {m}"))),
            Ok(Some(other)) => Err(init_error(c, format!("exec: unexpected {other:?}"))),
            Err(e) => Err(init_error(c, format!("exec channel: {e}"))),
        }
    })();
    if let Err(e) = started {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = spawn::wait_exit(pid);
        return Err(e);
    }
    if let Some(path) = &opts.pid_file {
        write_pid_file(path, pid.as_raw())?;
    }
    let exit = if opts.detach {
        None
    } else {
        Some(spawn::wait_exit(pid)?)
    };
    Ok(Executed {
        pid: pid.as_raw(),
        exit,
    })
}

/// Clone the process that becomes the exec'd one (it waits for `Go`);
/// returns its pid, whether it is already in the cgroup, and the channel.
fn clone_exec_child(
    c: &Container,
    setup: &Setup,
    process: &Process,
) -> Result<(nix::unistd::Pid, bool, Channel), ContainerError> {
    let clone_into = match setup.cgroup {
        Some(_) => None,
        None => c.cgroup.clone_into()?,
    };
    let (ours, theirs) = spawn::seqpacket_pair()?;
    let ours_fd = std::os::fd::AsRawFd::as_raw_fd(&ours);
    let channel = Channel::new(ours);
    let mut child_end = Some(theirs);
    let exec_child: Box<dyn FnMut() -> isize + '_> = Box::new(|| {
        spawn::close_parent_end(ours_fd);
        let channel = Channel::new(child_end.take().expect("clone runs the child once"));
        let err = child(&channel, setup, process);
        let _ = channel.send(&Message::Failed(err));
        1
    });
    let (pid, placed) = match &clone_into {
        Some(dir) => spawn::clone_child_into(
            CloneFlags::empty(),
            std::os::fd::AsFd::as_fd(dir),
            exec_child,
        )?,
        None => (
            spawn::clone_child(CloneFlags::empty(), exec_child)?,
            setup.cgroup.is_some(),
        ),
    };
    drop(child_end);
    Ok((pid, placed, channel))
}

/// The init's namespace of this type, opened, when it is not the
/// runtime's own (nothing to join otherwise).
fn differing_namespace(
    init: i32,
    name: &str,
    flag: CloneFlags,
) -> Result<Option<NsFile>, ContainerError> {
    let theirs = PathBuf::from(format!("/proc/{init}/ns/{name}"));
    let ours = PathBuf::from(format!("/proc/self/ns/{name}"));
    let id = |p: &Path| std::fs::read_link(p).ok();
    match (id(&theirs), id(&ours)) {
        (Some(a), Some(b)) if a == b => Ok(None),
        (None, _) => Err(ContainerError::Io {
            op: "read namespace of the container's init",
            path: theirs,
            source: std::io::Error::last_os_error(),
        }),
        _ => NsFile::open(&theirs, flag)
            .map(Some)
            .map_err(|e| ContainerError::Init {
                id: format!("pid {init}"),
                message: e.to_string(),
            }),
    }
}

/// What the cloned process enters and applies before the exec.
struct Setup<'a> {
    joins: &'a [NsFile],
    enters_user: bool,
    console: Option<&'a std::os::unix::net::UnixStream>,
    linux: &'a Linux,
    seccomp: Option<&'a crate::seccomp::Profile>,
    /// How the process moves itself into the cgroup, when it does.
    cgroup: Option<&'a crate::cgroups::SelfJoin>,
    /// Exec through this (the runtime's binary is writable).
    trampoline: Option<&'static crate::sys::trampoline::Trampoline>,
}

/// The cloned process: wait for its cgroup, enter the namespaces, take the
/// identity, exec. Returns only the error text.
fn child(channel: &Channel, setup: &Setup, process: &Process) -> String {
    let run = || -> Result<std::convert::Infallible, String> {
        match channel.recv().map_err(|e| format!("exec channel: {e}"))? {
            Some(Message::Go { .. }) => {}
            other => return Err(format!("exec channel: expected Go, got {other:?}")),
        }
        if setup.trampoline.is_some() {
            // Until the exec this process is the runtime's binary, in the
            // container's pid namespace: keep its processes away from
            // /proc/<pid>/exe (sys::trampoline).
            crate::sys::trampoline::make_undumpable()
                .map_err(|e| format!("making the process non-dumpable: {e}"))?;
        }
        if let Some(join) = setup.cgroup {
            join.join()
                .map_err(|e| format!("moving into the container's cgroup: {e}"))?;
        }
        for ns in setup.joins {
            ns.enter().map_err(|e| e.to_string())?;
        }
        if setup.enters_user {
            process::become_namespace_root()
                .map_err(|e| format!("become root of the user namespace: {e}"))?;
        }
        if let Some(socket) = setup.console {
            let user = process.user();
            process::console::attach_terminal(socket, user.uid(), user.gid())
                .map_err(|e| e.to_string())?;
        }
        let program = process::exec::resolve(process).map_err(|e| e.to_string())?;
        let nnp = process.no_new_privileges().unwrap_or(false);
        let load = || {
            setup
                .seccomp
                .map_or(Ok(()), |p| p.load().map_err(|e| e.to_string()))
        };
        if !nnp {
            load()?;
        }
        process::finalize_identity(process, setup.linux).map_err(|e| e.to_string())?;
        if nnp {
            load()?;
        }
        Err(process::exec::exec(&program, process, setup.trampoline).to_string())
    };
    match run() {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

fn write_pid_file(path: &Path, pid: i32) -> Result<(), ContainerError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, pid.to_string())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| ContainerError::Io {
            op: "write pid file",
            path: path.into(),
            source,
        })
}

fn init_error(c: &Container, message: String) -> ContainerError {
    ContainerError::Init {
        id: c.record.id.clone(),
        message,
    }
}
