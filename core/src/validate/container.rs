//! Validation of one container: name, image, environment, working
//! directory, ports, resources and probes. Rules that span containers
//! (unique names, host port conflicts) belong to the pod.

use super::field::{FieldErrors, FieldPath};
use super::names;
use super::net::validate_ip;
use super::probe::validate_probe;
use super::resources::validate_requirements;
use crate::image_ref::ImageRef;
use crate::model::Container;
use alloc::collections::BTreeSet;
use alloc::string::ToString;

/// What the pod around a container changes about its rules.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ContainerContext {
    /// Init containers run to completion: probes make no sense there.
    pub init: bool,
    /// With the host's network, a host port is the container port.
    pub host_network: bool,
}

pub(crate) fn validate_container(
    c: &Container,
    ctx: ContainerContext,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    if let Err(e) = names::dns1123_label(&c.name) {
        errs.push(e.at(&path.child("name"), &c.name));
    }
    let image = path.child("image");
    if c.image.is_empty() {
        errs.push(image.required());
    } else if let Err(e) = ImageRef::parse(&c.image) {
        errs.push(image.invalid(&c.image, e.to_string()));
    }
    let env = path.child("env");
    for (i, var) in c.env.iter().enumerate() {
        if let Err(e) = names::env_var_name(&var.name) {
            errs.push(e.at(&env.index(i).child("name"), &var.name));
        }
    }
    if !c.working_dir.is_empty() && !c.working_dir.starts_with('/') {
        errs.push(
            path.child("workingDir")
                .invalid(&c.working_dir, "must be an absolute path"),
        );
    }
    validate_ports(c, ctx, &path.child("ports"), errs);
    validate_requirements(&c.resources, &path.child("resources"), errs);
    let probes = [
        ("livenessProbe", &c.liveness_probe, true),
        ("readinessProbe", &c.readiness_probe, false),
        ("startupProbe", &c.startup_probe, true),
    ];
    for (field, probe, single_success) in probes {
        let Some(probe) = probe else { continue };
        let at = path.child(field);
        if ctx.init {
            errs.push(at.forbidden("may not be set for init containers"));
        } else {
            validate_probe(probe, single_success, &at, errs);
        }
    }
}

