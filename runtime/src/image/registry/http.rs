//! The HTTP side of a registry: one agent per pull, the auth dance
//! (anonymous first; on 401 a Bearer token from the challenge's realm, or
//! Basic credentials) and the errors that name registry, repository and
//! status.

use super::challenge::{pull_scope, Challenge};
use super::credentials::Credentials;
use super::endpoint::Endpoint;
use super::RegistryError;
use std::sync::Mutex;
use std::time::Duration;
use ureq::http::Response;
use ureq::Body;

/// A client for one repository of one registry.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
    endpoint: Endpoint,
    credentials: Option<Credentials>,
    /// The `Authorization` value that worked last, shared by the workers.
    authorization: Mutex<Option<String>>,
}

impl Client {
    /// A client for `endpoint`; plain HTTP only when the endpoint is loopback.
    pub fn new(endpoint: Endpoint, credentials: Option<Credentials>) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .https_only(!endpoint.is_plain_http())
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .user_agent("noderun")
            .build();
        Client {
            agent: config.into(),
            endpoint,
            credentials,
            authorization: Mutex::new(None),
        }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// GET `url` with these `Accept` types and an optional `Range` start,
    /// authenticating on a 401 and retrying once. Returns the response of
    /// any status but 401; the caller judges the status.
    pub fn get(
        &self,
        url: &str,
        accept: &[&str],
        range_from: Option<u64>,
    ) -> Result<Response<Body>, RegistryError> {
        let response = self.send(url, accept, range_from)?;
        if response.status().as_u16() != 401 {
            return Ok(response);
        }
        let header = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                self.status_error(url, 401, "unauthorized and no WWW-Authenticate challenge")
            })?;
        let challenge = Challenge::parse(&header).map_err(|source| RegistryError::Challenge {
            registry: self.endpoint.registry.clone(),
            source,
        })?;
        let authorization = self.authorize(&challenge, url)?;
        *self.lock() = Some(authorization);
        let response = self.send(url, accept, range_from)?;
        if response.status().as_u16() == 401 {
            return Err(self.refused(url));
        }
        Ok(response)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<String>> {
        self.authorization
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn send(
        &self,
        url: &str,
        accept: &[&str],
        range_from: Option<u64>,
    ) -> Result<Response<Body>, RegistryError> {
        let mut request = self.agent.get(url);
        if !accept.is_empty() {
            request = request.header("Accept", accept.join(", "));
        }
        if let Some(from) = range_from {
            request = request.header("Range", format!("bytes={from}-"));
        }
        if let Some(auth) = self.lock().clone() {
            request = request.header("Authorization", auth);
        }
        request.call().map_err(|source| RegistryError::Http {
            registry: self.endpoint.registry.clone(),
            url: url.into(),
            source: Box::new(source),
        })
    }

    /// The `Authorization` value that answers `challenge` (sent for `url`).
    fn authorize(&self, challenge: &Challenge, url: &str) -> Result<String, RegistryError> {
        let basic = self.credentials.as_ref().map(Credentials::basic_header);
        let Some(token_url) = challenge.token_url(&pull_scope(&self.endpoint.repository)) else {
            return basic.ok_or_else(|| self.refused(url));
        };
        let realm_host_ok = token_url.starts_with("https://")
            || url_host(&token_url).is_some_and(super::endpoint::is_loopback);
        if !realm_host_ok {
            return Err(self.status_error(
                &token_url,
                0,
                "token realm is plain HTTP to a non-loopback host",
            ));
        }
        let mut request = self.agent.get(&token_url);
        if let Some(basic) = &basic {
            request = request.header("Authorization", basic);
        }
        let response = request.call().map_err(|source| RegistryError::Http {
            registry: self.endpoint.registry.clone(),
            url: token_url.clone(),
            source: Box::new(source),
        })?;
        let status = response.status().as_u16();
        if matches!(status, 401 | 403) {
            return Err(self.refused(&token_url));
        }
        if status != 200 {
            return Err(self.status_error(&token_url, status, "the token endpoint refused"));
        }
        let bytes = response
            .into_body()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .map_err(|source| RegistryError::Http {
                registry: self.endpoint.registry.clone(),
                url: token_url.clone(),
                source: Box::new(source),
            })?;
        #[derive(serde::Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
        }
        let reply: TokenReply = serde_json::from_slice(&bytes).map_err(|e| {
            self.status_error(
                &token_url,
                status,
                &format!("the token reply is not JSON: {e}"),
            )
        })?;
        let token = reply
            .token
            .or(reply.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| self.status_error(&token_url, status, "the token reply has no token"))?;
        Ok(format!("Bearer {token}"))
    }

    /// The registry (or its token endpoint at `url`) said no: to the
    /// credentials given, or for want of any.
    fn refused(&self, url: &str) -> RegistryError {
        let registry = self.endpoint.registry.clone();
        let repository = self.endpoint.repository.clone();
        match &self.credentials {
            Some(c) => RegistryError::Unauthorized {
                registry,
                repository,
                username: c.username.clone(),
                url: url.into(),
            },
            None => RegistryError::NeedsCredentials {
                registry,
                repository,
            },
        }
    }

    /// An error about `url` with HTTP `status` (0: no status).
    pub fn status_error(&self, url: &str, status: u16, reason: &str) -> RegistryError {
        RegistryError::Status {
            registry: self.endpoint.registry.clone(),
            repository: self.endpoint.repository.clone(),
            url: url.into(),
            status,
            reason: reason.into(),
        }
    }
}

/// The host of `scheme://host[:port]/...`.
fn url_host(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?']).next()?;
    if let Some(v6) = authority.strip_prefix('[') {
        return v6.split(']').next();
    }
    authority.split(':').next()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_hosts() {
        assert_eq!(url_host("http://127.0.0.1:99/token?x"), Some("127.0.0.1"));
        assert_eq!(
            url_host("https://auth.docker.io/token"),
            Some("auth.docker.io")
        );
        assert_eq!(url_host("http://[::1]:5/t"), Some("::1"));
        assert_eq!(url_host("nonsense"), None);
    }
}
