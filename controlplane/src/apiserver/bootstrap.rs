//! First start: the tokens file with an admin token (and the token alone
//! in `admin.token`, for clients), a `system:controllers` token (alone in
//! `controllers.token`, for the in-process controllers) and a
//! `system:scheduler` token (alone in `scheduler.token`), all mode 0600,
//! and the namespaces that always exist (`default`, and
//! `noderun-node-lease` for node heartbeats). Later starts keep what is
//! there; a data dir made before the controllers or the scheduler existed
//! gets their token added to its tokens file.

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
    /// The `system:scheduler` token alone.
    pub scheduler_token: PathBuf,
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
        scheduler_token: data_dir.join("scheduler.token"),
        created: false,
    };
    if files.tokens.exists() {
        if !files.controllers_token.exists() {
            add_system_token(
                &files.tokens,
                &files.controllers_token,
                "system:controllers",
            )?;
        }
        if !files.scheduler_token.exists() {
            add_system_token(&files.tokens, &files.scheduler_token, "system:scheduler")?;
        }
        return Ok(files);
    }
    std::fs::create_dir_all(data_dir).map_err(|source| TokenWriteError {
        path: data_dir.to_owned(),
        source,
    })?;
    let token = ids::new_token();
    let controllers = ids::new_token();
    let scheduler = ids::new_token();
    write_private(&files.admin_token, format!("{token}\n").as_bytes())?;
    write_private(
        &files.controllers_token,
        format!("{controllers}\n").as_bytes(),
    )?;
    write_private(&files.scheduler_token, format!("{scheduler}\n").as_bytes())?;
    let text = format!(
        "# token,identity (admin, viewer, system:controllers, system:scheduler or \
         node:<node name>)\n\
         {token},admin\n{controllers},system:controllers\n{scheduler},system:scheduler\n"
    );
    write_private(&files.tokens, text.as_bytes())?;
    files.created = true;
    Ok(files)
}

/// Append a line for `identity` to an existing tokens file and write the
/// token alone in `token_file`.
fn add_system_token(
    tokens: &Path,
    token_file: &Path,
    identity: &str,
) -> Result<(), TokenWriteError> {
    let mut text = std::fs::read_to_string(tokens).map_err(|source| TokenWriteError {
        path: tokens.to_owned(),
        source,
    })?;
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    let token = ids::new_token();
    text.push_str(&format!("{token},{identity}\n"));
    write_private(token_file, format!("{token}\n").as_bytes())?;
    write_private(tokens, text.as_bytes())
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

    /// Each token file names its identity in the tokens file.
    fn assert_identities(files: &TokenFiles) {
        assert_eq!(identity_of(files, &files.admin_token), Identity::Admin);
        assert_eq!(
            identity_of(files, &files.controllers_token),
            Identity::Controllers
        );
        assert_eq!(
            identity_of(files, &files.scheduler_token),
            Identity::Scheduler
        );
    }

    #[test]
    fn an_older_tokens_file_gets_the_system_tokens() {
        let dir = noderun_testkit::TempDir::new("cp-bootstrap").unwrap();
        let made = ensure_tokens(dir.path()).unwrap();
        assert!(made.created);
        assert_identities(&made);
        // As a data dir from before the controllers and the scheduler:
        // the admin line only.
        let admin = std::fs::read_to_string(&made.admin_token).unwrap();
        std::fs::write(&made.tokens, format!("{},admin", admin.trim())).unwrap();
        std::fs::remove_file(&made.controllers_token).unwrap();
        std::fs::remove_file(&made.scheduler_token).unwrap();
        let again = ensure_tokens(dir.path()).unwrap();
        assert!(!again.created);
        assert_identities(&again);
        // A data dir from before the scheduler alone.
        let before = std::fs::read_to_string(&again.tokens).unwrap();
        let without: String = before
            .lines()
            .filter(|l| !l.ends_with(",system:scheduler"))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&again.tokens, without).unwrap();
        std::fs::remove_file(&again.scheduler_token).unwrap();
        assert_identities(&ensure_tokens(dir.path()).unwrap());
    }
}