fn validate_ports(c: &Container, ctx: ContainerContext, path: &FieldPath, errs: &mut FieldErrors) {
    let mut seen_names = BTreeSet::new();
    for (i, port) in c.ports.iter().enumerate() {
        let at = path.index(i);
        if !port.name.is_empty() {
            let name = at.child("name");
            if let Err(e) = names::port_name(&port.name) {
                errs.push(e.at(&name, &port.name));
            } else if !seen_names.insert(port.name.as_str()) {
                errs.push(name.duplicate(&port.name));
            }
        }
        if !(1..=65535).contains(&port.container_port) {
            errs.push(at.child("containerPort").invalid(
                port.container_port,
                "must be between 1 and 65535, inclusive",
            ));
        }
        let host_port = at.child("hostPort");
        if !(0..=65535).contains(&port.host_port) {
            errs.push(host_port.invalid(port.host_port, "must be between 0 and 65535, inclusive"));
        } else if ctx.host_network && port.host_port != 0 && port.host_port != port.container_port {
            errs.push(host_port.invalid(
                port.host_port,
                "must match `containerPort` when `hostNetwork` is true",
            ));
        }
        if !port.host_ip.is_empty() {
            validate_ip(&port.host_ip, &at.child("hostIP"), errs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, web_container, Want};
    use super::*;
    use crate::model::{ContainerPort, EnvVar};
    use alloc::vec;

    type Case = (&'static str, ContainerContext, fn(&mut Container), Want);

    const APP: ContainerContext = ContainerContext {
        init: false,
        host_network: false,
    };
    const INIT: ContainerContext = ContainerContext {
        init: true,
        host_network: false,
    };
    const HOST: ContainerContext = ContainerContext {
        init: false,
        host_network: true,
    };

    fn port(name: &str, container_port: i32, host_port: i32) -> ContainerPort {
        ContainerPort {
            name: name.into(),
            container_port,
            host_port,
            ..ContainerPort::default()
        }
    }

    #[test]
    fn container_rules() {
        let cases: &[Case] = &[
            ("realistic", APP, |_| {}, None),
            (
                "name missing",
                APP,
                |c| c.name.clear(),
                Some(("spec.containers[1].name", Required)),
            ),
            (
                "name invalid",
                APP,
                |c| c.name = "Web".into(),
                Some(("spec.containers[1].name", Invalid)),
            ),
            (
                "image missing",
                APP,
                |c| c.image.clear(),
                Some(("spec.containers[1].image", Required)),
            ),
            (
                "image with registry and digest",
                APP,
                |c| {
                    c.image = alloc::format!("localhost:5000/app@sha256:{}", "a".repeat(64));
                },
                None,
            ),
            (
                "image malformed",
                APP,
                |c| c.image = "Nginx:1".into(),
                Some(("spec.containers[1].image", Invalid)),
            ),
            (
                "env name empty",
                APP,
                |c| c.env.push(EnvVar::default()),
                Some(("spec.containers[1].env[1].name", Required)),
            ),
            (
                "env name with =",
                APP,
                |c| c.env[0].name = "A=B".into(),
                Some(("spec.containers[1].env[0].name", Invalid)),
            ),
            (
                "relative workdir",
                APP,
                |c| c.working_dir = "srv".into(),
                Some(("spec.containers[1].workingDir", Invalid)),
            ),
            ("no workdir", APP, |c| c.working_dir.clear(), None),
            (
                "port zero",
                APP,
                |c| c.ports[0].container_port = 0,
                Some(("spec.containers[1].ports[0].containerPort", Invalid)),
            ),
            (
                "port 65535",
                APP,
                |c| c.ports[0].container_port = 65535,
                None,
            ),
            (
                "port 65536",
                APP,
                |c| c.ports[0].container_port = 65536,
                Some(("spec.containers[1].ports[0].containerPort", Invalid)),
            ),
            ("host port", APP, |c| c.ports[0].host_port = 80, None),
            (
                "host port negative",
                APP,
                |c| c.ports[0].host_port = -1,
                Some(("spec.containers[1].ports[0].hostPort", Invalid)),
            ),
            (
                "host ip",
                APP,
                |c| c.ports[0].host_ip = "127.0.0.1".into(),
                None,
            ),
            (
                "host ip bad",
                APP,
                |c| c.ports[0].host_ip = "localhost".into(),
                Some(("spec.containers[1].ports[0].hostIP", Invalid)),
            ),
            (
                "port name bad",
                APP,
                |c| c.ports[0].name = "HTTP".into(),
                Some(("spec.containers[1].ports[0].name", Invalid)),
            ),
            (
                "port names unique",
                APP,
                |c| c.ports.push(port("http", 8081, 0)),
                Some(("spec.containers[1].ports[1].name", Duplicate)),
            ),
            (
                "unnamed ports",
                APP,
                |c| {
                    c.ports = vec![port("", 80, 0), port("", 81, 0)];
                    c.liveness_probe = None;
                    c.readiness_probe = None;
                },
                None,
            ),
            (
                "host network same port",
                HOST,
                |c| c.ports[0].host_port = 8080,
                None,
            ),
            ("host network unset host port", HOST, |_| {}, None),
            (
                "host network other port",
                HOST,
                |c| c.ports[0].host_port = 80,
                Some(("spec.containers[1].ports[0].hostPort", Invalid)),
            ),
            (
                "memory limit negative",
                APP,
                |c| {
                    c.resources
                        .limits
                        .insert("memory".into(), "-1".parse().unwrap());
                },
                Some(("spec.containers[1].resources.limits.memory", Invalid)),
            ),
            (
                "probe checked",
                APP,
                |c| c.liveness_probe.as_mut().unwrap().period_seconds = 0,
                Some(("spec.containers[1].livenessProbe.periodSeconds", Invalid)),
            ),
            (
                "startup probe checked",
                APP,
                |c| {
                    let mut p = c.liveness_probe.clone().unwrap();
                    p.success_threshold = 2;
                    c.startup_probe = Some(p);
                },
                Some(("spec.containers[1].startupProbe.successThreshold", Invalid)),
            ),
            (
                "init container without probes",
                INIT,
                |c| {
                    c.liveness_probe = None;
                    c.readiness_probe = None;
                },
                None,
            ),
            (
                "init container with a probe",
                INIT,
                |c| c.liveness_probe = None,
                Some(("spec.containers[1].readinessProbe", Forbidden)),
            ),
        ];
        let path = FieldPath::new("spec").child("containers").index(1);
        for (name, ctx, edit, want) in cases {
            let mut c = web_container("web");
            edit(&mut c);
            let mut errs = FieldErrors::new();
            validate_container(&c, *ctx, &path, &mut errs);
            expect(name, errs.into_result(), *want);
        }
    }
}
