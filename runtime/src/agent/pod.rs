//! Starting a pod: the sandbox (namespaces, cgroup), the network, then
//! each container in spec order ([`super::container`]), unless the pod has
//! init containers (the daemon runs those one at a time first, then the
//! app containers, through [`PodHost::run_container`]). Any failure tears
//! the whole pod down again, so a pod is all there or not at all. Each
//! phase is timed ([`PhaseTimes`]) and traced with the pod's UID.

use super::sandbox::{self, Sandbox};
use super::{check_container_name, AgentError, PodHost, PodPaths};
use noderun_core::Pod;
use noderun_netplug::Attachment;
use std::net::IpAddr;
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

pub(super) fn timed<T>(slot: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    *slot += t.elapsed();
    out
}

impl PodHost {
    /// Start `pod` (bound to this node, with a UID): its sandbox and
    /// network, then its containers, unless it has init containers: those
    /// and then the app containers are started one by one by the caller
    /// ([`PodHost::run_container`]) as each init container completes. On
    /// failure nothing of it is left on the host.
    pub fn start_pod(&self, pod: &Pod) -> Result<StartedPod, AgentError> {
        let uid = &pod.metadata.uid;
        let paths = self.paths(uid)?;
        for c in pod.spec.init_containers.iter().chain(&pod.spec.containers) {
            check_container_name(uid, &c.name)?;
        }
        let unsupported = |what| AgentError::Unsupported {
            uid: uid.clone(),
            what,
        };
        if pod.spec.host_network {
            return Err(unsupported("hostNetwork"));
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
        if !pod.spec.host_network {
            let etc = paths.etc_dir();
            timed(&mut times.network, || {
                super::etc_files::write(&etc, attachment.ip, &hostname, &self.config.resolv_conf)
            })
            .map_err(|(op, path, source)| AgentError::Io {
                uid: paths.uid.clone(),
                op,
                path,
                source,
            })?;
        }
        tracing::debug!(phase = "network", elapsed = ?times.network, ip = %attachment.ip);
        // Init containers run one at a time, each to completion, before
        // these: the daemon starts them one by one ([`PodHost::run_container`]).
        if pod.spec.init_containers.is_empty() {
            for c in &pod.spec.containers {
                self.start_container(pod, paths, &made, &hostname, c, &mut times)?;
            }
        }
        Ok(StartedPod {
            uid: paths.uid.clone(),
            ip: attachment.ip,
            attachment,
            sandbox: made,
            times,
        })
    }
}
