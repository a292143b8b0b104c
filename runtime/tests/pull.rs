//! Registry pull tests. Against Debian's `docker-registry` started here on
//! 127.0.0.1 (testkit's `Registry`: a random free port, temp config and
//! storage, killed and removed on drop) with an image pushed by `skopeo`
//! from an OCI layout built here: pull by tag, again (a no-op), by digest,
//! resuming a partial blob, three pulls of one image at once (each blob
//! fetched once), and a registry demanding Basic auth (none, wrong and
//! right credentials). Against a tiny in-test HTTP server: Bearer token auth, and
//! hostile answers (wrong digest, truncated body, huge manifest) refused
//! with the content store left as it was. Run as root, like the suite.

mod common;

use common::{build_image, write_layout, Built};
use noderun_runtime::image::registry::{pull, Credentials, PullOptions};
use noderun_runtime::image::{Digest, ImageStore};
use noderun_testkit::{blob_files, privileged, Registry, TempDir};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

fn push(registry: &Registry, layout: &Path) {
    registry.push(&format!("oci:{}:v1", layout.display()), "ns/app:v1");
}

/// A built image served by a fresh registry (Basic auth when `auth` is
/// given) as `ns/app:v1`, and its reference there.
struct Served {
    tmp: TempDir,
    built: Built,
    registry: Registry,
    name: String,
}

fn served(prefix: &str, auth: Option<(&str, &str)>) -> Served {
    let tmp = TempDir::new(prefix).unwrap();
    let built = build_image();
    write_layout(&tmp.join("layout"), &built);
    let registry = match auth {
        Some((user, password)) => Registry::start_with_basic_auth(user, password),
        None => Registry::start(),
    };
    push(&registry, &tmp.join("layout"));
    let name = format!("{}/ns/app:v1", registry.host());
    Served {
        tmp,
        built,
        registry,
        name,
    }
}

#[test]
fn pull_from_docker_registry_by_tag_digest_again_and_resumed() {
    if !privileged() {
        return;
    }
    let Served {
        tmp,
        built,
        registry,
        name,
    } = served("noderun-pull", None);

    // By tag.
    let store = ImageStore::open(&tmp.join("a")).unwrap();
    let report = pull(&store, &name, &PullOptions::default()).unwrap();
    assert_eq!(report.record.name, name);
    assert_eq!(report.blobs_fetched, 4, "config and three layers");
    let image = store.image(&name).unwrap();
    assert_eq!(image.blobs().len(), 5, "manifest, config and three layers");
    for d in built.layers.iter().chain([&built.config]) {
        assert_eq!(
            std::fs::read(store.content().path(d)).unwrap(),
            built.blobs[d]
        );
    }
    let manifest_digest = report.record.manifest;

    // Again: nothing is transferred.
    let again = pull(&store, &name, &PullOptions::default()).unwrap();
    assert_eq!((again.bytes, again.blobs_fetched), (0, 0));
    assert_eq!(again.record.manifest, manifest_digest);

    // By digest, into a fresh store.
    let by_digest = format!("{}/ns/app@{manifest_digest}", registry.host());
    let fresh = ImageStore::open(&tmp.join("b")).unwrap();
    let r = pull(&fresh, &by_digest, &PullOptions::default()).unwrap();
    assert_eq!(r.record.manifest, manifest_digest);
    assert_eq!(
        fresh.image(&by_digest).unwrap().blobs().len(),
        5,
        "manifest, config and three layers"
    );

    // Resume: a third of the big layer already in the partial file.
    let resumed = ImageStore::open(&tmp.join("c")).unwrap();
    let big = built.layers[0];
    let third = built.blobs[&big].len() / 3;
    std::fs::write(
        resumed.content().partial_path(&big),
        &built.blobs[&big][..third],
    )
    .unwrap();
    let r = pull(&resumed, &name, &PullOptions::default()).unwrap();
    let total: usize = built
        .blobs
        .iter()
        .filter(|(d, _)| **d != Digest::of(&built.manifest))
        .map(|(_, b)| b.len())
        .sum();
    assert_eq!(
        r.bytes as usize,
        total - third,
        "only the missing part was transferred"
    );
    assert!(!resumed.content().partial_path(&big).exists());
    assert_eq!(
        std::fs::read(resumed.content().path(&big)).unwrap(),
        built.blobs[&big]
    );

    // A corrupt partial file (right length, wrong bytes) is refused, removed,
    // and the next pull starts afresh and succeeds.
    let corrupt = ImageStore::open(&tmp.join("d")).unwrap();
    std::fs::write(corrupt.content().partial_path(&big), vec![0u8; third]).unwrap();
    let err = pull(&corrupt, &name, &PullOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&big.to_string()) && err.contains("does not match"),
        "{err}"
    );
    assert!(!corrupt.content().partial_path(&big).exists());
    assert!(!corrupt.content().exists(&big));
    pull(&corrupt, &name, &PullOptions::default()).unwrap();
    assert!(corrupt.content().exists(&big));
}

