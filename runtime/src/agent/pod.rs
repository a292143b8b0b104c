//! Starting a pod: the sandbox (namespaces, cgroup), the network, then
//! each container in spec order: image layers unpacked (once per image),
//! a writable snapshot mounted as the bundle's rootfs, the OCI spec
//! written beside it, create and start through the runner with the init's
//! stdout and stderr appended to the container's log file. Any failure
//! tears the whole pod down again, so a pod is all there or not at all.
//! Each phase is timed ([`PhaseTimes`]) and traced with the pod's UID.

use super::sandbox::{self, nsfs::SharedNs, Sandbox};
use super::spec::{self, PodContext};
use super::{check_container_name, AgentError, PodHost, PodPaths};
use crate::snapshot::unpack_and_load;
use noderun_core::{Container, Pod};
use noderun_netplug::Attachment;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Where a pod start spent its time, summed over its containers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PhaseTimes {
    /// Namespaces pinned, pod cgroup made.
    pub sandbox: Duration,
    /// netplug ADD.
    pub network: Duration,
    /// Image unpack (when needed), snapshot prepare and mount, spec written.
    pub rootfs: Duration,
    /// Runner create (the init set up, waiting for start).
    pub create: Duration,
    /// Runner start (the user's process exec'd).
    pub start: Duration,
}

impl PhaseTimes {
    /// The phases' names, in the order of [`PhaseTimes::phases`].
    pub const NAMES: [&'static str; 6] =
        ["sandbox", "network", "rootfs", "create", "start", "total"];

    pub fn total(&self) -> Duration {
        self.sandbox + self.network + self.rootfs + self.create + self.start
    }

    /// Each phase and the total, as [`PhaseTimes::NAMES`] names them.
    pub fn phases(&self) -> [Duration; 6] {
        [
            self.sandbox,
            self.network,
            self.rootfs,
            self.create,
            self.start,
            self.total(),
        ]
    }
}

/// A pod whose containers all started.
#[derive(Debug, Clone)]
pub struct StartedPod {
    pub uid: String,
    pub ip: IpAddr,
    pub attachment: Attachment,
    pub sandbox: Sandbox,
    pub times: PhaseTimes,
}

/// The pod's hostname: `spec.hostname`, else its name, cut to the 63
/// bytes a hostname label may have.
pub fn hostname(pod: &Pod) -> String {
    let name = if pod.spec.hostname.is_empty() {
        &pod.metadata.name
    } else {
        &pod.spec.hostname
    };
    let mut end = name.len().min(63);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    name[..end].to_string()
}

fn timed<T>(slot: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    *slot += t.elapsed();
    out
}

impl PodHost {
    /// Start `pod` (bound to this node, with a UID). On failure nothing of
    /// it is left on the host.
    pub fn start_pod(&self, pod: &Pod) -> Result<StartedPod, AgentError> {
        let uid = &pod.metadata.uid;
        let paths = self.paths(uid)?;
        for c in &pod.spec.containers {
            check_container_name(uid, &c.name)?;
        }
        let unsupported = |what| AgentError::Unsupported {
            uid: uid.clone(),
            what,
        };
        if pod.spec.host_network {
            return Err(unsupported("hostNetwork"));
        }
        if !pod.spec.init_containers.is_empty() {
            return Err(unsupported("initContainers"));
        }
        if pod.spec.containers.is_empty() {
            return Err(unsupported("a pod without containers"));
        }
        let span = tracing::info_span!("pod_start", pod = %uid, name = %pod.metadata.name);
        let _enter = span.enter();
        let started = self.start_all(pod, &paths);
        if let Err(e) = &started {
            tracing::warn!(error = %e, "pod start failed; tearing down");
            if let Err(undo) = self.teardown_pod(uid, Duration::ZERO) {
                tracing::warn!(error = %undo, "teardown after failed start");
            }
        }
        started
    }

