//! [`Registry`]: Debian's `docker-registry` (distribution v2) started on
//! 127.0.0.1 for one test, with images pushed into it by `skopeo`. Each
//! registry has a free port, its own config and storage in a temp dir, and
//! optionally Basic auth from an htpasswd file (bcrypt, made by `htpasswd
//! -B`); the process is killed and its directory removed on drop, so a
//! failing test leaves neither. Missing tools are installed through
//! `scripts/lib/packages.sh`, as `scripts/test.sh` does.

use crate::{ChildGuard, TempDir};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a fresh registry gets to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Install docker-registry, skopeo and htpasswd (apache2-utils) through the
/// project's package helper when one is missing.
pub fn ensure_registry_tools() {
    let present = [
        "/usr/bin/docker-registry",
        "/usr/bin/skopeo",
        "/usr/bin/htpasswd",
    ]
    .iter()
    .all(|p| Path::new(p).exists());
    if present {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/lib/packages.sh");
    let status = Command::new("bash")
        .arg("-c")
        .arg("source \"$1\" && ensure_debs docker-registry skopeo apache2-utils")
        .arg("bash")
        .arg(&script)
        .status()
        .expect("run ensure_debs");
    assert!(
        status.success(),
        "installing docker-registry, skopeo and apache2-utils failed"
    );
}

/// A running docker-registry; killed and removed on drop (the guard drops
/// before the directory).
#[derive(Debug)]
pub struct Registry {
    _child: ChildGuard,
    _dir: TempDir,
    port: u16,
    credentials: Option<(String, String)>,
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Registry {
        Registry::launch(None)
    }

    /// A registry that demands Basic auth as `user` / `password`.
    pub fn start_with_basic_auth(user: &str, password: &str) -> Registry {
        Registry::launch(Some((user.into(), password.into())))
    }

    fn launch(credentials: Option<(String, String)>) -> Registry {
        ensure_registry_tools();
        let dir = TempDir::new("noderun-registry").expect("registry temp dir");
        let port = free_port();
        let storage = dir.join("storage");
        std::fs::create_dir(&storage).expect("registry storage dir");
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            storage.display()
        );
        if let Some((user, password)) = &credentials {
            let htpasswd = dir.join("htpasswd");
            let out = Command::new("htpasswd")
                .args(["-B", "-b", "-n", user, password])
                .output()
                .expect("run htpasswd");
            assert!(out.status.success(), "htpasswd -B failed");
            std::fs::write(&htpasswd, &out.stdout).expect("write htpasswd");
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: noderun-test\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.join("config.yml");
        std::fs::write(&config_path, config).expect("write registry config");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config_path)
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
            credentials,
        }
    }

    /// The port it listens on (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, the registry part of a reference.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Copy the image `source` (a skopeo source, e.g. `oci:/dir` or
    /// `oci:/dir:v1`) to `repository:tag` in this registry, with the
    /// registry's credentials when it has some.
    pub fn push(&self, source: &str, repository_tag: &str) {
        let mut cmd = Command::new("skopeo");
        cmd.args(["--insecure-policy", "copy", "--dest-tls-verify=false"]);
        if let Some((user, password)) = &self.credentials {
            cmd.arg(format!("--dest-creds={user}:{password}"));
        }
        let out = cmd
            .arg(source)
            .arg(format!("docker://{}/{repository_tag}", self.host()))
            .output()
            .expect("run skopeo");
        assert!(
            out.status.success(),
            "skopeo copy {source} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("find a free port")
        .port()
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + START_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "docker-registry on port {port} never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
