//! Validation of container probes (liveness, readiness, startup): exactly
//! one handler, a usable port, and timings the node agent can act on.
//! The timings are checked after defaulting, so an unset (zero) timeout,
//! period or threshold here is an error.

use super::field::{FieldErrors, FieldPath};
use super::names;
use crate::model::{PortRef, Probe};

/// A port given by number (1 to 65535) or by a valid port name.
pub(crate) fn validate_port_ref(port: &PortRef, path: &FieldPath, errs: &mut FieldErrors) {
    match port {
        PortRef::Number(n) if !(1..=65535).contains(n) => {
            errs.push(path.invalid(*n, "must be between 1 and 65535, inclusive"));
        }
        PortRef::Number(_) => {}
        PortRef::Name(name) => {
            if let Err(e) = names::port_name(name) {
                errs.push(e.at(path, name));
            }
        }
    }
}

/// `single_success` is true for liveness and startup probes, whose success
/// threshold must be 1 (one success is all they can act on).
pub(crate) fn validate_probe(
    probe: &Probe,
    single_success: bool,
    path: &FieldPath,
    errs: &mut FieldErrors,
) {
    validate_handler(probe, path, errs);
    let at_least = |field: &str, value: i32, min: i32, errs: &mut FieldErrors| {
        if value < min {
            let detail = alloc::format!("must be greater than or equal to {min}");
            errs.push(path.child(field).invalid(value, detail));
        }
    };
    at_least("initialDelaySeconds", probe.initial_delay_seconds, 0, errs);
    at_least("timeoutSeconds", probe.timeout_seconds, 1, errs);
    at_least("periodSeconds", probe.period_seconds, 1, errs);
    at_least("successThreshold", probe.success_threshold, 1, errs);
    at_least("failureThreshold", probe.failure_threshold, 1, errs);
    if single_success && probe.success_threshold > 1 {
        errs.push(
            path.child("successThreshold")
                .invalid(probe.success_threshold, "must be 1"),
        );
    }
}

fn validate_handler(probe: &Probe, path: &FieldPath, errs: &mut FieldErrors) {
    let mut handlers = 0;
    let mut one_more = |field: &str, errs: &mut FieldErrors| {
        handlers += 1;
        if handlers > 1 {
            errs.push(
                path.child(field)
                    .forbidden("may not specify more than 1 handler type"),
            );
        }
    };
    if let Some(exec) = &probe.exec {
        one_more("exec", errs);
        if exec.command.is_empty() {
            errs.push(path.child("exec").child("command").required());
        }
    }
    if let Some(http) = &probe.http_get {
        one_more("httpGet", errs);
        validate_port_ref(&http.port, &path.child("httpGet").child("port"), errs);
        if !http.path.is_empty() && !http.path.starts_with('/') {
            errs.push(
                path.child("httpGet")
                    .child("path")
                    .invalid(&http.path, "must start with '/'"),
            );
        }
    }
    if let Some(tcp) = &probe.tcp_socket {
        one_more("tcpSocket", errs);
        validate_port_ref(&tcp.port, &path.child("tcpSocket").child("port"), errs);
    }
    if handlers == 0 {
        // One of exec, httpGet, tcpSocket.
        errs.push(path.required());
    }
}

#[cfg(test)]
mod tests {
    use super::super::field::FieldErrorType::*;
    use super::super::testing::{expect, Want};
    use super::*;
    use crate::model::{ExecAction, HttpGetAction, TcpSocketAction};
    use alloc::vec;

    fn probe() -> Probe {
        Probe {
            tcp_socket: Some(TcpSocketAction {
                port: PortRef::Number(8080),
                host: "".into(),
            }),
            initial_delay_seconds: 0,
            timeout_seconds: 1,
            period_seconds: 10,
            success_threshold: 1,
            failure_threshold: 3,
            ..Probe::default()
        }
    }

    type Case = (&'static str, bool, fn(&mut Probe), Want);

    #[test]
    fn probe_rules() {
        let cases: &[Case] = &[
            ("tcp", true, |_| {}, None),
            (
                "named port",
                true,
                |p| p.tcp_socket.as_mut().unwrap().port = PortRef::Name("http".into()),
                None,
            ),
            (
                "exec",
                true,
                |p| {
                    p.tcp_socket = None;
                    p.exec = Some(ExecAction {
                        command: vec!["true".into()],
                    });
                },
                None,
            ),
            (
                "empty exec",
                true,
                |p| {
                    p.tcp_socket = None;
                    p.exec = Some(ExecAction::default());
                },
                Some(("spec.containers[0].livenessProbe.exec.command", Required)),
            ),
            (
                "no handler",
                true,
                |p| p.tcp_socket = None,
                Some(("spec.containers[0].livenessProbe", Required)),
            ),
            (
                "two handlers",
                true,
                |p| {
                    p.http_get = Some(HttpGetAction {
                        port: PortRef::Number(80),
                        ..HttpGetAction::default()
                    })
                },
                Some(("spec.containers[0].livenessProbe.tcpSocket", Forbidden)),
            ),
            (
                "port zero",
                true,
                |p| p.tcp_socket.as_mut().unwrap().port = PortRef::Number(0),
                Some(("spec.containers[0].livenessProbe.tcpSocket.port", Invalid)),
            ),
            (
                "port too big",
                true,
                |p| p.tcp_socket.as_mut().unwrap().port = PortRef::Number(65536),
                Some(("spec.containers[0].livenessProbe.tcpSocket.port", Invalid)),
            ),
            (
                "numeric port name",
                true,
                |p| p.tcp_socket.as_mut().unwrap().port = PortRef::Name("8080".into()),
                Some(("spec.containers[0].livenessProbe.tcpSocket.port", Invalid)),
            ),
            (
                "relative http path",
                true,
                |p| {
                    p.tcp_socket = None;
                    p.http_get = Some(HttpGetAction {
                        path: "healthz".into(),
                        port: PortRef::Number(80),
                        ..HttpGetAction::default()
                    });
                },
                Some(("spec.containers[0].livenessProbe.httpGet.path", Invalid)),
            ),
            (
                "negative delay",
                true,
                |p| p.initial_delay_seconds = -1,
                Some((
                    "spec.containers[0].livenessProbe.initialDelaySeconds",
                    Invalid,
                )),
            ),
            (
                "zero timeout",
                true,
                |p| p.timeout_seconds = 0,
                Some(("spec.containers[0].livenessProbe.timeoutSeconds", Invalid)),
            ),
            (
                "zero period",
                true,
                |p| p.period_seconds = 0,
                Some(("spec.containers[0].livenessProbe.periodSeconds", Invalid)),
            ),
            (
                "zero failures",
                true,
                |p| p.failure_threshold = 0,
                Some(("spec.containers[0].livenessProbe.failureThreshold", Invalid)),
            ),
            (
                "zero successes",
                false,
                |p| p.success_threshold = 0,
                Some(("spec.containers[0].livenessProbe.successThreshold", Invalid)),
            ),
            (
                "readiness may need 3 successes",
                false,
                |p| p.success_threshold = 3,
                None,
            ),
            (
                "liveness needs 1 success",
                true,
                |p| p.success_threshold = 3,
                Some(("spec.containers[0].livenessProbe.successThreshold", Invalid)),
            ),
        ];
        let path = FieldPath::new("spec")
            .child("containers")
            .index(0)
            .child("livenessProbe");
        for (name, single, edit, want) in cases {
            let mut pr = probe();
            edit(&mut pr);
            let mut errs = FieldErrors::new();
            validate_probe(&pr, *single, &path, &mut errs);
            expect(name, errs.into_result(), *want);
        }
    }
}
