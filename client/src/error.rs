//! [`ClientError`]: each way a call to the apiserver fails, naming the
//! endpoint or the request.

use noderun_core::proto::{ApiError, ErrorCode, FrameError};
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connecting to {endpoint}")]
    Connect {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the cluster CA {path}")]
    CaFile {
        path: PathBuf,
        #[source]
        source: crate::pem::CertsError,
    },
    #[error("the cluster CA {path} is not usable")]
    CaCert {
        path: PathBuf,
        #[source]
        source: rustls::Error,
    },
    #[error("{host:?} is not a valid server name for TLS")]
    ServerName { host: String },
    #[error("TLS with {endpoint} failed (is the CA file the one of this cluster?)")]
    Tls {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the apiserver refused the connection: {0}")]
    Refused(ApiError),
    #[error("{0}")]
    Api(ApiError),
    #[error("bad frame from the apiserver")]
    Protocol(#[from] FrameError),
    #[error("the connection to the apiserver is closed")]
    Closed,
    #[error("the apiserver answered {got} to a {request} request")]
    Unexpected {
        request: &'static str,
        got: &'static str,
    },
}

impl ClientError {
    /// The protocol error code, if the server answered with an error.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api(e) | ClientError::Refused(e) => Some(e.code),
            _ => None,
        }
    }
}
