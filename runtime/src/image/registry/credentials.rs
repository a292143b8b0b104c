//! Registry credentials and where they come from, in this order: given
//! explicitly (`noderun image pull --username U --password-stdin`), the
//! `NODERUN_REGISTRY_AUTH` variable (`user:password`), or the `auths`
//! entry for the registry in a docker `config.json` (what `docker login`
//! writes: `{"auths": {"127.0.0.1:5000": {"auth": base64("user:password")}}}`).
//! Credential helpers (`credsStore`) are not consulted.

use super::base64;
use std::path::{Path, PathBuf};

/// The variable read for `user:password`.
pub const AUTH_ENV: &str = "NODERUN_REGISTRY_AUTH";

/// The key docker uses in `auths` for Docker Hub.
const DOCKER_HUB_AUTH_KEY: &str = "https://index.docker.io/v1/";

/// A user name and password for Basic auth or for the token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <password>)", self.username)
    }
}

/// Credentials that were given but cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("{origin}: expected user:password with a non-empty user")]
    NotUserPassword { origin: String },
    #[error("docker config {path}: {source}")]
    ConfigRead {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("docker config {path} is not valid JSON: {source}")]
    ConfigJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("docker config {path}: auths entry {key:?}: the auth field is not base64")]
    ConfigAuth { path: PathBuf, key: String },
    #[error(
        "a password was asked for user {username} but none was given (an empty password on stdin)"
    )]
    EmptyPassword { username: String },
}

impl Credentials {
    /// A user and password; the password must not be empty.
    pub fn new(username: &str, password: &str) -> Result<Credentials, CredentialsError> {
        if password.is_empty() {
            return Err(CredentialsError::EmptyPassword {
                username: username.into(),
            });
        }
        Ok(Credentials {
            username: username.into(),
            password: password.into(),
        })
    }

    /// `user:password` (the password may hold colons); `origin` names where
    /// the text came from, for the error.
    pub fn parse_pair(text: &str, origin: &str) -> Result<Credentials, CredentialsError> {
        match text.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Credentials {
                username: user.into(),
                password: password.into(),
            }),
            _ => Err(CredentialsError::NotUserPassword {
                origin: origin.into(),
            }),
        }
    }

    /// The `Authorization` header value for Basic auth.
    pub fn basic_header(&self) -> String {
        let pair = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::encode(pair.as_bytes()))
    }

    /// The credentials for `registry` (as a reference names it:
    /// `docker.io`, `127.0.0.1:5000`) in the docker config at `path`, if
    /// it has an `auths` entry for it. A missing file is no credentials.
    pub fn from_docker_config(
        path: &Path,
        registry: &str,
    ) -> Result<Option<Credentials>, CredentialsError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(CredentialsError::ConfigRead {
                    path: path.into(),
                    source,
                })
            }
        };
        #[derive(serde::Deserialize)]
        struct Config {
            #[serde(default)]
            auths: std::collections::BTreeMap<String, Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            auth: Option<String>,
            username: Option<String>,
            password: Option<String>,
        }
        let config: Config =
            serde_json::from_slice(&bytes).map_err(|source| CredentialsError::ConfigJson {
                path: path.into(),
                source,
            })?;
        let Some((key, entry)) = config
            .auths
            .iter()
            .find(|(key, _)| auth_key_registry(key) == registry)
        else {
            return Ok(None);
        };
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            let bad = || CredentialsError::ConfigAuth {
                path: path.into(),
                key: key.clone(),
            };
            let pair = base64::decode(auth).ok_or_else(bad)?;
            let pair = String::from_utf8(pair).map_err(|_| bad())?;
            return Credentials::parse_pair(&pair, &format!("{}: auths {key:?}", path.display()))
                .map(Some);
        }
        Ok(match (&entry.username, &entry.password) {
            (Some(u), Some(p)) if !u.is_empty() => Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            }),
            _ => None,
        })
    }

    /// The docker config file docker itself would read:
    /// `$DOCKER_CONFIG/config.json`, else `$HOME/.docker/config.json`.
    pub fn docker_config_path(
        docker_config: Option<&Path>,
        home: Option<&Path>,
    ) -> Option<PathBuf> {
        match (docker_config, home) {
            (Some(dir), _) => Some(dir.join("config.json")),
            (None, Some(home)) => Some(home.join(".docker/config.json")),
            (None, None) => None,
        }
    }

    /// Pick the credentials for `registry`: `explicit` first, then the
    /// value of [`AUTH_ENV`], then the docker config at `docker_config`.
    pub fn resolve(
        explicit: Option<Credentials>,
        env_auth: Option<&str>,
        docker_config: Option<&Path>,
        registry: &str,
    ) -> Result<Option<Credentials>, CredentialsError> {
        if explicit.is_some() {
            return Ok(explicit);
        }
        if let Some(pair) = env_auth.filter(|v| !v.is_empty()) {
            return Credentials::parse_pair(pair, AUTH_ENV).map(Some);
        }
        match docker_config {
            Some(path) => Credentials::from_docker_config(path, registry),
            None => Ok(None),
        }
    }
}

