//! A real `docker-registry` (Debian's distribution 2.8 package) per test, on a free port of
//! 127.0.0.1, storage in a temporary directory, killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tools::require_tool;

/// How the registry authenticates clients.
pub enum Auth {
    Open,
    Htpasswd {
        user: String,
        password: String,
    },
    Token {
        realm: String,
        service: String,
        issuer: String,
        cert_pem: PathBuf,
    },
}

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    pub fn start(auth: Auth) -> Registry {
        let bin = require_tool("docker-registry", "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let auth_yaml = match &auth {
            Auth::Open => String::new(),
            Auth::Htpasswd { user, password } => {
                let hash = bcrypt::hash(password, 4).unwrap();
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, format!("{user}:{hash}\n")).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: osprey-test\n    path: {}\n",
                    path.display()
                )
            }
            Auth::Token {
                realm,
                service,
                issuer,
                cert_pem,
            } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {service}\n    issuer: {issuer}\n    rootcertbundle: {}\n",
                cert_pem.display()
            ),
        };
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n  secret: osprey-test-secret\n{auth_yaml}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let mut r = Registry {
            child,
            addr,
            _dir: dir,
        };
        r.wait_ready();
        r
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                let log = std::fs::read_to_string(self._dir.path().join("registry.log"))
                    .unwrap_or_default();
                panic!("docker-registry exited with {status}: {log}");
            }
            if let Ok(mut s) = TcpStream::connect(&self.addr) {
                let _ = s.write_all(b"GET /v2/ HTTP/1.0\r\n\r\n");
                let mut buf = [0u8; 32];
                if let Ok(n) = s.read(&mut buf)
                    && n > 12
                    && (buf.starts_with(b"HTTP/1.0 200")
                        || buf.starts_with(b"HTTP/1.0 401")
                        || buf.starts_with(b"HTTP/1.1 200")
                        || buf.starts_with(b"HTTP/1.1 401"))
                {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("docker-registry on {} did not become ready", self.addr);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fake registry serving one OCI layout as `REPO:TAG`, answering first with scripted statuses
/// (for retry tests) and counting what it served.
pub struct FakeRegistry {
    pub server: crate::http::Server,
    /// Requests answered with content (after the script ran out).
    pub served: std::sync::Arc<std::sync::Mutex<u32>>,
}

impl FakeRegistry {
    pub fn serve(
        layout: &std::path::Path,
        repo: &str,
        tag: &str,
        manifest: &str,
        script: Vec<(u16, Option<&'static str>)>,
    ) -> FakeRegistry {
        use crate::http::Response;
        let script = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(
            script,
        )));
        let served = std::sync::Arc::new(std::sync::Mutex::new(0u32));
        let (count, dir, manifest, tag) = (
            served.clone(),
            layout.to_path_buf(),
            manifest.to_string(),
            tag.to_string(),
        );
        let manifests = format!("/v2/{repo}/manifests/");
        let blobs = format!("/v2/{repo}/blobs/");
        let server = crate::http::Server::start(move |req| {
            if let Some((status, retry_after)) = script.lock().unwrap().pop_front() {
                let mut r = Response::new(status);
                if let Some(s) = retry_after {
                    r = r.header("Retry-After", s);
                }
                return r;
            }
            *count.lock().unwrap() += 1;
            let path = req.path();
            if path == "/v2/" {
                return Response::new(200);
            }
            let blob = |d: &str| {
                std::fs::read(
                    dir.join("blobs/sha256")
                        .join(d.trim_start_matches("sha256:")),
                )
                .ok()
            };
            if let Some(rest) = path.strip_prefix(manifests.as_str()) {
                let digest = if rest == tag {
                    manifest.clone()
                } else {
                    rest.to_string()
                };
                return match blob(&digest) {
                    Some(b) => Response::new(200)
                        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
                        .body(b),
                    None => Response::new(404),
                };
            }
            if let Some(d) = path.strip_prefix(blobs.as_str()) {
                return match blob(d) {
                    Some(b) => Response::new(200).body(b),
                    None => Response::json(
                        404,
                        &serde_json::json!({"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry"}]}),
                    ),
                };
            }
            Response::new(404)
        });
        FakeRegistry { server, served }
    }

    /// Paths of the blob requests received.
    pub fn blob_requests(&self) -> Vec<String> {
        self.server
            .requests()
            .into_iter()
            .filter(|r| r.path().contains("/blobs/"))
            .map(|r| r.path().to_string())
            .collect()
    }
}
