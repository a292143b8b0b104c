//! `delete`: remove a stopped container (or, with `force`, any container):
//! kill what remains in its cgroup, remove the cgroup and the state
//! directory, then run poststop hooks.

use super::hooks::{self, Phase};
use super::{Container, ContainerError, Status};

pub fn delete(c: &Container, force: bool) -> Result<(), ContainerError> {
    let status = c.status();
    match status {
        Status::Stopped | Status::Created => {}
        Status::Running | Status::Paused if force => {}
        Status::Running | Status::Paused => {
            return Err(c.wrong_state(status, "stop it first, or delete with --force"))
        }
    }
    let state = c.record.oci_state(Status::Stopped);
    super::remove_cgroup(c.cgroup.as_ref(), &c.record.cgroup_path)?;
    let dir = c.dir();
    std::fs::remove_dir_all(&dir).map_err(|source| ContainerError::Io {
        op: "remove",
        path: dir,
        source,
    })?;
    if let Some(h) = c.record.hooks.as_ref().and_then(|h| h.poststop().clone()) {
        if let Err(e) = hooks::run(Phase::Poststop, &h, &state) {
            eprintln!("warning: {e}");
        }
    }
    Ok(())
}
