//! Lifecycle hooks from the spec: each runs as its own process with the
//! container's state JSON on stdin, its own args and env, and an optional
//! timeout. A failing prestart/createRuntime/createContainer/startContainer
//! hook fails the operation; poststart and poststop failures are reported
//! but do not undo anything, as the runtime spec says.

use super::ContainerError;
use oci_spec::runtime::Hook;
use std::io::Write;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Which hook list is running (for error messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Prestart => "prestart",
            Phase::CreateRuntime => "createRuntime",
            Phase::CreateContainer => "createContainer",
            Phase::StartContainer => "startContainer",
            Phase::Poststart => "poststart",
            Phase::Poststop => "poststop",
        }
    }
}

/// Run `hooks` in order, each with `state` (the OCI state JSON) on stdin.
pub fn run(phase: Phase, hooks: &[Hook], state: &serde_json::Value) -> Result<(), ContainerError> {
    let state = serde_json::to_vec(state).expect("state serializes");
    for (index, hook) in hooks.iter().enumerate() {
        run_one(hook, &state).map_err(|message| ContainerError::Hook {
            phase: phase.name(),
            index,
            path: hook.path().clone(),
            message,
        })?;
    }
    Ok(())
}

fn run_one(hook: &Hook, state: &[u8]) -> Result<(), String> {
    let mut cmd = Command::new(hook.path());
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0).args(rest);
        }
    }
    cmd.env_clear();
    for kv in hook.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that exits without reading its stdin is fine.
        let _ = stdin.write_all(state);
    }
    let deadline = hook
        .timeout()
        .filter(|t| *t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("wait: {e}"))? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("exited with {status}"))
            };
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", hook.timeout().unwrap_or(0)));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(json: &str) -> Hook {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn hooks_get_state_on_stdin_and_fail_loudly() {
        let dir = std::env::temp_dir().join(format!("nrc-hook-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let out = dir.join("state");
        let state = serde_json::json!({"id": "c1", "status": "created"});
        let copy = hook(&format!(
            r#"{{"path":"/bin/sh","args":["sh","-c","cat > {} && test \"$X\" = 1"],"env":["X=1"]}}"#,
            out.display()
        ));
        run(Phase::Prestart, &[copy], &state).unwrap();
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        assert_eq!(written, state);

        let failing = hook(r#"{"path":"/bin/sh","args":["sh","-c","exit 3"]}"#);
        let e = run(Phase::Poststop, &[failing], &state)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("poststop") && e.contains("exit status: 3"),
            "{e}"
        );

        let slow = hook(r#"{"path":"/bin/sh","args":["sh","-c","sleep 5"],"timeout":1}"#);
        let e = run(Phase::CreateRuntime, &[slow], &state)
            .unwrap_err()
            .to_string();
        assert!(e.contains("timed out"), "{e}");

        let missing = hook(r#"{"path":"/nonexistent/hook"}"#);
        assert!(run(Phase::Poststart, &[missing], &state).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
