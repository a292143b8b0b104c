//! Transport security: TLS clients verify the server against the cluster
//! CA (and refuse a server of another CA), plaintext TCP only on loopback,
//! the socket and secrets are private, first-start files are made once.

mod common;

use common::*;
use noderun_controlplane::apiserver::{self, bootstrap, pki, Listen, ListenError};
use noderun_controlplane::client::{Client, ClientError, Endpoint};
use noderun_core::Kind;
use noderun_testkit::TempDir;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_verify_the_server_against_the_cluster_ca() {
    let server = TestServer::start_with(
        Default::default(),
        Extra {
            tls: true,
            insecure: false,
        },
    )
    .await;
    let port = server.running().tls_addr().unwrap().port();
    for host in ["127.0.0.1", "localhost"] {
        let endpoint = Endpoint::Tls {
            addr: format!("{host}:{port}"),
            ca_file: server.pki.ca_cert.clone(),
        };
        let client = Client::connect(&endpoint, ADMIN, "tls-test").await.unwrap();
        assert_eq!(client.identity(), "admin");
        client.get(Kind::Namespace, "", "default").await.unwrap();
    }
    // Another cluster's CA does not vouch for this server.
    let other = TempDir::new("cp-other-ca").unwrap();
    let other_pki = pki::PkiPaths::in_data_dir(other.path());
    assert!(pki::ensure(&other_pki, &[]).unwrap());
    let endpoint = Endpoint::Tls {
        addr: format!("127.0.0.1:{port}"),
        ca_file: other_pki.ca_cert.clone(),
    };
    let e = Client::connect(&endpoint, ADMIN, "tls-test")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::Tls { .. }), "{e}");
    // Nor does a missing CA file get anyone in.
    let endpoint = Endpoint::Tls {
        addr: format!("127.0.0.1:{port}"),
        ca_file: other.join("missing.crt"),
    };
    let e = Client::connect(&endpoint, ADMIN, "tls-test")
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::CaFile { .. }), "{e}");
    // Keys are private; a second ensure keeps what is there.
    assert_eq!(mode(&server.pki.ca_key), 0o600);
    assert_eq!(mode(&server.pki.server_key), 0o600);
    let ca = std::fs::read(&server.pki.ca_cert).unwrap();
    assert!(!pki::ensure(&server.pki, &[]).unwrap());
    assert_eq!(std::fs::read(&server.pki.ca_cert).unwrap(), ca);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_only_on_loopback_and_the_socket_is_private() {
    let server = TestServer::start_with(
        Default::default(),
        Extra {
            tls: false,
            insecure: true,
        },
    )
    .await;
    assert_eq!(mode(&server.socket), 0o600);
    let addr = server.running().insecure_addr().unwrap();
    let client = Client::connect(&Endpoint::Insecure(addr), VIEWER, "plain")
        .await
        .unwrap();
    assert_eq!(client.identity(), "viewer");
    // A non-loopback plaintext listener is refused before anything binds.
    let store_dir = TempDir::new("cp-insecure").unwrap();
    let store = noderun_controlplane::store::EmbeddedStore::open(
        &noderun_controlplane::store::EmbeddedOptions {
            data_dir: store_dir.path().to_owned(),
        },
    )
    .unwrap();
    let authn = apiserver::Authenticator::default();
    let api = std::sync::Arc::new(apiserver::Apiserver::new(store, authn, Default::default()));
    let listen = Listen {
        insecure: Some("0.0.0.0:0".parse().unwrap()),
        ..Listen::default()
    };
    let e = apiserver::start(api.clone(), listen).await.unwrap_err();
    assert!(matches!(e, ListenError::InsecureNotLoopback { .. }), "{e}");
    // A second server on a live socket is refused; the first keeps it.
    let listen = Listen {
        socket: Some(server.socket.clone()),
        ..Listen::default()
    };
    let e = apiserver::start(api, listen).await.unwrap_err();
    assert!(matches!(e, ListenError::SocketInUse { .. }), "{e}");
    server.client(ADMIN).await.ping().await.unwrap();
}

#[test]
fn first_start_makes_a_private_admin_token_once() {
    let dir = TempDir::new("cp-tokens").unwrap();
    let made = bootstrap::ensure_tokens(dir.path()).unwrap();
    assert!(made.created);
    assert_eq!(mode(&made.tokens), 0o600);
    assert_eq!(mode(&made.admin_token), 0o600);
    let token = std::fs::read_to_string(&made.admin_token).unwrap();
    let authn = apiserver::Authenticator::load(&made.tokens).unwrap();
    let id = authn
        .authenticate(&noderun_core::proto::Credentials::Bearer(
            token.trim().into(),
        ))
        .unwrap();
    assert_eq!(id, apiserver::Identity::Admin);
    let again = bootstrap::ensure_tokens(dir.path()).unwrap();
    assert!(!again.created);
    assert_eq!(std::fs::read_to_string(&made.admin_token).unwrap(), token);
}
