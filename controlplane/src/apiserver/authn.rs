//! Authentication: the bearer token a client's Hello carries is looked up
//! in the tokens file (one `token,identity` per line; blank lines and `#`
//! comments are skipped). Anything else is `Unauthorized`.

use super::Identity;
use noderun_core::proto::{ApiError, Credentials, ErrorCode};
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Tokens shorter than this are refused when the file is read: a guessable
/// token is no authentication.
pub const MIN_TOKEN_LEN: usize = 16;

/// Why the tokens file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading tokens file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("tokens file {path}, line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Token → identity, as read from the tokens file.
#[derive(Clone, Default)]
pub struct Authenticator {
    tokens: HashMap<String, Identity>,
}

impl fmt::Debug for Authenticator {
    /// Never prints the tokens.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Authenticator {
    /// Read the tokens file at `path`.
    pub fn load(path: &Path) -> Result<Authenticator, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: path.to_owned(),
            source,
        })?;
        Authenticator::parse(&text, path)
    }

    /// Parse the text of a tokens file (`path` only names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Authenticator, TokenFileError> {
        let mut tokens = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason: String| TokenFileError::Line {
                path: path.to_owned(),
                line: i + 1,
                reason,
            };
            let (token, identity) = line
                .split_once(',')
                .ok_or_else(|| bad("expected `token,identity`".into()))?;
            let token = token.trim();
            if token.len() < MIN_TOKEN_LEN {
                return Err(bad(format!(
                    "token is shorter than {MIN_TOKEN_LEN} characters"
                )));
            }
            let identity: Identity = identity.trim().parse().map_err(|e| bad(format!("{e}")))?;
            if tokens.insert(token.to_owned(), identity).is_some() {
                return Err(bad("the same token appears twice".into()));
            }
        }
        Ok(Authenticator { tokens })
    }

    /// The identity `credentials` prove, or `Unauthorized`.
    pub fn authenticate(&self, credentials: &Credentials) -> Result<Identity, ApiError> {
        match credentials {
            Credentials::None => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "no credentials: send a bearer token from the controlplane's tokens file",
            )),
            Credentials::Bearer(token) => self.tokens.get(token).cloned().ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "invalid bearer token: it is not in the controlplane's tokens file",
                )
            }),
        }
    }

    /// How many tokens are known.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether no token is known (nobody can connect).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "0123456789abcdef";

    #[test]
    fn tokens_file_lines() {
        let text = format!("# comment\n\n{T}0,admin\n {T}1 , viewer \n{T}2,node:n1\n");
        let a = Authenticator::parse(&text, Path::new("t")).unwrap();
        assert_eq!(a.len(), 3);
        let id = |t: &str| a.authenticate(&Credentials::Bearer(t.into()));
        assert_eq!(id(&format!("{T}0")).unwrap(), Identity::Admin);
        assert_eq!(id(&format!("{T}1")).unwrap(), Identity::Viewer);
        assert_eq!(id(&format!("{T}2")).unwrap(), Identity::Node("n1".into()));
        assert_eq!(id("nope").unwrap_err().code, ErrorCode::Unauthorized);
        assert_eq!(
            a.authenticate(&Credentials::None).unwrap_err().code,
            ErrorCode::Unauthorized
        );
    }

    #[test]
    fn bad_lines_name_the_line() {
        let cases = [
            ("short,admin", "line 1: token is shorter"),
            (&*format!("{T}\n"), "line 1: expected"),
            (&*format!("\n{T},root"), "line 2: unknown identity"),
            (&*format!("{T},admin\n{T},viewer"), "line 2: the same token"),
        ];
        for (text, want) in cases {
            let e = Authenticator::parse(text, Path::new("/x/tokens")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(want) && msg.contains("/x/tokens"), "{msg}");
        }
    }
}