    fn start_all(&self, pod: &Pod, paths: &PodPaths) -> Result<StartedPod, AgentError> {
        let mut times = PhaseTimes::default();
        let hostname = hostname(pod);
        let made = timed(&mut times.sandbox, || {
            sandbox::create(
                &paths.sandbox,
                &self.layout,
                &hostname,
                pod.qos_class(),
                &super::resources::for_pod(pod),
            )
        })?;
        tracing::debug!(phase = "sandbox", elapsed = ?times.sandbox);
        let attachment = timed(&mut times.network, || {
            sandbox::attach(&self.network, &paths.sandbox)
        })?;
        tracing::debug!(phase = "network", elapsed = ?times.network, ip = %attachment.ip);
        for c in &pod.spec.containers {
            self.start_container(pod, paths, &made, &hostname, c, &mut times)?;
        }
        Ok(StartedPod {
            uid: paths.uid.clone(),
            ip: attachment.ip,
            attachment,
            sandbox: made,
            times,
        })
    }

    /// The container's log file, `<pod log dir>/<name>/0.log`.
    pub fn log_file(&self, pod: &Pod, container: &str) -> Result<PathBuf, AgentError> {
        let paths = self.paths(&pod.metadata.uid)?;
        Ok(paths
            .pod_log_dir(&pod.metadata.namespace, &pod.metadata.name)
            .join(container)
            .join("0.log"))
    }

    fn start_container(
        &self,
        pod: &Pod,
        paths: &PodPaths,
        made: &Sandbox,
        hostname: &str,
        c: &Container,
        times: &mut PhaseTimes,
    ) -> Result<(), AgentError> {
        let uid = &paths.uid;
        let id = paths.container_id(&c.name);
        let bundle = paths.bundle(&c.name);
        let rootfs = bundle.join("rootfs");
        timed(&mut times.rootfs, || {
            self.prepare_bundle(paths, made, hostname, c, &rootfs)
        })?;
        tracing::debug!(phase = "rootfs", container = %c.name);

        let log = self.log_file(pod, &c.name)?;
        let log_dir = log.parent().expect("log files are in a directory");
        std::fs::create_dir_all(log_dir).map_err(Self::io(uid, "create", log_dir))?;
        let stdio = super::runner::Stdio {
            stdout: log.clone(),
            stderr: log,
        };
        let runner_err = |source| AgentError::Runner {
            uid: uid.clone(),
            container: c.name.clone(),
            source: Box::new(source),
        };
        timed(&mut times.create, || {
            self.runner
                .create(&paths.runtime_root, &id, &bundle, Some(stdio))
        })
        .map_err(runner_err)?;
        tracing::debug!(phase = "create", container = %c.name);
        timed(&mut times.start, || {
            self.runner.start_container(&paths.runtime_root, &id)
        })
        .map_err(runner_err)?;
        tracing::debug!(phase = "start", container = %c.name);
        Ok(())
    }

    /// Unpack the image if needed, mount a fresh writable snapshot on the
    /// bundle's rootfs, and write the spec.
    fn prepare_bundle(
        &self,
        paths: &PodPaths,
        made: &Sandbox,
        hostname: &str,
        c: &Container,
        rootfs: &std::path::Path,
    ) -> Result<(), AgentError> {
        let uid = &paths.uid;
        let image_err = |source| AgentError::Image {
            uid: uid.clone(),
            container: c.name.clone(),
            image: c.image.clone(),
            source: Box::new(source),
        };
        let (image, top) =
            unpack_and_load(&self.images, &self.snapshots, &c.image).map_err(image_err)?;
        let rootfs_err = |source| AgentError::Rootfs {
            uid: uid.clone(),
            container: c.name.clone(),
            source: Box::new(source),
        };
        let mount = self
            .snapshots
            .prepare(&paths.container_id(&c.name), Some(&top))
            .map_err(rootfs_err)?;
        std::fs::create_dir_all(rootfs).map_err(Self::io(uid, "create", rootfs))?;
        mount.mount(rootfs).map_err(|e| rootfs_err(e.into()))?;

        let cgroup = made.cgroup.join(&c.name);
        let context = PodContext {
            hostname,
            netns: made.paths.ns(SharedNs::Net),
            ipcns: made.paths.ns(SharedNs::Ipc),
            utsns: made.paths.ns(SharedNs::Uts),
            cgroup: &cgroup,
        };
        let spec = spec::container_spec(c, &image.config, &context).map_err(|source| {
            AgentError::Spec {
                uid: uid.clone(),
                container: c.name.clone(),
                source,
            }
        })?;
        let bundle = rootfs.parent().expect("rootfs is in the bundle");
        spec::write_bundle_config(bundle, &spec).map_err(Self::io(uid, "write", bundle))?;
        Ok(())
    }
}
