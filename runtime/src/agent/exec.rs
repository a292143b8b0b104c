//! Exec in a pod's container, by pod UID and container name, for the node
//! daemon (exec probes, `ctl exec`): the runner does the work (see
//! [`super::runner`]'s exec), this names the container and gives errors
//! the pod's context.

use super::runner::{ExecCommand, ExecIo, ExecOutput, ExecProcess};
use super::{AgentError, PodHost};
use std::time::Duration;

impl PodHost {
    /// The runner's command for `args` in container `container` of pod
    /// `uid` (with `env`, `NAME=VALUE`, over the container's own).
    pub fn exec_command(
        &self,
        uid: &str,
        container: &str,
        args: Vec<String>,
        env: Vec<String>,
    ) -> Result<ExecCommand, AgentError> {
        let paths = self.paths(uid)?;
        Ok(ExecCommand {
            root: paths.runtime_root.clone(),
            id: paths.container_id(container),
            args,
            env,
        })
    }

    /// Start `args` in the container with `io` as its stdio (or a pty).
    pub async fn exec_streaming(
        &self,
        uid: &str,
        container: &str,
        args: Vec<String>,
        io: ExecIo,
    ) -> Result<ExecProcess, AgentError> {
        let command = self.exec_command(uid, container, args, Vec::new())?;
        self.runner()
            .exec_async(command, io)
            .await
            .map_err(|e| exec_error(uid, container, e))
    }

    /// Run `args` in the container, output captured up to `limit` bytes
    /// per stream, killed after `timeout` (exec probes).
    pub async fn exec_capture(
        &self,
        uid: &str,
        container: &str,
        args: Vec<String>,
        timeout: Duration,
        limit: usize,
    ) -> Result<ExecOutput, AgentError> {
        let command = self.exec_command(uid, container, args, Vec::new())?;
        self.runner()
            .exec_capture(command, timeout, limit)
            .await
            .map_err(|e| exec_error(uid, container, e))
    }
}

fn exec_error(uid: &str, container: &str, e: super::RunnerError) -> AgentError {
    AgentError::Runner {
        uid: uid.into(),
        container: container.into(),
        source: Box::new(e),
    }
}
