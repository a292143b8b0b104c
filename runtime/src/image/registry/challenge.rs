//! `WWW-Authenticate` challenges (RFC 7235 as registries send them):
//! `Bearer realm="https://auth/token",service="registry",scope="repository:ns/app:pull"`
//! or `Basic realm="..."`, and the token request a Bearer challenge asks for.

/// A challenge header that could not be understood.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeError {
    #[error("WWW-Authenticate {header:?}: {reason}")]
    Malformed {
        header: String,
        reason: &'static str,
    },
    #[error("WWW-Authenticate {header:?}: unsupported scheme {scheme:?} (Bearer and Basic are)")]
    Unsupported { header: String, scheme: String },
}

/// What the registry asks of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Get a token from `realm` (with `service` and `scope` as query
    /// parameters) and send it as `Authorization: Bearer <token>`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Send `Authorization: Basic base64(user:password)`.
    Basic { realm: Option<String> },
}

impl Challenge {
    /// Parse one challenge header value.
    pub fn parse(header: &str) -> Result<Challenge, ChallengeError> {
        let malformed = |reason| ChallengeError::Malformed {
            header: header.into(),
            reason,
        };
        let trimmed = header.trim();
        let (scheme, rest) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        let params = parse_params(rest)
            .ok_or_else(|| malformed("its parameters are not name=value pairs"))?;
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if scheme.eq_ignore_ascii_case("bearer") {
            let realm =
                get("realm").ok_or_else(|| malformed("a Bearer challenge without a realm"))?;
            Ok(Challenge::Bearer {
                realm,
                service: get("service"),
                scope: get("scope"),
            })
        } else if scheme.eq_ignore_ascii_case("basic") {
            Ok(Challenge::Basic {
                realm: get("realm"),
            })
        } else {
            Err(ChallengeError::Unsupported {
                header: header.into(),
                scheme: scheme.into(),
            })
        }
    }

    /// For a Bearer challenge, the token URL: the realm with `service` and
    /// `scope` (the challenge's, else `default_scope`) as query parameters.
    pub fn token_url(&self, default_scope: &str) -> Option<String> {
        let Challenge::Bearer {
            realm,
            service,
            scope,
        } = self
        else {
            return None;
        };
        let mut url = realm.clone();
        let mut sep = if realm.contains('?') { '&' } else { '?' };
        if let Some(service) = service {
            url.push(sep);
            url.push_str("service=");
            url.push_str(&query_escape(service));
            sep = '&';
        }
        url.push(sep);
        url.push_str("scope=");
        url.push_str(&query_escape(scope.as_deref().unwrap_or(default_scope)));
        Some(url)
    }
}

/// The pull scope of a repository: `repository:ns/app:pull`.
pub fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

/// `a="x", b=y` → [(a, x), (b, y)]; quoted values may hold commas and `\"`.
fn parse_params(input: &str) -> Option<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(out);
        }
        let mut name = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            name.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') || name.is_empty() {
            return None;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' => break,
                    '\\' => value.push(chars.next()?),
                    c => value.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ',' || c.is_whitespace() {
                    break;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((name, value));
    }
}

/// Percent-encode everything but RFC 3986 unreserved characters.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_with_all_parameters() {
        let c = Challenge::parse(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:library/busybox:pull".into()),
            }
        );
        assert_eq!(
            c.token_url("ignored").unwrap(),
            "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fbusybox%3Apull"
        );
    }

    #[test]
    fn bearer_without_scope_uses_the_default_and_keeps_realm_query() {
        let c = Challenge::parse(r#"bearer  realm = "http://127.0.0.1:1/t?x=1" "#).unwrap();
        assert_eq!(
            c.token_url(&pull_scope("ns/app")).unwrap(),
            "http://127.0.0.1:1/t?x=1&scope=repository%3Ans%2Fapp%3Apull"
        );
    }

    #[test]
    fn quoted_values_hold_commas_and_escapes() {
        let c = Challenge::parse(
            r#"Bearer realm="http://h/t",scope="repository:a:pull,push",service="s\"q""#,
        )
        .unwrap();
        let Challenge::Bearer { scope, service, .. } = c else {
            panic!("not bearer: {c:?}")
        };
        assert_eq!(scope.as_deref(), Some("repository:a:pull,push"));
        assert_eq!(service.as_deref(), Some("s\"q"));
    }

    #[test]
    fn basic_and_errors() {
        assert_eq!(
            Challenge::parse(r#"Basic realm="Registry Realm""#).unwrap(),
            Challenge::Basic {
                realm: Some("Registry Realm".into())
            }
        );
        assert!(Challenge::parse("Basic").unwrap().token_url("s").is_none());
        let err = Challenge::parse(r#"Bearer service="x""#).unwrap_err();
        assert!(err.to_string().contains("without a realm"), "{err}");
        let err = Challenge::parse(r#"Bearer realm="unterminated"#).unwrap_err();
        assert!(err.to_string().contains("name=value"), "{err}");
        let err = Challenge::parse("Negotiate abc=1").unwrap_err();
        assert!(err.to_string().contains("Negotiate"), "{err}");
    }
}
