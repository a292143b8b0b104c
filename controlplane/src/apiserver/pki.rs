//! The cluster's TLS material, made on first start under
//! `<data dir>/pki/`: a CA (`ca.crt`, `ca.key`) and the apiserver's
//! certificate signed by it (`server.crt`, `server.key`) for `localhost`,
//! the loopback addresses, the host's name and any address it is told to
//! serve on. Clients trust `ca.crt` (it travels with the token). Keys are
//! written mode 0600, atomically (temp file, then rename).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use rustls::ServerConfig;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What went wrong with the TLS material.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: rustls::pki_types::pem::Error,
    },
    #[error("generating the {what}")]
    Generate {
        what: &'static str,
        #[source]
        source: rcgen::Error,
    },
    #[error(transparent)]
    Certs(#[from] noderun_client::pem::CertsError),
    #[error("building the TLS server configuration from {cert}")]
    Config {
        cert: PathBuf,
        #[source]
        source: rustls::Error,
    },
}

/// Where the TLS files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiPaths {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
}

impl PkiPaths {
    /// The files under `<data_dir>/pki/`.
    pub fn in_data_dir(data_dir: &Path) -> PkiPaths {
        let dir = data_dir.join("pki");
        PkiPaths {
            ca_cert: dir.join("ca.crt"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.crt"),
            server_key: dir.join("server.key"),
        }
    }
}

/// The CA's parameters; the same each time, so that a kept CA key can
/// sign a new server certificate that chains to the kept CA certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "noderun cluster CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2025, 1, 1);
    params.not_after = rcgen::date_time_ymd(2045, 1, 1);
    params
}

/// Make whatever of the CA and the server certificate is missing.
/// `names` are extra DNS names or IP addresses for the server certificate.
/// Returns true when something was made.
pub fn ensure(paths: &PkiPaths, names: &[String]) -> Result<bool, PkiError> {
    let mut made = false;
    if let Some(dir) = paths.ca_cert.parent() {
        std::fs::create_dir_all(dir).map_err(|source| PkiError::Write {
            path: dir.to_owned(),
            source,
        })?;
    }
    let gen = |what| move |source| PkiError::Generate { what, source };
    let ca_key = if paths.ca_key.exists() && paths.ca_cert.exists() {
        let pem = std::fs::read_to_string(&paths.ca_key).map_err(|source| PkiError::ReadFile {
            path: paths.ca_key.clone(),
            source,
        })?;
        KeyPair::from_pem(&pem).map_err(gen("CA key (from its file)"))?
    } else {
        let key = KeyPair::generate().map_err(gen("CA key"))?;
        let cert = ca_params()
            .self_signed(&key)
            .map_err(gen("CA certificate"))?;
        write_file(&paths.ca_key, key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&paths.ca_cert, cert.pem().as_bytes(), 0o644)?;
        // A new CA makes any old server certificate useless.
        let _ = std::fs::remove_file(&paths.server_cert);
        made = true;
        key
    };
    if !(paths.server_cert.exists() && paths.server_key.exists()) {
        let mut sans: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
        if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            sans.push(host.trim().to_owned());
        }
        sans.extend(names.iter().cloned());
        sans.sort();
        sans.dedup();
        sans.retain(|s| !s.is_empty());
        let mut params = CertificateParams::new(sans).map_err(gen("server certificate names"))?;
        params
            .distinguished_name
            .push(DnType::CommonName, "noderun apiserver");
        params.not_before = rcgen::date_time_ymd(2025, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let key = KeyPair::generate().map_err(gen("server key"))?;
        let issuer = Issuer::new(ca_params(), ca_key);
        let cert = params
            .signed_by(&key, &issuer)
            .map_err(gen("server certificate"))?;
        write_file(&paths.server_key, key.serialize_pem().as_bytes(), 0o600)?;
        write_file(&paths.server_cert, cert.pem().as_bytes(), 0o644)?;
        made = true;
    }
    Ok(made)
}

/// `bytes` into `path` with `mode`, atomically.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let err = |source| PkiError::Write {
        path: path.to_owned(),
        source,
    };
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// The rustls server configuration from the server certificate and key.
pub fn server_config(paths: &PkiPaths) -> Result<Arc<ServerConfig>, PkiError> {
    let certs = noderun_client::pem::read_certs(&paths.server_cert)?;
    let key = PrivateKeyDer::from_pem_file(&paths.server_key).map_err(|source| PkiError::Read {
        path: paths.server_key.clone(),
        source,
    })?;
    let config_err = |source| PkiError::Config {
        cert: paths.server_cert.clone(),
        source,
    };
    let config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(config_err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(config_err)?;
    Ok(Arc::new(config))
}