/// What the fake registry serves for a path.
type Routes = BTreeMap<String, (String, Vec<u8>)>;

/// A tiny HTTP/1.1 server on 127.0.0.1 demanding `Bearer secret` on /v2/
/// paths and handing that token out at /token. `truncate` paths announce
/// more bytes than they send. Stopped and joined on drop.
struct FakeRegistry {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    token_requests: Arc<Mutex<Vec<String>>>,
}

impl FakeRegistry {
    fn start(routes: Routes, truncate: Vec<String>) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let token_requests = Arc::new(Mutex::new(Vec::new()));
        let (s, t) = (stop.clone(), token_requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                if let Ok(conn) = conn {
                    serve(conn, port, &routes, &truncate, &t);
                }
            }
        });
        FakeRegistry {
            port,
            stop,
            thread: Some(thread),
            token_requests,
        }
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(
    conn: TcpStream,
    port: u16,
    routes: &Routes,
    truncate: &[String],
    tokens: &Mutex<Vec<String>>,
) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut auth = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("authorization") {
                auth = Some(v.trim().to_string());
            }
        }
    }
    let mut conn = conn;
    let reply =
        |conn: &mut TcpStream, status: &str, headers: &str, body: &[u8], announced: usize| {
            let _ = write!(
            conn,
            "HTTP/1.1 {status}\r\nContent-Length: {announced}\r\nConnection: close\r\n{headers}\r\n"
        );
            let _ = conn.write_all(body);
        };
    if let Some(query) = path.strip_prefix("/token?") {
        tokens.lock().unwrap().push(query.to_string());
        let body = br#"{"token":"secret"}"#;
        return reply(
            &mut conn,
            "200 OK",
            "Content-Type: application/json\r\n",
            body,
            body.len(),
        );
    }
    if auth.as_deref() != Some("Bearer secret") {
        let challenge = format!(
            "WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"fake\",scope=\"repository:ns/app:pull\"\r\n"
        );
        return reply(&mut conn, "401 Unauthorized", &challenge, b"", 0);
    }
    match routes.get(&path) {
        Some((ctype, body)) if truncate.contains(&path) => {
            let half = &body[..body.len() / 2];
            reply(
                &mut conn,
                "200 OK",
                &format!("Content-Type: {ctype}\r\n"),
                half,
                body.len(),
            );
        }
        Some((ctype, body)) => reply(
            &mut conn,
            "200 OK",
            &format!("Content-Type: {ctype}\r\n"),
            body,
            body.len(),
        ),
        None => reply(&mut conn, "404 Not Found", "", b"", 0),
    }
    let _ = conn.shutdown(std::net::Shutdown::Both);
}

fn routes_for(built: &Built) -> Routes {
    let mut routes = Routes::new();
    let mtype = "application/vnd.oci.image.manifest.v1+json".to_string();
    routes.insert(
        "/v2/ns/app/manifests/v1".into(),
        (mtype, built.manifest.clone()),
    );
    for (d, bytes) in &built.blobs {
        routes.insert(
            format!("/v2/ns/app/blobs/{d}"),
            ("application/octet-stream".into(), bytes.clone()),
        );
    }
    routes
}

