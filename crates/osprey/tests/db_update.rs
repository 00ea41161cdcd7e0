//! `osprey db update` against a mirror on loopback serving OSV archives built from the corpus:
//! checksums (the bucket's x-goog-hash MD5, a mirror's .sha256), ETag revalidation, the kept
//! previous database, and failures that leave the database untouched.

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use base64::Engine;
use common::osprey;
use osprey_testkit::http::{Response, Server};
use osprey_testkit::tools::testdata;
use sha2::Digest;

/// An `all.zip` of the first `n` records of a corpus directory.
fn archive(dir: &Path, n: usize) -> Vec<u8> {
    let mut files: Vec<_> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| e.into_path())
        .collect();
    files.sort();
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for f in files.iter().take(n) {
        zip.start_file(
            f.file_name().unwrap().to_string_lossy(),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(&std::fs::read(f).unwrap()).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

fn md5_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(bytes))
}

/// What the mirror serves: path → (body, extra headers).
type Files = Arc<Mutex<HashMap<String, (Vec<u8>, Vec<(String, String)>)>>>;

fn mirror(files: Files) -> Server {
    Server::start(move |req| {
        let files = files.lock().unwrap();
        let Some((body, headers)) = files.get(req.path()) else {
            return Response::new(404);
        };
        let etag = headers
            .iter()
            .find(|(k, _)| k == "ETag")
            .map(|(_, v)| v.clone());
        if etag.is_some() && req.headers.get("if-none-match") == etag.as_ref() {
            return Response::new(304);
        }
        let mut r = Response::new(200).body(body.clone());
        for (k, v) in headers {
            r = r.header(k, v);
        }
        r
    })
}

fn update(db: &Path, server: &Server, ecosystems: &str) -> assert_cmd::assert::Assert {
    osprey()
        .args(["--log-level", "info", "db", "update", "--db"])
        .arg(db)
        .args(["--mirror", &server.url(), "--ecosystem", ecosystems])
        .assert()
}

#[test]
fn update_verifies_revalidates_and_keeps_the_previous_database() {
    let pypi = archive(&testdata("vulndb/pypa/osv"), 300);
    let go = archive(&testdata("vulndb/golang-vulndb/osv"), 300);
    let files: Files = Arc::new(Mutex::new(HashMap::new()));
    {
        let mut f = files.lock().unwrap();
        f.insert(
            "/PyPI/all.zip".into(),
            (
                pypi.clone(),
                vec![
                    ("ETag".into(), "\"pypi-1\"".into()),
                    (
                        "x-goog-hash".into(),
                        format!("crc32c=AAAAAA==,md5={}", md5_b64(&pypi)),
                    ),
                ],
            ),
        );
        f.insert("/Go/all.zip".into(), (go.clone(), vec![]));
        f.insert(
            "/Go/all.zip.sha256".into(),
            (
                format!("{}  all.zip\n", hex::encode(sha2::Sha256::digest(&go))).into_bytes(),
                vec![],
            ),
        );
    }
    let server = mirror(files.clone());
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("osprey.db");

    let out = update(&db, &server, "PyPI,Go").success();
    let log = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        log.contains("PyPI/all.zip: MD5 (x-goog-hash) verified"),
        "{log}"
    );
    assert!(log.contains("Go/all.zip: SHA-256 verified"), "{log}");
    let info = osprey()
        .args(["db", "info", "--format", "json", "--db"])
        .arg(&db)
        .assert()
        .success();
    let v: serde_json::Value = serde_json::from_slice(&info.get_output().stdout).unwrap();
    let locations: Vec<&str> = v["metadata"]["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["location"].as_str().unwrap())
        .collect();
    assert_eq!(
        locations,
        [
            format!("{}/PyPI/all.zip", server.url()),
            format!("{}/Go/all.zip", server.url())
        ]
    );
    assert!(
        v["metadata"]["ecosystems"]["PyPI"]["advisories"]
            .as_u64()
            .unwrap()
            >= 250
    );
    assert!(
        v["metadata"]["ecosystems"]["Go"]["advisories"]
            .as_u64()
            .unwrap()
            >= 200
    );
    assert!(dir.path().join("feeds/PyPI/all.zip").is_file());
    assert!(
        !db.with_extension("db.previous").exists(),
        "nothing to keep the first time"
    );
    let first = std::fs::read(&db).unwrap();

    // Again: PyPI answers 304 to its ETag and is not downloaded; the old database is kept.
    let before = server.requests().len();
    let out = update(&db, &server, "PyPI,Go").success();
    let log = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(log.contains("PyPI/all.zip: unchanged"), "{log}");
    let again: Vec<_> = server.requests()[before..]
        .iter()
        .filter(|r| r.path() == "/PyPI/all.zip")
        .map(|r| r.headers.get("if-none-match").cloned())
        .collect();
    assert_eq!(again, [Some("\"pypi-1\"".to_string())]);
    assert_eq!(
        std::fs::read(dir.path().join("osprey.db.previous")).unwrap(),
        first
    );

    // A download whose MD5 does not match fails after retries; the database stays as it was.
    let current = std::fs::read(&db).unwrap();
    files.lock().unwrap().get_mut("/PyPI/all.zip").unwrap().1 =
        vec![("x-goog-hash".into(), "md5=AAAAAAAAAAAAAAAAAAAAAA==".into())];
    let out = update(&db, &server, "PyPI").code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("MD5 mismatch") && err.contains("the database was not changed"),
        "{err}"
    );
    assert_eq!(std::fs::read(&db).unwrap(), current);

    // A .sha256 that disagrees is fatal at once.
    files
        .lock()
        .unwrap()
        .get_mut("/Go/all.zip.sha256")
        .unwrap()
        .0 = b"00ff  all.zip\n".to_vec();
    let out = update(&db, &server, "Go").code(2);
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("SHA-256 mismatch"));
    assert_eq!(std::fs::read(&db).unwrap(), current);

    // An ecosystem the mirror does not have.
    let out = update(&db, &server, "Nonexistent").code(2);
    assert!(
        String::from_utf8_lossy(&out.get_output().stderr).contains("Nonexistent/all.zip: HTTP 404")
    );

    // An archive without any checksum is accepted with a warning.
    files.lock().unwrap().insert(
        "/crates.io/all.zip".into(),
        (archive(&testdata("vulndb/rustsec/osv"), 50), vec![]),
    );
    let out = update(&db, &server, "crates.io").success();
    assert!(String::from_utf8_lossy(&out.get_output().stderr).contains("offers no checksum"));
}

#[test]
fn bad_mirrors_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("osprey.db");
    for (mirror, message) in [
        ("ftp://example.com/osv", "only http and https"),
        ("not a url", "--mirror"),
    ] {
        let out = osprey()
            .args(["db", "update", "--db"])
            .arg(&db)
            .args(["--mirror", mirror])
            .assert()
            .code(2);
        assert!(String::from_utf8_lossy(&out.get_output().stderr).contains(message));
    }
    let out = osprey()
        .args(["db", "update", "--db"])
        .arg(&db)
        .args(["--mirror", "http://127.0.0.1:9", "--ecosystem", "../x"])
        .assert()
        .code(2);
    assert!(
        String::from_utf8_lossy(&out.get_output().stderr).contains("not an OSV ecosystem name")
    );
    assert!(!db.exists());
}
