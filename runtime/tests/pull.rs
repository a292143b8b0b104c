//! Registry pull tests. Against Debian's `docker-registry` started here on
//! 127.0.0.1 (a random free port, temp config and storage, killed and
//! removed on drop) with an image pushed by `skopeo` from an OCI layout
//! built here: pull by tag, again (a no-op), by digest, and resuming a
//! partial blob. Against a tiny in-test HTTP server: Bearer token auth, and
//! hostile answers (wrong digest, truncated body, huge manifest) refused
//! with the content store left as it was. Run as root, like the suite.

use noderun_runtime::image::registry::{pull, PullOptions};
use noderun_runtime::image::{Digest, ImageStore};
use noderun_testkit::{privileged, ChildGuard, TempDir};
use serde_json::json;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Install docker-registry and skopeo through the project's package helper
/// when they are missing.
fn ensure_tools() {
    if Path::new("/usr/bin/docker-registry").exists() && Path::new("/usr/bin/skopeo").exists() {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib/packages.sh");
    let status = Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && ensure_debs docker-registry skopeo")
        .arg("bash")
        .arg(&script)
        .status()
        .expect("run ensure_debs");
    assert!(
        status.success(),
        "installing docker-registry and skopeo failed"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "registry on port {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A docker-registry process with its config and storage; killed and
/// removed on drop (the ChildGuard drops before the TempDir).
struct Registry {
    _child: ChildGuard,
    _dir: TempDir,
    port: u16,
}

impl Registry {
    fn start() -> Registry {
        let dir = TempDir::new("noderun-registry").unwrap();
        let port = free_port();
        let config = dir.join("config.yml");
        std::fs::create_dir(dir.join("storage")).unwrap();
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                dir.join("storage").display()
            ),
        )
        .unwrap();
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start docker-registry");
        let guard = ChildGuard::new(child);
        wait_listening(port);
        Registry {
            _child: guard,
            _dir: dir,
            port,
        }
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// A layer tar with one file of `size` pseudo-random (incompressible) bytes.
fn layer(name: &str, size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let body: Vec<u8> = (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    tar.append_data(&mut h, name, &body[..]).unwrap();
    tar.into_inner().unwrap()
}

/// An image's blobs: manifest bytes and every blob by digest.
struct Built {
    manifest: Vec<u8>,
    config: Digest,
    layers: Vec<Digest>,
    blobs: BTreeMap<Digest, Vec<u8>>,
}

fn build_image() -> Built {
    let mut blobs = BTreeMap::new();
    let mut layers = Vec::new();
    let mut diff_ids = Vec::new();
    let mut descs = Vec::new();
    for (i, size) in [3 << 20, 64 << 10, 1000].into_iter().enumerate() {
        let tar = layer(&format!("file{i}"), size, i as u64 + 7);
        diff_ids.push(Digest::of(&tar).to_string());
        let gz = gzip(&tar);
        let d = Digest::of(&gz);
        descs.push(json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": gz.len()}));
        layers.push(d);
        blobs.insert(d, gz);
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .unwrap();
    let config_digest = Digest::of(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config.len()},
        "layers": descs,
    }))
    .unwrap();
    blobs.insert(config_digest, config);
    blobs.insert(Digest::of(&manifest), manifest.clone());
    Built {
        manifest,
        config: config_digest,
        layers,
        blobs,
    }
}

/// Write `built` as an OCI layout with the tag `v1`.
fn write_layout(dir: &Path, built: &Built) {
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    for (d, bytes) in &built.blobs {
        std::fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    }
    let index = json!({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": Digest::of(&built.manifest).to_string(), "size": built.manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    }]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn push(layout: &Path, port: u16) {
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:v1", layout.display()))
        .arg(format!("docker://127.0.0.1:{port}/ns/app:v1"))
        .output()
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn store_files(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("content/blobs/sha256"))
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn pull_from_docker_registry_by_tag_digest_again_and_resumed() {
    if !privileged() {
        return;
    }
    ensure_tools();
    let tmp = TempDir::new("noderun-pull").unwrap();
    let built = build_image();
    write_layout(&tmp.join("layout"), &built);
    let registry = Registry::start();
    push(&tmp.join("layout"), registry.port);
    let name = format!("127.0.0.1:{}/ns/app:v1", registry.port);

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
    let by_digest = format!("127.0.0.1:{}/ns/app@{manifest_digest}", registry.port);
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
    let files = store_files(&tmp.join("wrong"));
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
    assert!(store_files(&tmp.join("huge")).is_empty());
    assert!(store.list().unwrap().is_empty());
}
