//! One container of a pod whose sandbox is up: started from its image on
//! a fresh writable snapshot (image layers unpacked once per image, the
//! snapshot mounted as the bundle's rootfs, the OCI spec written beside
//! it, create and start through the runner with stdout and stderr going
//! to the instance's rotated log, see `super::logs`), and removed again (the
//! runtime's container, the rootfs mount and bundle, the snapshot; the log
//! stays). A restart is a removal and a new start, as kubelet makes a new
//! container: what the old instance wrote in its rootfs is gone. Init
//! containers start this way one at a time, then the app containers.

use super::logs::ContainerLogDir;
use super::pod::{hostname, timed, PhaseTimes};
use super::runner::Stdio;
use super::sandbox::{nsfs::SharedNs, Sandbox};
use super::spec::{self, PodContext};
use super::{AgentError, PodHost, PodPaths};
use crate::snapshot::{unpack_and_load, SnapshotError};
use noderun_core::{Container, Pod};
use std::path::{Path, PathBuf};

impl PodHost {
    /// Start container `name` (an init or an app container) of `pod`,
    /// whose sandbox is up, as a new instance: whatever is left of an
    /// earlier one (exited, or half-made) is removed first. On failure
    /// nothing of this container is left (its log stays).
    pub fn run_container(&self, pod: &Pod, name: &str) -> Result<PhaseTimes, AgentError> {
        let uid = &pod.metadata.uid;
        let paths = self.paths(uid)?;
        let c = pod
            .spec
            .init_containers
            .iter()
            .chain(&pod.spec.containers)
            .find(|c| c.name == name)
            .ok_or_else(|| AgentError::NoContainer {
                uid: uid.clone(),
                name: name.into(),
            })?;
        super::check_container_name(uid, name)?;
        let span = tracing::info_span!("container_start", pod = %uid, container = %name);
        let _enter = span.enter();
        self.remove_container(&paths, name)?;
        let qos = pod.qos_class();
        let made = Sandbox {
            cgroup: paths.sandbox.cgroup(qos),
            paths: paths.sandbox.clone(),
            qos,
        };
        let mut times = PhaseTimes::default();
        let started = self.start_container(pod, &paths, &made, &hostname(pod), c, &mut times);
        if let Err(e) = &started {
            tracing::warn!(error = %e, "container start failed; removing it");
            if let Err(undo) = self.remove_container(&paths, name) {
                tracing::warn!(error = %undo, "removing the container after a failed start");
            }
        }
        started.map(|()| times)
    }

    /// Send `signal` to the init of container `name` of pod `uid` (a
    /// liveness probe's kill); a container that is gone or stopped
    /// already is left alone.
    pub fn signal_container(
        &self,
        uid: &str,
        name: &str,
        signal: nix::sys::signal::Signal,
    ) -> Result<(), AgentError> {
        let paths = self.paths(uid)?;
        let id = paths.container_id(name);
        match self.runner.kill(&paths.runtime_root, &id, signal, false) {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(source) => match self.runner.state(&paths.runtime_root, &id) {
                Ok(s) if s.status == super::runner::Status::Stopped => Ok(()),
                _ => Err(AgentError::Runner {
                    uid: uid.into(),
                    container: name.into(),
                    source: Box::new(source),
                }),
            },
        }
    }

    /// Remove container `name` of the pod: the runtime's container (killed
    /// if it runs), its rootfs mount and bundle, its writable snapshot.
    /// Removing a container that is not there succeeds.
    pub fn remove_container(&self, paths: &PodPaths, name: &str) -> Result<(), AgentError> {
        let id = paths.container_id(name);
        self.delete_container(paths, &id)?;
        let bundle = paths.bundle(name);
        super::sandbox::nsfs::unmount_all(&bundle.join("rootfs")).map_err(|source| {
            AgentError::Unmount {
                uid: paths.uid.clone(),
                source: Box::new(source),
            }
        })?;
        super::teardown::remove_tree(&paths.uid, &bundle)?;
        match self.snapshots.remove(&id) {
            Ok(()) | Err(SnapshotError::NotFound { .. }) => Ok(()),
            Err(source) => Err(AgentError::Rootfs {
                uid: paths.uid.clone(),
                container: name.into(),
                source: Box::new(source),
            }),
        }
    }

    /// The container's log directory, `<pod log dir>/<name>`.
    pub fn container_logs(
        &self,
        pod: &Pod,
        container: &str,
    ) -> Result<ContainerLogDir, AgentError> {
        let paths = self.paths(&pod.metadata.uid)?;
        Ok(ContainerLogDir::new(
            paths
                .pod_log_dir(&pod.metadata.namespace, &pod.metadata.name)
                .join(container),
        ))
    }

    /// The live log file of the container's first instance,
    /// `<pod log dir>/<name>/0.log`.
    pub fn log_file(&self, pod: &Pod, container: &str) -> Result<PathBuf, AgentError> {
        Ok(self.container_logs(pod, container)?.live(0))
    }

    /// Where a new instance of the container writes: `<n>.log`, n one past
    /// the newest instance that wrote (0 at first), through a logger that
    /// rotates it. The instance before stays for `--previous`; older ones
    /// are removed (the kubelet keeps one dead container's log).
    fn new_instance_stdio(&self, pod: &Pod, container: &str) -> Result<Stdio, AgentError> {
        let uid = &pod.metadata.uid;
        let logs = self.container_logs(pod, container)?;
        std::fs::create_dir_all(&logs.dir).map_err(Self::io(uid, "create", &logs.dir))?;
        let log_error = |e: super::logs::LogError| AgentError::Logs {
            uid: uid.clone(),
            container: container.into(),
            source: e,
        };
        let instance = match logs.instances().map_err(log_error)?.last() {
            Some(newest) => newest + 1,
            None => 0,
        };
        logs.prune_before(instance.saturating_sub(1))
            .map_err(log_error)?;
        let live = logs.live(instance);
        Ok(Stdio {
            stdout: live.clone(),
            stderr: live,
            rotation: Some(self.config().log_rotation),
        })
    }

    pub(super) fn start_container(
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
            let etc = (!pod.spec.host_network).then(|| paths.etc_dir());
            self.prepare_bundle(paths, made, hostname, etc.as_deref(), c, &rootfs)
        })?;
        tracing::debug!(phase = "rootfs", container = %c.name);

        let stdio = self.new_instance_stdio(pod, &c.name)?;
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
        etc_dir: Option<&Path>,
        c: &Container,
        rootfs: &Path,
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
            etc_dir,
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
