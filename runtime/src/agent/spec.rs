//! A pod container's OCI runtime spec: runc's default spec (mounts,
//! capabilities, masked and read-only paths, devices denied but the
//! defaults) with the container's process, the pod's namespaces joined by
//! path, new pid, mount and cgroup namespaces, the container's resources
//! and its cgroup under the pod's.
//!
//! The process follows Kubernetes' rules over the image config: `command`
//! replaces the image's Entrypoint (and drops its Cmd), `args` replace its
//! Cmd; the environment is the image's with the container's on top (same
//! name: the container's value wins, in the image's place); the working
//! directory is the container's, else the image's, else `/`.

use crate::agent::resources;
use crate::cgroups::Resources;
use noderun_core::Container;
use oci_spec::image::ImageConfiguration;
use oci_spec::runtime::{
    LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxResourcesBuilder, MountBuilder, Spec, UserBuilder,
};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("container {container}: nothing to run: neither the container's command/args nor the image's Entrypoint/Cmd name a program")]
    NoProgram { container: String },
    #[error(
        "container {container}: image user {user:?}: only numeric uid[:gid] is supported so far"
    )]
    User { container: String, user: String },
    #[error("container {container}: building the spec: {message}")]
    Build { container: String, message: String },
}

/// Default PATH when neither the image nor the container sets one.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The pod's side of a container's spec.
#[derive(Debug, Clone)]
pub struct PodContext<'a> {
    pub hostname: &'a str,
    pub netns: &'a Path,
    pub ipcns: &'a Path,
    pub utsns: &'a Path,
    /// The container's cgroup, relative to the hierarchy roots.
    pub cgroup: &'a Path,
    /// The pod's managed /etc files, bind-mounted over /etc/hosts,
    /// /etc/hostname and /etc/resolv.conf (`None`: the image's stay).
    pub etc_dir: Option<&'a Path>,
}

/// The program and its arguments, by Kubernetes' rules.
pub fn argv(c: &Container, image: &ImageConfiguration) -> Result<Vec<String>, SpecError> {
    let config = image.config().clone().unwrap_or_default();
    let entrypoint = config.entrypoint().clone().unwrap_or_default();
    let cmd = config.cmd().clone().unwrap_or_default();
    let mut out = if c.command.is_empty() {
        entrypoint
    } else {
        c.command.clone()
    };
    if !c.args.is_empty() {
        out.extend(c.args.iter().cloned());
    } else if c.command.is_empty() {
        out.extend(cmd);
    }
    if out.is_empty() {
        return Err(SpecError::NoProgram {
            container: c.name.clone(),
        });
    }
    Ok(out)
}

/// The environment: the image's, then the container's over it.
pub fn env(c: &Container, image: &ImageConfiguration, hostname: &str) -> Vec<String> {
    let config = image.config().clone().unwrap_or_default();
    let mut out: Vec<String> = config.env().clone().unwrap_or_default();
    let name_of = |entry: &str| entry.split('=').next().unwrap_or("").to_string();
    let mut set = |name: &str, value: &str| {
        let entry = format!("{name}={value}");
        match out.iter_mut().find(|e| name_of(e) == name) {
            Some(existing) => *existing = entry,
            None => out.push(entry),
        }
    };
    set("HOSTNAME", hostname);
    for var in &c.env {
        set(&var.name, &var.value);
    }
    if !out.iter().any(|e| name_of(e) == "PATH") {
        out.insert(0, DEFAULT_PATH.into());
    }
    out
}

