//! What to tell a `ctl` user when a call fails: the failure, then what to
//! do about it.

use crate::client::{ClientError, Endpoint};
use noderun_core::proto::ErrorCode;

/// The default data dir, as `controlplane` uses it.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/noderun/controlplane";

/// The next step for `err`, met while talking to `endpoint`; `None` when
/// the message says it all.
pub fn next_step(err: &ClientError, endpoint: &Endpoint) -> Option<String> {
    let text = match err {
        ClientError::Connect { source, .. }
            if source.kind() == std::io::ErrorKind::PermissionDenied =>
        {
            "the controlplane socket is root-only: run ctl as root".to_owned()
        }
        ClientError::Connect { .. } => match endpoint {
            Endpoint::Unix(path) => format!(
                "is controlplane running? start it with `controlplane --data-dir {DEFAULT_DATA_DIR} --socket {}`, or point ctl elsewhere with --socket or --server",
                path.display()
            ),
            _ => "is controlplane running and listening there (--listen)? check --server".to_owned(),
        },
        ClientError::Tls { .. } | ClientError::CaFile { .. } | ClientError::CaCert { .. } => format!(
            "pass the cluster's CA with --ca-file (controlplane writes it to {DEFAULT_DATA_DIR}/pki/ca.crt)"
        ),
        ClientError::Refused(e) | ClientError::Api(e) => match e.code {
            ErrorCode::Unauthorized => format!(
                "check the token: --token-file (controlplane wrote the admin token to {DEFAULT_DATA_DIR}/admin.token)"
            ),
            ErrorCode::Forbidden => "use a token whose identity may do this (admin may do everything)".to_owned(),
            ErrorCode::NotFound => "list what exists with `ctl get <kind>`".to_owned(),
            ErrorCode::AlreadyExists => "change it with `ctl apply -f`, or delete it first".to_owned(),
            ErrorCode::Conflict => "it changed meanwhile: read it again and retry".to_owned(),
            ErrorCode::Invalid => "fix the fields named above and try again".to_owned(),
            ErrorCode::Unavailable => "retry in a moment".to_owned(),
            _ => return None,
        },
        ClientError::Closed => "the apiserver closed the connection; see the controlplane's log".to_owned(),
        _ => return None,
    };
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use noderun_core::proto::ApiError;

    #[test]
    fn a_missing_socket_says_how_to_start_controlplane() {
        let err = ClientError::Connect {
            endpoint: "unix:/run/x.sock".into(),
            source: std::io::ErrorKind::NotFound.into(),
        };
        let hint = next_step(&err, &Endpoint::Unix("/run/x.sock".into())).unwrap();
        assert!(
            hint.contains("is controlplane running? start it with `controlplane"),
            "{hint}"
        );
        let denied = ClientError::Api(ApiError::new(ErrorCode::Forbidden, "no"));
        let hint = next_step(&denied, &Endpoint::Unix("/s".into())).unwrap();
        assert!(hint.contains("admin"), "{hint}");
    }
}
