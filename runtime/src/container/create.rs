//! `create`: set up a container from a bundle and leave its init waiting
//! for `start`. The runtime (this process, single-threaded) creates the
//! state directory, the cgroup and the exec fifo, clones the init into new
//! namespaces, places it in the cgroup, writes user-namespace id maps, runs
//! the prestart/createRuntime hooks when the init asks, and records the
//! container once the init reports it is ready. Any failure undoes all of
//! it: a bad bundle or a failing init leaves nothing behind.

use super::hooks::{self, Phase};
use super::state::{process_start_time, validate_id, Record, EXEC_FIFO};
use super::{resources, Bundle, ContainerError};
use crate::cgroups::{self, Cgroups, Layout};
use crate::init::{self, Channel, InitPlan, Message};
use crate::sys::spawn;
use nix::unistd::Pid;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Write the init's pid here (`--pid-file`).
    pub pid_file: Option<PathBuf>,
    /// Unix socket to send the terminal's master fd to (`--console-socket`).
    pub console_socket: Option<PathBuf>,
    /// chroot instead of pivot_root (`--no-pivot`).
    pub no_pivot: bool,
}

/// A created container: its init is a child of this process.
#[derive(Debug)]
pub struct Created {
    pub record: Record,
    pub pid: Pid,
}

/// What has been made so far, removed again on drop unless disarmed.
struct Undo {
    dir: PathBuf,
    cgroup: Option<(Box<dyn Cgroups>, PathBuf)>,
    child: Option<Pid>,
    armed: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.child {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::SIGKILL);
            let _ = spawn::wait_exit(pid);
        }
        if let Some((cg, relative)) = &self.cgroup {
            let _ = super::remove_cgroup(cg.as_ref(), relative);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn create(
    root: &Path,
    id: &str,
    bundle_dir: &Path,
    opts: &CreateOptions,
) -> Result<Created, ContainerError> {
    validate_id(id)?;
    let bundle = Bundle::load(bundle_dir)?;
    let dir = Record::dir(root, id);
    std::fs::create_dir_all(root).map_err(|source| ContainerError::Io {
        op: "create",
        path: root.into(),
        source,
    })?;
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(ContainerError::AlreadyExists(id.into()))
        }
        Err(source) => {
            return Err(ContainerError::Io {
                op: "create",
                path: dir,
                source,
            })
        }
    }
    let mut undo = Undo {
        dir: dir.clone(),
        cgroup: None,
        child: None,
        armed: true,
    };

    let linux = bundle.spec.linux().clone().unwrap_or_default();
    let cgroup_path = cgroup_path(linux.cgroups_path().as_deref(), id);
    let cgroup = cgroups::open(Layout::host()?, &cgroup_path)?;
    cgroup.create()?;
    let cgroup = &*undo.cgroup.insert((cgroup, cgroup_path.clone())).0;
    if let Some(r) = linux.resources() {
        let devices = linux.devices().clone().unwrap_or_default();
        cgroup.apply(&resources::for_container(r, &devices))?;
    }

    // v1: the init moves itself in (fast, see cgroups::SelfJoin); v2: it
    // is cloned into the cgroup; else (old kernels) we move it.
    let self_join = cgroup.self_join()?;
    let clone_into = match self_join {
        Some(_) => None,
        None => cgroup.clone_into()?,
    };
    let fifo = spawn::exec_fifo(&dir.join(EXEC_FIFO))?;
    let (ours, theirs) = spawn::seqpacket_pair()?;
    let plan = InitPlan::new(id, &bundle, fifo, opts)?;
    let ours_fd = std::os::fd::AsRawFd::as_raw_fd(&ours);
    let channel = Channel::new(ours);
    let mut init_end = Some(theirs);
    let init: Box<dyn FnMut() -> isize + '_> = Box::new(|| {
        spawn::close_parent_end(ours_fd);
        init::child_main(
            &plan,
            Channel::new(init_end.take().expect("clone runs the child once")),
            self_join.as_ref(),
        )
    });
    let (pid, placed) = match &clone_into {
        Some(dir) => {
            spawn::clone_child_into(plan.clone_flags(), std::os::fd::AsFd::as_fd(dir), init)?
        }
        None => (
            spawn::clone_child(plan.clone_flags(), init)?,
            self_join.is_some(),
        ),
    };
    drop(init_end);
    undo.child = Some(pid);

    plan.write_id_maps(pid)
        .map_err(|message| ContainerError::Init {
            id: id.into(),
            message,
        })?;
    let record = Record {
        id: id.into(),
        oci_version: bundle.spec.version().clone(),
        bundle: bundle.dir.clone(),
        rootfs: bundle.rootfs.clone(),
        pid: pid.as_raw(),
        pid_start_time: process_start_time(pid.as_raw()).unwrap_or(0),
        created: noderun_core::Time::now().to_string(),
        cgroup_path,
        annotations: bundle.spec.annotations().clone().unwrap_or_default(),
        hooks: bundle.spec.hooks().clone(),
        process: bundle.spec.process().clone(),
        linux: bundle.spec.linux().clone(),
    };
    // Placing the init ourselves waits for an RCU grace period (see
    // cgroups::SelfJoin). With a new cgroup namespace the init must be in
    // the cgroup before `Go` (it unshares then); otherwise overlap the
    // wait with the init's rootfs work: it cannot run the user's process
    // before `start`, which only follows our `Ready` below.
    let place_after_go = !placed && !plan.creates_cgroup_namespace();
    if !placed && !place_after_go {
        cgroup.add_process(pid.as_raw())?;
    }
    drop((self_join, clone_into));
    send(
        &channel,
        id,
        &Message::Go {
            host_pid: pid.as_raw(),
        },
    )?;
    if place_after_go {
        cgroup.add_process(pid.as_raw())?;
    }
    converse(&channel, &record)?;

    record.save(root)?;
    if let Some(p) = &opts.pid_file {
        std::fs::write(p, pid.as_raw().to_string()).map_err(|source| ContainerError::Io {
            op: "write",
            path: p.clone(),
            source,
        })?;
    }
    undo.armed = false;
    Ok(Created { record, pid })
}