#[test]
fn bearer_token_auth_and_hostile_registries() {
    if !privileged() {
        return;
    }
    let tmp = TempDir::new("noderun-pull-fake").unwrap();
    let built = build_image();

    // Token auth: the challenge is answered with a token from the realm.
    let fake = FakeRegistry::start(routes_for(&built), Vec::new());
    let name = format!("127.0.0.1:{}/ns/app:v1", fake.port);
    let store = ImageStore::open(&tmp.join("ok")).unwrap();
    let report = pull(&store, &name, &PullOptions::default()).unwrap();
    assert_eq!(report.blobs_fetched, 4);
    assert_eq!(
        store.image(&name).unwrap().blobs().len(),
        5,
        "manifest, config and three layers"
    );
    let queries = fake.token_requests.lock().unwrap().clone();
    assert!(!queries.is_empty());
    assert!(
        queries
            .iter()
            .all(|q| q == "service=fake&scope=repository%3Ans%2Fapp%3Apull"),
        "{queries:?}"
    );
    drop(fake);

    // Wrong digest: a layer's bytes replaced.
    let big = built.layers[0];
    let mut routes = routes_for(&built);
    routes
        .get_mut(&format!("/v2/ns/app/blobs/{big}"))
        .unwrap()
        .1[100] ^= 0xff;
    let fake = FakeRegistry::start(routes, Vec::new());
    let name = format!("127.0.0.1:{}/ns/app:v1", fake.port);
    let store = ImageStore::open(&tmp.join("wrong")).unwrap();
    let err = pull(&store, &name, &PullOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&big.to_string()) && err.contains("does not match"),
        "{err}"
    );
    assert!(
        err.contains(&format!("127.0.0.1:{}", fake.port)) && err.contains("ns/app"),
        "{err}"
    );
    let files = blob_files(&tmp.join("wrong"));
    assert!(
        !files.contains(&big.hex()),
        "the bad blob is not kept: {files:?}"
    );
    assert!(
        files.iter().all(|f| Digest::from_hex(f).is_ok()),
        "no partial files left: {files:?}"
    );
    for f in &files {
        let d = Digest::from_hex(f).unwrap();
        assert_eq!(
            Digest::of(&std::fs::read(store.content().path(&d)).unwrap()),
            d
        );
    }
    assert!(store.list().unwrap().is_empty(), "no image recorded");
    drop(fake);

    // Truncated body: half a layer then the connection closes.
    let fake = FakeRegistry::start(routes_for(&built), vec![format!("/v2/ns/app/blobs/{big}")]);
    let name = format!("127.0.0.1:{}/ns/app:v1", fake.port);
    let store = ImageStore::open(&tmp.join("short")).unwrap();
    let err = pull(&store, &name, &PullOptions::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains(&format!("127.0.0.1:{}", fake.port)), "{err}");
    assert!(!store.content().exists(&big));
    assert!(store.list().unwrap().is_empty());
    drop(fake);

    // Huge manifest: refused before it is stored.
    let mut routes = routes_for(&built);
    let mut huge =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","x":""#
            .to_vec();
    huge.extend(std::iter::repeat_n(b'a', 5 << 20));
    huge.extend(br#""}"#);
    routes.get_mut("/v2/ns/app/manifests/v1").unwrap().1 = huge;
    let fake = FakeRegistry::start(routes, Vec::new());
    let name = format!("127.0.0.1:{}/ns/app:v1", fake.port);
    let store = ImageStore::open(&tmp.join("huge")).unwrap();
    let err = pull(&store, &name, &PullOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("larger than") && err.contains("HTTP 200"),
        "{err}"
    );
    assert!(blob_files(&tmp.join("huge")).is_empty());
    assert!(store.list().unwrap().is_empty());
}

/// The blob directory's files and the image records, to show a refused
/// pull left the store as it was.
fn store_state(root: &Path, store: &ImageStore) -> (Vec<String>, Vec<String>) {
    let names = store.list().unwrap().into_iter().map(|r| r.name).collect();
    (blob_files(root), names)
}

#[test]
fn basic_auth_registry_needs_the_right_credentials() {
    if !privileged() {
        return;
    }
    let Served {
        tmp,
        registry,
        name,
        ..
    } = served("noderun-pull-basic", Some(("alice", "s3cret-pw")));
    let root = tmp.join("store");
    let store = ImageStore::open(&root).unwrap();
    let empty = store_state(&root, &store);

    // No credentials: told to log in, nothing stored.
    let err = pull(&store, &name, &PullOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("unauthorized")
            && err.contains(&registry.host())
            && err.contains("--username"),
        "{err}"
    );
    assert_eq!(store_state(&root, &store), empty);

    // Wrong password: "unauthorized", naming registry and user; nothing stored.
    let wrong = PullOptions {
        credentials: Some(Credentials::new("alice", "wrong").unwrap()),
        ..PullOptions::default()
    };
    let err = pull(&store, &name, &wrong).unwrap_err().to_string();
    assert!(
        err.contains("unauthorized")
            && err.contains(&registry.host())
            && err.contains("\"alice\"")
            && !err.contains("wrong"),
        "{err}"
    );
    assert_eq!(store_state(&root, &store), empty);

    // Right credentials: the image arrives whole.
    let right = PullOptions {
        credentials: Some(Credentials::new("alice", "s3cret-pw").unwrap()),
        ..PullOptions::default()
    };
    let report = pull(&store, &name, &right).unwrap();
    assert_eq!(report.blobs_fetched, 4, "config and three layers");
    assert_eq!(store.image(&name).unwrap().blobs().len(), 5);
}

#[test]
fn concurrent_pulls_of_one_image_into_one_store_share_the_downloads() {
    if !privileged() {
        return;
    }
    let Served {
        tmp,
        built,
        name,
        registry: _registry,
    } = served("noderun-pull-twice", None);
    let root = tmp.join("store");
    let store = ImageStore::open(&root).unwrap();
    let reports: Vec<_> = std::thread::scope(|s| {
        let pulls: Vec<_> = (0..3)
            .map(|_| s.spawn(|| pull(&store, &name, &PullOptions::default()).unwrap()))
            .collect();
        pulls.into_iter().map(|p| p.join().unwrap()).collect()
    });
    let fetched: usize = reports.iter().map(|r| r.blobs_fetched).sum();
    assert_eq!(fetched, 4, "each blob downloaded once in all: {reports:?}");
    for d in built.layers.iter().chain([&built.config]) {
        assert_eq!(
            std::fs::read(store.content().path(d)).unwrap(),
            built.blobs[d]
        );
    }
    let files = blob_files(&root);
    assert!(
        files.iter().all(|f| Digest::from_hex(f).is_ok()),
        "no partial files left: {files:?}"
    );
}
