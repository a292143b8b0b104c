//! `pause` and `resume`: freeze and thaw every process of the container.

use super::{Container, ContainerError, Status};

pub fn pause(c: &Container) -> Result<(), ContainerError> {
    match c.status() {
        Status::Running => Ok(c.cgroup.freeze()?),
        other => Err(c.wrong_state(other, "only a running container can be paused")),
    }
}

pub fn resume(c: &Container) -> Result<(), ContainerError> {
    match c.status() {
        Status::Paused => Ok(c.cgroup.thaw()?),
        other => Err(c.wrong_state(other, "only a paused container can be resumed")),
    }
}