/// Answer the init until it is ready: run the runtime-side hooks when its
/// namespaces exist, pass its errors on.
fn converse(channel: &Channel, record: &Record) -> Result<(), ContainerError> {
    let id = &record.id;
    loop {
        match recv(channel, id)? {
            Some(Message::NamespacesReady) => {
                let state = record.oci_state(super::Status::Created);
                if let Some(h) = &record.hooks {
                    hooks::run(
                        Phase::Prestart,
                        h.prestart().as_deref().unwrap_or_default(),
                        &state,
                    )?;
                    hooks::run(
                        Phase::CreateRuntime,
                        h.create_runtime().as_deref().unwrap_or_default(),
                        &state,
                    )?;
                }
                send(channel, id, &Message::HooksDone)?;
            }
            Some(Message::Ready) => return Ok(()),
            Some(Message::Failed(message)) => {
                return Err(ContainerError::Init {
                    id: id.clone(),
                    message,
                })
            }
            Some(other) => {
                return Err(ContainerError::Init {
                    id: id.clone(),
                    message: format!("unexpected message {other:?}"),
                })
            }
            None => {
                return Err(ContainerError::Init {
                    id: id.clone(),
                    message: "the init exited during setup".into(),
                })
            }
        }
    }
}

fn send(channel: &Channel, id: &str, m: &Message) -> Result<(), ContainerError> {
    channel.send(m).map_err(|e| ContainerError::Init {
        id: id.into(),
        message: format!("channel: {e}"),
    })
}

fn recv(channel: &Channel, id: &str) -> Result<Option<Message>, ContainerError> {
    channel.recv().map_err(|e| ContainerError::Init {
        id: id.into(),
        message: format!("channel: {e}"),
    })
}

/// The spec's cgroupsPath (absolute paths are taken relative to the
/// hierarchy root), or `nrc/<id>`.
fn cgroup_path(spec_path: Option<&Path>, id: &str) -> PathBuf {
    match spec_path {
        Some(p) if p.as_os_str() != "" => p.strip_prefix("/").unwrap_or(p).into(),
        _ => PathBuf::from(super::DEFAULT_CGROUP_PARENT).join(id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_paths() {
        assert_eq!(cgroup_path(None, "c1"), Path::new("nrc/c1"));
        assert_eq!(
            cgroup_path(Some(Path::new("/kubepods/pod1/c1")), "c1"),
            Path::new("kubepods/pod1/c1")
        );
        assert_eq!(cgroup_path(Some(Path::new("")), "c1"), Path::new("nrc/c1"));
    }
}
