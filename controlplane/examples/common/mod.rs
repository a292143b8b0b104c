//! What the bench programs share: the `--store URL` option, and an
//! apiserver served from the bench's own process.
#![allow(dead_code)]

use noderun_controlplane::apiserver::{
    self, bootstrap, Apiserver, Authenticator, Listen, RunningServer,
};
use noderun_controlplane::client::Endpoint;
use noderun_controlplane::store::Store;
use std::path::Path;
use std::sync::Arc;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Take `--store URL` out of `args`: the URL, or `embedded` when absent.
pub fn take_store_arg(args: &mut Vec<String>) -> Result<String, String> {
    match args.iter().position(|a| a == "--store") {
        Some(i) if i + 1 < args.len() => Ok(args.drain(i..i + 2).nth(1).unwrap_or_default()),
        Some(_) => Err("--store needs a URL: embedded or etcd://HOST:PORT/PREFIX".into()),
        None => Ok("embedded".to_owned()),
    }
}

/// Serve `store` from this process on `dir/cp.sock`, trusting the
/// `token,identity` lines of `tokens`; the built-in namespaces are made.
pub async fn serve_in_process<S: Store>(
    store: S,
    dir: &Path,
    tokens: &str,
) -> Result<(RunningServer, Endpoint), BoxError> {
    bootstrap::ensure_namespaces(&store).await?;
    let authn = Authenticator::parse(tokens, &dir.join("tokens"))?;
    let server = Arc::new(Apiserver::new(store, authn, Default::default()));
    let socket = dir.join("cp.sock");
    let listen = Listen {
        socket: Some(socket.clone()),
        ..Listen::default()
    };
    let running = apiserver::start(server, listen).await?;
    Ok((running, Endpoint::Unix(socket)))
}
