//! What the binary's end-to-end tests share.

#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;

use assert_cmd::Command;

/// The binary under test, isolated from the user's environment: no log filter, no database,
/// no docker credentials, a layer cache under the target directory.
pub fn osprey() -> Command {
    let mut c = Command::cargo_bin("osprey").unwrap();
    c.env_remove("OSPREY_LOG")
        .env_remove("OSPREY_DB")
        .env(
            "OSPREY_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("osprey-cache"),
        )
        .env("DOCKER_CONFIG", "/nonexistent-osprey-test");
    c
}

pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

/// One HTTP/1.1 request on a fresh connection: the status code and the body.
pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    use std::io::{Read, Write};
    // A server that is down or killed mid-answer gives status 0 (or whatever arrived).
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    if s.write_all(head.as_bytes())
        .and_then(|_| s.write_all(body))
        .is_err()
    {
        return (0, String::new());
    }
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The ids of the pods an impact document lists, in its order.
pub fn impact_pods(impact: &serde_json::Value) -> Vec<&str> {
    impact["pods"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect()
}