/// `uid[:gid]` of the image config (empty: root).
fn user(c: &Container, image: &ImageConfiguration) -> Result<(u32, u32), SpecError> {
    let text = image
        .config()
        .as_ref()
        .and_then(|cfg| cfg.user().clone())
        .unwrap_or_default();
    if text.is_empty() || text == "root" {
        return Ok((0, 0));
    }
    let bad = || SpecError::User {
        container: c.name.clone(),
        user: text.clone(),
    };
    let (u, g) = text.split_once(':').unwrap_or((&text, "0"));
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

/// The full spec of container `c` of a pod, with rootfs `rootfs` (the
/// bundle's `rootfs` directory).
pub fn container_spec(
    c: &Container,
    image: &ImageConfiguration,
    pod: &PodContext<'_>,
) -> Result<Spec, SpecError> {
    let build = |e: oci_spec::OciSpecError| SpecError::Build {
        container: c.name.clone(),
        message: e.to_string(),
    };
    let mut spec = Spec::default();
    let mut root = spec.root().clone().unwrap_or_default();
    root.set_path(PathBuf::from("rootfs"))
        .set_readonly(Some(false));
    spec.set_root(Some(root));
    spec.set_hostname(None);

    let (uid, gid) = user(c, image)?;
    let cwd = [
        c.working_dir.clone(),
        image
            .config()
            .as_ref()
            .and_then(|cfg| cfg.working_dir().clone())
            .unwrap_or_default(),
    ]
    .into_iter()
    .find(|d| !d.is_empty())
    .unwrap_or_else(|| "/".into());
    let mut process = spec.process().clone().unwrap_or_default();
    process
        .set_terminal(Some(false))
        .set_args(Some(argv(c, image)?))
        .set_env(Some(env(c, image, pod.hostname)))
        .set_cwd(PathBuf::from(cwd))
        .set_user(
            UserBuilder::default()
                .uid(uid)
                .gid(gid)
                .build()
                .map_err(build)?,
        );
    spec.set_process(Some(process));

    let joined = |typ, path: &Path| {
        LinuxNamespaceBuilder::default()
            .typ(typ)
            .path(path.to_path_buf())
            .build()
    };
    let new = |typ| LinuxNamespaceBuilder::default().typ(typ).build();
    let namespaces = vec![
        new(LinuxNamespaceType::Pid).map_err(build)?,
        new(LinuxNamespaceType::Mount).map_err(build)?,
        new(LinuxNamespaceType::Cgroup).map_err(build)?,
        joined(LinuxNamespaceType::Network, pod.netns).map_err(build)?,
        joined(LinuxNamespaceType::Ipc, pod.ipcns).map_err(build)?,
        joined(LinuxNamespaceType::Uts, pod.utsns).map_err(build)?,
    ];
    if let Some(dir) = pod.etc_dir {
        let mut mounts = spec.mounts().clone().unwrap_or_default();
        for (name, destination) in crate::agent::etc_files::FILES {
            mounts.push(
                MountBuilder::default()
                    .destination(destination)
                    .typ("bind")
                    .source(dir.join(name))
                    .options(vec!["rbind".to_string()])
                    .build()
                    .map_err(build)?,
            );
        }
        spec.set_mounts(Some(mounts));
    }
    let mut linux = spec.linux().clone().unwrap_or_default();
    linux
        .set_namespaces(Some(namespaces))
        .set_cgroups_path(Some(Path::new("/").join(pod.cgroup)))
        .set_resources(Some(
            linux_resources(&resources::for_container(c)).map_err(build)?,
        ));
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// The OCI form of the agent's cgroup settings, with runc's default
/// device rule (deny all; the runtime then allows the standard devices).
fn linux_resources(
    r: &Resources,
) -> Result<oci_spec::runtime::LinuxResources, oci_spec::OciSpecError> {
    let mut memory = LinuxMemoryBuilder::default();
    if let Some(limit) = r.memory_limit {
        memory = memory.limit(limit);
    }
    let mut cpu = LinuxCpuBuilder::default();
    if let Some(shares) = r.cpu_shares {
        cpu = cpu.shares(shares);
    }
    if let (Some(quota), Some(period)) = (r.cpu_quota, r.cpu_period) {
        cpu = cpu.quota(quota).period(period);
    }
    LinuxResourcesBuilder::default()
        .devices(vec![LinuxDeviceCgroupBuilder::default()
            .allow(false)
            .access("rwm")
            .build()?])
        .memory(memory.build()?)
        .cpu(cpu.build()?)
        .build()
}

/// Write `spec` as `<bundle>/config.json`.
pub fn write_bundle_config(bundle: &Path, spec: &Spec) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(spec).map_err(std::io::Error::other)?;
    std::fs::write(bundle.join("config.json"), text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::EnvVar;

    fn image(entrypoint: &[&str], cmd: &[&str], env: &[&str]) -> ImageConfiguration {
        let v = |xs: &[&str]| xs.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let json = serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Entrypoint": v(entrypoint), "Cmd": v(cmd), "Env": v(env), "WorkingDir": "/srv"},
            "rootfs": {"type": "layers", "diff_ids": []},
        });
        serde_json::from_value(json).unwrap()
    }

    fn container(command: &[&str], args: &[&str]) -> Container {
        Container {
            name: "web".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            args: args.iter().map(|s| s.to_string()).collect(),
            ..Container::default()
        }
    }

    #[test]
    fn command_and_args_over_entrypoint_and_cmd() {
        let img = image(&["/entry"], &["--serve"], &[]);
        let cases: [(&[&str], &[&str], &[&str]); 4] = [
            (&[], &[], &["/entry", "--serve"]),
            (&["/bin/sh"], &[], &["/bin/sh"]),
            (&[], &["--debug"], &["/entry", "--debug"]),
            (&["/bin/sh"], &["-c", "x"], &["/bin/sh", "-c", "x"]),
        ];
        for (command, args, want) in cases {
            assert_eq!(
                argv(&container(command, args), &img).unwrap(),
                want,
                "{command:?} {args:?}"
            );
        }
        let empty = image(&[], &[], &[]);
        assert!(matches!(
            argv(&container(&[], &[]), &empty),
            Err(SpecError::NoProgram { .. })
        ));
    }

    #[test]
    fn container_env_overrides_image_env_in_place() {
        let img = image(&[], &["sh"], &["PATH=/bin", "MODE=image", "KEEP=1"]);
        let mut c = container(&[], &[]);
        c.env = vec![
            EnvVar {
                name: "MODE".into(),
                value: "pod".into(),
            },
            EnvVar {
                name: "NEW".into(),
                value: "x=y".into(),
            },
        ];
        assert_eq!(
            env(&c, &img, "p1"),
            ["PATH=/bin", "MODE=pod", "KEEP=1", "HOSTNAME=p1", "NEW=x=y"]
        );
        // No PATH anywhere: the default goes first.
        let bare = image(&[], &["sh"], &[]);
        assert_eq!(env(&c, &bare, "p1")[0], DEFAULT_PATH);
    }

    #[test]
    fn spec_joins_the_pod_and_owns_pid_and_mount() {
        let img = image(&[], &["sh"], &[]);
        let mut c = container(&[], &[]);
        c.resources
            .limits
            .insert("memory".into(), "32Mi".parse().unwrap());
        let pod = PodContext {
            hostname: "p1",
            netns: Path::new("/run/noderun/netns/u1"),
            ipcns: Path::new("/run/noderun/ipcns/u1"),
            utsns: Path::new("/run/noderun/utsns/u1"),
            cgroup: Path::new("noderun/burstable/podu1/web"),
            etc_dir: Some(Path::new("/run/noderun/pods/u1/_etc")),
        };
        let spec = container_spec(&c, &img, &pod).unwrap();
        let linux = spec.linux().as_ref().unwrap();
        let ns = linux.namespaces().as_ref().unwrap();
        let path_of = |t| ns.iter().find(|n| n.typ() == t).unwrap().path().clone();
        assert_eq!(path_of(LinuxNamespaceType::Network), Some(pod.netns.into()));
        assert_eq!(path_of(LinuxNamespaceType::Uts), Some(pod.utsns.into()));
        assert_eq!(path_of(LinuxNamespaceType::Pid), None);
        assert_eq!(path_of(LinuxNamespaceType::Mount), None);
        assert_eq!(
            linux.cgroups_path().as_deref(),
            Some(Path::new("/noderun/burstable/podu1/web"))
        );
        let memory = linux.resources().as_ref().unwrap().memory().unwrap();
        assert_eq!(memory.limit(), Some(32 << 20));
        assert!(spec.hostname().is_none(), "the pod's UTS namespace has it");
        let process = spec.process().as_ref().unwrap();
        assert_eq!(process.cwd(), Path::new("/srv"));
        assert!(linux.masked_paths().as_ref().is_some_and(|m| !m.is_empty()));
        let mounts = spec.mounts().as_ref().unwrap();
        let hosts = mounts
            .iter()
            .find(|m| m.destination() == Path::new("/etc/hosts"))
            .expect("/etc/hosts mounted");
        assert_eq!(
            hosts.source().as_deref(),
            Some(Path::new("/run/noderun/pods/u1/_etc/hosts"))
        );
        for file in ["/etc/hostname", "/etc/resolv.conf"] {
            assert!(mounts.iter().any(|m| m.destination() == Path::new(file)));
        }
    }
}
