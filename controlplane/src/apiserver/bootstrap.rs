//! First start: the tokens file with an admin token (and the token alone
//! in `admin.token`, for clients) and a `system:controllers` token (alone
//! in `controllers.token`, for the in-process controllers), all mode 0600,
//! and the namespaces that always exist (`default`, and
//! `noderun-node-lease` for node heartbeats). Later starts keep what is
//! there; a data dir made before the controllers existed gets their token
//! added to its tokens file.

use super::admission::admit_create;
use super::ids;
use crate::store::{Store, StoreError};
use noderun_core::defaults::DEFAULT_NAMESPACE;
use noderun_core::{Namespace, Object, ObjectMeta, Time, NODE_LEASE_NAMESPACE};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The tokens file and the admin's token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFiles {
    /// `token,identity` lines: the server's list.
    pub tokens: PathBuf,
    /// The admin token alone, for `ctl` and tests.
    pub admin_token: PathBuf,
    /// The `system:controllers` token alone.
    pub controllers_token: PathBuf,
    /// Whether this start made them.
    pub created: bool,
}

/// Why the tokens could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("writing {path}")]
pub struct TokenWriteError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

/// Make `<data_dir>/tokens.csv` and `<data_dir>/admin.token` unless the
/// tokens file exists.
pub fn ensure_tokens(data_dir: &Path) -> Result<TokenFiles, TokenWriteError> {
    let mut files = TokenFiles {
        tokens: data_dir.join("tokens.csv"),
        admin_token: data_dir.join("admin.token"),
        controllers_token: data_dir.join("controllers.token"),
        created: false,
    };
    if files.tokens.exists() {
        if !files.controllers_token.exists() {
            add_controllers_token(&files)?;
        }
        return Ok(files);
    }
    std::fs::create_dir_all(data_dir).map_err(|source| TokenWriteError {
        path: data_dir.to_owned(),
        source,
    })?;
    let token = ids::new_token();
    let controllers = ids::new_token();
    write_private(&files.admin_token, format!("{token}\n").as_bytes())?;
    write_private(
        &files.controllers_token,
        format!("{controllers}\n").as_bytes(),
    )?;
    let text = format!(
        "# token,identity (admin, viewer, system:controllers or node:<node name>)\n\
         {token},admin\n{controllers},system:controllers\n"
    );
    write_private(&files.tokens, text.as_bytes())?;
    files.created = true;
    Ok(files)
}

/// Append a `system:controllers` line to an existing tokens file and
/// write the token alone next to it.
fn add_controllers_token(files: &TokenFiles) -> Result<(), TokenWriteError> {
    let err = |path: &Path| {
        let path = path.to_owned();
        move |source| TokenWriteError { path, source }
    };
    let mut text = std::fs::read_to_string(&files.tokens).map_err(err(&files.tokens))?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let token = ids::new_token();
    text.push_str(&format!("{token},system:controllers\n"));
    write_private(&files.controllers_token, format!("{token}\n").as_bytes())?;
    write_private(&files.tokens, text.as_bytes())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TokenWriteError> {
    let err = |source| TokenWriteError {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    f.write_all(bytes).map_err(err)?;
    f.sync_all().map_err(err)
}

/// Create the namespaces that always exist, if missing.
pub async fn ensure_namespaces<S: Store>(store: &S) -> Result<(), StoreError> {
    for name in [DEFAULT_NAMESPACE, NODE_LEASE_NAMESPACE] {
        let mut ns = Object::Namespace(Namespace {
            metadata: ObjectMeta::named("", name),
            ..Namespace::default()
        });
        if let Err(e) = admit_create(&mut ns, ids::new_uid(), Time::now()) {
            unreachable!("built-in namespace {name} is invalid: {e}");
        }
        match store.create(ns).await {
            Ok(_) => tracing::info!(namespace = name, "created namespace"),
            Err(StoreError::AlreadyExists { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::{Authenticator, Identity};
    use noderun_core::proto::Credentials;

    fn identity_of(files: &TokenFiles, token_file: &Path) -> Identity {
        let token = std::fs::read_to_string(token_file).unwrap();
        let authn = Authenticator::load(&files.tokens).unwrap();
        authn
            .authenticate(&Credentials::Bearer(token.trim().into()))
            .unwrap()
    }

    #[test]
    fn an_older_tokens_file_gets_a_controllers_token() {
        let dir = noderun_testkit::TempDir::new("cp-bootstrap").unwrap();
        let made = ensure_tokens(dir.path()).unwrap();
        assert_eq!(
            identity_of(&made, &made.controllers_token),
            Identity::Controllers
        );
        // As a data dir from before the controllers: the admin line only.
        let admin = std::fs::read_to_string(&made.admin_token).unwrap();
        std::fs::write(&made.tokens, format!("{},admin", admin.trim())).unwrap();
        std::fs::remove_file(&made.controllers_token).unwrap();
        let again = ensure_tokens(dir.path()).unwrap();
        assert!(!again.created);
        assert_eq!(identity_of(&again, &again.admin_token), Identity::Admin);
        assert_eq!(
            identity_of(&again, &again.controllers_token),
            Identity::Controllers
        );
    }
}
