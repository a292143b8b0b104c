//! Certificates from PEM files: the cluster CA a client trusts (and the
//! server's own chain, which the apiserver reads the same way).

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};

/// A PEM file that gives no certificate.
#[derive(Debug, thiserror::Error)]
pub enum CertsError {
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("{path} holds no certificate")]
    Empty { path: PathBuf },
}

/// Every certificate in the PEM file at `path` (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertsError> {
    let read = |source| CertsError::Read {
        path: path.to_owned(),
        source,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(read)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read)?;
    if certs.is_empty() {
        return Err(CertsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}
