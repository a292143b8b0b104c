//! [`EtcdOptions`]: where the etcd backend connects and which key prefix
//! it owns, read from an `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]` URL.

/// The key prefix when the URL names none: every object lives under
/// `/noderun/<plural>/<namespace>/<name>`.
pub const DEFAULT_PREFIX: &str = "/noderun/";

/// How to reach etcd and where in its keyspace the store lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EtcdOptions {
    /// `HOST:PORT` of each member (plain HTTP/2; the client balances
    /// between them).
    pub endpoints: Vec<String>,
    /// The prefix of every key, `/` at both ends (`/noderun/`). Stores with
    /// different prefixes share one etcd without seeing each other's
    /// objects, though they share its revision counter.
    pub prefix: String,
}

/// An `--store etcd://...` URL that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EtcdUrlError {
    #[error("{url:?} is not an etcd URL; write etcd://HOST:PORT[,HOST:PORT...][/PREFIX]")]
    Scheme { url: String },
    #[error("{url:?} names no etcd endpoint; write etcd://HOST:PORT, e.g. etcd://127.0.0.1:2379")]
    NoEndpoint { url: String },
    #[error("endpoint {endpoint:?} in {url:?} is not HOST:PORT (a port from 1 to 65535)")]
    Endpoint { url: String, endpoint: String },
}

impl EtcdOptions {
    /// The options of `etcd://HOST:PORT[,HOST:PORT...][/PREFIX]`; the
    /// prefix defaults to [`DEFAULT_PREFIX`].
    pub fn from_url(url: &str) -> Result<EtcdOptions, EtcdUrlError> {
        let rest = url
            .strip_prefix("etcd://")
            .ok_or_else(|| EtcdUrlError::Scheme { url: url.into() })?;
        let (hosts, path) = rest.split_once('/').unwrap_or((rest, ""));
        let endpoints: Vec<String> = hosts
            .split(',')
            .filter(|h| !h.is_empty())
            .map(str::to_owned)
            .collect();
        if endpoints.is_empty() {
            return Err(EtcdUrlError::NoEndpoint { url: url.into() });
        }
        for endpoint in &endpoints {
            let port = endpoint
                .rsplit_once(':')
                .map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(p))) if !host.is_empty() && p != 0) {
                return Err(EtcdUrlError::Endpoint {
                    url: url.into(),
                    endpoint: endpoint.clone(),
                });
            }
        }
        let path = path.trim_matches('/');
        let prefix = if path.is_empty() {
            DEFAULT_PREFIX.to_owned()
        } else {
            format!("/{path}/")
        };
        Ok(EtcdOptions { endpoints, prefix })
    }

    /// `etcd://HOST:PORT,...`: how errors name the cluster.
    pub fn display_endpoints(&self) -> String {
        format!("etcd://{}", self.endpoints.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let ok = |url: &str, endpoints: &[&str], prefix: &str| {
            assert_eq!(
                EtcdOptions::from_url(url).unwrap(),
                EtcdOptions {
                    endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
                    prefix: prefix.into(),
                },
                "{url}"
            );
        };
        ok("etcd://127.0.0.1:2379", &["127.0.0.1:2379"], "/noderun/");
        ok("etcd://127.0.0.1:2379/", &["127.0.0.1:2379"], "/noderun/");
        ok("etcd://a:1,b:2/team/x/", &["a:1", "b:2"], "/team/x/");
        ok("etcd://[::1]:2379", &["[::1]:2379"], "/noderun/");
        let err = |url: &str| EtcdOptions::from_url(url).unwrap_err();
        assert!(matches!(err("http://a:1"), EtcdUrlError::Scheme { .. }));
        assert!(matches!(err("etcd://"), EtcdUrlError::NoEndpoint { .. }));
        assert!(matches!(err("etcd:///p"), EtcdUrlError::NoEndpoint { .. }));
        for bad in [
            "etcd://host",
            "etcd://host:0",
            "etcd://host:x",
            "etcd://:2379",
        ] {
            let e = err(bad);
            assert!(matches!(e, EtcdUrlError::Endpoint { .. }), "{bad}: {e}");
            assert!(e.to_string().contains("HOST:PORT"), "{e}");
        }
    }
}