/// The registry an `auths` key names: `https://host:port/v1/` → `host:port`,
/// Docker Hub's historical key → `docker.io`.
fn auth_key_registry(key: &str) -> &str {
    if key == DOCKER_HUB_AUTH_KEY {
        return "docker.io";
    }
    let without_scheme = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = without_scheme.split('/').next().unwrap_or(without_scheme);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn pairs_and_headers() {
        assert_eq!(
            Credentials::parse_pair("alice:pa:ss", "x").unwrap(),
            creds("alice", "pa:ss")
        );
        for bad in ["alice", ":pw", ""] {
            let err = Credentials::parse_pair(bad, AUTH_ENV).unwrap_err();
            assert!(err.to_string().contains(AUTH_ENV), "{err}");
        }
        assert_eq!(
            creds("Aladdin", "open sesame").basic_header(),
            "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert!(format!("{:?}", creds("u", "secret")).contains("<password>"));
        assert!(!format!("{:?}", creds("u", "secret")).contains("secret"));
        assert!(Credentials::new("u", "").is_err());
    }

    #[test]
    fn auth_keys_name_registries() {
        for (key, registry) in [
            ("https://index.docker.io/v1/", "docker.io"),
            ("index.docker.io", "docker.io"),
            ("127.0.0.1:5000", "127.0.0.1:5000"),
            ("https://registry.example:5000/v2/", "registry.example:5000"),
            ("http://localhost:5000", "localhost:5000"),
        ] {
            assert_eq!(auth_key_registry(key), registry, "{key}");
        }
    }

    #[test]
    fn docker_config_entries() {
        let dir = std::env::temp_dir().join(format!("nr-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.json");
        std::fs::write(
            &path,
            r#"{"auths": {
                "https://index.docker.io/v1/": {"auth": "aHViOmh1YnB3"},
                "127.0.0.1:5000": {"auth": "YWxpY2U6czNjcmV0"},
                "other:1": {"username": "bob", "password": "pw"},
                "broken:2": {"auth": "!!!"}
            }, "credsStore": "desktop"}"#,
        )
        .unwrap();
        let get = |r: &str| Credentials::from_docker_config(&path, r);
        assert_eq!(get("docker.io").unwrap(), Some(creds("hub", "hubpw")));
        assert_eq!(
            get("127.0.0.1:5000").unwrap(),
            Some(creds("alice", "s3cret"))
        );
        assert_eq!(get("other:1").unwrap(), Some(creds("bob", "pw")));
        assert_eq!(get("nowhere:3").unwrap(), None);
        let err = get("broken:2").unwrap_err().to_string();
        assert!(err.contains("broken:2") && err.contains("base64"), "{err}");
        assert_eq!(
            Credentials::from_docker_config(&dir.join("missing.json"), "x").unwrap(),
            None
        );

        // Explicit beats the variable, which beats the file.
        let resolve = |explicit, env| Credentials::resolve(explicit, env, Some(&path), "other:1");
        assert_eq!(
            resolve(Some(creds("e", "p")), Some("v:w")).unwrap(),
            Some(creds("e", "p"))
        );
        assert_eq!(resolve(None, Some("v:w")).unwrap(), Some(creds("v", "w")));
        assert_eq!(resolve(None, None).unwrap(), Some(creds("bob", "pw")));
        std::fs::write(&path, b"{not json").unwrap();
        let err = resolve(None, None).unwrap_err().to_string();
        assert!(err.contains("config.json"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn docker_config_location() {
        assert_eq!(
            Credentials::docker_config_path(Some(Path::new("/d")), Some(Path::new("/h"))),
            Some(PathBuf::from("/d/config.json"))
        );
        assert_eq!(
            Credentials::docker_config_path(None, Some(Path::new("/h"))),
            Some(PathBuf::from("/h/.docker/config.json"))
        );
        assert_eq!(Credentials::docker_config_path(None, None), None);
    }
}
