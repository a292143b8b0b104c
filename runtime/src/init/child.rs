//! The container's init, from clone to exec. Runs in the cloned child of
//! the single-threaded runtime, inside the namespaces the clone created.
//! Every failure is sent to the runtime as `Failed` with its whole error
//! chain, then the init exits; the runtime undoes the rest.

use super::{Channel, InitPlan, Message};
use crate::cgroups::SelfJoin;
use crate::container::hooks::{self, Phase};
use crate::{process, rootfs};
use std::fs::File;
use std::os::fd::AsRawFd;

/// The init's entry point; returns only on failure (the exit code).
/// `cgroup`: the init moves itself into its cgroup with it, right after
/// `Go` (the runtime has placed it otherwise).
pub fn child_main(plan: &InitPlan, channel: Channel, cgroup: Option<&SelfJoin>) -> isize {
    match setup(plan, &channel, cgroup) {
        Ok(never) => match never {},
        Err(message) => {
            let _ = channel.send(&Message::Failed(message));
            1
        }
    }
}

fn setup(
    plan: &InitPlan,
    channel: &Channel,
    cgroup: Option<&SelfJoin>,
) -> Result<std::convert::Infallible, String> {
    let host_pid = match channel.recv().map_err(|e| format!("init channel: {e}"))? {
        Some(Message::Go { host_pid }) => host_pid,
        other => return Err(format!("init channel: expected Go, got {other:?}")),
    };
    if plan.trampoline.is_some() {
        // Until the exec, this process is the runtime's binary: no process
        // that may share its pid namespace gets at it (sys::trampoline).
        crate::sys::trampoline::make_undumpable()
            .map_err(|e| format!("making the init non-dumpable: {e}"))?;
    }
    if let Some(join) = cgroup {
        join.join()
            .map_err(|e| format!("moving the init into its cgroup: {e}"))?;
    }
    plan.namespaces.join_all().map_err(|e| e.to_string())?;
    plan.namespaces.unshare_late().map_err(|e| e.to_string())?;
    if plan.namespaces.enters_user_namespace() {
        process::become_namespace_root()
            .map_err(|e| format!("become root of the user namespace: {e}"))?;
    }
    if plan.runtime_hooks {
        channel
            .send(&Message::NamespacesReady)
            .map_err(|e| format!("init channel: {e}"))?;
        match channel.recv().map_err(|e| format!("init channel: {e}"))? {
            Some(Message::HooksDone) => {}
            other => return Err(format!("init channel: expected HooksDone, got {other:?}")),
        }
    }
    let state = state_json(plan, host_pid);
    let hooks = plan.spec.hooks().clone().unwrap_or_default();
    // createContainer: in the container's namespaces, before pivot_root.
    hooks::run(
        Phase::CreateContainer,
        hooks.create_container().as_deref().unwrap_or_default(),
        &state,
    )
    .map_err(|e| e.to_string())?;

    let process = plan.spec.process().clone().unwrap_or_default();
    let linux = plan.spec.linux().clone().unwrap_or_default();
    if plan.namespaces.creates_uts_namespace() {
        process::set_hostname(&plan.spec).map_err(|e| e.to_string())?;
    }
    let opts = rootfs::PrepareOptions {
        no_pivot: plan.no_pivot,
    };
    rootfs::prepare(&plan.spec, &plan.rootfs, &opts).map_err(|e| e.to_string())?;
    rootfs::finish(&plan.spec).map_err(|e| e.to_string())?;
    if let Some(socket) = &plan.console {
        let user = process.user();
        process::console::attach_terminal(socket, user.uid(), user.gid())
            .map_err(|e| e.to_string())?;
    }
    let program = process::exec::resolve(&process).map_err(|e| e.to_string())?;
    // Without no_new_privs, loading a filter needs CAP_SYS_ADMIN, which the
    // user switch may drop: load it first then (the profile must allow the
    // few syscalls left before exec). With no_new_privs, load it last so
    // that it confines only the user's program.
    let nnp = process.no_new_privileges().unwrap_or(false);
    if !nnp {
        load_seccomp(plan)?;
    }
    process::finalize_identity(&process, &linux).map_err(|e| e.to_string())?;

    channel
        .send(&Message::Ready)
        .map_err(|e| format!("init channel: {e}"))?;
    wait_for_start(&plan.fifo)?;
    hooks::run(
        Phase::StartContainer,
        hooks.start_container().as_deref().unwrap_or_default(),
        &state,
    )
    .map_err(|e| e.to_string())?;
    if nnp {
        load_seccomp(plan)?;
    }
    let err = process::exec::exec(&program, &process, plan.trampoline);
    Err(err.to_string())
}

fn load_seccomp(plan: &InitPlan) -> Result<(), String> {
    match &plan.seccomp {
        Some(profile) => profile.load().map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// Block until `start` opens the fifo for reading, then tell it we go.
fn wait_for_start(fifo: &File) -> Result<(), String> {
    use std::io::Write;
    let path = format!("/proc/self/fd/{}", fifo.as_raw_fd());
    let mut w = File::options()
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| format!("wait for start on exec fifo: {e}"))?;
    w.write_all(b"0").map_err(|e| format!("exec fifo: {e}"))
}

fn state_json(plan: &InitPlan, host_pid: i32) -> serde_json::Value {
    serde_json::json!({
        "ociVersion": plan.spec.version(),
        "id": plan.id,
        "status": "creating",
        "pid": host_pid,
        "bundle": plan.rootfs.parent(),
        "annotations": plan.spec.annotations(),
    })
}

use std::os::unix::fs::OpenOptionsExt;
