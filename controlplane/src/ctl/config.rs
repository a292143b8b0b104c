//! Where `ctl` connects and with which token: flags (or their environment
//! variables) first, then the config file, then the defaults of a local
//! controlplane. The config file has one `key = value` a line (`#`
//! comments): `server`, `ca-file`, `token-file`, `socket`.
//!
//! ```text
//! # ~/.config/noderun/ctl.conf
//! server = cp.example.com:6443
//! ca-file = /etc/noderun/ca.crt
//! token-file = /etc/noderun/admin.token
//! ```

use super::hint::DEFAULT_DATA_DIR;
use crate::client::Endpoint;
use std::path::{Path, PathBuf};

/// The controlplane's default socket.
pub const DEFAULT_SOCKET: &str = "/run/noderun/controlplane.sock";

/// Connection settings, each possibly unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub socket: Option<PathBuf>,
    pub server: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub token_file: Option<PathBuf>,
}

/// A config file that does not read.
#[derive(Debug, thiserror::Error)]
#[error("{path}, line {line}: {reason}")]
pub struct ConfigError {
    pub path: PathBuf,
    pub line: usize,
    pub reason: String,
}

impl Settings {
    /// Parse a config file's text (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Settings, ConfigError> {
        let mut s = Settings::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| ConfigError {
                path: path.to_owned(),
                line: i + 1,
                reason: reason.to_owned(),
            };
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| err("expected `key = value`"))?;
            let value = value.trim().to_owned();
            match key.trim() {
                "socket" => s.socket = Some(value.into()),
                "server" => s.server = Some(value),
                "ca-file" => s.ca_file = Some(value.into()),
                "token-file" => s.token_file = Some(value.into()),
                _ => {
                    return Err(err(
                        "unknown key (known: server, ca-file, token-file, socket)",
                    ))
                }
            }
        }
        Ok(s)
    }

    /// These settings, with what is unset taken from `fallback`.
    pub fn or(self, fallback: Settings) -> Settings {
        Settings {
            socket: self.socket.or(fallback.socket),
            server: self.server.or(fallback.server),
            ca_file: self.ca_file.or(fallback.ca_file),
            token_file: self.token_file.or(fallback.token_file),
        }
    }

    /// Where to connect: TLS when a server is set, else the socket.
    pub fn endpoint(&self) -> Endpoint {
        match &self.server {
            Some(addr) => Endpoint::Tls {
                addr: addr.clone(),
                ca_file: self
                    .ca_file
                    .clone()
                    .unwrap_or_else(|| Path::new(DEFAULT_DATA_DIR).join("pki/ca.crt")),
            },
            None => Endpoint::Unix(self.socket.clone().unwrap_or_else(|| DEFAULT_SOCKET.into())),
        }
    }

    /// The token file to read.
    pub fn token_file(&self) -> PathBuf {
        self.token_file
            .clone()
            .unwrap_or_else(|| Path::new(DEFAULT_DATA_DIR).join("admin.token"))
    }
}

/// The config file used when none is named: `$XDG_CONFIG_HOME/noderun/ctl.conf`
/// or `~/.config/noderun/ctl.conf`.
pub fn default_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("noderun/ctl.conf"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let file = Settings::parse(
            "# cluster\nserver = cp:6443\nca-file = /etc/ca.crt\n\ntoken-file=/etc/t\n",
            Path::new("c"),
        )
        .unwrap();
        let flags = Settings {
            token_file: Some("/mine".into()),
            ..Settings::default()
        };
        let s = flags.or(file);
        assert_eq!(s.token_file(), PathBuf::from("/mine"));
        assert_eq!(
            s.endpoint(),
            Endpoint::Tls {
                addr: "cp:6443".into(),
                ca_file: "/etc/ca.crt".into()
            }
        );
        let none = Settings::default();
        assert_eq!(none.endpoint(), Endpoint::Unix(DEFAULT_SOCKET.into()));
        let e = Settings::parse("\nport = 1\n", Path::new("/x/ctl.conf")).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("/x/ctl.conf, line 2: unknown key"),
            "{e}"
        );
    }
}
