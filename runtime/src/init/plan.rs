//! Everything the init needs, computed by the runtime before cloning: the
//! spec, the rootfs, which namespaces to create (clone flags) and which to
//! join (paths), the exec fifo, the console socket.

use crate::container::{Bundle, ContainerError, CreateOptions};
use crate::process::namespaces::NamespacePlan;
use nix::sched::CloneFlags;
use nix::unistd::Pid;
use oci_spec::runtime::Spec;
use std::fs::File;
use std::path::PathBuf;

#[derive(Debug)]
pub struct InitPlan {
    pub id: String,
    pub spec: Spec,
    pub rootfs: PathBuf,
    /// O_PATH handle on the exec fifo, inherited through the clone.
    pub fifo: File,
    /// The caller's console socket, connected (process.terminal).
    pub console: Option<std::os::unix::net::UnixStream>,
    pub no_pivot: bool,
    pub namespaces: NamespacePlan,
    /// Whether the runtime has prestart/createRuntime hooks to run once the
    /// namespaces exist (otherwise the init does not stop to wait for them).
    pub runtime_hooks: bool,
    /// The compiled seccomp profile, if the spec has one.
    pub seccomp: Option<crate::seccomp::Profile>,
    /// Exec the process through this (the runtime's binary is writable).
    pub trampoline: Option<&'static crate::sys::trampoline::Trampoline>,
}

impl InitPlan {
    pub fn new(
        id: &str,
        bundle: &Bundle,
        fifo: File,
        opts: &CreateOptions,
    ) -> Result<InitPlan, ContainerError> {
        let linux = bundle.spec.linux().clone().unwrap_or_default();
        let namespaces = NamespacePlan::from_spec(
            linux.namespaces().as_deref().unwrap_or_default(),
        )
        .map_err(|e| ContainerError::BadConfig {
            path: bundle.dir.join("config.json"),
            message: e.to_string(),
        })?;
        let seccomp = linux
            .seccomp()
            .as_ref()
            .map(crate::seccomp::compile)
            .transpose()
            .map_err(|e| ContainerError::BadConfig {
                path: bundle.dir.join("config.json"),
                message: e.to_string(),
            })?;
        let trampoline = crate::container::exe_guard::choose(id, linux.seccomp().as_ref())?;
        let bad = |message: &str| ContainerError::BadConfig {
            path: bundle.dir.join("config.json"),
            message: message.into(),
        };
        let terminal = bundle
            .spec
            .process()
            .as_ref()
            .and_then(|p| p.terminal())
            .unwrap_or(false);
        let console = match (&opts.console_socket, terminal) {
            (Some(path), true) => Some(
                crate::process::console::connect(path)
                    .map_err(|e| bad(&e.to_string()))?,
            ),
            (None, false) => None,
            (None, true) => {
                return Err(bad(
                    "process.terminal is true but no --console-socket was given to receive the terminal (set terminal to false, or pass --console-socket)",
                ))
            }
            (Some(_), false) => {
                return Err(bad(
                    "--console-socket was given but process.terminal is false (set it to true, or drop the flag)",
                ))
            }
        };
        Ok(InitPlan {
            seccomp,
            trampoline,
            id: id.into(),
            spec: bundle.spec.clone(),
            rootfs: bundle.rootfs.clone(),
            fifo,
            console,
            no_pivot: opts.no_pivot,
            namespaces,
            runtime_hooks: bundle.spec.hooks().as_ref().is_some_and(|h| {
                h.prestart().as_ref().is_some_and(|v| !v.is_empty())
                    || h.create_runtime().as_ref().is_some_and(|v| !v.is_empty())
            }),
        })
    }

    /// The namespaces the clone creates.
    pub fn clone_flags(&self) -> CloneFlags {
        self.namespaces.clone_flags()
    }

    /// True when the init unshares a cgroup namespace after `Go`: it must
    /// be in its cgroup by then.
    pub fn creates_cgroup_namespace(&self) -> bool {
        self.namespaces.creates_cgroup_namespace()
    }

    /// Write the uid/gid maps of a new user namespace (from the runtime, for
    /// the child, before it proceeds).
    pub fn write_id_maps(&self, pid: Pid) -> Result<(), String> {
        if !self.namespaces.creates_user_namespace() {
            return Ok(());
        }
        let linux = self.spec.linux().clone().unwrap_or_default();
        crate::process::idmap::write_id_maps(
            pid.as_raw(),
            linux.uid_mappings().as_deref().unwrap_or_default(),
            linux.gid_mappings().as_deref().unwrap_or_default(),
        )
        .map_err(|e| e.to_string())
    }
}
